//! `dlq-triage replay`: send the stored payloads of one or more reports back — to a URL,
//! a queue, a function, a bus, or the rule's own target as EventBridge would have sent
//! them. A dry run unless `--execute`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use super::{Stdout, categories, window};
use crate::artifacts::{path_style_from_env, s3_client};
use crate::connection::AwsConnectionAuth;
use crate::genesys::redact_url;
use crate::replay::{
    AnyPlan, AwsCourier, Control, Edit, EditError, Fixed, FixedPlan, Journal, JournalError, Ports,
    ReplayOptions, ReplayProgress, ReplaySummary, Selection, Selector, TargetPlan, rate_per_second,
    replay,
};
use crate::report::Report;
use crate::reports::{ArgError, Filter, Location, ReadError, Reader, ReportArg};
use crate::targets::AwsTargets;

/// Why `replay` stopped or did not send every record: the line printed on standard error.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// `--category`, `--since` or `--until` (the line the shared flag parsers give).
    #[error("{0}")]
    Filter(String),
    /// `--rate` out of range.
    #[error("{0:?} is not a rate between 0 and 10000 per second")]
    Rate(String),
    /// `--to-url` does not parse (the URL shown redacted).
    #[error("--to-url {url}: {reason}")]
    Url {
        url: String,
        /// The parser's reason.
        reason: String,
    },
    /// `--to-url` is not http or https (the URL shown redacted).
    #[error("--to-url {0}: only http and https")]
    UrlScheme(String),
    /// No destination flag.
    #[error("no destination given (--to-url, --to-queue, --to-function, --to-bus or --to-target)")]
    NoDestination,
    /// `--to-target` without an AWS configuration.
    #[error("--to-target needs the AWS configuration")]
    TargetNeedsAws,
    /// A `--header` that cannot be used.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// `--edit-file` cannot be read.
    #[error("--edit-file {path}: {error}")]
    EditFile { path: String, error: std::io::Error },
    /// The `--edit` program does not compile.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// A report argument that names no place to read.
    #[error(transparent)]
    Arg(#[from] ArgError),
    /// A report could not be listed or read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A report that is not a report.
    #[error("{location}: not a dlq-triage report ({error}); give report.json or reports/<id>.json")]
    NotAReport {
        location: Location,
        error: serde_json::Error,
    },
    /// The journal could not be opened.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The run stopped early (the reason, and the counts).
    #[error("{reason} ({counts})")]
    Stopped { reason: String, counts: String },
    /// Not every selected record was sent (the counts).
    #[error("not every record was sent ({counts}); see the journal")]
    Incomplete { counts: String },
}

/// Why `--header` or `--id-header` cannot be used; never a header's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not `NAME=ENV_VAR`.
    #[error(
        "--header {0}: expected NAME=ENV_VAR (the value is read from the environment variable)"
    )]
    NotNameEqualsVar(String),
    /// The name is not a header name.
    #[error("--header {spec}: {name:?} is not a header name")]
    BadName { spec: String, name: String },
    /// The variable is unset or empty.
    #[error("--header {name}={var}: the environment variable {var} is not set")]
    Unset { name: String, var: String },
    /// The variable's value is not a header value.
    #[error("--header {name}={var}: the value of {var} is not a valid header value")]
    BadValue { name: String, var: String },
    /// `--header` with a destination that takes no headers.
    #[error("--header applies to --to-url and to API destinations of --to-target")]
    NotHttp,
    /// `--id-header`'s name is not a header name.
    #[error("--id-header {0:?}: not a header name")]
    BadIdName(String),
    /// `--id-header` with a destination that takes no headers.
    #[error("--id-header applies to --to-url and to API destinations of --to-target")]
    IdNotHttp,
}

