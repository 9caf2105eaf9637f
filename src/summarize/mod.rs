//! One answer for a whole incident: every record of many reports, merged once per SQS
//! message id, narrowed to a time window, grouped into incidents by (category, target),
//! with a timeline and the affected conversations. No I/O here: the CLI reads the reports
//! (`dlq-triage summarize`) and feeds them to a [`Summarizer`] one at a time, so only what
//! the summary needs of each distinct record is held, never whole reports.

mod markdown;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::classify::FailureCategory;
use crate::correlate::InteractionInfo;
use crate::report::{Disposition, NO_TARGET, SCHEMA_VERSION, bucket_width, parse_time};

pub use markdown::{headline, render_summary};

/// A failure within this long before the end of the window makes its incident ongoing.
pub const ONGOING_WITHIN_MINUTES: i64 = 15;
/// How many message ids, and distinct error texts, an incident shows.
const SAMPLES: usize = 5;

/// `--since` / `--until`: which dead-letter times count, both ends included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// The earliest time that counts.
    pub since: Option<DateTime<Utc>>,
    /// The latest time that counts.
    pub until: Option<DateTime<Utc>>,
}

impl Window {
    /// Whether a record at `at` counts. With a window, a record without a time does not.
    pub fn contains(&self, at: Option<DateTime<Utc>>) -> bool {
        match at {
            Some(t) => self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u),
            None => self.since.is_none() && self.until.is_none(),
        }
    }
}

/// A `--since` / `--until` value: RFC 3339 (`2026-12-04T09:00:00Z`), or a duration back
/// from `now` in seconds, minutes, hours or days (`30s`, `90m`, `6h`, `7d`).
pub fn parse_when(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let unit = value.chars().last().unwrap_or(' ');
    let amount: Option<i64> = value[..value.len() - unit.len_utf8().min(value.len())]
        .parse()
        .ok()
        .filter(|n| *n >= 0);
    let back = match (amount, unit) {
        (Some(n), 's') => Duration::try_seconds(n),
        (Some(n), 'm') => Duration::try_minutes(n),
        (Some(n), 'h') => Duration::try_hours(n),
        (Some(n), 'd') => Duration::try_days(n),
        _ => None,
    };
    back.and_then(|d| now.checked_sub_signed(d)).ok_or_else(|| {
        format!("{value:?} is neither an RFC 3339 time (2026-12-04T09:00:00Z) nor a duration back from now (90m, 6h, 7d)")
    })
}

/// The part of a report `summarize` reads; the rest of the report is skipped unparsed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportDigest {
    /// Must be [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the report was built: the later of two reports says what became of a record.
    pub generated_at: String,
    /// Its records.
    pub records: Vec<RecordDigest>,
}

impl ReportDigest {
    /// A report's JSON, or why it is not one this version reads.
    pub fn parse(bytes: &[u8]) -> Result<ReportDigest, String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            schema_version: Option<u32>,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        match version.schema_version {
            Some(SCHEMA_VERSION) => {
                serde_json::from_slice(bytes).map_err(|e| format!("not a dlq-triage report: {e}"))
            }
            Some(v) => Err(format!(
                "report schema version {v}; this dlq-triage reads version {SCHEMA_VERSION}"
            )),
            None => Err("not a dlq-triage report: no schemaVersion".into()),
        }
    }
}

/// The part of a report record `summarize` reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordDigest {
    message_id: String,
    timestamp: Option<String>,
    sent_timestamp: Option<String>,
    interaction_id: Option<String>,
    failure_category: FailureCategory,
    target_arn: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    http_status: Option<u16>,
    interaction_info: Option<InteractionInfo>,
    disposition: Disposition,
    #[serde(default = "one")]
    event_count: usize,
}

fn one() -> usize {
    1
}

impl RecordDigest {
    /// When the message was dead-lettered (`sentTimestamp`), else the event's time.
    fn at(&self) -> Option<DateTime<Utc>> {
        self.sent_timestamp
            .as_deref()
            .or(self.timestamp.as_deref())
            .and_then(parse_time)
    }
}

