//! The report for people: headline, pie chart, incidents, next steps, affected
//! conversations and replay commands, in Markdown for an incident channel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::schema::{NO_TARGET, ReplaySource, Report};
use crate::classify::FailureCategory;
use crate::correlate::InteractionInfo;
use crate::dlq::BodyKind;
use crate::text::truncate;

/// Renders the report for an incident channel: headline, pie, incident table, next steps,
/// affected conversations and replay commands.
/// `report_key` is where this report's JSON is stored (relative to the folder, or the S3
/// key), for the replay commands.
pub fn render_markdown(report: &Report, replay: &ReplaySource, report_key: &str) -> String {
    let mut md = String::with_capacity(4096);
    let _ = writeln!(
        md,
        "# Genesys EventBridge DLQ triage — {}",
        report.generated_at
    );
    md.push('\n');
    let _ = writeln!(md, "{}", headline(report));
    md.push('\n');
    if report.total_failures == 0 {
        md.push_str("The batch was empty: nothing to triage.\n");
        return md;
    }

    render_pie(report, &mut md);
    render_timeline(report, &mut md);
    render_incidents(report, &mut md);
    render_next_steps(report, &mut md);
    render_conversations(report, &mut md);
    render_custom_bus(report, &mut md);
    render_replay(report, replay, report_key, &mut md);
    md
}

/// The failures by category, as a Mermaid pie.
fn render_pie(report: &Report, md: &mut String) {
    let s = &report.summary;
    md.push_str(
        "## Failures by category\n\n```mermaid\npie showData\n    title Failures by category\n",
    );
    for (category, count) in &s.by_category {
        let _ = writeln!(md, "    \"{category}\" : {count}");
    }
    md.push_str("```\n\n");
}

/// The incident table.
fn render_incidents(report: &Report, md: &mut String) {
    let s = &report.summary;
    md.push_str("## Incidents\n\n");
    md.push_str("| # | Category | Target | Error codes | HTTP | Count | First seen | Last seen | Conversations | Sample message |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for (i, inc) in s.incidents.iter().enumerate() {
        let statuses: Vec<String> = inc.http_statuses.iter().map(u16::to_string).collect();
        let codes: Vec<String> = inc
            .error_codes
            .iter()
            .map(|(c, n)| format!("{c} ×{n}"))
            .collect();
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            inc.category,
            text(&target_shown(inc.target_arn.as_deref())),
            list(&codes),
            if statuses.is_empty() {
                "—".to_owned()
            } else {
                statuses.join(", ")
            },
            inc.count,
            inc.first_seen.as_deref().unwrap_or("—"),
            inc.last_seen.as_deref().unwrap_or("—"),
            inc.conversations,
            inc.sample_message_ids
                .first()
                .map(|m| code(m))
                .unwrap_or_default(),
        );
    }
    md.push('\n');
}

/// What to do, per category: its meaning, the fix, the advice of each error code, and
/// a sample error per incident.
fn render_next_steps(report: &Report, md: &mut String) {
    let s = &report.summary;
    md.push_str("## Next steps\n\n");
    for category in s.by_category.keys() {
        let n = s.by_category[category];
        let _ = writeln!(
            md,
            "### `{category}` ({n} {})\n",
            plural(n, "record", "records")
        );
        let _ = writeln!(md, "- **What it means:** {}.", category.meaning());
        let _ = writeln!(md, "- **Do:** {}", category.recommended_action());
        let _ = writeln!(
            md,
            "- **Replay as-is after the fix:** {}.",
            category.replay_as_is()
        );
        let mut advised = std::collections::BTreeSet::new();
        for inc in s.incidents.iter().filter(|i| i.category == *category) {
            for c in inc.error_codes.keys() {
                let (action, _) = category.advice(Some(c));
                if action != category.recommended_action() && advised.insert(c.clone()) {
                    let _ = writeln!(md, "- **{}:** {}", code(c), action);
                }
            }
        }
        for inc in s.incidents.iter().filter(|i| i.category == *category) {
            if let Some(m) = &inc.sample_error_message {
                let _ = writeln!(
                    md,
                    "- Error from {}: {}",
                    code(&target_shown(inc.target_arn.as_deref())),
                    code(&truncate(m, 300))
                );
            }
        }
        render_replay_failures(report, *category, md);
        md.push('\n');
    }
}

