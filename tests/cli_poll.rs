//! `dlq-triage poll` end to end: the real binary against `moto_server` (SQS and S3) through
//! the real SDK, with messages that carry the attributes EventBridge sets; concurrent drains
//! of thousands of messages, and injected faults, against the SQS stand-in.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use dlq_triage_test_support::cli::{dlq_triage, output, text};
use dlq_triage_test_support::moto::{Moto, user_with_policy};
use dlq_triage_test_support::sqs::{DeadLetterMessage, Queue, mixed_dead_letters};
use dlq_triage_test_support::sqs_standin::{Counters, Faults, SqsStandIn};
use serde_json::Value;

/// `n` dead letters, cycling through the sample batch.
fn dead_letters(n: usize) -> Vec<DeadLetterMessage> {
    mixed_dead_letters().into_iter().cycle().take(n).collect()
}

/// A moto server with a standard queue `dlq` holding `n` dead letters; their message ids.
async fn queue_of(n: usize) -> (Moto, Queue, Vec<String>) {
    let moto = Moto::start().await;
    let queue = Queue::create(&moto.sdk().await, "dlq").await;
    let ids = queue.send(&dead_letters(n), None).await;
    (moto, queue, ids)
}

async fn poll(moto: &Moto, args: &[&str]) -> Output {
    poll_as(moto, "testing", "testing", args).await
}

/// `dlq-triage poll ARGS` against the SQS at `endpoint`, as the user with these keys.
fn poll_command(
    endpoint: &str,
    access: &str,
    secret: &str,
    args: &[&str],
) -> std::process::Command {
    let mut cmd = dlq_triage(&["poll", "--wait-seconds", "1"]);
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", access)
        .env("AWS_SECRET_ACCESS_KEY", secret);
    cmd
}

/// `dlq-triage poll ARGS` against moto, one receive loop and one delete call at a time.
///
/// moto's SQS is not safe for calls at once: two `DeleteMessageBatch` calls each rebuild
/// the queue's message list, and the second can bring back what the first deleted; two
/// receives of the same message can hand out a receipt handle moto then forgets. Drains
/// with several loops are tested against the SQS stand-in below, which keeps SQS's
/// guarantees; moto stays for IAM, FIFO, S3 and the notification bus.
fn moto_poll_command(
    endpoint: &str,
    access: &str,
    secret: &str,
    args: &[&str],
) -> std::process::Command {
    let mut cmd = poll_command(endpoint, access, secret, args);
    cmd.args(["--concurrency", "1"]);
    cmd
}

async fn poll_as(moto: &Moto, access: &str, secret: &str, args: &[&str]) -> Output {
    output(moto_poll_command(&moto.endpoint, access, secret, args)).await
}

