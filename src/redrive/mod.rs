//! The health-gated, paced, journaled redrive of a resolved incident's dead letters
//! (`REDRIVE=auto`; `dlq-triage redrive …` for people).
//!
//! When an incident of a category the policy allows has resolved and its target is healthy
//! again ([`gate`]), a **run** starts: one item of the incident table
//! (`redrive#run#<incidentKey>`) that holds the redrive's state, its counts, where it is
//! (`pass`, `cursor`) and a lease. Each scheduled invocation works the running runs
//! ([`engine::Redriver::work`]) until its deadline less a margin — a slice — and leaves
//! the rest to the next one. Each event is journaled under
//! `redrive#<targetArn>#<eventId>` with conditional writes ([`journal`]): an attempt is
//! claimed before it is sent and its result recorded after, so an event is sent at most
//! once per attempt and at most `REDRIVE_ATTEMPTS` times, across containers, crashes and
//! retries. A canary goes first; a run pauses when the target fails again (a breaker) and
//! resumes after the incident resolves again. Every step is announced as a
//! `DLQ Triage Redrive` event ([`notice`]).

pub(crate) mod engine;
pub(crate) mod gate;
pub(crate) mod journal;
pub(crate) mod notice;
pub(crate) mod ports;
pub(crate) mod wiring;

mod dynamo;

use std::time::Duration;

use crate::classify::FailureCategory;

pub(crate) use dynamo::DynamoJournal;
pub(crate) use engine::{Redriver, Worked};
pub(crate) use journal::Run;

/// Whether the function redrives by itself (`REDRIVE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedriveMode {
    /// Never by itself (the default); `dlq-triage redrive` still shows and controls runs.
    Off,
    /// Resolved incidents of the policy's categories are redriven once their target is
    /// healthy.
    Auto,
}

/// The redrive policy (`REDRIVE`, `REDRIVE_CATEGORIES`, `REDRIVE_MAX_AGE_HOURS`,
/// `REDRIVE_ATTEMPTS`, `REDRIVE_SHARE`, `REDRIVE_RATE`).
#[derive(Debug, Clone, PartialEq)]
pub struct RedrivePolicy {
    /// `REDRIVE`: `off` (default) or `auto`.
    pub mode: RedriveMode,
    /// `REDRIVE_CATEGORIES`: the categories redriven automatically.
    pub categories: Vec<FailureCategory>,
    /// `REDRIVE_MAX_AGE_HOURS` (24): an event whose own `time` is older is skipped.
    pub max_age: chrono::Duration,
    /// `REDRIVE_ATTEMPTS` (3): attempts per event, in all.
    pub attempts: u32,
    /// `REDRIVE_SHARE` (0.5): the share of an API destination's
    /// `InvocationRateLimitPerSecond` a redrive may use.
    pub share: f64,
    /// `REDRIVE_RATE` (5): events per second for targets without a limit.
    pub rate: f64,
}

/// The categories that need no fix on our side: the target was busy, unreachable or
/// failed on its own, and says so.
pub(crate) const DEFAULT_CATEGORIES: [FailureCategory; 3] = [
    FailureCategory::RateLimitExceeded,
    FailureCategory::EndpointUnreachable,
    FailureCategory::TargetError,
];

impl Default for RedrivePolicy {
    fn default() -> Self {
        RedrivePolicy {
            mode: RedriveMode::Off,
            categories: DEFAULT_CATEGORIES.to_vec(),
            max_age: chrono::Duration::hours(24),
            attempts: 3,
            share: 0.5,
            rate: 5.0,
        }
    }
}

impl RedrivePolicy {
    /// Whether incidents of `category` are redriven without a person.
    pub fn allows(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c.as_str() == category)
    }

    /// The pace for a target: `share` of its limit when it has one, else `rate`.
    pub fn pace(&self, limit_per_second: Option<u32>) -> f64 {
        match limit_per_second {
            Some(limit) if limit > 0 => (f64::from(limit) * self.share).max(0.01),
            _ => self.rate,
        }
    }
}

/// The idempotency header each redriven HTTP request carries, set to the event's `id`.
pub(crate) const ID_HEADER: &str = "Idempotency-Key";

/// What a slice keeps free before the invocation's deadline.
pub(crate) const SLICE_MARGIN: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests;
