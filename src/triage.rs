//! The pipeline: a batch of dead letters and two ports (where artifacts go, how
//! conversations are looked up) in; a report and the acknowledgement of every record out.
//!
//! Every no-loss rule lives in this file (the list, with the reasons, is in
//! `docs/architecture.md`):
//! - a record is acknowledged only when its payload *and* the report listing it are stored;
//! - a transient correlation failure returns the record while its receive count is below
//!   the budget (then it is archived as `unavailable`);
//! - no new work starts within the safety margin of the deadline;
//! - on a FIFO queue, a failure returns the later records of the same message group;
//! - a panic while handling one record fails that record only; a panic of the pipeline
//!   itself returns every record;
//! - a returned record that has no SQS message id cannot be named to the queue, so the
//!   whole batch must be retried ([`Outcome::batch_item_failures`]);
//! - every store call ends inside the deadline (payloads half the safety margin before it,
//!   the report a quarter before it); one that does not answer is a failed write;
//! - when nothing could be stored for a reason of the function's own, [`Outcome::outage`]
//!   says so, and the Lambda fails the invocation so the outage is seen.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::FutureExt;
use tokio::time::Instant;

use crate::classify::{self, Classification, Evidence, FailureCategory};
use crate::correlate::{Correlate, InteractionInfo, LookupFailure};
use crate::dlq::{BodyKind, DeadLetter};
use crate::genesys::conversation_id;
use crate::report::{Disposition, JsonBuffer, ReplaySource, Report, TriageRecord, render_markdown};
use crate::store::{
    Artifact, ArtifactStore, Layout, PutError, WriteWindow, bounded, safe_file_stem,
};

/// What the pipeline derives from one dead letter without any I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Category, evidence, HTTP status.
    pub classification: Classification,
    /// The Genesys conversation id, if the event names one.
    pub interaction_id: Option<String>,
}

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct TriageOptions {
    /// Where keys go.
    pub layout: Layout,
    /// Names the report.
    pub report_id: String,
    /// The report's `generatedAt`, and the date of records without one of their own.
    pub now: DateTime<Utc>,
    /// When the work must be finished (the Lambda's deadline); `None` for no limit.
    pub deadline: Option<Instant>,
    /// No new record is started later than this before the deadline; the report is
    /// written inside it.
    pub safety_margin: Duration,
    /// Upper bound for the Genesys look-ups (they also get at most half the time left).
    pub correlation_budget: Duration,
    /// `CORRELATION_MAX_RECEIVES`: after this many deliveries a transient correlation
    /// failure is archived as `unavailable` instead of returned.
    pub correlation_max_receives: u32,
    /// How many payload writes run at once.
    pub write_concurrency: usize,
    /// `replayEndpoint` of every record; the target ARN when unset.
    pub replay_endpoint: Option<String>,
    /// Where the Markdown's replay commands read payloads from.
    pub replay_source: ReplaySource,
    /// Indent the JSON report (for people); S3 reports stay on one line for Athena.
    pub pretty_report: bool,
    /// How failed targets take their input (target ARN → `InputTransformer`, `InputPath`,
    /// `Input` or `none`), looked up by the adapter before the run; the report and its
    /// replay commands say when a target transforms its input.
    pub target_inputs: BTreeMap<String, String>,
}

impl TriageOptions {
    /// Defaults for a local run into `layout`.
    pub fn new(layout: Layout, replay_source: ReplaySource) -> TriageOptions {
        let now = Utc::now();

        TriageOptions {
            pretty_report: matches!(layout, Layout::Local | Layout::LocalReports),
            layout,
            report_id: report_id(now, &format!("{:08x}", fastrand::u32(..))),
            now,
            deadline: None,
            safety_margin: Duration::from_secs(3),
            correlation_budget: Duration::from_secs(60),
            correlation_max_receives: 3,
            write_concurrency: 16,
            replay_endpoint: None,
            replay_source,
            target_inputs: BTreeMap::new(),
        }
    }
}

