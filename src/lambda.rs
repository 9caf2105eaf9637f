//! The Lambda handler: an SQS batch in, S3 artifacts out, partial batch failures back.
//!
//! Built once per container ([`Handler::new`]): the SDK clients, the secret cache, the
//! conversation cache. Each invocation converts the records, picks the correlation (skipped
//! without `GENESYS_SECRET_ID`, unavailable with a clear reason when the secret cannot be
//! used, else the Genesys API), runs [`crate::triage::run`] against S3 with the function's
//! deadline, emits one EMF metrics line and answers `batchItemFailures`. Which records go
//! back is decided by the pipeline alone; this module only translates.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Diagnostic, LambdaEvent};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{ConfigError, LambdaConfig};
use crate::correlate::{
    CacheTtl, ConversationCache, Correlation, GenesysCorrelator, LookupFailure, MemoryCorrelator,
};
use crate::dlq::{DeadLetter, DeadLetterBatch, FailureContext, SystemAttributes};
use crate::genesys::resolve_endpoints;
use crate::metrics::InvocationMetrics;
use crate::notify::Notifier;
use crate::report::{Disposition, ReplaySource};
use crate::secrets::{GenesysSecret, SecretCache};
use crate::store::{ArtifactStore, Layout, S3Store};
use crate::targets::{AwsTargets, TargetInputLookup, TargetInputs, failed_targets};
use crate::triage::{self, Outcome, TriageOptions, UnnamedRecords};

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

/// Everything an invocation needs, built once per container. Generic over where
/// artifacts go and how target inputs are looked up, so its rules are tested on the
/// in-memory twins; in production, S3 and EventBridge.
#[derive(Debug)]
pub struct Handler<S = S3Store, T = TargetInputLookup> {
    config: LambdaConfig,
    store: S,
    secrets: Option<SecretCache>,
    http: reqwest::Client,
    cache: Arc<ConversationCache>,
    correlator: Mutex<Option<(Arc<GenesysSecret>, Arc<GenesysCorrelator>)>>,
    function_name: String,
    target_inputs: Option<T>,
    notifier: Option<Notifier>,
}

/// The most an invocation spends looking up how failed targets take their input.
const TARGET_LOOKUP_BUDGET: Duration = Duration::from_secs(2);
/// How long a target's input setting is remembered.
const TARGET_LOOKUP_TTL: Duration = Duration::from_secs(600);
/// The most an invocation waits for the notification bus.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(2);

impl Handler {
    /// A handler over already-built clients: artifacts to S3.
    pub fn new(
        config: LambdaConfig,
        s3: aws_sdk_s3::Client,
        secrets: aws_sdk_secretsmanager::Client,
        function_name: impl Into<String>,
    ) -> Handler {
        let store = S3Store::new(
            s3,
            config.report_bucket.clone(),
            config.sse_kms_key_id.clone(),
        );
        Handler::with_store(config, store, secrets, function_name)
    }
}

impl<S> Handler<S, TargetInputLookup> {
    /// Looks up how each failed target takes its input (`events:ListTargetsByRule`), so
    /// the report says when a replay should go through `--to-target`. Best effort: at most
    /// two seconds per invocation, and an answer (or a refusal) is remembered ten minutes.
    pub fn with_target_lookup(self, targets: AwsTargets) -> Handler<S> {
        self.with_target_inputs(TargetInputLookup::new(targets, TARGET_LOOKUP_TTL))
    }
}

impl<S: ArtifactStore> Handler<S> {
    /// A handler that stores artifacts in `store`; the secret is read through `secrets`
    /// when `GENESYS_SECRET_ID` is configured.
    pub fn with_store(
        config: LambdaConfig,
        store: S,
        secrets: aws_sdk_secretsmanager::Client,
        function_name: impl Into<String>,
    ) -> Handler<S> {
        let secrets = config
            .genesys_secret_id
            .as_ref()
            .map(|id| SecretCache::new(secrets, id.clone(), config.secret_ttl));
        Handler {
            store,
            secrets,
            http: crate::http::client(),
            cache: Arc::new(ConversationCache::new(
                config.cache_capacity,
                CacheTtl::default(),
            )),
            correlator: Mutex::new(None),
            function_name: function_name.into(),
            target_inputs: None,
            notifier: None,
            config,
        }
    }

    /// Puts one event per stored report on `NOTIFY_EVENT_BUS` through `events`; nothing
    /// when that variable is not set.
    pub fn with_notifier(mut self, events: aws_sdk_eventbridge::Client) -> Self {
        self.notifier = self
            .config
            .notify_event_bus
            .clone()
            .map(|bus| Notifier::new(events, bus));
        self
    }
}

impl<S, T> Handler<S, T> {
    /// Looks up target inputs through `lookup` before each run.
    pub fn with_target_inputs<U: TargetInputs>(self, lookup: U) -> Handler<S, U> {
        Handler {
            config: self.config,
            store: self.store,
            secrets: self.secrets,
            http: self.http,
            cache: self.cache,
            correlator: self.correlator,
            function_name: self.function_name,
            target_inputs: Some(lookup),
            notifier: self.notifier,
        }
    }

