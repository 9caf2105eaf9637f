//! One answer for a whole incident: every record of many reports, merged once per SQS
//! message id, narrowed to a time window, grouped into incidents by (category, target),
//! with a timeline and the affected conversations. No I/O here: the CLI reads the reports
//! (`dlq-triage summarize`) and feeds them to a [`Summarizer`] one at a time, so only what
//! the summary needs of each distinct record is held, never whole reports.

mod markdown;
mod schema;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::classify::FailureCategory;
use crate::report::{Aggregate, Incidents, Occurrence, Report, Tally, bucket_width, fmt_time};
use crate::reports::{Filter, ReportDigest, Window};

pub(crate) use crate::report::PAYLOADS_PER_INCIDENT;
pub(crate) use markdown::said;
pub(crate) use markdown::{render_summary, summary_headline};
pub(crate) use schema::{
    AffectedConversation, ApiDestinationHealth, Bucket, EventSourceHealth, Health, Incident,
    RuleHealth, SUMMARY_SCHEMA_VERSION, Summary, Timeline, Unreadable, WindowOut,
};

/// A failure within this long before the end of the window makes its incident ongoing.
pub(crate) const ONGOING_WITHIN_MINUTES: i64 = 15;
/// Incidents a page shows with their advice, samples and replay command.
pub(crate) const INCIDENT_SECTIONS: usize = 50;
/// Affected conversations a page lists (with their start and end).
pub(crate) const CONVERSATIONS_SHOWN: usize = 500;

/// A conversation's start and end, as Genesys Cloud reported them.
pub(crate) type ConversationTimes = (Option<String>, Option<String>);

/// What a page shows beyond the summary itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Detail {
    /// Per incident, in the summary's order: failed events per minute since the epoch, in
    /// time order.
    pub per_minute: Vec<Vec<(i64, usize)>>,
    /// Start and end of the first [`CONVERSATIONS_SHOWN`] affected conversations, in the
    /// summary's order, as Genesys Cloud reported them.
    pub conversation_times: Vec<ConversationTimes>,
    /// A few payloads by message id (see [`Detail::wanted_payloads`]).
    pub payloads: BTreeMap<String, bytes::Bytes>,
}

impl Detail {
    /// The message ids whose payloads the page shows: the first
    /// [`PAYLOADS_PER_INCIDENT`] samples of each incident it details.
    pub(crate) fn wanted_payloads(summary: &Summary) -> BTreeSet<String> {
        summary
            .incidents
            .iter()
            .take(INCIDENT_SECTIONS)
            .flat_map(|i| i.sample_message_ids.iter().take(PAYLOADS_PER_INCIDENT))
            .cloned()
            .collect()
    }
}

/// What is kept of one distinct record: the latest report's view of it. A million of
/// these are held at once, so texts are [`TextId`]s and the record is 52 bytes.
#[derive(Debug)]
struct Kept {
    /// The report it comes from: an index into [`Summarizer::generated`].
    seen_in: u32,
    at: Option<DateTime<Utc>>,
    target: Option<TextId>,
    rule: Option<TextId>,
    code: Option<TextId>,
    error: Option<TextId>,
    conversation: Option<TextId>,
    events: u32,
    /// The index of the source it was read from ([`Summarizer::add_from`]).
    source: u32,
    http_status: Option<u16>,
    category: FailureCategory,
    stored: bool,
}

/// A text held once by the summarizer (a target, rule, code, error or conversation id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TextId(std::num::NonZeroU32);

/// Every distinct text, each once, by [`TextId`].
#[derive(Debug, Default)]
struct Texts {
    ids: Map<Arc<str>, TextId>,
    all: Vec<Arc<str>>,
}

impl Texts {
    fn intern(&mut self, s: &str) -> TextId {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let text: Arc<str> = Arc::from(s);
        self.all.push(text.clone());
        let id = TextId(
            std::num::NonZeroU32::new(
                u32::try_from(self.all.len()).expect("fewer than 2^32 texts"),
            )
            .expect("at least one"),
        );
        self.ids.insert(text, id);
        id
    }

