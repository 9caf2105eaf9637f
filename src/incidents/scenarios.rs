// The incident stories, written once, generic over the `IncidentTable` port: run on the
// in-memory twin (src/incidents/tests.rs) and on DynamoDB (dynalite, tests/incidents.rs),
// so the twin and the adapter cannot drift. Included as a module by both; it names what it
// uses through `super::*` (the incidents module, or the test crate's imports).
//
// Failure times (`SentTimestamp`) sit hours before the processing clock, as in a backlog.

use super::*;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

const TARGET: &str = "arn:aws:events:us-east-1:111122223333:api-destination/crm/1";
const KEY: &str = "RATE_LIMIT_EXCEEDED-scenario";
/// A budget no call of these stories comes near.
const BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// The processing clock: `minutes` after 12:00.
fn clock(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// A failure time: `minutes` after 09:00, three hours before the clock's start.
fn failed(minutes: i64) -> i64 {
    (Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap() + Duration::minutes(minutes))
        .timestamp_millis()
}

/// A batch of `count` failures of the incident, dead-lettered at `minutes` (failure clock),
/// spread over `width` distinct minutes from there.
fn batch(minutes: i64, count: u64, width: i64) -> Observation {
    let first = failed(minutes);
    let per_minute: BTreeMap<i64, u64> = (0..width)
        .map(|i| {
            let share = count / width as u64 + u64::from((i as u64) < count % width as u64);
            (first.div_euclid(60_000) + i, share)
        })
        .collect();
    Observation {
        key: KEY.into(),
        category: "RATE_LIMIT_EXCEEDED".into(),
        target_arn: Some(TARGET.into()),
        first_seen: first,
        last_seen: first + (width - 1) * 60_000,
        count,
        rules: ["arn:aws:events:us-east-1:111122223333:rule/to-crm".to_owned()].into(),
        codes: ["THROTTLING".to_owned()].into(),
        sample_errors: vec!["429 Too Many Requests ".repeat(40)],
        http_statuses: [429].into(),
        conversations: 1,
        per_minute,
        report: Some(ReportRef {
            json: "s3://b/p/reports/dt=2026-12-05/r.json".into(),
            markdown: "s3://b/p/reports/dt=2026-12-05/r.md".into(),
            html: None,
        }),
        replayed: 0,
        replays: Default::default(),
    }
}

fn tracker<T: IncidentTable + 'static>(table: &Arc<T>) -> IncidentTracker {
    IncidentTracker::new(table.clone(), IncidentSettings::default())
}

/// What a round made, as (transition, seq), after putting each change on a bus that
/// takes it (its outbox emptied).
async fn announce(t: &IncidentTracker, tracked: Tracked) -> Vec<(Transition, u64)> {
    assert!(tracked.failed.is_empty(), "{:?}", tracked.failed);
    for (key, seqs) in &tracked.passed_over {
        t.announced(key, seqs).await.unwrap();
    }
    let mut made = Vec::new();
    for c in &tracked.changes {
        t.announced(&c.item.key, &[c.seq]).await.unwrap();
        made.push((c.transition, c.seq));
    }
    made
}

async fn item<T: IncidentTable + 'static>(table: &Arc<T>) -> IncidentItem {
    match table.get(KEY).await.unwrap() {
        Some(Stored::Item(item)) => *item,
        other => panic!("not a readable item: {other:?}"),
    }
}

/// A new incident opens once; its next batches are counted in silently, one write each
/// when the process holds the item.
pub(super) async fn opens_once_and_counts_in_the_next_batches<T: IncidentTable + 'static>(
    table: Arc<T>,
) {
    let t = tracker(&table);
    let first = announce(&t, t.observe(vec![batch(0, 10, 1)], clock(0), BUDGET).await).await;
    assert_eq!(first, [(Transition::Opened, 1)]);
    let calls = table.calls();
    let second = t.observe(vec![batch(1, 5, 1)], clock(1), BUDGET).await;
    assert!(second.changes.is_empty(), "{:?}", second.changes);
    assert_eq!(table.calls() - calls, 1, "one write per incident per batch");
    let item = item(&table).await;
    assert_eq!((item.count, item.episode, item.announced_seq), (15, 1, 1));
    assert_eq!(item.last_seen, failed(1));
    // A late batch lowers the first failure.
    t.observe(vec![batch(-30, 2, 1)], clock(2), BUDGET).await;
    assert_eq!(item_of(&table).await.first_seen, failed(-30));
}

async fn item_of<T: IncidentTable + 'static>(table: &Arc<T>) -> IncidentItem {
    item(table).await
}

