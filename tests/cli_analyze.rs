//! `dlq-triage analyze` end to end: the real binary over the bundled events, with golden
//! expectations for every record's classification.

use std::path::Path;
use std::process::Output;

use dlq_triage_test_support::cli::with_stdin;
use dlq_triage_test_support::fixtures::{check_golden, event_path};
use serde_json::Value;

fn dlq_triage(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let cmd = dlq_triage_test_support::cli::dlq_triage(args);
    match stdin {
        None => {
            let mut cmd = cmd;
            cmd.output().expect("run dlq-triage")
        }
        Some(input) => with_stdin(cmd, input),
    }
}

fn events(name: &str) -> String {
    event_path(name).display().to_string()
}

/// The fields of each record that classification and extraction decide.
/// `analyze --no-correlate` of `input` (`-`: `stdin`) into a new folder, which must
/// succeed: the folder and its report.json.
fn analyzed(input: &str, stdin: Option<&[u8]>) -> (tempfile::TempDir, Value) {
    analyzed_with(&["--no-correlate"], input, stdin)
}

/// [`analyzed`] with `flags` instead of `--no-correlate`.
fn analyzed_with(flags: &[&str], input: &str, stdin: Option<&[u8]>) -> (tempfile::TempDir, Value) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["analyze"];
    args.extend_from_slice(flags);
    args.extend(["--out", out.path().to_str().unwrap(), input]);
    let run = dlq_triage(&args, stdin);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    (out, report)
}

fn golden_view(report: &Value) -> Value {
    let records: Vec<Value> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::json!({
                "messageId": r["messageId"],
                "failureCategory": r["failureCategory"],
                "evidence": r["evidence"],
                "httpStatus": r["httpStatus"],
                "interactionId": r["interactionId"],
                "bodyKind": r["bodyKind"],
                "eventType": r["eventType"],
            })
        })
        .collect();
    serde_json::json!({
        "totalFailures": report["totalFailures"],
        "byCategory": report["summary"]["byCategory"],
        "incidents": report["summary"]["incidents"].as_array().unwrap().iter().map(|i| serde_json::json!([
            i["category"], i["targetArn"], i["errorCode"], i["errorCodes"], i["count"], i["conversations"]
        ])).collect::<Vec<_>>(),
        "records": records,
    })
}

#[test]
fn mixed_batch_writes_report_and_byte_exact_payloads() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let run = dlq_triage(
        &[
            "analyze",
            "--out",
            out_dir,
            "--no-correlate",
            &events("sqs-mixed-batch.json"),
        ],
        None,
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(stdout.contains("records: 20"), "{stdout}");
    assert!(stdout.contains(&format!("{out_dir}/report.md")), "{stdout}");

    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["schemaVersion"], 1);
    let input: Value =
        serde_json::from_str(&std::fs::read_to_string(events("sqs-mixed-batch.json")).unwrap())
            .unwrap();
    let bodies: Vec<&str> = input["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"].as_str().unwrap())
        .collect();
    let records = report["records"].as_array().unwrap();
    assert_eq!(records.len(), bodies.len());
    let mut files = 0;
    for (record, body) in records.iter().zip(&bodies) {
        let key = record["replayPayloadKey"]
            .as_str()
            .expect("every record stored");
        assert!(key.starts_with(&format!(
            "replay/{}/",
            record["failureCategory"].as_str().unwrap()
        )));
        assert_eq!(
            std::fs::read(out.path().join(key)).unwrap(),
            body.as_bytes(),
            "{key}"
        );
        files += 1;
    }
    let on_disk = walk(&out.path().join("replay"));
    assert_eq!(on_disk, files, "one replay file per record, nothing else");

    // Every category of the taxonomy appears in the sample batch.
    assert_eq!(
        report["summary"]["byCategory"].as_object().unwrap().len(),
        9
    );
    check_golden("sqs-mixed-batch.json", &golden_view(&report));

    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("**20 failed deliveries"), "headline");
    assert!(md.contains("```mermaid\npie"));
    assert!(md.contains("| # | Category |"));
    assert!(
        md.contains(&format!(
            "dlq-triage replay {out_dir}/report.json --category RATE_LIMIT_EXCEEDED"
        )),
        "{md}"
    );
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { walk(&p) } else { 1 }
        })
        .sum()
}

#[test]
fn receive_message_output_from_stdin_is_analysed() {
    let input = std::fs::read(events("receive-message.json")).unwrap();
    // Correlation left on: without credentials it is skipped, not an error.
    let (_out, report) = analyzed_with(&[], "-", Some(&input));
    assert_eq!(report["totalFailures"], 5);
    assert_eq!(report["summary"]["byCategory"]["RATE_LIMIT_EXCEEDED"], 3);
    assert_eq!(report["records"][0]["interactionInfo"]["status"], "skipped");
}

fn assert_one_line_error(run: &Output, needle: &str) {
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("dlq-triage: "), "{stderr}");
    assert!(stderr.contains(needle), "{stderr} should mention {needle}");
}

