//! EventBridge's rule metrics from CloudWatch (`AWS/Events`), read so that a miss is never
//! shown as a healthy zero:
//!
//! - **Period by age.** CloudWatch keeps 1-minute data 15 days, 5-minute data 63 days and
//!   1-hour data 455 days; a query whose `StartTime` is older than 15 (63) days with a
//!   period that is not a multiple of 300 (3,600) s gets *no data points* and `StatusCode`
//!   `Complete`. Totals are read with one period the window's length (rounded out to what
//!   its start's age requires), peaks with the finest period allowed.
//! - **Every dimension set.** Each metric is queried under both `{RuleName}` and
//!   `{EventBusName, RuleName}` (a metric matches only on its exact set; EventBridge's
//!   guide lists the dead-letter metrics under `RuleName` alone); the rule's own set
//!   (`{RuleName}` on the default bus, `{EventBusName, RuleName}` on another) is taken
//!   when it has data, else the other, and the one taken is named.
//! - **Found or said to be missing.** A rule with no data under either set, or a result
//!   that is not `Complete`, has no figures and says why.
//! - **Bounded per call.** Rules are packed whole into calls of at most 500 queries, a few
//!   calls at once, each bounded on its own; the rules of a call that failed are named,
//!   the others keep their figures.
//! - **Every rule that lost events.** `ListMetrics` finds every rule of the region with an
//!   `InvocationsFailedToBeSentToDlq` series (it lists metrics with data in the last 14
//!   days), and those not already read are read in the window.

use aws_sdk_cloudwatch::types::{Dimension, DimensionFilter, Metric, MetricDataQuery, MetricStat};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{HealthError, Limit, said};
use crate::aws_error::AwsError;
use crate::targets::RuleArn as Rule;

/// EventBridge's rule metrics read as totals for each rule.
pub(crate) const METRICS: [&str; 9] = [
    "Invocations",
    "FailedInvocations",
    "InvocationsSentToDlq",
    "InvocationsFailedToBeSentToDlq",
    "SuccessfulInvocationAttempts",
    "InvocationAttempts",
    "RetryInvocationAttempts",
    "ThrottledRules",
    "TriggeredRules",
];

/// The metrics read per peak period too, for the rules that need a rate.
const PEAK_METRICS: [&str; 2] = ["Invocations", "TriggeredRules"];

/// `GetMetricData` takes at most this many queries per call.
const QUERIES_PER_CALL: usize = 500;

/// Calls in flight at once.
const CALLS_AT_ONCE: usize = 4;

/// `ListMetrics` pages read at most when looking for rules that lost events.
const LIST_PAGES: usize = 100;

const DAY: i64 = 86_400;

/// Time for a request to reach CloudWatch: a start this close to an age boundary is
/// treated as past it.
const MARGIN: i64 = 600;

/// The two dimension sets a rule's metrics may be under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum DimensionSet {
    /// `{RuleName}`.
    Rule,
    /// `{EventBusName, RuleName}`.
    BusAndRule,
}

impl DimensionSet {
    const BOTH: [DimensionSet; 2] = [DimensionSet::Rule, DimensionSet::BusAndRule];

    /// As summary.json names it: `RuleName` or `EventBusName,RuleName`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DimensionSet::Rule => "RuleName",
            DimensionSet::BusAndRule => "EventBusName,RuleName",
        }
    }

    /// The rule's own set first: `{RuleName}` on the default bus, `{EventBusName,
    /// RuleName}` on a custom or partner bus (as EventBridge's guide assigns them).
    fn own_first(rule: &Rule) -> [DimensionSet; 2] {
        match rule.bus.as_deref() {
            None | Some("default") => [DimensionSet::Rule, DimensionSet::BusAndRule],
            Some(_) => [DimensionSet::BusAndRule, DimensionSet::Rule],
        }
    }

    fn dimensions(self, rule: &Rule) -> Vec<Dimension> {
        let dimension =
            |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
        match self {
            DimensionSet::Rule => vec![dimension("RuleName", &rule.name)],
            DimensionSet::BusAndRule => vec![
                dimension("EventBusName", rule.bus.as_deref().unwrap_or("default")),
                dimension("RuleName", &rule.name),
            ],
        }
    }
}

