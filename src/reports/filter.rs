//! The one filter `replay` and `summarize` apply to stored records: `--category`,
//! `--target`, `--message-id`, `--since` / `--until`.

use chrono::{DateTime, Duration, Utc};

use crate::classify::FailureCategory;

/// `--since` / `--until`: which dead-letter times count, both ends included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Window {
    /// The earliest time that counts.
    pub since: Option<DateTime<Utc>>,
    /// The latest time that counts.
    pub until: Option<DateTime<Utc>>,
}

impl Window {
    /// Whether a record at `at` counts. With a window, a record without a time does not.
    pub(crate) fn contains(&self, at: Option<DateTime<Utc>>) -> bool {
        match at {
            Some(t) => self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u),
            None => self.since.is_none() && self.until.is_none(),
        }
    }
}

/// A `--since` / `--until` value that is neither a time nor a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is neither an RFC 3339 time (2026-12-04T09:00:00Z) nor a duration back from now (90m, 6h, 7d)"
)]
pub(crate) struct WhenError {
    /// The value given.
    pub value: String,
}

/// A `--since` / `--until` value: RFC 3339 (`2026-12-04T09:00:00Z`), or a duration back
/// from `now` in seconds, minutes, hours or days (`30s`, `90m`, `6h`, `7d`).
pub(crate) fn parse_when(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, WhenError> {
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
    back.and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| WhenError {
            value: value.to_owned(),
        })
}

pub(crate) use crate::report::dead_lettered_at;

/// Which records count; an empty list lets everything through.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// `--category`.
    pub categories: Vec<FailureCategory>,
    /// `--target` (a target ARN, compared exactly).
    pub targets: Vec<String>,
    /// `--message-id`.
    pub message_ids: Vec<String>,
    /// `--since` / `--until`, on each record's dead-letter time ([`dead_lettered_at`]).
    pub window: Window,
}

impl Filter {
    /// Whether the record `message_id` of `category` against `target`, dead-lettered
    /// `at`, counts.
    pub(crate) fn admits(
        &self,
        message_id: &str,
        category: FailureCategory,
        target: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> bool {
        self.window.contains(at)
            && (self.categories.is_empty() || self.categories.contains(&category))
            && (self.targets.is_empty()
                || target.is_some_and(|t| self.targets.iter().any(|x| x == t)))
            && (self.message_ids.is_empty() || self.message_ids.iter().any(|m| m == message_id))
    }
}
