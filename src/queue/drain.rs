//! Draining a dead-letter queue: `concurrency` receive loops fill pages; one page at a
//! time runs through the pipeline while the next is being received; what a page stored is
//! deleted in batches of 10, several batches in flight; everything received and not
//! deleted is made visible again when the run ends.
//!
//! ```text
//!  receive loop ×N ──pages (1 waiting)──▶ pipeline, page by page ──receipts──▶ deletes ×N
//!        │                                                                    ▲
//!        └────────── second receipts of messages already stored ──────────────┘
//! ```
//!
//! Every message received stays invisible until the run ends (the visibility timeout is
//! extended while the run works), and is then deleted (stored, with `--delete`) or made
//! visible again. Releasing earlier, at the end of each page, would hand the same messages
//! straight back to the next receives (SQS returns them first), so a run without
//! `--delete` could never get past its first page.
//!
//! Memory is bounded by the pages in flight, at most four: the page being written, one
//! waiting for the writer, one waiting to be handed over (while it waits, no loop
//! receives), and one filling from the receives that were in flight. A deleted message
//! leaves only a 16-byte digest of its id behind, kept to recognise a second delivery.
//! Without `--delete` every receipt is held until the end.
//!
//! A FIFO queue is received by one loop, and no receive spans two pages: SQS gives out
//! no more of a message group while one of its messages is in flight, so a message a page
//! could not store holds back the rest of its group, in order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::mpsc::{Receiver, Sender};

use super::{DeadLetterQueue, HandleOutcome, QueueError, QueueInfo, Received};
use crate::classify::FailureCategory;
use crate::correlate::Correlate;
use crate::dlq::DeadLetter;
use crate::service::TriageService;
use crate::triage::{self, BatchError, TriageOptions};

/// Receives in a row that bring no message not already seen in this run before the queue
/// counts as drained (only messages whose visibility lapsed keep coming back).
const STALE_RECEIVES: u32 = 3;

/// How a drain runs.
#[derive(Debug, Clone)]
pub(crate) struct DrainOptions {
    /// Stop after this many distinct messages; `None` drains the queue.
    pub max_messages: Option<usize>,
    /// Messages per page: one pipeline run and one report each.
    pub page_size: usize,
    /// Receive loops, and delete or visibility calls in flight at once (1 for a FIFO
    /// queue, whatever is asked).
    pub concurrency: usize,
    /// How long received messages stay invisible; extended while the run works.
    pub visibility: Duration,
    /// Delete the messages that were stored.
    pub delete: bool,
    /// The pipeline's options for every page (a new report id and time per page).
    pub page: TriageOptions,
}

/// Counts while the drain works, for progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PageProgress {
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

/// Why a drain stopped early: the pages in hand were finished, the rest released.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DrainStopped {
    /// A receive or a delete failed (after the SDK's retries).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A page's report could not be stored, so none of its messages may be deleted.
    #[error(transparent)]
    Page(#[from] BatchError),
}

/// What a drain did.
#[derive(Debug, Clone)]
pub(crate) struct DrainSummary {
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
    /// Messages held at the end that could not be made visible again: they come back
    /// when their visibility timeout lapses.
    pub unreleased: usize,
    /// The report keys (JSON), one per page.
    pub reports: Vec<String>,
    /// Stored records per category.
    pub by_category: BTreeMap<FailureCategory, usize>,
    /// Why the run stopped early, if it did (the pages in hand were finished).
    pub stopped: Option<DrainStopped>,
    /// Whether the run was interrupted (Ctrl-C).
    pub interrupted: bool,
    /// Events (page reports', incidents') that could not be put on the notification bus.
    pub notify_failed: usize,
    /// Incidents of a page the incident table did not take (`INCIDENT_TABLE`).
    pub incident_update_failed: usize,
    /// Incident transitions announced.
    pub incident_events: usize,
    /// Incident transitions recorded and not put (no bus, refused, silenced): in their
    /// items' outboxes for a later run, the function or `incidents sweep`.
    pub incident_unannounced: usize,
    /// Page reports stored without their page (`report.html`).
    pub pages_not_stored: usize,
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
            unreleased: 0,
            reports: Vec::new(),
            by_category: BTreeMap::new(),
            stopped: None,
            interrupted: false,
            notify_failed: 0,
            incident_update_failed: 0,
            incident_events: 0,
            incident_unannounced: 0,
            pages_not_stored: 0,
        }
    }

    /// Whether every received message was written and, when deleting, deleted.
    pub(crate) fn complete(&self, delete: bool) -> bool {
        self.stopped.is_none()
            && self.written == self.received
            && (!delete || self.deleted == self.received)
    }
}

