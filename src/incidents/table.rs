//! The incident table's port: one item per incident, changed only by conditional writes
//! ([`Write`]), so that when several invocations meet the same incident at once, the table
//! decides which of them announces a transition. [`MemoryTable`] is its in-memory twin;
//! `DynamoTable` (in `dynamo.rs`) the production adapter.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

/// The version of the item's layout this code writes and reads.
pub const ITEM_VERSION: u64 = 1;

/// Whether an incident is going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Failures were seen within the quiet period.
    Open,
    /// Quiet for longer than the quiet period, or closed by hand.
    Resolved,
}

impl State {
    /// As the table and the events spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Resolved => "resolved",
        }
    }
}

/// One incident as the table holds it. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentItem {
    /// The stable key ([`super::incident_key`]).
    pub key: String,
    /// Open or resolved.
    pub state: State,
    /// The failure category.
    pub category: String,
    /// The failed target's ARN; `None` for dead letters that name none.
    pub target_arn: Option<String>,
    /// When this episode's first failure was dead-lettered.
    pub first_seen: i64,
    /// When its latest failure was dead-lettered.
    pub last_seen: i64,
    /// Failed events in this episode.
    pub count: u64,
    /// `count` when the last event was announced.
    pub announced_count: u64,
    /// Rule ARNs seen.
    pub rules: BTreeSet<String>,
    /// `ERROR_CODE`s seen.
    pub codes: BTreeSet<String>,
    /// Up to five distinct error messages (those of the episode's first batch).
    pub sample_errors: Vec<String>,
    /// Conversations affected, counted per batch (a conversation in two batches counts
    /// twice): an upper bound; `summarize` gives the exact number.
    pub conversations: u64,
    /// Failed events per minute (epoch minutes) since the last announcement.
    pub per_minute: BTreeMap<i64, u64>,
    /// The most failed events in one minute, up to the last announcement.
    pub peak_per_minute: u64,
    /// The latest report's JSON and Markdown (S3 URIs or paths).
    pub report: Option<(String, String)>,
    /// Transitions announced so far (the first is 1).
    pub seq: u64,
    /// When the last transition was announced (processing time).
    pub last_announced: i64,
    /// When it was resolved.
    pub resolved_at: Option<i64>,
    /// When DynamoDB's TTL removes a resolved incident (epoch seconds).
    pub expires_at: Option<i64>,
}

impl IncidentItem {
    /// The most failed events in one minute: the peak kept, and the minutes since.
    pub fn peak(&self) -> u64 {
        self.per_minute
            .values()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.peak_per_minute)
    }
}

/// What a batch says about one incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The incident's key.
    pub key: String,
    /// The category.
    pub category: String,
    /// The target ARN.
    pub target_arn: Option<String>,
    /// The batch's first and last dead-letter time for it.
    pub first_seen: i64,
    pub last_seen: i64,
    /// Failed events.
    pub count: u64,
    /// Rules, codes and up to five distinct error messages.
    pub rules: BTreeSet<String>,
    pub codes: BTreeSet<String>,
    pub sample_errors: Vec<String>,
    /// Distinct conversations in the batch.
    pub conversations: u64,
    /// Failed events per epoch minute.
    pub per_minute: BTreeMap<i64, u64>,
    /// The report that lists the batch.
    pub report: Option<(String, String)>,
}

