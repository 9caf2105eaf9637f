//! EventBridge's partner event sources, which moto does not serve (`DescribeEventSource`
//! answers 500): a stand-in speaking EventBridge's JSON protocol (`X-Amz-Target:
//! AWSEvents.DescribeEventSource`) that answers it from a table and passes every other
//! call on to moto, so one `AWS_ENDPOINT_URL_EVENTBRIDGE` serves both. It can also give a
//! connection a state moto never reaches (`DEAUTHORIZED`, which EventBridge sets after the
//! endpoint answers 401 or 407): `DescribeConnection` of that name answers it, as moto
//! would otherwise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode};

type Sources = Arc<Mutex<HashMap<String, String>>>;
type Connections = Arc<Mutex<HashMap<String, String>>>;

/// A running stand-in, stopped on drop.
pub struct EventSources {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    sources: Sources,
    connections: Connections,
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
        let connections: Connections = Arc::default();
        let table = sources.clone();
        let states = connections.clone();
        let (endpoint, server) =
            super::net::amz_json_proxy(moto, move |target, body| match target {
                "AWSEvents.DescribeEventSource" => Some(describe(&table, body)),
                "AWSEvents.DescribeConnection" => connection(&states, body),
                _ => None,
            })
            .await;
        EventSources {
            endpoint,
            sources,
            connections,
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

    /// The connection `name` is in `state` (`DEAUTHORIZED`, …) for `DescribeConnection`.
    pub fn set_connection_state(&self, name: &str, state: &str) {
        self.connections
            .lock()
            .unwrap()
            .insert(name.to_owned(), state.to_owned());
    }
}

/// `DescribeConnection` of a connection given a state; `None` (moto answers) otherwise.
fn connection(states: &Connections, body: &[u8]) -> Option<super::net::Answer> {
    let name = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["Name"].as_str().map(str::to_owned))?;
    let state = states.lock().unwrap().get(&name)?.clone();
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    let body = serde_json::json!({
        "ConnectionArn": format!("arn:aws:events:us-east-1:123456789012:connection/{name}/00000000-0000-4000-8000-000000000000"),
        "Name": name,
        "ConnectionState": state,
        "StateReason": "Connection deauthorized: the endpoint answered 401",
        "AuthorizationType": "API_KEY",
    });
    Some((StatusCode::OK, headers, body.to_string().into_bytes()))
}

fn describe(table: &Sources, body: &[u8]) -> super::net::Answer {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    let name = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["Name"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let answer = match table.lock().unwrap().get(&name) {
        Some(state) => (
            StatusCode::OK,
            serde_json::json!({
                "Arn": format!("arn:aws:events:us-east-1::event-source/{name}"),
                "CreatedBy": "genesys.com",
                "CreationTime": 1795800000,
                "Name": name,
                "State": state,
            }),
        ),
        None => (
            StatusCode::BAD_REQUEST,
            serde_json::json!({
                "__type": "ResourceNotFoundException",
                "message": format!("Event source {name} does not exist."),
            }),
        ),
    };
    (answer.0, headers, answer.1.to_string().into_bytes())
}
