//! `dlq-triage replay`: send stored payloads back, as the failed target would have
//! received them.
//!
//! The flow: [`select`] the records the reports list with a stored payload (once each,
//! filtered) → for each, skip it when the journal says it was sent → read its payload →
//! [`Plan`] its delivery (the body, transformed for `--to-target`, and where it goes) → on
//! a dry run, count it; with `--execute`, hand it to the [`Courier`] at the `--rate`, with
//! at most `--concurrency` in flight, retrying 429/5xx/throttling with backoff that honours
//! `Retry-After`, until the circuit breaker opens → journal the outcome.
//!
//! Ports: [`Plan`] (fixed destinations, or the rule's target looked up in EventBridge),
//! [`Courier`] (HTTP, SQS, Lambda, EventBridge through [`AwsCourier`]), [`plan::TargetDirectory`]
//! (`ListTargetsByRule` / `DescribeApiDestination` through [`crate::targets::AwsTargets`]). Nothing here
//! writes or deletes a payload or a report.

mod courier;
mod edit;
mod journal;
mod plan;
mod resolve;
mod select;
mod transform;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;

pub(crate) use courier::{AwsCourier, Route};
pub use edit::EditError;
pub(crate) use edit::{Edit, Edited, diff};
pub(crate) use journal::{Entry, Journal, JournalError, Status};
pub(crate) use plan::{AnyPlan, Fixed, FixedPlan, Plan, PlanError, Planned, TargetPlan};
pub(crate) use select::{Candidate, Selection, Selector};
pub use transform::{RuleContext, TargetInput, apply};

use crate::classify::FailureCategory;
use crate::reports::Reader;

/// One record's delivery: the bytes and where they go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Delivery {
    /// The body, exactly as it will be sent.
    pub body: Vec<u8>,
    /// Where and how.
    pub route: Route,
}

/// How one attempt to deliver ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Attempt {
    /// Accepted.
    Delivered {
        /// The HTTP status, when the destination spoke HTTP.
        http_status: Option<u16>,
    },
    /// Failed in a way another attempt may fix (429, 5xx, throttling, a timeout).
    Retry {
        /// The HTTP status, if any.
        http_status: Option<u16>,
        /// What went wrong.
        error: String,
        /// `Retry-After` (or the service's own retry hint).
        after: Option<Duration>,
    },
    /// Refused; sending the same again would be refused again.
    Rejected {
        /// The HTTP status, if any.
        http_status: Option<u16>,
        /// Why.
        error: String,
    },
}

/// Sends one delivery. Implemented by [`AwsCourier`]; the engine's tests use a scripted one.
pub(crate) trait Courier: Send + Sync {
    /// One attempt, bounded by the courier's own timeout.
    fn send(&self, delivery: &Delivery) -> impl Future<Output = Attempt> + Send;
}

/// The knobs of a run.
#[derive(Debug, Clone)]
pub(crate) struct ReplayOptions {
    /// Send (`--execute`); otherwise only count what would be sent.
    pub execute: bool,
    /// Send again what the journal says was sent (`--force`).
    pub force: bool,
    /// Send every dead letter, even several copies of one event to one destination
    /// (`--per-message`); otherwise each (event id, destination) is sent once.
    pub per_message: bool,
    /// A header set to the event's `id` (its message id when it has none) on every HTTP
    /// delivery (`--id-header`), so a consumer that deduplicates can tell a replay from a
    /// new event.
    pub id_header: Option<String>,
    /// A jq program applied to each payload before it is planned (`--edit`).
    pub edit: Option<std::sync::Arc<Edit>>,
    /// Where edited payloads are written as they are sent (`replay-edits/` beside the
    /// journal).
    pub edits_dir: Option<std::path::PathBuf>,
    /// Attempts per second, retries included (`--rate`).
    pub rate: f64,
    /// Deliveries in flight at once (`--concurrency`).
    pub concurrency: usize,
    /// Attempts per record (`--max-attempts`).
    pub max_attempts: u32,
    /// Failed attempts in a row that open the circuit breaker (`--breaker`).
    pub breaker: u32,
    /// The first retry's backoff; doubled per attempt, with jitter.
    pub backoff: Duration,
    /// The longest backoff, and the longest `Retry-After` honoured; a longer one fails the
    /// record rather than hold the run.
    pub max_wait: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            execute: false,
            force: false,
            per_message: false,
            id_header: None,
            edit: None,
            edits_dir: None,
            rate: 10.0,
            concurrency: 4,
            max_attempts: 4,
            breaker: 5,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(120),
        }
    }
}

