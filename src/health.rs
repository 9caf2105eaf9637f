//! How healthy the failed rules and targets are, beside the dead letters: EventBridge's own
//! metrics per rule (CloudWatch `GetMetricData`, namespace `AWS/Events`), and each API
//! destination's configured invocation rate beside the rate EventBridge invoked it at.
//! Best effort: every look-up is bounded in time, and one that fails or is denied is one
//! line in [`Health::unavailable`], never a failed summary.
//!
//! What the figures cannot tell: the metrics have no target dimension, so a rule's figures
//! cover all its targets (up to five); the split by target comes from the dead letters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use chrono::{DateTime, Utc};

use crate::classify::FailureCategory;
use crate::genesys::{ClientCredentials, Endpoints, TokenSource, eventbridge_integrations};
use crate::report::{
    ApiDestinationHealth, EventSourceHealth, Health, RuleHealth, Summary, WindowOut, parse_time,
};
use crate::targets::{AwsTargets, RuleArn as Rule, arn_parts};

/// A Genesys Cloud OAuth client and where to reach Genesys Cloud.
pub type GenesysAccess = (ClientCredentials, Endpoints);

/// EventBridge's rule metrics read for each rule.
pub const METRICS: [&str; 8] = [
    "Invocations",
    "FailedInvocations",
    "InvocationsSentToDlq",
    "InvocationsFailedToBeSentToDlq",
    "SuccessfulInvocationAttempts",
    "InvocationAttempts",
    "RetryInvocationAttempts",
    "ThrottledRules",
];

/// `GetMetricData` takes at most this many queries per call.
const QUERIES_PER_CALL: usize = 500;

/// A rule's dimensions in `AWS/Events`: `RuleName`, and `EventBusName` off the default
/// bus.
fn dimensions(rule: &Rule) -> Vec<Dimension> {
    let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let mut dims = Vec::new();
    if let Some(bus) = &rule.bus {
        dims.push(dimension("EventBusName", bus));
    }
    dims.push(dimension("RuleName", &rule.name));
    dims
}

/// What to look up: the failed targets with the rules that failed on them, over a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthQuery {
    /// Target ARN → (the rules whose dead letters name it, the most `RATE_LIMIT_EXCEEDED`
    /// dead letters against it in one minute).
    targets: BTreeMap<String, (BTreeSet<String>, usize)>,
    /// Rules whose dead letters name no target.
    other_rules: BTreeSet<String>,
    /// The window, `None` when no dead letter has a time.
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl HealthQuery {
    /// The incidents of a summary, over its window.
    pub fn of_summary(summary: &Summary) -> HealthQuery {
        let mut query = HealthQuery {
            window: window(summary),
            ..HealthQuery::default()
        };
        for i in &summary.incidents {
            let rate_limited = match i.category {
                FailureCategory::RateLimitExceeded => i.peak_per_minute,
                _ => 0,
            };
            query.add(i.target_arn.as_deref(), &i.rules, rate_limited);
        }
        query
    }

    /// One incident of the incident table, over its first to last failure.
    pub fn of_incident(item: &crate::incidents::IncidentItem) -> HealthQuery {
        let time = |ms| DateTime::<Utc>::from_timestamp_millis(ms).and_then(whole_minute);
        let mut query = HealthQuery {
            window: time(item.first_seen)
                .zip(time(item.last_seen))
                .map(|(a, b)| (a, b + chrono::Duration::minutes(1))),
            ..HealthQuery::default()
        };
        let rate_limited = if item.category == FailureCategory::RateLimitExceeded.as_str() {
            item.peak() as usize
        } else {
            0
        };
        let rules: Vec<String> = item.rules.iter().cloned().collect();
        query.add(item.target_arn.as_deref(), &rules, rate_limited);
        query
    }

    fn add(&mut self, target: Option<&str>, rules: &[String], rate_limited: usize) {
        match target {
            Some(t) => {
                let entry = self.targets.entry(t.to_owned()).or_default();
                entry.0.extend(rules.iter().cloned());
                entry.1 = entry.1.max(rate_limited);
            }
            None => self.other_rules.extend(rules.iter().cloned()),
        }
    }

    fn rules(&self) -> BTreeSet<Rule> {
        self.targets
            .values()
            .flat_map(|(rules, _)| rules)
            .chain(&self.other_rules)
            .filter_map(|arn| Rule::parse(arn))
            .collect()
    }
}

