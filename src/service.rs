//! The triage service: a batch of dead letters to an outcome. It looks up how the failed
//! targets take their input, runs the pipeline ([`crate::triage`]) against the store, and
//! announces the stored report. The Lambda's handler and `poll`'s page loop both call
//! [`TriageService::triage`]; everything around it (decoding the event, choosing the
//! correlation, metrics, deleting from the queue) stays with them.
//!
//! Built once from its ports: where artifacts go ([`ArtifactStore`]), how target inputs are
//! known ([`TargetInputs`]), who hears of a stored report and of incidents ([`Announce`]),
//! and where incidents are kept ([`IncidentTable`], optional). Each has an in-memory twin,
//! so the service's rules are tested without AWS. After the report is stored, each
//! incident of the batch is counted into the incident table and each transition won is
//! announced; none of that changes what is acknowledged.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use tokio::time::Instant;

use crate::artifacts::bounded as ends_by;
use crate::artifacts::{Artifact, ArtifactStore, FsStore, S3Store, s3_client};
use crate::correlate::Correlate;
use crate::dlq::DeadLetter;
use crate::health::{AwsHealth, GenesysAccess};
use crate::incidents::{
    Change, DynamoTable, IncidentSettings, IncidentTracker, ReportRef, Tracked, Transition,
    observations,
};
use crate::notify::{Announce, Notifier, NotifyError};
use crate::page;
use crate::report::Disposition;
use crate::secrets::{SecretCache, SecretSource};
use crate::targets::{AwsTargets, TargetInputLookup, TargetInputs, failed_targets};
use crate::triage::{self, Outcome, TriageOptions};

/// The most a batch spends looking up how its failed targets take their input (and at
/// most a tenth of the time left before the deadline).
const TARGET_LOOKUP_BUDGET: Duration = Duration::from_secs(2);
/// How long a target's input setting (or the refusal to tell it) is remembered.
const TARGET_LOOKUP_TTL: Duration = Duration::from_secs(600);
/// The most a batch waits for the notification bus (and never past half the safety
/// margin before the deadline).
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(2);
/// The most a batch waits for the incident table for each incident (a sweep, for all
/// of its table work), likewise bounded: room for the rounds of conditional writes when
/// many invocations meet the same incident at once.
const INCIDENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a `resolved` event waits, the target's health looked up with it.
const RESOLVED_TIMEOUT: Duration = Duration::from_secs(8);

/// A batch's outcome, and what the best-effort steps after it did. None of them changes
/// what is acknowledged.
#[derive(Debug)]
pub struct Triaged {
    /// What the pipeline stored and which records may be acknowledged.
    pub outcome: Outcome,
    /// Events (the report's, incidents') refused by the bus or timed out.
    pub announce_failed: usize,
    /// Incidents of the batch the incident table did not take.
    pub incident_update_failed: usize,
    /// Incident transitions announced.
    pub incident_events: usize,
    /// Incident transitions recorded in their item's outbox and not put (no bus, refused,
    /// silenced): a later invocation or sweep puts them.
    pub incident_unannounced: usize,
}

impl Triaged {
    /// Whether the report was stored without its page.
    pub fn page_not_stored(&self) -> bool {
        self.outcome
            .report_keys
            .as_ref()
            .is_some_and(|k| k.html.is_none())
    }
}

/// What a sweep of quiet incidents did.
#[derive(Debug, Default)]
pub struct Swept {
    /// Incidents resolved.
    pub resolved: usize,
    /// Incidents (or listings) the table did not take.
    pub failed: usize,
    /// Transitions put on the bus (the resolutions, and those left unannounced before).
    pub announced: usize,
    /// Events refused by the bus or timed out.
    pub announce_failed: usize,
    /// Transitions left in an outbox for longer than ten minutes, as found.
    pub overdue: usize,
    /// The keys of the incidents this sweep resolved (the redrive's trigger).
    pub resolved_keys: Vec<String>,
    /// Each transition of the sweep, and what putting it on the bus did (`None`: no bus).
    pub changes: Vec<(Change, Option<Result<(), NotifyError>>)>,
    /// What the table said of each failure.
    pub errors: Vec<crate::incidents::TableError>,
    /// Incidents whose transitions were put (or passed over) but stay in their outbox, as
    /// the table said: they may be put again.
    pub unmarked: Vec<(String, String)>,
}

