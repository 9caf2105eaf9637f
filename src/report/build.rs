//! The per-batch report from its records: totals by category, target, event type and
//! correlation status, and the incidents (the aggregation shared with `summarize`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::aggregate::{Failure, Incidents, Tally, fmt_time, parse_time};
use super::schema::{
    BatchIncident, BatchSummary, INCIDENT_CONVERSATION_IDS, NO_TARGET, Report, SCHEMA_VERSION,
    TriageRecord,
};
use crate::classify::FailureCategory;

/// Adds `n` to `key`'s count; the key is copied only the first time it is seen.
fn count(counts: &mut BTreeMap<String, usize>, key: &str, n: usize) {
    match counts.get_mut(key) {
        Some(c) => *c += n,
        None => {
            counts.insert(key.to_owned(), n);
        }
    }
}

impl Report {
    /// Aggregates records into a report.
    pub fn build(
        report_id: String,
        generated_at: DateTime<Utc>,
        records: Vec<TriageRecord>,
    ) -> Report {
        let summary = summarize(&records);
        Report {
            schema_version: SCHEMA_VERSION,
            report_id,
            generated_at: fmt_time(generated_at),
            total_failures: records.iter().map(|r| r.event_count.max(1)).sum(),
            summary,
            records,
        }
    }
}

