//! The redrive's rules on the in-memory twins.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::engine::RunControl;
use super::journal::{MemoryJournal, RedriveJournal};
use super::ports::{Deliver, MemoryNotices, MemoryPayloads};
use super::*;
use crate::classify::FailureCategory;
use crate::health::MemoryHealth;
use crate::incidents::{IncidentItem, State};
use crate::replay::{Attempt, Candidate, Delivery, Route};
use crate::reports::Location;
use crate::summarize::{ApiDestinationHealth, Health};

const TARGET: &str = "arn:aws:events:eu-west-1:111122223333:api-destination/crm/0a1b";
const RULE: &str = "arn:aws:events:eu-west-1:111122223333:rule/crm-webhook";

/// Answers 429 for the ids in `failing` (every id while `down`), else delivers; records
/// every send's idempotency header and when it was sent.
#[derive(Default)]
struct Endpoint {
    down: Mutex<bool>,
    /// A `Retry-After` the failures carry.
    retry_after: Mutex<Option<std::time::Duration>>,
    failing: Mutex<BTreeSet<String>>,
    received: Mutex<Vec<(String, tokio::time::Instant)>>,
}

impl Endpoint {
    fn ids(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(i, _)| i.clone())
            .collect()
    }
}

impl Deliver for Endpoint {
    fn plan<'a>(
        &'a self,
        _: &'a Candidate,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<Delivery, crate::replay::PlanError>> {
        Box::pin(async move {
            Ok(Delivery {
                body: payload,
                route: Route::Http {
                    url: "http://127.0.0.1:1/hook".to_owned(),
                    method: "POST".to_owned(),
                    headers: vec![("x-api-key".to_owned(), "k".to_owned())],
                },
            })
        })
    }

    fn send<'a>(&'a self, d: &'a Delivery) -> BoxFuture<'a, Attempt> {
        let Route::Http { headers, .. } = &d.route else {
            unreachable!("HTTP only")
        };
        let id = headers
            .iter()
            .find(|(n, _)| n == ID_HEADER)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        self.received
            .lock()
            .unwrap()
            .push((id.clone(), tokio::time::Instant::now()));
        let fail = *self.down.lock().unwrap() || self.failing.lock().unwrap().contains(&id);
        let after = *self.retry_after.lock().unwrap();
        Box::pin(async move {
            if fail {
                Attempt::Retry {
                    http_status: Some(429),
                    error: "Too Many Requests".to_owned(),
                    after,
                }
            } else {
                Attempt::Delivered {
                    http_status: Some(200),
                }
            }
        })
    }

    fn forget_auth<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// The tests' clock: a fixed time, which [`rig`] gives the engine too (it tells an event's
/// age and a paused run's expiry by its own clock).
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-07T04:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn item(category: FailureCategory, count: u64) -> IncidentItem {
    let first = now() - chrono::Duration::hours(1);
    IncidentItem {
        key: crate::incidents::incident_key(category, Some(TARGET)),
        state: State::Resolved,
        category: category.as_str().to_owned(),
        target_arn: Some(TARGET.to_owned()),
        first_seen: first.timestamp_millis(),
        last_seen: (first + chrono::Duration::minutes(40)).timestamp_millis(),
        last_counted: first.timestamp_millis(),
        count,
        announced_count: count,
        rules: BTreeSet::from([RULE.to_owned()]),
        codes: BTreeSet::new(),
        sample_errors: Vec::new(),
        http_statuses: Default::default(),
        conversations: 0,
        per_minute: BTreeMap::new(),
        per_hour: BTreeMap::new(),
        peak_per_minute: 0,
        report: None,
        seq: 2,
        episode: 1,
        announced_seq: 2,
        outbox: Vec::new(),
        last_announced: first.timestamp_millis(),
        resolved_at: Some((now() - chrono::Duration::minutes(5)).timestamp_millis()),
        resolved_cutoff: None,
        resolved_by_hand: false,
        expires_at: None,
        acknowledged_at: None,
        silenced_until: None,
        rev: 3,
        replayed: 0,
        replays: BTreeSet::new(),
    }
}

