//! The chart of failures: one line per minute for each incident with failures in many
//! minutes (the largest [`SERIES`], the rest as one "other incidents" line), and a
//! timeline of bars (first → last, count) for the sparse ones, whose few failures would
//! be one-minute spikes on a line. Both over the same window, with the ongoing cut
//! marked. The geometry is computed here; `templates/chart.html` draws it as plain SVG.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

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
/// An incident with failures in fewer distinct minutes than this is drawn as a bar.
pub(super) const SPARSE_MINUTES: usize = 10;
/// The most bars the timeline draws; the JSON has the rest.
pub(super) const BARS: usize = 40;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 304.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 990.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 262.0;
/// The height of one bar's row in the timeline.
const ROW: f64 = 18.0;

/// What the chart template draws.
pub(super) struct Chart {
    pub(super) width: f64,
    pub(super) height: f64,
    pub(super) left: f64,
    pub(super) right: f64,
    pub(super) top: f64,
    pub(super) bottom: f64,
    /// What a point is: the minute's failures, or the busiest minute of a step.
    pub(super) what: String,
    pub(super) series: usize,
    /// How many incidents the "other incidents" line adds up, if there is one.
    pub(super) others: Option<usize>,
    /// The horizontal rules: height and value.
    pub(super) grid: Vec<(f64, usize)>,
    /// The time axis: position, text anchor, label.
    pub(super) labels: Vec<(f64, &'static str, String)>,
    /// Where the ongoing cut is, when it is inside the window drawn.
    pub(super) cut: Option<f64>,
    pub(super) lines: Vec<Line>,
    pub(super) bars: Vec<Bar>,
    pub(super) bars_note: String,
    pub(super) bars_height: f64,
    pub(super) bars_bottom: f64,
    pub(super) bars_left_out: usize,
    /// Why the chart stops before the window's end.
    pub(super) quiet: Option<String>,
}

/// One incident's line (or the other incidents').
pub(super) struct Line {
    /// Its colour: the incident's place in the summary, or [`SERIES`] for the others.
    pub(super) k: usize,
    pub(super) name: String,
    /// The SVG `points`.
    pub(super) points: String,
    /// Its points above zero, when there are few enough to mark.
    pub(super) marks: Vec<(f64, f64)>,
}

/// One sparse incident's bar, from its first failure to its last.
pub(super) struct Bar {
    pub(super) k: usize,
    pub(super) name: String,
    pub(super) count: usize,
    pub(super) first: String,
    pub(super) last: String,
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) w: f64,
    /// Where the incident's name goes: after the bar, before it, or inside it.
    pub(super) label_x: f64,
    pub(super) anchor: &'static str,
    /// Whether the name is drawn over the bar (in the page's background colour).
    pub(super) inside: bool,
}

/// The minutes drawn and how they map to columns.
#[derive(Clone, Copy)]
struct Axis {
    from: i64,
    to: i64,
    step: i64,
    columns: i64,
}

impl Axis {
    fn x(self, col: f64) -> f64 {
        LEFT + (RIGHT - LEFT) * col / (self.columns - 1) as f64
    }

    /// The position of a minute, between columns when the step is longer than one.
    fn at(self, minute: i64) -> f64 {
        self.x((minute - self.from) as f64 / self.step as f64)
    }
}

/// The chart of `s`, whose incidents failed `per_minute` (events per minute since the
/// epoch, one list per incident in the summary's order); `None` when no failure has a time.
pub(super) fn chart(s: &Summary, per_minute: &[Vec<(i64, usize)>]) -> Option<Chart> {
    let first = s.first_seen.as_deref().and_then(parse_time)?;
    let last = s.last_seen.as_deref().and_then(parse_time)?;
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
    let step = (((to - from + 1) + COLUMNS - 1) / COLUMNS).max(1);
    let axis = Axis {
        from,
        to,
        step,
        columns: ((to - from) / step + 1).max(2),
    };
    let (dense, sparse): (Vec<usize>, Vec<usize>) =
        (0..per_minute.len()).partition(|k| !is_sparse(&per_minute[*k]));
    let mut chart = lines_of(s, per_minute, &dense, axis);
    chart.cut = (from..=from + (axis.columns - 1) * step)
        .contains(&cut)
        .then(|| axis.at(cut));
    chart.labels = labels(axis);
    bars_of(s, per_minute, &sparse, axis, &mut chart);
    chart.quiet = quiet.then(|| {
        format!(
            "No failure from {} to the window's end ({}); the chart stops {ONGOING_WITHIN_MINUTES} minutes after the last failure.",
            s.last_seen.as_deref().unwrap_or_default(),
            crate::report::fmt_time(end)
        )
    });
    Some(chart)
}

/// Failures in so few minutes that a line would be spikes.
fn is_sparse(minutes: &[(i64, usize)]) -> bool {
    minutes.iter().filter(|(_, n)| *n > 0).count() < SPARSE_MINUTES
}