/// What is kept of one distinct record: the latest report's view of it.
#[derive(Debug)]
struct Kept {
    /// `generatedAt` of the report it comes from.
    seen_in: Arc<str>,
    category: FailureCategory,
    target: Option<Arc<str>>,
    code: Option<Arc<str>>,
    error: Option<Arc<str>>,
    http_status: Option<u16>,
    at: Option<DateTime<Utc>>,
    events: usize,
    conversation: Option<Arc<str>>,
    stored: bool,
}

/// What is known of a conversation from the reports that name it.
#[derive(Debug, Default)]
struct ConversationSeen {
    media: BTreeSet<String>,
    queues: BTreeSet<String>,
    divisions: BTreeSet<String>,
}

/// Filters besides the window.
#[derive(Debug, Clone, Default)]
pub struct Only {
    /// `--category`.
    pub categories: Vec<FailureCategory>,
    /// `--target`.
    pub targets: Vec<String>,
}

/// Reports in, one [`Summary`] out.
#[derive(Debug, Default)]
pub struct Summarizer {
    window: Window,
    only: Only,
    /// One copy of each repeated text (targets, codes, errors, times, ids).
    texts: HashSet<Arc<str>>,
    records: HashMap<Box<str>, Kept>,
    conversations: HashMap<Arc<str>, ConversationSeen>,
    reports: usize,
    listed_again: usize,
    unreadable: Vec<Unreadable>,
}

impl Summarizer {
    /// A summarizer of the records in `window` that `only` lets through.
    pub fn new(window: Window, only: Only) -> Summarizer {
        Summarizer {
            window,
            only,
            ..Summarizer::default()
        }
    }

    fn text(&mut self, s: &str) -> Arc<str> {
        match self.texts.get(s) {
            Some(t) => t.clone(),
            None => {
                let t: Arc<str> = Arc::from(s);
                self.texts.insert(t.clone());
                t
            }
        }
    }

    /// Adds one report's records. A message id seen before keeps the view of the report
    /// generated later (its latest disposition).
    pub fn add(&mut self, report: ReportDigest) {
        self.reports += 1;
        let seen_in = self.text(&report.generated_at);
        for r in report.records {
            let at = r.at();
            let target_ok = self.only.targets.is_empty()
                || r.target_arn
                    .as_ref()
                    .is_some_and(|t| self.only.targets.contains(t));
            let category_ok = self.only.categories.is_empty()
                || self.only.categories.contains(&r.failure_category);
            if !self.window.contains(at) || !target_ok || !category_ok {
                continue;
            }
            if let Some(kept) = self.records.get(r.message_id.as_str()) {
                self.listed_again += 1;
                if *kept.seen_in > *seen_in {
                    continue;
                }
            }
            let conversation = r.interaction_id.as_deref().map(|c| self.text(c));
            if let (Some(c), Some(InteractionInfo::Found(found))) =
                (&conversation, &r.interaction_info)
            {
                let seen = self.conversations.entry(c.clone()).or_default();
                seen.media.extend(found.media_types.iter().cloned());
                seen.queues.extend(found.queue_ids.iter().cloned());
                seen.divisions.extend(found.division_ids.iter().cloned());
            }
            let kept = Kept {
                seen_in: seen_in.clone(),
                category: r.failure_category,
                target: r.target_arn.as_deref().map(|t| self.text(t)),
                code: r.error_code.as_deref().map(|c| self.text(c)),
                error: r.error_message.as_deref().map(|e| self.text(e)),
                http_status: r.http_status,
                at,
                events: r.event_count.max(1),
                conversation,
                stored: matches!(r.disposition, Disposition::Stored),
            };
            self.records.insert(r.message_id.into_boxed_str(), kept);
        }
    }

    /// Notes a source that could not be read as a report.
    pub fn unreadable(&mut self, source: String, reason: String) {
        self.unreadable.push(Unreadable { source, reason });
    }

