//! `dlq-triage recover`: events lost beyond the dead-letter queue, replayed from the
//! rule's bus archive to that rule alone. A dry run unless `--execute`. What is detected
//! and how the window is chosen: [`crate::recover`].

use std::time::Duration;

use clap::Args;

use super::{CommandFailure, EXIT_EMPTY_INPUT, Stdout};
use crate::recover::{self, Clients, RecoveryPlan, ReplayRequest, Started, rfc3339, rule_and_bus};
use crate::reports::parse_when;

/// `dlq-triage recover --rule ARN --since T --until T [--archive NAME] [--event-age S]
/// [--ignore-archive-lag] [--execute]`.
#[derive(Debug, Clone, Args)]
pub struct RecoverArgs {
    /// The rule whose events were lost (its ARN names the region and the bus).
    #[arg(long, value_name = "ARN")]
    pub rule: String,
    /// Search from this time (when EventBridge gave up on the events): RFC 3339, or a
    /// duration back from now (90m, 6h, 7d).
    #[arg(long, value_name = "T")]
    pub since: String,
    /// Search until this time (same forms as --since).
    #[arg(long, value_name = "T")]
    pub until: String,
    /// The archive to replay from (default: the only archive of the rule's bus that holds
    /// the window).
    #[arg(long, value_name = "NAME")]
    pub archive: Option<String>,
    /// How long before it failed an event may have happened, in seconds (default: the
    /// longest MaximumEventAgeInSeconds of the rule's targets, 86400 without a retry
    /// policy). The replay window starts this much before the first loss.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(0..=86_400))]
    pub event_age: Option<i64>,
    /// Start the replay even though a window ended less than 10 minutes ago (events
    /// reach the archive late; AWS advises waiting).
    #[arg(long)]
    pub ignore_archive_lag: bool,
    /// Call StartReplay; without it nothing is started.
    #[arg(long)]
    pub execute: bool,
}

/// Runs `recover`: exit 0 when the plan was printed (and, with `--execute`, the replays
/// started or found started), [`EXIT_EMPTY_INPUT`] when nothing was lost in the period, 1
/// on an error.
pub async fn recover(args: RecoverArgs) -> Result<(), CommandFailure> {
    let now = chrono::Utc::now();
    let when = |flag: &str, v: &str| parse_when(v, now).map_err(|e| format!("{flag} {e}"));
    let (since, until) = (when("--since", &args.since)?, when("--until", &args.until)?);
    if since >= until {
        return Err(CommandFailure::from(
            "--since must be earlier than --until".to_owned(),
        ));
    }
    let (rule, _) = rule_and_bus(&args.rule).map_err(|e| e.to_string())?;
    let timeout = Duration::from_secs(15);
    let sdk = super::bounded_sdk(timeout, timeout * 2).await;
    let clients = Clients::new(&sdk, &rule.region);
    let request = ReplayRequest {
        rule: args.rule.clone(),
        since: since.timestamp(),
        until: until.timestamp(),
        archive: args.archive.clone(),
        event_age: args.event_age,
        now: now.timestamp(),
    };
    let plan = recover::plan(&clients, &request)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Stdout::new();
    print_plan(&plan, &request, &rule.name, &mut out);
    if plan.windows.is_empty() {
        return Err(CommandFailure {
            message: format!(
                "nothing lost by rule {} from {} to {}: nothing to replay",
                rule.name,
                rfc3339(request.since),
                rfc3339(request.until)
            ),
            status: EXIT_EMPTY_INPUT,
        });
    }
    if !args.execute {
        out.line("dry run: nothing was started; add --execute to call StartReplay for each window");
        return Ok(());
    }
    if !args.ignore_archive_lag {
        recover::check_lag(&plan, request.now).map_err(|e| e.to_string())?;
    }
    let deadline = tokio::time::Instant::now() + recover::TOTAL_TIMEOUT;
    let (started, failed) = recover::start(&clients.events, &plan, &rule.name, deadline).await;
    print_started(&started, &plan.region, &mut out);
    match failed {
        Some(e) => Err(CommandFailure::of(e)),
        None => Ok(()),
    }
}

