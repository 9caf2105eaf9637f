//! The report for people: headline, pie chart, incidents, next steps, affected
//! conversations and replay commands, in Markdown for an incident channel. The markup is
//! `templates/report.md`; this module builds its view of one report.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use askama::Template;

use super::said;
use super::schema::{BatchIncident, ReplaySource, Report, TriageRecord};
use crate::classify::FailureCategory;
use crate::correlate::InteractionInfo;
use crate::dlq::BodyKind;
use crate::text::truncate;

/// The view `templates/report.md` renders.
#[derive(Template)]
#[template(path = "report.md")]
struct ReportMd<'a> {
    generated_at: &'a str,
    headline: String,
    /// Everything under the headline; `None` for an empty batch.
    batch: Option<BatchMd<'a>>,
    /// The report's address as one shell word, for the replay commands.
    address: String,
}

/// The sections of a batch with failures.
struct BatchMd<'a> {
    by_category: &'a BTreeMap<FailureCategory, usize>,
    timeline: Option<TimelineMd>,
    incidents: Vec<IncidentMd<'a>>,
    steps: Vec<StepMd<'a>>,
    conversations: Option<ConversationsMd<'a>>,
    custom_bus: Option<CustomBusMd<'a>>,
    replays: Vec<ReplayMd<'a>>,
}

/// The Gantt chart of failures per category over time.
struct TimelineMd {
    /// The bucket width, in words.
    bucket: String,
    /// The axis's time format.
    axis: &'static str,
    /// Per category, its bars.
    sections: Vec<(FailureCategory, Vec<Bar>)>,
}

/// A bar of the Gantt chart: failures, bucket start, bucket end.
type Bar = (usize, String, String);

/// A row of the incident table.
struct IncidentMd<'a> {
    n: usize,
    category: FailureCategory,
    /// The short target, or the no-target label.
    target: String,
    /// Error codes with their counts, or a dash.
    codes: String,
    /// HTTP statuses, or a dash.
    statuses: String,
    count: usize,
    first: &'a str,
    last: &'a str,
    conversations: usize,
    sample: Option<&'a str>,
}

/// The next steps of one category.
struct StepMd<'a> {
    category: FailureCategory,
    n: usize,
    records: &'static str,
    /// Error codes whose advice differs from the category's, with that advice.
    advised: Vec<(&'a str, &'static str)>,
    /// A sample error per incident: the short target, the message.
    errors: Vec<(String, String)>,
    replays: Vec<ReplayFailureMd<'a>>,
}

/// An incident's failures that came from archive replays.
struct ReplayFailureMd<'a> {
    failures: usize,
    target: String,
    names: &'a [String],
}

/// The affected conversations.
struct ConversationsMd<'a> {
    statuses: &'a BTreeMap<String, usize>,
    rows: Vec<ConversationMd<'a>>,
    /// Incidents with conversations not listed: incident number, how many.
    not_shown: Vec<(usize, usize)>,
}

/// A row of the conversations table.
struct ConversationMd<'a> {
    n: usize,
    category: FailureCategory,
    id: &'a str,
    status: &'static str,
    /// What Genesys Cloud said of a conversation it found.
    found: Option<FoundMd<'a>>,
    /// The first CorrelationIds of its failed events.
    correlation_ids: Vec<&'a str>,
    more_correlation_ids: usize,
}

/// The cells of a conversation Genesys Cloud found (each a dash when unknown).
struct FoundMd<'a> {
    start: &'a str,
    end: &'a str,
    duration: String,
    direction: &'a str,
    media: String,
    queues: String,
    divisions: String,
}

/// Custom Event Bus failure summaries.
struct CustomBusMd<'a> {
    summaries: usize,
    /// "summary stands for" or "summaries stand for".
    stand: &'static str,
    events: usize,
    /// "event" or "events".
    events_word: &'static str,
    rows: Vec<CustomBusRowMd<'a>>,
}

/// One summary: its message id, how many events it stands for, their first ids.
struct CustomBusRowMd<'a> {
    message_id: &'a str,
    events: usize,
    events_word: &'static str,
    event_ids: &'a [String],
}

