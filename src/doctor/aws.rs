//! What the audit reads, and the findings it draws. Per rule: `ListTargetsByRule`; per
//! target, by kind: `DescribeApiDestination` + `DescribeConnection`, or
//! `GetFunctionConfiguration` + `GetPolicy` + `GetFunctionEventInvokeConfig`, or the
//! queue's `GetQueueUrl` + `GetQueueAttributes`, or the topic's `GetTopicAttributes`; per
//! dead-letter queue (once): `GetQueueUrl`, `GetQueueAttributes`, `ListEventSourceMappings`
//! (+ `GetFunctionConfiguration` of each drainer), and for a KMS-encrypted queue
//! `DescribeKey` + `GetKeyPolicy`. Per bus: `ListRules`; per Genesys Cloud integration:
//! `ListEventSources`, `DescribeEventSource`, `DescribeEventBus`. Once for the rules that
//! send to rate-limited API destinations: CloudWatch `GetMetricData` (`Invocations`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::time::Duration;

use aws_sdk_eventbridge::types::{ConnectionState, RuleState, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::pattern::may_match;
use super::policy::{Request, Verdict, evaluate};
use super::{Audit, Finding, Severity};
use crate::aws_error::AwsError;
use crate::genesys::{IntegrationConfig, TokenSource, eventbridge_integration_configs};
use crate::health::GenesysAccess;
use crate::targets::{AwsTargets, arn_parts};

/// The principal EventBridge acts as.
const EVENTS: &str = "events.amazonaws.com";
/// Genesys Cloud's partner event sources and buses start with this.
const GENESYS_PREFIX: &str = "aws.partner/genesys.com/";
/// SQS's longest retention, what a dead-letter queue should keep: 14 days.
const MAX_RETENTION_SECONDS: i64 = 14 * 24 * 3600;
/// EventBridge's default retry policy, for the texts.
const DEFAULT_RETRY: &str = "EventBridge's default retry policy: 24 hours and 185 attempts";

/// What to audit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    /// These buses; empty: the Genesys Cloud partner buses (those named
    /// `aws.partner/genesys.com/…`, and those the integrations name).
    pub(crate) buses: Vec<String>,
    /// Every bus of the account and region.
    pub(crate) all: bool,
    /// The triage function (name or ARN), whose own configuration is checked.
    pub(crate) function: Option<String>,
}

/// Whether `e`, the failure of `action`, says the resource does not exist.
fn not_found(action: &str, e: &AwsError) -> bool {
    e.code().is_some_and(|c| {
        c.contains("NotFound")
            || c.contains("NonExistentQueue")
            || c.contains("QueueDoesNotExist")
            || c == "NoSuchBucket"
    }) || (action == "S3 HeadBucket"
        // HeadBucket's 404 has no body, so no code.
        && e.status() == Some(404))
}

/// What a lookup gave, a failure already recorded as an `unavailable` line.
enum Looked<T> {
    /// The answer.
    Found(T),
    /// The resource does not exist.
    Missing,
    /// Denied, failed or timed out (recorded in `unavailable`).
    Unavailable,
}

impl<T> Looked<T> {
    /// The answer, if there was one.
    fn found(self) -> Option<T> {
        match self {
            Looked::Found(answer) => Some(answer),
            Looked::Missing | Looked::Unavailable => None,
        }
    }
}

/// Runs the audit through `sdk` (and Genesys Cloud through `genesys` when given), each call
/// bounded by `timeout`.
pub(crate) async fn audit(
    sdk: &aws_config::SdkConfig,
    genesys: Option<&GenesysAccess>,
    scope: &Scope,
    timeout: Duration,
) -> Audit {
    let mut doctor = Doctor {
        targets: AwsTargets::new(sdk.clone()),
        sqs: aws_sdk_sqs::Client::new(sdk),
        kms: aws_sdk_kms::Client::new(sdk),
        lambda: aws_sdk_lambda::Client::new(sdk),
        sns: aws_sdk_sns::Client::new(sdk),
        s3: crate::artifacts::s3_client(sdk, crate::artifacts::path_style_from_env()),
        dynamodb: aws_sdk_dynamodb::Client::new(sdk),
        timeout,
        audit: Audit {
            generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ..Audit::default()
        },
        queues: HashMap::new(),
        keys: BTreeSet::new(),
        rates: BTreeMap::new(),
        cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
    };
    let integrations = match genesys {
        Some(access) => doctor.genesys(access).await,
        None => Vec::new(),
    };
    let buses = doctor.buses(scope, &integrations).await;
    let mut rules_by_bus: BTreeMap<String, Vec<RuleSeen>> = BTreeMap::new();
    for bus in &buses {
        let rules = doctor.rules(bus).await;
        doctor.audit.checked.rules += rules.len();
        for rule in &rules {
            doctor.rule(bus, rule).await;
        }
        rules_by_bus.insert(bus.clone(), rules);
    }
    doctor.audit.checked.buses = buses;
    doctor.rates(chrono::Utc::now()).await;
    for (bus, topics) in &integrations {
        if let Some(rules) = rules_by_bus.get(bus) {
            doctor.coverage(bus, topics, rules);
        }
    }
    if let Some(function) = &scope.function {
        doctor.stack(function).await;
    }
    let mut audit = doctor.audit;
    audit.sort();
    audit
}

/// A rule as `ListRules` gave it.
#[derive(Debug, Clone)]
struct RuleSeen {
    bus: String,
    name: String,
    arn: String,
    pattern: Option<String>,
    enabled: bool,
}

/// What the audit keeps of a queue.
#[derive(Debug, Clone)]
struct Queue {
    policy: Option<String>,
    kms_key: Option<String>,
    retention: Option<i64>,
    visibility: Option<i64>,
}

