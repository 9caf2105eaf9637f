//! The adapters of replay: reading reports and payloads (files, S3), looking targets up in
//! EventBridge, and sending over HTTP, SQS, Lambda and EventBridge.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::Blob;

use super::plan::{ApiDestination, ResolvedTarget, TargetDirectory, TargetKind};
use super::select::{Location, is_report_key};
use super::transform::TargetInput;
use super::{Attempt, Courier, Delivery, Route, parse_retry_after};
use crate::genesys::redact_url;

/// The largest report or payload read (a payload is at most 1 MiB; a report of a
/// 10,000-record batch is about 25 MB).
const MAX_READ: u64 = 512 * 1024 * 1024;

/// Reads reports and payloads from files, and from S3 when a client is given.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    s3: Option<aws_sdk_s3::Client>,
}

impl Reader {
    /// A reader of local files only.
    pub fn local() -> Reader {
        Reader { s3: None }
    }

    /// A reader of local files and S3 objects.
    pub fn with_s3(s3: aws_sdk_s3::Client) -> Reader {
        Reader { s3: Some(s3) }
    }

    /// The bytes at `location`.
    pub async fn read(&self, location: &Location) -> Result<Vec<u8>, String> {
        match location {
            Location::File(path) => {
                let meta = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if meta.len() > MAX_READ {
                    return Err(format!("{}: larger than {MAX_READ} bytes", path.display()));
                }
                tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            Location::S3 { bucket, key } => {
                let s3 = self.s3()?;
                let out = s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| s3_error(location, e))?;
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| format!("{location}: {e}"))?;
                Ok(bytes.into_bytes().to_vec())
            }
        }
    }

    /// Every report below `s3://bucket/prefix`, in key order (which is date order).
    pub async fn list_reports(&self, bucket: &str, prefix: &str) -> Result<Vec<Location>, String> {
        let s3 = self.s3()?;
        let mut found = Vec::new();
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                s3_error(
                    &Location::S3 {
                        bucket: bucket.to_owned(),
                        key: prefix.to_owned(),
                    },
                    e,
                )
            })?;
            for object in page.contents() {
                if let Some(key) = object.key().filter(|k| is_report_key(k)) {
                    found.push(Location::S3 {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    });
                }
            }
        }
        found.sort_by_key(|l| l.to_string());
        Ok(found)
    }

    fn s3(&self) -> Result<&aws_sdk_s3::Client, String> {
        self.s3
            .as_ref()
            .ok_or_else(|| "S3 is not configured for this run".to_owned())
    }
}

fn s3_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    location: &Location,
    e: SdkError<E>,
) -> String {
    let status = e.raw_response().map(|r| r.status().as_u16());
    match (e.code(), status) {
        (Some("NoSuchKey"), _) | (_, Some(404)) => format!("{location}: no such object"),
        (Some("NoSuchBucket"), _) => format!("{location}: no such bucket"),
        (Some(code), _) if code.contains("AccessDenied") => {
            format!("{location}: access denied (s3:GetObject / s3:ListBucket)")
        }
        (_, Some(403)) => format!("{location}: access denied (s3:GetObject / s3:ListBucket)"),
        _ => format!(
            "{location}: {}",
            one_line(&DisplayErrorContext(&e).to_string())
        ),
    }
}

/// What an AWS SDK error means for a replay attempt: throttling, 5xx, timeouts and
/// connection failures are worth another attempt; the rest is refused.
pub fn sdk_attempt<E: ProvideErrorMetadata + std::error::Error + 'static>(
    action: &str,
    e: &SdkError<E>,
) -> Attempt {
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().unwrap_or_default();
    let error = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{action}: {c}: {m}"),
        (Some(c), None) => format!("{action}: {c}"),
        _ => format!(
            "{action}: {}",
            one_line(&DisplayErrorContext(e).to_string())
        ),
    };
    let throttled = code.contains("Throttl")
        || code.contains("TooManyRequests")
        || code.contains("RequestLimitExceeded")
        || code == "ServiceUnavailable"
        || code.contains("ServiceException")
        || code.contains("InternalFailure")
        || code.contains("InternalError")
        || code.contains("ResourceNotReady");
    let transport = matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_));
    if throttled || transport || status.is_some_and(|s| s == 429 || s >= 500) {
        let after = e
            .raw_response()
            .and_then(|r| r.headers().get("retry-after"))
            .and_then(parse_retry_after);
        Attempt::Retry {
            http_status: status,
            error,
            after,
        }
    } else {
        Attempt::Rejected {
            http_status: status,
            error,
        }
    }
}

fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// Sends deliveries for real. The SDK clients should be built without their own retries
/// (the replay loop retries, counts and paces every attempt).
#[derive(Debug, Clone)]
pub struct AwsCourier {
    http: reqwest::Client,
    aws: Option<AwsClients>,
}

#[derive(Debug, Clone)]
struct AwsClients {
    sqs: aws_sdk_sqs::Client,
    lambda: aws_sdk_lambda::Client,
    events: aws_sdk_eventbridge::Client,
}

impl AwsCourier {
    /// A courier for HTTP and, given an SDK configuration, for SQS, Lambda and
    /// EventBridge; `timeout` bounds each HTTP request.
    pub fn new(sdk: Option<&aws_config::SdkConfig>, timeout: Duration) -> AwsCourier {
        let http = reqwest::Client::builder()
            .user_agent(concat!("genesys-dlq-triage/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A redirect of a POST would become a GET elsewhere: report it instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        AwsCourier {
            http,
            aws: sdk.map(|sdk| AwsClients {
                sqs: aws_sdk_sqs::Client::new(sdk),
                lambda: aws_sdk_lambda::Client::new(sdk),
                events: aws_sdk_eventbridge::Client::new(sdk),
            }),
        }
    }

    async fn http(
        &self,
        url: &str,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Attempt {
        let shown = redact_url(url);
        let method = match reqwest::Method::from_bytes(method.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                return Attempt::Rejected {
                    http_status: None,
                    error: format!("{method:?} is not an HTTP method"),
                };
            }
        };
        let mut request = self.http.request(method, url).body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                if status.is_success() {
                    return Attempt::Delivered {
                        http_status: Some(status.as_u16()),
                    };
                }
                let text = response.text().await.unwrap_or_default();
                let said: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
                let error = format!("{shown} answered {status}: {said}")
                    .trim_end_matches(": ")
                    .to_owned();
                let code = status.as_u16();
                if code == 429 || code == 408 || status.is_server_error() {
                    Attempt::Retry {
                        http_status: Some(code),
                        error,
                        after,
                    }
                } else {
                    Attempt::Rejected {
                        http_status: Some(code),
                        error,
                    }
                }
            }
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not be reached"
                } else {
                    "failed"
                };
                // reqwest's error text names the URL; ours is redacted.
                Attempt::Retry {
                    http_status: None,
                    error: format!("{shown} {what}"),
                    after: None,
                }
            }
        }
    }
}