/// One conditional write. Each names the state it expects; a write whose condition does
/// not hold changes nothing and answers [`Written::Conflict`].
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// A new episode: when there is no item, or it is resolved and the batch failed after
    /// its last failure. Everything is set from the observation; `seq` goes up by one.
    Open { seen: Observation, now: i64 },
    /// Counts an open incident's batch in. With `advance`, only when the batch's last
    /// failure is not older than the item's, which it then becomes.
    Merge { seen: Observation, advance: bool },
    /// Counts a late batch into a resolved incident (it failed before the resolution).
    MergeResolved { seen: Observation },
    /// Claims the `updated` announcement: only while open and while the last announcement
    /// is still the one this invocation read. The minutes counted into `peak` (the peak so
    /// far) are dropped from the per-minute counts.
    ClaimUpdate {
        last_announced: i64,
        now: i64,
        peak: u64,
        drop_minutes: Vec<i64>,
    },
    /// Resolves an open incident: quiet since before `quiet_before` (the sweep), or any
    /// open one (`None`: by hand).
    Resolve {
        quiet_before: Option<i64>,
        now: i64,
        expires_at: i64,
    },
    /// Replaces an item this version cannot read with a new episode from the batch
    /// (`seq` 1), whatever was there.
    Rewrite { seen: Observation, now: i64 },
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// The condition held: the item as the write left it.
    Done(Box<IncidentItem>),
    /// The condition did not hold; nothing changed.
    Conflict,
}

/// Why the table could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The item is not one this version can read or update (edited by hand, written by a
    /// newer version): what is wrong with it.
    #[error("incident {key}: the item cannot be read: {why}")]
    Unreadable {
        /// The incident.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// The table refused or did not answer.
    #[error("{0}")]
    Failed(String),
}

/// The incident table.
pub trait IncidentTable: Send + Sync {
    /// Applies one conditional write to the incident `key`.
    fn write(
        &self,
        key: &str,
        write: &Write,
    ) -> impl Future<Output = Result<Written, TableError>> + Send;

    /// Open incidents whose last failure is before `before` (from the state index).
    fn quiet(
        &self,
        before: i64,
    ) -> impl Future<Output = Result<Vec<IncidentItem>, TableError>> + Send;

    /// Every incident, each in the state asked for (`None`: all).
    fn list(
        &self,
        state: Option<State>,
    ) -> impl Future<Output = Result<Vec<IncidentItem>, TableError>> + Send;

    /// Calls made so far (for the cost checks and `poll`'s summary).
    fn calls(&self) -> u64;
}

/// Applies `write` to `item` when its condition holds: what the item becomes, or `None`
/// when the condition does not hold. The semantics every adapter implements: the twin uses
/// it as is; the DynamoDB adapter's expressions say the same, and tests/incidents.rs holds
/// them to it against dynalite.
#[cfg(test)]
pub fn apply(item: Option<&IncidentItem>, key: &str, write: &Write) -> Option<IncidentItem> {
    match (write, item) {
        (Write::Open { seen, now }, None) => Some(fresh(key, seen, *now, 1)),
        (Write::Open { seen, now }, Some(old))
            if old.state == State::Resolved && old.last_seen < seen.last_seen =>
        {
            Some(fresh(key, seen, *now, old.seq + 1))
        }
        (Write::Rewrite { seen, now }, _) => Some(fresh(key, seen, *now, 1)),
        (Write::Merge { seen, advance }, Some(old))
            if old.state == State::Open && (!advance || old.last_seen <= seen.last_seen) =>
        {
            let mut new = merged(old, seen);
            if *advance {
                new.last_seen = seen.last_seen;
            }
            new.report = seen.report.clone().or(new.report);
            Some(new)
        }
        (Write::MergeResolved { seen }, Some(old)) if old.state == State::Resolved => {
            Some(merged(old, seen))
        }
        (
            Write::ClaimUpdate {
                last_announced,
                now,
                peak,
                drop_minutes,
            },
            Some(old),
        ) if old.state == State::Open && old.last_announced == *last_announced => {
            let mut new = old.clone();
            new.peak_per_minute = *peak;
            for minute in drop_minutes {
                new.per_minute.remove(minute);
            }
            new.last_announced = *now;
            new.announced_count = old.count;
            new.seq = old.seq + 1;
            Some(new)
        }
        (
            Write::Resolve {
                quiet_before,
                now,
                expires_at,
            },
            Some(old),
        ) if old.state == State::Open && quiet_before.is_none_or(|q| old.last_seen < q) => {
            let mut new = old.clone();
            new.state = State::Resolved;
            new.resolved_at = Some(*now);
            new.expires_at = Some(*expires_at);
            new.last_announced = *now;
            new.seq = old.seq + 1;
            Some(new)
        }
        _ => None,
    }
}