/// One message received in this run and not deleted.
#[derive(Debug, Default)]
struct Held {
    /// Every receipt handle, oldest first; the last one is the one SQS honours.
    handles: Vec<String>,
    stored: bool,
}

/// What the run knows, shared by its loops.
struct State {
    summary: DrainSummary,
    /// Messages received and not deleted, by message id.
    held: HashMap<String, Held>,
    /// Digests of the ids of messages deleted in this run.
    deleted: HashSet<u128>,
    /// Received messages not yet in a page, in order.
    pending: Vec<Received>,
    /// Messages asked for by receives in flight (they count against `--max-messages`).
    asked: usize,
    /// Receives in a row that brought nothing new.
    stale: u32,
    /// The queue answered empty, or only with messages already seen.
    exhausted: bool,
    pages: usize,
    left: Option<u64>,
}

/// The digest a deleted message's id is remembered by.
fn digest(id: &str) -> u128 {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(id.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    u128::from_le_bytes(first)
}

/// A batch of (message id, receipt handle) to delete.
type Receipts = Vec<(String, String)>;

/// On a FIFO queue, a page's turn: the next page is not received until the turn is
/// dropped, once the page is written and its deletes are done. `None` elsewhere.
type Turn<'a> = Option<Arc<tokio::sync::SemaphorePermit<'a>>>;

/// Drains `queue`, as `start` found it (the caller's first look, which also tells whether
/// the queue can be used at all), through the triage `service`, page by page. Anything that fails
/// later stops the run with the reason in [`DrainSummary::stopped`], after the pages in
/// hand are finished and everything not deleted is released.
pub(crate) async fn drain(
    queue: &dyn DeadLetterQueue,
    start: QueueInfo,
    service: &TriageService,
    correlator: &dyn Correlate,
    opts: &DrainOptions,
    stop: &AtomicBool,
    progress: &(dyn Fn(&PageProgress) + Sync),
) -> DrainSummary {
    let fifo = start.is_fifo();
    let concurrency = if fifo { 1 } else { opts.concurrency.max(1) };
    let drain = Drain {
        queue,
        service,
        correlator,
        opts,
        concurrency,
        fifo,
        stop,
        progress,
        state: Mutex::new(State {
            summary: DrainSummary::new(start),
            held: HashMap::new(),
            deleted: HashSet::new(),
            pending: Vec::new(),
            asked: 0,
            stale: 0,
            exhausted: false,
            pages: 0,
            left: None,
        }),
        delete_failed: AtomicBool::new(false),
        fifo_turn: tokio::sync::Semaphore::new(1),
        handing_over: tokio::sync::Mutex::new(()),
    };
    // One page is written, one waits in the channel, one waits to be handed over (and
    // the receive loops with it), one fills from the receives that were in flight.
    let (pages_tx, pages_rx) = tokio::sync::mpsc::channel(1);
    let (receipts_tx, receipts_rx) = tokio::sync::mpsc::channel(4);
    let work = async {
        tokio::join!(
            drain.receive(pages_tx, receipts_tx.clone()),
            drain.write(pages_rx, receipts_tx),
            drain.delete(receipts_rx),
        )
    };
    tokio::select! {
        _ = work => {}
        () = drain.keep_invisible() => {}
        () = drain.watch_depth() => {}
    }
    let held = drain.state().held.len();
    let released = drain
        .set_visibility(
            Duration::ZERO,
            "could not release messages; they reappear after their visibility timeout",
        )
        .await;
    let mut summary = drain
        .state
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .summary;
    summary.released = released;
    summary.unreleased = held.saturating_sub(released);
    summary.end = queue.describe().await.ok();
    summary
}

/// One drain's queue, service, correlation and settings, and what it knows.
struct Drain<'a> {
    queue: &'a dyn DeadLetterQueue,
    service: &'a TriageService,
    correlator: &'a dyn Correlate,
    opts: &'a DrainOptions,
    /// Receive loops, and delete or visibility calls in flight.
    concurrency: usize,
    /// A FIFO queue: one receive loop, and receives that end at a page's end.
    fifo: bool,
    stop: &'a AtomicBool,
    progress: &'a (dyn Fn(&PageProgress) + Sync),
    state: Mutex<State>,
    /// A delete call failed as a whole: no more are attempted.
    delete_failed: AtomicBool,
    /// One page at a time on a FIFO queue (see [`Turn`]).
    fifo_turn: tokio::sync::Semaphore,
    /// Held by a receive loop handing a full page over to the writer.
    handing_over: tokio::sync::Mutex<()>,
}