/// What `--execute` did, window part by window part, with how to follow each replay.
fn print_started(started: &[Started], region: &str, out: &mut Stdout) {
    for s in started {
        let (name, what) = match s {
            Started::Now(name, state) => (name, format!("started replay {name} ({state})")),
            Started::Already(name) => (
                name,
                format!(
                    "replay {name} exists already (started by an earlier run): not started again"
                ),
            ),
            Started::Covered { start, end, by } => {
                out.line(format!(
                    "{} to {}: replayed already by {}: not replayed again",
                    rfc3339(*start),
                    rfc3339(*end),
                    by.join(", ")
                ));
                continue;
            }
        };
        out.line(what);
        out.line(format!(
            "  follow it: aws events describe-replay --replay-name {name} --region {region} (State COMPLETED when done; EventLastReplayedTime is how far it got)"
        ));
    }
}

/// The dry run's lines: the rule, what was lost where, the archive, each window with its
/// matched events, and the archive-lag advice.
fn print_plan(plan: &RecoveryPlan, request: &ReplayRequest, rule_name: &str, out: &mut Stdout) {
    out.line(format!("rule: {} (bus {})", plan.rule, plan.bus_arn));
    out.line(format!(
        "searched: {} to {} (when EventBridge gave up on the events); {}",
        rfc3339(request.since),
        rfc3339(request.until),
        plan.found_under.join("; ")
    ));
    for q in &plan.queues {
        let kept = q.retention.map_or("retention unknown".to_owned(), |r| {
            format!("keeps messages {r} s")
        });
        match &q.drained_by {
            Some(f) => out.line(format!("dead-letter queue {}: {kept}; drained by {f}: its dead letters were consumed (and stored), not expired", q.arn)),
            None => out.line(format!("dead-letter queue {}: {kept}; nothing drains it: dead letters older than that have expired from it", q.arn)),
        }
    }
    for note in &plan.notes {
        out.line(format!("note: {note}"));
    }
    let Some(archive) = &plan.archive else {
        return;
    };
    out.line(format!(
        "archive: {} ({}), {}, created {}, {}{}",
        archive.name,
        archive.arn.as_deref().unwrap_or("no ARN"),
        archive.state,
        archive.created.map_or("at an unknown time".into(), rfc3339),
        archive.retention(),
        archive
            .event_pattern
            .as_deref()
            .map_or(String::new(), |p| format!(
                ", event pattern {p} (only events it matched were archived)"
            ))
    ));
    out.line(format!(
        "each window starts {} s before its first loss ({}): StartReplay selects by the event's own time",
        plan.event_age.0, plan.event_age.1
    ));
    for (i, w) in plan.windows.iter().enumerate() {
        out.line(format!(
            "window {}: {} to {}: {} event(s) failed to reach the DLQ, {} dead letter(s) expired from it; the rule matched {} event(s) in the window (MatchedEvents: delivered events included, the replay sends them again); replay name {}",
            i + 1,
            rfc3339(w.start),
            rfc3339(w.end),
            w.lost,
            w.expired,
            w.matched.map_or("an unknown number of".into(), |m| m.to_string()),
            recover::replay_name(&plan.rule, rule_name, w)
        ));
        for (start, end, by) in recover::split(w.start, w.end, &plan.earlier).1 {
            out.line(format!(
                "  {} to {}: replayed already by {}: --execute replays only the rest of the window",
                rfc3339(start),
                rfc3339(end),
                by.join(", ")
            ));
        }
    }
    if let Some(end) = plan.windows.iter().map(|w| w.end).max() {
        out.line(format!(
            "AWS advises replaying a window only 10 minutes after its end (events reach the archive late): from {}",
            rfc3339(end + recover::ARCHIVE_LAG)
        ));
    }
}
