//! The incident stories on the in-memory twin (the same stories run on DynamoDB in
//! tests/incidents.rs), and what only the twin can stage.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::*;

#[path = "scenarios.rs"]
mod scenarios;

macro_rules! on_the_twin {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                scenarios::$name(Arc::new(MemoryTable::new())).await;
            }
        )*
    };
}

on_the_twin!(
    opens_once_and_counts_in_the_next_batches,
    sixteen_at_once_open_once,
    a_backlog_drained_two_hours_late_opens_once_and_resolves_once,
    old_redeliveries_do_not_reopen_a_fresh_failure_reopens_once,
    two_batches_of_200_minutes_open_once_and_count_all,
    an_eight_hour_incident_keeps_its_item_bounded,
    an_unannounced_transition_is_put_later_exactly_once,
    ack_and_silence_round_trip,
    a_silence_ends_without_a_flood,
    resolved_by_hand_only_when_open,
);

const TARGET: &str = "arn:aws:events:us-east-1:111122223333:api-destination/crm/1";
const BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn seen(minute: i64, count: u64) -> Observation {
    let t = at(minute).timestamp_millis();
    Observation {
        key: incident_key(FailureCategory::RateLimitExceeded, Some(TARGET)),
        category: "RATE_LIMIT_EXCEEDED".into(),
        target_arn: Some(TARGET.into()),
        first_seen: t,
        last_seen: t,
        count,
        rules: Default::default(),
        codes: Default::default(),
        sample_errors: vec![],
        http_statuses: Default::default(),
        conversations: 1,
        per_minute: [(t.div_euclid(60_000), count)].into(),
        report: None,
        replayed: 0,
        replays: Default::default(),
    }
}

#[tokio::test]
async fn a_table_that_fails_is_counted_not_raised() {
    let table = Arc::new(MemoryTable::new());
    table.fail(Some("ProvisionedThroughputExceededException"));
    let t = IncidentTracker::new(table, IncidentSettings::default());
    let tracked = t.observe(vec![seen(0, 1)], at(0), BUDGET).await;
    assert!(tracked.changes.is_empty());
    assert_eq!(tracked.failed.len(), 1);
    assert!(
        matches!(&tracked.failed[0], TableError::Call(c) if c.code() == Some("ProvisionedThroughputExceededException")),
        "{:?}",
        tracked.failed
    );
    assert!(
        tracked.failed[0]
            .to_string()
            .contains("ProvisionedThroughput")
    );
}