/// A new open episode from `seen`.
pub(super) fn fresh(key: &str, seen: &Observation, now: i64, seq: u64) -> IncidentItem {
    IncidentItem {
        key: key.to_owned(),
        state: State::Open,
        category: seen.category.clone(),
        target_arn: seen.target_arn.clone(),
        first_seen: seen.first_seen,
        last_seen: seen.last_seen,
        count: seen.count,
        announced_count: seen.count,
        rules: seen.rules.clone(),
        codes: seen.codes.clone(),
        sample_errors: seen.sample_errors.clone(),
        conversations: seen.conversations,
        per_minute: seen.per_minute.clone(),
        peak_per_minute: 0,
        report: seen.report.clone(),
        seq,
        last_announced: now,
        resolved_at: None,
        expires_at: None,
    }
}

/// `old` with `seen` counted in (the times, the samples and the state as they were).
#[cfg(test)]
fn merged(old: &IncidentItem, seen: &Observation) -> IncidentItem {
    let mut new = old.clone();
    new.count += seen.count;
    new.conversations += seen.conversations;
    new.rules.extend(seen.rules.iter().cloned());
    new.codes.extend(seen.codes.iter().cloned());
    for (minute, n) in &seen.per_minute {
        *new.per_minute.entry(*minute).or_default() += n;
    }
    new
}

/// The in-memory twin: every write under one lock, as DynamoDB serialises the writes to
/// one item.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryTable {
    items: std::sync::Mutex<std::collections::HashMap<String, IncidentItem>>,
    calls: std::sync::atomic::AtomicU64,
    /// While set, every call fails with this reason.
    failing: std::sync::Mutex<Option<String>>,
}

#[cfg(test)]
impl MemoryTable {
    /// An empty table.
    pub fn new() -> MemoryTable {
        MemoryTable::default()
    }

    /// Every later call fails with `reason` (`None`: they work again).
    pub fn fail(&self, reason: Option<&str>) {
        *self.failing.lock().unwrap_or_else(|e| e.into_inner()) = reason.map(str::to_owned);
    }

    /// The item of `key`, if any.
    pub fn get(&self, key: &str) -> Option<IncidentItem> {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn call(&self) -> Result<(), TableError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match &*self.failing.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(reason) => Err(TableError::Failed(reason.clone())),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
impl IncidentTable for MemoryTable {
    async fn write(&self, key: &str, write: &Write) -> Result<Written, TableError> {
        self.call()?;
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match apply(items.get(key), key, write) {
            Some(after) => {
                items.insert(key.to_owned(), after.clone());
                Written::Done(Box::new(after))
            }
            None => Written::Conflict,
        })
    }

    async fn quiet(&self, before: i64) -> Result<Vec<IncidentItem>, TableError> {
        self.call()?;
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        Ok(items
            .values()
            .filter(|i| i.state == State::Open && i.last_seen < before)
            .cloned()
            .collect())
    }

    async fn list(&self, state: Option<State>) -> Result<Vec<IncidentItem>, TableError> {
        self.call()?;
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        Ok(items
            .values()
            .filter(|i| state.is_none_or(|s| i.state == s))
            .cloned()
            .collect())
    }

    fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A table shared by several trackers (the tests' invocations at once).
impl<T: IncidentTable> IncidentTable for std::sync::Arc<T> {
    async fn write(&self, key: &str, write: &Write) -> Result<Written, TableError> {
        (**self).write(key, write).await
    }

    async fn quiet(&self, before: i64) -> Result<Vec<IncidentItem>, TableError> {
        (**self).quiet(before).await
    }

    async fn list(&self, state: Option<State>) -> Result<Vec<IncidentItem>, TableError> {
        (**self).list(state).await
    }

    fn calls(&self) -> u64 {
        (**self).calls()
    }
}
