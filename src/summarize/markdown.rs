//! `summary.md`: the summary for people, every value from a report escaped as the
//! per-batch report escapes it.

use std::fmt::Write;

use super::Summary;
use crate::report::{bucket_name, code, short_arn, text};
use crate::text::truncate;

/// How many affected conversations the Markdown lists (the JSON has them all).
const CONVERSATIONS_SHOWN: usize = 50;

/// The one-line answer: how many, against how many targets, since when, and whether it
/// goes on.
pub fn summary_headline(s: &Summary) -> String {
    let span = match (&s.first_seen, &s.last_seen) {
        (Some(a), Some(b)) => format!(" from {a} to {b}"),
        _ => String::new(),
    };
    let top = s
        .incidents
        .first()
        .map(|i| {
            format!(
                "; the largest: {} {} against {}",
                i.count,
                i.category,
                i.target_arn
                    .as_deref()
                    .map(short_arn)
                    .unwrap_or_else(|| "(no target)".into())
            )
        })
        .unwrap_or_default();
    format!(
        "{} failed events ({} dead letters) in {} incident(s){span}{top}; {}",
        s.total_failures,
        s.dead_letters,
        s.incidents.len(),
        if s.ongoing { "ONGOING" } else { "not ongoing" }
    )
}

/// The summary as Markdown.
pub fn render_summary(s: &Summary) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Dead-letter summary\n\n**{}**\n",
        text(&summary_headline(s))
    );
    let _ = writeln!(
        md,
        "Read {} report(s); {} record(s) listed by more than one report were counted once.",
        s.reports, s.listed_again
    );
    if s.window.since.is_some() || s.window.until.is_some() {
        let _ = writeln!(
            md,
            "Window: {} to {}.",
            s.window.since.as_deref().unwrap_or("the start"),
            s.window.until.as_deref().unwrap_or("now")
        );
    }
    if !s.unreadable.is_empty() {
        let _ = writeln!(
            md,
            "\n{} source(s) could not be read:\n",
            s.unreadable.len()
        );
        for u in &s.unreadable {
            let _ = writeln!(
                md,
                "- {}: {}",
                code(&u.source),
                text(&truncate(&u.reason, 200))
            );
        }
    }
    render_incidents(s, &mut md);
    if let Some(health) = &s.health {
        render_health(health, &mut md);
    }
    render_timeline(s, &mut md);
    render_conversations(s, &mut md);
    md
}

/// EventBridge's own counts per rule and each API destination's limit, and what could not
/// be looked up.
fn render_health(h: &super::Health, md: &mut String) {
    md.push_str("\n## Target health\n\n");
    if h.lost_beyond_dlq > 0 {
        let _ = writeln!(
            md,
            "**{} event(s) could not be put in the dead-letter queue either** (`InvocationsFailedToBeSentToDlq`): no report holds them.\n",
            h.lost_beyond_dlq
        );
    }
    for r in h
        .rules
        .iter()
        .filter(|r| !r.named_by_dead_letters && r.lost() > 0.0)
    {
        let _ = writeln!(
            md,
            "**Rule {} lost {} event(s)** and no dead letter names it: every send to its DLQ failed (queue policy, KMS key).\n",
            code(&r.rule_name),
            r.lost()
        );
    }
    md.push_str("EventBridge's metrics (`AWS/Events`) per rule over the window; they have no target dimension, so a rule's figures cover all its targets and the split by target is the dead letters'.\n\n");
    md.push_str("| rule | invocations | sent to DLQ | failure ratio | lost beyond DLQ | retries | throttled |\n|---|---|---|---|---|---|---|\n");
    for r in &h.rules {
        match r.figures() {
            Some(figures) => {
                let _ = writeln!(md, "| {} | {} |", code(&r.rule_name), figures.join(" | "));
            }
            None => {
                let _ = writeln!(
                    md,
                    "| {} | {} | | | | | |",
                    code(&r.rule_name),
                    text(r.no_metrics.as_deref().unwrap_or_default())
                );
            }
        }
    }
    for d in &h.api_destinations {
        let _ = writeln!(
            md,
            "\n- API destination {}: {}{}",
            code(&d.name),
            d.rates(),
            d.advice
                .as_deref()
                .map_or(String::new(), |a| format!(" **{}**", text(a)))
        );
    }
    for line in &h.notes {
        let _ = writeln!(md, "\n- Note: {}", text(line));
    }
    for line in &h.unavailable {
        let _ = writeln!(md, "\n- Not looked up: {}", text(line));
    }
}

