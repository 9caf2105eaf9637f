//! Aggregation: records in, the report's summary and incidents out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};

use super::schema::{
    INCIDENT_CONVERSATION_IDS, Incident, NO_TARGET, Report, SAMPLE_IDS, SCHEMA_VERSION, Summary,
    TriageRecord,
};
use crate::classify::FailureCategory;

/// Parses a record timestamp for ordering; both RFC 3339 strings and epoch milliseconds.
/// A record timestamp: RFC 3339, or epoch milliseconds.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    s.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The earliest and latest of a set of timestamps.
#[derive(Default)]
struct TimeRange(Option<(DateTime<Utc>, DateTime<Utc>)>);

impl TimeRange {
    fn add(&mut self, t: Option<DateTime<Utc>>) {
        if let Some(t) = t {
            self.0 = Some(match self.0 {
                None => (t, t),
                Some((a, b)) => (a.min(t), b.max(t)),
            });
        }
    }
    fn first(&self) -> Option<String> {
        self.0.map(|(a, _)| fmt_time(a))
    }
    fn last(&self) -> Option<String> {
        self.0.map(|(_, b)| fmt_time(b))
    }
}

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
        struct Acc<'a> {
            count: usize,
            span: TimeRange,
            samples: Vec<&'a str>,
            codes: BTreeMap<&'a str, usize>,
            statuses: BTreeSet<u16>,
            message: Option<&'a str>,
            conversations: BTreeSet<&'a str>,
        }
        let mut by_category = BTreeMap::new();
        let mut by_target = BTreeMap::new();
        let mut by_event_type = BTreeMap::new();
        let mut by_interaction_status = BTreeMap::new();
        let mut conversations = BTreeSet::new();
        let mut span = TimeRange::default();
        let mut groups: HashMap<(FailureCategory, Option<&str>), Acc> = HashMap::new();
        let mut order = Vec::new();
        for r in &records {
            let n = r.event_count.max(1);
            *by_category.entry(r.failure_category).or_insert(0) += n;
            count(
                &mut by_target,
                r.failure.target_arn.as_deref().unwrap_or(NO_TARGET),
                n,
            );
            match &r.event_type {
                Some(t) => count(&mut by_event_type, t, n),
                None => count(
                    &mut by_event_type,
                    &format!("({})", r.body_kind.as_str()),
                    n,
                ),
            }
            count(&mut by_interaction_status, r.interaction_info.status(), n);
            if let Some(id) = &r.interaction_id {
                conversations.insert(id.as_str());
            }
            let t = r.timestamp.as_deref().and_then(parse_time);
            span.add(t);
            let key = (r.failure_category, r.failure.target_arn.as_deref());
            let acc = groups.entry(key).or_insert_with(|| {
                order.push(key);
                Acc {
                    count: 0,
                    span: TimeRange::default(),
                    samples: Vec::new(),
                    codes: BTreeMap::new(),
                    statuses: BTreeSet::new(),
                    message: None,
                    conversations: BTreeSet::new(),
                }
            });
            acc.count += n;
            acc.span.add(t);
            if acc.samples.len() < SAMPLE_IDS {
                acc.samples.push(&r.message_id);
            }
            if let Some(code) = r.failure.error_code.as_deref() {
                *acc.codes.entry(code).or_default() += n;
            }
            acc.statuses.extend(r.http_status);
            acc.message = acc.message.or(r.failure.error_message.as_deref());
            if let Some(id) = &r.interaction_id {
                acc.conversations.insert(id);
            }
        }
        let mut incidents: Vec<Incident> = order
            .iter()
            .map(|key| {
                let acc = &groups[key];
                let (category, target) = *key;
                // The code seen most (the first by name on a tie) names the incident and
                // gives its advice; every code is listed with its count.
                let code = acc
                    .codes
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                    .map(|(c, _)| *c);
                let (action, as_is) = category.advice(code);
                Incident {
                    category,
                    target_arn: target.map(str::to_owned),
                    error_code: code.map(str::to_owned),
                    error_codes: acc.codes.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
                    count: acc.count,
                    first_seen: acc.span.first(),
                    last_seen: acc.span.last(),
                    conversations: acc.conversations.len(),
                    sample_message_ids: acc.samples.iter().map(|s| s.to_string()).collect(),
                    recommended_action: action.to_owned(),
                    replay_as_is: as_is.to_owned(),
                    http_statuses: acc.statuses.iter().copied().collect(),
                    sample_error_message: acc.message.map(str::to_owned),
                    conversation_ids: acc
                        .conversations
                        .iter()
                        .take(INCIDENT_CONVERSATION_IDS)
                        .map(|s| s.to_string())
                        .collect(),
                }
            })
            .collect();
        // Largest first; ties in a stable, readable order.
        incidents.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.category.cmp(&b.category))
                .then(a.target_arn.cmp(&b.target_arn))
        });
        let summary = Summary {
            by_category,
            by_target,
            by_event_type,
            by_interaction_status,
            conversations: conversations.len(),
            first_seen: span.first(),
            last_seen: span.last(),
            incidents,
            target_inputs: BTreeMap::new(),
        };
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

#[cfg(test)]
mod tests {
    use super::*;
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
        for i in 0..(SAMPLE_IDS + 3) {
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
        assert_eq!(incident.sample_message_ids.len(), SAMPLE_IDS);
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
