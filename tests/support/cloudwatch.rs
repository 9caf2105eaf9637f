//! A CloudWatch stand-in speaking the protocol the Rust SDK speaks to CloudWatch (Smithy
//! RPC v2 CBOR: `POST /service/GraniteServiceVersion20100801/operation/<Operation>`,
//! `smithy-protocol: rpc-v2-cbor`, CBOR bodies), which moto's server does not route.
//!
//! A judge as well as a server: it keeps the rules of CloudWatch that a caller can break.
//! - `PutMetricData` stores data points; `GetMetricData` answers each query's `Sum` per
//!   period over the metric with *exactly* those dimensions (a metric put under
//!   `{EventBusName, RuleName}` is not found under `{RuleName}`, nor the other way).
//! - Retention by the age of `StartTime` (by this machine's clock, as CloudWatch's):
//!   more than 15 days ago the period must be a multiple of 300 s, more than 63 days ago
//!   of 3,600 s, more than 455 days ago nothing is kept; otherwise a multiple of 60 s.
//!   A query that breaks the rule gets *no data points* and `StatusCode` `Complete`, no
//!   error, as CloudWatch answers.
//! - At most 500 queries per call, unique ids, `EndTime` after `StartTime`: else a
//!   `ValidationError`-style 400.
//! - `ListMetrics` (namespace, metric name, dimension filters; 500 a page with
//!   `NextToken`) lists only metrics with a data point in the last 14 days.
//! - A rule's queries can be made to answer `PartialData` or `Forbidden` (with
//!   `Messages`), and every call can be held a while ([`CloudWatch::set_latency`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use ciborium::Value;

/// A metric: namespace, name, its exact dimensions.
type Key = (String, String, BTreeMap<String, String>);

/// What the stand-in holds.
#[derive(Debug, Default)]
struct Inner {
    /// Each metric's data points: (epoch seconds, value).
    data: BTreeMap<Key, Vec<(i64, f64)>>,
    /// Rule name → (status code, message) its queries answer with.
    forced: BTreeMap<String, (String, String)>,
    latency: Duration,
    /// Operation → calls answered.
    calls: BTreeMap<String, usize>,
    /// The most queries one `GetMetricData` call carried.
    most_queries: usize,
    /// `GetMetricData` calls with a query of this rule fail (HTTP 500).
    failing: Option<String>,
}

type Store = Arc<Mutex<Inner>>;

/// A metric as `ListMetrics` names it: namespace, name, dimensions.
type Listed = (String, String, Vec<(String, String)>);

const DAY: i64 = 86_400;
/// `GetMetricData` takes at most this many queries per call.
const MAX_QUERIES: usize = 500;
/// `ListMetrics` answers at most this many metrics a page.
const LIST_PAGE: usize = 500;

/// A running stand-in, stopped on drop.
pub struct CloudWatch {
    /// `http://127.0.0.1:PORT`: give it as `AWS_ENDPOINT_URL_CLOUDWATCH`.
    pub endpoint: String,
    store: Store,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for CloudWatch {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl CloudWatch {
    /// Starts the stand-in on 127.0.0.1, on a free port.
    pub async fn start() -> CloudWatch {
        CloudWatch::start_on(0).await
    }

    /// Starts the stand-in on 127.0.0.1:`port` (0: a free one).
    pub async fn start_on(port: u16) -> CloudWatch {
        let store: Store = Arc::default();
        let app = axum::Router::new()
            .route(
                "/service/GraniteServiceVersion20100801/operation/{operation}",
                axum::routing::post(operation),
            )
            .with_state(store.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CloudWatch {
            endpoint,
            store,
            server,
        }
    }

    /// Every query of rule `rule` answers `status` (`PartialData`, `Forbidden`,
    /// `InternalError`) with `message`, and no data points but those found.
    pub fn force_status(&self, rule: &str, status: &str, message: &str) {
        self.store
            .lock()
            .unwrap()
            .forced
            .insert(rule.to_owned(), (status.to_owned(), message.to_owned()));
    }

    /// Every `GetMetricData` call carrying a query of rule `rule` fails with HTTP 500
    /// (`InternalServiceFault`); the others answer.
    pub fn fail_calls_naming(&self, rule: &str) {
        self.store.lock().unwrap().failing = Some(rule.to_owned());
    }

    /// Holds every answer `latency` before giving it.
    pub fn set_latency(&self, latency: Duration) {
        self.store.lock().unwrap().latency = latency;
    }

    /// How many calls of `operation` were answered.
    pub fn calls(&self, operation: &str) -> usize {
        self.store
            .lock()
            .unwrap()
            .calls
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// The most queries one `GetMetricData` call carried.
    pub fn most_queries_per_call(&self) -> usize {
        self.store.lock().unwrap().most_queries
    }

    /// Stores data points directly, as `PutMetricData` would: (namespace, metric name,
    /// dimensions, epoch seconds, value). For putting many points fast (benchmarks).
    pub fn put_many<'a>(
        &self,
        points: impl IntoIterator<Item = (&'a str, &'a str, &'a [(&'a str, &'a str)], i64, f64)>,
    ) {
        let mut inner = self.store.lock().unwrap();
        for (namespace, name, dims, at, value) in points {
            let dims = dims
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            inner
                .data
                .entry((namespace.to_owned(), name.to_owned(), dims))
                .or_default()
                .push((at, value));
        }
    }
}

fn get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_text).unwrap_or_default().to_owned()
}

fn number(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Float(f)) => *f,
        Some(Value::Integer(i)) => i128::from(*i) as f64,
        Some(Value::Tag(_, inner)) => number(Some(inner)),
        _ => 0.0,
    }
}

