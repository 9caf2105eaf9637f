use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;
use crate::reports::parse_when;

const API: &str = "arn:aws:events:us-east-1:111122223333:api-destination/crm/1";
const FN: &str = "arn:aws:lambda:us-east-1:111122223333:function:consumer";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A report record as `report.json` holds it.
fn record(id: &str, category: &str, target: &str, code: &str, sent: &str, stored: bool) -> Value {
    json!({
        "messageId": id,
        "sentTimestamp": sent,
        "timestamp": sent,
        "interactionId": null,
        "failureCategory": category,
        "targetArn": target,
        "errorCode": code,
        "errorMessage": format!("{code} from the target"),
        "httpStatus": null,
        "interactionInfo": {"status": "noConversation"},
        "disposition": if stored { json!({"status": "stored"}) } else { json!({"status": "returned", "reason": "write failed: x"}) },
    })
}

fn report(generated_at: &str, records: Vec<Value>) -> ReportDigest {
    let doc = json!({
        "schemaVersion": 1,
        "reportId": "r",
        "generatedAt": generated_at,
        "totalFailures": records.len(),
        "summary": {},
        "records": records,
    });
    ReportDigest::parse(&serde_json::to_vec(&doc).unwrap()).unwrap()
}

fn summary(reports: Vec<ReportDigest>, window: Window, now: &str) -> Summary {
    let mut s = Summarizer::new(Filter {
        window,
        ..Filter::default()
    });
    for r in reports {
        s.add(r);
    }
    s.finish(at(now), &["out/".to_owned()])
}

#[test]
fn a_record_returned_then_stored_counts_once_as_stored() {
    let t = "2026-12-04T09:00:00Z";
    let s = summary(
        vec![
            report(
                "2026-12-04T09:01:00Z",
                vec![record(
                    "m1",
                    "RATE_LIMIT_EXCEEDED",
                    API,
                    "THROTTLING",
                    t,
                    false,
                )],
            ),
            report(
                "2026-12-04T09:05:00Z",
                vec![record(
                    "m1",
                    "RATE_LIMIT_EXCEEDED",
                    API,
                    "THROTTLING",
                    t,
                    true,
                )],
            ),
        ],
        Window::default(),
        "2026-12-04T12:00:00Z",
    );
    assert_eq!((s.dead_letters, s.stored, s.listed_again), (1, 1, 1));
    assert_eq!(s.total_failures, 1);
    // The reports read in the other order say the same: the later report wins.
    let s = summary(
        vec![
            report(
                "2026-12-04T09:05:00Z",
                vec![record(
                    "m1",
                    "RATE_LIMIT_EXCEEDED",
                    API,
                    "THROTTLING",
                    t,
                    true,
                )],
            ),
            report(
                "2026-12-04T09:01:00Z",
                vec![record(
                    "m1",
                    "RATE_LIMIT_EXCEEDED",
                    API,
                    "THROTTLING",
                    t,
                    false,
                )],
            ),
        ],
        Window::default(),
        "2026-12-04T12:00:00Z",
    );
    assert_eq!((s.dead_letters, s.stored), (1, 1));
}

#[test]
fn the_same_id_in_three_reports_is_one_record() {
    let t = "2026-12-04T09:00:00Z";
    let reports = ["09:01", "09:02", "09:03"]
        .iter()
        .map(|m| {
            report(
                &format!("2026-12-04T{m}:00Z"),
                vec![
                    record("same", "TARGET_ERROR", FN, "ERROR_FROM_TARGET", t, true),
                    record(
                        &format!("own-{m}"),
                        "TARGET_ERROR",
                        FN,
                        "ERROR_FROM_TARGET",
                        t,
                        true,
                    ),
                ],
            )
        })
        .collect();
    let s = summary(reports, Window::default(), "2026-12-04T12:00:00Z");
    assert_eq!((s.dead_letters, s.listed_again, s.reports), (4, 2, 3));
    assert_eq!(s.incidents.len(), 1);
    assert_eq!(s.incidents[0].count, 4);
}