/// What a run did, for the summary and the exit status.
#[derive(Debug, Default)]
pub(crate) struct ReplaySummary {
    /// Records selected.
    pub selected: usize,
    /// Sent in this run (or, on a dry run, that would be sent).
    pub sent: usize,
    /// Skipped because the journal says an earlier run sent them.
    pub sent_before: usize,
    /// Failed after every attempt: (messageId, why).
    pub failed: Vec<(String, String)>,
    /// Cannot be sent: (messageId, why).
    pub skipped: Vec<(String, String)>,
    /// Not sent because another dead letter carries the same event to the same
    /// destination: (messageId, "duplicate of event …").
    pub duplicates: Vec<(String, String)>,
    /// Payloads `--edit` changed.
    pub edited: usize,
    /// Payloads `--edit` left as they were.
    pub unedited: usize,
    /// Records `--edit` dropped (its program yields nothing for them): not sent.
    pub dropped: Vec<String>,
    /// For the first few changed payloads: (messageId, unified diff stored → edited).
    pub diffs: Vec<(String, String)>,
    /// Not attempted because the run stopped (circuit breaker, Ctrl-C).
    pub not_attempted: usize,
    /// Per (category, destination): how many sent / would be sent.
    pub by_route: BTreeMap<(FailureCategory, String), usize>,
    /// Up to five message ids per (category, destination).
    pub samples: BTreeMap<(FailureCategory, String), Vec<String>>,
    /// Notes for the operator (targets that transform their input, sources PutEvents refuses).
    pub notes: BTreeSet<String>,
    /// Why the run stopped early, when it did.
    pub stopped: Option<String>,
    /// Attempts made.
    pub attempts: u64,
    /// Retries made after a 429/5xx/throttling answer.
    pub retries: u64,
}

impl ReplaySummary {
    /// Whether every selected record was sent (now or before), which is exit status 0.
    pub(crate) fn complete(&self) -> bool {
        self.failed.is_empty()
            && self.skipped.is_empty()
            && self.not_attempted == 0
            && self.stopped.is_none()
    }
}

/// Live counts for the progress display.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplayProgress {
    /// Records finished (any outcome).
    pub done: usize,
    /// Records in the run.
    pub total: usize,
    /// Sent.
    pub sent: usize,
    /// Failed or skipped.
    pub failed: usize,
}

/// Paces attempts at `rate` per second, across every task.
struct Pace {
    next: tokio::sync::Mutex<tokio::time::Instant>,
    interval: Duration,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        Pace {
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            interval: Duration::from_secs_f64(1.0 / rate.max(0.001)),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// The circuit breaker: opens after `threshold` failed attempts in a row.
struct Breaker {
    in_a_row: AtomicU32,
    threshold: u32,
    open: AtomicBool,
}

impl Breaker {
    fn success(&self) {
        self.in_a_row.store(0, Ordering::SeqCst);
    }

    fn failure(&self) {
        if self.in_a_row.fetch_add(1, Ordering::SeqCst) + 1 >= self.threshold {
            self.open.store(true, Ordering::SeqCst);
        }
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }
}

/// What a run reads payloads from, plans deliveries with, sends through, and journals to.
pub(crate) struct Ports<'a, P, C> {
    /// Reads payloads.
    pub reader: &'a Reader,
    /// Turns a record and its payload into a delivery.
    pub plan: &'a P,
    /// Sends a delivery.
    pub courier: &'a C,
    /// Consulted before and written after each record, when given.
    pub journal: Option<&'a Mutex<Journal>>,
}

/// How a run is watched and stopped from outside.
pub(crate) struct Control<'a> {
    /// Set (by Ctrl-C) to start no new record.
    pub stop: &'a AtomicBool,
    /// Called after each record with the live counts.
    pub progress: &'a (dyn Fn(ReplayProgress) + Sync),
}

