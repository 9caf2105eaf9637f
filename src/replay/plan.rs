//! Planning a record's delivery: the body and the route, for a fixed destination
//! (`--to-url`, `--to-queue`, `--to-function`, `--to-bus`) or for the rule's own target
//! (`--to-target`), whose input transformation and parameters are applied here.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use super::select::Candidate;
use super::transform::{RuleContext, TargetInput, TransformError, apply, select};
use super::{Delivery, Route};
use crate::artifacts::safe_file_stem;
use crate::aws_error::AwsError;
use crate::connection::{ConnectionAuth, ConnectionError};
use crate::genesys::redact_url;
use crate::targets::{AwsTargets, TargetsError};

/// Why a record cannot be planned; its text is the record's skip reason (journal,
/// summary). `Clone`: a target plan remembers a failed look-up for the rest of the run
/// and hands each record of that target the same error, so the look-up's
/// [`LookupError`] (which holds the SDK's error, not `Clone`) is shared in an `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum PlanError {
    /// `--to-target` for a dead letter without `RULE_ARN` / `TARGET_ARN`.
    #[error(
        "the dead letter names no RULE_ARN / TARGET_ARN, so its target is unknown; use --to-url, --to-queue, --to-function or --to-bus"
    )]
    NoTarget,
    /// The rule's target could not be looked up.
    #[error(transparent)]
    Lookup(Arc<LookupError>),
    /// A target kind `--to-target` does not deliver to; the text says which and what to use.
    #[error("{0}")]
    Unsupported(String),
    /// The API destination's connection gave no authorization.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The target's input transformation failed on this event.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// The payload cannot be carried to the destination.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The API destination's URL or parameters cannot be made for this event.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

/// Why a rule's target could not be looked up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LookupError {
    /// The rule no longer has the target.
    #[error(
        "rule {rule} has no target {target} any more (ListTargetsByRule); replay to it with --to-url, --to-queue, --to-function or --to-bus"
    )]
    Gone {
        /// The rule's ARN.
        rule: String,
        /// The target's ARN.
        target: String,
    },
    /// The target's ARN is not an ARN.
    #[error("{0} is not an ARN")]
    NotAnArn(String),
    /// The rule's targets could not be listed (or its ARN is not a rule's).
    #[error(transparent)]
    Listing(#[from] TargetsError),
    /// Where the target delivers could not be read (`GetQueueUrl`, `DescribeApiDestination`).
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Why a payload cannot be carried to its destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PayloadError {
    /// Not UTF-8, for SQS.
    #[error("the payload is not UTF-8 text, which SQS cannot carry")]
    NotUtf8,
    /// A character SQS refuses (its code point).
    #[error("the payload holds U+{0:04X}, a character SQS refuses")]
    RefusedCharacter(u32),
    /// Not a JSON event, for `PutEvents` (the parser's reason).
    #[error("the payload is not a JSON event ({0}); PutEvents needs one")]
    NotJsonEvent(String),
    /// An `aws.` source without `--source`.
    #[error(
        "PutEvents refuses sources that begin with \"aws.\" (this event's is {0}); give --source"
    )]
    AwsSource(String),
    /// No `source` and no `--source`.
    #[error("the event has no source; give --source")]
    NoSource,
    /// No `detail-type`.
    #[error("the event has no detail-type")]
    NoDetailType,
    /// No `detail`.
    #[error("the event has no detail")]
    NoDetail,
}

/// Why an API destination's URL or parameters cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EndpointError {
    /// The endpoint (with its parameters) is not a URL (the parser's reason).
    #[error("the API destination's endpoint: {0}")]
    NotAUrl(String),
    /// The endpoint's `*`s and the target's path parameters differ in number.
    #[error(
        "the API destination's endpoint has {stars} path wildcards and the target gives {parameters} path parameters"
    )]
    Wildcards {
        /// `*`s in the endpoint.
        stars: usize,
        /// Path parameters of the target.
        parameters: usize,
    },
    /// A `$.…` parameter, and the payload is not a JSON event.
    #[error("parameter {0} reads the event, and the payload is not a JSON event")]
    NoEvent(String),
    /// A `$.…` parameter that selects nothing.
    #[error("parameter {0} matches nothing in the event")]
    Unmatched(String),
    /// A parameter's path that cannot be read.
    #[error(transparent)]
    Path(#[from] TransformError),
}

/// A planned delivery, with how the summary names its destination.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Planned {
    /// What is sent, and where.
    pub delivery: Delivery,
    /// The destination as the summary shows it (no credentials).
    pub label: String,
    /// Something the operator should know about it (a target that transforms its input).
    pub note: Option<String>,
}