/// Every report under `out/reports`, oldest first.
fn reports(out: &Path) -> Vec<Value> {
    let mut paths: Vec<_> = std::fs::read_dir(out.join("reports"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// Every record of every report.
fn records(out: &Path) -> Vec<Value> {
    reports(out)
        .into_iter()
        .flat_map(|r| r["records"].as_array().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn without_delete_every_message_stays_in_the_queue_and_visible() {
    let (moto, queue, _) = queue_of(25).await;
    let out = tempfile::tempdir().unwrap();
    let run = poll(
        &moto,
        &[
            "--queue-url",
            &queue.url,
            "--out",
            out.path().to_str().unwrap(),
            "--page-size",
            "10",
        ],
    )
    .await;
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(queue.depth().await, (25, 0), "{}", text(&run));
    assert_eq!(reports(out.path()).len(), 3, "pages of 10, 10 and 5");
    assert_eq!(records(out.path()).len(), 25);
}

#[tokio::test]
async fn with_delete_the_queue_ends_empty_and_every_payload_is_byte_exact() {
    let moto = Moto::start().await;
    let queue = Queue::create(&moto.sdk().await, "dlq").await;
    let messages = dead_letters(25);
    let ids = queue.send(&messages, None).await;
    let body_of: HashMap<&str, &str> = ids
        .iter()
        .map(String::as_str)
        .zip(messages.iter().map(|m| m.body.as_str()))
        .collect();
    let out = tempfile::tempdir().unwrap();
    let run = poll(
        &moto,
        &[
            "--queue-url",
            &queue.url,
            "--out",
            out.path().to_str().unwrap(),
            "--delete",
        ],
    )
    .await;
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(queue.depth().await, (0, 0), "{}", text(&run));
    let records = records(out.path());
    assert_eq!(records.len(), 25);
    for r in &records {
        let id = r["messageId"].as_str().unwrap();
        let key = r["replayPayloadKey"].as_str().unwrap();
        let stored = std::fs::read(out.path().join(key)).unwrap();
        assert_eq!(stored, body_of[id].as_bytes(), "payload of {id}");
        // The attributes EventBridge set are read from the received message.
        assert_eq!(r["disposition"]["status"], "stored");
    }
    let categorized = records
        .iter()
        .filter(|r| r["failureCategory"] != "UNKNOWN")
        .count();
    assert!(
        categorized > 20,
        "attributes were read: {categorized} of 25 categorized"
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("deleted:    25"), "{stdout}");
}

#[tokio::test]
async fn an_unwritable_out_folder_deletes_nothing() {
    let (moto, queue, _) = queue_of(12).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let run = poll(
        &moto,
        &[
            "--queue-url",
            &queue.url,
            "--out",
            file.to_str().unwrap(),
            "--delete",
        ],
    )
    .await;
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("could not write the report"), "{stderr}");
    assert!(stderr.contains("deleted 0"), "{stderr}");
    assert_eq!(queue.depth().await, (12, 0), "released, none deleted");
}

#[tokio::test]
async fn a_missing_bucket_deletes_nothing() {
    let (moto, queue, _) = queue_of(5).await;
    let run = poll(
        &moto,
        &[
            "--queue-url",
            &queue.url,
            "--bucket",
            "no-such-bucket",
            "--delete",
        ],
    )
    .await;
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("NoSuchBucket"),
        "{}",
        text(&run)
    );
    assert_eq!(queue.depth().await, (5, 0));
}

#[tokio::test]
async fn with_a_bucket_the_lambda_layout_is_used() {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let queue = Queue::create(&sdk, "dlq").await;
    queue.send(&dead_letters(5), None).await;
    let s3 = genesys_dlq_triage::s3_client(&sdk, true);
    s3.create_bucket().bucket("reports").send().await.unwrap();
    let run = poll(
        &moto,
        &[
            "--queue-url",
            &queue.url,
            "--bucket",
            "reports",
            "--prefix",
            "ops/",
            "--delete",
        ],
    )
    .await;
    assert!(run.status.success(), "{}", text(&run));
    let keys: Vec<String> = s3
        .list_objects_v2()
        .bucket("reports")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("ops/replay/dt="))
            .count(),
        5,
        "{keys:?}"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("ops/reports/dt="))
            .count(),
        3,
        "the report's JSON, Markdown and page: {keys:?}"
    );
    assert_eq!(queue.depth().await, (0, 0));
}

