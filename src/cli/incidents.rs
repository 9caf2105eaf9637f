//! `dlq-triage incidents`: the incident table, as the function and `poll` keep it;
//! `resolve KEY` closes one by hand, `ack KEY` acknowledges it, `silence KEY` holds its
//! announcements for a while, and `sweep` does what the scheduled sweep does.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::{CliConfig, Stdout};
use crate::artifacts::{Layout, path_style_from_env};
use crate::health::GenesysAccess;
use crate::incidents::{
    IncidentItem, IncidentTracker, REPORTS, State, TableError, Transition, commands,
};
use crate::notify::{Announce, NotifyError};
use crate::redrive::journal::{JournalError, RedriveJournal};
use crate::redrive::{DynamoJournal, Run, notice};
use crate::report::ReplaySource;
use crate::report::short_arn;
use crate::reports::{WhenError, parse_when};
use crate::service::{ArtifactsAt, PortSettings, Services, TriageService};
use crate::triage::TriageOptions;

/// `dlq-triage incidents [--table T] [--state open|resolved|all] [--since T] [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct IncidentsArgs {
    /// `resolve KEY`: close an open incident by hand.
    #[command(subcommand)]
    pub action: Option<IncidentsAction>,
    /// The incident table (default: INCIDENT_TABLE).
    #[arg(long, global = true)]
    pub table: Option<String>,
    /// The bucket of the reports, which the events point to (default: REPORT_BUCKET).
    #[arg(long, global = true)]
    pub bucket: Option<String>,
    /// Their prefix (default: REPORT_PREFIX, else genesys-dlq/).
    #[arg(long, global = true)]
    pub prefix: Option<String>,
    /// Which incidents to list.
    #[arg(long, value_enum, default_value = "open")]
    pub state: StateArg,
    /// Only incidents that failed at or after this time: RFC 3339, or a duration back from
    /// now (90m, 6h, 7d).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// JSON on standard output instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What to do with one incident.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum IncidentsAction {
    /// Resolve the open incident KEY by hand, and put its `resolved` event on
    /// NOTIFY_EVENT_BUS (saying it was resolved by hand).
    Resolve {
        /// The incident's key (`incidentKey`).
        key: String,
    },
    /// Resolve every open incident quiet for longer than INCIDENT_QUIET_MINUTES (no
    /// failure and no batch counted), and put each `resolved` event and each transition
    /// left unannounced on NOTIFY_EVENT_BUS: what the function does every 5 minutes, for a
    /// deployment that drains with `poll` alone (run it from a scheduler).
    Sweep,
    /// Acknowledge the open incident KEY: its events say `acknowledged: true` until its
    /// episode ends.
    Ack {
        /// The incident's key (`incidentKey`).
        key: String,
    },
    /// Silence the incident KEY: it is still counted, but nothing of it is announced until
    /// the silence ends; then what the pager still needs is put (an episode that began
    /// and ended within the silence is passed over).
    Silence {
        /// The incident's key (`incidentKey`).
        key: String,
        /// For how long from now: 30m, 4h, 2d.
        #[arg(long = "for", value_name = "DURATION", conflicts_with = "until")]
        duration: Option<String>,
        /// Until when (RFC 3339); a time in the past ends a silence.
        #[arg(long, value_name = "T", required_unless_present = "duration")]
        until: Option<String>,
    },
}

/// `--state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    /// Open incidents.
    Open,
    /// Resolved incidents.
    Resolved,
    /// Every incident.
    All,
}