/// The periods a window is read with, by its start's age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Periods {
    /// The window, rounded out to whole peak periods.
    pub start: i64,
    pub end: i64,
    /// The period totals are read with: the whole window, one point per metric.
    pub total: i32,
    /// The finest period CloudWatch keeps for data that old: 60, 300 or 3,600 s.
    pub peak: i32,
}

/// The periods for `start..end` read at `now`; `Err` when CloudWatch keeps nothing that
/// old (455 days).
pub(super) fn periods(start: i64, end: i64, now: i64) -> Result<Periods, HealthError> {
    let age = now - start + MARGIN;
    let peak: i64 = if age > 455 * DAY {
        return Err(HealthError::WindowTooOld);
    } else if age > 63 * DAY {
        3600
    } else if age > 15 * DAY {
        300
    } else {
        60
    };
    let start = start.div_euclid(peak) * peak;
    let end = (end.max(start + 1) + peak - 1).div_euclid(peak) * peak;
    Ok(Periods {
        start,
        end,
        total: i32::try_from(end - start).unwrap_or(i32::MAX / peak as i32 * peak as i32),
        peak: peak as i32,
    })
}

/// "per minute", "per 5 minutes", "per hour".
pub(crate) fn per_period(seconds: i32) -> String {
    match seconds {
        60 => "per minute".into(),
        3600 => "per hour".into(),
        s if s % 60 == 0 => format!("per {} minutes", s / 60),
        s => format!("per {s} s"),
    }
}

/// One rule's figures, or why there are none.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct RuleFigures {
    /// Metric → total over the window (only metrics found; empty when `missing`).
    pub totals: BTreeMap<String, f64>,
    /// Metric → the dimension set its data was under.
    pub found_under: BTreeMap<String, DimensionSet>,
    /// Metric → the most in one peak period (for the rules asked with peaks).
    pub peaks: BTreeMap<String, f64>,
    /// Why the rule has no figures.
    pub missing: Option<String>,
}

/// One query's answer.
#[derive(Debug, Clone, Default)]
struct Answer {
    values: Vec<f64>,
    /// Each value's period start (epoch seconds), in the same order.
    times: Vec<i64>,
    status: String,
    messages: Vec<String>,
}

/// What one region's rules read to.
#[derive(Debug, Default)]
pub(super) struct RegionFigures {
    /// Per rule asked for, in order.
    pub rules: Vec<RuleFigures>,
    /// Rules of the region that lost events beyond the DLQ in the window, none of the
    /// asked ones: (rule name, bus when its series names one, lost).
    pub lost_elsewhere: Vec<(String, Option<String>, f64)>,
    /// Look-ups that failed, one line each.
    pub unavailable: Vec<String>,
    /// What the figures cannot show.
    pub notes: Vec<String>,
}

/// Reads the figures of `rules` (all in `region`; peaks for those in `with_peaks`) in
/// `periods`, and looks for the region's other rules that lost events; each call bounded
/// by `limit`.
pub(super) async fn read(
    client: &aws_sdk_cloudwatch::Client,
    region: &str,
    rules: &[&Rule],
    with_peaks: &BTreeSet<String>,
    periods: Periods,
    now: i64,
    limit: Limit,
) -> RegionFigures {
    let asked: BTreeSet<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    let (read, lost) = tokio::join!(
        read_rules(client, rules, with_peaks, periods, limit),
        // Beside the rules' reads.
        lost_elsewhere(client, &asked, periods, limit),
    );
    let (figures, failed) = read;
    let mut out = RegionFigures {
        rules: figures,
        ..RegionFigures::default()
    };
    let mut cloudwatch_line = (!failed.is_empty()).then(|| {
        let errors: BTreeSet<&str> = failed.iter().map(|(e, _)| e.as_str()).collect();
        let names: Vec<&str> = failed
            .iter()
            .flat_map(|(_, n)| n.iter().map(|s| s.as_str()))
            .collect();
        format!(
            "CloudWatch GetMetricData ({region}): {}; no figures for {} rule(s): {}",
            errors.into_iter().collect::<Vec<_>>().join("; "),
            names.len(),
            shortened(&names)
        )
    });
    let (found, errors) = lost;
    out.lost_elsewhere = found;
    for (action, e) in errors {
        let e = format!("CloudWatch {action} ({region}): {e}");
        match &mut cloudwatch_line {
            Some(line) => {
                line.push_str("; ");
                line.push_str(&e);
            }
            None => out.unavailable.push(e),
        }
    }
    out.unavailable.extend(cloudwatch_line);
    if now - periods.start > 14 * DAY - MARGIN {
        out.notes.push(
            "rules no dead letter names were searched for lost events through ListMetrics, which lists only metrics with data in the last 14 days: the window starts earlier, so a rule that lost events only before then is not found".into(),
        );
    }
    out
}

