//! The Lambda handler: an SQS batch in, S3 artifacts out, partial batch failures back.
//!
//! Built once per container ([`Handler::from_sdk`]): the triage service over S3, the secret
//! source, the Genesys connector and its conversation cache. Each invocation converts the
//! records, picks the correlation (skipped without `GENESYS_SECRET_ID`, unavailable with a
//! clear reason when the secret cannot be used, else the Genesys API), hands the batch to
//! the triage service ([`crate::service::TriageService::triage`]) with the function's
//! deadline, emits one EMF metrics line and answers `batchItemFailures`. Which records go
//! back is decided by the pipeline alone; this module only translates.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Diagnostic, LambdaEvent};
use tokio::sync::Mutex;
use tokio::time::Instant;

use chrono::{DateTime, Utc};

use crate::artifacts::Layout;
use crate::config::{ConfigError, LambdaConfig};
use crate::correlate::{
    Connector, Correlation, GenesysCorrelator, LookupFailure, MemoryCorrelator,
};
use crate::dlq::{DeadLetter, DeadLetterBatch, FailureContext, Invocation, SystemAttributes};
use crate::doctor::{Announced, ScheduledAudit};
use crate::genesys::{Endpoints, RegionError, resolve_endpoints};
use crate::health::GenesysAccess;
use crate::incidents::Stored;
use crate::metrics::InvocationMetrics;
use crate::redrive::{RedriveMode, Redriver, Worked, wiring};
use crate::report::ReplaySource;
use crate::reports::ReportArg;
use crate::secrets::{GenesysSecret, SecretSource};
use crate::service::{ArtifactsAt, PortSettings, Services, TriageService, Triaged};
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
    /// The scheduled sweep could not use the incident table for some incidents (or at
    /// all): an error, so Lambda's `Errors` metric and its alarm see a sweep that fails.
    #[error("incident sweep: {failed} incident(s) or listing(s) failed ({resolved} resolved)")]
    SweepFailed {
        /// Incidents resolved.
        resolved: usize,
        /// What failed.
        failed: usize,
    },
}

impl HandlerError {
    /// The error type the runtime reports.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::InvalidConfiguration(_) => "InvalidConfiguration",
            HandlerError::UnnamedRecords(_) => "UnnamedRecords",
            HandlerError::BatchNotStored(_) => "BatchNotStored",
            HandlerError::SweepFailed { .. } => "SweepFailed",
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

/// Everything an invocation needs, built once per container: the triage service over its
/// ports (where the Genesys secret comes from among them), and the correlators built from
/// the secret. Its rules are tested on the ports' in-memory twins; in production, S3,
/// EventBridge, DynamoDB and Secrets Manager ([`Handler::from_sdk`]).
pub struct Handler {
    config: LambdaConfig,
    service: TriageService,
    connector: Connector,
    correlator: Mutex<Option<(Arc<GenesysSecret>, Arc<GenesysCorrelator>)>>,
    function_name: String,
    /// The daily audit (`None`: handlers built on twins have none).
    doctor: Option<ScheduledAudit>,
    /// What time it is (the tests' storm runs on a clock of its own).
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// The redrive (`REDRIVE=auto` with an incident table), worked by each sweep.
    redrive: Option<Arc<Redriver>>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("function_name", &self.function_name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What an invocation answers: the batch's `batchItemFailures`, or what a sweep did.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Response {
    /// For an SQS batch.
    Batch(SqsBatchResponse),
    /// For the scheduled sweep.
    Sweep {
        /// Incidents resolved.
        resolved: usize,
        /// Resolutions the table did not take.
        failed: usize,
    },
    /// For the daily audit.
    Doctor(Announced),
}

/// The longest wait for the Genesys secret.
const SECRET_TIMEOUT: Duration = Duration::from_secs(10);

impl Handler {
    /// The production handler from one SDK configuration: artifacts to S3 (path-style
    /// addressing with `path_style`), the secret from Secrets Manager when
    /// `GENESYS_SECRET_ID` is set, target inputs from EventBridge (`ListTargetsByRule`,
    /// best effort), and each stored report announced on `NOTIFY_EVENT_BUS` when set.
    pub fn from_sdk(
        config: LambdaConfig,
        sdk: &aws_config::SdkConfig,
        path_style: bool,
        function_name: impl Into<String>,
    ) -> Handler {
        let service =
            TriageService::new(Services::from_sdk(sdk, &port_settings(&config, path_style)));
        let function_name = function_name.into();
        let doctor = ScheduledAudit {
            sdk: sdk.clone(),
            function: function_name.clone(),
            notify_bus: config.notify_event_bus.clone(),
            table: config.incident_table.clone(),
            timeout: crate::doctor::CALL_TIMEOUT,
        };
        let redrive = config
            .incident_table
            .as_ref()
            .filter(|_| config.redrive.mode == RedriveMode::Auto)
            .map(|table| {
                let reports = ReportArg::Prefix {
                    bucket: config.report_bucket.clone(),
                    prefix: config.report_prefix.clone(),
                };
                let bus = config.notify_event_bus.clone();
                let policy = config.redrive.clone();
                Arc::new(wiring::build(policy, table, reports, bus, sdk, path_style))
            });
        let mut handler = Handler::new(config, service, function_name).with_redrive(redrive);
        handler.doctor = Some(doctor);
        handler
    }
}

/// The ports the function's configuration asks for: artifacts in `REPORT_BUCKET` below
/// `REPORT_PREFIX`, target inputs looked up, announcements on `NOTIFY_EVENT_BUS`, incidents
/// in `INCIDENT_TABLE`, the secret `GENESYS_SECRET_ID`.
fn port_settings(config: &LambdaConfig, path_style: bool) -> PortSettings {
    PortSettings {
        target_inputs: true,
        notify_event_bus: config.notify_event_bus.clone(),
        incident_table: config.incident_table.clone(),
        incidents: config.incidents,
        genesys_secret: (config.genesys_secret_id.clone()).map(|id| (id, config.secret_ttl)),
        ..PortSettings::at(ArtifactsAt::S3 {
            bucket: config.report_bucket.clone(),
            prefix: config.report_prefix.clone(),
            sse_kms_key_id: config.sse_kms_key_id.clone(),
            path_style,
        })
    }
}

impl Handler {
    /// A handler over `service` (the Genesys secret read through its `secrets` port;
    /// `None`: correlation is skipped).
    pub fn new(
        config: LambdaConfig,
        service: TriageService,
        function_name: impl Into<String>,
    ) -> Handler {
        Handler {
            connector: Connector::new(config.analytics.clone(), config.cache_capacity),
            service,
            correlator: Mutex::new(None),
            function_name: function_name.into(),
            doctor: None,
            config,
            clock: Arc::new(Utc::now),
            redrive: None,
        }
    }

