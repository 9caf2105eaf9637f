//! `dlq-triage summarize` end to end: the real binary over reports written by `analyze`,
//! in local folders and in `moto_server`'s S3 in the Lambda's layout; and `replay
//! --since/--until` over the same sources.

use std::path::Path;

use dlq_triage_test_support::cli::{analyzed, dlq_triage, output, text};
use dlq_triage_test_support::fixtures::event_path;
use dlq_triage_test_support::moto::Moto;
use dlq_triage_test_support::sink::{Answer, Sink};
use serde_json::{Value, json};

/// The sample batch with each message id suffixed and each `SentTimestamp` set to `sent`
/// (epoch ms), so that a test controls when its dead letters happened.
fn batch(dir: &Path, name: &str, suffix: &str, sent: i64) -> std::path::PathBuf {
    let mut sample: Value =
        serde_json::from_slice(&std::fs::read(event_path("sqs-mixed-batch.json")).unwrap())
            .unwrap();
    for r in sample["Records"].as_array_mut().unwrap() {
        r["messageId"] = json!(format!("{}{suffix}", r["messageId"].as_str().unwrap()));
        r["attributes"]["SentTimestamp"] = json!(sent.to_string());
    }
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(&sample).unwrap()).unwrap();
    path
}

const NOV_28_0900: i64 = 1_795_856_400_000; // 2026-11-28T09:00:00Z
const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn a_folder_of_reports_becomes_one_summary_with_each_dead_letter_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("incident");
    // The same 20 dead letters in two reports (a redelivery), and 20 others an hour later.
    let first = batch(dir.path(), "a.json", "", NOV_28_0900);
    analyzed(&first, &root.join("a"));
    analyzed(&first, &root.join("b"));
    let report = analyzed(
        &batch(dir.path(), "c.json", "-later", NOV_28_0900 + HOUR),
        &root.join("c"),
    );
    // Beside them: a file that is not JSON, named like a report.
    std::fs::create_dir_all(root.join("d/reports")).unwrap();
    std::fs::write(root.join("d/reports/broken.json"), "{not json").unwrap();
    let out = dir.path().join("summary");
    let o = output(dlq_triage(&[
        "summarize",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["reports"], 3);
    assert_eq!(summary["deadLetters"], 40, "{summary}");
    assert_eq!(summary["listedAgain"], 20);
    assert_eq!(
        summary["totalFailures"].as_u64().unwrap(),
        2 * report["totalFailures"].as_u64().unwrap()
    );
    assert_eq!(summary["unreadable"].as_array().unwrap().len(), 1);
    assert!(
        summary["unreadable"][0]["source"]
            .as_str()
            .unwrap()
            .ends_with("broken.json")
    );
    assert_eq!(summary["firstSeen"], "2026-11-28T09:00:00Z");
    assert_eq!(summary["lastSeen"], "2026-11-28T10:00:00Z");
    // Incidents by (category, target): the sample's four rate-limited dead letters against
    // one API destination, twice over.
    let rate = summary["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["category"] == "RATE_LIMIT_EXCEEDED")
        .unwrap();
    assert_eq!(rate["count"], 8);
    assert_eq!(rate["ongoing"], false);
    assert!(
        rate["replayCommand"]
            .as_str()
            .unwrap()
            .contains("--category RATE_LIMIT_EXCEEDED --target arn:aws:events:"),
        "{rate}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("40 dead letters"), "{}", text(&o));
    assert!(stdout.contains("RATE_LIMIT_EXCEEDED"), "{stdout}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("broken.json"), "{md}");

    // A window of the later hour only, as JSON on standard output.
    let o = output(dlq_triage(&[
        "summarize",
        root.to_str().unwrap(),
        "--since",
        "2026-11-28T09:30:00Z",
        "--json",
    ]))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let later: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(later["deadLetters"], 20);
    assert_eq!(later["window"]["since"], "2026-11-28T09:30:00Z");
}

#[tokio::test]
async fn nothing_readable_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("report.json");
    std::fs::write(&bad, "[]").unwrap();
    let o = output(dlq_triage(&["summarize", bad.to_str().unwrap(), "--json"])).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no report could be read"), "{stderr}");
    let o = output(dlq_triage(&[
        "summarize",
        bad.to_str().unwrap(),
        "--since",
        "soon",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--since"),
        "{}",
        text(&o)
    );
}

#[tokio::test]
async fn reports_in_s3_day_partitions_are_summarized_and_earlier_days_never_read() {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let s3 = genesys_dlq_triage::s3_client(&sdk, true);
    s3.create_bucket().bucket("reports").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let put = |key: String, body: Vec<u8>| {
        let s3 = s3.clone();
        async move {
            s3.put_object()
                .bucket("reports")
                .key(key)
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
    };
    for (i, sent) in [NOV_28_0900, NOV_28_0900 + HOUR].into_iter().enumerate() {
        let out = dir.path().join(format!("r{i}"));
        analyzed(
            &batch(dir.path(), &format!("b{i}.json"), &format!("-{i}"), sent),
            &out,
        );
        put(
            format!("genesys-dlq/reports/dt=2026-11-28/r{i}.json"),
            std::fs::read(out.join("report.json")).unwrap(),
        )
        .await;
    }
    // Beside them: a Markdown rendering and an object that is not a report; a day before
    // the window holding something unreadable, which must not even be read.
    put(
        "genesys-dlq/reports/dt=2026-11-28/r0.md".into(),
        b"# report".to_vec(),
    )
    .await;
    put(
        "genesys-dlq/reports/dt=2026-11-28/garbage.json".into(),
        b"\x00\x01".to_vec(),
    )
    .await;
    put(
        "genesys-dlq/reports/dt=2026-11-20/old.json".into(),
        b"not a report".to_vec(),
    )
    .await;
    let mut cmd = dlq_triage(&[
        "summarize",
        "s3://reports/genesys-dlq/",
        "--since",
        "2026-11-28T00:00:00Z",
        "--json",
    ]);
    cmd.env("AWS_ENDPOINT_URL", &moto.endpoint);
    let o = output(cmd).await;
    assert!(o.status.success(), "{}", text(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["reports"], 2);
    assert_eq!(summary["deadLetters"], 40);
    let unreadable: Vec<&str> = summary["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        unreadable,
        ["s3://reports/genesys-dlq/reports/dt=2026-11-28/garbage.json"]
    );

    // Without a window, the earlier day is listed and read too.
    let mut cmd = dlq_triage(&["summarize", "s3://reports/genesys-dlq/", "--json"]);
    cmd.env("AWS_ENDPOINT_URL", &moto.endpoint);
    let o = output(cmd).await;
    assert!(o.status.success(), "{}", text(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["unreadable"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn replay_since_until_sends_only_the_windows_records_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("incident");
    let early = batch(dir.path(), "a.json", "", NOV_28_0900);
    analyzed(&early, &root.join("a"));
    analyzed(&early, &root.join("b"));
    let late = analyzed(
        &batch(dir.path(), "c.json", "-later", NOV_28_0900 + HOUR),
        &root.join("c"),
    );
    let sink = Sink::start(Answer::Status(200)).await;
    let o = output(dlq_triage(&[
        "replay",
        root.to_str().unwrap(),
        "--since",
        "2026-11-28T09:30:00Z",
        "--until",
        "2026-11-28T10:00:00Z",
        "--to-url",
        &sink.url,
        "--rate",
        "1000",
        "--execute",
    ]))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    // The later hour's records with a stored payload (all but the Custom Event Bus
    // summary), each once.
    let expected: Vec<String> = late["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["bodyKind"] != "customBusFailure")
        .map(|r| r["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sink.received().len(), expected.len(), "{}", text(&o));
    let journal: Vec<Value> = std::fs::read_to_string(root.join("replay-journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut sent: Vec<String> = journal
        .iter()
        .filter(|l| l["status"] == "sent")
        .map(|l| l["messageId"].as_str().unwrap().to_owned())
        .collect();
    sent.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(sent, expected);
}

#[tokio::test]
async fn hostile_text_in_the_reports_is_escaped_in_summary_md() {
    let dir = tempfile::tempdir().unwrap();
    let mut sample: Value =
        serde_json::from_slice(&std::fs::read(event_path("sqs-single.json")).unwrap()).unwrap();
    let attrs = &mut sample["Records"][0]["messageAttributes"];
    attrs["ERROR_MESSAGE"]["stringValue"] =
        json!("<img src=x onerror=alert(1)> | **bold** `code`\n# heading");
    attrs["TARGET_ARN"]["stringValue"] =
        json!("arn:aws:lambda:us-east-1:111122223333:function:x|<b>y</b>");
    let path = dir.path().join("hostile.json");
    std::fs::write(&path, serde_json::to_vec(&sample).unwrap()).unwrap();
    analyzed(&path, &dir.path().join("out"));
    let summary = dir.path().join("summary");
    let o = output(dlq_triage(&[
        "summarize",
        dir.path().join("out").to_str().unwrap(),
        "--out",
        summary.to_str().unwrap(),
    ]))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let md = std::fs::read_to_string(summary.join("summary.md")).unwrap();
    assert!(!md.contains("<img"), "{md}");
    assert!(md.contains("&lt;img"), "{md}");
    assert!(!md.contains("\n# heading"), "{md}");
    // The incident's row keeps its nine cells.
    let row = md
        .lines()
        .find(|l| l.starts_with("| ") && l.contains("function:x"))
        .unwrap();
    let boundaries = row
        .char_indices()
        .filter(|(i, c)| *c == '|' && !row[..*i].ends_with('\\'))
        .count();
    assert_eq!(boundaries, 10, "{row}");
}
