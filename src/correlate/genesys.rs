//! The correlation adapter backed by the Genesys Cloud Analytics API, with a bounded
//! per-process cache so a warm Lambda container never looks the same conversation up twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{Correlate, InteractionInfo};
use crate::genesys::Endpoints;
use crate::genesys::{AnalyticsClient, AnalyticsConfig, Lookup};
use crate::genesys::{ClientCredentials, TokenSource};

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

/// Builds Genesys correlators that share one HTTP client and one conversation cache: the
/// Lambda one per secret it reads (a rotated secret gets a new one, the cache stays), the
/// CLI one per run.
#[derive(Debug)]
pub(crate) struct Connector {
    http: reqwest::Client,
    analytics: AnalyticsConfig,
    cache: Arc<ConversationCache>,
}

impl Connector {
    /// Correlators with `analytics`'s tuning, remembering up to `cache_capacity`
    /// conversations between them.
    pub(crate) fn new(analytics: AnalyticsConfig, cache_capacity: usize) -> Connector {
        Connector {
            http: crate::http::client(),
            analytics,
            cache: Arc::new(ConversationCache::new(cache_capacity, CacheTtl::default())),
        }
    }

    /// A correlator for one OAuth client at `endpoints`.
    pub(crate) fn connect(
        &self,
        endpoints: &Endpoints,
        credentials: ClientCredentials,
    ) -> Arc<GenesysCorrelator> {
        let tokens = Arc::new(TokenSource::new(
            self.http.clone(),
            &endpoints.login_base,
            credentials,
        ));
        let client = AnalyticsClient::new(
            self.http.clone(),
            &endpoints.api_base,
            tokens,
            self.analytics.clone(),
        );
        Arc::new(GenesysCorrelator::new(client, self.cache.clone()))
    }
}

/// Correlation through the Genesys Cloud Analytics API, with the per-process cache.
#[derive(Debug)]
pub struct GenesysCorrelator {
    client: AnalyticsClient,
    cache: Arc<ConversationCache>,
}

impl GenesysCorrelator {
    /// Correlates through `client`, remembering answers in `cache` (shared across
    /// correlators, so a credential rotation keeps it).
    pub fn new(client: AnalyticsClient, cache: Arc<ConversationCache>) -> GenesysCorrelator {
        GenesysCorrelator { client, cache }
    }

    /// Requests sent to Genesys Cloud so far: tokens plus detail look-ups.
    pub fn calls(&self) -> u64 {
        self.client.requests() + self.client.token_requests()
    }
}

impl Correlate for GenesysCorrelator {
    fn correlate<'a>(
        &'a self,
        ids: &'a [String],
        budget: Duration,
    ) -> futures::future::BoxFuture<'a, HashMap<String, InteractionInfo>> {
        Box::pin(async move {
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
                        Lookup::Failed(failure) => InteractionInfo::Unavailable(failure),
                    };
                    self.cache.put(&id, &info);
                    answers.insert(id, info);
                }
            }
            answers
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::ConversationSummary;

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
            &InteractionInfo::Unavailable(crate::correlate::LookupFailure {
                error: "e".into(),
                transient: true,
            }),
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