/// Plans deliveries: the port between selection and sending.
pub(crate) trait Plan: Send + Sync {
    /// The destination as the journal records it; a rerun skips a record the journal
    /// says was sent to the same destination.
    fn destination(&self, record: &Candidate) -> String;

    /// The delivery of one record, or why it cannot be sent.
    fn plan(
        &self,
        record: &Candidate,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<Planned, PlanError>> + Send;

    /// After the destination answered 401 or 407 to `delivery`: the same delivery with
    /// its authorization read afresh (as EventBridge refreshes a connection's OAuth token
    /// on those answers), or `None` when this plan has no authorization of its own to
    /// refresh (then the answer stands).
    fn reauthorize(
        &self,
        record: &Candidate,
        delivery: &Delivery,
    ) -> impl Future<Output = Option<Delivery>> + Send {
        let _ = (record, delivery);
        async { None }
    }
}

/// A destination given on the command line. `Debug` shows a URL redacted and `--header`
/// values hidden.
#[derive(Clone)]
pub(crate) enum Fixed {
    /// `--to-url` with `--method` and `--header` values (already read from the environment).
    Url {
        /// The URL.
        url: String,
        /// The method.
        method: String,
        /// Extra headers.
        headers: Vec<(String, String)>,
    },
    /// `--to-queue`.
    Queue {
        /// The queue URL.
        queue_url: String,
    },
    /// `--to-function`.
    Function {
        /// The function name or ARN.
        name: String,
    },
    /// `--to-bus` with `--source`.
    Bus {
        /// The bus name or ARN.
        bus: String,
        /// The `Source` to send under instead of the event's own.
        source: Option<String>,
    },
}

impl std::fmt::Debug for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fixed::Url {
                url,
                method,
                headers,
            } => f
                .debug_struct("Url")
                .field("url", &redact_url(url))
                .field("method", method)
                .field("headers", &super::courier::header_names(headers))
                .finish(),
            Fixed::Queue { queue_url } => f
                .debug_struct("Queue")
                .field("queue_url", queue_url)
                .finish(),
            Fixed::Function { name } => f.debug_struct("Function").field("name", name).finish(),
            Fixed::Bus { bus, source } => f
                .debug_struct("Bus")
                .field("bus", bus)
                .field("source", source)
                .finish(),
        }
    }
}

impl Fixed {
    /// The destination as the announcement and the summary show it (credentials and
    /// query strings redacted).
    pub(crate) fn shown(&self) -> String {
        match self {
            Fixed::Url { url, method, .. } => format!("{method} {}", redact_url(url)),
            Fixed::Queue { queue_url } => format!("queue {queue_url}"),
            Fixed::Function { name } => format!("function {name}"),
            Fixed::Bus { bus, .. } => format!("bus {bus}"),
        }
    }

    /// Whether it takes `--header` and `--id-header` (it speaks HTTP).
    pub(crate) fn takes_headers(&self) -> bool {
        match self {
            Fixed::Url { .. } => true,
            Fixed::Queue { .. } | Fixed::Function { .. } | Fixed::Bus { .. } => false,
        }
    }

    /// Whether sending there needs AWS credentials and a region.
    pub(crate) fn needs_aws(&self) -> bool {
        match self {
            Fixed::Url { .. } => false,
            Fixed::Queue { .. } | Fixed::Function { .. } | Fixed::Bus { .. } => true,
        }
    }

    /// The destination with the `--header` values it sends (those that take headers).
    pub(crate) fn with_headers(self, extra: Vec<(String, String)>) -> Fixed {
        match self {
            Fixed::Url { url, method, .. } => Fixed::Url {
                url,
                method,
                headers: extra,
            },
            other => other,
        }
    }
}

/// The group id of messages replayed to a FIFO queue given with `--to-queue`.
pub(super) const REPLAY_GROUP_ID: &str = "dlq-triage-replay";

/// Plans every record to one fixed destination.
#[derive(Debug, Clone)]
pub(crate) struct FixedPlan(pub Fixed);

impl Plan for FixedPlan {
    fn destination(&self, _: &Candidate) -> String {
        match &self.0 {
            Fixed::Url { url, .. } => format!("url:{}", redact_url(url)),
            Fixed::Queue { queue_url } => format!("queue:{queue_url}"),
            Fixed::Function { name } => format!("function:{name}"),
            Fixed::Bus { bus, .. } => format!("bus:{bus}"),
        }
    }

