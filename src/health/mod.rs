//! How healthy the failed rules and targets are, beside the dead letters: EventBridge's own
//! metrics per rule (CloudWatch, namespace `AWS/Events`: see [`cloudwatch`] for how they
//! are read so that a miss never reads as a healthy zero), each API destination's limit
//! and connection beside the rate its rules' events matched at, the partner event sources
//! and the Genesys Cloud integrations feeding the rules' buses.
//!
//! Best effort: every call is bounded in time, and one that fails or is denied is one line
//! in [`Health::unavailable`], never a failed summary. The look-up is a port,
//! [`TargetHealth`]: [`AwsHealth`] asks AWS and Genesys Cloud, [`MemoryHealth`] answers
//! from memory.
//!
//! What the figures cannot tell: the metrics have no target dimension, so a rule's figures
//! cover all its targets (up to five); the split by target comes from the dead letters.

mod cloudwatch;

use std::collections::{BTreeMap, BTreeSet};
#[cfg(test)]
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::aws_error::AwsError;
use crate::classify::FailureCategory;
use crate::genesys::{
    ClientCredentials, Endpoints, IntegrationState, IntegrationsError, TokenSource,
    eventbridge_integrations,
};
use crate::report::parse_time;
use crate::summarize::{
    ApiDestinationHealth, EventSourceHealth, Health, RuleHealth, Summary, WindowOut,
};
use crate::targets::{AwsTargets, RuleArn as Rule, arn_parts};

pub(crate) use cloudwatch::{METRICS, per_period};
pub(crate) use cloudwatch::{Series, series};

/// A Genesys Cloud OAuth client and where to reach Genesys Cloud.
pub(crate) type GenesysAccess = (ClientCredentials, Endpoints);

/// Error codes of dead letters EventBridge throttled itself (no HTTP answer from the
/// endpoint).
const EVENTBRIDGE_THROTTLING: [&str; 3] =
    ["THROTTLING", "RATE_LIMIT_EXCEEDED", "ThrottlingException"];

/// Why one look-up of the health found nothing: the line it puts in
/// [`Health::unavailable`] or a rule's `no_metrics`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HealthError {
    /// An AWS call failed (the service's code and status kept).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// `DescribeApiDestination` of `name` failed (the call's line in this one, so not
    /// its `source()` too).
    #[error("EventBridge {call} (api-destination/{name})")]
    ApiDestination { name: String, call: AwsError },
    /// Genesys Cloud's integrations could not be read.
    #[error(transparent)]
    Integrations(#[from] IntegrationsError),
    /// A call took longer than its own bound.
    #[error("did not answer within {0:?}")]
    CallTimedOut(Duration),
    /// The look-up's total ran out before the call was done.
    #[error("not done within the look-up's {0:?}")]
    LookUpOver(Duration),
    /// The window starts before anything CloudWatch keeps.
    #[error("the window starts more than 455 days ago: CloudWatch keeps no metric data that old")]
    WindowTooOld,
    /// A metric's answer was not `Complete` (`messages`: CloudWatch's, `CODE: text` each).
    #[error(
        "CloudWatch answered {status} for {metric} of rule {rule}{}",
        said(messages)
    )]
    NotComplete {
        status: String,
        metric: String,
        rule: String,
        messages: Vec<String>,
    },
}

/// `: message; message` after a line, or nothing.
fn said(messages: &[String]) -> String {
    if messages.is_empty() {
        String::new()
    } else {
        format!(": {}", messages.join("; "))
    }
}

/// What the dead letters say about one failed target.
#[derive(Debug, Clone, Default, PartialEq)]
struct TargetEvidence {
    /// The rules whose dead letters name it.
    rules: BTreeSet<String>,
    /// The most `RATE_LIMIT_EXCEEDED` dead letters against it in one minute.
    rate_limited_peak: usize,
    /// Rate-limited dead letters whose endpoint answered HTTP 429.
    endpoint_throttled: usize,
    /// Rate-limited dead letters EventBridge throttled itself.
    eventbridge_throttled: usize,
    /// `AUTHENTICATION_REJECTED` dead letters.
    auth_rejected: usize,
}

