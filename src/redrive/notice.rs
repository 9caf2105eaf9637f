//! The `DLQ Triage Redrive` event's detail: `phase` (`started`, `progress`, `paused`,
//! `finished`), `incidentKey`, `dedupKey` and the run's counts. Never a payload, a header
//! or a secret.

use serde_json::{Value, json};

use super::journal::Run;

/// A phase of a run, as `detail.phase` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The run began (after the health gate): count, pace, expected duration.
    Started,
    /// At most every [`PROGRESS_EVERY`] while it runs.
    Progress,
    /// The breaker, the canary or a person stopped it: `why`.
    Paused,
    /// Every event sent, skipped or given up (or cancelled: `why`).
    Finished,
}

impl Phase {
    /// As the event spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Started => "started",
            Phase::Progress => "progress",
            Phase::Paused => "paused",
            Phase::Finished => "finished",
        }
    }
}

/// How often a running redrive says how far it got.
pub const PROGRESS_EVERY: chrono::Duration = chrono::Duration::minutes(15);

/// The detail of `phase` of `run`.
pub fn detail(phase: Phase, run: &Run) -> Value {
    let mut d = json!({
        "phase": phase.as_str(),
        "incidentKey": run.incident,
        "dedupKey": format!("{}#{}#redrive", run.incident, run.episode),
        "state": run.state().as_str(),
        "category": run.category,
        "targetArn": run.target_arn,
        "count": run.total,
        "pass": run.pass,
        "done": run.cursor,
        "sent": run.sent,
        "failedAgain": run.failed_again,
        "gaveUp": run.gave_up,
        "skippedTooOld": run.skipped_too_old,
        "ratePerSecond": run.rate,
        "expectedSeconds": run.expected_seconds(),
        "byHand": run.by_hand,
    });
    if let Some(why) = &run.why {
        d["why"] = Value::from(why.clone());
    }
    d
}
