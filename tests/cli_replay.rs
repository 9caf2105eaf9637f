//! `dlq-triage replay` end to end: the real binary over reports written by `analyze`,
//! sending to a local HTTP sink (tests/support/sink.rs), and to SQS, EventBridge and S3
//! in `moto_server`, and to the Lambda Invoke API served by the sink.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dlq_triage_test_support::cli::{analyzed, dlq_triage, output, text};
use dlq_triage_test_support::fixtures::event_path;
use dlq_triage_test_support::moto::{Moto, rule_with_target};
use dlq_triage_test_support::sink::{Answer, Sink};
use dlq_triage_test_support::sqs::Queue;
use serde_json::{Value, json};

/// The sample batch of 20 dead letters, analysed into `dir/out`.
fn sample(dir: &Path) -> (PathBuf, Value) {
    let out = dir.join("out");
    let report = analyzed(&event_path("sqs-mixed-batch.json"), &out);
    (out.join("report.json"), report)
}

fn replay_command(args: &[&str]) -> Command {
    let mut cmd = dlq_triage(&["replay"]);
    cmd.args(args);
    cmd
}

async fn replay(args: &[&str]) -> Output {
    output(replay_command(args)).await
}

/// The ids and payload paths of the report's records of `category`.
fn payloads(report: &Value, out: &Path, category: &str) -> Vec<(String, Vec<u8>)> {
    report["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["failureCategory"] == category)
        .map(|r| {
            let path = out.join(r["replayPayloadKey"].as_str().unwrap());
            (
                r["messageId"].as_str().unwrap().to_owned(),
                std::fs::read(path).unwrap(),
            )
        })
        .collect()
}

fn journal(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_says_what_it_would_send() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = sample(dir.path());
    let sink = Sink::start(Answer::Status(200)).await;
    let o = replay(&[report.to_str().unwrap(), "--to-url", &sink.url]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(sink.received().is_empty());
    let stdout = String::from_utf8_lossy(&o.stdout);
    // 20 dead letters, one of them a Custom Event Bus summary (not an event).
    assert!(stdout.contains("would send  19"), "{}", text(&o));
    assert!(stdout.contains("not replayable: 1"), "{}", text(&o));
    assert!(
        stdout.contains("Custom Event Bus failure summary"),
        "{}",
        text(&o)
    );
    assert!(stdout.contains("RATE_LIMIT_EXCEEDED"), "{stdout}");
    assert!(stdout.contains("add --execute"), "{stdout}");
    assert!(
        !dir.path().join("out/replay-journal.jsonl").exists(),
        "a dry run writes no journal"
    );
}

#[tokio::test]
async fn payloads_reach_the_url_byte_for_byte_with_headers_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (report_path, report) = sample(dir.path());
    let sink = Sink::start(Answer::Status(204)).await;
    let token = "Bearer replay-secret-7f3a";
    let mut cmd = replay_command(&[
        report_path.to_str().unwrap(),
        "--category",
        "RATE_LIMIT_EXCEEDED",
        "--to-url",
        &format!("{}/hooks/genesys", sink.url),
        "--header",
        "Authorization=CRM_TOKEN",
        "--execute",
    ]);
    cmd.env("CRM_TOKEN", token);
    let o = output(cmd).await;
    assert!(o.status.success(), "{}", text(&o));

    let expected = payloads(
        &report,
        &report_path.with_file_name(""),
        "RATE_LIMIT_EXCEEDED",
    );
    assert_eq!(expected.len(), 4);
    let got = sink.received();
    assert_eq!(got.len(), 4);
    for r in &got {
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/hooks/genesys");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("authorization"), Some(token));
        assert!(
            expected.iter().any(|(_, body)| body == &r.body),
            "a body that is no stored payload: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let lines = journal(&dir.path().join("out/replay-journal.jsonl"));
    assert_eq!(lines.len(), 4);
    assert!(
        lines
            .iter()
            .all(|l| l["status"] == "sent" && l["httpStatus"] == 204)
    );
    let everything = format!(
        "{}{}",
        text(&o),
        std::fs::read_to_string(dir.path().join("out/replay-journal.jsonl")).unwrap()
    );
    assert!(!everything.contains("replay-secret"), "{everything}");
}

#[tokio::test]
async fn the_rate_holds_at_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = sample(dir.path());
    let sink = Sink::start(Answer::Status(200)).await;
    let o = replay(&[
        report.to_str().unwrap(),
        "--to-url",
        &sink.url,
        "--rate",
        "8",
        "--concurrency",
        "4",
        "--execute",
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let mut at: Vec<_> = sink.received().iter().map(|r| r.at).collect();
    at.sort();
    assert_eq!(at.len(), 19);
    // 19 requests at 8/s span at least 18/8 s; measured at the sink.
    let span = at[18] - at[0];
    assert!(span >= Duration::from_millis(2150), "{span:?}");
    let mut gaps: Vec<_> = at.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort();
    assert!(
        gaps[gaps.len() / 2] >= Duration::from_millis(100),
        "{gaps:?}"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (report_path, report) = sample(dir.path());
    let id = report["records"][0]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let sink = Sink::start(Answer::Status(200)).await;
    sink.script([Answer::RetryAfter(429, "2".into())]);
    let o = replay(&[
        report_path.to_str().unwrap(),
        "--message-id",
        &id,
        "--to-url",
        &sink.url,
        "--execute",
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(1950),
        "{:?}",
        got[1].at - got[0].at
    );
    let lines = journal(&dir.path().join("out/replay-journal.jsonl"));
    assert_eq!(lines[0]["attempts"], 2, "{lines:?}");
}

#[tokio::test]
async fn a_rerun_with_the_journal_resends_only_the_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = sample(dir.path());
    let sink = Sink::start(Answer::Status(200)).await;
    // The second request is refused outright (no retry for a 400).
    sink.script([Answer::Status(200), Answer::Status(400)]);
    let args = [
        report.to_str().unwrap(),
        "--category",
        "ENDPOINT_UNREACHABLE",
        "--to-url",
        &sink.url,
        "--concurrency",
        "1",
        "--execute",
    ];
    let first = replay(&args).await;
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    let failed_body = sink.received()[1].body.clone();
    assert_eq!(sink.received().len(), 4);

    let second = replay(&args).await;
    assert!(second.status.success(), "{}", text(&second));
    let got = sink.received();
    assert_eq!(got.len(), 5, "only the failure is sent again");
    assert_eq!(got[4].body, failed_body);
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("already sent: 3"),
        "{}",
        text(&second)
    );
}

#[tokio::test]
async fn the_circuit_breaker_stops_a_run_against_a_failing_destination() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = sample(dir.path());
    let sink = Sink::start(Answer::Status(500)).await;
    let o = replay(&[
        report.to_str().unwrap(),
        "--to-url",
        &sink.url,
        "--concurrency",
        "1",
        "--max-attempts",
        "2",
        "--breaker",
        "4",
        "--execute",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(sink.received().len(), 4);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("circuit breaker"), "{}", text(&o));
    assert!(stdout.contains("not attempted: 17"), "{}", text(&o));
    // What was never attempted is not in the journal: a rerun sends it.
    assert_eq!(
        journal(&dir.path().join("out/replay-journal.jsonl")).len(),
        2
    );
}

#[tokio::test]
async fn a_destination_that_hangs_fails_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (report_path, report) = sample(dir.path());
    let id = report["records"][0]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let sink = Sink::start(Answer::Hang).await;
    let started = std::time::Instant::now();
    let o = replay(&[
        report_path.to_str().unwrap(),
        "--message-id",
        &id,
        "--to-url",
        &sink.url,
        "--timeout-seconds",
        "1",
        "--max-attempts",
        "1",
        "--execute",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("timed out"),
        "{}",
        text(&o)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn records_listed_by_two_reports_are_sent_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = analyzed(&event_path("sqs-mixed-batch.json"), &dir.path().join("a"));
    analyzed(&event_path("sqs-mixed-batch.json"), &dir.path().join("b"));
    let sink = Sink::start(Answer::Status(200)).await;
    let o = replay(&[
        dir.path().join("a/report.json").to_str().unwrap(),
        dir.path().join("b/report.json").to_str().unwrap(),
        "--to-url",
        &sink.url,
        "--rate",
        "1000",
        "--execute",
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let got = sink.received();
    // Every record but the Custom Event Bus summary, once.
    assert_eq!(got.len(), a["totalFailures"].as_u64().unwrap() as usize - 1);
    let mut bodies: Vec<_> = got.iter().map(|r| r.body.clone()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), got.len(), "no event twice");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("20 listed again"),
        "{}",
        text(&o)
    );
}

#[tokio::test]
async fn bad_arguments_get_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = sample(dir.path());
    let r = report.to_str().unwrap();
    for (args, says) in [
        (
            vec![r, "--category", "SLOW", "--to-url", "http://127.0.0.1:9"],
            "not a category",
        ),
        (
            vec![
                r,
                "--to-url",
                "http://127.0.0.1:9",
                "--header",
                "X=UNSET_VAR_1",
            ],
            "UNSET_VAR_1 is not set",
        ),
        (
            vec!["/nonexistent/report.json", "--to-url", "http://127.0.0.1:9"],
            "/nonexistent/report.json",
        ),
        (
            vec![r, "--to-url", "ftp://user:pw@127.0.0.1/x"],
            "only http and https",
        ),
    ] {
        let o = replay(&args).await;
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("pw@"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let not_a_report = dir.path().join("x.json");
    std::fs::write(&not_a_report, "{\"Records\": []}").unwrap();
    let o = replay(&[
        not_a_report.to_str().unwrap(),
        "--to-url",
        "http://127.0.0.1:9",
    ])
    .await;
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a dlq-triage report"),
        "{}",
        text(&o)
    );
}

// ---- AWS destinations, in moto -------------------------------------------------------

/// The single-record batch with its rule and target replaced.
fn batch_for(dir: &Path, rule_arn: &str, target_arn: &str) -> PathBuf {
    let mut batch: Value =
        serde_json::from_slice(&std::fs::read(event_path("sqs-single.json")).unwrap()).unwrap();
    let attrs = &mut batch["Records"][0]["messageAttributes"];
    attrs["RULE_ARN"]["stringValue"] = json!(rule_arn);
    attrs["TARGET_ARN"]["stringValue"] = json!(target_arn);
    let path = dir.join("batch.json");
    std::fs::write(&path, serde_json::to_vec(&batch).unwrap()).unwrap();
    path
}

fn aws_replay(moto: &Moto, args: &[&str]) -> Command {
    let mut cmd = replay_command(args);
    cmd.env("AWS_ENDPOINT_URL", &moto.endpoint);
    cmd
}

#[tokio::test]
async fn to_target_delivers_what_the_rules_input_transformer_makes_of_the_event() {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let crm = Queue::create(&sdk, "crm-intake").await;
    let arn = crm.arn().await;
    events
        .create_event_bus()
        .name("genesys")
        .send()
        .await
        .unwrap();
    let transformer = aws_sdk_eventbridge::types::InputTransformer::builder()
        .input_paths_map("conversation", "$.detail.eventBody.conversationId")
        .input_paths_map("said", "$.detail.eventBody.transcripts[0].alternatives[0].transcript")
        .input_template(
            r#"{"conversation": <conversation>, "text": "Customer said: <said>", "rule": <aws.events.rule-name>}"#,
        )
        .build()
        .unwrap();
    let rule_arn = rule_with_target(
        &events,
        Some("genesys"),
        "to-crm",
        r#"{"source":[{"prefix":"aws.partner/genesys.com"}]}"#,
        aws_sdk_eventbridge::types::Target::builder()
            .id("crm")
            .arn(&arn)
            .input_transformer(transformer)
            .build()
            .unwrap(),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    analyzed(
        &batch_for(dir.path(), &rule_arn, &arn),
        &dir.path().join("out"),
    );
    let report = dir.path().join("out/report.json");

    let dry = output(aws_replay(
        &moto,
        &[report.to_str().unwrap(), "--to-target"],
    ))
    .await;
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("transforms its input (InputTransformer)"),
        "{}",
        text(&dry)
    );
    assert!(crm.bodies().await.is_empty(), "the dry run sent nothing");

    let o = output(aws_replay(
        &moto,
        &[report.to_str().unwrap(), "--to-target", "--execute"],
    ))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let got = crm.bodies().await;
    assert_eq!(got.len(), 1, "{}", text(&o));
    let body: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(
        body,
        json!({
            "conversation": "dfb001c4-5aff-4add-a4a7-1a2e6ee6b6fe",
            "text": "Customer said: I would like to check my balance",
            "rule": "to-crm"
        })
    );
}

#[tokio::test]
async fn to_target_calls_an_api_destination_with_the_targets_http_parameters() {
    let moto = Moto::start().await;
    let events = aws_sdk_eventbridge::Client::new(&moto.sdk().await);
    let sink = Sink::start(Answer::Status(200)).await;
    let connection = dlq_triage_test_support::moto::api_key_connection(&events, "crm").await;
    let api = events
        .create_api_destination()
        .name("crm-webhook")
        .connection_arn(&connection)
        .invocation_endpoint(format!("{}/conversations/*/events", sink.url))
        .http_method(aws_sdk_eventbridge::types::ApiDestinationHttpMethod::Put)
        .send()
        .await
        .unwrap();
    let api_arn = api.api_destination_arn().unwrap().to_owned();
    let rule_arn = rule_with_target(
        &events,
        None,
        "to-crm",
        r#"{"source":[{"prefix":"aws.partner/"}]}"#,
        aws_sdk_eventbridge::types::Target::builder()
            .id("crm")
            .arn(&api_arn)
            .input_path("$.detail.eventBody")
            .http_parameters(
                aws_sdk_eventbridge::types::HttpParameters::builder()
                    .path_parameter_values("$.detail.eventBody.conversationId")
                    .header_parameters("X-Genesys-Topic", "$.detail.topicName")
                    .query_string_parameters("source", "dlq-replay")
                    .build(),
            )
            .build()
            .unwrap(),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    analyzed(
        &batch_for(dir.path(), &rule_arn, &api_arn),
        &dir.path().join("out"),
    );
    let report = dir.path().join("out/report.json");
    let mut cmd = aws_replay(
        &moto,
        &[
            report.to_str().unwrap(),
            "--to-target",
            "--header",
            "x-api-key=CRM_KEY",
            "--execute",
        ],
    );
    cmd.env("CRM_KEY", "k-123");
    let o = output(cmd).await;
    assert!(o.status.success(), "{}", text(&o));
    let got = sink.received();
    assert_eq!(got.len(), 1, "{}", text(&o));
    let r = &got[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(
        r.uri,
        "/conversations/dfb001c4-5aff-4add-a4a7-1a2e6ee6b6fe/events?source=dlq-replay"
    );
    assert_eq!(
        r.header("x-genesys-topic"),
        Some("v2.conversations.dfb001c4-5aff-4add-a4a7-1a2e6ee6b6fe.transcription")
    );
    assert_eq!(r.header("x-api-key"), Some("k-123"));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body["conversationId"],
        "dfb001c4-5aff-4add-a4a7-1a2e6ee6b6fe"
    );
    assert!(
        body.get("detail").is_none(),
        "InputPath selected the eventBody"
    );
}

/// API destination `crm-hook` posting to `{sink_url}/hook` through connection `crm-keyed`
/// (header `x-api-key: key_value`), the target of rule `to-crm-keyed`: (its ARN, the
/// rule's ARN).
async fn keyed_api_destination(
    events: &aws_sdk_eventbridge::Client,
    sink_url: &str,
    key_value: &str,
) -> (String, String) {
    use aws_sdk_eventbridge::types::{
        ConnectionAuthorizationType, CreateConnectionApiKeyAuthRequestParameters,
        CreateConnectionAuthRequestParameters,
    };
    let key = CreateConnectionApiKeyAuthRequestParameters::builder()
        .api_key_name("x-api-key")
        .api_key_value(key_value)
        .build()
        .unwrap();
    let connection = events
        .create_connection()
        .name("crm-keyed")
        .authorization_type(ConnectionAuthorizationType::ApiKey)
        .auth_parameters(
            CreateConnectionAuthRequestParameters::builder()
                .api_key_auth_parameters(key)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let api = events
        .create_api_destination()
        .name("crm-hook")
        .connection_arn(connection.connection_arn().unwrap())
        .invocation_endpoint(format!("{sink_url}/hook"))
        .http_method(aws_sdk_eventbridge::types::ApiDestinationHttpMethod::Post)
        .send()
        .await
        .unwrap();
    let api_arn = api.api_destination_arn().unwrap().to_owned();
    let rule_arn = rule_with_target(
        events,
        None,
        "to-crm-keyed",
        r#"{"source":[{"prefix":"aws.partner/"}]}"#,
        aws_sdk_eventbridge::types::Target::builder()
            .id("crm")
            .arn(&api_arn)
            .build()
            .unwrap(),
    )
    .await;
    (api_arn, rule_arn)
}

/// Without --header, an API destination gets the API key its connection holds (read
/// through DescribeConnection and the connection's secret, as EventBridge does), and the
/// key is in no line the run prints or journals; --no-connection-auth sends without it.
#[tokio::test]
async fn to_target_takes_an_api_destinations_key_from_its_connection_and_never_shows_it() {
    const KEY: &str = "crm-key-6d1f0b-never-shown";
    let moto = Moto::start().await;
    let events = aws_sdk_eventbridge::Client::new(&moto.sdk().await);
    let sink = Sink::start(Answer::Status(200)).await;
    let (api_arn, rule_arn) = keyed_api_destination(&events, &sink.url, KEY).await;
    let dir = tempfile::tempdir().unwrap();
    analyzed(
        &batch_for(dir.path(), &rule_arn, &api_arn),
        &dir.path().join("out"),
    );
    let report = dir.path().join("out/report.json");
    let journal_path = dir.path().join("journal.jsonl");
    let run = |extra: &[&str]| {
        let mut args = vec![
            report.to_str().unwrap(),
            "--to-target",
            "--journal",
            journal_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        aws_replay(&moto, &args)
    };

    let dry = output(run(&[])).await;
    let o = output(run(&["--execute"])).await;
    assert!(o.status.success(), "{}", text(&o));
    let got = sink.received();
    assert_eq!(got.len(), 1, "{}", text(&o));
    assert_eq!(got[0].header("x-api-key"), Some(KEY));
    let journal_text = std::fs::read_to_string(&journal_path).unwrap();
    for shown in [text(&dry), text(&o), journal_text] {
        assert!(!shown.contains(KEY), "the key is shown: {shown}");
    }

    let o = output(run(&["--execute", "--force", "--no-connection-auth"])).await;
    assert!(o.status.success(), "{}", text(&o));
    let got = sink.received();
    assert_eq!(got.len(), 2, "{}", text(&o));
    assert_eq!(got[1].header("x-api-key"), None, "--no-connection-auth");

    // A 401 (as to an expired token) is tried once more with the connection read afresh,
    // as EventBridge does; the key is still shown nowhere.
    sink.script([Answer::Status(401)]);
    let o = output(run(&["--execute", "--force"])).await;
    assert!(o.status.success(), "{}", text(&o));
    let got = sink.received();
    assert_eq!(got.len(), 4, "{}", text(&o));
    assert_eq!(got[2].header("x-api-key"), Some(KEY));
    assert_eq!(got[3].header("x-api-key"), Some(KEY));
    let journal_text = std::fs::read_to_string(&journal_path).unwrap();
    let last: Value = serde_json::from_str(journal_text.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&last["status"], &last["attempts"]),
        (&Value::from("sent"), &Value::from(2))
    );
    for shown in [text(&o), journal_text] {
        assert!(!shown.contains(KEY), "the key is shown: {shown}");
    }
}

/// --to-bus (report `r`, category TARGET_ERROR): PutEvents, asking for --source first; a
/// rule on the bus forwards the events, each the detail of an `expected` payload, to a
/// queue.
async fn to_bus_forwards_each_event(
    moto: &Moto,
    sdk: &aws_config::SdkConfig,
    r: &str,
    expected: &[(String, Vec<u8>)],
) {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let from_bus = Queue::create(sdk, "from-bus").await;
    let bus_queue_arn = from_bus.arn().await;
    events
        .create_event_bus()
        .name("replay")
        .send()
        .await
        .unwrap();
    rule_with_target(
        &events,
        Some("replay"),
        "all",
        r#"{"source":["replay.genesys"]}"#,
        aws_sdk_eventbridge::types::Target::builder()
            .id("q")
            .arn(&bus_queue_arn)
            .build()
            .unwrap(),
    )
    .await;
    let args = [r, "--category", "TARGET_ERROR", "--to-bus", "replay"];
    let dry = output(aws_replay(moto, &args)).await;
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("give --source"),
        "Genesys partner sources need --source: {}",
        text(&dry)
    );
    let mut with_source = args.to_vec();
    with_source.extend(["--source", "replay.genesys", "--execute"]);
    let o = output(aws_replay(moto, &with_source)).await;
    assert!(o.status.success(), "{}", text(&o));
    let forwarded = from_bus.bodies().await;
    assert_eq!(forwarded.len(), 2, "{}", text(&o));
    for event in &forwarded {
        let event: Value = serde_json::from_str(event).unwrap();
        assert_eq!(event["source"], "replay.genesys");
        let original = expected
            .iter()
            .map(|(_, b)| serde_json::from_slice::<Value>(b).unwrap())
            .find(|o| o["detail"] == event["detail"]);
        let original = original.expect("the detail of a stored event");
        assert_eq!(event["detail-type"], original["detail-type"]);
    }
}

#[tokio::test]
async fn queue_bus_and_function_destinations_deliver_through_the_real_apis() {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let dir = tempfile::tempdir().unwrap();
    let (report_path, report) = sample(dir.path());
    let out = report_path.with_file_name("");
    let r = report_path.to_str().unwrap();
    let expected = payloads(&report, &out, "TARGET_ERROR");
    assert_eq!(expected.len(), 2);

    // --to-queue: SendMessage, the body byte for byte.
    let replayed = Queue::create(&sdk, "replayed").await;
    let url = replayed.url.clone();
    let o = output(aws_replay(
        &moto,
        &[
            r,
            "--category",
            "TARGET_ERROR",
            "--to-queue",
            &url,
            "--execute",
        ],
    ))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let mut got = replayed.bodies().await;
    got.sort();
    let mut want: Vec<String> = expected
        .iter()
        .map(|(_, b)| String::from_utf8(b.clone()).unwrap())
        .collect();
    want.sort();
    assert_eq!(got, want);

    to_bus_forwards_each_event(&moto, &sdk, r, &expected).await;

    // --to-function: Lambda Invoke, InvocationType Event, served by the sink.
    let lambda = Sink::start(Answer::Status(202)).await;
    let mut cmd = aws_replay(
        &moto,
        &[
            r,
            "--category",
            "TARGET_ERROR",
            "--to-function",
            "crm-sync",
            "--execute",
        ],
    );
    cmd.env("AWS_ENDPOINT_URL_LAMBDA", &lambda.url);
    let o = output(cmd).await;
    assert!(o.status.success(), "{}", text(&o));
    let got = lambda.received();
    assert_eq!(got.len(), 2);
    for call in &got {
        assert_eq!(call.uri, "/2015-03-31/functions/crm-sync/invocations");
        assert_eq!(call.header("x-amz-invocation-type"), Some("Event"));
        assert!(expected.iter().any(|(_, b)| b == &call.body));
    }
}

#[tokio::test]
async fn reports_in_s3_replay_their_payloads_from_the_bucket() {
    let moto = Moto::start().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.sdk().await)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("reports").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (report_path, mut report) = sample(dir.path());
    let out = report_path.with_file_name("");
    // The Lambda's layout: full keys under a prefix.
    for r in report["records"].as_array_mut().unwrap() {
        let local = r["replayPayloadKey"].as_str().unwrap().to_owned();
        let key = format!(
            "genesys-dlq/replay/dt=2026-11-28/{}",
            local.trim_start_matches("replay/")
        );
        s3.put_object()
            .bucket("reports")
            .key(&key)
            .body(std::fs::read(out.join(&local)).unwrap().into())
            .send()
            .await
            .unwrap();
        r["replayPayloadKey"] = json!(key);
    }
    s3.put_object()
        .bucket("reports")
        .key("genesys-dlq/reports/dt=2026-11-28/r1.json")
        .body(serde_json::to_vec(&report).unwrap().into())
        .send()
        .await
        .unwrap();
    let sink = Sink::start(Answer::Status(200)).await;
    let expected = payloads(&report_with_local_keys(&out), &out, "PAYLOAD_MALFORMED");
    let o = output(aws_replay(
        &moto,
        &[
            "s3://reports/genesys-dlq/",
            "--category",
            "PAYLOAD_MALFORMED",
            "--to-url",
            &sink.url,
            "--journal",
            dir.path().join("j.jsonl").to_str().unwrap(),
            "--execute",
        ],
    ))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let got = sink.received();
    assert_eq!(got.len(), expected.len());
    for r in got {
        assert!(expected.iter().any(|(_, b)| b == &r.body));
    }
}

fn report_with_local_keys(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

// ---- one event, many dead letters -----------------------------------------------------

/// The sample batch with every message id suffixed: the same events, dead-lettered again.
fn copies_of_sample(dir: &Path, suffixes: &[&str]) -> PathBuf {
    let sample: Value =
        serde_json::from_slice(&std::fs::read(event_path("sqs-mixed-batch.json")).unwrap())
            .unwrap();
    let records: Vec<Value> = suffixes
        .iter()
        .flat_map(|suffix| {
            sample["Records"].as_array().unwrap().iter().map(move |r| {
                let mut r = r.clone();
                r["messageId"] = json!(format!("{}{suffix}", r["messageId"].as_str().unwrap()));
                r
            })
        })
        .collect();
    let path = dir.join("copies.json");
    std::fs::write(
        &path,
        serde_json::to_vec(&json!({ "Records": records })).unwrap(),
    )
    .unwrap();
    path
}

/// The event ids of the sample batch's RATE_LIMIT_EXCEEDED dead letters: three events
/// with an id, and one body without (the flat shape), whose dead letters each count as an
/// event of its own.
fn rate_limited_event_ids(report: &Value) -> Vec<&str> {
    let rate_limited: Vec<&Value> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["failureCategory"] == "RATE_LIMIT_EXCEEDED")
        .collect();
    let events: Vec<&str> = rate_limited
        .iter()
        .filter_map(|r| r["eventId"].as_str())
        .collect();
    assert_eq!((rate_limited.len(), events.len()), (4, 3));
    events
}

#[tokio::test]
async fn an_event_dead_lettered_three_times_reaches_the_consumer_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = analyzed(&event_path("sqs-mixed-batch.json"), &dir.path().join("a"));
    analyzed(
        &copies_of_sample(dir.path(), &["-again", "-third"]),
        &dir.path().join("b"),
    );
    let a = dir.path().join("a/report.json");
    let b = dir.path().join("b/report.json");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let events = rate_limited_event_ids(&first);
    let sink = Sink::start(Answer::Status(200)).await;
    let journal_path = dir.path().join("journal.jsonl");
    let journal_arg = journal_path.to_str().unwrap();
    let args = |reports: &[&str], extra: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = reports.iter().map(|r| r.to_string()).collect();
        all.extend(
            [
                "--category",
                "RATE_LIMIT_EXCEEDED",
                "--to-url",
                &sink.url,
                "--rate",
                "1000",
                "--journal",
                journal_arg,
            ]
            .map(String::from),
        );
        all.extend(extra.iter().map(|e| e.to_string()));
        all
    };
    let go = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        replay(&args).await
    };

    // The dry run says which dead letters are copies, and of which event.
    let dry = go(args(&[a, b], &[])).await;
    assert!(dry.status.success(), "{}", text(&dry));
    let stdout = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(stdout.contains("would send  6"), "{}", text(&dry));
    assert!(stdout.contains("a copy of an event sent once"), "{stdout}");
    assert!(
        stdout.contains(&format!("duplicate of event {}", events[0])),
        "{stdout}"
    );

    let o = go(args(&[a, b], &["--execute"])).await;
    assert!(o.status.success(), "{}", text(&o));
    let got: Vec<Value> = sink
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(got.len(), 6, "one request per event: {}", text(&o));
    let mut ids: Vec<&str> = got.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.sort();
    let mut expected = events.clone();
    expected.sort();
    assert_eq!(ids, expected, "each event with an id once");
    let lines = journal(&journal_path);
    let sent: Vec<&Value> = lines.iter().filter(|l| l["status"] == "sent").collect();
    let copies: Vec<&Value> = lines.iter().filter(|l| l["status"] == "skipped").collect();
    assert_eq!((sent.len(), copies.len()), (6, 6), "{lines:?}");
    assert!(copies.iter().all(|l| {
        l["error"]
            .as_str()
            .unwrap()
            .starts_with("duplicate of event ")
            && events.contains(&l["eventId"].as_str().unwrap())
    }));

    // A rerun, and a run over the copies alone, send nothing: the journal knows the events.
    for reports in [&[a, b][..], &[b][..]] {
        let again = go(args(reports, &["--execute"])).await;
        assert!(again.status.success(), "{}", text(&again));
        assert_eq!(sink.received().len(), 6, "{}", text(&again));
    }
    // --force sends the sent records again, never their copies.
    let forced = go(args(&[a, b], &["--execute", "--force"])).await;
    assert!(forced.status.success(), "{}", text(&forced));
    assert_eq!(sink.received().len(), 12, "{}", text(&forced));
    // --per-message sends every copy not sent yet: two more dead letters per event.
    let every = go(args(&[a, b], &["--execute", "--per-message"])).await;
    assert!(every.status.success(), "{}", text(&every));
    assert_eq!(sink.received().len(), 18, "{}", text(&every));
}

#[tokio::test]
async fn to_target_sends_one_event_once_to_each_rules_target() {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let mut rules = Vec::new();
    for name in ["crm", "wfm"] {
        let q = Queue::create(&sdk, name).await;
        let arn = q.arn().await;
        let rule = rule_with_target(
            &events,
            None,
            &format!("to-{name}"),
            r#"{"source":[{"prefix":"aws.partner/genesys.com"}]}"#,
            aws_sdk_eventbridge::types::Target::builder()
                .id(name)
                .arn(&arn)
                .build()
                .unwrap(),
        )
        .await;
        rules.push((q, arn, rule));
    }
    // The same event, dead-lettered twice by each rule.
    let mut batch: Value =
        serde_json::from_slice(&std::fs::read(event_path("sqs-single.json")).unwrap()).unwrap();
    let one = batch["Records"][0].clone();
    let records: Vec<Value> = (0..4)
        .map(|i| {
            let (_, arn, rule) = &rules[i % 2];
            let mut r = one.clone();
            r["messageId"] = json!(format!("dead-letter-{i}"));
            r["messageAttributes"]["RULE_ARN"]["stringValue"] = json!(rule);
            r["messageAttributes"]["TARGET_ARN"]["stringValue"] = json!(arn);
            r
        })
        .collect();
    batch["Records"] = json!(records);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.json");
    std::fs::write(&path, serde_json::to_vec(&batch).unwrap()).unwrap();
    analyzed(&path, &dir.path().join("out"));
    let report = dir.path().join("out/report.json");

    let o = output(aws_replay(
        &moto,
        &[report.to_str().unwrap(), "--to-target", "--execute"],
    ))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let event_id = serde_json::from_str::<Value>(one["body"].as_str().unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (q, _, _) in &rules {
        let got = q.bodies().await;
        assert_eq!(got.len(), 1, "{}: {}", q.url, text(&o));
        let body: Value = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(body["id"], json!(event_id));
    }
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("sends every copy): 2"),
        "{}",
        text(&o)
    );
}

#[tokio::test]
async fn id_header_carries_each_events_id_to_the_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let (report_path, report) = sample(dir.path());
    let sink = Sink::start(Answer::Status(200)).await;
    let o = replay(&[
        report_path.to_str().unwrap(),
        "--category",
        "RATE_LIMIT_EXCEEDED",
        "--to-url",
        &sink.url,
        "--id-header",
        "Idempotency-Key",
        "--rate",
        "1000",
        "--execute",
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let got = sink.received();
    assert_eq!(got.len(), 4, "{}", text(&o));
    // The key is the event's id, else (a body without one) its dead letter's message id.
    let mut expected: Vec<String> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["failureCategory"] == "RATE_LIMIT_EXCEEDED")
        .map(|r| {
            r["eventId"]
                .as_str()
                .or(r["messageId"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut keys: Vec<String> = got
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_owned())
        .collect();
    expected.sort();
    keys.sort();
    assert_eq!(keys, expected);
    for r in &got {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        if let Some(id) = body["id"].as_str() {
            assert_eq!(r.header("idempotency-key"), Some(id));
        }
    }

    let bad = replay(&[
        report_path.to_str().unwrap(),
        "--to-url",
        &sink.url,
        "--id-header",
        "Bad Header",
    ])
    .await;
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--id-header"),
        "{}",
        text(&bad)
    );
}

/// After `--edit … --execute` over the report in `out`: each stored payload untouched;
/// a changed one sent as kept beside the journal (`replay-edits/`) and recorded as edited,
/// an unchanged one sent byte for byte.
fn assert_edits_sent_and_stored_untouched(
    out: &Path,
    report: &Value,
    stored: &[(String, Vec<u8>)],
    got: &[dlq_triage_test_support::sink::Received],
) {
    let journal = journal(&out.join("replay-journal.jsonl"));
    for (id, original) in stored {
        // The stored payload is untouched.
        let path = report["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["messageId"] == id.as_str())
            .unwrap()["replayPayloadKey"]
            .as_str()
            .unwrap();
        assert_eq!(&std::fs::read(out.join(path)).unwrap(), original);
        let line = journal
            .iter()
            .find(|l| l["messageId"] == id.as_str())
            .unwrap();
        let value: Value = serde_json::from_slice(original).unwrap_or(Value::Null);
        if value.get("id").is_some() {
            // Changed: what was sent is kept beside the journal and recorded in it.
            let kept = std::fs::read(out.join(format!("replay-edits/{id}.json"))).unwrap();
            assert!(got.iter().any(|r| r.body == kept), "{id}");
            let sent: Value = serde_json::from_slice(&kept).unwrap();
            assert_eq!(sent["detail"]["replayed"], true);
            assert_eq!(line["edited"], true, "{line}");
            assert_eq!(line["originalSha256"].as_str().unwrap().len(), 64);
            assert_ne!(line["originalSha256"], line["sentSha256"]);
        } else {
            // Unchanged: the stored bytes, byte for byte.
            assert!(got.iter().any(|r| &r.body == original), "{id}");
            assert!(line.get("edited").is_none(), "{line}");
        }
    }
}

/// The event id of the report's first RATE_LIMIT_EXCEEDED record.
fn first_rate_limited_event_id(report: &Value) -> &str {
    report["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["failureCategory"] == "RATE_LIMIT_EXCEEDED")
        .unwrap()["eventId"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn edit_repairs_payloads_before_they_are_sent_and_never_touches_the_stored_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (report_path, report) = sample(dir.path());
    let report_arg = report_path.to_str().unwrap();
    let stored = payloads(&report, &dir.path().join("out"), "RATE_LIMIT_EXCEEDED");
    let sink = Sink::start(Answer::Status(200)).await;
    let program = r#"if has("id") then .detail.replayed = true else . end"#;
    let args = |extra: &[&str]| {
        let mut all = vec![
            report_arg,
            "--category",
            "RATE_LIMIT_EXCEEDED",
            "--to-url",
            &sink.url,
            "--rate",
            "1000",
        ];
        all.extend_from_slice(extra);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let go = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        replay(&args).await
    };

    // The dry run shows what the program does.
    let dry = go(args(&["--edit", program])).await;
    assert!(dry.status.success(), "{}", text(&dry));
    let stdout = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        stdout.contains("--edit:     3 changed, 1 unchanged, 0 dropped"),
        "{stdout}"
    );
    assert!(
        stdout.contains("diff of ") && stdout.contains("+    \"replayed\": true"),
        "{stdout}"
    );
    assert!(sink.received().is_empty());

    let o = go(args(&["--edit", program, "--execute"])).await;
    assert!(o.status.success(), "{}", text(&o));
    let got = sink.received();
    assert_eq!(got.len(), 4);
    assert_edits_sent_and_stored_untouched(&dir.path().join("out"), &report, &stored, &got);

    // A program that fails on one record: that record is named and not sent, exit 1.
    let failing = format!(
        r#"if .id == "{}" then error("cannot repair this one") else . end"#,
        first_rate_limited_event_id(&report)
    );
    let o = go(args(&[
        "--edit",
        &failing,
        "--journal",
        dir.path().join("j2.jsonl").to_str().unwrap(),
        "--execute",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("cannot repair this one"),
        "{}",
        text(&o)
    );
    assert_eq!(sink.received().len(), 4 + 3);

    // `select` drops what it does not let through: counted, not sent, not a failure.
    let o = go(args(&[
        "--edit",
        r#"select(has("id"))"#,
        "--journal",
        dir.path().join("j3.jsonl").to_str().unwrap(),
        "--execute",
    ]))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1 dropped"),
        "{}",
        text(&o)
    );
    assert_eq!(sink.received().len(), 4 + 3 + 3);
}

#[tokio::test]
async fn an_edit_program_that_does_not_compile_stops_before_anything_is_read() {
    let o = replay(&[
        "/nonexistent/report.json",
        "--to-url",
        "http://127.0.0.1:9/",
        "--edit",
        ".detail |",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--edit program does not parse"), "{stderr}");
}
