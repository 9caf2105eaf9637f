//! The Lambda handler: an SQS batch in, S3 artifacts out, partial batch failures back.
//!
//! Built once per container ([`Handler::new`]): the SDK clients, the secret cache, the
//! conversation cache. Each invocation converts the records, picks the correlation (skipped
//! without `GENESYS_SECRET_ID`, unavailable with a clear reason when the secret cannot be
//! used, else the Genesys API), runs [`crate::triage::run`] against S3 with the function's
//! deadline, emits one EMF metrics line and answers `batchItemFailures`. Which records go
//! back is decided by the pipeline alone; this module only translates.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Diagnostic, LambdaEvent};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{ConfigError, LambdaConfig};
use crate::correlate::{
    CacheTtl, ConversationCache, Correlate, GenesysCorrelator, InteractionInfo, LookupFailure,
    MemoryCorrelator,
};
use crate::dlq::{DeadLetter, DeadLetterBatch, FailureContext, SystemAttributes};
use crate::genesys::resolve_endpoints;
use crate::metrics::InvocationMetrics;
use crate::replay::{AwsTargets, TargetInputLookup};
use crate::report::{Disposition, ReplaySource};
use crate::secrets::{GenesysSecret, SecretCache};
use crate::store::{Layout, S3Store};
use crate::triage::{self, TriageOptions, UnnamedRecords};

