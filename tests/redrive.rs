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
/// destination and the rule sending to it; the incident's start and the function's clock.
struct Redrive {
    world: World,
    sink: Sink,
    api: String,
    rule: String,
    /// When the dead letters failed: 40 minutes ago.
    t0: DateTime<Utc>,
    /// The function's clock, at `t0` until moved.
    clock: Clock,
}

impl Redrive {
    /// The services, an API destination at `limit` per second to the sink (answering
    /// `answer`), its rule, and a queue receiving the tool's redrive events; the function's
    /// logs in the test's output.
    async fn start(limit: i32, answer: Answer) -> Redrive {
        logs();
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
        let sink = Sink::start(answer).await;
        let connection = support::moto::api_key_connection(&world.events(), "crm").await;
        let endpoint = format!("{}/hook", sink.url);
        let api = world
            .api_destination("crm-webhook", &connection, &endpoint, limit)
            .await;
        let pattern = r#"{"source":[{"prefix":"aws.partner/"}]}"#;
        let rule = world.route(None, "to-crm", pattern, ("crm", &api)).await;
        let t0 = Utc::now() - minutes(40);
        Redrive {
            world,
            sink,
            api,
            rule,
            t0,
            clock: clock_at(t0),
        }
    }

    /// A function container with the redrive on, telling the time by the test's clock.
    fn handler(&self, vars: &[(&str, &str)]) -> Handler {
        let vars: Vec<(&str, &str)> = [("REDRIVE", "auto")]
            .into_iter()
            .chain(vars.iter().copied())
            .collect();
        self.world.handler(&self.clock, &vars)
    }

    /// The function's clock `after` the dead letters failed.
    fn set_clock(&self, after: chrono::Duration) {
        self.clock
            .store((self.t0 + after).timestamp_millis(), Ordering::SeqCst);
    }

    /// `batches` handed to `h` at `t0`, then the clock 20 minutes on: quiet long enough
    /// for the next sweep to resolve the incident.
    async fn dead_lettered(&self, h: &Handler, batches: impl IntoIterator<Item = SqsEvent>) {
        for batch in batches {
            invoke(h, batch).await;
        }
        self.set_clock(minutes(20));
    }

    /// `n` dead letters of events `{tag}-{i}`, failed at `t0` with `error` (code,
    /// message), each event's own `time` `age` before `t0`.
    fn batch(&self, tag: &str, n: usize, error: (&str, &str), age: chrono::Duration) -> SqsEvent {
        let at = self.t0;
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

/// The `finished` event among `events` (the run must have finished).
fn finished(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["phase"] == "finished")
        .expect("finished")
}

/// The counts `names` of a redrive event.
fn counts(event: &Value, names: &[&str]) -> Vec<Option<u64>> {
    names.iter().map(|name| event[*name].as_u64()).collect()
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
    let w = Redrive::start(20, Answer::Status(429)).await;
    let h = w.handler(&[]);
    // Quiet for 20 minutes: the sweep resolves it; the endpoint still answers 429, so the
    // canary fails and the run pauses with nothing else sent.
    w.dead_lettered(&h, [w.batch("ev", 500, THROTTLED, minutes(1))])
        .await;
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
    w.set_clock(minutes(36));
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
    assert_eq!(
        counts(finished(&done), &["sent", "gaveUp", "skippedTooOld"]),
        [Some(500), Some(0), Some(0)]
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
    let w = Redrive::start(100, Answer::Status(200)).await;
    w.dead_lettered(&w.handler(&[]), [w.batch("ev", 120, THROTTLED, minutes(1))])
        .await;
    let containers: Vec<Handler> = (0..3).map(|_| w.handler(&[])).collect();
    futures::future::join_all(containers.iter().map(|h| sweep(h, 40))).await;
    let sent = ids(&w.sink);
    assert_eq!(sent.len(), 120, "{}", sent.len());
    assert_eq!(sent.iter().collect::<BTreeSet<_>>().len(), 120);
    assert_eq!(w.journal().await.len(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_that_keep_failing_are_tried_three_times_and_given_up() {
    let w = Redrive::start(100, Answer::Status(200)).await;
    // Pass 1: the third and fifth fail; passes 2 and 3: both fail again.
    let pass1 = [200, 200, 503, 200, 503, 200, 200, 200, 200, 200];
    w.sink
        .script(pass1.into_iter().chain([503; 4]).map(Answer::Status));
    let h = w.handler(&[]);
    w.dead_lettered(&h, [w.batch("ev", 10, THROTTLED, minutes(1))])
        .await;
    sweep(&h, 30).await;
    let sent = ids(&w.sink);
    assert_eq!(sent.len(), 14);
    assert_eq!(sent.iter().filter(|i| *i == "ev-00002").count(), 3);
    let journal = w.journal().await;
    assert_eq!(journal["ev-00004"], (3, false));
    assert_eq!(journal["ev-00003"], (1, true));
    let events = w.redrive_events().await;
    assert_eq!(
        counts(finished(&events), &["sent", "failedAgain", "gaveUp"]),
        [Some(8), Some(2), Some(2)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_permissions_incident_is_never_redriven_by_itself_and_a_person_can_start_it() {
    let w = Redrive::start(100, Answer::Status(200)).await;
    let h = w.handler(&[]);
    w.dead_lettered(&h, [w.batch("ev", 5, DENIED, minutes(1))])
        .await;
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
    let w = Redrive::start(100, Answer::Status(200)).await;
    let h = w.handler(&[("REDRIVE_MAX_AGE_HOURS", "2")]);
    let old = w.batch("old", 6, THROTTLED, chrono::Duration::hours(3));
    let new = w.batch("new", 4, THROTTLED, minutes(1));
    w.dead_lettered(&h, [old, new]).await;
    sweep(&h, 30).await;
    let sent = ids(&w.sink);
    assert!(sent.iter().all(|i| i.starts_with("new-")), "{sent:?}");
    let events = w.redrive_events().await;
    let finished = finished(&events);
    // The canary may be an old one: skipped, it is no canary; the first new one is.
    assert_eq!(
        counts(finished, &["sent", "skippedTooOld"]),
        [Some(4), Some(6)],
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
    let w = Redrive::start(rate * 2, Answer::Status(200)).await;
    let h = Arc::new(w.handler(&[]));
    let batches = (0..n.div_ceil(1000)).map(|chunk| {
        let size = (n - chunk * 1000).min(1000);
        w.batch(&format!("c{chunk}"), size, THROTTLED, minutes(1))
    });
    w.dead_lettered(&h, batches).await;
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
            w.clock.fetch_add(
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
