//! Incidents that open, update and resolve once. An incident is the failures of one
//! (category, target ARN) pair — the grouping of the per-batch report and of `summarize` —
//! kept as one item in a table ([`IncidentTable`]; DynamoDB in production) by every
//! invocation and by `poll`, after each batch's report is stored.
//!
//! Each batch is one conditional write per incident it holds, not per record (and a read
//! when this process does not hold the item already). The write's condition decides which
//! invocation made a transition (`opened`, `reopened`, `updated` at most once per update
//! interval, `resolved` after the quiet period). A transition is recorded in the item's
//! outbox with the write that makes it and leaves it only when its event was put, so it is
//! announced at least once (by its maker, or by a later invocation or sweep), and once in
//! the normal case. Failure times are the dead letters' own (`SentTimestamp`); quiet is
//! measured on both clocks (no failure and no batch counted for the quiet period).
//!
//! Best effort: a table that fails is logged and counted, and never changes what is
//! acknowledged; the reports stay the record (`summarize` is exact without the table).

mod dynamo;
mod event;
mod table;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::classify::FailureCategory;
use crate::report::{Aggregate, Disposition, Report, Tally};

pub use dynamo::DynamoTable;
pub use event::{DETAIL_TYPE, EventContext, detail};
pub(crate) use event::{REPORTS, commands, rfc3339};
#[cfg(test)]
pub use table::MemoryTable;
#[cfg(test)]
pub(crate) use table::fresh;
pub use table::{
    AttrType, Expect, HOURS_KEPT, IncidentItem, IncidentTable, ItemError, MINUTES_KEPT,
    Observation, Pending, ReportRef, SAMPLE_CHARS, Salvage, State, Stored, TableCall, TableError,
};

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
/// addresses: the [`Aggregate`] of its stored records (at their dead-letter time, as the
/// report counts them), projected. A record without a time counts at `now`.
pub fn observations(
    report: &Report,
    uris: Option<ReportRef>,
    now: DateTime<Utc>,
) -> Vec<Observation> {
    // A record going back to the queue is counted when it is stored.
    let stored = report
        .records
        .iter()
        .filter(|r| matches!(r.disposition, Disposition::Stored));
    let mut observations: Vec<Observation> = Aggregate::of_records(stored, Some(now))
        .incidents
        .sorted()
        .into_iter()
        .map(|(category, target, tally)| observation(category, target, &tally, uris.clone(), now))
        .collect();
    count_replays(&mut observations, report);
    observations
}

/// Each observation's stored records that came from archive replays (a `replayName`):
/// counted into the same incident as any failure of its (category, target), and named.
fn count_replays(observations: &mut [Observation], report: &Report) {
    for r in &report.records {
        let (Some(name), Disposition::Stored) = (&r.replay_name, &r.disposition) else {
            continue;
        };
        let key = incident_key(r.failure_category, r.failure.target_arn.as_deref());
        if let Some(o) = observations.iter_mut().find(|o| o.key == key) {
            o.replayed += r.event_count.max(1) as u64;
            o.replays.insert(name.clone());
        }
    }
}

/// One incident's [`Tally`] as the table counts it in.
fn observation(
    category: FailureCategory,
    target: Option<&str>,
    tally: &Tally<&str>,
    report: Option<ReportRef>,
    now: DateTime<Utc>,
) -> Observation {
    Observation {
        key: incident_key(category, target),
        category: category.as_str().to_owned(),
        target_arn: target.map(str::to_owned),
        first_seen: tally.first.unwrap_or(now).timestamp_millis(),
        last_seen: tally.last.unwrap_or(now).timestamp_millis(),
        count: tally.count as u64,
        rules: tally.rules.iter().map(|r| (*r).to_owned()).collect(),
        codes: tally.codes.keys().map(|c| (*c).to_owned()).collect(),
        sample_errors: tally.sample_errors(),
        http_statuses: tally.http_statuses().into_iter().collect(),
        conversations: tally.conversations.len() as u64,
        per_minute: tally
            .per_minute
            .iter()
            .map(|(m, n)| (*m, *n as u64))
            .collect(),
        report,
        replayed: 0,
        replays: BTreeSet::new(),
    }
}

