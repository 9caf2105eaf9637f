//! `report.html` and `summary.html`: one self-contained page per report and per summary.
//! Inline CSS, inline SVG and a small inline script (sorting, filtering, copy buttons)
//! allowed by its hash in a `Content-Security-Policy` meta tag that forbids every load;
//! every value from a dead letter or from Genesys Cloud is escaped text. A report's page
//! is the summary of that one report, so both pages come from this one renderer.

mod chart;
mod doctor;
mod html;

pub(crate) use doctor::render_doctor;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::LazyLock;

use base64::Engine;
use sha2::{Digest, Sha256};

use bytes::Bytes;

use crate::report::{Report, short_arn};
use crate::summarize::{
    CONVERSATIONS_SHOWN, Detail, Health, INCIDENT_SECTIONS, Incident, PAYLOADS_PER_INCIDENT,
    Summary,
};
use html::{capped, esc, esc_into};

/// Rows of the incident table; the JSON has them all.
pub const INCIDENT_ROWS: usize = 200;
/// The longest payload shown, in characters (pretty-printed).
const PAYLOAD_CHARS: usize = 4096;
/// The longest sample error shown, in characters.
const ERROR_CHARS: usize = 1000;

const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// The policy: nothing is loaded, the page's own script and style run by their hashes.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = |s: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s));
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src 'none'; base-uri 'none'; form-action 'none'",
        hash(SCRIPT),
        hash(STYLE)
    )
});

/// Which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `report.html` of the report with this id.
    Report(String),
    /// `summary.html`.
    Summary,
}

/// One page to render.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// A report's page or a summary's.
    pub kind: Kind,
    /// The summary (of the one report, for a report's page).
    pub summary: &'a Summary,
    /// Its one-line answer.
    pub headline: &'a str,
    /// What the summary does not hold.
    pub detail: &'a Detail,
    /// Where all of it is: `summary.json`, or the report's JSON.
    pub data: &'a str,
    /// The Genesys Cloud domain (`mypurecloud.ie`) the conversations link to, if known.
    pub genesys_domain: Option<&'a str>,
}

/// `report.html`: the page of `report`, stored at `address` (its JSON), with the sample
/// payloads in `payloads`.
pub fn render_report(
    report: &Report,
    address: &str,
    payloads: &BTreeMap<String, Bytes>,
    genesys_domain: Option<&str>,
) -> String {
    let finished = crate::summarize::of_report(report, address);
    let mut detail = finished.detail;
    detail.payloads = Detail::wanted_payloads(&finished.summary)
        .into_iter()
        .filter_map(|id| Some((id.clone(), payloads.get(&id)?.clone())))
        .collect();
    let headline = crate::report::headline(report)
        .replace("**", "")
        .replace('`', "");
    render(&Page {
        kind: Kind::Report(report.report_id.clone()),
        summary: &finished.summary,
        headline: &headline,
        detail: &detail,
        data: address,
        genesys_domain,
    })
}

/// The page as one HTML document.
pub fn render(page: &Page) -> String {
    let s = page.summary;
    let title = match &page.kind {
        Kind::Report(id) => format!("Dead-letter report {id}"),
        Kind::Summary => "Dead-letter summary".to_owned(),
    };
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"color-scheme\" content=\"light dark\">\n<meta name=\"referrer\" content=\"no-referrer\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body class=\"{}\">\n",
        *CSP,
        esc(&title),
        if s.ongoing { "ongoing" } else { "over" }
    );
    header(page, &title, &mut out);
    chart::render(s, &page.detail.per_minute, &mut out);
    categories(s, &mut out);
    incident_table(s, &mut out, page.data);
    incident_sections(page, &mut out);
    if let Some(h) = &s.health {
        health(h, &mut out);
    }
    conversations(page, &mut out);
    let _ = write!(
        out,
        "<p class=\"meta\">Made by dlq-triage {} at {}. The record is <code>{}</code>; this page shows it.</p>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&s.generated_at),
        esc(page.data)
    );
    out
}