/// Why an invocation failed as a whole. The runtime reports the variant's name as the
/// error type (`InvalidConfiguration`, …), so CloudWatch and the invocation result say
/// what kind of failure it was; SQS keeps every message of the batch either way.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The function's environment is wrong; every invocation fails until it is fixed.
    #[error(transparent)]
    InvalidConfiguration(#[from] ConfigError),
    /// A record to be returned has no message id, so the batch is retried whole.
    #[error(transparent)]
    UnnamedRecords(#[from] UnnamedRecords),
    /// Every record went back for a reason of the function's own (report or payloads not
    /// stored, a panic): an error rather than a full `batchItemFailures`, so Lambda's
    /// `Errors` metric, its alarm and the event source mapping's back-off see the outage.
    /// SQS retries the whole batch either way.
    #[error("nothing of the batch could be stored: {0}")]
    BatchNotStored(String),
}

impl HandlerError {
    /// The error type the runtime reports.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::InvalidConfiguration(_) => "InvalidConfiguration",
            HandlerError::UnnamedRecords(_) => "UnnamedRecords",
            HandlerError::BatchNotStored(_) => "BatchNotStored",
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// Everything an invocation needs, built once per container.
#[derive(Debug)]
pub struct Handler {
    config: LambdaConfig,
    store: S3Store,
    secrets: Option<SecretCache>,
    http: reqwest::Client,
    cache: Arc<ConversationCache>,
    correlator: Mutex<Option<(Arc<GenesysSecret>, Arc<GenesysCorrelator>)>>,
    function_name: String,
    target_inputs: Option<TargetInputLookup>,
}

/// The most an invocation spends looking up how failed targets take their input.
const TARGET_LOOKUP_BUDGET: Duration = Duration::from_secs(2);
/// How long a target's input setting is remembered.
const TARGET_LOOKUP_TTL: Duration = Duration::from_secs(600);

/// How this invocation correlates: a fixed answer (skipped, or unavailable with the
/// reason), or the Genesys API.
enum Correlation {
    Fixed(MemoryCorrelator),
    Genesys(Arc<GenesysCorrelator>),
}

impl Correlate for Correlation {
    async fn correlate(
        &self,
        ids: &[String],
        budget: Duration,
    ) -> HashMap<String, InteractionInfo> {
        match self {
            Correlation::Fixed(fixed) => fixed.correlate(ids, budget).await,
            Correlation::Genesys(c) => c.correlate(ids, budget).await,
        }
    }
}

impl Handler {
    /// A handler over already-built clients.
    pub fn new(
        config: LambdaConfig,
        s3: aws_sdk_s3::Client,
        secrets: aws_sdk_secretsmanager::Client,
        function_name: impl Into<String>,
    ) -> Handler {
        let secrets = config
            .genesys_secret_id
            .as_ref()
            .map(|id| SecretCache::new(secrets, id.clone(), config.secret_ttl));
        Handler {
            store: S3Store::new(
                s3,
                config.report_bucket.clone(),
                config.sse_kms_key_id.clone(),
            ),
            secrets,
            http: reqwest::Client::builder()
                .user_agent(concat!("genesys-dlq-triage/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            cache: Arc::new(ConversationCache::new(
                config.cache_capacity,
                CacheTtl::default(),
            )),
            correlator: Mutex::new(None),
            function_name: function_name.into(),
            target_inputs: None,
            config,
        }
    }

    /// Looks up how each failed target takes its input (`events:ListTargetsByRule`), so
    /// the report says when a replay should go through `--to-target`. Best effort: at most
    /// two seconds per invocation, and an answer (or a refusal) is remembered ten minutes.
    pub fn with_target_lookup(mut self, targets: AwsTargets) -> Handler {
        self.target_inputs = Some(TargetInputLookup::new(targets, TARGET_LOOKUP_TTL));
        self
    }

    /// The secret cache, if a secret is configured.
    pub fn secrets(&self) -> Option<&SecretCache> {
        self.secrets.as_ref()
    }

    /// Handles one SQS batch given as the typed event (tests, and callers that have one).
    pub async fn handle(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, HandlerError> {
        let LambdaEvent { payload, context } = event;
        // Each body moves into its dead letter: the batch is never held twice.
        let letters: Vec<DeadLetter> = payload
            .records
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                let body = r.body.take().unwrap_or_default();
                letter_of(i, &r, body)
            })
            .collect();
        // Boxed: the whole pipeline's state lives on the heap, not on the caller's stack.
        Box::pin(self.handle_batch(LambdaEvent::new(DeadLetterBatch(letters), context))).await
    }

    /// Handles one SQS batch deserialized straight into dead letters (what the function
    /// binary does: no typed event in between, and no record shape can fail the batch).
    pub async fn handle_batch(
        &self,
        event: LambdaEvent<DeadLetterBatch>,
    ) -> Result<SqsBatchResponse, HandlerError> {
        let started = Instant::now();
        let LambdaEvent { payload, context } = event;
        let mut letters = payload.0;
        let count = letters.len();

        let deadline = deadline_instant(context.deadline);
        let correlation = self.correlation(deadline).await;
        let mut opts = TriageOptions::new(
            Layout::prefixed(&self.config.report_prefix),
            ReplaySource::Bucket(self.config.report_bucket.clone()),
        );
        opts.report_id = triage::report_id(opts.now, &short_id(&context.request_id));
        opts.deadline = deadline;
        opts.safety_margin = self.config.deadline_margin;
        opts.correlation_budget = self.config.correlation_budget;
        opts.correlation_max_receives = self.config.correlation_max_receives;
        opts.write_concurrency = self.config.s3_concurrency;
        opts.replay_endpoint = self.config.replay_endpoint.clone();
        if let Some(lookup) = &self.target_inputs {
            let left = deadline.map_or(TARGET_LOOKUP_BUDGET, |d| {
                d.saturating_duration_since(Instant::now()) / 10
            });
            let pairs = letters
                .iter()
                .filter_map(|l| Some((l.failure.rule_arn.clone()?, l.failure.target_arn.clone()?)));
            opts.target_inputs = lookup.describe(pairs, TARGET_LOOKUP_BUDGET.min(left)).await;
        }

        // Boxed: the pipeline's future is large (every step's state), and a runtime
        // thread's stack is not the place for it.
        let outcome = Box::pin(triage::run_taking_bodies(
            &mut letters,
            &self.store,
            &correlation,
            &opts,
        ))
        .await;
        match (&outcome.batch_error, &outcome.report_keys) {
            (Some(e), _) => tracing::error!(error = %e, "returning every record"),
            (None, Some((json, _))) => {
                tracing::info!(report = %json, records = count, returned = outcome.returned.len(), "report stored")
            }
            (None, None) => {}
        }
        for record in &outcome.report.records {
            if let Disposition::Returned { reason } = &record.disposition {
                tracing::warn!(message_id = %record.message_id, %reason, "record returned to the queue");
            }
        }
        let failures = outcome.batch_item_failures()?;

        let metrics = InvocationMetrics {
            records: count,
            acknowledged: count - failures.len().min(count),
            returned: failures.len(),
            by_category: outcome.report.summary.by_category.clone(),
            genesys_calls: match &correlation {
                Correlation::Genesys(c) => c.calls(),
                Correlation::Fixed(_) => 0,
            },
            duration_ms: started.elapsed().as_millis() as u64,
        };
        println!(
            "{}",
            metrics.to_emf(
                &self.config.metrics_namespace,
                &self.function_name,
                chrono::Utc::now().timestamp_millis()
            )
        );
        if let Some(reason) = outcome.outage() {
            return Err(HandlerError::BatchNotStored(reason));
        }
        let mut response = SqsBatchResponse::default();
        for id in failures {
            response.add_failure(id);
        }
        Ok(response)
    }

    /// Chooses this invocation's correlation, rebuilding the Genesys client when the secret
    /// changed (rotation) and keeping the conversation cache.
    async fn correlation(&self, deadline: Option<Instant>) -> Correlation {
        let Some(secrets) = &self.secrets else {
            return Correlation::Fixed(MemoryCorrelator::skipped(
                "GENESYS_SECRET_ID is not configured",
            ));
        };
        // Secrets Manager gets at most SECRET_TIMEOUT, and never the time the records need.
        let limit = deadline.map_or(SECRET_TIMEOUT, |d| {
            SECRET_TIMEOUT.min(
                d.saturating_duration_since(Instant::now())
                    .saturating_sub(self.config.deadline_margin)
                    / 4,
            )
        });
        let read = match tokio::time::timeout(limit, secrets.get()).await {
            Ok(read) => read,
            Err(_) => {
                tracing::error!("Secrets Manager did not answer in time: correlation unavailable");
                return Correlation::Fixed(MemoryCorrelator::unavailable(LookupFailure {
                    error: "Secrets Manager did not answer in time".into(),
                    transient: true,
                }));
            }
        };
        let secret = match read {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "Genesys correlation unavailable");
                return Correlation::Fixed(MemoryCorrelator::unavailable(LookupFailure {
                    error: e.to_string(),
                    transient: e.transient,
                }));
            }
        };
        let mut current = self.correlator.lock().await;
        if let Some((known, correlator)) = current.as_ref()
            && **known == *secret
        {
            return Correlation::Genesys(correlator.clone());
        }
        let g = &self.config.genesys;
        // Explicit endpoint overrides in the environment win; then the secret's own
        // location; then GENESYS_REGION.
        let endpoints = resolve_endpoints(
            secret.region.as_deref().or(g.region.as_deref()),
            g.api_base.as_deref().or(secret.api_base.as_deref()),
            g.login_base.as_deref().or(secret.login_base.as_deref()),
        );
        match endpoints {
            Ok(endpoints) => {
                let correlator = Arc::new(GenesysCorrelator::connect(
                    self.http.clone(),
                    &endpoints,
                    secret.credentials.clone(),
                    self.config.analytics.clone(),
                    self.cache.clone(),
                ));
                *current = Some((secret, correlator.clone()));
                Correlation::Genesys(correlator)
            }
            Err(e) => Correlation::Fixed(MemoryCorrelator::unavailable(LookupFailure {
                error: format!("Genesys endpoints: {e}"),
                transient: false,
            })),
        }
    }
}

