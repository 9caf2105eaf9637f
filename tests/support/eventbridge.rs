//! EventBridge's partner event sources, which moto does not serve (`DescribeEventSource`
//! answers 500): a stand-in speaking EventBridge's JSON protocol (`X-Amz-Target:
//! AWSEvents.DescribeEventSource`) that answers it from a table and passes every other
//! call on to moto, so one `AWS_ENDPOINT_URL_EVENTBRIDGE` serves both. It also lists the
//! sources (`ListEventSources`) and answers `DescribeConnection` for the connections put
//! in a state moto cannot reach (`DEAUTHORIZED`: EventBridge sets it after an endpoint's
//! 401/407).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode};

type Sources = Arc<Mutex<HashMap<String, String>>>;

/// A running stand-in, stopped on drop.
pub struct EventSources {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    sources: Sources,
    connections: Sources,
    /// The most sources one `ListEventSources` page holds (EventBridge's `Limit` caps it
    /// at 100).
    page_size: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for EventSources {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl EventSources {
    /// Starts the stand-in in front of moto at `moto`.
    pub async fn start(moto: &str) -> EventSources {
        let sources: Sources = Arc::default();
        let connections: Sources = Arc::default();
        let page_size = Arc::new(AtomicUsize::new(100));
        let (table, states, size) = (sources.clone(), connections.clone(), page_size.clone());
        let (endpoint, server) =
            super::net::amz_json_proxy(moto, move |target, body| match target {
                "AWSEvents.DescribeEventSource" => Some(describe(&table, body)),
                "AWSEvents.ListEventSources" => {
                    Some(list(&table, body, size.load(Ordering::Relaxed)))
                }
                "AWSEvents.DescribeConnection" => connection(&states, body),
                _ => None,
            })
            .await;
        EventSources {
            endpoint,
            sources,
            connections,
            page_size,
            server,
        }
    }

    /// The partner event source `name` is in `state` (`ACTIVE`, `PENDING`, `DELETED`).
    pub fn set(&self, name: &str, state: &str) {
        self.sources
            .lock()
            .unwrap()
            .insert(name.to_owned(), state.to_owned());
    }

    /// `ListEventSources` answers at most `size` sources a page (and a `NextToken`).
    pub fn set_page_size(&self, size: usize) {
        self.page_size.store(size.max(1), Ordering::Relaxed);
    }

    /// `DescribeConnection` of connection `name` answers `state` (with a reason) instead
    /// of moto's answer.
    pub fn set_connection(&self, name: &str, state: &str) {
        self.connections
            .lock()
            .unwrap()
            .insert(name.to_owned(), state.to_owned());
    }
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    headers
}

fn field(body: &[u8], name: &str) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v[name].as_str().map(str::to_owned))
}

/// `ListEventSources` with its `NamePrefix`, in name order, a page of at most `Limit` and
/// `page_size` sources, with a `NextToken` while more remain.
fn list(table: &Sources, body: &[u8], page_size: usize) -> super::net::Answer {
    let prefix = field(body, "NamePrefix").unwrap_or_default();
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let limit = request["Limit"]
        .as_u64()
        .map_or(page_size, |l| (l as usize).min(page_size));
    let from: usize = field(body, "NextToken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let mut names: Vec<(String, String)> = table
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .map(|(n, s)| (n.clone(), s.clone()))
        .collect();
    names.sort();
    let more = names.len() > from + limit;
    let sources: Vec<serde_json::Value> = names
        .iter()
        .skip(from)
        .take(limit)
        .map(|(name, state)| source(name, state))
        .collect();
    let mut body = serde_json::json!({ "EventSources": sources });
    if more {
        body["NextToken"] = (from + limit).to_string().into();
    }
    (
        StatusCode::OK,
        json_headers(),
        body.to_string().into_bytes(),
    )
}

/// `DescribeConnection` of a connection in the table; `None` (moto answers) otherwise.
fn connection(table: &Sources, body: &[u8]) -> Option<super::net::Answer> {
    let name = field(body, "Name")?;
    let state = table.lock().unwrap().get(&name)?.clone();
    let body = serde_json::json!({
        "ConnectionArn": format!("arn:aws:events:us-east-1:123456789012:connection/{name}/0d3c6a4e-5a0b-4d55-9d3c-4a4b1f7d2e11"),
        "Name": name,
        "ConnectionState": state,
        "StateReason": "Authorization failed: the endpoint answered 401 Unauthorized",
        "AuthorizationType": "API_KEY",
        "CreationTime": 1795800000,
        "LastModifiedTime": 1795900000,
    });
    Some((
        StatusCode::OK,
        json_headers(),
        body.to_string().into_bytes(),
    ))
}

/// An event source as `DescribeEventSource` and `ListEventSources` give it.
fn source(name: &str, state: &str) -> serde_json::Value {
    serde_json::json!({
        "Arn": format!("arn:aws:events:us-east-1::event-source/{name}"),
        "CreatedBy": "genesys.com",
        "CreationTime": 1795800000,
        "Name": name,
        "State": state,
    })
}

fn describe(table: &Sources, body: &[u8]) -> super::net::Answer {
    let name = field(body, "Name").unwrap_or_default();
    let answer = match table.lock().unwrap().get(&name) {
        Some(state) => (StatusCode::OK, source(&name, state)),
        None => (
            StatusCode::BAD_REQUEST,
            serde_json::json!({
                "__type": "ResourceNotFoundException",
                "message": format!("Event source {name} does not exist."),
            }),
        ),
    };
    (answer.0, json_headers(), answer.1.to_string().into_bytes())
}
