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
use std::sync::LazyLock;

use askama::Template;
use base64::Engine;
use sha2::{Digest, Sha256};

use bytes::Bytes;

use crate::classify::FailureCategory;
use crate::report::{NO_TARGET, Report};
use crate::summarize::{
    CONVERSATIONS_SHOWN, Detail, Health, INCIDENT_SECTIONS, Incident, PAYLOADS_PER_INCIDENT,
    Summary, said,
};
use html::capped;

/// Rows of the incident table; the JSON has them all.
pub(crate) const INCIDENT_ROWS: usize = 200;
/// The longest payload shown, in characters (pretty-printed).
const PAYLOAD_CHARS: usize = 4096;
/// The longest sample error shown, in characters.
const ERROR_CHARS: usize = 1000;
/// The most replays an incident's section names; the JSON has them all.
const REPLAY_NAMES: usize = 3;
/// The longest replay name shown, in characters (EventBridge's own are at most 64).
const REPLAY_NAME_CHARS: usize = 64;

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
pub(crate) enum Kind {
    /// `report.html` of the report with this id.
    Report(String),
    /// `summary.html`.
    Summary,
}

/// One page to render.
#[derive(Debug, Clone)]
pub(crate) struct Page<'a> {
    /// A report's page or a summary's.
    pub(crate) kind: Kind,
    /// The summary (of the one report, for a report's page).
    pub(crate) summary: &'a Summary,
    /// Its one-line answer.
    pub(crate) headline: &'a str,
    /// What the summary does not hold.
    pub(crate) detail: &'a Detail,
    /// Where all of it is: `summary.json`, or the report's JSON.
    pub(crate) data: &'a str,
    /// The Genesys Cloud domain (`mypurecloud.ie`) the conversations link to, if known.
    pub(crate) genesys_domain: Option<&'a str>,
}

/// `report.html`: the page of `report`, stored at `address` (its JSON), with the sample
/// payloads in `payloads`.
pub(crate) fn render_report(
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
    let replays: Replays = report
        .summary
        .incidents
        .iter()
        .filter(|i| i.replay_failures > 0)
        .map(|i| {
            let key = (i.category, i.target_arn.clone());
            (key, (i.replay_failures, i.replay_names.clone()))
        })
        .collect();
    render_with(
        &Page {
            kind: Kind::Report(report.report_id.clone()),
            summary: &finished.summary,
            headline: &headline,
            detail: &detail,
            data: address,
            genesys_domain,
        },
        &replays,
    )
}

/// Per incident (category, target), how many of its failed events came from archive
/// replays, and their names: `report.json`'s `replayFailures` and `replayNames`.
type Replays = BTreeMap<(FailureCategory, Option<String>), (usize, Vec<String>)>;

/// The frame every page shares: the policy, the style, the title and the closing line.
struct Frame<'a> {
    csp: &'a str,
    style: &'static str,
    /// The page's script, if it has one.
    script: Option<&'static str>,
    title: String,
    body_class: &'static str,
    version: &'static str,
    generated_at: &'a str,
    data: &'a str,
}

impl<'a> Frame<'a> {
    fn new(
        title: String,
        ongoing: bool,
        generated_at: &'a str,
        data: &'a str,
        script: bool,
    ) -> Self {
        Self {
            csp: &CSP,
            style: STYLE,
            script: script.then_some(SCRIPT),
            title,
            body_class: if ongoing { "ongoing" } else { "over" },
            version: env!("CARGO_PKG_VERSION"),
            generated_at,
            data,
        }
    }
}

/// A template rendered; a template that cannot write (only its own bug) is an empty page.
fn rendered(t: &impl Template) -> String {
    t.render().unwrap_or_default()
}

/// The view of a report's or a summary's page (`templates/page.html`).
#[derive(Template)]
#[template(path = "page.html")]
struct PageView<'a> {
    frame: Frame<'a>,
    headline: &'a str,
    lost_beyond_dlq: Option<u64>,
    /// The sentences of the line under the headline.
    meta: Vec<String>,
    /// How many sources could not be read, if any.
    unreadable_title: Option<String>,
    /// The sources not read: where, why (capped).
    unreadable: Vec<(&'a str, &'a str)>,
    /// The cards: value, what it counts.
    cards: Vec<(String, &'static str)>,
    chart: Option<chart::Chart>,
    categories: Vec<CategoryRow>,
    table: IncidentTable<'a>,
    sections: Vec<Section<'a>>,
    health: Option<&'a Health>,
    conversations: Option<Conversations<'a>>,
}

struct CategoryRow {
    category: String,
    count: usize,
    share: f64,
}

/// The sortable, filterable incident table.
struct IncidentTable<'a> {
    total: usize,
    categories: BTreeSet<String>,
    /// Target ARN → the name people know it by.
    targets: BTreeMap<&'a str, String>,
    rows: Vec<IncidentRow>,
}

