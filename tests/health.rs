//! `summarize`'s health table against stand-ins that keep the real services' rules:
//! EventBridge's metrics put under `AWS/Events` the way EventBridge publishes them, into
//! the CloudWatch stand-in of tests/support (it keeps CloudWatch's retention/period rule,
//! exact dimension sets, `ListMetrics`' two weeks and per-query status codes); API
//! destinations with their configured rate on moto; a denied CloudWatch call and a hung
//! one. The dead letters sit at a known age before the clock (3 days, 22 days, 2 hours),
//! as a real backlog does.

use std::path::{Path, PathBuf};
use std::process::Command;

use dlq_triage_test_support as support;
use serde_json::Value;
use support::cli::{analyzed, output, text};
use support::cloudwatch::CloudWatch;
use support::eventbridge::EventSources;
use support::fixtures::event_path;
use support::genesys_sim::{Sim, eventbridge_integration};
use support::world::World;

const BUS: &str = "aws.partner/genesys.com/cloud/cf6cb7d5-d0ea-45b5-b0cf-73ad5f5b8721/prod-events";
/// The sample batch's first dead letter (epoch seconds).
const FIRST: i64 = 1_795_856_761;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// The dimension set EventBridge's guide gives a rule's metrics on a custom or partner
/// bus.
fn on_bus(rule: &str) -> Vec<(&'static str, String)> {
    vec![
        ("EventBusName", BUS.to_owned()),
        ("RuleName", rule.to_owned()),
    ]
}

/// `{RuleName}` alone: the set the guide lists the dead-letter metrics under.
fn rule_only(rule: &str) -> Vec<(&'static str, String)> {
    vec![("RuleName", rule.to_owned())]
}

/// moto, the CloudWatch stand-in, the event-source stand-in in front of moto (the
/// Genesys partner source `ACTIVE`), and the first dead letter's time (epoch seconds) of
/// the reports in `dir`/reports.
struct Backlog {
    world: World,
    first: i64,
    dir: tempfile::TempDir,
}

impl Backlog {
    /// The sample batch's reports with their dead letters moved to `age` seconds before
    /// now, the records `keep` keeps; API destinations crm-webhook (10/s) and wfm-ingest
    /// (100/s) on moto.
    async fn start(age: i64, keep: impl Fn(&Value) -> bool) -> Backlog {
        let world = World::builder().cloudwatch().event_sources().build().await;
        world.sources().set(BUS, "ACTIVE");
        let connection = support::moto::api_key_connection(&world.events(), "crm").await;
        for (name, endpoint, limit) in [
            ("crm-webhook", "https://crm.example.com/hooks/genesys", 10),
            ("wfm-ingest", "https://wfm.example.com/ingest", 100),
        ] {
            world
                .api_destination(name, &connection, endpoint, limit)
                .await;
        }
        let dir = tempfile::tempdir().unwrap();
        let first = aged_reports(&dir.path().join("reports"), age, keep);
        Backlog { world, first, dir }
    }

    fn cloudwatch(&self) -> &CloudWatch {
        self.world.cloudwatch()
    }

    fn sources(&self) -> &EventSources {
        self.world.sources()
    }

    /// Puts `value` of `metric` under `dims` at the first dead letter + `minute` minutes.
    async fn put(&self, dims: &[(&str, String)], metric: &str, minute: i64, value: f64) {
        let dims: Vec<(&str, &str)> = dims.iter().map(|(n, v)| (*n, v.as_str())).collect();
        self.world
            .put_metric(metric, &dims, self.first + minute * 60, value)
            .await;
    }

    /// to-crm invoked 1,800 times a minute for five minutes with 18 a minute to the DLQ
    /// and 3 lost beyond it, 7 throttled; the dead-letter metrics under `dlq_dims`.
    async fn crm_metrics(&self, dlq_dims: &[(&str, String)]) {
        for minute in 0..5 {
            self.put(&on_bus("to-crm"), "Invocations", minute, 1800.0)
                .await;
            self.put(dlq_dims, "InvocationsSentToDlq", minute, 18.0)
                .await;
        }
        self.put(dlq_dims, "InvocationsFailedToBeSentToDlq", 2, 3.0)
            .await;
        self.put(&on_bus("to-crm"), "ThrottledRules", 1, 7.0).await;
    }

