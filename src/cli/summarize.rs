//! `dlq-triage summarize`: one answer for the whole incident, across every report found
//! below the sources.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;

use super::{Stdout, categories, window};
use crate::artifacts::{path_style_from_env, s3_client};
use crate::health::TargetHealth;
use crate::page::{Kind, Page};
use crate::reports::{
    ArgError, DigestError, Filter, Location, ReadError, Reader, ReportArg, ReportDigest,
};
use crate::summarize::{
    Detail, Finished, Health, Summarizer, Summary, render_summary, summary_headline,
};

/// `dlq-triage summarize SOURCE… [--since T] [--until T] [--category C]… [--target ARN]…
/// [--out DIR] [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct SummarizeArgs {
    /// Reports: report files, folders (every report below them), or s3://bucket/prefix/
    /// (every report object below it).
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// Only failures dead-lettered at or after this time: RFC 3339, or a duration back
    /// from now (90m, 6h, 7d).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only failures dead-lettered at or before this time (same forms as --since).
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Only this category (repeatable).
    #[arg(long = "category", value_name = "C")]
    pub categories: Vec<String>,
    /// Only this failed target ARN (repeatable).
    #[arg(long = "target", value_name = "ARN")]
    pub targets: Vec<String>,
    /// Folder for summary.md, summary.json and summary.html.
    #[arg(long, default_value = "summary")]
    pub out: PathBuf,
    /// Print summary.json to standard output instead of writing the folder.
    #[arg(long)]
    pub json: bool,
    /// Reports read at once [default: 16 from S3, two per core from local files].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: Option<u64>,
    /// Do not look EventBridge's metrics and the API destinations' limits up.
    #[arg(long)]
    pub no_health: bool,
}

/// How long mimalloc keeps freed memory before returning it (its own default).
const SUMMARIZE_PURGE_DELAY_MS: i64 = 10;

/// The most each health look-up waits.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// The most the whole health look-up takes (many calls, a few at once).
const HEALTH_TOTAL: Duration = Duration::from_secs(120);