struct IncidentRow {
    category: String,
    /// Whether the category links to the incident's section.
    linked: bool,
    target_arn: String,
    target_title: String,
    target_name: String,
    count: usize,
    first: String,
    first_short: String,
    last: String,
    last_short: String,
    peak: usize,
    conversations: usize,
    codes: String,
    ongoing: &'static str,
}

/// An incident's advice, sample errors and payloads, and its replay command.
struct Section<'a> {
    category: String,
    target: &'a str,
    ongoing: bool,
    recommended_action: &'a str,
    replay_as_is: &'a str,
    rules: &'a [String],
    /// Its codes and statuses whole (the table's cell may cut them).
    codes: String,
    errors: Vec<Capped<'a>>,
    payloads: Vec<Payload>,
    replay_command: &'a str,
    /// Its failures that came from archive replays, if any did.
    replayed: Option<Replayed>,
}

/// An incident's failures that came from archive replays: a replay that failed again.
struct Replayed {
    failures: usize,
    /// The first [`REPLAY_NAMES`] replays' names, capped (`…` where cut).
    names: Vec<String>,
    /// How many replays are not named.
    more: usize,
}

impl Replayed {
    fn of(replays: &Replays, i: &Incident) -> Option<Self> {
        let (failures, names) = replays.get(&(i.category, i.target_arn.clone()))?;
        Some(Self {
            failures: *failures,
            names: names
                .iter()
                .take(REPLAY_NAMES)
                .map(|n| match capped(n, REPLAY_NAME_CHARS) {
                    (shown, 0) => shown.to_owned(),
                    (shown, _) => format!("{shown}…"),
                })
                .collect(),
            more: names.len().saturating_sub(REPLAY_NAMES),
        })
    }
}

/// Text shown up to a length, and how many characters were left out.
struct Capped<'a> {
    shown: &'a str,
    more: usize,
}

struct Payload {
    id: String,
    bytes: usize,
    shown: String,
    more: usize,
}

struct Conversations<'a> {
    title: String,
    total: usize,
    /// Whether the org's region is known, so conversations link to Genesys Cloud.
    linked: bool,
    rows: Vec<ConversationRow<'a>>,
}

struct ConversationRow<'a> {
    id: &'a str,
    link: Option<String>,
    media: String,
    queues: String,
    start: String,
    end: String,
    first_failure: &'a str,
    failures: usize,
}

/// The page as one HTML document.
pub(crate) fn render(page: &Page) -> String {
    render_with(page, &Replays::new())
}

/// The page, naming the replays that failed again in `replays`.
fn render_with(page: &Page, replays: &Replays) -> String {
    let s = page.summary;
    let title = match &page.kind {
        Kind::Report(id) => format!("Dead-letter report {id}"),
        Kind::Summary => "Dead-letter summary".to_owned(),
    };
    let view = PageView {
        frame: Frame::new(title, s.ongoing, &s.generated_at, page.data, true),
        headline: page.headline,
        lost_beyond_dlq: s
            .health
            .as_ref()
            .map(|h| h.lost_beyond_dlq)
            .filter(|n| *n > 0),
        meta: meta(page),
        unreadable_title: (!s.unreadable.is_empty()).then(|| said::unreadable(s.unreadable.len())),
        unreadable: s
            .unreadable
            .iter()
            .take(INCIDENT_ROWS)
            .map(|u| (u.source.as_str(), capped(&u.reason, 300).0))
            .collect(),
        cards: cards(s),
        chart: chart::chart(s, &page.detail.per_minute),
        categories: categories(s),
        table: incident_table(s),
        sections: sections(page, replays),
        health: s.health.as_ref(),
        conversations: conversations(page),
    };
    rendered(&view)
}

/// The line under the headline: what was read, and the window.
fn meta(page: &Page) -> Vec<String> {
    let s = page.summary;
    let mut meta = Vec::new();
    if page.kind == Kind::Summary {
        meta.push(said::reports_read(s));
    }
    meta.extend(said::window(s));
    meta
}

fn cards(s: &Summary) -> Vec<(String, &'static str)> {
    vec![
        (s.total_failures.to_string(), "failed events"),
        (s.dead_letters.to_string(), "dead letters"),
        (s.stored.to_string(), "stored for replay"),
        (s.incidents.len().to_string(), "incidents"),
        (s.conversations.len().to_string(), "conversations"),
        (if s.ongoing { "yes" } else { "no" }.to_owned(), "ongoing"),
    ]
}

/// Failed events per category, largest first.
fn categories(s: &Summary) -> Vec<CategoryRow> {
    let total = s.total_failures.max(1);
    let mut by: Vec<_> = s.by_category.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    by.into_iter()
        .map(|(category, n)| CategoryRow {
            category: category.to_string(),
            count: *n,
            share: *n as f64 / total as f64,
        })
        .collect()
}

/// The target as people name it.
fn target_name(i: &Incident) -> String {
    said::target(i.target_arn.as_deref())
}

