//! `make bench-health`: `dlq-triage summarize --since 30d` over 1,000 rules, its health
//! look-ups against the CloudWatch stand-in of tests/support holding every call
//! `CW_DELAY_MS` (default 20) ms.
//!
//! - `RULES` (default 1,000) rules on a Genesys partner bus, each with 5 dead letters
//!   spread over the last 30 days (one report); a tenth of them target one of 10 API
//!   destinations on moto (their rates read per 5 minutes), the others SQS queues.
//! - EventBridge's metrics as EventBridge puts them: per rule one `Invocations` point a
//!   day under `{EventBusName, RuleName}` and one `InvocationsSentToDlq` under
//!   `{RuleName}`; for the API destinations' rules `TriggeredRules` every hour; 50 other
//!   rules that lost events, which ListMetrics must find.
//! - Wall time of `summarize DIR --json --since 30d` with the health look-ups, beside the
//!   same with `--no-health`; the stand-in's count of calls; every rule must have its
//!   figures (none "no metrics found").
//!
//! `RUNS` (default 3) runs; medians. A benchmark, not a test: it asserts only that the
//! figures were found. Method and figures: docs/benchmarks.md.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use dlq_triage_test_support::cli::{analyzed, dlq_triage};
use dlq_triage_test_support::cloudwatch::CloudWatch;
use dlq_triage_test_support::eventbridge::EventSources;
use dlq_triage_test_support::fixtures::{event_path, scratch};
use dlq_triage_test_support::measure::{median, run_measured};
use dlq_triage_test_support::moto::Moto;
use serde_json::{Value, json};

const BUS: &str = "aws.partner/genesys.com/cloud/cf6cb7d5-d0ea-45b5-b0cf-73ad5f5b8721/prod-events";
const DAY: i64 = 86_400;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rule(n: usize) -> String {
    format!("rule-{n:04}")
}

/// One report of `rules` × 5 dead letters over the last 30 days, below `dir`.
fn reports(dir: &Path, rules: usize, now: i64) {
    let template = analyzed(&event_path("sqs-mixed-batch.json"), &dir.join("template"));
    let record = template["records"][0].clone();
    let records: Vec<Value> = (0..rules * 5)
        .map(|k| {
            let n = k % rules;
            let mut r = record.clone();
            let at = now - 30 * DAY + 3600 + (k as i64 * (29 * DAY) / (rules as i64 * 5));
            let at = chrono::DateTime::from_timestamp(at, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            r["messageId"] = json!(format!("m-{k:06}"));
            r["sentTimestamp"] = json!(at);
            r["timestamp"] = json!(at);
            r["ruleArn"] = json!(format!(
                "arn:aws:events:us-east-1:111122223333:rule/{BUS}/{}",
                rule(n)
            ));
            r["targetArn"] = json!(if n.is_multiple_of(10) {
                format!(
                    "arn:aws:events:us-east-1:111122223333:api-destination/dest-{}/0b7c7a51-5f0e-4a52-9d0e-3f1f0a2b4c99",
                    n / 10 % 10
                )
            } else {
                format!("arn:aws:sqs:us-east-1:111122223333:queue-{n}")
            });
            r
        })
        .collect();
    let out = dir.join("reports");
    std::fs::create_dir_all(&out).unwrap();
    let report = json!({
        "schemaVersion": 1,
        "reportId": "bench",
        "generatedAt": chrono::DateTime::from_timestamp(now, 0).unwrap().to_rfc3339(),
        "totalFailures": records.len(),
        "summary": {},
        "records": records,
    });
    std::fs::write(
        out.join("report.json"),
        serde_json::to_vec(&report).unwrap(),
    )
    .unwrap();
}

/// EventBridge's metrics for the rules, and 50 other rules that lost events.
fn metrics(cw: &CloudWatch, rules: usize, now: i64) {
    let names: Vec<String> = (0..rules + 50).map(rule).collect();
    let on_bus: Vec<[(&str, &str); 2]> = names
        .iter()
        .map(|n| [("EventBusName", BUS), ("RuleName", n.as_str())])
        .collect();
    let alone: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("RuleName", n.as_str())]).collect();
    let mut points = Vec::new();
    for n in 0..rules {
        for day in 0..30 {
            let at = now - 30 * DAY + day * DAY + 7200;
            points.push(("AWS/Events", "Invocations", &on_bus[n][..], at, 500.0));
            points.push(("AWS/Events", "InvocationsSentToDlq", &alone[n][..], at, 1.0));
        }
        if n.is_multiple_of(10) {
            for hour in 1..720 {
                let at = now - 30 * DAY + hour * 3600;
                points.push(("AWS/Events", "TriggeredRules", &on_bus[n][..], at, 900.0));
            }
        }
    }
    for dims in &alone[rules..] {
        let at = now - 2 * DAY;
        points.push((
            "AWS/Events",
            "InvocationsFailedToBeSentToDlq",
            &dims[..],
            at,
            3.0,
        ));
    }
    cw.put_many(points);
}