/// Sixteen invocations meeting a new incident at once: one `opened`, every count kept.
pub(super) async fn sixteen_at_once_open_once<T: IncidentTable + 'static>(table: Arc<T>) {
    let trackers: Vec<_> = (0..16).map(|_| tracker(&table)).collect();
    let all = futures::future::join_all(
        trackers
            .iter()
            .map(|t| t.observe(vec![batch(0, 1, 1)], clock(0), BUDGET)),
    )
    .await;
    let opened: usize = all
        .iter()
        .map(|t| {
            assert!(t.failed.is_empty(), "{:?}", t.failed);
            t.changes
                .iter()
                .filter(|c| c.transition == Transition::Opened)
                .count()
        })
        .sum();
    assert_eq!(opened, 1);
    assert_eq!(item(&table).await.count, 16);
}

/// A backlog of an hour of failures drained two hours late, one batch a minute: it
/// opens once, updates at most every 30 minutes of the clock, and the sweep every five
/// minutes resolves nothing while batches still come (though every failure is hours
/// old); after the drain, once, with the cut-off of its quiet period.
pub(super) async fn a_backlog_drained_two_hours_late_opens_once_and_resolves_once<
    T: IncidentTable + 'static,
>(
    table: Arc<T>,
) {
    let t = tracker(&table);
    let mut made = Vec::new();
    for minute in 0..60 {
        let tracked = t
            .observe(vec![batch(minute, 5, 1)], clock(minute), BUDGET)
            .await;
        made.extend(announce(&t, tracked).await);
        if minute % 5 == 4 {
            let swept = t.sweep(clock(minute), BUDGET).await;
            assert_eq!(swept.made, 0, "resolved while draining at minute {minute}");
            made.extend(announce(&t, swept).await);
        }
    }
    let kinds: Vec<Transition> = made.iter().map(|m| m.0).collect();
    assert_eq!(kinds, [Transition::Opened, Transition::Updated], "{made:?}");
    // Quiet on the failure clock for hours, on the processing clock for 14 minutes.
    assert_eq!(t.sweep(clock(59 + 14), BUDGET).await.made, 0);
    let swept = t.sweep(clock(59 + 16), BUDGET).await;
    assert_eq!(swept.made, 1);
    let resolved = announce(&t, swept).await;
    assert_eq!(resolved, [(Transition::Resolved, 3)]);
    let item = item(&table).await;
    assert_eq!(item.state, State::Resolved);
    assert_eq!(item.count, 300);
    assert_eq!(
        item.resolved_cutoff,
        Some((clock(59 + 16) - Duration::minutes(15)).timestamp_millis())
    );
    assert!(item.outbox.is_empty());
    assert_eq!(t.sweep(clock(59 + 21), BUDGET).await.made, 0);
}

/// After a resolution, redelivered records whose failures are older than its cut-off
/// count into the resolved episode and never reopen it; a fresh failure reopens it once,
/// as episode 2 with its own dedup key.
pub(super) async fn old_redeliveries_do_not_reopen_a_fresh_failure_reopens_once<
    T: IncidentTable + 'static,
>(
    table: Arc<T>,
) {
    let t = tracker(&table);
    announce(&t, t.observe(vec![batch(0, 4, 1)], clock(0), BUDGET).await).await;
    let swept = t.sweep(clock(16), BUDGET).await;
    assert_eq!(announce(&t, swept).await, [(Transition::Resolved, 2)]);
    // Redelivered after the visibility timeout: failed long before the cut-off.
    for i in 0..3 {
        let late = t.observe(vec![batch(i, 2, 1)], clock(17 + i), BUDGET).await;
        assert!(late.changes.is_empty(), "{:?}", late.changes);
    }
    let item = item(&table).await;
    assert_eq!((item.state, item.count, item.seq), (State::Resolved, 10, 2));
    // A failure after the cut-off (on the processing clock's side of it).
    let fresh_minute =
        (clock(20) - Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap()).num_minutes();
    let again = t
        .observe(vec![batch(fresh_minute, 1, 1)], clock(21), BUDGET)
        .await;
    let changes = again.changes.clone();
    assert_eq!(announce(&t, again).await, [(Transition::Reopened, 3)]);
    assert_eq!(changes[0].episode, 3);
    assert_ne!(
        changes[0].item.dedup_key(changes[0].episode),
        changes[0].item.dedup_key(1)
    );
    let next = t
        .observe(vec![batch(fresh_minute + 1, 1, 1)], clock(22), BUDGET)
        .await;
    assert!(next.changes.is_empty(), "reopened once: {:?}", next.changes);
}