/// Looks the health of the query's rules, API destinations and partner event sources up
/// through `sdk`, and the Genesys Cloud integrations through `genesys` when given; each
/// call bounded by `timeout`.
pub async fn look_up(
    sdk: &aws_config::SdkConfig,
    genesys: Option<&GenesysAccess>,
    query: &HealthQuery,
    timeout: Duration,
) -> Health {
    let mut health = Health::default();
    let Some((start, end)) = query.window else {
        health
            .unavailable
            .push("no dead letter has a time: no window to read metrics in".into());
        return health;
    };
    health.window = WindowOut {
        since: Some(start.to_rfc3339()),
        until: Some(end.to_rfc3339()),
    };
    let rules = query.rules();
    let mut by_region: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
    for rule in &rules {
        by_region.entry(&rule.region).or_default().push(rule);
    }
    for (region, rules) in by_region {
        match rule_metrics(sdk, region, &rules, start, end, timeout).await {
            Ok(found) => health.rules.extend(found),
            Err(e) => health.unavailable.push(e),
        }
    }
    health.lost_beyond_dlq = health
        .rules
        .iter()
        .map(|r| r.metrics["InvocationsFailedToBeSentToDlq"] as u64)
        .sum();
    let targets = AwsTargets::new(sdk.clone());
    event_sources(&targets, &rules, timeout, &mut health).await;
    if let Some((credentials, endpoints)) = genesys {
        let http = crate::http::client();
        let tokens = TokenSource::new(http.clone(), &endpoints.login_base, credentials.clone());
        let read = eventbridge_integrations(&http, endpoints, &tokens, timeout);
        match bounded(timeout, read).await {
            Ok(found) => health.genesys_integrations = found,
            Err(e) => health
                .unavailable
                .push(format!("Genesys Cloud integrations: {e}")),
        }
    }
    for (arn, name) in api_destinations(query) {
        let limit = match bounded(timeout, describe_limit(&targets, &arn, &name)).await {
            Ok(limit) => limit,
            Err(e) => {
                health.unavailable.push(e);
                None
            }
        };
        let (its_rules, rate_limited) = &query.targets[&arn];
        let destination =
            api_destination(&health.rules, its_rules, *rate_limited, arn, name, limit);
        health.api_destinations.push(destination);
    }
    health
}

/// The state of each partner event source that feeds a rule's bus (a partner bus has the
/// source's name).
async fn event_sources(
    targets: &AwsTargets,
    rules: &BTreeSet<Rule>,
    timeout: Duration,
    health: &mut Health,
) {
    let sources: BTreeSet<(&str, &str)> = rules
        .iter()
        .filter_map(|r| Some((r.region.as_str(), r.bus.as_deref()?)))
        .filter(|(_, bus)| bus.starts_with("aws.partner/"))
        .collect();
    for (region, name) in sources {
        let events = targets.events(region);
        let describe = async {
            events
                .describe_event_source()
                .name(name)
                .send()
                .await
                .map_err(|e| crate::aws_error::describe("DescribeEventSource", &e))
        };
        match bounded(timeout, describe).await {
            Ok(out) => health.event_sources.push(EventSourceHealth {
                name: name.to_owned(),
                state: out
                    .state()
                    .map_or("UNKNOWN".to_owned(), |s| s.as_str().to_owned()),
            }),
            Err(e) => health
                .unavailable
                .push(format!("EventBridge {e} (event source {name})")),
        }
    }
}

/// The window the metrics are read in: the one asked for, else the dead letters' first
/// and last time, widened to whole minutes.
fn window(summary: &Summary) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let time = |asked: &Option<String>, seen: &Option<String>| {
        asked.as_deref().or(seen.as_deref()).and_then(parse_time)
    };
    let start = time(&summary.window.since, &summary.first_seen)?;
    let end = time(&summary.window.until, &summary.last_seen)?;
    Some((
        whole_minute(start)?,
        whole_minute(end)? + chrono::Duration::minutes(1),
    ))
}

/// The start of `t`'s minute.
fn whole_minute(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(60), 0)
}

async fn bounded<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Err(format!("did not answer within {timeout:?}")))
}

/// The metrics of `rules` (all in `region`), in as few `GetMetricData` calls as allowed.
async fn rule_metrics(
    sdk: &aws_config::SdkConfig,
    region: &str,
    rules: &[&Rule],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    timeout: Duration,
) -> Result<Vec<RuleHealth>, String> {
    let client = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(sdk)
            .region(aws_config::Region::new(region.to_owned()))
            .build(),
    );
    let queries: Vec<MetricDataQuery> = rules
        .iter()
        .enumerate()
        .flat_map(|(i, rule)| {
            METRICS.iter().enumerate().map(move |(j, metric)| {
                let stat = MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("AWS/Events")
                            .metric_name(*metric)
                            .set_dimensions(Some(dimensions(rule)))
                            .build(),
                    )
                    .period(60)
                    .stat("Sum")
                    .build();
                MetricDataQuery::builder()
                    .id(format!("r{i}m{j}"))
                    .metric_stat(stat)
                    .return_data(true)
                    .build()
            })
        })
        .collect();
    let mut values: HashMap<String, Vec<f64>> = HashMap::new();
    for chunk in queries.chunks(QUERIES_PER_CALL) {
        let read = get_metric_data(&client, chunk, start, end);
        for (id, v) in bounded(timeout, read)
            .await
            .map_err(|e| format!("CloudWatch GetMetricData ({region}): {e}"))?
        {
            values.entry(id).or_default().extend(v);
        }
    }
    Ok(rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let series = |j: usize| {
                values
                    .get(&format!("r{i}m{j}"))
                    .cloned()
                    .unwrap_or_default()
            };
            let metrics: BTreeMap<String, f64> = METRICS
                .iter()
                .enumerate()
                .map(|(j, m)| ((*m).to_owned(), series(j).iter().fold(0.0, |a, v| a + v)))
                .collect();
            let invocations = metrics["Invocations"];
            RuleHealth {
                rule_arn: rule.arn.clone(),
                rule_name: rule.name.clone(),
                event_bus_name: rule.bus.clone(),
                failure_ratio: (invocations > 0.0)
                    .then(|| metrics["InvocationsSentToDlq"] / invocations),
                peak_invocations_per_minute: series(0).into_iter().fold(0.0, f64::max),
                metrics,
            }
        })
        .collect())
}