fn dimensions(metric: &Value) -> BTreeMap<String, String> {
    get(metric, "Dimensions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|d| (text(get(d, "Name")), text(get(d, "Value"))))
        .collect()
}

fn field(k: &str, v: Value) -> (Value, Value) {
    (Value::Text(k.into()), v)
}

fn cbor(status: StatusCode, body: Value) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut bytes = Vec::new();
    ciborium::into_writer(&body, &mut bytes).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    headers.insert("content-type", HeaderValue::from_static("application/cbor"));
    (status, headers, bytes)
}

/// A client error as CloudWatch gives it.
fn invalid(kind: &str, message: String) -> (StatusCode, HeaderMap, Vec<u8>) {
    cbor(
        StatusCode::BAD_REQUEST,
        Value::Map(vec![
            field(
                "__type",
                Value::Text(format!("com.amazonaws.cloudwatch#{kind}")),
            ),
            field("message", Value::Text(message)),
        ]),
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn operation(
    State(store): State<Store>,
    Path(operation): Path<String>,
    body: Bytes,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let latency = {
        let mut inner = store.lock().unwrap();
        *inner.calls.entry(operation.clone()).or_default() += 1;
        inner.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let Ok(input) = ciborium::from_reader::<Value, _>(&body[..]) else {
        return cbor(StatusCode::BAD_REQUEST, Value::Map(vec![]));
    };
    match operation.as_str() {
        "PutMetricData" => {
            let namespace = text(get(&input, "Namespace"));
            let mut inner = store.lock().unwrap();
            for d in get(&input, "MetricData")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let key = (namespace.clone(), text(get(d, "MetricName")), dimensions(d));
                inner
                    .data
                    .entry(key)
                    .or_default()
                    .push((number(get(d, "Timestamp")) as i64, number(get(d, "Value"))));
            }
            cbor(StatusCode::OK, Value::Map(vec![]))
        }
        "GetMetricData" => get_metric_data(&store, &input),
        "ListMetrics" => list_metrics(&store, &input),
        _ => cbor(StatusCode::NOT_FOUND, Value::Map(vec![])),
    }
}

fn get_metric_data(store: &Store, input: &Value) -> (StatusCode, HeaderMap, Vec<u8>) {
    let start = number(get(input, "StartTime")) as i64;
    let end = number(get(input, "EndTime")) as i64;
    let queries: Vec<&Value> = get(input, "MetricDataQueries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if queries.is_empty() || queries.len() > MAX_QUERIES {
        return invalid(
            "InvalidParameterValueException",
            format!(
                "The collection MetricDataQueries must not have a size greater than {MAX_QUERIES} or be empty ({}).",
                queries.len()
            ),
        );
    }
    let ids: BTreeSet<String> = queries.iter().map(|q| text(get(q, "Id"))).collect();
    if ids.len() != queries.len() {
        return invalid(
            "InvalidParameterValueException",
            "The values for parameter id in MetricDataQueries are not unique.".into(),
        );
    }
    if end <= start {
        return invalid(
            "InvalidParameterValueException",
            "The parameter StartTime must be less than the parameter EndTime.".into(),
        );
    }
    let mut inner = store.lock().unwrap();
    inner.most_queries = inner.most_queries.max(queries.len());
    let rule_of = |q: &Value| {
        let metric = get(q, "MetricStat").and_then(|s| get(s, "Metric"));
        metric
            .map(dimensions)
            .unwrap_or_default()
            .remove("RuleName")
    };
    if let Some(failing) = &inner.failing
        && queries.iter().any(|q| rule_of(q).as_ref() == Some(failing))
    {
        return cbor(
            StatusCode::INTERNAL_SERVER_ERROR,
            Value::Map(vec![
                field(
                    "__type",
                    Value::Text("com.amazonaws.cloudwatch#InternalServiceFault".into()),
                ),
                field("message", Value::Text("Internal service error".into())),
            ]),
        );
    }
    let results = queries
        .iter()
        .map(|q| answer(q, &inner, start, end))
        .collect();
    cbor(
        StatusCode::OK,
        Value::Map(vec![field("MetricDataResults", Value::Array(results))]),
    )
}

/// The multiple of which a period must be for data from `start` on, by its age; `None`
/// when CloudWatch keeps nothing that old.
fn required_multiple(start: i64) -> Option<i64> {
    let age = now() - start;
    if age > 455 * DAY {
        None
    } else if age > 63 * DAY {
        Some(3600)
    } else if age > 15 * DAY {
        Some(300)
    } else {
        Some(60)
    }
}

/// One query's sums per period, in time order.
fn answer(query: &Value, inner: &Inner, start: i64, end: i64) -> Value {
    let stat = get(query, "MetricStat");
    let metric = stat.and_then(|s| get(s, "Metric"));
    let period = number(stat.and_then(|s| get(s, "Period"))) as i64;
    let (namespace, name) = (
        text(metric.and_then(|m| get(m, "Namespace"))),
        text(metric.and_then(|m| get(m, "MetricName"))),
    );
    let wanted = metric.map(dimensions).unwrap_or_default();
    let kept = period > 0 && required_multiple(start).is_some_and(|m| period % m == 0);
    let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
    let key = (namespace, name.clone(), wanted);
    if kept && let Some(points) = inner.data.get(&key) {
        for (at, value) in points {
            if (start..end).contains(at) {
                *sums
                    .entry(start + (at - start) / period * period)
                    .or_default() += value;
            }
        }
    }
    let wanted = key.2;
    let forced = wanted.get("RuleName").and_then(|r| inner.forced.get(r));
    let (status, messages) = match forced {
        Some((status, message)) => {
            if status == "Forbidden" {
                sums.clear();
            }
            (
                status.clone(),
                vec![Value::Map(vec![
                    field("Code", Value::Text(status.clone())),
                    field("Value", Value::Text(message.clone())),
                ])],
            )
        }
        None => ("Complete".to_owned(), Vec::new()),
    };
    // Newest first, as CloudWatch's default ScanBy (TimestampDescending) gives them.
    let label = text(get(query, "Label"));
    let mut fields = vec![
        field("Id", Value::Text(text(get(query, "Id")))),
        field(
            "Label",
            Value::Text(if label.is_empty() { name } else { label }),
        ),
        field(
            "Timestamps",
            Value::Array(
                sums.keys()
                    .rev()
                    .map(|t| Value::Tag(1, Box::new(Value::Integer((*t).into()))))
                    .collect(),
            ),
        ),
        field(
            "Values",
            Value::Array(sums.values().rev().map(|v| Value::Float(*v)).collect()),
        ),
        field("StatusCode", Value::Text(status)),
    ];
    if !messages.is_empty() {
        fields.push(field("Messages", Value::Array(messages)));
    }
    Value::Map(fields)
}

/// `ListMetrics`: the metrics matching the namespace, name and dimension filters (a
/// filter without a value matches any value) that have a data point in the last 14 days.
fn list_metrics(store: &Store, input: &Value) -> (StatusCode, HeaderMap, Vec<u8>) {
    let namespace = text(get(input, "Namespace"));
    let name = text(get(input, "MetricName"));
    let filters: Vec<(String, Option<String>)> = get(input, "Dimensions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|d| {
            let value = text(get(d, "Value"));
            (text(get(d, "Name")), (!value.is_empty()).then_some(value))
        })
        .collect();
    let from: usize = text(get(input, "NextToken")).parse().unwrap_or(0);
    let recent = now() - 14 * DAY;
    let inner = store.lock().unwrap();
    let listed: BTreeSet<Listed> = inner
        .data
        .iter()
        .filter(|((ns, n, dims), points)| {
            points.iter().any(|(at, _)| *at >= recent)
                && (namespace.is_empty() || *ns == namespace)
                && (name.is_empty() || *n == name)
                && filters.iter().all(|(k, v)| match v {
                    Some(v) => dims.get(k) == Some(v),
                    None => dims.contains_key(k),
                })
        })
        .map(|((ns, n, dims), _)| {
            (
                ns.clone(),
                n.clone(),
                dims.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            )
        })
        .collect();
    let page: Vec<Value> = listed
        .iter()
        .skip(from)
        .take(LIST_PAGE)
        .map(|(ns, n, dims)| {
            Value::Map(vec![
                field("Namespace", Value::Text(ns.clone())),
                field("MetricName", Value::Text(n.clone())),
                field(
                    "Dimensions",
                    Value::Array(
                        dims.iter()
                            .map(|(k, v)| {
                                Value::Map(vec![
                                    field("Name", Value::Text(k.clone())),
                                    field("Value", Value::Text(v.clone())),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ])
        })
        .collect();
    let mut fields = vec![field("Metrics", Value::Array(page))];
    if from + LIST_PAGE < listed.len() {
        fields.push(field(
            "NextToken",
            Value::Text((from + LIST_PAGE).to_string()),
        ));
    }
    cbor(StatusCode::OK, Value::Map(fields))
}