/// Two batches of 200 distinct minutes each: one `opened`, every failure counted, the
/// item bounded (minutes folded into hours).
pub(super) async fn two_batches_of_200_minutes_open_once_and_count_all<
    T: IncidentTable + 'static,
>(
    table: Arc<T>,
) {
    let t = tracker(&table);
    let a = announce(
        &t,
        t.observe(vec![batch(0, 400, 200)], clock(0), BUDGET).await,
    )
    .await;
    let b = announce(
        &t,
        t.observe(vec![batch(200, 400, 200)], clock(1), BUDGET)
            .await,
    )
    .await;
    assert_eq!(a, [(Transition::Opened, 1)]);
    assert!(b.is_empty(), "{b:?}");
    let item = item(&table).await;
    assert_eq!(item.count, 800);
    assert_eq!(item.first_seen, failed(0));
    assert_eq!(item.last_seen, failed(399));
    assert_eq!(item.per_minute.len(), MINUTES_KEPT);
    let folded: u64 = item.per_hour.values().sum();
    assert_eq!(folded + item.per_minute.values().sum::<u64>(), 800);
    assert_eq!(item.peak(), 2);
}

/// An eight-hour incident, one batch a minute: the item stays bounded.
pub(super) async fn an_eight_hour_incident_keeps_its_item_bounded<T: IncidentTable + 'static>(
    table: Arc<T>,
) {
    let t = tracker(&table);
    for minute in 0..480 {
        let tracked = t
            .observe(vec![batch(minute, 3, 1)], clock(minute), BUDGET)
            .await;
        announce(&t, tracked).await;
    }
    let item = item(&table).await;
    assert_eq!(item.count, 1440);
    assert_eq!(item.seq, 1 + 15, "one updated per 30 minutes");
    assert!(item.per_minute.len() <= MINUTES_KEPT);
    assert!(item.per_hour.len() <= HOURS_KEPT);
    assert!(item.outbox.is_empty());
    assert!(
        item.sample_errors
            .iter()
            .all(|e| e.chars().count() <= SAMPLE_CHARS + 1)
    );
}

/// A transition whose event was not put stays in the outbox: its maker's to put for a
/// minute, then any later invocation's or sweep's, exactly once once put.
pub(super) async fn an_unannounced_transition_is_put_later_exactly_once<
    T: IncidentTable + 'static,
>(
    table: Arc<T>,
) {
    let t = tracker(&table);
    let refused = t.observe(vec![batch(0, 2, 1)], clock(0), BUDGET).await;
    assert_eq!(refused.changes.len(), 1, "made here: to put now");
    // Not put (the bus refused). Another container within the grace leaves it alone.
    let other = tracker(&table);
    let soon = other.observe(vec![batch(0, 1, 1)], clock(0), BUDGET).await;
    assert!(soon.changes.is_empty(), "{:?}", soon.changes);
    assert_eq!(item(&table).await.outbox.len(), 1);
    // After the grace, the next batch puts it; then nobody does again.
    let later = other.observe(vec![batch(2, 1, 1)], clock(2), BUDGET).await;
    assert_eq!(announce(&other, later).await, [(Transition::Opened, 1)]);
    let swept = t.sweep(clock(3), BUDGET).await;
    assert!(swept.changes.is_empty(), "{:?}", swept.changes);
    let item = item(&table).await;
    assert_eq!((item.announced_seq, item.outbox.len()), (1, 0));
    // The same through the sweep, for a resolution.
    let resolved = t.sweep(clock(30), BUDGET).await;
    assert_eq!(resolved.changes.len(), 1);
    assert_eq!(item_of(&table).await.index_state(), Some("unannounced"));
    assert!(t.sweep(clock(30), BUDGET).await.changes.is_empty());
    let overdue = t.sweep(clock(45), BUDGET).await;
    assert_eq!(overdue.overdue, 1);
    assert_eq!(announce(&t, overdue).await, [(Transition::Resolved, 2)]);
    assert_eq!(item_of(&table).await.index_state(), None);
    assert!(t.sweep(clock(50), BUDGET).await.changes.is_empty());
}

