//! `summarize`'s health table: EventBridge's metrics put under `AWS/Events` as EventBridge
//! publishes them, into the CloudWatch stand-in of tests/support (the SDK speaks Smithy RPC
//! v2 CBOR to CloudWatch, which moto's server does not route); an API destination with its
//! configured rate on moto; a denied CloudWatch call and a hung one.

use std::path::Path;
use std::process::Command;

use aws_sdk_cloudwatch::primitives::DateTime as AwsTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use dlq_triage_test_support as support;
use support::cli::{analyzed, dlq_triage, output, text};
use support::cloudwatch::CloudWatch;
use support::eventbridge::EventSources;
use support::fixtures::event_path;
use support::genesys_sim::{Sim, SimState, eventbridge_integration};
use support::moto::Moto;

const BUS: &str = "aws.partner/genesys.com/cloud/cf6cb7d5-d0ea-45b5-b0cf-73ad5f5b8721/prod-events";
/// The sample batch's first dead letter (epoch seconds).
const FIRST: i64 = 1_795_856_761;

/// Puts `value` of `metric` for rule `rule` on the partner bus at `FIRST + minute` minutes.
async fn put(cw: &aws_sdk_cloudwatch::Client, rule: &str, metric: &str, minute: i64, value: f64) {
    cw.put_metric_data()
        .namespace("AWS/Events")
        .metric_data(
            MetricDatum::builder()
                .metric_name(metric)
                .dimensions(Dimension::builder().name("EventBusName").value(BUS).build())
                .dimensions(Dimension::builder().name("RuleName").value(rule).build())
                .timestamp(AwsTime::from_secs(FIRST + minute * 60))
                .value(value)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// moto with the crm-webhook API destination limited to 10/s, and metrics: `to-crm`
/// invoked at 1,800 a minute (30/s) with 1 % to the DLQ and 3 events lost beyond it;
/// `to-wfm` healthy apart from its dead letters.
/// moto, the CloudWatch stand-in, and the event-source stand-in in front of moto (the
/// Genesys partner source `ACTIVE`).
struct World(Moto, CloudWatch, EventSources);

async fn moto_with_metrics() -> World {
    let moto = Moto::start().await;
    let cloudwatch = CloudWatch::start().await;
    let sources = EventSources::start(&moto.endpoint).await;
    sources.set(BUS, "ACTIVE");
    let sdk = moto.sdk().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let connection = support::moto::api_key_connection(&events, "crm").await;
    events
        .create_api_destination()
        .name("crm-webhook")
        .connection_arn(&connection)
        .invocation_endpoint("https://crm.example.com/hooks/genesys")
        .http_method(aws_sdk_eventbridge::types::ApiDestinationHttpMethod::Post)
        .invocation_rate_limit_per_second(10)
        .send()
        .await
        .unwrap();
    events
        .create_api_destination()
        .name("wfm-ingest")
        .connection_arn(&connection)
        .invocation_endpoint("https://wfm.example.com/ingest")
        .http_method(aws_sdk_eventbridge::types::ApiDestinationHttpMethod::Post)
        .invocation_rate_limit_per_second(100)
        .send()
        .await
        .unwrap();
    let cw = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&sdk)
            .endpoint_url(&cloudwatch.endpoint)
            .build(),
    );
    for minute in 0..5 {
        put(&cw, "to-crm", "Invocations", minute, 1800.0).await;
        put(&cw, "to-crm", "InvocationsSentToDlq", minute, 18.0).await;
        put(&cw, "to-wfm", "Invocations", minute, 100.0).await;
    }
    put(&cw, "to-crm", "InvocationsFailedToBeSentToDlq", 2, 3.0).await;
    put(&cw, "to-crm", "ThrottledRules", 1, 7.0).await;
    World(moto, cloudwatch, sources)
}

fn summarize(world: &World, reports: &Path, out: &Path) -> Command {
    let mut cmd = dlq_triage(&["summarize"]);
    cmd.arg(reports)
        .arg("--out")
        .arg(out)
        .env("AWS_ENDPOINT_URL", &world.0.endpoint)
        .env("AWS_ENDPOINT_URL_CLOUDWATCH", &world.1.endpoint)
        .env("AWS_ENDPOINT_URL_EVENTBRIDGE", &world.2.endpoint);
    cmd
}

