//! The part of a stored report `summarize` reads, in one pass: strings are borrowed from
//! the report's bytes while it is parsed (the rest of the report is skipped unparsed), and
//! each distinct text of a report (a target, a rule, an error, a conversation id) is kept
//! once in its `texts`, which the records name by index. So parsing, on any thread, does
//! the work per record, and the summary's single thread does only what must be shared.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::dead_lettered_at;
use crate::classify::FailureCategory;
use crate::correlate::InteractionInfo;
use crate::report::{Disposition, Report, SCHEMA_VERSION};

/// The part of a report `summarize` reads.
#[derive(Debug, PartialEq)]
pub struct ReportDigest {
    /// When the report was built: the later of two reports says what became of a record.
    pub generated_at: String,
    /// The distinct texts its records name ([`Text`] is an index here).
    pub texts: Vec<Box<str>>,
    /// Its records.
    pub records: Vec<RecordDigest>,
}

/// An index into [`ReportDigest::texts`].
pub(super) type Text = u32;

/// The part of a report record `summarize` reads.
#[derive(Debug, PartialEq)]
pub struct RecordDigest {
    pub(crate) message_id: Box<str>,
    /// When it was dead-lettered (`sentTimestamp`), else the event's time.
    pub(crate) at: Option<DateTime<Utc>>,
    pub(crate) failure_category: FailureCategory,
    pub(crate) target_arn: Option<Text>,
    pub(crate) rule_arn: Option<Text>,
    pub(crate) error_code: Option<Text>,
    pub(crate) error_message: Option<Text>,
    pub(crate) http_status: Option<u16>,
    pub(crate) interaction_id: Option<Text>,
    /// What Genesys Cloud said of the conversation, when it was found.
    pub(crate) found: Option<Box<FoundDigest>>,
    pub(crate) stored: bool,
    pub(crate) event_count: usize,
}

/// A found conversation, as the summary lists it.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct FoundDigest {
    pub(crate) media_types: Vec<String>,
    pub(crate) queue_ids: Vec<String>,
    pub(crate) division_ids: Vec<String>,
    pub(crate) conversation_start: Option<String>,
    pub(crate) conversation_end: Option<String>,
}

/// Builds a digest: one index per distinct text.
struct Builder<'a> {
    index: HashMap<&'a str, Text, foldhash::fast::RandomState>,
    texts: Vec<Box<str>>,
}

impl<'a> Builder<'a> {
    fn new() -> Builder<'a> {
        Builder {
            index: HashMap::default(),
            texts: Vec::new(),
        }
    }

    fn text(&mut self, s: Option<&'a str>) -> Option<Text> {
        let s = s?;
        Some(*self.index.entry(s).or_insert_with(|| {
            self.texts.push(s.into());
            (self.texts.len() - 1) as Text
        }))
    }
}

impl ReportDigest {
    /// A report's JSON, or why it is not one this version reads. Parsed with `sonic-rs`
    /// (8 % of `summarize`'s time against `serde_json`; docs/benchmarks.md); a property
    /// test (tests/properties.rs) and the `report_digest` fuzz target hold it to
    /// [`ReportDigest::parse_with_serde_json`].
    pub fn parse(bytes: &[u8]) -> Result<ReportDigest, DigestError> {
        Self::parse_view(bytes, sonic_rs::from_slice::<View>(bytes))
    }

    /// The same digest through `serde_json`: the judge of [`ReportDigest::parse`].
    #[doc(hidden)]
    pub fn parse_with_serde_json(bytes: &[u8]) -> Result<ReportDigest, DigestError> {
        Self::parse_view(bytes, serde_json::from_slice::<View>(bytes))
    }

    /// The digest of `view`, the report parsed by either parser (its error in the
    /// parser's words).
    fn parse_view(
        bytes: &[u8],
        view: Result<View<'_>, impl std::fmt::Display>,
    ) -> Result<ReportDigest, DigestError> {
        match view {
            Ok(view) if view.schema_version == Some(SCHEMA_VERSION) => view.digest(),
            Ok(view) => Err(wrong_version(view.schema_version)),
            // A report of another version may not even have this one's shape: say so.
            Err(e) => Err(match serde_json::from_slice::<Version>(bytes) {
                Err(error) => DigestError::NotJson { error },
                Ok(v) if v.schema_version != Some(SCHEMA_VERSION) => {
                    wrong_version(v.schema_version)
                }
                Ok(_) => DigestError::Shape { why: e.to_string() },
            }),
        }
    }

