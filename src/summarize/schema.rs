//! The summary's wire types: the contract of `summary.json` (camelCase field names; fields
//! are only ever added), beside the summarizer that fills them. The report's are in
//! `report::schema`. See `docs/contract.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::classify::FailureCategory;

/// The version of `summary.json`'s schema.
pub(crate) const SUMMARY_SCHEMA_VERSION: u32 = 1;

/// `summary.json`: the whole incident across the reports read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Summary {
    /// Always [`SUMMARY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the summary was made.
    pub generated_at: String,
    /// The window asked for.
    pub window: WindowOut,
    /// Reports read.
    pub reports: usize,
    /// Sources that could not be read as reports, and why.
    pub unreadable: Vec<Unreadable>,
    /// Failed events: one per dead letter, except Custom Event Bus summaries, which count
    /// their events.
    pub total_failures: usize,
    /// Distinct dead letters (SQS message ids).
    pub dead_letters: usize,
    /// Of those, how many the latest report stored.
    pub stored: usize,
    /// Records listed again by another report (counted once).
    pub listed_again: usize,
    /// The earliest failure.
    pub first_seen: Option<String>,
    /// The latest failure.
    pub last_seen: Option<String>,
    /// Whether any incident is ongoing.
    pub ongoing: bool,
    /// Failed events per category.
    pub by_category: BTreeMap<FailureCategory, usize>,
    /// Failed events per target ARN.
    pub by_target: BTreeMap<String, usize>,
    /// Incidents by (category, target), largest first.
    pub incidents: Vec<Incident>,
    /// Failures over time.
    pub timeline: Timeline,
    /// The conversations affected, by first failure.
    pub conversations: Vec<AffectedConversation>,
    /// How the failed rules and targets fared beside the dead letters (absent with
    /// `--no-health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// EventBridge's own view of the rules and targets of the incidents, in the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Health {
    /// Where the figures come from and what they cannot tell.
    pub window: WindowOut,
    /// The period the totals were read with (the window, rounded out to what CloudWatch
    /// keeps for data that old).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    /// The period the peaks were read with: 60 s while CloudWatch keeps 1-minute data
    /// (15 days), 300 s to 63 days, 3,600 s to 455 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_period_seconds: Option<i32>,
    /// One per rule of the incidents, and one per other rule of their regions that lost
    /// events beyond the DLQ in the window; rules that lost events first.
    pub rules: Vec<RuleHealth>,
    /// One per API destination among the incidents' targets.
    pub api_destinations: Vec<ApiDestinationHealth>,
    /// Events EventBridge could not even put in the dead-letter queue, all rules with
    /// figures.
    pub lost_beyond_dlq: u64,
    /// The partner event sources the rules' buses are fed by (`DescribeEventSource`).
    #[serde(default)]
    pub event_sources: Vec<EventSourceHealth>,
    /// The org's Amazon EventBridge Source integrations, as Genesys Cloud reports them
    /// (when Genesys credentials are configured).
    #[serde(default)]
    pub genesys_integrations: Vec<crate::genesys::IntegrationState>,
    /// Look-ups that failed or were denied, one line each.
    pub unavailable: Vec<String>,
    /// What the figures cannot show (a look-up's known blind spot).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One rule's EventBridge metrics (namespace `AWS/Events`) summed over the window, under