/// The replay command of the stored records of one category and target.
struct ReplayMd<'a> {
    category: FailureCategory,
    target: Option<&'a str>,
    shown: String,
    count: usize,
    /// How the target transforms its input, when it does.
    transforms: Option<&'a str>,
    /// The target is known to take the event unchanged.
    takes_unchanged: bool,
    /// `--category` and `--target`, as shell words.
    filters: String,
}

/// Renders the report for an incident channel: headline, pie, incident table, next steps,
/// affected conversations and replay commands.
/// `report_key` is where this report's JSON is stored (relative to the folder, or the S3
/// key), for the replay commands.
pub(crate) fn render_markdown(report: &Report, replay: &ReplaySource, report_key: &str) -> String {
    let view = ReportMd {
        generated_at: &report.generated_at,
        headline: headline(report),
        batch: (report.total_failures > 0).then(|| BatchMd {
            by_category: &report.summary.by_category,
            timeline: timeline(report),
            incidents: report
                .summary
                .incidents
                .iter()
                .enumerate()
                .map(incident)
                .collect(),
            steps: next_steps(report),
            conversations: conversations(report),
            custom_bus: custom_bus(report),
            replays: replays(report),
        }),
        address: shell_word(&replay.address_of(report_key)),
    };
    view.render().unwrap_or_default()
}

fn incident((i, inc): (usize, &BatchIncident)) -> IncidentMd<'_> {
    let codes: Vec<String> = inc
        .error_codes
        .iter()
        .map(|(c, n)| said::times(c, *n))
        .collect();
    let statuses: Vec<String> = inc.http_statuses.iter().map(u16::to_string).collect();
    IncidentMd {
        n: i + 1,
        category: inc.category,
        target: said::target(inc.target_arn.as_deref()),
        codes: or_dash(&codes),
        statuses: or_dash(&statuses),
        count: inc.count,
        first: inc.first_seen.as_deref().unwrap_or("—"),
        last: inc.last_seen.as_deref().unwrap_or("—"),
        conversations: inc.conversations,
        sample: inc.sample_message_ids.first().map(String::as_str),
    }
}