/// What to look up: the failed targets with the rules that failed on them, over a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HealthQuery {
    /// Target ARN → what its dead letters say.
    targets: BTreeMap<String, TargetEvidence>,
    /// Rules whose dead letters name no target.
    other_rules: BTreeSet<String>,
    /// Rule ARN → dead letters naming it in the window.
    dead_letters: BTreeMap<String, usize>,
    /// The window, `None` when no dead letter has a time.
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl HealthQuery {
    /// The incidents of a summary, over its window.
    pub(crate) fn of_summary(summary: &Summary) -> HealthQuery {
        let mut query = HealthQuery {
            window: window(summary),
            ..HealthQuery::default()
        };
        for i in &summary.incidents {
            let mut evidence = TargetEvidence::default();
            match i.category {
                FailureCategory::RateLimitExceeded => {
                    evidence.rate_limited_peak = i.peak_per_minute;
                    let eventbridge: usize = EVENTBRIDGE_THROTTLING
                        .iter()
                        .filter_map(|c| i.error_codes.get(*c))
                        .sum();
                    evidence.eventbridge_throttled = eventbridge;
                    if i.http_statuses.contains(&429) {
                        evidence.endpoint_throttled = i.count.saturating_sub(eventbridge);
                    }
                }
                FailureCategory::AuthenticationRejected => evidence.auth_rejected = i.count,
                _ => {}
            }
            query.add(i.target_arn.as_deref(), &i.rules, i.count, evidence);
        }
        query
    }

    /// One incident of the incident table, over its first to last failure.
    pub(crate) fn of_incident(item: &crate::incidents::IncidentItem) -> HealthQuery {
        let time = |ms| DateTime::<Utc>::from_timestamp_millis(ms).and_then(whole_minute);
        let mut query = HealthQuery {
            window: time(item.first_seen)
                .zip(time(item.last_seen))
                .map(|(a, b)| (a, b + chrono::Duration::minutes(1))),
            ..HealthQuery::default()
        };
        let count = item.count as usize;
        let mut evidence = TargetEvidence::default();
        if item.category == FailureCategory::RateLimitExceeded.as_str() {
            evidence.rate_limited_peak = item.peak() as usize;
            if item.http_statuses.contains(&429) {
                evidence.endpoint_throttled = count;
            } else if item
                .codes
                .iter()
                .any(|c| EVENTBRIDGE_THROTTLING.contains(&c.as_str()))
            {
                evidence.eventbridge_throttled = count;
            }
        } else if item.category == FailureCategory::AuthenticationRejected.as_str() {
            evidence.auth_rejected = count;
        }
        let rules: Vec<String> = item.rules.iter().cloned().collect();
        query.add(item.target_arn.as_deref(), &rules, count, evidence);
        query
    }

    fn add(
        &mut self,
        target: Option<&str>,
        rules: &[String],
        count: usize,
        evidence: TargetEvidence,
    ) {
        for rule in rules {
            *self.dead_letters.entry(rule.clone()).or_default() += count;
        }
        match target {
            Some(t) => {
                let entry = self.targets.entry(t.to_owned()).or_default();
                entry.rules.extend(rules.iter().cloned());
                entry.rate_limited_peak = entry.rate_limited_peak.max(evidence.rate_limited_peak);
                entry.endpoint_throttled += evidence.endpoint_throttled;
                entry.eventbridge_throttled += evidence.eventbridge_throttled;
                entry.auth_rejected += evidence.auth_rejected;
            }
            None => self.other_rules.extend(rules.iter().cloned()),
        }
    }

    fn rules(&self) -> BTreeSet<Rule> {
        self.targets
            .values()
            .flat_map(|t| &t.rules)
            .chain(&self.other_rules)
            .filter_map(|arn| Rule::parse(arn))
            .collect()
    }

    /// The rules whose rates matter: those of API destinations.
    fn rules_with_peaks(&self) -> BTreeSet<String> {
        api_destinations(self)
            .into_iter()
            .flat_map(|(arn, _)| self.targets[&arn].rules.iter().cloned())
            .collect()
    }
}

/// The health look-up: the port the Notifier and `summarize` ask through.
pub(crate) trait TargetHealth: Send + Sync + std::fmt::Debug {
    /// The health of the query's rules and targets, and the Genesys side's through
    /// `genesys` when given; each call within `bounds.per_call`, all within
    /// `bounds.total`.
    fn look_up<'a>(
        &'a self,
        query: &'a HealthQuery,
        genesys: Option<&'a GenesysAccess>,
        bounds: Bounds,
    ) -> BoxFuture<'a, Health>;
}

/// Asks CloudWatch, EventBridge and Genesys Cloud.
#[derive(Debug, Clone)]
pub(crate) struct AwsHealth {
    sdk: aws_config::SdkConfig,
}

impl AwsHealth {
    /// Look-ups through `sdk`; a rule in another region is looked up there.
    pub(crate) fn new(sdk: aws_config::SdkConfig) -> AwsHealth {
        AwsHealth { sdk }
    }
}

