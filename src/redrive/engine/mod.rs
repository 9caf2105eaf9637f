//! The redrive's engine: starting a run when a resolved incident's target is healthy
//! ([`Redriver::consider`]), working running runs slice by slice within an invocation's
//! deadline ([`Redriver::work`]), and the people's controls ([`Redriver::start`],
//! [`Redriver::control`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::journal::{JournalError, Recorded, RedriveJournal, Run, RunState, event_key};
use super::notice::{PROGRESS_EVERY, Phase, detail};
use super::ports::{Deliver, Notices, Payloads};
use super::{ID_HEADER, RedrivePolicy, SLICE_MARGIN, gate};
use crate::health::TargetHealth;
use crate::incidents::{IncidentItem, State};
use crate::replay::{Attempt, Candidate, Route};

/// Events between two checkpoints of a run (its item written with its cursor and counts).
pub(crate) const CHECKPOINT_EVERY: u64 = 25;
/// Failures in a row that pause a run (the breaker).
pub(crate) const BREAKER: u32 = 5;
/// How long an event's attempt is its worker's: longer than one send can take.
const EVENT_LEASE: Duration = Duration::from_secs(60);
/// The longest `Retry-After` a redrive waits for before its next send (a longer one still
/// counts the event as failed, and the breaker judges).
const RETRY_AFTER_AT_MOST: Duration = Duration::from_secs(60);
/// A run paused by the breaker may resume this long after the pause, when the gate is
/// open again, even if the incident did not resolve again (live traffic may be quiet).
pub(crate) const PAUSE_COOLDOWN: chrono::Duration = chrono::Duration::minutes(15);

/// Why a person's request could not be done.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedriveError {
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Nothing to act on, or the request does not fit the run's state.
    #[error("{0}")]
    Refused(String),
    /// The stored payloads could not be listed.
    #[error("the incident's stored payloads cannot be listed: {0}")]
    Payloads(super::ports::PayloadsError),
}

/// What a person asks of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunControl {
    /// Stop sending until resumed.
    Pause,
    /// Go on (a fresh canary first).
    Resume,
    /// Stop for good.
    Cancel,
}

/// What [`Redriver::work`] and [`Redriver::consider`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Worked {
    /// Runs started or resumed.
    pub started: usize,
    /// Events delivered.
    pub sent: u64,
    /// Runs that ended.
    pub finished: usize,
    /// Runs paused.
    pub paused: usize,
    /// Errors (logged).
    pub errors: usize,
}

/// How one event's turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Turn {
    Sent,
    Failed(String),
    TooOld,
    /// Delivered before: by an earlier slice, another worker or an earlier run of the
    /// incident (its journal says so). Counted, but no proof the target takes events now.
    SentEarlier,
    /// Its last attempt (`attempts`) failed before, or never recorded (a crash): counted,
    /// tried again in the next pass while attempts are left, but not held against the
    /// target by the canary or the breaker (they judge what the target answers now).
    FailedEarlier {
        attempts: u32,
    },
    /// Done before (by an earlier pass or another worker, counted then).
    Nothing,
}

/// The redrive, over its ports.
pub(crate) struct Redriver {
    policy: RedrivePolicy,
    journal: Arc<dyn RedriveJournal>,
    payloads: Arc<dyn Payloads>,
    deliver: Arc<dyn Deliver>,
    notices: Option<Arc<dyn Notices>>,
    health: Arc<dyn TargetHealth>,
    /// What time it is: leases, pauses, ages and announcements (the tests' clock).
    clock: std::sync::RwLock<Clock>,
}