/// Each call to the table is bounded.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Why `dlq-triage incidents` failed: the one line printed on standard error (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum IncidentsError {
    /// Neither `--table` nor `INCIDENT_TABLE`.
    #[error("no incident table: give --table or set INCIDENT_TABLE")]
    NoTable,
    /// The service keeps no incidents (never with a table given).
    #[error("no incident table")]
    NotKept,
    /// The table could not be used.
    #[error("incident table {table}: {error}")]
    Table {
        /// Its name.
        table: String,
        /// Why (said in the line, so not its `source()` too).
        error: TableError,
    },
    /// `resolve` or `ack` of an incident that is not open.
    #[error("incident {key} is not open (or not in the table)")]
    NotOpen {
        /// The incident's key.
        key: String,
    },
    /// `silence` of an incident the table does not have.
    #[error("incident {key} is not in the table")]
    NotInTable {
        /// The incident's key.
        key: String,
    },
    /// `resolve` resolved it, and the bus did not take its event.
    #[error("resolved {key}, but its event was not put (it stays in the table's outbox): {error}")]
    ResolvedNotPut {
        /// The incident's key.
        key: String,
        /// Why (said in the line).
        error: NotifyError,
    },
    /// `sweep`: events the bus did not take.
    #[error("{count} event(s) not put on NOTIFY_EVENT_BUS")]
    NotPut {
        /// How many.
        count: usize,
    },
    /// `--for` given a time.
    #[error("--for {value:?}: a duration (30m, 4h, 2d); for a time, --until")]
    ForIsATime {
        /// The value given.
        value: String,
    },
    /// `--for` or `--since` that is neither a time nor a duration.
    #[error(transparent)]
    When(#[from] BadWhen),
    /// `--until` that is not an RFC 3339 time.
    #[error("--until {value:?}: not an RFC 3339 time ({error})")]
    Until {
        /// The value given.
        value: String,
        /// The parser's reason (said in the line).
        error: chrono::ParseError,
    },
    /// `silence` with neither `--for` nor `--until`.
    #[error("give --for DURATION or --until T")]
    NoEnd,
}

/// A `--for` or `--since` value that is neither a time nor a duration: the flag, and the
/// shared parser's line.
#[derive(Debug, thiserror::Error)]
#[error("--{flag} {error}")]
pub struct BadWhen {
    flag: &'static str,
    error: WhenError,
}

/// What the command says once on standard error when its events can name no reports
/// bucket.
const NO_BUCKET: &str = "no bucket is known (--bucket, REPORT_BUCKET): the events carry no report link beyond the report each incident names";

/// Lists the table, or resolves one incident; `Err` with one line when the table cannot
/// be used.
pub async fn incidents(args: IncidentsArgs, config: CliConfig) -> Result<(), IncidentsError> {
    let table = args
        .table
        .clone()
        .or_else(|| config.incident_table.clone())
        .ok_or(IncidentsError::NoTable)?;
    let sdk = super::bounded_sdk(Duration::from_secs(10), CALL_TIMEOUT).await;
    let env = |name: &str| std::env::var(name).ok();
    let settings = port_settings(&args, &config, &table, &env);
    let (bucket, prefix) = match &settings.artifacts {
        ArtifactsAt::S3 { bucket, prefix, .. } => (bucket.clone(), prefix.clone()),
        ArtifactsAt::Folder(_) => Default::default(),
    };
    let service = TriageService::new(Services::from_sdk(&sdk, &settings));
    let notifier = service.announcer();
    if notifier.is_some() && announces(&args) && reports_bucket(&args, &env).is_none() {
        eprintln!("dlq-triage: {NO_BUCKET}");
    }
    let tracker = Named {
        tracker: service.incidents().ok_or(IncidentsError::NotKept)?,
        name: &table,
    };
    let genesys = config.genesys.as_ref();
    match &args.action {
        Some(IncidentsAction::Resolve { key }) => resolve(&tracker, key, notifier, genesys).await,
        Some(IncidentsAction::Sweep) => {
            let opts = TriageOptions::new(Layout::prefixed(&prefix), ReplaySource::Bucket(bucket));
            sweep(&service, &table, &opts, genesys).await
        }
        Some(IncidentsAction::Ack { key }) => acknowledge(&tracker, key).await,
        Some(IncidentsAction::Silence {
            key,
            duration,
            until,
        }) => silence(&tracker, key, duration.as_deref(), until.as_deref()).await,
        None => {
            let journal = DynamoJournal::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
            list(&tracker, &journal, &args).await
        }
    }
}

/// Whether the action puts events (`resolve`, `sweep`).
fn announces(args: &IncidentsArgs) -> bool {
    matches!(
        args.action,
        Some(IncidentsAction::Resolve { .. } | IncidentsAction::Sweep)
    )
}

/// The reports' bucket: `--bucket`, else `REPORT_BUCKET`; `None` when neither names one.
fn reports_bucket(args: &IncidentsArgs, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    (args.bucket.clone())
        .or_else(|| env("REPORT_BUCKET"))
        .filter(|b| !b.is_empty())
}