/// One run's shared state: each record goes through [`Run::one`].
struct Run<'a, P, C> {
    ports: Ports<'a, P, C>,
    opts: &'a ReplayOptions,
    stop: &'a AtomicBool,
    pace: Pace,
    breaker: Breaker,
    attempts: AtomicU64,
    retries: AtomicU64,
    /// Changed payloads seen, for the dry run's diffs.
    diffs: std::sync::atomic::AtomicUsize,
}

/// How one record ended.
enum Outcome {
    Sent {
        key: (FailureCategory, String),
        note: Option<String>,
        http_status: Option<u16>,
        attempts: u32,
    },
    SentBefore,
    Failed {
        error: String,
        http_status: Option<u16>,
        attempts: u32,
    },
    Skipped(String),
    /// Another dead letter carries the same event to the same destination; why.
    Duplicate(String),
    /// `--edit` yields nothing for it.
    Dropped,
    NotAttempted,
}

/// What `--edit` did to a record's payload.
struct EditInfo {
    /// Whether the payload changed.
    changed: bool,
    /// sha256 of the stored payload and of what is sent.
    hashes: (String, String),
    /// The diff stored → edited, for the dry run's first few.
    diff: Option<String>,
}

/// How many changed payloads a dry run shows as diffs.
const DIFFS_SHOWN: usize = 3;

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

impl<'a, P: Plan, C: Courier> Run<'a, P, C> {
    /// One record, from the journal check to its last attempt; with the destination the
    /// journal records.
    async fn one(
        &self,
        c: &'a Candidate,
        earlier: Option<&Candidate>,
    ) -> (&'a Candidate, Outcome, String, Option<EditInfo>) {
        let destination = self.ports.plan.destination(c);
        if let Some(first) = earlier {
            let why = format!(
                "duplicate of event {} (sent as message {})",
                c.event_id.as_deref().unwrap_or_default(),
                first.message_id
            );
            return (c, Outcome::Duplicate(why), destination, None);
        }
        if self.breaker.is_open() || self.stop.load(Ordering::SeqCst) {
            return (c, Outcome::NotAttempted, String::new(), None);
        }
        let (outcome, edit) = match self.prepare(c, &destination).await {
            Err(outcome) => (outcome, None),
            Ok((planned, edit)) if !self.opts.execute => {
                let sent = Outcome::Sent {
                    key: (c.category, planned.label),
                    note: planned.note,
                    http_status: None,
                    attempts: 0,
                };
                (sent, edit)
            }
            Ok((planned, edit)) => (self.deliver(c, planned).await, edit),
        };
        (c, outcome, destination, edit)
    }