impl TargetHealth for AwsHealth {
    fn look_up<'a>(
        &'a self,
        query: &'a HealthQuery,
        genesys: Option<&'a GenesysAccess>,
        bounds: Bounds,
    ) -> BoxFuture<'a, Health> {
        Box::pin(look_up(
            &self.sdk,
            genesys,
            query,
            Limit::starting_now(bounds),
        ))
    }
}

/// The in-memory twin: answers one health, and remembers each query.
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryHealth {
    answer: Health,
    asked: Arc<Mutex<Vec<HealthQuery>>>,
}

#[cfg(test)]
impl MemoryHealth {
    /// Answers `answer` to every query.
    pub(crate) fn answering(answer: Health) -> MemoryHealth {
        MemoryHealth {
            answer,
            asked: Arc::default(),
        }
    }

    /// The queries asked so far.
    pub(crate) fn asked(&self) -> Vec<HealthQuery> {
        self.asked.lock().expect("not poisoned").clone()
    }
}

#[cfg(test)]
impl TargetHealth for MemoryHealth {
    fn look_up<'a>(
        &'a self,
        query: &'a HealthQuery,
        _genesys: Option<&'a GenesysAccess>,
        _bounds: Bounds,
    ) -> BoxFuture<'a, Health> {
        self.asked.lock().expect("not poisoned").push(query.clone());
        let answer = self.answer.clone();
        Box::pin(async move { answer })
    }
}