/// An item edited by hand while its episode was open: rewritten from the batch, on the
/// condition that it is still the item read, and no second `opened` is announced.
#[tokio::test]
async fn an_unreadable_open_item_is_rewritten_without_a_second_opened() {
    let table = Arc::new(MemoryTable::new());
    let t = IncidentTracker::new(table.clone(), IncidentSettings::default());
    let key = seen(0, 0).key;
    table.spoil(
        &key,
        ItemError::WrongType {
            attr: "count",
            expected: AttrType::Number,
        },
        Salvage {
            state: Some(State::Open),
            seq: 3,
            episode: 2,
            rev: Some(9),
        },
    );
    let tracked = t.observe(vec![seen(1, 4)], at(1), BUDGET).await;
    assert!(tracked.failed.is_empty(), "{:?}", tracked.failed);
    assert!(tracked.changes.is_empty(), "{:?}", tracked.changes);
    let Some(Stored::Item(item)) = table.get(&key).await.unwrap() else {
        panic!("not rewritten");
    };
    assert_eq!(
        (item.count, item.seq, item.episode, item.rev),
        (4, 3, 2, 10)
    );
    // A resolved one that cannot be read: a new episode, announced as rewritten.
    table.spoil(
        &key,
        ItemError::Missing { attr: "state" },
        Salvage {
            state: Some(State::Resolved),
            seq: 5,
            episode: 4,
            rev: None,
        },
    );
    let tracked = t.observe(vec![seen(2, 1)], at(2), BUDGET).await;
    assert_eq!(tracked.changes.len(), 1);
    assert!(tracked.changes[0].rewritten);
    assert_eq!(tracked.changes[0].transition, Transition::Reopened);
    assert_eq!(tracked.changes[0].episode, 6);
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
fn the_commands_window_keeps_the_last_failures_milliseconds() {
    let mut item = table::fresh(&seen(0, 1), 0, 1);
    item.last_seen += 250;
    let (summarize, _) = commands(&item, "s3://b/p/");
    assert!(
        summarize.contains("--since 2026-12-05T09:00:00Z"),
        "{summarize}"
    );
    assert!(
        summarize.contains("--until 2026-12-05T09:00:01Z"),
        "{summarize}"
    );
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

/// After a silence, of the held `updated` of an episode the pager knows only the latest is
/// put; an episode the silence held from opening to resolution is passed over whole; what
/// was made after the silence is never passed over.
#[test]
fn a_silence_passes_over_only_what_a_later_event_says() {
    let mut item = table::fresh(&seen(0, 1), 0, 1);
    let pending = |seq: u64, transition, episode, at| Pending {
        seq,
        transition,
        episode,
        at,
        since_last: 0,
        by_hand: false,
        rewritten: false,
    };
    item.silenced_until = Some(100);
    item.outbox = vec![
        pending(2, Transition::Updated, 1, 10),
        pending(3, Transition::Updated, 1, 20),
    ];
    assert_eq!(table::passed_over(&item), [2]);
    item.outbox.extend([
        pending(4, Transition::Resolved, 1, 30),
        pending(5, Transition::Reopened, 5, 40),
        pending(6, Transition::Resolved, 5, 50),
        pending(7, Transition::Reopened, 7, 150),
        pending(8, Transition::Resolved, 7, 160),
    ]);
    assert_eq!(table::passed_over(&item), [2, 3, 5, 6]);
}

/// A sweep's table work ends within its budget, however slow the table: the listings and
/// the resolutions share one end (inside the function's deadline), and what completed by
/// then is kept.
#[tokio::test(start_paused = true)]
async fn a_sweep_ends_within_its_budget_on_a_slow_table() {
    let table = Arc::new(MemoryTable::new());
    let t = IncidentTracker::new(table.clone(), IncidentSettings::default());
    let opened = t.observe(vec![seen(0, 1)], at(0), BUDGET).await;
    assert_eq!(opened.made, 1);
    let budget = std::time::Duration::from_secs(10);
    // Each call 4 s: both listings and the resolution's write fit in 10 s.
    table.slow(Some(std::time::Duration::from_secs(4)));
    let started = tokio::time::Instant::now();
    let swept = t.sweep(at(20), budget).await;
    assert!(started.elapsed() <= budget, "{:?}", started.elapsed());
    assert_eq!(
        (swept.made, swept.failed.len()),
        (1, 0),
        "{:?}",
        swept.failed
    );
    // Each call 7 s: the listings fit, the resolution does not; the sweep still ends on
    // time, and says what failed.
    let t = IncidentTracker::new(table.clone(), IncidentSettings::default());
    table.slow(None);
    t.observe(vec![seen(30, 1)], at(30), BUDGET).await;
    table.slow(Some(std::time::Duration::from_secs(7)));
    let started = tokio::time::Instant::now();
    let swept = t.sweep(at(60), budget).await;
    assert!(started.elapsed() <= budget, "{:?}", started.elapsed());
    assert_eq!(
        (swept.made, swept.failed.len()),
        (0, 1),
        "{:?}",
        swept.failed
    );
}

/// A replay that fails again is the same incident: it reopens the resolved one (no second
/// incident), and the event says a replay failed again and names it.
#[tokio::test]
async fn a_replay_that_fails_again_reopens_its_incident_and_says_so() {
    let table = Arc::new(MemoryTable::new());
    let t = IncidentTracker::new(table.clone(), IncidentSettings::default());
    t.observe(vec![seen(0, 5)], at(0), BUDGET).await;
    let swept = t.sweep(at(30), BUDGET).await;
    assert!(
        swept
            .changes
            .iter()
            .any(|c| c.transition == Transition::Resolved),
        "{:?}",
        swept.changes
    );
    let mut replayed = seen(40, 3);
    replayed.replayed = 3;
    replayed.replays = ["rcv-to-crm-1a2b3c4d-20261205T0850-20261205T0902".to_owned()].into();
    let tracked = t.observe(vec![replayed], at(40), BUDGET).await;
    let reopened: Vec<&Change> = tracked
        .changes
        .iter()
        .filter(|c| c.transition == Transition::Reopened)
        .collect();
    assert_eq!(reopened.len(), 1, "{:?}", tracked.changes);
    assert!(
        tracked
            .changes
            .iter()
            .all(|c| c.transition != Transition::Opened || c.seq == 1)
    );
    let change = reopened[0];
    assert_eq!(change.item.key, seen(0, 0).key);
    let ctx = EventContext {
        reports: Some("s3://b/genesys-dlq/".into()),
        region: "us-east-1".into(),
    };
    let body = detail(change, &ctx);
    assert_eq!(body["replayFailures"], 3);
    assert_eq!(
        body["replays"],
        serde_json::json!(["rcv-to-crm-1a2b3c4d-20261205T0850-20261205T0902"])
    );
    assert!(
        body["summary"].as_str().unwrap().contains(
            "a replay failed again: 3 of them from rcv-to-crm-1a2b3c4d-20261205T0850-20261205T0902"
        ),
        "{body}"
    );
    // Before the replay, the episode's events carried neither field.
    for c in &swept.changes {
        let d = detail(c, &ctx);
        assert!(d.get("replayFailures").is_none() && d.get("replays").is_none());
    }
}

#[test]
fn a_reports_replayed_records_are_counted_into_their_incidents_observation() {
    use crate::report::fixtures::{record, report_of};
    let mut replayed = record(
        "b",
        FailureCategory::RateLimitExceeded,
        Some(TARGET),
        Some("THROTTLING"),
        "2026-12-05T09:01:00Z",
    );
    replayed.replay_name = Some("rcv-x".into());
    let original = record(
        "a",
        FailureCategory::RateLimitExceeded,
        Some(TARGET),
        Some("THROTTLING"),
        "2026-12-05T09:00:00Z",
    );
    let seen = observations(&report_of(vec![original, replayed]), None, at(5));
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].count, seen[0].replayed), (2, 1));
    assert_eq!(seen[0].replays, ["rcv-x".to_owned()].into());
}

