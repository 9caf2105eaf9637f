//! The redrive's journal: the port ([`RedriveJournal`]) over the incident table's
//! `redrive#…` items, its in-memory twin ([`MemoryJournal`]), and the run item ([`Run`]).
//!
//! Two kinds of item. A run, `redrive#run#<incidentKey>`, is written whole on the
//! condition that its `rev` is the one read (as an incident is). An event,
//! `redrive#<targetArn>#<eventId>`, is claimed for attempt *n* only when *n − 1* attempts
//! were claimed before, it was not sent (or skipped), and no attempt is in flight within
//! its lease; its result is recorded on the condition that attempt *n* is still the last.
//! The set of runs to work is one item, `redrive#active`.

#[cfg(test)]
use std::collections::BTreeMap;
use std::collections::BTreeSet;
#[cfg(test)]
use std::sync::Mutex;
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;

/// What the journal could not do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JournalError {
    /// A call failed, was refused or did not answer in time: which, and why.
    #[error("redrive journal: {0}")]
    Aws(crate::aws_error::AwsError),
    /// A run that cannot be written as JSON.
    #[error("redrive journal: run not serializable: {0}")]
    Serialize(serde_json::Error),
    /// An item that is not what this code writes.
    #[error("redrive journal: item {key} cannot be read: {why}")]
    Unreadable {
        /// The item's key.
        key: String,
        /// What is wrong with it.
        why: String,
    },
}

/// `?` on a call's [`AwsError`](crate::aws_error::AwsError); said in the line, so not
/// the error's `source()` too.
impl From<crate::aws_error::AwsError> for JournalError {
    fn from(e: crate::aws_error::AwsError) -> JournalError {
        JournalError::Aws(e)
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RunState {
    /// Sending, slice by slice.
    Running,
    /// Stopped by the breaker, the canary or a person; resumes after the next resolution
    /// (or `redrive resume`).
    Paused,
    /// Every event sent, skipped or given up.
    Finished,
    /// Stopped for good by a person.
    Cancelled,
}

impl RunState {
    /// As the item and the events spell it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Finished => "finished",
            RunState::Cancelled => "cancelled",
        }
    }

    /// Whether the run is over.
    pub(crate) fn ended(self) -> bool {
        match self {
            RunState::Finished | RunState::Cancelled => true,
            RunState::Running | RunState::Paused => false,
        }
    }
}

/// One redrive of one incident's episode. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Run {
    /// The incident's key.
    pub incident: String,
    /// The incident episode redriven.
    pub episode: u64,
    /// The category.
    pub category: String,
    /// The target the events go back to.
    pub target_arn: String,
    /// The window of dead letters (first and last failure of the episode).
    pub since: i64,
    /// Its end.
    pub until: i64,
    /// Where it is (`None` only before the first write).
    pub state: Option<RunState>,
    /// Why it is paused (or cancelled).
    pub why: Option<String>,
    /// The attempt being made of every event (1 …).
    pub pass: u32,
    /// Events of this pass done, in the selection's order.
    pub cursor: u64,
    /// Events selected.
    pub total: u64,
    /// Events delivered.
    pub sent: u64,
    /// Events whose first attempt failed.
    pub failed_again: u64,
    /// Events whose last allowed attempt failed.
    pub gave_up: u64,
    /// Events older than the maximum age, not sent.
    pub skipped_too_old: u64,
    /// The positions (in the selection) of the events that failed in this pass: the next
    /// pass tries these alone.
    pub failing: Vec<u64>,
    /// The positions this pass works (`cursor` counts through them); empty in pass 1,
    /// which works every event.
    pub retrying: Vec<u64>,
    /// The canary was delivered.
    pub canary_ok: bool,
    /// Events per second.
    pub rate: f64,
    /// Started by a person (`redrive start`), perhaps outside the policy.
    pub by_hand: bool,
    /// Paused by a person (`redrive pause`): only `redrive resume` goes on.
    pub held: bool,
    /// Paused before it began: waiting for the health gate (asked again at every sweep).
    pub waiting: bool,
    /// Until when a worker holds the run.
    pub lease_until: i64,
    /// When it started.
    pub started_at: i64,
    /// When it was paused.
    pub paused_at: Option<i64>,
    /// The incident's resolution a pause waits to be followed by.
    pub paused_resolution: Option<i64>,
    /// The last `started`/`progress` event.
    pub announced_at: i64,
    /// When it ended.
    pub ended_at: Option<i64>,
    /// The phase whose event the bus refused: put again by the next slice (an ended run
    /// stays in the active set until it is out).
    pub unannounced: Option<String>,
    /// Write counter (the conditional write's fence).
    pub rev: u64,
}

