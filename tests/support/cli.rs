//! Running the `dlq-triage` binary from tests and benchmarks, with a known environment,
//! and showing what it did.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `dlq-triage` binary Cargo built beside the running test or benchmark (it builds a
/// package's binaries before its integration tests and benches: `target/<profile>/`, one
/// folder above the test's own `deps/`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    profile.join(format!("dlq-triage{}", std::env::consts::EXE_SUFFIX))
}

/// `dlq-triage ARGS` with test AWS credentials (`testing`, region us-east-1, no instance
/// metadata, no profile, no endpoint: add `AWS_ENDPOINT_URL` for a local service) and no
/// Genesys credentials (add them to correlate).
pub fn dlq_triage(args: &[&str]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("GENESYS_CLIENT_ID")
        .env_remove("GENESYS_CLIENT_SECRET")
        .env_remove("NOTIFY_EVENT_BUS");
    cmd
}

/// Runs `cmd` with `input` on its standard input (written from a thread, so a child that
/// fills its output pipes first cannot deadlock), to completion.
pub fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let mut stdin = child.stdin.take().expect("a stdin pipe");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The child may exit without reading everything (an error on its first bytes).
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("the command ends");
    writer.join().expect("the stdin writer");
    output
}

/// `analyze --no-correlate` of `batch` into `out`, which must succeed; its report.json.
pub fn analyzed(batch: &Path, out: &Path) -> serde_json::Value {
    let o = dlq_triage(&["analyze", "--no-correlate", "--out"])
        .arg(out)
        .arg(batch)
        .output()
        .expect("analyze starts");
    assert!(o.status.success(), "{}", text(&o));
    let report = std::fs::read(out.join("report.json")).expect("analyze wrote report.json");
    serde_json::from_slice(&report).expect("report.json is JSON")
}

/// Runs `cmd` to completion off the async runtime (the test's servers keep answering).
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the command starts"))
        .await
        .expect("the command's thread")
}

/// Exit status, standard output and standard error, for an assertion's message.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