impl Courier for AwsCourier {
    async fn send(&self, delivery: &Delivery) -> Attempt {
        let aws = match (&delivery.route, &self.aws) {
            (
                Route::Http {
                    url,
                    method,
                    headers,
                },
                _,
            ) => return self.http(url, method, headers, &delivery.body).await,
            (_, Some(aws)) => aws,
            (_, None) => {
                return Attempt::Rejected {
                    http_status: None,
                    error: "no AWS configuration for this run".to_owned(),
                };
            }
        };
        match &delivery.route {
            Route::Http { .. } => unreachable!("sent above"),
            Route::Queue {
                queue_url,
                group_id,
                dedup_id,
            } => {
                let body = String::from_utf8_lossy(&delivery.body).into_owned();
                match aws
                    .sqs
                    .send_message()
                    .queue_url(queue_url)
                    .message_body(body)
                    .set_message_group_id(group_id.clone())
                    .set_message_deduplication_id(dedup_id.clone())
                    .send()
                    .await
                {
                    Ok(_) => Attempt::Delivered { http_status: None },
                    Err(e) => sdk_attempt("SendMessage", &e),
                }
            }
            Route::Function { name } => {
                match aws
                    .lambda
                    .invoke()
                    .function_name(name)
                    .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                    .payload(Blob::new(delivery.body.clone()))
                    .send()
                    .await
                {
                    Ok(out) => Attempt::Delivered {
                        http_status: u16::try_from(out.status_code()).ok(),
                    },
                    Err(e) => {
                        let mut attempt = sdk_attempt("Invoke", &e);
                        // Lambda says how long to wait in the error, not in a header.
                        if let (Attempt::Retry { after, .. }, Some(hint)) = (
                            &mut attempt,
                            e.as_service_error().and_then(|s| match s {
                                aws_sdk_lambda::operation::invoke::InvokeError::TooManyRequestsException(t) => {
                                    t.retry_after_seconds()
                                }
                                _ => None,
                            }),
                        ) {
                            *after = hint.parse().ok().map(Duration::from_secs);
                        }
                        attempt
                    }
                }
            }
            Route::Bus {
                bus,
                source,
                detail_type,
                resources,
                time,
            } => {
                let mut entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(bus)
                    .source(source)
                    .detail_type(detail_type)
                    .detail(String::from_utf8_lossy(&delivery.body))
                    .set_resources(Some(resources.clone()));
                if let Some(t) = time
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                {
                    entry = entry.time(aws_sdk_eventbridge::primitives::DateTime::from_secs(
                        t.timestamp(),
                    ));
                }
                match aws.events.put_events().entries(entry.build()).send().await {
                    Ok(out) if out.failed_entry_count() == 0 => {
                        Attempt::Delivered { http_status: None }
                    }
                    Ok(out) => {
                        let failed = out.entries().first();
                        let code = failed.and_then(|f| f.error_code()).unwrap_or("unknown");
                        let error = format!(
                            "PutEvents: {code}: {}",
                            failed.and_then(|f| f.error_message()).unwrap_or_default()
                        );
                        if code.contains("Throttl") || code.contains("Internal") {
                            Attempt::Retry {
                                http_status: None,
                                error,
                                after: None,
                            }
                        } else {
                            Attempt::Rejected {
                                http_status: None,
                                error,
                            }
                        }
                    }
                    Err(e) => sdk_attempt("PutEvents", &e),
                }
            }
        }
    }
}

/// Looks targets up in EventBridge (`ListTargetsByRule`, `DescribeApiDestination`) and
/// SQS (`GetQueueUrl`).
#[derive(Debug, Clone)]
pub struct AwsTargets {
    sdk: aws_config::SdkConfig,
}

impl AwsTargets {
    /// Lookups through this configuration; a rule in another region is looked up there.
    pub fn new(sdk: aws_config::SdkConfig) -> AwsTargets {
        AwsTargets { sdk }
    }

    fn events(&self, region: &str) -> aws_sdk_eventbridge::Client {
        let mut config = aws_sdk_eventbridge::config::Builder::from(&self.sdk);
        if !region.is_empty() {
            config = config.region(aws_config::Region::new(region.to_owned()));
        }
        aws_sdk_eventbridge::Client::from_conf(config.build())
    }
}

/// The parts of an ARN: (service, region, account, resource).
fn arn_parts(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    Some((service, region, account, resource))
}

