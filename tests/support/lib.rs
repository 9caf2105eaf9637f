//! Test support for genesys-dlq-triage, shared by every integration test, the benchmarks
//! and `make demo`: the bundled fixtures and golden files, free ports on 127.0.0.1, and the
//! local servers the tests start for real (`moto_server`, the Genesys Cloud simulator), the
//! one [`world::World`] the function and the CLI run in against them, and a real browser
//! for the pages.
//!
//! The in-memory twins of the ports (`MemoryStore`, `MemoryCorrelator`) are part of the
//! crate under test, beside the ports they stand in for.

pub mod browser;
pub mod cli;
pub mod cloudwatch;
pub mod dynalite;
pub mod emulator;
pub mod eventbridge;
pub mod fixtures;
pub mod genesys_sim;
pub mod measure;
pub mod moto;
pub mod net;
pub mod s3_standin;
pub mod sink;
pub mod sqs;
pub mod sqs_standin;
pub mod world;

/// A dev tool from the project's venv (`make tools`), else from PATH.
pub fn venv_tool(name: &str) -> std::path::PathBuf {
    let venv = fixtures::repo_path(".venv-tools/bin").join(name);
    if venv.exists() {
        venv
    } else {
        std::path::PathBuf::from(name)
    }
}

/// SDK configuration for a local AWS stand-in at `endpoint` (us-east-1) with the given
/// credentials.
pub async fn local_sdk(
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            access_key, secret_key, None, None, "test",
        ))
        .load()
        .await
}

/// How many cases a property test runs: `default`, or `PROPTEST_CASES` (`make fuzz` runs
/// many more).
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
