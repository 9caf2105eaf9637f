//! The one aggregation of dead letters: an [`Aggregate`] counts each dead letter once, at
//! its **dead-letter time** ([`dead_lettered_at`]: when it reached the queue, else its
//! event's own time), into the totals (failed events, dead letters, per category, per
//! target, the span, the conversations) and into incidents grouped by (category, target)
//! ([`Incidents`], each a [`Tally`]: its figures, the error code that names it, and the
//! order incidents are listed in, largest first). The per-batch report (`Report::build`),
//! `summarize` (and so each report's page) and the incident table's observations all count
//! through it, then project it once each into their own wire type. So a batch's
//! `report.json`, its page and a summary of the same records always agree.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;

use chrono::{DateTime, SecondsFormat, Utc};

use super::schema::{NO_TARGET, TriageRecord};
use crate::classify::FailureCategory;

/// A hash map with a fast hasher: its keys are minutes and the reports' own texts.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<T> = HashSet<T, foldhash::fast::RandomState>;

/// How many message ids, and distinct error texts, an incident keeps as samples.
pub(super) const SAMPLES: usize = 5;
/// Sample payloads a page shows per incident: the first of its samples.
pub(crate) const PAYLOADS_PER_INCIDENT: usize = 3;

/// A record timestamp: RFC 3339, or epoch milliseconds.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    s.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

/// A time as reports and summaries write it: RFC 3339 UTC, to the second.
pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// When a record was dead-lettered: its `sentTimestamp`, else its event's `timestamp`.
/// The one clock every count, window and incident uses.
pub(crate) fn dead_lettered_at(
    sent: Option<&str>,
    timestamp: Option<&str>,
) -> Option<DateTime<Utc>> {
    sent.or(timestamp).and_then(parse_time)
}

/// One dead letter as an incident counts it. `T` is how its texts are held: borrowed from
/// the report being built, or shared (`Arc<str>`) across the reports a summary reads.
#[derive(Debug)]
pub(crate) struct Occurrence<'r, T> {
    /// Its SQS message id.
    pub id: &'r str,
    /// When it failed.
    pub at: Option<DateTime<Utc>>,
    /// The failed events it stands for (1, or a Custom Event Bus summary's count).
    pub events: usize,
    /// `ERROR_CODE`.
    pub code: Option<T>,
    /// An HTTP status stated in its error.
    pub http_status: Option<u16>,
    /// The Genesys conversation.
    pub conversation: Option<T>,
    /// `ERROR_MESSAGE`.
    pub error: Option<T>,
    /// `RULE_ARN`.
    pub rule: Option<T>,
}

/// One incident's figures.
#[derive(Debug)]
pub(crate) struct Tally<T> {
    /// Failed events.
    pub count: usize,
    /// The first and last failure.
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    /// Failed events per minute since the epoch.
    pub per_minute: Map<i64, usize>,
    /// Failed events per `ERROR_CODE`.
    pub codes: BTreeMap<T, usize>,
    /// HTTP statuses seen.
    pub statuses: BTreeSet<u16>,
    /// Distinct conversations.
    pub conversations: Set<T>,
    /// The first [`SAMPLES`] message ids, in the order counted.
    pub samples: Vec<String>,
    /// The first [`SAMPLES`] distinct error texts, in the order counted.
    pub errors: Vec<T>,
    /// The rules whose target failed.
    pub rules: BTreeSet<T>,
}

impl<T> Default for Tally<T> {
    fn default() -> Self {
        Tally {
            count: 0,
            first: None,
            last: None,
            per_minute: Map::default(),
            codes: BTreeMap::new(),
            statuses: BTreeSet::new(),
            conversations: Set::default(),
            samples: Vec::new(),
            errors: Vec::new(),
            rules: BTreeSet::new(),
        }
    }
}

impl<T: Borrow<str> + Ord + Hash + Clone> Tally<T> {
    fn add(&mut self, f: Occurrence<'_, T>) {
        self.count += f.events;
        if let Some(t) = f.at {
            self.first = Some(self.first.map_or(t, |first| first.min(t)));
            self.last = Some(self.last.map_or(t, |last| last.max(t)));
            *self
                .per_minute
                .entry(t.timestamp().div_euclid(60))
                .or_default() += f.events;
        }
        if let Some(code) = f.code {
            *self.codes.entry(code).or_default() += f.events;
        }
        self.statuses.extend(f.http_status);
        self.conversations.extend(f.conversation);
        self.rules.extend(f.rule);
        if self.samples.len() < SAMPLES {
            self.samples.push(f.id.to_owned());
        }
        if let Some(e) = f.error
            && self.errors.len() < SAMPLES
            && !self.errors.contains(&e)
        {
            self.errors.push(e);
        }
    }