/// The ports the command uses: the incident table and, with `NOTIFY_EVENT_BUS`, the
/// Notifier, whose events point to the reports in `--bucket` (`REPORT_BUCKET`) below
/// `--prefix` (`REPORT_PREFIX`, else `genesys-dlq/`), as the function's do; without a
/// bucket they name none.
fn port_settings(
    args: &IncidentsArgs,
    config: &CliConfig,
    table: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> PortSettings {
    let bucket = reports_bucket(args, env);
    let prefix = (args.prefix.clone())
        .or_else(|| env("REPORT_PREFIX"))
        .unwrap_or_else(|| "genesys-dlq/".to_owned());
    PortSettings {
        notify_event_bus: config.notify_event_bus.clone(),
        incident_table: Some(table.to_owned()),
        incidents: config.incidents,
        ..PortSettings::at(ArtifactsAt::S3 {
            bucket: bucket.unwrap_or_default(),
            prefix,
            sse_kms_key_id: None,
            path_style: path_style_from_env(),
        })
    }
}

/// The incident tracker, and its table's name for what the command says.
struct Named<'a> {
    tracker: &'a IncidentTracker,
    name: &'a str,
}

impl Named<'_> {
    /// `error`, said of this table.
    fn failed(&self, error: TableError) -> IncidentsError {
        IncidentsError::Table {
            table: self.name.to_owned(),
            error,
        }
    }
}

impl std::ops::Deref for Named<'_> {
    type Target = IncidentTracker;

    fn deref(&self) -> &IncidentTracker {
        self.tracker
    }
}

/// The scheduled sweep, through the triage service as the function runs it; each
/// resolution and each transition put, then the counts.
async fn sweep(
    service: &TriageService,
    table: &str,
    opts: &TriageOptions,
    genesys: Option<&GenesysAccess>,
) -> Result<(), IncidentsError> {
    let swept = service.sweep(Utc::now(), opts, genesys).await;
    let mut out = Stdout::new();
    let mut not_put = 0;
    let mut no_bus = 0;
    for (change, put) in &swept.changes {
        if change.transition == Transition::Resolved {
            out.line(format_args!(
                "resolved:   {} ({} failed events, quiet since {})",
                change.item.key,
                change.item.count,
                time(change.item.last_seen)
            ));
        }
        match put {
            Some(Ok(())) => out.line(format_args!(
                "announced:  {} {} (seq {})",
                change.item.key,
                change.transition.as_str(),
                change.seq
            )),
            Some(Err(e)) => {
                eprintln!(
                    "dlq-triage: {}: its {} event was not put: {e}",
                    change.item.key,
                    change.transition.as_str()
                );
                not_put += 1;
            }
            None => no_bus += 1,
        }
    }
    for (key, why) in &swept.unmarked {
        let put = (swept.changes.iter())
            .any(|(c, put)| c.item.key == *key && matches!(put, Some(Ok(()))));
        let done = if put { "put" } else { "passed over" };
        eprintln!("dlq-triage: {key}: {done}, but still in its outbox: {why}");
    }
    out.line(format_args!("resolved {} incident(s)", swept.resolved));
    if no_bus > 0 {
        out.line(format_args!(
            "unannounced: {no_bus} transition(s) stay in the table's outbox (NOTIFY_EVENT_BUS is not set)"
        ));
    }
    match (swept.errors.into_iter().next(), not_put) {
        (Some(error), _) => Err(IncidentsError::Table {
            table: table.to_owned(),
            error,
        }),
        (None, 0) => Ok(()),
        (None, count) => Err(IncidentsError::NotPut { count }),
    }
}

async fn resolve(
    tracker: &Named<'_>,
    key: &str,
    notifier: Option<&dyn Announce>,
    genesys: Option<&GenesysAccess>,
) -> Result<(), IncidentsError> {
    let now = Utc::now();
    let change = tracker
        .resolve(key, now)
        .await
        .map_err(|e| tracker.failed(e))?
        .ok_or_else(|| not_open(key))?;
    let mut out = Stdout::new();
    out.line(format_args!(
        "resolved:   {key} ({} failed events from {} to {})",
        change.item.count,
        time(change.item.first_seen),
        time(change.item.last_seen)
    ));
    if change.item.silenced(now.timestamp_millis()) {
        out.line(format_args!(
            "event:      held: silenced until {}",
            time(change.item.silenced_until.unwrap_or_default())
        ));
        return Ok(());
    }
    match notifier {
        None => out.line(
            "event:      not announced (NOTIFY_EVENT_BUS is not set): it stays in the table's outbox",
        ),
        Some(n) => match n.incident(&change, genesys, Duration::from_secs(10)).await {
            Ok(()) => {
                out.line(
                    "event:      DLQ Triage Incident (resolved, by hand) put on NOTIFY_EVENT_BUS",
                );
                tracker
                    .announced(key, &[change.seq])
                    .await
                    .map_err(|e| tracker.failed(e))?;
            }
            Err(error) => {
                return Err(IncidentsError::ResolvedNotPut {
                    key: key.to_owned(),
                    error,
                });
            }
        },
    }
    Ok(())
}

