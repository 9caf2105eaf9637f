//! The report's wire types: the contract of `report.json` (camelCase field names that
//! dashboards, Athena tables and `dlq-triage replay` rely on; fields are only ever added).
//! See `docs/contract.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::classify::{Evidence, FailureCategory};
use crate::correlate::InteractionInfo;
use crate::dlq::{BodyKind, FailureContext};

/// The report schema version.
pub(crate) const SCHEMA_VERSION: u32 = 1;
/// How many conversation ids an incident lists.
pub(super) const INCIDENT_CONVERSATION_IDS: usize = 100;

/// One dead letter as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriageRecord {
    /// The SQS message id.
    pub message_id: String,
    /// EventBridge event id.
    pub event_id: Option<String>,
    /// When the event happened (EventBridge `time`), else when it reached the DLQ.
    pub timestamp: Option<String>,
    /// `detail-type` (the topic pattern).
    pub event_type: Option<String>,
    /// `detail.topicName` (the concrete topic).
    pub topic_name: Option<String>,
    /// EventBridge `source`.
    pub source: Option<String>,
    /// The Genesys conversation id, a canonical UUID.
    pub interaction_id: Option<String>,
    /// `detail.metadata.CorrelationId` of a Genesys event: what Genesys Cloud support asks
    /// for to trace the event on their side.
    pub correlation_id: Option<String>,
    /// The category.
    pub failure_category: FailureCategory,
    /// What decided the category.
    pub evidence: Evidence,
    /// EventBridge's six attributes (`ruleArn`, `targetArn`, `errorCode`, `errorMessage`,
    /// `exhaustedRetryCondition`, `retryAttempts`), flat in the record.
    #[serde(flatten)]
    pub failure: FailureContext,
    /// An HTTP status stated in the message.
    pub http_status: Option<u16>,
    /// `ApproximateReceiveCount`.
    pub receive_count: Option<u32>,
    /// Where the replay payload was stored (S3 key, or path relative to the CLI's folder);
    /// `null` when it was not stored.
    pub replay_payload_key: Option<String>,
    /// Where a replay should be sent: the configured endpoint, else the failed target.
    pub replay_endpoint: Option<String>,
    /// What is known of the conversation.
    pub interaction_info: InteractionInfo,
    /// What kind of body the message carried.
    pub body_kind: BodyKind,
    /// When the message reached the DLQ (`SentTimestamp`).
    pub sent_timestamp: Option<String>,
    /// Whether the record was acknowledged or returned to the queue, and why.
    pub disposition: Disposition,
    /// How many failed events the record stands for: 1, except for a Custom Event Bus
    /// failure summary, which stands for every event of its `failedMessages[]` (written
    /// only when it is not 1). Totals and incidents count events.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub event_count: usize,
    /// A Custom Event Bus summary's `failedMessages[].eventId`s (absent otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_event_ids: Vec<String>,
    /// The archive replay this event came from (the body's top-level `replay-name`, which
    /// EventBridge adds to replayed events): a replay's failure, not a new one. Absent for
    /// events that were not replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_name: Option<String>,
}

/// `1`: serde's default of an `eventCount` that is absent.
pub(crate) fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// What happened to a record in this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Disposition {
    /// Stored; SQS may delete it (or, in the CLI, it was written).
    Stored,
    /// Returned to the queue for another delivery.
    Returned {
        /// Why.
        reason: ReturnReason,
    },
}

/// Why a record goes back to the queue. Its text is the report's `disposition.reason`,
/// which operators read and filter on (docs/contract.md); a report read back keeps any
/// text it holds (one written by another version is [`ReturnReason::Other`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum ReturnReason {
    /// No write was started before the function's time ran out.
    Deadline,
    /// FIFO: an earlier record of its message group failed, so it waits its turn.
    FifoGroupHeld,
    /// A panic while handling this record.
    Panicked,
    /// Its payload could not be stored.
    WriteFailed(String),
    /// Correlation failed transiently on this delivery, and later deliveries may succeed.
    CorrelationTransient {
        /// This delivery's `ApproximateReceiveCount`.
        receives: u32,
        /// `CORRELATION_MAX_RECEIVES`.
        max: u32,
    },
    /// Its payload was not stored, and nothing else was said.
    NotStored,
    /// A text this version does not write (a report read back), kept as it was.
    Other(String),
}

/// What a record that panicked says, as its reason and as its classification's evidence.
pub(crate) const PANIC_TEXT: &str = "internal error while handling this record";

const DEADLINE_TEXT: &str = "deadline: not started before the function's time ran out";
const FIFO_TEXT: &str = "fifo: an earlier record of this message group failed";
const NOT_STORED_TEXT: &str = "not stored";
const WRITE_FAILED: &str = "write failed: ";

