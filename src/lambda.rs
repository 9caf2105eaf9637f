//! The Lambda handler: an SQS batch in, S3 artifacts out, partial batch failures back.
//!
//! Built once per container ([`Handler::new`]): the SDK clients, the secret cache, the
//! conversation cache. Each invocation converts the records, picks the correlation (skipped
//! without `GENESYS_SECRET_ID`, unavailable with a clear reason when the secret cannot be
//! used, else the Genesys API), runs [`crate::triage::run`] against S3 with the function's
//! deadline, emits one EMF metrics line and answers `batchItemFailures`.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::FutureExt;
use lambda_runtime::LambdaEvent;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::LambdaConfig;
use crate::correlate::{CacheTtl, ConversationCache, Correlator, InteractionInfo};
use crate::dlq::{DeadLetter, FailureAttributes, SystemAttributes};
use crate::genesys::region;
use crate::metrics::InvocationMetrics;
use crate::report::ReplaySource;
use crate::secrets::{GenesysSecret, SecretCache};
use crate::store::Layout;
use crate::store::s3::S3Store;
use crate::triage::{self, Correlate, SkipCorrelation, TriageOptions};

/// Everything an invocation needs, built once per container.
#[derive(Debug)]
pub struct Handler {
    config: LambdaConfig,
    store: S3Store,
    secrets: Option<SecretCache>,
    http: reqwest::Client,
    cache: Arc<ConversationCache>,
    correlator: Mutex<Option<(Arc<GenesysSecret>, Arc<Correlator>)>>,
    function_name: String,
}

/// How this invocation correlates.
enum Correlation {
    Skip(SkipCorrelation),
    Unavailable { error: String, transient: bool },
    Genesys(Arc<Correlator>),
}

impl Correlate for Correlation {
    async fn correlate(
        &self,
        ids: &[String],
        budget: Duration,
    ) -> HashMap<String, InteractionInfo> {
        match self {
            Correlation::Skip(skip) => skip.correlate(ids, budget).await,
            Correlation::Unavailable { error, transient } => ids
                .iter()
                .map(|id| {
                    let info = InteractionInfo::Unavailable {
                        error: error.clone(),
                        transient: *transient,
                    };
                    (id.clone(), info)
                })
                .collect(),
            Correlation::Genesys(c) => c.correlate(ids, budget).await,
        }
    }
}

/// Whether S3 needs path-style addressing: an endpoint override is set (a local emulator
/// on an IP address has no virtual-host DNS) or `S3_FORCE_PATH_STYLE=true`.
pub fn path_style_from_env() -> bool {
    let overridden = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
    overridden || std::env::var("S3_FORCE_PATH_STYLE").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The S3 client, path-style when asked.
pub fn s3_client(sdk: &aws_config::SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
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
            config,
        }
    }

    /// The secret cache, if a secret is configured.
    pub fn secrets(&self) -> Option<&SecretCache> {
        self.secrets.as_ref()
    }

    /// Handles one SQS batch.
    pub async fn handle(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, lambda_runtime::Error> {
        let started = Instant::now();
        let records = event.payload.records;
        let fifo = records
            .iter()
            .filter_map(|r| r.event_source_arn.as_deref())
            .any(|arn| arn.ends_with(".fifo"));
        let letters: Vec<DeadLetter> = records
            .iter()
            .enumerate()
            .map(|(i, r)| to_dead_letter(i, r))
            .collect();
        let batch_ids: HashSet<&str> = records
            .iter()
            .filter_map(|r| r.message_id.as_deref())
            .collect();

        let correlation = self.correlation().await;
        let mut opts = TriageOptions::new(
            Layout::prefixed(&self.config.report_prefix),
            ReplaySource::Bucket(self.config.report_bucket.clone()),
        );
        opts.report_id = triage::report_id(opts.now, &short_id(&event.context.request_id));
        opts.deadline = deadline_instant(event.context.deadline);
        opts.safety_margin = self.config.deadline_margin;
        opts.correlation_budget = self.config.correlation_budget;
        opts.correlation_max_receives = self.config.correlation_max_receives;
        opts.write_concurrency = self.config.s3_concurrency;
        opts.fifo = fifo;
        opts.replay_endpoint = self.config.replay_endpoint.clone();

        let run = AssertUnwindSafe(triage::run(&letters, &self.store, &correlation, &opts))
            .catch_unwind()
            .await;
        let (returned, by_category) = match run {
            Ok(outcome) => {
                if let Some(e) = &outcome.report_error {
                    tracing::error!(error = %e, "report not stored: returning every record");
                } else if let Some((json, _)) = &outcome.report_keys {
                    tracing::info!(report = %json, records = letters.len(), returned = outcome.returned.len(), "report stored");
                }
                for record in &outcome.report.records {
                    if let crate::report::Disposition::Returned { reason } = &record.disposition {
                        tracing::warn!(message_id = %record.message_id, %reason, "record returned to the queue");
                    }
                }
                (outcome.returned, outcome.report.summary.by_category)
            }
            Err(_) => {
                tracing::error!("the triage pipeline panicked: returning every record");
                (
                    letters.iter().map(|l| l.message_id.clone()).collect(),
                    Default::default(),
                )
            }
        };

        // Only ids of this batch may be named; a record without one cannot be, so the
        // whole batch must be retried rather than lose it.
        let mut response = SqsBatchResponse::default();
        let mut seen = HashSet::new();
        for id in &returned {
            if !batch_ids.contains(id.as_str()) {
                return Err(format!("record {id} has no SQS messageId and could not be stored; failing the batch so SQS retries it").into());
            }
            if seen.insert(id.as_str()) {
                response.add_failure(id.clone());
            }
        }

        let metrics = InvocationMetrics {
            records: letters.len(),
            acknowledged: letters.len() - seen.len().min(letters.len()),
            returned: seen.len(),
            by_category,
            genesys_calls: match &correlation {
                Correlation::Genesys(c) => c.calls(),
                _ => 0,
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
        Ok(response)
    }

    /// Chooses this invocation's correlation, rebuilding the Genesys client when the secret
    /// changed (rotation) and keeping the conversation cache.
    async fn correlation(&self) -> Correlation {
        let Some(secrets) = &self.secrets else {
            return Correlation::Skip(SkipCorrelation {
                reason: "GENESYS_SECRET_ID is not configured".into(),
            });
        };
        let secret = match secrets.get().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "Genesys correlation unavailable");
                return Correlation::Unavailable {
                    error: e.to_string(),
                    transient: e.transient,
                };
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
        let endpoints = region::resolve(
            secret.region.as_deref().or(g.region.as_deref()),
            g.api_base.as_deref().or(secret.api_base.as_deref()),
            g.login_base.as_deref().or(secret.login_base.as_deref()),
        );
        match endpoints {
            Ok(endpoints) => {
                let correlator = Arc::new(Correlator::connect(
                    self.http.clone(),
                    &endpoints,
                    secret.credentials.clone(),
                    self.config.analytics.clone(),
                    self.cache.clone(),
                ));
                *current = Some((secret, correlator.clone()));
                Correlation::Genesys(correlator)
            }
            Err(e) => Correlation::Unavailable {
                error: format!("Genesys endpoints: {e}"),
                transient: false,
            },
        }
    }
}

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
    DeadLetter::new(
        m.message_id
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("record-{index}")),
        m.body.clone().unwrap_or_default(),
        SystemAttributes {
            receive_count: m
                .attributes
                .get("ApproximateReceiveCount")
                .map(String::as_str),
            sent_timestamp: m.attributes.get("SentTimestamp").map(String::as_str),
        },
        FailureAttributes::from_lookup(|name| {
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
