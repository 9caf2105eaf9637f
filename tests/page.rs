//! `report.html` and `summary.html` in a real browser (Debian's chromium, headless, through
//! the DevTools protocol): what the page shows after its script ran, sorting and filtering
//! driven as a person would, the copy buttons' commands, and hostile text that must stay
//! text — nothing runs, nothing loads. Screenshots at 1280×800 go to
//! `target/page-screenshots/` for a person to look at.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dlq_triage_test_support::browser::{Browser, Tab};
use dlq_triage_test_support::cli::{analyzed, dlq_triage, text};
use dlq_triage_test_support::fixtures::{event_bytes, event_path, repo_path};
use serde_json::{Value, json};

fn browser() -> Browser {
    Browser::launch().unwrap_or_else(|e| panic!("{e} (make tools installs it)"))
}

/// `summarize DIR --out OUT --no-health`, with the conversations linked to eu-west-1's
/// Genesys Cloud; its summary.json.
fn summarized(reports: &Path, out: &Path, until: Option<&str>) -> Value {
    let mut cmd = dlq_triage(&["summarize", "--no-health", "--out"]);
    cmd.arg(out).arg(reports).env("GENESYS_REGION", "eu-west-1");
    if let Some(until) = until {
        cmd.args(["--until", until]);
    }
    let o = cmd.output().expect("summarize starts");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("summary.html"),
        "{}",
        text(&o)
    );
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