impl Drain<'_> {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn report(&self) {
        let progress = {
            let s = self.state();
            PageProgress {
                pages: s.pages,
                received: s.summary.received,
                written: s.summary.written,
                deleted: s.summary.deleted,
                left: s.left,
            }
        };
        (self.progress)(&progress);
    }

    /// Runs the receive loops until the queue is drained, `--max-messages` is reached,
    /// the run is stopped, or something fails; then hands the last, partial page on.
    async fn receive<'s>(
        &'s self,
        pages: Sender<(Vec<Received>, Turn<'s>)>,
        late: Sender<(Receipts, Turn<'s>)>,
    ) {
        let loops = (0..self.concurrency).map(|_| self.receive_loop(&pages, &late));
        let turns = futures::future::join_all(loops).await;
        let rest = std::mem::take(&mut self.state().pending);
        if !rest.is_empty() {
            let _ = pages.send((rest, turns.into_iter().flatten().next())).await;
        }
    }

    /// One receive loop; returns the turn of the page it was filling (FIFO).
    async fn receive_loop<'s>(
        &'s self,
        pages: &Sender<(Vec<Received>, Turn<'s>)>,
        late: &Sender<(Receipts, Turn<'s>)>,
    ) -> Turn<'s> {
        let mut turn = None;
        loop {
            if self.fifo && turn.is_none() {
                turn = self.fifo_turn.acquire().await.ok().map(Arc::new);
            }
            // While a full page waits to be handed over, no loop receives more.
            drop(self.handing_over.lock().await);
            let Some(room) = self.ask() else {
                return turn;
            };
            let got = self.queue.receive(room, self.opts.visibility).await;
            let (full, seen_again) = {
                let mut s = self.state();
                s.asked -= room;
                match got {
                    Ok(got) => admit(&mut s, got, self.opts),
                    Err(e) => {
                        s.summary.stopped.get_or_insert(e.into());
                        (Vec::new(), Vec::new())
                    }
                }
            };
            self.report();
            if !seen_again.is_empty() && late.send((seen_again, None)).await.is_err() {
                return None;
            }
            for page in full {
                let _handing_over = self.handing_over.lock().await;
                if pages.send((page, turn.take())).await.is_err() {
                    return None;
                }
            }
        }
    }

    /// How many messages the next receive asks for; `None` when receiving is over.
    fn ask(&self) -> Option<usize> {
        let mut s = self.state();
        if self.stop.load(Ordering::SeqCst) {
            s.summary.interrupted = true;
            return None;
        }
        if s.exhausted || s.summary.stopped.is_some() {
            return None;
        }
        let max = self.opts.max_messages.unwrap_or(usize::MAX);
        let mut room = 10.min(max.saturating_sub(s.summary.received + s.asked));
        if self.fifo {
            // A receive never spans two pages: a group whose message a page could not
            // store gets nothing more from SQS while that message is held, but messages
            // received with it would be stored by the next page.
            room = room.min(self.opts.page_size - s.pending.len());
        }
        s.asked += room;
        (room > 0).then_some(room)
    }

    /// Runs the pipeline on each page in turn and passes what it stored on for deletion.
    /// After a page fails to be stored, later pages are not written (they are released).
    async fn write<'s>(
        &'s self,
        mut pages: Receiver<(Vec<Received>, Turn<'s>)>,
        deletes: Sender<(Receipts, Turn<'s>)>,
    ) {
        let mut failed = false;
        while let Some((page, turn)) = pages.recv().await {
            if failed {
                continue;
            }
            let letters: Vec<DeadLetter> = page.into_iter().map(|r| r.letter).collect();
            let stored = match self.run_page(letters).await {
                Ok(stored) => stored,
                Err(e) => {
                    failed = true;
                    self.state().summary.stopped.get_or_insert(e.into());
                    continue;
                }
            };
            let receipts: Receipts = {
                let mut s = self.state();
                s.pages += 1;
                s.summary.written += stored.len();
                let mut receipts = Vec::new();
                for id in stored {
                    if let Some(h) = s.held.get_mut(&id) {
                        h.stored = true;
                        receipts.extend(h.handles.iter().map(|r| (id.clone(), r.clone())));
                    }
                }
                receipts
            };
            self.report();
            if self.opts.delete
                && !receipts.is_empty()
                && deletes.send((receipts, turn)).await.is_err()
            {
                return;
            }
        }
    }

    /// Runs the triage service over one page; the ids it stored, or why the page failed.
    async fn run_page(&self, mut letters: Vec<DeadLetter>) -> Result<Vec<String>, BatchError> {
        let mut page_opts = self.opts.page.clone();
        page_opts.now = Utc::now();
        page_opts.report_id =
            triage::report_id(page_opts.now, &format!("{:08x}", fastrand::u32(..)));
        let done = self
            .service
            .triage(&mut letters, self.correlator, page_opts)
            .await;
        let page_not_stored = done.page_not_stored();
        let outcome = done.outcome;
        if let Some(e) = outcome.batch_error {
            return Err(e);
        }
        let returned: HashSet<&str> = outcome.returned.iter().map(String::as_str).collect();
        let mut s = self.state();
        let summary = &mut s.summary;
        if let Some(keys) = &outcome.report_keys {
            summary.reports.push(keys.json.clone());
        }
        summary.notify_failed += done.announce_failed;
        summary.incident_update_failed += done.incident_update_failed;
        summary.incident_events += done.incident_events;
        summary.incident_unannounced += done.incident_unannounced;
        summary.pages_not_stored += usize::from(page_not_stored);
        for record in &outcome.report.records {
            if !returned.contains(record.message_id.as_str()) {
                *summary
                    .by_category
                    .entry(record.failure_category)
                    .or_insert(0) += 1;
            }
        }
        Ok(letters
            .iter()
            .map(|l| l.message_id.clone())
            .filter(|id| !returned.contains(id.as_str()))
            .collect())
    }

    /// Deletes the receipts it is given, 10 per call, `concurrency` calls in flight.
    /// A page's turn (FIFO) ends when the last of its batches is done.
    async fn delete<'s>(&'s self, receipts: Receiver<(Receipts, Turn<'s>)>) {
        let batches = futures::stream::unfold(receipts, |mut rx| async move {
            rx.recv().await.map(|r| (r, rx))
        })
        .flat_map(|(receipts, turn)| {
            let chunks: Vec<(Receipts, Turn<'s>)> = receipts
                .chunks(10)
                .map(|c| (c.to_vec(), turn.clone()))
                .collect();
            futures::stream::iter(chunks)
        });
        batches
            .map(|(chunk, turn)| async move {
                self.delete_batch(chunk).await;
                // The turn ends here, once the batch is done, not when it is started.
                drop(turn);
            })
            .buffer_unordered(self.concurrency)
            .for_each(|()| async {})
            .await;
    }

    async fn delete_batch(&self, chunk: Receipts) {
        let handles: Vec<String> = chunk.iter().map(|(_, h)| h.clone()).collect();
        let outcomes = if self.delete_failed.load(Ordering::SeqCst) {
            vec![HandleOutcome::Failed("delete not attempted".into()); handles.len()]
        } else {
            match self.queue.delete(&handles).await {
                Ok(outcomes) => outcomes,
                Err(e) => {
                    // Nothing of this batch, or after it, is reported as deleted.
                    self.delete_failed.store(true, Ordering::SeqCst);
                    let failed = HandleOutcome::Failed(e.to_string());
                    self.state().summary.stopped.get_or_insert(e.into());
                    vec![failed; handles.len()]
                }
            }
        };
        {
            let mut s = self.state();
            for ((id, handle), outcome) in chunk.into_iter().zip(outcomes) {
                settle(&mut s, id, &handle, outcome);
            }
        }
        self.report();
    }

    /// Keeps every message held by the run invisible, extending its visibility at half the
    /// timeout. Never returns.
    async fn keep_invisible(&self) {
        let visibility = self.opts.visibility;
        if visibility < Duration::from_secs(2) {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(visibility / 2).await;
            self.set_visibility(
                visibility,
                "could not extend the visibility of received messages",
            )
            .await;
        }
    }

    /// Looks at the queue's depth every few seconds, for progress. Never returns.
    async fn watch_depth(&self) {
        loop {
            tokio::time::sleep(DEPTH_EVERY).await;
            if let Ok(info) = self.queue.describe().await {
                self.state().left = Some(info.visible);
                self.report();
            }
        }
    }

    /// Sets the visibility of every message held (its latest receipt), 10 per call,
    /// `concurrency` calls in flight; returns how many changed. A failed call is logged
    /// with `failure`: its messages keep the visibility they had.
    async fn set_visibility(&self, visibility: Duration, failure: &str) -> usize {
        let handles: Vec<String> = self
            .state()
            .held
            .values()
            .filter_map(|h| h.handles.last().cloned())
            .collect();
        futures::stream::iter(handles.chunks(10))
            .map(|chunk| async move {
                match self.queue.change_visibility(chunk, visibility).await {
                    Ok(outcomes) => outcomes
                        .iter()
                        .filter(|o| **o == HandleOutcome::Done)
                        .count(),
                    Err(e) => {
                        tracing::warn!(error = %e, "{failure}");
                        0
                    }
                }
            })
            .buffer_unordered(self.concurrency)
            .fold(0, |total, changed| async move { total + changed })
            .await
    }
}

/// How often the queue's depth is read for progress.
const DEPTH_EVERY: Duration = Duration::from_secs(2);

/// Takes received messages in: a new one joins the pending page, a known one adds its
/// receipt handle. Returns the pages now full, and the receipts to delete of messages
/// stored (or deleted) earlier in the run.
fn admit(s: &mut State, got: Vec<Received>, opts: &DrainOptions) -> (Vec<Vec<Received>>, Receipts) {
    if got.is_empty() {
        s.exhausted = true;
        return (Vec::new(), Vec::new());
    }
    let mut fresh = 0;
    let mut late = Vec::new();
    for r in got {
        let id = &r.letter.message_id;
        if let Some(known) = s.held.get_mut(id) {
            s.summary.duplicates += 1;
            known.handles.push(r.receipt_handle.clone());
            if opts.delete && known.stored {
                late.push((id.clone(), r.receipt_handle));
            }
        } else if s.deleted.contains(&digest(id)) {
            s.summary.duplicates += 1;
            late.push((id.clone(), r.receipt_handle));
        } else {
            fresh += 1;
            s.summary.received += 1;
            s.held.insert(
                id.clone(),
                Held {
                    handles: vec![r.receipt_handle.clone()],
                    stored: false,
                },
            );
            s.pending.push(r);
        }
    }
    if fresh == 0 {
        s.stale += 1;
        s.exhausted |= s.stale >= STALE_RECEIVES;
    } else {
        s.stale = 0;
    }
    let mut full = Vec::new();
    while s.pending.len() >= opts.page_size {
        let rest = s.pending.split_off(opts.page_size);
        full.push(std::mem::replace(&mut s.pending, rest));
    }
    (full, late)
}

/// Records what a delete did to one receipt. Only a message's latest receipt decides
/// whether it is deleted; a deleted message is forgotten but for its id's digest.
fn settle(s: &mut State, id: String, handle: &str, outcome: HandleOutcome) {
    let Some(held) = s.held.get(&id) else {
        // Deleted already: this is another receipt of it, delivered again.
        if outcome != HandleOutcome::Done {
            tracing::warn!(message_id = %id, ?outcome, "a second delivery of a deleted message could not be deleted; it will be received again");
        }
        return;
    };
    if held.handles.last().map(String::as_str) != Some(handle) {
        return;
    }
    let summary = &mut s.summary;
    match outcome {
        HandleOutcome::Done => {
            s.held.remove(&id);
            s.deleted.insert(digest(&id));
            summary.deleted += 1;
            if !summary.not_deleted.is_empty() {
                summary.not_deleted.retain(|(other, _)| *other != id);
            }
        }
        HandleOutcome::Expired => summary.not_deleted.push((
            id,
            "receipt handle expired: the message will be received again".into(),
        )),
        HandleOutcome::Failed(reason) => summary.not_deleted.push((id, reason)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;

    use super::*;
    use crate::artifacts::{Layout, MemoryStore};
    use crate::correlate::MemoryCorrelator;
    use crate::dlq::{FailureContext, SystemAttributes};
    use crate::report::ReplaySource;
    use crate::service::Services;

    /// A FIFO queue as SQS keeps one: a group with a message in flight gives out nothing
    /// more; deletes take a while, so a receive can overtake them.
    struct FifoTwin {
        /// (message id, group), in order; in flight; deleted.
        messages: Vec<(String, String)>,
        in_flight: Mutex<HashSet<String>>,
        deleted: Mutex<HashSet<String>>,
    }

    impl FifoTwin {
        fn new(groups: &[&str]) -> FifoTwin {
            FifoTwin {
                messages: groups
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (format!("m{i:02}"), (*g).to_owned()))
                    .collect(),
                in_flight: Mutex::new(HashSet::new()),
                deleted: Mutex::new(HashSet::new()),
            }
        }

        fn info(&self) -> QueueInfo {
            QueueInfo {
                arn: "arn:aws:sqs:us-east-1:123456789012:dlq.fifo".into(),
                visible: 0,
                in_flight: 0,
            }
        }
    }

    fn letter(index: usize, id: &str, group: &str) -> DeadLetter {
        DeadLetter::new(
            index,
            Some(id.to_owned()),
            format!(r#"{{"id":"{id}","source":"test","detail":{{}}}}"#),
            SystemAttributes {
                receive_count: Some("1"),
                sent_timestamp: Some("1764547200000"),
                message_group_id: Some(group),
            },
            FailureContext::from_lookup(|_| None),
            None,
        )
    }

    impl DeadLetterQueue for FifoTwin {
        fn describe(&self) -> BoxFuture<'_, Result<QueueInfo, super::super::QueueError>> {
            Box::pin(async move { Ok(self.info()) })
        }

        fn receive(
            &self,
            max: usize,
            _: Duration,
        ) -> BoxFuture<'_, Result<Vec<Received>, super::super::QueueError>> {
            Box::pin(async move {
                let deleted = self.deleted.lock().unwrap().clone();
                let mut in_flight = self.in_flight.lock().unwrap();
                // Groups with a message in flight; within a batch a group's messages come in
                // order.
                let locked: HashSet<String> = self
                    .messages
                    .iter()
                    .filter(|(id, _)| in_flight.contains(id))
                    .map(|(_, g)| g.clone())
                    .collect();
                let mut got = Vec::new();
                for (i, (id, group)) in self.messages.iter().enumerate() {
                    if got.len() == max {
                        break;
                    }
                    if deleted.contains(id) || in_flight.contains(id) {
                        continue;
                    }
                    if locked.contains(group) {
                        continue;
                    }
                    in_flight.insert(id.clone());
                    got.push(Received {
                        letter: letter(i, id, group),
                        receipt_handle: format!("h-{id}"),
                    });
                }
                Ok(got)
            })
        }

        fn delete<'a>(
            &'a self,
            handles: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<HandleOutcome>, super::super::QueueError>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                for h in handles {
                    let id = h.trim_start_matches("h-").to_owned();
                    self.in_flight.lock().unwrap().remove(&id);
                    self.deleted.lock().unwrap().insert(id);
                }
                Ok(vec![HandleOutcome::Done; handles.len()])
            })
        }

        fn change_visibility<'a>(
            &'a self,
            handles: &'a [String],
            _: Duration,
        ) -> BoxFuture<'a, Result<Vec<HandleOutcome>, super::super::QueueError>> {
            Box::pin(async move {
                for h in handles {
                    self.in_flight
                        .lock()
                        .unwrap()
                        .remove(h.trim_start_matches("h-"));
                }
                Ok(vec![HandleOutcome::Done; handles.len()])
            })
        }
    }

    fn options(page_size: usize, concurrency: usize) -> DrainOptions {
        DrainOptions {
            max_messages: None,
            page_size,
            concurrency,
            visibility: Duration::from_secs(300),
            delete: true,
            page: TriageOptions::new(Layout::LocalReports, ReplaySource::Folder("out".into())),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_fifo_page_is_received_only_after_the_one_before_is_deleted() {
        let queue = FifoTwin::new(&["a", "b", "a", "b", "a", "b", "a", "b", "a", "b"]);
        let service = TriageService::new(Services::new(Arc::new(MemoryStore::new())));
        let summary = drain(
            &queue,
            queue.info(),
            &service,
            &MemoryCorrelator::skipped("test"),
            // Concurrency is asked for and not used: a FIFO queue has one loop.
            &options(4, 8),
            &AtomicBool::new(false),
            &|_| {},
        )
        .await;
        // Had the second page been received while the first's deletes were in flight,
        // both groups would have been locked, the answer empty, and the run over at 4.
        assert_eq!(summary.received, 10, "{summary:?}");
        assert_eq!(summary.deleted, 10);
        assert_eq!(summary.reports.len(), 3, "pages of 4, 4 and 2");
        assert!(summary.complete(true));
    }
}