    /// The code seen most (the first by name on a tie): it names the incident and gives
    /// its advice.
    pub(crate) fn top_code(&self) -> Option<&str> {
        self.codes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(c, _)| c.borrow())
    }

    /// The most failed events in one minute.
    pub(crate) fn peak_per_minute(&self) -> usize {
        self.per_minute.values().copied().max().unwrap_or(0)
    }

    /// Every code with its count, as the wire types list them.
    pub(crate) fn error_codes(&self) -> BTreeMap<String, usize> {
        self.codes
            .iter()
            .map(|(c, n)| (c.borrow().to_owned(), *n))
            .collect()
    }

    /// What to do about an incident of `category`, and whether its payloads can be
    /// replayed as they are: the advice of the code seen most.
    pub(crate) fn advice(&self, category: FailureCategory) -> (String, String) {
        let (action, as_is) = category.advice(self.top_code());
        (action.to_owned(), as_is.to_owned())
    }

    /// The first and last failure, as the wire types write them.
    pub(crate) fn span(&self) -> (Option<String>, Option<String>) {
        (self.first.map(fmt_time), self.last.map(fmt_time))
    }

    /// The HTTP statuses seen, sorted.
    pub(crate) fn http_statuses(&self) -> Vec<u16> {
        self.statuses.iter().copied().collect()
    }

    /// The distinct error texts kept, in the order counted.
    pub(crate) fn sample_errors(&self) -> Vec<String> {
        self.errors.iter().map(|e| e.borrow().to_owned()).collect()
    }

    /// The rules whose target failed, sorted.
    pub(crate) fn rule_arns(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.borrow().to_owned()).collect()
    }
}

/// Dead letters grouped into incidents by (category, target ARN).
#[derive(Debug)]
pub(crate) struct Incidents<T> {
    groups: Map<(FailureCategory, Option<T>), Tally<T>>,
}

impl<T> Default for Incidents<T> {
    fn default() -> Self {
        Incidents {
            groups: Map::default(),
        }
    }
}

impl<T: Borrow<str> + Ord + Hash + Clone> Incidents<T> {
    /// Counts `failure` into the incident of (`category`, `target`).
    pub(crate) fn add(
        &mut self,
        category: FailureCategory,
        target: Option<T>,
        failure: Occurrence<'_, T>,
    ) {
        self.groups
            .entry((category, target))
            .or_default()
            .add(failure);
    }

    /// The incidents, largest first; ties by category, then target.
    pub(crate) fn sorted(self) -> Vec<(FailureCategory, Option<T>, Tally<T>)> {
        let mut all: Vec<_> = self
            .groups
            .into_iter()
            .map(|((category, target), tally)| (category, target, tally))
            .collect();
        all.sort_by(|a, b| {
            b.2.count.cmp(&a.2.count).then(a.0.cmp(&b.0)).then_with(|| {
                let (x, y) = (a.1.as_ref(), b.1.as_ref());
                x.map(|t| -> &str { t.borrow() })
                    .cmp(&y.map(|t| -> &str { t.borrow() }))
            })
        });
        all
    }
}

impl<'r> Occurrence<'r, &'r str> {
    /// A report's record as every aggregation counts it: at its dead-letter time
    /// ([`dead_lettered_at`]), standing for its `eventCount` events.
    pub(crate) fn of_record(r: &'r TriageRecord) -> Self {
        Occurrence {
            id: &r.message_id,
            at: dead_lettered_at(r.sent_timestamp.as_deref(), r.timestamp.as_deref()),
            events: r.event_count.max(1),
            code: r.failure.error_code.as_deref(),
            http_status: r.http_status,
            conversation: r.interaction_id.as_deref(),
            error: r.failure.error_message.as_deref(),
            rule: r.failure.rule_arn.as_deref(),
        }
    }
}

/// Dead letters counted once: the totals and the incidents. Each wire type (the report's
/// `summary`, `summary.json`, the incident table's observations) is one projection of it.
#[derive(Debug)]
pub(crate) struct Aggregate<T> {
    /// Failed events: one per dead letter, except Custom Event Bus summaries, which count
    /// their events.
    pub total: usize,
    /// Dead letters counted.
    pub dead_letters: usize,
    /// Failed events per category.
    pub by_category: BTreeMap<FailureCategory, usize>,
    /// Failed events per target (`None`: the attribute is missing).
    by_target: Map<Option<T>, usize>,
    /// The earliest and latest dead-letter time.
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    /// Conversation → (the time of the first dead letter counted that names it, dead
    /// letters naming it).
    pub conversations: Map<T, (Option<DateTime<Utc>>, usize)>,
    /// The incidents, by (category, target).
    pub incidents: Incidents<T>,
}

