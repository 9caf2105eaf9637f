//! The incident table's port and the one model of an incident. An item is read, changed
//! in Rust by the functions of this module ([`count_in`], [`resolve`], [`mark_announced`],
//! [`acknowledge`], [`silence`]) and written back on the condition that nobody wrote it
//! meanwhile (`rev`, a write counter), so the rules live here once and every adapter only
//! stores and loads: [`MemoryTable`] is the in-memory twin, `DynamoTable` (in `dynamo.rs`)
//! the production adapter. When several invocations meet the same incident at once, the
//! conditional write decides which of them made each transition.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::BoxFuture;

use super::{IncidentSettings, Transition};
use crate::aws_error::AwsError;

/// The version of the item's layout this code writes and reads; an item of a higher one
/// is never written by this code (its conditions say so).
pub(super) const ITEM_VERSION: u64 = 2;

/// The most minutes kept one by one; older ones are folded into hours.
pub const MINUTES_KEPT: usize = 60;
/// The most hours kept; older ones are only in `count`.
pub const HOURS_KEPT: usize = 48;
/// The most rule ARNs and error codes kept (each).
pub(super) const NAMES_KEPT: usize = 20;
/// The most sample error messages.
pub(super) const SAMPLES_KEPT: usize = 5;
/// The most characters of each sample error message.
pub const SAMPLE_CHARS: usize = 300;
/// The most transitions the outbox holds; past it the oldest `updated` go first.
pub(super) const OUTBOX_KEPT: usize = 8;

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

/// Where the report of a batch is: JSON, Markdown and the page when it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRef {
    /// `report.json` (S3 URI or path).
    pub json: String,
    /// `report.md`.
    pub markdown: String,
    /// `report.html`, only when it was stored (never guessed).
    pub html: Option<String>,
}

/// A transition made but not yet put on the bus (the item's outbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its number.
    pub seq: u64,
    /// Which.
    pub transition: Transition,
    /// The episode it belongs to.
    pub episode: u64,
    /// When it was made (processing clock, epoch ms).
    pub at: i64,
    /// Failed events since the previous transition.
    pub since_last: u64,
    /// Resolved by hand.
    pub by_hand: bool,
    /// Made over an item that could not be read.
    pub rewritten: bool,
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
    /// When a batch was last counted in (processing clock).
    pub last_counted: i64,
    /// Failed events in this episode.
    pub count: u64,
    /// `count` at the last `opened`/`reopened`/`updated`.
    pub announced_count: u64,
    /// Rule ARNs seen (at most [`NAMES_KEPT`]).
    pub rules: BTreeSet<String>,
    /// `ERROR_CODE`s seen (at most [`NAMES_KEPT`]).
    pub codes: BTreeSet<String>,
    /// Up to five distinct error messages, each cut to [`SAMPLE_CHARS`].
    pub sample_errors: Vec<String>,
    /// The HTTP failure statuses the dead letters' messages state (at most [`NAMES_KEPT`],
    /// and 429 always): an API destination's own 429 tells its rate limit from
    /// EventBridge's throttling.
    pub http_statuses: BTreeSet<u16>,
    /// Conversations affected, counted per batch (a conversation in two batches counts
    /// twice): an upper bound; `summarize` gives the exact number.
    pub conversations: u64,
    /// Failed events per epoch minute: the latest [`MINUTES_KEPT`] minutes.
    pub per_minute: BTreeMap<i64, u64>,
    /// Failed events per epoch hour of the minutes folded away: the latest [`HOURS_KEPT`].
    pub per_hour: BTreeMap<i64, u64>,
    /// The most failed events in one minute among the minutes folded away.
    pub peak_per_minute: u64,
    /// The latest report.
    pub report: Option<ReportRef>,
    /// The number of the latest transition (the first is 1).
    pub seq: u64,
    /// The `seq` of this episode's `opened`/`reopened`.
    pub episode: u64,
    /// The highest `seq` put on the bus (or passed over after a silence).
    pub announced_seq: u64,
    /// Transitions not yet put on the bus.
    pub outbox: Vec<Pending>,
    /// When the latest transition was made (processing clock).
    pub last_announced: i64,
    /// When it was resolved (processing clock).
    pub resolved_at: Option<i64>,
    /// The resolution's cut-off (failure clock): an older failure counts into the resolved
    /// episode, a newer one reopens it.
    pub resolved_cutoff: Option<i64>,
    /// Resolved by hand.
    pub resolved_by_hand: bool,
    /// When DynamoDB's TTL removes a resolved incident (epoch seconds).
    pub expires_at: Option<i64>,
    /// When someone acknowledged this episode (`incidents ack`).
    pub acknowledged_at: Option<i64>,
    /// Nothing is announced before this (`incidents silence`).
    pub silenced_until: Option<i64>,
    /// Writes so far: the condition of the next one.
    pub rev: u64,
    /// Failed events in this episode that came from archive replays (a replay that
    /// failed again).
    pub replayed: u64,
    /// The names of those replays (at most [`NAMES_KEPT`]).
    pub replays: BTreeSet<String>,
}