/// Why `summarize` gave no summary: the line printed on standard error.
#[derive(Debug, thiserror::Error)]
pub enum SummarizeError {
    /// `--category`, `--since` or `--until` (the line the shared flag parsers give).
    #[error("{0}")]
    Filter(String),
    /// A source that names no place to read.
    #[error(transparent)]
    Arg(#[from] ArgError),
    /// The sources could not be listed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Reports were found (or none), and none could be read.
    #[error("no report could be read ({found} found, none readable; first: {first})")]
    NoneReadable {
        /// How many were found.
        found: usize,
        /// The first found, or `none`.
        first: String,
    },
    /// summary.json could not be made.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The `--out` folder cannot be created.
    #[error("cannot create {}: {error}", .path.display())]
    CreateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A file of the folder cannot be written.
    #[error("cannot write {}: {error}", .path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Summarizes every report below the sources; `Err` with one line when nothing could be
/// read or the output cannot be written.
pub async fn summarize(args: SummarizeArgs) -> Result<(), SummarizeError> {
    // Many reports are read, parsed and freed one after another: freed memory waits a
    // little before it goes back to the system, so the next report reuses it instead of
    // faulting fresh pages in (docs/benchmarks.md: 17 % of the run; peak RSS stays well
    // inside the target).
    crate::memory::purge_freed_memory_after(SUMMARIZE_PURGE_DELAY_MS);
    let now = chrono::Utc::now();
    let window =
        window(&args.since, &args.until, now).map_err(|e| SummarizeError::Filter(e.to_string()))?;
    let filter = Filter {
        categories: categories(&args.categories)
            .map_err(|e| SummarizeError::Filter(e.to_string()))?,
        targets: args.targets.clone(),
        message_ids: Vec::new(),
        window,
    };
    let sources = args
        .sources
        .iter()
        .map(|s| ReportArg::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let reader = if !sources.iter().all(ReportArg::is_local) {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Reader::with_s3(s3_client(&sdk, path_style_from_env()))
    } else {
        Reader::local()
    };
    // Reading S3 waits on the network; reading local files only needs the cores busy (more
    // readers at once only hold more reports in memory).
    let concurrency = args.concurrency.map_or_else(
        || {
            if sources.iter().all(ReportArg::is_local) {
                2 * std::thread::available_parallelism().map_or(1, |n| n.get())
            } else {
                16
            }
        },
        |n| n as usize,
    );
    let mut summarizer = Summarizer::new(filter);
    // The listing hands each report over as its page arrives, and reading starts at once.
    let (found, listed) = tokio::sync::mpsc::unbounded_channel();
    let listing = async {
        let since = window.since.map(|t| t.date_naive());
        let listed = reader
            .locate_each(&sources, since, |l| {
                let _ = found.send(l);
            })
            .await;
        // The reads end when the listing does, whether it found everything or failed.
        drop(found);
        listed
    };
    let mut locations = Vec::new();
    let reading = read_all(
        &reader,
        listed,
        concurrency,
        &mut summarizer,
        &mut locations,
    );
    let (listed, ()) = tokio::join!(listing, reading);
    listed?;
    if summarizer.reports() == 0 {
        return Err(SummarizeError::NoneReadable {
            found: locations.len(),
            first: locations
                .first()
                .map_or("none".to_owned(), |l| l.to_string()),
        });
    }
    let Finished {
        mut summary,
        mut detail,
        payload_sources,
    } = summarizer.finish_detailed(now, &args.sources);
    if !args.no_health && summary.incidents.iter().any(|i| !i.rules.is_empty()) {
        let port = crate::health::AwsHealth::new(health_sdk().await);
        summary.health = Some(health(&summary, &port).await);
    }
    if !args.json {
        detail.payloads = sample_payloads(&reader, &locations, payload_sources, concurrency).await;
    }
    write(&summary, &detail, &args)
}

/// Reads every report `listed` hands over, `concurrency` at once, each parsed on a
/// blocking thread (reports are independent, so they parse on every core) into what the
/// summary needs, then added; the text is dropped as soon as it is parsed. `locations`
/// gets each report's location, in the order the summarizer numbers them.
async fn read_all(
    reader: &Reader,
    listed: tokio::sync::mpsc::UnboundedReceiver<Location>,
    concurrency: usize,
    summarizer: &mut Summarizer,
    locations: &mut Vec<Location>,
) {
    let listed =
        futures::stream::unfold(
            listed,
            |mut rx| async move { rx.recv().await.map(|l| (l, rx)) },
        );
    let reads = listed
        .enumerate()
        .map(|(n, location)| {
            locations.push(location.clone());
            async move {
                let digest = match reader.read(&location).await {
                    Ok(bytes) => tokio::task::spawn_blocking(move || ReportDigest::parse(&bytes))
                        .await
                        .map_err(Unreadable::Parser)
                        .and_then(|d| d.map_err(Unreadable::Digest)),
                    Err(e) => Err(Unreadable::Read(e)),
                };
                (n, location, digest)
            }
        })
        .buffer_unordered(concurrency);
    let mut reads = std::pin::pin!(reads);
    while let Some((n, location, digest)) = reads.next().await {
        match digest {
            Ok(report) => summarizer.add_from(report, n),
            Err(e) => summarizer.unreadable(location.to_string(), e.reason(&location)),
        }
    }
}

/// Why a source could not be summarized.
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    /// It could not be read.
    #[error(transparent)]
    Read(ReadError),
    /// It is not a report this version reads.
    #[error(transparent)]
    Digest(DigestError),
    /// The parse did not finish (it panicked).
    #[error("could not be parsed: {0}")]
    Parser(tokio::task::JoinError),
}

impl Unreadable {
    /// The `unreadable` reason of the source at `location`: what went wrong, without
    /// where when it went wrong there.
    fn reason(&self, location: &Location) -> String {
        match self {
            Unreadable::Read(e) if e.place() == Some(location.to_string()) => e.reason(),
            other => other.to_string(),
        }
    }
}

/// The page's sample payloads: each report that lists some is read again for their keys,
/// then the payloads themselves. Best effort: a payload that cannot be read is left out.
async fn sample_payloads(
    reader: &Reader,
    locations: &[Location],
    wanted: BTreeMap<String, usize>,
    concurrency: usize,
) -> BTreeMap<String, bytes::Bytes> {
    #[derive(serde::Deserialize)]
    struct Keys {
        records: Vec<Key>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Key {
        message_id: String,
        replay_payload_key: Option<String>,
    }
    let mut by_source: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (id, source) in wanted {
        by_source.entry(source).or_default().push(id);
    }
    let payloads = by_source.into_iter().filter_map(|(source, ids)| {
        let report = locations.get(source)?;
        Some(async move {
            let Ok(bytes) = reader.read(report).await else {
                return Vec::new();
            };
            let Ok(keys) = serde_json::from_slice::<Keys>(&bytes) else {
                return Vec::new();
            };
            let mut found = Vec::new();
            for k in keys.records {
                if !ids.contains(&k.message_id) {
                    continue;
                }
                let Some(payload) = k
                    .replay_payload_key
                    .and_then(|key| report.payload(&key).ok())
                else {
                    continue;
                };
                if let Ok(body) = reader.read(&payload).await {
                    found.push((k.message_id, bytes::Bytes::from(body)));
                }
            }
            found
        })
    });
    futures::stream::iter(payloads)
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The SDK configuration the health look-ups go through: no retries, each call at most
/// [`HEALTH_TIMEOUT`].
async fn health_sdk() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest())
        .await
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(HEALTH_TIMEOUT)
                .build(),
        )
        .build()
}

/// The health beside the summary, through `port`: best effort, one attempt of at most
/// [`HEALTH_TIMEOUT`] each, all within [`HEALTH_TOTAL`], never instead of the summary.
async fn health(summary: &Summary, port: &dyn TargetHealth) -> Health {
    // Genesys Cloud is asked only when its credentials are set (and valid).
    let genesys = super::CliConfig::from_env().ok().and_then(|c| c.genesys);
    let query = crate::health::HealthQuery::of_summary(summary);
    let bounds = crate::health::Bounds {
        per_call: HEALTH_TIMEOUT,
        total: HEALTH_TOTAL,
    };
    port.look_up(&query, genesys.as_ref(), bounds).await
}

/// `summary.json` to standard output (`--json`), or `summary.md` and `summary.json` into
/// the folder with the headline and the incident table on standard output.
fn write(summary: &Summary, detail: &Detail, args: &SummarizeArgs) -> Result<(), SummarizeError> {
    let json = serde_json::to_vec_pretty(summary)?;
    let mut out = Stdout::new();
    if args.json {
        out.line(String::from_utf8_lossy(&json));
        return Ok(());
    }
    let dir = &args.out;
    std::fs::create_dir_all(dir).map_err(|error| SummarizeError::CreateDir {
        path: dir.clone(),
        error,
    })?;
    for (name, body) in [
        ("summary.json", json),
        ("summary.md", render_summary(summary).into_bytes()),
        ("summary.html", summary_page(summary, detail).into_bytes()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, body).map_err(|error| SummarizeError::Write { path, error })?;
    }
    out.line(summary_headline(summary));
    if !summary.unreadable.is_empty() {
        out.line(format_args!(
            "unreadable: {} source(s), named in summary.md",
            summary.unreadable.len()
        ));
    }
    out.line(format_args!(
        "{:<22} {:<40} {:>8}  {:<20}  {:<20}  ongoing",
        "category", "target", "failed", "first", "last"
    ));
    for i in &summary.incidents {
        let target = i
            .target_arn
            .as_deref()
            .map(crate::report::short_arn)
            .unwrap_or_else(|| "(no target)".into());
        let target: String = target
            .chars()
            .filter(|c| !c.is_control())
            .take(40)
            .collect();
        out.line(format_args!(
            "{:<22} {target:<40} {:>8}  {:<20}  {:<20}  {}",
            i.category.as_str(),
            i.count,
            i.first_seen.as_deref().unwrap_or("-"),
            i.last_seen.as_deref().unwrap_or("-"),
            if i.ongoing { "yes" } else { "no" }
        ));
    }
    if let Some(health) = &summary.health {
        print_health(&mut out, health);
    }
    out.line(format_args!(
        "summary: {}",
        dir.join("summary.md").display()
    ));
    out.line(format_args!(
        "page:    {}",
        dir.join("summary.html").display()
    ));
    out.line(format_args!(
        "json:    {}",
        dir.join("summary.json").display()
    ));
    Ok(())
}

/// `summary.html`.
fn summary_page(summary: &Summary, detail: &Detail) -> String {
    let headline = summary_headline(summary);
    crate::page::render(&Page {
        kind: Kind::Summary,
        summary,
        headline: &headline,
        detail,
        data: "summary.json",
        genesys_domain: super::genesys_ui_domain(),
    })
}

/// The health table: first what stops events or loses them (a source or integration
/// feeding the rules' buses that is not active, rules that lost events beyond the DLQ),
/// then per rule EventBridge's own counts or why there are none, per API destination its
/// limit beside the rates and the advice; then what could not be looked up.
fn print_health(out: &mut Stdout, health: &Health) {
    print_health_alarms(out, health);
    out.line(format_args!(
        "health (EventBridge's metrics per rule, all of its targets; totals over the window{}; the split by target is the dead letters'):",
        health
            .peak_period_seconds
            .map_or(String::new(), |p| format!(", peaks {}", crate::health::per_period(p)))
    ));
    print_rule_rows(out, health);
    print_api_destination_rows(out, health);
    print_sources_and_integrations(out, health);
    for line in &health.notes {
        out.line(format_args!("  note: {line}"));
    }
    for line in &health.unavailable {
        out.line(format_args!("  unavailable: {line}"));
    }
}

/// What stops events or loses them, before the table: inactive sources and integrations
/// feeding the rules, rules that lost events beyond the DLQ.
fn print_health_alarms(out: &mut Stdout, health: &Health) {
    for source in health.event_sources.iter().filter(|s| s.state != "ACTIVE") {
        out.line(format_args!(
            "NOT SENDING: partner event source {} is {}: Genesys Cloud's events do not reach the bus, and no dead letter can show them",
            source.name, source.state
        ));
    }
    for i in health
        .genesys_integrations
        .iter()
        .filter(|i| i.feeds_rules && i.code != "ACTIVE")
    {
        out.line(format_args!(
            "NOT SENDING: Genesys Cloud integration {:?} is {}{}: no dead letter can show events that were never sent",
            i.name,
            i.code,
            i.detail.as_deref().map_or(String::new(), |d| format!(" ({d})"))
        ));
    }
    for r in health.rules.iter().filter(|r| r.lost() > 0.0) {
        out.line(format_args!(
            "LOST: rule {}: {} event(s) could not be put in the dead-letter queue (InvocationsFailedToBeSentToDlq){}",
            r.rule_name,
            r.lost(),
            if r.named_by_dead_letters {
                ""
            } else {
                "; no dead letter names it: every send to its DLQ failed (queue policy, KMS key)"
            }
        ));
    }
    if health.lost_beyond_dlq > 0 {
        out.line(format_args!(
            "LOST: {} event(s) could not be put in the dead-letter queue either (InvocationsFailedToBeSentToDlq)",
            health.lost_beyond_dlq
        ));
    }
}

/// One row per rule: EventBridge's own counts, or why there are none.
fn print_rule_rows(out: &mut Stdout, health: &Health) {
    for r in &health.rules {
        if let Some(why) = &r.no_metrics {
            out.line(format_args!("  rule {:<32} {why}", r.rule_name));
            continue;
        }
        let m = |name: &str| r.metrics.get(name).copied().unwrap_or(0.0);
        let sent = if r.missed.iter().any(|m| m == "InvocationsSentToDlq") {
            format!(
                "sent to DLQ missed ({} dead letter(s) name the rule in the window)",
                r.dead_letters
            )
        } else {
            format!(
                "sent to DLQ {:>6} ({})",
                m("InvocationsSentToDlq"),
                r.failure_ratio
                    .map_or("-".to_owned(), |f| format!("{:.2} %", f * 100.0))
            )
        };
        out.line(format_args!(
            "  rule {:<32} invocations {:>8}  {sent}  lost {:>4}  retries {:>6}  throttled {:>4}",
            r.rule_name,
            m("Invocations"),
            m("InvocationsFailedToBeSentToDlq"),
            m("RetryInvocationAttempts"),
            m("ThrottledRules"),
        ));
    }
}

/// One row per API destination: its limit beside the rates, the connection, the advice.
fn print_api_destination_rows(out: &mut Stdout, health: &Health) {
    for d in &health.api_destinations {
        out.line(format_args!(
            "  api-destination {:<21} limit {}  matched peak {}  invoked peak {:.1}/s  rate-limited peak {}/min{}",
            d.name,
            d.invocation_rate_limit_per_second
                .map_or("unknown".to_owned(), |l| format!("{l}/s")),
            d.peak_matched_per_second
                .map_or("unknown".to_owned(), |r| format!("{r:.1}/s")),
            d.peak_invoked_per_second,
            d.peak_rate_limited_per_minute,
            d.connection_state
                .as_deref()
                .map_or(String::new(), |s| format!("  connection {s}"))
        ));
        if let Some(advice) = &d.advice {
            out.line(format_args!("    advice: {advice}"));
        }
    }
}

/// The partner event sources and Genesys Cloud integrations, each with its state.
fn print_sources_and_integrations(out: &mut Stdout, health: &Health) {
    for source in &health.event_sources {
        out.line(format_args!(
            "  event source {}: {}",
            source.name, source.state
        ));
    }
    for i in &health.genesys_integrations {
        out.line(format_args!(
            "  genesys integration {:?}: {} (suffix {}, {}, reported {})",
            i.name,
            i.code,
            i.event_source_suffix.as_deref().unwrap_or("?"),
            if i.feeds_rules {
                "feeds the rules' bus"
            } else {
                "feeds none of the rules' buses"
            },
            i.last_updated.as_deref().unwrap_or("?")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_says_the_line_an_operator_reads() {
        let denied = || std::io::Error::other("denied");
        let lines = [
            (
                SummarizeError::NoneReadable {
                    found: 2,
                    first: "s3://b/r.json".into(),
                },
                "no report could be read (2 found, none readable; first: s3://b/r.json)",
            ),
            (
                SummarizeError::CreateDir {
                    path: "out".into(),
                    error: denied(),
                },
                "cannot create out: denied",
            ),
            (
                SummarizeError::Write {
                    path: PathBuf::from("out").join("summary.md"),
                    error: denied(),
                },
                "cannot write out/summary.md: denied",
            ),
            (
                SummarizeError::Filter("--since is later than --until".into()),
                "--since is later than --until",
            ),
        ];
        for (error, line) in lines {
            // Printed with its causes, each thing is said once.
            assert_eq!(crate::aws_error::said_twice(&error), Vec::<String>::new());
            assert_eq!(crate::cli::CommandFailure::of(error).message, line);
        }
    }

    #[test]
    fn an_unreadable_reason_leaves_out_where_only_when_it_is_the_source() {
        let here = Location::S3 {
            bucket: "b".into(),
            key: "reports/x.json".into(),
        };
        let missing = Unreadable::Read(ReadError::NotFound {
            location: here.clone(),
        });
        assert_eq!(missing.reason(&here), "no such object");
        let elsewhere = Location::S3 {
            bucket: "b".into(),
            key: "reports/y.json".into(),
        };
        assert_eq!(
            missing.reason(&elsewhere),
            "s3://b/reports/x.json: no such object"
        );
        let digest = ReportDigest::parse(b"{}").unwrap_err();
        assert_eq!(
            Unreadable::Digest(digest).reason(&here),
            "not a dlq-triage report: no schemaVersion"
        );
    }
}