/// The report's summary of `records`.
fn summarize(records: &[TriageRecord]) -> BatchSummary {
    let mut summary = BatchSummary {
        by_category: BTreeMap::new(),
        by_target: BTreeMap::new(),
        by_event_type: BTreeMap::new(),
        by_interaction_status: BTreeMap::new(),
        conversations: 0,
        first_seen: None,
        last_seen: None,
        incidents: Vec::new(),
        target_inputs: BTreeMap::new(),
    };
    let mut conversations = BTreeSet::new();
    let mut span: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    let mut incidents = Incidents::default();
    for r in records {
        let n = r.event_count.max(1);
        count_totals(&mut summary, r, n);
        conversations.extend(r.interaction_id.as_deref());
        let at = r.timestamp.as_deref().and_then(parse_time);
        if let Some(t) = at {
            span = Some(span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        }
        let failure = Failure {
            id: &r.message_id,
            at,
            events: n,
            code: r.failure.error_code.as_deref(),
            http_status: r.http_status,
            conversation: r.interaction_id.as_deref(),
            error: r.failure.error_message.as_deref(),
            rule: None,
        };
        incidents.add(r.failure_category, r.failure.target_arn.as_deref(), failure);
    }
    summary.conversations = conversations.len();
    summary.first_seen = span.map(|(a, _)| fmt_time(a));
    summary.last_seen = span.map(|(_, b)| fmt_time(b));
    summary.incidents = incidents
        .sorted()
        .into_iter()
        .map(|(category, target, tally)| incident(category, target, tally))
        .collect();
    count_replays(&mut summary.incidents, records);
    summary
}

/// Each incident's failed events that came from archive replays, and the replays' names.
fn count_replays(incidents: &mut [BatchIncident], records: &[TriageRecord]) {
    for r in records {
        let Some(name) = &r.replay_name else { continue };
        let Some(incident) = incidents.iter_mut().find(|i| {
            i.category == r.failure_category
                && i.target_arn.as_deref() == r.failure.target_arn.as_deref()
        }) else {
            continue;
        };
        incident.replay_failures += r.event_count.max(1);
        if let Err(at) = incident.replay_names.binary_search(name) {
            incident.replay_names.insert(at, name.clone());
        }
    }
}

/// Counts record `r`, standing for `n` failed events, into the totals.
fn count_totals(summary: &mut BatchSummary, r: &TriageRecord, n: usize) {
    *summary.by_category.entry(r.failure_category).or_insert(0) += n;
    let target = r.failure.target_arn.as_deref().unwrap_or(NO_TARGET);
    count(&mut summary.by_target, target, n);
    match &r.event_type {
        Some(t) => count(&mut summary.by_event_type, t, n),
        None => count(
            &mut summary.by_event_type,
            &format!("({})", r.body_kind.as_str()),
            n,
        ),
    }
    count(
        &mut summary.by_interaction_status,
        r.interaction_info.status(),
        n,
    );
}

/// One incident of the report.
fn incident(category: FailureCategory, target: Option<&str>, tally: Tally<&str>) -> BatchIncident {
    let code = tally.top_code();
    let (action, as_is) = category.advice(code);
    let mut conversation_ids: Vec<&str> = tally.conversations.iter().copied().collect();
    conversation_ids.sort_unstable();
    conversation_ids.truncate(INCIDENT_CONVERSATION_IDS);
    BatchIncident {
        category,
        target_arn: target.map(str::to_owned),
        error_code: code.map(str::to_owned),
        error_codes: tally.error_codes(),
        count: tally.count,
        first_seen: tally.first.map(fmt_time),
        last_seen: tally.last.map(fmt_time),
        conversations: tally.conversations.len(),
        recommended_action: action.to_owned(),
        replay_as_is: as_is.to_owned(),
        http_statuses: tally.statuses.iter().copied().collect(),
        sample_error_message: tally.errors.first().map(|e| e.to_string()),
        conversation_ids: conversation_ids.into_iter().map(str::to_owned).collect(),
        sample_message_ids: tally.samples,
        replay_failures: 0,
        replay_names: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::aggregate::SAMPLES;
    use crate::report::fixtures::{record, report_of as build};
    use FailureCategory::*;

    const API: &str = "arn:aws:events:eu-west-1:111122223333:api-destination/crm/1";
    const FN: &str = "arn:aws:lambda:eu-west-1:111122223333:function:consumer";

    #[test]
    fn counts_by_category_target_and_event_type() {
        let report = build(vec![
            record(
                "a",
                RateLimitExceeded,
                Some(API),
                Some("THROTTLING"),
                "2026-11-28T09:00:00Z",
            ),
            record(
                "b",
                RateLimitExceeded,
                Some(API),
                Some("THROTTLING"),
                "2026-11-28T09:01:00Z",
            ),
            record("c", TargetError, None, None, "2026-11-28T09:02:00Z"),
        ]);
        assert_eq!(report.total_failures, 3);
        assert_eq!(report.summary.by_category[&RateLimitExceeded], 2);
        assert_eq!(report.summary.by_category[&TargetError], 1);
        assert_eq!(report.summary.by_target[API], 2);
        assert_eq!(report.summary.by_target[NO_TARGET], 1);
        assert_eq!(
            report.summary.by_event_type["v2.detail.events.conversation.{id}.customer.end"],
            3
        );
        assert_eq!(report.summary.by_interaction_status["noConversation"], 3);
    }

    #[test]
    fn a_custom_bus_summary_counts_every_event_it_stands_for() {
        let mut summary = record(
            "s",
            PermissionDenied,
            Some(API),
            Some("ACCESS_DENIED"),
            "2026-11-28T09:00:00Z",
        );
        summary.event_count = 4;
        let report = build(vec![
            summary,
            record(
                "a",
                PermissionDenied,
                Some(API),
                Some("ACCESS_DENIED"),
                "2026-11-28T09:00:00Z",
            ),
        ]);
        assert_eq!(report.total_failures, 5);
        assert_eq!(report.summary.by_category[&PermissionDenied], 5);
        assert_eq!(report.summary.by_target[API], 5);
        assert_eq!(report.summary.incidents[0].count, 5);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["records"][0]["eventCount"], 4);
        assert!(
            json["records"][1].get("eventCount").is_none(),
            "written only when not 1"
        );
    }

    #[test]
    fn incidents_group_by_category_and_target_with_their_codes_largest_first() {
        let report = build(vec![
            record(
                "a",
                TargetError,
                Some(FN),
                Some("ERROR_FROM_TARGET"),
                "2026-11-28T09:00:00Z",
            ),
            record(
                "b",
                RateLimitExceeded,
                Some(API),
                Some("THROTTLING"),
                "2026-11-28T09:05:00Z",
            ),
            record(
                "c",
                RateLimitExceeded,
                Some(API),
                Some("THROTTLING"),
                "2026-11-28T09:01:00Z",
            ),
            record(
                "d",
                RateLimitExceeded,
                Some(API),
                Some("UNKNOWN"),
                "2026-11-28T09:02:00Z",
            ),
        ]);
        let incidents = &report.summary.incidents;
        assert_eq!(incidents.len(), 2);
        assert_eq!(incidents[0].count, 3);
        assert_eq!(incidents[0].category, RateLimitExceeded);
        assert_eq!(incidents[0].error_code.as_deref(), Some("THROTTLING"));
        assert_eq!(
            incidents[0].error_codes,
            BTreeMap::from([("THROTTLING".to_owned(), 2), ("UNKNOWN".to_owned(), 1)])
        );
        assert_eq!(incidents[0].sample_message_ids, ["b", "c", "d"]);
        assert_eq!(
            incidents[0].first_seen.as_deref(),
            Some("2026-11-28T09:01:00Z")
        );
        assert_eq!(
            incidents[0].last_seen.as_deref(),
            Some("2026-11-28T09:05:00Z")
        );
        assert_eq!(
            incidents[0].recommended_action,
            RateLimitExceeded.recommended_action()
        );
        assert_eq!(incidents[1].category, TargetError);
    }

    #[test]
    fn times_in_rfc3339_and_epoch_milliseconds_both_bound_the_window() {
        let report = build(vec![
            record("a", Unknown, None, None, "1764320400000"), // 2025-11-28T09:00:00Z
            record("b", Unknown, None, None, "2026-11-28T09:30:00+01:00"),
            record("c", Unknown, None, None, "not a time"),
        ]);
        assert_eq!(
            report.summary.first_seen.as_deref(),
            Some("2025-11-28T09:00:00Z")
        );
        assert_eq!(
            report.summary.last_seen.as_deref(),
            Some("2026-11-28T08:30:00Z")
        );
    }

    #[test]
    fn samples_stop_at_the_limit_and_conversations_are_distinct() {
        let mut records = Vec::new();
        for i in 0..(SAMPLES + 3) {
            let mut r = record(
                &format!("m{i}"),
                TargetError,
                Some(FN),
                None,
                "2026-11-28T09:00:00Z",
            );
            r.interaction_id = Some(format!("c{}", i % 2));
            records.push(r);
        }
        let report = build(records);
        let incident = &report.summary.incidents[0];
        assert_eq!(incident.sample_message_ids.len(), SAMPLES);
        assert_eq!(incident.conversations, 2);
        assert_eq!(incident.conversation_ids, ["c0", "c1"]);
        assert_eq!(report.summary.conversations, 2);
    }

    #[test]
    fn the_json_names_follow_the_contract() {
        let report = build(vec![record(
            "a",
            TargetError,
            Some(FN),
            Some("E"),
            "2026-11-28T09:00:00Z",
        )]);
        let json: serde_json::Value =
            serde_json::from_slice(&report.to_json(false).unwrap()).unwrap();
        for field in [
            "schemaVersion",
            "reportId",
            "generatedAt",
            "totalFailures",
            "summary",
            "records",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
        let r = &json["records"][0];
        for field in [
            "messageId",
            "eventId",
            "timestamp",
            "eventType",
            "topicName",
            "source",
            "interactionId",
            "failureCategory",
            "evidence",
            "errorCode",
            "errorMessage",
            "httpStatus",
            "ruleArn",
            "targetArn",
            "retryAttempts",
            "exhaustedRetryCondition",
            "receiveCount",
            "replayPayloadKey",
            "replayEndpoint",
            "interactionInfo",
        ] {
            assert!(r.get(field).is_some(), "record field {field}");
        }
        assert_eq!(r["targetArn"], FN);
        assert_eq!(r["evidence"]["rule"], "errorCode");
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
