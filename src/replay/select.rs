//! Which records a replay sends: those the given reports list with a stored payload,
//! once each (by `messageId`), narrowed by the filters. Reports and payloads are read from
//! a local folder or from S3; nothing is ever written or deleted there.

use std::collections::HashSet;

use crate::classify::FailureCategory;
use crate::dlq::BodyKind;
use crate::report::{Disposition, Report};
use crate::reports::{Filter, Location, dead_lettered_at};

/// One record to replay.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    /// The SQS message id of the dead letter.
    pub message_id: String,
    /// The EventBridge event's `id`, when its body has one: copies of one event (dead
    /// letters of the same event) share it.
    pub event_id: Option<String>,
    /// Its category.
    pub category: FailureCategory,
    /// The rule that failed (`RULE_ARN`).
    pub rule_arn: Option<String>,
    /// The target that failed (`TARGET_ARN`).
    pub target_arn: Option<String>,
    /// Where its payload is.
    pub payload: Location,
}

/// What a set of reports gives to replay.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    /// What to send, in report order.
    pub records: Vec<Candidate>,
    /// Records the filters admit that have no payload to send: (messageId, why).
    pub not_replayable: Vec<(String, String)>,
    /// Records listed again by a later report (or twice in one), sent once.
    pub duplicates: usize,
    /// Records the filters left out.
    pub filtered_out: usize,
}

/// Builds a selection one report at a time, so a run holds one report and the candidates,
/// never every report at once.
#[derive(Debug)]
pub(crate) struct Selector<'f> {
    filter: &'f Filter,
    selection: Selection,
    /// Message ids selected so far.
    seen: HashSet<String>,
    /// Message ids named not replayable so far.
    unsendable: HashSet<String>,
}

