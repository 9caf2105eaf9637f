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
