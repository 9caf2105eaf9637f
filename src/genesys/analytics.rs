//! Conversation details from the Genesys Cloud Analytics API.
//!
//! `GET /api/v2/analytics/conversations/details?id=a,b,…` in chunks. The server's limit on
//! ids per call is undocumented, so a chunk answered 400 (or too large to read) is split in
//! halves and retried, and the smaller size is remembered for the chunks still to go (and
//! doubled again at the start of each look-up, so a limit learned in a bad moment recovers).
//! Chunks run with bounded concurrency; 429 honours `Retry-After`, else exponential backoff
//! with full jitter; 5xx, timeouts and connection errors are retried; everything stops at
//! the caller's deadline. A bad answer is an error for the ids concerned, never a panic.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio::time::Instant;

use super::auth::{ReadError, TokenSource, describe, read_limited};
use super::conversation::{ConversationSummary, LookupFailure, summarize};

/// The path of the multi-get endpoint, relative to the API base.
pub const DETAILS_PATH: &str = "api/v2/analytics/conversations/details";

/// Tuning of the look-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsConfig {
    /// Ids per request (`GENESYS_CHUNK_SIZE`, default 100).
    pub chunk_size: usize,
    /// Requests in flight at once (`GENESYS_CONCURRENCY`, default 4).
    pub concurrency: usize,
    /// Attempts per chunk before giving up (transient failures only).
    pub max_attempts: u32,
    /// First backoff step; doubles per attempt, with full jitter.
    pub base_backoff: Duration,
    /// Longest backoff step.
    pub max_backoff: Duration,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// A response body larger than this is not read.
    pub max_response_bytes: usize,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            chunk_size: 100,
            concurrency: 4,
            max_attempts: 6,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_response_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The answer for one conversation id.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// The API returned it.
    Found(ConversationSummary),
    /// The API answered without it.
    NotFound,
    /// No answer.
    Failed(LookupFailure),
}

/// A client of the Analytics API.
#[derive(Debug)]
pub struct AnalyticsClient {
    http: reqwest::Client,
    details_url: Url,
    tokens: Arc<TokenSource>,
    config: AnalyticsConfig,
    /// The smallest chunk size the server has forced on us so far.
    learned_limit: AtomicUsize,
    requests: AtomicU64,
}

type Answers = Vec<(String, Lookup)>;

impl AnalyticsClient {
    /// A client of the API at `api_base`, authenticated by `tokens`.
    pub fn new(
        http: reqwest::Client,
        api_base: &Url,
        tokens: Arc<TokenSource>,
        config: AnalyticsConfig,
    ) -> AnalyticsClient {
        AnalyticsClient {
            http,
            details_url: api_base
                .join(DETAILS_PATH)
                .unwrap_or_else(|_| api_base.clone()),
            tokens,
            learned_limit: AtomicUsize::new(config.chunk_size.max(1)),
            config,
            requests: AtomicU64::new(0),
        }
    }

    /// Detail requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Token requests sent so far.
    pub fn token_requests(&self) -> u64 {
        self.tokens.requests()
    }