impl<'f> Selector<'f> {
    /// An empty selection under `filter`.
    pub(crate) fn new(filter: &'f Filter) -> Selector<'f> {
        Selector {
            filter,
            selection: Selection::default(),
            seen: HashSet::new(),
            unsendable: HashSet::new(),
        }
    }

    /// Adds the records of the next report.
    pub(crate) fn add(&mut self, location: &Location, report: &Report) {
        let selection = &mut self.selection;
        for r in &report.records {
            let at = dead_lettered_at(r.sent_timestamp.as_deref(), r.timestamp.as_deref());
            let target = r.failure.target_arn.as_deref();
            if !self
                .filter
                .admits(&r.message_id, r.failure_category, target, at)
            {
                selection.filtered_out += 1;
                continue;
            }
            if self.seen.contains(&r.message_id) {
                selection.duplicates += 1;
                continue;
            }
            let payload = match (&r.replay_payload_key, &r.disposition) {
                _ if r.body_kind == BodyKind::CustomBusFailure => Err(format!(
                    "a Custom Event Bus failure summary, not an event: it stands for {} failed event(s) ({}), which must be replayed from their source or an archive",
                    r.event_count,
                    if r.failed_event_ids.is_empty() {
                        "no event ids".to_owned()
                    } else {
                        r.failed_event_ids.join(", ")
                    }
                )),
                (Some(key), Disposition::Stored) => location.payload(key).map_err(String::from),
                (_, Disposition::Returned { reason }) => Err(format!(
                    "no payload stored: returned to the queue ({reason}); it is replayed from the queue, not from this report"
                )),
                (None, Disposition::Stored) => Err("no payload key in the report".to_owned()),
            };
            match payload {
                Ok(payload) => {
                    self.seen.insert(r.message_id.clone());
                    selection.records.push(Candidate {
                        message_id: r.message_id.clone(),
                        event_id: r.event_id.clone(),
                        category: r.failure_category,
                        rule_arn: r.failure.rule_arn.clone(),
                        target_arn: r.failure.target_arn.clone(),
                        payload,
                    })
                }
                // A later report may hold a stored copy of the same message.
                Err(_) if self.unsendable.contains(&r.message_id) => selection.duplicates += 1,
                Err(why) => {
                    self.unsendable.insert(r.message_id.clone());
                    selection.not_replayable.push((r.message_id.clone(), why));
                }
            }
        }
    }

    /// The selection of every report added.
    pub(crate) fn finish(self) -> Selection {
        let mut selection = self.selection;
        // A record first seen unstored and stored later is replayable after all.
        let before = selection.not_replayable.len();
        selection
            .not_replayable
            .retain(|(id, _)| !self.seen.contains(id));
        selection.duplicates += before - selection.not_replayable.len();
        selection
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::report::TriageRecord;
    use crate::report::fixtures::report_of;

    /// Builds the selection from reports read in the order given.
    fn select(reports: &[(Location, Report)], filter: &Filter) -> Selection {
        let mut selector = Selector::new(filter);
        for (location, report) in reports {
            selector.add(location, report);
        }
        selector.finish()
    }

    fn record(id: &str) -> TriageRecord {
        crate::report::fixtures::record(
            id,
            FailureCategory::Unknown,
            None,
            None,
            "2026-11-28T10:00:00Z",
        )
    }

    fn local(path: &str) -> Location {
        Location::File(PathBuf::from(path))
    }

    #[test]
    fn overlapping_reports_give_each_record_once() {
        let a = report_of(vec![record("m1"), record("m2")]);
        let b = report_of(vec![record("m2"), record("m3")]);
        let s = select(
            &[(local("a/report.json"), a), (local("b/report.json"), b)],
            &Filter::default(),
        );
        let ids: Vec<&str> = s.records.iter().map(|c| c.message_id.as_str()).collect();
        assert_eq!(ids, ["m1", "m2", "m3"]);
        assert_eq!(s.duplicates, 1);
        // The copy listed first wins: its payload is beside its own report.
        assert_eq!(s.records[1].payload, local("a/replay/UNKNOWN/m2.json"));
    }

    #[test]
    fn returned_records_are_named_not_sent_unless_another_report_stored_them() {
        let mut returned = record("m1");
        returned.replay_payload_key = None;
        returned.disposition = Disposition::Returned {
            reason: "payload not stored: S3 timeout".into(),
        };
        let a = report_of(vec![returned.clone(), record("m2")]);
        let s = select(&[(local("a/report.json"), a.clone())], &Filter::default());
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.not_replayable.len(), 1);
        assert!(s.not_replayable[0].1.contains("S3 timeout"), "{s:?}");

        let later = report_of(vec![record("m1")]);
        let s = select(
            &[(local("a/report.json"), a), (local("b/report.json"), later)],
            &Filter::default(),
        );
        assert_eq!(s.records.len(), 2);
        assert!(s.not_replayable.is_empty(), "{s:?}");
    }

    #[test]
    fn a_custom_bus_summary_is_named_not_replayed() {
        let mut summary = record("m1");
        summary.body_kind = BodyKind::CustomBusFailure;
        summary.event_count = 2;
        summary.failed_event_ids = vec!["e1".into(), "e2".into()];
        let s = select(
            &[(local("a/report.json"), report_of(vec![summary]))],
            &Filter::default(),
        );
        assert!(s.records.is_empty());
        assert!(s.not_replayable[0].1.contains("e1, e2"), "{s:?}");
    }

    #[test]
    fn filters_narrow_by_category_target_and_id() {
        let mut r1 = record("m1");
        r1.failure_category = FailureCategory::RateLimitExceeded;
        r1.failure.target_arn = Some("arn:t1".into());
        let mut r2 = record("m2");
        r2.failure.target_arn = Some("arn:t2".into());
        let report = report_of(vec![r1, r2, record("m3")]);
        let at = |filters: Filter| -> Vec<String> {
            select(&[(local("r.json"), report.clone())], &filters)
                .records
                .into_iter()
                .map(|c| c.message_id)
                .collect()
        };
        assert_eq!(
            at(Filter {
                categories: vec![FailureCategory::RateLimitExceeded],
                ..Filter::default()
            }),
            ["m1"]
        );
        assert_eq!(
            at(Filter {
                targets: vec!["arn:t2".into()],
                ..Filter::default()
            }),
            ["m2"]
        );
        assert_eq!(
            at(Filter {
                message_ids: vec!["m3".into(), "m1".into()],
                ..Filter::default()
            }),
            ["m1", "m3"]
        );
    }
}
