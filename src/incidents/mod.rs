//! Incidents that open, update and resolve once. An incident is the failures of one
//! (category, target ARN) pair — the grouping of the per-batch report and of `summarize` —
//! kept as one item in a table ([`IncidentTable`]; DynamoDB in production) by every
//! invocation and by `poll`, after each batch's report is stored.
//!
//! Each batch is one conditional write per incident it holds, not per record. The table's
//! conditions decide which invocation announces a transition (`opened`, `reopened`,
//! `updated` at most once per update interval, `resolved` after the quiet period), so each
//! is announced once however many invocations meet the incident at the same moment.
//! Times are the dead letters' own (when EventBridge gave up: `SentTimestamp`); only the
//! update interval is measured on the clock, as it paces the announcements.
//!
//! Best effort: a table that fails is logged and counted, and never changes what is
//! acknowledged; the reports stay the record (`summarize` is exact without the table).

mod dynamo;
mod event;
mod table;

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::classify::FailureCategory;
use crate::report::{Disposition, Failure, Incidents, Report};
use crate::stored::dead_lettered_at;

pub use dynamo::DynamoTable;
pub use event::{DETAIL_TYPE, EventContext, detail};
pub(crate) use event::{commands, rfc3339};
#[cfg(test)]
pub use table::MemoryTable;
pub use table::{IncidentItem, IncidentTable, Observation, State, TableError, Write, Written};

/// How incidents are kept: `INCIDENT_QUIET_MINUTES`, `INCIDENT_UPDATE_MINUTES`,
/// `INCIDENT_RETENTION_DAYS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentSettings {
    /// No failure for this long resolves an open incident (the same window as
    /// `summarize`'s "ongoing").
    pub quiet: Duration,
    /// At most one `updated` event per incident this often.
    pub update: Duration,
    /// A resolved incident stays in the table this long (DynamoDB's TTL removes it).
    pub retention: Duration,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        IncidentSettings {
            quiet: Duration::minutes(15),
            update: Duration::minutes(30),
            retention: Duration::days(30),
        }
    }
}

/// The stable key of the incident of (`category`, `target`): the category and a digest of
/// the target ARN, e.g. `RATE_LIMIT_EXCEEDED-3f9a0c1d2e4b5a69`. The same failure seen by
/// any invocation, `poll` or a later run has the same key; usable as PagerDuty's
/// `dedup_key` and Opsgenie's `alias`.
pub fn incident_key(category: FailureCategory, target: Option<&str>) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(target.unwrap_or("(no target)").as_bytes());
    format!("{category}-{}", hex::encode(&digest[..8]))
}

/// What the stored records of `report` say about each incident, with the report's
/// `uris` (JSON, Markdown). A record without a time counts at `now`.
pub fn observations(
    report: &Report,
    uris: Option<(String, String)>,
    now: DateTime<Utc>,
) -> Vec<Observation> {
    let mut incidents = Incidents::default();
    for r in &report.records {
        if !matches!(r.disposition, Disposition::Stored) {
            // It goes back to the queue and is counted when it is stored.
            continue;
        }
        let at = dead_lettered_at(r.sent_timestamp.as_deref(), r.timestamp.as_deref());
        let failure = Failure {
            id: &r.message_id,
            at: Some(at.unwrap_or(now)),
            events: r.event_count.max(1),
            code: r.failure.error_code.as_deref(),
            http_status: r.http_status,
            conversation: r.interaction_id.as_deref(),
            error: r.failure.error_message.as_deref(),
            rule: r.failure.rule_arn.as_deref(),
        };
        incidents.add(r.failure_category, r.failure.target_arn.as_deref(), failure);
    }
    incidents
        .sorted()
        .into_iter()
        .map(|(category, target, tally)| Observation {
            key: incident_key(category, target),
            category: category.as_str().to_owned(),
            target_arn: target.map(str::to_owned),
            first_seen: tally.first.unwrap_or(now).timestamp_millis(),
            last_seen: tally.last.unwrap_or(now).timestamp_millis(),
            count: tally.count as u64,
            rules: tally.rules.iter().map(|r| r.to_string()).collect(),
            codes: tally.codes.keys().map(|c| c.to_string()).collect(),
            sample_errors: tally.errors.iter().map(|e| e.to_string()).collect(),
            conversations: tally.conversations.len() as u64,
            per_minute: tally
                .per_minute
                .iter()
                .map(|(m, n)| (*m, *n as u64))
                .collect(),
            report: uris.clone(),
        })
        .collect()
}