    /// The record's delivery, unless the journal says it (or, under another message id,
    /// its event) was sent, or its payload cannot be read or planned.
    async fn prepare(
        &self,
        c: &Candidate,
        destination: &str,
    ) -> Result<(Planned, Option<EditInfo>), Outcome> {
        if let Some(j) = self.ports.journal {
            let (this_sent, event_sent) = j
                .lock()
                .map(|j| {
                    let event_sent = c
                        .event_id
                        .as_deref()
                        .is_some_and(|e| j.event_was_sent(e, destination));
                    (j.was_sent(&c.message_id, destination), event_sent)
                })
                .unwrap_or((false, false));
            if this_sent && !self.opts.force {
                return Err(Outcome::SentBefore);
            }
            // Sent before under another message id: a copy, which --force does not resend.
            if event_sent && !this_sent && !self.opts.per_message {
                return Err(Outcome::Duplicate(format!(
                    "duplicate of event {}, which an earlier run sent to this destination",
                    c.event_id.as_deref().unwrap_or_default()
                )));
            }
        }
        let payload = self
            .ports
            .reader
            .read(&c.payload)
            .await
            .map_err(|e| Outcome::Skipped(format!("payload unreadable: {e}")))?;
        let (payload, edit) = self.edit(c, payload)?;
        let mut planned = self
            .ports
            .plan
            .plan(c, payload)
            .await
            .map_err(|e| Outcome::Skipped(e.to_string()))?;
        if let (Some(name), Route::Http { headers, .. }) =
            (&self.opts.id_header, &mut planned.delivery.route)
        {
            let id = c.event_id.as_deref().unwrap_or(&c.message_id);
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.clone(), id.to_owned()));
        }
        Ok((planned, edit))
    }

    /// `--edit` applied to a payload: what to send, and what the edit did. A changed
    /// payload is written to `replay-edits/` before it is sent (with `--execute`).
    fn edit(
        &self,
        c: &Candidate,
        payload: Vec<u8>,
    ) -> Result<(Vec<u8>, Option<EditInfo>), Outcome> {
        let Some(edit) = &self.opts.edit else {
            return Ok((payload, None));
        };
        let edited = match edit.apply(&payload) {
            Edited::Dropped => return Err(Outcome::Dropped),
            Edited::Failed(why) => return Err(Outcome::Skipped(format!("--edit: {why}"))),
            Edited::Unchanged => {
                let hash = sha256_hex(&payload);
                let info = EditInfo {
                    changed: false,
                    hashes: (hash.clone(), hash),
                    diff: None,
                };
                return Ok((payload, Some(info)));
            }
            Edited::Changed(edited) => edited,
        };
        if self.opts.execute
            && let Some(dir) = &self.opts.edits_dir
        {
            let path = dir.join(format!(
                "{}.json",
                crate::artifacts::safe_file_stem(&c.message_id)
            ));
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&path, &edited))
                .map_err(|e| {
                    Outcome::Skipped(format!(
                        "the edited payload could not be kept in {}: {e}",
                        path.display()
                    ))
                })?;
        }
        let shown = !self.opts.execute && self.diffs.fetch_add(1, Ordering::Relaxed) < DIFFS_SHOWN;
        let info = EditInfo {
            changed: true,
            hashes: (sha256_hex(&payload), sha256_hex(&edited)),
            diff: shown.then(|| diff(&payload, &edited)),
        };
        Ok((edited, Some(info)))
    }

    /// Attempts until delivered, refused, out of attempts, or the breaker opens; each
    /// attempt paced, each retry after `Retry-After` or a backoff. A 401/407 is tried
    /// again once, at once, when the plan can read the authorization afresh.
    async fn deliver(&self, c: &Candidate, mut planned: Planned) -> Outcome {
        let max_attempts = self.opts.max_attempts.max(1);
        let mut last = (String::new(), None);
        let mut reauthorized = false;
        for attempt in 1..=max_attempts {
            if self.breaker.is_open() {
                if attempt == 1 {
                    return Outcome::NotAttempted;
                }
                break;
            }
            self.pace.wait().await;
            self.attempts.fetch_add(1, Ordering::Relaxed);
            let (http_status, error, after) = match self.ports.courier.send(&planned.delivery).await
            {
                Attempt::Delivered { http_status } => {
                    self.breaker.success();
                    return Outcome::Sent {
                        key: (c.category, planned.label),
                        note: planned.note,
                        http_status,
                        attempts: attempt,
                    };
                }
                Attempt::Rejected { http_status, error } => {
                    self.breaker.failure();
                    if !reauthorized && attempt < max_attempts && unauthorized(http_status) {
                        // EventBridge reads a connection's authorization afresh on a 401
                        // or 407 and tries again: once.
                        reauthorized = true;
                        if let Some(fresh) = self.ports.plan.reauthorize(c, &planned.delivery).await
                        {
                            planned.delivery = fresh;
                            last = (error, http_status);
                            continue;
                        }
                    }
                    return Outcome::Failed {
                        error,
                        http_status,
                        attempts: attempt,
                    };
                }
                Attempt::Retry {
                    http_status,
                    error,
                    after,
                } => (http_status, error, after),
            };
            self.breaker.failure();
            if attempt == max_attempts {
                last = (error, http_status);
                break;
            }
            let wait = match after {
                Some(after) if after > self.opts.max_wait => {
                    return Outcome::Failed {
                        error: format!(
                            "{error}; Retry-After {} s is longer than the {} s this run waits",
                            after.as_secs(),
                            self.opts.max_wait.as_secs()
                        ),
                        http_status,
                        attempts: attempt,
                    };
                }
                Some(after) => after,
                None => backoff(self.opts, attempt),
            };
            last = (error, http_status);
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
        Outcome::Failed {
            error: last.0,
            http_status: last.1,
            attempts: max_attempts,
        }
    }
}

