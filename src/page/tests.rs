use super::*;
use crate::classify::FailureCategory;
use crate::report::fixtures::{record, report_of};

/// A report of `incidents` incidents (one target each) and `conversations` conversations,
/// every record with its own minute.
fn report(incidents: usize, conversations: usize) -> Report {
    let records = (0..incidents.max(conversations))
        .map(|n| {
            let mut r = record(
                &format!("m{n:06}"),
                FailureCategory::TargetError,
                Some(&format!(
                    "arn:aws:lambda:us-east-1:111122223333:function:f{:04}",
                    n % incidents
                )),
                Some("ERROR_FROM_TARGET"),
                &format!("2026-11-28T{:02}:{:02}:00Z", (n / 60) % 24, n % 60),
            );
            if n < conversations {
                r.interaction_id = Some(format!("c0a8{n:04}-0000-4000-8000-000000000000"));
            }
            r
        })
        .collect();
    report_of(records)
}

fn page_of(report: &Report, domain: Option<&str>) -> String {
    render_report(report, "out/report.json", &BTreeMap::new(), domain)
}

#[test]
fn the_policy_allows_only_the_pages_own_script_and_style() {
    let html = page_of(&report(3, 3), None);
    let hash = |s: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s));
    assert!(html.contains(&format!("script-src 'sha256-{}'", hash(SCRIPT))));
    assert!(html.contains(&format!("style-src 'sha256-{}'", hash(STYLE))));
    assert!(html.contains("default-src 'none'"));
    assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
    assert!(html.contains(&format!("<style>{STYLE}</style>")));
    assert_eq!(html.matches("<script").count(), 1);
    assert_eq!(html.matches("<style").count(), 1);
    // An inline style attribute would be refused by the policy.
    assert!(!html.contains("style=\""));
    // The policy comes before anything it governs.
    assert!(html.find("Content-Security-Policy").unwrap() < html.find("<style>").unwrap());
}

#[test]
fn large_summaries_are_capped_with_a_pointer_to_the_json() {
    let html = page_of(&report(INCIDENT_ROWS + 50, CONVERSATIONS_SHOWN + 100), None);
    assert_eq!(html.matches("<tr data-category=").count(), INCIDENT_ROWS);
    assert!(html.contains("… and 50 more incidents in <code>out/report.json</code>"));
    assert_eq!(
        html.matches("<section class=\"incident\"").count(),
        INCIDENT_SECTIONS
    );
    // Each incident failed in one minute: a bar each, as many as the timeline draws.
    assert_eq!(html.matches("<polyline class=\"series").count(), 0);
    assert_eq!(html.matches("<rect class=\"span").count(), chart::BARS);
    assert!(html.contains(&format!(
        "… and {} more sparse incidents in <code>out/report.json</code>",
        INCIDENT_ROWS + 50 - chart::BARS
    )));
    assert!(html.contains("… and 100 more in <code>out/report.json</code>"));
}

/// A report of `incidents` incidents that each failed in every minute of an hour.
fn dense_report(incidents: usize) -> Report {
    let records = (0..incidents * 60)
        .map(|n| {
            record(
                &format!("m{n:06}"),
                FailureCategory::TargetError,
                Some(&format!(
                    "arn:aws:lambda:us-east-1:111122223333:function:f{:04}",
                    n % incidents
                )),
                Some("ERROR_FROM_TARGET"),
                &format!("2026-11-28T09:{:02}:00Z", n / incidents),
            )
        })
        .collect();
    report_of(records)
}

#[test]
fn incidents_failing_minute_after_minute_are_lines_the_largest_each_their_own() {
    let html = page_of(&dense_report(chart::SERIES + 3), None);
    assert_eq!(
        html.matches("<polyline class=\"series").count(),
        chart::SERIES + 1,
        "the largest incidents, then the others as one line"
    );
    assert!(html.contains("other incidents (3)"));
    assert_eq!(html.matches("<rect class=\"span").count(), 0);
}

