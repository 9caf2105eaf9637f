//! `make bench-memory`: peak memory and write time, the targets of the hardening work.
//!
//! - The Lambda on a 6 MB batch (the invocation payload maximum, ~2,600 records): the
//!   bench-profile `dlq-triage-lambda` under cargo-lambda's Runtime API emulator, writing to
//!   `moto_server`'s S3, correlation skipped; its peak RSS (`VmHWM`) after start-up and
//!   after the invocation.
//! - `dlq-triage analyze` on 10,000 records (~23 MB) into tmpfs: wall time and peak RSS
//!   (the child's own `VmHWM`), beside the cost of writing the same 10,000 payload files
//!   alone (each written to a temporary name, fsynced and renamed), measured in the same
//!   run; and, as a second reference, the same files written by a Python script
//!   (`tools/write_alone.py`: the same system calls, the plain way a script would).
//!
//! Batches come from `tools/gen_events.py --synthetic`. RUNS (default 3) runs; medians.
//! A benchmark, not a test: it asserts only that the work succeeded. Method and figures:
//! docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dlq_triage_test_support::cli::dlq_triage;
use dlq_triage_test_support::emulator::Emulator;
use dlq_triage_test_support::fixtures::{repo_path, scratch};
use dlq_triage_test_support::measure::{Measured, median, run_measured, thread_cpu};
use dlq_triage_test_support::moto::Moto;

fn runs() -> usize {
    std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Writes `tools/gen_events.py --synthetic records conversations` to `path`.
fn generate(path: &Path, records: usize, conversations: usize) {
    let out = Command::new("python3")
        .arg(repo_path("tools/gen_events.py"))
        .args([
            "--synthetic",
            &records.to_string(),
            &conversations.to_string(),
        ])
        .output()
        .expect("python3");
    assert!(out.status.success(), "gen_events.py failed");
    std::fs::write(path, out.stdout).unwrap();
}

/// The cost of writing the batch's payloads alone: one file per body in nine folders,
/// each written to a temporary name, fsynced and renamed. (wall, CPU) of the writes.
fn write_alone(batch: &Path, out: &Path) -> (Duration, Duration) {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(batch).unwrap()).unwrap();
    let records = doc["Records"].as_array().unwrap();
    let started = Instant::now();
    let cpu = thread_cpu();
    let folders: Vec<PathBuf> = (0..9).map(|i| out.join(format!("replay/C{i}"))).collect();
    for f in &folders {
        std::fs::create_dir_all(f).unwrap();
    }
    for (i, r) in records.iter().enumerate() {
        use std::io::Write;
        let dir = &folders[i % folders.len()];
        let id = r["messageId"].as_str().unwrap();
        let tmp = dir.join(format!(".{id}.tmp"));
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(r["body"].as_str().unwrap().as_bytes()).unwrap();
        f.sync_all().unwrap();
        std::fs::rename(&tmp, dir.join(format!("{id}.json"))).unwrap();
    }
    (started.elapsed(), thread_cpu() - cpu)
}

/// The same writes as [`write_alone`] done by `tools/write_alone.py`: (wall, CPU) of its
/// write loop, as the script measures it (its start-up and its read of the batch excluded).
fn write_alone_script(batch: &Path, out: &Path) -> (Duration, Duration) {
    let run = Command::new("python3")
        .arg(repo_path("tools/write_alone.py"))
        .arg(batch)
        .arg(out)
        .output()
        .expect("python3");
    assert!(run.status.success(), "write_alone.py failed");
    let times: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let seconds = |k: &str| Duration::from_secs_f64(times[k].as_f64().unwrap());
    (seconds("seconds"), seconds("cpu"))
}

/// `dlq-triage analyze` on `batch`.
fn analyze(batch: &Path, out: &Path) -> Measured {
    let mut cmd = dlq_triage(&["analyze", "--no-correlate", "--out"]);
    cmd.arg(out)
        .arg(batch)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let run = run_measured(&mut cmd);
    assert_eq!(run.code, 0, "analyze failed");
    run
}