impl TriageOptions {
    /// How long an operation may take so that it ends `reserve` before the deadline; `None`
    /// without a deadline.
    fn time_until_deadline(&self, reserve: Duration) -> Option<Duration> {
        self.deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .saturating_sub(reserve)
        })
    }

    /// `reserve` before the deadline; `None` without a deadline.
    fn before_deadline(&self, reserve: Duration) -> Option<Instant> {
        self.deadline.map(|d| d.checked_sub(reserve).unwrap_or(d))
    }
}

/// A report id that sorts by time: `<UTC time to the ms>-<unique>`.
pub fn report_id(now: DateTime<Utc>, unique: &str) -> String {
    format!("{}-{unique}", now.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    /// The report (also when it could not be stored).
    pub report: Report,
    /// The keys of the report's JSON and Markdown, when both were stored.
    pub report_keys: Option<(String, String)>,
    /// Why nothing of the batch may be acknowledged, if so: the report could not be
    /// stored, or the pipeline itself failed.
    pub batch_error: Option<BatchError>,
    /// Message ids to hand back to the queue, in batch order.
    pub returned: Vec<String>,
    /// How many records were acknowledged.
    pub acknowledged: usize,
    /// How many returned records have no SQS message id (see [`Outcome::batch_item_failures`]).
    unnamed_returned: usize,
}

/// Why a whole batch goes back to the queue.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchError {
    /// The report could not be stored (or serialized), so no record is safe to delete.
    #[error("could not write the report: {0}")]
    ReportNotStored(String),
    /// The pipeline panicked outside any one record.
    #[error("the triage pipeline failed unexpectedly; every record goes back to the queue")]
    Panicked,
}

/// A returned record cannot be named to SQS (it has no message id), so the queue must be
/// told to retry the whole batch instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0} record(s) without an SQS messageId could not be stored; failing the batch so SQS retries it"
)]
pub struct UnnamedRecords(pub usize);

impl Outcome {
    /// Why the whole batch failed for a reason of the function's own, if it did: the report
    /// could not be stored, the pipeline panicked, or not one payload could be written
    /// (a missing bucket, a denied prefix). A deadline or a Genesys outage is not one.
    pub fn outage(&self) -> Option<String> {
        if let Some(e) = &self.batch_error {
            return Some(e.to_string());
        }
        let records = &self.report.records;
        let own_reason = |reason: &str| reason.starts_with(REASON_WRITE) || reason == REASON_PANIC;
        let all_own = !records.is_empty()
            && self.acknowledged == 0
            && records.iter().all(|r| {
                matches!(&r.disposition, Disposition::Returned { reason } if own_reason(reason))
            });
        all_own.then(|| match &records[0].disposition {
            Disposition::Returned { reason } => format!("no record could be stored: {reason}"),
            Disposition::Stored => String::new(),
        })
    }

    /// The `batchItemFailures` to answer: each returned id once, in batch order. An error
    /// when a returned record has no id of its own, as only ids of the batch may be named.
    pub fn batch_item_failures(&self) -> Result<Vec<String>, UnnamedRecords> {
        if self.unnamed_returned > 0 {
            return Err(UnnamedRecords(self.unnamed_returned));
        }
        let mut seen = HashSet::new();
        Ok(self
            .returned
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect())
    }
}

/// Why a record goes back to the queue, before any write is tried.
const REASON_DEADLINE: &str = "deadline: not started before the function's time ran out";
const REASON_FIFO: &str = "fifo: an earlier record of this message group failed";
const REASON_PANIC: &str = "internal error while handling this record";
const REASON_WRITE: &str = "write failed: ";

/// Runs the pipeline over one batch. It never panics: a panic inside it returns every
/// record, with [`BatchError::Panicked`].
pub async fn run<S: ArtifactStore, C: Correlate>(
    letters: &[DeadLetter],
    store: &S,
    correlator: &C,
    opts: &TriageOptions,
) -> Outcome {
    let bodies = letters.iter().map(|l| l.body.clone()).collect();
    run_with(
        letters,
        bodies,
        JsonBuffer::default(),
        store,
        correlator,
        opts,
    )
    .await
}

