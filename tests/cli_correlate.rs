//! `dlq-triage analyze` with Genesys credentials: the real binary against the simulator.

use dlq_triage_test_support::cli::dlq_triage;

use dlq_triage_test_support::fixtures::event_path;
use dlq_triage_test_support::genesys_sim::{Sim, SimState};
use serde_json::Value;

async fn run_cli(sim: &Sim, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = dlq_triage(&["analyze"]);
    cmd.arg("--out")
        .arg(out)
        .args(extra)
        .arg(event_path("sqs-mixed-batch.json"))
        .env("GENESYS_CLIENT_ID", "cli-client")
        .env("GENESYS_CLIENT_SECRET", "cli-secret-value")
        .env("GENESYS_API_BASE", sim.base_url())
        .env_remove("GENESYS_REGION")
        .env_remove("GENESYS_LOGIN_BASE");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn analyze_correlates_when_credentials_are_set() {
    let sim = Sim::start(SimState::new("cli-client", "cli-secret-value"), 0)
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = run_cli(&sim, out.path(), &[]).await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("genesys: 2 API calls"), "{stdout}");

    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    for r in report["records"].as_array().unwrap() {
        let status = r["interactionInfo"]["status"].as_str().unwrap();
        let expected = if r["interactionId"].is_null() {
            "noConversation"
        } else {
            "found"
        };
        assert_eq!(status, expected, "{}", r["messageId"]);
        if status == "found" {
            assert!(r["interactionInfo"]["conversationStart"].is_string());
            assert!(
                r["interactionInfo"]["participantPurposes"]
                    .as_array()
                    .unwrap()
                    .len()
                    >= 2
            );
        }
    }
    // Eight distinct conversations, one multi-get.
    assert_eq!(
        sim.state
            .stats
            .detail_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        sim.state
            .stats
            .ids_requested
            .load(std::sync::atomic::Ordering::SeqCst),
        8
    );

    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("## Affected conversations"));
    assert!(
        md.contains("Correlation with Genesys Cloud — found: 16, noConversation: 4."),
        "{md}"
    );
    let first = report["summary"]["incidents"][0]["conversationIds"][0]
        .as_str()
        .unwrap();
    let row = md
        .lines()
        .find(|l| l.contains(first) && l.contains("| found |"))
        .expect("a row per conversation");
    assert!(
        row.contains("7f3c0d2e-5a1b-4c9d-8e7f-001122334455"),
        "{row}"
    );
    assert!(!md.contains("cli-secret-value") && !stdout.contains("cli-secret-value"));
}

#[tokio::test]
async fn no_correlate_skips_the_api() {
    let sim = Sim::start(SimState::new("cli-client", "cli-secret-value"), 0)
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = run_cli(&sim, out.path(), &["--no-correlate"]).await;
    assert!(run.status.success());
    assert_eq!(
        sim.state
            .stats
            .token_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(
        report["records"][0]["interactionInfo"],
        serde_json::json!({"status": "skipped", "reason": "--no-correlate"})
    );
}

#[tokio::test]
async fn a_plain_http_remote_base_is_refused_with_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    let run = tokio::task::spawn_blocking({
        let out = out.path().to_owned();
        move || {
            dlq_triage(&["analyze", "--out"])
                .arg(out)
                .arg(event_path("sqs-single.json"))
                .env("GENESYS_CLIENT_ID", "a")
                .env("GENESYS_CLIENT_SECRET", "b")
                .env("GENESYS_API_BASE", "http://api.example.com")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("plain http is allowed only for loopback"),
        "{stderr}"
    );
}