/// A time as the table shows it: `HH:MM:SS` of an RFC 3339 time (the cell's title and
/// sort key keep the whole).
fn clock(t: Option<&str>) -> (String, String) {
    let whole = t.unwrap_or("—").to_owned();
    let short = t
        .and_then(|t| t.get(11..19))
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit() || b == b':'))
        .map_or_else(|| whole.clone(), str::to_owned);
    (whole, short)
}

/// An incident's error codes with their counts, then its HTTP statuses.
fn codes(i: &Incident) -> String {
    let codes: Vec<String> = i
        .error_codes
        .iter()
        .map(|(c, n)| said::times(c, *n))
        .chain(i.http_statuses.iter().map(|h| format!("HTTP {h}")))
        .collect();
    codes.join(", ")
}

/// The incident table's first [`INCIDENT_ROWS`] rows and its filters.
fn incident_table(s: &Summary) -> IncidentTable<'_> {
    let shown = &s.incidents[..s.incidents.len().min(INCIDENT_ROWS)];
    let rows = shown
        .iter()
        .enumerate()
        .map(|(n, i)| {
            let (first, first_short) = clock(i.first_seen.as_deref());
            let (last, last_short) = clock(i.last_seen.as_deref());
            IncidentRow {
                category: i.category.to_string(),
                linked: n < INCIDENT_SECTIONS,
                target_arn: i.target_arn.clone().unwrap_or_default(),
                target_title: i.target_arn.as_deref().unwrap_or(NO_TARGET).to_owned(),
                target_name: target_name(i),
                count: i.count,
                first,
                first_short,
                last,
                last_short,
                peak: i.peak_per_minute,
                conversations: i.conversations,
                codes: codes(i),
                ongoing: if i.ongoing { "yes" } else { "no" },
            }
        })
        .collect();
    IncidentTable {
        total: s.incidents.len(),
        categories: shown.iter().map(|i| i.category.to_string()).collect(),
        targets: shown
            .iter()
            .map(|i| (i.target_arn.as_deref().unwrap_or(""), target_name(i)))
            .collect(),
        rows,
    }
}

/// The sections of the first [`INCIDENT_SECTIONS`] incidents.
fn sections<'a>(page: &Page<'a>, replays: &Replays) -> Vec<Section<'a>> {
    let s = page.summary;
    s.incidents
        .iter()
        .take(INCIDENT_SECTIONS)
        .map(|i| Section {
            category: i.category.to_string(),
            target: i.target_arn.as_deref().unwrap_or(NO_TARGET),
            ongoing: i.ongoing,
            recommended_action: &i.recommended_action,
            replay_as_is: &i.replay_as_is,
            rules: &i.rules,
            codes: codes(i),
            errors: i
                .sample_errors
                .iter()
                .map(|e| {
                    let (shown, more) = capped(e, ERROR_CHARS);
                    Capped { shown, more }
                })
                .collect(),
            payloads: i
                .sample_message_ids
                .iter()
                .take(PAYLOADS_PER_INCIDENT)
                .filter_map(|id| {
                    let body = page.detail.payloads.get(id)?;
                    let pretty = pretty(body);
                    let (shown, more) = capped(&pretty, PAYLOAD_CHARS);
                    Some(Payload {
                        id: id.clone(),
                        bytes: body.len(),
                        shown: shown.to_owned(),
                        more,
                    })
                })
                .collect(),
            replay_command: &i.replay_command,
            replayed: Replayed::of(replays, i),
        })
        .collect()
}

/// A payload for reading: pretty-printed JSON, else its text.
fn pretty(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// The conversation's page in the Genesys Cloud UI, for an id that is a plain identifier.
fn conversation_link(domain: &str, id: &str) -> Option<String> {
    let plain = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    plain.then(|| format!("https://apps.{domain}/directory/#/analytics/interactions/{id}/admin"))
}

/// The affected conversations, linked to Genesys Cloud when the org's region is known.
fn conversations<'a>(page: &Page<'a>) -> Option<Conversations<'a>> {
    let s = page.summary;
    if s.conversations.is_empty() {
        return None;
    }
    let rows = s
        .conversations
        .iter()
        .take(CONVERSATIONS_SHOWN)
        .enumerate()
        .map(|(n, c)| {
            let (start, end) = page
                .detail
                .conversation_times
                .get(n)
                .cloned()
                .unwrap_or_default();
            ConversationRow {
                id: &c.id,
                link: page
                    .genesys_domain
                    .and_then(|d| conversation_link(d, &c.id)),
                media: c.media_types.join(", "),
                queues: c.queue_ids.join(", "),
                start: start.unwrap_or_else(|| "—".into()),
                end: end.unwrap_or_else(|| "—".into()),
                first_failure: c.first_failure.as_deref().unwrap_or("—"),
                failures: c.failures,
            }
        })
        .collect();
    Some(Conversations {
        title: said::conversations_affected(s.conversations.len()),
        total: s.conversations.len(),
        linked: page.genesys_domain.is_some(),
        rows,
    })
}

#[cfg(test)]
mod tests;