    /// Redrives through `redriver` at each sweep.
    pub(crate) fn with_redrive(mut self, redriver: Option<Arc<Redriver>>) -> Self {
        self.redrive = redriver;
        self
    }

    /// Tells the time by `clock` instead of the system's: the report's time, and the
    /// incidents' update interval and quiet period.
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        if let Some(redrive) = &self.redrive {
            redrive.set_clock(self.clock.clone());
        }
        self
    }

    /// Where the secret comes from, if a secret is configured.
    pub fn secrets(&self) -> Option<&dyn SecretSource> {
        self.service.secrets().map(|s| &**s)
    }

    /// Handles one invocation as the function binary receives it: an SQS batch, or the
    /// scheduled sweep of quiet incidents.
    pub async fn handle_invocation(
        &self,
        event: LambdaEvent<Invocation>,
    ) -> Result<Response, HandlerError> {
        let LambdaEvent { payload, context } = event;
        match payload {
            Invocation::Batch(batch) => {
                Box::pin(self.handle_batch(LambdaEvent::new(batch, context)))
                    .await
                    .map(Response::Batch)
            }
            Invocation::Scheduled => match self.sweep(deadline_instant(context.deadline)).await {
                Response::Sweep { resolved, failed } if failed > 0 => {
                    Err(HandlerError::SweepFailed { resolved, failed })
                }
                response => Ok(response),
            },
            Invocation::Doctor => Ok(self.doctor(deadline_instant(context.deadline)).await),
        }
    }

    /// The daily audit: each new finding announced on `NOTIFY_EVENT_BUS`, within the
    /// deadline (less a margin to answer).
    pub async fn doctor(&self, deadline: Option<Instant>) -> Response {
        let Some(doctor) = &self.doctor else {
            return Response::Doctor(Announced::default());
        };
        let budget = deadline.map_or(Duration::from_secs(600), |d| {
            d.saturating_duration_since(Instant::now())
                .saturating_sub(Duration::from_secs(2))
        });
        let genesys = self.genesys_access(deadline).await;
        let done = doctor.run(genesys.as_ref(), (self.clock)(), budget).await;
        tracing::info!(
            findings = done.findings,
            announced = done.announced,
            failed = done.failed,
            "doctor run"
        );
        Response::Doctor(done)
    }