/// A transition of one incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The first failure of (category, target) the table knows.
    Opened,
    /// Failures again after it was resolved.
    Reopened,
    /// Still failing, one update interval after the last announcement.
    Updated,
    /// Quiet for the quiet period, or closed by hand.
    Resolved,
}

impl Transition {
    /// As the event's `transition` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Opened => "opened",
            Transition::Reopened => "reopened",
            Transition::Updated => "updated",
            Transition::Resolved => "resolved",
        }
    }
}

/// A transition this invocation won, to be announced.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Which.
    pub transition: Transition,
    /// The incident after it.
    pub item: IncidentItem,
    /// Failed events since the previous announcement.
    pub since_last: u64,
    /// Resolved by hand (`dlq-triage incidents resolve`).
    pub by_hand: bool,
    /// The item could not be read and was rewritten from the batch.
    pub rewritten: bool,
}

/// What a round of writes did.
#[derive(Debug, Default)]
pub struct Tracked {
    /// The transitions won, to announce.
    pub changes: Vec<Change>,
    /// Incidents the table could not take, and why (logged and counted).
    pub failed: Vec<String>,
}

/// Rounds of writes an incident gets when other invocations keep changing it meanwhile.
const ROUNDS: usize = 3;

/// Keeps incidents in a table.
#[derive(Debug)]
pub struct IncidentTracker<T> {
    table: T,
    settings: IncidentSettings,
    /// Incidents this process saw open: their next batch tries the merge first.
    known_open: Mutex<HashSet<String>>,
}

impl<T: IncidentTable> IncidentTracker<T> {
    /// A tracker over `table`.
    pub fn new(table: T, settings: IncidentSettings) -> IncidentTracker<T> {
        IncidentTracker {
            table,
            settings,
            known_open: Mutex::new(HashSet::new()),
        }
    }

    /// The table.
    pub fn table(&self) -> &T {
        &self.table
    }

    /// Counts a batch's observations in, all incidents at once, at `now`.
    pub async fn observe(&self, seen: Vec<Observation>, now: DateTime<Utc>) -> Tracked {
        let now = now.timestamp_millis();
        let results =
            futures::future::join_all(seen.into_iter().map(|s| self.observe_one(s, now))).await;
        let mut tracked = Tracked::default();
        for result in results {
            match result {
                Ok(changes) => tracked.changes.extend(changes),
                Err(e) => tracked.failed.push(e.to_string()),
            }
        }
        tracked
    }

