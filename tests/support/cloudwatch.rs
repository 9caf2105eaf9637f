//! A CloudWatch stand-in speaking the protocol the Rust SDK speaks to CloudWatch (Smithy
//! RPC v2 CBOR: `POST /service/GraniteServiceVersion20100801/operation/<Operation>`,
//! `smithy-protocol: rpc-v2-cbor`, CBOR bodies), which moto's server does not route.
//! `PutMetricData` stores the data points; `GetMetricData` answers each query's `Sum` per
//! period over the metric with exactly those dimensions, as CloudWatch does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use ciborium::Value;

/// One stored data point.
#[derive(Debug, Clone)]
struct Datum {
    namespace: String,
    name: String,
    dimensions: BTreeMap<String, String>,
    at: i64,
    value: f64,
}

type Store = Arc<Mutex<Vec<Datum>>>;

/// A running stand-in, stopped on drop.
pub struct CloudWatch {
    /// `http://127.0.0.1:PORT`: give it as `AWS_ENDPOINT_URL_CLOUDWATCH`.
    pub endpoint: String,
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
            .with_state(store);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CloudWatch { endpoint, server }
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

fn cbor(status: StatusCode, body: Value) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut bytes = Vec::new();
    ciborium::into_writer(&body, &mut bytes).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    headers.insert("content-type", HeaderValue::from_static("application/cbor"));
    (status, headers, bytes)
}

async fn operation(
    State(store): State<Store>,
    Path(operation): Path<String>,
    body: Bytes,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let Ok(input) = ciborium::from_reader::<Value, _>(&body[..]) else {
        return cbor(StatusCode::BAD_REQUEST, Value::Map(vec![]));
    };
    match operation.as_str() {
        "PutMetricData" => {
            let namespace = text(get(&input, "Namespace"));
            let mut data = store.lock().unwrap();
            for d in get(&input, "MetricData")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                data.push(Datum {
                    namespace: namespace.clone(),
                    name: text(get(d, "MetricName")),
                    dimensions: dimensions(d),
                    at: number(get(d, "Timestamp")) as i64,
                    value: number(get(d, "Value")),
                });
            }
            cbor(StatusCode::OK, Value::Map(vec![]))
        }
        "GetMetricData" => {
            let start = number(get(&input, "StartTime")) as i64;
            let end = number(get(&input, "EndTime")) as i64;
            let data = store.lock().unwrap().clone();
            let results = get(&input, "MetricDataQueries")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|q| answer(q, &data, start, end))
                .collect();
            cbor(
                StatusCode::OK,
                Value::Map(vec![(
                    Value::Text("MetricDataResults".into()),
                    Value::Array(results),
                )]),
            )
        }
        _ => cbor(StatusCode::NOT_FOUND, Value::Map(vec![])),
    }
}

/// One query's sums per period, in time order.
fn answer(query: &Value, data: &[Datum], start: i64, end: i64) -> Value {
    let stat = get(query, "MetricStat");
    let metric = stat.and_then(|s| get(s, "Metric"));
    let period = (number(stat.and_then(|s| get(s, "Period"))) as i64).max(1);
    let (namespace, name) = (
        text(metric.and_then(|m| get(m, "Namespace"))),
        text(metric.and_then(|m| get(m, "MetricName"))),
    );
    let wanted = metric.map(dimensions).unwrap_or_default();
    let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
    for d in data {
        if d.namespace == namespace
            && d.name == name
            && d.dimensions == wanted
            && (start..end).contains(&d.at)
        {
            *sums
                .entry(start + (d.at - start) / period * period)
                .or_default() += d.value;
        }
    }
    let field = |k: &str, v: Value| (Value::Text(k.into()), v);
    Value::Map(vec![
        field("Id", Value::Text(text(get(query, "Id")))),
        field(
            "Timestamps",
            Value::Array(
                sums.keys()
                    .map(|t| Value::Tag(1, Box::new(Value::Integer((*t).into()))))
                    .collect(),
            ),
        ),
        field(
            "Values",
            Value::Array(sums.values().map(|v| Value::Float(*v)).collect()),
        ),
        field("StatusCode", Value::Text("Complete".into())),
    ])
}
