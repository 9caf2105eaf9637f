//! `make bench-summarize`: `dlq-triage summarize` over many reports, beside DuckDB.
//!
//! - `REPORTS` (default 1,000) reports of `RECORDS` (default 1,000) records each, in the
//!   Lambda's layout (`reports/dt=YYYY-MM-DD/<id>.json`) on tmpfs: records made from the
//!   20 records `analyze` writes for the sample batch, each with its own message id
//!   (10 % of them repeating a record of the previous report, as a redelivery does), a
//!   dead-letter time spread over a day, and one of 3,000 conversations.
//! - The bench-profile `dlq-triage summarize DIR --json` as a child process: wall time
//!   and peak RSS (`VmHWM`); then `tools/duckdb_summary.py DIR` (DuckDB's `read_json`,
//!   the same aggregation over distinct message ids): its process wall time and peak RSS,
//!   and its own query time.
//! - `summarize --out` (summary.json, .md and .html) against `--json` alone: the page's cost.
//! - The floors: the same files read and discarded, then read and parsed
//!   (`ReportDigest::parse`) on every core with nothing summarized.
//! - The same `summarize` over `S3_REPORTS` (default: all) of the reports from S3
//!   (`s3://bench/genesys-dlq/`, the S3 stand-in of `tests/support`: moto serves too slowly
//!   to measure this), each request held `S3_DELAY_MS` (default 20), beside the same
//!   reports from tmpfs and the same listing and GETs alone.
//!
//! `RUNS` (default 3) runs; medians. A benchmark, not a test: it asserts only that every
//! run saw every distinct record. Method and figures: docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dlq_triage_test_support::cli::{analyzed, dlq_triage};
use dlq_triage_test_support::fixtures::{event_path, repo_path, scratch};
use dlq_triage_test_support::measure::{Measured, median, run_measured};
use dlq_triage_test_support::s3_standin::S3Standin;
use futures::StreamExt;
use serde_json::{Value, json};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The 20 records `analyze` writes for the sample batch.
fn templates(scratch: &Path) -> Vec<Value> {
    let out = scratch.join("template");
    let report = analyzed(&event_path("sqs-mixed-batch.json"), &out);
    report["records"].as_array().unwrap().clone()
}