/// Up to ten names: the first eight, then the last, when there are more.
fn shortened(names: &[&str]) -> String {
    match names {
        [first @ .., last] if names.len() > 10 => {
            format!("{}, …, {last}", first[..8].join(", "))
        }
        _ => names.join(", "),
    }
}

/// The query id of rule `i`'s metric `j` under set `k`, total (`t`) or peak (`p`).
fn id(kind: char, i: usize, k: usize, j: usize) -> String {
    format!("{kind}{i}s{k}m{j}")
}

fn query(id: String, rule: &Rule, set: DimensionSet, metric: &str, period: i32) -> MetricDataQuery {
    let stat = MetricStat::builder()
        .metric(
            Metric::builder()
                .namespace("AWS/Events")
                .metric_name(metric)
                .set_dimensions(Some(set.dimensions(rule)))
                .build(),
        )
        .period(period)
        .stat("Sum")
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(stat)
        .return_data(true)
        .build()
}

/// The queries of rule `i`.
fn rule_queries(i: usize, rule: &Rule, peaks: bool, periods: Periods) -> Vec<MetricDataQuery> {
    let mut queries = Vec::new();
    for (k, set) in DimensionSet::BOTH.into_iter().enumerate() {
        for (j, metric) in METRICS.iter().enumerate() {
            queries.push(query(id('t', i, k, j), rule, set, metric, periods.total));
        }
        if peaks {
            for (j, metric) in PEAK_METRICS.iter().enumerate() {
                queries.push(query(id('p', i, k, j), rule, set, metric, periods.peak));
            }
        }
    }
    queries
}

/// Every rule's figures, and the calls that failed: (why, the rules they held).
async fn read_rules(
    client: &aws_sdk_cloudwatch::Client,
    rules: &[&Rule],
    with_peaks: &BTreeSet<String>,
    periods: Periods,
    limit: Limit,
) -> (Vec<RuleFigures>, Vec<(String, Vec<String>)>) {
    // Whole rules per call, up to 500 queries.
    let mut calls: Vec<(Vec<usize>, Vec<MetricDataQuery>)> = vec![(Vec::new(), Vec::new())];
    for (i, rule) in rules.iter().enumerate() {
        let queries = rule_queries(i, rule, with_peaks.contains(&rule.arn), periods);
        let last = calls.last_mut().expect("one call at least");
        if last.1.len() + queries.len() > QUERIES_PER_CALL {
            calls.push((vec![i], queries));
        } else {
            last.0.push(i);
            last.1.extend(queries);
        }
    }
    calls.retain(|(held, _)| !held.is_empty());
    let answers = futures::stream::iter(calls.into_iter().map(|(held, queries)| async move {
        let answer = get_metric_data(client, &queries, periods.start, periods.end, limit).await;
        (held, answer)
    }))
    .buffer_unordered(CALLS_AT_ONCE)
    .collect::<Vec<_>>()
    .await;
    let mut found: HashMap<String, Answer> = HashMap::new();
    let mut failed_rule: BTreeMap<usize, String> = BTreeMap::new();
    let mut failed = Vec::new();
    for (held, answer) in answers {
        match answer {
            Ok(a) => found.extend(a),
            Err(e) => {
                // Said in the rules' `no_metrics` and in one unavailable line.
                let e = e.to_string();
                for i in &held {
                    failed_rule.insert(*i, e.clone());
                }
                failed.push((e, held.iter().map(|i| rules[*i].name.clone()).collect()));
            }
        }
    }
    let figures = rules
        .iter()
        .enumerate()
        .map(|(i, rule)| match failed_rule.get(&i) {
            Some(e) => RuleFigures {
                missing: Some(format!(
                    "no metrics found for rule {} (CloudWatch GetMetricData failed: {e})",
                    rule.name
                )),
                ..RuleFigures::default()
            },
            None => figures_of(i, rule, &found),
        })
        .collect();
    (figures, failed)
}

