//! One batch, one set of figures: `report.json`, its page (`report.html`) and `summarize`
//! of the same report count every dead letter at its dead-letter time (`SentTimestamp`),
//! even when EventBridge retried the events for hours before dead-lettering them.

use std::collections::BTreeMap;
use std::path::Path;

use dlq_triage_test_support::cli::{analyzed, dlq_triage, output, text};
use dlq_triage_test_support::fixtures::event_path;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

/// The sample batch dead-lettered `late` after its events happened: each record's
/// `SentTimestamp` is its event's own `time` plus `late` (records without a time are
/// dead-lettered at 09:00 plus `late`, a minute apart).
fn late_batch(dir: &Path, late: i64) -> std::path::PathBuf {
    let mut sample: Value =
        serde_json::from_slice(&std::fs::read(event_path("sqs-mixed-batch.json")).unwrap())
            .unwrap();
    let nine = chrono::DateTime::parse_from_rfc3339("2026-11-28T09:00:00Z")
        .unwrap()
        .timestamp_millis();
    for (n, r) in sample["Records"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        let time = serde_json::from_str::<Value>(r["body"].as_str().unwrap())
            .ok()
            .and_then(|b| b["time"].as_str().map(str::to_owned))
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(&t)
                    .unwrap()
                    .timestamp_millis()
            });
        let sent = time.unwrap_or(nine + n as i64 * MINUTE) + late;
        r["attributes"]["SentTimestamp"] = json!(sent.to_string());
    }
    let path = dir.join("late.json");
    std::fs::write(&path, serde_json::to_vec(&sample).unwrap()).unwrap();
    path
}

/// An incident's figures, keyed by (category, target), as report.json and summary.json
/// both write them.
fn incidents(incidents: &Value) -> BTreeMap<(String, String), Value> {
    incidents
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let key = (
                i["category"].as_str().unwrap().to_owned(),
                i["targetArn"].as_str().unwrap_or_default().to_owned(),
            );
            let figures = json!({
                "count": i["count"],
                "firstSeen": i["firstSeen"],
                "lastSeen": i["lastSeen"],
                "conversations": i["conversations"],
                "errorCodes": i["errorCodes"],
                "httpStatuses": i["httpStatuses"],
            });
            (key, figures)
        })
        .collect()
}

/// The incident table's row of the page for (`category`, `target`): from its `<tr` to
/// its `</tr>`.
fn row<'h>(html: &'h str, category: &str, target: &str) -> &'h str {
    let start = html
        .find(&format!(
            "data-category=\"{category}\" data-target=\"{target}\""
        ))
        .unwrap_or_else(|| panic!("the page has no row for {category} {target}"));
    let end = start + html[start..].find("</tr>").expect("the row ends");
    &html[start..end]
}

#[tokio::test]
async fn report_json_its_page_and_summarize_agree_when_dead_letters_come_hours_late() {
    let dir = tempfile::tempdir().unwrap();
    let late = 6 * HOUR;
    let out = dir.path().join("batch");
    let report = analyzed(&late_batch(dir.path(), late), &out);
    let summary_out = dir.path().join("summary");
    let o = output(dlq_triage(&[
        "summarize",
        out.to_str().unwrap(),
        "--out",
        summary_out.to_str().unwrap(),
    ]))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let summary: Value =
        serde_json::from_slice(&std::fs::read(summary_out.join("summary.json")).unwrap()).unwrap();

    // The batch's span is its dead-letter time: 15:01:03 onwards, not the events' 09:01.
    let r = &report["summary"];
    assert_eq!(r["firstSeen"], "2026-11-28T15:01:03Z", "{r}");
    assert_eq!(r["firstSeen"], summary["firstSeen"]);
    assert_eq!(r["lastSeen"], summary["lastSeen"]);
    assert_eq!(report["totalFailures"], summary["totalFailures"]);
    assert_eq!(r["byCategory"], summary["byCategory"]);
    assert_eq!(r["byTarget"], summary["byTarget"]);
    assert_eq!(
        r["conversations"].as_u64().unwrap(),
        summary["conversations"].as_array().unwrap().len() as u64
    );
    let (from_report, from_summary) =
        (incidents(&r["incidents"]), incidents(&summary["incidents"]));
    assert_eq!(from_report, from_summary);
    assert!(from_report.len() > 5, "the sample has many incidents");

    // The report's page shows the same figures for each incident.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for ((category, target), figures) in &from_report {
        let row = row(&html, category, target);
        for figure in ["count", "firstSeen", "lastSeen", "conversations"] {
            let value = match &figures[figure] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            // A cell shows its value, or a short form with the value as its sort key.
            assert!(
                row.contains(&format!(">{value}<")) || row.contains(&format!("data-v=\"{value}\"")),
                "{category} {target}: the page's row lacks {figure} {value}: {row}"
            );
        }
        // No incident is dated by its events' own time (the sample payloads the page
        // shows still carry it).
        assert!(
            !row.contains("2026-11-28T09:"),
            "an event's own time: {row}"
        );
    }
}