impl IncidentItem {
    /// The most failed events in one minute: the peak folded away, and the minutes kept.
    pub fn peak(&self) -> u64 {
        self.per_minute
            .values()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.peak_per_minute)
    }

    /// The pager's dedup key of `episode`: the incident's key and the episode's number;
    /// episode 0 (begun by layout 1, whose pages were keyed on the incident's key alone)
    /// the incident's key, so that its pages still resolve.
    pub fn dedup_key(&self, episode: u64) -> String {
        match episode {
            0 => self.key.clone(),
            _ => format!("{}-e{episode}", self.key),
        }
    }

    /// Whether a silence holds at `now`.
    pub fn silenced(&self, now: i64) -> bool {
        self.silenced_until.is_some_and(|u| now < u)
    }

    /// What the state index holds it under: `open` while open, `unannounced` while
    /// resolved with transitions in its outbox, nothing otherwise.
    pub fn index_state(&self) -> Option<&'static str> {
        match (self.state, self.outbox.is_empty()) {
            (State::Open, _) => Some("open"),
            (State::Resolved, false) => Some("unannounced"),
            (State::Resolved, true) => None,
        }
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
    /// The batch's first dead-letter time for it.
    pub first_seen: i64,
    /// The batch's last dead-letter time for it.
    pub last_seen: i64,
    /// Failed events.
    pub count: u64,
    /// Rules seen.
    pub rules: BTreeSet<String>,
    /// Codes seen.
    pub codes: BTreeSet<String>,
    /// Up to five distinct error messages.
    pub sample_errors: Vec<String>,
    /// The HTTP failure statuses the dead letters' messages state.
    pub http_statuses: BTreeSet<u16>,
    /// Distinct conversations in the batch.
    pub conversations: u64,
    /// Failed events per epoch minute.
    pub per_minute: BTreeMap<i64, u64>,
    /// The report that lists the batch.
    pub report: Option<ReportRef>,
    /// Failed events of the batch that came from archive replays (their body carries
    /// `replay-name`): a replay that failed again, not a new failure.
    pub replayed: u64,
    /// The names of those replays.
    pub replays: BTreeSet<String>,
}

/// An item as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// One this version reads.
    Item(Box<IncidentItem>),
    /// One it cannot (edited by hand): what is wrong, and what could be read of it.
    Unreadable {
        /// What is wrong.
        why: ItemError,
        /// Its state, `seq`, episode and `rev`, as far as they read.
        salvage: Salvage,
    },
}

/// What could be read of an unreadable item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvage {
    /// `state`, when it reads.
    pub state: Option<State>,
    /// `seq` (0 when it does not read).
    pub seq: u64,
    /// `episode` (0 when it does not read).
    pub episode: u64,
    /// `rev`, when it reads (the rewrite's condition).
    pub rev: Option<u64>,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No item.
    Absent,
    /// The item of this `rev`, of this version or older.
    Rev(u64),
    /// The unreadable item read, by its `rev` (`None`: it had none).
    Unreadable(Option<u64>),
}