impl<T> Default for Aggregate<T> {
    fn default() -> Self {
        Aggregate {
            total: 0,
            dead_letters: 0,
            by_category: BTreeMap::new(),
            by_target: Map::default(),
            first: None,
            last: None,
            conversations: Map::default(),
            incidents: Incidents::default(),
        }
    }
}

impl<T: Borrow<str> + Ord + Hash + Clone> Aggregate<T> {
    /// Counts one dead letter of `category` against `target` into the totals and its
    /// incident.
    pub(crate) fn add(
        &mut self,
        category: FailureCategory,
        target: Option<T>,
        failure: Occurrence<'_, T>,
    ) {
        let events = failure.events;
        self.total += events;
        self.dead_letters += 1;
        *self.by_category.entry(category).or_default() += events;
        *self.by_target.entry(target.clone()).or_default() += events;
        if let Some(t) = failure.at {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
        if let Some(conversation) = &failure.conversation {
            let seen = self
                .conversations
                .entry(conversation.clone())
                .or_insert((failure.at, 0));
            seen.1 += 1;
        }
        self.incidents.add(category, target, failure);
    }

    /// Failed events per target ARN, as the wire types list them ([`NO_TARGET`] for the
    /// dead letters without one).
    pub(crate) fn by_target(&self) -> BTreeMap<String, usize> {
        let mut all = BTreeMap::new();
        for (target, n) in &self.by_target {
            let name = target.as_ref().map_or(NO_TARGET, |t| t.borrow());
            *all.entry(name.to_owned()).or_default() += n;
        }
        all
    }
}

impl<'r> Aggregate<&'r str> {
    /// Every record of `records`, counted once. A record without a time counts at
    /// `undated` when given (the incident table needs a time for each).
    pub(crate) fn of_records(
        records: impl IntoIterator<Item = &'r TriageRecord>,
        undated: Option<DateTime<Utc>>,
    ) -> Self {
        let mut aggregate = Aggregate::default();
        for r in records {
            let mut failure = Occurrence::of_record(r);
            failure.at = failure.at.or(undated);
            aggregate.add(r.failure_category, r.failure.target_arn.as_deref(), failure);
        }
        aggregate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure<'a>(
        id: &'a str,
        minute: i64,
        code: &'a str,
        error: &'a str,
    ) -> Occurrence<'a, &'a str> {
        Occurrence {
            id,
            at: DateTime::from_timestamp(minute * 60, 0),
            events: 1,
            code: Some(code),
            http_status: Some(429),
            conversation: Some("c1"),
            error: Some(error),
            rule: None,
        }
    }

    #[test]
    fn an_incident_counts_its_codes_peak_and_distinct_errors() {
        let mut incidents = Incidents::default();
        for (i, (minute, code, error)) in [
            (0, "B", "slow down"),
            (0, "A", "slow down"),
            (1, "B", "too many"),
            (5, "A", "again"),
        ]
        .into_iter()
        .enumerate()
        {
            let id = ["m0", "m1", "m2", "m3"][i];
            incidents.add(
                FailureCategory::RateLimitExceeded,
                Some("t"),
                failure(id, minute, code, error),
            );
        }
        let all = incidents.sorted();
        let (_, _, tally) = &all[0];
        assert_eq!(tally.count, 4);
        // A tie between A and B: the first by name.
        assert_eq!(tally.top_code(), Some("A"));
        assert_eq!(tally.peak_per_minute(), 2);
        assert_eq!(tally.errors, ["slow down", "too many", "again"]);
        assert_eq!(tally.conversations.len(), 1);
        assert_eq!(tally.samples, ["m0", "m1", "m2", "m3"]);
    }

    #[test]
    fn incidents_are_listed_largest_first_then_by_category_and_target() {
        let mut incidents = Incidents::default();
        let add = |i: &mut Incidents<&'static str>, c, t: Option<&'static str>, n| {
            for _ in 0..n {
                i.add(c, t, failure("m", 0, "X", "e"));
            }
        };
        add(&mut incidents, FailureCategory::TargetError, Some("b"), 1);
        add(&mut incidents, FailureCategory::TargetError, Some("a"), 1);
        add(&mut incidents, FailureCategory::RateLimitExceeded, None, 1);
        add(&mut incidents, FailureCategory::Unknown, Some("z"), 3);
        let order: Vec<_> = incidents
            .sorted()
            .into_iter()
            .map(|(c, t, _)| (c, t))
            .collect();
        assert_eq!(
            order,
            [
                (FailureCategory::Unknown, Some("z")),
                (FailureCategory::RateLimitExceeded, None),
                (FailureCategory::TargetError, Some("a")),
                (FailureCategory::TargetError, Some("b")),
            ]
        );
    }
}
