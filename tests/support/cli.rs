//! Running the `dlq-triage` binary from async tests, and showing what it did.

use std::process::{Command, Output};

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