impl AwsTargets {
    /// The target of `rule_arn` whose ARN is `target_arn` (`ListTargetsByRule`, every
    /// page); `None` when the rule has no such target.
    async fn find_target(
        &self,
        rule_arn: &str,
        target_arn: &str,
    ) -> Result<Option<aws_sdk_eventbridge::types::Target>, String> {
        let (_, region, _, resource) = arn_parts(rule_arn)
            .filter(|(s, _, _, r)| *s == "events" && r.starts_with("rule/"))
            .ok_or_else(|| format!("{rule_arn} is not an EventBridge rule ARN"))?;
        let path = &resource["rule/".len()..];
        let (bus, rule) = match path.rsplit_once('/') {
            Some((bus, rule)) => (Some(bus.to_owned()), rule),
            None => (None, path),
        };
        let events = self.events(region);
        let mut next: Option<String> = None;
        let target = loop {
            let page = events
                .list_targets_by_rule()
                .rule(rule)
                .set_event_bus_name(bus.clone())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| match sdk_attempt("ListTargetsByRule", &e) {
                    Attempt::Retry { error, .. } | Attempt::Rejected { error, .. } => {
                        format!("{error} (rule {rule_arn})")
                    }
                    Attempt::Delivered { .. } => unreachable!("an error is never a delivery"),
                })?;
            if let Some(t) = page.targets().iter().find(|t| t.arn() == target_arn) {
                break Some(t.clone());
            }
            match page.next_token() {
                Some(token) => next = Some(token.to_owned()),
                None => return Ok(None),
            }
        };
        Ok(target)
    }

    /// How the target takes its input (`ListTargetsByRule` only): for the report, which
    /// says when a replay should use `--to-target`.
    pub async fn input_of(
        &self,
        rule_arn: &str,
        target_arn: &str,
    ) -> Result<Option<TargetInput>, String> {
        Ok(self
            .find_target(rule_arn, target_arn)
            .await?
            .map(|t| input_setting(&t)))
    }
}

/// The target's `InputTransformer`, `InputPath` or `Input`.
fn input_setting(target: &aws_sdk_eventbridge::types::Target) -> TargetInput {
    if let Some(t) = target.input_transformer() {
        TargetInput::Transformer {
            paths: t
                .input_paths_map()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            template: t.input_template().to_owned(),
        }
    } else if let Some(path) = target.input_path() {
        TargetInput::Path(path.to_owned())
    } else if let Some(input) = target.input() {
        TargetInput::Constant(input.to_owned())
    } else {
        TargetInput::Event
    }
}

impl TargetDirectory for AwsTargets {
    async fn resolve(&self, rule_arn: &str, target_arn: &str) -> Result<ResolvedTarget, String> {
        let target = self.find_target(rule_arn, target_arn).await?.ok_or_else(|| {
            format!(
                "rule {rule_arn} has no target {target_arn} any more (ListTargetsByRule); replay to it with --to-url, --to-queue, --to-function or --to-bus"
            )
        })?;
        let input = input_setting(&target);
        let (service, t_region, account, t_resource) =
            arn_parts(target_arn).ok_or_else(|| format!("{target_arn} is not an ARN"))?;
        let kind = match service {
            "lambda" if t_resource.starts_with("function:") => TargetKind::Function,
            "sqs" => {
                let mut sqs = aws_sdk_sqs::config::Builder::from(&self.sdk);
                if !t_region.is_empty() {
                    sqs = sqs.region(aws_config::Region::new(t_region.to_owned()));
                }
                let url = aws_sdk_sqs::Client::from_conf(sqs.build())
                    .get_queue_url()
                    .queue_name(t_resource)
                    .queue_owner_aws_account_id(account)
                    .send()
                    .await
                    .map_err(|e| match sdk_attempt("GetQueueUrl", &e) {
                        Attempt::Retry { error, .. } | Attempt::Rejected { error, .. } => error,
                        Attempt::Delivered { .. } => unreachable!("an error is never a delivery"),
                    })?
                    .queue_url()
                    .unwrap_or_default()
                    .to_owned();
                TargetKind::Queue {
                    url,
                    group_id: target
                        .sqs_parameters()
                        .and_then(|p| p.message_group_id())
                        .map(str::to_owned),
                }
            }
            "events" if t_resource.starts_with("api-destination/") => {
                let name = t_resource["api-destination/".len()..]
                    .split('/')
                    .next()
                    .unwrap_or_default();
                let api = self
                    .events(t_region)
                    .describe_api_destination()
                    .name(name)
                    .send()
                    .await
                    .map_err(|e| match sdk_attempt("DescribeApiDestination", &e) {
                        Attempt::Retry { error, .. } | Attempt::Rejected { error, .. } => error,
                        Attempt::Delivered { .. } => unreachable!("an error is never a delivery"),
                    })?;
                let params = target.http_parameters();
                let map = |m: Option<&std::collections::HashMap<String, String>>| {
                    m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default()
                };
                TargetKind::ApiDestination(ApiDestination {
                    endpoint: api.invocation_endpoint().unwrap_or_default().to_owned(),
                    method: api
                        .http_method()
                        .map(|m| m.as_str().to_owned())
                        .unwrap_or_else(|| "POST".to_owned()),
                    path_parameters: params
                        .map(|p| p.path_parameter_values().to_vec())
                        .unwrap_or_default(),
                    headers: map(params.and_then(|p| p.header_parameters())),
                    query: map(params.and_then(|p| p.query_string_parameters())),
                })
            }
            "events" if t_resource.starts_with("event-bus/") => TargetKind::Bus,
            other => TargetKind::Unsupported(format!(
                "the target is a{} {other} resource, which --to-target does not deliver to; use --to-url, --to-queue, --to-function or --to-bus",
                if "aeiou".contains(other.chars().next().unwrap_or('x')) {
                    "n"
                } else {
                    ""
                }
            )),
        };
        Ok(ResolvedTarget {
            arn: target_arn.to_owned(),
            input,
            kind,
        })
    }
}