    /// Looks up distinct conversation ids; every id gets an answer by `deadline`.
    pub async fn lookup(&self, ids: &[String], deadline: Instant) -> HashMap<String, Lookup> {
        // A learned limit may have come from a bad moment or one bad id: each look-up
        // probes twice the learned size (up to the configured one), so the chunk recovers
        // within a few batches, at the cost of one split when the limit is real.
        let configured = self.config.chunk_size.max(1);
        let _ = self
            .learned_limit
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                Some(l.saturating_mul(2).min(configured))
            });
        let mut pending = ids.to_vec();
        let mut answers = HashMap::with_capacity(ids.len());
        // Chunks are cut lazily so that a limit learned from one chunk shrinks the next ones.
        let chunks = futures::stream::poll_fn(move |_| {
            if pending.is_empty() {
                return std::task::Poll::Ready(None);
            }
            let size = self
                .learned_limit
                .load(Ordering::Relaxed)
                .max(1)
                .min(pending.len());
            let rest = pending.split_off(size);
            std::task::Poll::Ready(Some(std::mem::replace(&mut pending, rest)))
        });
        let mut results = chunks
            .map(|chunk| self.fetch_chunk(chunk, deadline))
            .buffer_unordered(self.config.concurrency.max(1));
        while let Some(batch) = results.next().await {
            answers.extend(batch);
        }
        answers
    }

    /// Looks one chunk up: retried with backoff while the deadline allows, split when
    /// refused as too large, one token refresh on 401; what cannot be answered fails with
    /// the reason.
    fn fetch_chunk(
        &self,
        ids: Vec<String>,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Answers> + Send + '_>> {
        Box::pin(async move {
            let mut attempt: u32 = 0;
            let mut refreshed = false;
            loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return fail(
                        &ids,
                        "time budget exhausted before Genesys Cloud answered".into(),
                        true,
                    );
                }
                let outcome = self.request(&ids, remaining).await;
                let (error, retry_after) = match outcome {
                    Attempt::Done(answers) => return answers,
                    Attempt::Split => return self.fetch_in_pieces(ids, deadline).await,
                    Attempt::Unauthorized(token) if !refreshed => {
                        // One refresh per chunk: the token may have been revoked or expired early.
                        refreshed = true;
                        self.tokens.invalidate(&token).await;
                        continue;
                    }
                    Attempt::Unauthorized(_) => {
                        return fail(
                            &ids,
                            "Genesys Cloud rejected a freshly issued token (HTTP 401)".into(),
                            false,
                        );
                    }
                    Attempt::Permanent(error) => return fail(&ids, error, false),
                    Attempt::Retry { error, retry_after } => (error, retry_after),
                };
                attempt += 1;
                if attempt >= self.config.max_attempts {
                    return fail(
                        &ids,
                        format!("{error} (gave up after {attempt} attempts)"),
                        true,
                    );
                }
                let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
                if Instant::now() + wait >= deadline {
                    return fail(&ids, format!("{error} (no time left to retry)"), true);
                }
                tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, %error, "retrying Genesys look-up");
                tokio::time::sleep(wait).await;
            }
        })
    }

    /// A chunk Genesys Cloud refused as too large: the smaller size remembered, then the
    /// chunk looked up in pieces of the size learned so far (a piece may shrink it further).
    async fn fetch_in_pieces(&self, ids: Vec<String>, deadline: Instant) -> Answers {
        self.learned_limit
            .fetch_min((ids.len() / 2).max(1), Ordering::Relaxed);
        let mut answers = Vec::with_capacity(ids.len());
        let mut rest = ids;
        while !rest.is_empty() {
            let size = self
                .learned_limit
                .load(Ordering::Relaxed)
                .max(1)
                .min(rest.len());
            let tail = rest.split_off(size);
            answers.extend(self.fetch_chunk(rest, deadline).await);
            rest = tail;
        }
        answers
    }

    /// Exponential backoff with full jitter: uniform in [0, min(max, base · 2^attempt)].
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .config
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.max_backoff);
        cap.mul_f64(fastrand::f64())
    }

    async fn request(&self, ids: &[String], remaining: Duration) -> Attempt {
        // The token fetch gets no more than the time left either.
        let token = match tokio::time::timeout(remaining, self.tokens.token()).await {
            Err(_) => {
                return Attempt::Retry {
                    error: "the login host did not answer in time".into(),
                    retry_after: None,
                };
            }
            Ok(Ok(t)) => t,
            Ok(Err(e)) if e.is_transient() => {
                return Attempt::Retry {
                    error: e.to_string(),
                    retry_after: None,
                };
            }
            Ok(Err(e)) => return Attempt::Permanent(e.to_string()),
        };
        let mut url = self.details_url.clone();
        url.query_pairs_mut().append_pair("id", &ids.join(","));
        self.requests.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, token.bearer())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.config.request_timeout.min(remaining))
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    error: format!("Genesys Cloud request {}", describe(&e)),
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        match status {
            StatusCode::OK => match read_limited(response, self.config.max_response_bytes).await {
                Ok(body) => match parse_conversations(&body, ids) {
                    Some(answers) => Attempt::Done(answers),
                    None => Attempt::Retry { error: "Genesys Cloud answered with a malformed body".into(), retry_after: None },
                },
                Err(ReadError::TooLarge) if ids.len() > 1 => Attempt::Split,
                Err(ReadError::TooLarge) => Attempt::Permanent(format!(
                    "Genesys Cloud response exceeds {} bytes",
                    self.config.max_response_bytes
                )),
                Err(ReadError::Transport(e)) => Attempt::Retry { error: e, retry_after: None },
            },
            StatusCode::BAD_REQUEST if ids.len() > 1 => Attempt::Split,
            StatusCode::BAD_REQUEST => Attempt::Permanent("Genesys Cloud rejected the id (HTTP 400)".into()),
            StatusCode::UNAUTHORIZED => Attempt::Unauthorized(token),
            StatusCode::FORBIDDEN => Attempt::Permanent(
                "Genesys Cloud refused access (HTTP 403): the OAuth client needs the permission analytics:conversationDetail:view".into(),
            ),
            StatusCode::NOT_FOUND => Attempt::Done(ids.iter().map(|id| (id.clone(), Lookup::NotFound)).collect()),
            StatusCode::TOO_MANY_REQUESTS => Attempt::Retry {
                error: "Genesys Cloud rate limit (HTTP 429)".into(),
                retry_after: retry_after(&response),
            },
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => Attempt::Retry {
                error: format!("Genesys Cloud unavailable (HTTP {})", s.as_u16()),
                retry_after: retry_after(&response),
            },
            s => Attempt::Permanent(format!("Genesys Cloud answered HTTP {}", s.as_u16())),
        }
    }
}

enum Attempt {
    Done(Answers),
    Split,
    Unauthorized(super::auth::AccessToken),
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    Permanent(String),
}

/// `Retry-After` in seconds (the form Genesys sends); HTTP dates are left to the backoff.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// The answers for `ids` from a multi-get body; `None` when the body is not what the API sends.
fn parse_conversations(body: &[u8], ids: &[String]) -> Option<Answers> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let conversations = match object.get("conversations") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => return None,
    };
    let mut by_id: HashMap<String, ConversationSummary> = HashMap::new();
    for c in conversations {
        if let Some(id) = c.get("conversationId").and_then(Value::as_str) {
            by_id.insert(id.to_ascii_lowercase(), summarize(c));
        }
    }
    Some(
        ids.iter()
            .map(|id| {
                let answer = match by_id.remove(&id.to_ascii_lowercase()) {
                    Some(summary) => Lookup::Found(summary),
                    None => Lookup::NotFound,
                };
                (id.clone(), answer)
            })
            .collect(),
    )
}
/// Every id of `ids` failed with `error`.
fn fail(ids: &[String], error: String, transient: bool) -> Answers {
    ids.iter()
        .map(|id| {
            (
                id.clone(),
                Lookup::Failed(LookupFailure {
                    error: error.clone(),
                    transient,
                }),
            )
        })
        .collect()
}
