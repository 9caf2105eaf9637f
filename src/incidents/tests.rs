//! The incident rules on the in-memory table (the DynamoDB adapter is held to the same
//! rules against dynalite in tests/incidents.rs).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::*;

const TARGET: &str = "arn:aws:events:us-east-1:111122223333:api-destination/crm/1";

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// A batch of `count` failures of one incident, all at minute `minute`.
fn seen(minute: i64, count: u64) -> Observation {
    let t = at(minute).timestamp_millis();
    Observation {
        key: incident_key(FailureCategory::RateLimitExceeded, Some(TARGET)),
        category: "RATE_LIMIT_EXCEEDED".into(),
        target_arn: Some(TARGET.into()),
        first_seen: t,
        last_seen: t,
        count,
        rules: ["arn:aws:events:us-east-1:111122223333:rule/to-crm".to_owned()].into(),
        codes: ["THROTTLING".to_owned()].into(),
        sample_errors: vec!["429 Too Many Requests".into()],
        conversations: 1,
        per_minute: BTreeMap::from([(t.div_euclid(60_000), count)]),
        report: Some(("s3://b/r.json".into(), "s3://b/r.md".into())),
    }
}

fn tracker(table: Arc<MemoryTable>) -> IncidentTracker<Arc<MemoryTable>> {
    IncidentTracker::new(table, IncidentSettings::default())
}

fn transitions(t: &Tracked) -> Vec<(Transition, u64)> {
    t.changes
        .iter()
        .map(|c| (c.transition, c.item.seq))
        .collect()
}

#[tokio::test]
async fn a_new_incident_opens_once_and_its_next_batches_are_counted_in_silently() {
    let table = Arc::new(MemoryTable::new());
    let t = tracker(table.clone());
    let first = t.observe(vec![seen(0, 10)], at(0)).await;
    assert_eq!(transitions(&first), [(Transition::Opened, 1)]);
    assert_eq!(first.changes[0].since_last, 10);
    let calls = table.calls();
    let second = t.observe(vec![seen(1, 5)], at(1)).await;
    assert!(second.changes.is_empty(), "{:?}", second.changes);
    assert_eq!(table.calls() - calls, 1, "one write per incident per batch");
    let item = table.get(&seen(0, 0).key).unwrap();
    assert_eq!(item.count, 15);
    assert_eq!(item.last_seen, at(1).timestamp_millis());
    assert_eq!(item.first_seen, at(0).timestamp_millis());
}

#[tokio::test]
async fn sixteen_invocations_meeting_a_new_incident_at_once_open_it_once() {
    let table = Arc::new(MemoryTable::new());
    let trackers: Vec<_> = (0..16).map(|_| tracker(table.clone())).collect();
    let all =
        futures::future::join_all(trackers.iter().map(|t| t.observe(vec![seen(0, 1)], at(0))))
            .await;
    let opened: usize = all
        .iter()
        .map(|t| {
            t.changes
                .iter()
                .filter(|c| c.transition == Transition::Opened)
                .count()
        })
        .sum();
    assert_eq!(opened, 1);
    assert_eq!(table.get(&seen(0, 0).key).unwrap().count, 16);
}

#[tokio::test]
async fn a_two_hour_storm_opens_once_updates_at_most_four_times_then_resolves_and_reopens() {
    let table = Arc::new(MemoryTable::new());
    let t = tracker(table.clone());
    let mut all = Vec::new();
    // 60 batches, one every two minutes.
    for i in 0..60 {
        let minute = i * 2;
        all.extend(transitions(
            &t.observe(vec![seen(minute, 100)], at(minute)).await,
        ));
    }
    let count = |tr: Transition| all.iter().filter(|(x, _)| *x == tr).count();
    assert_eq!(count(Transition::Opened), 1);
    assert!((1..=4).contains(&count(Transition::Updated)), "{all:?}");
    // Quiet for less than the quiet period: nothing to resolve.
    assert!(t.sweep(at(118 + 14)).await.changes.is_empty());
    let resolved = t.sweep(at(118 + 16)).await;
    assert_eq!(resolved.changes.len(), 1);
    let change = &resolved.changes[0];
    assert_eq!(change.transition, Transition::Resolved);
    assert_eq!(change.item.count, 6000);
    assert_eq!(change.item.peak(), 100);
    let seq = change.item.seq;
    assert_eq!(seq as usize, all.len() + 1, "one seq per announcement");
    // A second sweep finds nothing.
    assert!(t.sweep(at(140)).await.changes.is_empty());
    let again = t.observe(vec![seen(150, 3)], at(150)).await;
    assert_eq!(transitions(&again), [(Transition::Reopened, seq + 1)]);
    assert_eq!(
        again.changes[0].item.count, 3,
        "a new episode counts from its own first"
    );
}

#[tokio::test]
async fn an_update_reports_the_count_since_the_last_event() {
    let table = Arc::new(MemoryTable::new());
    let t = tracker(table);
    t.observe(vec![seen(0, 10)], at(0)).await;
    t.observe(vec![seen(10, 5)], at(10)).await;
    let update = t.observe(vec![seen(31, 7)], at(31)).await;
    assert_eq!(update.changes.len(), 1);
    assert_eq!(update.changes[0].transition, Transition::Updated);
    assert_eq!(update.changes[0].since_last, 12);
    assert_eq!(update.changes[0].item.count, 22);
}