/// `n` events of `category`, one dead letter each, their `time` `age` before now.
fn payloads(category: FailureCategory, n: usize, age: chrono::Duration) -> MemoryPayloads {
    let mut p = MemoryPayloads::default();
    let time = (now() - age).to_rfc3339();
    for i in 0..n {
        let id = format!("ev-{i:04}");
        p.records.push(Candidate {
            message_id: format!("m-{i}"),
            event_id: Some(id.clone()),
            category,
            rule_arn: Some(RULE.to_owned()),
            target_arn: Some(TARGET.to_owned()),
            payload: Location::File(format!("{id}.json").into()),
        });
        let body = serde_json::json!({"id": id, "time": time, "detail": {}});
        p.payloads
            .insert(format!("m-{i}"), body.to_string().into_bytes());
    }
    p
}

fn healthy(limit: u32) -> MemoryHealth {
    MemoryHealth::answering(Health {
        api_destinations: vec![ApiDestinationHealth {
            arn: TARGET.to_owned(),
            name: "crm".to_owned(),
            invocation_rate_limit_per_second: Some(limit),
            connection_state: Some("AUTHORIZED".to_owned()),
            ..ApiDestinationHealth::default()
        }],
        ..Health::default()
    })
}

struct Rig {
    redriver: Redriver,
    journal: Arc<MemoryJournal>,
    endpoint: Arc<Endpoint>,
    notices: Arc<MemoryNotices>,
}

fn rig(p: MemoryPayloads, health: MemoryHealth) -> Rig {
    let journal = Arc::new(MemoryJournal::new());
    let endpoint = Arc::new(Endpoint::default());
    let notices = Arc::new(MemoryNotices::default());
    let policy = RedrivePolicy {
        mode: RedriveMode::Auto,
        ..RedrivePolicy::default()
    };
    let redriver = Redriver::new(
        policy,
        journal.clone(),
        Arc::new(p),
        endpoint.clone(),
        Some(notices.clone()),
        Arc::new(health),
    );
    redriver.set_clock(Arc::new(now));
    Rig {
        redriver,
        journal,
        endpoint,
        notices,
    }
}

fn far() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(3600)
}