/// Acknowledged and silenced: stored in the item; a silenced incident is counted but
/// announces nothing until the silence ends, then what was held is put.
pub(super) async fn ack_and_silence_round_trip<T: IncidentTable + 'static>(table: Arc<T>) {
    let t = tracker(&table);
    announce(&t, t.observe(vec![batch(0, 1, 1)], clock(0), BUDGET).await).await;
    let acked = t.acknowledge(KEY, clock(1)).await.unwrap().unwrap();
    assert_eq!(acked.acknowledged_at, Some(clock(1).timestamp_millis()));
    let silenced = t.silence(KEY, clock(120)).await.unwrap().unwrap();
    assert_eq!(silenced.silenced_until, Some(clock(120).timestamp_millis()));
    let held = t.observe(vec![batch(40, 7, 1)], clock(40), BUDGET).await;
    assert!(held.changes.is_empty(), "{:?}", held.changes);
    assert_eq!(held.held, 1, "the update is made, and held");
    assert!(t.sweep(clock(100), BUDGET).await.changes.is_empty());
    let item = item(&table).await;
    assert_eq!((item.count, item.outbox.len()), (8, 2));
    let after = announce(&t, t.sweep(clock(121), BUDGET).await).await;
    // The held update is passed over: the resolution says the counts since.
    assert_eq!(after, [(Transition::Resolved, 3)]);
    assert!(item_of(&table).await.outbox.is_empty());
    // A new episode is not acknowledged; resolved incidents cannot be.
    assert!(t.acknowledge(KEY, clock(122)).await.unwrap().is_none());
    assert!(
        t.acknowledge("NO-SUCH-KEY", clock(122))
            .await
            .unwrap()
            .is_none()
    );
}

/// By hand: only an open incident, with its cut-off at the moment; a second hand
/// resolution finds nothing open.
pub(super) async fn resolved_by_hand_only_when_open<T: IncidentTable + 'static>(table: Arc<T>) {
    let t = tracker(&table);
    announce(&t, t.observe(vec![batch(0, 2, 1)], clock(0), BUDGET).await).await;
    let change = t.resolve(KEY, clock(1)).await.unwrap().unwrap();
    assert!(change.by_hand);
    assert_eq!(
        (change.transition, change.episode),
        (Transition::Resolved, 1)
    );
    assert_eq!(
        change.item.resolved_cutoff,
        Some(clock(1).timestamp_millis())
    );
    assert!(t.resolve(KEY, clock(2)).await.unwrap().is_none());
}

/// A silence is quiet and its end is not a flood: while it holds, nothing is put and
/// nothing counts as overdue (the unannounced alarm stays quiet); when it ends, an episode
/// that began and ended inside it is passed over (never paged), and an episode still open
/// is put once, its `reopened` alone.
pub(super) async fn a_silence_ends_without_a_flood<T: IncidentTable + 'static>(table: Arc<T>) {
    let t = tracker(&table);
    // The failure-clock minute of processing minute `m`: a failure as it happens.
    let now_failing = |m: i64| (clock(m) - clock(0)).num_minutes() + 180;
    announce(&t, t.observe(vec![batch(0, 1, 1)], clock(0), BUDGET).await).await;
    let resolved = announce(&t, t.sweep(clock(16), BUDGET).await).await;
    assert_eq!(resolved, [(Transition::Resolved, 2)]);
    t.silence(KEY, clock(200)).await.unwrap().unwrap();
    // Episode 3 within the silence: reopened, updated, resolved; all held.
    let reopened = t
        .observe(vec![batch(now_failing(20), 1, 1)], clock(20), BUDGET)
        .await;
    assert_eq!((reopened.made, reopened.held), (1, 1));
    assert!(reopened.changes.is_empty(), "{:?}", reopened.changes);
    let updated = t
        .observe(vec![batch(now_failing(50), 1, 1)], clock(50), BUDGET)
        .await;
    assert_eq!((updated.made, updated.held), (1, 1));
    let quiet = t.sweep(clock(70), BUDGET).await;
    assert_eq!(quiet.made, 1);
    assert!(quiet.changes.is_empty(), "{:?}", quiet.changes);
    let later = t.sweep(clock(100), BUDGET).await;
    assert!(later.changes.is_empty(), "{:?}", later.changes);
    assert_eq!(later.overdue, 0, "held, not overdue");
    // Episode 6 begins in the silence and is still open when it ends.
    t.observe(vec![batch(now_failing(190), 1, 1)], clock(190), BUDGET)
        .await;
    assert_eq!(item_of(&table).await.outbox.len(), 4);
    let after = t.sweep(clock(201), BUDGET).await;
    assert_eq!(after.overdue, 0, "due since the silence ended");
    assert_eq!(announce(&t, after).await, [(Transition::Reopened, 6)]);
    let item = item_of(&table).await;
    assert_eq!((item.state, item.episode), (State::Open, 6));
    assert!(item.outbox.is_empty(), "{:?}", item.outbox);
    assert_eq!(item.announced_seq, 6);
    assert!(t.sweep(clock(202), BUDGET).await.changes.is_empty());
}