fn header(page: &Page, title: &str, out: &mut String) {
    let s = page.summary;
    let _ = writeln!(
        out,
        "<h1>{}</h1>\n<p class=\"headline\" id=\"headline\">{}</p>",
        esc(title),
        esc(page.headline)
    );
    if let Some(h) = &s.health
        && h.lost_beyond_dlq > 0
    {
        let _ = writeln!(
            out,
            "<p class=\"lost\">LOST: {} event(s) could not be put in the dead-letter queue either (InvocationsFailedToBeSentToDlq); no report holds them.</p>",
            h.lost_beyond_dlq
        );
    }
    let mut meta = String::new();
    if page.kind == Kind::Summary {
        let _ = write!(
            meta,
            "Read {} report(s); {} record(s) listed by more than one report were counted once. ",
            s.reports, s.listed_again
        );
    }
    if s.window.since.is_some() || s.window.until.is_some() {
        let _ = write!(
            meta,
            "Window: {} to {}. ",
            s.window.since.as_deref().unwrap_or("the start"),
            s.window.until.as_deref().unwrap_or("now")
        );
    }
    let _ = writeln!(
        out,
        "<p class=\"meta\">{}Everything is in <code>{}</code>.</p>",
        esc(&meta),
        esc(page.data)
    );
    if !s.unreadable.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>{} source(s) could not be read</summary><ul>",
            s.unreadable.len()
        );
        for u in s.unreadable.iter().take(INCIDENT_ROWS) {
            let _ = writeln!(
                out,
                "<li><code>{}</code>: {}</li>",
                esc(&u.source),
                esc(capped(&u.reason, 300).0)
            );
        }
        out.push_str("</ul></details>\n");
    }
    out.push_str("<div class=\"cards\">\n");
    for (name, value) in [
        ("failed events", s.total_failures.to_string()),
        ("dead letters", s.dead_letters.to_string()),
        ("stored for replay", s.stored.to_string()),
        ("incidents", s.incidents.len().to_string()),
        ("conversations", s.conversations.len().to_string()),
        ("ongoing", if s.ongoing { "yes" } else { "no" }.to_owned()),
    ] {
        let _ = writeln!(out, "<div class=\"card\"><b>{value}</b>{name}</div>");
    }
    out.push_str("</div>\n");
}