fn phases(n: &MemoryNotices) -> Vec<String> {
    n.put
        .lock()
        .unwrap()
        .iter()
        .map(|d| d["phase"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_resolved_rate_limited_incident_is_redriven_once_per_event_at_half_the_limit() {
    let r = rig(
        payloads(
            FailureCategory::RateLimitExceeded,
            500,
            chrono::Duration::hours(1),
        ),
        healthy(20),
    );
    let i = item(FailureCategory::RateLimitExceeded, 500);
    assert_eq!(
        r.redriver
            .consider(std::slice::from_ref(&i), now())
            .await
            .started,
        1
    );
    let worked = r.redriver.work(far()).await;
    assert_eq!((worked.sent, worked.finished), (500, 1));
    let ids = r.endpoint.ids();
    assert_eq!(ids.len(), 500);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        500,
        "each event once"
    );
    let times: Vec<_> = r
        .endpoint
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| *t)
        .collect();
    let span = times[499] - times[0];
    // 499 intervals at 10/s (half of 20): no faster than the share.
    assert!(span >= std::time::Duration::from_millis(49_900), "{span:?}");
    assert_eq!(phases(&r.notices), ["started", "finished"]);
    let done = r.notices.put.lock().unwrap()[1].clone();
    assert_eq!(
        (done["sent"].as_u64(), done["gaveUp"].as_u64()),
        (Some(500), Some(0))
    );
    assert_eq!(done["ratePerSecond"].as_f64(), Some(10.0));
    // Two journal calls per event, and a checkpoint per 25 events.
    let per_event = r.journal.calls() as f64 / 500.0;
    assert!(per_event < 2.2, "{per_event}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_canary_pauses_the_run_before_anything_else_is_sent() {
    let r = rig(
        payloads(
            FailureCategory::RateLimitExceeded,
            50,
            chrono::Duration::hours(1),
        ),
        healthy(20),
    );
    *r.endpoint.down.lock().unwrap() = true;
    r.redriver
        .consider(&[item(FailureCategory::RateLimitExceeded, 50)], now())
        .await;
    let worked = r.redriver.work(far()).await;
    assert_eq!((worked.sent, worked.paused), (0, 1));
    assert_eq!(r.endpoint.ids().len(), 1, "the canary alone");
    assert_eq!(phases(&r.notices), ["started", "paused"]);
    let paused = r.notices.put.lock().unwrap()[1].clone();
    assert!(
        paused["why"].as_str().unwrap().contains("canary"),
        "{paused}"
    );
    // Resolved again after the pause: it resumes with a new canary and ends.
    *r.endpoint.down.lock().unwrap() = false;
    let mut again = item(FailureCategory::RateLimitExceeded, 50);
    again.resolved_at = Some(now().timestamp_millis() + 1);
    assert_eq!(r.redriver.consider(&[again], now()).await.started, 1);
    assert_eq!(r.redriver.work(far()).await.sent, 50);
}

#[tokio::test(start_paused = true)]
async fn three_workers_at_once_send_each_event_once() {
    let r = Arc::new(rig(
        payloads(
            FailureCategory::EndpointUnreachable,
            200,
            chrono::Duration::hours(1),
        ),
        healthy(100),
    ));
    let i = item(FailureCategory::EndpointUnreachable, 200);
    let starts = (0..3).map(|_| {
        let r = r.clone();
        let i = i.clone();
        async move { r.redriver.consider(&[i], now()).await }
    });
    let considered = futures::future::join_all(starts).await;
    let started: usize = considered.iter().map(|w| w.started).sum();
    assert_eq!(started, 1, "one run");
    // The sweeps that lost the race to begin it report no error (`redrive run` exits 0).
    assert_eq!(considered.iter().map(|w| w.errors).sum::<usize>(), 0);
    let works = (0..3).map(|_| {
        let r = r.clone();
        async move { r.redriver.work(far()).await }
    });
    futures::future::join_all(works).await;
    let ids = r.endpoint.ids();
    assert_eq!(ids.len(), 200);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 200);
}

#[tokio::test(start_paused = true)]
async fn events_that_keep_failing_are_tried_three_times_then_given_up() {
    let r = rig(
        payloads(FailureCategory::TargetError, 20, chrono::Duration::hours(1)),
        healthy(20),
    );
    r.endpoint
        .failing
        .lock()
        .unwrap()
        .extend(["ev-0005".to_owned(), "ev-0009".to_owned()]);
    r.redriver
        .consider(&[item(FailureCategory::TargetError, 20)], now())
        .await;
    r.redriver.work(far()).await;
    let ids = r.endpoint.ids();
    assert_eq!(ids.iter().filter(|i| *i == "ev-0005").count(), 3);
    assert_eq!(ids.len(), 18 + 2 * 3);
    let done = r.notices.put.lock().unwrap().last().cloned().unwrap();
    assert_eq!(done["phase"], "finished");
    assert_eq!(
        (
            done["sent"].as_u64(),
            done["failedAgain"].as_u64(),
            done["gaveUp"].as_u64()
        ),
        (Some(18), Some(2), Some(2))
    );
}

#[tokio::test(start_paused = true)]
async fn a_permissions_incident_is_never_redriven_by_itself() {
    let r = rig(
        payloads(
            FailureCategory::PermissionDenied,
            5,
            chrono::Duration::hours(1),
        ),
        healthy(20),
    );
    let i = item(FailureCategory::PermissionDenied, 5);
    assert_eq!(
        r.redriver
            .consider(std::slice::from_ref(&i), now())
            .await
            .started,
        0
    );
    r.redriver.work(far()).await;
    assert!(r.endpoint.ids().is_empty());
    // A person who fixed it may start it.
    r.redriver.start(&i, now()).await.unwrap();
    assert_eq!(r.redriver.work(far()).await.sent, 5);
}

#[tokio::test(start_paused = true)]
async fn events_older_than_the_maximum_age_are_skipped_and_counted() {
    let mut p = payloads(
        FailureCategory::RateLimitExceeded,
        10,
        chrono::Duration::hours(30),
    );
    let young = payloads(
        FailureCategory::RateLimitExceeded,
        14,
        chrono::Duration::hours(1),
    );
    for (c, (m, body)) in young.records.into_iter().zip(young.payloads).skip(10) {
        let _ = m;
        p.payloads
            .insert(c.message_id.clone(), young_body(&c, body));
        p.records.push(c);
    }
    let r = rig(p, healthy(20));
    r.redriver
        .consider(&[item(FailureCategory::RateLimitExceeded, 14)], now())
        .await;
    r.redriver.work(far()).await;
    let done = r.notices.put.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (done["sent"].as_u64(), done["skippedTooOld"].as_u64()),
        (Some(4), Some(10)),
        "{done}"
    );
}