    fn reports(&self) -> PathBuf {
        self.dir.path().join("reports")
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn summarize(&self, out: &Path) -> Command {
        let mut cmd = self.world.cli(&["summarize"]);
        cmd.arg(self.reports()).arg("--out").arg(out);
        cmd
    }

    /// `summarize` into `out` with Genesys Cloud at `sim` (OAuth client `health-client`).
    fn summarize_with(&self, out: &Path, sim: &Sim) -> Command {
        let mut cmd = self.summarize(out);
        cmd.env("GENESYS_CLIENT_ID", "health-client")
            .env("GENESYS_CLIENT_SECRET", "health-secret")
            .env("GENESYS_API_BASE", sim.base_url());
        cmd
    }

    /// Runs summarize into `name`, which must succeed: its standard output and
    /// summary.json.
    async fn run(&self, name: &str) -> (String, Value) {
        let out = self.out(name);
        let run = output(self.summarize(&out)).await;
        assert!(run.status.success(), "{}", text(&run));
        let json =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        (String::from_utf8_lossy(&run.stdout).into_owned(), json)
    }
}

/// `analyze` of the sample batch into `reports`, then every dead-letter time moved by
/// whole minutes so that the first sits `age` seconds before now; the records `keep`
/// keeps. The first dead letter's new time (epoch seconds).
fn aged_reports(reports: &Path, age: i64, keep: impl Fn(&Value) -> bool) -> i64 {
    let mut report = analyzed(&event_path("sqs-mixed-batch.json"), reports);
    let now = chrono::Utc::now().timestamp();
    let shift = (now - age - FIRST).div_euclid(60) * 60;
    let moved = |v: &Value| {
        let t = chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
        let t = t.with_timezone(&chrono::Utc) + chrono::Duration::seconds(shift);
        Some(Value::from(
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ))
    };
    let records: Vec<Value> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| keep(r))
        .map(|r| {
            let mut r = r.clone();
            for key in ["sentTimestamp", "timestamp"] {
                if let Some(t) = moved(&r[key]) {
                    r[key] = t;
                }
            }
            r
        })
        .collect();
    report["totalFailures"] = records.len().into();
    report["records"] = records.into();
    std::fs::write(
        reports.join("report.json"),
        serde_json::to_vec(&report).unwrap(),
    )
    .unwrap();
    FIRST + shift
}

fn all(_: &Value) -> bool {
    true
}

/// The line of stdout naming rule `rule`.
fn rule_line<'a>(stdout: &'a str, rule: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("rule {rule} ")))
        .unwrap_or_else(|| panic!("no line for rule {rule}:\n{stdout}"))
}

fn rule_json<'a>(json: &'a Value, rule: &str) -> &'a Value {
    json["health"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleName"] == rule)
        .unwrap_or_else(|| panic!("no rule {rule}: {json}"))
}

#[tokio::test]
async fn the_health_table_gives_each_rules_ratio_the_lost_events_and_the_misses() {
    let world = Backlog::start(2 * HOUR, all).await;
    world.crm_metrics(&on_bus("to-crm")).await;
    for minute in 0..5 {
        world
            .put(&on_bus("to-wfm"), "Invocations", minute, 100.0)
            .await;
    }
    let (stdout, json) = world.run("summary").await;
    assert!(
        stdout.contains("LOST: 3 event(s) could not be put in the dead-letter queue"),
        "{stdout}"
    );
    let crm = rule_line(&stdout, "to-crm");
    assert!(crm.contains("invocations     9000"), "{crm}");
    assert!(crm.contains("sent to DLQ     90 (1.00 %)"), "{crm}");
    // to-wfm has dead letters in the window but no InvocationsSentToDlq: a miss, not 0 %.
    let wfm = rule_line(&stdout, "to-wfm");
    assert!(wfm.contains("invocations      500"), "{wfm}");
    assert!(
        wfm.contains("sent to DLQ missed (4 dead letter(s) name the rule in the window)"),
        "{wfm}"
    );
    assert!(!wfm.contains("0.00 %"), "{wfm}");
    let health = &json["health"];
    assert_eq!(health["lostBeyondDlq"], 3);
    assert_eq!(health["periodSeconds"], 1200);
    assert_eq!(health["peakPeriodSeconds"], 60);
    let crm = rule_json(&json, "to-crm");
    assert_eq!(crm["eventBusName"], BUS);
    assert_eq!(crm["metrics"]["ThrottledRules"], 7.0);
    assert_eq!(crm["peakInvocationsPerMinute"], 1800.0);
    let wfm = rule_json(&json, "to-wfm");
    assert_eq!(wfm["failureRatio"], Value::Null);
    assert_eq!(wfm["missed"][0], "InvocationsSentToDlq");
    let md = std::fs::read_to_string(world.out("summary").join("summary.md")).unwrap();
    assert!(md.contains("## Target health"), "{md}");
    assert!(md.contains("no target dimension"), "{md}");

    // --no-health reads nothing of it.
    let without = world.out("without");
    let mut cmd = world.summarize(&without);
    cmd.arg("--no-health");
    let run = output(cmd).await;
    assert!(run.status.success(), "{}", text(&run));
    assert!(!String::from_utf8_lossy(&run.stdout).contains("health"));
}