    fn get(&self, id: TextId) -> &str {
        &self.all[id.0.get() as usize - 1]
    }
}

/// A hash map with a fast hasher: its keys are the reports' own ids and texts.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What is known of a conversation from the reports that name it.
#[derive(Debug, Default)]
struct ConversationSeen {
    media: BTreeSet<String>,
    queues: BTreeSet<String>,
    divisions: BTreeSet<String>,
    /// Its start and end, as the latest report naming them says.
    start: Option<String>,
    end: Option<String>,
}

/// A finished summary with what its page shows beyond it.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The summary.
    pub summary: Summary,
    /// Each incident's failures per minute and the affected conversations' times.
    pub detail: Detail,
    /// Where the page's sample payloads are: message id → the index of the source whose
    /// report lists it ([`Summarizer::add_from`]).
    pub payload_sources: BTreeMap<String, usize>,
}

/// The index [`Summarizer::add`] gives a report of no named source.
const NO_SOURCE: u32 = u32::MAX;

/// Reports in, one [`Summary`] out.
#[derive(Debug, Default)]
pub(crate) struct Summarizer {
    filter: Filter,
    /// One copy of each repeated text (targets, rules, codes, errors, conversation ids).
    texts: Texts,
    /// `generatedAt` of each report read, in the order read.
    generated: Vec<Arc<str>>,
    records: Map<Box<str>, Kept>,
    conversations: Map<TextId, ConversationSeen>,
    reports: usize,
    listed_again: usize,
    unreadable: Vec<Unreadable>,
}

impl Summarizer {
    /// A summarizer of the records `filter` lets through (its message ids unused).
    pub(crate) fn new(filter: Filter) -> Summarizer {
        Summarizer {
            filter,
            ..Summarizer::default()
        }
    }

    /// Adds one report's records. A message id seen before keeps the view of the report
    /// generated later (its latest disposition).
    #[cfg(test)]
    pub(crate) fn add(&mut self, report: ReportDigest) {
        self.add_tagged(report, NO_SOURCE);
    }

    /// [`Summarizer::add`], remembering that the report is the caller's source number
    /// `source` (where the page's sample payloads are found).
    pub(crate) fn add_from(&mut self, report: ReportDigest, source: usize) {
        self.add_tagged(report, u32::try_from(source).unwrap_or(NO_SOURCE));
    }

    fn add_tagged(&mut self, report: ReportDigest, source: u32) {
        self.reports += 1;
        let seen_in = u32::try_from(self.generated.len()).expect("fewer than 2^32 reports");
        self.generated.push(Arc::from(report.generated_at));
        // Each distinct text of the report once into the shared ones; records name them.
        let ids: Vec<TextId> = report.texts.iter().map(|t| self.texts.intern(t)).collect();
        let id = |i: Option<u32>| i.map(|i| ids[i as usize]);
        for r in report.records {
            let target = r.target_arn.map(|i| &*report.texts[i as usize]);
            if !self
                .filter
                .admits(&r.message_id, r.failure_category, target, r.at)
            {
                continue;
            }
            let conversation = id(r.interaction_id);
            let kept = Kept {
                seen_in,
                at: r.at,
                target: id(r.target_arn),
                rule: id(r.rule_arn),
                code: id(r.error_code),
                error: id(r.error_message),
                conversation,
                events: u32::try_from(r.event_count.max(1)).unwrap_or(u32::MAX),
                source,
                http_status: r.http_status,
                category: r.failure_category,
                stored: r.stored,
            };
            let generated = &self.generated;
            match self.records.entry(r.message_id) {
                Entry::Occupied(o)
                    if *generated[o.get().seen_in as usize] > *generated[seen_in as usize] =>
                {
                    self.listed_again += 1;
                    continue;
                }
                Entry::Occupied(mut o) => {
                    self.listed_again += 1;
                    o.insert(kept);
                }
                Entry::Vacant(v) => {
                    v.insert(kept);
                }
            }
            if let (Some(c), Some(found)) = (conversation, r.found) {
                let seen = self.conversations.entry(c).or_default();
                seen.media.extend(found.media_types);
                seen.queues.extend(found.queue_ids);
                seen.divisions.extend(found.division_ids);
                if found.conversation_start.is_some() {
                    seen.start = found.conversation_start;
                }
                if found.conversation_end.is_some() {
                    seen.end = found.conversation_end;
                }
            }
        }
    }

