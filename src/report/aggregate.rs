//! The aggregation the per-batch report and `summarize` share: dead letters grouped into
//! incidents by (category, target), each incident's figures, the error code that names it,
//! and the order incidents are listed in (largest first). One code, so a batch's report and
//! a summary of the same records always agree.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::classify::FailureCategory;

/// A hash map with a fast hasher: its keys are minutes and the reports' own texts.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<T> = HashSet<T, foldhash::fast::RandomState>;

/// How many message ids, and distinct error texts, an incident keeps as samples.
pub const SAMPLES: usize = 5;

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

/// One dead letter as an incident counts it. `T` is how its texts are held: borrowed from
/// the report being built, or shared (`Arc<str>`) across the reports a summary reads.
#[derive(Debug)]
pub(crate) struct Failure<'r, T> {
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
    fn add(&mut self, f: Failure<'_, T>) {
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
    pub fn top_code(&self) -> Option<&str> {
        self.codes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(c, _)| c.borrow())
    }

    /// The most failed events in one minute.
    pub fn peak_per_minute(&self) -> usize {
        self.per_minute.values().copied().max().unwrap_or(0)
    }

    /// Every code with its count, as the wire types list them.
    pub fn error_codes(&self) -> BTreeMap<String, usize> {
        self.codes
            .iter()
            .map(|(c, n)| (c.borrow().to_owned(), *n))
            .collect()
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
    pub fn add(&mut self, category: FailureCategory, target: Option<T>, failure: Failure<'_, T>) {
        self.groups
            .entry((category, target))
            .or_default()
            .add(failure);
    }

    /// The incidents, largest first; ties by category, then target.
    pub fn sorted(self) -> Vec<(FailureCategory, Option<T>, Tally<T>)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn failure<'a>(
        id: &'a str,
        minute: i64,
        code: &'a str,
        error: &'a str,
    ) -> Failure<'a, &'a str> {
        Failure {
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
