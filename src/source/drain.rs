//! Draining a dead-letter queue page by page: receive a page, run the pipeline on it,
//! delete what the pipeline stored, and release everything else when the run ends.
//!
//! Every message received stays invisible until the run ends (the visibility timeout is
//! extended while the run works), and is then deleted (stored, with `--delete`) or made
//! visible again. Releasing earlier, at the end of each page, would hand the same messages
//! straight back to the next page's receives (SQS returns them first), so a run without
//! `--delete` could never get past its first page.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;

use super::{DeadLetterQueue, HandleOutcome, QueueInfo, Received};
use crate::classify::FailureCategory;
use crate::correlate::Correlate;
use crate::dlq::DeadLetter;
use crate::notify::Notifier;
use crate::store::ArtifactStore;
use crate::targets::{TargetInputLookup, TargetInputs, failed_targets};
use crate::triage::{self, TriageOptions};

/// Receives in a row that bring no message not already seen in this run before the queue
/// counts as drained (only messages whose visibility lapsed keep coming back).
const STALE_RECEIVES: u32 = 3;

/// How a drain runs.
#[derive(Debug, Clone)]
pub struct DrainOptions {
    /// Stop after this many distinct messages; `None` drains the queue.
    pub max_messages: Option<usize>,
    /// Messages per page: one pipeline run and one report each.
    pub page_size: usize,
    /// How long received messages stay invisible; extended while the run works.
    pub visibility: Duration,
    /// Delete the messages that were stored.
    pub delete: bool,
    /// The pipeline's options for every page (a new report id and time per page).
    pub page: TriageOptions,
    /// Looks up how each page's failed targets take their input, for its report.
    pub target_lookup: Option<std::sync::Arc<TargetInputLookup>>,
    /// Announces each stored page report on a bus (`NOTIFY_EVENT_BUS`): the notifier and
    /// the bucket the reports are in.
    pub notify: Option<(Notifier, String)>,
}

/// The most a page waits for the notification bus.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// The most a page spends looking up how its failed targets take their input.
const TARGET_LOOKUP_BUDGET: Duration = Duration::from_secs(2);

/// Counts while the drain works, for progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageProgress {
    /// Pages finished.
    pub pages: usize,
    /// Distinct messages received.
    pub received: usize,
    /// Messages stored (payload and report).
    pub written: usize,
    /// Messages deleted.
    pub deleted: usize,
    /// Messages visible in the queue at the last look, if known.
    pub left: Option<u64>,
}

/// What a drain did.
#[derive(Debug, Clone)]
pub struct DrainSummary {
    /// The queue when the run started.
    pub start: QueueInfo,
    /// The queue when the run ended, if it could be read.
    pub end: Option<QueueInfo>,
    /// Distinct messages received.
    pub received: usize,
    /// Extra receipts of messages already received in this run (SQS delivers at least
    /// once); each is the same record.
    pub duplicates: usize,
    /// Messages whose payload and page report were stored.
    pub written: usize,
    /// Messages deleted from the queue.
    pub deleted: usize,
    /// With `--delete`: stored messages that could not be deleted, and why. They will be
    /// received again; their stored payloads will be overwritten with the same bytes.
    pub not_deleted: Vec<(String, String)>,
    /// Messages made visible again at the end.
    pub released: usize,
    /// The report keys (JSON), one per page.
    pub reports: Vec<String>,
    /// Stored records per category.
    pub by_category: BTreeMap<FailureCategory, usize>,
    /// Why the run stopped early, if it did (the page in hand was finished).
    pub stopped: Option<String>,
    /// Whether the run was interrupted (Ctrl-C).
    pub interrupted: bool,
    /// Page reports whose event could not be put on the notification bus.
    pub notify_failed: usize,
}

impl DrainSummary {
    fn new(start: QueueInfo) -> DrainSummary {
        DrainSummary {
            start,
            end: None,
            received: 0,
            duplicates: 0,
            written: 0,
            deleted: 0,
            not_deleted: Vec::new(),
            released: 0,
            reports: Vec::new(),
            by_category: BTreeMap::new(),
            stopped: None,
            interrupted: false,
            notify_failed: 0,
        }
    }