/// The ports the service (and the Lambda's handler) works through, each an `Arc<dyn …>`
/// with an in-memory twin. Built from one SDK configuration by [`Services::from_sdk`];
/// tests start from [`Services::new`] and set the twins they need.
pub struct Services {
    /// Where artifacts go.
    pub store: Arc<dyn ArtifactStore>,
    /// How failed targets take their input (`None`: not looked up).
    pub target_inputs: Option<Arc<dyn TargetInputs>>,
    /// Who hears of stored reports and incident transitions (`None`: nobody).
    pub announcer: Option<Arc<dyn Announce>>,
    /// Where incidents are kept (`None`: not kept).
    pub incidents: Option<IncidentTracker>,
    /// Where the Genesys secret comes from (`None`: correlation is skipped).
    pub secrets: Option<Arc<dyn SecretSource>>,
}

/// Where [`Services::from_sdk`] puts artifacts.
#[derive(Debug, Clone)]
pub enum ArtifactsAt {
    /// An S3 bucket (the Lambda, `poll --bucket`, `incidents`): the reports below `prefix`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix of reports and payloads.
        prefix: String,
        /// SSE-KMS with this key, else SSE-S3.
        sse_kms_key_id: Option<String>,
        /// Path-style addressing (local S3 stand-ins).
        path_style: bool,
    },
    /// A local folder (`analyze`, `poll --out`): nothing announced there.
    Folder(PathBuf),
}

/// What [`Services::from_sdk`] builds, beside the SDK configuration: each caller fills
/// it from its own configuration.
#[derive(Debug, Clone)]
pub struct PortSettings {
    /// Where artifacts go (and, in S3, where announcements say the reports are).
    pub artifacts: ArtifactsAt,
    /// Whether target inputs are looked up (`ListTargetsByRule`).
    pub target_inputs: bool,
    /// `NOTIFY_EVENT_BUS`: announcements, for reports stored in S3.
    pub notify_event_bus: Option<String>,
    /// `INCIDENT_TABLE`, and how incidents are kept.
    pub incident_table: Option<String>,
    /// How incidents are kept.
    pub incidents: IncidentSettings,
    /// `GENESYS_SECRET_ID`, and how long the secret is cached.
    pub genesys_secret: Option<(String, Duration)>,
}

impl PortSettings {
    /// Artifacts at `artifacts`, and no other port.
    pub fn at(artifacts: ArtifactsAt) -> PortSettings {
        PortSettings {
            artifacts,
            target_inputs: false,
            notify_event_bus: None,
            incident_table: None,
            incidents: IncidentSettings::default(),
            genesys_secret: None,
        }
    }
}

impl Services {
    /// Artifacts into `store`, and no other port.
    pub fn new(store: Arc<dyn ArtifactStore>) -> Services {
        Services {
            store,
            target_inputs: None,
            announcer: None,
            incidents: None,
            secrets: None,
        }
    }

    /// The production ports from one SDK configuration, as `settings` asks: the store (S3
    /// or a folder), target inputs from EventBridge, the [`Notifier`] (with the targets'
    /// health for `resolved` events), the incident table in DynamoDB, the secret from
    /// Secrets Manager.
    pub fn from_sdk(sdk: &SdkConfig, settings: &PortSettings) -> Services {
        Services {
            store: match &settings.artifacts {
                ArtifactsAt::S3 {
                    bucket,
                    sse_kms_key_id,
                    path_style,
                    ..
                } => Arc::new(S3Store::new(
                    s3_client(sdk, *path_style),
                    bucket.clone(),
                    sse_kms_key_id.clone(),
                )),
                ArtifactsAt::Folder(folder) => Arc::new(FsStore::new(folder)),
            },
            target_inputs: settings.target_inputs.then(|| {
                let lookup =
                    TargetInputLookup::new(AwsTargets::new(sdk.clone()), TARGET_LOOKUP_TTL);
                Arc::new(lookup) as Arc<dyn TargetInputs>
            }),
            announcer: notifier(sdk, settings).map(|n| Arc::new(n) as Arc<dyn Announce>),
            incidents: settings.incident_table.as_ref().map(|table| {
                let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(sdk), table);
                IncidentTracker::new(Arc::new(table), settings.incidents)
            }),
            secrets: settings.genesys_secret.as_ref().map(|(id, ttl)| {
                let client = aws_sdk_secretsmanager::Client::new(sdk);
                Arc::new(SecretCache::new(client, id.clone(), *ttl)) as Arc<dyn SecretSource>
            }),
        }
    }
}

