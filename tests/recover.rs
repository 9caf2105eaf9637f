//! `dlq-triage recover` against moto (the bus, the rule, its target's DLQ), the CloudWatch
//! stand-in (EventBridge's rule metrics, kept by CloudWatch's rules) and the EventBridge
//! stand-in that judges `StartReplay` (moto replays every archived event to every rule,
//! whatever the request says); and a replayed event that failed again, through `analyze`.

use std::process::Command;

use aws_sdk_eventbridge::types::{DeadLetterConfig, RetryPolicy, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{SecondsFormat, Utc};
use dlq_triage_test_support as support;
use serde_json::Value;
use support::cli::{output, text};
use support::eventbridge::Archives;
use support::world::World;

const BUS: &str = "genesys-prod";
const RULE: &str = "to-crm";
const ACCOUNT: &str = "123456789012";
/// The DLQ keeps messages 4 days.
const RETENTION: i64 = 4 * 86_400;
/// The target gives up on an event 10 minutes after it happened.
const EVENT_AGE: i64 = 600;

/// moto, the EventBridge stand-in (the archives' judge) and CloudWatch's stand-in, with the
/// account's bus, rule and archives.
struct Archived {
    world: World,
    rule_arn: String,
    bus_arn: String,
    /// The current minute's start (epoch seconds).
    now: i64,
}

impl Archived {
    /// A custom bus with one rule whose SQS target has a DLQ (kept [`RETENTION`]) and a
    /// retry policy of [`EVENT_AGE`], and an archive of the bus created 30 days ago.
    async fn start() -> Archived {
        let world = World::builder().event_sources().cloudwatch().build().await;
        let sqs = aws_sdk_sqs::Client::new(&world.sdk);
        let queue = |name: &'static str, retention: Option<i64>| {
            let sqs = sqs.clone();
            async move {
                sqs.create_queue()
                    .queue_name(name)
                    .set_attributes(retention.map(|r| {
                        [(QueueAttributeName::MessageRetentionPeriod, r.to_string())].into()
                    }))
                    .send()
                    .await
                    .unwrap();
                format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}")
            }
        };
        let target_arn = queue("crm-in", None).await;
        let dlq = queue("crm-dlq", Some(RETENTION)).await;
        let eb = world.events();
        let bus_arn = eb
            .create_event_bus()
            .name(BUS)
            .send()
            .await
            .unwrap()
            .event_bus_arn()
            .unwrap()
            .to_owned();
        let target = Target::builder()
            .id("crm")
            .arn(target_arn)
            .dead_letter_config(DeadLetterConfig::builder().arn(dlq).build())
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_event_age_in_seconds(EVENT_AGE as i32)
                    .maximum_retry_attempts(10)
                    .build(),
            )
            .build()
            .unwrap();
        let pattern = r#"{"source":[{"prefix":"aws.partner/genesys.com"}]}"#;
        let rule_arn = support::moto::rule_with_target(&eb, Some(BUS), RULE, pattern, target).await;
        let now = Utc::now().timestamp();
        let now = now - now.rem_euclid(60);
        let archives = &world.sources().archives;
        archives.add("genesys-all", &bus_arn, now - 30 * 86_400, 0);
        // Another bus's archive is never chosen.
        archives.add(
            "other-bus",
            &format!("arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"),
            now - 30 * 86_400,
            0,
        );
        Archived {
            world,
            rule_arn,
            bus_arn,
            now,
        }
    }

    /// Puts `value` of the rule's `metric` at `at`, under {EventBusName, RuleName} as
    /// EventBridge publishes a custom bus's rule metrics.
    fn put(&self, metric: &str, at: i64, value: f64) {
        let dims: &[(&str, &str)] = &[("EventBusName", BUS), ("RuleName", RULE)];
        self.world
            .cloudwatch()
            .put_many([("AWS/Events", metric, dims, at, value)]);
    }

    fn recover(&self, args: &[&str]) -> Command {
        let mut cmd = self.world.cli(&["recover", "--rule", &self.rule_arn]);
        cmd.args(args);
        cmd
    }

    /// The archives and the replays started, as the EventBridge stand-in holds them.
    fn archives(&self) -> &Archives {
        &self.world.sources().archives
    }

    /// Two minutes three hours ago that lost 4 and 6 events beyond the DLQ, dead letters
    /// five days ago (expired from the queue) and two hours ago (still in it), and the
    /// rule matching 10 events a minute over the last four hours: the two windows' starts.
    fn losses(&self) -> (i64, i64) {
        let lost = self.now - 3 * 3600;
        self.put("InvocationsFailedToBeSentToDlq", lost, 4.0);
        self.put("InvocationsFailedToBeSentToDlq", lost + 60, 6.0);
        let expired = self.now - 5 * 86_400;
        self.put("InvocationsSentToDlq", expired, 7.0);
        self.put("InvocationsSentToDlq", self.now - 2 * 3600, 9.0);
        for m in 0..240 {
            self.put("MatchedEvents", self.now - 4 * 3600 + m * 60, 10.0);
        }
        self.put("MatchedEvents", expired - 120, 3.0);
        (expired, lost)
    }
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dry_run_names_the_archive_the_windows_and_the_events_the_rule_matched() {
    let world = Archived::start().await;
    let (expired, lost) = world.losses();
    let o = output(world.recover(&["--since", "6d", "--until", "1h"])).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        out.contains(&format!(
            "archive: genesys-all (arn:aws:events:us-east-1:{ACCOUNT}:archive/genesys-all), ENABLED"
        )),
        "{out}"
    );
    assert!(
        out.contains("InvocationsFailedToBeSentToDlq under {EventBusName, RuleName}"),
        "{out}"
    );
    assert!(
        out.contains(&format!("keeps messages {RETENTION} s")),
        "{out}"
    );
    assert!(out.contains("each window starts 600 s before its first loss (target crm's RetryPolicy.MaximumEventAgeInSeconds)"), "{out}");
    // The expired dead letters: one minute, reaching back 10 minutes; the rule matched 3.
    assert!(
        out.contains(&format!(
            "window 1: {} to {}: 0 event(s) failed to reach the DLQ, 7 dead letter(s) expired from it; the rule matched 3 event(s)",
            rfc3339(expired - EVENT_AGE),
            rfc3339(expired + 60)
        )),
        "{out}"
    );
    // The two lost minutes are one window of 12 minutes at 10 matched a minute.
    assert!(
        out.contains(&format!(
            "window 2: {} to {}: 10 event(s) failed to reach the DLQ, 0 dead letter(s) expired from it; the rule matched 120 event(s) in the window (MatchedEvents: delivered events included",
            rfc3339(lost - EVENT_AGE),
            rfc3339(lost + 120)
        )),
        "{out}"
    );
    // Dead letters still in the queue are not lost.
    assert!(!out.contains("window 3"), "{out}");
    assert!(
        out.contains("AWS advises replaying a window only 10 minutes after its end"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing was started"), "{out}");
    assert!(world.archives().replays().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn execute_replays_each_window_from_the_archive_to_the_rule_alone_once() {
    let world = Archived::start().await;
    let (expired, lost) = world.losses();
    let o = output(world.recover(&["--since", "6d", "--until", "1h", "--execute"])).await;
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let replays = world.archives().replays();
    assert_eq!(replays.len(), 2, "{out}");
    for (replay, (start, end)) in replays.iter().zip([
        (expired - EVENT_AGE, expired + 60),
        (lost - EVENT_AGE, lost + 120),
    ]) {
        assert_eq!(
            replay["EventSourceArn"],
            format!("arn:aws:events:us-east-1:{ACCOUNT}:archive/genesys-all")
        );
        assert_eq!(replay["Destination"]["Arn"], world.bus_arn.as_str());
        assert_eq!(
            replay["Destination"]["FilterArns"],
            Value::from(vec![world.rule_arn.clone()])
        );
        assert_eq!(replay["EventStartTime"].as_f64(), Some(start as f64));
        assert_eq!(replay["EventEndTime"].as_f64(), Some(end as f64));
        let name = replay["ReplayName"].as_str().unwrap();
        assert!(
            out.contains(&format!("started replay {name} (STARTING)")),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "aws events describe-replay --replay-name {name} --region us-east-1"
            )),
            "{out}"
        );
    }
    // Run again: the windows were replayed (ListReplays), nothing replayed twice.
    let again = output(world.recover(&["--since", "6d", "--until", "1h", "--execute"])).await;
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(world.archives().replays().len(), 2);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .matches(" (RUNNING): not replayed again")
            .count(),
        2,
        "{}",
        text(&again)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_that_ended_minutes_ago_waits_for_the_archive_unless_told() {
    let world = Archived::start().await;
    world.put("InvocationsFailedToBeSentToDlq", world.now - 300, 2.0);
    let args = [
        "--since",
        "1h",
        "--until",
        "0s",
        "--event-age",
        "0",
        "--execute",
    ];
    let o = output(world.recover(&args)).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("less than 10 minutes ago"),
        "{}",
        text(&o)
    );
    assert!(world.archives().replays().is_empty());
    let mut told = args.to_vec();
    told.push("--ignore-archive-lag");
    let o = output(world.recover(&told)).await;
    assert!(o.status.success(), "{}", text(&o));
    let replays = world.archives().replays();
    assert_eq!(replays.len(), 1);
    assert_eq!(
        replays[0]["EventStartTime"].as_f64(),
        Some((world.now - 300) as f64)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_lost_exits_3_and_an_archive_too_young_is_named() {
    let world = Archived::start().await;
    let o = output(world.recover(&["--since", "6d", "--until", "1h"])).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing to replay"),
        "{}",
        text(&o)
    );
    world.put(
        "InvocationsFailedToBeSentToDlq",
        world.now - 40 * 86_400,
        1.0,
    );
    let o = output(world.recover(&[
        "--since",
        "41d",
        "--until",
        "1h",
        "--archive",
        "genesys-all",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("archive genesys-all (ENABLED, created"),
        "{}",
        text(&o)
    );
    // An archive younger than the window says how much (the 40-day-old minute is read
    // in CloudWatch's 5-minute periods, so to the period), and what shortens the window.
    let err = String::from_utf8_lossy(&o.stderr);
    let by: i64 = err
        .split("(the window starts ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert!(
        (10 * 86_400 + EVENT_AGE..=10 * 86_400 + EVENT_AGE + 300).contains(&by)
            && err.contains(" s before its archive: a shorter --event-age"),
        "{}",
        text(&o)
    );
}

/// A function `name` (an empty zip: it is never invoked) draining queue `queue` through an
/// enabled event source mapping, as the triage function drains its DLQ.
async fn drain(world: &World, queue: &str, name: &str) {
    world.function(name, "triage-role", None).await;
    aws_sdk_lambda::Client::new(&world.sdk)
        .create_event_source_mapping()
        .event_source_arn(queue)
        .function_name(name)
        .send()
        .await
        .expect("CreateEventSourceMapping");
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_a_function_drains_are_not_taken_for_expired() {
    let world = Archived::start().await;
    let dlq = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:crm-dlq");
    drain(&world.world, &dlq, "dlq-triage").await;
    let (_, lost) = world.losses();
    let o = output(world.recover(&["--since", "6d", "--until", "1h"])).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        out.contains(&format!("dead-letter queue {dlq}: keeps messages {RETENTION} s; drained by arn:aws:lambda:us-east-1:{ACCOUNT}:function:dlq-triage")),
        "{out}"
    );
    // The dead letters of five days ago were consumed by the function, not expired: the
    // only window is the minutes lost beyond the DLQ.
    assert!(
        out.contains(&format!(
            "window 1: {} to {}: 10 event(s) failed to reach the DLQ, 0 dead letter(s) expired",
            rfc3339(lost - EVENT_AGE),
            rfc3339(lost + 120)
        )),
        "{out}"
    );
    assert!(!out.contains("window 2"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wider_window_later_replays_only_what_earlier_replays_left_out() {
    let world = Archived::start().await;
    // Small pages: the archives and the replays are read to their last page.
    world.archives().set_page_size(1);
    world
        .archives()
        .add("genesys-young", &world.bus_arn, world.now - 3600, 0);
    let (expired, lost) = world.losses();
    let args = ["--since", "6d", "--until", "1h", "--execute"];
    let o = output(world.recover(&args)).await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(world.archives().replays().len(), 2);
    // A minute lost just after the second window widens it: its window is another one
    // (another name), but only its new part is replayed.
    world.put("InvocationsFailedToBeSentToDlq", lost + 180, 1.0);
    // The dry run says so.
    let dry = output(world.recover(&args[..4])).await;
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains(&format!(
            "  {} to {}: replayed already by {} (RUNNING): --execute replays only the rest of the window",
            rfc3339(lost - EVENT_AGE),
            rfc3339(lost + 120),
            world.archives().replays()[1]["ReplayName"].as_str().unwrap()
        )),
        "{}",
        text(&dry)
    );
    let o = output(world.recover(&args)).await;
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let replays = world.archives().replays();
    assert_eq!(replays.len(), 3, "{out}");
    assert_eq!(
        replays[2]["EventStartTime"].as_f64(),
        Some((lost + 120) as f64)
    );
    assert_eq!(
        replays[2]["EventEndTime"].as_f64(),
        Some((lost + 240) as f64)
    );
    let first = replays[0]["ReplayName"].as_str().unwrap();
    let second = replays[1]["ReplayName"].as_str().unwrap();
    for (start, end, by) in [
        (expired - EVENT_AGE, expired + 60, first),
        (lost - EVENT_AGE, lost + 120, second),
    ] {
        assert!(
            out.contains(&format!(
                "{} to {}: replayed already by {by} (RUNNING): not replayed again",
                rfc3339(start),
                rfc3339(end)
            )),
            "{out}"
        );
    }
}

/// A Lambda SQS event of two dead letters of the same 429 incident: the first an original
/// event, the second one an archive replay sent (its body carries `replay-name`).
fn batch_with_a_replayed_event() -> Vec<u8> {
    let mixed: Value = serde_json::from_slice(
        &std::fs::read(support::fixtures::repo_path("events/sqs-mixed-batch.json")).unwrap(),
    )
    .unwrap();
    let original = mixed["Records"][0].clone();
    let mut replayed = original.clone();
    replayed["messageId"] = "7c1f0e52-2a4b-4d7e-9f31-5d1c2b3a4e5f".into();
    let body = replayed["body"].as_str().unwrap().replacen(
        r#""region":"us-east-1","#,
        r#""region":"us-east-1","replay-name":"rcv-to-crm-1a2b3c4d-20261128T0850-20261128T0902","#,
        1,
    );
    replayed["body"] = body.into();
    serde_json::to_vec(&serde_json::json!({ "Records": [original, replayed] })).unwrap()
}

#[test]
fn a_replayed_event_that_failed_again_is_reported_as_a_replays_failure() {
    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("batch.json");
    std::fs::write(&batch, batch_with_a_replayed_event()).unwrap();
    let report = support::cli::analyzed(&batch, &dir.path().join("out"));
    let records = report["records"].as_array().unwrap();
    assert_eq!(records[0].get("replayName"), None);
    assert_eq!(
        records[1]["replayName"],
        "rcv-to-crm-1a2b3c4d-20261128T0850-20261128T0902"
    );
    // One incident: the replay's failure is counted in it and named, not a new incident.
    let incidents = report["summary"]["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["count"], 2);
    assert_eq!(incidents[0]["replayFailures"], 1);
    assert_eq!(
        incidents[0]["replayNames"],
        serde_json::json!(["rcv-to-crm-1a2b3c4d-20261128T0850-20261128T0902"])
    );
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(
        md.contains("**A replay failed again:** 1 of these failed events against `api-destination/crm-webhook` came from the archive replay `rcv-to-crm-1a2b3c4d-20261128T0850-20261128T0902`"),
        "{md}"
    );
}