    /// Resolves every open incident quiet for longer than the quiet period at `now`.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Tracked {
        let cutoff = (now - self.settings.quiet).timestamp_millis();
        let quiet = match self.table.quiet(cutoff).await {
            Ok(quiet) => quiet,
            Err(e) => {
                return Tracked {
                    changes: Vec::new(),
                    failed: vec![e.to_string()],
                };
            }
        };
        let resolves = quiet
            .iter()
            .map(|item| self.resolve_item(&item.key, Some(cutoff), now, false));
        let mut tracked = Tracked::default();
        for result in futures::future::join_all(resolves).await {
            match result {
                Ok(change) => tracked.changes.extend(change),
                Err(e) => tracked.failed.push(e.to_string()),
            }
        }
        tracked
    }

    /// Resolves the open incident `key` by hand; `None` when it is not open.
    pub async fn resolve(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Change>, TableError> {
        self.resolve_item(key, None, now, true).await
    }

    async fn resolve_item(
        &self,
        key: &str,
        quiet_before: Option<i64>,
        now: DateTime<Utc>,
        by_hand: bool,
    ) -> Result<Option<Change>, TableError> {
        let write = Write::Resolve {
            quiet_before,
            now: now.timestamp_millis(),
            expires_at: (now + self.settings.retention).timestamp(),
        };
        self.forget(key);
        Ok(match self.table.write(key, &write).await? {
            Written::Done(after) => Some(Change {
                transition: Transition::Resolved,
                since_last: after.count.saturating_sub(after.announced_count),
                item: *after,
                by_hand,
                rewritten: false,
            }),
            Written::Conflict => None,
        })
    }

    /// One incident of a batch: the writes tried in turn until one's condition holds.
    async fn observe_one(&self, seen: Observation, now: i64) -> Result<Vec<Change>, TableError> {
        let key = seen.key.clone();
        let open = Write::Open {
            seen: seen.clone(),
            now,
        };
        let merge = Write::Merge {
            seen: seen.clone(),
            advance: true,
        };
        let late = Write::Merge {
            seen: seen.clone(),
            advance: false,
        };
        let resolved = Write::MergeResolved { seen: seen.clone() };
        for _ in 0..ROUNDS {
            let first = if self.is_known_open(&key) {
                [&merge, &open]
            } else {
                [&open, &merge]
            };
            for write in first.into_iter().chain([&late, &resolved]) {
                match self.table.write(&key, write).await {
                    Ok(Written::Done(after)) => return self.after(write, *after, now).await,
                    Ok(Written::Conflict) => {}
                    Err(TableError::Unreadable { key, why }) => {
                        tracing::warn!(incident = %key, %why, "incident item unreadable: rewritten from this batch");
                        return self.rewrite(&seen, now).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(TableError::Failed(format!(
            "incident {key}: changed by others at every one of {ROUNDS} rounds of writes"
        )))
    }

    /// What a write that held means: a transition to announce, and for a merge, the
    /// `updated` announcement when one is due.
    async fn after(
        &self,
        write: &Write,
        after: IncidentItem,
        now: i64,
    ) -> Result<Vec<Change>, TableError> {
        match write {
            Write::Open { .. } => {
                self.remember(&after.key);
                // The first episode of the key is announced as its first transition.
                let transition = match after.seq {
                    1 => Transition::Opened,
                    _ => Transition::Reopened,
                };
                Ok(vec![Change {
                    transition,
                    since_last: after.count,
                    item: after,
                    by_hand: false,
                    rewritten: false,
                }])
            }
            Write::Merge { .. } => {
                self.remember(&after.key);
                Ok(self.claim_update(after, now).await?.into_iter().collect())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The `updated` announcement of an open incident, when the update interval has passed
    /// since the last one and no other invocation claims it first.
    async fn claim_update(
        &self,
        item: IncidentItem,
        now: i64,
    ) -> Result<Option<Change>, TableError> {
        if now - item.last_announced < self.settings.update.num_milliseconds() {
            return Ok(None);
        }
        // Minutes older than an update interval before the last failure are counted into
        // the peak and dropped, so the item does not grow with the incident's length.
        let keep_from_minute =
            (item.last_seen - self.settings.update.num_milliseconds()).div_euclid(60_000);
        let drop_minutes: Vec<i64> = item
            .per_minute
            .keys()
            .copied()
            .filter(|m| *m < keep_from_minute)
            .collect();
        let peak = drop_minutes
            .iter()
            .map(|m| item.per_minute[m])
            .fold(item.peak_per_minute, u64::max);
        let claim = Write::ClaimUpdate {
            last_announced: item.last_announced,
            now,
            peak,
            drop_minutes,
        };
        Ok(match self.table.write(&item.key, &claim).await? {
            Written::Done(after) => Some(Change {
                transition: Transition::Updated,
                since_last: after.count - item.announced_count,
                item: *after,
                by_hand: false,
                rewritten: false,
            }),
            Written::Conflict => None,
        })
    }

    /// A new episode from the batch over an item this version cannot read, announced as
    /// `opened` (a pager deduplicates on the key if it was already open).
    async fn rewrite(&self, seen: &Observation, now: i64) -> Result<Vec<Change>, TableError> {
        let write = Write::Rewrite {
            seen: seen.clone(),
            now,
        };
        match self.table.write(&seen.key, &write).await? {
            Written::Done(after) => {
                self.remember(&after.key);
                Ok(vec![Change {
                    transition: Transition::Opened,
                    since_last: after.count,
                    item: *after,
                    by_hand: false,
                    rewritten: true,
                }])
            }
            Written::Conflict => Ok(Vec::new()),
        }
    }

    fn is_known_open(&self, key: &str) -> bool {
        self.known_open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    fn remember(&self, key: &str) {
        self.known_open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned());
    }

    fn forget(&self, key: &str) {
        self.known_open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests;
