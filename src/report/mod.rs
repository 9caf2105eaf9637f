//! The root-cause report: its contract types ([`schema`]), the report built from records
//! ([`build`]) from the one aggregation every count shares ([`aggregate`]), and its
//! Markdown rendering ([`markdown`]).

mod aggregate;
mod build;
mod markdown;
pub(crate) mod said;
mod schema;

pub(crate) use aggregate::PAYLOADS_PER_INCIDENT;
pub(crate) use aggregate::dead_lettered_at;
pub(crate) use aggregate::{Aggregate, Incidents, Occurrence, Tally, fmt_time, parse_time};
pub(crate) use markdown::{Markdown, bucket_name, bucket_width, code, shell_word};
pub(crate) use markdown::{headline, render_markdown, short_arn};
pub(crate) use schema::one;
pub use schema::{Disposition, ReplaySource};
pub(crate) use schema::{
    NO_TARGET, PANIC_TEXT, Report, ReturnReason, SCHEMA_VERSION, TriageRecord,
};

/// The S3 console's page of the object `key` in `bucket`, in `region`.
pub(crate) fn s3_console_link(bucket: &str, key: &str, region: &str) -> String {
    format!("https://console.aws.amazon.com/s3/object/{bucket}?region={region}&prefix={key}")
}

/// Records for the aggregation and rendering tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::{DateTime, Utc};

    use super::{Disposition, Report, TriageRecord};
    use crate::classify::{Evidence, FailureCategory, Rule};
    use crate::correlate::InteractionInfo;
    use crate::dlq::{BodyKind, FailureContext};

    /// A report of `records`, generated at a fixed time.
    pub(crate) fn report_of(records: Vec<TriageRecord>) -> Report {
        let now = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Report::build("r1".into(), now, records)
    }

    /// A stored record of `category` against `target` with `code`, at `time`.
    pub(crate) fn record(
        id: &str,
        category: FailureCategory,
        target: Option<&str>,
        code: Option<&str>,
        time: &str,
    ) -> TriageRecord {
        TriageRecord {
            message_id: id.into(),
            event_id: None,
            timestamp: Some(time.into()),
            event_type: Some("v2.detail.events.conversation.{id}.customer.end".into()),
            topic_name: None,
            source: None,
            interaction_id: None,
            correlation_id: None,
            event_count: 1,
            failed_event_ids: Vec::new(),
            replay_name: None,
            failure_category: category,
            evidence: Evidence {
                rule: Rule::ErrorCode,
                matched: code.unwrap_or_default().into(),
            },
            failure: FailureContext {
                target_arn: target.map(str::to_owned),
                error_code: code.map(str::to_owned),
                ..FailureContext::default()
            },
            http_status: None,
            receive_count: Some(1),
            replay_payload_key: Some(format!("replay/{category}/{id}.json")),
            replay_endpoint: None,
            interaction_info: InteractionInfo::NoConversation,
            body_kind: BodyKind::GenesysEvent,
            sent_timestamp: None,
            disposition: Disposition::Stored,
        }
    }
}
