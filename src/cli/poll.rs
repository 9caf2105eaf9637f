//! `dlq-triage poll`: drain a dead-letter queue directly, deleting only what is stored.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use super::{CliConfig, Stdout, correlation};
use crate::artifacts::{Layout, path_style_from_env};
use crate::queue::{
    DeadLetterQueue, DrainOptions, DrainStopped, DrainSummary, PageProgress, QueueError, QueueInfo,
    SqsQueue, drain,
};
use crate::report::ReplaySource;
use crate::service::{ArtifactsAt, PortSettings, Services, TriageService};
use crate::triage::TriageOptions;

/// `dlq-triage poll --queue-url URL [--max-messages N] [--out DIR | --bucket B [--prefix P]]
/// [--delete] [--no-correlate] [--page-size N] [--visibility-timeout SECONDS]`.
#[derive(Debug, Clone, clap::Args)]
pub struct PollArgs {
    /// The dead-letter queue's URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`).
    #[arg(long)]
    pub queue_url: String,
    /// Stop after this many distinct messages (default: drain the queue).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_messages: Option<u64>,
    /// Folder for reports/<reportId>.json|.md and replay/<CATEGORY>/<messageId>.json.
    #[arg(long, default_value = "out", conflicts_with = "bucket")]
    pub out: PathBuf,
    /// Write to this S3 bucket instead, in the Lambda's layout.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Key prefix in the bucket.
    #[arg(long, default_value = "genesys-dlq/", requires = "bucket")]
    pub prefix: String,
    /// Delete each message once its payload and its page's report are stored. Without
    /// it, every message is made visible again when the run ends.
    #[arg(long)]
    pub delete: bool,
    /// Do not look conversations up in Genesys Cloud.
    #[arg(long)]
    pub no_correlate: bool,
    /// Messages per page: one report per page.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub page_size: u64,
    /// How long received messages stay hidden from other consumers; extended while the
    /// run works, so a crash returns them to the queue after at most this long.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=43_200))]
    pub visibility_timeout: u64,
    /// Long-polling wait of each receive; an empty answer after it means the queue is drained.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub wait_seconds: u64,
    /// Receive loops, and delete calls in flight at once. A FIFO queue is received by one
    /// loop, whatever is asked, to keep each message group in order.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub concurrency: u64,
}

/// Why `poll` failed: the line printed on standard error (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The queue cannot be used: its first look failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The run stopped early.
    #[error("{reason} ({counts}); {}", back_in_queue(*unreleased))]
    Stopped {
        reason: DrainStopped,
        counts: Counts,
        unreleased: usize,
    },
    /// With `--delete`, not every received message was deleted.
    #[error("not every message was deleted ({counts}); {}", back_in_queue(*unreleased))]
    NotDeleted { counts: Counts, unreleased: usize },
    /// Not every received message was written.
    #[error("not every message was written ({counts}); see the reports")]
    NotWritten { counts: Counts },
}

/// Messages received, written and deleted by a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub received: usize,
    pub written: usize,
    pub deleted: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "received {}, written {}, deleted {}",
            self.received, self.written, self.deleted
        )
    }
}

/// Where the messages not done are, `unreleased` of them not made visible again.
fn back_in_queue(unreleased: usize) -> String {
    match unreleased {
        0 => "the rest is back in the queue".to_owned(),
        n => format!(
            "the rest is back in the queue, but {n} could not be released and come back \
             when their visibility timeout lapses"
        ),
    }
}

/// Attempts per SQS call: throttling and dropped connections are retried with the SDK's
/// exponential backoff and jitter. A receive, delete or visibility change that still fails
/// stops the run.
const SQS_ATTEMPTS: u32 = 8;

/// The first backoff (the SDK's is 1 s for throttling). SQS throttles briefly; a receive
/// loop asleep for a second is throughput lost, and the backoff still doubles each time.
const SQS_FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Drains the queue; `Err` with a one-line reason when not every received message was
/// written (and, with `--delete`, deleted), or when the queue cannot be used.
pub async fn poll(args: PollArgs, config: CliConfig) -> Result<(), PollError> {
    // Every call has a deadline: a receive waits `--wait-seconds` at most, anything else
    // is quick. The SDK configuration carries them to every client built from it.
    let wait = Duration::from_secs(args.wait_seconds);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(wait + Duration::from_secs(15))
        .operation_timeout(wait * 3 + Duration::from_secs(45))
        .build();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest())
        .await
        .to_builder()
        .timeout_config(timeouts)
        .build();
    let (queue, info) = open_queue(&sdk, &args.queue_url, wait).await?;
    let (opts, place) = drain_options(&args);
    let correlation = correlation(&config, args.no_correlate);
    let stop = stop_on_ctrl_c();
    let progress = Progress::new(info.visible, args.max_messages);
    eprintln!(
        "dlq-triage: {}: {} messages waiting, {} in flight; {} into {place}",
        args.queue_url,
        info.visible,
        info.in_flight,
        if args.delete {
            "draining"
        } else {
            "reading (nothing is deleted without --delete)"
        },
    );
    let report = |p: &PageProgress| progress.update(p);
    let service = TriageService::new(Services::from_sdk(&sdk, &port_settings(&args, &config)));
    let summary = drain(&queue, info, &service, &correlation, &opts, &stop, &report).await;
    progress.finish();
    let retries = queue.retries();
    print_summary(&summary, &args, &place, correlation.calls(), retries);
    verdict(&summary, args.delete)
}

