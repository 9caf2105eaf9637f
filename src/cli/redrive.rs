//! `dlq-triage redrive status|start|pause|resume|cancel KEY`: a person's view and
//! controls of an incident's redrive, in the incident table the function works it from;
//! `redrive run` does what the function's schedule does, for `poll`-only deployments.
//! `start` begins the redrive of a resolved incident whatever `REDRIVE_CATEGORIES` says
//! (for a category that needed a fix on our side, once a person made it); the function
//! (with `REDRIVE=auto`) sends it, slice by slice.

use std::time::Duration;

use chrono::Utc;

use super::{CliConfig, CommandFailure, Stdout};
use crate::config::{ConfigError, Env, redrive_policy};
use crate::incidents::{DynamoTable, IncidentTable, ItemError, State, Stored, TableError};
use crate::redrive::engine::{RedriveError, Redriver, RunControl};
use crate::redrive::journal::{JournalError, RunState};
use crate::redrive::{Run, SLICE_MARGIN, wiring};
use crate::reports::ReportArg;

/// `dlq-triage redrive ACTION KEY [--table T] [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct RedriveArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: RedriveAction,
    /// The incident table (default: INCIDENT_TABLE).
    #[arg(long, global = true)]
    pub table: Option<String>,
    /// The run as JSON on standard output.
    #[arg(long, global = true)]
    pub json: bool,
}

/// One action on the redrive of the incident KEY.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RedriveAction {
    /// The run's state, counts and pace.
    Status {
        /// The incident's key (`incidentKey`).
        key: String,
    },
    /// Start the redrive of the resolved incident KEY now, whatever its category (a
    /// person fixed the cause). The payloads are below s3://REPORT_BUCKET/REPORT_PREFIX.
    Start {
        /// The incident's key (`incidentKey`).
        key: String,
        /// The bucket of the reports (default: REPORT_BUCKET).
        #[arg(long)]
        bucket: Option<String>,
        /// Their prefix (default: REPORT_PREFIX, else genesys-dlq/).
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Stop sending until `resume` (a pause by hand is never lifted by itself).
    Pause {
        /// The incident's key (`incidentKey`).
        key: String,
    },
    /// Go on (after a canary).
    Resume {
        /// The incident's key (`incidentKey`).
        key: String,
    },
    /// Stop for good.
    Cancel {
        /// The incident's key (`incidentKey`).
        key: String,
    },
    /// What the function does each minute with REDRIVE=auto, for a deployment that drains
    /// with `poll` alone (run it from a scheduler after `incidents sweep`): start the
    /// redrives resolved incidents are due (the policy's categories, the health gate),
    /// then send for at most --seconds.
    Run {
        /// How long to send.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// The bucket of the reports (default: REPORT_BUCKET).
        #[arg(long)]
        bucket: Option<String>,
        /// Their prefix (default: REPORT_PREFIX, else genesys-dlq/).
        #[arg(long)]
        prefix: Option<String>,
    },
}

/// Why a `redrive` action could not be done: the line printed on standard error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedriveCommandError {
    /// Neither `--table` nor `INCIDENT_TABLE`.
    #[error("no incident table: give --table or set INCIDENT_TABLE")]
    NoTable,
    /// `start` or `run` without `--bucket` or `REPORT_BUCKET`.
    #[error("no report bucket: give --bucket or set REPORT_BUCKET")]
    NoBucket,
    /// A `REDRIVE*` variable that does not parse.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The incident table could not be read.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The run could not be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The redriver refused or failed the action.
    #[error(transparent)]
    Redrive(#[from] RedriveError),
    /// `status` of an incident without a run.
    #[error("incident {0} has no redrive")]
    NoRun(String),
    /// `start` of a key the table does not hold.
    #[error("no incident {0} in the table")]
    NoIncident(String),
    /// `start` of an item that does not read as an incident.
    #[error("incident {key} cannot be read: {why}")]
    Unreadable { key: String, why: ItemError },
    /// `run` met errors (each logged).
    #[error("{0} redrive error(s); see the log (RUST_LOG=info)")]
    Errors(usize),
}