/// `dlq-triage replay REPORT… [filters] <destination> [--rate N] [--concurrency N]
/// [--journal FILE] [--force] [--execute]`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Reports: a report.json path, a folder (every report below it), s3://bucket/key of
    /// a report, or s3://bucket/prefix/ (every report below it).
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<String>,
    /// Only records of this category (repeatable), e.g. RATE_LIMIT_EXCEEDED.
    #[arg(long = "category", value_name = "C")]
    pub categories: Vec<String>,
    /// Only records whose failed target is this ARN (repeatable).
    #[arg(long = "target", value_name = "ARN")]
    pub targets: Vec<String>,
    /// Only this message (repeatable).
    #[arg(long = "message-id", value_name = "ID")]
    pub message_ids: Vec<String>,
    /// Only records dead-lettered at or after this time: RFC 3339, or a duration back
    /// from now (90m, 6h, 7d).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only records dead-lettered at or before this time (same forms as --since).
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Where the records go: exactly one destination.
    #[command(flatten)]
    pub destination: DestinationArgs,
    /// HTTP method for --to-url.
    #[arg(long, default_value = "POST", requires = "to_url")]
    pub method: String,
    /// A header whose value is read from an environment variable (repeatable), for
    /// --to-url and API destinations: --header Authorization=CRM_TOKEN. Values never go
    /// on the command line.
    #[arg(long = "header", value_name = "NAME=ENV_VAR")]
    pub headers: Vec<String>,
    /// With --to-target: do not read API destinations' connections (DescribeConnection,
    /// GetSecretValue) for their authorization; send without it (and with --header only).
    #[arg(long)]
    pub no_connection_auth: bool,
    /// Set this header to the event's id on HTTP deliveries (--to-url, API destinations),
    /// so a consumer that deduplicates can tell a replay from a new event:
    /// --id-header Idempotency-Key.
    #[arg(long, value_name = "NAME")]
    pub id_header: Option<String>,
    /// The Source to put events under (PutEvents refuses sources beginning with "aws.",
    /// which Genesys partner events have).
    #[arg(long, value_name = "S")]
    pub source: Option<String>,
    /// Attempts per second, retries included.
    #[arg(long, default_value_t = 10.0, value_parser = positive_rate)]
    pub rate: f64,
    /// Deliveries in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub concurrency: u64,
    /// Attempts per record (429, 5xx, throttling and timeouts are retried).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// Failed attempts in a row after which the run stops (circuit breaker).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub breaker: u32,
    /// Timeout of each delivery, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=900))]
    pub timeout_seconds: u64,
    /// The journal (JSON Lines); default: replay-journal.jsonl beside the first local
    /// report, or in the working folder for S3 reports.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Send again what the journal says was sent.
    #[arg(long)]
    pub force: bool,
    /// Repair each payload with this jq program before it is planned and sent (the stored
    /// payload is never changed): --edit 'del(.detail.eventBody.extra)'.
    #[arg(long, value_name = "PROGRAM", conflicts_with = "edit_file")]
    pub edit: Option<String>,
    /// --edit with the program read from this file.
    #[arg(long, value_name = "FILE")]
    pub edit_file: Option<PathBuf>,
    /// Send every dead letter, also several copies of one event to one destination (for
    /// consumers that want every copy). Without it, each event goes to each destination
    /// once, however many dead letters carry it.
    #[arg(long)]
    pub per_message: bool,
    /// Send. Without it, nothing is sent: the run prints what would be.
    #[arg(long)]
    pub execute: bool,
}

/// The destinations, one flag each; clap lets exactly one be given.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct DestinationArgs {
    /// Send each stored payload byte-exact to this URL.
    #[arg(long, value_name = "URL")]
    pub to_url: Option<String>,
    /// Send to this SQS queue (SendMessage; FIFO queues get a group id).
    #[arg(long, value_name = "URL")]
    pub to_queue: Option<String>,
    /// Invoke this Lambda function asynchronously, as EventBridge does.
    #[arg(long, value_name = "NAME_OR_ARN")]
    pub to_function: Option<String>,
    /// Put the events on this event bus (PutEvents).
    #[arg(long, value_name = "NAME_OR_ARN")]
    pub to_bus: Option<String>,
    /// Deliver each record to its own rule's target, as EventBridge would have: the
    /// target's Input / InputPath / InputTransformer applied, by the target's kind.
    #[arg(long)]
    pub to_target: bool,
}