/// [`run`] taking each body out of its record: the bodies go to the payload writes and
/// each is released once written, so the report is built and serialized without the
/// batch's bodies in memory (the largest part of a large batch). The records, without
/// their bodies, stay with the caller.
pub async fn run_taking_bodies<S: ArtifactStore, C: Correlate>(
    letters: &mut [DeadLetter],
    store: &S,
    correlator: &C,
    opts: &TriageOptions,
) -> Outcome {
    run_taking_bodies_into(letters, JsonBuffer::default(), store, correlator, opts).await
}

/// [`run_taking_bodies`] writing the report's JSON into `json`: memory the caller is done
/// with (the CLI's batch text), instead of a new allocation.
pub async fn run_taking_bodies_into<S: ArtifactStore, C: Correlate>(
    letters: &mut [DeadLetter],
    json: JsonBuffer,
    store: &S,
    correlator: &C,
    opts: &TriageOptions,
) -> Outcome {
    let bodies = letters
        .iter_mut()
        .map(|l| std::mem::take(&mut l.body))
        .collect();
    run_with(letters, bodies, json, store, correlator, opts).await
}

/// The pipeline; `bodies[i]` is the payload of `letters[i]`; the report's JSON is written
/// into `json`.
async fn run_with<S: ArtifactStore, C: Correlate>(
    letters: &[DeadLetter],
    bodies: Vec<Bytes>,
    json: JsonBuffer,
    store: &S,
    correlator: &C,
    opts: &TriageOptions,
) -> Outcome {
    match guarded(
        letters,
        opts,
        store_payloads(letters, bodies, json, store, correlator, opts),
    )
    .await
    {
        Ok((plans, draft)) => guarded(letters, opts, finish(letters, plans, draft, store, opts))
            .await
            .unwrap_or_else(|o| o),
        Err(o) => o,
    }
}

/// Runs one half of the pipeline; a panic in it returns every record.
async fn guarded<T>(
    letters: &[DeadLetter],
    opts: &TriageOptions,
    half: impl Future<Output = T>,
) -> Result<T, Outcome> {
    AssertUnwindSafe(half).catch_unwind().await.map_err(|_| {
        tracing::error!("the triage pipeline panicked: returning every record");
        let plans: Vec<Plan> = letters.iter().map(|_| Plan::failed(REASON_PANIC)).collect();
        let records = to_records(letters, &plans, |p| p.stored, opts);
        outcome(
            letters,
            &plans,
            Report::build(opts.report_id.clone(), opts.now, records),
            Err(BatchError::Panicked),
        )
    })
}

/// Steps 1–4: analyse, correlate, plan, and store the payloads. While the payloads are
/// being written, the report is drafted as if every write succeeds (the usual case): the
/// CPU work of the report overlaps the I/O of the payloads. [`finish`] uses the draft only
/// when every write went as expected.
async fn store_payloads<S: ArtifactStore, C: Correlate>(
    letters: &[DeadLetter],
    bodies: Vec<Bytes>,
    json: JsonBuffer,
    store: &S,
    correlator: &C,
    opts: &TriageOptions,
) -> (Vec<Plan>, Draft) {
    let analyses = analyse(letters);
    let infos = correlate(&analyses, correlator, opts).await;
    let mut plans = plan(letters, analyses, &infos, opts);
    let (written, draft) = tokio::join!(
        write_payloads(letters, bodies, &plans, store, opts),
        async {
            // Synchronous work: polled after the writes have started.
            tokio::task::yield_now().await;
            Draft::new(letters, &plans, json, opts)
        }
    );
    for (plan, written) in plans.iter_mut().zip(written) {
        written.apply(plan);
    }
    // Stored means durable: a store that flushes in one go (the CLI's folder) does it now,
    // before the report says anything was stored.
    let end_by = opts.before_deadline(opts.safety_margin / 2);
    if let Err(e) = bounded(end_by, "payloads", store.sync()).await {
        for plan in plans.iter_mut().filter(|p| p.stored) {
            plan.stored = false;
            plan.return_reason = Some(format!("{REASON_WRITE}{e}"));
        }
    }
    (plans, draft)
}