/// The incidents of `category` whose failures came from archive replays: a replay that
/// failed again, named, not a new failure.
fn render_replay_failures(report: &Report, category: FailureCategory, md: &mut String) {
    for inc in report
        .summary
        .incidents
        .iter()
        .filter(|i| i.category == category)
    {
        if inc.replay_failures == 0 {
            continue;
        }
        let names: Vec<String> = inc.replay_names.iter().map(|n| code(n)).collect();
        let _ = writeln!(
            md,
            "- **A replay failed again:** {} of these failed events against {} came from the archive replay {}: not a new failure; the first failure's cause is not fixed yet.",
            inc.replay_failures,
            code(&target_shown(inc.target_arn.as_deref())),
            names.join(", ")
        );
    }
}

/// A target ARN as the tables show it (its short form), or the no-target label.
fn target_shown(target: Option<&str>) -> String {
    target
        .map(short_arn)
        .unwrap_or_else(|| NO_TARGET.to_owned())
}

/// One line an on-call engineer can paste as the incident's summary.
pub fn headline(report: &Report) -> String {
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

fn render_conversations(report: &Report, md: &mut String) {
    let s = &report.summary;
    if s.conversations == 0 {
        return;
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
    let correlation = |id: &str| -> String {
        match correlation_of.get(id) {
            None => "—".to_owned(),
            Some(ids) => {
                let mut shown: Vec<String> = ids.iter().take(2).map(|c| code(c)).collect();
                if ids.len() > 2 {
                    shown.push(format!("+{}", ids.len() - 2));
                }
                shown.join(" ")
            }
        }
    };
    md.push_str("## Affected conversations\n\n");
    if !s.by_interaction_status.is_empty() {
        let statuses: Vec<String> = s
            .by_interaction_status
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            md,
            "Correlation with Genesys Cloud — {}.\n",
            statuses.join(", ")
        );
    }
    md.push_str("| Incident | Conversation | Status | Start | End | Duration | Direction | Media | Queues | Divisions | CorrelationId |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    let mut more = Vec::new();
    for (i, inc) in s
        .incidents
        .iter()
        .enumerate()
        .filter(|(_, i)| i.conversations > 0)
    {
        for id in inc.conversation_ids.iter().take(CONVERSATIONS_SHOWN) {
            let _ = write!(md, "| {} `{}` | `{id}` ", i + 1, inc.category);
            conversation_row(md, info_of.get(id.as_str()).copied(), &correlation(id));
        }
        if inc.conversations > CONVERSATIONS_SHOWN {
            more.push(format!(
                "incident {}: {} more",
                i + 1,
                inc.conversations - CONVERSATIONS_SHOWN
            ));
        }
    }
    if !more.is_empty() {
        let _ = writeln!(
            md,
            "\nNot shown ({}); every id is in the JSON report.",
            more.join("; ")
        );
    }
    md.push('\n');
}

/// Conversations listed per incident; the rest are counted, and all are in the JSON.
const CONVERSATIONS_SHOWN: usize = 10;

/// The rest of a conversation's row: what Genesys Cloud said of it, and its events'
/// CorrelationIds.
fn conversation_row(md: &mut String, info: Option<&InteractionInfo>, correlation: &str) {
    match info {
        Some(InteractionInfo::Found(c)) => {
            let _ = writeln!(
                md,
                "| found | {} | {} | {} | {} | {} | {} | {} | {correlation} |",
                text(c.conversation_start.as_deref().unwrap_or("—")),
                text(c.conversation_end.as_deref().unwrap_or("in progress")),
                c.duration_ms
                    .map(|d| format!("{}s", d / 1000))
                    .unwrap_or_else(|| "—".into()),
                text(c.originating_direction.as_deref().unwrap_or("—")),
                list(&c.media_types),
                list(&c.queue_ids),
                list(&c.division_ids),
            );
        }
        other => {
            let status = other.map(|i| i.status()).unwrap_or("unknown");
            let _ = writeln!(md, "| {status} | | | | | | | {correlation} |");
        }
    }
}

/// Bucket widths for the timeline, in seconds: the smallest that gives at most
/// [`MAX_BUCKETS`] buckets over the batch's span.
const BUCKETS: &[i64] = &[60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400];
const MAX_BUCKETS: i64 = 24;

/// Failures per category over the batch's time span, as a Mermaid Gantt chart (GitHub
/// renders it): one section per category, one bar per time bucket with failures, labelled
/// with its count.
fn render_timeline(report: &Report, md: &mut String) {
    let mut points: Vec<(FailureCategory, i64, usize)> = Vec::new();
    for r in &report.records {
        if let Some(t) = r.timestamp.as_deref().and_then(super::parse_time) {
            points.push((r.failure_category, t.timestamp(), r.event_count.max(1)));
        }
    }
    let (Some(first), Some(last)) = (
        points.iter().map(|p| p.1).min(),
        points.iter().map(|p| p.1).max(),
    ) else {
        return;
    };
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
    let _ = writeln!(
        md,
        "### Over time\n\nFailures per category, in {} buckets (UTC).\n\n```mermaid\ngantt\n    dateFormat YYYY-MM-DDTHH:mm:ss\n    axisFormat {}\n    todayMarker off",
        bucket_name(width),
        if span >= 2 * 86_400 {
            "%m-%d %H:%M"
        } else {
            "%H:%M"
        }
    );
    for (category, buckets) in &counts {
        let _ = writeln!(md, "    section {category}");
        for (bucket, n) in buckets {
            let _ = writeln!(md, "    {n} failed : {}, {}", at(*bucket), at(bucket + 1));
        }
    }
    md.push_str("```\n\n");
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

/// Custom Event Bus failure summaries: how many events they stand for, and that their
/// stored payloads are the summaries, not the events.
fn render_custom_bus(report: &Report, md: &mut String) {
    let summaries: Vec<_> = report
        .records
        .iter()
        .filter(|r| r.body_kind == BodyKind::CustomBusFailure)
        .collect();
    if summaries.is_empty() {
        return;
    }
    let events: usize = summaries.iter().map(|r| r.event_count.max(1)).sum();
    let _ = writeln!(
        md,
        "## Custom Event Bus failure summaries\n\n{} {} {events} failed {}, counted in the totals above. A summary is what EventBridge dead-letters for a Custom Event Bus target, not the events themselves: its stored payload is **not replayable as-is**. Replay those events from their source or an archive, by `eventId`:\n",
        summaries.len(),
        plural(summaries.len(), "summary stands for", "summaries stand for"),
        plural(events, "event", "events"),
    );
    for r in summaries.iter().take(20) {
        let ids: Vec<String> = r
            .failed_event_ids
            .iter()
            .take(10)
            .map(|i| code(i))
            .collect();
        let _ = writeln!(
            md,
            "- {}: {} {}{}",
            code(&r.message_id),
            r.event_count,
            plural(r.event_count, "event", "events"),
            if ids.is_empty() {
                String::new()
            } else {
                format!(" — {}", ids.join(", "))
            }
        );
    }
    md.push('\n');
}

fn render_replay(report: &Report, replay: &ReplaySource, report_key: &str, md: &mut String) {
    // Stored records per (category, target): one command each (`--target` is the filter
    // replay has; incidents that differ only by error code share it).
    let mut groups: BTreeMap<(FailureCategory, Option<&str>), usize> = BTreeMap::new();
    for r in &report.records {
        if r.replay_payload_key.is_some() {
            *groups
                .entry((r.failure_category, r.failure.target_arn.as_deref()))
                .or_default() += 1;
        }
    }
    if groups.is_empty() {
        return;
    }
    let address = shell_word(&replay.address_of(report_key));
    md.push_str("## Replay\n\n");
    md.push_str("Fix the cause first, then replay one incident at a time. Each command is a dry run that lists what it would send; add `--execute` to send. `--to-target` delivers each event as the rule's target would have received it (the target's InputTransformer, InputPath or Input applied, by the target's kind); `--to-url` sends the stored event byte for byte. A journal beside the report makes a rerun send only what was not sent.\n\n");
    for ((category, target), count) in &groups {
        let shown = target
            .map(short_arn)
            .unwrap_or_else(|| NO_TARGET.to_owned());
        let _ = writeln!(
            md,
            "### `{category}` → {} ({count} stored) — replay as-is: {}\n",
            code(&shown),
            category.replay_as_is()
        );
        match target.and_then(|t| report.summary.target_inputs.get(t)) {
            Some(input) if input != "none" => {
                let _ = writeln!(
                    md,
                    "The target transforms its input ({}): `--to-target` sends what it would have received; `--to-url` would send the event unchanged.\n",
                    text(input)
                );
            }
            Some(_) => md.push_str("The target takes the event unchanged: `--to-target` and `--to-url` send the same body.\n\n"),
            None => {}
        }
        md.push_str("```sh\n");
        if category.replay_as_is() != "yes" {
            let _ = writeln!(md, "# {category}: {}", category.recommended_action());
        }
        let mut filters = format!("--category {category}");
        if let Some(t) = target {
            let _ = write!(filters, " --target {}", shell_word(t));
        }
        if target.is_some() {
            let _ = writeln!(md, "dlq-triage replay {address} {filters} --to-target");
            md.push_str("# or byte for byte to an endpoint of your choice:\n");
        }
        let _ = writeln!(
            md,
            "dlq-triage replay {address} {filters} --to-url \"$ENDPOINT\""
        );
        md.push_str("```\n\n");
    }
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
pub fn short_arn(arn: &str) -> String {
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

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "—".to_owned()
    } else {
        text(&items.join(", "))
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
}