/// A transition of one incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The first failure of (category, target) the table knows.
    Opened,
    /// Failures again after it was resolved.
    Reopened,
    /// Still failing, one update interval after the last transition.
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

    /// From the table's spelling.
    pub fn parse(s: &str) -> Option<Transition> {
        [
            Transition::Opened,
            Transition::Reopened,
            Transition::Updated,
            Transition::Resolved,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A transition to put on the bus: one entry of an item's outbox, with the item.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Which.
    pub transition: Transition,
    /// Its number.
    pub seq: u64,
    /// The episode it belongs to (the pager's dedup key is made of it).
    pub episode: u64,
    /// The incident as the table holds it now.
    pub item: IncidentItem,
    /// Failed events since the previous transition.
    pub since_last: u64,
    /// Resolved by hand (`dlq-triage incidents resolve`).
    pub by_hand: bool,
    /// Made over an item that could not be read.
    pub rewritten: bool,
}

impl Change {
    fn of(item: &IncidentItem, p: &Pending) -> Change {
        Change {
            transition: p.transition,
            seq: p.seq,
            episode: p.episode,
            item: item.clone(),
            since_last: p.since_last,
            by_hand: p.by_hand,
            rewritten: p.rewritten,
        }
    }
}

/// What a round of writes did.
#[derive(Debug, Default)]
pub struct Tracked {
    /// Transitions to put on the bus now, each incident's in `seq` order: those made
    /// here, those older than [`OUTBOX_GRACE`] left by others, and those a silence held
    /// once it has ended (none while an incident is silenced).
    pub changes: Vec<Change>,
    /// Transitions made here.
    pub made: usize,
    /// Transitions made here and held in the outbox (silenced).
    pub held: usize,
    /// Transitions due for longer than [`OUTBOX_OVERDUE`] (the sweep's alarm); what a
    /// silence holds is due only when it ends.
    pub overdue: usize,
    /// Per incident, the held transitions that a silence which has ended leaves nothing
    /// to say ([`table::passed_over`]): taken out of the outbox with those put, never put.
    pub passed_over: Vec<(String, Vec<u64>)>,
    /// Incidents (or listings) the table could not take, and why (logged and counted).
    pub failed: Vec<TableError>,
}

/// How long a transition stays its maker's to put: after it, any invocation or sweep
/// that meets it puts it.
pub const OUTBOX_GRACE: Duration = Duration::minutes(1);
/// A transition unannounced for this long is counted (EMF `IncidentUnannounced`).
pub const OUTBOX_OVERDUE: Duration = Duration::minutes(10);

/// Reads and conditional writes an incident gets when others keep changing it meanwhile.
const ROUNDS: u32 = 32;

/// What a change of an item found there.
#[derive(Debug, Clone, Copy)]
enum Current<'a> {
    Absent,
    Item(&'a IncidentItem),
    Unreadable(&'a ItemError, &'a Salvage),
}

/// Keeps incidents in a table.
pub struct IncidentTracker {
    table: Arc<dyn IncidentTable>,
    settings: IncidentSettings,
    /// The items this process wrote or read last: the next write tries them first, without
    /// a read (its condition tells when another wrote since).
    known: Mutex<HashMap<String, IncidentItem>>,
}

impl std::fmt::Debug for IncidentTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncidentTracker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl IncidentTracker {
    /// A tracker over `table`.
    pub fn new(table: Arc<dyn IncidentTable>, settings: IncidentSettings) -> IncidentTracker {
        IncidentTracker {
            table,
            settings,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The table.
    pub fn table(&self) -> &dyn IncidentTable {
        &*self.table
    }

    /// Counts a batch's observations in at `now`, each incident within `budget`: an
    /// incident that ran out of time is a failure, and the others' transitions are kept.
    pub async fn observe(
        &self,
        seen: Vec<Observation>,
        now: DateTime<Utc>,
        budget: std::time::Duration,
    ) -> Tracked {
        let now = now.timestamp_millis();
        let all = seen.into_iter().map(|s| {
            let key = s.key.clone();
            async move {
                match tokio::time::timeout(budget, self.observe_one(s, now)).await {
                    Ok(r) => r,
                    Err(_) => Err(TableError::TimedOut { key, after: budget }),
                }
            }
        });
        let mut tracked = Tracked::default();
        for result in futures::future::join_all(all).await {
            match result {
                Ok((item, made)) => tracked.take(&item, made, now),
                Err(e) => tracked.failed.push(e),
            }
        }
        tracked
    }

    /// Resolves every open incident quiet on both clocks at `now`, and gathers the
    /// transitions left unannounced, all within `budget` (the listings and each
    /// incident's resolution end by the same time: what completed is kept).
    pub async fn sweep(&self, now: DateTime<Utc>, budget: std::time::Duration) -> Tracked {
        let now = now.timestamp_millis();
        let end = tokio::time::Instant::now() + budget;
        let mut tracked = Tracked::default();
        let mut items = Vec::new();
        let listings = ["open", "unannounced"].map(|index_state| async move {
            let listed = tokio::time::timeout_at(end, self.table.indexed(index_state)).await;
            (index_state, listed)
        });
        for (index_state, listed) in futures::future::join_all(listings).await {
            match listed {
                Ok(Ok(found)) => items.extend(found),
                Ok(Err(e)) => tracked.failed.push(e),
                Err(_) => tracked.failed.push(TableError::NotListed {
                    index_state,
                    after: budget,
                }),
            }
        }
        let all = items.into_iter().map(|item| async move {
            let key = item.key.clone();
            let quiet = table::resolve(&item, now, &self.settings, false).is_some();
            if !quiet {
                return Ok((item, None));
            }
            self.remember(&item);
            let resolved = self.resolve_one(&key, now, false);
            match tokio::time::timeout_at(end, resolved).await {
                Ok(Ok(Some((item, made)))) => Ok((item, Some(made.seq))),
                // Resolved (or reopened) by another meanwhile: its outbox is theirs.
                Ok(Ok(None)) => Ok((item, None)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(TableError::TimedOut { key, after: budget }),
            }
        });
        for result in futures::future::join_all(all).await {
            match result {
                Ok((item, made)) => tracked.take(&item, made, now),
                Err(e) => tracked.failed.push(e),
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
        let now = now.timestamp_millis();
        Ok(self
            .resolve_one(key, now, true)
            .await?
            .map(|(item, p)| Change::of(&item, &p)))
    }

    /// Acknowledges the open incident `key`; the item after it, `None` when it is not open.
    pub async fn acknowledge(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IncidentItem>, TableError> {
        let now = now.timestamp_millis();
        let done = self
            .update(key, |current| match current {
                Current::Item(old) => Ok(table::acknowledge(old, now).map(|i| (i, ()))),
                Current::Absent => Ok(None),
                Current::Unreadable(why, _) => Err(unreadable(key, why)),
            })
            .await?;
        Ok(done.map(|(item, ())| item))
    }

    /// Silences the incident `key` until `until`; the item after it, `None` when the table
    /// has no such incident.
    pub async fn silence(
        &self,
        key: &str,
        until: DateTime<Utc>,
    ) -> Result<Option<IncidentItem>, TableError> {
        let until = until.timestamp_millis();
        let done = self
            .update(key, |current| match current {
                Current::Item(old) => Ok(Some((table::silence(old, until), ()))),
                Current::Absent => Ok(None),
                Current::Unreadable(why, _) => Err(unreadable(key, why)),
            })
            .await?;
        Ok(done.map(|(item, ())| item))
    }

    /// Takes the transitions `seqs` of `key` out of its outbox: their events were put.
    pub async fn announced(&self, key: &str, seqs: &[u64]) -> Result<(), TableError> {
        self.update(key, |current| match current {
            Current::Item(old) if old.outbox.iter().any(|p| seqs.contains(&p.seq)) => {
                Ok(Some((table::mark_announced(old, seqs), ())))
            }
            _ => Ok(None),
        })
        .await
        .map(|_| ())
    }

    /// Resolves `key`: the item after it and the `resolved` transition, `None` when it
    /// does not resolve (not open; by the sweep, not quiet).
    async fn resolve_one(
        &self,
        key: &str,
        now: i64,
        by_hand: bool,
    ) -> Result<Option<(IncidentItem, Pending)>, TableError> {
        let settings = self.settings;
        self.update(key, |current| match current {
            Current::Item(old) => Ok(table::resolve(old, now, &settings, by_hand).and_then(|i| {
                let made = i.outbox.iter().find(|p| p.seq == i.seq).cloned()?;
                Some((i, made))
            })),
            Current::Absent => Ok(None),
            Current::Unreadable(why, _) => Err(unreadable(key, why)),
        })
        .await
    }

    /// One incident of a batch: the item after it, and the `seq` of the transition made.
    async fn observe_one(
        &self,
        seen: Observation,
        now: i64,
    ) -> Result<(IncidentItem, Option<u64>), TableError> {
        let settings = self.settings;
        let key = seen.key.clone();
        let done = self
            .update(&key, |current| {
                let (item, made) = match current {
                    Current::Absent => table::count_in(None, &seen, now, &settings),
                    Current::Item(old) => table::count_in(Some(old), &seen, now, &settings),
                    Current::Unreadable(why, salvage) => {
                        tracing::warn!(incident = %key, %why, "incident item unreadable: rewritten from this batch");
                        table::rewrite(salvage, &seen, now)
                    }
                };
                let seq = item.seq;
                Ok(Some((item, made.map(|_| seq))))
            })
            .await?;
        done.ok_or(TableError::NothingWritten { key })
    }

    /// Reads `key` (or takes the item this process knows), lets `decide` say what it
    /// becomes, and writes that on the condition that nobody wrote it since; again from a
    /// fresh read when somebody did. `None` when `decide` writes nothing.
    async fn update<R>(
        &self,
        key: &str,
        mut decide: impl FnMut(Current<'_>) -> Result<Option<(IncidentItem, R)>, TableError>,
    ) -> Result<Option<(IncidentItem, R)>, TableError> {
        let mut known = self.known(key);
        for round in 0..ROUNDS {
            let stored = match known.take() {
                Some(item) => Some(Stored::Item(Box::new(item))),
                None => self.table.get(key).await?,
            };
            let (current, expect, rev) = match &stored {
                None => (Current::Absent, Expect::Absent, 0),
                Some(Stored::Item(item)) => (Current::Item(item), Expect::Rev(item.rev), item.rev),
                Some(Stored::Unreadable { why, salvage }) => (
                    Current::Unreadable(why, salvage),
                    Expect::Unreadable(salvage.rev),
                    salvage.rev.unwrap_or(0),
                ),
            };
            let Some((mut item, r)) = decide(current)? else {
                if let Some(Stored::Item(item)) = stored {
                    self.remember(&item);
                }
                return Ok(None);
            };
            item.rev = rev + 1;
            if self.table.put(&item, expect).await? {
                self.remember(&item);
                return Ok(Some((item, r)));
            }
            self.forget(key);
            // Others are writing it: a moment's pause, random so that they spread out.
            let pause = fastrand::u64(1..=(2u64 << round.min(3)));
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
        Err(TableError::Contended {
            key: key.to_owned(),
            rounds: ROUNDS,
        })
    }

    fn known(&self, key: &str) -> Option<IncidentItem> {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn remember(&self, item: &IncidentItem) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(item.key.clone(), item.clone());
    }

    fn forget(&self, key: &str) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

impl Tracked {
    /// The outbox of `item` after a write (`made`: the `seq` of the transition made
    /// here): what to put now, what is held by a silence, what is overdue.
    fn take(&mut self, item: &IncidentItem, made: Option<u64>, now: i64) {
        self.made += usize::from(made.is_some());
        if item.silenced(now) {
            // Held: neither put nor overdue until the silence ends.
            self.held += usize::from(made.is_some_and(|m| item.outbox.iter().any(|p| p.seq == m)));
            return;
        }
        let passed_over = table::passed_over(item);
        for p in item.outbox.iter().filter(|p| !passed_over.contains(&p.seq)) {
            let mine = made == Some(p.seq);
            let due = now - table::due_since(item, p);
            if due >= OUTBOX_OVERDUE.num_milliseconds() {
                self.overdue += 1;
            }
            // Held by a silence that has ended: nobody else puts it, so at once.
            if mine || table::held(item, p) || due >= OUTBOX_GRACE.num_milliseconds() {
                self.changes.push(Change::of(item, p));
            }
        }
        if !passed_over.is_empty() {
            self.passed_over.push((item.key.clone(), passed_over));
        }
    }
}

fn unreadable(key: &str, why: &ItemError) -> TableError {
    TableError::Unreadable {
        key: key.to_owned(),
        why: why.clone(),
    }
}

#[cfg(test)]
mod tests;