    /// Notes a source that could not be read as a report.
    pub(crate) fn unreadable(&mut self, source: String, reason: String) {
        self.unreadable.push(Unreadable { source, reason });
    }

    /// How many reports were read.
    pub(crate) fn reports(&self) -> usize {
        self.reports
    }

    /// The summary; `now` is when it is made, `sources` how the reports were named (for
    /// the replay commands).
    #[cfg(test)]
    pub(crate) fn finish(self, now: DateTime<Utc>, sources: &[String]) -> Summary {
        self.finish_detailed(now, sources).summary
    }

    /// [`Summarizer::finish`], with what the summary's page shows beyond it.
    pub(crate) fn finish_detailed(mut self, now: DateTime<Utc>, sources: &[String]) -> Finished {
        let mut ids: Vec<(&str, &Kept)> = self.records.iter().map(|(k, v)| (&**k, v)).collect();
        // Samples in time order, then by id (ids are distinct): the same summary from the
        // same reports.
        ids.sort_unstable_by(|a, b| a.1.at.cmp(&b.1.at).then_with(|| a.0.cmp(b.0)));
        let texts = &self.texts;
        let aggregate = aggregate(&ids, texts);
        let window = self.filter.window;
        let end = window.until.unwrap_or(now);
        let by_target = aggregate.by_target();
        let (incidents, per_minute) = incidents(aggregate.incidents, end, sources, &window);
        let (affected, conversation_times) =
            affected(aggregate.conversations, &mut self.conversations, texts);
        let summary = Summary {
            schema_version: SUMMARY_SCHEMA_VERSION,
            generated_at: fmt_time(now),
            window: WindowOut {
                since: window.since.map(fmt_time),
                until: window.until.map(fmt_time),
            },
            reports: self.reports,
            unreadable: self.unreadable,
            total_failures: aggregate.total,
            dead_letters: aggregate.dead_letters,
            stored: ids.iter().filter(|(_, r)| r.stored).count(),
            listed_again: self.listed_again,
            first_seen: aggregate.first.map(fmt_time),
            last_seen: aggregate.last.map(fmt_time),
            ongoing: incidents.iter().any(|i| i.ongoing),
            by_category: aggregate.by_category,
            by_target,
            incidents,
            timeline: timeline(&ids),
            conversations: affected,
            health: None,
        };
        let payload_sources = Detail::wanted_payloads(&summary)
            .into_iter()
            .filter_map(|id| {
                let source = self.records.get(id.as_str())?.source;
                (source != NO_SOURCE).then_some((id, source as usize))
            })
            .collect();
        Finished {
            summary,
            detail: Detail {
                per_minute,
                conversation_times,
                payloads: BTreeMap::new(),
            },
            payload_sources,
        }
    }
}

/// The distinct records `ids` (in time order, which the samples follow), counted once.
fn aggregate<'t>(ids: &[(&'t str, &Kept)], texts: &'t Texts) -> Aggregate<&'t str> {
    let text = |id: Option<TextId>| id.map(|i| texts.get(i));
    let mut aggregate = Aggregate::default();
    for (id, r) in ids {
        let failure = Occurrence {
            id,
            at: r.at,
            events: r.events as usize,
            code: text(r.code),
            http_status: r.http_status,
            conversation: text(r.conversation),
            error: text(r.error),
            rule: text(r.rule),
        };
        aggregate.add(r.category, text(r.target), failure);
    }
    aggregate
}

