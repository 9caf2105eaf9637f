//! Hostile input through the real CLI: bodies and batches crafted to crash a parser or lose
//! a record. Every message must come out as exactly one categorized record.

use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn analyze(batch: &[u8]) -> (Output, tempfile::TempDir) {
    use std::io::Write;
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dlq-triage"))
        .args(["analyze", "--no-correlate", "--out"])
        .arg(out.path())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = batch.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (output, out)
}

fn record(id: &str, body: &str) -> Value {
    json!({
        "messageId": id,
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {"ERROR_CODE": {"stringValue": "INVALID_JSON", "dataType": "String"}}
    })
}

fn report(out: &tempfile::TempDir) -> Value {
    serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap()
}

#[test]
fn bodies_nested_100000_deep_are_records_not_a_crash() {
    let arrays = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let objects = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let batch = json!({"Records": [
        record("deep-arrays", &arrays),
        record("deep-objects", &objects),
        record("ordinary", r#"{"version":"0","id":"e1","detail-type":"x","source":"s","detail":{}}"#),
    ]});
    let (run, out) = analyze(batch.to_string().as_bytes());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = report(&out);
    let records = report["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    for r in records {
        assert_eq!(r["disposition"]["status"], "stored", "{}", r["messageId"]);
        let key = r["replayPayloadKey"].as_str().unwrap();
        let stored = std::fs::read(out.path().join(key)).unwrap();
        let expected = match r["messageId"].as_str().unwrap() {
            "deep-arrays" => arrays.as_bytes(),
            "deep-objects" => objects.as_bytes(),
            _ => continue,
        };
        assert_eq!(stored, expected, "byte-exact payload");
        assert_eq!(r["failureCategory"], "PAYLOAD_MALFORMED");
    }
}

#[test]
fn a_1_mib_body_and_64_kb_attributes_are_stored_and_categorized() {
    let big_body = json!({"version": "0", "id": "e", "detail-type": "x", "source": "s",
        "detail": {"blob": "x".repeat(1 << 20)}})
    .to_string();
    let long_message = format!("HTTP 429 Too Many Requests {}", "y".repeat(64 * 1024));
    let batch = json!({"Records": [{
        "messageId": "big",
        "body": big_body,
        "messageAttributes": {
            "ERROR_CODE": {"stringValue": "SDK_CLIENT_ERROR"},
            "ERROR_MESSAGE": {"stringValue": long_message},
            "TARGET_ARN": {"stringValue": "z".repeat(64 * 1024)}
        }
    }]});
    let (run, out) = analyze(batch.to_string().as_bytes());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = report(&out);
    let r = &report["records"][0];
    assert_eq!(r["failureCategory"], "RATE_LIMIT_EXCEEDED");
    let stored = std::fs::read(out.path().join(r["replayPayloadKey"].as_str().unwrap())).unwrap();
    assert_eq!(stored, big_body.as_bytes());
}

#[test]
fn control_characters_everywhere_are_records_not_errors() {
    let batch = json!({"Records": [
        record("ctl-\u{0}\u{7}\u{1b}", "\u{0}\u{1}\u{1b}[2J not json"),
        record("ok", "{\"detail-type\":\"\u{0}\",\"source\":\"\u{1b}\",\"detail\":{}}"),
    ]});
    let (run, out) = analyze(batch.to_string().as_bytes());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(report(&out)["records"].as_array().unwrap().len(), 2);
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(!md.chars().any(|c| c.is_control() && c != '\n'), "{md:?}");
}

#[test]
fn invalid_utf8_in_a_batch_file_is_a_one_line_error() {
    let mut batch = br#"{"Records":[{"messageId":"a","body":""#.to_vec();
    batch.extend_from_slice(&[0xff, 0xfe, b'x']);
    batch.extend_from_slice(br#""}]}"#);
    let (run, _out) = analyze(&batch);
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not valid JSON"), "{stderr}");
}

#[test]
fn ten_thousand_records_are_ten_thousand_stored_records() {
    let records: Vec<Value> = (0..10_000)
        .map(|i| {
            record(
                &format!("m-{i:05}"),
                &format!(
                    r#"{{"version":"0","id":"{i}","detail-type":"x","source":"s","detail":{{}}}}"#
                ),
            )
        })
        .collect();
    let (run, out) = analyze(json!({"Records": records}).to_string().as_bytes());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = report(&out);
    let records = report["records"].as_array().unwrap();
    assert_eq!(records.len(), 10_000);
    assert!(
        records
            .iter()
            .all(|r| r["disposition"]["status"] == "stored")
    );
    let files = std::fs::read_dir(out.path().join("replay/PAYLOAD_MALFORMED"))
        .unwrap()
        .count();
    assert_eq!(files, 10_000);
}