/// Replays `candidates`: dry run or `--execute`, per [`ReplayOptions`]. The journal is
/// consulted before and written after each record; `control.stop` (Ctrl-C) stops new
/// records.
pub(crate) async fn replay<P: Plan, C: Courier>(
    candidates: &[Candidate],
    ports: Ports<'_, P, C>,
    opts: &ReplayOptions,
    control: Control<'_>,
) -> ReplaySummary {
    let journal = ports.journal;
    let run = Run {
        ports,
        opts,
        stop: control.stop,
        pace: Pace::new(opts.rate),
        breaker: Breaker {
            in_a_row: AtomicU32::new(0),
            threshold: opts.breaker.max(1),
            open: AtomicBool::new(false),
        },
        attempts: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        diffs: std::sync::atomic::AtomicUsize::new(0),
    };
    let mut summary = ReplaySummary {
        selected: candidates.len(),
        ..ReplaySummary::default()
    };
    let mut live = ReplayProgress {
        total: candidates.len(),
        ..ReplayProgress::default()
    };
    let earlier = earlier_copies(candidates, run.ports.plan, opts.per_message);
    let mut results = futures::stream::iter(
        candidates
            .iter()
            .zip(earlier)
            .map(|(c, earlier)| run.one(c, earlier)),
    )
    .buffer_unordered(opts.concurrency.max(1));
    let mut journal_error: Option<JournalError> = None;
    while let Some((c, outcome, destination, edit)) = results.next().await {
        let line = summary.count(c, outcome, &mut live);
        let edit = edit.map(|e| summary.count_edit(c, e));
        let line = line
            .filter(|_| opts.execute)
            .map(|line| line.entry(c, destination, edit));
        if let (Some(line), Some(j)) = (line, journal)
            && let Err(e) = j
                .lock()
                .map_err(|_| JournalError::Poisoned)
                .and_then(|mut j| j.record(&line))
        {
            // Stop: a run that cannot keep its journal cannot be resumed safely.
            journal_error.get_or_insert(e);
            control.stop.store(true, Ordering::SeqCst);
        }
        live.done += 1;
        (control.progress)(live);
    }
    if let Some(j) = journal
        && let Err(e) = j
            .lock()
            .map_err(|_| JournalError::Poisoned)
            .and_then(|j| j.sync())
    {
        journal_error.get_or_insert(e);
    }
    summary.attempts = run.attempts.load(Ordering::Relaxed);
    summary.retries = run.retries.load(Ordering::Relaxed);
    summary.stopped = if let Some(e) = journal_error {
        Some(format!("the journal could not be written: {e}"))
    } else if run.breaker.is_open() {
        Some(format!(
            "circuit breaker: {} failed attempts in a row; the destination is still failing, so the run stopped",
            run.breaker.threshold
        ))
    } else if control.stop.load(Ordering::SeqCst) && summary.not_attempted > 0 {
        Some("interrupted".to_owned())
    } else {
        None
    };
    summary
}

/// For each candidate, the first one before it that carries the same event (its `id`; a
/// body without one counts as its own event) to the same destination, if any: that copy is
/// sent, this one is not. Nothing is a copy with `per_message`.
fn earlier_copies<'c, P: Plan>(
    candidates: &'c [Candidate],
    plan: &P,
    per_message: bool,
) -> Vec<Option<&'c Candidate>> {
    let mut first: HashMap<(&str, String), &Candidate> = HashMap::new();
    candidates
        .iter()
        .map(|c| {
            let event = c.event_id.as_deref().filter(|_| !per_message)?;
            match first.entry((event, plan.destination(c))) {
                std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(c);
                    None
                }
            }
        })
        .collect()
}

