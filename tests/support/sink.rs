//! A replay destination on 127.0.0.1: an HTTP server that records every request (method,
//! path and query, headers, body, arrival time) and answers from a script — 2xx, 429 with
//! `Retry-After`, 5xx, or never (a hang). It also answers the Lambda `Invoke` API
//! (`POST /2015-03-31/functions/{name}/invocations`, 202 for `InvocationType: Event`), so
//! the SDK's Lambda client can be pointed at it with `AWS_ENDPOINT_URL_LAMBDA`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// How the sink answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// This status, empty body.
    Status(u16),
    /// This status with a `Retry-After` header of this value.
    RetryAfter(u16, String),
    /// Never answer (the connection stays open until the client gives up).
    Hang,
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// The method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct SinkState {
    script: Mutex<VecDeque<Answer>>,
    default: Mutex<Answer>,
    received: Mutex<Vec<Received>>,
    arrived: tokio::sync::Notify,
    echo: bool,
}

/// A running sink; stops when dropped.
#[derive(Debug)]
pub struct Sink {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<SinkState>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    /// A sink on a free port answering `default` to everything not scripted.
    pub async fn start(default: Answer) -> Sink {
        Sink::serve(default, 0, false)
            .await
            .expect("bind 127.0.0.1")
    }

    /// A sink on `port` (0: any); `echo` prints each request to stdout (the example binary).
    pub async fn serve(default: Answer, port: u16, echo: bool) -> std::io::Result<Sink> {
        let state = Arc::new(SinkState {
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            received: Mutex::new(Vec::new()),
            arrived: tokio::sync::Notify::new(),
            echo,
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = Router::new().fallback(handle).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sink { url, state, task })
    }

    /// Answers the next requests with these, in order, before the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.script.lock().unwrap().extend(answers);
    }

    /// Changes the default answer.
    pub fn answer(&self, default: Answer) {
        *self.state.default.lock().unwrap() = default;
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived (or `limit` passes), then returns them all.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.state.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return self.received();
            }
        }
    }

    /// Serves until the process ends (the example binary).
    pub async fn run_forever(self) {
        std::future::pending::<()>().await;
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(state): State<Arc<SinkState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Received {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        at: Instant::now(),
    };
    if state.echo {
        println!(
            "{} {} ({} bytes): {}",
            received.method,
            received.uri,
            received.body.len(),
            String::from_utf8_lossy(&received.body)
        );
    }
    state.received.lock().unwrap().push(received);
    state.arrived.notify_waiters();
    let answer = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| state.default.lock().unwrap().clone());
    let invoke = uri.path().starts_with("/2015-03-31/functions/");
    match answer {
        Answer::Hang => std::future::pending().await,
        Answer::Status(code) if invoke && (200..300).contains(&code) => {
            StatusCode::ACCEPTED.into_response()
        }
        Answer::Status(code) => status(code).into_response(),
        Answer::RetryAfter(code, after) => {
            (status(code), [("retry-after", after)], "slow down").into_response()
        }
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