/// Whether `plan`'s payload is stored if every payload write succeeds: what
/// [`write_payloads`] tries is stored (on a FIFO queue, every record it reaches is tried).
fn stored_if_all_succeed(plan: &Plan, fifo: bool) -> bool {
    plan.key.is_some() && (!fifo || plan.return_reason.is_none())
}

/// The report rendered ahead of the payload writes' results.
struct Draft {
    report: Report,
    rendered: Result<(Vec<u8>, String), String>,
    /// (stored, return reason) of every record, as the draft assumed them.
    expected: Vec<(bool, Option<String>)>,
}

impl Draft {
    /// The report of `letters` if every payload write of `plans` succeeds.
    fn new(
        letters: &[DeadLetter],
        plans: &[Plan],
        json: JsonBuffer,
        opts: &TriageOptions,
    ) -> Draft {
        let fifo = is_fifo(letters);
        let stored = |p: &Plan| stored_if_all_succeed(p, fifo);
        let report = build_report(letters, plans, stored, opts);
        Draft {
            rendered: render_report(&report, json, opts),
            report,
            expected: plans
                .iter()
                .map(|p| (stored(p), p.return_reason.clone()))
                .collect(),
        }
    }

    /// Whether the draft says exactly what `plans` say.
    fn holds_for(&self, plans: &[Plan]) -> bool {
        self.expected.len() == plans.len()
            && self
                .expected
                .iter()
                .zip(plans)
                .all(|((stored, reason), p)| *stored == p.stored && *reason == p.return_reason)
    }
}

/// Steps 5–6: the report (which needs no body), then which records may be acknowledged.
async fn finish<S: ArtifactStore>(
    letters: &[DeadLetter],
    plans: Vec<Plan>,
    draft: Draft,
    store: &S,
    opts: &TriageOptions,
) -> Outcome {
    let (report, rendered) = if draft.holds_for(&plans) {
        (draft.report, draft.rendered)
    } else {
        let report = build_report(letters, &plans, |p| p.stored, opts);
        let rendered = render_report(&report, JsonBuffer::default(), opts);
        (report, rendered)
    };
    let stored = store_report(rendered, store, opts).await;
    outcome(letters, &plans, report, stored)
}

/// The report of a run whose records stand as `plans` say, their payloads stored where
/// `stored` says.
fn build_report(
    letters: &[DeadLetter],
    plans: &[Plan],
    stored: impl Fn(&Plan) -> bool,
    opts: &TriageOptions,
) -> Report {
    let mut report = Report::build(
        opts.report_id.clone(),
        opts.now,
        to_records(letters, plans, stored, opts),
    );
    report.summary.target_inputs = opts
        .target_inputs
        .iter()
        .filter(|(target, _)| report.summary.by_target.contains_key(*target))
        .map(|(t, i)| (t.clone(), i.clone()))
        .collect();
    report
}

/// The report's JSON (written into `json`) and Markdown; an error when it cannot be
/// serialized.
fn render_report(
    report: &Report,
    json: JsonBuffer,
    opts: &TriageOptions,
) -> Result<(Vec<u8>, String), String> {
    let json = report
        .to_json_into(opts.pretty_report, json.into_inner())
        .map_err(|e| format!("the report could not be serialized: {e}"))?;
    let (json_key, _) = opts
        .layout
        .report_keys(opts.now.date_naive(), &opts.report_id);
    Ok((
        json,
        render_markdown(report, &opts.replay_source, &json_key),
    ))
}

/// Below this many records the pure steps run on one thread: a thread would cost more
/// than it saves.
const PARALLEL_FROM: usize = 2_048;