/// With no bucket known and no report of its own, an event's commands say `REPORTS` where
/// the reports are, never `s3:///…`, an address that leads nowhere; with one known, they
/// name it.
#[tokio::test]
async fn an_event_names_no_address_when_no_bucket_is_known() {
    let t = IncidentTracker::new(Arc::new(MemoryTable::new()), IncidentSettings::default());
    let tracked = t.observe(vec![seen(0, 2)], at(0), BUDGET).await;
    let opened = &tracked.changes[0];
    assert_eq!(opened.item.report, None);
    let unknown = EventContext {
        reports: None,
        region: "us-east-1".into(),
    };
    let body = detail(opened, &unknown);
    assert!(!body.to_string().contains("s3:"), "{body}");
    for (command, verb) in [("summarize", "summarize"), ("replay", "replay")] {
        let line = body["commands"][command].as_str().unwrap();
        assert!(
            line.starts_with(&format!("dlq-triage {verb} REPORTS --category ")),
            "{line}"
        );
    }
    let known = EventContext {
        reports: Some("s3://b/p/".into()),
        ..unknown
    };
    let line = detail(opened, &known)["commands"]["summarize"].clone();
    assert!(
        line.as_str()
            .unwrap()
            .starts_with("dlq-triage summarize s3://b/p/ --category "),
        "{line}"
    );
}