/// Failed events per category, as bars.
fn categories(s: &Summary, out: &mut String) {
    out.push_str("<h2 id=\"categories\">Categories</h2>\n<table class=\"categories\">\n<thead><tr><th>category</th><th class=\"n\">failed events</th><th class=\"n\">share</th><th></th></tr></thead>\n<tbody>\n");
    let total = s.total_failures.max(1);
    let mut by: Vec<_> = s.by_category.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (category, n) in by {
        let share = *n as f64 / total as f64;
        let _ = writeln!(
            out,
            "<tr><td>{category}</td><td class=\"n\">{n}</td><td class=\"n\">{:.1} %</td><td><svg width=\"200\" height=\"12\" aria-hidden=\"true\"><rect class=\"bar\" width=\"{:.1}\" height=\"12\"/></svg></td></tr>",
            share * 100.0,
            (share * 200.0).max(1.0)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The target as people name it.
fn target_name(i: &Incident) -> String {
    i.target_arn
        .as_deref()
        .map(short_arn)
        .unwrap_or_else(|| "(no target)".into())
}

/// The sortable, filterable incident table.
fn incident_table(s: &Summary, out: &mut String, data: &str) {
    let _ = writeln!(
        out,
        "<h2 id=\"incidents-title\">Incidents ({})</h2>",
        s.incidents.len()
    );
    if s.incidents.is_empty() {
        out.push_str("<p class=\"note\">No failures.</p>\n");
        return;
    }
    let shown = &s.incidents[..s.incidents.len().min(INCIDENT_ROWS)];
    let categories: BTreeSet<String> = shown.iter().map(|i| i.category.to_string()).collect();
    let targets: BTreeMap<&str, String> = shown
        .iter()
        .map(|i| (i.target_arn.as_deref().unwrap_or(""), target_name(i)))
        .collect();
    out.push_str("<div class=\"controls\" id=\"incident-controls\" hidden>\n<label>Category <select id=\"f-category\"><option value=\"\">all</option>");
    for c in &categories {
        let _ = write!(out, "<option>{}</option>", esc(c));
    }
    out.push_str(
        "</select></label>\n<label>Target <select id=\"f-target\"><option value=\"\">all</option>",
    );
    for (arn, name) in &targets {
        let _ = write!(out, "<option value=\"{}\">{}</option>", esc(arn), esc(name));
    }
    out.push_str("</select></label>\n<label><input type=\"checkbox\" id=\"f-ongoing\"> ongoing only</label> <span id=\"f-shown\" class=\"note\"></span>\n</div>\n");
    out.push_str("<div class=\"wide\"><table id=\"incidents\">\n<thead><tr><th><button>category</button></th><th><button>target</button></th><th class=\"n\"><button>failed</button></th><th><button>first</button></th><th><button>last</button></th><th class=\"n\"><button>peak/min</button></th><th class=\"n\"><button>conversations</button></th><th>codes, statuses</th><th><button>ongoing</button></th></tr></thead>\n<tbody>\n");
    for (n, i) in shown.iter().enumerate() {
        let codes: Vec<String> = i
            .error_codes
            .iter()
            .map(|(c, n)| format!("{c} ×{n}"))
            .chain(i.http_statuses.iter().map(|h| format!("HTTP {h}")))
            .collect();
        let ongoing = if i.ongoing { "yes" } else { "no" };
        let link = if n < INCIDENT_SECTIONS {
            format!("<a href=\"#incident-{n}\">{}</a>", i.category)
        } else {
            i.category.to_string()
        };
        let _ = writeln!(
            out,
            "<tr data-category=\"{}\" data-target=\"{}\" data-ongoing=\"{ongoing}\"><td data-v=\"{}\">{link}</td><td title=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td class=\"n\" data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td><td>{}</td><td class=\"{ongoing}\">{ongoing}</td></tr>",
            i.category,
            esc(i.target_arn.as_deref().unwrap_or("")),
            i.category,
            esc(i.target_arn.as_deref().unwrap_or("(no target)")),
            esc(&target_name(i)),
            i.count,
            i.count,
            esc(i.first_seen.as_deref().unwrap_or("—")),
            esc(i.last_seen.as_deref().unwrap_or("—")),
            i.peak_per_minute,
            i.peak_per_minute,
            i.conversations,
            i.conversations,
            esc(&codes.join(", ")),
        );
    }
    out.push_str("</tbody>\n</table></div>\n");
    if s.incidents.len() > shown.len() {
        let _ = writeln!(
            out,
            "<p class=\"note\">… and {} more incidents in <code>{}</code>.</p>",
            s.incidents.len() - shown.len(),
            esc(data)
        );
    }
}

/// Each incident's advice, sample errors and payloads, and its replay command.
fn incident_sections(page: &Page, out: &mut String) {
    let s = page.summary;
    for (n, i) in s.incidents.iter().take(INCIDENT_SECTIONS).enumerate() {
        let _ = writeln!(
            out,
            "<section class=\"incident\" id=\"incident-{n}\">\n<h3>{} against <code>{}</code>{}</h3>",
            i.category,
            esc(i.target_arn.as_deref().unwrap_or("(no target)")),
            if i.ongoing {
                " <span class=\"yes\">ongoing</span>"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "<p><b>What to do:</b> {}</p>\n<p><b>Replay as-is once fixed:</b> {}</p>",
            esc(&i.recommended_action),
            esc(&i.replay_as_is)
        );
        if !i.rules.is_empty() {
            out.push_str("<p><b>Rules:</b> ");
            for (k, r) in i.rules.iter().enumerate() {
                let _ = write!(
                    out,
                    "{}<code>{}</code>",
                    if k > 0 { ", " } else { "" },
                    esc(r)
                );
            }
            out.push_str("</p>\n");
        }
        if !i.sample_errors.is_empty() {
            out.push_str("<p><b>Errors seen:</b></p>\n");
            for e in &i.sample_errors {
                let (shown, more) = capped(e, ERROR_CHARS);
                out.push_str("<pre class=\"error\">");
                esc_into(out, shown);
                if more > 0 {
                    let _ = write!(out, "… ({more} more characters)");
                }
                out.push_str("</pre>\n");
            }
        }
        for id in i.sample_message_ids.iter().take(PAYLOADS_PER_INCIDENT) {
            let Some(body) = page.detail.payloads.get(id) else {
                continue;
            };
            let pretty = pretty(body);
            let (shown, more) = capped(&pretty, PAYLOAD_CHARS);
            let _ = write!(
                out,
                "<details class=\"payload\"><summary>Payload of <code>{}</code> ({} bytes)</summary><pre>",
                esc(id),
                body.len()
            );
            esc_into(out, shown);
            if more > 0 {
                let _ = write!(out, "\n… ({more} more characters in the stored payload)");
            }
            out.push_str("</pre></details>\n");
        }
        let _ = writeln!(
            out,
            "<p><b>Replay exactly this incident:</b></p>\n<div class=\"cmd\"><pre id=\"cmd-{n}\">{}</pre><button class=\"copy\" data-copy=\"cmd-{n}\" hidden>Copy</button></div>\n</section>",
            esc(&i.replay_command)
        );
    }
}

/// A payload for reading: pretty-printed JSON, else its text.
fn pretty(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// EventBridge's own figures for the incidents' rules and targets.
fn health(h: &Health, out: &mut String) {
    out.push_str("<h2 id=\"health\">Target health</h2>\n<p class=\"note\">EventBridge's metrics (AWS/Events) per rule over the window; they have no target dimension, so a rule's figures cover all its targets and the split by target is the dead letters'.</p>\n");
    for source in h.event_sources.iter().filter(|e| e.state != "ACTIVE") {
        let _ = writeln!(
            out,
            "<p class=\"lost\">NOT SENDING: partner event source <code>{}</code> is {}.</p>",
            esc(&source.name),
            esc(&source.state)
        );
    }
    if !h.rules.is_empty() {
        out.push_str("<table id=\"health-rules\">\n<thead><tr><th>rule</th><th class=\"n\">invocations</th><th class=\"n\">sent to DLQ</th><th class=\"n\">failure ratio</th><th class=\"n\">lost beyond DLQ</th><th class=\"n\">retries</th><th class=\"n\">throttled</th></tr></thead>\n<tbody>\n");
        for r in &h.rules {
            let _ = write!(
                out,
                "<tr><td title=\"{}\">{}</td>",
                esc(&r.rule_arn),
                esc(&r.rule_name)
            );
            match r.figures() {
                Some(figures) => {
                    for figure in figures {
                        let _ = write!(out, "<td class=\"n\">{figure}</td>");
                    }
                }
                None => {
                    let _ = write!(
                        out,
                        "<td colspan=\"6\" class=\"lost\">{}</td>",
                        esc(r.no_metrics.as_deref().unwrap_or_default())
                    );
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
    }
    for d in &h.api_destinations {
        let _ = writeln!(
            out,
            "<p>API destination <code>{}</code>: {}{}</p>",
            esc(&d.name),
            d.rates(),
            d.advice
                .as_deref()
                .map_or(String::new(), |a| format!(" <b>{}</b>", esc(a)))
        );
    }
    for g in &h.genesys_integrations {
        let _ = writeln!(
            out,
            "<p{}>Genesys Cloud integration <code>{}</code>: {}{}{}</p>",
            if g.code == "ACTIVE" || !g.feeds_rules {
                ""
            } else {
                " class=\"lost\""
            },
            esc(&g.name),
            esc(&g.code),
            g.detail
                .as_deref()
                .map_or(String::new(), |d| format!(" ({})", esc(d))),
            g.last_updated
                .as_deref()
                .map_or(String::new(), |t| format!(", since {}", esc(t)))
        );
    }
    for line in &h.unavailable {
        let _ = writeln!(out, "<p class=\"note\">Not looked up: {}</p>", esc(line));
    }
}

/// The conversation's page in the Genesys Cloud UI, for an id that is a plain identifier.
fn conversation_link(domain: &str, id: &str) -> Option<String> {
    let plain = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    plain.then(|| format!("https://apps.{domain}/directory/#/analytics/interactions/{id}/admin"))
}

/// The affected conversations, linked to Genesys Cloud when the org's region is known.
fn conversations(page: &Page, out: &mut String) {
    let s = page.summary;
    if s.conversations.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<h2 id=\"conversations\">Conversations affected ({})</h2>",
        s.conversations.len()
    );
    if page.genesys_domain.is_none() {
        out.push_str("<p class=\"note\">Set GENESYS_REGION to link each conversation to Genesys Cloud.</p>\n");
    }
    out.push_str("<div class=\"wide\"><table id=\"conversation-table\">\n<thead><tr><th>conversation</th><th>media</th><th>queues</th><th>start</th><th>end</th><th>first failure</th><th class=\"n\">dead letters</th></tr></thead>\n<tbody>\n");
    for (n, c) in s.conversations.iter().take(CONVERSATIONS_SHOWN).enumerate() {
        let (start, end) = page
            .detail
            .conversation_times
            .get(n)
            .cloned()
            .unwrap_or_default();
        let id = match page
            .genesys_domain
            .and_then(|d| conversation_link(d, &c.id))
        {
            Some(url) => format!(
                "<a href=\"{url}\" rel=\"noreferrer noopener\" target=\"_blank\"><code>{}</code></a>",
                esc(&c.id)
            ),
            None => format!("<code>{}</code>", esc(&c.id)),
        };
        let _ = writeln!(
            out,
            "<tr><td>{id}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(&c.media_types.join(", ")),
            esc(&c.queue_ids.join(", ")),
            esc(start.as_deref().unwrap_or("—")),
            esc(end.as_deref().unwrap_or("—")),
            esc(c.first_failure.as_deref().unwrap_or("—")),
            c.failures
        );
    }
    out.push_str("</tbody>\n</table></div>\n");
    if s.conversations.len() > CONVERSATIONS_SHOWN {
        let _ = writeln!(
            out,
            "<p class=\"note\">… and {} more in <code>{}</code>.</p>",
            s.conversations.len() - CONVERSATIONS_SHOWN,
            esc(page.data)
        );
    }
}

#[cfg(test)]
mod tests;