impl ReturnReason {
    /// A failure of the function's own (storage, a bug), as opposed to the deadline, a
    /// FIFO group waiting, or Genesys: when every record of a batch goes back for one of
    /// these, the outage is reported as such.
    pub fn is_own_failure(&self) -> bool {
        matches!(self, ReturnReason::WriteFailed(_) | ReturnReason::Panicked)
    }

    /// The reason a text says: the variant that writes exactly it, else [`Self::Other`].
    pub fn from_text(text: String) -> ReturnReason {
        let known = match text.as_str() {
            DEADLINE_TEXT => Some(ReturnReason::Deadline),
            FIFO_TEXT => Some(ReturnReason::FifoGroupHeld),
            PANIC_TEXT => Some(ReturnReason::Panicked),
            NOT_STORED_TEXT => Some(ReturnReason::NotStored),
            t => t
                .strip_prefix(WRITE_FAILED)
                .map(|e| ReturnReason::WriteFailed(e.to_owned()))
                .or_else(|| correlation_transient(t)),
        };
        known
            .filter(|r| r.to_string() == text)
            .unwrap_or(ReturnReason::Other(text))
    }
}

/// `correlation unavailable (transient); delivery R of M before archiving without it`.
fn correlation_transient(text: &str) -> Option<ReturnReason> {
    let rest = text.strip_prefix("correlation unavailable (transient); delivery ")?;
    let (receives, rest) = rest.split_once(" of ")?;
    let max = rest.strip_suffix(" before archiving without it")?;
    Some(ReturnReason::CorrelationTransient {
        receives: receives.parse().ok()?,
        max: max.parse().ok()?,
    })
}

impl std::fmt::Display for ReturnReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReturnReason::Deadline => f.write_str(DEADLINE_TEXT),
            ReturnReason::FifoGroupHeld => f.write_str(FIFO_TEXT),
            ReturnReason::Panicked => f.write_str(PANIC_TEXT),
            ReturnReason::WriteFailed(e) => write!(f, "{WRITE_FAILED}{e}"),
            ReturnReason::CorrelationTransient { receives, max } => write!(
                f,
                "correlation unavailable (transient); delivery {receives} of {max} before archiving without it"
            ),
            ReturnReason::NotStored => f.write_str(NOT_STORED_TEXT),
            ReturnReason::Other(text) => f.write_str(text),
        }
    }
}

impl From<ReturnReason> for String {
    fn from(reason: ReturnReason) -> String {
        reason.to_string()
    }
}

impl From<String> for ReturnReason {
    fn from(text: String) -> ReturnReason {
        ReturnReason::from_text(text)
    }
}

impl From<&str> for ReturnReason {
    fn from(text: &str) -> ReturnReason {
        ReturnReason::from_text(text.to_owned())
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Unique per run; names the report objects in S3.
    pub report_id: String,
    /// When the report was built, RFC 3339 UTC.
    pub generated_at: String,
    /// The number of failed events: one per record, except a Custom Event Bus summary,
    /// which counts every event of its `failedMessages[]`.
    pub total_failures: usize,
    /// Aggregates.
    pub summary: BatchSummary,
    /// Every record, in batch order.
    pub records: Vec<TriageRecord>,
}

/// Aggregates over the records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchSummary {
    /// Failed events per category.
    pub by_category: BTreeMap<FailureCategory, usize>,
    /// Failed events per target ARN (`(no target)` when the attribute is missing).
    pub by_target: BTreeMap<String, usize>,
    /// Failed events per event type (`detail-type`, or the body kind when it is not an event).
    pub by_event_type: BTreeMap<String, usize>,
    /// Failed events per correlation status.
    pub by_interaction_status: BTreeMap<String, usize>,
    /// Distinct conversations across the batch.
    pub conversations: usize,
    /// The earliest dead-letter time (`sentTimestamp`, else `timestamp`).
    pub first_seen: Option<String>,
    /// The latest dead-letter time.
    pub last_seen: Option<String>,
    /// Groups of records by (category, target), largest first.
    pub incidents: Vec<BatchIncident>,
    /// How each failed target takes its input, where the rule could be read
    /// (`ListTargetsByRule`): `InputTransformer`, `InputPath`, `Input`, or `none` (the event
    /// unchanged). Absent for targets that were not looked up.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_inputs: BTreeMap<String, String>,
}