/// The one [`Notifier`]: on `NOTIFY_EVENT_BUS`, for reports stored in S3 (its events name
/// the bucket and prefix), with the targets' health for `resolved` events.
pub(crate) fn notifier(sdk: &SdkConfig, settings: &PortSettings) -> Option<Notifier> {
    let ArtifactsAt::S3 { bucket, prefix, .. } = &settings.artifacts else {
        return None;
    };
    let bus = settings.notify_event_bus.clone()?;
    let events = aws_sdk_eventbridge::Client::new(sdk);
    Some(
        Notifier::new(events, bus, bucket.clone(), prefix).with_health(AwsHealth::new(sdk.clone())),
    )
}

/// The service, over its ports.
pub struct TriageService {
    ports: Services,
}

impl std::fmt::Debug for TriageService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.ports;
        f.debug_struct("TriageService")
            .field("target_inputs", &p.target_inputs.is_some())
            .field("announcer", &p.announcer.is_some())
            .field("incidents", &p.incidents)
            .finish_non_exhaustive()
    }
}

impl TriageService {
    /// A service over `ports`.
    pub fn new(ports: Services) -> TriageService {
        TriageService { ports }
    }

    /// The incident tracker, when incidents are kept.
    pub fn incidents(&self) -> Option<&IncidentTracker> {
        self.ports.incidents.as_ref()
    }

    /// Who hears of stored reports and incident transitions, when anybody does.
    pub fn announcer(&self) -> Option<&dyn Announce> {
        self.ports.announcer.as_deref()
    }

    /// Where the Genesys secret comes from, when one is configured.
    pub fn secrets(&self) -> Option<&Arc<dyn SecretSource>> {
        self.ports.secrets.as_ref()
    }

    /// Takes `letters` to an outcome under `opts` (whose deadline and safety margin bound
    /// every step): the target-input look-up, the pipeline (each body moves into its
    /// payload write, so the batch is not held twice), the report's page, then the
    /// announcement of the stored report. What is acknowledged is decided by the pipeline
    /// alone.
    pub async fn triage(
        &self,
        letters: &mut [DeadLetter],
        correlator: &dyn Correlate,
        mut opts: TriageOptions,
    ) -> Triaged {
        if let Some(lookup) = &self.ports.target_inputs {
            let budget = opts.deadline.map_or(TARGET_LOOKUP_BUDGET, |d| {
                TARGET_LOOKUP_BUDGET.min(d.saturating_duration_since(Instant::now()) / 10)
            });
            opts.target_inputs = lookup.describe(failed_targets(letters), budget).await;
        }
        // Boxed: the pipeline's future is large (every step's state), and a runtime
        // thread's stack is not the place for it.
        let mut outcome = Box::pin(triage::run_taking_bodies(
            letters,
            &*self.ports.store,
            correlator,
            &opts,
        ))
        .await;
        self.store_page(&mut outcome, &opts).await;
        log_outcome(&outcome);
        let mut announce_failed = usize::from(self.announce(&outcome, &opts).await);
        let tracked = self.track(&outcome, &opts).await;
        let put = self.put_changes(&tracked, &opts, None).await;
        announce_failed += put.failed;
        Triaged {
            outcome,
            announce_failed,
            incident_update_failed: tracked.failed.len(),
            incident_events: put.put,
            incident_unannounced: put.unannounced,
        }
    }

    /// Resolves the incidents quiet on both clocks at `now`, puts each transition left
    /// unannounced and each resolution (the scheduled sweep). `genesys` lets the
    /// `resolved` events say the Genesys side's state too.
    pub async fn sweep(
        &self,
        now: DateTime<Utc>,
        opts: &TriageOptions,
        genesys: Option<&GenesysAccess>,
    ) -> Swept {
        let Some(tracker) = &self.ports.incidents else {
            return Swept::default();
        };
        let tracked = tracker.sweep(now, bounded(INCIDENT_TIMEOUT, opts)).await;
        for failure in &tracked.failed {
            tracing::warn!(error = %failure, "incident sweep");
        }
        let put = self.put_changes(&tracked, opts, genesys).await;
        let unmarked = put.unmarked;
        let mut results = put.results.into_iter().map(Some);
        Swept {
            resolved: tracked.made,
            failed: tracked.failed.len(),
            announced: put.put,
            announce_failed: put.failed,
            overdue: tracked.overdue,
            resolved_keys: tracked
                .changes
                .iter()
                .filter(|c| c.transition == Transition::Resolved)
                .map(|c| c.item.key.clone())
                .collect(),
            changes: (tracked.changes.into_iter())
                .map(|c| (c, results.next().flatten()))
                .collect(),
            errors: tracked.failed,
            unmarked,
        }
    }