    async fn plan(&self, record: &Candidate, payload: Vec<u8>) -> Result<Planned, PlanError> {
        let label = self.destination(record);
        let delivery = match &self.0 {
            Fixed::Url {
                url,
                method,
                headers,
            } => Delivery {
                body: payload,
                route: Route::Http {
                    url: url.clone(),
                    method: method.clone(),
                    headers: with_json_content_type(headers),
                },
            },
            Fixed::Queue { queue_url } => {
                let fifo = queue_url.ends_with(".fifo");
                queue_body(&payload)?;
                Delivery {
                    body: payload,
                    route: Route::Queue {
                        queue_url: queue_url.clone(),
                        group_id: fifo.then(|| REPLAY_GROUP_ID.to_owned()),
                        dedup_id: fifo.then(|| dedup_id(&record.message_id)),
                    },
                }
            }
            Fixed::Function { name } => Delivery {
                body: payload,
                route: Route::Function { name: name.clone() },
            },
            Fixed::Bus { bus, source } => bus_delivery(bus, source.as_deref(), &payload)?,
        };
        Ok(Planned {
            delivery,
            label,
            note: None,
        })
    }
}

fn with_json_content_type(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut all = Vec::with_capacity(headers.len() + 1);
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        all.push(("Content-Type".to_owned(), "application/json".to_owned()));
    }
    all.extend(headers.iter().cloned());
    all
}

/// SQS carries text only: UTF-8 without the control characters its API refuses.
fn queue_body(payload: &[u8]) -> Result<(), PayloadError> {
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotUtf8)?;
    if let Some(c) = text.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        return Err(PayloadError::RefusedCharacter(c as u32));
    }
    Ok(())
}

/// A FIFO deduplication id for a message: the message id made safe, at most 128 characters.
fn dedup_id(message_id: &str) -> String {
    safe_file_stem(message_id).chars().take(128).collect()
}

/// A `PutEvents` entry from a stored event: its `source` (or `source_override`),
/// `detail-type`, `detail`, `resources` and `time`.
fn bus_delivery(
    bus: &str,
    source_override: Option<&str>,
    payload: &[u8],
) -> Result<Delivery, PayloadError> {
    let event: Value =
        serde_json::from_slice(payload).map_err(|e| PayloadError::NotJsonEvent(e.to_string()))?;
    let field = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
    let source = match (source_override, field("source")) {
        (Some(s), _) => s.to_owned(),
        (None, Some(s)) if s.starts_with("aws.") => {
            return Err(PayloadError::AwsSource(s));
        }
        (None, Some(s)) => s,
        (None, None) => return Err(PayloadError::NoSource),
    };
    let detail_type = field("detail-type").ok_or(PayloadError::NoDetailType)?;
    let detail = event.get("detail").ok_or(PayloadError::NoDetail)?;
    let resources = event
        .get("resources")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Delivery {
        body: detail.to_string().into_bytes(),
        route: Route::Bus {
            bus: bus.to_owned(),
            source,
            detail_type,
            resources,
            time: field("time"),
        },
    })
}

/// A rule's target as EventBridge holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResolvedTarget {
    /// The target's ARN.
    pub arn: String,
    /// How it takes its input.
    pub input: TargetInput,
    /// What it is, with its delivery parameters.
    pub kind: TargetKind,
}

/// The kinds of target `--to-target` delivers to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TargetKind {
    /// A Lambda function (invoked asynchronously).
    Function,
    /// An SQS queue, with `SqsParameters.MessageGroupId`.
    Queue {
        /// The queue URL.
        url: String,
        /// The target's message group id.
        group_id: Option<String>,
    },
    /// An API destination with the target's `HttpParameters`.
    ApiDestination(ApiDestination),
    /// An event bus.
    Bus,
    /// Anything else: why it is not delivered.
    Unsupported(String),
}

/// An API destination and the target's HTTP parameters.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ApiDestination {
    /// `InvocationEndpoint`, with `*` for each path parameter.
    pub endpoint: String,
    /// `HttpMethod`.
    pub method: String,
    /// `PathParameterValues`, in order (literal, or a JSON path into the event).
    pub path_parameters: Vec<String>,
    /// `HeaderParameters` (values literal or JSON paths).
    pub headers: BTreeMap<String, String>,
    /// `QueryStringParameters` (values literal or JSON paths).
    pub query: BTreeMap<String, String>,
    /// `ConnectionArn`: the connection whose authorization EventBridge adds.
    pub connection_arn: Option<String>,
}

/// The plan of a run: a destination given on the command line, or each record's own
/// rule target (`--to-target`).
pub(crate) enum AnyPlan {
    /// `--to-url`, `--to-queue`, `--to-function`, `--to-bus`.
    Fixed(FixedPlan),
    /// `--to-target`.
    Target(Box<TargetPlan<AwsTargets>>),
}

