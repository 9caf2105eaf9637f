//! `dlq-triage`: the triage engine on the command line. Parses and dispatches; the
//! subcommands live in the library's `cli` module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use genesys_dlq_triage::cli::{self, CliConfig, CommandFailure};

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
    Analyze(cli::AnalyzeArgs),
    /// Drain a dead-letter queue directly: receive in pages, triage each page, store the
    /// payloads and a report per page, and (with --delete) delete only what is stored.
    Poll(cli::PollArgs),
    /// Send stored payloads back, once each: to a URL, a queue, a function, a bus, or the
    /// rule's own target as EventBridge would have delivered them. A dry run unless
    /// --execute.
    Replay(Box<cli::ReplayArgs>),
    /// One answer for the whole incident across many reports (files, folders, or an S3
    /// prefix): incidents by category and target, since when, whether ongoing, the
    /// conversations affected, and the replay command for each.
    Summarize(cli::SummarizeArgs),
    /// The incidents the function and poll keep in INCIDENT_TABLE (open by default), or
    /// `incidents resolve KEY` to close one by hand.
    Incidents(cli::IncidentsArgs),
    /// Audit the pipeline (read-only) for what loses events without a dead letter:
    /// targets without a DLQ, DLQs EventBridge may not send to, deauthorized connections,
    /// pending event sources, unrouted topics. Exit 0 fine, 1 warnings, 2 events are being
    /// lost.
    Doctor(cli::DoctorArgs),
    /// Replay from the rule's bus archive the events EventBridge lost beyond the DLQ
    /// (InvocationsFailedToBeSentToDlq, or dead letters expired from the queue), to that
    /// rule alone. A dry run unless --execute. Exit 3 when nothing was lost.
    Recover(cli::RecoverArgs),
    /// An incident's redrive: `status`, `start` (by hand, whatever the policy's
    /// categories), `pause`, `resume`, `cancel` KEY.
    Redrive(cli::RedriveArgs),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    genesys_dlq_triage::tune_allocator();
    let cli = Cli::parse();
    // `analyze` says a batch it could not store as its own one-line error: the triage
    // service's log line of the same is not repeated above it.
    let default_filter = match cli.command {
        Command::Analyze(_) => "error,genesys_dlq_triage::service=off",
        _ => "error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result: Result<(), CommandFailure> = match cli.command {
        // Replay and summarize need no Genesys configuration; a bad GENESYS_* variable
        // must not stop them.
        Command::Replay(args) => cli::replay_reports(*args).await.map_err(CommandFailure::of),
        Command::Summarize(args) => cli::summarize(args).await.map_err(CommandFailure::of),
        Command::Recover(args) => cli::recover(args).await,
        command => match CliConfig::from_env() {
            Err(e) => Err(CommandFailure::of(e)),
            Ok(config) => match command {
                Command::Analyze(args) => cli::analyze(args, config).await,
                Command::Poll(args) => cli::poll(args, config).await.map_err(CommandFailure::of),
                Command::Incidents(args) => cli::incidents(args, config)
                    .await
                    .map_err(CommandFailure::of),
                Command::Redrive(args) => cli::redrive(args, config).await,
                Command::Doctor(args) => match cli::doctor(args, config).await {
                    Ok(0) => Ok(()),
                    Ok(status) => return ExitCode::from(status),
                    Err(e) => Err(e),
                },
                Command::Replay(_) | Command::Summarize(_) | Command::Recover(_) => {
                    unreachable!("dispatched above")
                }
            },
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CommandFailure { message, status }) => {
            eprintln!("dlq-triage: {message}");
            ExitCode::from(status)
        }
    }
}