    /// Counts the stored records of the batch into their incidents, each incident within
    /// the incident table's time.
    async fn track(&self, outcome: &Outcome, opts: &TriageOptions) -> Tracked {
        let (Some(tracker), Some(keys)) = (&self.ports.incidents, &outcome.report_keys) else {
            return Tracked::default();
        };
        let uris = ReportRef {
            json: opts.replay_source.address_of(&keys.json),
            markdown: opts.replay_source.address_of(&keys.markdown),
            html: keys.html.as_ref().map(|h| opts.replay_source.address_of(h)),
        };
        let seen = observations(&outcome.report, Some(uris), opts.now);
        let timeout = bounded(INCIDENT_TIMEOUT, opts);
        let tracked = tracker.observe(seen, opts.now, timeout).await;
        for failure in &tracked.failed {
            tracing::warn!(error = %failure, "incident not updated; the report holds the batch");
        }
        tracked
    }

    /// Puts each transition of `tracked` on the bus and takes the ones put out of their
    /// outboxes; what was put, refused, and left unannounced.
    async fn put_changes(
        &self,
        tracked: &Tracked,
        opts: &TriageOptions,
        genesys: Option<&GenesysAccess>,
    ) -> Put {
        let changes = &tracked.changes;
        let (Some(announcer), Some(tracker)) = (&self.ports.announcer, &self.ports.incidents)
        else {
            return Put {
                unannounced: changes.len() + tracked.held,
                ..Put::default()
            };
        };
        let puts = changes.iter().map(|c| {
            let limit = match c.transition {
                Transition::Resolved => RESOLVED_TIMEOUT,
                _ => ANNOUNCE_TIMEOUT,
            };
            announcer.incident(c, genesys, bounded(limit, opts))
        });
        let mut done = Put {
            unannounced: tracked.held,
            ..Put::default()
        };
        let mut by_key: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
        for (key, seqs) in &tracked.passed_over {
            by_key.entry(key).or_default().extend(seqs);
        }
        for (change, result) in changes.iter().zip(futures::future::join_all(puts).await) {
            match &result {
                Ok(()) => {
                    done.put += 1;
                    by_key.entry(&change.item.key).or_default().push(change.seq);
                }
                Err(e) => {
                    tracing::warn!(incident = %change.item.key, transition = change.transition.as_str(), error = %e, "the incident's event was not put on the notification bus; it stays in the item's outbox");
                    done.failed += 1;
                    done.unannounced += 1;
                }
            }
            done.results.push(result);
        }
        // Each incident's outbox on its own time: one that runs out keeps its transitions
        // to be put again (at least once), the others are done.
        let timeout = bounded(INCIDENT_TIMEOUT, opts);
        let marks = by_key.iter().map(|(key, seqs)| async move {
            let mark = tracker.announced(key, seqs);
            let why = match tokio::time::timeout(timeout, mark).await {
                Ok(Ok(())) => return None,
                Ok(Err(e)) => {
                    tracing::warn!(incident = %key, error = %e, "put on the bus, but still in the item's outbox: it may be put again");
                    e.to_string()
                }
                Err(_) => {
                    tracing::warn!(incident = %key, "put on the bus, but the table did not answer in time: it may be put again");
                    format!("the table did not answer within {timeout:?}")
                }
            };
            Some(((*key).to_owned(), why))
        });
        done.unmarked = futures::future::join_all(marks)
            .await
            .into_iter()
            .flatten()
            .collect();
        done
    }

