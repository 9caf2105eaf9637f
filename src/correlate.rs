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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::genesys::analytics::{AnalyticsClient, Lookup};
use crate::triage::Correlate;

/// How long answers stay in the per-process cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheTtl {
    /// A conversation that has ended no longer changes much.
    pub ended: Duration,
    /// One still in progress may end soon.
    pub in_progress: Duration,
    /// Not found yet (analytics lag): try again after this.
    pub not_found: Duration,
}

impl Default for CacheTtl {
    fn default() -> Self {
        CacheTtl {
            ended: Duration::from_secs(6 * 3600),
            in_progress: Duration::from_secs(120),
            not_found: Duration::from_secs(60),
        }
    }
}

/// A bounded per-process cache of answers, so a warm Lambda container never looks up the
/// same conversation twice. Oldest entries are evicted first.
#[derive(Debug)]
pub struct ConversationCache {
    capacity: usize,
    ttl: CacheTtl,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    entries: HashMap<String, (InteractionInfo, Instant)>,
    order: VecDeque<String>,
}

impl ConversationCache {
    /// A cache holding at most `capacity` conversations.
    pub fn new(capacity: usize, ttl: CacheTtl) -> ConversationCache {
        ConversationCache {
            capacity,
            ttl,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    /// The cached answer for `id`, if still fresh.
    pub fn get(&self, id: &str) -> Option<InteractionInfo> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .entries
            .get(id)
            .filter(|(_, expires)| Instant::now() < *expires)
            .map(|(info, _)| info.clone())
    }

    /// Remembers an answer; failures are never cached.
    pub fn put(&self, id: &str, info: &InteractionInfo) {
        let ttl = match info {
            InteractionInfo::Found(c) if c.conversation_end.is_some() => self.ttl.ended,
            InteractionInfo::Found(_) => self.ttl.in_progress,
            InteractionInfo::NotFound => self.ttl.not_found,
            _ => return,
        };
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = inner
            .entries
            .insert(id.to_owned(), (info.clone(), Instant::now() + ttl))
            .is_none();
        if fresh {
            inner.order.push_back(id.to_owned());
        }
        while inner.entries.len() > self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.entries.remove(&old);
                }
                None => break,
            }
        }
    }

    /// How many conversations are cached.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Correlation through the Genesys Cloud Analytics API, with the per-process cache.
#[derive(Debug)]
pub struct Correlator {
    client: AnalyticsClient,
    cache: Arc<ConversationCache>,
}

impl Correlator {
    /// Correlates through `client`, remembering answers in `cache` (shared across
    /// correlators, so a credential rotation keeps it).
    pub fn new(client: AnalyticsClient, cache: Arc<ConversationCache>) -> Correlator {
        Correlator { client, cache }
    }

    /// A correlator for one OAuth client at `endpoints`.
    pub fn connect(
        http: reqwest::Client,
        endpoints: &crate::genesys::region::Endpoints,
        credentials: crate::genesys::auth::ClientCredentials,
        config: crate::genesys::analytics::AnalyticsConfig,
        cache: Arc<ConversationCache>,
    ) -> Correlator {
        let tokens = Arc::new(crate::genesys::auth::TokenSource::new(
            http.clone(),
            &endpoints.login_base,
            credentials,
        ));
        Correlator::new(
            AnalyticsClient::new(http, &endpoints.api_base, tokens, config),
            cache,
        )
    }

    /// Requests sent to Genesys Cloud so far: tokens plus detail look-ups.
    pub fn calls(&self) -> u64 {
        self.client.requests() + self.client.token_requests()
    }
}

impl Correlate for Correlator {
    async fn correlate(
        &self,
        ids: &[String],
        budget: Duration,
    ) -> HashMap<String, InteractionInfo> {
        let deadline = Instant::now() + budget;
        let mut answers = HashMap::with_capacity(ids.len());
        let mut misses = Vec::new();
        for id in ids {
            match self.cache.get(id) {
                Some(info) => {
                    answers.insert(id.clone(), info);
                }
                None => misses.push(id.clone()),
            }
        }
        if !misses.is_empty() {
            for (id, lookup) in self.client.lookup(&misses, deadline).await {
                let info = match lookup {
                    Lookup::Found(summary) => InteractionInfo::Found(Box::new(summary)),
                    Lookup::NotFound => InteractionInfo::NotFound,
                    Lookup::Failed { error, transient } => {
                        InteractionInfo::Unavailable { error, transient }
                    }
                };
                self.cache.put(&id, &info);
                answers.insert(id, info);
            }
        }
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(end: Option<&str>) -> InteractionInfo {
        InteractionInfo::Found(Box::new(ConversationSummary {
            conversation_end: end.map(str::to_owned),
            ..ConversationSummary::default()
        }))
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_oldest() {
        let cache = ConversationCache::new(2, CacheTtl::default());
        cache.put("a", &found(Some("x")));
        cache.put("b", &found(Some("x")));
        cache.put("c", &found(Some("x")));
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a").is_none());
        assert!(cache.get("c").is_some());
    }

    #[test]
    fn failures_are_never_cached() {
        let cache = ConversationCache::new(10, CacheTtl::default());
        cache.put(
            "a",
            &InteractionInfo::Unavailable {
                error: "e".into(),
                transient: true,
            },
        );
        cache.put("b", &InteractionInfo::Skipped { reason: "r".into() });
        assert!(cache.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_by_kind() {
        let ttl = CacheTtl {
            ended: Duration::from_secs(100),
            in_progress: Duration::from_secs(10),
            not_found: Duration::from_secs(1),
        };
        let cache = ConversationCache::new(10, ttl);
        cache.put("ended", &found(Some("x")));
        cache.put("live", &found(None));
        cache.put("missing", &InteractionInfo::NotFound);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(cache.get("missing").is_none());
        assert!(cache.get("live").is_some());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(cache.get("live").is_none());
        assert!(cache.get("ended").is_some());
    }
}