impl DestinationArgs {
    /// The fixed destination given, validated (`--method` and `--source` apply to the
    /// ones that take them); `None` for `--to-target`.
    fn fixed(&self, method: &str, source: Option<&str>) -> Result<Option<Fixed>, ReplayError> {
        // Every flag named (no `..`): a new destination flag does not compile until it is
        // handled here, rather than running as --to-target.
        let DestinationArgs {
            to_url,
            to_queue,
            to_function,
            to_bus,
            to_target,
        } = self;
        Ok(Some(if let Some(url) = to_url {
            let parsed = reqwest::Url::parse(url).map_err(|e| ReplayError::Url {
                url: redact_url(url),
                reason: e.to_string(),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ReplayError::UrlScheme(redact_url(url)));
            }
            Fixed::Url {
                url: url.clone(),
                method: method.to_ascii_uppercase(),
                headers: Vec::new(),
            }
        } else if let Some(queue_url) = to_queue {
            Fixed::Queue {
                queue_url: queue_url.clone(),
            }
        } else if let Some(name) = to_function {
            Fixed::Function { name: name.clone() }
        } else if let Some(bus) = to_bus {
            Fixed::Bus {
                bus: bus.clone(),
                source: source.map(str::to_owned),
            }
        } else if *to_target {
            return Ok(None);
        } else {
            return Err(ReplayError::NoDestination);
        }))
    }
}

fn positive_rate(s: &str) -> Result<f64, ReplayError> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 10_000.0 => Ok(r),
        _ => Err(ReplayError::Rate(s.to_owned())),
    }
}