    /// The digest of a report in hand (the page of a report just built).
    pub fn of(report: &Report) -> ReportDigest {
        let mut b = Builder::new();
        let records = report
            .records
            .iter()
            .map(|r| RecordDigest {
                message_id: r.message_id.as_str().into(),
                at: dead_lettered_at(r.sent_timestamp.as_deref(), r.timestamp.as_deref()),
                failure_category: r.failure_category,
                target_arn: b.text(r.failure.target_arn.as_deref()),
                rule_arn: b.text(r.failure.rule_arn.as_deref()),
                error_code: b.text(r.failure.error_code.as_deref()),
                error_message: b.text(r.failure.error_message.as_deref()),
                http_status: r.http_status,
                interaction_id: b.text(r.interaction_id.as_deref()),
                found: match &r.interaction_info {
                    InteractionInfo::Found(c) => Some(Box::new(FoundDigest {
                        media_types: c.media_types.clone(),
                        queue_ids: c.queue_ids.clone(),
                        division_ids: c.division_ids.clone(),
                        conversation_start: c.conversation_start.clone(),
                        conversation_end: c.conversation_end.clone(),
                    })),
                    _ => None,
                },
                stored: matches!(r.disposition, Disposition::Stored),
                event_count: r.event_count,
            })
            .collect();
        ReportDigest {
            generated_at: report.generated_at.clone(),
            texts: b.texts,
            records,
        }
    }
}

/// Why bytes are not a report this version reads.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// Not JSON at all.
    #[error("not JSON: {error}")]
    NotJson {
        /// The parser's error.
        error: serde_json::Error,
    },
    /// A report of another schema version.
    #[error("report schema version {version}; this dlq-triage reads version {SCHEMA_VERSION}")]
    Version {
        /// Its version.
        version: u32,
    },
    /// JSON without a `schemaVersion`.
    #[error("not a dlq-triage report: no schemaVersion")]
    NoVersion,
    /// JSON of this version whose shape is not a report's.
    #[error("not a dlq-triage report: {why}")]
    Shape {
        /// The parser's words.
        why: String,
    },
    /// A status this version does not know.
    #[error("not a dlq-triage report: unknown {field} status {status:?}")]
    UnknownStatus {
        /// The field (`disposition`, `interactionInfo`).
        field: &'static str,
        /// Its value.
        status: String,
    },
}

impl From<DigestError> for String {
    fn from(e: DigestError) -> String {
        e.to_string()
    }
}

fn wrong_version(version: Option<u32>) -> DigestError {
    match version {
        Some(version) => DigestError::Version { version },
        None => DigestError::NoVersion,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Version {
    schema_version: Option<u32>,
}

/// A report as parsed: every string borrowed from the bytes unless it holds an escape.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct View<'a> {
    schema_version: Option<u32>,
    #[serde(borrow)]
    generated_at: Cow<'a, str>,
    #[serde(borrow)]
    records: Vec<RecordView<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordView<'a> {
    #[serde(borrow)]
    message_id: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sent_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    interaction_id: Option<Cow<'a, str>>,
    failure_category: FailureCategory,
    #[serde(borrow)]
    target_arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    rule_arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error_message: Option<Cow<'a, str>>,
    http_status: Option<u16>,
    #[serde(borrow)]
    interaction_info: Option<InfoView<'a>>,
    #[serde(borrow)]
    disposition: StatusView<'a>,
    #[serde(default = "crate::report::one")]
    event_count: usize,
}

/// `interactionInfo`: its status, and what a found conversation holds.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfoView<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(default)]
    media_types: Vec<String>,
    #[serde(default)]
    queue_ids: Vec<String>,
    #[serde(default)]
    division_ids: Vec<String>,
    conversation_start: Option<String>,
    conversation_end: Option<String>,
}

/// `disposition`: `stored` or `returned`.
#[derive(Deserialize)]
struct StatusView<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
}

const INFO_STATUSES: [&str; 5] = [
    "found",
    "notFound",
    "unavailable",
    "skipped",
    "noConversation",
];

impl View<'_> {
    fn digest(&self) -> Result<ReportDigest, DigestError> {
        let mut b = Builder::new();
        let mut records = Vec::with_capacity(self.records.len());
        for r in &self.records {
            let stored = match &*r.disposition.status {
                "stored" => true,
                "returned" => false,
                other => return Err(unknown("disposition", other)),
            };
            let found = match &r.interaction_info {
                Some(info) if info.status == "found" => Some(Box::new(FoundDigest {
                    media_types: info.media_types.clone(),
                    queue_ids: info.queue_ids.clone(),
                    division_ids: info.division_ids.clone(),
                    conversation_start: info.conversation_start.clone(),
                    conversation_end: info.conversation_end.clone(),
                })),
                Some(info) if !INFO_STATUSES.contains(&&*info.status) => {
                    return Err(unknown("interactionInfo", &info.status));
                }
                _ => None,
            };
            records.push(RecordDigest {
                message_id: (*r.message_id).into(),
                at: dead_lettered_at(r.sent_timestamp.as_deref(), r.timestamp.as_deref()),
                failure_category: r.failure_category,
                target_arn: b.text(r.target_arn.as_deref()),
                rule_arn: b.text(r.rule_arn.as_deref()),
                error_code: b.text(r.error_code.as_deref()),
                error_message: b.text(r.error_message.as_deref()),
                http_status: r.http_status,
                interaction_id: b.text(r.interaction_id.as_deref()),
                found,
                stored,
                event_count: r.event_count,
            });
        }
        Ok(ReportDigest {
            generated_at: self.generated_at.to_string(),
            texts: b.texts,
            records,
        })
    }
}

fn unknown(field: &'static str, status: &str) -> DigestError {
    DigestError::UnknownStatus {
        field,
        status: status.to_owned(),
    }
}