/// What is wrong with an item this version cannot read (edited by hand, or written by a
/// newer version): the attribute, and how. The text is what the log and `incidents`
/// show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// The attribute is absent.
    #[error("{attr} is missing")]
    Missing {
        /// The attribute.
        attr: &'static str,
    },
    /// The attribute is of another type (or a number that is not an integer).
    #[error("{attr} is not {expected}")]
    WrongType {
        /// The attribute.
        attr: &'static str,
        /// What it should be.
        expected: AttrType,
    },
    /// A count below zero.
    #[error("{attr} is negative")]
    Negative {
        /// The attribute.
        attr: &'static str,
    },
    /// A list (the outbox) with an entry that is not a map.
    #[error("{attr} holds a non-map")]
    NotAMapEntry {
        /// The attribute.
        attr: &'static str,
    },
    /// An outbox entry of a transition this version does not know.
    #[error("{attr}: transition {value:?}")]
    UnknownTransition {
        /// The attribute.
        attr: &'static str,
        /// The transition as stored.
        value: String,
    },
    /// A key of a map of counts (`perMinute`, `perHour`) that is not a number.
    #[error("{attr} key {key:?}")]
    BadKey {
        /// The attribute.
        attr: &'static str,
        /// The key as stored.
        key: String,
    },
    /// A value of a map of counts that is not a count.
    #[error("{attr}.{key} is not a count")]
    BadCount {
        /// The attribute.
        attr: &'static str,
        /// The key whose value it is.
        key: String,
    },
    /// A `state` that is neither `open` nor `resolved`.
    #[error("state {value:?} is neither open nor resolved")]
    UnknownState {
        /// The state as stored.
        value: String,
    },
    /// An item of a higher `itemVersion` than this version's.
    #[error("itemVersion {version}: written by a newer version")]
    Newer {
        /// Its `itemVersion`.
        version: u64,
    },
}

/// The type an attribute should have, as [`ItemError::WrongType`] says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// `S`.
    String,
    /// `N`.
    Number,
    /// `N` holding an integer.
    Integer,
    /// `SS`.
    StringSet,
    /// `NS`.
    NumberSet,
    /// `L`.
    List,
    /// `M`.
    Map,
}

impl std::fmt::Display for AttrType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AttrType::String => "a string",
            AttrType::Number => "a number",
            AttrType::Integer => "an integer",
            AttrType::StringSet => "a string set",
            AttrType::NumberSet => "a number set",
            AttrType::List => "a list",
            AttrType::Map => "a map",
        })
    }
}

/// A call to the table that failed, was refused or did not answer: the call's line (its
/// service's code kept, [`TableCall::code`]) and the table's name. Its line says the
/// call's, so its cause is the call's own `source()`, as a transparent error's is.
#[derive(Debug)]
pub struct TableCall {
    table: String,
    call: Box<AwsError>,
}

impl TableCall {
    /// `call`, a call to `table`.
    pub(crate) fn new(table: &str, call: AwsError) -> TableCall {
        TableCall {
            table: table.to_owned(),
            call: Box::new(call),
        }
    }

    /// The service's error code, when it said one.
    pub fn code(&self) -> Option<&str> {
        self.call.code()
    }
}

impl std::fmt::Display for TableCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (table {})", self.call, self.table)
    }
}

impl std::error::Error for TableCall {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.call)
    }
}