/// The incident table, then each incident's advice, samples and replay command.
fn render_incidents(s: &Summary, md: &mut String) {
    md.push_str("\n## Incidents\n\n");
    md.push_str("| category | target | failed | first | last | peak/min | ongoing | conversations | codes, statuses |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for i in &s.incidents {
        let codes: Vec<String> = i
            .error_codes
            .iter()
            .map(|(c, n)| format!("{c} ×{n}"))
            .chain(i.http_statuses.iter().map(|h| format!("HTTP {h}")))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            i.category,
            i.target_arn
                .as_deref()
                .map(|t| code(&short_arn(t)))
                .unwrap_or_else(|| "(no target)".into()),
            i.count,
            i.first_seen.as_deref().unwrap_or("—"),
            i.last_seen.as_deref().unwrap_or("—"),
            i.peak_per_minute,
            if i.ongoing { "**yes**" } else { "no" },
            i.conversations,
            text(&codes.join(", "))
        );
    }
    for i in &s.incidents {
        let target = i.target_arn.as_deref().unwrap_or("(no target)");
        let _ = writeln!(md, "\n### {} against {}\n", i.category, code(target));
        let _ = writeln!(md, "- What to do: {}", text(&i.recommended_action));
        let _ = writeln!(md, "- Replay as-is once fixed: {}", text(&i.replay_as_is));
        let _ = writeln!(
            md,
            "- Sample message ids: {}",
            code(&i.sample_message_ids.join(", "))
        );
        for e in &i.sample_errors {
            let _ = writeln!(md, "- Error: {}", text(&truncate(e, 300)));
        }
        // A fence longer than any run of backticks in the command, which nothing can close.
        let command = i.replay_command.replace(['\n', '\r'], " ");
        let longest = command.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        let _ = writeln!(md, "\n{fence}sh\n{command}\n{fence}");
    }
}

fn render_timeline(s: &Summary, md: &mut String) {
    if s.timeline.buckets.is_empty() {
        return;
    }
    let categories: Vec<_> = s.by_category.keys().copied().collect();
    let _ = writeln!(
        md,
        "\n## Over time\n\nFailed events per category in {} buckets (UTC).\n",
        bucket_name(s.timeline.bucket_seconds)
    );
    let header: Vec<String> = categories.iter().map(|c| c.to_string()).collect();
    let _ = writeln!(md, "| from | {} |", header.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(categories.len()));
    for b in &s.timeline.buckets {
        let counts: Vec<String> = categories
            .iter()
            .map(|c| {
                b.by_category
                    .get(c)
                    .map_or(String::new(), |n| n.to_string())
            })
            .collect();
        let _ = writeln!(md, "| {} | {} |", b.start, counts.join(" | "));
    }
}

fn render_conversations(s: &Summary, md: &mut String) {
    if s.conversations.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## Conversations affected ({})\n\n| conversation | first failure | dead letters | media | queues | divisions |\n|---|---|---|---|---|---|",
        s.conversations.len()
    );
    for c in s.conversations.iter().take(CONVERSATIONS_SHOWN) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            code(&c.id),
            c.first_failure.as_deref().unwrap_or("—"),
            c.failures,
            text(&c.media_types.join(", ")),
            text(&c.queue_ids.join(", ")),
            text(&c.division_ids.join(", "))
        );
    }
    if s.conversations.len() > CONVERSATIONS_SHOWN {
        let _ = writeln!(
            md,
            "\n… and {} more in summary.json.",
            s.conversations.len() - CONVERSATIONS_SHOWN
        );
    }
}