/// Each call is bounded.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the action; `Err` with one line when it cannot be done.
pub async fn redrive(args: RedriveArgs, config: CliConfig) -> Result<(), CommandFailure> {
    act(args, config).await.map_err(CommandFailure::of)
}

/// [`redrive`], its failures typed.
async fn act(args: RedriveArgs, config: CliConfig) -> Result<(), RedriveCommandError> {
    let table = args
        .table
        .clone()
        .or_else(|| config.incident_table.clone())
        .ok_or(RedriveCommandError::NoTable)?;
    let get = |name: &str| std::env::var(name).ok();
    let mut env = Env::new(&get);
    let policy = redrive_policy(&mut env);
    env.finish()?;
    let sdk = super::bounded_sdk(Duration::from_secs(10), CALL_TIMEOUT).await;
    let (bucket, prefix) = match &args.action {
        RedriveAction::Start { bucket, prefix, .. } | RedriveAction::Run { bucket, prefix, .. } => {
            (bucket.clone(), prefix.clone())
        }
        _ => (None, None),
    };
    let reports = ReportArg::Prefix {
        bucket: bucket.or_else(|| get("REPORT_BUCKET")).unwrap_or_default(),
        prefix: prefix
            .or_else(|| get("REPORT_PREFIX"))
            .unwrap_or_else(|| "genesys-dlq/".to_owned()),
    };
    let path_style = crate::artifacts::path_style_from_env();
    let redriver = wiring::build(
        policy,
        &table,
        reports.clone(),
        config.notify_event_bus.clone(),
        &sdk,
        path_style,
    );
    let now = Utc::now();
    let table_of = || DynamoTable::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    if matches!(&reports, ReportArg::Prefix { bucket, .. } if bucket.is_empty())
        && matches!(
            args.action,
            RedriveAction::Start { .. } | RedriveAction::Run { .. }
        )
    {
        return Err(RedriveCommandError::NoBucket);
    }
    let run = match &args.action {
        RedriveAction::Status { key } => redriver
            .journal()
            .run(key)
            .await?
            .ok_or_else(|| RedriveCommandError::NoRun(key.clone()))?,
        RedriveAction::Start { key, .. } => start(&redriver, &table_of(), key).await?,
        RedriveAction::Run { seconds, .. } => {
            return work(&redriver, &table_of(), *seconds).await;
        }
        RedriveAction::Pause { key } => control(&redriver, key, RunControl::Pause, now).await?,
        RedriveAction::Resume { key } => control(&redriver, key, RunControl::Resume, now).await?,
        RedriveAction::Cancel { key } => control(&redriver, key, RunControl::Cancel, now).await?,
    };
    show(&run, args.json);
    Ok(())
}

/// `run`: the resolved incidents considered, the running redrives worked for `seconds`.
async fn work(
    redriver: &Redriver,
    table: &DynamoTable,
    seconds: u64,
) -> Result<(), RedriveCommandError> {
    let resolved = table.list(Some(State::Resolved)).await?;
    let mut worked = redriver.consider(&resolved, Utc::now()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds) + SLICE_MARGIN;
    let done = redriver.work(deadline).await;
    worked.sent += done.sent;
    worked.paused += done.paused;
    worked.finished += done.finished;
    worked.errors += done.errors;
    Stdout::new().line(serde_json::to_string(&worked).unwrap_or_default());
    if worked.errors > 0 {
        return Err(RedriveCommandError::Errors(worked.errors));
    }
    Ok(())
}