/// A clock.
pub(crate) type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl Redriver {
    /// A redrive under `policy` over its ports.
    pub(crate) fn new(
        policy: RedrivePolicy,
        journal: Arc<dyn RedriveJournal>,
        payloads: Arc<dyn Payloads>,
        deliver: Arc<dyn Deliver>,
        notices: Option<Arc<dyn Notices>>,
        health: Arc<dyn TargetHealth>,
    ) -> Redriver {
        Redriver {
            policy,
            journal,
            payloads,
            deliver,
            notices,
            health,
            clock: std::sync::RwLock::new(Arc::new(Utc::now)),
        }
    }

    /// Tells the time by `clock` from now on.
    pub(crate) fn set_clock(&self, clock: Clock) {
        *self.clock.write().unwrap_or_else(|e| e.into_inner()) = clock;
    }

    fn now(&self) -> DateTime<Utc> {
        let clock = self.clock.read().unwrap_or_else(|e| e.into_inner()).clone();
        clock()
    }

    /// The journal.
    pub(crate) fn journal(&self) -> &dyn RedriveJournal {
        self.journal.as_ref()
    }

    /// Starts (or resumes) the runs the resolved incidents `items` are due: a category
    /// the policy allows, resolved within the maximum age, the target healthy since.
    pub(crate) async fn consider(&self, items: &[IncidentItem], now: DateTime<Utc>) -> Worked {
        let mut worked = Worked::default();
        for item in items {
            let recent = item
                .resolved_at
                .is_some_and(|r| ms(now) - r <= self.policy.max_age.num_milliseconds());
            if item.state != State::Resolved || !recent || !self.policy.allows(&item.category) {
                continue;
            }
            match self.consider_one(item, now).await {
                Ok(true) => worked.started += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(incident = %item.key, error = %e, "redrive not started");
                    worked.errors += 1;
                }
            }
        }
        worked
    }

    async fn consider_one(
        &self,
        item: &IncidentItem,
        now: DateTime<Utc>,
    ) -> Result<bool, RedriveError> {
        let existing = self.journal.run(&item.key).await?;
        let due = match &existing {
            None => true,
            // A run of an earlier episode gives way once it is over, or paused (not by a
            // person): the target failed again, the incident reopened and resolved again.
            Some(run) if run.episode != item.episode => superseded(run),
            Some(run) => resumable(run, item, now),
        };
        if !due {
            return Ok(false);
        }
        let verdict = gate::ask(self.health.as_ref(), item, now).await;
        let same = existing.filter(|r| r.episode == item.episode);
        if !verdict.open {
            tracing::info!(incident = %item.key, why = %verdict.why, "redrive waits: the target is not healthy yet");
            if same.is_none() {
                self.wait(item, &verdict.why, now).await?;
            }
            return Ok(false);
        }
        match same {
            Some(run) if !run.waiting => self
                .set_state(run, RunState::Running, None, now)
                .await
                .map(|_| true),
            // Never begun (or waiting for the gate): selected and paced now; another sweep
            // that began it first is no error.
            _ => self
                .begin(item, false, verdict.limit, now)
                .await
                .map(|run| run.is_some()),
        }
    }

    /// A run of `item` that waits for the gate: paused, in the active set, so each sweep
    /// asks again (until the incident is older than the maximum age).
    async fn wait(
        &self,
        item: &IncidentItem,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RedriveError> {
        let previous = self.journal.run(&item.key).await?;
        let run = carried(
            Run {
                state: Some(RunState::Paused),
                why: Some(format!("waiting for the target's health: {why}")),
                waiting: true,
                paused_at: Some(ms(now)),
                rev: previous.as_ref().map_or(1, |p| p.rev + 1),
                ..self.fresh(item, false, None, now)
            },
            previous.as_ref(),
        );
        if self.journal.put_run(&run, previous.map(|p| p.rev)).await? {
            self.journal.set_active(&item.key, true).await?;
        }
        Ok(())
    }

    fn fresh(
        &self,
        item: &IncidentItem,
        by_hand: bool,
        limit: Option<u32>,
        now: DateTime<Utc>,
    ) -> Run {
        Run {
            incident: item.key.clone(),
            episode: item.episode,
            category: item.category.clone(),
            target_arn: item.target_arn.clone().unwrap_or_default(),
            since: item.first_seen,
            until: item.last_seen,
            state: Some(RunState::Running),
            pass: 1,
            rate: self.policy.pace(limit),
            by_hand,
            started_at: ms(now),
            announced_at: ms(self.now()),
            ..Run::default()
        }
    }

    /// A person starts the redrive of the resolved incident `item`, whatever the policy's
    /// categories say (the target's limit still sets the pace).
    pub(crate) async fn start(
        &self,
        item: &IncidentItem,
        now: DateTime<Utc>,
    ) -> Result<Run, RedriveError> {
        if item.state != State::Resolved {
            return Err(RedriveError::Refused(format!(
                "incident {} is {}: a redrive starts only once it resolved",
                item.key,
                item.state.as_str()
            )));
        }
        if let Some(run) = self.journal.run(&item.key).await?
            && run.episode == item.episode
            && !run.state().ended()
            && !run.waiting
        {
            return Err(RedriveError::Refused(format!(
                "incident {} has a redrive {} already",
                item.key,
                run.state().as_str()
            )));
        }
        let verdict = gate::ask(self.health.as_ref(), item, now).await;
        self.begin(item, true, verdict.limit, now)
            .await?
            .ok_or_else(|| {
                RedriveError::Refused(format!(
                    "incident {}: another started its redrive meanwhile",
                    item.key
                ))
            })
    }

    /// A new run of `item`'s episode: selected, written, made active, announced; `None`
    /// when another wrote the run first.
    async fn begin(
        &self,
        item: &IncidentItem,
        by_hand: bool,
        limit: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<Option<Run>, RedriveError> {
        let previous = self.journal.run(&item.key).await?;
        let mut run = carried(
            Run {
                rev: previous.as_ref().map_or(1, |p| p.rev + 1),
                ..self.fresh(item, by_hand, limit, now)
            },
            previous.as_ref(),
        );
        run.total = self
            .payloads
            .select(&run)
            .await
            .map_err(RedriveError::Payloads)?
            .len() as u64;
        if !self.journal.put_run(&run, previous.map(|p| p.rev)).await? {
            return Ok(None);
        }
        self.journal.set_active(&item.key, true).await?;
        Ok(Some(self.announce_or_owe(Phase::Started, run).await))
    }

    /// A person pauses, resumes or cancels the run of `incident`.
    pub(crate) async fn control(
        &self,
        incident: &str,
        what: RunControl,
        now: DateTime<Utc>,
    ) -> Result<Run, RedriveError> {
        let run =
            self.journal.run(incident).await?.ok_or_else(|| {
                RedriveError::Refused(format!("incident {incident} has no redrive"))
            })?;
        if run.state().ended() {
            return Err(RedriveError::Refused(format!(
                "the redrive of {incident} is {}",
                run.state().as_str()
            )));
        }
        let (state, why) = match what {
            RunControl::Pause => (
                RunState::Paused,
                Some("paused by hand (redrive pause)".to_owned()),
            ),
            RunControl::Resume => (RunState::Running, None),
            RunControl::Cancel => (
                RunState::Cancelled,
                Some("cancelled by hand (redrive cancel)".to_owned()),
            ),
        };
        let mut run = self.set_state(run, state, why, now).await?;
        if what == RunControl::Pause {
            run.held = true;
            run = self.write(run).await?;
        }
        Ok(run)
    }

    /// Moves `run` to `state` (written on its `rev`, again from a fresh read when another
    /// wrote it), announcing a pause or an end.
    async fn set_state(
        &self,
        mut run: Run,
        state: RunState,
        why: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Run, RedriveError> {
        for _ in 0..8 {
            let mut next = run.clone();
            next.state = Some(state);
            next.why = why.clone();
            next.held = false;
            next.waiting = false;
            match state {
                RunState::Paused => next.paused_at = Some(ms(now)),
                RunState::Running => {
                    // A fresh canary after every pause.
                    next.canary_ok = false;
                    next.paused_at = None;
                }
                RunState::Finished | RunState::Cancelled => next.ended_at = Some(ms(now)),
            }
            next.rev = run.rev + 1;
            if self.journal.put_run(&next, Some(run.rev)).await? {
                return Ok(self.after_state(next).await);
            }
            run = self.journal.run(&run.incident).await?.ok_or_else(|| {
                RedriveError::Refused(format!("the redrive of {} disappeared", run.incident))
            })?;
        }
        Err(RedriveError::Refused(format!(
            "the redrive of {} kept changing under every write",
            run.incident
        )))
    }

    /// Announces the state `run` was moved to; an ended run leaves the active set once its
    /// `finished` event is out (until then the next slice puts it again).
    async fn after_state(&self, run: Run) -> Run {
        let phase = match run.state() {
            RunState::Paused => Phase::Paused,
            RunState::Running => Phase::Started,
            RunState::Finished | RunState::Cancelled => Phase::Finished,
        };
        let run = self.announce_or_owe(phase, run).await;
        if run.state().ended() && run.unannounced.is_none() {
            self.leave_active(&run).await;
        }
        run
    }

    async fn leave_active(&self, run: &Run) {
        if let Err(e) = self.journal.set_active(&run.incident, false).await {
            tracing::warn!(incident = %run.incident, error = %e, "redrive left in the active set");
        }
    }

    /// Announces `phase` of `run`; when the bus refuses, the run owes it (`unannounced`,
    /// written on its `rev`) and the next slice puts it again ([`Self::pay`]).
    async fn announce_or_owe(&self, phase: Phase, mut run: Run) -> Run {
        if self.announce(phase, &run).await {
            return run;
        }
        run.unannounced = Some(phase.as_str().to_owned());
        match self.write(run.clone()).await {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(incident = %run.incident, error = %e, "redrive event owed but not noted");
                run.unannounced = None;
                run
            }
        }
    }

    /// Puts the event `run` owes; the run as it is afterwards.
    pub(super) async fn pay(&self, mut run: Run) -> Result<Run, RedriveError> {
        let Some(phase) = run.unannounced.as_deref().and_then(Phase::parse) else {
            return Ok(run);
        };
        if !self.announce(phase, &run).await {
            return Ok(run);
        }
        run.unannounced = None;
        let run = self.write(run).await?;
        if run.state().ended() {
            self.leave_active(&run).await;
        }
        Ok(run)
    }

    async fn write(&self, mut run: Run) -> Result<Run, RedriveError> {
        let expect = run.rev;
        run.rev += 1;
        if self.journal.put_run(&run, Some(expect)).await? {
            Ok(run)
        } else {
            Err(RedriveError::Refused(format!(
                "the redrive of {} changed meanwhile; try again",
                run.incident
            )))
        }
    }

    /// Puts the event of `phase`; `false` when the bus refused it.
    async fn announce(&self, phase: Phase, run: &Run) -> bool {
        tracing::info!(incident = %run.incident, phase = phase.as_str(), sent = run.sent, gave_up = run.gave_up, "redrive");
        if let Some(n) = &self.notices
            && let Err(e) = n.put(detail(phase, run)).await
        {
            tracing::warn!(incident = %run.incident, error = %e, "redrive event not put; the next slice puts it again");
            return false;
        }
        true
    }
}

/// Whether a run of an earlier episode gives way to the new episode's: over, or paused by
/// the breaker, the canary or the gate (a run paused by a person waits for a person).
fn superseded(run: &Run) -> bool {
    match run.state() {
        RunState::Finished | RunState::Cancelled => true,
        RunState::Paused => !run.held,
        RunState::Running => false,
    }
}

/// The window of a new run after `previous`: a run that did not finish (an earlier
/// episode's, paused, or one waiting that carries one) hands its window on, so its events
/// left are sent too (the journal keeps those sent, or tried `REDRIVE_ATTEMPTS` times, from
/// being sent again).
fn carried(mut run: Run, previous: Option<&Run>) -> Run {
    if let Some(p) = previous.filter(|p| !p.state().ended()) {
        run.since = run.since.min(p.since);
    }
    run
}

/// Whether a paused run of `item`'s episode may go on: not held by a person, and the
/// incident resolved again since the pause, or the cooldown has passed.
fn resumable(run: &Run, item: &IncidentItem, now: DateTime<Utc>) -> bool {
    let Some(paused) = run
        .paused_at
        .filter(|_| run.state() == RunState::Paused && !run.held)
    else {
        return false;
    };
    run.waiting
        || item.resolved_at.is_some_and(|r| r > paused)
        || ms(now) - paused >= PAUSE_COOLDOWN.num_milliseconds()
}

/// The event's own `time`, when its payload has one.
fn event_time(payload: &[u8]) -> Option<DateTime<Utc>> {
    #[derive(serde::Deserialize)]
    struct Timed {
        time: Option<String>,
    }
    let t: Timed = serde_json::from_slice(payload).ok()?;
    crate::report::parse_time(&t.time?)
}

/// Sets the idempotency header of an HTTP delivery to the event id.
fn with_id(mut delivery: crate::replay::Delivery, id: &str) -> crate::replay::Delivery {
    if let Route::Http { headers, .. } = &mut delivery.route {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(ID_HEADER));
        headers.push((ID_HEADER.to_owned(), id.to_owned()));
    }
    delivery
}

/// The id an event is journaled and sent under.
fn id_of(c: &Candidate) -> &str {
    c.event_id.as_deref().unwrap_or(&c.message_id)
}

mod slice;