#[test]
fn a_custom_bus_summary_counts_its_events() {
    let mut r = record(
        "bus",
        "ROUTING_REJECTED",
        API,
        "CROSS_ACCOUNT_INGESTION_FAILED",
        "2026-12-04T09:00:00Z",
        true,
    );
    r["eventCount"] = json!(7);
    let s = summary(
        vec![report("2026-12-04T09:01:00Z", vec![r])],
        Window::default(),
        "2026-12-04T12:00:00Z",
    );
    assert_eq!((s.dead_letters, s.total_failures), (1, 7));
    assert_eq!(s.incidents[0].count, 7);
    assert_eq!(s.by_category[&FailureCategory::RoutingRejected], 7);
}

#[test]
fn the_window_includes_both_edges_and_drops_records_without_a_time() {
    let records = vec![
        record("before", "UNKNOWN", API, "X", "2026-12-04T08:59:59Z", true),
        record("since", "UNKNOWN", API, "X", "2026-12-04T09:00:00Z", true),
        record("until", "UNKNOWN", API, "X", "2026-12-04T10:00:00Z", true),
        record("after", "UNKNOWN", API, "X", "2026-12-04T10:00:01Z", true),
        json!({"messageId": "no-time", "failureCategory": "UNKNOWN", "disposition": {"status": "stored"}}),
    ];
    let window = Window {
        since: Some(at("2026-12-04T09:00:00Z")),
        until: Some(at("2026-12-04T10:00:00Z")),
    };
    let s = summary(
        vec![report("2026-12-04T11:00:00Z", records.clone())],
        window,
        "2026-12-04T12:00:00Z",
    );
    assert_eq!(s.dead_letters, 2);
    assert_eq!(s.incidents[0].sample_message_ids, ["since", "until"]);
    // Without a window, every record counts, with or without a time.
    let s = summary(
        vec![report("2026-12-04T11:00:00Z", records)],
        Window::default(),
        "2026-12-04T12:00:00Z",
    );
    assert_eq!(s.dead_letters, 5);
}

#[test]
fn incidents_group_by_category_and_target_with_codes_inside() {
    let records = vec![
        record(
            "a",
            "TARGET_ERROR",
            FN,
            "ERROR_FROM_TARGET",
            "2026-12-04T09:00:10Z",
            true,
        ),
        record(
            "b",
            "TARGET_ERROR",
            FN,
            "INTERNAL_ERROR",
            "2026-12-04T09:00:20Z",
            true,
        ),
        record(
            "c",
            "TARGET_ERROR",
            FN,
            "ERROR_FROM_TARGET",
            "2026-12-04T09:00:50Z",
            true,
        ),
        record(
            "d",
            "TARGET_ERROR",
            API,
            "ERROR_FROM_TARGET",
            "2026-12-04T09:03:00Z",
            true,
        ),
        record(
            "e",
            "RATE_LIMIT_EXCEEDED",
            FN,
            "THROTTLING",
            "2026-12-04T09:05:00Z",
            true,
        ),
    ];
    let s = summary(
        vec![report("2026-12-04T09:10:00Z", records)],
        Window::default(),
        "2026-12-04T12:00:00Z",
    );
    assert_eq!(s.incidents.len(), 3);
    let top = &s.incidents[0];
    assert_eq!(
        (top.category, top.target_arn.as_deref(), top.count),
        (FailureCategory::TargetError, Some(FN), 3)
    );
    assert_eq!(
        top.error_codes,
        BTreeMap::from([
            ("ERROR_FROM_TARGET".to_owned(), 2),
            ("INTERNAL_ERROR".to_owned(), 1)
        ])
    );
    assert_eq!(top.peak_per_minute, 3, "all three in the 09:00 minute");
    assert_eq!(
        top.sample_errors,
        [
            "ERROR_FROM_TARGET from the target",
            "INTERNAL_ERROR from the target"
        ]
    );
    assert_eq!(
        top.replay_command,
        format!(
            "dlq-triage replay out/ --category TARGET_ERROR --target {FN} --since 2026-12-04T09:00:10Z --until 2026-12-04T09:00:50Z --to-target"
        )
    );
}