/// Runs the replay; `Err` with counts when not every selected record was sent.
pub async fn replay_reports(args: ReplayArgs) -> Result<(), ReplayError> {
    let filters = filters(&args)?;
    let fixed = args
        .destination
        .fixed(&args.method, args.source.as_deref())?;
    // --to-target may reach API destinations, which take headers.
    let takes_headers = fixed.as_ref().is_none_or(Fixed::takes_headers);
    let headers = http_headers(&args, takes_headers)?;
    // A program that does not compile stops the run before anything is read.
    let edit = edit_program(&args)?;
    let report_args = args
        .reports
        .iter()
        .map(|a| ReportArg::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    let needs_s3 = !report_args.iter().all(ReportArg::is_local);
    let timeout = Duration::from_secs(args.timeout_seconds);
    let sdk = if needs_s3 || fixed.as_ref().is_none_or(Fixed::needs_aws) {
        Some(sdk_config(timeout).await)
    } else {
        None
    };
    let reader = match &sdk {
        Some(sdk) if needs_s3 => Reader::with_s3(s3_client(sdk, path_style_from_env())),
        _ => Reader::local(),
    };
    let shown = fixed
        .as_ref()
        .map_or_else(|| "each record's own rule target".to_owned(), Fixed::shown);
    // API destinations get their connection's authorization; --header adds to it.
    let connection = (!args.no_connection_auth).then_some(timeout);
    let plan = plan(
        fixed,
        headers,
        sdk.as_ref(),
        args.source.clone(),
        connection,
    )?;

    let since = filters.window.since.map(|t| t.date_naive());
    let (selection, report_names) = read_reports(&reader, &report_args, since, &filters).await?;

    let journal_path = args
        .journal
        .clone()
        .unwrap_or_else(|| default_journal(&report_args));
    let journal = open_journal(&journal_path, args.execute)?;
    announce(&args, &shown, &selection, &report_names);

    let stop = stop_on_ctrl_c();
    let progress = Progress::new(selection.records.len(), args.execute);
    let courier = AwsCourier::new(sdk.as_ref(), timeout);
    let ports = Ports {
        reader: &reader,
        plan: &plan,
        courier: &courier,
        journal: journal.as_ref(),
    };
    let control = Control {
        stop: &stop,
        progress: &|p| progress.update(p),
    };
    let mut opts = options(&args);
    opts.edit = edit;
    opts.edits_dir = Some(
        journal_path
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("replay-edits"),
    );
    let summary = replay(&selection.records, ports, &opts, control).await;
    progress.finish();
    print_summary(
        &summary,
        &selection,
        &args,
        journal.as_ref().map(|_| journal_path.as_path()),
    );
    verdict(&summary, args.execute)
}

/// Every record to `fixed`, or (`--to-target`, no fixed destination) to its own rule's
/// target, looked up through `sdk`; with `connection` (a timeout), API destinations get
/// their connection's authorization.
fn plan(
    fixed: Option<Fixed>,
    headers: Vec<(String, String)>,
    sdk: Option<&aws_config::SdkConfig>,
    source: Option<String>,
    connection: Option<Duration>,
) -> Result<AnyPlan, ReplayError> {
    Ok(match (fixed, sdk) {
        (Some(fixed), _) => AnyPlan::Fixed(FixedPlan(fixed.with_headers(headers))),
        (None, Some(sdk)) => {
            let target = TargetPlan::new(AwsTargets::new(sdk.clone()), headers, source);
            AnyPlan::Target(Box::new(match connection {
                Some(timeout) => target
                    .with_connection_auth(Arc::new(AwsConnectionAuth::new(sdk.clone())), timeout),
                None => target,
            }))
        }
        (None, None) => return Err(ReplayError::TargetNeedsAws),
    })
}

/// The journal at `path`: a dry run reads an existing one (to say what was sent) and never
/// creates one.
fn open_journal(
    path: &std::path::Path,
    execute: bool,
) -> Result<Option<Mutex<Journal>>, ReplayError> {
    if !execute && !path.exists() {
        return Ok(None);
    }
    let journal = Journal::open(path)?;
    if journal.unreadable_lines() > 0 {
        eprintln!(
            "dlq-triage: {}: {} line(s) could not be read (cut short by a crash?) and are ignored",
            path.display(),
            journal.unreadable_lines()
        );
    }
    Ok(Some(Mutex::new(journal)))
}

/// A flag Ctrl-C sets: the run finishes the deliveries in flight and sends no more.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("dlq-triage: interrupted: finishing the deliveries in flight");
            on_signal.store(true, Ordering::SeqCst);
        }
    });
    stop
}

/// The AWS configuration of a run: the replay loop retries, paces and counts every
/// attempt, so the SDK must not retry; each call is bounded by `timeout`.
async fn sdk_config(timeout: Duration) -> aws_config::SdkConfig {
    let base = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    base.to_builder()
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .operation_timeout(timeout)
                .build(),
        )
        .build()
}

/// `replay-journal.jsonl` beside the first local report (in the first local folder), else
/// in the working folder.
fn default_journal(reports: &[ReportArg]) -> PathBuf {
    let folder = reports.iter().find_map(|a| match a {
        ReportArg::One(Location::File(p)) => {
            Some(p.parent().unwrap_or(std::path::Path::new(".")).to_owned())
        }
        ReportArg::Folder(dir) => Some(dir.clone()),
        ReportArg::One(Location::S3 { .. }) | ReportArg::Prefix { .. } => None,
    });
    folder.unwrap_or_default().join("replay-journal.jsonl")
}

fn options(args: &ReplayArgs) -> ReplayOptions {
    ReplayOptions {
        execute: args.execute,
        force: args.force,
        per_message: args.per_message,
        id_header: args.id_header.clone(),
        rate: args.rate,
        concurrency: args.concurrency as usize,
        max_attempts: args.max_attempts,
        breaker: args.breaker,
        ..ReplayOptions::default()
    }
}