/// The Lambda on `batch`: (peak RSS KiB after start-up, after the invocation; the
/// invocation's wall time, as its caller sees it).
async fn lambda(batch: &[u8]) -> (u64, u64, Duration) {
    let moto = Moto::start().await;
    let sdk = moto.sdk().await;
    genesys_dlq_triage::s3_client(&sdk, true)
        .create_bucket()
        .bucket("bench-reports")
        .send()
        .await
        .unwrap();
    let env = [
        ("REPORT_BUCKET", "bench-reports".to_owned()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN".to_owned()),
    ];
    let emulator = Emulator::start(Path::new(env!("CARGO_BIN_EXE_dlq-triage-lambda")), &env).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    // A first, tiny invocation: start-up and the SDK clients' first use.
    let warm = std::fs::read(repo_path("events/sqs-single.json")).unwrap();
    let r = client
        .post(emulator.invocations_url())
        .body(warm)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let _ = r.bytes().await;
    let idle = emulator.function_peak_rss_kib().unwrap_or(0);
    let started = std::time::Instant::now();
    let r = client
        .post(emulator.invocations_url())
        .body(batch.to_vec())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    let took = started.elapsed();
    assert!(status.is_success(), "{status} {body}: {}", emulator.logs());
    assert_eq!(body["batchItemFailures"], serde_json::json!([]), "{body}");
    (idle, emulator.function_peak_rss_kib().unwrap_or(0), took)
}

/// The 10,000-record batch for `analyze` (its path), and the Lambda's 6 MB batch.
fn batches(work: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let big = work.join("batch-10k.json");
    generate(&big, 10_000, 3_000);
    let lambda_batch = work.join("batch-6mb.json");
    generate(&lambda_batch, 2_600, 800);
    let lambda_bytes = std::fs::read(&lambda_batch).unwrap();
    assert!(
        lambda_bytes.len() <= 6 * 1024 * 1024,
        "the Lambda batch must fit an invocation"
    );
    (big, lambda_bytes)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` builds this and must not run it.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let work = scratch();
    let (big, lambda_bytes) = batches(work.path());

    let (mut a_wall, mut a_rss, mut w_wall, mut l_idle, mut l_peak) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut a_cpu, mut w_cpu, mut s_wall, mut s_cpu) = (vec![], vec![], vec![], vec![]);
    let mut l_wall = vec![];
    for run in 0..runs() {
        let out = work.path().join(format!("analyze-{run}"));
        let run_a = analyze(&big, &out);
        a_wall.push(run_a.wall.as_secs_f64());
        a_cpu.push(run_a.cpu.as_secs_f64());
        a_rss.push(run_a.peak_kib as f64 / 1024.0);
        let _ = std::fs::remove_dir_all(&out);
        let alone = work.path().join(format!("alone-{run}"));
        let (wall, cpu) = write_alone(&big, &alone);
        w_wall.push(wall.as_secs_f64());
        w_cpu.push(cpu.as_secs_f64());
        let _ = std::fs::remove_dir_all(&alone);
        let script = work.path().join(format!("script-{run}"));
        let (wall, cpu) = write_alone_script(&big, &script);
        s_wall.push(wall.as_secs_f64());
        s_cpu.push(cpu.as_secs_f64());
        let _ = std::fs::remove_dir_all(&script);
        let (idle, peak, took) = lambda(&lambda_bytes).await;
        l_wall.push(took.as_secs_f64());
        l_idle.push(idle as f64 / 1024.0);
        l_peak.push(peak as f64 / 1024.0);
        println!(
            "run {run}: analyze {:.3} s (CPU {:.3} s) {:.1} MiB; files alone {:.3} s (CPU {:.3} s); by a script {:.3} s (CPU {:.3} s); lambda idle {:.1} MiB, peak {:.1} MiB, invocation {:.2} s",
            a_wall[run],
            a_cpu[run],
            a_rss[run],
            w_wall[run],
            w_cpu[run],
            s_wall[run],
            s_cpu[run],
            l_idle[run],
            l_peak[run],
            l_wall[run]
        );
    }
    let big_mb = std::fs::metadata(&big).unwrap().len() as f64 / 1e6;
    println!(
        "analyze 10,000 records ({big_mb:.1} MB): wall {:.2} s (median of {}), peak RSS {:.1} MiB",
        median(a_wall.clone()),
        runs(),
        median(a_rss)
    );
    println!(
        "writing the 10,000 payloads alone: {:.2} s; ratio analyze / alone {:.2}",
        median(w_wall.clone()),
        median(a_wall.clone()) / median(w_wall)
    );
    println!(
        "the same files written by a Python script (tools/write_alone.py): {:.2} s (CPU {:.3} s); ratio analyze / script {:.2}",
        median(s_wall.clone()),
        median(s_cpu),
        median(a_wall) / median(s_wall)
    );
    println!(
        "CPU (user + system): analyze {:.3} s, files alone {:.3} s; ratio {:.2}",
        median(a_cpu.clone()),
        median(w_cpu.clone()),
        median(a_cpu) / median(w_cpu)
    );
    println!(
        "lambda, {:.1} MB batch ({} records): peak RSS {:.1} MiB (after start-up {:.1} MiB), invocation {:.2} s (S3 in moto)",
        lambda_bytes.len() as f64 / 1e6,
        2_600,
        median(l_peak),
        median(l_idle),
        median(l_wall)
    );
}
