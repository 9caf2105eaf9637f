//! What Genesys Cloud says about one conversation, as the report shows it, and why it
//! could not say: plain data, no HTTP, so the report and the correlation port can name it
//! without depending on the client.

use std::collections::BTreeSet;

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A look-up that got no answer: what failed and whether a later delivery may succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupFailure {
    /// What failed (never a secret or token).
    pub error: String,
    /// Whether trying again later may succeed (timeouts, 429, 5xx).
    pub transient: bool,
}

/// A conversation as the report shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    /// When the conversation started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_start: Option<String>,
    /// When it ended; absent while in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_end: Option<String>,
    /// End minus start, when both are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// `inbound` / `outbound`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub originating_direction: Option<String>,
    /// Media types seen in its sessions (`voice`, `message`, …), sorted, distinct.
    pub media_types: Vec<String>,
    /// Divisions, sorted, distinct.
    pub division_ids: Vec<String>,
    /// Queues the conversation was routed through, sorted, distinct.
    pub queue_ids: Vec<String>,
    /// Participant purposes (`customer`, `agent`, `acd`, `ivr`…), sorted, distinct.
    pub participant_purposes: Vec<String>,
}

/// The report's view of an `AnalyticsConversationWithoutAttributes`.
pub(crate) fn summarize(c: &Value) -> ConversationSummary {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let start = text(c, "conversationStart");
    let end = text(c, "conversationEnd");
    let duration_ms = match (&start, &end) {
        (Some(s), Some(e)) => match (
            DateTime::parse_from_rfc3339(s),
            DateTime::parse_from_rfc3339(e),
        ) {
            (Ok(s), Ok(e)) => Some((e - s).num_milliseconds()),
            _ => None,
        },
        _ => None,
    };
    let mut media = BTreeSet::new();
    let mut queues = BTreeSet::new();
    let mut purposes = BTreeSet::new();
    let participants = c
        .get("participants")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for p in participants {
        purposes.extend(p.get("purpose").and_then(Value::as_str));
        let sessions = p
            .get("sessions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for s in sessions {
            media.extend(s.get("mediaType").and_then(Value::as_str));
            let segments = s
                .get("segments")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for seg in segments {
                queues.extend(seg.get("queueId").and_then(Value::as_str));
            }
        }
    }
    let owned = |set: BTreeSet<&str>| set.into_iter().map(str::to_owned).collect();
    ConversationSummary {
        conversation_start: start,
        conversation_end: end,
        duration_ms,
        originating_direction: text(c, "originatingDirection"),
        media_types: owned(media),
        division_ids: owned(
            c.get("divisionIds")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
        ),
        queue_ids: owned(queues),
        participant_purposes: owned(purposes),
    }
}