/// the dimension set that has them. A rule with no data under either set, or whose
/// result CloudWatch did not mark `Complete`, has no figures (`noMetrics` says why), never
/// zeros. Once a rule is found, a metric EventBridge did not emit counts as zero. The
/// metrics have no target dimension: a rule's figures cover all its targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuleHealth {
    /// The rule's ARN.
    pub rule_arn: String,
    /// Its name and bus, as the metrics' dimensions name them.
    pub rule_name: String,
    /// `None` for the default bus.
    pub event_bus_name: Option<String>,
    /// Metric name → sum over the window (`Invocations`, `FailedInvocations`,
    /// `InvocationsSentToDlq`, `InvocationsFailedToBeSentToDlq`,
    /// `SuccessfulInvocationAttempts`, `InvocationAttempts`, `RetryInvocationAttempts`,
    /// `ThrottledRules`, `TriggeredRules`); empty when `noMetrics`.
    pub metrics: BTreeMap<String, f64>,
    /// `InvocationsSentToDlq` ÷ `Invocations`, when there were invocations and the
    /// dead-letter count was not missed.
    pub failure_ratio: Option<f64>,
    /// The most `Invocations` in one peak period, per minute (for the rules of API
    /// destinations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_invocations_per_minute: Option<f64>,
    /// The most `TriggeredRules` (events the rule matched) in one peak period, per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_matched_per_minute: Option<f64>,
    /// Metric → the dimension set its data was under (`RuleName` or
    /// `EventBusName,RuleName`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub found_under: BTreeMap<String, String>,
    /// Why there are no figures: `no metrics found for rule X (…)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_metrics: Option<String>,
    /// Metrics whose value cannot be right: `InvocationsSentToDlq` 0 while dead letters
    /// name the rule in the window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<String>,
    /// Dead letters that name the rule in the window.
    #[serde(default)]
    pub dead_letters: usize,
    /// Whether any dead letter names the rule (`false`: found by its lost events alone).
    #[serde(default = "yes")]
    pub named_by_dead_letters: bool,
}

fn yes() -> bool {
    true
}

impl RuleHealth {
    /// The figures every rendering shows, in order: invocations, sent to the DLQ (`missed`
    /// when it cannot be right), the failure ratio (`—` without invocations or when
    /// missed), lost beyond the DLQ, retries, throttled. `None` without figures.
    pub(crate) fn figures(&self) -> Option<[String; 6]> {
        if self.no_metrics.is_some() {
            return None;
        }
        let m = |name: &str| self.metrics.get(name).copied().unwrap_or(0.0).to_string();
        let sent = if self.missed.iter().any(|m| m == "InvocationsSentToDlq") {
            "missed".to_owned()
        } else {
            m("InvocationsSentToDlq")
        };
        Some([
            m("Invocations"),
            sent,
            self.failure_ratio
                .map_or("—".to_owned(), |f| format!("{:.2} %", f * 100.0)),
            m("InvocationsFailedToBeSentToDlq"),
            m("RetryInvocationAttempts"),
            m("ThrottledRules"),
        ])
    }

    /// Events lost beyond the DLQ, when the rule has figures.
    pub(crate) fn lost(&self) -> f64 {
        if self.no_metrics.is_some() {
            return 0.0;
        }
        self.metrics
            .get("InvocationsFailedToBeSentToDlq")
            .copied()
            .unwrap_or(0.0)
    }
}

impl ApiDestinationHealth {
    /// Its limit beside the rates it was asked to take, as one sentence:
    /// `limit 10/s, matched at up to 30.0/s, invoked at up to 10.0/s, rate-limited up to
    /// 1/min.`
    pub(crate) fn rates(&self) -> String {
        format!(
            "limit {}, matched at up to {}, invoked at up to {:.1}/s, rate-limited up to {}/min{}.",
            self.invocation_rate_limit_per_second
                .map_or("unknown".to_owned(), |l| format!("{l}/s")),
            self.peak_matched_per_second
                .map_or("unknown".to_owned(), |r| format!("{r:.1}/s")),
            self.peak_invoked_per_second,
            self.peak_rate_limited_per_minute,
            self.connection_state
                .as_deref()
                .map_or(String::new(), |s| format!(", connection {s}"))
        )
    }
}

/// A partner event source's state: `ACTIVE`, `PENDING` (not associated with a bus yet) or
/// `DELETED`. Only an active source delivers events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventSourceHealth {
    /// Its name (`aws.partner/genesys.com/cloud/<org>/<suffix>`), the partner bus's too.
    pub name: String,
    /// `State`.
    pub state: String,
}