struct Doctor {
    targets: AwsTargets,
    sqs: aws_sdk_sqs::Client,
    kms: aws_sdk_kms::Client,
    lambda: aws_sdk_lambda::Client,
    sns: aws_sdk_sns::Client,
    s3: aws_sdk_s3::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    timeout: Duration,
    audit: Audit,
    /// Queue ARN → its attributes (`None`: it does not exist or could not be read).
    queues: HashMap<String, Option<Queue>>,
    /// KMS keys already judged (with the account whose rules they serve).
    keys: BTreeSet<String>,
    /// (API destination ARN, its `InvocationRateLimitPerSecond`) → the rules sending to it.
    rates: BTreeMap<(String, i32), Vec<RuleSeen>>,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Doctor {
    /// `call` within the timeout, a failure other than "does not exist" recorded as an
    /// `unavailable` line: the one place a lookup's failure becomes a line.
    async fn look<T, E>(
        &mut self,
        action: &str,
        resource: &str,
        call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Looked<T>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let what = format!("{action} ({resource})");
        match crate::aws_error::within(&what, self.timeout, call).await {
            Ok(answer) => Looked::Found(answer),
            Err(e) if not_found(action, &e) => Looked::Missing,
            Err(e) => {
                self.unavailable(e.to_string());
                Looked::Unavailable
            }
        }
    }

    fn unavailable(&mut self, line: String) {
        self.audit.unavailable.push(line);
    }

    fn find(
        &mut self,
        code: &'static str,
        severity: Severity,
        resource: &str,
        problem: String,
        cost: &str,
        fix: String,
    ) {
        self.audit.findings.push(Finding {
            code,
            severity,
            resource: resource.to_owned(),
            problem,
            cost: cost.to_owned(),
            fix,
        });
    }

    /// The Genesys Cloud side: each integration's state, its partner event source and
    /// its bus. Returns (bus name, topics) of each integration whose source is found.
    async fn genesys(
        &mut self,
        (credentials, endpoints): &GenesysAccess,
    ) -> Vec<(String, Vec<String>)> {
        let http = crate::http::client();
        let tokens = TokenSource::new(http.clone(), &endpoints.login_base, credentials.clone());
        let read = eventbridge_integration_configs(&http, endpoints, &tokens, self.timeout);
        let integrations = match tokio::time::timeout(self.timeout * 2, read).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                self.unavailable(format!("Genesys Cloud integrations: {e}"));
                return Vec::new();
            }
            Err(_) => {
                self.unavailable(format!(
                    "Genesys Cloud integrations: no answer within {:?}",
                    self.timeout * 2
                ));
                return Vec::new();
            }
        };
        self.audit.checked.integrations = Some(integrations.len());
        let mut feeds = Vec::new();
        for integration in &integrations {
            if let Some(feed) = self.integration(integration).await {
                feeds.push(feed);
            }
        }
        feeds
    }

    async fn integration(&mut self, i: &IntegrationConfig) -> Option<(String, Vec<String>)> {
        let name = &i.state.name;
        let resource = format!("Genesys Cloud integration \"{name}\"");
        let code = i.state.code.as_str();
        if code != "ACTIVE" {
            let severity = match code {
                "ACTIVATING" | "DEACTIVATING" => Severity::Warning,
                _ => Severity::Critical,
            };
            self.find(
                "integration-not-active",
                severity,
                &resource,
                format!(
                    "the integration reports {code}{}",
                    i.state
                        .detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
                "Genesys Cloud sends no event to EventBridge while the integration is not ACTIVE",
                "fix the cause it reports, then set the integration Active in Genesys Cloud (Admin > Integrations)".into(),
            );
        }
        let suffix = i.state.event_source_suffix.as_deref()?;
        let region = i.region.clone().unwrap_or_default();
        let events = self.targets.events(&region);
        let prefix = format!("{GENESYS_PREFIX}cloud/");
        let source = match self.partner_source(&events, &prefix, suffix).await {
            Looked::Found(source) => source,
            Looked::Unavailable => return None,
            Looked::Missing => {
                self.find(
                    "event-source-missing",
                    Severity::Critical,
                    &resource,
                    format!(
                        "no partner event source {prefix}<org>/{suffix} in account {} region {}",
                        i.state.aws_account_id.as_deref().unwrap_or("?"),
                        if region.is_empty() { "(default)" } else { &region }
                    ),
                    "every event the integration publishes is lost",
                    "check the integration's AWS account and region in Genesys Cloud; re-save the integration so Genesys Cloud creates the event source".into(),
                );
                return None;
            }
        };
        let state = self.partner_source_state(&events, &source).await;
        match self
            .look(
                "EventBridge DescribeEventBus",
                &source,
                events.describe_event_bus().name(&source).send(),
            )
            .await
        {
            Looked::Found(_) => Some((source, i.topics.clone())),
            Looked::Missing => {
                if state.as_deref() == Some("ACTIVE") {
                    self.find(
                        "partner-bus-missing",
                        Severity::Critical,
                        &source,
                        "no event bus has the partner event source's name".into(),
                        "events accepted from Genesys Cloud reach no rule",
                        format!("aws events create-event-bus --name {source} --event-source-name {source}"),
                    );
                }
                None
            }
            Looked::Unavailable => None,
        }
    }

    /// The partner event source whose name ends in the integration's `suffix`, through
    /// every page of `ListEventSources`; `Missing` when no page has it.
    async fn partner_source(
        &mut self,
        events: &aws_sdk_eventbridge::Client,
        prefix: &str,
        suffix: &str,
    ) -> Looked<String> {
        let mut next: Option<String> = None;
        loop {
            let listed = self
                .look(
                    "EventBridge ListEventSources",
                    prefix,
                    events
                        .list_event_sources()
                        .name_prefix(prefix)
                        .set_next_token(next.take())
                        .send(),
                )
                .await;
            let page = match listed {
                Looked::Found(page) => page,
                Looked::Missing => return Looked::Missing,
                Looked::Unavailable => return Looked::Unavailable,
            };
            let found = page
                .event_sources()
                .iter()
                .filter_map(|s| s.name())
                .find(|n| n.rsplit('/').next() == Some(suffix));
            if let Some(source) = found {
                return Looked::Found(source.to_owned());
            }
            match page.next_token() {
                Some(t) => next = Some(t.to_owned()),
                None => return Looked::Missing,
            }
        }
    }

    /// The partner event source's state (`DELETED` when it is gone), with a finding when
    /// it is PENDING or DELETED; `None` when it could not be read.
    async fn partner_source_state(
        &mut self,
        events: &aws_sdk_eventbridge::Client,
        source: &str,
    ) -> Option<String> {
        let state = match self
            .look(
                "EventBridge DescribeEventSource",
                source,
                events.describe_event_source().name(source).send(),
            )
            .await
        {
            Looked::Found(out) => out.state().map(|s| s.as_str().to_owned()),
            Looked::Missing => Some("DELETED".into()),
            Looked::Unavailable => None,
        };
        match state.as_deref() {
            Some("PENDING") => self.find(
                "event-source-pending",
                Severity::Critical,
                source,
                "the partner event source is PENDING: no event bus is associated with it".into(),
                "EventBridge accepts the integration's events and delivers none",
                format!("aws events create-event-bus --name {source} --event-source-name {source} (template: AWS::Events::EventBus with EventSourceName)"),
            ),
            Some("DELETED") => self.find(
                "event-source-deleted",
                Severity::Critical,
                source,
                "the partner event source is DELETED".into(),
                "every event the integration publishes is lost",
                "re-create the integration's event source from Genesys Cloud (deactivate and activate the integration), then associate a bus with it".into(),
            ),
            _ => {}
        }
        state
    }

    /// The buses to read rules on.
    async fn buses(&mut self, scope: &Scope, feeds: &[(String, Vec<String>)]) -> Vec<String> {
        if !scope.buses.is_empty() {
            return scope.buses.clone();
        }
        let events = self.targets.events("");
        let prefix = (!scope.all).then_some(GENESYS_PREFIX);
        let mut buses: BTreeSet<String> = feeds.iter().map(|(b, _)| b.clone()).collect();
        let mut next: Option<String> = None;
        loop {
            let listed = self
                .look(
                    "EventBridge ListEventBuses",
                    prefix.unwrap_or("every bus"),
                    events
                        .list_event_buses()
                        .set_name_prefix(prefix.map(str::to_owned))
                        .set_next_token(next.take())
                        .send(),
                )
                .await;
            match listed {
                Looked::Found(page) => {
                    buses.extend(
                        page.event_buses()
                            .iter()
                            .filter_map(|b| b.name())
                            .map(str::to_owned),
                    );
                    match page.next_token() {
                        Some(t) => next = Some(t.to_owned()),
                        None => break,
                    }
                }
                Looked::Missing => break,
                Looked::Unavailable => break,
            }
        }
        buses.into_iter().collect()
    }

    async fn rules(&mut self, bus: &str) -> Vec<RuleSeen> {
        let events = self.targets.events("");
        let mut rules = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let listed = self
                .look(
                    "EventBridge ListRules",
                    bus,
                    events
                        .list_rules()
                        .event_bus_name(bus)
                        .set_next_token(next.take())
                        .send(),
                )
                .await;
            match listed {
                Looked::Found(page) => {
                    rules.extend(
                        page.rules()
                            .iter()
                            .filter(|r| r.managed_by().is_none())
                            .filter_map(|r| {
                                Some(RuleSeen {
                                    bus: bus.to_owned(),
                                    name: r.name()?.to_owned(),
                                    arn: r.arn()?.to_owned(),
                                    pattern: r.event_pattern().map(str::to_owned),
                                    enabled: r.state() == Some(&RuleState::Enabled),
                                })
                            }),
                    );
                    match page.next_token() {
                        Some(t) => next = Some(t.to_owned()),
                        None => return rules,
                    }
                }
                Looked::Missing => {
                    self.unavailable(format!("EventBridge ListRules ({bus}): no such event bus"));
                    return rules;
                }
                Looked::Unavailable => return rules,
            }
        }
    }

    async fn rule(&mut self, bus: &str, rule: &RuleSeen) {
        let events = self.targets.events("");
        let mut next: Option<String> = None;
        loop {
            let listed = self
                .look(
                    "EventBridge ListTargetsByRule",
                    &rule.arn,
                    events
                        .list_targets_by_rule()
                        .rule(&rule.name)
                        .event_bus_name(bus)
                        .set_next_token(next.take())
                        .send(),
                )
                .await;
            match listed {
                Looked::Found(page) => {
                    for target in page.targets() {
                        self.audit.checked.targets += 1;
                        self.target(rule, target).await;
                    }
                    match page.next_token() {
                        Some(t) => next = Some(t.to_owned()),
                        None => return,
                    }
                }
                Looked::Missing => return,
                Looked::Unavailable => return,
            }
        }
    }

    async fn target(&mut self, rule: &RuleSeen, target: &Target) {
        let resource = format!("{} target {}", rule.arn, target.id());
        let retry = target.retry_policy();
        let attempts = retry.and_then(|r| r.maximum_retry_attempts());
        let age = retry.and_then(|r| r.maximum_event_age_in_seconds());
        let retry_text = match (attempts, age) {
            (None, None) => format!("{DEFAULT_RETRY} (this target's)"),
            _ => format!(
                "this target retries for {} and {} attempts ({DEFAULT_RETRY})",
                age.map_or("24 hours".to_owned(), |s| format!("{s} s")),
                attempts.map_or("185".to_owned(), |a| a.to_string())
            ),
        };
        match target.dead_letter_config().and_then(|d| d.arn()) {
            None => self.find(
                "target-without-dlq",
                Severity::Error,
                &resource,
                format!("the target has no DeadLetterConfig; {retry_text}"),
                "an event whose delivery fails is dropped after its retries, silently (and at once for errors EventBridge does not retry)",
                format!(
                    "give target {} a dead-letter queue: template Targets[].DeadLetterConfig.Arn, or aws events put-targets --rule {} --event-bus-name <bus> --targets with DeadLetterConfig={{Arn=<queue ARN>}} beside its other settings",
                    target.id(),
                    rule.name
                ),
            ),
            Some(dlq) => {
                if attempts == Some(0) || age.is_some_and(|a| a < 3600) {
                    self.find(
                        "retry-policy-short",
                        Severity::Warning,
                        &resource,
                        retry_text.clone(),
                        "a target outage longer than the retry window sends every event to the dead-letter queue instead of delivering it late",
                        format!("raise RetryPolicy (template Targets[].RetryPolicy.MaximumEventAgeInSeconds / MaximumRetryAttempts) on target {}, or remove it for the defaults", target.id()),
                    );
                }
                self.dlq(rule, dlq).await;
            }
        }
        let arn = target.arn();
        match arn_parts(arn).map(|(service, _, _, res)| (service, res)) {
            Some(("events", res)) if res.starts_with("api-destination/") => {
                self.api_destination(rule, arn, res).await;
            }
            Some(("lambda", _)) => self.lambda_target(rule, arn).await,
            Some(("sqs", _)) => self.queue_target(rule, arn).await,
            Some(("sns", _)) => self.topic_target(rule, arn).await,
            _ => {}
        }
    }

    /// A queue's attributes, read once per audit.
    async fn queue(&mut self, arn: &str) -> Result<Option<Queue>, ()> {
        if let Some(known) = self.queues.get(arn) {
            return Ok(known.clone());
        }
        let Some((_, _, account, name)) = arn_parts(arn) else {
            return Ok(None);
        };
        let url = match self
            .look(
                "SQS GetQueueUrl",
                arn,
                self.sqs
                    .get_queue_url()
                    .queue_name(name)
                    .queue_owner_aws_account_id(account)
                    .send(),
            )
            .await
        {
            Looked::Found(out) => out.queue_url().unwrap_or_default().to_owned(),
            Looked::Missing => {
                self.queues.insert(arn.to_owned(), None);
                return Ok(None);
            }
            Looked::Unavailable => return Err(()),
        };
        let attrs = match self
            .look(
                "SQS GetQueueAttributes",
                arn,
                self.sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(QueueAttributeName::All)
                    .send(),
            )
            .await
        {
            Looked::Found(out) => out.attributes().cloned().unwrap_or_default(),
            Looked::Missing => {
                self.queues.insert(arn.to_owned(), None);
                return Ok(None);
            }
            Looked::Unavailable => return Err(()),
        };
        let number = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok());
        let queue = Queue {
            policy: attrs.get(&QueueAttributeName::Policy).cloned(),
            kms_key: attrs
                .get(&QueueAttributeName::KmsMasterKeyId)
                .filter(|k| !k.is_empty())
                .cloned(),
            retention: number(QueueAttributeName::MessageRetentionPeriod),
            visibility: number(QueueAttributeName::VisibilityTimeout),
        };
        self.queues.insert(arn.to_owned(), Some(queue.clone()));
        Ok(Some(queue))
    }

    async fn dlq(&mut self, rule: &RuleSeen, dlq: &str) {
        let first_time = !self.queues.contains_key(dlq);
        let Ok(queue) = self.queue(dlq).await else {
            return;
        };
        let Some(queue) = queue else {
            self.find(
                "dlq-missing",
                Severity::Critical,
                &rule.arn,
                format!("the rule's dead-letter queue {dlq} does not exist"),
                "every event that fails delivery is lost (InvocationsFailedToBeSentToDlq)",
                format!("create the queue (aws sqs create-queue --queue-name {} --attributes MessageRetentionPeriod=1209600) with a policy that lets events.amazonaws.com send for this rule", arn_parts(dlq).map_or("<name>", |p| p.3)),
            );
            return;
        };
        let account = arn_parts(&rule.arn).map_or("", |p| p.2);
        let request = Request {
            service: EVENTS,
            actions: &["sqs:SendMessage"],
            source_arn: &rule.arn,
            source_account: account,
        };
        if let Verdict::Missing(_) = evaluate(queue.policy.as_deref(), &request) {
            self.find(
                "dlq-policy-denies",
                Severity::Error,
                &rule.arn,
                format!("the policy of dead-letter queue {dlq} does not let events.amazonaws.com sqs:SendMessage for this rule (aws:SourceArn)"),
                "every event that fails delivery is lost instead of dead-lettered (InvocationsFailedToBeSentToDlq)",
                format!("add to the queue policy (template AWS::SQS::QueuePolicy): {{\"Effect\":\"Allow\",\"Principal\":{{\"Service\":\"events.amazonaws.com\"}},\"Action\":\"sqs:SendMessage\",\"Resource\":\"{dlq}\",\"Condition\":{{\"ArnEquals\":{{\"aws:SourceArn\":\"{}\"}}}}}}", rule.arn),
            );
        }
        if let Some(key) = &queue.kms_key {
            let request = Request {
                actions: &["kms:GenerateDataKey", "kms:Decrypt"],
                ..request
            };
            self.kms(dlq, key, &request).await;
        }
        if first_time {
            self.dlq_once(dlq, &queue).await;
        }
    }

    /// What is the queue's own: retention and who drains it.
    async fn dlq_once(&mut self, dlq: &str, queue: &Queue) {
        if let Some(retention) = queue.retention.filter(|r| *r < MAX_RETENTION_SECONDS) {
            self.find(
                "dlq-retention-short",
                Severity::Warning,
                dlq,
                format!("the dead-letter queue keeps messages {} (the most SQS allows is 14 days)", days(retention)),
                "dead letters not drained within that time are deleted by SQS",
                format!("aws sqs set-queue-attributes --queue-url <url> --attributes MessageRetentionPeriod=1209600 (template MessageRetentionPeriod: 1209600) on {dlq}"),
            );
        }
        let mappings = match self
            .look(
                "Lambda ListEventSourceMappings",
                dlq,
                self.lambda
                    .list_event_source_mappings()
                    .event_source_arn(dlq)
                    .send(),
            )
            .await
        {
            Looked::Found(out) => out.event_source_mappings().to_vec(),
            Looked::Missing => Vec::new(),
            Looked::Unavailable => return,
        };
        if mappings.is_empty() {
            self.find(
                "dlq-polled-by-hand",
                Severity::Info,
                dlq,
                "no function drains the dead-letter queue (no event source mapping)".into(),
                "dead letters wait until someone runs dlq-triage poll",
                format!("deploy the triage function on it (template: an SQS event of the function with FunctionResponseTypes [ReportBatchItemFailures]), or run dlq-triage poll --queue-url <url of {dlq}> on a schedule"),
            );
        }
        for m in &mappings {
            self.dlq_drainer(dlq, queue, m).await;
        }
    }

    /// One function draining a dead-letter queue: its mapping enabled, with partial batch
    /// responses, and the queue's visibility timeout long enough for it.
    async fn dlq_drainer(
        &mut self,
        dlq: &str,
        queue: &Queue,
        m: &aws_sdk_lambda::types::EventSourceMappingConfiguration,
    ) {
        let function = m.function_arn().unwrap_or_default().to_owned();
        let uuid = m.uuid().unwrap_or_default();
        let resource = format!("event source mapping {uuid} ({dlq} -> {function})");
        let state = m.state().unwrap_or_default();
        if !state.eq_ignore_ascii_case("enabled") && !state.is_empty() {
            self.find(
                "dlq-drain-disabled",
                Severity::Warning,
                &resource,
                format!("the event source mapping is {state}"),
                "dead letters pile up, and SQS deletes them after the retention period",
                format!("aws lambda update-event-source-mapping --uuid {uuid} --enabled"),
            );
        }
        let partial = m
            .function_response_types()
            .iter()
            .any(|t| t.as_str() == "ReportBatchItemFailures");
        if !partial {
            self.find(
                "dlq-drain-without-partial-batch",
                Severity::Warning,
                &resource,
                "the event source mapping lacks FunctionResponseTypes ReportBatchItemFailures".into(),
                "one record the function cannot finish sends the whole batch back, again and again",
                format!("aws lambda update-event-source-mapping --uuid {uuid} --function-response-types ReportBatchItemFailures (template FunctionResponseTypes: [ReportBatchItemFailures])"),
            );
        }
        let timeout = self
            .look(
                "Lambda GetFunctionConfiguration",
                &function,
                self.lambda
                    .get_function_configuration()
                    .function_name(&function)
                    .send(),
            )
            .await
            .found()
            .and_then(|out| out.timeout().map(i64::from));
        if let (Some(t), Some(v)) = (timeout, queue.visibility)
            && v < 6 * t
        {
            self.find(
                "dlq-visibility-too-short",
                Severity::Warning,
                dlq,
                format!("the queue's visibility timeout is {v} s, less than six times the draining function's timeout ({t} s)"),
                "a batch still being triaged becomes visible again and is processed twice; throttled retries count against maxReceiveCount",
                format!("aws sqs set-queue-attributes --queue-url <url of {dlq}> --attributes VisibilityTimeout={} (template VisibilityTimeout)", 6 * t),
            );
        }
    }

    async fn kms(&mut self, dlq: &str, key: &str, request: &Request<'_>) {
        let described = match self
            .look(
                "KMS DescribeKey",
                key,
                self.kms.describe_key().key_id(key).send(),
            )
            .await
        {
            Looked::Found(out) => out.key_metadata().cloned(),
            Looked::Missing => None,
            Looked::Unavailable => return,
        };
        let Some(meta) = described else {
            return self.find(
                "dlq-kms-key-missing",
                Severity::Error,
                dlq,
                format!("the queue's KMS key {key} does not exist"),
                "EventBridge cannot encrypt dead letters: every event that fails delivery is lost",
                "set the queue's KmsMasterKeyId to an existing customer managed key whose policy lets events.amazonaws.com use it".into(),
            );
        };
        let key_arn = meta.arn().unwrap_or(key).to_owned();
        if meta.key_manager().is_some_and(|m| m.as_str() == "AWS") {
            if self.keys.insert(key_arn.clone()) {
                self.find(
                    "dlq-kms-aws-managed",
                    Severity::Error,
                    dlq,
                    format!("the queue is encrypted with the AWS managed key {key}, whose policy cannot let EventBridge use it"),
                    "EventBridge cannot send to the queue: every event that fails delivery is lost",
                    "use SQS-managed encryption (SqsManagedSseEnabled: true) or a customer managed key that lets events.amazonaws.com kms:GenerateDataKey and kms:Decrypt".into(),
                );
            }
            return;
        }
        let policy = match self
            .look(
                "KMS GetKeyPolicy",
                &key_arn,
                self.kms
                    .get_key_policy()
                    .key_id(&key_arn)
                    .policy_name("default")
                    .send(),
            )
            .await
        {
            Looked::Found(out) => out.policy().map(str::to_owned),
            Looked::Missing => None,
            Looked::Unavailable => return,
        };
        if let Verdict::Missing(actions) = evaluate(policy.as_deref(), request) {
            self.find(
                "dlq-kms-denies",
                Severity::Error,
                &key_arn,
                format!("the key policy of {key_arn} (dead-letter queue {dlq}) does not let events.amazonaws.com {}", actions.join(" and ")),
                "EventBridge cannot encrypt dead letters: every event that fails delivery is lost (InvocationsFailedToBeSentToDlq)",
                "add to the key policy: {\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"events.amazonaws.com\"},\"Action\":[\"kms:GenerateDataKey\",\"kms:Decrypt\"],\"Resource\":\"*\"} (aws kms put-key-policy, or the template's KeyPolicy)".into(),
            );
        }
    }

    async fn api_destination(&mut self, rule: &RuleSeen, arn: &str, resource: &str) {
        let Some(name) = resource
            .strip_prefix("api-destination/")
            .and_then(|r| r.split('/').next())
        else {
            return;
        };
        let region = arn_parts(arn).map_or("", |p| p.1).to_owned();
        let events = self.targets.events(&region);
        let destination = match self
            .look(
                "EventBridge DescribeApiDestination",
                arn,
                events.describe_api_destination().name(name).send(),
            )
            .await
        {
            Looked::Found(out) => out,
            Looked::Missing => {
                return self.find(
                    "target-missing",
                    Severity::Critical,
                    arn,
                    "the API destination does not exist".into(),
                    "every event of the rule fails (and is dead-lettered at best)",
                    "create the API destination, or point the rule's target at one that exists"
                        .into(),
                );
            }
            Looked::Unavailable => return,
        };
        if let Some(limit) = destination
            .invocation_rate_limit_per_second()
            .filter(|l| *l > 0)
        {
            self.rates
                .entry((arn.to_owned(), limit))
                .or_default()
                .push(rule.clone());
        }
        if destination
            .api_destination_state()
            .is_some_and(|s| s.as_str() == "INACTIVE")
        {
            self.find(
                "api-destination-inactive",
                Severity::Critical,
                arn,
                "the API destination is INACTIVE".into(),
                "every event of the rule fails (and is dead-lettered at best)",
                format!("aws events update-api-destination --name {name} (its connection must be AUTHORIZED)"),
            );
        }
        if let Some(connection_arn) = destination.connection_arn() {
            self.connection(&events, name, connection_arn).await;
        }
    }

    /// The connection of API destination `name`: it exists and is AUTHORIZED.
    async fn connection(
        &mut self,
        events: &aws_sdk_eventbridge::Client,
        name: &str,
        connection_arn: &str,
    ) {
        let Some(connection) = arn_parts(connection_arn)
            .and_then(|p| p.3.strip_prefix("connection/"))
            .and_then(|r| r.split('/').next())
        else {
            return;
        };
        let state = match self
            .look(
                "EventBridge DescribeConnection",
                connection_arn,
                events.describe_connection().name(connection).send(),
            )
            .await
        {
            Looked::Found(out) => out,
            Looked::Missing => {
                return self.find(
                    "connection-missing",
                    Severity::Critical,
                    connection_arn,
                    format!("the connection of API destination {name} does not exist"),
                    "every event sent to the API destination fails",
                    format!("aws events create-connection --name {connection} … then aws events update-api-destination --name {name} --connection-arn <its ARN>"),
                );
            }
            Looked::Unavailable => return,
        };
        let reason = state
            .state_reason()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        match state.connection_state() {
            Some(ConnectionState::Deauthorized) => self.find(
                "connection-deauthorized",
                Severity::Critical,
                connection_arn,
                format!("the connection of API destination {name} is DEAUTHORIZED{reason}"),
                "every event sent to the API destination fails at once (no retries) and is dead-lettered at best",
                format!("fix the credentials, then aws events update-connection --name {connection} --auth-parameters … (EventBridge re-authorizes it)"),
            ),
            Some(ConnectionState::Authorized) | None => {}
            Some(other) => self.find(
                "connection-not-authorized",
                Severity::Warning,
                connection_arn,
                format!("the connection of API destination {name} is {}{reason}", other.as_str()),
                "events sent to the API destination fail until it is AUTHORIZED",
                format!("aws events describe-connection --name {connection}; update its auth parameters if it stays so"),
            ),
        }
    }

    async fn lambda_target(&mut self, rule: &RuleSeen, arn: &str) {
        match self
            .look(
                "Lambda GetFunctionConfiguration",
                arn,
                self.lambda
                    .get_function_configuration()
                    .function_name(arn)
                    .send(),
            )
            .await
        {
            Looked::Found(_) => {}
            Looked::Missing => {
                return self.find(
                    "target-missing",
                    Severity::Critical,
                    arn,
                    format!("the function target of rule {} does not exist", rule.name),
                    "every event of the rule fails at once (not retried) and is dead-lettered at best",
                    "deploy the function, or point the rule's target at one that exists".into(),
                );
            }
            Looked::Unavailable => return,
        }
        let policy = match self
            .look(
                "Lambda GetPolicy",
                arn,
                self.lambda.get_policy().function_name(arn).send(),
            )
            .await
        {
            Looked::Found(out) => out.policy().map(str::to_owned),
            Looked::Missing => None,
            Looked::Unavailable => return self.lambda_on_failure(arn).await,
        };
        let request = Request {
            service: EVENTS,
            actions: &["lambda:InvokeFunction"],
            source_arn: &rule.arn,
            source_account: arn_parts(&rule.arn).map_or("", |p| p.2),
        };
        if let Verdict::Missing(_) = evaluate(policy.as_deref(), &request) {
            self.find(
                "target-permission-missing",
                Severity::Critical,
                &rule.arn,
                format!("the resource policy of function {arn} does not let events.amazonaws.com lambda:InvokeFunction for this rule"),
                "every event of the rule fails at once (not retried) and is dead-lettered at best",
                format!("aws lambda add-permission --function-name {arn} --statement-id {} --action lambda:InvokeFunction --principal events.amazonaws.com --source-arn {} (template AWS::Lambda::Permission)", rule.name, rule.arn),
            );
        }
        self.lambda_on_failure(arn).await;
    }

    async fn lambda_on_failure(&mut self, arn: &str) {
        let destination = match self
            .look(
                "Lambda GetFunctionEventInvokeConfig",
                arn,
                self.lambda
                    .get_function_event_invoke_config()
                    .function_name(arn)
                    .send(),
            )
            .await
        {
            Looked::Found(out) => out
                .destination_config()
                .and_then(|d| d.on_failure())
                .and_then(|f| f.destination())
                .map(str::to_owned),
            Looked::Missing => None,
            Looked::Unavailable => return,
        };
        if destination.is_none() {
            self.find(
                "function-without-on-failure",
                Severity::Error,
                arn,
                "the function target has no on-failure destination".into(),
                "EventBridge invokes it asynchronously: an event the function itself fails on is dropped after Lambda's own retries (2), never reaching the rule's dead-letter queue",
                format!("aws lambda put-function-event-invoke-config --function-name {arn} --destination-config '{{\"OnFailure\":{{\"Destination\":\"<queue ARN>\"}}}}' (template EventInvokeConfig.DestinationConfig.OnFailure)"),
            );
        }
    }

    async fn queue_target(&mut self, rule: &RuleSeen, arn: &str) {
        let Ok(queue) = self.queue(arn).await else {
            return;
        };
        let Some(queue) = queue else {
            return self.find(
                "target-missing",
                Severity::Critical,
                arn,
                format!("the queue target of rule {} does not exist", rule.name),
                "every event of the rule fails at once (not retried) and is dead-lettered at best",
                "create the queue, or point the rule's target at one that exists".into(),
            );
        };
        let request = Request {
            service: EVENTS,
            actions: &["sqs:SendMessage"],
            source_arn: &rule.arn,
            source_account: arn_parts(&rule.arn).map_or("", |p| p.2),
        };
        if let Verdict::Missing(_) = evaluate(queue.policy.as_deref(), &request) {
            self.find(
                "target-permission-missing",
                Severity::Critical,
                &rule.arn,
                format!("the policy of queue {arn} does not let events.amazonaws.com sqs:SendMessage for this rule"),
                "every event of the rule fails at once (not retried) and is dead-lettered at best",
                format!("add to the queue policy: {{\"Effect\":\"Allow\",\"Principal\":{{\"Service\":\"events.amazonaws.com\"}},\"Action\":\"sqs:SendMessage\",\"Resource\":\"{arn}\",\"Condition\":{{\"ArnEquals\":{{\"aws:SourceArn\":\"{}\"}}}}}}", rule.arn),
            );
        }
    }

    async fn topic_target(&mut self, rule: &RuleSeen, arn: &str) {
        let policy = match self
            .look(
                "SNS GetTopicAttributes",
                arn,
                self.sns.get_topic_attributes().topic_arn(arn).send(),
            )
            .await
        {
            Looked::Found(out) => out.attributes().and_then(|a| a.get("Policy")).cloned(),
            Looked::Missing => {
                return self.find(
                    "target-missing",
                    Severity::Critical,
                    arn,
                    format!("the topic target of rule {} does not exist", rule.name),
                    "every event of the rule fails at once (not retried) and is dead-lettered at best",
                    "create the topic, or point the rule's target at one that exists".into(),
                );
            }
            Looked::Unavailable => return,
        };
        let request = Request {
            service: EVENTS,
            actions: &["sns:Publish"],
            source_arn: &rule.arn,
            source_account: arn_parts(&rule.arn).map_or("", |p| p.2),
        };
        if let Verdict::Missing(_) = evaluate(policy.as_deref(), &request) {
            self.find(
                "target-permission-missing",
                Severity::Critical,
                &rule.arn,
                format!("the policy of topic {arn} does not let events.amazonaws.com sns:Publish for this rule"),
                "every event of the rule fails at once (not retried) and is dead-lettered at best",
                format!("add to the topic policy: {{\"Effect\":\"Allow\",\"Principal\":{{\"Service\":\"events.amazonaws.com\"}},\"Action\":\"sns:Publish\",\"Resource\":\"{arn}\",\"Condition\":{{\"ArnEquals\":{{\"aws:SourceArn\":\"{}\"}}}}}}", rule.arn),
            );
        }
    }

    /// Each API destination's `InvocationRateLimitPerSecond` beside what its rules were
    /// invoked at over the last day (`AWS/Events` `Invocations` per minute, summed over its
    /// rules minute by minute; a rule's figure covers all its targets, so it is an upper
    /// bound).
    async fn rates(&mut self, now: chrono::DateTime<chrono::Utc>) {
        if self.rates.is_empty() {
            return;
        }
        let end = now.timestamp() - now.timestamp().rem_euclid(60);
        let start = end - 24 * 3600;
        let rules: BTreeMap<String, RuleSeen> = self
            .rates
            .values()
            .flatten()
            .map(|r| (r.arn.clone(), r.clone()))
            .collect();
        let ids: BTreeMap<String, String> = rules
            .keys()
            .enumerate()
            .map(|(i, arn)| (arn.clone(), format!("r{i}")))
            .collect();
        let queries = invocation_queries(&rules, &ids);
        let Some(series) = self.invocations_per_minute(&queries, start, end).await else {
            return;
        };
        let rates = std::mem::take(&mut self.rates);
        for ((destination, limit), its_rules) in rates {
            let mut per_minute: BTreeMap<i64, f64> = BTreeMap::new();
            let names: BTreeSet<&str> = its_rules.iter().map(|r| r.arn.as_str()).collect();
            for arn in &names {
                for (t, v) in series.get(&ids[*arn]).into_iter().flatten() {
                    *per_minute.entry(*t).or_default() += v;
                }
            }
            let peak = per_minute.values().fold(0.0, |a: f64, v| a.max(*v)) / 60.0;
            if peak > f64::from(limit) {
                let name = arn_parts(&destination)
                    .and_then(|p| p.3.strip_prefix("api-destination/"))
                    .and_then(|r| r.split('/').next())
                    .unwrap_or_default()
                    .to_owned();
                self.find(
                    "api-destination-rate-limit-low",
                    Severity::Warning,
                    &destination,
                    format!(
                        "its rules ({}) were invoked at up to {peak:.1}/s in the last day, above its InvocationRateLimitPerSecond of {limit}/s",
                        names.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                    "events beyond the limit are throttled and retried; at length they are dead-lettered as RATE_LIMIT_EXCEEDED, delivered late",
                    format!(
                        "aws events update-api-destination --name {name} --invocation-rate-limit-per-second {} (template InvocationRateLimitPerSecond), if the endpoint takes it",
                        peak.ceil() as u64
                    ),
                );
            }
        }
    }

    /// `Invocations` per minute of each query, through every page of `GetMetricData`
    /// (500 queries a call): query id → (minute → invocations); `None` when unavailable.
    async fn invocations_per_minute(
        &mut self,
        queries: &[aws_sdk_cloudwatch::types::MetricDataQuery],
        start: i64,
        end: i64,
    ) -> Option<HashMap<String, BTreeMap<i64, f64>>> {
        let mut series: HashMap<String, BTreeMap<i64, f64>> = HashMap::new();
        for chunk in queries.chunks(500) {
            let mut next: Option<String> = None;
            loop {
                let read = self
                    .look(
                        "CloudWatch GetMetricData",
                        "AWS/Events Invocations",
                        self.cloudwatch
                            .get_metric_data()
                            .set_metric_data_queries(Some(chunk.to_vec()))
                            .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(start))
                            .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(end))
                            .set_next_token(next.take())
                            .send(),
                    )
                    .await;
                let page = match read {
                    Looked::Found(page) => page,
                    Looked::Missing => {
                        self.unavailable(
                            "CloudWatch GetMetricData (AWS/Events Invocations): not found".into(),
                        );
                        return None;
                    }
                    Looked::Unavailable => return None,
                };
                for result in page.metric_data_results() {
                    let minutes = series
                        .entry(result.id().unwrap_or_default().to_owned())
                        .or_default();
                    for (t, v) in result.timestamps().iter().zip(result.values()) {
                        *minutes.entry(t.secs()).or_default() += v;
                    }
                }
                match page.next_token() {
                    Some(t) => next = Some(t.to_owned()),
                    None => break,
                }
            }
        }
        Some(series)
    }

    /// Topics no enabled rule routes, and rules no topic can reach.
    fn coverage(&mut self, bus: &str, topics: &[String], rules: &[RuleSeen]) {
        if topics.is_empty() {
            return;
        }
        let patterned: Vec<&RuleSeen> = rules.iter().filter(|r| r.pattern.is_some()).collect();
        for topic in topics {
            let routed = patterned.iter().any(|r| {
                r.enabled && may_match(r.pattern.as_deref().unwrap_or_default(), bus, topic)
            });
            if !routed {
                self.find(
                    "topic-unrouted",
                    Severity::Warning,
                    &format!("{bus} topic {topic}"),
                    format!("Genesys Cloud publishes {topic} to this bus and no enabled rule's pattern matches it"),
                    "every event of the topic is accepted and goes nowhere",
                    format!("add a rule with {{\"detail-type\":[\"{topic}\"]}} on bus {bus}, or drop the topic from the integration's topic filter"),
                );
            }
        }
        for rule in patterned {
            let reachable = topics
                .iter()
                .any(|t| may_match(rule.pattern.as_deref().unwrap_or_default(), bus, t));
            if !reachable {
                self.find(
                    "rule-matches-no-topic",
                    Severity::Warning,
                    &rule.arn,
                    format!("the rule's pattern matches none of the {} topic(s) the integration publishes", topics.len()),
                    "the rule never fires: the events it was written for are not routed",
                    "correct the pattern's detail-type (the topic with {id} placeholders, as published), or add the topic to the integration".into(),
                );
            }
        }
    }

    /// The triage function's own configuration: its bucket, table, bus and schedule.
    async fn stack(&mut self, function: &str) {
        let config = match self
            .look(
                "Lambda GetFunctionConfiguration",
                function,
                self.lambda
                    .get_function_configuration()
                    .function_name(function)
                    .send(),
            )
            .await
        {
            Looked::Found(out) => out,
            Looked::Missing => {
                return self.find(
                    "stack-function-missing",
                    Severity::Error,
                    function,
                    "the triage function does not exist".into(),
                    "dead letters are not triaged; they wait in the queue until its retention ends",
                    "sam deploy (make deploy)".into(),
                );
            }
            Looked::Unavailable => return,
        };
        let env = config
            .environment()
            .and_then(|e| e.variables())
            .cloned()
            .unwrap_or_default();
        let arn = config.function_arn().unwrap_or(function).to_owned();
        self.stack_resources(&env, &arn).await;
        self.stack_schedules(&arn, env.contains_key("INCIDENT_TABLE"))
            .await;
    }

    /// The resources the triage function's environment names: REPORT_BUCKET,
    /// INCIDENT_TABLE, NOTIFY_EVENT_BUS exist.
    async fn stack_resources(&mut self, env: &HashMap<String, String>, arn: &str) {
        if let Some(bucket) = env.get("REPORT_BUCKET") {
            match self
                .look("S3 HeadBucket", bucket, self.s3.head_bucket().bucket(bucket).send())
                .await
            {
                Looked::Found(_) => {}
                Looked::Missing => self.find(
                    "stack-bucket-missing",
                    Severity::Error,
                    bucket,
                    format!("REPORT_BUCKET {bucket} of {arn} does not exist"),
                    "no batch can be stored: every dead letter goes back to the queue until its retention ends",
                    "create the bucket or correct REPORT_BUCKET (template ReportBucket)".into(),
                ),
                Looked::Unavailable => {}
            }
        }
        if let Some(table) = env.get("INCIDENT_TABLE") {
            match self
                .look(
                    "DynamoDB DescribeTable",
                    table,
                    self.dynamodb.describe_table().table_name(table).send(),
                )
                .await
            {
                Looked::Found(_) => {}
                Looked::Missing => self.find(
                    "stack-table-missing",
                    Severity::Warning,
                    table,
                    format!("INCIDENT_TABLE {table} of {arn} does not exist"),
                    "no incident is opened or announced (the reports are still stored)",
                    "create the table or correct INCIDENT_TABLE (template IncidentTable)".into(),
                ),
                Looked::Unavailable => {}
            }
        }
        let events = self.targets.events("");
        if let Some(bus) = env.get("NOTIFY_EVENT_BUS") {
            match self
                .look(
                    "EventBridge DescribeEventBus",
                    bus,
                    events.describe_event_bus().name(bus).send(),
                )
                .await
            {
                Looked::Found(_) => {}
                Looked::Missing => self.find(
                    "stack-bus-missing",
                    Severity::Warning,
                    bus,
                    format!("NOTIFY_EVENT_BUS {bus} of {arn} does not exist"),
                    "no report, incident or finding event is announced",
                    "create the bus or correct NOTIFY_EVENT_BUS".into(),
                ),
                Looked::Unavailable => {}
            }
        }
    }

    /// The schedules invoking the triage function (`arn`): at least one when it keeps
    /// incidents, and each enabled.
    async fn stack_schedules(&mut self, arn: &str, keeps_incidents: bool) {
        let events = self.targets.events("");
        let names = match self
            .look(
                "EventBridge ListRuleNamesByTarget",
                arn,
                events.list_rule_names_by_target().target_arn(arn).send(),
            )
            .await
        {
            Looked::Found(out) => out.rule_names().to_vec(),
            Looked::Missing => Vec::new(),
            Looked::Unavailable => return,
        };
        let mut scheduled = 0;
        for name in names {
            let rule = match self
                .look(
                    "EventBridge DescribeRule",
                    &name,
                    events.describe_rule().name(&name).send(),
                )
                .await
            {
                Looked::Found(out) => out,
                Looked::Missing | Looked::Unavailable => continue,
            };
            if rule.schedule_expression().is_none() {
                continue;
            }
            scheduled += 1;
            if rule.state() != Some(&RuleState::Enabled) {
                let rule_arn = rule.arn().unwrap_or(&name).to_owned();
                self.find(
                    "stack-schedule-disabled",
                    Severity::Warning,
                    &rule_arn,
                    format!("the schedule {name} of the triage function is disabled"),
                    "quiet incidents are not resolved and the daily audit does not run",
                    format!("aws events enable-rule --name {name}"),
                );
            }
        }
        if scheduled == 0 && keeps_incidents {
            self.find(
                "stack-schedule-missing",
                Severity::Warning,
                arn,
                "the triage function keeps incidents but no schedule invokes it".into(),
                "quiet incidents are never resolved and the daily audit does not run",
                "deploy the template's schedules (IncidentSweepSchedule, DoctorSchedule)".into(),
            );
        }
    }
}

