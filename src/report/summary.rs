//! Aggregation: records in, the report's summary and incidents out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};

use super::schema::{
    INCIDENT_CONVERSATION_IDS, Incident, NO_TARGET, Report, SAMPLE_IDS, SCHEMA_VERSION, Summary,
    TriageRecord,
};
use crate::classify::FailureCategory;

/// Parses a record timestamp for ordering; both RFC 3339 strings and epoch milliseconds.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
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
        let mut groups: HashMap<(FailureCategory, Option<&str>, Option<&str>), Acc> =
            HashMap::new();
        let mut order = Vec::new();
        for r in &records {
            *by_category.entry(r.failure_category).or_insert(0) += 1;
            *by_target
                .entry(
                    r.failure
                        .target_arn
                        .clone()
                        .unwrap_or_else(|| NO_TARGET.to_owned()),
                )
                .or_insert(0) += 1;
            let event_type = match &r.event_type {
                Some(t) => t.clone(),
                None => format!("({})", r.body_kind.as_str()),
            };
            *by_event_type.entry(event_type).or_insert(0) += 1;
            *by_interaction_status
                .entry(r.interaction_info.status().to_owned())
                .or_insert(0) += 1;
            if let Some(id) = &r.interaction_id {
                conversations.insert(id.as_str());
            }
            let t = r.timestamp.as_deref().and_then(parse_time);
            span.add(t);
            let key = (
                r.failure_category,
                r.failure.target_arn.as_deref(),
                r.failure.error_code.as_deref(),
            );
            let acc = groups.entry(key).or_insert_with(|| {
                order.push(key);
                Acc {
                    count: 0,
                    span: TimeRange::default(),
                    samples: Vec::new(),
                    statuses: BTreeSet::new(),
                    message: None,
                    conversations: BTreeSet::new(),
                }
            });
            acc.count += 1;
            acc.span.add(t);
            if acc.samples.len() < SAMPLE_IDS {
                acc.samples.push(&r.message_id);
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
                let (category, target, code) = *key;
                Incident {
                    category,
                    target_arn: target.map(str::to_owned),
                    error_code: code.map(str::to_owned),
                    count: acc.count,
                    first_seen: acc.span.first(),
                    last_seen: acc.span.last(),
                    conversations: acc.conversations.len(),
                    sample_message_ids: acc.samples.iter().map(|s| s.to_string()).collect(),
                    recommended_action: category.recommended_action().to_owned(),
                    replay_as_is: category.replay_as_is().to_owned(),
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
                .then(a.error_code.cmp(&b.error_code))
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
        };
        Report {
            schema_version: SCHEMA_VERSION,
            report_id,
            generated_at: fmt_time(generated_at),
            total_failures: records.len(),
            summary,
            records,
        }
    }
}