#[test]
fn sparse_incidents_are_bars_from_first_to_last_failure_with_their_count() {
    let mut records = dense_report(1).records;
    // A second incident: three failures, at 09:05, 09:20 and 09:40.
    for (n, minute) in [5, 20, 40].into_iter().enumerate() {
        records.push(record(
            &format!("s{n}"),
            FailureCategory::RateLimitExceeded,
            Some("arn:aws:sqs:us-east-1:111122223333:feed"),
            Some("THROTTLING"),
            &format!("2026-11-28T09:{minute:02}:00Z"),
        ));
    }
    let r = Report::build("r1".into(), chrono::Utc::now(), records);
    let html = page_of(&r, None);
    assert_eq!(html.matches("<polyline class=\"series").count(), 1);
    assert_eq!(html.matches("<rect class=\"span").count(), 1);
    assert!(
        html.contains("3 failed, 2026-11-28 09:05 to 2026-11-28 09:40"),
        "{html}"
    );
}

#[test]
fn conversations_link_to_genesys_cloud_only_with_a_plain_id_and_a_known_region() {
    let mut r = report(1, 2);
    r.records[1].interaction_id = Some("javascript:alert(1)".into());
    let r = Report::build("r1".into(), chrono::Utc::now(), r.records);
    let html = page_of(&r, Some("mypurecloud.ie"));
    assert!(html.contains(
        "href=\"https://apps.mypurecloud.ie/directory/#/analytics/interactions/c0a80000-0000-4000-8000-000000000000/admin\""
    ));
    assert!(!html.contains("href=\"javascript"));
    assert!(!html.contains("interactions/javascript"));
    let without = page_of(&r, None);
    assert!(!without.contains("apps.mypurecloud"));
    assert!(without.contains("Set GENESYS_REGION"));
}

#[test]
fn sample_payloads_are_pretty_printed_and_capped() {
    let r = report(1, 0);
    let id = r.summary.incidents[0].sample_message_ids[0].clone();
    let long = format!("{{\"a\":\"{}\",\"b\":[1,2]}}", "x".repeat(PAYLOAD_CHARS));
    let payloads = BTreeMap::from([(id.clone(), Bytes::from(long))]);
    let html = render_report(&r, "out/report.json", &payloads, None);
    assert!(html.contains(&format!("Payload of <code>{id}</code>")));
    assert!(html.contains("{\n  &quot;a&quot;: &quot;xxx"));
    assert!(html.contains("more characters in the stored payload)"));
    let not_json = BTreeMap::from([(id, Bytes::from_static(b"<b>plain</b>"))]);
    let html = render_report(&r, "out/report.json", &not_json, None);
    assert!(html.contains("&lt;b&gt;plain&lt;/b&gt;"));
}

#[test]
fn the_chart_draws_the_busiest_minute_of_each_step_and_marks_the_ongoing_cut() {
    let per_minute = vec![vec![(10, 3), (11, 5), (500, 1)], vec![(12, 2)]];
    let lines = chart::lines(&per_minute, 10, 2, 300);
    assert_eq!(&lines[0][..2], &[5, 0]);
    assert_eq!(lines[0][245], 1);
    assert_eq!(lines[1][1], 2);
    // A report generated right after its failures: the cut is on the chart.
    let html = page_of(&report(2, 0), None);
    assert!(html.contains("class=\"cut\""), "the ongoing cut is drawn");
}

#[test]
fn a_bars_name_goes_where_it_fits_after_before_or_inside() {
    let name = "RATE_LIMIT_EXCEEDED against api-destination/crm-webhook";
    assert_eq!(
        chart::label_place(100.0, 50.0, name),
        (156.0, "start", false)
    );
    assert_eq!(chart::label_place(900.0, 50.0, name), (894.0, "end", false));
    // Across the whole window: over the bar, not over the counts or past the edge.
    assert_eq!(chart::label_place(56.0, 900.0, name), (62.0, "start", true));
}

