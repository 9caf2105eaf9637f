//! The health gate: whether a resolved incident's target is taking deliveries again. Asked
//! through the `TargetHealth` port over the time since the incident's last failure: the
//! incident's rules had no dead letters (`InvocationsSentToDlq`) and no `FailedInvocations`,
//! and an API destination's connection is `AUTHORIZED`. A look-up that failed is no
//! answer: the gate stays shut until one succeeds.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::health::{Bounds, HealthQuery, TargetHealth};
use crate::incidents::IncidentItem;
use crate::summarize::Health;

/// The gate's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GateVerdict {
    /// Whether to go on.
    pub open: bool,
    /// Why not (or what was found).
    pub why: String,
    /// The API destination's `InvocationRateLimitPerSecond`, when it has one.
    pub limit: Option<u32>,
}

/// Bounds of the look-up: each call, and all of it.
const BOUNDS: Bounds = Bounds {
    per_call: Duration::from_secs(3),
    total: Duration::from_secs(10),
};

/// Looks the health of `item`'s target up since its last failure and judges it.
pub(crate) async fn ask(
    health: &dyn TargetHealth,
    item: &IncidentItem,
    now: DateTime<Utc>,
) -> GateVerdict {
    // The same query as the incident's, over the quiet time after its last failure.
    let mut quiet = item.clone();
    quiet.first_seen = item.last_seen + 60_000;
    quiet.last_seen = now.timestamp_millis().max(quiet.first_seen);
    quiet.count = 0;
    let query = HealthQuery::of_incident(&quiet);
    let found = health.look_up(&query, None, BOUNDS).await;
    judge(&found, item)
}

/// The judgement of `health` for `item` (pure).
pub(crate) fn judge(health: &Health, item: &IncidentItem) -> GateVerdict {
    let target = item.target_arn.as_deref().unwrap_or_default();
    let limit = health
        .api_destinations
        .iter()
        .find(|a| a.arn == target)
        .and_then(|a| a.invocation_rate_limit_per_second);
    let shut = |why: String| GateVerdict {
        open: false,
        why,
        limit,
    };
    if let Some(u) = health.unavailable.first() {
        return shut(format!("the target's health could not be read: {u}"));
    }
    for rule in health
        .rules
        .iter()
        .filter(|r| item.rules.contains(&r.rule_arn))
    {
        for metric in ["InvocationsSentToDlq", "FailedInvocations"] {
            let n = rule.metrics.get(metric).copied().unwrap_or(0.0);
            if n > 0.0 {
                return shut(format!(
                    "rule {} had {n} {metric} since the incident's last failure",
                    rule.rule_name
                ));
            }
        }
    }
    if target.contains(":api-destination/") {
        let state = health
            .api_destinations
            .iter()
            .find(|a| a.arn == target)
            .and_then(|a| a.connection_state.clone());
        if state.as_deref() != Some("AUTHORIZED") {
            return shut(format!(
                "the API destination's connection is {}",
                state.as_deref().unwrap_or("of unknown state")
            ));
        }
    }
    GateVerdict {
        open: true,
        why: "no dead letters and no failed invocations since the last failure".to_owned(),
        limit,
    }
}