#[test]
fn an_unreadable_file_is_a_one_line_error() {
    let run = dlq_triage(&["analyze", "/nonexistent/batch.json"], None);
    assert_one_line_error(&run, "cannot read /nonexistent/batch.json");
}

#[test]
fn invalid_json_is_a_one_line_error() {
    let out = tempfile::tempdir().unwrap();
    let run = dlq_triage(
        &["analyze", "--out", out.path().to_str().unwrap(), "-"],
        Some(b"{\"Records\": [oops"),
    );
    assert_one_line_error(&run, "not valid JSON");
    assert!(!out.path().join("report.json").exists());
}

/// `aws sqs receive-message` prints nothing for an empty queue: saved to a file or piped,
/// that is said in words, with its own exit status, and no report is written.
#[test]
fn empty_input_says_so_with_its_own_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("batch.json");
    std::fs::write(&empty, b"").unwrap();
    let out = dir.path().join("out");
    for (input, stdin) in [(empty.to_str().unwrap(), None), ("-", Some(&b" \n"[..]))] {
        let run = dlq_triage(&["analyze", "--out", out.to_str().unwrap(), input], stdin);
        assert_eq!(run.status.code(), Some(3), "{input}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("input is empty"), "{stderr}");
        assert!(stderr.contains("the queue is empty"), "{stderr}");
        assert!(!out.join("report.json").exists());
    }
}

#[test]
fn a_document_of_neither_shape_is_a_one_line_error() {
    let run = dlq_triage(&["analyze", "-"], Some(br#"{"Items": []}"#));
    assert_one_line_error(&run, "neither a Lambda SQS event");
}

#[test]
fn an_output_folder_that_cannot_be_written_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let run = dlq_triage(
        &[
            "analyze",
            "--out",
            file.to_str().unwrap(),
            &events("sqs-single.json"),
        ],
        None,
    );
    assert_one_line_error(&run, "could not write the report");
}

#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    // `dlq-triage analyze … | head -1` with the reader already gone: every write fails
    // with EPIPE, after the report was written.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = tempfile::tempdir().unwrap();
    let run = dlq_triage_test_support::cli::dlq_triage(&["analyze", "--no-correlate", "--out"])
        .arg(out.path())
        .arg(events("sqs-mixed-batch.json"))
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{:?}: {}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.path().join("report.json").exists());
}

#[test]
fn the_genesys_correlation_id_is_carried_into_the_record_and_the_conversation_list() {
    // events/sqs-single.json: a v2.conversations.{id}.transcription event whose
    // detail.metadata.CorrelationId is the id Genesys Cloud support asks for.
    let (out, report) = analyzed(&events("sqs-single.json"), None);
    assert_eq!(
        report["records"][0]["correlationId"],
        "604a1f1a-6d76-4f86-ade2-2a1ca16df4c2"
    );
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        md.contains("| `604a1f1a-6d76-4f86-ade2-2a1ca16df4c2` |"),
        "{md}"
    );
}

#[test]
fn a_custom_bus_summary_is_counted_by_its_events_and_said_not_replayable() {
    // A Custom Event Bus target's dead letter (the documented `busArn` + `failedMessages[]`
    // shape) listing three failed events, in an `aws sqs receive-message` answer.
    let body = serde_json::json!({
        "version": "1.0",
        "busArn": "arn:aws:events:us-east-1:111122223333:event-bus/contact-center",
        "targetArn": "arn:aws:events:us-east-1:111122223333:api-destination/crm-webhook/7e08",
        "errorCode": "ACCESS_DENIED",
        "errorMessage": "Access denied to target",
        "retryAttempts": 4,
        "failedMessages": [
            {"eventId": "ev-1", "eventGroupId": null, "timestamp": "2026-11-28T09:19:00Z"},
            {"eventId": "ev-2", "eventGroupId": null, "timestamp": "2026-11-28T09:19:01Z"},
            {"eventId": "ev-3", "eventGroupId": null, "timestamp": "2026-11-28T09:19:02Z"}
        ]
    });
    let batch = serde_json::json!({"Messages": [{
        "MessageId": "5d5c7c4c-0000-4000-8000-000000000001",
        "Body": body.to_string(),
        "Attributes": {"ApproximateReceiveCount": "1"}
    }]});
    let (out, report) = analyzed("-", Some(batch.to_string().as_bytes()));
    assert_eq!(report["totalFailures"], 3);
    assert_eq!(report["summary"]["incidents"][0]["count"], 3);
    assert_eq!(report["records"][0]["eventCount"], 3);
    assert_eq!(
        report["records"][0]["failedEventIds"],
        serde_json::json!(["ev-1", "ev-2", "ev-3"])
    );
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("## Custom Event Bus failure summaries"), "{md}");
    assert!(md.contains("**not replayable as-is**"), "{md}");
    assert!(md.contains("`ev-2`"), "{md}");
}