    /// How many reports were read.
    pub fn reports(&self) -> usize {
        self.reports
    }

    /// The summary; `now` is when it is made, `sources` how the reports were named (for
    /// the replay commands).
    pub fn finish(mut self, now: DateTime<Utc>, sources: &[String]) -> Summary {
        let mut incidents: HashMap<(FailureCategory, Option<Arc<str>>), IncidentAcc> =
            HashMap::new();
        let mut by_category: BTreeMap<FailureCategory, usize> = BTreeMap::new();
        let mut by_target: BTreeMap<String, usize> = BTreeMap::new();
        let mut conversations: HashMap<Arc<str>, (Option<DateTime<Utc>>, usize)> = HashMap::new();
        let (mut first, mut last) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
        let (mut total, mut stored) = (0, 0);
        let mut ids: Vec<(&str, &Kept)> = self.records.iter().map(|(k, v)| (&**k, v)).collect();
        // Samples in time order, then by id: the same summary from the same reports.
        ids.sort_by(|a, b| a.1.at.cmp(&b.1.at).then(a.0.cmp(b.0)));
        for (id, r) in &ids {
            total += r.events;
            stored += usize::from(r.stored);
            *by_category.entry(r.category).or_default() += r.events;
            *by_target
                .entry(r.target.as_deref().unwrap_or(NO_TARGET).to_owned())
                .or_default() += r.events;
            if let Some(t) = r.at {
                first = Some(first.map_or(t, |f| f.min(t)));
                last = Some(last.map_or(t, |l| l.max(t)));
            }
            if let Some(c) = &r.conversation {
                let entry = conversations.entry(c.clone()).or_insert((r.at, 0));
                entry.1 += 1;
            }
            incidents
                .entry((r.category, r.target.clone()))
                .or_default()
                .add(id, r);
        }
        let end = self.window.until.unwrap_or(now);
        let window = WindowOut {
            since: self.window.since.map(fmt_time),
            until: self.window.until.map(fmt_time),
        };
        let mut incidents: Vec<Incident> = incidents
            .into_iter()
            .map(|((category, target), acc)| {
                acc.finish(category, target.as_deref(), end, sources, &self.window)
            })
            .collect();
        incidents.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.category.cmp(&b.category))
                .then(a.target_arn.cmp(&b.target_arn))
        });
        let timeline = timeline(&ids);
        let mut affected: Vec<AffectedConversation> = conversations
            .into_iter()
            .map(|(id, (first_failure, failures))| {
                let seen = self.conversations.remove(&id).unwrap_or_default();
                AffectedConversation {
                    id: id.to_string(),
                    media_types: seen.media.into_iter().collect(),
                    queue_ids: seen.queues.into_iter().collect(),
                    division_ids: seen.divisions.into_iter().collect(),
                    first_failure: first_failure.map(fmt_time),
                    failures,
                }
            })
            .collect();
        affected.sort_by(|a, b| a.first_failure.cmp(&b.first_failure).then(a.id.cmp(&b.id)));
        Summary {
            schema_version: SUMMARY_SCHEMA_VERSION,
            generated_at: fmt_time(now),
            window,
            reports: self.reports,
            unreadable: self.unreadable,
            total_failures: total,
            dead_letters: ids.len(),
            stored,
            listed_again: self.listed_again,
            first_seen: first.map(fmt_time),
            last_seen: last.map(fmt_time),
            ongoing: incidents.iter().any(|i| i.ongoing),
            by_category,
            by_target,
            incidents,
            timeline,
            conversations: affected,
        }
    }
}

/// An incident's figures while the records are counted.
#[derive(Default)]
struct IncidentAcc {
    count: usize,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    per_minute: HashMap<i64, usize>,
    codes: BTreeMap<String, usize>,
    statuses: BTreeSet<u16>,
    conversations: HashSet<Arc<str>>,
    samples: Vec<String>,
    errors: Vec<Arc<str>>,
}