/// CloudWatch keeps 1-minute data 15 days and 5-minute data 63: a window 22 days old read
/// at 60 s answers no data points (and no error). Both ages find the figures.
#[tokio::test]
async fn windows_3_days_and_22_days_old_both_find_their_figures() {
    for (age, peak_period) in [(3 * DAY, 60), (22 * DAY, 300)] {
        let world = Backlog::start(age, all).await;
        world.crm_metrics(&on_bus("to-crm")).await;
        let (stdout, json) = world.run("summary").await;
        let crm = rule_line(&stdout, "to-crm");
        assert!(crm.contains("invocations     9000"), "{age}: {crm}");
        assert!(crm.contains("sent to DLQ     90 (1.00 %)"), "{age}: {crm}");
        assert_eq!(json["health"]["lostBeyondDlq"], 3, "{age}");
        assert_eq!(json["health"]["peakPeriodSeconds"], peak_period, "{age}");
        // The window named is the one read: rounded out to whole peak periods, around
        // the dead letters.
        let window = &json["health"]["window"];
        let time = |key: &str| {
            chrono::DateTime::parse_from_rfc3339(window[key].as_str().unwrap())
                .unwrap()
                .timestamp()
        };
        let (since, until) = (time("since"), time("until"));
        assert_eq!(since % peak_period, 0, "{age}: {window}");
        assert_eq!(until % peak_period, 0, "{age}: {window}");
        assert!(
            since <= world.first && until > world.first + 4 * 60,
            "{window}"
        );
        assert_eq!(
            json["health"]["periodSeconds"].as_i64(),
            Some(until - since),
            "{window}"
        );
        let peak = rule_json(&json, "to-crm")["peakInvocationsPerMinute"]
            .as_f64()
            .unwrap();
        if peak_period == 60 {
            assert_eq!(peak, 1800.0, "{age}");
        } else {
            // The five minutes of 1,800 fall in one or two 5-minute periods: the busiest
            // holds at least three of them, as a per-minute average.
            assert!((1080.0..=1800.0).contains(&peak), "{age}: {peak}");
            assert!(stdout.contains("peaks per 5 minutes"), "{stdout}");
        }
    }
}

/// The guide lists the dead-letter metrics under `RuleName` only; a partner-bus rule's
/// are found there as well as its invocations under both dimensions.
#[tokio::test]
async fn dead_letter_metrics_under_rule_name_only_for_a_partner_bus_rule_are_found() {
    let world = Backlog::start(2 * HOUR, all).await;
    world.crm_metrics(&rule_only("to-crm")).await;
    let (stdout, json) = world.run("summary").await;
    let crm = rule_line(&stdout, "to-crm");
    assert!(crm.contains("sent to DLQ     90 (1.00 %)"), "{crm}");
    assert!(stdout.contains("LOST: 3 event(s)"), "{stdout}");
    let crm = rule_json(&json, "to-crm");
    assert_eq!(crm["metrics"]["InvocationsSentToDlq"], 90.0);
    assert_eq!(crm["foundUnder"]["InvocationsSentToDlq"], "RuleName");
    assert_eq!(crm["foundUnder"]["Invocations"], "EventBusName,RuleName");
}