#[test]
fn an_incident_is_ongoing_with_a_failure_in_the_last_fifteen_minutes() {
    let records = vec![
        record("old", "TARGET_ERROR", FN, "E", "2026-12-04T09:00:00Z", true),
        record(
            "recent",
            "RATE_LIMIT_EXCEEDED",
            API,
            "THROTTLING",
            "2026-12-04T11:50:00Z",
            true,
        ),
    ];
    let now = "2026-12-04T12:00:00Z";
    let s = summary(
        vec![report("2026-12-04T11:55:00Z", records.clone())],
        Window::default(),
        now,
    );
    let ongoing: Vec<bool> = s.incidents.iter().map(|i| i.ongoing).collect();
    let by: BTreeMap<FailureCategory, bool> = s
        .incidents
        .iter()
        .map(|i| (i.category, i.ongoing))
        .collect();
    assert_eq!(ongoing.len(), 2);
    assert!(by[&FailureCategory::RateLimitExceeded] && !by[&FailureCategory::TargetError]);
    assert!(s.ongoing);
    // With --until, the end of the window is the reference, not now.
    let window = Window {
        since: None,
        until: Some(at("2026-12-04T09:10:00Z")),
    };
    let s = summary(vec![report("2026-12-04T11:55:00Z", records)], window, now);
    assert_eq!(s.incidents.len(), 1);
    assert!(
        s.incidents[0].ongoing,
        "09:00 is within 15 minutes of 09:10"
    );
}

#[test]
fn the_timeline_buckets_fit_the_span() {
    let minutes = |n: i64, span_minutes: i64| -> Summary {
        let records = (0..n)
            .map(|i| {
                let t = at("2026-12-04T00:00:00Z")
                    + chrono::Duration::minutes(i * span_minutes / (n - 1));
                record(&format!("m{i}"), "UNKNOWN", API, "X", &t.to_rfc3339(), true)
            })
            .collect();
        summary(
            vec![report("2026-12-05T00:00:00Z", records)],
            Window::default(),
            "2026-12-05T00:00:00Z",
        )
    };
    // Ten minutes: one-minute buckets; two days: a bucket of six hours or more.
    let short = minutes(11, 10);
    assert_eq!(short.timeline.bucket_seconds, 60);
    assert_eq!(short.timeline.buckets.len(), 11);
    let long = minutes(49, 48 * 60);
    assert!(
        long.timeline.bucket_seconds >= 6 * 3600,
        "{}",
        long.timeline.bucket_seconds
    );
    assert!(long.timeline.buckets.len() <= 24);
    let counted: usize = long
        .timeline
        .buckets
        .iter()
        .flat_map(|b| b.by_category.values())
        .sum();
    assert_eq!(counted, 49);
}

#[test]
fn times_are_rfc_3339_or_a_duration_back_from_now() {
    let now = at("2026-12-04T12:00:00Z");
    assert_eq!(parse_when("90m", now).unwrap(), at("2026-12-04T10:30:00Z"));
    assert_eq!(parse_when("6h", now).unwrap(), at("2026-12-04T06:00:00Z"));
    assert_eq!(parse_when("7d", now).unwrap(), at("2026-11-27T12:00:00Z"));
    assert_eq!(
        parse_when("2026-12-04T09:00:00+01:00", now).unwrap(),
        at("2026-12-04T08:00:00Z")
    );
    for bad in ["", "h", "-3h", "3w", "yesterday", "9999999999999d"] {
        assert!(parse_when(bad, now).is_err(), "{bad:?}");
    }
}