async fn start(
    redriver: &Redriver,
    table: &DynamoTable,
    key: &str,
) -> Result<Run, RedriveCommandError> {
    let item = match table.get(key).await? {
        Some(Stored::Item(item)) => *item,
        Some(Stored::Unreadable { why, .. }) => {
            return Err(RedriveCommandError::Unreadable {
                key: key.to_owned(),
                why,
            });
        }
        None => return Err(RedriveCommandError::NoIncident(key.to_owned())),
    };
    Ok(redriver.start(&item, Utc::now()).await?)
}

async fn control(
    redriver: &Redriver,
    key: &str,
    what: RunControl,
    now: chrono::DateTime<Utc>,
) -> Result<Run, RedriveCommandError> {
    Ok(redriver.control(key, what, now).await?)
}

/// The run, as lines (or JSON).
fn show(run: &Run, json: bool) {
    let mut out = Stdout::new();
    if json {
        out.line(serde_json::to_string_pretty(run).unwrap_or_default());
        return;
    }
    out.line(format_args!(
        "incident:      {} (episode {})",
        run.incident, run.episode
    ));
    out.line(format_args!("state:         {}", run.state().as_str()));
    if let Some(why) = &run.why {
        out.line(format_args!("why:           {why}"));
    }
    out.line(format_args!("target:        {}", run.target_arn));
    out.line(format_args!(
        "progress:      attempt {} of every event, {} of {} done",
        run.pass, run.cursor, run.total
    ));
    out.line(format_args!(
        "sent {}, failed again {}, gave up {}, skipped as too old {}",
        run.sent, run.failed_again, run.gave_up, run.skipped_too_old
    ));
    out.line(format_args!(
        "pace:          {} per second (about {} s left)",
        run.rate,
        run.expected_seconds()
    ));
    for line in when(run, Utc::now().timestamp_millis()) {
        out.line(line);
    }
}

/// When it started and by whom, whether a container works it now, and what it waits for.
fn when(run: &Run, now: i64) -> Vec<String> {
    let at = |ms: i64| crate::incidents::rfc3339(ms).unwrap_or_else(|| "—".into());
    let by = if run.by_hand {
        "by a person (redrive start)"
    } else {
        "by the policy (REDRIVE=auto)"
    };
    let mut lines = vec![format!("started:       {} {by}", at(run.started_at))];
    if let Some(p) = run.paused_at.filter(|_| run.state() == RunState::Paused) {
        lines.push(format!("paused:        {}", at(p)));
    }
    if run.held {
        lines.push("held:          by a person: only `redrive resume` goes on".to_owned());
    }
    if let Some(e) = run.ended_at.filter(|_| run.state().ended()) {
        lines.push(format!("ended:         {}", at(e)));
    }
    if run.lease_until > now {
        lines.push(format!(
            "worked now:    by a container, its lease until {}",
            at(run.lease_until)
        ));
    }
    if let Some(phase) = &run.unannounced {
        lines.push(format!(
            "owed:          its `{phase}` event (the bus refused it; the next slice puts it again)"
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_says_the_line_an_operator_reads() {
        let lines = [
            (
                RedriveCommandError::NoTable,
                "no incident table: give --table or set INCIDENT_TABLE",
            ),
            (
                RedriveCommandError::NoBucket,
                "no report bucket: give --bucket or set REPORT_BUCKET",
            ),
            (
                RedriveCommandError::NoRun("K".into()),
                "incident K has no redrive",
            ),
            (
                RedriveCommandError::NoIncident("K".into()),
                "no incident K in the table",
            ),
            (
                RedriveCommandError::Unreadable {
                    key: "K".into(),
                    why: ItemError::Missing { attr: "state" },
                },
                "incident K cannot be read: state is missing",
            ),
            (
                RedriveCommandError::Errors(2),
                "2 redrive error(s); see the log (RUST_LOG=info)",
            ),
        ];
        for (error, line) in lines {
            assert_eq!(
                CommandFailure::of(error),
                CommandFailure {
                    message: line.to_owned(),
                    status: 1
                }
            );
        }
    }
}