/// `{RuleName}` alone is the default bus's rule of that name: a partner-bus rule's own
/// `{EventBusName, RuleName}` figures stand even when a default-bus rule of the same name
/// has more under `{RuleName}`; the other set is read only for a metric its own lacks.
#[tokio::test]
async fn a_same_named_default_bus_rule_never_lends_its_figures() {
    let world = Backlog::start(2 * HOUR, all).await;
    world.crm_metrics(&rule_only("to-crm")).await;
    // The default bus's own to-crm, busier.
    for minute in 0..5 {
        world
            .put(&rule_only("to-crm"), "Invocations", minute, 5000.0)
            .await;
    }
    let (stdout, json) = world.run("summary").await;
    let crm = rule_line(&stdout, "to-crm");
    assert!(crm.contains("invocations     9000"), "{crm}");
    let crm = rule_json(&json, "to-crm");
    assert_eq!(crm["metrics"]["Invocations"], 9000.0);
    assert_eq!(crm["foundUnder"]["Invocations"], "EventBusName,RuleName");
    // The dead-letter metrics, under {RuleName} alone, are still found.
    assert_eq!(crm["metrics"]["InvocationsSentToDlq"], 90.0);
    assert_eq!(crm["foundUnder"]["InvocationsSentToDlq"], "RuleName");
}

/// A rule whose metrics are under neither set (here: under the bus alone) has no
/// figures: "no metrics found", and summary.json says so instead of zeros.
#[tokio::test]
async fn metrics_under_neither_set_print_no_metrics_found_never_zero() {
    let world = Backlog::start(2 * HOUR, all).await;
    world.crm_metrics(&on_bus("to-crm")).await;
    world
        .put(&[("EventBusName", BUS.to_owned())], "Invocations", 0, 100.0)
        .await;
    let (stdout, json) = world.run("summary").await;
    let wfm = rule_line(&stdout, "to-wfm");
    assert!(
        wfm.contains("no metrics found for rule to-wfm (no data under {RuleName} or {EventBusName, RuleName} in the window)"),
        "{wfm}"
    );
    assert!(!wfm.contains("invocations"), "{wfm}");
    let wfm = rule_json(&json, "to-wfm");
    assert!(
        wfm["noMetrics"].as_str().unwrap().contains("no data under"),
        "{wfm}"
    );
    assert_eq!(wfm["metrics"], serde_json::json!({}));
    assert_eq!(wfm["failureRatio"], Value::Null);
    assert!(wfm.get("peakInvocationsPerMinute").is_none(), "{wfm}");
    let md = std::fs::read_to_string(world.out("summary").join("summary.md")).unwrap();
    assert!(md.contains("no metrics found for rule to-wfm"), "{md}");
}