impl IncidentAcc {
    fn add(&mut self, id: &str, r: &Kept) {
        self.count += r.events;
        if let Some(t) = r.at {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
            *self
                .per_minute
                .entry(t.timestamp().div_euclid(60))
                .or_default() += r.events;
        }
        if let Some(code) = &r.code {
            *self.codes.entry(code.to_string()).or_default() += r.events;
        }
        self.statuses.extend(r.http_status);
        self.conversations.extend(r.conversation.clone());
        if self.samples.len() < SAMPLES {
            self.samples.push(id.to_owned());
        }
        if let Some(e) = &r.error
            && self.errors.len() < SAMPLES
            && !self.errors.contains(e)
        {
            self.errors.push(e.clone());
        }
    }

    fn finish(
        self,
        category: FailureCategory,
        target: Option<&str>,
        end: DateTime<Utc>,
        sources: &[String],
        window: &Window,
    ) -> Incident {
        // The advice of the code seen most, as the per-batch report gives it per code.
        let top_code = self
            .codes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(c, _)| c.as_str());
        let (action, as_is) = category.advice(top_code);
        let ongoing = self
            .last
            .is_some_and(|l| l > end - Duration::minutes(ONGOING_WITHIN_MINUTES));
        Incident {
            category,
            target_arn: target.map(str::to_owned),
            count: self.count,
            first_seen: self.first.map(fmt_time),
            last_seen: self.last.map(fmt_time),
            peak_per_minute: self.per_minute.values().copied().max().unwrap_or(0),
            ongoing,
            conversations: self.conversations.len(),
            error_codes: self.codes,
            http_statuses: self.statuses.into_iter().collect(),
            sample_message_ids: self.samples,
            sample_errors: self.errors.iter().map(|e| e.to_string()).collect(),
            recommended_action: action.to_owned(),
            replay_as_is: as_is.to_owned(),
            replay_command: replay_command(
                sources, category, target, window, self.first, self.last,
            ),
        }
    }
}

/// The `dlq-triage replay` command for exactly one incident: its category, its target,
/// and the window (the one asked for, else the incident's own first and last failure).
fn replay_command(
    sources: &[String],
    category: FailureCategory,
    target: Option<&str>,
    window: &Window,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
) -> String {
    let mut words = vec!["dlq-triage".to_owned(), "replay".to_owned()];
    words.extend(sources.iter().map(|s| crate::report::shell_word(s)));
    words.push(format!("--category {category}"));
    if let Some(t) = target {
        words.push(format!("--target {}", crate::report::shell_word(t)));
    }
    if let Some(since) = window.since.or(first) {
        words.push(format!("--since {}", fmt_time(since)));
    }
    if let Some(until) = window.until.or(last) {
        words.push(format!("--until {}", fmt_time(until)));
    }
    words.push("--to-target".to_owned());
    words.join(" ")
}

