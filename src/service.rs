//! The triage service: a batch of dead letters to an outcome. It looks up how the failed
//! targets take their input, runs the pipeline ([`crate::triage`]) against the store, and
//! announces the stored report. The Lambda's handler and `poll`'s page loop both call
//! [`TriageService::triage`]; everything around it (decoding the event, choosing the
//! correlation, metrics, deleting from the queue) stays with them.
//!
//! Built once from its ports: where artifacts go ([`ArtifactStore`]), how target inputs are
//! known ([`TargetInputs`]), who hears of a stored report ([`Announce`]). Each has an
//! in-memory twin, so the service's rules are tested without AWS.

use std::time::Duration;

use tokio::time::Instant;

use crate::correlate::Correlate;
use crate::dlq::DeadLetter;
use crate::notify::{Announce, Notifier};
use crate::report::Disposition;
use crate::store::ArtifactStore;
use crate::targets::{TargetInputLookup, TargetInputs, failed_targets};
use crate::triage::{self, Outcome, TriageOptions};

/// The most a batch spends looking up how its failed targets take their input (and at
/// most a tenth of the time left before the deadline).
const TARGET_LOOKUP_BUDGET: Duration = Duration::from_secs(2);
/// How long a target's input setting (or the refusal to tell it) is remembered.
pub const TARGET_LOOKUP_TTL: Duration = Duration::from_secs(600);
/// The most a batch waits for the notification bus (and never past half the safety
/// margin before the deadline).
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(2);

/// A batch's outcome, and what the best-effort steps after it did.
#[derive(Debug)]
pub struct Triaged {
    /// What the pipeline stored and which records may be acknowledged.
    pub outcome: Outcome,
    /// The stored report's announcement was refused or timed out (it never changes what
    /// is acknowledged).
    pub announce_failed: bool,
}

/// The service, over its ports.
#[derive(Debug)]
pub struct TriageService<S, T = TargetInputLookup, N = Notifier> {
    store: S,
    target_inputs: Option<T>,
    announcer: Option<N>,
}

impl<S> TriageService<S> {
    /// A service storing into `store`, with no target look-up and no announcement.
    pub fn new(store: S) -> TriageService<S> {
        TriageService {
            store,
            target_inputs: None,
            announcer: None,
        }
    }
}

impl<S, T, N> TriageService<S, T, N> {
    /// Looks target inputs up through `lookup` before each batch.
    pub fn with_target_inputs<U: TargetInputs>(self, lookup: U) -> TriageService<S, U, N> {
        TriageService {
            store: self.store,
            target_inputs: Some(lookup),
            announcer: self.announcer,
        }
    }

    /// Announces each stored report through `announcer`; `None` announces nothing.
    pub fn with_announcer<M: Announce>(self, announcer: Option<M>) -> TriageService<S, T, M> {
        TriageService {
            store: self.store,
            target_inputs: self.target_inputs,
            announcer,
        }
    }

    /// Where artifacts go.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: ArtifactStore, T: TargetInputs, N: Announce> TriageService<S, T, N> {
    /// Takes `letters` to an outcome under `opts` (whose deadline and safety margin bound
    /// every step): the target-input look-up, the pipeline (each body moves into its
    /// payload write, so the batch is not held twice), then the announcement of the stored
    /// report. What is acknowledged is decided by the pipeline alone.
    pub async fn triage<C: Correlate>(
        &self,
        letters: &mut [DeadLetter],
        correlator: &C,
        mut opts: TriageOptions,
    ) -> Triaged {
        if let Some(lookup) = &self.target_inputs {
            let budget = opts.deadline.map_or(TARGET_LOOKUP_BUDGET, |d| {
                TARGET_LOOKUP_BUDGET.min(d.saturating_duration_since(Instant::now()) / 10)
            });
            opts.target_inputs = lookup.describe(failed_targets(letters), budget).await;
        }
        // Boxed: the pipeline's future is large (every step's state), and a runtime
        // thread's stack is not the place for it.
        let outcome = Box::pin(triage::run_taking_bodies(
            letters,
            &self.store,
            correlator,
            &opts,
        ))
        .await;
        log_outcome(&outcome);
        let announce_failed = self.announce(&outcome, &opts).await;
        Triaged {
            outcome,
            announce_failed,
        }
    }

    /// The stored report's announcement, when there is an announcer; whether it failed.
    async fn announce(&self, outcome: &Outcome, opts: &TriageOptions) -> bool {
        let (Some(announcer), Some(keys)) = (&self.announcer, &outcome.report_keys) else {
            return false;
        };
        let timeout = opts.deadline.map_or(ANNOUNCE_TIMEOUT, |d| {
            ANNOUNCE_TIMEOUT.min(
                d.saturating_duration_since(Instant::now())
                    .saturating_sub(opts.safety_margin / 2),
            )
        });
        match announcer.announce(&outcome.report, keys, timeout).await {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(error = %e, "the report's event was not put on the notification bus");
                true
            }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::correlate::MemoryCorrelator;
    use crate::dlq::parse_batch;
    use crate::notify::MemoryAnnouncer;
    use crate::report::ReplaySource;
    use crate::store::{Layout, MemoryStore};

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

    fn service() -> TriageService<MemoryStore, BTreeMap<String, String>, MemoryAnnouncer> {
        TriageService::new(MemoryStore::new())
            .with_target_inputs(BTreeMap::from([(
                API.to_owned(),
                "InputTransformer".to_owned(),
            )]))
            .with_announcer(Some(MemoryAnnouncer::default()))
    }

    #[tokio::test]
    async fn a_stored_batch_names_its_target_inputs_and_is_announced_once() {
        let service = service();
        let mut letters = batch();
        let done = service
            .triage(&mut letters, &MemoryCorrelator::skipped("test"), opts())
            .await;
        assert_eq!(done.outcome.acknowledged, 20);
        assert!(!done.announce_failed);
        assert_eq!(
            done.outcome.report.summary.target_inputs,
            BTreeMap::from([(API.to_owned(), "InputTransformer".to_owned())])
        );
        let announced = service.announcer.as_ref().unwrap().announced();
        assert_eq!(announced, vec![done.outcome.report_keys.clone().unwrap().0]);
    }

    #[tokio::test]
    async fn a_report_not_stored_is_not_announced() {
        let service = service();
        service.store().fail_prefix("p/reports/");
        let mut letters = batch();
        let done = service
            .triage(&mut letters, &MemoryCorrelator::skipped("test"), opts())
            .await;
        assert!(done.outcome.batch_error.is_some());
        assert!(service.announcer.as_ref().unwrap().announced().is_empty());
    }

    #[tokio::test]
    async fn a_refused_announcement_changes_nothing_acknowledged() {
        let service = service();
        service.announcer.as_ref().unwrap().refuse();
        let mut letters = batch();
        let done = service
            .triage(&mut letters, &MemoryCorrelator::skipped("test"), opts())
            .await;
        assert!(done.announce_failed);
        assert_eq!(done.outcome.acknowledged, 20);
        assert!(done.outcome.report_keys.is_some());
    }
}
