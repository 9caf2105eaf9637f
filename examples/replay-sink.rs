//! A replay destination as a process, for `make demo-poll` and for trying `dlq-triage
//! replay` by hand: records nothing, prints every request it receives and answers 200.
//!
//! ```sh
//! cargo run --example replay-sink -- --port 0 [--status 429 --retry-after 1]
//! ```
//! Prints `listening on http://127.0.0.1:PORT` on its first line, then one line per request.

use std::io::Write;

use clap::Parser;
use dlq_triage_test_support::sink::{Answer, Sink};

/// An HTTP endpoint on 127.0.0.1 that prints what it receives.
#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The status it answers.
    #[arg(long, default_value_t = 200)]
    status: u16,
    /// A Retry-After header (seconds) to send with the status.
    #[arg(long)]
    retry_after: Option<u64>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let answer = match args.retry_after {
        Some(s) => Answer::RetryAfter(args.status, s.to_string()),
        None => Answer::Status(args.status),
    };
    let sink = Sink::serve(answer, args.port, true).await?;
    println!("listening on {}", sink.url);
    std::io::stdout().flush()?;
    sink.run_forever().await;
    Ok(())
}