/// `work(part of letters, same part of extra)` over contiguous parts of `letters` and
/// `extra` (of the same length): for a long batch, one part per core (at most four), each
/// on a thread of its own; the results in batch order. A panic in a part is this call's.
fn in_parts<X: Send, R: Send>(
    letters: &[DeadLetter],
    extra: &mut [X],
    work: impl Fn(&[DeadLetter], &mut [X]) -> Vec<R> + Sync,
) -> Vec<R> {
    let parts = if letters.len() < PARALLEL_FROM || extra.len() != letters.len() {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    };
    if parts <= 1 {
        return work(letters, extra);
    }
    let size = letters.len().div_ceil(parts);
    std::thread::scope(|scope| {
        let work = &work;
        let mut pairs = letters.chunks(size).zip(extra.chunks_mut(size));
        let first = pairs.next();
        let others: Vec<_> = pairs
            .map(|(l, x)| scope.spawn(move || work(l, x)))
            .collect();
        let mut all = first.map(|(l, x)| work(l, x)).unwrap_or_default();
        for other in others {
            all.extend(
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        all
    })
}

/// Step 1: pure analysis, one record at a time, a panic confined to its record; a long
/// batch in parts on every core.
fn analyse(letters: &[DeadLetter]) -> Vec<Option<Analysis>> {
    in_parts(letters, &mut vec![(); letters.len()], |part, _| {
        analyse_part(part)
    })
}

fn analyse_part(letters: &[DeadLetter]) -> Vec<Option<Analysis>> {
    // A DLQ batch repeats a handful of errors thousands of times: classify each distinct
    // (code, message, body kind) once.
    let mut memo: HashMap<(Option<&str>, Option<&str>, BodyKind), Classification> = HashMap::new();
    letters
        .iter()
        .map(|l| {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                let key = (
                    l.failure.error_code.as_deref(),
                    l.failure.error_message.as_deref(),
                    l.kind,
                );
                let classification = memo
                    .entry(key)
                    .or_insert_with(|| classify::classify(&l.failure, l.kind))
                    .clone();
                Analysis {
                    classification,
                    interaction_id: l.event.as_ref().and_then(conversation_id),
                }
            }))
            .ok()
        })
        .collect()
}

/// Step 2: the distinct conversation ids, looked up once, inside the budget.
async fn correlate<C: Correlate>(
    analyses: &[Option<Analysis>],
    correlator: &C,
    opts: &TriageOptions,
) -> HashMap<String, InteractionInfo> {
    let mut ids: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for id in analyses
        .iter()
        .flatten()
        .filter_map(|a| a.interaction_id.as_ref())
    {
        if seen.insert(id.as_str()) {
            ids.push(id.clone());
        }
    }
    if ids.is_empty() {
        return HashMap::new();
    }
    let budget = match opts.time_until_deadline(opts.safety_margin) {
        Some(left) => opts.correlation_budget.min(left / 2),
        None => opts.correlation_budget,
    };
    correlator.correlate(&ids, budget).await
}

/// Step 3: per record, its key and whether it must go back whatever the writes do; a
/// long batch in parts on every core.
fn plan(
    letters: &[DeadLetter],
    analyses: Vec<Option<Analysis>>,
    infos: &HashMap<String, InteractionInfo>,
    opts: &TriageOptions,
) -> Vec<Plan> {
    // Which occurrence of its message id each record is, in batch order. Two records share
    // a file stem exactly when they share a message id (a sanitized stem ends in a hash,
    // which no plain one has), so the ids are counted, not their stems.
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(letters.len());
    let mut records: Vec<(usize, Option<Analysis>)> = letters
        .iter()
        .zip(analyses)
        .map(|(letter, analysis)| {
            let n = seen.entry(&letter.message_id).or_insert(0);
            *n += 1;
            (*n, analysis)
        })
        .collect();
    in_parts(letters, &mut records, |letters, records| {
        letters
            .iter()
            .zip(records)
            .map(|(letter, (n, analysis))| plan_one(letter, *n, analysis.take(), infos, opts))
            .collect()
    })
}

