//! The redrive on real components: the function's handler with S3, EventBridge (an API
//! destination whose connection holds an API key, and its secret) and Secrets Manager on
//! moto, DynamoDB on dynalite (which serialises conditional writes as DynamoDB does, behind
//! the proxy that keeps DynamoDB's limits), CloudWatch through its stand-in, and the CRM
//! endpoint as a local HTTP sink that answers 429 until it is switched healthy.
//!
//! `REDRIVE_BIG_N`, `REDRIVE_BIG_RATE` and `REDRIVE_BIG_SLICE` (seconds per invocation)
//! size the long test (default 400 events at 20/s in invocations of 15 s; the issue's
//! figure is 5,000 at 10/s, about 8 minutes).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use dlq_triage_test_support as support;
use genesys_dlq_triage::Handler;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use support::cli::{output, text};
use support::sink::{Answer, Sink};
use support::world::{Clock, DeadLetters, World, clock_at};

const BUCKET: &str = "triage-reports";
const BUS: &str = "triage-notices";
const TABLE: &str = "incidents";
/// The connection's API key (moto keeps it in the connection's secret).
const KEY_NAME: &str = "x-api-key";
const KEY_VALUE: &str = "not-a-secret";

/// The function's world (moto, dynalite, CloudWatch's stand-in, the bucket, the bus, the
/// table and a queue receiving the tool's redrive events), the CRM endpoint, its API
/// destination and the rule sending to it.
struct Redrive {
    world: World,
    sink: Sink,
    api: String,
    rule: String,
}

impl Redrive {
    /// The services, an API destination at `limit` per second to the sink (answering
    /// 429), its rule, and a queue receiving the tool's redrive events.
    async fn start(limit: i32) -> Redrive {
        let world = World::builder()
            .incident_table(TABLE)
            .cloudwatch()
            .bucket(BUCKET)
            .bus(BUS)
            .channel(
                "redrive-channel",
                "redrives-to-the-channel",
                "DLQ Triage Redrive",
            )
            .build()
            .await;
        let sink = Sink::start(Answer::Status(429)).await;
        let connection = support::moto::api_key_connection(&world.events(), "crm").await;
        let endpoint = format!("{}/hook", sink.url);
        let api = world
            .api_destination("crm-webhook", &connection, &endpoint, limit)
            .await;
        let pattern = r#"{"source":[{"prefix":"aws.partner/"}]}"#;
        let rule = world.route(None, "to-crm", pattern, ("crm", &api)).await;
        Redrive {
            world,
            sink,
            api,
            rule,
        }
    }

    /// A function container with the redrive on, telling the time by `clock`.
    fn handler(&self, clock: &Clock, vars: &[(&str, &str)]) -> Handler {
        let vars: Vec<(&str, &str)> = [("REDRIVE", "auto")]
            .into_iter()
            .chain(vars.iter().copied())
            .collect();
        self.world.handler(clock, &vars)
    }

    /// `n` dead letters of events `{tag}-{i}`, failed at `at` with `error` (code,
    /// message), each event's own `time` `age` before `at`.
    fn batch(
        &self,
        tag: &str,
        n: usize,
        at: DateTime<Utc>,
        error: (&str, &str),
        age: chrono::Duration,
    ) -> SqsEvent {
        let time = (at - age).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        DeadLetters::new(n, at, |i| format!("m-{tag}-{i}"))
            .events(|i, event| {
                event["time"] = json!(time);
                event["id"] = json!(format!("{tag}-{i:05}"));
            })
            .attribute("RULE_ARN", &self.rule)
            .attribute("TARGET_ARN", &self.api)
            .attribute("ERROR_CODE", error.0)
            .attribute("ERROR_MESSAGE", error.1)
            .event()
    }

    /// The redrive events so far.
    async fn redrive_events(&self) -> Vec<Value> {
        let mut all: Vec<Value> = self
            .world
            .channel_events()
            .await
            .iter()
            .map(|e| e["detail"].clone())
            .collect();
        all.sort_by_key(|d| d["done"].as_u64());
        all
    }

