//! `make bench-poll`: drain MESSAGES dead letters (default 100,000) from the SQS stand-in
//! of tests/support, answering every call after LATENCY_MS (default 20, SQS's own
//! 10–30 ms), with the release `dlq-triage poll --delete --concurrency CONCURRENCY`
//! (default 8) — and the same messages drained by nothing but the SQS calls, CONCURRENCY
//! loops of ReceiveMessage (10) then DeleteMessageBatch: the floor a drain at that
//! concurrency pays to the queue. Then both again with throttling injected on THROTTLE
//! (default 5 %) of calls.
//!
//! Reports messages/s, the ratio to the floor, the CLI's peak RSS and the calls it
//! retried; medians of RUNS runs (default 3). Asserts what must hold whatever the speed:
//! every message stored byte-exact and deleted, nothing deleted that was not stored.
//! Payloads go to /dev/shm when it exists, so the disk is not what is measured.
//!
//! A benchmark, not a test. Method and figures: docs/benchmarks.md.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use dlq_triage_test_support::cli::dlq_triage;
use dlq_triage_test_support::fixtures::scratch;
use dlq_triage_test_support::measure::{median, run_measured, setting};
use dlq_triage_test_support::sqs::mixed_dead_letters;
use dlq_triage_test_support::sqs_standin::{Counters, Faults, SqsStandIn};

struct Bench {
    messages: usize,
    concurrency: usize,
    page: usize,
    latency: Duration,
    letters: Vec<(String, Vec<(String, String)>)>,
}

/// One drain by the CLI.
struct CliRun {
    rate: f64,
    peak_mib: f64,
    retried: u64,
    throttled: u64,
}

impl Bench {
    /// A stand-in with the bench's queue, filled, injecting `faults` from now on.
    async fn queue(&self, faults: Faults) -> (SqsStandIn, String) {
        let sqs = SqsStandIn::start(self.latency).await;
        let url = sqs.create_queue("dlq");
        sqs.fill(&url, &self.letters);
        sqs.set_faults(faults);
        (sqs, url)
    }

    async fn cli(&self, faults: Faults) -> CliRun {
        let (sqs, url) = self.queue(faults).await;
        let scratch = scratch();
        let mut cmd = dlq_triage(&["poll", "--queue-url", &url, "--delete", "--no-correlate"]);
        cmd.args(["--wait-seconds", "1"])
            .args(["--concurrency", &self.concurrency.to_string()])
            .args(["--page-size", &self.page.to_string()])
            .arg("--out")
            .arg(scratch.path())
            .env("AWS_ENDPOINT_URL", &sqs.endpoint)
            .stderr(std::process::Stdio::null());
        let stdout = scratch.path().join("stdout.txt");
        cmd.stdout(std::fs::File::create(&stdout).unwrap());
        let run = tokio::task::spawn_blocking(move || run_measured(&mut cmd))
            .await
            .unwrap();
        let summary = std::fs::read_to_string(&stdout).unwrap_or_default();
        assert_eq!(run.code, 0, "poll failed:\n{summary}");

        // Every message was deleted, and only what was stored: the payload files are
        // named by message id.
        let remaining = sqs.remaining(&url);
        assert!(remaining.is_empty(), "{} left:\n{summary}", remaining.len());
        let stored = stored_ids(&scratch.path().join("replay"));
        assert_eq!(stored.len(), self.messages, "every message stored once");
        let retried = summary
            .lines()
            .find_map(|l| l.strip_prefix("sqs:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        CliRun {
            rate: self.messages as f64 / run.wall.as_secs_f64(),
            peak_mib: run.peak_kib as f64 / 1024.0,
            retried,
            throttled: Counters::get(&sqs.counters().throttled),
        }
    }

    /// The floor: CONCURRENCY loops of the two calls, through the same SDK, with the same
    /// retry settings as the CLI. Messages/s.
    async fn bare_calls(&self, faults: Faults) -> f64 {
        let (sqs, url) = self.queue(faults).await;
        let config = aws_sdk_sqs::config::Builder::from(&sqs.sdk().await)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(8)
                    .with_initial_backoff(Duration::from_millis(100)),
            )
            .build();
        let client = aws_sdk_sqs::Client::from_conf(config);
        let url = Arc::new(url);
        let started = Instant::now();
        let loops: Vec<_> = (0..self.concurrency)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move { drain_loop(&client, &url).await })
            })
            .collect();
        let mut drained = 0;
        for l in loops {
            drained += l.await.unwrap();
        }
        let elapsed = started.elapsed();
        assert_eq!(drained, self.messages, "the bare loops drained the queue");
        assert!(sqs.remaining(&url).is_empty());
        self.messages as f64 / elapsed.as_secs_f64()
    }
}