/// The ports `poll` asks for: artifacts in the folder or the bucket, target inputs looked
/// up; as the Lambda does, the incidents of each stored page kept in `INCIDENT_TABLE` and,
/// for reports stored in S3, each announced on `NOTIFY_EVENT_BUS`.
fn port_settings(args: &PollArgs, config: &CliConfig) -> PortSettings {
    let artifacts = match &args.bucket {
        Some(bucket) => ArtifactsAt::S3 {
            bucket: bucket.clone(),
            prefix: args.prefix.clone(),
            sse_kms_key_id: None,
            path_style: path_style_from_env(),
        },
        None => ArtifactsAt::Folder(args.out.clone()),
    };
    PortSettings {
        target_inputs: true,
        notify_event_bus: config.notify_event_bus.clone(),
        incident_table: config.incident_table.clone(),
        incidents: config.incidents,
        ..PortSettings::at(artifacts)
    }
}

/// The queue, retried as [`SQS_ATTEMPTS`] says, and its first look (which also tells
/// whether it can be used at all).
async fn open_queue(
    sdk: &aws_config::SdkConfig,
    url: &str,
    wait: Duration,
) -> Result<(SqsQueue, QueueInfo), QueueError> {
    let sqs = aws_sdk_sqs::config::Builder::from(sdk)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(SQS_ATTEMPTS)
                .with_initial_backoff(SQS_FIRST_BACKOFF),
        )
        .build();
    let queue = SqsQueue::new(sqs, url, wait);
    let info = queue.describe().await?;
    Ok((queue.with_arn(info.arn.clone()), info))
}

/// How the drain runs, and where its output goes as the summary names it.
fn drain_options(args: &PollArgs) -> (DrainOptions, String) {
    let (layout, replay_source, place) = match &args.bucket {
        Some(bucket) => (
            Layout::prefixed(&args.prefix),
            ReplaySource::Bucket(bucket.clone()),
            format!("s3://{bucket}/{}", args.prefix.trim_start_matches('/')),
        ),
        None => {
            let out = args.out.display().to_string();
            (Layout::LocalReports, ReplaySource::Folder(out.clone()), out)
        }
    };
    let mut page = TriageOptions::new(layout, replay_source);
    page.genesys_domain = super::genesys_ui_domain();
    page.pretty_report = args.bucket.is_none();
    let opts = DrainOptions {
        max_messages: args.max_messages.map(|n| n as usize),
        page_size: args.page_size as usize,
        concurrency: args.concurrency as usize,
        visibility: Duration::from_secs(args.visibility_timeout),
        delete: args.delete,
        page,
    };
    (opts, place)
}

/// A flag Ctrl-C sets: the drain stops receiving, finishes the pages in hand and releases
/// the rest.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "dlq-triage: interrupted: finishing the pages in hand, then releasing the rest"
            );
            on_signal.store(true, Ordering::SeqCst);
        }
    });
    stop
}

/// Exit 0 only when every received message was written (and deleted, with `--delete`).
fn verdict(summary: &DrainSummary, delete: bool) -> Result<(), PollError> {
    if summary.complete(delete) {
        return Ok(());
    }
    let counts = Counts {
        received: summary.received,
        written: summary.written,
        deleted: summary.deleted,
    };
    let unreleased = summary.unreleased;
    Err(match &summary.stopped {
        Some(reason) => PollError::Stopped {
            reason: reason.clone(),
            counts,
            unreleased,
        },
        None if delete => PollError::NotDeleted { counts, unreleased },
        None => PollError::NotWritten { counts },
    })
}