#[tokio::test]
async fn a_duplicate_delivery_is_one_record_and_every_receipt_is_deleted() {
    let (moto, queue, _) = queue_of(3).await;
    let out = tempfile::tempdir().unwrap();
    // A visibility timeout of 0 makes SQS deliver every message again on the next receive.
    let run = poll(
        &moto,
        &[
            "--queue-url",
            &queue.url,
            "--out",
            out.path().to_str().unwrap(),
            "--visibility-timeout",
            "0",
            "--delete",
        ],
    )
    .await;
    assert!(run.status.success(), "{}", text(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        !stdout.contains("(0 duplicate receipts)"),
        "duplicates were delivered: {stdout}"
    );
    let records = records(out.path());
    assert_eq!(records.len(), 3, "one record per message");
    assert_eq!(queue.depth().await, (0, 0), "{}", text(&run));
}

#[tokio::test]
async fn max_messages_stops_at_n() {
    let (moto, queue, _) = queue_of(25).await;
    let out = tempfile::tempdir().unwrap();
    let run = poll(
        &moto,
        &[
            "--queue-url",
            &queue.url,
            "--out",
            out.path().to_str().unwrap(),
            "--max-messages",
            "12",
            "--delete",
        ],
    )
    .await;
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(records(out.path()).len(), 12);
    assert_eq!(queue.depth().await, (13, 0));
}

#[tokio::test]
async fn a_page_boundary_inside_a_receive_loses_nothing() {
    let (moto, queue, ids) = queue_of(23).await;
    let out = tempfile::tempdir().unwrap();
    let run = poll(
        &moto,
        &[
            "--queue-url",
            &queue.url,
            "--out",
            out.path().to_str().unwrap(),
            "--page-size",
            "7",
            "--delete",
        ],
    )
    .await;
    assert!(run.status.success(), "{}", text(&run));
    let sizes: Vec<usize> = reports(out.path())
        .iter()
        .map(|r| r["records"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [7, 7, 7, 2]);
    let mut seen: Vec<String> = records(out.path())
        .iter()
        .map(|r| r["messageId"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected, "every message exactly once");
    assert_eq!(queue.depth().await, (0, 0));
}

/// FIFO messages numbered within their group, in the event id.
fn fifo_letters(groups: &[&str]) -> Vec<DeadLetterMessage> {
    let template = &mixed_dead_letters()[0];
    let mut counts: HashMap<&str, usize> = HashMap::new();
    groups
        .iter()
        .map(|g| {
            let n = counts.entry(g).or_insert(0);
            *n += 1;
            let mut event: Value = serde_json::from_str(&template.body).unwrap();
            event["id"] = Value::String(format!("{g}-{n}"));
            DeadLetterMessage {
                body: event.to_string(),
                attributes: template.attributes.clone(),
            }
        })
        .collect()
}

#[tokio::test]
async fn a_fifo_queue_keeps_group_order_and_stops_a_group_at_its_failure() {
    let moto = Moto::start().await;
    let queue = Queue::create(&moto.sdk().await, "dlq.fifo").await;
    let groups = ["a", "b", "a", "b", "a", "b", "a", "b", "a", "b"];
    let letters = fifo_letters(&groups);
    let ids = queue.send(&letters, Some(&groups)).await;
    let out = tempfile::tempdir().unwrap();

    // A directory where the third message of group a would be stored: its write fails.
    let probe = tempfile::tempdir().unwrap();
    let first = poll(
        &moto,
        &[
            "--queue-url",
            &queue.url,
            "--out",
            probe.path().to_str().unwrap(),
            "--max-messages",
            "1",
        ],
    )
    .await;
    assert!(first.status.success(), "{}", text(&first));
    let category = records(probe.path())[0]["failureCategory"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::create_dir_all(
        out.path()
            .join(format!("replay/{category}/{}.json", ids[4])),
    )
    .unwrap();

    let run = poll(
        &moto,
        &[
            "--queue-url",
            &queue.url,
            "--out",
            out.path().to_str().unwrap(),
            "--page-size",
            "4",
            "--delete",
        ],
    )
    .await;
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let stored: Vec<String> = records(out.path())
        .iter()
        .filter(|r| r["disposition"]["status"] == "stored")
        .map(|r| r["eventId"].as_str().unwrap().to_owned())
        .collect();
    // Within each group, what was stored is a prefix of the group's order.
    for g in ["a", "b"] {
        let mine: Vec<&String> = stored.iter().filter(|e| e.starts_with(g)).collect();
        let expected: Vec<String> = (1..=mine.len()).map(|n| format!("{g}-{n}")).collect();
        assert_eq!(
            mine,
            expected.iter().collect::<Vec<_>>(),
            "group {g} in order"
        );
    }
    assert!(stored.iter().all(|e| e != "a-3"), "a-3 could not be stored");
    assert!(
        !stored.iter().any(|e| e == "a-4" || e == "a-5"),
        "nothing after a-3 in its group"
    );
    // a-3 and everything after it is back in the queue; nothing was lost.
    let (visible, in_flight) = queue.depth().await;
    assert_eq!(
        visible + in_flight,
        10 - stored.len() as u64,
        "{}",
        text(&run)
    );
}

/// A moto server that enforces IAM, with a queue of `n` messages and a user denied
/// `denied`. Returns the server, the queue and that user's credentials.
async fn queue_with_denied(denied: &str, n: usize) -> (Moto, Queue, String, String) {
    // Exactly five unauthenticated set-up calls: queue, messages, user, policy, key.
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "5")]).await;
    let sdk = moto.sdk().await;
    let queue = Queue::create(&sdk, "dlq").await;
    queue.send(&dead_letters(n), None).await;
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["sqs:*"], "Resource": "*"},
            {"Effect": "Deny", "Action": [denied], "Resource": "*"},
        ]
    });
    let (access, secret) = user_with_policy(&sdk, "ops", &policy).await;
    (moto, queue, access, secret)
}

