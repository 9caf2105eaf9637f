//! EventBridge's partner event sources, which moto does not serve (`DescribeEventSource`
//! answers 500): a stand-in speaking EventBridge's JSON protocol (`X-Amz-Target:
//! AWSEvents.DescribeEventSource`) that answers it from a table and passes every other
//! call on to moto, so one `AWS_ENDPOINT_URL_EVENTBRIDGE` serves both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode};

type Sources = Arc<Mutex<HashMap<String, String>>>;

/// A running stand-in, stopped on drop.
pub struct EventSources {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    sources: Sources,
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
        let table = sources.clone();
        let (endpoint, server) = super::net::amz_json_proxy(moto, move |target, body| {
            (target == "AWSEvents.DescribeEventSource").then(|| describe(&table, body))
        })
        .await;
        EventSources {
            endpoint,
            sources,
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