/// Two incidents of one minute each (bars) beside one failing every minute (a line).
fn line_and_bars() -> Report {
    let mut records = dense_report(1).records;
    for (n, target) in ["a", "b"].into_iter().enumerate() {
        records.push(record(
            &format!("s{n}"),
            FailureCategory::RateLimitExceeded,
            Some(&format!("arn:aws:sqs:us-east-1:111122223333:{target}")),
            Some("THROTTLING"),
            "2026-11-28T09:05:00Z",
        ));
    }
    Report::build("r1".into(), chrono::Utc::now(), records)
}

#[test]
fn bars_take_the_colours_after_the_lines_not_a_busy_incidents() {
    let html = page_of(&line_and_bars(), None);
    assert!(html.contains("<polyline class=\"series s0\""), "{html}");
    assert_eq!(html.matches("<rect class=\"span").count(), 2);
    assert!(
        !html.contains("<rect class=\"span s0\""),
        "a sparse incident drawn in the busy incident's colour"
    );
    assert!(html.contains("<rect class=\"span s1\""));
    assert!(html.contains("<rect class=\"span s2\""));
}

#[test]
fn an_incident_fed_by_a_replay_that_failed_again_names_the_replay_escaped() {
    let mut records = dense_report(1).records;
    for (n, name) in ["dlq-recover-a", "<b>x</b>\"'&", "dlq-recover-a"]
        .into_iter()
        .enumerate()
    {
        records[n].replay_name = Some(name.to_owned());
    }
    let r = Report::build("r1".into(), chrono::Utc::now(), records);
    assert_eq!(r.summary.incidents[0].replay_failures, 3);
    let html = page_of(&r, None);
    let line = html
        .lines()
        .find(|l| l.contains(said::REPLAY_FAILED_AGAIN))
        .unwrap_or_else(|| panic!("no replay line: {html}"));
    assert!(line.contains("<b>3</b> of these failed events"), "{line}");
    assert!(line.contains("<code>dlq-recover-a</code>"), "{line}");
    assert!(
        line.contains("<code>&lt;b&gt;x&lt;/b&gt;&quot;&#39;&amp;</code>"),
        "{line}"
    );
    assert!(!line.contains("<b>x</b>"));
    // An incident with no replayed failure says nothing about replays.
    assert!(!page_of(&report(2, 0), None).contains(said::REPLAY_FAILED_AGAIN));
}

#[test]
fn many_or_long_replay_names_are_capped() {
    let mut records = dense_report(1).records;
    for (n, r) in records.iter_mut().enumerate().take(REPLAY_NAMES + 2) {
        r.replay_name = Some(format!("{n:02}{}", "r".repeat(200)));
    }
    let html = page_of(
        &Report::build("r1".into(), chrono::Utc::now(), records),
        None,
    );
    let line = html
        .lines()
        .find(|l| l.contains(said::REPLAY_FAILED_AGAIN))
        .unwrap();
    assert_eq!(line.matches("<code>").count(), REPLAY_NAMES, "{line}");
    assert!(line.contains("and 2 more"), "{line}");
    assert!(!line.contains(&"r".repeat(REPLAY_NAME_CHARS + 1)), "{line}");
    assert!(line.contains("r…</code>"), "a cut name says so: {line}");
}

#[test]
fn an_incidents_section_shows_its_codes_whole_not_only_in_the_cut_cells_tooltip() {
    let mut records = dense_report(1).records;
    for (n, r) in records.iter_mut().enumerate().take(12) {
        r.failure.error_code = Some(format!("SOME_LONG_ERROR_CODE_{n:02}"));
    }
    let html = page_of(
        &Report::build("r1".into(), chrono::Utc::now(), records),
        None,
    );
    let section = &html[html.find("<section class=\"incident\"").unwrap()..];
    let line = section
        .lines()
        .find(|l| l.starts_with("<p><b>Codes, statuses:</b>"))
        .unwrap_or_else(|| panic!("{section}"));
    for n in 0..12 {
        assert!(
            line.contains(&format!("SOME_LONG_ERROR_CODE_{n:02} ×1")),
            "{line}"
        );
    }
}