#[test]
fn reports_of_another_schema_or_not_json_are_named_errors() {
    assert!(
        ReportDigest::parse(b"not json")
            .unwrap_err()
            .to_string()
            .starts_with("not JSON")
    );
    let v2 = br#"{"schemaVersion": 2, "generatedAt": "x", "records": []}"#;
    assert!(
        ReportDigest::parse(v2)
            .unwrap_err()
            .to_string()
            .contains("schema version 2")
    );
    assert!(
        ReportDigest::parse(b"{}")
            .unwrap_err()
            .to_string()
            .contains("no schemaVersion")
    );
    assert!(matches!(
        ReportDigest::parse(v2),
        Err(crate::reports::DigestError::Version { version: 2 })
    ));
    assert!(matches!(
        ReportDigest::parse(b"{}"),
        Err(crate::reports::DigestError::NoVersion)
    ));
}

#[test]
fn the_markdown_escapes_what_the_reports_carry() {
    let mut r = record(
        "m|1",
        "TARGET_ERROR",
        "arn:aws:lambda:us-east-1:1:function:x|<script>",
        "E",
        "2026-12-04T09:00:00Z",
        true,
    );
    r["errorMessage"] = json!("<img src=x onerror=alert(1)> | `boom` **bold**\n# heading");
    let s = summary(
        vec![report("2026-12-04T09:01:00Z", vec![r])],
        Window::default(),
        "2026-12-04T12:00:00Z",
    );
    let md = render_summary(&s);
    // The error text is prose: its HTML is escaped. (The target is shown in code spans
    // and in the fenced replay command, which Markdown shows literally.)
    assert!(!md.contains("<img"), "{md}");
    assert!(md.contains("&lt;img"), "{md}");
    assert!(!md.contains("\n# heading"), "{md}");
    // The incident's row keeps its nine cells: no value adds a cell boundary.
    let row = md
        .lines()
        .find(|l| l.starts_with("| TARGET_ERROR"))
        .unwrap();
    let boundaries = row
        .char_indices()
        .filter(|(i, c)| *c == '|' && !row[..*i].ends_with('\\'))
        .count();
    assert_eq!(boundaries, 10, "{row}");
}

#[test]
fn a_report_of_another_version_is_named_by_its_version_whatever_its_shape() {
    let v2 = br#"{"schemaVersion": 2, "generatedAt": "x", "records": {"moved": true}}"#;
    assert!(
        ReportDigest::parse(v2)
            .unwrap_err()
            .to_string()
            .contains("schema version 2")
    );
    let unknown = serde_json::to_vec(&json!({
        "schemaVersion": 1, "generatedAt": "x",
        "records": [{"messageId": "m", "failureCategory": "UNKNOWN", "disposition": {"status": "lost"}}],
    }))
    .unwrap();
    assert!(
        ReportDigest::parse(&unknown)
            .unwrap_err()
            .to_string()
            .contains("unknown disposition status \"lost\"")
    );
}

#[test]
fn escaped_texts_are_read_as_the_text_they_stand_for() {
    let t = "2026-12-04T09:00:00Z";
    let target = "arn:aws:lambda:us-east-1:1:function:caf\u{e9}\"quoted\"";
    let mut r = record("m\u{e9}1", "TARGET_ERROR", target, "E", t, true);
    r["errorMessage"] = json!("line\nbreak");
    // serde_json writes the quotes escaped; the \u form is written by hand.
    let doc = serde_json::to_string(&json!({
        "schemaVersion": 1, "generatedAt": t, "records": [r],
    }))
    .unwrap()
    .replace('\u{e9}', "\\u00e9");
    let digest = ReportDigest::parse(doc.as_bytes()).unwrap();
    let s = summary(vec![digest], Window::default(), "2026-12-04T10:00:00Z");
    assert_eq!(s.by_target.keys().collect::<Vec<_>>(), [target]);
    assert_eq!(s.incidents[0].sample_message_ids, ["m\u{e9}1"]);
    assert_eq!(s.incidents[0].sample_errors, ["line\nbreak"]);
}

/// A million of them are held at once (docs/benchmarks.md).
#[test]
#[cfg(target_pointer_width = "64")]
fn a_kept_record_is_52_bytes() {
    assert_eq!(std::mem::size_of::<Kept>(), 52);
}