/// Why the table could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The item was written by a newer version of this tool: left as it is.
    #[error(
        "incident {key}: the item is of itemVersion {version}, newer than this version's {ITEM_VERSION}; left as it is"
    )]
    Newer {
        /// The incident.
        key: String,
        /// Its `itemVersion`.
        version: u64,
    },
    /// The table refused the request as invalid (DynamoDB's `ValidationException`).
    #[error("incident {key}: the table refused the write as invalid (ValidationException): {why}")]
    Invalid {
        /// The incident.
        key: String,
        /// What the table said.
        why: String,
    },
    /// The item does not read, and what was asked of it needs it.
    #[error("incident {key}: the item cannot be read: {why}")]
    Unreadable {
        /// The incident.
        key: String,
        /// What is wrong with it (said in the line, so not its `source()` too).
        why: ItemError,
    },
    /// The table refused or did not answer a call.
    #[error(transparent)]
    Call(#[from] TableCall),
    /// The incident's reads and writes did not end within their time.
    #[error("incident {key}: the table did not answer within {after:?}")]
    TimedOut {
        /// The incident.
        key: String,
        /// Its time.
        after: std::time::Duration,
    },
    /// A listing of the state index did not end within the sweep's time.
    #[error("the incident table did not list the {index_state} incidents within {after:?}")]
    NotListed {
        /// `open` or `unannounced`.
        index_state: &'static str,
        /// The sweep's time.
        after: std::time::Duration,
    },
    /// Others wrote the item between each read and write.
    #[error("incident {key}: changed by others at every one of {rounds} conditional writes")]
    Contended {
        /// The incident.
        key: String,
        /// The conditional writes tried.
        rounds: u32,
    },
    /// A batch's write that decided to write nothing (never expected).
    #[error("incident {key}: nothing written")]
    NothingWritten {
        /// The incident.
        key: String,
    },
}

/// The incident table.
pub trait IncidentTable: Send + Sync {
    /// The item of `key` (a consistent read), if any.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Stored>, TableError>>;

    /// Writes `item` whole when the table holds what `expect` says; `false` (nothing
    /// written) when it does not.
    fn put<'a>(
        &'a self,
        item: &'a IncidentItem,
        expect: Expect,
    ) -> BoxFuture<'a, Result<bool, TableError>>;

    /// The items the state index holds under `index_state` (`open`, `unannounced`).
    fn indexed<'a>(
        &'a self,
        index_state: &'a str,
    ) -> BoxFuture<'a, Result<Vec<IncidentItem>, TableError>>;

    /// Every incident, each in the state asked for (`None`: all).
    fn list(&self, state: Option<State>) -> BoxFuture<'_, Result<Vec<IncidentItem>, TableError>>;

    /// Calls made so far (for the cost checks and `poll`'s summary).
    fn calls(&self) -> u64;
}

/// A new open episode from `seen`, numbered `seq` (its episode), made at `now`.
pub(crate) fn fresh(seen: &Observation, now: i64, seq: u64) -> IncidentItem {
    let mut item = IncidentItem {
        key: seen.key.clone(),
        state: State::Open,
        category: seen.category.clone(),
        target_arn: seen.target_arn.clone(),
        first_seen: seen.first_seen,
        last_seen: seen.last_seen,
        last_counted: now,
        count: 0,
        announced_count: 0,
        rules: BTreeSet::new(),
        codes: BTreeSet::new(),
        sample_errors: Vec::new(),
        http_statuses: BTreeSet::new(),
        conversations: 0,
        per_minute: BTreeMap::new(),
        per_hour: BTreeMap::new(),
        peak_per_minute: 0,
        report: None,
        seq,
        episode: seq,
        announced_seq: seq.saturating_sub(1),
        outbox: Vec::new(),
        last_announced: now,
        resolved_at: None,
        resolved_cutoff: None,
        resolved_by_hand: false,
        expires_at: None,
        acknowledged_at: None,
        silenced_until: None,
        rev: 0,
        replayed: 0,
        replays: BTreeSet::new(),
    };
    add(&mut item, seen, now);
    item.announced_count = item.count;
    item
}