#[tokio::test]
async fn access_denied_on_delete_reports_nothing_as_deleted() {
    let (moto, queue, access, secret) = queue_with_denied("sqs:DeleteMessage*", 8).await;
    let out = tempfile::tempdir().unwrap();
    let run = poll_as(
        &moto,
        &access,
        &secret,
        &[
            "--queue-url",
            &queue.url,
            "--out",
            out.path().to_str().unwrap(),
            "--delete",
        ],
    )
    .await;
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("access denied: sqs:DeleteMessage"),
        "{stderr}"
    );
    assert!(stderr.contains("deleted 0"), "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("dlq-triage: access denied"))
            .count(),
        1
    );
    // Written, not deleted, released: the messages wait in the queue.
    assert_eq!(records(out.path()).len(), 8);
    // (moto now checks every call: look as the user, who may read the queue.)
    let as_user = Queue {
        client: aws_sdk_sqs::Client::new(&moto.sdk_with(&access, &secret).await),
        url: queue.url.clone(),
    };
    assert_eq!(as_user.depth().await, (8, 0));
}

#[tokio::test]
async fn access_denied_on_receive_is_a_one_line_error() {
    let (moto, queue, access, secret) = queue_with_denied("sqs:ReceiveMessage", 3).await;
    let run = poll_as(
        &moto,
        &access,
        &secret,
        &["--queue-url", &queue.url, "--delete"],
    )
    .await;
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("access denied: sqs:ReceiveMessage"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_queue_that_does_not_exist_is_a_one_line_error() {
    let moto = Moto::start().await;
    let url = format!("{}/123456789012/no-such-queue", moto.endpoint);
    let run = poll(&moto, &["--queue-url", &url]).await;
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        stderr.trim(),
        format!("dlq-triage: queue {url} does not exist (check --queue-url and AWS_REGION)")
    );
}

#[tokio::test]
async fn missing_credentials_are_a_one_line_error() {
    let moto = Moto::start().await;
    let url = format!("{}/123456789012/dlq", moto.endpoint);
    let mut cmd = dlq_triage(&["poll", "--queue-url", &url]);
    cmd.env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    let run = output(cmd).await;
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.starts_with("dlq-triage: no AWS credentials"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// Starts `dlq-triage poll` and returns it, with the rest of its standard error, once it
/// has finished its first page.
fn start_poll(
    mut cmd: std::process::Command,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
) {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("page 1:") {
            break;
        }
    }
    (child, lines)
}

#[tokio::test]
async fn a_killed_run_loses_nothing() {
    let (moto, queue, _) = queue_of(300).await;
    let out = tempfile::tempdir().unwrap();
    let cmd = moto_poll_command(
        &moto.endpoint,
        "testing",
        "testing",
        &[
            "--queue-url",
            &queue.url,
            "--out",
            out.path().to_str().unwrap(),
            "--page-size",
            "10",
            "--visibility-timeout",
            "2",
            "--delete",
        ],
    );
    tokio::task::spawn_blocking(move || {
        let (mut child, _) = start_poll(cmd);
        child.kill().unwrap();
        child.wait().unwrap();
    })
    .await
    .unwrap();
    // Every message not deleted comes back once its visibility timeout lapses.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, in_flight) = queue.depth().await;
        // The counts are approximate: a message whose visibility lapses between moto's two
        // passes is counted in neither, so "nothing in flight" counts only when a second
        // look agrees; otherwise keep waiting.
        let settled = if in_flight == 0 {
            Some(queue.depth().await).filter(|(_, again)| *again == 0)
        } else {
            None
        };
        if let Some((visible, _)) = settled {
            let deleted = 300 - visible;
            let stored = records(out.path()).len() as u64;
            assert!(
                deleted <= stored,
                "only stored messages were deleted: {deleted} > {stored}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{in_flight} still in flight"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn with_a_bucket_each_page_report_is_announced_on_the_notification_bus() {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let queue = Queue::create(&sdk, "dlq").await;
    queue.send(&dead_letters(5), None).await;
    genesys_dlq_triage::s3_client(&sdk, true)
        .create_bucket()
        .bucket("reports")
        .send()
        .await
        .unwrap();
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    events
        .create_event_bus()
        .name("notices")
        .send()
        .await
        .unwrap();
    let channel = Queue::create(&sdk, "channel").await;
    let channel_arn = channel.arn().await;
    dlq_triage_test_support::moto::rule_with_target(
        &events,
        Some("notices"),
        "reports",
        r#"{"source": ["genesys-dlq-triage"]}"#,
        aws_sdk_eventbridge::types::Target::builder()
            .id("channel")
            .arn(channel_arn)
            .build()
            .unwrap(),
    )
    .await;
    let mut cmd = moto_poll_command(
        &moto.endpoint,
        "testing",
        "testing",
        &[
            "--queue-url",
            &queue.url,
            "--bucket",
            "reports",
            "--page-size",
            "3",
            "--delete",
        ],
    );
    cmd.env("NOTIFY_EVENT_BUS", "notices");
    let run = output(cmd).await;
    assert!(run.status.success(), "{}", text(&run));
    let details: Vec<serde_json::Value> = channel
        .bodies()
        .await
        .iter()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["detail"].clone())
        .collect();
    // Two pages (3 + 2 messages), one event each.
    assert_eq!(details.len(), 2, "{}", text(&run));
    let mut counts: Vec<u64> = details
        .iter()
        .map(|d| d["totalFailures"].as_u64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(counts, [2, 3]);
    assert!(details.iter().all(|d| {
        d["report"]["json"]
            .as_str()
            .unwrap()
            .starts_with("s3://reports/genesys-dlq/reports/dt=")
    }));
}

// ---- Concurrent drains, against the SQS stand-in (moto is too slow to drain thousands).

/// A stand-in with a queue of `n` dead letters; their bodies by message id.
async fn standin_queue(n: usize, latency_ms: u64) -> (SqsStandIn, String, HashMap<String, String>) {
    let sqs = SqsStandIn::start(std::time::Duration::from_millis(latency_ms)).await;
    let url = sqs.create_queue("dlq");
    let letters = dead_letters(n);
    let messages: Vec<(String, Vec<(String, String)>)> = letters
        .iter()
        .map(|m| (m.body.clone(), m.attributes.clone()))
        .collect();
    let ids = sqs.fill(&url, &messages);
    let bodies = ids
        .into_iter()
        .zip(messages.into_iter().map(|m| m.0))
        .collect();
    (sqs, url, bodies)
}

/// `dlq-triage poll --delete --no-correlate` of the stand-in's queue `url` into `out`,
/// with `args` besides.
fn standin_command(
    sqs: &SqsStandIn,
    url: &str,
    out: &Path,
    args: &[&str],
) -> std::process::Command {
    let mut cmd = poll_command(&sqs.endpoint, "testing", "testing", args);
    cmd.args(["--queue-url", url, "--delete", "--no-correlate", "--out"])
        .arg(out);
    cmd
}

/// [`standin_command`], run to its end.
async fn drain_standin(sqs: &SqsStandIn, url: &str, out: &Path, args: &[&str]) -> Output {
    output(standin_command(sqs, url, out, args)).await
}

/// Every stored record's payload is its message's body, byte for byte; the ids stored.
fn assert_byte_exact(out: &Path, bodies: &HashMap<String, String>) -> Vec<String> {
    records(out)
        .iter()
        .map(|r| {
            let id = r["messageId"].as_str().unwrap();
            let key = r["replayPayloadKey"].as_str().unwrap();
            let stored = std::fs::read(out.join(key)).unwrap();
            assert_eq!(stored, bodies[id].as_bytes(), "payload of {id}");
            id.to_owned()
        })
        .collect()
}

#[tokio::test]
async fn concurrency_8_drains_every_message_once_byte_exact() {
    let (sqs, url, bodies) = standin_queue(2_000, 5).await;
    let out = tempfile::tempdir().unwrap();
    let run = drain_standin(
        &sqs,
        &url,
        out.path(),
        &["--page-size", "250", "--concurrency", "8"],
    )
    .await;
    assert!(run.status.success(), "{}", text(&run));
    let mut stored = assert_byte_exact(out.path(), &bodies);
    assert_eq!(stored.len(), 2_000, "one record per message");
    stored.sort();
    stored.dedup();
    assert_eq!(stored.len(), 2_000, "no message twice");
    assert!(sqs.remaining(&url).is_empty(), "every message deleted");
    assert!(
        sqs.receive_counts(&url).values().all(|&n| n == 1),
        "each received once"
    );
    assert_eq!(reports(out.path()).len(), 8, "pages of 250");
    // Eight loops were at work, with deletes beside them.
    let most = Counters::get(&sqs.counters().most_in_flight);
    assert!(most >= 8, "at most {most} calls at once");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("deleted:    2000"), "{stdout}");
}

#[tokio::test]
async fn throttling_and_failed_batch_entries_are_retried_and_nothing_is_lost() {
    let (sqs, url, bodies) = standin_queue(1_000, 2).await;
    sqs.set_faults(Faults {
        throttle: 0.1,
        failed_entry: 0.05,
        ..Faults::default()
    });
    let out = tempfile::tempdir().unwrap();
    let run = drain_standin(&sqs, &url, out.path(), &["--page-size", "200"]).await;
    assert!(run.status.success(), "{}", text(&run));
    let c = sqs.counters();
    assert!(Counters::get(&c.throttled) > 0, "throttling was injected");
    assert!(Counters::get(&c.failed_entries) > 0, "failed entries too");
    assert!(sqs.remaining(&url).is_empty(), "{}", text(&run));
    assert_eq!(assert_byte_exact(out.path(), &bodies).len(), 1_000);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("calls retried"), "{stdout}");
}

#[tokio::test]
async fn lost_answers_lose_nothing() {
    let (sqs, url, bodies) = standin_queue(600, 2).await;
    // Calls carried out whose answer never arrives: the SDK retries them; a receive's
    // messages stay hidden for the visibility timeout, then come back.
    sqs.set_faults(Faults {
        drop: 0.1,
        ..Faults::default()
    });
    let out = tempfile::tempdir().unwrap();
    let run = drain_standin(
        &sqs,
        &url,
        out.path(),
        &["--page-size", "100", "--visibility-timeout", "2"],
    )
    .await;
    assert!(Counters::get(&sqs.counters().dropped) > 0);
    let stored = assert_byte_exact(out.path(), &bodies);
    let remaining = sqs.remaining(&url);
    for (id, body) in &bodies {
        assert!(
            stored.contains(id) || remaining.get(id) == Some(body),
            "{id} neither stored nor in the queue: {}",
            text(&run)
        );
    }
    for id in bodies.keys().filter(|id| !remaining.contains_key(*id)) {
        assert!(stored.contains(id), "{id} deleted without being stored");
    }
}

#[tokio::test]
async fn duplicates_across_receive_loops_are_one_record_and_every_receipt_is_deleted() {
    let (sqs, url, bodies) = standin_queue(300, 2).await;
    let out = tempfile::tempdir().unwrap();
    // A visibility timeout of 0: every receive loop is handed messages other loops hold.
    let run = drain_standin(
        &sqs,
        &url,
        out.path(),
        &[
            "--page-size",
            "50",
            "--visibility-timeout",
            "0",
            "--concurrency",
            "8",
        ],
    )
    .await;
    assert!(run.status.success(), "{}", text(&run));
    assert!(
        sqs.receive_counts(&url).values().any(|&n| n > 1),
        "messages were delivered more than once"
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(!stdout.contains("(0 duplicate receipts)"), "{stdout}");
    let mut stored = assert_byte_exact(out.path(), &bodies);
    assert_eq!(stored.len(), 300, "one record per message: {stdout}");
    stored.sort();
    stored.dedup();
    assert_eq!(stored.len(), 300);
    assert!(sqs.remaining(&url).is_empty(), "{stdout}");
}

#[tokio::test]
async fn a_concurrent_run_killed_mid_drain_loses_nothing() {
    let (sqs, url, bodies) = standin_queue(3_000, 5).await;
    let out = tempfile::tempdir().unwrap();
    let cmd = standin_command(
        &sqs,
        &url,
        out.path(),
        &["--page-size", "200", "--visibility-timeout", "2"],
    );
    tokio::task::spawn_blocking(move || {
        let (mut child, _) = start_poll(cmd);
        child.kill().unwrap();
        child.wait().unwrap();
    })
    .await
    .unwrap();
    let stored = assert_byte_exact(out.path(), &bodies);
    let remaining = sqs.remaining(&url);
    assert!(!remaining.is_empty(), "killed before the end");
    for id in bodies.keys().filter(|id| !remaining.contains_key(*id)) {
        assert!(stored.contains(id), "{id} deleted without being stored");
    }
    // What was not deleted comes back once its visibility timeout lapses.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while sqs.depth(&url).1 > 0 {
        assert!(tokio::time::Instant::now() < deadline, "still in flight");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(sqs.depth(&url).0 as usize, remaining.len());
}

#[tokio::test]
async fn ctrl_c_finishes_the_pages_in_hand_and_releases_the_rest() {
    let (sqs, url, bodies) = standin_queue(3_000, 5).await;
    let out = tempfile::tempdir().unwrap();
    // Eight receive loops (the default) and deletes in flight when Ctrl-C comes.
    let cmd = standin_command(&sqs, &url, out.path(), &["--page-size", "100"]);
    let (run, stderr) = tokio::task::spawn_blocking(move || {
        let (child, rest) = start_poll(cmd);
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let stderr: Vec<String> = rest.map(|l| l.unwrap()).collect();
        (child.wait_with_output().unwrap(), stderr)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("interrupted"), "{stdout}\n{stderr:?}");
    assert!(
        run.status.success(),
        "everything received was stored and deleted: {stdout}\n{stderr:?}"
    );
    let stored = assert_byte_exact(out.path(), &bodies);
    assert!(stored.len() < 3_000, "stopped early: {}", stored.len());
    // Stored is deleted, the rest is back in the queue and visible: nothing in between.
    let remaining = sqs.remaining(&url);
    assert_eq!(remaining.len() + stored.len(), 3_000, "{stdout}");
    assert!(stored.iter().all(|id| !remaining.contains_key(id)));
    assert_eq!(
        sqs.depth(&url),
        (remaining.len() as u64, 0),
        "the rest waits, visible\n{stdout}\n{stderr:?}"
    );
}

#[tokio::test]
async fn a_delete_entry_that_keeps_failing_is_reported_and_its_message_kept() {
    let (sqs, url, bodies) = standin_queue(30, 0).await;
    sqs.set_faults(Faults {
        failed_entry: 1.0,
        entries_keep_failing: true,
        ..Faults::default()
    });
    let out = tempfile::tempdir().unwrap();
    let run = drain_standin(&sqs, &url, out.path(), &["--page-size", "10"]).await;
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    // Stored, every entry tried three times, not deleted, and said so.
    assert_eq!(assert_byte_exact(out.path(), &bodies).len(), 30);
    assert_eq!(sqs.remaining(&url).len(), 30, "nothing deleted");
    // Three tries per entry, to delete and then to release.
    assert_eq!(Counters::get(&sqs.counters().failed_entries), 30 * 3 * 2);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("deleted:    0"), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("  not deleted ")
                && l.ends_with(": InternalError: We encountered an internal error."))
            .count(),
        10,
        "the first ten, by id and reason: {stdout}"
    );
    assert!(stdout.contains("… and 20 more not deleted"), "{stdout}");
    // The release failed the same way: the messages come back when their visibility
    // timeout lapses, and the run says so.
    assert!(stdout.contains("released:   0"), "{stdout}");
    assert!(stdout.contains("unreleased: 30"), "{stdout}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(
            "not every message was deleted (received 30, written 30, deleted 0); the rest is \
             back in the queue, but 30 could not be released"
        ),
        "{stderr}"
    );
    assert_eq!(sqs.depth(&url), (0, 30));
}