/// When every send to the DLQ fails, no dead letter names the rule: it is found by its
/// `InvocationsFailedToBeSentToDlq` all the same, and heads the output.
#[tokio::test]
async fn a_rule_no_dead_letter_names_that_lost_7_events_is_named_lost() {
    let world = Backlog::start(2 * HOUR, all).await;
    world.crm_metrics(&on_bus("to-crm")).await;
    world
        .put(
            &rule_only("to-billing"),
            "InvocationsFailedToBeSentToDlq",
            3,
            7.0,
        )
        .await;
    // Lost long before the window: not this incident's.
    world
        .put(
            &rule_only("to-archive"),
            "InvocationsFailedToBeSentToDlq",
            -600,
            2.0,
        )
        .await;
    let (stdout, json) = world.run("summary").await;
    let lines: Vec<&str> = stdout.lines().collect();
    let lost = lines
        .iter()
        .position(|l| l.starts_with("LOST: rule to-billing"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        lines[lost].contains("7 event(s) could not be put in the dead-letter queue"),
        "{stdout}"
    );
    assert!(lines[lost].contains("no dead letter names it"), "{stdout}");
    let table = lines
        .iter()
        .position(|l| l.starts_with("health ("))
        .unwrap();
    assert!(lost < table, "{stdout}");
    assert!(!stdout.contains("to-archive"), "{stdout}");
    assert_eq!(json["health"]["lostBeyondDlq"], 10);
    let billing = rule_json(&json, "to-billing");
    assert_eq!(billing["metrics"]["InvocationsFailedToBeSentToDlq"], 7.0);
    assert_eq!(billing["namedByDeadLetters"], false);
    assert_eq!(json["health"]["rules"][0]["ruleName"], "to-billing");
}

/// 600 rules no dead letter names lost events: `ListMetrics` lists them over two pages and
/// they take two `GetMetricData` calls; the call holding `lost-599` fails. The 500 of the
/// call that answered are still named LOST, and the failed part is named.
#[tokio::test]
async fn lost_rules_over_two_listing_pages_keep_their_figures_when_one_read_fails() {
    let world = Backlog::start(2 * HOUR, all).await;
    world.crm_metrics(&on_bus("to-crm")).await;
    let names: Vec<String> = (0..600).map(|n| format!("lost-{n:03}")).collect();
    let dims: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("RuleName", n.as_str())]).collect();
    world.cloudwatch().put_many(dims.iter().map(|d| {
        (
            "AWS/Events",
            "InvocationsFailedToBeSentToDlq",
            &d[..],
            world.first + 120,
            1.0,
        )
    }));
    world.cloudwatch().fail_calls_naming("lost-599");
    let (stdout, json) = world.run("summary").await;
    assert_eq!(world.cloudwatch().calls("ListMetrics"), 2);
    let lost: Vec<&Value> = json["health"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["namedByDeadLetters"] == false)
        .collect();
    assert_eq!(lost.len(), 500, "{stdout}");
    assert!(lost.iter().any(|r| r["ruleName"] == "lost-000"));
    assert!(!lost.iter().any(|r| r["ruleName"] == "lost-599"));
    // to-crm's 3 and the 500 read.
    assert_eq!(json["health"]["lostBeyondDlq"], 503);
    let line = stdout
        .lines()
        .find(|l| l.contains("unavailable: CloudWatch GetMetricData (us-east-1)"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("lost events not read for 100 rule(s) no dead letter names: lost-500"),
        "{line}"
    );
    assert!(line.contains("lost-599"), "{line}");
    assert!(
        stdout.contains("LOST: rule lost-000: 1 event(s)"),
        "{stdout}"
    );
}

/// A result CloudWatch marks `PartialData` is not read as the rule's figures.
#[tokio::test]
async fn a_partial_data_result_is_named() {
    let world = Backlog::start(2 * HOUR, all).await;
    world.crm_metrics(&on_bus("to-crm")).await;
    world
        .cloudwatch()
        .force_status("to-crm", "PartialData", "Too many datapoints requested");
    let (stdout, json) = world.run("summary").await;
    let crm = rule_line(&stdout, "to-crm");
    assert!(
        crm.contains("no metrics found for rule to-crm (CloudWatch answered PartialData"),
        "{crm}"
    );
    assert!(crm.contains("Too many datapoints requested"), "{crm}");
    assert!(!crm.contains("invocations"), "{crm}");
    assert_eq!(rule_json(&json, "to-crm")["metrics"], serde_json::json!({}));
}

/// The endpoint's own 429s call for the endpoint's limit; EventBridge's throttling with
/// matched events above `InvocationRateLimitPerSecond` calls for that limit, named with
/// the rate the events matched at (delivered invocations cannot exceed the limit).
/// to-crm's events matched at 30/s and delivered at its API destination's limit of 10/s.
async fn throttled_metrics(world: &Backlog) {
    for minute in 0..5 {
        world
            .put(&on_bus("to-crm"), "TriggeredRules", minute, 1800.0)
            .await;
        world
            .put(&on_bus("to-crm"), "Invocations", minute, 600.0)
            .await;
        world
            .put(&rule_only("to-crm"), "InvocationsSentToDlq", minute, 1.0)
            .await;
    }
}