impl Plan for AnyPlan {
    fn destination(&self, record: &Candidate) -> String {
        match self {
            AnyPlan::Fixed(p) => p.destination(record),
            AnyPlan::Target(p) => p.destination(record),
        }
    }

    async fn plan(&self, record: &Candidate, payload: Vec<u8>) -> Result<Planned, PlanError> {
        match self {
            AnyPlan::Fixed(p) => p.plan(record, payload).await,
            AnyPlan::Target(p) => p.plan(record, payload).await,
        }
    }

    async fn reauthorize(&self, record: &Candidate, delivery: &Delivery) -> Option<Delivery> {
        match self {
            AnyPlan::Fixed(p) => p.reauthorize(record, delivery).await,
            AnyPlan::Target(p) => p.reauthorize(record, delivery).await,
        }
    }
}

/// Looks a rule's target up (EventBridge's `ListTargetsByRule`, through [`crate::targets::AwsTargets`]).
pub(crate) trait TargetDirectory: Send + Sync {
    /// The target of `rule_arn` whose ARN is `target_arn`.
    fn resolve(
        &self,
        rule_arn: &str,
        target_arn: &str,
    ) -> impl Future<Output = Result<ResolvedTarget, LookupError>> + Send;
}

/// A cached lookup of (rule, target): the target, or why it cannot be used.
type Lookup = Result<Arc<ResolvedTarget>, Arc<LookupError>>;

/// Plans each record to its own rule's target, as EventBridge would have delivered it.
pub(crate) struct TargetPlan<D> {
    directory: D,
    cache: tokio::sync::Mutex<HashMap<(String, String), Lookup>>,
    auth_headers: Vec<(String, String)>,
    bus_source: Option<String>,
    connection: Option<(Arc<dyn ConnectionAuth>, std::time::Duration)>,
    /// Connections that refused for a reason a person must fix (not `AUTHORIZED`, no
    /// secret, an unreadable secret): the rest of the run is told the same, without
    /// asking AWS again for every record.
    refused: std::sync::Mutex<HashMap<String, ConnectionError>>,
}