/// What to do, per category: its meaning, the fix, the advice of each error code, a
/// sample error per incident, and the replays that failed again.
fn next_steps(report: &Report) -> Vec<StepMd<'_>> {
    let s = &report.summary;
    s.by_category
        .iter()
        .map(|(category, &n)| {
            let incidents = || s.incidents.iter().filter(|i| i.category == *category);
            let mut codes = BTreeSet::new();
            let advised = incidents()
                .flat_map(|inc| inc.error_codes.keys())
                .filter_map(|c| {
                    let (action, _) = category.advice(Some(c));
                    (action != category.recommended_action() && codes.insert(c))
                        .then_some((c.as_str(), action))
                })
                .collect();
            StepMd {
                category: *category,
                n,
                records: plural(n, "record", "records"),
                advised,
                errors: incidents()
                    .filter_map(|inc| {
                        let m = inc.sample_error_message.as_deref()?;
                        Some((said::target(inc.target_arn.as_deref()), truncate(m, 300)))
                    })
                    .collect(),
                replays: incidents()
                    .filter(|inc| inc.replay_failures > 0)
                    .map(|inc| ReplayFailureMd {
                        failures: inc.replay_failures,
                        target: said::target(inc.target_arn.as_deref()),
                        names: &inc.replay_names,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// One line an on-call engineer can paste as the incident's summary.
pub(crate) fn headline(report: &Report) -> String {
    let s = &report.summary;
    let n = report.total_failures;
    if n == 0 {
        return "**0 failed deliveries.**".to_owned();
    }
    let targets = s.by_target.len();
    let (top, top_n) = s
        .by_category
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(c, n)| (*c, *n))
        .unwrap_or((FailureCategory::Unknown, 0));
    let window = match (&s.first_seen, &s.last_seen) {
        (Some(a), Some(b)) if a == b => format!(" at {a}"),
        (Some(a), Some(b)) => format!(" between {a} and {b}"),
        _ => String::new(),
    };
    format!(
        "**{n} failed {} to {targets} {}{window}; top cause `{top}` ({top_n}, {}%); {} {} affected.**",
        plural(n, "delivery", "deliveries"),
        plural(targets, "target", "targets"),
        top_n * 100 / n,
        s.conversations,
        plural(s.conversations, "conversation", "conversations"),
    )
}

/// The affected conversations, per incident (the first [`CONVERSATIONS_SHOWN`] of each),
/// with what Genesys Cloud said of each and its events' CorrelationIds.
fn conversations(report: &Report) -> Option<ConversationsMd<'_>> {
    let s = &report.summary;
    if s.conversations == 0 {
        return None;
    }
    // The first answer per conversation (all records of one conversation share it).
    let mut info_of: HashMap<&str, &InteractionInfo> = HashMap::new();
    // The Genesys CorrelationIds of each conversation's failed events (support asks for them).
    let mut correlation_of: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for r in &report.records {
        if let Some(id) = &r.interaction_id {
            info_of.entry(id).or_insert(&r.interaction_info);
            if let Some(c) = &r.correlation_id {
                correlation_of.entry(id).or_default().insert(c);
            }
        }
    }
    let mut rows = Vec::new();
    let mut not_shown = Vec::new();
    for (i, inc) in s.incidents.iter().enumerate() {
        for id in inc.conversation_ids.iter().take(CONVERSATIONS_SHOWN) {
            let info = info_of.get(id.as_str()).copied();
            let correlation = correlation_of.get(id.as_str());
            rows.push(ConversationMd {
                n: i + 1,
                category: inc.category,
                id,
                status: info.map_or("unknown", InteractionInfo::status),
                found: info.and_then(found),
                correlation_ids: correlation
                    .map_or(Vec::new(), |c| c.iter().take(2).copied().collect()),
                more_correlation_ids: correlation.map_or(0, |c| c.len().saturating_sub(2)),
            });
        }
        if inc.conversations > CONVERSATIONS_SHOWN {
            not_shown.push((i + 1, inc.conversations - CONVERSATIONS_SHOWN));
        }
    }
    Some(ConversationsMd {
        statuses: &s.by_interaction_status,
        rows,
        not_shown,
    })
}

/// Conversations listed per incident; the rest are counted, and all are in the JSON.
const CONVERSATIONS_SHOWN: usize = 10;

/// The cells of a conversation Genesys Cloud found.
fn found(info: &InteractionInfo) -> Option<FoundMd<'_>> {
    let InteractionInfo::Found(c) = info else {
        return None;
    };
    Some(FoundMd {
        start: c.conversation_start.as_deref().unwrap_or("—"),
        end: c.conversation_end.as_deref().unwrap_or("in progress"),
        duration: c
            .duration_ms
            .map_or_else(|| "—".into(), |d| format!("{}s", d / 1000)),
        direction: c.originating_direction.as_deref().unwrap_or("—"),
        media: or_dash(&c.media_types),
        queues: or_dash(&c.queue_ids),
        divisions: or_dash(&c.division_ids),
    })
}

/// Bucket widths for the timeline, in seconds: the smallest that gives at most
/// [`MAX_BUCKETS`] buckets over the batch's span.
const BUCKETS: &[i64] = &[60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400];
const MAX_BUCKETS: i64 = 24;

/// Failures per category over the batch's time span, as a Mermaid Gantt chart (GitHub
/// renders it): one section per category, one bar per time bucket with failures, labelled
/// with its count.
fn timeline(report: &Report) -> Option<TimelineMd> {
    let mut points: Vec<(FailureCategory, i64, usize)> = Vec::new();
    for r in &report.records {
        if let Some(t) = r.timestamp.as_deref().and_then(super::parse_time) {
            points.push((r.failure_category, t.timestamp(), r.event_count.max(1)));
        }
    }
    let first = points.iter().map(|p| p.1).min()?;
    let last = points.iter().map(|p| p.1).max()?;
    let span = last - first;
    let width = bucket_width(span);
    let start = first - first.rem_euclid(width);
    let mut counts: BTreeMap<FailureCategory, BTreeMap<i64, usize>> = BTreeMap::new();
    for (category, t, n) in points {
        *counts
            .entry(category)
            .or_default()
            .entry((t - start) / width)
            .or_default() += n;
    }
    let at = |bucket: i64| {
        chrono::DateTime::from_timestamp(start + bucket * width, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default()
    };
    Some(TimelineMd {
        bucket: bucket_name(width),
        axis: if span >= 2 * 86_400 {
            "%m-%d %H:%M"
        } else {
            "%H:%M"
        },
        sections: counts
            .into_iter()
            .map(|(category, buckets)| {
                let bars = buckets
                    .into_iter()
                    .map(|(bucket, n)| (n, at(bucket), at(bucket + 1)))
                    .collect();
                (category, bars)
            })
            .collect(),
    })
}

/// The width of a time bucket, in seconds, for a span of `span` seconds: the first of
/// [`BUCKETS`] that cuts it into fewer than [`MAX_BUCKETS`] buckets.
pub(crate) fn bucket_width(span: i64) -> i64 {
    BUCKETS
        .iter()
        .copied()
        .find(|w| span / w < MAX_BUCKETS)
        .unwrap_or_else(|| (span / MAX_BUCKETS).max(1) + 1)
}

pub(crate) fn bucket_name(seconds: i64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{}-day", s / 86_400),
        s if s % 3600 == 0 => format!("{}-hour", s / 3600),
        s if s % 60 == 0 => format!("{}-minute", s / 60),
        s => format!("{s}-second"),
    }
}

/// Custom Event Bus failure summaries (the first 20): how many events they stand for, and
/// that their stored payloads are the summaries, not the events.
fn custom_bus(report: &Report) -> Option<CustomBusMd<'_>> {
    let summaries: Vec<&TriageRecord> = report
        .records
        .iter()
        .filter(|r| r.body_kind == BodyKind::CustomBusFailure)
        .collect();
    if summaries.is_empty() {
        return None;
    }
    let events = summaries.iter().map(|r| r.event_count.max(1)).sum();
    Some(CustomBusMd {
        summaries: summaries.len(),
        stand: plural(summaries.len(), "summary stands for", "summaries stand for"),
        events,
        events_word: plural(events, "event", "events"),
        rows: summaries
            .into_iter()
            .take(20)
            .map(|r| CustomBusRowMd {
                message_id: &r.message_id,
                events: r.event_count,
                events_word: plural(r.event_count, "event", "events"),
                event_ids: &r.failed_event_ids[..r.failed_event_ids.len().min(10)],
            })
            .collect(),
    })
}

/// The stored records per (category, target): one command each (`--target` is the filter
/// replay has; incidents that differ only by error code share it).
fn replays(report: &Report) -> Vec<ReplayMd<'_>> {
    let mut groups: BTreeMap<(FailureCategory, Option<&str>), usize> = BTreeMap::new();
    for r in &report.records {
        if r.replay_payload_key.is_some() {
            *groups
                .entry((r.failure_category, r.failure.target_arn.as_deref()))
                .or_default() += 1;
        }
    }
    groups
        .into_iter()
        .map(|((category, target), count)| {
            let input = target.and_then(|t| report.summary.target_inputs.get(t));
            let mut filters = format!("--category {category}");
            if let Some(t) = target {
                filters.push_str(" --target ");
                filters.push_str(&shell_word(t));
            }
            ReplayMd {
                category,
                target,
                shown: said::target(target),
                count,
                transforms: input.map(String::as_str).filter(|i| *i != "none"),
                takes_unchanged: input.is_some_and(|i| i == "none"),
                filters,
            }
        })
        .collect()
}