/// One line on standard error before the run: what is selected, where it goes, and how.
fn announce(args: &ReplayArgs, shown: &str, selection: &Selection, report_names: &str) {
    eprintln!(
        "dlq-triage: {} records to replay from {} report(s) ({} listed again, {} left out by the filters, {} not replayable) → {}; {}",
        selection.records.len(),
        report_names,
        selection.duplicates,
        selection.filtered_out,
        selection.not_replayable.len(),
        shown,
        if args.execute {
            format!(
                "sending at up to {}/s, {} at a time",
                args.rate, args.concurrency
            )
        } else {
            "dry run (nothing is sent without --execute)".to_owned()
        }
    );
}

fn filters(args: &ReplayArgs) -> Result<Filter, ReplayError> {
    Ok(Filter {
        categories: categories(&args.categories).map_err(|e| ReplayError::Filter(e.to_string()))?,
        targets: args.targets.clone(),
        message_ids: args.message_ids.clone(),
        window: window(&args.since, &args.until, chrono::Utc::now())
            .map_err(|e| ReplayError::Filter(e.to_string()))?,
    })
}

/// The compiled `--edit` / `--edit-file` program, if any.
fn edit_program(args: &ReplayArgs) -> Result<Option<Arc<Edit>>, ReplayError> {
    let code = match (&args.edit, &args.edit_file) {
        (Some(code), _) => code.clone(),
        (None, Some(file)) => {
            std::fs::read_to_string(file).map_err(|error| ReplayError::EditFile {
                path: file.display().to_string(),
                error,
            })?
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(Arc::new(Edit::compile(&code)?)))
}

/// The `--header` values (from the environment), once `--header` and `--id-header` are
/// known to apply: only HTTP destinations take headers.
fn http_headers(args: &ReplayArgs, http: bool) -> Result<Vec<(String, String)>, HeaderError> {
    let headers = headers_from_env(&args.headers, &|name| std::env::var(name).ok())?;
    if !headers.is_empty() && !http {
        return Err(HeaderError::NotHttp);
    }
    if let Some(name) = &args.id_header {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(HeaderError::BadIdName(name.clone()));
        }
        if !http {
            return Err(HeaderError::IdNotHttp);
        }
    }
    Ok(headers)
}

/// `NAME=ENV_VAR` pairs, each value read from the environment: a secret never appears
/// on the command line (shell history, `ps`).
fn headers_from_env(
    specs: &[String],
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, HeaderError> {
    specs
        .iter()
        .map(|spec| {
            let (name, var) = spec
                .split_once('=')
                .ok_or_else(|| HeaderError::NotNameEqualsVar(spec.clone()))?;
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(HeaderError::BadName {
                    spec: spec.clone(),
                    name: name.to_owned(),
                });
            }
            let (name, var) = (name.to_owned(), var.to_owned());
            let Some(value) = get(&var).filter(|v| !v.is_empty()) else {
                return Err(HeaderError::Unset { name, var });
            };
            if reqwest::header::HeaderValue::from_str(&value).is_err() {
                return Err(HeaderError::BadValue { name, var });
            }
            Ok((name, value))
        })
        .collect()
}

/// Reads every report the arguments name, in order, one at a time, into the selection;
/// returns it with how many reports were read.
async fn read_reports(
    reader: &Reader,
    args: &[ReportArg],
    since: Option<chrono::NaiveDate>,
    filters: &Filter,
) -> Result<(Selection, String), ReplayError> {
    let locations = reader.locate(args, since).await?;
    let mut selector = Selector::new(filters);
    for location in &locations {
        let bytes = reader.read(location).await?;
        let report: Report =
            serde_json::from_slice(&bytes).map_err(|error| ReplayError::NotAReport {
                location: location.clone(),
                error,
            })?;
        drop(bytes);
        selector.add(location, &report);
    }
    Ok((selector.finish(), locations.len().to_string()))
}

