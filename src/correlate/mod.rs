//! Correlation: which Genesys Cloud conversation a failure belongs to, and what is known
//! of it. The [`Correlate`] port, its answer [`InteractionInfo`], and [`MemoryCorrelator`],
//! the in-memory twin that answers from a table (tests, and the fixed answers "correlation
//! skipped" and "correlation unavailable"). The adapter backed by the Genesys Cloud
//! Analytics API, with its per-process cache, is in `genesys.rs`.

mod genesys;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub(crate) use self::genesys::Connector;
pub use self::genesys::{CacheTtl, ConversationCache, GenesysCorrelator};
pub(crate) use crate::genesys::conversation::ConversationSummary;
pub use crate::genesys::conversation::LookupFailure;

/// What is known of a failure's conversation: the record's `interactionInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum InteractionInfo {
    /// The Analytics API returned the conversation.
    Found(Box<ConversationSummary>),
    /// The API answered, but does not know the conversation (yet).
    NotFound,
    /// The look-up failed.
    Unavailable(LookupFailure),
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
            InteractionInfo::Unavailable(_) => "unavailable",
            InteractionInfo::Skipped { .. } => "skipped",
            InteractionInfo::NoConversation => "noConversation",
        }
    }

    /// Whether this is an `unavailable` result that may succeed on a later delivery.
    pub fn is_transient_failure(&self) -> bool {
        matches!(self, InteractionInfo::Unavailable(f) if f.transient)
    }
}

/// The correlation port: conversation details for a set of distinct ids.
pub trait Correlate: Send + Sync {
    /// Looks up `ids` (distinct, canonical) within `budget`; every id gets an answer.
    fn correlate<'a>(
        &'a self,
        ids: &'a [String],
        budget: Duration,
    ) -> BoxFuture<'a, HashMap<String, InteractionInfo>>;
}

/// The in-memory twin: answers from a table, and every other id with one fixed answer.
#[derive(Debug, Clone)]
pub struct MemoryCorrelator {
    answers: HashMap<String, InteractionInfo>,
    otherwise: InteractionInfo,
}

impl MemoryCorrelator {
    /// Answers every id with `info`.
    pub fn every(info: InteractionInfo) -> MemoryCorrelator {
        MemoryCorrelator {
            answers: HashMap::new(),
            otherwise: info,
        }
    }

    /// Correlation switched off: every conversation is `skipped` for `reason`.
    pub fn skipped(reason: impl Into<String>) -> MemoryCorrelator {
        MemoryCorrelator::every(InteractionInfo::Skipped {
            reason: reason.into(),
        })
    }

    /// Correlation impossible (e.g. the secret cannot be read): every conversation is
    /// `unavailable` with `failure`.
    pub fn unavailable(failure: LookupFailure) -> MemoryCorrelator {
        MemoryCorrelator::every(InteractionInfo::Unavailable(failure))
    }

    /// Answers `id` with `info` instead of the fixed answer.
    pub fn with(mut self, id: impl Into<String>, info: InteractionInfo) -> MemoryCorrelator {
        self.answers.insert(id.into(), info);
        self
    }
}

impl Correlate for MemoryCorrelator {
    fn correlate<'a>(
        &'a self,
        ids: &'a [String],
        _: Duration,
    ) -> BoxFuture<'a, HashMap<String, InteractionInfo>> {
        let answers = ids
            .iter()
            .map(|id| {
                let info = self.answers.get(id).unwrap_or(&self.otherwise).clone();
                (id.clone(), info)
            })
            .collect();
        Box::pin(std::future::ready(answers))
    }
}

/// The correlation a run uses, chosen by its adapter (the Lambda, the CLI): a fixed answer
/// for every conversation (skipped, or unavailable with the reason), or the Genesys API.
#[derive(Debug)]
pub(crate) enum Correlation {
    /// Every conversation gets the same answer.
    Fixed(MemoryCorrelator),
    /// The Genesys Cloud Analytics API.
    Genesys(Arc<GenesysCorrelator>),
}

impl Correlation {
    /// Requests sent to Genesys Cloud, when it is used.
    pub(crate) fn calls(&self) -> Option<u64> {
        match self {
            Correlation::Fixed(_) => None,
            Correlation::Genesys(c) => Some(c.calls()),
        }
    }
}

impl Correlate for Correlation {
    fn correlate<'a>(
        &'a self,
        ids: &'a [String],
        budget: Duration,
    ) -> BoxFuture<'a, HashMap<String, InteractionInfo>> {
        match self {
            Correlation::Fixed(fixed) => fixed.correlate(ids, budget),
            Correlation::Genesys(c) => c.correlate(ids, budget),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_twin_answers_from_its_table_and_every_other_id_alike() {
        let twin = MemoryCorrelator::skipped("--no-correlate").with("a", InteractionInfo::NotFound);
        let answers = twin
            .correlate(&["a".into(), "b".into()], Duration::ZERO)
            .await;
        assert_eq!(answers["a"], InteractionInfo::NotFound);
        assert_eq!(answers["b"].status(), "skipped");
        assert_eq!(answers.len(), 2);
    }

    #[test]
    fn unavailable_serializes_flat_with_its_status() {
        let info = InteractionInfo::Unavailable(LookupFailure {
            error: "timeout".into(),
            transient: true,
        });
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"status":"unavailable","error":"timeout","transient":true}"#
        );
        assert!(info.is_transient_failure());
    }
}
