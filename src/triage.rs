//! The pipeline: a batch of dead letters and two ports (where artifacts go, how
//! conversations are looked up) in; a report and the acknowledgement of every record out.
//!
//! The steps, in the order they run and appear below:
//! 1. [`analyse`] — category, evidence and conversation id per record, no I/O;
//! 2. [`correlate`] — the distinct conversation ids, looked up once, inside a budget;
//! 3. [`plan`] — each record's payload key, and whether it must go back whatever happens;
//! 4. [`write_payloads`] — the payloads, then one flush;
//! 5. [`build_report`] — the report of every record, stored or returned, with its JSON and
//!    Markdown; built while step 4 runs, as if every write succeeds, and built again only
//!    when one did not ([`Draft`]);
//! 6. [`store_report`] — the report's JSON and Markdown, then one flush;
//! 7. [`outcome`] — which records may be acknowledged.
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
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::FutureExt;
use tokio::time::Instant;

use crate::artifacts::{
    Artifact, ArtifactStore, Layout, PutError, ReportKeys, WriteWindow, bounded, safe_file_stem,
};
use crate::classify::{self, Classification, Evidence, FailureCategory};
use crate::correlate::{Correlate, InteractionInfo, LookupFailure};
use crate::dlq::{BodyKind, DeadLetter};
use crate::report::{
    Disposition, PANIC_TEXT, ReplaySource, Report, ReturnReason, TriageRecord, render_markdown,
};

/// What the pipeline derives from one dead letter without any I/O.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Analysis {
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
    /// The Genesys Cloud domain (`mypurecloud.ie`) the page links conversations to.
    pub genesys_domain: Option<&'static str>,
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
            genesys_domain: None,
        }
    }

    /// How long an operation may take so that it ends `reserve` before the deadline; `None`
    /// without a deadline.
    fn time_until_deadline(&self, reserve: Duration) -> Option<Duration> {
        self.deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .saturating_sub(reserve)
        })
    }

    /// `reserve` before the deadline; `None` without a deadline.
    pub(crate) fn before_deadline(&self, reserve: Duration) -> Option<Instant> {
        self.deadline.map(|d| d.checked_sub(reserve).unwrap_or(d))
    }
}

/// A report id that sorts by time: `<UTC time to the ms>-<unique>`.
pub(crate) fn report_id(now: DateTime<Utc>, unique: &str) -> String {
    format!("{}-{unique}", now.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    /// The report (also when it could not be stored).
    pub report: Report,
    /// Where the report is, when its JSON and Markdown were stored (its page too, unless
    /// `html` is `None`).
    pub report_keys: Option<ReportKeys>,
    /// Why nothing of the batch may be acknowledged, if so: the report could not be
    /// stored, or the pipeline itself failed.
    pub batch_error: Option<BatchError>,
    /// Message ids to hand back to the queue, in batch order.
    pub returned: Vec<String>,
    /// How many records were acknowledged.
    pub acknowledged: usize,
    /// How many returned records have no SQS message id (see [`Outcome::batch_item_failures`]).
    unnamed_returned: usize,
    /// Every record went back for a reason of the function's own: the first one's reason.
    own_failure: Option<ReturnReason>,
    /// A few payloads of each incident, by message id, taken before the payload writes
    /// released the bodies: what the report's page shows.
    pub samples: Samples,
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
        self.own_failure
            .as_ref()
            .map(|reason| format!("no record could be stored: {reason}"))
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

/// Runs the pipeline over one batch. It never panics: a panic inside it returns every
/// record, with [`BatchError::Panicked`].
pub async fn run(
    letters: &[DeadLetter],
    store: &dyn ArtifactStore,
    correlator: &dyn Correlate,
    opts: &TriageOptions,
) -> Outcome {
    let bodies = letters.iter().map(|l| l.body.clone()).collect();
    run_catching_panics(letters, bodies, store, correlator, opts).await
}

/// [`run`] taking each body out of its record: the bodies go to the payload writes and
/// each is released once written, so the report is built and serialized without the
/// batch's bodies in memory (the largest part of a large batch). The records, without
/// their bodies, stay with the caller.
pub async fn run_taking_bodies(
    letters: &mut [DeadLetter],
    store: &dyn ArtifactStore,
    correlator: &dyn Correlate,
    opts: &TriageOptions,
) -> Outcome {
    let bodies = letters
        .iter_mut()
        .map(|l| std::mem::take(&mut l.body))
        .collect();
    run_catching_panics(letters, bodies, store, correlator, opts).await
}

/// [`pipeline`], with a panic of its own turned into every record returned.
async fn run_catching_panics(
    letters: &[DeadLetter],
    bodies: Vec<Bytes>,
    store: &dyn ArtifactStore,
    correlator: &dyn Correlate,
    opts: &TriageOptions,
) -> Outcome {
    let run = pipeline(letters, bodies, store, correlator, opts);
    AssertUnwindSafe(run)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!("the triage pipeline panicked: returning every record");
            let plans: Vec<RecordPlan> = letters.iter().map(|_| RecordPlan::panicked()).collect();
            let records = letters
                .iter()
                .zip(&plans)
                .map(|(l, p)| to_record(l, p, false, opts))
                .collect();
            let report = Report::build(opts.report_id.clone(), opts.now, records);
            outcome(letters, &plans, report, Err(BatchError::Panicked))
        })
}

