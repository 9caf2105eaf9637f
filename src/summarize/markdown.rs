//! `summary.md`: the summary for people, every value from a report escaped as the
//! per-batch report escapes it.

use askama::Template;

use super::Summary;
use crate::report::{bucket_name, code, short_arn};
use crate::text::truncate;

/// The sentences `summary.md` and the pages both say, written once (with those `report.md`
/// says too, from `report::said`); each page or document escapes them its own way.
pub(crate) mod said {
    pub(crate) use crate::report::said::{NOT_A_NEW_FAILURE, REPLAY_FAILED_AGAIN, target, times};
    use crate::summarize::Summary;

    /// The label of the incident's advice.
    pub(crate) const WHAT_TO_DO: &str = "What to do";
    /// The label of whether the events can be replayed unchanged.
    pub(crate) const REPLAY_AS_IS: &str = "Replay as-is once fixed";
    /// The label of a health look-up that could not be made.
    pub(crate) const NOT_LOOKED_UP: &str = "Not looked up";

    /// How many reports were read, and how many records were listed twice.
    pub(crate) fn reports_read(s: &Summary) -> String {
        format!(
            "Read {} report(s); {} record(s) listed by more than one report were counted once.",
            s.reports, s.listed_again
        )
    }

    /// The window asked for, if one was.
    pub(crate) fn window(s: &Summary) -> Option<String> {
        (s.window.since.is_some() || s.window.until.is_some()).then(|| {
            format!(
                "Window: {} to {}.",
                s.window.since.as_deref().unwrap_or("the start"),
                s.window.until.as_deref().unwrap_or("now")
            )
        })
    }

    /// How many sources could not be read.
    pub(crate) fn unreadable(n: usize) -> String {
        format!("{n} source(s) could not be read")
    }

    /// The heading of the affected conversations.
    pub(crate) fn conversations_affected(n: usize) -> String {
        format!("Conversations affected ({n})")
    }
}

/// How many affected conversations the Markdown lists (the JSON has them all).
const CONVERSATIONS_SHOWN: usize = 50;

/// The one-line answer: how many, against how many targets, since when, and whether it
/// goes on.
pub(crate) fn summary_headline(s: &Summary) -> String {
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
                said::target(i.target_arn.as_deref())
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

/// The view `templates/summary.md` renders: the summary, and what is worked out for it.
#[derive(Template)]
#[template(path = "summary.md")]
struct SummaryMd<'a> {
    s: &'a Summary,
    headline: String,
    incidents: Vec<IncidentMd<'a>>,
    /// The timeline's bucket width, in words.
    bucket: String,
    /// The timeline's columns.
    categories: Vec<String>,
    /// The timeline's rows: start, failed events per category (blank for none).
    buckets: Vec<(&'a str, Vec<String>)>,
    conversations: &'a [crate::summarize::AffectedConversation],
}

/// An incident's row and section.
struct IncidentMd<'a> {
    category: String,
    /// Its target as a table cell: a code span of the short ARN, or `(no target)`.
    target_cell: String,
    target: &'a str,
    count: usize,
    first: &'a str,
    last: &'a str,
    peak: usize,
    ongoing: &'static str,
    conversations: usize,
    codes: String,
    recommended_action: &'a str,
    replay_as_is: &'a str,
    sample_ids: String,
    errors: Vec<String>,
    /// A fence longer than any run of backticks in the command, which nothing can close.
    fence: String,
    /// The replay command on one line.
    command: String,
}

/// The summary as Markdown.
pub(crate) fn render_summary(s: &Summary) -> String {
    let categories: Vec<_> = s.by_category.keys().copied().collect();
    let view = SummaryMd {
        s,
        headline: summary_headline(s),
        incidents: s.incidents.iter().map(incident).collect(),
        bucket: bucket_name(s.timeline.bucket_seconds),
        categories: categories.iter().map(ToString::to_string).collect(),
        buckets: s
            .timeline
            .buckets
            .iter()
            .map(|b| {
                let counts = categories
                    .iter()
                    .map(|c| {
                        b.by_category
                            .get(c)
                            .map_or(String::new(), ToString::to_string)
                    })
                    .collect();
                (b.start.as_str(), counts)
            })
            .collect(),
        conversations: &s.conversations[..s.conversations.len().min(CONVERSATIONS_SHOWN)],
    };
    view.render().unwrap_or_default()
}

fn incident(i: &crate::summarize::Incident) -> IncidentMd<'_> {
    let codes: Vec<String> = i
        .error_codes
        .iter()
        .map(|(c, n)| said::times(c, *n))
        .chain(i.http_statuses.iter().map(|h| format!("HTTP {h}")))
        .collect();
    let command = i.replay_command.replace(['\n', '\r'], " ");
    let longest = command.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    IncidentMd {
        category: i.category.to_string(),
        target_cell: i
            .target_arn
            .as_deref()
            .map(|t| code(&short_arn(t)))
            .unwrap_or_else(|| crate::report::NO_TARGET.into()),
        target: i.target_arn.as_deref().unwrap_or(crate::report::NO_TARGET),
        count: i.count,
        first: i.first_seen.as_deref().unwrap_or("—"),
        last: i.last_seen.as_deref().unwrap_or("—"),
        peak: i.peak_per_minute,
        ongoing: if i.ongoing { "**yes**" } else { "no" },
        conversations: i.conversations,
        codes: codes.join(", "),
        recommended_action: &i.recommended_action,
        replay_as_is: &i.replay_as_is,
        sample_ids: i.sample_message_ids.join(", "),
        errors: i.sample_errors.iter().map(|e| truncate(e, 300)).collect(),
        fence: "`".repeat(longest.max(2) + 1),
        command,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::FailureCategory;
    use crate::report::fixtures::{record, report_of};
    use crate::summarize::{ApiDestinationHealth, Health};

    #[test]
    fn an_api_destinations_connection_state_is_markdown_text() {
        let report = report_of(vec![record(
            "m1",
            FailureCategory::RateLimitExceeded,
            Some("arn:aws:events:us-east-1:111122223333:api-destination/crm/x"),
            Some("THROTTLING"),
            "2026-11-28T09:00:00Z",
        )]);
        let mut s = crate::summarize::of_report(&report, "out/report.json").summary;
        s.health = Some(Health {
            api_destinations: vec![ApiDestinationHealth {
                name: "crm".into(),
                connection_state: Some("<img src=x onerror=alert(1)> **[x](javascript:y)**".into()),
                ..ApiDestinationHealth::default()
            }],
            ..Health::default()
        });
        let md = render_summary(&s);
        let line = md
            .lines()
            .find(|l| l.starts_with("- API destination"))
            .unwrap_or_else(|| panic!("{md}"));
        assert!(!line.contains("<img"), "{line}");
        assert!(line.contains("connection &lt;img src=x"), "{line}");
        assert!(line.contains(r"\*\*\[x\](javascript:y)\*\*"), "{line}");
    }
}
