//! The replay engine against a scripted courier (the HTTP, SQS, Lambda and EventBridge
//! paths are tested end to end in `tests/cli_replay.rs`).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::*;
use crate::reports::Location;

/// Answers each attempt from a script (the last answer repeats) and records bodies.
struct Scripted {
    answers: Mutex<Vec<Attempt>>,
    sent: Mutex<Vec<(Vec<u8>, tokio::time::Instant)>>,
}

impl Scripted {
    fn new(answers: Vec<Attempt>) -> Scripted {
        Scripted {
            answers: Mutex::new(answers),
            sent: Mutex::new(Vec::new()),
        }
    }

    fn bodies(&self) -> Vec<Vec<u8>> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(b, _)| b.clone())
            .collect()
    }
}

impl Courier for Scripted {
    async fn send(&self, delivery: &Delivery) -> Attempt {
        self.sent
            .lock()
            .unwrap()
            .push((delivery.body.clone(), tokio::time::Instant::now()));
        let mut answers = self.answers.lock().unwrap();
        if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0].clone()
        }
    }
}

fn ok() -> Attempt {
    Attempt::Delivered {
        http_status: Some(200),
    }
}

fn busy(after: Option<u64>) -> Attempt {
    Attempt::Retry {
        http_status: Some(429),
        error: "429".into(),
        after: after.map(Duration::from_secs),
    }
}

fn candidates(dir: &Path, n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let path = dir.join(format!("m{i}.json"));
            std::fs::write(&path, format!("{{\"n\":{i}}}")).unwrap();
            Candidate {
                message_id: format!("m{i}"),
                event_id: Some(format!("e{i}")),
                category: FailureCategory::RateLimitExceeded,
                rule_arn: None,
                target_arn: None,
                payload: Location::File(path),
            }
        })
        .collect()
}

fn to_url() -> FixedPlan {
    FixedPlan(Fixed::Url {
        url: "http://user:pw@127.0.0.1:9/hook".into(),
        method: "POST".into(),
        headers: vec![],
    })
}

fn execute() -> ReplayOptions {
    ReplayOptions {
        execute: true,
        rate: 1000.0,
        concurrency: 1,
        ..ReplayOptions::default()
    }
}

async fn go(
    records: &[Candidate],
    courier: &Scripted,
    journal: Option<&Mutex<Journal>>,
    opts: &ReplayOptions,
) -> ReplaySummary {
    let ports = Ports {
        reader: &Reader::local(),
        plan: &to_url(),
        courier,
        journal,
    };
    let control = Control {
        stop: &AtomicBool::new(false),
        progress: &|_| {},
    };
    replay(records, ports, opts, control).await
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_counts_what_it_would_send() {
    let dir = tempfile::tempdir().unwrap();
    let records = candidates(dir.path(), 3);
    let courier = Scripted::new(vec![ok()]);
    let summary = go(&records, &courier, None, &ReplayOptions::default()).await;
    assert!(courier.bodies().is_empty());
    assert_eq!(summary.sent, 3);
    let key = (
        FailureCategory::RateLimitExceeded,
        "url:http://***@127.0.0.1:9/hook".to_owned(),
    );
    assert_eq!(
        summary.by_route.get(&key),
        Some(&3),
        "{:?}",
        summary.by_route
    );
}

#[tokio::test]
async fn bodies_go_out_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let records = candidates(dir.path(), 2);
    let courier = Scripted::new(vec![ok()]);
    let summary = go(&records, &courier, None, &execute()).await;
    assert!(summary.complete(), "{summary:?}");
    let mut bodies = courier.bodies();
    bodies.sort();
    assert_eq!(bodies, vec![b"{\"n\":0}".to_vec(), b"{\"n\":1}".to_vec()]);
}