    /// Renders the stored report's page from the report and the sample payloads the
    /// pipeline kept, and stores it beside the report within the report's time. A page
    /// that cannot be rendered or stored is logged and left out (`html` stays `None`): it
    /// is for people, and holds no record back.
    async fn store_page(&self, outcome: &mut Outcome, opts: &TriageOptions) {
        let samples = std::mem::take(&mut outcome.samples);
        let Some(keys) = outcome.report_keys.as_mut() else {
            return;
        };
        let Some(key) = opts
            .layout
            .report_keys(opts.now.date_naive(), &opts.report_id)
            .html
        else {
            return;
        };
        let address = opts.replay_source.address_of(&keys.json);
        let render =
            || page::render_report(&outcome.report, &address, &samples, opts.genesys_domain);
        let Ok(html) = std::panic::catch_unwind(AssertUnwindSafe(render)) else {
            tracing::warn!(
                "the report's page could not be rendered; the JSON and Markdown were stored"
            );
            return;
        };
        drop(samples);
        let page = Artifact {
            key,
            body: Bytes::from(html.into_bytes()),
            content_type: "text/html; charset=utf-8",
            metadata: vec![("report-id", opts.report_id.clone())],
        };
        // The report's time: the last quarter of the safety margin.
        let end_by = opts.before_deadline(opts.safety_margin / 4);
        let store = &self.ports.store;
        let stored = async {
            ends_by(end_by, &page.key, store.put(&page)).await?;
            ends_by(end_by, &page.key, store.sync()).await
        };
        match AssertUnwindSafe(stored).catch_unwind().await {
            Ok(Ok(())) => keys.html = Some(page.key),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the report's page was not stored; the JSON and Markdown were")
            }
            Err(_) => {
                tracing::warn!(
                    "the report's page failed unexpectedly; the JSON and Markdown were stored"
                )
            }
        }
    }

    /// The stored report's announcement, when there is an announcer; whether it failed.
    async fn announce(&self, outcome: &Outcome, opts: &TriageOptions) -> bool {
        let (Some(announcer), Some(keys)) = (&self.ports.announcer, &outcome.report_keys) else {
            return false;
        };
        let timeout = bounded(ANNOUNCE_TIMEOUT, opts);
        match announcer.announce(&outcome.report, keys, timeout).await {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(error = %e, "the report's event was not put on the notification bus");
                true
            }
        }
    }
}

/// What putting a round of transitions did.
#[derive(Debug, Default)]
struct Put {
    /// Put on the bus.
    put: usize,
    /// Refused by the bus or timed out.
    failed: usize,
    /// Left in their outbox.
    unannounced: usize,
    /// What putting each transition did, in order (empty: no bus).
    results: Vec<Result<(), NotifyError>>,
    /// Incidents whose outbox could not be emptied of what was put, and why.
    unmarked: Vec<(String, String)>,
}

/// `limit`, and never past half the safety margin before the deadline.
fn bounded(limit: Duration, opts: &TriageOptions) -> Duration {
    opts.deadline.map_or(limit, |d| {
        limit.min(
            d.saturating_duration_since(Instant::now())
                .saturating_sub(opts.safety_margin / 2),
        )
    })
}