    /// Resolves the incidents that have gone quiet and puts the transitions left
    /// unannounced; what it did (`failed` > 0: the invocation answers an error).
    pub async fn sweep(&self, deadline: Option<Instant>) -> Response {
        let opts = self.options("sweep", deadline);
        let genesys = self.genesys_access(deadline).await;
        let swept = self.service.sweep(opts.now, &opts, genesys.as_ref()).await;
        let redriven = self.redrive(&swept.resolved_keys, opts.now, deadline).await;
        tracing::info!(
            started = redriven.started,
            sent = redriven.sent,
            paused = redriven.paused,
            finished = redriven.finished,
            errors = redriven.errors,
            journal_calls = self.redrive.as_ref().map_or(0, |r| r.journal().calls()),
            "redrive"
        );
        tracing::info!(
            resolved = swept.resolved,
            announced = swept.announced,
            failed = swept.failed,
            overdue = swept.overdue,
            "incident sweep"
        );
        let metrics = InvocationMetrics {
            notify_failed: swept.announce_failed,
            incident_update_failed: swept.failed,
            incident_events: swept.announced,
            incident_unannounced: swept.overdue,
            incident_sweep_failed: usize::from(swept.failed > 0),
            ..InvocationMetrics::default()
        };
        self.print_metrics(&metrics);
        Response::Sweep {
            resolved: swept.resolved,
            failed: swept.failed,
        }
    }

    /// The redrive's part of a sweep: the incidents it resolved and those whose runs wait
    /// or are paused are considered, then the running runs are worked until the deadline
    /// (less a margin).
    async fn redrive(
        &self,
        resolved: &[String],
        now: DateTime<Utc>,
        deadline: Option<Instant>,
    ) -> Worked {
        let (Some(redriver), Some(tracker)) = (&self.redrive, self.service.incidents()) else {
            return Worked::default();
        };
        let mut keys: Vec<String> = resolved.to_vec();
        match redriver.journal().active().await {
            Ok(active) => keys.extend(active.into_iter().filter(|k| !resolved.contains(k))),
            Err(e) => tracing::warn!(error = %e, "redrive: active runs not listed"),
        }
        let mut items = Vec::new();
        for key in keys {
            match tracker.table().get(&key).await {
                Ok(Some(Stored::Item(item))) => items.push(*item),
                Ok(_) => {}
                Err(e) => tracing::warn!(incident = %key, error = %e, "redrive: incident not read"),
            }
        }
        let mut worked = redriver.consider(&items, now).await;
        let deadline = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
        let done = redriver.work(deadline).await;
        worked.sent += done.sent;
        worked.paused += done.paused;
        worked.finished += done.finished;
        worked.errors += done.errors;
        worked
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
        let deadline = deadline_instant(context.deadline);
        let correlation = self.correlation(deadline).await;
        let opts = self.options(&context.request_id, deadline);
        let done = self.service.triage(&mut letters, &correlation, opts).await;
        self.emit_metrics(&done, &correlation, started);
        respond(&done.outcome)
    }

    /// The run's options: this function's layout, deadline and settings.
    fn options(&self, request_id: &str, deadline: Option<Instant>) -> TriageOptions {
        let mut opts = TriageOptions::new(
            Layout::prefixed(&self.config.report_prefix),
            ReplaySource::Bucket(self.config.report_bucket.clone()),
        );
        opts.now = (self.clock)();
        opts.report_id = triage::report_id(opts.now, &short_id(request_id));
        opts.deadline = deadline;
        opts.safety_margin = self.config.deadline_margin;
        opts.correlation_budget = self.config.correlation_budget;
        opts.correlation_max_receives = self.config.correlation_max_receives;
        opts.write_concurrency = self.config.s3_concurrency;
        opts.replay_endpoint = self.config.replay_endpoint.clone();
        opts.genesys_domain = self
            .config
            .genesys
            .region
            .as_deref()
            .and_then(|r| crate::genesys::domain_for(r).ok());
        opts
    }

    /// One CloudWatch EMF line for the invocation, on standard output.
    fn emit_metrics(&self, done: &Triaged, correlation: &Correlation, started: Instant) {
        let outcome = &done.outcome;
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
            notify_failed: done.announce_failed,
            incident_update_failed: done.incident_update_failed,
            incident_events: done.incident_events,
            page_not_stored: usize::from(done.page_not_stored()),
            ..InvocationMetrics::default()
        };
        self.print_metrics(&metrics);
    }