fn screenshot(tab: &mut Tab, name: &str) {
    let dir = repo_path("target/page-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    tab.screenshot(&dir.join(name));
}

/// The page's text of each copy button's command, in page order.
fn copied_commands(tab: &mut Tab) -> Vec<String> {
    let commands = tab.eval(
        "Array.from(document.querySelectorAll('button.copy')).map(b => ({hidden: b.hidden, text: document.getElementById(b.dataset.copy).textContent}))",
    );
    commands
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["hidden"], false, "the script shows each copy button");
            c["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Nothing was fetched and the policy was never violated.
fn assert_nothing_loaded(tab: &Tab) {
    assert_eq!(
        tab.requests(),
        Vec::<String>::new(),
        "the page fetched something"
    );
    let violations: Vec<String> = tab
        .messages()
        .into_iter()
        .filter(|m| m.contains("Content Security Policy") || m.contains("Refused"))
        .collect();
    assert_eq!(violations, Vec::<String>::new());
}

/// The values of column `col` (its sort key) of the visible incident rows.
fn column(tab: &mut Tab, col: usize) -> Vec<String> {
    let values = tab.eval(&format!(
        "Array.from(document.querySelectorAll('#incidents tbody tr')).filter(r => !r.hidden).map(r => r.cells[{col}].dataset.v || r.cells[{col}].textContent)"
    ));
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The incident table sorts by failed events both ways, and by target name.
fn assert_sorting(tab: &mut Tab) {
    // By failed events, largest first, then smallest first.
    let counts =
        |tab: &mut Tab| -> Vec<u64> { column(tab, 2).iter().map(|v| v.parse().unwrap()).collect() };
    tab.eval("document.querySelectorAll('#incidents thead button')[2].click()");
    let down = counts(tab);
    assert!(down.windows(2).all(|w| w[0] >= w[1]), "{down:?}");
    tab.eval("document.querySelectorAll('#incidents thead button')[2].click()");
    let up = counts(tab);
    assert!(up.windows(2).all(|w| w[0] <= w[1]), "{up:?}");
    assert_ne!(up, down);
    // By target name.
    tab.eval("document.querySelectorAll('#incidents thead button')[1].click()");
    let targets = column(tab, 1);
    let mut sorted = targets.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(targets, sorted);
}

/// The incident table filters by category, by ongoing and by target, saying how many it shows.
fn assert_filtering(tab: &mut Tab, incidents: &[Value], ongoing: usize) {
    // A category, then ongoing only, then all again, then a target.
    let set = |tab: &mut Tab, id: &str, js_value: &str| {
        tab.eval(&format!(
            "(() => {{ const e = document.getElementById('{id}'); {js_value}; e.dispatchEvent(new Event('change')); return document.getElementById('f-shown').textContent; }})()"
        ))
    };
    let malformed = incidents
        .iter()
        .filter(|i| i["category"] == "PAYLOAD_MALFORMED")
        .count();
    let shown = set(tab, "f-category", "e.value = 'PAYLOAD_MALFORMED'");
    assert_eq!(shown, format!("{malformed} of {} shown", incidents.len()));
    assert!(column(tab, 0).iter().all(|c| c == "PAYLOAD_MALFORMED"));
    set(tab, "f-category", "e.value = ''");
    let shown = set(tab, "f-ongoing", "e.checked = true");
    assert_eq!(shown, format!("{ongoing} of {} shown", incidents.len()));
    let visible_ongoing = tab.eval(
        "Array.from(document.querySelectorAll('#incidents tbody tr')).filter(r => !r.hidden).every(r => r.dataset.ongoing === 'yes')",
    );
    assert_eq!(visible_ongoing, true);
    let target = incidents[0]["targetArn"].as_str().unwrap();
    set(tab, "f-ongoing", "e.checked = false");
    let same_target = incidents
        .iter()
        .filter(|i| i["targetArn"] == target)
        .count();
    let shown = set(tab, "f-target", &format!("e.value = {}", json!(target)));
    assert_eq!(shown, format!("{same_target} of {} shown", incidents.len()));
}

#[test]
fn a_summary_page_shows_each_incident_its_line_and_its_replay_command() {
    let dir = tempfile::tempdir().unwrap();
    analyzed(&event_path("sqs-mixed-batch.json"), &dir.path().join("r"));
    // The sample's failures run from 09:01 to 09:25: a window to 09:30 leaves some ongoing.
    let summary = summarized(
        &dir.path().join("r"),
        &dir.path().join("s"),
        Some("2026-11-28T09:30:00Z"),
    );
    let incidents = summary["incidents"].as_array().unwrap();
    let ongoing = incidents.iter().filter(|i| i["ongoing"] == true).count();
    assert!(ongoing > 0 && ongoing < incidents.len());

    let mut browser = browser();
    let mut tab = browser.open(&dir.path().join("s/summary.html"), 1280, 800);
    screenshot(&mut tab, "summary.png");
    assert_eq!(tab.eval("document.title"), "Dead-letter summary");
    assert_eq!(
        tab.eval("document.querySelectorAll('#incidents tbody tr').length"),
        incidents.len()
    );
    // The sample's incidents each failed in a minute or two: a bar each, no spikes.
    assert_eq!(
        tab.eval("document.querySelectorAll('svg.chart polyline.series').length"),
        0
    );
    assert_eq!(
        tab.eval("document.querySelectorAll('svg.timeline rect.span').length"),
        incidents.len(),
        "one bar per incident"
    );
    let expected: Vec<&str> = incidents
        .iter()
        .map(|i| i["replayCommand"].as_str().unwrap())
        .collect();
    assert_eq!(copied_commands(&mut tab), expected);

    assert_sorting(&mut tab);

    assert_filtering(&mut tab, incidents, ongoing);

    // Conversations link to the org's Genesys Cloud.
    let links =
        tab.eval("Array.from(document.querySelectorAll('#conversation-table a')).map(a => a.href)");
    let links = links.as_array().unwrap();
    assert_eq!(
        links.len(),
        summary["conversations"].as_array().unwrap().len()
    );
    let first = summary["conversations"][0]["id"].as_str().unwrap();
    assert_eq!(
        links[0],
        format!("https://apps.mypurecloud.ie/directory/#/analytics/interactions/{first}/admin")
    );
    assert_nothing_loaded(&tab);
}

#[test]
fn a_report_page_shows_the_batch_with_sample_payloads_and_works_without_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let report = analyzed(&event_path("sqs-mixed-batch.json"), &out);
    let incidents = report["summary"]["incidents"].as_array().unwrap();

    let mut browser = browser();
    let mut tab = browser.open(&out.join("report.html"), 1280, 800);
    screenshot(&mut tab, "report.png");
    let title = tab.eval("document.title");
    assert_eq!(
        title,
        format!(
            "Dead-letter report {}",
            report["reportId"].as_str().unwrap()
        )
    );
    assert_eq!(
        tab.eval("document.querySelectorAll('#incidents tbody tr').length"),
        incidents.len()
    );
    // Each incident's payloads: the stored bytes, pretty-printed.
    let payloads = tab.eval(
        "Array.from(document.querySelectorAll('details.payload')).map(d => [d.querySelector('summary code').textContent, d.querySelector('pre').textContent])",
    );
    let payloads = payloads.as_array().unwrap();
    assert!(payloads.len() >= incidents.len(), "{payloads:?}");
    for p in payloads {
        let id = p[0].as_str().unwrap();
        let record = report["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["messageId"] == id)
            .unwrap();
        let stored = std::fs::read(out.join(record["replayPayloadKey"].as_str().unwrap())).unwrap();
        let shown = p[1].as_str().unwrap();
        match serde_json::from_slice::<Value>(&stored) {
            Ok(v) => assert_eq!(shown, serde_json::to_string_pretty(&v).unwrap()),
            Err(_) => assert_eq!(shown, String::from_utf8_lossy(&stored)),
        }
    }
    // The commands replay this report.
    for command in copied_commands(&mut tab) {
        assert!(
            command.starts_with(&format!(
                "dlq-triage replay {}/report.json --category ",
                out.display()
            )),
            "{command}"
        );
    }
    assert_nothing_loaded(&tab);

    // With scripts off, the tables are all there and only the controls stay hidden.
    let mut tab = browser.open_without_scripts(&out.join("report.html"), 1280, 800);
    assert_eq!(
        tab.eval("document.querySelectorAll('#incidents tbody tr').length"),
        incidents.len()
    );
    assert_eq!(
        tab.eval("document.getElementById('incident-controls').hidden"),
        true
    );
    assert_eq!(
        tab.eval("Array.from(document.querySelectorAll('button.copy')).every(b => b.hidden)"),
        true
    );
    assert_eq!(
        tab.eval("document.querySelectorAll('details.payload').length"),
        payloads.len()
    );
}

/// A server on 127.0.0.1 that counts the connections made to it.
fn counting_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (address, hits)
}

/// The single sample dead letter, twice, made hostile: markup, an attribute break-out, a
/// `javascript:` URL and bidi controls in the error message, the target, the
/// conversation id, the payload and the archive replay's name, each reaching for `server`.
fn hostile_batch(dir: &Path, server: &str) -> PathBuf {
    let mut batch: Value = serde_json::from_slice(&event_bytes("sqs-single.json")).unwrap();
    let script = "<script>document.title='pwned'</script>";
    let img = format!("\"><img src={server}/img onerror=\"document.title='pwned'\">");
    let record = &mut batch["Records"][0];
    let attrs = &mut record["messageAttributes"];
    attrs["ERROR_MESSAGE"]["stringValue"] = json!(format!(
        "{script}{img} <a href=\"javascript:document.title='pwned'\">x</a> \u{202E}gnp.exe"
    ));
    attrs["TARGET_ARN"]["stringValue"] = json!(hostile_target(server));
    let mut body: Value = serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
    body["detail"]["eventBody"]["conversationId"] = json!("javascript:document.title='pwned'");
    body["detail"]["eventBody"]["note"] = json!(format!(
        "{script}{img} <iframe src=\"{server}/frame\"></iframe> \u{2066}x"
    ));
    body["replay-name"] = json!(hostile_replay_name(server));
    record["body"] = json!(body.to_string());
    let mut second = record.clone();
    second["messageId"] = json!("5e1f0c8a-0000-4000-8000-000000000002");
    batch["Records"].as_array_mut().unwrap().push(second);
    let path = dir.join("hostile.json");
    std::fs::write(&path, serde_json::to_vec(&batch).unwrap()).unwrap();
    path
}

/// The hostile batch's target ARN, as the dead letters carry it.
fn hostile_target(server: &str) -> String {
    let img = format!("\"><img src={server}/img onerror=\"document.title='pwned'\">");
    format!(
        "arn:aws:events:us-east-1:111122223333:api-destination/{img}<style>@import '{server}/css';</style>"
    )
}

/// The name of the archive replay the hostile dead letters came from.
fn hostile_replay_name(server: &str) -> String {
    format!("\u{202E}</code><img src={server}/replay onerror=\"document.title='pwned'\">")
}

/// Where the hostile target and replay name reach the page outside plain text: the
/// incident table's `title=` tooltip and filter `value=`, the timeline bar's SVG `<title>`
/// and label, and the incident section's replay line. Each must hold the text as written,
/// and no element may have gained an event-handler attribute.
fn assert_hostile_names_are_text(tab: &mut Tab, server: &str, report_page: bool) {
    let target = hostile_target(server);
    let attr = |tab: &mut Tab, js: &str| tab.eval(js).as_str().unwrap_or_default().to_owned();
    assert_eq!(
        attr(
            tab,
            "document.querySelector('#incidents td.cut').getAttribute('title')"
        ),
        target,
        "the target cell's tooltip"
    );
    assert_eq!(
        attr(
            tab,
            "document.querySelector('#f-target option:nth-child(2)').value"
        ),
        target,
        "the target filter's value"
    );
    let bar = attr(
        tab,
        "document.querySelector('svg.timeline rect.span title').textContent",
    );
    assert!(
        bar.contains("<img src=") && bar.contains("2 failed"),
        "{bar}"
    );
    let label = attr(
        tab,
        "document.querySelector('svg.timeline rect.span + text').textContent",
    );
    assert!(label.contains("<img src="), "{label}");
    assert_eq!(
        tab.eval(
            "[...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length"
        ),
        0,
        "an attribute broke out into an event handler"
    );
    if report_page {
        let replayed = attr(tab, "document.querySelector('p.replayed').textContent");
        assert!(
            replayed.contains("A replay failed again: 2 of these failed events"),
            "{replayed}"
        );
        assert!(
            replayed.contains(&format!("</code><img src={server}/replay")),
            "{replayed}"
        );
        assert!(
            replayed.contains("U+202E") && !replayed.contains('\u{202E}'),
            "{replayed}"
        );
    }
}

#[test]
fn hostile_text_stays_text_and_nothing_runs_or_loads() {
    let (server, hits) = counting_server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    analyzed(&hostile_batch(dir.path(), &server), &out);
    summarized(&out, &dir.path().join("s"), None);

    let mut browser = browser();
    for (page, title) in [
        (out.join("report.html"), "Dead-letter report "),
        (dir.path().join("s/summary.html"), "Dead-letter summary"),
    ] {
        let mut tab = browser.open(&page, 1280, 800);
        let shown_title = tab.eval("document.title");
        assert!(
            shown_title.as_str().unwrap().starts_with(title),
            "{shown_title}"
        );
        assert_eq!(
            tab.eval("document.scripts.length"),
            1,
            "only the page's own"
        );
        assert_eq!(
            tab.eval(
                "document.querySelectorAll('img, iframe, object, embed, link, body style, a[href^=\"javascript\"]').length"
            ),
            0
        );
        let text = tab.eval("document.body.innerText");
        let text = text.as_str().unwrap();
        assert!(
            text.contains("<script>document.title='pwned'</script>"),
            "{page:?}"
        );
        assert!(text.contains("onerror="), "{page:?}");
        // Bidi controls are shown by name, never applied.
        assert!(text.contains("U+202E"), "{page:?}");
        assert!(!text.contains('\u{202E}'));
        assert_hostile_names_are_text(&mut tab, &server, !page.ends_with("summary.html"));
        assert_nothing_loaded(&tab);
        if page.ends_with("summary.html") {
            screenshot(&mut tab, "hostile-summary.png");
        }
    }
    drop(browser);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a request reached {server}");
}

/// The checks above can fail: the browser reports a blocked load and a blocked script as
/// violations, and a page without a policy does reach the server.
#[test]
fn the_browser_reports_what_a_page_loads_and_what_its_policy_blocks() {
    let (server, hits) = counting_server();
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("blocked.html");
    std::fs::write(
        &blocked,
        format!(
            "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\"><title>t</title></head><body><img src=\"{server}/img\"><script>document.title='ran'</script></body></html>"
        ),
    )
    .unwrap();
    let open = dir.path().join("open.html");
    std::fs::write(
        &open,
        format!("<!DOCTYPE html><html><head><title>t</title></head><body><img src=\"{server}/img\"><script>document.title='ran'</script></body></html>"),
    )
    .unwrap();
    let mut browser = browser();
    let tab = browser.open(&blocked, 800, 600);
    let violations = tab
        .messages()
        .into_iter()
        .filter(|m| m.contains("Content Security Policy"))
        .count();
    assert!(violations >= 2, "{:?}", tab.messages());
    let mut tab = browser.open(&open, 800, 600);
    assert_eq!(tab.eval("document.title"), "ran");
    assert_eq!(tab.requests(), vec![format!("{server}/img")]);
    drop(browser);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

/// A stand-in for AWS's JSON protocol on 127.0.0.1 that answers `ListRules` with one rule
/// and `ListTargetsByRule` with one queue target (no dead-letter queue) whose names carry
/// `hostile` markup, and every other call (the queue's) with an `AccessDenied` whose
/// message is `hostile` too. One request per connection.
fn hostile_aws(hostile: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            let head_end = loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
                if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            };
            let length: usize = header("content-length:")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while request.len() < head_end + length {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let target = header("x-amz-target:").unwrap_or_default();
            let (status, body) = if target.ends_with(".listrules") {
                (
                    "200 OK",
                    json!({"Rules": [{
                        "Name": format!("to-crm{hostile}"),
                        "Arn": format!("arn:aws:events:us-east-1:123456789012:rule/b/to-crm{hostile}"),
                        "EventBusName": "b",
                        "State": "ENABLED",
                        "EventPattern": "{\"source\":[\"x\"]}"
                    }]}),
                )
            } else if target.ends_with(".listtargetsbyrule") {
                (
                    "200 OK",
                    json!({"Targets": [{
                        "Id": format!("crm{hostile}"),
                        "Arn": "arn:aws:sqs:us-east-1:123456789012:crm-in"
                    }]}),
                )
            } else {
                (
                    "400 Bad Request",
                    json!({"__type": "AccessDenied", "message": hostile}),
                )
            };
            let body = body.to_string();
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    address
}

#[test]
fn doctor_html_shows_hostile_names_and_errors_as_text_and_nothing_runs_or_loads() {
    let (server, hits) = counting_server();
    let hostile = format!(
        "<script>document.title='pwned'</script>\"><img src={server}/img onerror=\"document.title='pwned'\"> <a href=\"javascript:document.title='pwned'\">x</a> \u{202E}gnp.exe"
    );
    let aws = hostile_aws(hostile);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("doctor");
    let run = dlq_triage(&["doctor", "--bus", "b", "--out"])
        .arg(&out)
        .env("AWS_ENDPOINT_URL", &aws)
        .output()
        .expect("doctor starts");
    // target-without-dlq is an error: events will be lost.
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    let record: Value =
        serde_json::from_slice(&std::fs::read(out.join("doctor.json")).unwrap()).unwrap();
    assert_eq!(
        record["findings"][0]["code"], "target-without-dlq",
        "{record:#}"
    );
    assert_eq!(
        record["unavailable"].as_array().unwrap().len(),
        1,
        "{record:#}"
    );

    let mut browser = browser();
    let mut tab = browser.open(&out.join("doctor.html"), 1280, 800);
    assert_eq!(tab.eval("document.title"), "Pipeline audit");
    assert_eq!(tab.eval("document.scripts.length"), 0);
    assert_eq!(
        tab.eval(
            "document.querySelectorAll('img, iframe, object, embed, link, a, body style').length"
        ),
        0
    );
    assert_eq!(
        tab.eval("document.querySelectorAll('#findings tbody tr').length"),
        1
    );
    assert_eq!(
        tab.eval("document.querySelector('#findings tbody tr').dataset.severity"),
        "error"
    );
    let resource = tab.eval("document.querySelector('#findings tbody tr').cells[2].innerText");
    assert!(
        resource
            .as_str()
            .unwrap()
            .contains("to-crm<script>document.title='pwned'</script>"),
        "{resource}"
    );
    let unavailable = tab.eval("document.querySelector('#unavailable li').innerText");
    let unavailable = unavailable.as_str().unwrap();
    assert!(
        unavailable.starts_with("unavailable: SQS GetQueueUrl"),
        "{unavailable}"
    );
    assert!(unavailable.contains("onerror="), "{unavailable}");
    assert!(unavailable.contains("U+202E"), "{unavailable}");
    let shown = tab.eval("document.body.innerText");
    assert!(!shown.as_str().unwrap().contains('\u{202E}'));
    assert_nothing_loaded(&tab);
    screenshot(&mut tab, "hostile-doctor.png");
    drop(browser);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a request reached {server}");
}

/// Dead letters in minute `m` of the hour.
type PerMinute = fn(i64) -> i64;

/// A batch as an incident leaves it: the sample's 20 dead letters (09:06 to 09:25), then
/// an hour of 429s from the CRM webhook rising to 90 a minute, 30 a minute of target errors
/// from the WFM ingest for 40 minutes, and a Lambda failing a few times a minute, each with
/// its own message id and conversation, sent to the queue hours after the event's time.
fn incident_batch(dir: &Path) -> (PathBuf, usize) {
    let sample: Value = serde_json::from_slice(&event_bytes("sqs-mixed-batch.json")).unwrap();
    let records = sample["Records"].as_array().unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-28T09:00:00Z")
        .unwrap()
        .timestamp();
    let shapes: [(usize, PerMinute); 3] = [
        (0, |m| (m * 6).min(90).min((60 - m) * 18)),
        (3, |m| if (10..50).contains(&m) { 30 } else { 0 }),
        (13, |m| 4 + m % 5),
    ];
    let mut batch = records.clone();
    for (sample, per_minute) in shapes {
        for m in 0..60 {
            for n in 0..per_minute(m) {
                let mut r = records[sample].clone();
                let id = batch.len();
                let sent = start + m * 60 + (n * 60) / per_minute(m).max(1);
                r["messageId"] = json!(format!("5e1f0c8a-0000-4000-8000-{id:012}"));
                r["attributes"]["SentTimestamp"] = json!((sent * 1000).to_string());
                let mut body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
                body["id"] = json!(format!("0c0ffee0-0000-4000-8000-{id:012}"));
                body["time"] = json!(
                    chrono::DateTime::from_timestamp(sent - 3 * 3600, 0)
                        .unwrap()
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                body["detail"]["eventBody"]["conversationId"] =
                    json!(format!("c0a80000-0000-4000-8000-{:012}", id % 900));
                r["body"] = json!(body.to_string());
                batch.push(r);
            }
        }
    }
    let path = dir.join("incident.json");
    let n = batch.len();
    std::fs::write(
        &path,
        serde_json::to_vec(&json!({ "Records": batch })).unwrap(),
    )
    .unwrap();
    (path, n)
}

/// The page a person opens during a real incident (`make screenshot` takes the README's
/// picture from it): the busy incidents as lines, the sparse ones as bars, and at 1,280 px
/// nothing wider than the window and every incident row one line tall.
#[test]
fn a_real_incident_reads_at_1280_px_lines_for_the_busy_bars_for_the_sparse() {
    let dir = tempfile::tempdir().unwrap();
    let (batch, n) = incident_batch(dir.path());
    assert!(n > 4_000, "{n}");
    let report = analyzed(&batch, &dir.path().join("r"));
    assert_eq!(report["totalFailures"], n);
    let summary = summarized(
        &dir.path().join("r"),
        &dir.path().join("s"),
        Some("2026-11-28T10:05:00Z"),
    );
    let incidents = summary["incidents"].as_array().unwrap().len();

    let mut browser = browser();
    let mut tab = browser.open(&dir.path().join("s/summary.html"), 1280, 1600);
    screenshot(&mut tab, "incident-summary.png");
    let mut tab = browser.open(&dir.path().join("s/summary.html"), 1280, 800);
    let lines = tab.eval("document.querySelectorAll('svg.chart polyline.series').length");
    let bars = tab.eval("document.querySelectorAll('svg.timeline rect.span').length");
    assert_eq!(lines, 3, "the three busy incidents");
    assert_eq!(
        lines.as_u64().unwrap() + bars.as_u64().unwrap(),
        incidents as u64,
        "every other incident a bar"
    );
    let too_wide = tab.eval(
        "(() => { const w = document.documentElement.clientWidth; return Array.from(document.querySelectorAll('body *')).filter(e => { const r = e.getBoundingClientRect(); return r.width > w || r.right > w + 0.5; }).map(e => e.tagName + '#' + e.id + '.' + e.getAttribute('class') + ' ' + Math.round(e.getBoundingClientRect().width) + ' px'); })()",
    );
    assert_eq!(
        too_wide,
        json!([]),
        "elements wider than the 1,280 px window"
    );
    assert_eq!(
        tab.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth"),
        true
    );
    let tall = tab.eval(
        "Array.from(document.querySelectorAll('#incidents tbody tr')).filter(r => r.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(r.cells[2]).lineHeight)).length",
    );
    assert_eq!(tall, 0, "incident rows more than one line tall");
    assert_nothing_loaded(&tab);
}