/// Logs where the report went and why each returned record goes back.
fn log_outcome(outcome: &Outcome) {
    match (&outcome.batch_error, &outcome.report_keys) {
        (Some(e), _) => tracing::error!(error = %e, "returning every record"),
        (None, Some(keys)) => {
            tracing::info!(report = %keys.json, page = keys.html.as_deref().unwrap_or("not stored"), records = outcome.report.records.len(), returned = outcome.returned.len(), "report stored")
        }
        (None, None) => {}
    }
    for record in &outcome.report.records {
        if let Disposition::Returned { reason } = &record.disposition {
            tracing::warn!(message_id = %record.message_id, %reason, "record returned to the queue");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::artifacts::{Layout, MemoryStore};
    use crate::correlate::MemoryCorrelator;
    use crate::dlq::parse_batch;
    use crate::incidents::{IncidentTable, MemoryTable};
    use crate::notify::MemoryAnnouncer;
    use crate::report::ReplaySource;

    const API: &str = "arn:aws:events:us-east-1:111122223333:api-destination/crm-webhook/7e08279e-244f-4443-a5f4-b9c262da4d81";

    fn batch() -> Vec<DeadLetter> {
        parse_batch(include_bytes!("../events/sqs-mixed-batch.json")).unwrap()
    }

    fn opts() -> TriageOptions {
        TriageOptions::new(
            Layout::prefixed("p/"),
            ReplaySource::Bucket("reports".into()),
        )
    }

    /// The twins the service is built on, kept to look into.
    struct Twins {
        store: Arc<MemoryStore>,
        announcer: Arc<MemoryAnnouncer>,
        table: Arc<MemoryTable>,
    }

    fn service() -> (TriageService, Twins) {
        let twins = Twins {
            store: Arc::new(MemoryStore::new()),
            announcer: Arc::new(MemoryAnnouncer::default()),
            table: Arc::new(MemoryTable::new()),
        };
        let inputs = BTreeMap::from([(API.to_owned(), "InputTransformer".to_owned())]);
        let service = TriageService::new(Services {
            target_inputs: Some(Arc::new(inputs)),
            announcer: Some(twins.announcer.clone()),
            incidents: Some(IncidentTracker::new(
                twins.table.clone(),
                IncidentSettings::default(),
            )),
            ..Services::new(twins.store.clone())
        });
        (service, twins)
    }

    #[tokio::test]
    async fn a_stored_batch_names_its_target_inputs_and_is_announced_once() {
        let (service, twins) = service();
        let mut letters = batch();
        let done = service
            .triage(&mut letters, &MemoryCorrelator::skipped("test"), opts())
            .await;
        assert_eq!(done.outcome.acknowledged, 20);
        assert_eq!(done.announce_failed, 0);
        assert_eq!(
            done.outcome.report.summary.target_inputs,
            BTreeMap::from([(API.to_owned(), "InputTransformer".to_owned())])
        );
        let announced = twins.announcer.announced();
        assert_eq!(
            announced,
            vec![done.outcome.report_keys.clone().unwrap().json]
        );
    }

    #[tokio::test]
    async fn a_report_not_stored_is_not_announced() {
        let (service, twins) = service();
        twins.store.fail_prefix("p/reports/");
        let mut letters = batch();
        let done = service
            .triage(&mut letters, &MemoryCorrelator::skipped("test"), opts())
            .await;
        assert!(done.outcome.batch_error.is_some());
        assert!(twins.announcer.announced().is_empty());
    }

    #[tokio::test]
    async fn a_page_not_stored_holds_nothing_back_and_is_counted() {
        let (service, twins) = service();
        let opts = opts();
        let keys = opts
            .layout
            .report_keys(opts.now.date_naive(), &opts.report_id);
        twins.store.fail_key(keys.html.as_deref().unwrap());
        let mut letters = batch();
        let done = service
            .triage(&mut letters, &MemoryCorrelator::skipped("test"), opts)
            .await;
        assert!(done.outcome.batch_error.is_none());
        assert_eq!(done.outcome.acknowledged, 20);
        assert!(done.page_not_stored());
        let stored = done.outcome.report_keys.clone().unwrap();
        assert_eq!(stored.html, None);
        assert!(twins.store.get(&stored.json).is_some());
        assert!(twins.store.get(&stored.markdown).is_some());
        // The report is still announced, without a page to link.
        assert_eq!(twins.announcer.announced(), vec![stored.json]);
    }

    #[tokio::test]
    async fn a_stored_page_sits_beside_the_report_as_html() {
        let (service, twins) = service();
        let mut letters = batch();
        let done = service
            .triage(&mut letters, &MemoryCorrelator::skipped("test"), opts())
            .await;
        assert!(!done.page_not_stored());
        let keys = done.outcome.report_keys.unwrap();
        let html = keys.html.unwrap();
        assert_eq!(html, keys.json.replace(".json", ".html"));
        let page = twins.store.get(&html).unwrap();
        assert!(page.starts_with(b"<!DOCTYPE html>"));
    }

    /// A bus that refuses: nothing changes what is acknowledged; each transition stays in
    /// its item's outbox, and a batch a minute later puts it, once.
    #[tokio::test]
    async fn a_refused_announcement_changes_nothing_acknowledged_and_is_put_later() {
        let (service, twins) = service();
        let announcer = twins.announcer;
        announcer.refuse(true);
        let mut letters = batch();
        let done = service
            .triage(&mut letters, &MemoryCorrelator::skipped("test"), opts())
            .await;
        let incidents = done.outcome.report.summary.incidents.len();
        // The report's event, and each incident's.
        assert_eq!(done.announce_failed, 1 + incidents);
        assert_eq!(
            (done.incident_events, done.incident_unannounced),
            (0, incidents)
        );
        assert_eq!(done.outcome.acknowledged, 20);
        assert!(done.outcome.report_keys.is_some());
        announcer.refuse(false);
        let mut later = opts();
        later.now += chrono::Duration::minutes(2);
        let again = service
            .triage(
                &mut batch(),
                &MemoryCorrelator::skipped("test"),
                later.clone(),
            )
            .await;
        assert_eq!(
            (again.incident_events, again.incident_unannounced),
            (incidents, 0)
        );
        let third = service
            .triage(&mut batch(), &MemoryCorrelator::skipped("test"), later)
            .await;
        assert_eq!(third.incident_events, 0);
        let put = announcer.incidents();
        assert_eq!(put.len(), incidents);
        assert!(put.iter().all(|c| c.transition == Transition::Opened));
    }

    /// The sample batch holds incidents of several (category, target) pairs: each opens
    /// once (a read, the write, and the write that empties its outbox once the event is
    /// put); the next batch writes each once and opens none.
    #[tokio::test]
    async fn each_incident_of_a_stored_batch_opens_once_and_costs_one_write_after() {
        let (service, twins) = service();
        let done = service
            .triage(&mut batch(), &MemoryCorrelator::skipped("test"), opts())
            .await;
        let incidents = done.outcome.report.summary.incidents.len();
        assert!(incidents > 1);
        assert_eq!(done.incident_events, incidents);
        assert_eq!(done.incident_update_failed, 0);
        let table = &twins.table;
        assert_eq!(table.calls(), 3 * incidents as u64);
        let announced = twins.announcer.incidents();
        assert!(announced.iter().all(|c| c.transition == Transition::Opened));
        let keys = done.outcome.report_keys.unwrap();
        let report = announced[0].item.report.clone().unwrap();
        assert_eq!(report.json, format!("s3://reports/{}", keys.json));
        assert_eq!(
            report.html,
            Some(format!("s3://reports/{}", keys.html.unwrap()))
        );

        let again = service
            .triage(&mut batch(), &MemoryCorrelator::skipped("test"), opts())
            .await;
        assert_eq!(again.incident_events, 0);
        assert_eq!(table.calls(), 4 * incidents as u64);
    }

    /// An announcer that puts, then makes the table refuse every later write.
    struct PutsThenTableFails(Arc<MemoryTable>);

    impl Announce for PutsThenTableFails {
        fn announce<'a>(
            &'a self,
            _: &'a crate::report::Report,
            _: &'a crate::artifacts::ReportKeys,
            _: Duration,
        ) -> futures::future::BoxFuture<'a, Result<(), NotifyError>> {
            Box::pin(async { Ok(()) })
        }

        fn incident<'a>(
            &'a self,
            _: &'a Change,
            _: Option<&'a GenesysAccess>,
            _: Duration,
        ) -> futures::future::BoxFuture<'a, Result<(), NotifyError>> {
            self.0.fail(Some("ProvisionedThroughputExceededException"));
            Box::pin(async { Ok(()) })
        }
    }

    /// A sweep whose resolutions were put but whose outboxes the table would not empty
    /// says which incidents may be put again, and why (what `incidents sweep` prints).
    #[tokio::test]
    async fn a_sweep_says_which_incidents_stay_in_their_outbox_after_the_put() {
        let (service, twins) = service();
        service
            .triage(&mut batch(), &MemoryCorrelator::skipped("test"), opts())
            .await;
        let sweeper = TriageService::new(Services {
            announcer: Some(Arc::new(PutsThenTableFails(twins.table.clone()))),
            incidents: Some(IncidentTracker::new(
                twins.table.clone(),
                IncidentSettings::default(),
            )),
            ..Services::new(twins.store.clone())
        });
        let later = opts().now + chrono::Duration::days(1);
        let swept = sweeper.sweep(later, &opts(), None).await;
        assert!(swept.resolved > 1);
        assert_eq!(swept.announced, swept.resolved);
        let mut keys: Vec<&str> = swept.unmarked.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let mut resolved: Vec<&str> = swept.resolved_keys.iter().map(String::as_str).collect();
        resolved.sort_unstable();
        assert_eq!(keys, resolved);
        assert!(
            swept.unmarked[0]
                .1
                .contains("ProvisionedThroughputExceededException")
        );
    }

    /// A table that refuses every write changes nothing acknowledged: it is counted.
    #[tokio::test]
    async fn a_failing_incident_table_is_counted_and_acknowledges_the_same() {
        let (service, twins) = service();
        twins.table.fail(Some("ResourceNotFoundException"));
        let done = service
            .triage(&mut batch(), &MemoryCorrelator::skipped("test"), opts())
            .await;
        assert_eq!(done.outcome.acknowledged, 20);
        assert_eq!(
            done.incident_update_failed,
            done.outcome.report.summary.incidents.len()
        );
        assert_eq!(done.incident_events, 0);
    }
}
