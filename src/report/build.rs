//! The per-batch report from its records: the [`Aggregate`] of its records projected into
//! the report's summary (totals, span, incidents), plus the counts only the report keeps
//! (by event type and by correlation status).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::aggregate::{Aggregate, Tally, fmt_time};
use super::schema::{
    BatchIncident, BatchSummary, INCIDENT_CONVERSATION_IDS, Report, SCHEMA_VERSION, TriageRecord,
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
        let aggregate = Aggregate::of_records(&records, None);
        let total_failures = aggregate.total;
        let summary = summarize(&records, aggregate);
        Report {
            schema_version: SCHEMA_VERSION,
            report_id,
            generated_at: fmt_time(generated_at),
            total_failures,
            summary,
            records,
        }
    }
}

/// The report's summary: `aggregate` (of `records`) projected, and the counts by event type
/// and correlation status.
fn summarize(records: &[TriageRecord], aggregate: Aggregate<&str>) -> BatchSummary {
    let mut by_event_type = BTreeMap::new();
    let mut by_interaction_status = BTreeMap::new();
    for r in records {
        let n = r.event_count.max(1);
        match &r.event_type {
            Some(t) => count(&mut by_event_type, t, n),
            None => count(
                &mut by_event_type,
                &format!("({})", r.body_kind.as_str()),
                n,
            ),
        }
        count(&mut by_interaction_status, r.interaction_info.status(), n);
    }
    let mut summary = BatchSummary {
        by_target: aggregate.by_target(),
        by_category: aggregate.by_category,
        by_event_type,
        by_interaction_status,
        conversations: aggregate.conversations.len(),
        first_seen: aggregate.first.map(fmt_time),
        last_seen: aggregate.last.map(fmt_time),
        incidents: aggregate
            .incidents
            .sorted()
            .into_iter()
            .map(|(category, target, tally)| incident(category, target, tally))
            .collect(),
        target_inputs: BTreeMap::new(),
    };
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

/// One incident of the report: its [`Tally`] as `report.json` writes it.
fn incident(category: FailureCategory, target: Option<&str>, tally: Tally<&str>) -> BatchIncident {
    let (recommended_action, replay_as_is) = tally.advice(category);
    let (first_seen, last_seen) = tally.span();
    let mut conversation_ids: Vec<&str> = tally.conversations.iter().copied().collect();
    conversation_ids.sort_unstable();
    conversation_ids.truncate(INCIDENT_CONVERSATION_IDS);
    BatchIncident {
        category,
        target_arn: target.map(str::to_owned),
        error_code: tally.top_code().map(str::to_owned),
        error_codes: tally.error_codes(),
        count: tally.count,
        first_seen,
        last_seen,
        conversations: tally.conversations.len(),
        recommended_action,
        replay_as_is,
        http_statuses: tally.http_statuses(),
        sample_error_message: tally.errors.first().map(|e| (*e).to_owned()),
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
    use crate::report::schema::NO_TARGET;
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
    fn the_report_counts_at_the_dead_letter_time_not_the_events_own() {
        // Events of 03:00 that EventBridge retried for hours and dead-lettered at 09:00.
        let at = |id, event: &str, sent: Option<&str>| {
            let mut r = record(id, RateLimitExceeded, Some(API), Some("THROTTLING"), event);
            r.sent_timestamp = sent.map(str::to_owned);
            r
        };
        let report = build(vec![
            at("a", "2026-11-28T03:00:00Z", Some("2026-11-28T09:00:00Z")),
            at("b", "2026-11-28T03:30:00Z", Some("1764320400000")), // 2025-11-28T09:00:00Z
            at("c", "2026-11-28T04:00:00Z", Some("2026-11-28T09:10:00Z")),
            // No sentTimestamp: the event's own time is all there is.
            at("d", "2026-11-28T09:20:00Z", None),
        ]);
        let summary = &report.summary;
        assert_eq!(summary.first_seen.as_deref(), Some("2025-11-28T09:00:00Z"));
        assert_eq!(summary.last_seen.as_deref(), Some("2026-11-28T09:20:00Z"));
        let incident = &summary.incidents[0];
        assert_eq!(incident.first_seen, summary.first_seen);
        assert_eq!(incident.last_seen, summary.last_seen);
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