/// Writes the reports below `root`; returns the number of distinct message ids.
fn generate(root: &Path, templates: &[Value], reports: usize, records: usize) -> usize {
    let dir = root.join("genesys-dlq/reports/dt=2026-11-28");
    std::fs::create_dir_all(&dir).unwrap();
    let start_ms: i64 = 1_795_824_000_000; // 2026-11-28T00:00:00Z
    let step_ms = 86_400_000 / (reports * records) as i64;
    for k in 0..reports {
        let list: Vec<Value> = (0..records)
            .map(|i| {
                let mut r = templates[i % templates.len()].clone();
                // A tenth repeats an original record of the previous report.
                let (report, n) = if i % 10 == 0 && k > 0 && i + 1 < records {
                    (k - 1, i + 1)
                } else {
                    (k, i)
                };
                let seq = (report * records + n) as i64;
                let at = chrono::DateTime::from_timestamp_millis(start_ms + seq * step_ms)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                r["messageId"] = json!(format!("m-{report:04}-{n:04}"));
                r["sentTimestamp"] = json!(at);
                r["timestamp"] = json!(at);
                if !r["interactionId"].is_null() {
                    r["interactionId"] = json!(format!(
                        "0000{:04x}-0000-4000-8000-000000000000",
                        seq % 3000
                    ));
                }
                r
            })
            .collect();
        let generated = chrono::DateTime::from_timestamp(1_795_824_000 + 60 * k as i64, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let report = json!({
            "schemaVersion": 1,
            "reportId": format!("r{k:04}"),
            "generatedAt": generated,
            "totalFailures": records,
            "summary": {},
            "records": list,
        });
        let file = std::fs::File::create(dir.join(format!("r{k:04}.json"))).unwrap();
        serde_json::to_writer(std::io::BufWriter::new(file), &report).unwrap();
    }
    reports * records
        - (reports - 1)
            * (0..records)
                .filter(|i| i % 10 == 0 && i + 1 < records)
                .count()
}

/// `dlq-triage summarize SOURCE --json`, its output checked for `distinct` dead letters.
fn summarize(source: &str, endpoint: Option<&str>, distinct: usize) -> Measured {
    let out = tempfile::NamedTempFile::new().unwrap();
    // The summary alone: the health look-ups beside it are not what is measured.
    let mut cmd = dlq_triage(&["summarize", source, "--json", "--no-health"]);
    cmd.stdout(out.reopen().unwrap()).stderr(Stdio::null());
    if let Some(e) = endpoint {
        cmd.env("AWS_ENDPOINT_URL", e);
    }
    let run = run_measured(&mut cmd);
    assert_eq!(run.code, 0, "summarize failed");
    let summary: Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    assert_eq!(
        summary["deadLetters"], distinct,
        "summarize saw every record"
    );
    run
}

/// `tools/duckdb_summary.py DIR`: its measure, and its own query time in seconds.
fn duckdb(dir: &Path, distinct: usize) -> (Measured, f64) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(python);
    cmd.arg(repo_path("tools/duckdb_summary.py"))
        .arg(dir)
        .stdout(out.reopen().unwrap());
    let run = run_measured(&mut cmd);
    assert_eq!(
        run.code, 0,
        "duckdb_summary.py failed (is duckdb in the dev-tools venv?)"
    );
    let said: Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    assert_eq!(said["deadLetters"], distinct, "DuckDB saw every record");
    (run, said["seconds"].as_f64().unwrap())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (reports, records, runs) = (
        env_or("REPORTS", 1000),
        env_or("RECORDS", 1000),
        env_or("RUNS", 3),
    );
    let work = scratch();
    let templates = templates(work.path());
    let local = work.path().join("local");
    let distinct = generate(&local, &templates, reports, records);
    let bytes: u64 = std::fs::read_dir(local.join("genesys-dlq/reports/dt=2026-11-28"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "{reports} reports of {records} records: {:.2} GB of report JSON, {distinct} distinct dead letters",
        bytes as f64 / 1e9
    );
    let json_only = against_duckdb(&local, distinct, runs);
    pages(work.path(), &local, distinct, runs, json_only);
    floors(&local, runs, json_only);
    from_s3(&local, (reports, records), runs, json_only).await;
}

/// `summarize --json` of the local reports against DuckDB's query of them, `runs` times:
/// the median seconds of `summarize --json`.
fn against_duckdb(local: &Path, distinct: usize, runs: usize) -> f64 {
    let (mut ours, mut theirs, mut query) = (vec![], vec![], vec![]);
    let (mut our_rss, mut their_rss) = (vec![], vec![]);
    for run in 0..runs {
        let a = summarize(local.to_str().unwrap(), None, distinct);
        let (b, q) = duckdb(local, distinct);
        println!(
            "run {run}: summarize {:.2} s, {:.0} MiB; DuckDB {:.2} s (query {q:.2} s), {:.0} MiB",
            a.wall.as_secs_f64(),
            mib(a.peak_kib),
            b.wall.as_secs_f64(),
            mib(b.peak_kib)
        );
        ours.push(a.wall.as_secs_f64());
        our_rss.push(mib(a.peak_kib));
        theirs.push(b.wall.as_secs_f64());
        their_rss.push(mib(b.peak_kib));
        query.push(q);
    }
    let json_only = median(ours.clone());
    println!(
        "summarize: {:.2} s, peak RSS {:.0} MiB; DuckDB: {:.2} s (query {:.2} s), peak RSS {:.0} MiB; ratio summarize / DuckDB {:.2} (medians of {runs})",
        median(ours.clone()),
        median(our_rss),
        median(theirs.clone()),
        median(query),
        median(their_rss),
        median(ours) / median(theirs)
    );

    json_only
}

/// The pages: the same summary written as files (summary.json, .md and .html, with the
/// page's sample payloads read back) against `--json` alone.
fn pages(work: &Path, local: &Path, distinct: usize, runs: usize, json_only: f64) {
    let (mut written, mut page_bytes) = (vec![], 0);
    for _ in 0..runs {
        let out = work.join("summary-out");
        let mut cmd = dlq_triage(&["summarize", local.to_str().unwrap(), "--no-health", "--out"]);
        cmd.arg(&out).stdout(Stdio::null()).stderr(Stdio::null());
        let run = run_measured(&mut cmd);
        assert_eq!(run.code, 0, "summarize --out failed");
        written.push(run.wall.as_secs_f64());
        page_bytes = std::fs::metadata(out.join("summary.html")).unwrap().len();
    }
    println!(
        "summary.html of {distinct} dead letters: {:.0} KB; summarize --out {:.2} s, {:.2} s beyond --json (medians of {runs})",
        page_bytes as f64 / 1e3,
        median(written.clone()),
        median(written) - json_only
    );
}

/// The same from S3, as far away as `S3_DELAY_MS` (default 20) per request: the
/// reports served by the S3 stand-in, which holds each request that long.
async fn from_s3(local: &Path, (reports, records): (usize, usize), runs: usize, json_only: f64) {
    let in_s3 = env_or("S3_REPORTS", reports).min(reports);
    let delay = std::time::Duration::from_millis(env_or("S3_DELAY_MS", 20) as u64);
    let files = report_files(local);
    let objects = files
        .iter()
        .take(in_s3)
        .map(|file| {
            let name = file.file_name().unwrap().to_str().unwrap();
            (
                format!("genesys-dlq/reports/dt=2026-11-28/{name}"),
                std::fs::read(file).unwrap().into(),
            )
        })
        .collect();
    let far = S3Standin::start("bench", objects, delay).await;
    let distinct_s3 = in_s3 * records
        - in_s3.saturating_sub(1)
            * (0..records)
                .filter(|i| i % 10 == 0 && i + 1 < records)
                .count();
    let (mut s3_wall, mut s3_rss, mut bare) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        let a = summarize("s3://bench/genesys-dlq/", Some(&far.endpoint), distinct_s3);
        s3_wall.push(a.wall.as_secs_f64());
        s3_rss.push(mib(a.peak_kib));
        // The floor: the same listing and GETs, 16 at a time as summarize makes them,
        // bodies discarded.
        bare.push(get_all(&far.endpoint, in_s3).await);
    }
    let s3_wall = median(s3_wall);
    println!(
        "{in_s3} reports from S3 at {} ms a request: summarize {s3_wall:.2} s, peak RSS {:.0} MiB; {:.2} s beyond the same reports from tmpfs; the same listing and GETs alone {:.2} s",
        delay.as_millis(),
        median(s3_rss),
        s3_wall - json_only,
        median(bare)
    );
}