    /// Where artifacts go.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The secret cache, if a secret is configured.
    pub fn secrets(&self) -> Option<&SecretCache> {
        self.secrets.as_ref()
    }
}

impl<S: ArtifactStore, T: TargetInputs> Handler<S, T> {
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
        let deadline = deadline_instant(context.deadline);
        let correlation = self.correlation(deadline).await;
        let opts = self.options(&letters, &context.request_id, deadline).await;
        // Boxed: the pipeline's future is large (every step's state), and a runtime
        // thread's stack is not the place for it.
        let outcome = Box::pin(triage::run_taking_bodies(
            &mut letters,
            &self.store,
            &correlation,
            &opts,
        ))
        .await;
        log_outcome(&outcome);
        let notified = self.notify(&outcome, deadline).await;
        self.emit_metrics(&outcome, &correlation, started, notified);
        respond(&outcome)
    }

    /// The report's event on the notification bus, when one is configured and the report
    /// was stored: best effort, within two seconds and before the deadline's margin. A
    /// failure is logged and counted; what is acknowledged does not depend on it.
    /// Whether it failed.
    async fn notify(&self, outcome: &Outcome, deadline: Option<Instant>) -> bool {
        let (Some(notifier), Some(keys)) = (&self.notifier, &outcome.report_keys) else {
            return false;
        };
        let left = deadline.map_or(NOTIFY_TIMEOUT, |d| {
            d.saturating_duration_since(Instant::now())
                .saturating_sub(self.config.deadline_margin / 2)
        });
        let bucket = &self.config.report_bucket;
        match notifier
            .announce(&outcome.report, bucket, keys, NOTIFY_TIMEOUT.min(left))
            .await
        {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(error = %e, "the report's event was not put on the notification bus");
                true
            }
        }
    }

    /// The run's options: this function's layout, deadline and settings, and the input
    /// setting of each failed target (looked up within a tenth of the time left).
    async fn options(
        &self,
        letters: &[DeadLetter],
        request_id: &str,
        deadline: Option<Instant>,
    ) -> TriageOptions {
        let mut opts = TriageOptions::new(
            Layout::prefixed(&self.config.report_prefix),
            ReplaySource::Bucket(self.config.report_bucket.clone()),
        );
        opts.report_id = triage::report_id(opts.now, &short_id(request_id));
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
            let pairs = failed_targets(letters);
            opts.target_inputs = lookup.describe(pairs, TARGET_LOOKUP_BUDGET.min(left)).await;
        }
        opts
    }

    /// One CloudWatch EMF line for the invocation, on standard output.
    fn emit_metrics(
        &self,
        outcome: &Outcome,
        correlation: &Correlation,
        started: Instant,
        notify_failed: bool,
    ) {
        let count = outcome.report.records.len();
        let returned = outcome
            .batch_item_failures()
            .map_or(count, |failures| failures.len().min(count));
        let metrics = InvocationMetrics {
            records: count,
            acknowledged: count - returned,
            returned,
            by_category: outcome.report.summary.by_category.clone(),
            genesys_calls: correlation.calls().unwrap_or(0),
            duration_ms: started.elapsed().as_millis() as u64,
            notify_failed: usize::from(notify_failed),
        };
        println!(
            "{}",
            metrics.to_emf(
                &self.config.metrics_namespace,
                &self.function_name,
                chrono::Utc::now().timestamp_millis()
            )
        );
    }

    /// Chooses this invocation's correlation, rebuilding the Genesys client when the secret
    /// changed (rotation) and keeping the conversation cache.
    async fn correlation(&self, deadline: Option<Instant>) -> Correlation {
        let Some(secrets) = &self.secrets else {
            return Correlation::Fixed(MemoryCorrelator::skipped(
                "GENESYS_SECRET_ID is not configured",
            ));
        };
        let unavailable = |error: String, transient| {
            Correlation::Fixed(MemoryCorrelator::unavailable(LookupFailure {
                error,
                transient,
            }))
        };
        // Secrets Manager gets at most SECRET_TIMEOUT, and never the time the records need.
        let limit = deadline.map_or(SECRET_TIMEOUT, |d| {
            SECRET_TIMEOUT.min(
                d.saturating_duration_since(Instant::now())
                    .saturating_sub(self.config.deadline_margin)
                    / 4,
            )
        });
        let secret = match tokio::time::timeout(limit, secrets.get()).await {
            Ok(Ok(secret)) => secret,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "Genesys correlation unavailable");
                return unavailable(e.to_string(), e.transient);
            }
            Err(_) => {
                tracing::error!("Secrets Manager did not answer in time: correlation unavailable");
                return unavailable("Secrets Manager did not answer in time".into(), true);
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
            Err(e) => unavailable(format!("Genesys endpoints: {e}"), false),
        }
    }
}