    /// Whether every received message was written and, when deleting, deleted.
    pub fn complete(&self, delete: bool) -> bool {
        self.stopped.is_none()
            && self.written == self.received
            && (!delete || self.deleted == self.received)
    }

    fn progress(&self, pages: usize, left: Option<u64>) -> PageProgress {
        PageProgress {
            pages,
            received: self.received,
            written: self.written,
            deleted: self.deleted,
            left,
        }
    }
}

/// One message received in this run.
#[derive(Debug, Default)]
struct Held {
    /// Every receipt handle, oldest first; the last one is the one SQS honours.
    handles: Vec<String>,
    stored: bool,
    deleted: bool,
}

/// Drains `queue`, as `start` found it (the caller's first look, which also tells whether
/// the queue can be used at all), into `store` through the pipeline. Anything that fails
/// later stops the run with the reason in [`DrainSummary::stopped`], after the page in hand
/// is finished and everything not deleted is released.
pub async fn drain<Q, S, C>(
    queue: &Q,
    start: QueueInfo,
    store: &S,
    correlator: &C,
    opts: &DrainOptions,
    stop: &AtomicBool,
    progress: &(dyn Fn(&PageProgress) + Sync),
) -> DrainSummary
where
    Q: DeadLetterQueue,
    S: ArtifactStore,
    C: Correlate,
{
    let drain = Drain {
        queue,
        store,
        correlator,
        opts,
        stop,
        progress,
        held: Mutex::new(HashMap::new()),
    };
    let mut summary = DrainSummary::new(start);
    tokio::select! {
        () = drain.run_pages(&mut summary) => {}
        () = keep_invisible(queue, &drain.held, opts.visibility) => {}
    }
    summary.released = release(queue, &drain.held).await;
    summary.end = queue.describe().await.ok();
    summary
}

/// One drain's queue, store, correlation and settings, and the messages it holds.
struct Drain<'a, Q, S, C> {
    queue: &'a Q,
    store: &'a S,
    correlator: &'a C,
    opts: &'a DrainOptions,
    stop: &'a AtomicBool,
    progress: &'a (dyn Fn(&PageProgress) + Sync),
    /// Every message received in this run, by message id.
    held: Mutex<HashMap<String, Held>>,
}

impl<Q: DeadLetterQueue, S: ArtifactStore, C: Correlate> Drain<'_, Q, S, C> {
    /// Pages until the queue is drained, `--max-messages` is reached, the run is stopped,
    /// or something fails.
    async fn run_pages(&self, summary: &mut DrainSummary) {
        let Drain {
            queue,
            store,
            correlator,
            opts,
            stop,
            progress,
            ..
        } = *self;
        let held = &self.held;
        let mut pages = 0;
        let mut exhausted = false;
        let max = opts.max_messages.unwrap_or(usize::MAX);
        while !exhausted && summary.stopped.is_none() && summary.received < max {
            if stop.load(Ordering::SeqCst) {
                summary.interrupted = true;
                break;
            }
            // 1. A page of messages not seen before in this run.
            let mut page: Vec<Received> = Vec::new();
            let mut late: Vec<(String, String)> = Vec::new();
            let mut stale = 0;
            while page.len() < opts.page_size && summary.received < max {
                if stop.load(Ordering::SeqCst) {
                    summary.interrupted = true;
                    break;
                }
                let room = 10
                    .min(opts.page_size - page.len())
                    .min(max - summary.received);
                let got = match queue.receive(room, opts.visibility).await {
                    Ok(got) => got,
                    Err(e) => {
                        summary.stopped = Some(e.to_string());
                        break;
                    }
                };
                if got.is_empty() {
                    exhausted = true;
                    break;
                }
                let fresh = admit(got, held, opts.delete, &mut page, &mut late, summary);
                if fresh == 0 {
                    stale += 1;
                    if stale >= STALE_RECEIVES {
                        exhausted = true;
                        break;
                    }
                } else {
                    stale = 0;
                }
                progress(&summary.progress(pages, None));
            }
            // 2. The pipeline, then the deletes it makes safe.
            if !page.is_empty() {
                let letters: Vec<DeadLetter> = page.into_iter().map(|r| r.letter).collect();
                let stored = run_page(&letters, store, correlator, opts, held, summary).await;
                if opts.delete && !stored.is_empty() {
                    delete_stored(queue, &stored, held, summary).await;
                }
                pages += 1;
            }
            // 3. Second receipts of messages stored earlier in the run.
            if !late.is_empty() {
                delete_late(queue, late, held, summary).await;
            }
            let left = queue.describe().await.ok().map(|q| q.visible);
            progress(&summary.progress(pages, left));
        }
    }
}