/// `seen` counted into `item` at `now`: counts, times (the first one lowered by a late
/// batch), names and samples (bounded), the minutes (the oldest folded into hours).
fn add(item: &mut IncidentItem, seen: &Observation, now: i64) {
    item.count += seen.count;
    item.replayed += seen.replayed;
    item.conversations += seen.conversations;
    item.first_seen = item.first_seen.min(seen.first_seen);
    item.last_seen = item.last_seen.max(seen.last_seen);
    item.last_counted = item.last_counted.max(now);
    for (kept, new) in [
        (&mut item.rules, &seen.rules),
        (&mut item.codes, &seen.codes),
        (&mut item.replays, &seen.replays),
    ] {
        for name in new {
            if kept.len() >= NAMES_KEPT {
                break;
            }
            kept.insert(name.clone());
        }
    }
    for status in &seen.http_statuses {
        // A 429 is kept past the bound: it tells the endpoint's own rate limit.
        if item.http_statuses.len() < NAMES_KEPT || *status == 429 {
            item.http_statuses.insert(*status);
        }
    }
    for e in &seen.sample_errors {
        let e = crate::text::truncate(e, SAMPLE_CHARS);
        if item.sample_errors.len() < SAMPLES_KEPT && !item.sample_errors.contains(&e) {
            item.sample_errors.push(e);
        }
    }
    for (minute, n) in &seen.per_minute {
        *item.per_minute.entry(*minute).or_default() += n;
    }
    while item.per_minute.len() > MINUTES_KEPT {
        let Some((minute, n)) = item.per_minute.pop_first() else {
            break;
        };
        item.peak_per_minute = item.peak_per_minute.max(n);
        *item.per_hour.entry(minute.div_euclid(60)).or_default() += n;
    }
    while item.per_hour.len() > HOURS_KEPT {
        item.per_hour.pop_first();
    }
    if seen.report.is_some() {
        item.report = seen.report.clone();
    }
}

/// Records `transition` as the item's next `seq`, in its outbox.
fn record(
    item: &mut IncidentItem,
    transition: Transition,
    now: i64,
    since_last: u64,
    rewritten: bool,
) {
    item.seq += 1;
    if matches!(transition, Transition::Opened | Transition::Reopened) {
        item.episode = item.seq;
    }
    item.last_announced = now;
    item.outbox.push(Pending {
        seq: item.seq,
        transition,
        episode: item.episode,
        at: now,
        since_last,
        by_hand: item.resolved_by_hand && transition == Transition::Resolved,
        rewritten,
    });
    while item.outbox.len() > OUTBOX_KEPT {
        let drop = item
            .outbox
            .iter()
            .position(|p| p.transition == Transition::Updated)
            .unwrap_or(0);
        item.outbox.remove(drop);
    }
}

/// What counting a batch in does to an incident (`None`: the table has none), at `now`:
/// the item after it, and the transition it made, if any.
///
/// - none yet: `opened`;
/// - open: counted in; `updated` when the update interval has passed (processing clock)
///   since the latest transition;
/// - resolved: a batch with a failure after the resolution's cut-off starts a new
///   episode (`reopened`); an older one counts into the resolved episode.
pub(super) fn count_in(
    old: Option<&IncidentItem>,
    seen: &Observation,
    now: i64,
    settings: &IncidentSettings,
) -> (IncidentItem, Option<Transition>) {
    let Some(old) = old else {
        let mut item = fresh(seen, now, 0);
        record(&mut item, Transition::Opened, now, seen.count, false);
        return (item, Some(Transition::Opened));
    };
    let mut item = old.clone();
    match old.state {
        State::Open => {
            add(&mut item, seen, now);
            if now - old.last_announced >= settings.update.num_milliseconds() {
                let since = item.count - old.announced_count;
                item.announced_count = item.count;
                record(&mut item, Transition::Updated, now, since, false);
                return (item, Some(Transition::Updated));
            }
            (item, None)
        }
        State::Resolved if old.resolved_cutoff.is_none_or(|c| seen.last_seen > c) => {
            let mut item = fresh(seen, now, old.seq);
            item.announced_seq = old.announced_seq;
            item.outbox = old.outbox.clone();
            item.silenced_until = old.silenced_until;
            item.rev = old.rev;
            record(&mut item, Transition::Reopened, now, seen.count, false);
            (item, Some(Transition::Reopened))
        }
        State::Resolved => {
            add(&mut item, seen, now);
            (item, None)
        }
    }
}