/// Rule `i`'s figures from the answers.
fn figures_of(i: usize, rule: &Rule, found: &HashMap<String, Answer>) -> RuleFigures {
    let mut figures = RuleFigures::default();
    let mut not_complete = Vec::new();
    let order = DimensionSet::own_first(rule);
    let mut pick = |kind: char, j: usize, metric: &str, reduce: fn(&[f64]) -> f64| {
        let mut best: Option<(DimensionSet, f64)> = None;
        for set in order {
            let k = DimensionSet::BOTH
                .iter()
                .position(|s| *s == set)
                .unwrap_or(0);
            let Some(a) = found.get(&id(kind, i, k, j)) else {
                continue;
            };
            if a.status != "Complete" {
                not_complete.push(format!(
                    "CloudWatch answered {} for {metric} under {{{}}}{}",
                    a.status,
                    set.as_str().replace(',', ", "),
                    said(&a.messages)
                ));
            }
            if a.values.is_empty() {
                continue;
            }
            // The rule's own set stands when it has data; the other only when it alone has
            // (never the two added, never the larger: `{RuleName}` alone is the default
            // bus's rule of that name, another rule than one on a custom or partner bus).
            if best.is_none() {
                best = Some((set, reduce(&a.values)));
            }
        }
        best
    };
    for (j, metric) in METRICS.iter().enumerate() {
        if let Some((set, v)) = pick('t', j, metric, |v| v.iter().sum()) {
            figures.totals.insert((*metric).to_owned(), v);
            figures.found_under.insert((*metric).to_owned(), set);
        }
    }
    for (j, metric) in PEAK_METRICS.iter().enumerate() {
        if let Some((_, v)) = pick('p', j, metric, |v| v.iter().copied().fold(0.0, f64::max)) {
            figures.peaks.insert((*metric).to_owned(), v);
        }
    }
    if let Some(why) = not_complete.first() {
        figures = RuleFigures {
            missing: Some(format!("no metrics found for rule {} ({why})", rule.name)),
            ..RuleFigures::default()
        };
    } else if figures.totals.is_empty() {
        figures.missing = Some(format!(
            "no metrics found for rule {} (no data under {{RuleName}} or {{EventBusName, RuleName}} in the window)",
            rule.name
        ));
        figures.peaks.clear();
    }
    figures
}

fn aws_time(t: i64) -> aws_sdk_cloudwatch::primitives::DateTime {
    aws_sdk_cloudwatch::primitives::DateTime::from_secs(t)
}

/// Every value of every query, by query id, over every page; each page bounded by
/// `limit`.
async fn get_metric_data(
    client: &aws_sdk_cloudwatch::Client,
    queries: &[MetricDataQuery],
    start: i64,
    end: i64,
    limit: Limit,
) -> Result<HashMap<String, Answer>, HealthError> {
    let mut found: HashMap<String, Answer> = HashMap::new();
    let mut next: Option<String> = None;
    loop {
        let call = async {
            client
                .get_metric_data()
                .set_metric_data_queries(Some(queries.to_vec()))
                .start_time(aws_time(start))
                .end_time(aws_time(end))
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("GetMetricData", e))
        };
        let page = limit.run(call).await?;
        for result in page.metric_data_results() {
            let answer = found
                .entry(result.id().unwrap_or_default().to_owned())
                .or_default();
            answer.values.extend_from_slice(result.values());
            answer
                .times
                .extend(result.timestamps().iter().map(|t| t.secs()));
            // A later page's status stands: PartialData on one page is completed by the
            // next.
            answer.status = result
                .status_code()
                .map_or("Complete".to_owned(), |s| s.as_str().to_owned());
            answer.messages = result
                .messages()
                .iter()
                .map(|m| {
                    format!(
                        "{}{}",
                        m.code().map_or(String::new(), |c| format!("{c}: ")),
                        m.value().unwrap_or_default()
                    )
                })
                .collect();
        }
        match page.next_token() {
            Some(token) => next = Some(token.to_owned()),
            None => return Ok(found),
        }
    }
}