#[tokio::test]
async fn an_endpoint_429_flood_advises_the_endpoint_and_an_under_set_limit_the_limit() {
    let crm = |r: &Value| {
        r["targetArn"]
            .as_str()
            .unwrap_or("")
            .contains("crm-webhook")
    };
    // Only the endpoint's 429s.
    let world = Backlog::start(2 * HOUR, |r| crm(r) && r["httpStatus"] == 429).await;
    throttled_metrics(&world).await;
    let (stdout, json) = world.run("summary").await;
    let advice = stdout
        .lines()
        .find(|l| l.contains("advice:"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        advice.contains("the endpoint answered HTTP 429"),
        "{advice}"
    );
    assert!(
        !advice.contains("raise InvocationRateLimitPerSecond"),
        "{advice}"
    );
    let d = &json["health"]["apiDestinations"][0];
    assert_eq!(d["endpointThrottled"], 3);

    // Only EventBridge's throttling.
    let world = Backlog::start(2 * HOUR, |r| crm(r) && r["errorCode"] == "THROTTLING").await;
    throttled_metrics(&world).await;
    let (stdout, json) = world.run("summary").await;
    let advice = stdout
        .lines()
        .find(|l| l.contains("advice:"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        advice.contains("raise InvocationRateLimitPerSecond (10/s) to at least 30"),
        "{advice}"
    );
    assert!(
        advice.contains("matched at 30.0/s averaged over the busiest minute"),
        "{advice}"
    );
    assert!(!advice.contains("429"), "{advice}");
    assert_eq!(
        json["health"]["apiDestinations"][0]["peakMatchedPerSecond"],
        30.0
    );
}

#[tokio::test]
async fn a_denied_or_hung_look_up_is_one_line_and_the_summary_is_still_written() {
    let world = Backlog::start(2 * HOUR, all).await;

    // CloudWatch on a black hole: bounded, named, the summary written.
    let hole = support::net::black_hole().await;
    let out = world.out("hung");
    let mut cmd = world.summarize(&out);
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
    let out = world.out("denied");
    let mut cmd = world.summarize(&out);
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

/// The Genesys side: an integration in ERROR feeding the rules' partner bus, and a
/// partner event source still PENDING, head the health: no dead letter can show events
/// that were never sent. An integration feeding another bus is listed, not a headline.
#[tokio::test]
async fn an_integration_in_error_or_a_pending_source_is_the_headline() {
    let world = Backlog::start(2 * HOUR, all).await;
    world.sources().set(BUS, "PENDING");
    let sim = Sim::with_integrations(
        "health-client",
        "health-secret",
        [
            eventbridge_integration(
                "prod-events",
                "ERROR",
                "The AWS account could not be reached",
            ),
            eventbridge_integration("test-events", "ACTIVE", ""),
            // Disabled on purpose, and its suffix feeds none of the rules' buses.
            eventbridge_integration("old-events", "INACTIVE", ""),
        ],
    )
    .await;
    let out = world.out("summary");
    let cmd = world.summarize_with(&out, &sim);
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
    assert_eq!(stdout.matches("NOT SENDING").count(), 2, "{stdout}");
    assert!(
        !stdout.contains("old-events\" is"),
        "a disabled integration feeding no rule's bus is no headline: {stdout}"
    );
    assert!(
        stdout.contains("genesys integration \"Amazon EventBridge Source old-events\": INACTIVE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("genesys integration \"Amazon EventBridge Source test-events\": ACTIVE")
    );
    assert!(!stdout.contains("health-secret") && !stdout.contains("sim-token"));
    let json: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["health"]["eventSources"][0]["state"], "PENDING");
    let prod = json["health"]["genesysIntegrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["eventSourceSuffix"] == "prod-events")
        .unwrap();
    assert_eq!(prod["code"], "ERROR");
    assert_eq!(prod["feedsRules"], true);
}

/// Forty rules take more than one `GetMetricData` call of 500 queries; the call holding
/// `rule-39` fails: the other rules keep their figures, and the failed part is named.
#[tokio::test]
async fn a_failed_call_costs_only_its_own_rules_figures() {
    let world = Backlog::start(2 * HOUR, all).await;
    let path = world.reports().join("report.json");
    let mut report: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let template = report["records"][0].clone();
    let records: Vec<Value> = (0..40)
        .map(|n| {
            let mut r = template.clone();
            r["messageId"] = format!("m-{n}").into();
            r["ruleArn"] =
                format!("arn:aws:events:us-east-1:111122223333:rule/{BUS}/rule-{n:02}").into();
            r
        })
        .collect();
    report["records"] = records.into();
    std::fs::write(&path, serde_json::to_vec(&report).unwrap()).unwrap();
    for n in 0..40 {
        let rule = format!("rule-{n:02}");
        world.put(&on_bus(&rule), "Invocations", 0, 100.0).await;
        world
            .put(&rule_only(&rule), "InvocationsSentToDlq", 0, 1.0)
            .await;
    }
    world.cloudwatch().fail_calls_naming("rule-39");
    let (stdout, json) = world.run("summary").await;
    assert!(world.cloudwatch().calls("GetMetricData") >= 2);
    assert!(world.cloudwatch().most_queries_per_call() <= 500);
    let line = stdout
        .lines()
        .find(|l| l.contains("unavailable: CloudWatch GetMetricData (us-east-1)"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("rule-39"), "{line}");
    assert!(!line.contains("rule-00"), "{line}");
    let first = rule_line(&stdout, "rule-00");
    assert!(first.contains("invocations      100"), "{first}");
    assert!(
        rule_line(&stdout, "rule-39")
            .contains("no metrics found for rule rule-39 (CloudWatch GetMetricData failed")
    );
    let found = json["health"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["noMetrics"].is_null())
        .count();
    assert!((20..40).contains(&found), "{found}");
}

/// Genesys Cloud's integrations come a page at a time, each naming the next (`nextUri`);
/// a 429 or a 5xx is said to be one, not blamed on the OAuth client's permission.
#[tokio::test]
async fn integrations_are_paged_by_next_uri_and_a_429_or_5xx_is_named() {
    let world = Backlog::start(2 * HOUR, all).await;
    let others = (0..129).map(|n| eventbridge_integration(&format!("other-{n}"), "INACTIVE", ""));
    // On the second page.
    let prod = eventbridge_integration("prod-events", "ERROR", "Access denied");
    let sim = Sim::with_integrations("health-client", "health-secret", others.chain([prod])).await;
    let run = |name: &str| {
        let cmd = world.summarize_with(&world.out(name), &sim);
        async move {
            let run = output(cmd).await;
            assert!(run.status.success(), "{}", text(&run));
            String::from_utf8_lossy(&run.stdout).into_owned()
        }
    };
    let stdout = run("paged").await;
    assert!(
        stdout.contains("NOT SENDING: Genesys Cloud integration \"Amazon EventBridge Source prod-events\" is ERROR"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("NOT SENDING").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("genesys integration \"").count(), 130);

    for (status, said) in [(429, "rate-limiting"), (503, "failed to answer")] {
        *sim.state.integrations_status.lock().unwrap() = status;
        sim.state
            .integrations_fail
            .store(1, std::sync::atomic::Ordering::SeqCst);
        let stdout = run(&format!("failed-{status}")).await;
        let line = stdout
            .lines()
            .find(|l| l.contains("unavailable: Genesys Cloud integrations"))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains(&format!("HTTP {status}")), "{line}");
        assert!(line.contains(said), "{line}");
        assert!(line.contains("not a permission problem"), "{line}");
        assert!(!line.contains("integrations:integration:view"), "{line}");
    }
}

/// EventBridge deauthorizes a connection after the endpoint answers 401 or 407, and every
/// event through it then fails as AUTHENTICATION_REJECTED: the state is named, and so is
/// the fix.
#[tokio::test]
async fn a_deauthorized_connection_explains_an_authentication_rejected_flood() {
    let world = Backlog::start(2 * HOUR, all).await;
    world.crm_metrics(&on_bus("to-crm")).await;
    world.sources().set_connection("crm", "DEAUTHORIZED");
    let (stdout, json) = world.run("summary").await;
    let lines: Vec<&str> = stdout.lines().collect();
    let wfm = lines
        .iter()
        .position(|l| l.contains("api-destination wfm-ingest"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(lines[wfm].contains("connection DEAUTHORIZED"), "{stdout}");
    assert!(
        lines[wfm + 1].contains("its connection is DEAUTHORIZED")
            && lines[wfm + 1].contains("AUTHENTICATION_REJECTED (2 here)")
            && lines[wfm + 1].contains("update the connection's credentials"),
        "{stdout}"
    );
    let wfm = json["health"]["apiDestinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "wfm-ingest")
        .unwrap();
    assert_eq!(wfm["connectionState"], "DEAUTHORIZED");
}