/// A new episode over an item that could not be read: announced (`opened`/`reopened`,
/// marked rewritten) only when the item was not open, so an episode that was open is
/// never announced again; when it was, the batch continues it silently.
pub(super) fn rewrite(
    salvage: &Salvage,
    seen: &Observation,
    now: i64,
) -> (IncidentItem, Option<Transition>) {
    let mut item = fresh(seen, now, salvage.seq);
    item.rev = salvage.rev.unwrap_or(0);
    if salvage.state != Some(State::Resolved) && salvage.seq > 0 {
        // It was open (or its state does not read): the episode goes on, unannounced.
        item.seq = salvage.seq;
        item.episode = salvage.episode.max(1).min(salvage.seq);
        item.announced_seq = salvage.seq;
        return (item, None);
    }
    let transition = match salvage.seq {
        0 => Transition::Opened,
        _ => Transition::Reopened,
    };
    record(&mut item, transition, now, seen.count, true);
    (item, Some(transition))
}

/// Resolves an open incident at `now`: by hand, or when quiet on both clocks (no failure
/// and no batch counted for the quiet period). `None` when it does not resolve.
pub(super) fn resolve(
    old: &IncidentItem,
    now: i64,
    settings: &IncidentSettings,
    by_hand: bool,
) -> Option<IncidentItem> {
    let quiet_since = now - settings.quiet.num_milliseconds();
    let quiet = old.last_seen < quiet_since && old.last_counted < quiet_since;
    if old.state != State::Open || !(by_hand || quiet) {
        return None;
    }
    let mut item = old.clone();
    item.state = State::Resolved;
    item.resolved_at = Some(now);
    // By hand, everything that failed before now belongs to this episode; by the
    // sweep, everything before the quiet period it waited out.
    item.resolved_cutoff = Some(if by_hand { now } else { quiet_since });
    item.resolved_by_hand = by_hand;
    item.expires_at = Some((now + settings.retention.num_milliseconds()).div_euclid(1000));
    let since = item.count.saturating_sub(item.announced_count);
    record(&mut item, Transition::Resolved, now, since, false);
    Some(item)
}

/// The item with the transitions `seqs` put on the bus (or passed over).
pub(super) fn mark_announced(old: &IncidentItem, seqs: &[u64]) -> IncidentItem {
    let mut item = old.clone();
    item.outbox.retain(|p| !seqs.contains(&p.seq));
    item.announced_seq = seqs.iter().copied().fold(item.announced_seq, u64::max);
    item
}

/// Whether `p` was held by a silence: made (or still unput) before the end of the
/// item's latest silence.
pub(super) fn held(item: &IncidentItem, p: &Pending) -> bool {
    item.silenced_until.is_some_and(|until| p.at < until)
}

/// Since when `p` has been due to be put (epoch ms): when it was made, or, when a silence
/// held it, when that silence ends.
pub(super) fn due_since(item: &IncidentItem, p: &Pending) -> i64 {
    match item.silenced_until {
        Some(until) if p.at < until => until,
        _ => p.at,
    }
}

/// The `seq`s of the held transitions that a silence which has ended leaves nothing to
/// say, so that its end does not flood the pager with what it held: every transition of
/// an episode that began and ended while held (the pager never heard of it, and it is
/// over), and every held `updated` whose episode has a later transition, or its opening,
/// in the outbox (each event carries the incident's current counts).
pub(super) fn passed_over(item: &IncidentItem) -> Vec<u64> {
    let held: Vec<&Pending> = item.outbox.iter().filter(|p| held(item, p)).collect();
    let over = |episode: u64| {
        let began = held.iter().any(|p| {
            p.episode == episode
                && matches!(p.transition, Transition::Opened | Transition::Reopened)
        });
        let ended = held
            .iter()
            .any(|p| p.episode == episode && p.transition == Transition::Resolved);
        began && ended
    };
    held.iter()
        .filter(|p| {
            over(p.episode)
                || (p.transition == Transition::Updated
                    && item
                        .outbox
                        .iter()
                        .any(|o| o.episode == p.episode && (o.seq > p.seq || o.seq == p.episode)))
        })
        .map(|p| p.seq)
        .collect()
}