    fn print_metrics(&self, metrics: &InvocationMetrics) {
        println!(
            "{}",
            metrics.to_emf(
                &self.config.metrics_namespace,
                &self.function_name,
                chrono::Utc::now().timestamp_millis()
            )
        );
    }

    /// Chooses this invocation's correlation: skipped without a secret, unavailable (with
    /// the reason) when it cannot be read in time, else the Genesys API, through a
    /// correlator rebuilt only when the secret changed (rotation).
    async fn correlation(&self, deadline: Option<Instant>) -> Correlation {
        let Some(secrets) = self.secrets() else {
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
        let secret = match self.secret(secrets, deadline).await {
            Ok(secret) => secret,
            Err((error, transient)) => {
                tracing::error!(%error, "Genesys correlation unavailable");
                return unavailable(error, transient);
            }
        };
        match self.correlator_for(secret).await {
            Ok(correlator) => Correlation::Genesys(correlator),
            Err(e) => unavailable(format!("Genesys endpoints: {e}"), false),
        }
    }

    /// The Genesys secret, within [`SECRET_TIMEOUT`] and never the time the records need;
    /// why not (and whether it may work later).
    async fn secret(
        &self,
        secrets: &dyn SecretSource,
        deadline: Option<Instant>,
    ) -> Result<Arc<GenesysSecret>, (String, bool)> {
        let limit = deadline.map_or(SECRET_TIMEOUT, |d| {
            SECRET_TIMEOUT.min(
                d.saturating_duration_since(Instant::now())
                    .saturating_sub(self.config.deadline_margin)
                    / 4,
            )
        });
        match tokio::time::timeout(limit, secrets.secret()).await {
            Ok(Ok(secret)) => Ok(secret),
            Ok(Err(e)) => Err((e.to_string(), e.transient)),
            Err(_) => Err(("Secrets Manager did not answer in time".into(), true)),
        }
    }

    /// The Genesys OAuth client and its endpoints, for the sweep's `resolved` events to say
    /// the integration's state; `None` without a usable secret.
    async fn genesys_access(&self, deadline: Option<Instant>) -> Option<GenesysAccess> {
        let secret = self.secret(self.secrets()?, deadline).await.ok()?;
        let endpoints = self.endpoints_for(&secret).ok()?;
        Some((secret.credentials.clone(), endpoints))
    }

    /// Where Genesys Cloud is for `secret`: explicit endpoint overrides in the environment
    /// win; then the secret's own location; then `GENESYS_REGION`.
    fn endpoints_for(&self, secret: &GenesysSecret) -> Result<Endpoints, RegionError> {
        let g = &self.config.genesys;
        resolve_endpoints(
            secret.region.as_deref().or(g.region.as_deref()),
            g.api_base.as_deref().or(secret.api_base.as_deref()),
            g.login_base.as_deref().or(secret.login_base.as_deref()),
        )
    }

    /// The correlator for `secret`: the current one, or a new one when the secret changed.
    async fn correlator_for(
        &self,
        secret: Arc<GenesysSecret>,
    ) -> Result<Arc<GenesysCorrelator>, RegionError> {
        let mut current = self.correlator.lock().await;
        if let Some((known, correlator)) = current.as_ref()
            && **known == *secret
        {
            return Ok(correlator.clone());
        }
        let endpoints = self.endpoints_for(&secret)?;
        let correlator = self
            .connector
            .connect(&endpoints, secret.credentials.clone());
        *current = Some((secret, correlator.clone()));
        Ok(correlator)
    }
}

/// The invocation's answer to a run: the returned records as `batchItemFailures`; an
/// error when a returned record cannot be named, or when nothing could be stored for a
/// reason of the function's own (so the outage shows in Lambda's `Errors`).
pub(crate) fn respond(outcome: &Outcome) -> Result<SqsBatchResponse, HandlerError> {
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

/// Epoch milliseconds of 2001-09-09: anything smaller is not a wall-clock deadline.
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// The context's deadline as an instant; `None` when unset (unit tests). Lambda sends epoch
/// milliseconds; cargo-lambda's emulator sends the remaining time (`600000`), which is taken
/// as relative rather than as a deadline in 1970 that would stop all work.
pub(crate) fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
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

    use crate::artifacts::MemoryStore;
    use crate::config::lookup_from_pairs;
    use crate::notify::MemoryAnnouncer;
    use crate::secrets::SecretError;

    const API: &str = "arn:aws:events:us-east-1:111122223333:api-destination/crm-webhook/7e08279e-244f-4443-a5f4-b9c262da4d81";

    /// A handler on the in-memory twins (no secret, no AWS call), and its store.
    fn handler() -> (Handler, Arc<MemoryStore>) {
        handler_with(BTreeMap::new(), None)
    }

    fn handler_with(
        inputs: BTreeMap<String, String>,
        secret: Option<Result<GenesysSecret, SecretError>>,
    ) -> (Handler, Arc<MemoryStore>) {
        let config =
            LambdaConfig::from_lookup(&lookup_from_pairs(&[("REPORT_BUCKET", "reports")])).unwrap();
        let store = Arc::new(MemoryStore::new());
        let service = TriageService::new(Services {
            target_inputs: Some(Arc::new(inputs)),
            announcer: Some(Arc::new(MemoryAnnouncer::default())),
            secrets: secret.map(|s| Arc::new(s) as Arc<dyn SecretSource>),
            ..Services::new(store.clone())
        });
        (Handler::new(config, service, "test-fn"), store)
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
        let (h, store) = handler_with(inputs, None);
        let response = h.handle(mixed_batch()).await.unwrap();
        assert_eq!(failures(&response), Vec::<String>::new());
        let keys = store.keys();
        let report_key = keys
            .iter()
            .find(|k| k.starts_with("genesys-dlq/reports/") && k.ends_with(".json"))
            .expect("a report");
        let report: serde_json::Value =
            serde_json::from_slice(&store.get(report_key).unwrap()).unwrap();
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
        let (probe, probe_store) = handler();
        probe.handle(mixed_batch()).await.unwrap();
        let key_of_first = probe_store
            .keys()
            .into_iter()
            .find(|k| k.ends_with(&format!("/{first}.json")))
            .unwrap();
        let (h, store) = handler();
        store.fail_key(&key_of_first);
        let response = h.handle(mixed_batch()).await.unwrap();
        assert_eq!(failures(&response), vec![first]);
    }

    #[tokio::test]
    async fn no_payload_stored_fails_the_invocation_instead_of_naming_every_record() {
        let (h, store) = handler();
        store.fail_prefix("genesys-dlq/replay/dt=");
        let e = h.handle(mixed_batch()).await.unwrap_err();
        assert_eq!(e.error_type(), "BatchNotStored");
    }

    #[tokio::test]
    async fn a_report_that_cannot_be_stored_fails_the_invocation() {
        let (h, store) = handler();
        store.fail_prefix("genesys-dlq/reports/");
        let e = h.handle(mixed_batch()).await.unwrap_err();
        assert_eq!(e.error_type(), "BatchNotStored");
        assert!(e.to_string().contains("could not write the report"), "{e}");
    }

    #[tokio::test]
    async fn a_returned_record_without_an_id_fails_the_whole_batch() {
        let mut event = mixed_batch();
        event.payload.records[2].message_id = None;
        let (h, store) = handler();
        store.fail_prefix("genesys-dlq/replay/dt=");
        let e = h.handle(event).await.unwrap_err();
        assert_eq!(e.error_type(), "UnnamedRecords");
    }

    /// A secret that cannot be used makes correlation unavailable, never a failed batch: a
    /// configuration problem archives the records without it; a transient one returns
    /// the records that name a conversation, for another try.
    #[tokio::test]
    async fn a_secret_that_cannot_be_read_makes_correlation_unavailable() {
        let refused = |transient| SecretError {
            secret_id: "genesys/prod".into(),
            message: "the function's role lacks secretsmanager:GetSecretValue on it".into(),
            transient,
        };
        let (h, _) = handler_with(BTreeMap::new(), Some(Err(refused(false))));
        let response = h.handle(mixed_batch()).await.unwrap();
        assert_eq!(failures(&response), Vec::<String>::new());

        let (h, _) = handler_with(BTreeMap::new(), Some(Err(refused(true))));
        let returned = failures(&h.handle(mixed_batch()).await.unwrap());
        let with_conversation = mixed_batch()
            .payload
            .records
            .iter()
            .filter(|r| {
                let letter = letter_of(0, r, r.body.clone().unwrap_or_default());
                letter
                    .event
                    .as_ref()
                    .is_some_and(|e| e.conversation_id().is_some())
            })
            .count();
        assert!(with_conversation > 0);
        assert_eq!(returned.len(), with_conversation);
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