/// moto, the CloudWatch stand-in and the event sources' stand-in (the bus ACTIVE), with
/// ten rate-limited API destinations.
fn stand_ins(rt: &tokio::runtime::Runtime) -> (Moto, CloudWatch, EventSources) {
    rt.block_on(async {
        let moto = Moto::start().await;
        let cloudwatch = CloudWatch::start().await;
        let sources = EventSources::start(&moto.endpoint).await;
        sources.set(BUS, "ACTIVE");
        let events = aws_sdk_eventbridge::Client::new(&moto.sdk().await);
        let connection = dlq_triage_test_support::moto::api_key_connection(&events, "bench").await;
        for d in 0..10 {
            events
                .create_api_destination()
                .name(format!("dest-{d}"))
                .connection_arn(&connection)
                .invocation_endpoint("https://example.com/hook")
                .http_method(aws_sdk_eventbridge::types::ApiDestinationHttpMethod::Post)
                .invocation_rate_limit_per_second(10)
                .send()
                .await
                .unwrap();
        }
        (moto, cloudwatch, sources)
    })
}

fn main() {
    let rules = env_or("RULES", 1000);
    let runs = env_or("RUNS", 3);
    let delay = env_or("CW_DELAY_MS", 20) as u64;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = scratch();
    let now = chrono::Utc::now().timestamp();
    reports(dir.path(), rules, now);
    let (moto, cloudwatch, sources) = stand_ins(&rt);
    metrics(&cloudwatch, rules, now);
    cloudwatch.set_latency(Duration::from_millis(delay));
    let run = |health: bool| {
        let out = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = dlq_triage(&["summarize", "--json", "--since", "30d"]);
        cmd.arg(dir.path().join("reports"))
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_ENDPOINT_URL_CLOUDWATCH", &cloudwatch.endpoint)
            .env("AWS_ENDPOINT_URL_EVENTBRIDGE", &sources.endpoint)
            .stdout(out.reopen().unwrap())
            .stderr(Stdio::null());
        if !health {
            cmd.arg("--no-health");
        }
        let measured = run_measured(&mut cmd);
        assert_eq!(measured.code, 0, "summarize failed");
        let json: Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
        (measured, json)
    };
    let mut with = Vec::new();
    let mut without = Vec::new();
    let (before_get, before_list) = (
        cloudwatch.calls("GetMetricData"),
        cloudwatch.calls("ListMetrics"),
    );
    for i in 0..runs {
        let (m, json) = run(true);
        let rules_out = json["health"]["rules"].as_array().unwrap();
        let found = rules_out
            .iter()
            .filter(|r| r["noMetrics"].is_null())
            .count();
        let lost = rules_out
            .iter()
            .filter(|r| r["namedByDeadLetters"] == false)
            .count();
        assert_eq!(
            found,
            rules + 50,
            "every rule's figures found: {}",
            json["health"]["unavailable"]
        );
        assert_eq!(lost, 50, "the rules no dead letter names that lost events");
        if i == 0 {
            println!(
                "health: {} rules read, period {} s, peaks per {} s; {} GetMetricData and {} ListMetrics call(s) a run",
                rules_out.len(),
                json["health"]["periodSeconds"],
                json["health"]["peakPeriodSeconds"],
                cloudwatch.calls("GetMetricData") - before_get,
                cloudwatch.calls("ListMetrics") - before_list,
            );
        }
        with.push(m.wall.as_secs_f64());
        without.push(run(false).0.wall.as_secs_f64());
    }
    println!(
        "summarize --since 30d, {rules} rules, CloudWatch at {delay} ms a call: {:.2} s with health, {:.2} s without (median of {runs})",
        median(with),
        median(without),
    );
}