/// What the journal records of one record's outcome.
struct JournalLine {
    status: Status,
    http_status: Option<u16>,
    error: Option<String>,
    attempts: u32,
}

impl JournalLine {
    /// The journal line; `edit`: the stored and sent payloads' hashes when `--edit`
    /// changed the payload.
    fn entry(
        self,
        c: &Candidate,
        destination: String,
        edit: Option<Option<(String, String)>>,
    ) -> Entry {
        let hashes = edit.flatten();
        Entry {
            message_id: c.message_id.clone(),
            event_id: c.event_id.clone(),
            edited: hashes.is_some(),
            original_sha256: hashes.as_ref().map(|h| h.0.clone()),
            sent_sha256: hashes.map(|h| h.1),
            destination,
            status: self.status,
            http_status: self.http_status,
            error: self.error,
            attempts: self.attempts,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

impl ReplaySummary {
    /// Counts what `--edit` did to a record's payload; the hashes the journal records when
    /// it changed.
    fn count_edit(&mut self, c: &Candidate, edit: EditInfo) -> Option<(String, String)> {
        if !edit.changed {
            self.unedited += 1;
            return None;
        }
        self.edited += 1;
        if let Some(d) = edit.diff {
            self.diffs.push((c.message_id.clone(), d));
        }
        Some(edit.hashes)
    }

    /// Counts one record's outcome; what the journal should say of it, if anything.
    fn count(
        &mut self,
        c: &Candidate,
        outcome: Outcome,
        live: &mut ReplayProgress,
    ) -> Option<JournalLine> {
        let line = |status, http_status, error, attempts| JournalLine {
            status,
            http_status,
            error,
            attempts,
        };
        match outcome {
            Outcome::Sent {
                key,
                note,
                http_status,
                attempts,
            } => {
                self.sent += 1;
                live.sent += 1;
                let samples = self.samples.entry(key.clone()).or_default();
                if samples.len() < 5 {
                    samples.push(c.message_id.clone());
                }
                *self.by_route.entry(key).or_default() += 1;
                self.notes.extend(note);
                Some(line(Status::Sent, http_status, None, attempts))
            }
            Outcome::SentBefore => {
                self.sent_before += 1;
                None
            }
            Outcome::Failed {
                error,
                http_status,
                attempts,
            } => {
                live.failed += 1;
                self.failed.push((c.message_id.clone(), error.clone()));
                Some(line(Status::Failed, http_status, Some(error), attempts))
            }
            Outcome::Skipped(why) => {
                live.failed += 1;
                self.skipped.push((c.message_id.clone(), why.clone()));
                Some(line(Status::Skipped, None, Some(why), 0))
            }
            Outcome::Duplicate(why) => {
                self.duplicates.push((c.message_id.clone(), why.clone()));
                Some(line(Status::Skipped, None, Some(why), 0))
            }
            Outcome::Dropped => {
                self.dropped.push(c.message_id.clone());
                let why = "dropped by --edit (its program yields nothing)".to_owned();
                Some(line(Status::Skipped, None, Some(why), 0))
            }
            Outcome::NotAttempted => {
                self.not_attempted += 1;
                None
            }
        }
    }
}

/// A 401 or 407: the destination refused the request's credentials.
fn unauthorized(http_status: Option<u16>) -> bool {
    matches!(http_status, Some(401 | 407))
}

/// Exponential backoff with jitter: `backoff × 2^(attempt-1)`, ±25 %, capped.
fn backoff(opts: &ReplayOptions, attempt: u32) -> Duration {
    let base = opts
        .backoff
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(opts.max_wait);
    base.mul_f64(0.75 + fastrand::f64() * 0.5)
}

/// Reads an HTTP `Retry-After`: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// How many per second `done` things since `since` are (the elapsed time counted as at
/// least 1 ms), for the progress line's rate.
pub(crate) fn rate_per_second(done: usize, since: Instant) -> f64 {
    done as f64 / since.elapsed().as_secs_f64().max(0.001)
}

#[cfg(test)]
mod tests;