/// `seconds` as days (and hours).
fn days(seconds: i64) -> String {
    let (d, h) = (seconds / 86_400, seconds % 86_400 / 3600);
    match (d, h) {
        (0, h) => format!("{h} h"),
        (d, 0) => format!("{d} day(s)"),
        (d, h) => format!("{d} day(s) {h} h"),
    }
}

/// One `GetMetricData` query per rule: its `AWS/Events` `Invocations` per minute, under
/// the id `ids` gives it.
fn invocation_queries(
    rules: &BTreeMap<String, RuleSeen>,
    ids: &BTreeMap<String, String>,
) -> Vec<aws_sdk_cloudwatch::types::MetricDataQuery> {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
    rules
        .values()
        .map(|r| {
            let dimension =
                |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
            let mut dims = Vec::new();
            if r.bus != "default" {
                dims.push(dimension("EventBusName", &r.bus));
            }
            dims.push(dimension("RuleName", &r.name));
            let metric = Metric::builder()
                .namespace("AWS/Events")
                .metric_name("Invocations")
                .set_dimensions(Some(dims))
                .build();
            MetricDataQuery::builder()
                .id(&ids[&r.arn])
                .metric_stat(
                    MetricStat::builder()
                        .metric(metric)
                        .period(60)
                        .stat("Sum")
                        .build(),
                )
                .return_data(true)
                .build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws_error::shapes;
    use aws_sdk_s3::operation::head_bucket::HeadBucketError;
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesError;

    async fn failed<E>(action: &str, e: SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let call = async { Err::<(), _>(e) };
        crate::aws_error::within(action, Duration::from_secs(1), call)
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn a_missing_queue_is_missing_and_a_denied_one_is_not() {
        let gone = GetQueueAttributesError::generic(shapes::meta(
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
        ));
        let gone = failed("SQS GetQueueAttributes", shapes::service(gone, 400)).await;
        assert!(not_found("SQS GetQueueAttributes", &gone));
        // A denial whose message says "not found" is still a denial.
        let denied = GetQueueAttributesError::generic(shapes::meta(
            "AccessDenied",
            "queue policy not found for principal",
        ));
        let denied = failed("SQS GetQueueAttributes", shapes::service(denied, 403)).await;
        assert!(!not_found("SQS GetQueueAttributes", &denied));
        assert_eq!(
            denied.to_string(),
            "SQS GetQueueAttributes: AccessDenied: queue policy not found for principal"
        );
    }

    #[tokio::test]
    async fn head_buckets_bodiless_404_is_missing_only_for_head_bucket() {
        let bodiless = || {
            shapes::service(
                HeadBucketError::generic(aws_smithy_types::error::ErrorMetadata::builder().build()),
                404,
            )
        };
        assert!(not_found(
            "S3 HeadBucket",
            &failed("S3 HeadBucket", bodiless()).await
        ));
        // Another action's bodiless 404 is not "missing".
        let other = shapes::service(
            GetQueueAttributesError::generic(
                aws_smithy_types::error::ErrorMetadata::builder().build(),
            ),
            404,
        );
        let other = failed("SQS GetQueueAttributes", other).await;
        assert!(!not_found("SQS GetQueueAttributes", &other));
        let forbidden = shapes::service(
            HeadBucketError::generic(aws_smithy_types::error::ErrorMetadata::builder().build()),
            403,
        );
        let forbidden = failed("S3 HeadBucket (b)", forbidden).await;
        assert!(!not_found("S3 HeadBucket", &forbidden));
        assert_eq!(
            forbidden.to_string(),
            "S3 HeadBucket (b): HTTP 403 (no error code in the answer)"
        );
    }
}
