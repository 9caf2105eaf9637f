//! The `DLQ Triage Redrive` event's detail: `phase` (`started`, `progress`, `paused`,
//! `finished`), `incidentKey`, `dedupKey` and the run's counts. Never a payload, a header
//! or a secret.

use serde_json::{Value, json};

use super::journal::Run;

/// A phase of a run, as `detail.phase` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
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
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Started => "started",
            Phase::Progress => "progress",
            Phase::Paused => "paused",
            Phase::Finished => "finished",
        }
    }

    /// The phase `text` spells.
    pub(crate) fn parse(text: &str) -> Option<Phase> {
        [
            Phase::Started,
            Phase::Progress,
            Phase::Paused,
            Phase::Finished,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }
}

/// How often a running redrive says how far it got.
pub(crate) const PROGRESS_EVERY: chrono::Duration = chrono::Duration::minutes(15);

/// The detail of `phase` of `run`.
pub(crate) fn detail(phase: Phase, run: &Run) -> Value {
    let mut d = summary(run);
    d["phase"] = Value::from(phase.as_str());
    d["incidentKey"] = Value::from(run.incident.clone());
    d["dedupKey"] = Value::from(format!("{}#{}#redrive", run.incident, run.episode));
    d["category"] = Value::from(run.category.clone());
    d["targetArn"] = Value::from(run.target_arn.clone());
    d
}

/// Where `run` is and its counts, as the event's detail and `dlq-triage incidents` (the
/// `redrive` of each incident) show them.
pub(crate) fn summary(run: &Run) -> Value {
    let mut d = json!({
        "state": run.state().as_str(),
        "episode": run.episode,
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

/// `run` in one line, for `dlq-triage incidents`.
pub(crate) fn line(run: &Run) -> String {
    let mut line = format!(
        "redrive {}: {} of {} done (attempt {}), sent {}, failed again {}, gave up {}, \
         skipped as too old {}",
        run.state().as_str(),
        run.cursor,
        run.in_pass(),
        run.pass,
        run.sent,
        run.failed_again,
        run.gave_up,
        run.skipped_too_old
    );
    if let Some(why) = &run.why {
        line.push_str(" — ");
        line.push_str(why);
    }
    line
}
