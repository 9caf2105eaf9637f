//! The `DLQ Triage Incident` event: what a pager and a chat message need about one
//! transition, without another look-up. Its fields are contract (docs/contract.md).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Change, IncidentItem, Transition};
use crate::classify::FailureCategory;
use crate::report::{fmt_time, s3_console_link, shell_word, short_arn};

/// The event's `detail-type`.
pub const DETAIL_TYPE: &str = "DLQ Triage Incident";

/// The longest `summary`, in characters.
const SUMMARY_MAX: usize = 1024;

/// What the commands say in place of where the reports are when nothing names it: the
/// reader puts their own (`s3://bucket/prefix/`, or a folder).
pub(crate) const REPORTS: &str = "REPORTS";

/// Where the event points: the reports (for the commands) and the console's region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventContext {
    /// Where `summarize` and `replay` find the reports (`s3://bucket/prefix/`, or a
    /// folder) when the incident names no report of its own; `None` when no bucket is
    /// known: the commands then say [`REPORTS`], never an address that leads nowhere.
    pub reports: Option<String>,
    /// The AWS region of the console links.
    pub region: String,
}

/// The folder or prefix that holds the reports, from one report's address:
/// `s3://b/genesys-dlq/reports/dt=…/x.json` → `s3://b/genesys-dlq/`.
fn reports_root(report: &str) -> Option<&str> {
    report.rfind("reports/").map(|i| &report[..i])
}

/// Epoch milliseconds as RFC 3339 to the second.
pub(crate) fn rfc3339(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(fmt_time)
}

/// The S3 console's page of an `s3://bucket/key` URI.
fn console_link(uri: &str, region: &str) -> Option<String> {
    let (bucket, key) = uri.strip_prefix("s3://")?.split_once('/')?;
    Some(s3_console_link(bucket, key, region))
}

/// The event's `detail` for `change`.
pub fn detail(change: &Change, ctx: &EventContext) -> Value {
    let item = &change.item;
    let (first, last) = (rfc3339(item.first_seen), rfc3339(item.last_seen));
    let (summarize, replay) = commands(item, ctx.reports.as_deref().unwrap_or(REPORTS));
    let report = item.report.as_ref().map(|r| {
        json!({
            "json": r.json,
            "markdown": r.markdown,
            "html": r.html,
            "consoleLinks": {
                "json": console_link(&r.json, &ctx.region),
                "markdown": console_link(&r.markdown, &ctx.region),
                "html": r.html.as_deref().and_then(|h| console_link(h, &ctx.region)),
            },
        })
    });
    let category = FailureCategory::ALL
        .into_iter()
        .find(|c| c.as_str() == item.category);
    let state = match change.transition {
        Transition::Resolved => "resolved",
        _ => "open",
    };
    let mut detail = json!({
        "incidentKey": item.key,
        "transition": change.transition.as_str(),
        "state": state,
        "seq": change.seq,
        "episode": change.episode,
        "dedupKey": item.dedup_key(change.episode),
        "severity": severity(category),
        "category": item.category,
        "targetArn": item.target_arn,
        "rules": item.rules,
        "firstSeen": first,
        "lastSeen": last,
        "count": item.count,
        "countSinceLastEvent": change.since_last,
        "peakPerMinute": item.peak(),
        "errorCodes": item.codes,
        "sampleErrors": item.sample_errors,
        "httpStatuses": item.http_statuses,
        "conversations": item.conversations,
        "recommendedAction": category.map(FailureCategory::recommended_action),
        "acknowledged": item.acknowledged_at.is_some() && item.episode == change.episode,
        "silencedUntil": item.silenced_until.and_then(rfc3339),
        "report": report,
        "commands": {"summarize": summarize, "replay": replay},
        "summary": summary(change),
    });
    if change.transition == Transition::Resolved {
        detail["durationSeconds"] = json!((item.last_seen - item.first_seen).max(0) / 1000);
        detail["total"] = json!(item.count);
        detail["resolvedBy"] = json!(if change.by_hand {
            "hand"
        } else {
            "quiet period"
        });
        detail["resolvedAt"] = json!(item.resolved_at.and_then(rfc3339));
    }
    if change.rewritten {
        detail["rewritten"] = json!(true);
    }
    if item.replayed > 0 {
        // A replay that failed again: the same incident, said so.
        detail["replayFailures"] = json!(item.replayed);
        detail["replays"] = json!(item.replays);
    }
    detail
}