#[tokio::test]
async fn the_health_table_gives_each_rules_ratio_the_lost_events_and_the_rate_limit_to_set() {
    let world = moto_with_metrics().await;
    let dir = tempfile::tempdir().unwrap();
    analyzed(
        &event_path("sqs-mixed-batch.json"),
        &dir.path().join("reports"),
    );
    let out = dir.path().join("summary");
    let run = output(summarize(&world, &dir.path().join("reports"), &out)).await;
    assert!(run.status.success(), "{}", text(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("LOST: 3 event(s) could not be put in the dead-letter queue"),
        "{stdout}"
    );
    let crm = stdout
        .lines()
        .find(|l| l.contains("rule to-crm"))
        .expect("to-crm's line");
    assert!(crm.contains("invocations     9000"), "{crm}");
    assert!(crm.contains("sent to DLQ     90 (1.00 %)"), "{crm}");
    let wfm = stdout
        .lines()
        .find(|l| l.contains("rule to-wfm"))
        .expect("to-wfm's line");
    assert!(wfm.contains("sent to DLQ      0 (0.00 %)"), "{wfm}");
    assert!(stdout.contains("api-destination crm-webhook"), "{stdout}");
    assert!(
        stdout.contains("limit 10/s  invoked peak 30.0/s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("set InvocationRateLimitPerSecond to at least 30"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let health = &json["health"];
    assert_eq!(health["lostBeyondDlq"], 3);
    let rule = health["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleName"] == "to-crm")
        .unwrap();
    assert_eq!(rule["eventBusName"], BUS);
    assert_eq!(rule["metrics"]["ThrottledRules"], 7.0);
    assert_eq!(rule["peakInvocationsPerMinute"], 1800.0);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## Target health"), "{md}");
    assert!(md.contains("no target dimension"), "{md}");

    // --no-health reads nothing of it.
    let without = dir.path().join("without");
    let mut cmd = summarize(&world, &dir.path().join("reports"), &without);
    cmd.arg("--no-health");
    let run = output(cmd).await;
    assert!(run.status.success(), "{}", text(&run));
    assert!(!String::from_utf8_lossy(&run.stdout).contains("health"));
}

#[tokio::test]
async fn a_denied_or_hung_look_up_is_one_line_and_the_summary_is_still_written() {
    let world = moto_with_metrics().await;
    let dir = tempfile::tempdir().unwrap();
    analyzed(
        &event_path("sqs-mixed-batch.json"),
        &dir.path().join("reports"),
    );

    // CloudWatch on a black hole: bounded, named, the summary written.
    let hole = support::net::black_hole().await;
    let out = dir.path().join("hung");
    let mut cmd = summarize(&world, &dir.path().join("reports"), &out);
    cmd.env("AWS_ENDPOINT_URL_CLOUDWATCH", &hole);
    let started = std::time::Instant::now();
    let run = output(cmd).await;
    assert!(run.status.success(), "{}", text(&run));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("unavailable: CloudWatch GetMetricData (us-east-1)"),
        "{stdout}"
    );
    assert!(out.join("summary.json").exists());
    // The API destination's limit still came from EventBridge.
    assert!(stdout.contains("limit 10/s"), "{stdout}");

    // Denied: a refusal from CloudWatch is one line too.
    let refusing = support::sink::Sink::start(support::sink::Answer::Status(403)).await;
    let out = dir.path().join("denied");
    let mut cmd = summarize(&world, &dir.path().join("reports"), &out);
    cmd.env("AWS_ENDPOINT_URL_CLOUDWATCH", &refusing.url);
    let run = output(cmd).await;
    assert!(run.status.success(), "{}", text(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("unavailable: CloudWatch GetMetricData"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(stdout.matches("unavailable:").count(), 1, "{stdout}");
    assert!(line.contains("HTTP 403"), "{line}");
    assert!(!line.contains("not-a-secret"));
    assert!(out.join("summary.md").exists());
}

/// The Genesys side: an integration in ERROR, and a partner event source still PENDING,
/// head the health: no dead letter can show events that were never sent.
#[tokio::test]
async fn an_integration_in_error_or_a_pending_source_is_the_headline() {
    let world = moto_with_metrics().await;
    world.2.set(BUS, "PENDING");
    let sim = Sim::start(SimState::new("health-client", "health-secret"), 0)
        .await
        .unwrap();
    sim.state.integrations.lock().unwrap().extend([
        eventbridge_integration(
            "prod-events",
            "ERROR",
            "The AWS account could not be reached",
        ),
        eventbridge_integration("test-events", "ACTIVE", ""),
    ]);
    let dir = tempfile::tempdir().unwrap();
    analyzed(
        &event_path("sqs-mixed-batch.json"),
        &dir.path().join("reports"),
    );
    let out = dir.path().join("summary");
    let mut cmd = summarize(&world, &dir.path().join("reports"), &out);
    cmd.env("GENESYS_CLIENT_ID", "health-client")
        .env("GENESYS_CLIENT_SECRET", "health-secret")
        .env("GENESYS_API_BASE", sim.base_url());
    let run = output(cmd).await;
    assert!(run.status.success(), "{}", text(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let health = lines
        .iter()
        .position(|l| l.starts_with("NOT SENDING"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        lines[health].contains(&format!("partner event source {BUS} is PENDING")),
        "{stdout}"
    );
    assert!(
        lines[health + 1].contains("integration \"Amazon EventBridge Source prod-events\" is ERROR (The AWS account could not be reached)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("test-events\" is"),
        "an active integration is no headline"
    );
    assert!(
        stdout.contains("genesys integration \"Amazon EventBridge Source test-events\": ACTIVE")
    );
    assert!(!stdout.contains("health-secret") && !stdout.contains("sim-token"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["health"]["eventSources"][0]["state"], "PENDING");
    assert_eq!(json["health"]["genesysIntegrations"][0]["code"], "ERROR");
}