/// The region's rules other than `asked` with `InvocationsFailedToBeSentToDlq` in the
/// window: found with `ListMetrics`, then read with their exact dimensions; and what
/// could not be searched or read, one line each. What was found stands whatever failed.
async fn lost_elsewhere(
    client: &aws_sdk_cloudwatch::Client,
    asked: &BTreeSet<&str>,
    periods: Periods,
    limit: Limit,
) -> (
    Vec<(String, Option<String>, f64)>,
    Vec<(&'static str, String)>,
) {
    let mut errors = Vec::new();
    let series = rules_with_lost_events(client, asked, limit, &mut errors).await;
    let mut lost: BTreeMap<(String, Option<String>), f64> = BTreeMap::new();
    for chunk in series.chunks(QUERIES_PER_CALL) {
        let queries = lost_queries(chunk, periods);
        let answers =
            match get_metric_data(client, &queries, periods.start, periods.end, limit).await {
                Ok(answers) => answers,
                Err(e) => {
                    let names: Vec<&str> = chunk.iter().filter_map(|d| rule_of(d)).collect();
                    errors.push((
                        "GetMetricData",
                        format!(
                            "{e}; lost events not read for {} rule(s) no dead letter names: {}",
                            names.len(),
                            shortened(&names)
                        ),
                    ));
                    continue;
                }
            };
        for (n, dims) in chunk.iter().enumerate() {
            let sum: f64 = answers
                .get(&format!("l{n}"))
                .map_or(0.0, |a| a.values.iter().sum());
            if sum > 0.0 {
                let value = |name: &str| {
                    dims.iter()
                        .find(|d| d.name() == Some(name))
                        .and_then(|d| d.value())
                        .map(str::to_owned)
                };
                let key = (value("RuleName").unwrap_or_default(), value("EventBusName"));
                let entry = lost.entry(key).or_default();
                // Under both sets: the same events.
                *entry = entry.max(sum);
            }
        }
    }
    // A rule seen under {RuleName} and under {EventBusName, RuleName}: once, with its bus.
    let mut by_name: BTreeMap<String, (Option<String>, f64)> = BTreeMap::new();
    for ((name, bus), v) in lost {
        let entry = by_name.entry(name).or_insert((None, 0.0));
        if bus.is_some() {
            entry.0 = bus;
        }
        entry.1 = entry.1.max(v);
    }
    let found = by_name
        .into_iter()
        .map(|(name, (bus, v))| (name, bus, v))
        .collect();
    (found, errors)
}

/// The `InvocationsFailedToBeSentToDlq` series (their dimensions) of the region's rules
/// other than `asked`, through at most `LIST_PAGES` pages of `ListMetrics`; what could
/// not be searched is pushed to `errors`.
async fn rules_with_lost_events(
    client: &aws_sdk_cloudwatch::Client,
    asked: &BTreeSet<&str>,
    limit: Limit,
    errors: &mut Vec<(&'static str, String)>,
) -> Vec<Vec<Dimension>> {
    let mut series: Vec<Vec<Dimension>> = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        if pages == LIST_PAGES {
            errors.push((
                "ListMetrics",
                format!("more than {LIST_PAGES} pages of rules that lost events; the rest were not searched"),
            ));
            break;
        }
        let call = async {
            client
                .list_metrics()
                .namespace("AWS/Events")
                .metric_name("InvocationsFailedToBeSentToDlq")
                .dimensions(DimensionFilter::builder().name("RuleName").build())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ListMetrics", e))
        };
        let page = match limit.run(call).await {
            Ok(page) => page,
            Err(e) => {
                errors.push(("ListMetrics", if pages == 0 {
                    format!("{e}; rules no dead letter names were not searched for lost events")
                } else {
                    format!("{e} after {pages} page(s); the rest of the rules were not searched for lost events")
                }));
                break;
            }
        };
        pages += 1;
        for metric in page.metrics() {
            let dims = metric.dimensions().to_vec();
            if rule_of(&dims).is_some_and(|r| !asked.contains(r)) {
                series.push(dims);
            }
        }
        match page.next_token() {
            Some(t) => next = Some(t.to_owned()),
            None => break,
        }
    }
    series
}

/// One `GetMetricData` query per series: its sum over the whole window, under id `l<n>`.
fn lost_queries(chunk: &[Vec<Dimension>], periods: Periods) -> Vec<MetricDataQuery> {
    chunk
        .iter()
        .enumerate()
        .map(|(n, dims)| {
            let stat = MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/Events")
                        .metric_name("InvocationsFailedToBeSentToDlq")
                        .set_dimensions(Some(dims.clone()))
                        .build(),
                )
                .period(periods.total)
                .stat("Sum")
                .build();
            MetricDataQuery::builder()
                .id(format!("l{n}"))
                .metric_stat(stat)
                .return_data(true)
                .build()
        })
        .collect()
}

