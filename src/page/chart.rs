//! The chart of failures per minute: one line per incident (the largest [`SERIES`], the
//! rest as one "other incidents" line), over the window, with the ongoing cut marked.
//! Plain SVG, drawn here; nothing is computed in the browser.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::html::esc;
use crate::report::{parse_time, short_arn};
use crate::summarize::{ONGOING_WITHIN_MINUTES, Summary};

/// How many incidents get a line of their own.
pub(super) const SERIES: usize = 12;
/// The most points a line has: longer windows take the peak minute of each step.
const COLUMNS: i64 = 240;
/// A line with at most this many points above zero has them marked.
const MARKED_POINTS: usize = 60;
/// A window that ends this long after the last failure is drawn to the last failure only.
const QUIET_TAIL_MINUTES: i64 = 24 * 60;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 304.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 990.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 262.0;

/// Appends the chart section of `s`, whose incidents failed `per_minute` (events per
/// minute since the epoch, one list per incident in the summary's order).
pub(super) fn render(s: &Summary, per_minute: &[Vec<(i64, usize)>], out: &mut String) {
    out.push_str("<h2 id=\"chart\">Failures per minute</h2>\n");
    let (Some(first), Some(last)) = (
        s.first_seen.as_deref().and_then(parse_time),
        s.last_seen.as_deref().and_then(parse_time),
    ) else {
        out.push_str("<p class=\"note\">No failure has a time to draw.</p>\n");
        return;
    };
    let end = s
        .window
        .until
        .as_deref()
        .or(Some(&s.generated_at))
        .and_then(parse_time)
        .unwrap_or(last)
        .max(last);
    let start = s
        .window
        .since
        .as_deref()
        .and_then(parse_time)
        .unwrap_or(first)
        .min(first);
    let (from, mut to) = (minute(start), minute(end));
    let cut = minute(end) - ONGOING_WITHIN_MINUTES;
    let quiet = to - minute(last) > QUIET_TAIL_MINUTES;
    if quiet {
        to = minute(last) + ONGOING_WITHIN_MINUTES;
    }
    let step = ((to - from + 1) + COLUMNS - 1) / COLUMNS;
    let step = step.max(1);
    let columns = ((to - from) / step + 1).max(2);
    let lines = lines(per_minute, from, step, columns as usize);
    let top = lines
        .iter()
        .flat_map(|l| l.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |col: f64| LEFT + (RIGHT - LEFT) * col / (columns - 1) as f64;
    let y = |v: usize| BOTTOM - (BOTTOM - TOP) * v as f64 / top as f64;
    let what = if step == 1 {
        "Failed events per minute".to_owned()
    } else {
        format!("The busiest minute of each {step}-minute step")
    };
    let _ = writeln!(
        out,
        "<p class=\"note\">{}, UTC; one line per incident{}.</p>",
        esc(&what),
        if per_minute.len() > SERIES {
            format!(
                " (the {SERIES} largest; the other {} as one line)",
                per_minute.len() - SERIES
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(&what)
    );
    for v in [0, top / 2, top] {
        let _ = writeln!(
            out,
            "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{RIGHT}\" y1=\"{0:.1}\" y2=\"{0:.1}\"/><text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\">{v}</text>",
            y(v),
            LEFT - 6.0,
            y(v) + 4.0
        );
    }
    for (col, anchor) in [
        (0, "start"),
        ((columns - 1) / 2, "middle"),
        (columns - 1, "end"),
    ] {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            x(col as f64),
            BOTTOM + 18.0,
            label(from + col * step, to - from > 24 * 60)
        );
    }
    if (from..=from + (columns - 1) * step).contains(&cut) {
        let cx = x((cut - from) as f64 / step as f64);
        let _ = writeln!(
            out,
            "<line class=\"cut\" x1=\"{cx:.1}\" x2=\"{cx:.1}\" y1=\"{TOP}\" y2=\"{BOTTOM}\"/><text class=\"cut-label\" x=\"{:.1}\" y=\"{}\" text-anchor=\"end\">ongoing cut: a failure after this line makes its incident ongoing</text>",
            cx - 4.0,
            BOTTOM + 32.0
        );
    }
    for (k, line) in lines.iter().enumerate() {
        let points: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(col, v)| format!("{:.1},{:.1}", x(col as f64), y(*v)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline class=\"series s{k}\" data-series=\"{k}\" points=\"{}\"><title>{}</title></polyline>",
            points.join(" "),
            esc(&series_name(s, k))
        );
        // A few failures are easy to miss on a line alone: their points are marked.
        if line.iter().filter(|v| **v > 0).count() <= MARKED_POINTS {
            for (col, v) in line.iter().enumerate().filter(|(_, v)| **v > 0) {
                let _ = writeln!(
                    out,
                    "<circle class=\"s{k}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"/>",
                    x(col as f64),
                    y(*v)
                );
            }
        }
    }
    out.push_str("</svg>\n<ul class=\"legend\">\n");
    for k in 0..lines.len() {
        let _ = writeln!(
            out,
            "<li><svg width=\"18\" height=\"10\" aria-hidden=\"true\"><rect class=\"s{k}\" width=\"18\" height=\"4\" y=\"3\"/></svg> {}</li>",
            esc(&series_name(s, k))
        );
    }
    out.push_str("</ul>\n");
    if quiet {
        let _ = writeln!(
            out,
            "<p class=\"note\">No failure from {} to the window's end ({}); the chart stops {ONGOING_WITHIN_MINUTES} minutes after the last failure.</p>",
            esc(s.last_seen.as_deref().unwrap_or_default()),
            esc(&crate::report::fmt_time(end))
        );
    }
}

/// Minutes since the epoch.
fn minute(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

/// `HH:MM`, with the date when the chart spans days.
fn label(minute: i64, with_date: bool) -> String {
    DateTime::from_timestamp(minute * 60, 0).map_or_else(String::new, |t| {
        t.format(if with_date { "%Y-%m-%d %H:%M" } else { "%H:%M" })
            .to_string()
    })
}

/// Each line's points: the busiest minute of each step. Incidents beyond [`SERIES`] are
/// added up minute by minute into one line.
pub(super) fn lines(
    per_minute: &[Vec<(i64, usize)>],
    from: i64,
    step: i64,
    columns: usize,
) -> Vec<Vec<usize>> {
    let column = |m: i64| {
        usize::try_from((m - from) / step)
            .ok()
            .filter(|c| *c < columns)
    };
    let mut lines: Vec<Vec<usize>> = Vec::new();
    for minutes in per_minute.iter().take(SERIES) {
        let mut line = vec![0; columns];
        for (m, n) in minutes {
            if let Some(c) = column(*m) {
                line[c] = line[c].max(*n);
            }
        }
        lines.push(line);
    }
    if per_minute.len() > SERIES {
        let mut others: BTreeMap<i64, usize> = BTreeMap::new();
        for (m, n) in per_minute.iter().skip(SERIES).flatten() {
            *others.entry(*m).or_default() += n;
        }
        let mut line = vec![0; columns];
        for (m, n) in others {
            if let Some(c) = column(m) {
                line[c] = line[c].max(n);
            }
        }
        lines.push(line);
    }
    lines
}

/// The legend of line `k`.
fn series_name(s: &Summary, k: usize) -> String {
    match s.incidents.get(k) {
        Some(i) if k < SERIES => format!(
            "{} against {}",
            i.category,
            i.target_arn
                .as_deref()
                .map(short_arn)
                .unwrap_or_else(|| "(no target)".into())
        ),
        _ => format!(
            "other incidents ({})",
            s.incidents.len().saturating_sub(SERIES)
        ),
    }
}