fn print_summary(
    summary: &DrainSummary,
    args: &PollArgs,
    place: &str,
    calls: Option<u64>,
    sqs_retries: u64,
) {
    let mut out = Stdout::new();
    out.line(format_args!("queue:      {}", args.queue_url));
    out.line(format_args!(
        "at start:   {} waiting, {} in flight",
        summary.start.visible, summary.start.in_flight
    ));
    out.line(format_args!(
        "received:   {} messages ({} duplicate receipts)",
        summary.received, summary.duplicates
    ));
    out.line(format_args!("written:    {} to {place}", summary.written));
    for (category, count) in &summary.by_category {
        out.line(format_args!("  {category:<24} {count}"));
    }
    out.line(format_args!("reports:    {}", summary.reports.len()));
    for key in &summary.reports {
        let shown = match &args.bucket {
            Some(bucket) => format!("s3://{bucket}/{key}"),
            None => args.out.join(key).display().to_string(),
        };
        out.line(format_args!("  {shown}"));
    }
    print_announcements(&mut out, summary);
    if args.delete {
        out.line(format_args!("deleted:    {}", summary.deleted));
        for (id, reason) in summary.not_deleted.iter().take(10) {
            out.line(format_args!("  not deleted {id}: {reason}"));
        }
        if summary.not_deleted.len() > 10 {
            out.line(format_args!(
                "  … and {} more not deleted",
                summary.not_deleted.len() - 10
            ));
        }
    }
    out.line(format_args!(
        "released:   {} (visible again)",
        summary.released
    ));
    if summary.unreleased > 0 {
        out.line(format_args!(
            "unreleased: {} (visible again when their visibility timeout lapses)",
            summary.unreleased
        ));
    }
    if let Some(end) = &summary.end {
        out.line(format_args!(
            "at end:     {} waiting, {} in flight",
            end.visible, end.in_flight
        ));
    }
    if sqs_retries > 0 {
        out.line(format_args!(
            "sqs:        {sqs_retries} calls retried (throttling or lost connections)"
        ));
    }
    if let Some(calls) = calls {
        out.line(format_args!("genesys:    {calls} API calls"));
    }
    if summary.interrupted {
        out.line("interrupted: the run stopped early at Ctrl-C");
    }
}

/// What the notification bus and the incident table did, when they did anything.
fn print_announcements(out: &mut Stdout, summary: &DrainSummary) {
    if summary.notify_failed > 0 {
        out.line(format_args!(
            "events not put on NOTIFY_EVENT_BUS: {} (see the log with RUST_LOG=warn)",
            summary.notify_failed
        ));
    }
    if summary.pages_not_stored > 0 {
        out.line(format_args!(
            "pages not stored: {} (the reports' JSON and Markdown were; see the log with RUST_LOG=warn)",
            summary.pages_not_stored
        ));
    }
    if summary.incident_events > 0 {
        out.line(format_args!(
            "incidents:  {} transition(s) announced",
            summary.incident_events
        ));
    }
    if summary.incident_unannounced > 0 {
        out.line(format_args!(
            "incidents:  {} transition(s) recorded, not announced (no NOTIFY_EVENT_BUS, refused or silenced; kept in the table's outbox for `dlq-triage incidents sweep` or the function)",
            summary.incident_unannounced
        ));
    }
    if summary.incident_update_failed > 0 {
        out.line(format_args!(
            "incidents not updated in INCIDENT_TABLE: {} (the reports hold them; see the log with RUST_LOG=warn)",
            summary.incident_update_failed
        ));
    }
}

/// Progress on standard error: a bar on a terminal, one line per page otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    pages_shown: AtomicUsize,
}

impl Progress {
    fn new(visible: u64, max: Option<u64>) -> Progress {
        let total = max.map_or(visible, |m| m.min(visible.max(1)));
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total.max(1));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} received · {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            pages_shown: AtomicUsize::new(0),
        }
    }

    fn update(&self, p: &PageProgress) {
        let rate = p.received as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let left = p.left.map(|l| format!(" · {l} left")).unwrap_or_default();
        let text = format!(
            "{} written · {} deleted · {rate:.0} msg/s{left}",
            p.written, p.deleted
        );
        match &self.bar {
            Some(bar) => {
                if p.received as u64 > bar.length().unwrap_or(0) {
                    bar.set_length(p.received as u64);
                }
                bar.set_position(p.received as u64);
                bar.set_message(text);
            }
            None => {
                if self.pages_shown.swap(p.pages, Ordering::SeqCst) != p.pages {
                    eprintln!(
                        "dlq-triage: page {}: {} received · {text}",
                        p.pages, p.received
                    );
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

    #[test]
    fn each_way_a_run_fails_is_its_line_and_exit_status_1() {
        let counts = Counts {
            received: 30,
            written: 30,
            deleted: 0,
        };
        assert_eq!(
            PollError::NotDeleted {
                counts,
                unreleased: 30
            }
            .to_string(),
            "not every message was deleted (received 30, written 30, deleted 0); the rest is back in the queue, but 30 could not be released and come back when their visibility timeout lapses"
        );
        assert_eq!(
            PollError::NotWritten { counts }.to_string(),
            "not every message was written (received 30, written 30, deleted 0); see the reports"
        );
        let stopped = PollError::Stopped {
            reason: QueueError::NotFound("https://q".into()).into(),
            counts,
            unreleased: 0,
        };
        assert_eq!(
            stopped.to_string(),
            "queue https://q does not exist (check --queue-url and AWS_REGION) (received 30, written 30, deleted 0); the rest is back in the queue"
        );
        let failure = crate::cli::CommandFailure::of(stopped);
        assert_eq!(failure.status, 1);
    }
}