/// Acknowledges the open episode at `now`; `None` when it is not open.
pub(super) fn acknowledge(old: &IncidentItem, now: i64) -> Option<IncidentItem> {
    (old.state == State::Open).then(|| {
        let mut item = old.clone();
        item.acknowledged_at = Some(now);
        item
    })
}

/// Silences the incident until `until` (epoch ms).
pub(super) fn silence(old: &IncidentItem, until: i64) -> IncidentItem {
    let mut item = old.clone();
    item.silenced_until = Some(until);
    item
}

/// The in-memory twin: every write under one lock, as DynamoDB serialises the writes to
/// one item; it keeps what it is given, as the DynamoDB adapter does.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryTable {
    items: std::sync::Mutex<std::collections::HashMap<String, Stored>>,
    calls: std::sync::atomic::AtomicU64,
    /// While set, every call fails with this reason.
    failing: std::sync::Mutex<Option<String>>,
    /// While set, every call takes this long.
    delay: std::sync::Mutex<Option<std::time::Duration>>,
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

    /// Every later call takes `delay` (`None`: they answer at once).
    pub fn slow(&self, delay: Option<std::time::Duration>) {
        *self.delay.lock().unwrap_or_else(|e| e.into_inner()) = delay;
    }

    /// Replaces the item of `key` with one that cannot be read (edited by hand).
    pub fn spoil(&self, key: &str, why: ItemError, salvage: Salvage) {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), Stored::Unreadable { why, salvage });
    }

    async fn call(&self) -> Result<(), TableError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        match &*self.failing.lock().unwrap_or_else(|e| e.into_inner()) {
            // As the service says it: the reason is its error code.
            Some(reason) => Err(TableError::Call(TableCall::new(
                "memory",
                AwsError::Failed {
                    code: Some(reason.clone()),
                    message: None,
                    status: Some(400),
                    line: reason.clone(),
                    sdk: reason.clone().into(),
                },
            ))),
            None => Ok(()),
        }
    }

    fn readable(&self) -> Vec<IncidentItem> {
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items
            .values()
            .filter_map(|s| match s {
                Stored::Item(i) => Some((**i).clone()),
                Stored::Unreadable { .. } => None,
            })
            .collect()
    }
}

#[cfg(test)]
impl IncidentTable for MemoryTable {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Stored>, TableError>> {
        Box::pin(async move {
            self.call().await?;
            Ok(self
                .items
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
                .cloned())
        })
    }

    fn put<'a>(
        &'a self,
        item: &'a IncidentItem,
        expect: Expect,
    ) -> BoxFuture<'a, Result<bool, TableError>> {
        Box::pin(async move {
            self.call().await?;
            let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
            let holds = match (items.get(&item.key), expect) {
                (None, Expect::Absent) => true,
                (Some(Stored::Item(old)), Expect::Rev(rev)) => old.rev == rev,
                (Some(Stored::Unreadable { salvage, .. }), Expect::Unreadable(rev)) => {
                    salvage.rev == rev
                }
                _ => false,
            };
            if holds {
                items.insert(item.key.clone(), Stored::Item(Box::new(item.clone())));
            }
            Ok(holds)
        })
    }

    fn indexed<'a>(
        &'a self,
        index_state: &'a str,
    ) -> BoxFuture<'a, Result<Vec<IncidentItem>, TableError>> {
        Box::pin(async move {
            self.call().await?;
            Ok(self
                .readable()
                .into_iter()
                .filter(|i| i.index_state() == Some(index_state))
                .collect())
        })
    }

    fn list(&self, state: Option<State>) -> BoxFuture<'_, Result<Vec<IncidentItem>, TableError>> {
        Box::pin(async move {
            self.call().await?;
            Ok(self
                .readable()
                .into_iter()
                .filter(|i| state.is_none_or(|s| i.state == s))
                .collect())
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}