/// Records of one category against one target, with the error codes among them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchIncident {
    /// The category.
    pub category: FailureCategory,
    /// The target ARN.
    pub target_arn: Option<String>,
    /// The `ERROR_CODE` seen most among its records (the first by name on a tie).
    pub error_code: Option<String>,
    /// Every `ERROR_CODE` among its records, with how many failed events each.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_codes: BTreeMap<String, usize>,
    /// Failed events (one per record, except Custom Event Bus summaries).
    pub count: usize,
    /// Its earliest dead-letter time (`sentTimestamp`, else `timestamp`).
    pub first_seen: Option<String>,
    /// Its latest dead-letter time.
    pub last_seen: Option<String>,
    /// Distinct conversations affected.
    pub conversations: usize,
    /// Up to five message ids.
    pub sample_message_ids: Vec<String>,
    /// What to do about it (the taxonomy's typical fix).
    pub recommended_action: String,
    /// Whether the payloads can be replayed unchanged once fixed.
    pub replay_as_is: String,
    /// HTTP statuses seen, sorted.
    pub http_statuses: Vec<u16>,
    /// One error message, verbatim, as a sample.
    pub sample_error_message: Option<String>,
    /// Up to [`INCIDENT_CONVERSATION_IDS`] affected conversation ids, sorted.
    pub conversation_ids: Vec<String>,
    /// How many of its failed events came from archive replays (records with a
    /// `replayName`): a replay that failed again. Absent when none did.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replay_failures: usize,
    /// The replays they came from, sorted (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replay_names: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Label used for records without a target ARN.
pub(crate) const NO_TARGET: &str = "(no target)";

impl Report {
    /// The report as JSON. `pretty` (the CLI's choice) indents reports of up to 1,000
    /// records; otherwise it is one line, which Athena's JSON SerDe reads as one row and
    /// which is half the size.
    /// An error is never expected (plain data into memory) but is passed on, never
    /// swallowed, so a truncated report can never be stored.
    pub fn to_json(&self, pretty: bool) -> Result<Vec<u8>, serde_json::Error> {
        let mut buffer = Vec::new();
        if pretty && self.records.len() <= 1000 {
            serde_json::to_writer_pretty(&mut buffer, self)?;
        } else {
            serde_json::to_writer(&mut buffer, self)?;
        }
        buffer.push(b'\n');
        Ok(buffer)
    }
}

/// Where the replay payloads of a report are, for the commands the Markdown prints.
#[derive(Debug, Clone)]
pub enum ReplaySource {
    /// A local folder (the CLI's `--out`), as the user typed it.
    Folder(String),
    /// An S3 bucket; record keys are full keys.
    Bucket(String),
}

impl ReplaySource {
    /// Where an artifact stored under `key` is, as a user would type it: a path, or an
    /// `s3://` URL.
    pub fn address_of(&self, key: &str) -> String {
        match self {
            ReplaySource::Folder(out) => std::path::Path::new(out).join(key).display().to_string(),
            ReplaySource::Bucket(bucket) => format!("s3://{bucket}/{key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Disposition, ReturnReason};

    /// The reasons' texts are contract (docs/contract.md): operators filter on them.
    #[test]
    fn each_return_reason_says_its_contract_text() {
        let said = [
            ReturnReason::Deadline,
            ReturnReason::FifoGroupHeld,
            ReturnReason::Panicked,
            ReturnReason::WriteFailed("AccessDenied".into()),
            ReturnReason::CorrelationTransient {
                receives: 1,
                max: 3,
            },
            ReturnReason::NotStored,
        ]
        .map(|r| (r.to_string(), r.is_own_failure()));
        let expected = [
            (
                "deadline: not started before the function's time ran out",
                false,
            ),
            (
                "fifo: an earlier record of this message group failed",
                false,
            ),
            ("internal error while handling this record", true),
            ("write failed: AccessDenied", true),
            (
                "correlation unavailable (transient); delivery 1 of 3 before archiving without it",
                false,
            ),
            ("not stored", false),
        ]
        .map(|(text, own)| (text.to_owned(), own));
        assert_eq!(said, expected);
    }

    /// Each reason reads back as itself from its text; a text of another version is kept
    /// as it was, and written back byte for byte.
    #[test]
    fn a_reason_reads_back_from_its_text_and_any_other_text_is_kept() {
        for reason in [
            ReturnReason::Deadline,
            ReturnReason::FifoGroupHeld,
            ReturnReason::Panicked,
            ReturnReason::WriteFailed("could not store k: AccessDenied".into()),
            ReturnReason::CorrelationTransient {
                receives: 2,
                max: 3,
            },
            ReturnReason::NotStored,
        ] {
            let json = serde_json::to_string(&Disposition::Returned {
                reason: reason.clone(),
            })
            .unwrap();
            assert_eq!(
                serde_json::from_str::<Disposition>(&json).unwrap(),
                Disposition::Returned { reason }
            );
        }
        let old = r#"{"status":"returned","reason":"payload not stored: S3 timeout"}"#;
        let read: Disposition = serde_json::from_str(old).unwrap();
        assert_eq!(
            read,
            Disposition::Returned {
                reason: ReturnReason::Other("payload not stored: S3 timeout".into())
            }
        );
        assert_eq!(serde_json::to_string(&read).unwrap(), old);
        let odd =
            "correlation unavailable (transient); delivery 01 of 3 before archiving without it";
        assert_eq!(ReturnReason::from(odd), ReturnReason::Other(odd.to_owned()));
    }
}
