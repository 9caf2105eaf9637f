//! `dlq-triage`: the triage engine on the command line.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use genesys_dlq_triage::dlq::parse_batch;
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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
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
    let reason = if no_correlate {
        "--no-correlate"
    } else {
        "no Genesys credentials (GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET unset)"
    };
    let outcome = triage::run(
        &letters,
        &store,
        &SkipCorrelation {
            reason: reason.into(),
        },
        &opts,
    )
    .await;
    if let Some(e) = outcome.report_error {
        return Err(format!("could not write the report: {e}"));
    }
    print_summary(&outcome.report, &out_display, outcome.returned.len());
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