/// Failures per category in buckets sized to the span (a minute up to a week).
fn timeline(records: &[(&str, &Kept)]) -> Timeline {
    let times: Vec<(FailureCategory, i64, usize)> = records
        .iter()
        .filter_map(|(_, r)| Some((r.category, r.at?.timestamp(), r.events)))
        .collect();
    let (Some(first), Some(last)) = (
        times.iter().map(|t| t.1).min(),
        times.iter().map(|t| t.1).max(),
    ) else {
        return Timeline {
            bucket_seconds: 0,
            buckets: Vec::new(),
        };
    };
    let width = bucket_width(last - first);
    let start = first - first.rem_euclid(width);
    let mut buckets: BTreeMap<i64, BTreeMap<FailureCategory, usize>> = BTreeMap::new();
    for (category, t, n) in times {
        *buckets
            .entry((t - start) / width)
            .or_default()
            .entry(category)
            .or_default() += n;
    }
    Timeline {
        bucket_seconds: width,
        buckets: buckets
            .into_iter()
            .map(|(i, by_category)| Bucket {
                start: DateTime::from_timestamp(start + i * width, 0)
                    .map(fmt_time)
                    .unwrap_or_default(),
                by_category,
            })
            .collect(),
    }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The version of `summary.json`'s schema.
pub const SUMMARY_SCHEMA_VERSION: u32 = 1;

/// `summary.json`: the whole incident across the reports read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Always [`SUMMARY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the summary was made.
    pub generated_at: String,
    /// The window asked for.
    pub window: WindowOut,
    /// Reports read.
    pub reports: usize,
    /// Sources that could not be read as reports, and why.
    pub unreadable: Vec<Unreadable>,
    /// Failed events: one per dead letter, except Custom Event Bus summaries, which count
    /// their events.
    pub total_failures: usize,
    /// Distinct dead letters (SQS message ids).
    pub dead_letters: usize,
    /// Of those, how many the latest report stored.
    pub stored: usize,
    /// Records listed again by another report (counted once).
    pub listed_again: usize,
    /// The earliest failure.
    pub first_seen: Option<String>,
    /// The latest failure.
    pub last_seen: Option<String>,
    /// Whether any incident is ongoing.
    pub ongoing: bool,
    /// Failed events per category.
    pub by_category: BTreeMap<FailureCategory, usize>,
    /// Failed events per target ARN.
    pub by_target: BTreeMap<String, usize>,
    /// Incidents by (category, target), largest first.
    pub incidents: Vec<Incident>,
    /// Failures over time.
    pub timeline: Timeline,
    /// The conversations affected, by first failure.
    pub conversations: Vec<AffectedConversation>,
}

/// The window of a summary, as asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowOut {
    /// `--since`, resolved.
    pub since: Option<String>,
    /// `--until`, resolved.
    pub until: Option<String>,
}

/// A source that is not a readable report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unreadable {
    /// The file or `s3://` object.
    pub source: String,
    /// Why.
    pub reason: String,
}

/// Failures of one category against one target across the reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    /// The category.
    pub category: FailureCategory,
    /// The target ARN.
    pub target_arn: Option<String>,
    /// Failed events.
    pub count: usize,
    /// The first failure.
    pub first_seen: Option<String>,
    /// The last failure.
    pub last_seen: Option<String>,
    /// The most failures in one minute.
    pub peak_per_minute: usize,
    /// A failure within the last 15 minutes of the window (of now without `--until`).
    pub ongoing: bool,
    /// Distinct conversations affected.
    pub conversations: usize,
    /// Failed events per `ERROR_CODE`.
    pub error_codes: BTreeMap<String, usize>,
    /// HTTP statuses seen.
    pub http_statuses: Vec<u16>,
    /// Up to five message ids, earliest first.
    pub sample_message_ids: Vec<String>,
    /// Up to five distinct error messages, verbatim.
    pub sample_errors: Vec<String>,
    /// What to do about it.
    pub recommended_action: String,
    /// Whether the payloads can be replayed unchanged once fixed.
    pub replay_as_is: String,
    /// The replay of exactly this incident.
    pub replay_command: String,
}

/// Failures per category over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    /// The width of a bucket (0 when no record has a time).
    pub bucket_seconds: i64,
    /// Buckets with failures, in time order.
    pub buckets: Vec<Bucket>,
}

/// One bucket of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// Its start.
    pub start: String,
    /// Failed events per category.
    pub by_category: BTreeMap<FailureCategory, usize>,
}

/// A conversation with failed events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedConversation {
    /// The conversation id.
    pub id: String,
    /// Media types, as Genesys Cloud reported them.
    pub media_types: Vec<String>,
    /// Queues.
    pub queue_ids: Vec<String>,
    /// Divisions.
    pub division_ids: Vec<String>,
    /// Its first failure.
    pub first_failure: Option<String>,
    /// Dead letters naming it.
    pub failures: usize,
}

#[cfg(test)]
mod tests;