async fn acknowledge(tracker: &Named<'_>, key: &str) -> Result<(), IncidentsError> {
    let item = tracker
        .acknowledge(key, Utc::now())
        .await
        .map_err(|e| tracker.failed(e))?
        .ok_or_else(|| not_open(key))?;
    Stdout::new().line(format_args!(
        "acknowledged: {key} (episode {}, {} failed events so far)",
        item.episode, item.count
    ));
    Ok(())
}

async fn silence(
    tracker: &Named<'_>,
    key: &str,
    duration: Option<&str>,
    until: Option<&str>,
) -> Result<(), IncidentsError> {
    let now = Utc::now();
    // A time past ends the silence now, so that what it held stays what it held.
    let until = silence_end(now, duration, until)?.max(now);
    let item = tracker
        .silence(key, until)
        .await
        .map_err(|e| tracker.failed(e))?
        .ok_or_else(|| IncidentsError::NotInTable {
            key: key.to_owned(),
        })?;
    let mut out = Stdout::new();
    match item.silenced(now.timestamp_millis()) {
        true => out.line(format_args!(
            "silenced:   {key} until {} (counted, announced after)",
            time(until.timestamp_millis())
        )),
        false => out.line(format_args!("silence ended: {key}")),
    }
    Ok(())
}

/// When a silence ends: `--for` a duration from `now`, or `--until` a time.
fn silence_end(
    now: chrono::DateTime<Utc>,
    duration: Option<&str>,
    until: Option<&str>,
) -> Result<chrono::DateTime<Utc>, IncidentsError> {
    match (duration, until) {
        (Some(d), _) => {
            if chrono::DateTime::parse_from_rfc3339(d.trim()).is_ok() {
                return Err(IncidentsError::ForIsATime {
                    value: d.to_owned(),
                });
            }
            let back = when("for", d, now)?;
            Ok(now + (now - back))
        }
        (None, Some(t)) => chrono::DateTime::parse_from_rfc3339(t.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|error| IncidentsError::Until {
                value: t.to_owned(),
                error,
            }),
        (None, None) => Err(IncidentsError::NoEnd),
    }
}

/// The time `value` of `--flag` says (a time, or a duration back from `now`).
fn when(
    flag: &'static str,
    value: &str,
    now: chrono::DateTime<Utc>,
) -> Result<chrono::DateTime<Utc>, BadWhen> {
    parse_when(value, now).map_err(|error| BadWhen { flag, error })
}

async fn list(
    tracker: &Named<'_>,
    journal: &dyn RedriveJournal,
    args: &IncidentsArgs,
) -> Result<(), IncidentsError> {
    let now = Utc::now();
    let since = (args.since.as_deref())
        .map(|s| when("since", s, now))
        .transpose()?;
    let state = match args.state {
        StateArg::Open => Some(State::Open),
        StateArg::Resolved => Some(State::Resolved),
        StateArg::All => None,
    };
    let mut items = tracker
        .table()
        .list(state)
        .await
        .map_err(|e| tracker.failed(e))?;
    items.retain(|i| since.is_none_or(|s| i.last_seen >= s.timestamp_millis()));
    items.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.key.cmp(&b.key)));
    let runs = redrives(journal, &items).await;
    let mut out = Stdout::new();
    if args.json {
        let all: Vec<_> = items
            .iter()
            .zip(&runs)
            .map(|(item, run)| {
                let mut j = as_json(item);
                j["redrive"] = match run {
                    Ok(Some(run)) => notice::summary(run),
                    Ok(None) => serde_json::Value::Null,
                    Err(e) => json!({"unreadable": e.to_string()}),
                };
                j
            })
            .collect();
        out.line(serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(());
    }
    if items.is_empty() {
        out.line("no incidents");
        return Ok(());
    }
    for (item, run) in items.iter().zip(&runs) {
        out.line(format_args!(
            "{}  {:<8} {:<24} {:<40} {:>8}  {} → {} ({})",
            item.key,
            item.state.as_str(),
            item.category,
            item.target_arn
                .as_deref()
                .map(short_arn)
                .unwrap_or_else(|| "(no target)".into()),
            item.count,
            time(item.first_seen),
            time(item.last_seen),
            duration(item),
        ));
        out.line(format_args!("    {}", commands(item, REPORTS).1));
        match run {
            Ok(Some(run)) => out.line(format_args!("    {}", notice::line(run))),
            Ok(None) => {}
            Err(e) => out.line(format_args!("    redrive: cannot be read: {e}")),
        }
    }
    Ok(())
}

