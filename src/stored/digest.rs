//! The part of a stored report `summarize` reads; the rest is skipped unparsed.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::dead_lettered_at;
use crate::classify::FailureCategory;
use crate::correlate::InteractionInfo;
use crate::report::{Disposition, Report, SCHEMA_VERSION};

/// The part of a report `summarize` reads; the rest of the report is skipped unparsed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportDigest {
    /// When the report was built: the later of two reports says what became of a record.
    pub generated_at: String,
    /// Its records.
    pub records: Vec<RecordDigest>,
}

impl ReportDigest {
    /// The digest of a report in hand (the page of a report just built).
    pub fn of(report: &Report) -> ReportDigest {
        ReportDigest {
            generated_at: report.generated_at.clone(),
            records: report
                .records
                .iter()
                .map(|r| RecordDigest {
                    message_id: r.message_id.clone(),
                    timestamp: r.timestamp.clone(),
                    sent_timestamp: r.sent_timestamp.clone(),
                    interaction_id: r.interaction_id.clone(),
                    failure_category: r.failure_category,
                    target_arn: r.failure.target_arn.clone(),
                    rule_arn: r.failure.rule_arn.clone(),
                    error_code: r.failure.error_code.clone(),
                    error_message: r.failure.error_message.clone(),
                    http_status: r.http_status,
                    interaction_info: Some(r.interaction_info.clone()),
                    disposition: r.disposition.clone(),
                    event_count: r.event_count,
                })
                .collect(),
        }
    }

    /// A report's JSON, or why it is not one this version reads.
    pub fn parse(bytes: &[u8]) -> Result<ReportDigest, String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            schema_version: Option<u32>,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        match version.schema_version {
            Some(SCHEMA_VERSION) => {
                serde_json::from_slice(bytes).map_err(|e| format!("not a dlq-triage report: {e}"))
            }
            Some(v) => Err(format!(
                "report schema version {v}; this dlq-triage reads version {SCHEMA_VERSION}"
            )),
            None => Err("not a dlq-triage report: no schemaVersion".into()),
        }
    }
}

/// The part of a report record `summarize` reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordDigest {
    pub(crate) message_id: String,
    pub(crate) timestamp: Option<String>,
    pub(crate) sent_timestamp: Option<String>,
    pub(crate) interaction_id: Option<String>,
    pub(crate) failure_category: FailureCategory,
    pub(crate) target_arn: Option<String>,
    pub(crate) rule_arn: Option<String>,
    pub(crate) error_code: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) http_status: Option<u16>,
    pub(crate) interaction_info: Option<InteractionInfo>,
    pub(crate) disposition: Disposition,
    #[serde(default = "crate::report::one")]
    pub(crate) event_count: usize,
}

impl RecordDigest {
    /// When the message was dead-lettered (`sentTimestamp`), else the event's time.
    pub(crate) fn at(&self) -> Option<DateTime<Utc>> {
        dead_lettered_at(self.sent_timestamp.as_deref(), self.timestamp.as_deref())
    }
}