fn young_body(c: &Candidate, _: Vec<u8>) -> Vec<u8> {
    let time = (now() - chrono::Duration::hours(1)).to_rfc3339();
    serde_json::json!({"id": c.event_id, "time": time})
        .to_string()
        .into_bytes()
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_target_or_a_deauthorized_connection_keeps_the_gate_shut() {
    let mut deauthorized = healthy(20);
    deauthorized = {
        let _ = deauthorized;
        MemoryHealth::answering(Health {
            api_destinations: vec![ApiDestinationHealth {
                arn: TARGET.to_owned(),
                connection_state: Some("DEAUTHORIZED".to_owned()),
                ..ApiDestinationHealth::default()
            }],
            ..Health::default()
        })
    };
    let r = rig(
        payloads(
            FailureCategory::RateLimitExceeded,
            5,
            chrono::Duration::hours(1),
        ),
        deauthorized,
    );
    let i = item(FailureCategory::RateLimitExceeded, 5);
    assert_eq!(
        r.redriver
            .consider(std::slice::from_ref(&i), now())
            .await
            .started,
        0
    );
    // It waits, paused, in the active set: each sweep asks the gate again.
    let run = r.journal.run(&i.key).await.unwrap().unwrap();
    assert!(run.waiting && run.why.unwrap().contains("DEAUTHORIZED"));
    assert!(r.journal.active().await.unwrap().contains(&i.key));
    assert_eq!(r.redriver.work(far()).await.sent, 0);
    assert!(r.endpoint.ids().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_slice_ends_before_the_deadline_and_the_next_goes_on_where_it_stopped() {
    let r = rig(
        payloads(
            FailureCategory::RateLimitExceeded,
            100,
            chrono::Duration::hours(1),
        ),
        healthy(20),
    );
    r.redriver
        .consider(&[item(FailureCategory::RateLimitExceeded, 100)], now())
        .await;
    // 10/s and 5 s of margin: a 9 s slice sends the canary and a few more.
    let first = r
        .redriver
        .work(tokio::time::Instant::now() + std::time::Duration::from_secs(9))
        .await;
    assert!(first.sent > 0 && first.sent < 100, "{first:?}");
    let mut total = first.sent;
    for _ in 0..20 {
        total += r
            .redriver
            .work(tokio::time::Instant::now() + std::time::Duration::from_secs(9))
            .await
            .sent;
    }
    assert_eq!(total, 100);
    assert_eq!(r.endpoint.ids().iter().collect::<BTreeSet<_>>().len(), 100);
    assert_eq!(r.endpoint.ids().len(), 100);
}

#[tokio::test(start_paused = true)]
async fn a_person_pauses_resumes_and_cancels() {
    let r = rig(
        payloads(
            FailureCategory::RateLimitExceeded,
            5,
            chrono::Duration::hours(1),
        ),
        healthy(20),
    );
    let i = item(FailureCategory::RateLimitExceeded, 5);
    r.redriver.consider(std::slice::from_ref(&i), now()).await;
    let paused = r
        .redriver
        .control(&i.key, RunControl::Pause, now())
        .await
        .unwrap();
    assert!(paused.held);
    assert_eq!(r.redriver.work(far()).await.sent, 0);
    // Held by a person: a new resolution does not resume it.
    assert_eq!(
        r.redriver
            .consider(std::slice::from_ref(&i), now() + chrono::Duration::hours(1))
            .await
            .started,
        0
    );
    r.redriver
        .control(&i.key, RunControl::Resume, now())
        .await
        .unwrap();
    r.redriver
        .control(&i.key, RunControl::Cancel, now())
        .await
        .unwrap();
    assert_eq!(r.redriver.work(far()).await.sent, 0);
    assert!(
        r.redriver
            .control(&i.key, RunControl::Resume, now())
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn five_failures_in_a_row_after_the_canary_pause_the_run_and_say_why() {
    let r = rig(
        payloads(FailureCategory::TargetError, 30, chrono::Duration::hours(1)),
        healthy(20),
    );
    r.endpoint
        .failing
        .lock()
        .unwrap()
        .extend((1..30).map(|i| format!("ev-{i:04}")));
    r.redriver
        .consider(&[item(FailureCategory::TargetError, 30)], now())
        .await;
    let worked = r.redriver.work(far()).await;
    assert_eq!((worked.sent, worked.paused), (1, 1));
    assert_eq!(r.endpoint.ids().len(), 6, "the canary, then five failures");
    let paused = r.notices.put.lock().unwrap().last().cloned().unwrap();
    assert_eq!(paused["phase"], "paused");
    assert!(
        paused["why"].as_str().unwrap().contains("5 times in a row"),
        "{paused}"
    );
    // Paused: later slices send nothing until it resumes.
    assert_eq!(r.redriver.work(far()).await.sent, 0);
    assert_eq!(r.endpoint.ids().len(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_long_run_says_how_far_it_got_at_most_every_quarter_hour() {
    let r = rig(
        payloads(
            FailureCategory::RateLimitExceeded,
            100,
            chrono::Duration::hours(1),
        ),
        healthy(20),
    );
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(now().timestamp_millis()));
    let c = clock.clone();
    r.redriver.set_clock(Arc::new(move || {
        DateTime::from_timestamp_millis(c.load(std::sync::atomic::Ordering::SeqCst)).unwrap()
    }));
    r.redriver
        .consider(&[item(FailureCategory::RateLimitExceeded, 100)], now())
        .await;
    // Slices of about 20 events, ten minutes apart: the third is past the quarter hour
    // (a progress event), the fourth only ten minutes after it (none).
    for _ in 0..4 {
        r.redriver
            .work(tokio::time::Instant::now() + std::time::Duration::from_secs(7))
            .await;
        clock.fetch_add(10 * 60_000, std::sync::atomic::Ordering::SeqCst);
    }
    let seen = phases(&r.notices);
    assert_eq!(
        seen.iter().filter(|p| *p == "progress").count(),
        1,
        "{seen:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_waiting_for_the_gate_gives_up_after_the_maximum_age_and_says_so() {
    let shut = MemoryHealth::answering(Health {
        api_destinations: vec![ApiDestinationHealth {
            arn: TARGET.to_owned(),
            connection_state: Some("DEAUTHORIZED".to_owned()),
            ..ApiDestinationHealth::default()
        }],
        ..Health::default()
    });
    let r = rig(
        payloads(
            FailureCategory::RateLimitExceeded,
            5,
            chrono::Duration::hours(1),
        ),
        shut,
    );
    let i = item(FailureCategory::RateLimitExceeded, 5);
    r.redriver.consider(std::slice::from_ref(&i), now()).await;
    assert!(r.journal.active().await.unwrap().contains(&i.key));
    // Within the maximum age of the last failure: it still waits.
    let within =
        DateTime::from_timestamp_millis(i.last_seen).unwrap() + chrono::Duration::hours(23);
    r.redriver.set_clock(Arc::new(move || within));
    assert_eq!(r.redriver.work(far()).await.finished, 0);
    assert!(r.journal.run(&i.key).await.unwrap().unwrap().waiting);
    // Past it: the run ends, leaves the active set, and the finished event says why.
    let past = DateTime::from_timestamp_millis(i.last_seen).unwrap() + chrono::Duration::hours(25);
    r.redriver.set_clock(Arc::new(move || past));
    assert_eq!(r.redriver.work(far()).await.finished, 1);
    let run = r.journal.run(&i.key).await.unwrap().unwrap();
    assert_eq!(run.state(), super::journal::RunState::Finished);
    let why = run.why.unwrap();
    assert!(
        why.contains("REDRIVE_MAX_AGE_HOURS") && why.contains("DEAUTHORIZED"),
        "{why}"
    );
    assert!(!r.journal.active().await.unwrap().contains(&i.key));
    let last = r.notices.put.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last["phase"], "finished");
    assert!(last["why"].as_str().unwrap().contains("gave up"));
    assert!(r.endpoint.ids().is_empty());
}

/// The breaker paused the run; the target failed live traffic too, so the incident
/// reopened (a new episode) and resolved again: the new episode's run takes over the
/// paused one's window and sends what is left, each event once, and the events that
/// failed before are not held against the target as failures of now.
#[tokio::test(start_paused = true)]
async fn a_run_paused_by_the_breaker_goes_on_after_the_incident_reopens_and_resolves() {
    let r = rig(
        payloads(FailureCategory::TargetError, 30, chrono::Duration::hours(1)),
        healthy(20),
    );
    r.endpoint
        .failing
        .lock()
        .unwrap()
        .extend((1..30).map(|i| format!("ev-{i:04}")));
    let first = item(FailureCategory::TargetError, 30);
    r.redriver
        .consider(std::slice::from_ref(&first), now())
        .await;
    assert_eq!(r.redriver.work(far()).await.paused, 1);
    // Reopened and resolved again: episode 2, a later window.
    let mut second = first.clone();
    second.episode = 9;
    second.seq = 9;
    second.first_seen = first.last_seen + 600_000;
    second.last_seen = first.last_seen + 1_200_000;
    let later = now() + chrono::Duration::minutes(30);
    second.resolved_at = Some((later - chrono::Duration::minutes(5)).timestamp_millis());
    r.endpoint.failing.lock().unwrap().clear();
    assert_eq!(
        r.redriver
            .consider(std::slice::from_ref(&second), later)
            .await
            .started,
        1
    );
    let run = r.journal.run(&first.key).await.unwrap().unwrap();
    assert_eq!(
        (run.episode, run.since),
        (9, first.first_seen),
        "the window carried"
    );
    r.redriver.work(far()).await;
    let run = r.journal.run(&first.key).await.unwrap().unwrap();
    assert_eq!(run.state(), super::journal::RunState::Finished, "{run:?}");
    assert_eq!((run.sent, run.gave_up), (30, 0));
    let ids = r.endpoint.ids();
    let distinct: BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 30);
    // The canary once, five failures, then each of the 29 once more at most.
    assert!(ids.len() <= 1 + 5 + 29, "{}", ids.len());
}

/// The bus refused the `finished` event: the run owes it, stays in the active set, and the
/// next slice puts it (once) and lets the run go.
#[tokio::test(start_paused = true)]
async fn a_finished_event_the_bus_refused_is_put_by_the_next_slice() {
    use std::sync::atomic::Ordering;
    let r = rig(
        payloads(
            FailureCategory::RateLimitExceeded,
            5,
            chrono::Duration::hours(1),
        ),
        healthy(20),
    );
    let i = item(FailureCategory::RateLimitExceeded, 5);
    r.redriver.consider(std::slice::from_ref(&i), now()).await;
    r.notices.refuse.store(true, Ordering::Relaxed);
    assert_eq!(r.redriver.work(far()).await.sent, 5);
    let run = r.journal.run(&i.key).await.unwrap().unwrap();
    assert_eq!(run.unannounced.as_deref(), Some("finished"));
    assert!(r.journal.active().await.unwrap().contains(&i.key));
    assert_eq!(phases(&r.notices), ["started"]);
    // Still refused: still owed, nothing sent again.
    r.redriver.work(far()).await;
    assert_eq!(phases(&r.notices), ["started"]);
    r.notices.refuse.store(false, Ordering::Relaxed);
    r.redriver.work(far()).await;
    assert_eq!(phases(&r.notices), ["started", "finished"]);
    let finished = r.notices.put.lock().unwrap().last().cloned().unwrap();
    assert_eq!(finished["sent"], 5);
    assert!(
        r.journal
            .run(&i.key)
            .await
            .unwrap()
            .unwrap()
            .unannounced
            .is_none()
    );
    assert!(r.journal.active().await.unwrap().is_empty());
    r.redriver.work(far()).await;
    assert_eq!(phases(&r.notices), ["started", "finished"]);
    assert_eq!(r.endpoint.ids().len(), 5);
}

/// Two incidents of one API destination (its 429s and its 5xx) resolve together: two
/// workers at once send both runs, but one run at a time per target, so the target sees no
/// more than the share of its limit in all.
#[tokio::test(start_paused = true)]
async fn two_runs_of_one_target_do_not_add_their_paces_up() {
    let mut p = payloads(
        FailureCategory::RateLimitExceeded,
        40,
        chrono::Duration::hours(1),
    );
    let other = payloads(FailureCategory::TargetError, 40, chrono::Duration::hours(1));
    for mut c in other.records {
        let body = other.payloads[&c.message_id].clone();
        c.message_id = format!("x{}", c.message_id);
        c.event_id = c.event_id.map(|id| format!("x{id}"));
        p.payloads.insert(c.message_id.clone(), body);
        p.records.push(c);
    }
    let r = Arc::new(rig(p, healthy(20)));
    let items = [
        item(FailureCategory::RateLimitExceeded, 40),
        item(FailureCategory::TargetError, 40),
    ];
    assert_eq!(r.redriver.consider(&items, now()).await.started, 2);
    let works = (0..2).map(|_| {
        let r = r.clone();
        async move { r.redriver.work(far()).await }
    });
    futures::future::join_all(works).await;
    // Whatever the first slices left, the next ones finish it.
    r.redriver.work(far()).await;
    let received = r.endpoint.received.lock().unwrap().clone();
    assert_eq!(received.len(), 80);
    let span = received[79].1 - received[0].1;
    // One run after the other, each at 10/s (half of 20): 2 × 39 intervals, where two
    // runs at once would take half that.
    assert!(span >= std::time::Duration::from_millis(7_800), "{span:?}");
}

/// A 429 with `Retry-After: 5`: the next send waits the five seconds, not the pace's 100 ms.
#[tokio::test(start_paused = true)]
async fn a_retry_after_holds_the_next_send_back() {
    let r = rig(
        payloads(
            FailureCategory::RateLimitExceeded,
            10,
            chrono::Duration::hours(1),
        ),
        healthy(20),
    );
    r.endpoint
        .failing
        .lock()
        .unwrap()
        .insert("ev-0003".to_owned());
    *r.endpoint.retry_after.lock().unwrap() = Some(std::time::Duration::from_secs(5));
    let i = item(FailureCategory::RateLimitExceeded, 10);
    r.redriver.consider(std::slice::from_ref(&i), now()).await;
    r.redriver.work(far()).await;
    let received = r.endpoint.received.lock().unwrap().clone();
    let at = |id: &str| received.iter().find(|(i, _)| i == id).unwrap().1;
    assert!(
        at("ev-0004") - at("ev-0003") >= std::time::Duration::from_secs(5),
        "{:?}",
        at("ev-0004") - at("ev-0003")
    );
    assert!(at("ev-0003") - at("ev-0002") < std::time::Duration::from_millis(200));
}

/// The journal's and the payloads' failures say their cause once, printed with their
/// causes or not.
#[test]
fn a_journal_or_payloads_failure_says_its_cause_once() {
    use super::engine::RedriveError;
    use super::journal::JournalError;
    use super::ports::PayloadsError;
    let timed_out = crate::aws_error::AwsError::TimedOut {
        action: "dynamodb:GetItem".into(),
        after: std::time::Duration::from_secs(5),
    };
    let not_json = || serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err();
    let not_a_report = || PayloadsError::NotAReport {
        location: Location::File("r.json".into()),
        error: not_json(),
    };
    let errors: [Box<dyn std::error::Error>; 4] = [
        Box::new(JournalError::from(timed_out)),
        Box::new(JournalError::Serialize(not_json())),
        Box::new(not_a_report()),
        Box::new(RedriveError::Payloads(not_a_report())),
    ];
    for e in errors {
        assert_eq!(
            crate::aws_error::said_twice(e.as_ref()),
            Vec::<String>::new(),
            "{e}"
        );
    }
}
