//! `make bench-poll`: drain 10,000 dead letters from `moto_server` with the release
//! `dlq-triage poll --delete`, and the same messages with nothing but the SQS calls
//! (ReceiveMessage 10 at a time, DeleteMessageBatch), to see what the triage adds over the
//! queue's own cost. Reports messages/s and the CLI's peak RSS; medians of RUNS runs.
//!
//! moto scans the whole queue on every SendMessage and ReceiveMessage (it recomputes the
//! queue's counters), so one queue of 10,000 takes half an hour to fill and its drain is
//! dominated by that scan. The 10,000 messages are therefore spread over QUEUES queues
//! (default 10 of 1,000), drained one after the other, each in pages of PAGE (default 250).
//!
//! A benchmark, not a test: it asserts only that every message was drained. Method and
//! figures: docs/benchmarks.md.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use dlq_triage_test_support::measure::{median, run_measured};
use dlq_triage_test_support::moto::Moto;
use dlq_triage_test_support::sqs::{Queue, mixed_dead_letters};

const MESSAGES: usize = 10_000;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runs() -> usize {
    setting("RUNS", 3)
}

/// Runs `dlq-triage poll --delete` as a child process; (wall time, peak RSS in KiB).
fn drain_with_cli(moto: &Moto, url: &str, out: &std::path::Path, page: usize) -> (Duration, u64) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dlq-triage"));
    cmd.args([
        "poll",
        "--queue-url",
        url,
        "--delete",
        "--no-correlate",
        "--wait-seconds",
        "1",
    ])
    .args(["--page-size", &page.to_string()])
    .arg("--out")
    .arg(out)
    .env("AWS_ENDPOINT_URL", &moto.endpoint)
    .env("AWS_REGION", "us-east-1")
    .env("AWS_ACCESS_KEY_ID", "testing")
    .env("AWS_SECRET_ACCESS_KEY", "testing")
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let run = run_measured(&mut cmd);
    assert_eq!(run.code, 0, "poll failed");
    (run.wall, run.peak_kib)
}

/// Receives and deletes everything with the SDK alone.
async fn drain_with_sdk(queue: &Queue) -> Duration {
    let started = Instant::now();
    loop {
        let out = queue
            .client
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        if out.messages().is_empty() {
            break;
        }
        let mut request = queue.client.delete_message_batch().queue_url(&queue.url);
        for (i, m) in out.messages().iter().enumerate() {
            request = request.entries(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap())
                    .build()
                    .unwrap(),
            );
        }
        request.send().await.unwrap();
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and a 10,000-message
    // drain has no place in the test run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("poll_drain: skipped (run it with `make bench-poll`)");
        return;
    }
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    let queues = setting("QUEUES", 10);
    let page = setting("PAGE", 250);
    let per_queue = MESSAGES / queues;
    let letters: Vec<_> = mixed_dead_letters()
        .into_iter()
        .cycle()
        .take(per_queue)
        .collect();
    let (mut cli_rates, mut rss, mut sdk_rates) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs() {
        let (mut cli_time, mut sdk_time, mut peak) = (Duration::ZERO, Duration::ZERO, 0u64);
        for q in 0..queues {
            let queue = Queue::create(&sdk, &format!("bench-cli-{run}-{q}")).await;
            queue.send(&letters, None).await;
            let out = tempfile::tempdir().unwrap();
            let (elapsed, max_rss) = drain_with_cli(&moto, &queue.url, out.path(), page);
            assert_eq!(queue.depth().await, (0, 0), "the CLI drained the queue");
            cli_time += elapsed;
            peak = peak.max(max_rss);

            let queue = Queue::create(&sdk, &format!("bench-sdk-{run}-{q}")).await;
            queue.send(&letters, None).await;
            sdk_time += drain_with_sdk(&queue).await;
            assert_eq!(
                queue.depth().await,
                (0, 0),
                "the SDK loop drained the queue"
            );
        }
        let drained = (per_queue * queues) as f64;
        cli_rates.push(drained / cli_time.as_secs_f64());
        sdk_rates.push(drained / sdk_time.as_secs_f64());
        rss.push(peak as f64 / 1024.0);
        println!(
            "run {run}: poll --delete {:.0} msg/s (peak RSS {:.1} MiB); SQS calls alone {:.0} msg/s",
            cli_rates[run], rss[run], sdk_rates[run]
        );
    }
    let (cli, sdk_only) = (median(cli_rates), median(sdk_rates));
    println!(
        "median of {} runs, {MESSAGES} messages in {queues} queues, pages of {page}: poll --delete {cli:.0} msg/s, peak RSS {:.1} MiB; SQS calls alone {sdk_only:.0} msg/s; poll/SQS-alone = {:.2}",
        runs(),
        median(rss),
        cli / sdk_only
    );
}