/// The redrive of each incident (its run item, `redrive#run#<incidentKey>`, beside it in
/// the table): one consistent read each.
async fn redrives(
    journal: &dyn RedriveJournal,
    items: &[IncidentItem],
) -> Vec<Result<Option<Run>, JournalError>> {
    let mut runs = Vec::with_capacity(items.len());
    for item in items {
        runs.push(journal.run(&item.key).await);
    }
    runs
}

fn not_open(key: &str) -> IncidentsError {
    IncidentsError::NotOpen {
        key: key.to_owned(),
    }
}

fn time(ms: i64) -> String {
    crate::incidents::rfc3339(ms).unwrap_or_else(|| "—".into())
}

/// From first to last failure, in whole minutes.
fn duration(item: &IncidentItem) -> String {
    let minutes = (item.last_seen - item.first_seen).max(0) / 60_000;
    match minutes {
        0..60 => format!("{minutes} min"),
        _ => format!("{}h{:02}", minutes / 60, minutes % 60),
    }
}

fn as_json(item: &IncidentItem) -> serde_json::Value {
    json!({
        "incidentKey": item.key,
        "state": item.state.as_str(),
        "category": item.category,
        "targetArn": item.target_arn,
        "count": item.count,
        "firstSeen": time(item.first_seen),
        "lastSeen": time(item.last_seen),
        "durationSeconds": (item.last_seen - item.first_seen).max(0) / 1000,
        "rules": item.rules,
        "errorCodes": item.codes,
        "sampleErrors": item.sample_errors,
        "httpStatuses": item.http_statuses,
        "seq": item.seq,
        "episode": item.episode,
        "dedupKey": item.dedup_key(item.episode),
        "acknowledged": item.acknowledged_at.is_some(),
        "silencedUntil": item.silenced_until.map(time),
        "unannounced": item.outbox.len(),
        "report": item.report.as_ref().map(|r| json!({"json": r.json, "markdown": r.markdown, "html": r.html})),
        "replayCommand": commands(item, REPORTS).1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup_from_pairs;

    /// The events of `incidents resolve` and `sweep` point to the reports in
    /// `REPORT_BUCKET` below `REPORT_PREFIX` (`genesys-dlq/` by default), through the one
    /// Notifier the function and `poll` use, not to `s3:///`.
    #[test]
    fn its_events_point_to_the_reports_bucket() {
        let config =
            CliConfig::from_lookup(&lookup_from_pairs(&[("NOTIFY_EVENT_BUS", "bus")])).unwrap();
        let args = IncidentsArgs {
            action: Some(IncidentsAction::Sweep),
            table: None,
            bucket: None,
            prefix: None,
            state: StateArg::Open,
            since: None,
            json: false,
        };
        let env = lookup_from_pairs(&[("REPORT_BUCKET", "reports")]);
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let notifier = crate::service::notifier(&sdk, &port_settings(&args, &config, "t", &env));
        let context = notifier.expect("a notifier").context();
        assert_eq!(
            context.reports.as_deref(),
            Some("s3://reports/genesys-dlq/")
        );
        let given = IncidentsArgs {
            bucket: Some("other".into()),
            prefix: Some("p/".into()),
            ..args
        };
        let notifier = crate::service::notifier(&sdk, &port_settings(&given, &config, "t", &env));
        assert_eq!(
            notifier.unwrap().context().reports.as_deref(),
            Some("s3://other/p/")
        );
        // Neither --bucket nor REPORT_BUCKET: the events name no reports (never `s3:///`),
        // and the command says so once.
        let nothing = lookup_from_pairs(&[]);
        assert_eq!(reports_bucket(&given, &nothing), Some("other".into()));
        let unknown = IncidentsArgs {
            bucket: None,
            ..given
        };
        assert_eq!(reports_bucket(&unknown, &nothing), None);
        let settings = port_settings(&unknown, &config, "t", &nothing);
        let notifier = crate::service::notifier(&sdk, &settings).expect("a notifier");
        assert_eq!(notifier.context().reports, None);
        assert!(announces(&unknown));
        let listing = IncidentsArgs {
            action: None,
            ..unknown
        };
        assert!(!announces(&listing));
    }

    /// Each failure is the one line the command printed before its errors were typed.
    #[test]
    fn its_errors_read_as_one_line_each() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-05T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let said = |r: Result<chrono::DateTime<Utc>, IncidentsError>| r.unwrap_err().to_string();
        assert_eq!(
            said(silence_end(now, Some("2026-12-05T10:00:00Z"), None)),
            "--for \"2026-12-05T10:00:00Z\": a duration (30m, 4h, 2d); for a time, --until"
        );
        assert_eq!(
            said(silence_end(now, Some("soon"), None)),
            "--for \"soon\" is neither an RFC 3339 time (2026-12-04T09:00:00Z) nor a duration back from now (90m, 6h, 7d)"
        );
        assert!(
            said(silence_end(now, None, Some("tomorrow")))
                .starts_with("--until \"tomorrow\": not an RFC 3339 time (")
        );
        assert_eq!(
            said(silence_end(now, None, None)),
            "give --for DURATION or --until T"
        );
        assert_eq!(
            silence_end(now, Some("2h"), None).unwrap(),
            now + chrono::Duration::hours(2)
        );
        assert_eq!(
            not_open("K").to_string(),
            "incident K is not open (or not in the table)"
        );
        let failure = super::super::CommandFailure::of(IncidentsError::NotPut { count: 2 });
        assert_eq!(failure.message, "2 event(s) not put on NOTIFY_EVENT_BUS");
        assert_eq!(failure.status, 1);
        let table = IncidentsError::Table {
            table: "t".into(),
            error: TableError::NothingWritten { key: "K".into() },
        };
        assert_eq!(
            table.to_string(),
            "incident table t: incident K: nothing written"
        );
    }

    /// Printed with its causes (`e: cause: …`), no line says again what the line before
    /// it said: a line that says its cause leaves it out of `source()`.
    #[test]
    fn its_errors_printed_with_their_causes_say_each_thing_once() {
        use crate::aws_error::{AwsError, said_twice, shapes};
        use crate::incidents::{ItemError, TableCall};
        use aws_sdk_dynamodb::operation::get_item::GetItemError;
        let now = Utc::now();
        let call = || {
            let refused = shapes::service(
                GetItemError::generic(shapes::meta(
                    "ResourceNotFoundException",
                    "Requested resource not found",
                )),
                400,
            );
            TableCall::new("t", AwsError::from_sdk("dynamodb:GetItem", refused))
        };
        assert_eq!(call().code(), Some("ResourceNotFoundException"));
        let unreadable = || TableError::Unreadable {
            key: "K".into(),
            why: ItemError::Missing { attr: "state" },
        };
        // The table's own: the call's line says the SDK's error once.
        let refused = TableError::from(call());
        assert_eq!(said_twice(&refused), Vec::<String>::new());
        assert_eq!(said_twice(&unreadable()), Vec::<String>::new());
        let errors = [
            IncidentsError::Table {
                table: "t".into(),
                error: call().into(),
            },
            IncidentsError::Table {
                table: "t".into(),
                error: unreadable(),
            },
            IncidentsError::ResolvedNotPut {
                key: "K".into(),
                error: NotifyError::Timeout(Duration::from_secs(2)),
            },
            silence_end(now, Some("soon"), None).unwrap_err(),
            silence_end(now, None, Some("tomorrow")).unwrap_err(),
        ];
        for e in &errors {
            assert_eq!(said_twice(e), Vec::<String>::new(), "{e}");
        }
        assert_eq!(
            errors[0].to_string(),
            "incident table t: dynamodb:GetItem: ResourceNotFoundException: Requested resource not found (table t)"
        );
        assert_eq!(
            errors[1].to_string(),
            "incident table t: incident K: the item cannot be read: state is missing"
        );
    }
}