/// The severity a pager routes on, by category (`None`: a category this version does
/// not know): the documented table of docs/contract.md.
pub(super) fn severity(category: Option<FailureCategory>) -> &'static str {
    match category {
        // Nothing gets through until someone fixes access or the target.
        Some(
            FailureCategory::PermissionDenied
            | FailureCategory::AuthenticationRejected
            | FailureCategory::TargetNotFound,
        ) => "critical",
        // Throttling passes by itself; the events wait in the queue.
        Some(FailureCategory::RateLimitExceeded) => "warning",
        Some(
            FailureCategory::EndpointUnreachable
            | FailureCategory::TargetError
            | FailureCategory::PayloadMalformed
            | FailureCategory::RoutingRejected
            | FailureCategory::Unknown,
        ) => "error",
        None => "info",
    }
}

/// `dlq-triage summarize` and `dlq-triage replay` of exactly `item`'s failures: its
/// category, target and first to last failure, over the reports its latest report sits
/// among (else `reports`).
pub(crate) fn commands(item: &IncidentItem, reports: &str) -> (String, String) {
    let mut filters = vec![format!("--category {}", item.category)];
    if let Some(t) = &item.target_arn {
        filters.push(format!("--target {}", shell_word(t)));
    }
    if let Some(first) = rfc3339(item.first_seen) {
        filters.push(format!("--since {first}"));
    }
    // Up to the second after the last failure: the filter takes whole seconds, the dead
    // letters' times have milliseconds.
    if let Some(last) = rfc3339((item.last_seen + 999).div_euclid(1000) * 1000) {
        filters.push(format!("--until {last}"));
    }
    let root = item
        .report
        .as_ref()
        .and_then(|r| reports_root(&r.json))
        .unwrap_or(reports);
    let source = shell_word(root);
    let filters = filters.join(" ");
    (
        format!("dlq-triage summarize {source} {filters}"),
        format!("dlq-triage replay {source} {filters} --to-target"),
    )
}

/// One line for a pager or a chat message, at most [`SUMMARY_MAX`] characters.
fn summary(change: &Change) -> String {
    let item = &change.item;
    let target = item
        .target_arn
        .as_deref()
        .map(short_arn)
        .unwrap_or_else(|| "(no target)".to_owned());
    let when = match (rfc3339(item.first_seen), rfc3339(item.last_seen)) {
        (Some(a), Some(b)) => format!(" from {a} to {b}"),
        _ => String::new(),
    };
    let what = match change.transition {
        Transition::Opened => "Opened",
        Transition::Reopened => "Reopened",
        Transition::Updated => "Still failing",
        Transition::Resolved if change.by_hand => "Resolved by hand",
        Transition::Resolved => "Resolved (quiet)",
    };
    let mut line = format!(
        "{what}: {} against {target}: {} failed events{when} ({} since the last event, peak {}/min)",
        item.category,
        item.count,
        change.since_last,
        item.peak()
    );
    if item.replayed > 0 {
        let names: Vec<&str> = item.replays.iter().map(String::as_str).collect();
        line.push_str(&format!(
            "; a replay failed again: {} of them from {}",
            item.replayed,
            names.join(", ")
        ));
    }
    if let Some(e) = item.sample_errors.first() {
        line.push_str("; e.g. ");
        line.push_str(e);
    }
    // One line: control characters (newlines in an error message) become spaces.
    let line: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::text::truncate(&line, SUMMARY_MAX - 1)
}