impl Run {
    /// The run item's key.
    pub(crate) fn key(incident: &str) -> String {
        format!("redrive#run#{incident}")
    }

    /// The state, `running` before the first write.
    pub(crate) fn state(&self) -> RunState {
        self.state.unwrap_or(RunState::Running)
    }

    /// Events this pass works.
    pub(crate) fn in_pass(&self) -> u64 {
        if self.pass <= 1 {
            self.total
        } else {
            self.retrying.len() as u64
        }
    }

    /// Seconds the rest would take at the run's pace.
    pub(crate) fn expected_seconds(&self) -> u64 {
        let left = self.in_pass().saturating_sub(self.cursor) as f64;
        (left / self.rate.max(0.01)).ceil() as u64
    }
}

/// An event's journal item's key: `redrive#<targetArn>#<eventId>`.
pub(crate) fn event_key(target_arn: &str, event_id: &str) -> String {
    format!("redrive#{target_arn}#{event_id}")
}

/// The journal of one event, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct EventProgress {
    /// Attempts claimed.
    pub attempts: u32,
    /// Delivered.
    pub sent: bool,
    /// Skipped as too old.
    pub too_old: bool,
    /// An attempt in flight until then (0: none).
    pub lease_until: i64,
}

/// How an attempt ended, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Delivered.
    Sent,
    /// Not delivered: why (no secret in it).
    Failed(String),
    /// Older than the maximum age: never sent.
    TooOld,
}

/// The journal (the incident table's `redrive#…` items).
pub(crate) trait RedriveJournal: Send + Sync + std::fmt::Debug {
    /// The run of `incident`.
    fn run<'a>(&'a self, incident: &'a str) -> BoxFuture<'a, Result<Option<Run>, JournalError>>;
    /// Writes `run` (its `rev` already the next) if the stored one has rev `expect`
    /// (`None`: if there is none). `false` when another wrote first.
    fn put_run<'a>(
        &'a self,
        run: &'a Run,
        expect: Option<u64>,
    ) -> BoxFuture<'a, Result<bool, JournalError>>;
    /// The incidents whose runs are not over.
    fn active(&self) -> BoxFuture<'_, Result<BTreeSet<String>, JournalError>>;
    /// Adds `incident` to (or takes it out of) the active set.
    fn set_active<'a>(
        &'a self,
        incident: &'a str,
        active: bool,
    ) -> BoxFuture<'a, Result<(), JournalError>>;
    /// Claims attempt `attempt` of the event `key` with a lease until `lease_until`;
    /// `false` when the journal does not allow it.
    fn claim<'a>(
        &'a self,
        key: &'a str,
        attempt: u32,
        now: i64,
        lease_until: i64,
    ) -> BoxFuture<'a, Result<bool, JournalError>>;
    /// The event's journal.
    fn entry<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<EventProgress>, JournalError>>;
    /// Records how attempt `attempt` ended (only while it is the last claimed).
    fn record<'a>(
        &'a self,
        key: &'a str,
        attempt: u32,
        result: Recorded,
        now: i64,
    ) -> BoxFuture<'a, Result<(), JournalError>>;
    /// Takes the lease of the target `target_arn` (`redrive#lease#<targetArn>`) for the
    /// run of `holder` until `until`, when no other run holds it past `now`; `false` when
    /// one does.
    fn lease_target<'a>(
        &'a self,
        target_arn: &'a str,
        holder: &'a str,
        now: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<bool, JournalError>>;
    /// Gives the target's lease back, if `holder` has it.
    fn release_target<'a>(
        &'a self,
        target_arn: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), JournalError>>;
    /// Calls made (each claim, record, read and write is one).
    fn calls(&self) -> u64;
}