/// Receives and deletes until the queue answers empty; how many it deleted.
async fn drain_loop(client: &aws_sdk_sqs::Client, url: &str) -> usize {
    let mut drained = 0;
    loop {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(300)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        if out.messages().is_empty() {
            return drained;
        }
        let mut request = client.delete_message_batch().queue_url(url);
        for (i, m) in out.messages().iter().enumerate() {
            request = request.entries(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap())
                    .build()
                    .unwrap(),
            );
        }
        let deleted = request.send().await.unwrap();
        assert!(deleted.failed().is_empty());
        drained += out.messages().len();
    }
}

/// The message ids of the payloads under `replay/<CATEGORY>/<id>.json`.
fn stored_ids(replay: &Path) -> HashSet<String> {
    let mut ids = HashSet::new();
    for category in std::fs::read_dir(replay).unwrap() {
        for file in std::fs::read_dir(category.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let id = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(ids.insert(id), "{} twice", path.display());
        }
    }
    ids
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and a 100,000-message
    // drain has no place in the test run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("poll_drain: skipped (run it with `make bench-poll`)");
        return;
    }
    let messages = setting("MESSAGES", 100_000.0) as usize;
    let runs = setting("RUNS", 3.0) as usize;
    let throttle = setting("THROTTLE", 0.05);
    let bench = Bench {
        messages,
        concurrency: setting("CONCURRENCY", 8.0) as usize,
        page: setting("PAGE", 1000.0) as usize,
        latency: Duration::from_millis(setting("LATENCY_MS", 20.0) as u64),
        letters: mixed_dead_letters()
            .into_iter()
            .cycle()
            .take(messages)
            .map(|m| (m.body, m.attributes))
            .collect(),
    };
    println!(
        "{messages} messages, {:?} per call, concurrency {}, pages of {}, {runs} runs",
        bench.latency, bench.concurrency, bench.page
    );
    for (name, faults) in [
        ("no faults", Faults::default()),
        (
            "throttled",
            Faults {
                throttle,
                ..Faults::default()
            },
        ),
    ] {
        let (mut rates, mut floors, mut rss, mut retried) = (vec![], vec![], vec![], vec![]);
        for run in 0..runs {
            let cli = bench.cli(faults).await;
            let floor = bench.bare_calls(faults).await;
            println!(
                "{name}, run {run}: poll {:.0} msg/s, peak RSS {:.1} MiB, {} calls retried ({} throttled); bare calls {floor:.0} msg/s; ratio {:.2}",
                cli.rate,
                cli.peak_mib,
                cli.retried,
                cli.throttled,
                cli.rate / floor
            );
            rates.push(cli.rate);
            floors.push(floor);
            rss.push(cli.peak_mib);
            retried.push(cli.retried as f64);
        }
        let (rate, floor) = (median(rates), median(floors));
        println!(
            "{name} ({:.0} % of calls throttled): poll --delete {rate:.0} msg/s, peak RSS {:.1} MiB, {:.0} calls retried; bare calls {floor:.0} msg/s; poll/bare = {:.2} (medians)",
            faults.throttle * 100.0,
            median(rss),
            median(retried),
            rate / floor
        );
    }
}