/// One metric of one rule at the finest period CloudWatch keeps for its window's age.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Series {
    /// (period start in epoch seconds, sum), in time order; periods without data absent.
    pub(crate) points: Vec<(i64, f64)>,
    /// The dimension set the data was under; `None` when neither set has data.
    pub(crate) under: Option<DimensionSet>,
    /// The period, in seconds.
    pub(crate) period: i32,
}

/// `metrics` of `rule` over `start..end` at the finest period allowed (both dimension
/// sets asked, the rule's own taken when it has data, as for the totals), in one call
/// bounded by `bounds`; `Err` names a call that failed or an answer not `Complete`.
pub(crate) async fn series(
    client: &aws_sdk_cloudwatch::Client,
    rule: &Rule,
    metrics: &[&str],
    (start, end, now): (i64, i64, i64),
    bounds: super::Bounds,
) -> Result<Vec<Series>, HealthError> {
    let periods = periods(start, end, now)?;
    let mut queries = Vec::new();
    for (k, set) in DimensionSet::BOTH.into_iter().enumerate() {
        for (j, metric) in metrics.iter().enumerate() {
            queries.push(query(id('s', 0, k, j), rule, set, metric, periods.peak));
        }
    }
    let limit = Limit::starting_now(bounds);
    let found = get_metric_data(client, &queries, periods.start, periods.end, limit).await?;
    let mut out = Vec::new();
    for (j, metric) in metrics.iter().enumerate() {
        let mut series = Series {
            period: periods.peak,
            ..Series::default()
        };
        for set in DimensionSet::own_first(rule) {
            let k = usize::from(set == DimensionSet::BusAndRule);
            let Some(a) = found.get(&id('s', 0, k, j)) else {
                continue;
            };
            if a.status != "Complete" {
                return Err(HealthError::NotComplete {
                    status: a.status.clone(),
                    metric: (*metric).to_owned(),
                    rule: rule.name.clone(),
                    messages: a.messages.clone(),
                });
            }
            if series.under.is_none() && !a.values.is_empty() {
                let mut points: Vec<(i64, f64)> = a
                    .times
                    .iter()
                    .copied()
                    .zip(a.values.iter().copied())
                    .collect();
                points.sort_by_key(|(t, _)| *t);
                series.points = points;
                series.under = Some(set);
            }
        }
        out.push(series);
    }
    Ok(out)
}

/// The `RuleName` of a series' dimensions.
fn rule_of(dims: &[Dimension]) -> Option<&str> {
    dims.iter()
        .find(|d| d.name() == Some("RuleName"))
        .and_then(|d| d.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn the_period_is_a_multiple_of_what_the_starts_age_requires() {
        let p = periods(NOW - 3 * DAY + 30, NOW - 3 * DAY + 1230, NOW).unwrap();
        assert_eq!((p.peak, p.total % 60, p.start % 60), (60, 0, 0));
        assert!(p.start <= NOW - 3 * DAY + 30 && p.end >= NOW - 3 * DAY + 1230);
        let p = periods(NOW - 22 * DAY, NOW - 22 * DAY + 1200, NOW).unwrap();
        assert_eq!((p.peak, p.total % 300, p.start % 300), (300, 0, 0));
        let p = periods(NOW - 30 * DAY, NOW, NOW).unwrap();
        assert_eq!((p.peak, p.total), (300, 30 * DAY as i32));
        let p = periods(NOW - 100 * DAY, NOW - 99 * DAY, NOW).unwrap();
        assert_eq!((p.peak, p.total % 3600), (3600, 0));
        assert!(matches!(
            periods(NOW - 456 * DAY, NOW, NOW),
            Err(HealthError::WindowTooOld)
        ));
        // Just short of 15 days when asked is past it when CloudWatch reads it.
        assert_eq!(periods(NOW - 15 * DAY + 60, NOW, NOW).unwrap().peak, 300);
    }

    #[test]
    fn a_period_is_named_for_its_length() {
        assert_eq!(per_period(60), "per minute");
        assert_eq!(per_period(300), "per 5 minutes");
        assert_eq!(per_period(3600), "per hour");
    }
}