/// A target's lease item's key: `redrive#lease#<targetArn>`.
pub(crate) fn target_lease_key(target_arn: &str) -> String {
    format!("redrive#lease#{target_arn}")
}

/// The in-memory twin, under one lock.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct MemoryJournal {
    inner: Mutex<Memory>,
    calls: AtomicU64,
}

#[cfg(test)]
#[derive(Debug, Default)]
struct Memory {
    runs: BTreeMap<String, Run>,
    active: BTreeSet<String>,
    events: BTreeMap<String, EventProgress>,
    targets: BTreeMap<String, (String, i64)>,
}

#[cfg(test)]
impl MemoryJournal {
    /// An empty journal.
    pub(crate) fn new() -> MemoryJournal {
        MemoryJournal::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Memory) -> T,
    ) -> BoxFuture<'_, Result<T, JournalError>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let done = Ok(f(&mut self.lock()));
        Box::pin(async move { done })
    }
}

#[cfg(test)]
impl RedriveJournal for MemoryJournal {
    fn run<'a>(&'a self, incident: &'a str) -> BoxFuture<'a, Result<Option<Run>, JournalError>> {
        self.with(|m| m.runs.get(incident).cloned())
    }

    fn put_run<'a>(
        &'a self,
        run: &'a Run,
        expect: Option<u64>,
    ) -> BoxFuture<'a, Result<bool, JournalError>> {
        let run = run.clone();
        self.with(move |m| {
            let stored = m.runs.get(&run.incident).map(|r| r.rev);
            if stored != expect {
                return false;
            }
            m.runs.insert(run.incident.clone(), run);
            true
        })
    }

    fn active(&self) -> BoxFuture<'_, Result<BTreeSet<String>, JournalError>> {
        self.with(|m| m.active.clone())
    }

    fn set_active<'a>(
        &'a self,
        incident: &'a str,
        active: bool,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        let incident = incident.to_owned();
        self.with(move |m| {
            if active {
                m.active.insert(incident);
            } else {
                m.active.remove(&incident);
            }
        })
    }

    fn claim<'a>(
        &'a self,
        key: &'a str,
        attempt: u32,
        now: i64,
        lease_until: i64,
    ) -> BoxFuture<'a, Result<bool, JournalError>> {
        let key = key.to_owned();
        self.with(move |m| {
            let e = m.events.get(&key).copied().unwrap_or_default();
            let free = e.attempts + 1 == attempt && !e.sent && !e.too_old && e.lease_until < now;
            if free {
                m.events.insert(
                    key,
                    EventProgress {
                        attempts: attempt,
                        lease_until,
                        ..e
                    },
                );
            }
            free
        })
    }

    fn entry<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<EventProgress>, JournalError>> {
        self.with(|m| m.events.get(key).copied())
    }

    fn record<'a>(
        &'a self,
        key: &'a str,
        attempt: u32,
        result: Recorded,
        _now: i64,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        let key = key.to_owned();
        self.with(move |m| {
            if let Some(e) = m.events.get_mut(&key).filter(|e| e.attempts == attempt) {
                e.lease_until = 0;
                match result {
                    Recorded::Sent => e.sent = true,
                    Recorded::TooOld => e.too_old = true,
                    Recorded::Failed(_) => {}
                }
            }
        })
    }

    fn lease_target<'a>(
        &'a self,
        target_arn: &'a str,
        holder: &'a str,
        now: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<bool, JournalError>> {
        let (target, holder) = (target_arn.to_owned(), holder.to_owned());
        self.with(move |m| {
            let free = m
                .targets
                .get(&target)
                .is_none_or(|(h, u)| *u < now || *h == holder);
            if free {
                m.targets.insert(target, (holder, until));
            }
            free
        })
    }

    fn release_target<'a>(
        &'a self,
        target_arn: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        let (target, holder) = (target_arn.to_owned(), holder.to_owned());
        self.with(move |m| {
            if let Some((h, u)) = m.targets.get_mut(&target)
                && *h == holder
            {
                *u = 0;
            }
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}
