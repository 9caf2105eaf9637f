//! `dlq-triage analyze`: a saved batch into a local folder.

use std::path::PathBuf;
use std::sync::Arc;

use super::{CliConfig, CommandFailure, EXIT_EMPTY_INPUT, Stdout, correlation};
use crate::artifacts::{FsStore, Layout};
use crate::dlq::{InputError, parse_batch};
use crate::report::{ReplaySource, Report, headline};
use crate::service::{Services, TriageService};
use crate::triage::TriageOptions;

/// `dlq-triage analyze [--out DIR] [--no-correlate] FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct AnalyzeArgs {
    /// Folder for report.json, report.md and replay/<CATEGORY>/<messageId>.json.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Do not look conversations up in Genesys Cloud.
    #[arg(long)]
    pub no_correlate: bool,
    /// The batch file, or `-` for standard input.
    pub file: String,
}

/// Analyses a saved batch: a Lambda SQS event (`{"Records": [...]}`) or
/// `aws sqs receive-message` output (`{"Messages": [...]}`).
/// Empty input is its own exit status ([`EXIT_EMPTY_INPUT`]).
pub async fn analyze(args: AnalyzeArgs, config: CliConfig) -> Result<(), CommandFailure> {
    // Read whole, then parsed from memory: serde_json reads a slice several times faster
    // than a stream.
    let text = if args.file == "-" {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut text).map(|_| text)
    } else {
        std::fs::read(&args.file)
    }
    .map_err(|e| format!("cannot read {}: {e}", display_name(&args.file)))?;
    let mut letters = parse_batch(&text).map_err(|e| CommandFailure {
        status: match e {
            InputError::Empty => EXIT_EMPTY_INPUT,
            _ => 1,
        },
        message: format!("{}: {e}", display_name(&args.file)),
    })?;
    drop(text);
    let out_display = args.out.display().to_string();
    // Through the triage service, on a folder store alone: no look-up, announcement or
    // incident table.
    let service = TriageService::new(Services::new(Arc::new(FsStore::new(&args.out))));
    let mut opts = TriageOptions::new(Layout::Local, ReplaySource::Folder(out_display.clone()));
    opts.genesys_domain = super::genesys_ui_domain();
    let correlation = correlation(&config, args.no_correlate);
    // The bodies go to the payload writes, so the report is built without them in memory.
    let outcome = service
        .triage(&mut letters, &correlation, opts)
        .await
        .outcome;
    if let Some(e) = outcome.batch_error {
        return Err(e.to_string().into());
    }
    let mut stdout = Stdout::new();
    print_summary(
        &mut stdout,
        &outcome.report,
        &out_display,
        outcome.returned.len(),
    );
    match outcome.report_keys.as_ref().and_then(|k| k.html.as_ref()) {
        Some(html) => stdout.line(format_args!("page:   {out_display}/{html}")),
        None => stdout.line("page:   not written (see the log with RUST_LOG=warn)"),
    }
    if let Some(calls) = correlation.calls() {
        let statuses: Vec<String> = outcome
            .report
            .summary
            .by_interaction_status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        stdout.line(format_args!(
            "genesys: {calls} API calls; conversations: {}",
            statuses.join(", ")
        ));
    }
    Ok(())
}

fn print_summary(stdout: &mut Stdout, report: &Report, out: &str, not_stored: usize) {
    stdout.line(headline(report).replace("**", "").replace('`', ""));
    stdout.line(format_args!("records: {}", report.total_failures));
    for (category, count) in &report.summary.by_category {
        stdout.line(format_args!("  {category:<24} {count}"));
    }
    if not_stored > 0 {
        stdout.line(format_args!(
            "not stored: {not_stored} (see disposition in report.json)"
        ));
    }
    stdout.line(format_args!("report: {out}/report.md"));
    stdout.line(format_args!("json:   {out}/report.json"));
    stdout.line(format_args!("replay: {out}/replay/"));
}

fn display_name(file: &str) -> &str {
    if file == "-" { "standard input" } else { file }
}