/// Lists `s3://bench/genesys-dlq/` at `endpoint` and GETs every object, 16 at a time,
/// discarding the bodies: seconds.
async fn get_all(endpoint: &str, expected: usize) -> f64 {
    let sdk = dlq_triage_test_support::local_sdk(endpoint, "testing", "testing").await;
    let s3 = genesys_dlq_triage::s3_client(&sdk, true);
    let started = std::time::Instant::now();
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket("bench")
        .prefix("genesys-dlq/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        keys.extend(
            page.unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    let gets = keys.into_iter().map(|key| {
        let s3 = s3.clone();
        async move {
            let out = s3
                .get_object()
                .bucket("bench")
                .key(key)
                .send()
                .await
                .unwrap();
            out.body.collect().await.unwrap().into_bytes().len()
        }
    });
    let got: Vec<usize> = futures::stream::iter(gets)
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(got.len(), expected);
    started.elapsed().as_secs_f64()
}

/// The report files below `local`, in name order.
fn report_files(local: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(local.join("genesys-dlq/reports/dt=2026-11-28"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    files.sort();
    files
}

/// What the hardware allows: the same files read and discarded, then read and parsed
/// into what the summary needs (`ReportDigest::parse`, the reader `summarize` uses), on
/// every core, nothing summarized; beside `summarize`'s median `ours`.
fn floors(local: &Path, runs: usize, ours: f64) {
    let files = report_files(local);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let over_cores = |parse: bool| {
        let started = std::time::Instant::now();
        std::thread::scope(|scope| {
            for chunk in files.chunks(files.len().div_ceil(cores)) {
                scope.spawn(move || {
                    for file in chunk {
                        let bytes = std::fs::read(file).unwrap();
                        if parse {
                            let digest = genesys_dlq_triage::ReportDigest::parse(&bytes).unwrap();
                            std::hint::black_box(digest);
                        }
                        std::hint::black_box(bytes);
                    }
                });
            }
        });
        started.elapsed().as_secs_f64()
    };
    let read: Vec<f64> = (0..runs).map(|_| over_cores(false)).collect();
    let parsed: Vec<f64> = (0..runs).map(|_| over_cores(true)).collect();
    let (read, parsed) = (median(read), median(parsed));
    println!(
        "floors on {cores} cores: read and discard {read:.2} s; read and parse {parsed:.2} s; summarize {ours:.2} s runs at {:.0} % of the parse floor's speed",
        parsed / ours * 100.0
    );
}