    /// The event journal: event id → (attempts, sent).
    async fn journal(&self) -> BTreeMap<String, (u64, bool)> {
        let dynamodb = self.world.dynamodb();
        let prefix = format!("redrive#{}#", self.api);
        let mut pages = dynamodb.scan().table_name(TABLE).into_paginator().send();
        let mut found = BTreeMap::new();
        while let Some(page) = pages.next().await {
            for item in page.unwrap().items() {
                let Some(AttributeValue::S(key)) = item.get("incidentKey") else {
                    continue;
                };
                let Some(id) = key.strip_prefix(&prefix) else {
                    continue;
                };
                let attempts = item["attempts"].as_n().unwrap().parse().unwrap();
                found.insert(id.to_owned(), (attempts, item.contains_key("sentAt")));
            }
        }
        found
    }
}

const THROTTLED: (&str, &str) = (
    "SDK_CLIENT_ERROR",
    "Unable to invoke ApiDestination endpoint: The endpoint responded with a 429 Too Many Requests.",
);
const DENIED: (&str, &str) = (
    "NO_PERMISSIONS",
    "EventBridge is not authorized to invoke the API destination.",
);

/// The function's logs in the test's output (shown when a test fails).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("genesys_dlq_triage=info")
        .with_test_writer()
        .try_init();
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

