//! Correlation of failures with Genesys Cloud conversations (DESIGN §4).

use serde::{Deserialize, Serialize};

/// What is known of a failure's conversation: the record's `interactionInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum InteractionInfo {
    /// The Analytics API returned the conversation.
    Found(Box<ConversationSummary>),
    /// The API answered, but does not know the conversation (yet).
    NotFound,
    /// The look-up failed.
    Unavailable {
        /// What failed (never a secret or token).
        error: String,
        /// Whether trying again later may succeed (timeouts, 429, 5xx).
        transient: bool,
    },
    /// Correlation did not run (disabled, or no credentials).
    Skipped {
        /// Why.
        reason: String,
    },
    /// The event names no conversation.
    NoConversation,
}

impl InteractionInfo {
    /// The `status` name.
    pub fn status(&self) -> &'static str {
        match self {
            InteractionInfo::Found(_) => "found",
            InteractionInfo::NotFound => "notFound",
            InteractionInfo::Unavailable { .. } => "unavailable",
            InteractionInfo::Skipped { .. } => "skipped",
            InteractionInfo::NoConversation => "noConversation",
        }
    }

    /// Whether this is an `unavailable` result that may succeed on a later delivery.
    pub fn is_transient_failure(&self) -> bool {
        matches!(
            self,
            InteractionInfo::Unavailable {
                transient: true,
                ..
            }
        )
    }
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