/// How failed targets take their input, for the report: one `ListTargetsByRule` per
/// (rule, target), remembered for `ttl` — failures too (a role without
/// `events:ListTargetsByRule` costs one call per pair per `ttl`, not one per batch).
#[derive(Debug)]
pub struct TargetInputLookup {
    targets: AwsTargets,
    ttl: Duration,
    seen: std::sync::Mutex<HashMap<(String, String), Remembered>>,
}

/// When a (rule, target) was looked up, and its input setting if it was found.
type Remembered = (std::time::Instant, Option<&'static str>);

impl TargetInputLookup {
    /// A lookup through `targets`, remembering answers for `ttl`.
    pub fn new(targets: AwsTargets, ttl: Duration) -> TargetInputLookup {
        TargetInputLookup {
            targets,
            ttl,
            seen: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Target ARN → `InputTransformer`, `InputPath`, `Input` or `none`, for the (rule,
    /// target) pairs given; what is not known within `budget` is left out.
    pub async fn describe(
        &self,
        pairs: impl IntoIterator<Item = (String, String)>,
        budget: Duration,
    ) -> BTreeMap<String, String> {
        let pairs: BTreeSet<(String, String)> = pairs.into_iter().collect();
        let mut known = BTreeMap::new();
        let mut missing = Vec::new();
        {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            for pair in pairs {
                match seen.get(&pair) {
                    Some((at, answer)) if at.elapsed() < self.ttl => {
                        if let Some(a) = answer {
                            known.insert(pair.1.clone(), (*a).to_owned());
                        }
                    }
                    _ => missing.push(pair),
                }
            }
        }
        let lookups = missing.iter().map(|(rule, target)| async move {
            let answer = match self.targets.input_of(rule, target).await {
                Ok(Some(input)) => Some(input_name(&input)),
                Ok(None) => None,
                Err(e) => {
                    tracing::info!(rule = %rule, target = %target, error = %e, "target input not looked up");
                    None
                }
            };
            ((rule.clone(), target.clone()), answer)
        });
        // What does not answer in time is tried again next time, not remembered.
        if let Ok(answers) = tokio::time::timeout(budget, futures::future::join_all(lookups)).await
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            for (pair, answer) in answers {
                if let Some(a) = answer {
                    known.insert(pair.1.clone(), a.to_owned());
                }
                seen.insert(pair, (std::time::Instant::now(), answer));
            }
        }
        known
    }
}

/// The name the report gives a target's input setting.
fn input_name(input: &TargetInput) -> &'static str {
    match input {
        TargetInput::Event => "none",
        TargetInput::Constant(_) => "Input",
        TargetInput::Path(_) => "InputPath",
        TargetInput::Transformer { .. } => "InputTransformer",
    }
}