/// A word for a POSIX shell: plain when it is made of safe characters, else single-quoted;
/// control characters (which could end the code block) are dropped.
pub(crate) fn shell_word(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:=@+,".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The resource part of an ARN (`api-destination/crm-webhook`), which is what people name.
pub(crate) fn short_arn(arn: &str) -> String {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    // API destination ARNs end in a UUID that nobody recognises.
    match resource.strip_prefix("api-destination/") {
        Some(rest) => format!("api-destination/{}", rest.split('/').next().unwrap_or(rest)),
        None => resource.to_owned(),
    }
}

/// The escaper askama applies to every `{{ value }}` of the `.md` templates (`askama.toml`):
/// [`text`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Markdown;

impl askama::filters::Escaper for Markdown {
    fn write_escaped_str<W: std::fmt::Write>(&self, mut dest: W, s: &str) -> std::fmt::Result {
        dest.write_str(&text(s))
    }
}

/// A value from a dead letter or from Genesys Cloud as Markdown text, safe in a table cell:
/// control characters become spaces, HTML is escaped, and the characters that would start
/// Markdown syntax (emphasis, code, links, strike-through, a cell boundary) are escaped.
pub(crate) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if c.is_control() => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A value as an inline code span that nothing inside can close: the fence is one backtick
/// longer than the longest run of backticks in it (CommonMark), control characters become
/// spaces, and `|` is escaped so a table cell cannot end inside it.
pub(crate) fn code(s: &str) -> String {
    let body: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if body.starts_with('`') || body.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// The items joined by commas, or a dash for none (escaped by the template).
fn or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "—".to_owned()
    } else {
        items.join(", ")
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{record, report_of as build};
    use FailureCategory::*;

    const API: &str = "arn:aws:events:eu-west-1:111122223333:api-destination/crm-webhook/7e08279e-244f-4443-a5f4-b9c262da4d81";

    #[test]
    fn the_headline_names_the_count_the_window_and_the_top_cause() {
        let report = build(vec![
            record(
                "a",
                RateLimitExceeded,
                Some(API),
                None,
                "2026-11-28T09:00:00Z",
            ),
            record(
                "b",
                RateLimitExceeded,
                Some(API),
                None,
                "2026-11-28T09:10:00Z",
            ),
            record("c", TargetError, None, None, "2026-11-28T09:05:00Z"),
        ]);
        assert_eq!(
            headline(&report),
            "**3 failed deliveries to 2 targets between 2026-11-28T09:00:00Z and 2026-11-28T09:10:00Z; top cause `RATE_LIMIT_EXCEEDED` (2, 66%); 0 conversations affected.**"
        );
    }

    #[test]
    fn an_empty_batch_says_so_and_nothing_more() {
        let md = render_markdown(
            &build(vec![]),
            &ReplaySource::Folder("out".into()),
            "report.json",
        );
        assert!(md.contains("**0 failed deliveries.**"));
        assert!(md.contains("The batch was empty"));
        assert!(!md.contains("## Incidents"));
    }

    #[test]
    fn incidents_show_short_targets_and_escape_table_cells() {
        let mut r = record(
            "a|b",
            PayloadMalformed,
            Some(API),
            Some("INVALID|JSON"),
            "2026-11-28T09:00:00Z",
        );
        r.failure.error_message = Some("line one\nline | two".into());
        let md = render_markdown(
            &build(vec![r]),
            &ReplaySource::Folder("out".into()),
            "report.json",
        );
        assert!(md.contains("| api-destination/crm-webhook |"), "{md}");
        assert!(md.contains("INVALID\\|JSON"), "{md}");
        assert!(md.contains("`a\\|b`"), "{md}");
        assert!(md.contains("line one line \\| two"), "{md}");
        assert!(
            md.contains("\"PAYLOAD_MALFORMED\" : 1"),
            "the pie chart: {md}"
        );
    }

    #[test]
    fn hostile_values_cannot_break_out_of_their_cell_or_code_span() {
        let target = "arn:aws:lambda:eu-west-1:1:function:x`<img src=x onerror=alert(1)>`|y";
        let mut r = record(
            "m`1",
            TargetError,
            Some(target),
            Some("E<b>_*x*_"),
            "2026-11-28T09:00:00Z",
        );
        r.failure.error_message = Some("``` fenced\u{1b}[31m red\n# heading\r<script>".into());
        let md = render_markdown(
            &build(vec![r]),
            &ReplaySource::Folder("out".into()),
            "report.json",
        );
        assert!(
            !md.chars().any(|c| c.is_control() && c != '\n'),
            "control characters: {md:?}"
        );
        // In a table cell, HTML and Markdown are escaped.
        let row = md.lines().find(|l| l.starts_with("| 1 |")).unwrap();
        assert!(
            row.contains("function:x\\`&lt;img src=x onerror=alert(1)&gt;\\`\\|y"),
            "{row}"
        );
        assert!(row.contains("E&lt;b&gt;\\_\\*x\\*\\_"), "{row}");
        // In a code span (where HTML is shown as text), a longer fence keeps it one span.
        assert!(
            md.contains("- Error from ``function:x`<img src=x onerror=alert(1)>`\\|y``: ```` ``` fenced [31m red # heading <script> ````"),
            "{md}"
        );
        // The incidents row keeps its ten cells.
        let unescaped = row.matches('|').count() - row.matches("\\|").count();
        assert_eq!(unescaped, 11, "{row}");
    }

    #[test]
    fn replay_commands_name_this_report_and_each_incidents_filters() {
        let report = build(vec![
            record(
                "a",
                RateLimitExceeded,
                Some(API),
                None,
                "2026-11-28T09:00:00Z",
            ),
            record(
                "b",
                PayloadMalformed,
                Some(API),
                None,
                "2026-11-28T09:00:00Z",
            ),
        ]);
        let local = render_markdown(
            &report,
            &ReplaySource::Folder("my out".into()),
            "report.json",
        );
        assert!(
            local.contains(&format!(
                "dlq-triage replay 'my out/report.json' --category RATE_LIMIT_EXCEEDED --target {API} --to-target"
            )),
            "{local}"
        );
        assert!(
            local.contains("--category PAYLOAD_MALFORMED --target"),
            "{local}"
        );
        assert!(
            local.contains("# PAYLOAD_MALFORMED: "),
            "a fix-first category says so: {local}"
        );
        let s3 = render_markdown(
            &report,
            &ReplaySource::Bucket("reports-bucket".into()),
            "genesys-dlq/reports/dt=2026-11-28/r1.json",
        );
        assert!(
            s3.contains("dlq-triage replay s3://reports-bucket/genesys-dlq/reports/dt=2026-11-28/r1.json --category RATE_LIMIT_EXCEEDED"),
            "{s3}"
        );
    }

    #[test]
    fn the_replay_section_says_when_the_target_transforms_its_input() {
        let mut report = build(vec![record(
            "a",
            RateLimitExceeded,
            Some(API),
            None,
            "2026-11-28T09:00:00Z",
        )]);
        let plain = render_markdown(&report, &ReplaySource::Folder("out".into()), "report.json");
        assert!(!plain.contains("transforms its input"), "{plain}");
        report
            .summary
            .target_inputs
            .insert(API.to_owned(), "InputTransformer".to_owned());
        let md = render_markdown(&report, &ReplaySource::Folder("out".into()), "report.json");
        assert!(
            md.contains("The target transforms its input (InputTransformer)"),
            "{md}"
        );
    }

    #[test]
    fn a_transient_role_assumption_gets_its_own_advice() {
        let report = build(vec![
            record(
                "a",
                PermissionDenied,
                Some(API),
                Some("TRANSIENT_ASSUME_ROLE"),
                "2026-11-28T09:00:00Z",
            ),
            record(
                "b",
                PermissionDenied,
                Some(API),
                Some("NO_PERMISSIONS"),
                "2026-11-28T09:00:00Z",
            ),
        ]);
        let incident = &report.summary.incidents[0];
        assert_eq!(
            incident.error_codes.keys().collect::<Vec<_>>(),
            ["NO_PERMISSIONS", "TRANSIENT_ASSUME_ROLE"]
        );
        let (transient, as_is) = PermissionDenied.advice(Some("TRANSIENT_ASSUME_ROLE"));
        assert!(transient.starts_with("Transient"));
        assert_eq!(as_is, "yes");
        let md = render_markdown(&report, &ReplaySource::Folder("out".into()), "report.json");
        assert!(
            md.contains("- **`TRANSIENT_ASSUME_ROLE`:** Transient"),
            "{md}"
        );
    }

    #[test]
    fn the_timeline_buckets_failures_per_category_over_the_span() {
        let report = build(vec![
            record(
                "a",
                RateLimitExceeded,
                Some(API),
                None,
                "2026-11-28T09:01:10Z",
            ),
            record(
                "b",
                RateLimitExceeded,
                Some(API),
                None,
                "2026-11-28T09:03:00Z",
            ),
            record(
                "c",
                RateLimitExceeded,
                Some(API),
                None,
                "2026-11-28T09:31:00Z",
            ),
            record("d", TargetError, Some(API), None, "2026-11-28T09:02:00Z"),
        ]);
        let md = render_markdown(&report, &ReplaySource::Folder("out".into()), "report.json");
        // A 30-minute span: 5-minute buckets.
        assert!(md.contains("in 5-minute buckets"), "{md}");
        assert!(md.contains("```mermaid\ngantt\n"), "{md}");
        assert!(
            md.contains("    section RATE_LIMIT_EXCEEDED\n    2 failed : 2026-11-28T09:00:00, 2026-11-28T09:05:00\n    1 failed : 2026-11-28T09:30:00, 2026-11-28T09:35:00\n"),
            "{md}"
        );
        assert!(
            md.contains(
                "    section TARGET_ERROR\n    1 failed : 2026-11-28T09:00:00, 2026-11-28T09:05:00\n"
            ),
            "{md}"
        );
        // Beside the pie.
        assert!(md.find("pie showData").unwrap() < md.find("gantt").unwrap());
    }

    #[test]
    fn a_hostile_target_arn_stays_one_quoted_shell_word() {
        let hostile = "arn:aws:events:x:1:api-destination/a'$(rm -rf ~)`\n```\nb";
        let report = build(vec![record(
            "a",
            RateLimitExceeded,
            Some(hostile),
            None,
            "2026-11-28T09:00:00Z",
        )]);
        let md = render_markdown(&report, &ReplaySource::Folder("out".into()), "report.json");
        assert!(
            md.contains(r#"--target 'arn:aws:events:x:1:api-destination/a'\''$(rm -rf ~)````b'"#),
            "{md}"
        );
        let fences = md.lines().filter(|l| l.starts_with("```")).count();
        assert_eq!(fences % 2, 0, "every code block closes: {md}");
    }

    #[test]
    fn records_not_stored_get_no_replay_command() {
        let mut r = record("a", TargetError, Some(API), None, "2026-11-28T09:00:00Z");
        r.replay_payload_key = None;
        let md = render_markdown(
            &build(vec![r]),
            &ReplaySource::Folder("out".into()),
            "report.json",
        );
        assert!(!md.contains("## Replay"), "{md}");
    }

    /// The render time of a 10,000-record report (docs/benchmarks.md): run with
    /// `cargo test --release --lib render_time -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn render_time_of_a_10k_record_report() {
        let categories = [
            RateLimitExceeded,
            TargetError,
            PayloadMalformed,
            PermissionDenied,
        ];
        let records = (0..10_000)
            .map(|i| {
                let target = format!(
                    "arn:aws:events:eu-west-1:111122223333:api-destination/t{}/x",
                    i % 7
                );
                let time = format!("2026-11-28T{:02}:{:02}:00Z", 9 + i / 3600, (i / 60) % 60);
                let code = ["E1", "E2", "THROTTLING"][i % 3];
                let mut r = record(
                    &format!("m{i}"),
                    categories[i % 4],
                    Some(&target),
                    Some(code),
                    &time,
                );
                r.interaction_id = Some(format!("c{}", i % 500));
                r.correlation_id = Some(format!("k{i}"));
                r.failure.error_message = Some(format!("error <{i}> | *x*"));
                r
            })
            .collect();
        let report = build(records);
        let replay = ReplaySource::Bucket("b".into());
        let md = render_markdown(&report, &replay, "r.json");
        let mut times: Vec<_> = (0..21)
            .map(|_| {
                let t = std::time::Instant::now();
                std::hint::black_box(render_markdown(&report, &replay, "r.json"));
                t.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "render_markdown of 10,000 records: median {:?} of 21 renders ({} bytes)",
            times[10],
            md.len()
        );
    }
}