fn print_summary(
    summary: &ReplaySummary,
    selection: &Selection,
    args: &ReplayArgs,
    journal: Option<&std::path::Path>,
) {
    let mut out = Stdout::new();
    let verb = if args.execute { "sent" } else { "would send" };
    out.line(format_args!(
        "selected:   {} records ({} listed again in other reports, sent once)",
        summary.selected, selection.duplicates
    ));
    out.line(format_args!("{verb:<11} {}", summary.sent));
    for ((category, destination), count) in &summary.by_route {
        out.line(format_args!("  {category:<24} {count:>6} → {destination}"));
        if let Some(ids) = summary.samples.get(&(*category, destination.clone())) {
            out.line(format_args!("    e.g. {}", ids.join(", ")));
        }
    }
    if summary.sent_before > 0 {
        out.line(format_args!(
            "already sent: {} (the journal says an earlier run sent them; --force sends again)",
            summary.sent_before
        ));
    }
    for note in &summary.notes {
        out.line(format_args!("note:       {note}"));
    }
    list(
        &mut out,
        "not sent, a copy of an event sent once to the same destination (--per-message sends every copy)",
        &summary.duplicates,
    );
    if args.edit.is_some() || args.edit_file.is_some() {
        print_edits(&mut out, summary);
    }
    list(&mut out, "failed", &summary.failed);
    list(&mut out, "cannot send", &summary.skipped);
    list(
        &mut out,
        "not replayable",
        &selection
            .not_replayable
            .iter()
            .map(|(id, why)| (id.clone(), why.clone()))
            .collect::<Vec<_>>(),
    );
    if summary.not_attempted > 0 {
        out.line(format_args!(
            "not attempted: {} (the run stopped; run again to send them)",
            summary.not_attempted
        ));
    }
    if args.execute {
        out.line(format_args!(
            "attempts:   {} ({} retries)",
            summary.attempts, summary.retries
        ));
    }
    if let Some(reason) = &summary.stopped {
        out.line(format_args!("stopped:    {reason}"));
    }
    if let Some(path) = journal {
        out.line(format_args!("journal:    {}", path.display()));
    }
    if !args.execute {
        out.line("dry run: nothing was sent; add --execute to send");
    }
}

/// What `--edit` did: counts, the dropped records, the diffs shown.
fn print_edits(out: &mut Stdout, summary: &ReplaySummary) {
    out.line(format_args!(
        "--edit:     {} changed, {} unchanged, {} dropped (not sent)",
        summary.edited,
        summary.unedited,
        summary.dropped.len()
    ));
    for id in summary.dropped.iter().take(10) {
        out.line(format_args!("  dropped {id}"));
    }
    for (id, diff) in &summary.diffs {
        out.line(format_args!("diff of {id}:"));
        out.line(diff.trim_end());
    }
}

fn list(out: &mut Stdout, what: &str, items: &[(String, String)]) {
    if items.is_empty() {
        return;
    }
    out.line(format_args!("{what}: {}", items.len()));
    for (id, why) in items.iter().take(10) {
        out.line(format_args!("  {id}: {why}"));
    }
    if items.len() > 10 {
        out.line(format_args!("  … and {} more", items.len() - 10));
    }
}

fn verdict(summary: &ReplaySummary, execute: bool) -> Result<(), ReplayError> {
    if !execute || summary.complete() {
        return Ok(());
    }
    let counts = format!(
        "selected {}, sent {}, sent before {}, failed {}, cannot send {}, not attempted {}",
        summary.selected,
        summary.sent,
        summary.sent_before,
        summary.failed.len(),
        summary.skipped.len(),
        summary.not_attempted
    );
    Err(match &summary.stopped {
        Some(reason) => ReplayError::Stopped {
            reason: reason.clone(),
            counts,
        },
        None => ReplayError::Incomplete { counts },
    })
}

/// Progress on standard error: a bar with sent, failed, rate and ETA on a terminal; a
/// line every 10 % otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    total: usize,
    execute: bool,
    shown_tenth: std::sync::atomic::AtomicUsize,
}