/// The steps, in order; `bodies[i]` is the payload of `letters[i]`.
async fn pipeline(
    letters: &[DeadLetter],
    bodies: Vec<Bytes>,
    store: &dyn ArtifactStore,
    correlator: &dyn Correlate,
    opts: &TriageOptions,
) -> Outcome {
    let analyses = analyse(letters);
    let infos = correlate(&analyses, correlator, opts).await;
    let mut plans = plan(letters, analyses, &infos, opts);
    let samples = sample_bodies(letters, &plans, &bodies);
    // The report's CPU work overlaps the payloads' I/O (docs/benchmarks.md: 13 % of
    // `analyze`'s time); the draft is kept only if every write went as it assumed.
    let (written, draft) = tokio::join!(
        write_payloads(letters, bodies, &plans, store, opts),
        async {
            // Synchronous work: polled once the writes have started.
            tokio::task::yield_now().await;
            Draft::new(letters, &plans, opts)
        }
    );
    for (plan, written) in plans.iter_mut().zip(written) {
        plan.apply(written);
    }
    let (report, rendered) = match draft.holds_for(&plans) {
        true => (draft.report, draft.rendered),
        false => build_report(letters, &plans, |p| p.stored, opts),
    };
    let stored = store_report(rendered, store, opts).await;
    let mut done = outcome(letters, &plans, report, stored);
    done.samples = samples;
    done
}

/// Step 1: pure analysis, one record at a time, a panic confined to its record.
fn analyse(letters: &[DeadLetter]) -> Vec<Option<Analysis>> {
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
                    interaction_id: l.event.as_ref().and_then(|e| e.conversation_id()),
                }
            }))
            .ok()
        })
        .collect()
}