/// An API destination's configured rate beside the rate it was asked to take.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiDestinationHealth {
    /// The API destination's ARN (the failed target).
    pub arn: String,
    /// Its name.
    pub name: String,
    /// `InvocationRateLimitPerSecond`, when it could be read.
    pub invocation_rate_limit_per_second: Option<u32>,
    /// The peak rate, per second, at which EventBridge invoked the rules targeting it
    /// (their `Invocations` in the busiest peak period ÷ its seconds). EventBridge holds
    /// delivery to the limit, so this cannot show demand above it.
    pub peak_invoked_per_second: f64,
    /// The peak rate, per second, at which the rules targeting it matched events
    /// (`TriggeredRules` in the busiest peak period ÷ its seconds): the demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_matched_per_second: Option<f64>,
    /// The most `RATE_LIMIT_EXCEEDED` dead letters against it in one minute.
    pub peak_rate_limited_per_minute: usize,
    /// Rate-limited dead letters whose error says the endpoint answered HTTP 429.
    #[serde(default)]
    pub endpoint_throttled: usize,
    /// Rate-limited dead letters EventBridge throttled itself (`THROTTLING`, no 429).
    #[serde(default)]
    pub eventbridge_throttled: usize,
    /// Its connection's state (`DescribeConnection`: `AUTHORIZED`, `DEAUTHORIZED`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_state: Option<String>,
    /// What to change: the endpoint's limit when the endpoint answered 429,
    /// `InvocationRateLimitPerSecond` when EventBridge throttled events matched faster
    /// than it, the connection when it is deauthorized.
    pub advice: Option<String>,
}

/// The window of a summary, as asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WindowOut {
    /// `--since`, resolved.
    pub since: Option<String>,
    /// `--until`, resolved.
    pub until: Option<String>,
}

/// A source that is not a readable report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Unreadable {
    /// The file or `s3://` object.
    pub source: String,
    /// Why.
    pub reason: String,
}

/// Failures of one category against one target across the reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Incident {
    /// The category.
    pub category: FailureCategory,
    /// The target ARN.
    pub target_arn: Option<String>,
    /// The rules whose target failed (`ruleArn`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Failed events.
    pub count: usize,
    /// The first failure.
    pub first_seen: Option<String>,
    /// The last failure.
    pub last_seen: Option<String>,
    /// The most failures in one minute.
    pub peak_per_minute: usize,
    /// A failure within the last 15 minutes of the window (of now without `--until`).
    pub ongoing: bool,
    /// Distinct conversations affected.
    pub conversations: usize,
    /// Failed events per `ERROR_CODE`.
    pub error_codes: BTreeMap<String, usize>,
    /// HTTP statuses seen.
    pub http_statuses: Vec<u16>,
    /// Up to five message ids, earliest first.
    pub sample_message_ids: Vec<String>,
    /// Up to five distinct error messages, verbatim.
    pub sample_errors: Vec<String>,
    /// What to do about it.
    pub recommended_action: String,
    /// Whether the payloads can be replayed unchanged once fixed.
    pub replay_as_is: String,
    /// The replay of exactly this incident.
    pub replay_command: String,
}

/// Failures per category over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Timeline {
    /// The width of a bucket (0 when no record has a time).
    pub bucket_seconds: i64,
    /// Buckets with failures, in time order.
    pub buckets: Vec<Bucket>,
}

/// One bucket of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Bucket {
    /// Its start.
    pub start: String,
    /// Failed events per category.
    pub by_category: BTreeMap<FailureCategory, usize>,
}

/// A conversation with failed events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AffectedConversation {
    /// The conversation id.
    pub id: String,
    /// Media types, as Genesys Cloud reported them.
    pub media_types: Vec<String>,
    /// Queues.
    pub queue_ids: Vec<String>,
    /// Divisions.
    pub division_ids: Vec<String>,
    /// Its first failure.
    pub first_failure: Option<String>,
    /// Dead letters naming it.
    pub failures: usize,
}
