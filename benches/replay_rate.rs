//! `make bench-replay`: does `dlq-triage replay --execute --rate RATE --concurrency
//! CONCURRENCY` (defaults 1,000/s and 64) hold its rate over EVENTS events (default
//! 20,000), and with what memory?
//!
//! The events are a synthetic batch (`tools/gen_events.py`; every dead letter is sent,
//! `--per-message`, though the batch repeats ten event bodies) run
//! through the release `analyze` into reports of PER_REPORT records (default 1,000, as
//! `poll` writes its pages) and payloads on tmpfs; the destination is
//! the local sink of tests/support, answering 200 at once and recording when each request
//! arrived. The rate held is (requests − 1) over the time from the first arrival to the
//! last; the slowest and fastest whole seconds are shown beside it. A second run asks for
//! the most `--rate` allows, to show how far above the asked rate the machinery (reading
//! payloads, the journal, HTTP) could go. Medians of RUNS runs (default 3).
//!
//! A benchmark, not a test: it asserts only that every event arrived once and the journal
//! has a line for each. Method and figures: docs/benchmarks.md.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use dlq_triage_test_support::cli::dlq_triage;
use dlq_triage_test_support::fixtures::{repo_path, scratch};
use dlq_triage_test_support::measure::{median, run_measured, setting};
use dlq_triage_test_support::sink::{Answer, Sink};

/// One replay run: the rate held, the slowest and fastest whole second, peak RSS (MiB).
struct Run {
    rate: f64,
    slowest: usize,
    fastest: usize,
    peak_mib: f64,
}

async fn replay(report: &Path, events: usize, rate: f64, concurrency: usize) -> Run {
    let sink = Sink::start(Answer::Status(200)).await;
    let journal = scratch();
    let mut cmd = dlq_triage(&["replay"]);
    cmd.arg(report)
        .args(["--to-url", &format!("{}/ingest", sink.url)])
        .args(["--rate", &rate.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .arg("--journal")
        .arg(journal.path().join("journal.jsonl"))
        // The synthetic batch repeats ten events under distinct message ids: every copy is
        // sent.
        .arg("--per-message")
        .arg("--execute")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let run = tokio::task::spawn_blocking(move || run_measured(&mut cmd))
        .await
        .unwrap();
    assert_eq!(run.code, 0, "replay failed");
    let mut at: Vec<Instant> = sink.received().iter().map(|r| r.at).collect();
    assert_eq!(at.len(), events, "every event arrived once");
    let lines = std::fs::read_to_string(journal.path().join("journal.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, events, "a journal line per event");
    at.sort();
    let span = at[at.len() - 1] - at[0];
    let mut per_second = vec![0usize; span.as_secs() as usize + 1];
    for t in &at {
        per_second[(*t - at[0]).as_secs() as usize] += 1;
    }
    // The last second is partial.
    per_second.pop();
    Run {
        rate: (events - 1) as f64 / span.as_secs_f64(),
        slowest: per_second.iter().copied().min().unwrap_or(0),
        fastest: per_second.iter().copied().max().unwrap_or(0),
        peak_mib: run.peak_kib as f64 / 1024.0,
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not.
    if !std::env::args().any(|a| a == "--bench") {
        println!("replay_rate: skipped (run it with `make bench-replay`)");
        return;
    }
    let events = setting("EVENTS", 20_000.0) as usize;
    let rate = setting("RATE", 1000.0);
    let concurrency = setting("CONCURRENCY", 64.0) as usize;
    let runs = setting("RUNS", 3.0) as usize;

    // Reports of PER_REPORT records, as `poll` writes its pages (the Lambda's batches are
    // smaller still): replay reads them one at a time.
    let per_report = setting("PER_REPORT", 1000.0) as usize;
    let dir = scratch();
    let out = Command::new("python3")
        .arg(repo_path("tools/gen_events.py"))
        .args(["--synthetic", &events.to_string(), "500"])
        .output()
        .expect("python3");
    assert!(out.status.success(), "gen_events.py failed");
    let batch: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, records) in batch["Records"]
        .as_array()
        .unwrap()
        .chunks(per_report)
        .enumerate()
    {
        let path = dir.path().join("batch.json");
        std::fs::write(&path, serde_json::json!({ "Records": records }).to_string()).unwrap();
        let analyzed = dlq_triage(&["analyze", "--out"])
            .arg(dir.path().join(format!("out/{i:05}")))
            .arg(&path)
            .output()
            .unwrap();
        assert!(analyzed.status.success(), "analyze failed");
    }
    let reports = dir.path().join("out");

    println!(
        "{events} events in reports of {per_report} to a local sink, --concurrency {concurrency}, {runs} runs"
    );
    for asked in [rate, 10_000.0] {
        let (mut rates, mut rss) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let r = replay(&reports, events, asked, concurrency).await;
            println!(
                "--rate {asked}, run {run}: {:.1}/s held ({:+.2} % of asked), whole seconds {}–{}, peak RSS {:.1} MiB",
                r.rate,
                (r.rate / asked - 1.0) * 100.0,
                r.slowest,
                r.fastest,
                r.peak_mib
            );
            rates.push(r.rate);
            rss.push(r.peak_mib);
        }
        let held = median(rates);
        println!(
            "--rate {asked}: median {held:.1}/s ({:+.2} % of asked), peak RSS {:.1} MiB",
            (held / asked - 1.0) * 100.0,
            median(rss)
        );
    }
}