/// The plan of `letter`, the `occurrence`-th record of its message id in the batch.
fn plan_one(
    letter: &DeadLetter,
    occurrence: usize,
    analysis: Option<Analysis>,
    infos: &HashMap<String, InteractionInfo>,
    opts: &TriageOptions,
) -> Plan {
    let stem = {
        let base = safe_file_stem(&letter.message_id);
        // A duplicated message id in one batch must not overwrite its twin.
        if occurrence == 1 {
            base
        } else {
            format!("{base}~{occurrence}")
        }
    };
    let Some(analysis) = analysis else {
        return Plan::failed(REASON_PANIC);
    };
    let info = match &analysis.interaction_id {
        Some(id) => infos.get(id).cloned().unwrap_or_else(|| {
            InteractionInfo::Unavailable(LookupFailure {
                error: "no answer from the correlation step".into(),
                transient: true,
            })
        }),
        None => InteractionInfo::NoConversation,
    };
    let receives = letter.receive_count.unwrap_or(1);
    let return_reason = (info.is_transient_failure()
        && receives < opts.correlation_max_receives)
        .then(|| {
            format!(
                "correlation unavailable (transient); delivery {receives} of {} before archiving without it",
                opts.correlation_max_receives
            )
        });
    let date = record_date(letter, opts.now);
    let key = opts
        .layout
        .replay_key(analysis.classification.category, date, &stem);
    Plan {
        analysis: Some(analysis),
        info,
        key: Some(key),
        stored: false,
        return_reason,
    }
}

/// Step 5: the report, JSON and Markdown, side by side.
async fn store_report<S: ArtifactStore>(
    rendered: Result<(Vec<u8>, String), String>,
    store: &S,
    opts: &TriageOptions,
) -> Result<(String, String), BatchError> {
    let not_stored = |e: String| BatchError::ReportNotStored(e);
    let (json, markdown) = rendered.map_err(not_stored)?;
    let (json_key, md_key) = opts
        .layout
        .report_keys(opts.now.date_naive(), &opts.report_id);
    let json = Artifact {
        key: json_key.clone(),
        body: Bytes::from(json),
        content_type: "application/json",
        metadata: vec![("report-id", opts.report_id.clone())],
    };
    let md = Artifact {
        key: md_key.clone(),
        body: Bytes::from(markdown),
        content_type: "text/markdown; charset=utf-8",
        metadata: vec![("report-id", opts.report_id.clone())],
    };
    // The report gets the last quarter of the safety margin; payloads end before it.
    let end_by = opts.before_deadline(opts.safety_margin / 4);
    let (json_result, md_result) = tokio::join!(
        bounded(end_by, &json.key, store.put(&json)),
        bounded(end_by, &md.key, store.put(&md))
    );
    json_result
        .and(md_result)
        .map_err(|e| not_stored(e.to_string()))?;
    bounded(end_by, &json_key, store.sync())
        .await
        .map_err(|e| not_stored(e.to_string()))?;
    Ok((json_key, md_key))
}

/// Step 6: the acknowledgements the stored report makes safe.
fn outcome(
    letters: &[DeadLetter],
    plans: &[Plan],
    report: Report,
    stored: Result<(String, String), BatchError>,
) -> Outcome {
    let (report_keys, batch_error) = match stored {
        Ok(keys) => (Some(keys), None),
        Err(e) => (None, Some(e)),
    };
    let returned: Vec<&DeadLetter> = letters
        .iter()
        .zip(plans)
        .filter(|(_, p)| batch_error.is_some() || !p.acknowledged())
        .map(|(l, _)| l)
        .collect();
    Outcome {
        acknowledged: letters.len() - returned.len(),
        unnamed_returned: returned.iter().filter(|l| !l.has_queue_id).count(),
        returned: returned.iter().map(|l| l.message_id.clone()).collect(),
        report_keys,
        batch_error,
        report,
    }
}

/// Whether order matters: the batch came from a FIFO queue.
fn is_fifo(letters: &[DeadLetter]) -> bool {
    letters.iter().any(|l| {
        l.message_group_id.is_some()
            || l.source_queue_arn
                .as_deref()
                .is_some_and(|arn| arn.ends_with(".fifo"))
    })
}