impl Progress {
    fn new(total: usize, execute: bool) -> Progress {
        let bar = (execute && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} · {msg} · ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            total,
            execute,
            shown_tenth: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn update(&self, p: ReplayProgress) {
        let rate = rate_per_second(p.done, self.started);
        let text = format!("{} sent · {} failed · {rate:.1}/s", p.sent, p.failed);
        match &self.bar {
            Some(bar) => {
                bar.set_position(p.done as u64);
                bar.set_message(text);
            }
            // A short run, or a dry run, needs no progress lines; the summary says it all.
            None if !self.execute || self.total < 100 => {}
            None => {
                let tenth = p.done * 10 / self.total.max(1);
                if self.shown_tenth.swap(tenth, Ordering::SeqCst) != tenth && p.done < p.total {
                    eprintln!("dlq-triage: {}/{} · {text}", p.done, p.total);
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cause said in the line is not its `source()` too: printed with its causes, each
    /// thing is said once.
    #[test]
    fn an_unreadable_edit_file_or_report_says_why_once() {
        let missing = ReplayError::EditFile {
            path: "fix.jq".into(),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(missing.to_string(), "--edit-file fix.jq: entity not found");
        let not_json = ReplayError::NotAReport {
            location: Location::File("r.json".into()),
            error: serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err(),
        };
        for e in [missing, not_json] {
            assert_eq!(
                crate::aws_error::said_twice(&e),
                Vec::<String>::new(),
                "{e}"
            );
        }
    }

    #[test]
    fn to_target_only_when_its_flag_is_given() {
        let none = DestinationArgs {
            to_url: None,
            to_queue: None,
            to_function: None,
            to_bus: None,
            to_target: false,
        };
        let err = none.fixed("POST", None).unwrap_err();
        assert!(matches!(err, ReplayError::NoDestination));
        assert_eq!(
            err.to_string(),
            "no destination given (--to-url, --to-queue, --to-function, --to-bus or --to-target)"
        );
        let to_target = DestinationArgs {
            to_target: true,
            ..none.clone()
        };
        assert!(to_target.fixed("POST", None).unwrap().is_none());
        let to_bus = DestinationArgs {
            to_bus: Some("replay".into()),
            ..none
        };
        assert_eq!(
            to_bus.fixed("POST", None).unwrap().map(|f| f.shown()),
            Some("bus replay".to_owned())
        );
    }

    #[test]
    fn header_values_come_from_the_environment_only() {
        let env = |name: &str| (name == "CRM_TOKEN").then(|| "Bearer s3cr3t".to_owned());
        assert_eq!(
            headers_from_env(&["Authorization=CRM_TOKEN".into()], &env).unwrap(),
            vec![("Authorization".to_owned(), "Bearer s3cr3t".to_owned())]
        );
        let err = headers_from_env(&["Authorization=MISSING".into()], &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--header Authorization=MISSING: the environment variable MISSING is not set"
        );
        let err = headers_from_env(&["Authorization: Bearer x".into()], &env).unwrap_err();
        assert!(matches!(err, HeaderError::NotNameEqualsVar(_)));
        assert!(err.to_string().contains("NAME=ENV_VAR"), "{err}");
        // A value never appears in an error.
        let bad = |_: &str| Some("x\ny".to_owned());
        let err = headers_from_env(&["X=V".into()], &bad).unwrap_err();
        assert_eq!(
            err,
            HeaderError::BadValue {
                name: "X".into(),
                var: "V".into()
            }
        );
        assert!(!err.to_string().contains("x\ny"), "{err}");
    }

    #[test]
    fn rates_must_be_positive_and_finite() {
        assert_eq!(
            positive_rate("0").unwrap_err().to_string(),
            "\"0\" is not a rate between 0 and 10000 per second"
        );
        assert!(positive_rate("-1").is_err());
        assert!(positive_rate("NaN").is_err());
        assert_eq!(positive_rate("2.5").unwrap(), 2.5);
    }
}
