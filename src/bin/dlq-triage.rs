//! `dlq-triage`: the triage engine on the command line.

/// mimalloc: the pipeline allocates many small strings; glibc's allocator spent a third
/// of the benchmark consolidating them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use genesys_dlq_triage::config::{Env, GenesysSettings, analytics_config};
use genesys_dlq_triage::correlate::{CacheTtl, ConversationCache, Correlator};
use genesys_dlq_triage::dlq::parse_batch;
use genesys_dlq_triage::genesys::auth::{ClientCredentials, Secret};
use genesys_dlq_triage::genesys::region;
use genesys_dlq_triage::report::{ReplaySource, headline};
use genesys_dlq_triage::store::Layout;
use genesys_dlq_triage::store::fs::FsStore;
use genesys_dlq_triage::triage::{self, SkipCorrelation, TriageOptions};

/// Triage Amazon EventBridge dead-letter messages carrying Genesys Cloud events.
#[derive(Debug, Parser)]
#[command(name = "dlq-triage", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Analyse a saved batch: a Lambda SQS event ({"Records": [...]}) or
    /// `aws sqs receive-message` output ({"Messages": [...]}).
    Analyze {
        /// Folder for report.json, report.md and replay/<CATEGORY>/<messageId>.json.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Do not look conversations up in Genesys Cloud.
        #[arg(long)]
        no_correlate: bool,
        /// The batch file, or `-` for standard input.
        file: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze {
            out,
            no_correlate,
            file,
        } => analyze(&file, out, no_correlate).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dlq-triage: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn analyze(file: &str, out: PathBuf, no_correlate: bool) -> Result<(), String> {
    let input = read_input(file)?;
    let letters = parse_batch(&input).map_err(|e| format!("{}: {e}", display_name(file)))?;
    let out_display = out.display().to_string();
    let store = FsStore::new(&out);
    let opts = TriageOptions::new(Layout::Local, ReplaySource::Folder(out_display.clone()));
    let get = |name: &str| std::env::var(name).ok();
    let mut env = Env::new(&get);
    let credentials = match (
        env.optional("GENESYS_CLIENT_ID"),
        env.optional("GENESYS_CLIENT_SECRET"),
    ) {
        (Some(client_id), Some(secret)) if !no_correlate => Some(ClientCredentials {
            client_id,
            client_secret: Secret::new(secret),
        }),
        _ => None,
    };
    let (outcome, calls) = match credentials {
        Some(credentials) => {
            let settings = GenesysSettings::read(&env);
            let endpoints = region::resolve(
                settings.region.as_deref(),
                settings.api_base.as_deref(),
                settings.login_base.as_deref(),
            )
            .map_err(|e| e.to_string())?;
            let analytics = analytics_config(&mut env);
            env.finish().map_err(|e| e.to_string())?;
            let cache = Arc::new(ConversationCache::new(100_000, CacheTtl::default()));
            let correlator = Correlator::connect(
                reqwest::Client::new(),
                &endpoints,
                credentials,
                analytics,
                cache,
            );
            let outcome = triage::run(&letters, &store, &correlator, &opts).await;
            (outcome, Some(correlator.calls()))
        }
        None => {
            let reason = if no_correlate {
                "--no-correlate"
            } else {
                "no Genesys credentials (GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET unset)"
            };
            let skip = SkipCorrelation {
                reason: reason.into(),
            };
            (triage::run(&letters, &store, &skip, &opts).await, None)
        }
    };
    if let Some(e) = outcome.report_error {
        return Err(format!("could not write the report: {e}"));
    }
    print_summary(&outcome.report, &out_display, outcome.returned.len());
    if let Some(calls) = calls {
        let statuses: Vec<String> = outcome
            .report
            .summary
            .by_interaction_status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!(
            "genesys: {calls} API calls; conversations: {}",
            statuses.join(", ")
        );
    }
    Ok(())
}

fn print_summary(report: &genesys_dlq_triage::Report, out: &str, not_stored: usize) {
    let plain = headline(report).replace("**", "").replace('`', "");
    println!("{plain}");
    println!("records: {}", report.total_failures);
    for (category, count) in &report.summary.by_category {
        println!("  {category:<24} {count}");
    }
    if not_stored > 0 {
        println!("not stored: {not_stored} (see disposition in report.json)");
    }
    println!("report: {out}/report.md");
    println!("json:   {out}/report.json");
    println!("replay: {out}/replay/");
}

fn read_input(file: &str) -> Result<Vec<u8>, String> {
    if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Ok(buf)
    } else {
        std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))
    }
}

fn display_name(file: &str) -> &str {
    if file == "-" { "standard input" } else { file }
}