/// One record's plan and progress.
#[derive(Clone)]
struct Plan {
    analysis: Option<Analysis>,
    info: InteractionInfo,
    key: Option<String>,
    stored: bool,
    /// Why the record goes back to the queue, once that is decided.
    return_reason: Option<String>,
}

impl Plan {
    fn failed(reason: &str) -> Plan {
        Plan {
            analysis: None,
            info: InteractionInfo::Skipped {
                reason: "record could not be analysed".into(),
            },
            key: None,
            stored: false,
            return_reason: Some(reason.to_owned()),
        }
    }

    fn acknowledged(&self) -> bool {
        self.stored && self.return_reason.is_none()
    }
}

/// What became of one record's payload in [`write_payloads`].
#[derive(Debug)]
enum Written {
    /// Not tried: the record has no key, or (FIFO) it was already going back.
    Untried,
    /// Stored.
    Stored,
    /// Not stored, for this reason; the record goes back.
    Failed(String),
}

impl Written {
    /// Records the write in the record's plan (a reason decided before it stays).
    fn apply(self, plan: &mut Plan) {
        match self {
            Written::Untried => {}
            Written::Stored => plan.stored = true,
            Written::Failed(reason) => {
                plan.return_reason.get_or_insert(reason);
            }
        }
    }
}

/// Step 4: payload writes, bounded, each started only while time remains; `result[i]`
/// says what became of record `i`'s payload. The plans are only read, so the report can be
/// drafted from them meanwhile.
async fn write_payloads<S: ArtifactStore>(
    letters: &[DeadLetter],
    mut bodies: Vec<Bytes>,
    plans: &[Plan],
    store: &S,
    opts: &TriageOptions,
) -> Vec<Written> {
    // No write starts within the safety margin; each ends half the margin before the deadline.
    let window = WriteWindow {
        start_by: opts.before_deadline(opts.safety_margin),
        end_by: opts.before_deadline(opts.safety_margin / 2),
    };
    let with_metadata = store.keeps_metadata();
    // Each body moves into its artifact, and is released once written.
    let mut artifact = |i: usize, plan: &Plan| {
        let letter = &letters[i];
        let body = std::mem::take(&mut bodies[i]);
        let key = plan.key.clone()?;
        let metadata = if with_metadata {
            let category = plan
                .analysis
                .as_ref()
                .map(|a| a.classification.category)
                .unwrap_or(FailureCategory::Unknown);
            vec![
                ("category", category.as_str().to_owned()),
                (
                    "error-code",
                    letter.failure.error_code.clone().unwrap_or_default(),
                ),
                ("message-id", letter.message_id.clone()),
            ]
        } else {
            Vec::new()
        };
        Some(Artifact {
            key,
            body,
            content_type: "application/json",
            metadata,
        })
    };
    let written = |i: usize, plan: &Plan, result: Result<(), PutError>| {
        let letter = &letters[i];
        match result {
            Ok(()) => {
                tracing::debug!(message_id = %letter.message_id, key = plan.key.as_deref().unwrap_or_default(), "payload stored");
                Written::Stored
            }
            Err(e) => {
                let reason = match e {
                    PutError::NotStarted => REASON_DEADLINE.to_owned(),
                    PutError::Failed(e) => format!("{REASON_WRITE}{e}"),
                    PutError::Panicked => REASON_PANIC.to_owned(),
                };
                tracing::warn!(message_id = %letter.message_id, %reason, "payload not stored");
                Written::Failed(reason)
            }
        }
    };

    if is_fifo(letters) {
        // Order matters within a message group: once a record of a group fails, the later
        // records of that group go back untouched; other groups go on. A record without a
        // group id is a group of its own.
        let mut failed_groups: HashSet<&str> = HashSet::new();
        let mut results = Vec::with_capacity(plans.len());
        for (i, plan) in plans.iter().enumerate() {
            let group = letters[i].message_group_id.as_deref();
            if group.is_some_and(|g| failed_groups.contains(g)) {
                results.push(match plan.return_reason {
                    Some(_) => Written::Untried,
                    None => Written::Failed(REASON_FIFO.to_owned()),
                });
                continue;
            }
            let result = match (&plan.return_reason, artifact(i, plan)) {
                (None, Some(a)) => {
                    let result = store.put_all(vec![a], window, 1).await;
                    let result = result.into_iter().next().unwrap_or(Err(PutError::Panicked));
                    written(i, plan, result)
                }
                _ => Written::Untried,
            };
            if !matches!(result, Written::Stored) {
                failed_groups.extend(group);
            }
            results.push(result);
        }
        return results;
    }

    let (indices, artifacts): (Vec<usize>, Vec<Artifact>) = plans
        .iter()
        .enumerate()
        .filter_map(|(i, p)| artifact(i, p).map(|a| (i, a)))
        .unzip();
    let results = store
        .put_all(artifacts, window, opts.write_concurrency)
        .await;
    let mut all: Vec<Written> = plans.iter().map(|_| Written::Untried).collect();
    for (i, result) in indices.into_iter().zip(results) {
        all[i] = written(i, &plans[i], result);
    }
    all
}