#[tokio::test]
async fn two_sweeps_at_once_resolve_once() {
    let table = Arc::new(MemoryTable::new());
    tracker(table.clone())
        .observe(vec![seen(0, 1)], at(0))
        .await;
    let (a, b) = (tracker(table.clone()), tracker(table.clone()));
    let (x, y) = tokio::join!(a.sweep(at(20)), b.sweep(at(20)));
    assert_eq!(x.changes.len() + y.changes.len(), 1);
}

#[tokio::test]
async fn a_late_batch_from_before_the_resolution_does_not_reopen() {
    let table = Arc::new(MemoryTable::new());
    let t = tracker(table.clone());
    t.observe(vec![seen(10, 1)], at(10)).await;
    t.sweep(at(30)).await;
    let late = t.observe(vec![seen(5, 4)], at(31)).await;
    assert!(late.changes.is_empty(), "{:?}", late.changes);
    let item = table.get(&seen(0, 0).key).unwrap();
    assert_eq!(item.state, State::Resolved);
    assert_eq!(item.count, 5);
}

#[tokio::test]
async fn an_incident_resolved_by_hand_says_so_and_only_when_open() {
    let table = Arc::new(MemoryTable::new());
    let t = tracker(table);
    let key = seen(0, 0).key;
    t.observe(vec![seen(0, 2)], at(0)).await;
    let change = t.resolve(&key, at(1)).await.unwrap().unwrap();
    assert!(change.by_hand);
    assert_eq!(change.item.state, State::Resolved);
    assert!(t.resolve(&key, at(2)).await.unwrap().is_none());
}

#[tokio::test]
async fn a_table_that_fails_is_counted_not_raised() {
    let table = Arc::new(MemoryTable::new());
    table.fail(Some("ProvisionedThroughputExceededException"));
    let t = tracker(table);
    let tracked = t.observe(vec![seen(0, 1)], at(0)).await;
    assert!(tracked.changes.is_empty());
    assert_eq!(tracked.failed.len(), 1);
    assert!(tracked.failed[0].contains("ProvisionedThroughput"));
}

/// Answers `Unreadable` for the first write, as DynamoDB does for an item edited by hand.
struct EditedByHand {
    table: MemoryTable,
    refused: std::sync::atomic::AtomicBool,
}

impl IncidentTable for EditedByHand {
    async fn write(&self, key: &str, write: &Write) -> Result<Written, TableError> {
        if !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(TableError::Unreadable {
                key: key.into(),
                why: "count is not a number".into(),
            });
        }
        self.table.write(key, write).await
    }
    async fn quiet(&self, before: i64) -> Result<Vec<IncidentItem>, TableError> {
        self.table.quiet(before).await
    }
    async fn list(&self, state: Option<State>) -> Result<Vec<IncidentItem>, TableError> {
        self.table.list(state).await
    }
    fn calls(&self) -> u64 {
        self.table.calls()
    }
}

#[tokio::test]
async fn an_item_that_cannot_be_read_is_rewritten_from_the_batch() {
    let t = IncidentTracker::new(
        EditedByHand {
            table: MemoryTable::new(),
            refused: Default::default(),
        },
        IncidentSettings::default(),
    );
    let tracked = t.observe(vec![seen(0, 4)], at(0)).await;
    assert!(tracked.failed.is_empty());
    assert_eq!(tracked.changes.len(), 1);
    assert!(tracked.changes[0].rewritten);
    assert_eq!(tracked.changes[0].item.count, 4);
}

#[test]
fn the_key_is_stable_and_tells_incidents_apart() {
    let a = incident_key(FailureCategory::RateLimitExceeded, Some(TARGET));
    assert_eq!(
        a,
        incident_key(FailureCategory::RateLimitExceeded, Some(TARGET))
    );
    assert!(a.starts_with("RATE_LIMIT_EXCEEDED-"));
    assert_ne!(a, incident_key(FailureCategory::TargetError, Some(TARGET)));
    assert_ne!(a, incident_key(FailureCategory::RateLimitExceeded, None));
}

#[test]
fn observations_count_stored_records_at_their_dead_letter_time() {
    use crate::report::fixtures::{record, report_of};
    let mut records: Vec<_> = (0..4)
        .map(|i| {
            let mut r = record(
                &format!("m{i}"),
                FailureCategory::RateLimitExceeded,
                Some(TARGET),
                Some("THROTTLING"),
                "2026-12-01T00:00:00Z",
            );
            r.sent_timestamp = Some(format!("2026-12-05T09:0{i}:00.000Z"));
            r.failure.rule_arn = Some("arn:rule".into());
            r
        })
        .collect();
    records[3].disposition = crate::report::Disposition::Returned {
        reason: "write failed: x".into(),
    };
    let report = report_of(records);
    let seen = observations(&report, None, at(100));
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].count, 3,
        "the returned record is counted when it is stored"
    );
    assert_eq!(seen[0].first_seen, at(0).timestamp_millis());
    assert_eq!(seen[0].last_seen, at(2).timestamp_millis());
    assert_eq!(seen[0].rules.len(), 1);
}