/// The summary's incidents, largest first, with each one's failures per minute (in time
/// order) for its page.
fn incidents(
    counted: Incidents<&str>,
    end: DateTime<Utc>,
    sources: &[String],
    window: &Window,
) -> (Vec<Incident>, Vec<Vec<(i64, usize)>>) {
    counted
        .sorted()
        .into_iter()
        .map(|(category, target, tally)| {
            let mut minutes: Vec<(i64, usize)> =
                tally.per_minute.iter().map(|(m, n)| (*m, *n)).collect();
            minutes.sort_unstable();
            (
                incident(category, target, tally, end, sources, window),
                minutes,
            )
        })
        .unzip()
}

/// The affected conversations by first failure, with what the reports say of each, and
/// the start and end of the first [`CONVERSATIONS_SHOWN`].
fn affected<'t>(
    counted: impl IntoIterator<Item = (&'t str, (Option<DateTime<Utc>>, usize))>,
    seen: &mut Map<TextId, ConversationSeen>,
    texts: &Texts,
) -> (Vec<AffectedConversation>, Vec<ConversationTimes>) {
    let mut affected: Vec<(AffectedConversation, ConversationTimes)> = counted
        .into_iter()
        .map(|(id, (first_failure, failures))| {
            let seen = texts
                .ids
                .get(id)
                .and_then(|t| seen.remove(t))
                .unwrap_or_default();
            let conversation = AffectedConversation {
                id: id.to_owned(),
                media_types: seen.media.into_iter().collect(),
                queue_ids: seen.queues.into_iter().collect(),
                division_ids: seen.divisions.into_iter().collect(),
                first_failure: first_failure.map(fmt_time),
                failures,
            };
            (conversation, (seen.start, seen.end))
        })
        .collect();
    affected.sort_by(|(a, _), (b, _)| a.first_failure.cmp(&b.first_failure).then(a.id.cmp(&b.id)));
    let conversation_times = affected
        .iter_mut()
        .take(CONVERSATIONS_SHOWN)
        .map(|(_, times)| std::mem::take(times))
        .collect();
    (
        affected.into_iter().map(|(c, _)| c).collect(),
        conversation_times,
    )
}

/// One incident of the summary: its [`Tally`] as `summary.json` writes it; ongoing when it
/// failed within [`ONGOING_WITHIN_MINUTES`] of `end`.
fn incident(
    category: FailureCategory,
    target: Option<&str>,
    tally: Tally<&str>,
    end: DateTime<Utc>,
    sources: &[String],
    window: &Window,
) -> Incident {
    let (recommended_action, replay_as_is) = tally.advice(category);
    let (first_seen, last_seen) = tally.span();
    let ongoing = tally
        .last
        .is_some_and(|l| l > end - Duration::minutes(ONGOING_WITHIN_MINUTES));
    Incident {
        category,
        target_arn: target.map(str::to_owned),
        rules: tally.rule_arns(),
        count: tally.count,
        first_seen,
        last_seen,
        peak_per_minute: tally.peak_per_minute(),
        ongoing,
        conversations: tally.conversations.len(),
        error_codes: tally.error_codes(),
        http_statuses: tally.http_statuses(),
        sample_errors: tally.sample_errors(),
        recommended_action,
        replay_as_is,
        replay_command: replay_command(sources, category, target, window, tally.first, tally.last),
        sample_message_ids: tally.samples,
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
        .filter_map(|(_, r)| Some((r.category, r.at?.timestamp(), r.events as usize)))
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

/// A report's page: the summary of that one report (named `address` in its replay
/// commands), as of when it was generated.
pub(crate) fn of_report(report: &Report, address: &str) -> Finished {
    let mut summarizer = Summarizer::new(Filter::default());
    summarizer.add_from(ReportDigest::of(report), 0);
    let now = crate::report::parse_time(&report.generated_at).unwrap_or_else(Utc::now);
    summarizer.finish_detailed(now, &[address.to_owned()])
}

#[cfg(test)]
mod tests;