async fn invoke(h: &Handler, event: SqsEvent) {
    let answer = h
        .handle(LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert!(
        serde_json::to_value(answer).unwrap()["batchItemFailures"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// One scheduled invocation with `seconds` to its deadline.
async fn sweep(h: &Handler, seconds: u64) {
    h.sweep(Some(
        tokio::time::Instant::now() + Duration::from_secs(seconds),
    ))
    .await;
}

fn ids(sink: &Sink) -> Vec<String> {
    sink.received()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limited_incident_is_redriven_after_it_resolves_at_half_the_limit() {
    logs();
    let w = Redrive::start(20).await;
    let t0 = Utc::now() - minutes(40);
    let clock = clock_at(t0);
    let h = w.handler(&clock, &[]);
    invoke(&h, w.batch("ev", 500, t0, THROTTLED, minutes(1))).await;
    // Quiet for 20 minutes: the sweep resolves it; the endpoint still answers 429, so the
    // canary fails and the run pauses with nothing else sent.
    clock.store((t0 + minutes(20)).timestamp_millis(), Ordering::SeqCst);
    sweep(&h, 30).await;
    assert_eq!(w.sink.received().len(), 1, "the canary alone");
    let events = w.redrive_events().await;
    let phases: Vec<&str> = events
        .iter()
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["started", "paused"], "{events:?}");
    assert!(
        events[1]["why"].as_str().unwrap().contains("canary"),
        "{}",
        events[1]
    );
    assert!(
        events[0]["incidentKey"]
            .as_str()
            .unwrap()
            .starts_with("RATE_LIMIT_EXCEEDED-")
    );
    assert_eq!(events[0]["count"], 500);
    assert_eq!(events[0]["ratePerSecond"], 10.0);

    // Healthy again; a quarter of an hour later the next sweep resumes it to the end.
    w.sink.answer(Answer::Status(200));
    clock.store((t0 + minutes(36)).timestamp_millis(), Ordering::SeqCst);
    w.world.dynalite().reset_calls();
    sweep(&h, 80).await;
    // DynamoDB calls per redriven event (the sweep's own few included).
    let calls: usize = w.world.dynalite().calls().values().sum();
    println!(
        "DynamoDB calls: {:?}, {:.2} per redriven event",
        w.world.dynalite().calls(),
        calls as f64 / 500.0
    );
    assert!(
        calls as f64 / 500.0 < 2.2,
        "{:?}",
        w.world.dynalite().calls()
    );
    let received = w.sink.received();
    assert_eq!(
        received.len(),
        501,
        "the failed canary, then each event once"
    );
    let sent: Vec<String> = ids(&w.sink)[1..].to_vec();
    assert_eq!(sent.iter().collect::<BTreeSet<_>>().len(), 500);
    for r in &received {
        assert_eq!(r.header(KEY_NAME), Some(KEY_VALUE), "the connection's key");
    }
    // The pace, measured at the endpoint: no faster than half of the limit of 20/s.
    let (first, last) = (received[1].at, received[500].at);
    let rate = 499.0 / (last - first).as_secs_f64();
    println!("measured redrive pace: {rate:.2} events/s (limit 20, share 0.5)");
    assert!(rate <= 10.0 * 1.03, "{rate}");
    let done = w.redrive_events().await;
    let finished = done
        .iter()
        .find(|e| e["phase"] == "finished")
        .expect("finished");
    assert_eq!(
        (
            finished["sent"].as_u64(),
            finished["gaveUp"].as_u64(),
            finished["skippedTooOld"].as_u64()
        ),
        (Some(500), Some(0), Some(0))
    );
    let journal = w.journal().await;
    assert_eq!(journal.len(), 500);
    assert!(journal.values().all(|(_, sent)| *sent));
    // No secret in the journal or the events.
    let raw = format!("{:?}{:?}", journal, done);
    assert!(!raw.contains(KEY_VALUE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_sweeps_at_once_send_each_event_once() {
    logs();
    let w = Redrive::start(100).await;
    w.sink.answer(Answer::Status(200));
    let t0 = Utc::now() - minutes(40);
    let clock = clock_at(t0);
    invoke(
        &w.handler(&clock, &[]),
        w.batch("ev", 120, t0, THROTTLED, minutes(1)),
    )
    .await;
    clock.store((t0 + minutes(20)).timestamp_millis(), Ordering::SeqCst);
    let containers: Vec<Handler> = (0..3).map(|_| w.handler(&clock, &[])).collect();
    futures::future::join_all(containers.iter().map(|h| sweep(h, 40))).await;
    let sent = ids(&w.sink);
    assert_eq!(sent.len(), 120, "{}", sent.len());
    assert_eq!(sent.iter().collect::<BTreeSet<_>>().len(), 120);
    assert_eq!(w.journal().await.len(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_that_keep_failing_are_tried_three_times_and_given_up() {
    logs();
    let w = Redrive::start(100).await;
    w.sink.answer(Answer::Status(200));
    // Pass 1: the third and fifth fail; passes 2 and 3: both fail again.
    let pass1 = [200, 200, 503, 200, 503, 200, 200, 200, 200, 200];
    w.sink
        .script(pass1.into_iter().chain([503; 4]).map(Answer::Status));
    let t0 = Utc::now() - minutes(40);
    let clock = clock_at(t0);
    let h = w.handler(&clock, &[]);
    invoke(&h, w.batch("ev", 10, t0, THROTTLED, minutes(1))).await;
    clock.store((t0 + minutes(20)).timestamp_millis(), Ordering::SeqCst);
    sweep(&h, 30).await;
    let sent = ids(&w.sink);
    assert_eq!(sent.len(), 14);
    assert_eq!(sent.iter().filter(|i| *i == "ev-00002").count(), 3);
    let journal = w.journal().await;
    assert_eq!(journal["ev-00004"], (3, false));
    assert_eq!(journal["ev-00003"], (1, true));
    let events = w.redrive_events().await;
    let finished = events
        .iter()
        .find(|e| e["phase"] == "finished")
        .expect("finished");
    assert_eq!(
        (
            finished["sent"].as_u64(),
            finished["failedAgain"].as_u64(),
            finished["gaveUp"].as_u64()
        ),
        (Some(8), Some(2), Some(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_permissions_incident_is_never_redriven_by_itself_and_a_person_can_start_it() {
    logs();
    let w = Redrive::start(100).await;
    w.sink.answer(Answer::Status(200));
    let t0 = Utc::now() - minutes(40);
    let clock = clock_at(t0);
    let h = w.handler(&clock, &[]);
    invoke(&h, w.batch("ev", 5, t0, DENIED, minutes(1))).await;
    clock.store((t0 + minutes(20)).timestamp_millis(), Ordering::SeqCst);
    sweep(&h, 20).await;
    assert!(w.sink.received().is_empty());
    let key = genesys_dlq_triage::incidents::incident_key(
        genesys_dlq_triage::FailureCategory::PermissionDenied,
        Some(&w.api),
    );
    let cli = |args: &[&str]| {
        let mut cmd = w.world.cli(args);
        cmd.env("INCIDENT_TABLE", TABLE)
            .env("REPORT_BUCKET", BUCKET);
        cmd
    };
    let none = output(cli(&["redrive", "status", &key])).await;
    assert_eq!(none.status.code(), Some(1), "{}", text(&none));
    assert!(text(&none).contains("has no redrive"), "{}", text(&none));
    let started = output(cli(&["redrive", "start", &key])).await;
    assert!(started.status.success(), "{}", text(&started));
    assert!(text(&started).contains("running"), "{}", text(&started));
    sweep(&h, 20).await;
    assert_eq!(w.sink.received().len(), 5);
    let status = output(cli(&["redrive", "status", &key, "--json"])).await;
    let run: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (
            run["state"].as_str(),
            run["sent"].as_u64(),
            run["byHand"].as_bool()
        ),
        (Some("finished"), Some(5), Some(true))
    );
    let status = text(&output(cli(&["redrive", "status", &key])).await);
    assert!(
        status.contains("by a person (redrive start)") && status.contains("ended:"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_older_than_the_maximum_age_are_skipped_and_counted() {
    logs();
    let w = Redrive::start(100).await;
    w.sink.answer(Answer::Status(200));
    let t0 = Utc::now() - minutes(40);
    let clock = clock_at(t0);
    let h = w.handler(&clock, &[("REDRIVE_MAX_AGE_HOURS", "2")]);
    invoke(
        &h,
        w.batch("old", 6, t0, THROTTLED, chrono::Duration::hours(3)),
    )
    .await;
    invoke(&h, w.batch("new", 4, t0, THROTTLED, minutes(1))).await;
    clock.store((t0 + minutes(20)).timestamp_millis(), Ordering::SeqCst);
    sweep(&h, 30).await;
    let sent = ids(&w.sink);
    assert!(sent.iter().all(|i| i.starts_with("new-")), "{sent:?}");
    let events = w.redrive_events().await;
    let finished = events
        .iter()
        .find(|e| e["phase"] == "finished")
        .expect("finished");
    // The canary may be an old one: skipped, it is no canary; the first new one is.
    assert_eq!(
        (
            finished["sent"].as_u64(),
            finished["skippedTooOld"].as_u64()
        ),
        (Some(4), Some(6)),
        "{finished}"
    );
}

/// Many events at the real pace span several invocations, one of them killed in the
/// middle of its slice; journal = endpoint = every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_redrive_spans_invocations_and_survives_a_killed_one() {
    let n: usize = std::env::var("REDRIVE_BIG_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let rate: i32 = std::env::var("REDRIVE_BIG_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let slice: u64 = std::env::var("REDRIVE_BIG_SLICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    logs();
    let w = Redrive::start(rate * 2).await;
    w.sink.answer(Answer::Status(200));
    let t0 = Utc::now() - minutes(40);
    let clock = clock_at(t0);
    let h = Arc::new(w.handler(&clock, &[]));
    for chunk in 0..n.div_ceil(1000) {
        let size = (n - chunk * 1000).min(1000);
        invoke(
            &h,
            w.batch(&format!("c{chunk}"), size, t0, THROTTLED, minutes(1)),
        )
        .await;
    }
    clock.store((t0 + minutes(20)).timestamp_millis(), Ordering::SeqCst);
    let started = std::time::Instant::now();
    // Invocations of `slice` seconds (5 s of margin); the second is killed 5 s into its slice.
    let mut invocations = 0;
    let mut killed = false;
    while w.journal().await.values().filter(|(_, s)| *s).count() < n && invocations < 200 {
        invocations += 1;
        let h = h.clone();
        let task = tokio::spawn(async move { sweep(&h, slice).await });
        if invocations == 2 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            task.abort();
            let _ = task.await;
            killed = true;
            // Its lease ends a minute after its deadline: the next container waits it out.
            clock.fetch_add(
                minutes(2).num_milliseconds() + 1000 * slice as i64,
                Ordering::SeqCst,
            );
        } else {
            task.await.unwrap();
        }
    }
    assert!(killed);
    let journal = w.journal().await;
    let sent: BTreeSet<String> = ids(&w.sink).into_iter().collect();
    println!(
        "{n} events at {rate}/s: {invocations} invocations, {:.0} s, endpoint {} requests ({} distinct)",
        started.elapsed().as_secs_f64(),
        w.sink.received().len(),
        sent.len()
    );
    assert!(invocations > 2);
    assert_eq!(journal.len(), n);
    assert!(journal.values().all(|(_, s)| *s));
    assert_eq!(sent.len(), n);
    assert_eq!(journal.keys().cloned().collect::<BTreeSet<_>>(), sent);
}
