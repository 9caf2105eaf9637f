//! The summary's wire types: the contract of `summary.json` (camelCase field names; fields
//! are only ever added), beside the report's in [`super::schema`]. See `docs/contract.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::classify::FailureCategory;

/// The version of `summary.json`'s schema.
pub const SUMMARY_SCHEMA_VERSION: u32 = 1;

/// `summary.json`: the whole incident across the reports read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
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
pub struct Health {
    /// Where the figures come from and what they cannot tell.
    pub window: WindowOut,
    /// One per rule of the incidents.
    pub rules: Vec<RuleHealth>,
    /// One per API destination among the incidents' targets.
    pub api_destinations: Vec<ApiDestinationHealth>,
    /// Events EventBridge could not even put in the dead-letter queue, all rules.
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
}

/// One rule's EventBridge metrics (namespace `AWS/Events`) summed over the window. A
/// metric EventBridge did not emit counts as zero. The metrics have no target dimension:
/// a rule's figures cover all its targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleHealth {
    /// The rule's ARN.
    pub rule_arn: String,
    /// Its name and bus, as the metrics' dimensions name them.
    pub rule_name: String,
    /// `None` for the default bus.
    pub event_bus_name: Option<String>,
    /// Metric name → sum over the window (`Invocations`, `FailedInvocations`,
    /// `InvocationsSentToDlq`, `InvocationsFailedToBeSentToDlq`,
    /// `SuccessfulInvocationAttempts`, `InvocationAttempts`, `RetryInvocationAttempts`,
    /// `ThrottledRules`).
    pub metrics: BTreeMap<String, f64>,
    /// `InvocationsSentToDlq` ÷ `Invocations`, when there were invocations.
    pub failure_ratio: Option<f64>,
    /// The most `Invocations` in one minute.
    pub peak_invocations_per_minute: f64,
}

impl RuleHealth {
    /// The figures every rendering shows, in order: invocations, sent to the DLQ, the
    /// failure ratio (`—` without invocations), lost beyond the DLQ, retries, throttled.
    pub fn figures(&self) -> [String; 6] {
        let m = |name: &str| self.metrics.get(name).copied().unwrap_or(0.0).to_string();
        [
            m("Invocations"),
            m("InvocationsSentToDlq"),
            self.failure_ratio
                .map_or("—".to_owned(), |f| format!("{:.2} %", f * 100.0)),
            m("InvocationsFailedToBeSentToDlq"),
            m("RetryInvocationAttempts"),
            m("ThrottledRules"),
        ]
    }
}

impl ApiDestinationHealth {
    /// Its limit beside the rates it was asked to take, as one sentence:
    /// `limit 10/s, invoked at up to 30.0/s, rate-limited up to 1/min.`
    pub fn rates(&self) -> String {
        format!(
            "limit {}, invoked at up to {:.1}/s, rate-limited up to {}/min.",
            self.invocation_rate_limit_per_second
                .map_or("unknown".to_owned(), |l| format!("{l}/s")),
            self.peak_invoked_per_second,
            self.peak_rate_limited_per_minute
        )
    }
}

/// A partner event source's state: `ACTIVE`, `PENDING` (not associated with a bus yet) or
/// `DELETED`. Only an active source delivers events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSourceHealth {
    /// Its name (`aws.partner/genesys.com/cloud/<org>/<suffix>`), the partner bus's too.
    pub name: String,
    /// `State`.
    pub state: String,
}

/// An API destination's configured rate beside the rate it was asked to take.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiDestinationHealth {
    /// The API destination's ARN (the failed target).
    pub arn: String,
    /// Its name.
    pub name: String,
    /// `InvocationRateLimitPerSecond`, when it could be read.
    pub invocation_rate_limit_per_second: Option<u32>,
    /// The peak rate, per second, at which EventBridge invoked the rules targeting it
    /// (their `Invocations` per minute ÷ 60).
    pub peak_invoked_per_second: f64,
    /// The most `RATE_LIMIT_EXCEEDED` dead letters against it in one minute.
    pub peak_rate_limited_per_minute: usize,
    /// What to change, when the invoked peak exceeds the limit.
    pub advice: Option<String>,
}

/// The window of a summary, as asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowOut {
    /// `--since`, resolved.
    pub since: Option<String>,
    /// `--until`, resolved.
    pub until: Option<String>,
}

/// A source that is not a readable report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unreadable {
    /// The file or `s3://` object.
    pub source: String,
    /// Why.
    pub reason: String,
}

/// Failures of one category against one target across the reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
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
pub struct Timeline {
    /// The width of a bucket (0 when no record has a time).
    pub bucket_seconds: i64,
    /// Buckets with failures, in time order.
    pub buckets: Vec<Bucket>,
}

/// One bucket of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// Its start.
    pub start: String,
    /// Failed events per category.
    pub by_category: BTreeMap<FailureCategory, usize>,
}

/// A conversation with failed events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedConversation {
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