/// The lines of the `dense` incidents: the largest [`SERIES`] each their own, the rest one.
fn lines_of(s: &Summary, per_minute: &[Vec<(i64, usize)>], dense: &[usize], axis: Axis) -> Chart {
    let picked: Vec<Vec<(i64, usize)>> = dense.iter().map(|k| per_minute[*k].clone()).collect();
    let points = lines(&picked, axis.from, axis.step, axis.columns as usize);
    let top = points.iter().flatten().copied().max().unwrap_or(0).max(1);
    let y = |v: usize| BOTTOM - (BOTTOM - TOP) * v as f64 / top as f64;
    let lines = points
        .iter()
        .enumerate()
        .map(|(n, line)| {
            let incident = dense.get(n).copied().filter(|_| n < SERIES);
            let xy = |(col, v): (usize, &usize)| (axis.x(col as f64), y(*v));
            let shown: Vec<String> = line
                .iter()
                .enumerate()
                .map(|p| {
                    let (x, y) = xy(p);
                    format!("{x:.1},{y:.1}")
                })
                .collect();
            // A few failures are easy to miss on a line alone: their points are marked.
            let above: Vec<(f64, f64)> = line
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0)
                .map(xy)
                .collect();
            Line {
                k: n,
                name: incident.map_or_else(
                    || format!("other incidents ({})", dense.len().saturating_sub(SERIES)),
                    |k| incident_name(s, k),
                ),
                points: shown.join(" "),
                marks: if above.len() <= MARKED_POINTS {
                    above
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    Chart {
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right: RIGHT,
        top: TOP,
        bottom: BOTTOM,
        what: if axis.step == 1 {
            "Failed events per minute".to_owned()
        } else {
            format!("The busiest minute of each {}-minute step", axis.step)
        },
        series: SERIES,
        others: (dense.len() > SERIES).then(|| dense.len() - SERIES),
        grid: [0, top / 2, top].into_iter().map(|v| (y(v), v)).collect(),
        labels: Vec::new(),
        cut: None,
        lines,
        bars: Vec::new(),
        bars_note: String::new(),
        bars_height: 0.0,
        bars_bottom: 0.0,
        bars_left_out: 0,
        quiet: None,
    }
}

/// The time axis's three labels: start, middle, end.
fn labels(axis: Axis) -> Vec<(f64, &'static str, String)> {
    let c = axis.columns;
    [(0, "start"), ((c - 1) / 2, "middle"), (c - 1, "end")]
        .into_iter()
        .map(|(col, anchor)| {
            let text = label(axis.from + col * axis.step, axis.to - axis.from > 24 * 60);
            (axis.x(col as f64), anchor, text)
        })
        .collect()
}

/// The bars of the `sparse` incidents, one row each, at most [`BARS`].
fn bars_of(
    s: &Summary,
    per_minute: &[Vec<(i64, usize)>],
    sparse: &[usize],
    axis: Axis,
    chart: &mut Chart,
) {
    let last_column = axis.from + (axis.columns - 1) * axis.step;
    // The colours after the lines': a bar in a line's colour would read as that incident.
    let colours = chart.lines.len();
    for (row, k) in sparse.iter().take(BARS).enumerate() {
        let minutes = &per_minute[*k];
        let (Some((a, _)), Some((b, _))) = (minutes.first(), minutes.last()) else {
            continue;
        };
        let (a, b) = (
            (*a).clamp(axis.from, last_column),
            (*b).clamp(axis.from, last_column),
        );
        let x = axis.at(a);
        let w = (axis.at(b + 1).min(RIGHT) - x).max(3.0);
        let name = incident_name(s, *k);
        let (label_x, anchor, inside) = label_place(x, w, &name);
        chart.bars.push(Bar {
            k: (colours + row) % SERIES,
            name,
            count: minutes.iter().map(|(_, n)| n).sum(),
            first: label(a, true),
            last: label(b, true),
            x,
            y: TOP + ROW * row as f64,
            w,
            label_x,
            anchor,
            inside,
        });
    }
    chart.bars_left_out = sparse.len().saturating_sub(BARS);
    chart.bars_bottom = TOP + ROW * chart.bars.len() as f64;
    chart.bars_height = chart.bars_bottom + 40.0;
    chart.bars_note = format!(
        "Incidents with failures in fewer than {SPARSE_MINUTES} minutes, one bar each from the first failure to the last, with its count (UTC)."
    );
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

/// Where a bar's name goes: after the bar when it fits before the right edge, else before
/// it when it fits after the counts, else inside the bar. The width is estimated (11 px
/// system font, about 6.2 px a character).
pub(super) fn label_place(x: f64, w: f64, name: &str) -> (f64, &'static str, bool) {
    let width = name.chars().count() as f64 * 6.2;
    if x + w + 6.0 + width <= RIGHT {
        (x + w + 6.0, "start", false)
    } else if x - 6.0 - width >= LEFT {
        (x - 6.0, "end", false)
    } else {
        (x + 6.0, "start", true)
    }
}

/// The legend of incident `k`: its category against its target.
fn incident_name(s: &Summary, k: usize) -> String {
    s.incidents.get(k).map_or_else(String::new, |i| {
        format!(
            "{} against {}",
            i.category,
            i.target_arn
                .as_deref()
                .map(short_arn)
                .unwrap_or_else(|| "(no target)".into())
        )
    })
}