/// Every value of every query, by query id, over every page.
async fn get_metric_data(
    client: &aws_sdk_cloudwatch::Client,
    queries: &[MetricDataQuery],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<(String, Vec<f64>)>, String> {
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = client
            .get_metric_data()
            .set_metric_data_queries(Some(queries.to_vec()))
            .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                start.timestamp(),
            ))
            .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                end.timestamp(),
            ))
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| crate::aws_error::describe("GetMetricData", &e))?;
        for result in page.metric_data_results() {
            found.push((
                result.id().unwrap_or_default().to_owned(),
                result.values().to_vec(),
            ));
        }
        match page.next_token() {
            Some(token) => next = Some(token.to_owned()),
            None => return Ok(found),
        }
    }
}

/// The API destinations among the query's targets: (ARN, name).
fn api_destinations(query: &HealthQuery) -> BTreeSet<(String, String)> {
    query
        .targets
        .keys()
        .filter_map(|arn| {
            let (service, _, _, resource) = arn_parts(arn)?;
            let name = resource
                .strip_prefix("api-destination/")?
                .split('/')
                .next()?;
            (service == "events").then(|| (arn.to_owned(), name.to_owned()))
        })
        .collect()
}

/// `InvocationRateLimitPerSecond` of the API destination `name` (in `arn`'s region).
async fn describe_limit(
    targets: &AwsTargets,
    arn: &str,
    name: &str,
) -> Result<Option<u32>, String> {
    let region = arn_parts(arn).map(|(_, r, _, _)| r).unwrap_or_default();
    let out = targets
        .events(region)
        .describe_api_destination()
        .name(name)
        .send()
        .await
        .map_err(|e| {
            format!(
                "EventBridge {} (api-destination/{name})",
                crate::aws_error::describe("DescribeApiDestination", &e)
            )
        })?;
    Ok(out
        .invocation_rate_limit_per_second()
        .and_then(|l| u32::try_from(l).ok()))
}

/// One API destination's limit beside the peak its rules were invoked at.
fn api_destination(
    rules: &[RuleHealth],
    its_rules: &BTreeSet<String>,
    rate_limited: usize,
    arn: String,
    name: String,
    limit: Option<u32>,
) -> ApiDestinationHealth {
    let invoked = rules
        .iter()
        .filter(|r| its_rules.contains(&r.rule_arn))
        .map(|r| r.peak_invocations_per_minute / 60.0)
        .fold(0.0, f64::max);
    let advice = limit.filter(|l| invoked > f64::from(*l)).map(|l| {
        format!(
            "EventBridge invoked it at up to {invoked:.1}/s, above its limit of {l}/s: set InvocationRateLimitPerSecond to at least {} (or slow the rule's events down)",
            invoked.ceil() as u64
        )
    });
    ApiDestinationHealth {
        arn,
        name,
        invocation_rate_limit_per_second: limit,
        peak_invoked_per_second: invoked,
        peak_rate_limited_per_minute: rate_limited,
        advice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_on_the_default_a_custom_and_a_partner_bus_name_their_dimensions() {
        let default = Rule::parse("arn:aws:events:us-east-1:1:rule/to-crm").unwrap();
        assert_eq!((default.bus, default.name.as_str()), (None, "to-crm"));
        let partner = Rule::parse(
            "arn:aws:events:us-east-1:1:rule/aws.partner/genesys.com/cloud/org/prod/to-crm",
        )
        .unwrap();
        assert_eq!(
            partner.bus.as_deref(),
            Some("aws.partner/genesys.com/cloud/org/prod")
        );
        assert_eq!(dimensions(&partner).len(), 2);
        assert!(Rule::parse("arn:aws:sqs:us-east-1:1:queue").is_none());
    }
}