/// The longest wait for the Genesys secret.
const SECRET_TIMEOUT: Duration = Duration::from_secs(10);

/// Epoch milliseconds of 2001-09-09: anything smaller is not a wall-clock deadline.
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// The context's deadline as an instant; `None` when unset (unit tests). Lambda sends epoch
/// milliseconds; cargo-lambda's emulator sends the remaining time (`600000`), which is taken
/// as relative rather than as a deadline in 1970 that would stop all work.
pub fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let remaining = if deadline_ms < EPOCH_MS_FLOOR {
        deadline_ms
    } else {
        deadline_ms.saturating_sub(chrono::Utc::now().timestamp_millis().max(0) as u64)
    };
    Some(Instant::now() + Duration::from_millis(remaining))
}

fn short_id(request_id: &str) -> String {
    let id: String = request_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    if id.is_empty() {
        format!("{:08x}", fastrand::u32(..))
    } else {
        id
    }
}

/// A Lambda SQS record as a [`DeadLetter`].
pub fn to_dead_letter(index: usize, m: &SqsMessage) -> DeadLetter {
    letter_of(index, m, m.body.clone().unwrap_or_default())
}

/// The dead letter of `m` with `body` (taken out of the message by the handler).
fn letter_of(index: usize, m: &SqsMessage, body: String) -> DeadLetter {
    let system = |name: &str| m.attributes.get(name).map(String::as_str);
    DeadLetter::new(
        index,
        m.message_id.clone(),
        body,
        SystemAttributes {
            receive_count: system("ApproximateReceiveCount"),
            sent_timestamp: system("SentTimestamp"),
            message_group_id: system("MessageGroupId"),
        },
        FailureContext::from_lookup(|name| {
            m.message_attributes
                .get(name)
                .and_then(|a| a.string_value.clone())
        }),
        m.event_source_arn.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_in_epoch_ms_and_as_durations_both_work() {
        let now_ms = chrono::Utc::now().timestamp_millis() as u64;
        let in_10s = deadline_instant(now_ms + 10_000).unwrap();
        let left = in_10s.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(8) && left <= Duration::from_secs(10),
            "{left:?}"
        );
        let relative = deadline_instant(600_000).unwrap();
        assert!(relative.saturating_duration_since(Instant::now()) > Duration::from_secs(590));
        assert!(deadline_instant(now_ms - 1).unwrap() <= Instant::now());
        assert_eq!(deadline_instant(0), None);
    }
}