/// Adds received messages to the page, or, for messages already seen in this run, their
/// new receipt handle to the message. Returns how many were new. A new receipt of a
/// message already stored goes to `late` for deletion when deleting.
fn admit(
    got: Vec<Received>,
    held: &Mutex<HashMap<String, Held>>,
    delete: bool,
    page: &mut Vec<Received>,
    late: &mut Vec<(String, String)>,
    summary: &mut DrainSummary,
) -> usize {
    let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
    let mut fresh = 0;
    for r in got {
        match held.get_mut(&r.letter.message_id) {
            Some(known) => {
                summary.duplicates += 1;
                known.handles.push(r.receipt_handle.clone());
                if delete && known.stored {
                    late.push((r.letter.message_id.clone(), r.receipt_handle));
                }
            }
            None => {
                fresh += 1;
                summary.received += 1;
                held.insert(
                    r.letter.message_id.clone(),
                    Held {
                        handles: vec![r.receipt_handle.clone()],
                        ..Held::default()
                    },
                );
                page.push(r);
            }
        }
    }
    fresh
}

/// Runs the pipeline over one page; returns the ids it stored.
async fn run_page<S: ArtifactStore, C: Correlate>(
    letters: &[DeadLetter],
    store: &S,
    correlator: &C,
    opts: &DrainOptions,
    held: &Mutex<HashMap<String, Held>>,
    summary: &mut DrainSummary,
) -> Vec<String> {
    let mut page_opts = opts.page.clone();
    page_opts.now = Utc::now();
    page_opts.report_id = triage::report_id(page_opts.now, &format!("{:08x}", fastrand::u32(..)));
    if let Some(lookup) = &opts.target_lookup {
        page_opts.target_inputs = lookup
            .describe(failed_targets(letters), TARGET_LOOKUP_BUDGET)
            .await;
    }
    let outcome = Box::pin(triage::run(letters, store, correlator, &page_opts)).await;
    if let Some(e) = &outcome.batch_error {
        summary.stopped = Some(e.to_string());
        return Vec::new();
    }
    if let Some(keys) = &outcome.report_keys {
        summary.reports.push(keys.0.clone());
        if let Some((notifier, bucket)) = &opts.notify {
            let announced = notifier
                .announce(&outcome.report, bucket, keys, NOTIFY_TIMEOUT)
                .await;
            if let Err(e) = announced {
                tracing::warn!(error = %e, "the page report's event was not put on the notification bus");
                summary.notify_failed += 1;
            }
        }
    }
    let returned: HashSet<&str> = outcome.returned.iter().map(String::as_str).collect();
    let stored: Vec<String> = letters
        .iter()
        .map(|l| l.message_id.clone())
        .filter(|id| !returned.contains(id.as_str()))
        .collect();
    for record in &outcome.report.records {
        if !returned.contains(record.message_id.as_str()) {
            *summary
                .by_category
                .entry(record.failure_category)
                .or_insert(0) += 1;
        }
    }
    let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
    for id in &stored {
        if let Some(h) = held.get_mut(id) {
            h.stored = true;
        }
    }
    summary.written += stored.len();
    stored
}

/// Deletes every receipt of the stored messages; a message counts as deleted when its
/// latest receipt was.
async fn delete_stored<Q: DeadLetterQueue>(
    queue: &Q,
    stored: &[String],
    held: &Mutex<HashMap<String, Held>>,
    summary: &mut DrainSummary,
) {
    let receipts: Vec<(String, String)> = {
        let held = held.lock().unwrap_or_else(|e| e.into_inner());
        stored
            .iter()
            .filter_map(|id| held.get(id).map(|h| (id, h)))
            .flat_map(|(id, h)| {
                h.handles
                    .iter()
                    .map(move |handle| (id.clone(), handle.clone()))
            })
            .collect()
    };
    delete_receipts(queue, receipts, held, summary).await;
}