/// Step 2: the distinct conversation ids, looked up once, inside the budget.
async fn correlate(
    analyses: &[Option<Analysis>],
    correlator: &dyn Correlate,
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

/// One record's plan and progress.
#[derive(Clone)]
struct RecordPlan {
    analysis: Option<Analysis>,
    info: InteractionInfo,
    key: Option<String>,
    stored: bool,
    /// Why the record goes back to the queue, once that is decided.
    return_reason: Option<ReturnReason>,
}

impl RecordPlan {
    /// The plan of a record whose analysis panicked.
    fn panicked() -> RecordPlan {
        RecordPlan {
            analysis: None,
            info: InteractionInfo::Skipped {
                reason: "record could not be analysed".into(),
            },
            key: None,
            stored: false,
            return_reason: Some(ReturnReason::Panicked),
        }
    }

    fn acknowledged(&self) -> bool {
        self.stored && self.return_reason.is_none()
    }

    fn category(&self) -> FailureCategory {
        self.analysis
            .as_ref()
            .map_or(FailureCategory::Unknown, |a| a.classification.category)
    }

    /// Records what became of the payload's write (a reason decided before it stays).
    fn apply(&mut self, written: Written) {
        match written {
            Written::Untried => {}
            Written::Stored => self.stored = true,
            Written::Failed(reason) => {
                self.return_reason.get_or_insert(reason);
            }
        }
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
    Failed(ReturnReason),
}

impl Written {
    /// The result of `letter`'s write.
    fn of(letter: &DeadLetter, result: Result<(), PutError>) -> Written {
        match result {
            Ok(()) => Written::Stored,
            Err(e) => {
                let reason = match e {
                    PutError::NotStarted => ReturnReason::Deadline,
                    PutError::Failed(e) => ReturnReason::WriteFailed(e.to_string()),
                    PutError::Panicked => ReturnReason::Panicked,
                };
                tracing::warn!(message_id = %letter.message_id, %reason, "payload not stored");
                Written::Failed(reason)
            }
        }
    }
}

/// Step 3: per record, its key and whether it must go back whatever the writes do.
fn plan(
    letters: &[DeadLetter],
    analyses: Vec<Option<Analysis>>,
    infos: &HashMap<String, InteractionInfo>,
    opts: &TriageOptions,
) -> Vec<RecordPlan> {
    // Which copy of its message id each record is, in batch order. Two records share a
    // file stem exactly when they share a message id (a sanitized stem ends in a hash,
    // which no plain one has), so the ids are counted, not their stems.
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(letters.len());
    letters
        .iter()
        .zip(analyses)
        .map(|(letter, analysis)| {
            let copy = seen.entry(&letter.message_id).or_insert(0);
            *copy += 1;
            plan_one(letter, *copy, analysis, infos, opts)
        })
        .collect()
}

/// The plan of `letter`, the `copy`-th record of its message id in the batch.
fn plan_one(
    letter: &DeadLetter,
    copy: usize,
    analysis: Option<Analysis>,
    infos: &HashMap<String, InteractionInfo>,
    opts: &TriageOptions,
) -> RecordPlan {
    let Some(analysis) = analysis else {
        return RecordPlan::panicked();
    };
    // A duplicated message id in one batch must not overwrite its twin.
    let stem = match copy {
        1 => safe_file_stem(&letter.message_id),
        n => format!("{}~{n}", safe_file_stem(&letter.message_id)),
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
    let return_reason = (info.is_transient_failure() && receives < opts.correlation_max_receives)
        .then_some(ReturnReason::CorrelationTransient {
            receives,
            max: opts.correlation_max_receives,
        });
    let key = opts.layout.replay_key(
        analysis.classification.category,
        record_date(letter, opts.now),
        &stem,
    );
    RecordPlan {
        analysis: Some(analysis),
        info,
        key: Some(key),
        stored: false,
        return_reason,
    }
}

/// Step 4: the payload writes, each started only while time remains, then one flush
/// (stored means durable: the CLI's folder store flushes here, before the report says
/// anything was stored). Each body is released once written. `result[i]` says what became
/// of record `i`'s payload; the plans are only read, so the report is drafted from them
/// meanwhile.
async fn write_payloads(
    letters: &[DeadLetter],
    bodies: Vec<Bytes>,
    plans: &[RecordPlan],
    store: &dyn ArtifactStore,
    opts: &TriageOptions,
) -> Vec<Written> {
    // No write starts within the safety margin; each ends half the margin before the deadline.
    let window = WriteWindow {
        start_by: opts.before_deadline(opts.safety_margin),
        end_by: opts.before_deadline(opts.safety_margin / 2),
    };
    let mut written = if is_fifo(letters) {
        write_in_group_order(letters, bodies, plans, store, window).await
    } else {
        write_all_at_once(
            letters,
            bodies,
            plans,
            store,
            window,
            opts.write_concurrency,
        )
        .await
    };
    if let Err(e) = bounded(window.end_by, "payloads", store.sync()).await {
        for w in written.iter_mut().filter(|w| matches!(w, Written::Stored)) {
            *w = Written::Failed(ReturnReason::WriteFailed(e.to_string()));
        }
    }
    written
}

/// Step 4 on a standard queue: every payload to the store in one call.
async fn write_all_at_once(
    letters: &[DeadLetter],
    bodies: Vec<Bytes>,
    plans: &[RecordPlan],
    store: &dyn ArtifactStore,
    window: WriteWindow,
    concurrency: usize,
) -> Vec<Written> {
    let (indices, artifacts): (Vec<usize>, Vec<Artifact>) = bodies
        .into_iter()
        .enumerate()
        .filter_map(|(i, body)| Some((i, payload_artifact(&letters[i], &plans[i], body)?)))
        .unzip();
    let results = store.put_all(artifacts, window, concurrency).await;
    let mut written: Vec<Written> = plans.iter().map(|_| Written::Untried).collect();
    for (i, result) in indices.into_iter().zip(results) {
        written[i] = Written::of(&letters[i], result);
    }
    written
}

/// Step 4 on a FIFO queue, where order matters within a message group: one payload at a
/// time; once a record of a group fails, the later records of that group go back
/// untouched, and other groups go on. A record without a group id is a group of its own.
async fn write_in_group_order(
    letters: &[DeadLetter],
    bodies: Vec<Bytes>,
    plans: &[RecordPlan],
    store: &dyn ArtifactStore,
    window: WriteWindow,
) -> Vec<Written> {
    let mut failed_groups: HashSet<&str> = HashSet::new();
    let mut all = Vec::with_capacity(plans.len());
    for ((letter, plan), body) in letters.iter().zip(plans).zip(bodies) {
        let group = letter.message_group_id.as_deref();
        let written = if group.is_some_and(|g| failed_groups.contains(g)) {
            match plan.return_reason {
                Some(_) => Written::Untried,
                None => Written::Failed(ReturnReason::FifoGroupHeld),
            }
        } else {
            match (&plan.return_reason, payload_artifact(letter, plan, body)) {
                (None, Some(artifact)) => {
                    let result = store.put_all(vec![artifact], window, 1).await;
                    let result = result.into_iter().next().unwrap_or(Err(PutError::Panicked));
                    Written::of(letter, result)
                }
                _ => Written::Untried,
            }
        };
        if !matches!(written, Written::Stored) {
            failed_groups.extend(group);
        }
        all.push(written);
    }
    all
}

/// The payload object of a planned record, `None` when it has no key.
fn payload_artifact(letter: &DeadLetter, plan: &RecordPlan, body: Bytes) -> Option<Artifact> {
    Some(Artifact {
        key: plan.key.clone()?,
        body,
        content_type: "application/json",
        metadata: vec![
            ("category", plan.category().as_str().to_owned()),
            (
                "error-code",
                letter.failure.error_code.clone().unwrap_or_default(),
            ),
            ("message-id", letter.message_id.clone()),
        ],
    })
}

/// The report drafted while the payloads are written, as if every write succeeds (the
/// usual case), with its JSON and Markdown.
struct Draft {
    /// Whether each record's payload is stored, as the draft assumed.
    stored: Vec<bool>,
    report: Report,
    rendered: Rendered,
}

impl Draft {
    fn new(letters: &[DeadLetter], plans: &[RecordPlan], opts: &TriageOptions) -> Draft {
        // What `write_payloads` tries is stored if it succeeds; on a FIFO queue it does not
        // try a record already going back.
        let fifo = is_fifo(letters);
        let hoped = |p: &RecordPlan| p.key.is_some() && (!fifo || p.return_reason.is_none());
        let (report, rendered) = build_report(letters, plans, hoped, opts);
        Draft {
            stored: plans.iter().map(hoped).collect(),
            report,
            rendered,
        }
    }

    /// Whether the draft says what the plans now say. A write that did not store its
    /// payload (or a FIFO record held back) is the only way a plan changes after the
    /// draft, and it always turns `stored` false where the draft assumed true.
    fn holds_for(&self, plans: &[RecordPlan]) -> bool {
        self.stored.iter().zip(plans).all(|(s, p)| *s == p.stored)
    }
}

/// A report's JSON and Markdown, or why it cannot be serialized.
type Rendered = Result<Rendering, serde_json::Error>;

/// A report as stored.
struct Rendering {
    json: Vec<u8>,
    markdown: String,
}

/// A few payloads of each incident, by message id, for the report's page.
pub(crate) type Samples = BTreeMap<String, Bytes>;

/// The bodies the page shows: per (category, target), the first
/// [`crate::report::PAYLOADS_PER_INCIDENT`] dead letters in the order the report's incidents
/// list their samples (time, then message id). Taken before the payload writes release
/// the bodies; a clone of `Bytes` shares the body.
fn sample_bodies(letters: &[DeadLetter], plans: &[RecordPlan], bodies: &[Bytes]) -> Samples {
    type Group<'a> = Vec<(Option<DateTime<Utc>>, &'a str, usize)>;
    let mut groups: HashMap<(FailureCategory, Option<&str>), Group> = HashMap::new();
    for (n, (letter, plan)) in letters.iter().zip(plans).enumerate() {
        // The record's time as the summary reads it back: `sentTimestamp` (whole
        // milliseconds, as SQS gives it), else the event's own time.
        let event = letter.event.as_ref();
        let at = letter.sent_at.or_else(|| {
            event
                .and_then(|e| e.time.as_deref().or(e.detail_timestamp.as_deref()))
                .and_then(crate::report::parse_time)
        });
        groups
            .entry((plan.category(), letter.failure.target_arn.as_deref()))
            .or_default()
            .push((at, &letter.message_id, n));
    }
    let mut samples = Samples::new();
    for mut group in groups.into_values() {
        group.sort_unstable();
        for (_, id, n) in group.into_iter().take(crate::report::PAYLOADS_PER_INCIDENT) {
            if let Some(body) = bodies.get(n).filter(|b| !b.is_empty()) {
                samples.insert(id.to_owned(), body.clone());
            }
        }
    }
    samples
}

/// Step 5: the report of every record, stored (where `stored` says) or going back (its
/// `disposition` says why), and its JSON and Markdown.
fn build_report(
    letters: &[DeadLetter],
    plans: &[RecordPlan],
    stored: impl Fn(&RecordPlan) -> bool,
    opts: &TriageOptions,
) -> (Report, Rendered) {
    let records = letters
        .iter()
        .zip(plans)
        .map(|(l, p)| to_record(l, p, stored(p), opts))
        .collect();
    let mut report = Report::build(opts.report_id.clone(), opts.now, records);
    report.summary.target_inputs = opts
        .target_inputs
        .iter()
        .filter(|(target, _)| report.summary.by_target.contains_key(*target))
        .map(|(t, i)| (t.clone(), i.clone()))
        .collect();
    let rendered = report.to_json(opts.pretty_report).map(|json| {
        let keys = opts
            .layout
            .report_keys(opts.now.date_naive(), &opts.report_id);
        Rendering {
            json,
            markdown: render_markdown(&report, &opts.replay_source, &keys.json),
        }
    });
    (report, rendered)
}

/// Step 6: the report, JSON and Markdown side by side, then flushed. A report that
/// cannot be serialized is never stored truncated. The keys say no page (`html` is
/// `None`): the page is rendered and stored after the pipeline, by the triage service.
async fn store_report(
    rendered: Rendered,
    store: &dyn ArtifactStore,
    opts: &TriageOptions,
) -> Result<ReportKeys, BatchError> {
    let not_stored = |e: String| BatchError::ReportNotStored(e);
    let rendering =
        rendered.map_err(|e| not_stored(format!("the report could not be serialized: {e}")))?;
    let mut keys = opts
        .layout
        .report_keys(opts.now.date_naive(), &opts.report_id);
    let artifact = |key: &str, body: Vec<u8>, content_type| Artifact {
        key: key.to_owned(),
        body: Bytes::from(body),
        content_type,
        metadata: vec![("report-id", opts.report_id.clone())],
    };
    let json = artifact(&keys.json, rendering.json, "application/json");
    let md = artifact(
        &keys.markdown,
        rendering.markdown.into_bytes(),
        "text/markdown; charset=utf-8",
    );
    // The report gets the last quarter of the safety margin; payloads end before it.
    let end_by = opts.before_deadline(opts.safety_margin / 4);
    let (json_result, md_result) = tokio::join!(
        bounded(end_by, &json.key, store.put(&json)),
        bounded(end_by, &md.key, store.put(&md)),
    );
    json_result
        .and(md_result)
        .map_err(|e| not_stored(e.to_string()))?;
    bounded(end_by, &keys.json, store.sync())
        .await
        .map_err(|e| not_stored(e.to_string()))?;
    keys.html = None;
    Ok(keys)
}

/// Step 7: the acknowledgements the stored report makes safe.
fn outcome(
    letters: &[DeadLetter],
    plans: &[RecordPlan],
    report: Report,
    stored: Result<ReportKeys, BatchError>,
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
    let own_failure = plans
        .iter()
        .map(|p| p.return_reason.as_ref().filter(|r| r.is_own_failure()))
        .collect::<Option<Vec<_>>>()
        .and_then(|own| own.first().cloned().cloned());
    Outcome {
        own_failure,
        acknowledged: letters.len() - returned.len(),
        unnamed_returned: returned.iter().filter(|l| !l.has_queue_id).count(),
        returned: returned.iter().map(|l| l.message_id.clone()).collect(),
        report_keys,
        batch_error,
        report,
        samples: Samples::new(),
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

/// `letter`'s record in the report; `stored`: whether its payload is.
fn to_record(
    letter: &DeadLetter,
    plan: &RecordPlan,
    stored: bool,
    opts: &TriageOptions,
) -> TriageRecord {
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
                    matched: PANIC_TEXT.into(),
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
        replay_name: event.and_then(|e| e.replay_name.clone()),
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
                reason: ReturnReason::NotStored,
            },
        },
    }
}