/// Looks the health of the query's rules, API destinations and partner event sources up
/// through `sdk`, and the Genesys Cloud integrations through `genesys` when given; each
/// call bounded by `limit`.
async fn look_up(
    sdk: &aws_config::SdkConfig,
    genesys: Option<&GenesysAccess>,
    query: &HealthQuery,
    limit: Limit,
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
    let with_peaks = query.rules_with_peaks();
    let now = Utc::now().timestamp();
    match cloudwatch::periods(start.timestamp(), end.timestamp(), now) {
        Ok(periods) => {
            // The window the figures cover: rounded out to whole peak periods.
            let time = |t| DateTime::<Utc>::from_timestamp(t, 0).map(|t| t.to_rfc3339());
            health.window = WindowOut {
                since: time(periods.start),
                until: time(periods.end),
            };
            health.period_seconds = Some(periods.total);
            health.peak_period_seconds = Some(periods.peak);
            rule_health(
                sdk,
                query,
                &rules,
                &with_peaks,
                periods,
                now,
                limit,
                &mut health,
            )
            .await;
        }
        Err(why) => {
            for rule in &rules {
                health.rules.push(RuleHealth {
                    rule_arn: rule.arn.clone(),
                    rule_name: rule.name.clone(),
                    event_bus_name: rule.bus.clone(),
                    no_metrics: Some(format!("no metrics found for rule {} ({why})", rule.name)),
                    dead_letters: query.dead_letters.get(&rule.arn).copied().unwrap_or(0),
                    named_by_dead_letters: true,
                    ..RuleHealth::default()
                });
            }
        }
    }
    // Rules that lost events first, most first; the others in their order.
    health.rules.sort_by(|a, b| {
        b.lost()
            .partial_cmp(&a.lost())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    health.lost_beyond_dlq = health.rules.iter().map(|r| r.lost() as u64).sum();
    let targets = AwsTargets::new(sdk.clone());
    event_sources(&targets, &rules, limit, &mut health).await;
    if let Some(access) = genesys {
        genesys_integrations(access, &rules, limit, &mut health).await;
    }
    api_destination_health(&targets, query, limit, &mut health).await;
    health
}

/// The Genesys Cloud integrations, each marked whether it feeds one of `rules`' buses.
async fn genesys_integrations(
    (credentials, endpoints): &GenesysAccess,
    rules: &BTreeSet<Rule>,
    limit: Limit,
    health: &mut Health,
) {
    let http = crate::http::client();
    let tokens = TokenSource::new(http.clone(), &endpoints.login_base, credentials.clone());
    let read = eventbridge_integrations(&http, endpoints, &tokens, limit.per_call());
    match limit.run(read).await {
        Ok(found) => health.genesys_integrations = feeding(found, rules),
        Err(e) => health
            .unavailable
            .push(format!("Genesys Cloud integrations: {e}")),
    }
}

/// Each API destination the query's targets name: described, with its rules' rates.
async fn api_destination_health(
    targets: &AwsTargets,
    query: &HealthQuery,
    limit: Limit,
    health: &mut Health,
) {
    let peak_period = health.peak_period_seconds.unwrap_or(60);
    for (arn, name) in api_destinations(query) {
        let described = match limit.run(describe(targets, &arn, &name, limit)).await {
            Ok(d) => d,
            Err(e) => {
                health.unavailable.push(e.to_string());
                Described::default()
            }
        };
        let evidence = &query.targets[&arn];
        let destination =
            api_destination(&health.rules, evidence, arn, name, described, peak_period);
        health.api_destinations.push(destination);
    }
}

/// The figures of every rule of the query, region by region, and the regions' other rules
/// that lost events.
#[allow(clippy::too_many_arguments)]
async fn rule_health(
    sdk: &aws_config::SdkConfig,
    query: &HealthQuery,
    rules: &BTreeSet<Rule>,
    with_peaks: &BTreeSet<String>,
    periods: cloudwatch::Periods,
    now: i64,
    limit: Limit,
    health: &mut Health,
) {
    let mut by_region: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
    for rule in rules {
        by_region.entry(&rule.region).or_default().push(rule);
    }
    for (region, rules) in by_region {
        let client = aws_sdk_cloudwatch::Client::from_conf(
            aws_sdk_cloudwatch::config::Builder::from(sdk)
                .region(aws_config::Region::new(region.to_owned()))
                .build(),
        );
        let read = cloudwatch::read(&client, region, &rules, with_peaks, periods, now, limit).await;
        let per_minute = |v: f64| v * 60.0 / f64::from(periods.peak);
        for (rule, figures) in rules.iter().zip(read.rules) {
            let dead_letters = query.dead_letters.get(&rule.arn).copied().unwrap_or(0);
            let mut r = RuleHealth {
                rule_arn: rule.arn.clone(),
                rule_name: rule.name.clone(),
                event_bus_name: rule.bus.clone(),
                dead_letters,
                named_by_dead_letters: true,
                no_metrics: figures.missing,
                peak_invocations_per_minute: figures
                    .peaks
                    .get("Invocations")
                    .map(|v| per_minute(*v)),
                peak_matched_per_minute: figures
                    .peaks
                    .get("TriggeredRules")
                    .map(|v| per_minute(*v)),
                found_under: figures
                    .found_under
                    .iter()
                    .map(|(m, s)| (m.clone(), s.as_str().to_owned()))
                    .collect(),
                metrics: figures.totals,
                ..RuleHealth::default()
            };
            if r.no_metrics.is_none() {
                for metric in METRICS {
                    r.metrics.entry(metric.to_owned()).or_insert(0.0);
                }
                // Every rule asked has dead letters in the window: none sent to the DLQ
                // means CloudWatch's figure missed them.
                if dead_letters > 0 && r.metrics["InvocationsSentToDlq"] == 0.0 {
                    r.missed.push("InvocationsSentToDlq".into());
                } else if r.metrics["Invocations"] > 0.0 {
                    r.failure_ratio =
                        Some(r.metrics["InvocationsSentToDlq"] / r.metrics["Invocations"]);
                }
            }
            if !with_peaks.contains(&rule.arn) {
                r.peak_invocations_per_minute = None;
            }
            health.rules.push(r);
        }
        let account = rules
            .first()
            .and_then(|r| arn_parts(&r.arn))
            .map(|(_, _, account, _)| account.to_owned())
            .unwrap_or_default();
        for (name, bus, lost) in read.lost_elsewhere {
            let path = bus.as_ref().map_or(name.clone(), |b| format!("{b}/{name}"));
            health.rules.push(RuleHealth {
                rule_arn: format!("arn:aws:events:{region}:{account}:rule/{path}"),
                rule_name: name,
                event_bus_name: bus,
                metrics: BTreeMap::from([("InvocationsFailedToBeSentToDlq".to_owned(), lost)]),
                named_by_dead_letters: false,
                ..RuleHealth::default()
            });
        }
        health.unavailable.extend(read.unavailable);
        health.notes.extend(read.notes);
    }
}

/// The integrations, each marked when it feeds one of the rules' partner buses: its
/// `eventSourceSuffix` is the bus name's last part, in the rule's account and region.
fn feeding(mut found: Vec<IntegrationState>, rules: &BTreeSet<Rule>) -> Vec<IntegrationState> {
    let buses: BTreeSet<(&str, &str, &str)> = rules
        .iter()
        .filter_map(|r| {
            let bus = r.bus.as_deref()?.strip_prefix("aws.partner/genesys.com/")?;
            let suffix = bus.rsplit('/').next()?;
            let (_, region, account, _) = arn_parts(&r.arn)?;
            Some((suffix, account, region))
        })
        .collect();
    for i in &mut found {
        i.feeds_rules = buses.iter().any(|(suffix, account, region)| {
            i.event_source_suffix.as_deref() == Some(*suffix)
                && i.aws_account_id.as_deref().is_none_or(|a| a == *account)
                && i.aws_region.as_deref().is_none_or(|r| r == *region)
        });
    }
    found
}

/// The state of each partner event source that feeds a rule's bus (a partner bus has the
/// source's name).
async fn event_sources(
    targets: &AwsTargets,
    rules: &BTreeSet<Rule>,
    limit: Limit,
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
                .map_err(|e| AwsError::from_sdk("DescribeEventSource", e))
        };
        match limit.run(describe).await {
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

/// How long a health look-up may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Each call at most this long.
    pub per_call: Duration,
    /// The whole look-up within this: a call made late gets only what is left, one made
    /// after it is over fails at once, and what was found stands.
    pub total: Duration,
}

/// Each call's bound within one look-up: `per_call`, cut to what is left before `until`.
#[derive(Debug, Clone, Copy)]
struct Limit {
    per_call: Duration,
    total: Duration,
    until: tokio::time::Instant,
}

impl Limit {
    fn starting_now(bounds: Bounds) -> Limit {
        Limit {
            per_call: bounds.per_call,
            total: bounds.total,
            until: tokio::time::Instant::now() + bounds.total,
        }
    }

    /// The time a call made now may take.
    fn per_call(&self) -> Duration {
        self.per_call.min(
            self.until
                .saturating_duration_since(tokio::time::Instant::now()),
        )
    }

    /// `call`, bounded by what a call made now may take.
    async fn run<T, E: Into<HealthError>>(
        self,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, HealthError> {
        let by_call = tokio::time::Instant::now() + self.per_call;
        let (until, why) = if by_call <= self.until {
            (by_call, HealthError::CallTimedOut(self.per_call))
        } else {
            (self.until, HealthError::LookUpOver(self.total))
        };
        match tokio::time::timeout_at(until, call).await {
            Ok(answer) => answer.map_err(Into::into),
            Err(_) => Err(why),
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

/// What EventBridge says of an API destination.
#[derive(Debug, Clone, Default)]
struct Described {
    /// `InvocationRateLimitPerSecond`.
    limit: Option<u32>,
    /// Its connection's `ConnectionState`.
    connection_state: Option<String>,
}

/// The API destination `name` (in `arn`'s region) and its connection.
async fn describe(
    targets: &AwsTargets,
    arn: &str,
    name: &str,
    limit: Limit,
) -> Result<Described, HealthError> {
    let region = arn_parts(arn).map(|(_, r, _, _)| r).unwrap_or_default();
    let events = targets.events(region);
    let out = events
        .describe_api_destination()
        .name(name)
        .send()
        .await
        .map_err(|e| HealthError::ApiDestination {
            name: name.to_owned(),
            call: AwsError::from_sdk("DescribeApiDestination", e),
        })?;
    let mut described = Described {
        limit: out
            .invocation_rate_limit_per_second()
            .and_then(|l| u32::try_from(l).ok()),
        connection_state: None,
    };
    // arn:aws:events:REGION:ACCOUNT:connection/NAME/ID
    let connection = out
        .connection_arn()
        .and_then(arn_parts)
        .and_then(|(_, _, _, resource)| resource.strip_prefix("connection/"))
        .and_then(|r| r.split('/').next());
    if let Some(connection) = connection {
        let call = async {
            events
                .describe_connection()
                .name(connection)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DescribeConnection", e))
        };
        // The limit stands without the connection's state.
        if let Ok(c) = limit.run(call).await {
            described.connection_state = c.connection_state().map(|s| s.as_str().to_owned());
        }
    }
    Ok(described)
}

/// One API destination's limit beside the rates its rules' events matched and were
/// delivered at, and the advice the dead letters' evidence supports.
fn api_destination(
    rules: &[RuleHealth],
    evidence: &TargetEvidence,
    arn: String,
    name: String,
    described: Described,
    peak_period: i32,
) -> ApiDestinationHealth {
    let its: Vec<&RuleHealth> = rules
        .iter()
        .filter(|r| evidence.rules.contains(&r.rule_arn))
        .collect();
    let per_second = |per_minute: Option<f64>| per_minute.map(|v| v / 60.0);
    let invoked = its
        .iter()
        .filter_map(|r| per_second(r.peak_invocations_per_minute))
        .fold(0.0, f64::max);
    let matched = its
        .iter()
        .filter_map(|r| per_second(r.peak_matched_per_minute))
        .reduce(f64::max);
    let mut advice = Vec::new();
    let limit = described.limit;
    let limit_text = limit.map_or("unknown".to_owned(), |l| format!("{l}/s"));
    if evidence.endpoint_throttled > 0 {
        advice.push(format!(
            "the endpoint answered HTTP 429 to {} dead-lettered event(s): its own rate limit turned them away, so raise the endpoint's limit, or set InvocationRateLimitPerSecond (now {limit_text}) below the rate it accepts",
            evidence.endpoint_throttled
        ));
    }
    if evidence.eventbridge_throttled > 0 {
        let throttled = evidence.eventbridge_throttled;
        // The busiest peak period's sum ÷ its seconds: an average, which bursts inside the
        // period can exceed.
        let busiest = per_period(peak_period);
        let busiest = busiest.trim_start_matches("per ");
        let rules = its
            .iter()
            .filter(|r| r.peak_matched_per_minute.is_some())
            .count();
        let of_rules = if rules > 1 {
            format!(", the busiest of its {rules} rules; together they may match faster")
        } else {
            String::new()
        };
        match (limit, matched) {
            (Some(l), Some(m)) if m > f64::from(l) => advice.push(format!(
                "EventBridge throttled {throttled} event(s): the rule's events matched at {m:.1}/s averaged over the busiest {busiest} (TriggeredRules{of_rules}), above its limit: raise InvocationRateLimitPerSecond ({l}/s) to at least {} (or slow the rule's events down)",
                m.ceil() as u64
            )),
            (Some(l), Some(m)) => advice.push(format!(
                "EventBridge throttled {throttled} event(s) though the rule's events matched at only {m:.1}/s averaged over the busiest {busiest} (TriggeredRules{of_rules}), within its limit of {l}/s: they came in bursts above the limit that the average hides; raise InvocationRateLimitPerSecond above the bursts' rate, or give the rule's retry policy (MaximumEventAgeInSeconds) time to drain them"
            )),
            (None, Some(m)) => advice.push(format!(
                "EventBridge throttled {throttled} event(s): the rule's events matched at {m:.1}/s averaged over the busiest {busiest} (TriggeredRules{of_rules}); the API destination's InvocationRateLimitPerSecond is unknown: compare it with that rate"
            )),
            (_, None) => advice.push(format!(
                "EventBridge throttled {throttled} event(s), but the rate the rule's events matched at is unknown (no TriggeredRules): compare it with InvocationRateLimitPerSecond ({limit_text})"
            )),
        }
    }
    if described.connection_state.as_deref() == Some("DEAUTHORIZED") {
        advice.push(format!(
            "its connection is DEAUTHORIZED: EventBridge deauthorizes a connection after the endpoint answers 401 or 407, and every event then fails as AUTHENTICATION_REJECTED{}; update the connection's credentials",
            if evidence.auth_rejected > 0 {
                format!(" ({} here)", evidence.auth_rejected)
            } else {
                String::new()
            }
        ));
    }
    ApiDestinationHealth {
        arn,
        name,
        invocation_rate_limit_per_second: limit,
        peak_invoked_per_second: invoked,
        peak_matched_per_second: matched,
        peak_rate_limited_per_minute: evidence.rate_limited_peak,
        endpoint_throttled: evidence.endpoint_throttled,
        eventbridge_throttled: evidence.eventbridge_throttled,
        connection_state: described.connection_state,
        advice: (!advice.is_empty()).then(|| advice.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_on_the_default_a_custom_and_a_partner_bus_name_their_bus() {
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
        assert!(Rule::parse("arn:aws:sqs:us-east-1:1:queue").is_none());
    }

    fn integration(suffix: &str, account: &str) -> IntegrationState {
        IntegrationState {
            name: suffix.into(),
            event_source_suffix: Some(suffix.into()),
            code: "INACTIVE".into(),
            aws_account_id: Some(account.into()),
            aws_region: Some("us-east-1".into()),
            ..IntegrationState::default()
        }
    }

    #[test]
    fn an_integration_feeds_a_rule_by_its_suffix_account_and_region() {
        let rules = BTreeSet::from([Rule::parse(
            "arn:aws:events:us-east-1:111:rule/aws.partner/genesys.com/cloud/org/prod/to-crm",
        )
        .unwrap()]);
        let found = feeding(
            vec![
                integration("prod", "111"),
                integration("prod", "222"),
                integration("test", "111"),
            ],
            &rules,
        );
        let feeds: Vec<bool> = found.iter().map(|i| i.feeds_rules).collect();
        assert_eq!(feeds, [true, false, false]);
    }

    #[test]
    fn an_endpoints_429s_advise_the_endpoint_and_eventbridges_throttling_the_limit() {
        let rule = RuleHealth {
            rule_arn: "r".into(),
            peak_matched_per_minute: Some(1800.0),
            peak_invocations_per_minute: Some(600.0),
            ..RuleHealth::default()
        };
        let described = Described {
            limit: Some(10),
            connection_state: Some("AUTHORIZED".into()),
        };
        let evidence = |endpoint, eventbridge| TargetEvidence {
            rules: BTreeSet::from(["r".to_owned()]),
            endpoint_throttled: endpoint,
            eventbridge_throttled: eventbridge,
            ..TargetEvidence::default()
        };
        let d = |e| {
            api_destination(
                std::slice::from_ref(&rule),
                &e,
                "a".into(),
                "n".into(),
                described.clone(),
                60,
            )
            .advice
            .unwrap_or_default()
        };
        let endpoint = d(evidence(3, 0));
        assert!(
            endpoint.contains("the endpoint answered HTTP 429"),
            "{endpoint}"
        );
        assert!(!endpoint.contains("raise InvocationRateLimitPerSecond"));
        let limit = d(evidence(0, 1));
        assert!(
            limit.contains("raise InvocationRateLimitPerSecond (10/s) to at least 30"),
            "{limit}"
        );
        assert!(
            limit.contains("matched at 30.0/s averaged over the busiest minute"),
            "{limit}"
        );
        // Delivered invocations at the limit show no demand: no evidence, no advice.
        assert_eq!(d(evidence(0, 0)), "");
    }

    /// EventBridge throttled, yet the busiest minute's matched events average below the
    /// limit: bursts inside the minute did it. That is said, never nothing; and so is an
    /// unknown limit.
    /// An incident's endpoint 429s are told by the statuses the target answered, not by
    /// a "429" somewhere in a sampled message (a timeout of 4290 ms is not a 429).
    #[test]
    fn an_incidents_endpoint_429s_are_its_http_statuses_not_its_messages_text() {
        use crate::incidents::{Observation, fresh};
        let seen = |statuses: &[u16], error: &str| Observation {
            key: "RATE_LIMIT_EXCEEDED#t".into(),
            category: FailureCategory::RateLimitExceeded.as_str().into(),
            target_arn: Some("t".into()),
            first_seen: 0,
            last_seen: 60_000,
            count: 4,
            rules: BTreeSet::from(["r".to_owned()]),
            codes: BTreeSet::from(["THROTTLING".to_owned()]),
            sample_errors: vec![error.to_owned()],
            http_statuses: statuses.iter().copied().collect(),
            conversations: 0,
            per_minute: BTreeMap::from([(0, 4)]),
            report: None,
            replayed: 0,
            replays: BTreeSet::new(),
        };
        let evidence = |statuses: &[u16], error: &str| {
            let query = HealthQuery::of_incident(&fresh(&seen(statuses, error), 0, 1));
            query.targets["t"].clone()
        };
        let timed_out = evidence(&[], "throttled after waiting 4290 ms");
        assert_eq!(
            (
                timed_out.endpoint_throttled,
                timed_out.eventbridge_throttled
            ),
            (0, 4)
        );
        let answered = evidence(&[429], "Too Many Requests");
        assert_eq!(
            (answered.endpoint_throttled, answered.eventbridge_throttled),
            (4, 0)
        );
    }

    #[test]
    fn throttling_below_the_limit_on_average_names_the_bursts() {
        let rule = RuleHealth {
            rule_arn: "r".into(),
            peak_matched_per_minute: Some(300.0),
            ..RuleHealth::default()
        };
        let evidence = TargetEvidence {
            rules: BTreeSet::from(["r".to_owned()]),
            eventbridge_throttled: 4,
            ..TargetEvidence::default()
        };
        let advice = |limit| {
            let described = Described {
                limit,
                connection_state: None,
            };
            api_destination(
                std::slice::from_ref(&rule),
                &evidence,
                "a".into(),
                "n".into(),
                described,
                300,
            )
            .advice
            .unwrap_or_default()
        };
        let below = advice(Some(10));
        assert!(
            below.contains("matched at only 5.0/s averaged over the busiest 5 minutes"),
            "{below}"
        );
        assert!(below.contains("bursts above the limit"), "{below}");
        let unknown = advice(None);
        assert!(
            unknown.contains("InvocationRateLimitPerSecond is unknown"),
            "{unknown}"
        );
    }

    /// Every AWS call hangs; the look-up still ends within its total, however many
    /// calls it has to make (three regions: three metric reads, three event sources,
    /// three API destinations), and names what it could not read.
    #[tokio::test]
    async fn a_look_up_of_many_hung_calls_ends_within_its_total() {
        let sdk = crate::aws_error::shapes::hole_sdk().await;
        let mut query = HealthQuery {
            window: Some((
                Utc::now() - chrono::Duration::hours(3),
                Utc::now() - chrono::Duration::hours(2),
            )),
            ..HealthQuery::default()
        };
        for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
            let rule = format!(
                "arn:aws:events:{region}:111:rule/aws.partner/genesys.com/cloud/org/prod/to-crm"
            );
            let target = format!("arn:aws:events:{region}:111:api-destination/crm/1");
            let evidence = TargetEvidence {
                eventbridge_throttled: 1,
                ..TargetEvidence::default()
            };
            query.add(Some(&target), &[rule], 1, evidence);
        }
        let bounds = Bounds {
            per_call: Duration::from_millis(300),
            total: Duration::from_millis(1000),
        };
        let started = std::time::Instant::now();
        let health = AwsHealth::new(sdk).look_up(&query, None, bounds).await;
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "{took:?}");
        assert_eq!(health.rules.len(), 3);
        let unavailable = health.unavailable.join("\n");
        assert!(
            unavailable.contains("not done within the look-up's 1s"),
            "{unavailable}"
        );
        assert_eq!(health.api_destinations.len(), 3);
    }

    /// A failed AWS call keeps the service's code and status through the limiter, and
    /// its line is the one `aws_error::describe` gives.
    #[tokio::test]
    async fn an_aws_failure_keeps_its_code_and_its_line() {
        use crate::aws_error::shapes;
        use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError;
        use aws_sdk_eventbridge::operation::describe_api_destination::DescribeApiDestinationError;
        let limit = Limit::starting_now(Bounds {
            per_call: Duration::from_secs(5),
            total: Duration::from_secs(5),
        });
        let throttled = shapes::service(
            GetMetricDataError::generic(shapes::meta("Throttling", "Rate exceeded")),
            400,
        );
        let e = limit
            .run(async { Err::<(), _>(AwsError::from_sdk("GetMetricData", throttled)) })
            .await
            .unwrap_err();
        assert!(
            matches!(&e, HealthError::Aws(a) if a.code() == Some("Throttling") && a.status() == Some(400)),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "GetMetricData: Throttling: Rate exceeded");
        let gone = shapes::service(
            DescribeApiDestinationError::generic(shapes::meta(
                "ResourceNotFoundException",
                "no such destination",
            )),
            400,
        );
        let e = HealthError::ApiDestination {
            name: "crm".into(),
            call: AwsError::from_sdk("DescribeApiDestination", gone),
        };
        assert_eq!(
            e.to_string(),
            "EventBridge DescribeApiDestination: ResourceNotFoundException: no such destination (api-destination/crm)"
        );
        // Printed with its causes, the call's line is said once.
        assert_eq!(crate::aws_error::said_twice(&e), Vec::<String>::new());
    }

    /// A call past its own bound and one past the look-up's total say which.
    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_bound_or_the_total_says_which() {
        let limit = Limit::starting_now(Bounds {
            per_call: Duration::from_secs(3),
            total: Duration::from_secs(5),
        });
        let hung = || std::future::pending::<Result<(), HealthError>>();
        let e = limit.run(hung()).await.unwrap_err();
        assert!(matches!(e, HealthError::CallTimedOut(d) if d == Duration::from_secs(3)));
        assert_eq!(e.to_string(), "did not answer within 3s");
        let e = limit.run(hung()).await.unwrap_err();
        assert!(matches!(e, HealthError::LookUpOver(d) if d == Duration::from_secs(5)));
        assert_eq!(e.to_string(), "not done within the look-up's 5s");
    }

    #[tokio::test]
    async fn the_twin_answers_and_remembers_the_query() {
        let twin = MemoryHealth::answering(Health {
            lost_beyond_dlq: 7,
            ..Health::default()
        });
        let port: &dyn TargetHealth = &twin;
        let query = HealthQuery::default();
        let bounds = Bounds {
            per_call: Duration::from_secs(1),
            total: Duration::from_secs(1),
        };
        let health = port.look_up(&query, None, bounds).await;
        assert_eq!(health.lost_beyond_dlq, 7);
        assert_eq!(twin.asked(), [query]);
    }
}
