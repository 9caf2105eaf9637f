//! The Genesys Cloud simulator as a process, for `make demo` and the end-to-end tests.
//!
//! ```sh
//! cargo run --example genesys-sim -- --port 0 --latency-ms 50
//! ```
//! Prints `listening on http://127.0.0.1:PORT` on its first line, serves until killed, and
//! answers `GET /sim/stats` with its request counters.

use dlq_triage_test_support::genesys_sim;

use std::time::Duration;

use clap::Parser;
use std::io::Write;

/// A Genesys Cloud simulator on 127.0.0.1.
#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The OAuth client it accepts.
    #[arg(long, default_value = "demo-client")]
    client_id: String,
    /// The OAuth client secret it accepts.
    #[arg(long, default_value = "demo-secret")]
    client_secret: String,
    /// Latency added to every API answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Maximum ids per multi-get (more gets HTTP 400).
    #[arg(long)]
    max_ids: Option<usize>,
    /// The first N detail requests answer 429 (Retry-After: 1).
    #[arg(long, default_value_t = 0)]
    fail_429: u64,
    /// The first N detail requests answer 503.
    #[arg(long, default_value_t = 0)]
    fail_5xx: u64,
    /// Conversation ids the simulated org does not know (comma-separated).
    #[arg(long, value_delimiter = ',')]
    unknown: Vec<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let state = genesys_sim::SimState::new(&args.client_id, &args.client_secret);
    *state.latency.lock().unwrap() = Duration::from_millis(args.latency_ms);
    *state.max_ids.lock().unwrap() = args.max_ids;
    *state.retry_after.lock().unwrap() = Some("1".into());
    state
        .fail_429
        .store(args.fail_429, std::sync::atomic::Ordering::SeqCst);
    state
        .fail_5xx
        .store(args.fail_5xx, std::sync::atomic::Ordering::SeqCst);
    state.unknown.lock().unwrap().extend(args.unknown);
    let sim = genesys_sim::Sim::start(state, args.port).await?;
    println!("listening on {}", sim.base_url());
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    eprintln!("genesys-sim: {}", sim.state.stats.to_json());
    Ok(())
}