#[tokio::test(start_paused = true)]
async fn a_busy_answer_is_retried_after_its_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let records = candidates(dir.path(), 1);
    let courier = Scripted::new(vec![busy(Some(7)), ok()]);
    let summary = go(&records, &courier, None, &execute()).await;
    assert!(summary.complete(), "{summary:?}");
    assert_eq!((summary.attempts, summary.retries), (2, 1));
    let sent = courier.sent.lock().unwrap();
    assert!(sent[1].1 - sent[0].1 >= Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_the_run_waits_fails_the_record_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let records = candidates(dir.path(), 1);
    let courier = Scripted::new(vec![busy(Some(3600)), ok()]);
    let summary = go(&records, &courier, None, &execute()).await;
    assert_eq!(summary.failed.len(), 1);
    assert!(summary.failed[0].1.contains("3600"), "{summary:?}");
    assert_eq!(summary.attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_stops_a_run_against_a_destination_that_keeps_failing() {
    let dir = tempfile::tempdir().unwrap();
    let records = candidates(dir.path(), 20);
    let courier = Scripted::new(vec![Attempt::Retry {
        http_status: Some(500),
        error: "500".into(),
        after: None,
    }]);
    let opts = ReplayOptions {
        breaker: 5,
        max_attempts: 2,
        ..execute()
    };
    let summary = go(&records, &courier, None, &opts).await;
    assert_eq!(summary.attempts, 5, "{summary:?}");
    assert_eq!(summary.failed.len(), 3);
    assert_eq!(summary.not_attempted, 17);
    assert!(
        summary
            .stopped
            .as_deref()
            .unwrap()
            .contains("circuit breaker")
    );
    assert!(!summary.complete());
}

#[tokio::test(start_paused = true)]
async fn a_success_closes_the_count_of_failures_in_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let records = candidates(dir.path(), 6);
    let reject = Attempt::Rejected {
        http_status: Some(400),
        error: "400".into(),
    };
    let courier = Scripted::new(vec![
        reject.clone(),
        reject.clone(),
        ok(),
        reject.clone(),
        reject,
        ok(),
    ]);
    let opts = ReplayOptions {
        breaker: 3,
        ..execute()
    };
    let summary = go(&records, &courier, None, &opts).await;
    assert!(summary.stopped.is_none(), "{summary:?}");
    assert_eq!((summary.sent, summary.failed.len()), (2, 4));
}

#[tokio::test(start_paused = true)]
async fn the_rate_spaces_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let records = candidates(dir.path(), 5);
    let courier = Scripted::new(vec![ok()]);
    let opts = ReplayOptions {
        rate: 2.0,
        concurrency: 4,
        ..execute()
    };
    go(&records, &courier, None, &opts).await;
    let mut at: Vec<_> = courier.sent.lock().unwrap().iter().map(|s| s.1).collect();
    at.sort();
    for pair in at.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(500), "{at:?}");
    }
}

#[tokio::test]
async fn a_rerun_with_the_journal_sends_only_what_was_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let records = candidates(dir.path(), 3);
    let journal = Mutex::new(Journal::open(&dir.path().join("j.jsonl")).unwrap());
    let reject = Attempt::Rejected {
        http_status: Some(503),
        error: "down".into(),
    };
    // m1 fails the first time.
    let first = Scripted::new(vec![ok(), reject, ok()]);
    let summary = go(&records, &first, Some(&journal), &execute()).await;
    assert_eq!((summary.sent, summary.failed.len()), (2, 1));
    drop(journal);

    let journal = Mutex::new(Journal::open(&dir.path().join("j.jsonl")).unwrap());
    let second = Scripted::new(vec![ok()]);
    let summary = go(&records, &second, Some(&journal), &execute()).await;
    assert_eq!(second.bodies(), vec![b"{\"n\":1}".to_vec()]);
    assert_eq!((summary.sent, summary.sent_before), (1, 2));
    assert!(summary.complete());

    let forced = Scripted::new(vec![ok()]);
    let opts = ReplayOptions {
        force: true,
        ..execute()
    };
    go(&records, &forced, Some(&journal), &opts).await;
    assert_eq!(forced.bodies().len(), 3);
}

#[tokio::test]
async fn a_missing_payload_is_named_and_the_rest_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = candidates(dir.path(), 2);
    std::fs::remove_file(dir.path().join("m0.json")).unwrap();
    records[0].payload = Location::File(dir.path().join("m0.json"));
    let courier = Scripted::new(vec![ok()]);
    let summary = go(&records, &courier, None, &execute()).await;
    assert_eq!(summary.sent, 1);
    assert_eq!(summary.skipped.len(), 1);
    assert!(summary.skipped[0].1.contains("payload unreadable"));
    assert!(!summary.complete());
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
    let past = "Wed, 21 Oct 2015 07:28:00 GMT";
    assert_eq!(parse_retry_after(past), Some(Duration::ZERO));
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
    let d = parse_retry_after(&soon).unwrap();
    assert!(
        d > Duration::from_secs(25) && d <= Duration::from_secs(30),
        "{d:?}"
    );
    assert_eq!(parse_retry_after("soon"), None);
}