/// Logs where the report went and why each returned record goes back.
fn log_outcome(outcome: &Outcome) {
    match (&outcome.batch_error, &outcome.report_keys) {
        (Some(e), _) => tracing::error!(error = %e, "returning every record"),
        (None, Some((json, _))) => {
            tracing::info!(report = %json, records = outcome.report.records.len(), returned = outcome.returned.len(), "report stored")
        }
        (None, None) => {}
    }
    for record in &outcome.report.records {
        if let Disposition::Returned { reason } = &record.disposition {
            tracing::warn!(message_id = %record.message_id, %reason, "record returned to the queue");
        }
    }
}

/// The invocation's answer to a run: the returned records as `batchItemFailures`; an
/// error when a returned record cannot be named, or when nothing could be stored for a
/// reason of the function's own (so the outage shows in Lambda's `Errors`).
pub fn respond(outcome: &Outcome) -> Result<SqsBatchResponse, HandlerError> {
    let failures = outcome.batch_item_failures()?;
    if let Some(reason) = outcome.outage() {
        return Err(HandlerError::BatchNotStored(reason));
    }
    let mut response = SqsBatchResponse::default();
    for id in failures {
        response.add_failure(id);
    }
    Ok(response)
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
    use std::collections::BTreeMap;

    use crate::config::lookup_from_pairs;
    use crate::store::MemoryStore;

    const API: &str = "arn:aws:events:us-east-1:111122223333:api-destination/crm-webhook/7e08279e-244f-4443-a5f4-b9c262da4d81";

    /// A handler on the in-memory store, with no secret and no AWS call.
    fn handler() -> Handler<MemoryStore> {
        let config =
            LambdaConfig::from_lookup(&lookup_from_pairs(&[("REPORT_BUCKET", "reports")])).unwrap();
        let secrets = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .build(),
        );
        Handler::with_store(config, MemoryStore::new(), secrets, "test-fn")
    }

    fn mixed_batch() -> LambdaEvent<SqsEvent> {
        let event: SqsEvent =
            serde_json::from_slice(include_bytes!("../events/sqs-mixed-batch.json")).unwrap();
        LambdaEvent::new(event, lambda_runtime::Context::default())
    }

    fn failures(response: &SqsBatchResponse) -> Vec<String> {
        let json = serde_json::to_value(response).unwrap();
        json["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_stored_batch_is_acknowledged_whole_and_its_report_names_target_inputs() {
        let inputs = BTreeMap::from([(API.to_owned(), "InputTransformer".to_owned())]);
        let h = handler().with_target_inputs(inputs);
        let response = h.handle(mixed_batch()).await.unwrap();
        assert_eq!(failures(&response), Vec::<String>::new());
        let keys = h.store().keys();
        let report_key = keys
            .iter()
            .find(|k| k.starts_with("genesys-dlq/reports/") && k.ends_with(".json"))
            .expect("a report");
        let report: serde_json::Value =
            serde_json::from_slice(&h.store().get(report_key).unwrap()).unwrap();
        assert_eq!(report["records"].as_array().unwrap().len(), 20);
        assert_eq!(
            report["summary"]["targetInputs"],
            serde_json::json!({ API: "InputTransformer" })
        );
        assert_eq!(
            keys.iter()
                .filter(|k| k.starts_with("genesys-dlq/replay/"))
                .count(),
            20
        );
    }

    #[tokio::test]
    async fn a_payload_that_cannot_be_stored_is_the_only_failure() {
        let first = mixed_batch().payload.records[0].message_id.clone().unwrap();
        let probe = handler();
        probe.handle(mixed_batch()).await.unwrap();
        let key_of_first = probe
            .store()
            .keys()
            .into_iter()
            .find(|k| k.ends_with(&format!("/{first}.json")))
            .unwrap();
        let h = handler();
        h.store().fail_key(&key_of_first);
        let response = h.handle(mixed_batch()).await.unwrap();
        assert_eq!(failures(&response), vec![first]);
    }

    #[tokio::test]
    async fn no_payload_stored_fails_the_invocation_instead_of_naming_every_record() {
        let h = handler();
        h.store().fail_prefix("genesys-dlq/replay/dt=");
        let e = h.handle(mixed_batch()).await.unwrap_err();
        assert_eq!(e.error_type(), "BatchNotStored");
    }

    #[tokio::test]
    async fn a_report_that_cannot_be_stored_fails_the_invocation() {
        let h = handler();
        h.store().fail_prefix("genesys-dlq/reports/");
        let e = h.handle(mixed_batch()).await.unwrap_err();
        assert_eq!(e.error_type(), "BatchNotStored");
        assert!(e.to_string().contains("could not write the report"), "{e}");
    }

    #[tokio::test]
    async fn a_returned_record_without_an_id_fails_the_whole_batch() {
        let mut event = mixed_batch();
        event.payload.records[2].message_id = None;
        let h = handler();
        h.store().fail_prefix("genesys-dlq/replay/dt=");
        let e = h.handle(event).await.unwrap_err();
        assert_eq!(e.error_type(), "UnnamedRecords");
    }

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