impl<D: TargetDirectory> TargetPlan<D> {
    /// `auth_headers` (`--header`) go to API destinations, beside their connection's
    /// authorization ([`TargetPlan::with_connection_auth`]) and over its headers of the
    /// same names;
    /// `bus_source` replaces an `aws.` source for event-bus targets.
    pub(crate) fn new(
        directory: D,
        auth_headers: Vec<(String, String)>,
        bus_source: Option<String>,
    ) -> TargetPlan<D> {
        TargetPlan {
            directory,
            cache: tokio::sync::Mutex::new(HashMap::new()),
            auth_headers,
            bus_source,
            connection: None,
            refused: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// API destinations get their connection's authorization through `auth`, each read
    /// bounded by `timeout`.
    pub(crate) fn with_connection_auth(
        mut self,
        auth: Arc<dyn ConnectionAuth>,
        timeout: std::time::Duration,
    ) -> TargetPlan<D> {
        self.connection = Some((auth, timeout));
        self
    }

    /// The connection's headers and query-string parameters, when they apply: an API
    /// destination with a connection, connection auth on. `fresh`:
    /// forget what is cached first (after a 401/407).
    async fn connection_auth(
        &self,
        target: &ResolvedTarget,
        fresh: bool,
    ) -> Result<Option<(Vec<(String, String)>, Vec<(String, String)>)>, ConnectionError> {
        let (TargetKind::ApiDestination(api), Some((auth, timeout))) =
            (&target.kind, &self.connection)
        else {
            return Ok(None);
        };
        let Some(arn) = &api.connection_arn else {
            return Ok(None);
        };
        let refused = |m: &std::sync::Mutex<HashMap<String, ConnectionError>>| {
            m.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(arn)
                .cloned()
        };
        if let Some(why) = refused(&self.refused) {
            return Err(why);
        }
        if fresh {
            auth.invalidate(arn);
        }
        match auth
            .headers(arn, tokio::time::Instant::now() + *timeout)
            .await
        {
            Ok(found) => {
                // A `--header` of the same name wins over the connection's.
                let mut headers = found.header_pairs();
                headers.retain(|(n, _)| !self.given(n));
                Ok(Some((headers, found.query_pairs())))
            }
            Err(e) => {
                if !e.transient() {
                    self.refused
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(arn.clone(), e.clone());
                }
                Err(e)
            }
        }
    }

    /// Whether `--header` names this header.
    fn given(&self, name: &str) -> bool {
        self.auth_headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    async fn target(&self, rule: &str, target: &str) -> Result<Arc<ResolvedTarget>, PlanError> {
        let mut cache = self.cache.lock().await;
        let key = (rule.to_owned(), target.to_owned());
        if let Some(hit) = cache.get(&key) {
            return hit.clone().map_err(PlanError::Lookup);
        }
        let found = self
            .directory
            .resolve(rule, target)
            .await
            .map(Arc::new)
            .map_err(Arc::new);
        cache.insert(key, found.clone());
        found.map_err(PlanError::Lookup)
    }
}

impl<D: TargetDirectory> Plan for TargetPlan<D> {
    fn destination(&self, record: &Candidate) -> String {
        format!(
            "target:{}",
            record.target_arn.as_deref().unwrap_or("(no target)")
        )
    }

    async fn plan(&self, record: &Candidate, payload: Vec<u8>) -> Result<Planned, PlanError> {
        let (Some(rule), Some(target)) = (&record.rule_arn, &record.target_arn) else {
            return Err(PlanError::NoTarget);
        };
        let resolved = self.target(rule, target).await?;
        let rule = RuleContext::from_arn(rule);
        let (mut headers, query) = self
            .connection_auth(&resolved, false)
            .await?
            .unwrap_or_default();
        headers.extend(self.auth_headers.iter().cloned());
        let (mut delivery, kind) = to_target(
            &resolved,
            &rule,
            &payload,
            &headers,
            self.bus_source.as_deref(),
        )?;
        if let Route::Http { url, .. } = &mut delivery.route {
            *url = with_query(url, &query)?;
        }
        let note = resolved.input.transforms().then(|| {
            format!(
                "{} transforms its input ({}): each body is transformed as EventBridge would before it is sent",
                resolved.arn,
                resolved.input.describe()
            )
        });
        Ok(Planned {
            delivery,
            label: format!("{kind} {}", resolved.arn),
            note,
        })
    }

    /// An API destination's delivery with its connection's authorization read afresh
    /// (cache invalidated): its headers replace those of the same names, its query-string
    /// parameters those of the same names. `None` when the record's target has no
    /// connection whose authorization this plan adds, or it cannot be read now.
    async fn reauthorize(&self, record: &Candidate, delivery: &Delivery) -> Option<Delivery> {
        let (Some(rule), Some(target)) = (&record.rule_arn, &record.target_arn) else {
            return None;
        };
        let resolved = self.target(rule, target).await.ok()?;
        let (headers, query) = self.connection_auth(&resolved, true).await.ok()??;
        let mut fresh = delivery.clone();
        let Route::Http {
            url, headers: sent, ..
        } = &mut fresh.route
        else {
            return None;
        };
        sent.retain(|(n, _)| !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n)));
        sent.extend(headers);
        *url = with_query(url, &query).ok()?;
        Some(fresh)
    }
}

/// The delivery EventBridge would have made of `payload` to `target`: a pure function of
/// the target's settings and the event.
pub(super) fn to_target(
    target: &ResolvedTarget,
    rule: &RuleContext,
    payload: &[u8],
    auth_headers: &[(String, String)],
    bus_source: Option<&str>,
) -> Result<(Delivery, &'static str), PlanError> {
    if let TargetKind::Unsupported(why) = &target.kind {
        return Err(PlanError::Unsupported(why.clone()));
    }
    let body = apply(&target.input, payload, rule)?;
    Ok(match &target.kind {
        TargetKind::Function => (
            Delivery {
                body,
                route: Route::Function {
                    name: target.arn.clone(),
                },
            },
            "lambda",
        ),
        TargetKind::Queue { url, group_id } => {
            queue_body(&body)?;
            let fifo = url.ends_with(".fifo");
            (
                Delivery {
                    body,
                    route: Route::Queue {
                        queue_url: url.clone(),
                        group_id: group_id.clone().filter(|_| fifo),
                        dedup_id: None,
                    },
                },
                "sqs",
            )
        }
        TargetKind::ApiDestination(api) => {
            let event: Option<Value> = serde_json::from_slice(payload).ok();
            let url = api_url(api, event.as_ref())?;
            let mut headers = vec![(
                "Content-Type".to_owned(),
                "application/json; charset=utf-8".to_owned(),
            )];
            for (name, value) in &api.headers {
                // The connection's parameters take precedence over the target's.
                if !auth_headers
                    .iter()
                    .any(|(a, _)| a.eq_ignore_ascii_case(name))
                {
                    headers.push((name.clone(), parameter(value, event.as_ref())?));
                }
            }
            headers.extend(auth_headers.iter().cloned());
            (
                Delivery {
                    body,
                    route: Route::Http {
                        url,
                        method: api.method.clone(),
                        headers,
                    },
                },
                "api-destination",
            )
        }
        TargetKind::Bus => (bus_delivery(&target.arn, bus_source, &body)?, "event-bus"),
        TargetKind::Unsupported(_) => unreachable!("handled above"),
    })
}

/// `url` with the connection's query-string parameters, which replace the target's of
/// the same name.
pub(crate) fn with_query(url: &str, query: &[(String, String)]) -> Result<String, EndpointError> {
    if query.is_empty() {
        return Ok(url.to_owned());
    }
    let mut parsed = reqwest::Url::parse(url).map_err(|e| EndpointError::NotAUrl(e.to_string()))?;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| !query.iter().any(|(q, _)| q == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(&kept)
        .extend_pairs(query);
    Ok(parsed.to_string())
}

/// The endpoint with each `*` replaced by its path parameter, and the query string added.
fn api_url(api: &ApiDestination, event: Option<&Value>) -> Result<String, EndpointError> {
    let stars = api.endpoint.matches('*').count();
    if stars != api.path_parameters.len() {
        return Err(EndpointError::Wildcards {
            stars,
            parameters: api.path_parameters.len(),
        });
    }
    let mut url = String::with_capacity(api.endpoint.len() + 64);
    let mut values = api.path_parameters.iter();
    for (i, piece) in api.endpoint.split('*').enumerate() {
        if i > 0 {
            let value = parameter(values.next().map_or("", String::as_str), event)?;
            url.push_str(&percent_encode(&value));
        }
        url.push_str(piece);
    }
    let mut parsed =
        reqwest::Url::parse(&url).map_err(|e| EndpointError::NotAUrl(e.to_string()))?;
    if !api.query.is_empty() {
        let mut pairs = parsed.query_pairs_mut();
        for (name, value) in &api.query {
            pairs.append_pair(name, &parameter(value, event)?);
        }
    }
    Ok(parsed.to_string())
}

/// A target parameter: a JSON path into the original event (`$.…`), or a literal.
fn parameter(value: &str, event: Option<&Value>) -> Result<String, EndpointError> {
    if !value.starts_with('$') {
        return Ok(value.to_owned());
    }
    let event = event.ok_or_else(|| EndpointError::NoEvent(value.to_owned()))?;
    match select(event, value)? {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Ok(other.to_string()),
        None => Err(EndpointError::Unmatched(value.to_owned())),
    }
}

fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &[u8] = br#"{"version":"0","id":"e1","detail-type":"v2.detail.events.conversation.{id}.customer.end","source":"aws.partner/genesys.com/cloud/org/x","time":"2026-11-28T10:00:00Z","resources":[],"detail":{"eventBody":{"conversationId":"c-1","queue":"sales team"}}}"#;

    fn rule() -> RuleContext {
        RuleContext::from_arn("arn:aws:events:us-east-1:1:rule/genesys/to-crm")
    }

    fn target(kind: TargetKind, input: TargetInput) -> ResolvedTarget {
        ResolvedTarget {
            arn: "arn:aws:events:us-east-1:1:api-destination/crm/abc".into(),
            input,
            kind,
        }
    }

    #[test]
    fn an_api_destination_gets_its_path_query_and_headers_from_the_original_event() {
        let api = ApiDestination {
            endpoint: "https://crm.example.com/conversations/*/events".into(),
            method: "PUT".into(),
            path_parameters: vec!["$.detail.eventBody.conversationId".into()],
            headers: [("X-Queue".into(), "$.detail.eventBody.queue".into())].into(),
            query: [("src".into(), "genesys".into())].into(),
            connection_arn: None,
        };
        let t = target(
            TargetKind::ApiDestination(api),
            TargetInput::Path("$.detail.eventBody".into()),
        );
        let auth = vec![("Authorization".to_owned(), "Bearer t".to_owned())];
        let (d, kind) = to_target(&t, &rule(), EVENT, &auth, None).unwrap();
        assert_eq!(kind, "api-destination");
        assert_eq!(
            d.body,
            br#"{"conversationId":"c-1","queue":"sales team"}"#.to_vec()
        );
        let Route::Http {
            url,
            method,
            headers,
        } = d.route
        else {
            panic!("{:?}", d.route)
        };
        assert_eq!(
            url,
            "https://crm.example.com/conversations/c-1/events?src=genesys"
        );
        assert_eq!(method, "PUT");
        assert!(headers.contains(&("X-Queue".into(), "sales team".into())));
        assert!(headers.contains(&("Authorization".into(), "Bearer t".into())));
    }

    /// A directory of one API destination whose connection is `arn:conn`.
    struct OneApi;

    impl TargetDirectory for OneApi {
        async fn resolve(&self, _: &str, _: &str) -> Result<ResolvedTarget, LookupError> {
            Ok(target(
                TargetKind::ApiDestination(ApiDestination {
                    endpoint: "https://crm.example.com/hook?tenant=target".into(),
                    method: "POST".into(),
                    headers: [("x-api-key".into(), "from-target".into())].into(),
                    connection_arn: Some("arn:conn".into()),
                    ..ApiDestination::default()
                }),
                TargetInput::Event,
            ))
        }
    }

    fn candidate() -> Candidate {
        Candidate {
            message_id: "m1".into(),
            event_id: Some("e1".into()),
            category: crate::classify::FailureCategory::RateLimitExceeded,
            rule_arn: Some("arn:aws:events:us-east-1:1:rule/genesys/to-crm".into()),
            target_arn: Some("arn:aws:events:us-east-1:1:api-destination/crm/abc".into()),
            payload: crate::reports::Location::File("m1.json".into()),
        }
    }

    fn http(p: Planned) -> (String, Vec<(String, String)>) {
        match p.delivery.route {
            Route::Http { url, headers, .. } => (url, headers),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_api_destination_gets_its_connections_headers_and_query_and_a_given_header_wins_by_name()
     {
        use crate::connection::{AuthHeaders, ConnectionError, MemoryConnectionAuth, Parameter};
        let twin = Arc::new(MemoryConnectionAuth::new());
        twin.set(
            "arn:conn",
            Ok(AuthHeaders {
                headers: vec![Parameter::new("X-Api-Key", "k-conn")],
                query: vec![Parameter::new("tenant", "conn")],
                body: Vec::new(),
            }),
        );
        let timeout = std::time::Duration::from_secs(5);
        let plan =
            TargetPlan::new(OneApi, Vec::new(), None).with_connection_auth(twin.clone(), timeout);
        let (url, headers) = http(plan.plan(&candidate(), EVENT.to_vec()).await.unwrap());
        assert_eq!(url, "https://crm.example.com/hook?tenant=conn");
        let keys: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-api-key"))
            .collect();
        assert_eq!(
            keys,
            [&("X-Api-Key".to_owned(), "k-conn".to_owned())],
            "the connection's header wins, once"
        );

        let given = vec![("x-api-key".to_owned(), "k-flag".to_owned())];
        let plan = TargetPlan::new(OneApi, given, None).with_connection_auth(twin.clone(), timeout);
        let (url, headers) = http(plan.plan(&candidate(), EVENT.to_vec()).await.unwrap());
        assert_eq!(
            url, "https://crm.example.com/hook?tenant=conn",
            "--header adds; the connection still applies"
        );
        let keys: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-api-key"))
            .collect();
        assert_eq!(
            keys,
            [&("x-api-key".to_owned(), "k-flag".to_owned())],
            "--header wins over the connection's header of the same name, once"
        );
        assert_eq!(
            twin.calls(),
            ["arn:conn", "arn:conn"],
            "--header given: the connection is still read"
        );

        twin.set(
            "arn:conn",
            Err(ConnectionError::NotAuthorized {
                connection: "arn:conn".into(),
                state: "DEAUTHORIZED".into(),
                reason: None,
            }),
        );
        let plan = TargetPlan::new(OneApi, Vec::new(), None).with_connection_auth(twin, timeout);
        let err = plan.plan(&candidate(), EVENT.to_vec()).await.unwrap_err();
        assert!(matches!(err, PlanError::Connection(_)), "{err:?}");
        let err = err.to_string();
        assert!(err.contains("DEAUTHORIZED"), "{err}");
    }

    /// After a 401: the connection is read afresh (invalidated first) and its headers and
    /// query parameters replace the old ones of the same names; a connection refused for
    /// a reason a person must fix is asked once per run, not once per record.
    #[tokio::test]
    async fn reauthorizing_reads_the_connection_afresh_and_a_refusal_is_asked_once() {
        use crate::connection::{AuthHeaders, ConnectionError, MemoryConnectionAuth, Parameter};
        let twin = Arc::new(MemoryConnectionAuth::new());
        let auth = |key: &str, tenant: &str| AuthHeaders {
            headers: vec![Parameter::new("X-Api-Key", key)],
            query: vec![Parameter::new("tenant", tenant)],
            body: Vec::new(),
        };
        twin.set("arn:conn", Ok(auth("k-old", "t-old")));
        let timeout = std::time::Duration::from_secs(5);
        let plan =
            TargetPlan::new(OneApi, Vec::new(), None).with_connection_auth(twin.clone(), timeout);
        let planned = plan.plan(&candidate(), EVENT.to_vec()).await.unwrap();
        twin.set("arn:conn", Ok(auth("k-new", "t-new")));
        let fresh = plan
            .reauthorize(&candidate(), &planned.delivery)
            .await
            .expect("an API destination with a connection is reauthorized");
        assert_eq!(twin.invalidated(), ["arn:conn"]);
        assert_eq!(fresh.body, planned.delivery.body);
        let (url, headers) = http(Planned {
            delivery: fresh,
            ..planned.clone()
        });
        assert_eq!(url, "https://crm.example.com/hook?tenant=t-new");
        let keys: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-api-key"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(keys, ["k-new"]);
        let fixed = FixedPlan(Fixed::Url {
            url: "https://crm.example.com/hook".into(),
            method: "POST".into(),
            headers: vec![],
        });
        assert!(
            fixed
                .reauthorize(&candidate(), &planned.delivery)
                .await
                .is_none()
        );

        let twin = Arc::new(MemoryConnectionAuth::new());
        twin.set(
            "arn:conn",
            Err(ConnectionError::NotAuthorized {
                connection: "arn:conn".into(),
                state: "DEAUTHORIZED".into(),
                reason: None,
            }),
        );
        let plan =
            TargetPlan::new(OneApi, Vec::new(), None).with_connection_auth(twin.clone(), timeout);
        for _ in 0..3 {
            let err = plan
                .plan(&candidate(), EVENT.to_vec())
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("DEAUTHORIZED"), "{err}");
        }
        assert_eq!(twin.calls(), ["arn:conn"], "asked once");
    }

    #[test]
    fn a_fixed_urls_debug_hides_its_headers_and_query() {
        let fixed = Fixed::Url {
            url: "https://crm.example.com/hook?key=q-s3cr3t".into(),
            method: "POST".into(),
            headers: vec![("x-api-key".into(), "k-s3cr3t".into())],
        };
        let shown = format!("{fixed:?}");
        assert!(shown.contains("x-api-key"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn a_fifo_queue_target_keeps_its_group_id() {
        let t = target(
            TargetKind::Queue {
                url: "http://127.0.0.1/1/q.fifo".into(),
                group_id: Some("g1".into()),
            },
            TargetInput::Event,
        );
        let (d, _) = to_target(&t, &rule(), EVENT, &[], None).unwrap();
        assert_eq!(d.body, EVENT.to_vec());
        assert!(matches!(d.route, Route::Queue { group_id: Some(ref g), .. } if g == "g1"));
    }

    #[test]
    fn partner_sources_need_a_source_for_put_events() {
        let t = target(TargetKind::Bus, TargetInput::Event);
        let err = to_target(&t, &rule(), EVENT, &[], None).unwrap_err();
        assert!(
            matches!(err, PlanError::Payload(PayloadError::AwsSource(_))),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(err.contains("--source"), "{err}");
        let (d, _) = to_target(&t, &rule(), EVENT, &[], Some("replay.genesys")).unwrap();
        let Route::Bus {
            source,
            detail_type,
            time,
            ..
        } = d.route
        else {
            panic!()
        };
        assert_eq!(source, "replay.genesys");
        assert_eq!(
            detail_type,
            "v2.detail.events.conversation.{id}.customer.end"
        );
        assert_eq!(time.as_deref(), Some("2026-11-28T10:00:00Z"));
        assert_eq!(
            d.body,
            br#"{"eventBody":{"conversationId":"c-1","queue":"sales team"}}"#.to_vec()
        );
    }

    #[test]
    fn unsupported_kinds_and_bad_payloads_say_why() {
        let t = target(
            TargetKind::Unsupported("SNS topics are not replayed".into()),
            TargetInput::Event,
        );
        assert!(
            to_target(&t, &rule(), EVENT, &[], None)
                .unwrap_err()
                .to_string()
                .contains("SNS")
        );
        let q = target(
            TargetKind::Queue {
                url: "http://127.0.0.1/1/q".into(),
                group_id: None,
            },
            TargetInput::Event,
        );
        let err = to_target(&q, &rule(), b"{\"a\":\"\x01\"}", &[], None).unwrap_err();
        assert!(
            matches!(err, PlanError::Payload(PayloadError::RefusedCharacter(1))),
            "{err:?}"
        );
        assert!(err.to_string().contains("U+0001"), "{err}");
    }

    #[test]
    fn wildcards_and_parameters_must_agree() {
        let api = ApiDestination {
            endpoint: "https://x.example.com/*/*".into(),
            method: "POST".into(),
            path_parameters: vec!["a".into()],
            ..ApiDestination::default()
        };
        assert!(
            api_url(&api, None)
                .unwrap_err()
                .to_string()
                .contains("2 path wildcards")
        );
    }
}