#[tokio::test]
async fn copies_of_one_event_are_sent_once_unless_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = candidates(dir.path(), 6);
    // m0, m2, m4 carry event e0; m1 and m3 carry e1; m5 has no event id.
    for (i, r) in records.iter_mut().enumerate() {
        r.event_id = match i {
            5 => None,
            i => Some(format!("e{}", i % 2)),
        };
    }
    let courier = Scripted::new(vec![ok()]);
    let summary = go(&records, &courier, None, &execute()).await;
    assert_eq!(summary.sent, 3, "e0, e1 and the record without an id");
    let mut copies: Vec<_> = summary
        .duplicates
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    copies.sort();
    assert_eq!(copies, ["m2", "m3", "m4"]);
    assert!(
        summary
            .duplicates
            .iter()
            .any(|(id, why)| id == "m4" && why == "duplicate of event e0 (sent as message m0)"),
        "{:?}",
        summary.duplicates
    );
    assert!(summary.complete(), "copies are not failures");

    let courier = Scripted::new(vec![ok()]);
    let every = ReplayOptions {
        per_message: true,
        ..execute()
    };
    let summary = go(&records, &courier, None, &every).await;
    assert_eq!((summary.sent, summary.duplicates.len()), (6, 0));
    assert_eq!(courier.bodies().len(), 6);
}

/// `--to-url`'s plan, whose authorization can be read afresh: the fresh delivery carries
/// `x-api-key: fresh`; counts how often it was asked.
struct Refreshing {
    inner: FixedPlan,
    asked: std::sync::atomic::AtomicUsize,
}

impl Plan for Refreshing {
    fn destination(&self, record: &Candidate) -> String {
        self.inner.destination(record)
    }

    async fn plan(&self, record: &Candidate, payload: Vec<u8>) -> Result<Planned, PlanError> {
        self.inner.plan(record, payload).await
    }

    async fn reauthorize(&self, _: &Candidate, delivery: &Delivery) -> Option<Delivery> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut fresh = delivery.clone();
        if let Route::Http { headers, .. } = &mut fresh.route {
            headers.push(("x-api-key".into(), "fresh".into()));
        }
        Some(fresh)
    }
}

async fn with_plan(records: &[Candidate], plan: &Refreshing, courier: &Scripted) -> ReplaySummary {
    let ports = Ports {
        reader: &Reader::local(),
        plan,
        courier,
        journal: None,
    };
    let control = Control {
        stop: &AtomicBool::new(false),
        progress: &|_| {},
    };
    replay(records, ports, &execute(), control).await
}

fn unauthorized(status: u16) -> Attempt {
    Attempt::Rejected {
        http_status: Some(status),
        error: format!("{status}"),
    }
}

/// A 401 or 407 is tried once more at once with the authorization read afresh (as
/// EventBridge does); a second one stands, and a plan with nothing to refresh keeps the
/// first.
#[tokio::test]
async fn an_unauthorized_answer_is_retried_once_with_fresh_authorization() {
    let dir = tempfile::tempdir().unwrap();
    let records = candidates(dir.path(), 1);
    let plan = Refreshing {
        inner: to_url(),
        asked: std::sync::atomic::AtomicUsize::new(0),
    };
    for status in [401, 407] {
        let courier = Scripted::new(vec![unauthorized(status), ok()]);
        let summary = with_plan(&records, &plan, &courier).await;
        assert!(summary.complete(), "{status}: {summary:?}");
        assert_eq!((summary.attempts, summary.retries), (2, 0), "{status}");
    }
    assert_eq!(plan.asked.load(std::sync::atomic::Ordering::SeqCst), 2);

    let courier = Scripted::new(vec![unauthorized(401)]);
    let summary = with_plan(&records, &plan, &courier).await;
    assert_eq!(summary.attempts, 2, "once more, not until max attempts");
    assert_eq!(summary.failed.len(), 1, "{summary:?}");

    let courier = Scripted::new(vec![unauthorized(401), ok()]);
    let summary = go(&records, &courier, None, &execute()).await;
    assert_eq!(
        (summary.attempts, summary.failed.len()),
        (1, 1),
        "nothing to refresh: the 401 stands"
    );
}