/// The date partition of a record: when it reached the DLQ (stable across redeliveries),
/// else when the event happened, else now.
fn record_date(letter: &DeadLetter, now: DateTime<Utc>) -> NaiveDate {
    letter
        .sent_at
        .or_else(|| {
            letter
                .event
                .as_ref()
                .and_then(|e| e.time.as_deref())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        })
        .unwrap_or(now)
        .date_naive()
}

fn to_records(
    letters: &[DeadLetter],
    plans: &[Plan],
    stored: impl Fn(&Plan) -> bool,
    opts: &TriageOptions,
) -> Vec<TriageRecord> {
    letters
        .iter()
        .zip(plans)
        .map(|(l, p)| to_record(l, p, stored(p), opts))
        .collect()
}

/// `letter`'s record; `stored`: whether its payload is.
fn to_record(letter: &DeadLetter, plan: &Plan, stored: bool, opts: &TriageOptions) -> TriageRecord {
    let event = letter.event.as_ref();
    let sent = letter
        .sent_at
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let (classification, interaction_id) = match &plan.analysis {
        Some(a) => (a.classification.clone(), a.interaction_id.clone()),
        None => (
            Classification {
                category: FailureCategory::Unknown,
                evidence: Evidence {
                    rule: classify::Rule::InternalError,
                    matched: REASON_PANIC.into(),
                },
                http_status: None,
            },
            None,
        ),
    };
    TriageRecord {
        message_id: letter.message_id.clone(),
        event_id: event.and_then(|e| e.id.clone()),
        timestamp: event
            .and_then(|e| e.time.clone().or_else(|| e.detail_timestamp.clone()))
            .or_else(|| sent.clone()),
        event_type: event.and_then(|e| e.detail_type.clone()),
        topic_name: event.and_then(|e| e.topic_name.clone()),
        source: event.and_then(|e| e.source.clone()),
        correlation_id: event.and_then(|e| e.correlation_id.clone()),
        event_count: letter.event_count,
        failed_event_ids: letter.failed_event_ids.clone(),
        interaction_id,
        failure_category: classification.category,
        evidence: classification.evidence,
        failure: letter.failure.clone(),
        http_status: classification.http_status,
        receive_count: letter.receive_count,
        replay_payload_key: if stored { plan.key.clone() } else { None },
        replay_endpoint: opts
            .replay_endpoint
            .clone()
            .or_else(|| letter.failure.target_arn.clone()),
        interaction_info: plan.info.clone(),
        body_kind: letter.kind,
        sent_timestamp: sent,
        disposition: match &plan.return_reason {
            Some(reason) => Disposition::Returned {
                reason: reason.clone(),
            },
            None if stored => Disposition::Stored,
            None => Disposition::Returned {
                reason: "not stored".into(),
            },
        },
    }
}