/// Deletes new receipts of messages stored earlier in the run.
async fn delete_late<Q: DeadLetterQueue>(
    queue: &Q,
    late: Vec<(String, String)>,
    held: &Mutex<HashMap<String, Held>>,
    summary: &mut DrainSummary,
) {
    // A message whose earlier delete failed is counted again below if this one works.
    summary
        .not_deleted
        .retain(|(id, _)| !late.iter().any(|(l, _)| l == id));
    delete_receipts(queue, late, held, summary).await;
}

async fn delete_receipts<Q: DeadLetterQueue>(
    queue: &Q,
    receipts: Vec<(String, String)>,
    held: &Mutex<HashMap<String, Held>>,
    summary: &mut DrainSummary,
) {
    let mut outcome_of: HashMap<&str, (&str, HandleOutcome)> = HashMap::new();
    for chunk in receipts.chunks(10) {
        let handles: Vec<String> = chunk.iter().map(|(_, h)| h.clone()).collect();
        let outcomes = match queue.delete(&handles).await {
            Ok(o) => o,
            Err(e) => {
                // Nothing of this chunk, or after it, is reported as deleted.
                summary.stopped = Some(e.to_string());
                vec![HandleOutcome::Failed(e.to_string()); handles.len()]
            }
        };
        for ((id, handle), outcome) in chunk.iter().zip(outcomes) {
            outcome_of.insert(handle, (id, outcome));
        }
        if summary.stopped.is_some() {
            break;
        }
    }
    let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
    let ids: Vec<&str> = {
        let mut seen = HashSet::new();
        receipts
            .iter()
            .map(|(id, _)| id.as_str())
            .filter(|id| seen.insert(*id))
            .collect()
    };
    for id in ids {
        let Some(h) = held.get_mut(id) else { continue };
        if h.deleted {
            continue;
        }
        let latest = h.handles.last().map(String::as_str).unwrap_or_default();
        match outcome_of.get(latest).map(|(_, o)| o) {
            Some(HandleOutcome::Done) => {
                h.deleted = true;
                summary.deleted += 1;
            }
            Some(HandleOutcome::Expired) => summary.not_deleted.push((
                id.to_owned(),
                "receipt handle expired: the message will be received again".into(),
            )),
            Some(HandleOutcome::Failed(reason)) => {
                summary.not_deleted.push((id.to_owned(), reason.clone()))
            }
            None => summary
                .not_deleted
                .push((id.to_owned(), "delete not attempted".into())),
        }
    }
}

/// Keeps every message held by the run invisible, extending its visibility at half the
/// timeout. Never returns.
async fn keep_invisible<Q: DeadLetterQueue>(
    queue: &Q,
    held: &Mutex<HashMap<String, Held>>,
    visibility: Duration,
) {
    if visibility < Duration::from_secs(2) {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(visibility / 2).await;
        set_visibility(
            queue,
            held,
            visibility,
            "could not extend the visibility of received messages",
        )
        .await;
    }
}

/// Makes every message not deleted visible again; returns how many.
async fn release<Q: DeadLetterQueue>(queue: &Q, held: &Mutex<HashMap<String, Held>>) -> usize {
    set_visibility(
        queue,
        held,
        Duration::ZERO,
        "could not release messages; they reappear after their visibility timeout",
    )
    .await
}

/// Sets the visibility of every message held and not deleted (its latest receipt), 10 per
/// call; returns how many changed. A failed call is logged with `failure`: the messages
/// then keep the visibility they had.
async fn set_visibility<Q: DeadLetterQueue>(
    queue: &Q,
    held: &Mutex<HashMap<String, Held>>,
    visibility: Duration,
    failure: &str,
) -> usize {
    let handles = latest_handles(held);
    let mut changed = 0;
    for chunk in handles.chunks(10) {
        match queue.change_visibility(chunk, visibility).await {
            Ok(outcomes) => {
                changed += outcomes
                    .iter()
                    .filter(|o| **o == HandleOutcome::Done)
                    .count()
            }
            Err(e) => tracing::warn!(error = %e, "{failure}"),
        }
    }
    changed
}

fn latest_handles(held: &Mutex<HashMap<String, Held>>) -> Vec<String> {
    held.lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter(|h| !h.deleted)
        .filter_map(|h| h.handles.last().cloned())
        .collect()
}
