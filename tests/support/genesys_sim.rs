//! A Genesys Cloud simulator speaking the real endpoints, for tests and `make demo`:
//!
//! - `POST /oauth/token` — client credentials with HTTP Basic auth;
//! - `GET /api/v2/analytics/conversations/details?id=a,b,…` — the multi-get;
//! - `GET /api/v2/analytics/conversations/{id}/details` — the single get;
//! - `POST /api/v2/analytics/conversations/details/query` — filtered by `conversationId`;
//! - `GET /sim/stats` — the request counters as JSON.
//!
//! Conversations are generated deterministically from their id. Faults are armed through
//! [`SimState`]: latency, a maximum number of ids per call, 429 with `Retry-After`, 5xx,
//! garbage bodies, hangs (client timeouts), 401s, unknown ids.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Counters of what the simulator served.
#[derive(Debug, Default)]
pub struct SimStats {
    pub token_requests: AtomicU64,
    pub detail_requests: AtomicU64,
    pub single_requests: AtomicU64,
    pub query_requests: AtomicU64,
    pub ids_requested: AtomicU64,
    pub max_ids_in_one_call: AtomicUsize,
    pub rejected_too_many_ids: AtomicU64,
    pub served_429: AtomicU64,
    pub served_5xx: AtomicU64,
    pub served_401: AtomicU64,
    pub served_garbage: AtomicU64,
}

impl SimStats {
    pub fn to_json(&self) -> Value {
        let l = |a: &AtomicU64| a.load(Ordering::SeqCst);
        json!({
            "tokenRequests": l(&self.token_requests),
            "detailRequests": l(&self.detail_requests),
            "singleRequests": l(&self.single_requests),
            "queryRequests": l(&self.query_requests),
            "idsRequested": l(&self.ids_requested),
            "maxIdsInOneCall": self.max_ids_in_one_call.load(Ordering::SeqCst),
            "rejectedTooManyIds": l(&self.rejected_too_many_ids),
            "served429": l(&self.served_429),
            "served5xx": l(&self.served_5xx),
            "served401": l(&self.served_401),
            "servedGarbage": l(&self.served_garbage),
        })
    }
}

/// Behaviour and counters, shared with the test that runs the simulator.
#[derive(Debug)]
pub struct SimState {
    pub client_id: String,
    pub client_secret: String,
    pub token_lifetime_secs: u64,
    /// Added to every API answer.
    pub latency: Mutex<Duration>,
    /// More ids than this in one multi-get → 400.
    pub max_ids: Mutex<Option<usize>>,
    /// The next N detail requests answer 429 with this `Retry-After` (seconds), if any.
    pub fail_429: AtomicU64,
    pub retry_after: Mutex<Option<String>>,
    /// The next N detail requests answer 503.
    pub fail_5xx: AtomicU64,
    /// The next N detail requests answer 200 with a body that is not JSON.
    pub garbage: AtomicU64,
    /// The next N detail requests hang for `hang_for` before answering.
    pub hang: AtomicU64,
    pub hang_for: Mutex<Duration>,
    /// The next N detail requests answer 401 (a token revoked mid-batch).
    pub fail_401: AtomicU64,
    /// Ids the simulated org does not know.
    pub unknown: Mutex<HashSet<String>>,
    /// The org's integrations, as `GET /api/v2/integrations` lists them (its `entities`),
    /// `pageSize` a page (at most 100; 25 by default, as Genesys Cloud's), each page with
    /// the `nextUri` of the next.
    pub integrations: Mutex<Vec<Value>>,
    /// The next N integrations requests answer this HTTP status (429, 503, …).
    pub integrations_fail: AtomicU64,
    pub integrations_status: Mutex<u16>,
    tokens: Mutex<HashSet<String>>,
    issued: Mutex<Vec<String>>,
    pub stats: SimStats,
}

impl SimState {
    pub fn new(client_id: &str, client_secret: &str) -> SimState {
        SimState {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            token_lifetime_secs: 86_399,
            latency: Mutex::new(Duration::ZERO),
            max_ids: Mutex::new(None),
            fail_429: AtomicU64::new(0),
            retry_after: Mutex::new(Some("0".into())),
            fail_5xx: AtomicU64::new(0),
            garbage: AtomicU64::new(0),
            hang: AtomicU64::new(0),
            hang_for: Mutex::new(Duration::from_secs(5)),
            fail_401: AtomicU64::new(0),
            unknown: Mutex::new(HashSet::new()),
            integrations: Mutex::new(Vec::new()),
            integrations_fail: AtomicU64::new(0),
            integrations_status: Mutex::new(429),
            tokens: Mutex::new(HashSet::new()),
            issued: Mutex::new(Vec::new()),
            stats: SimStats::default(),
        }
    }

    /// Issued access tokens (for tests asserting that none leaks).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }
}

/// Takes one from an armed fault counter.
fn take(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// A running simulator.
pub struct Sim {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    task: tokio::task::JoinHandle<()>,
}

impl Sim {
    /// Starts on a free port of 127.0.0.1 for the OAuth client `client_id`, its org
    /// holding `integrations`.
    pub async fn with_integrations(
        client_id: &str,
        client_secret: &str,
        integrations: impl IntoIterator<Item = Value>,
    ) -> Sim {
        let state = SimState::new(client_id, client_secret);
        state.integrations.lock().unwrap().extend(integrations);
        Sim::start(state, 0).await.unwrap()
    }

    /// Starts on 127.0.0.1:`port` (0 for any free port).
    pub async fn start(state: SimState, port: u16) -> std::io::Result<Sim> {
        let state = Arc::new(state);
        let app = router(state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sim { addr, state, task })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/v2/analytics/conversations/details", get(multi_get))
        .route("/api/v2/analytics/conversations/details/query", post(query))
        .route(
            "/api/v2/analytics/conversations/{id}/details",
            get(single_get),
        )
        .route("/api/v2/integrations", get(integrations))
        .route("/sim/stats", get(stats))
        .with_state(state)
}

/// An Amazon EventBridge Source integration of the simulated org, as the Integrations API
/// shows it (`expand=config.current`), with its reported state `code` (`ACTIVE`,
/// `ACTIVATING`, `INACTIVE`, `DEACTIVATING` or `ERROR`) and `detail` message.
pub fn eventbridge_integration(suffix: &str, code: &str, detail: &str) -> Value {
    json!({
        "id": format!("integration-{suffix}"),
        "name": format!("Amazon EventBridge Source {suffix}"),
        "integrationType": {"id": "amazon-eventbridge-source", "name": "Amazon EventBridge Source"},
        "intendedState": "ENABLED",
        "reportedState": {
            "code": code,
            "effective": code,
            "detail": {"localizableMessageCode": "", "message": detail},
            "lastUpdated": "2026-11-28T09:00:00Z"
        },
        "config": {"current": {"properties": {
            "eventSourceSuffix": suffix,
            "awsAccountId": "111122223333",
            "awsAccountRegion": "us-east-1"
        }}}
    })
}

/// `GET /api/v2/integrations?pageSize=N&pageNumber=P`: one page of the integrations,
/// with `nextUri` while more follow (a path with the query, as Genesys Cloud gives it).
async fn integrations(
    State(s): State<Arc<SimState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = gate(&s, &headers).await {
        return refused;
    }
    if take(&s.integrations_fail) {
        let status = StatusCode::from_u16(*s.integrations_status.lock().unwrap())
            .unwrap_or(StatusCode::TOO_MANY_REQUESTS);
        return error(status, "sim.failure", "armed failure");
    }
    let all = s.integrations.lock().unwrap().clone();
    let number = |k: &str, default: usize| {
        query
            .get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let size = number("pageSize", 25).clamp(1, 100);
    let page = number("pageNumber", 1).max(1);
    let count = all.len().div_ceil(size).max(1);
    let entities: Vec<Value> = all
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .cloned()
        .collect();
    let mut body = json!({
        "entities": entities,
        "pageSize": size,
        "pageNumber": page,
        "total": all.len(),
        "pageCount": count,
        "selfUri": format!("/api/v2/integrations?pageSize={size}&pageNumber={page}"),
        "firstUri": format!("/api/v2/integrations?pageSize={size}&pageNumber=1"),
        "lastUri": format!("/api/v2/integrations?pageSize={size}&pageNumber={count}"),
    });
    if page < count {
        body["nextUri"] = json!(format!(
            "/api/v2/integrations?pageSize={size}&pageNumber={}&expand=config.current",
            page + 1
        ));
    }
    Json(body).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "code": code, "status": status.as_u16(), "contextId": "sim", "details": [], "errors": []})),
    )
        .into_response()
}

async fn token(State(s): State<Arc<SimState>>, headers: HeaderMap, body: String) -> Response {
    s.stats.token_requests.fetch_add(1, Ordering::SeqCst);
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", s.client_id, s.client_secret));
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Basic {expected}") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "description": "client not found", "error_description": "client not found"}))).into_response();
    }
    if body.trim() != "grant_type=client_credentials" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let token = format!(
        "sim-token-{}",
        hex_of(&format!(
            "{}{}",
            s.client_id,
            s.stats.token_requests.load(Ordering::SeqCst)
        ))
    );
    s.tokens.lock().unwrap().insert(token.clone());
    s.issued.lock().unwrap().push(token.clone());
    Json(
        json!({"access_token": token, "token_type": "bearer", "expires_in": s.token_lifetime_secs}),
    )
    .into_response()
}

/// Checks the bearer token and the armed faults common to every API call.
async fn gate(s: &SimState, headers: &HeaderMap) -> Option<Response> {
    let latency = *s.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if take(&s.fail_401) {
        s.tokens.lock().unwrap().remove(bearer);
        s.stats.served_401.fetch_add(1, Ordering::SeqCst);
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "authentication.required",
            "token revoked",
        ));
    }
    if !s.tokens.lock().unwrap().contains(bearer) {
        s.stats.served_401.fetch_add(1, Ordering::SeqCst);
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "authentication.required",
            "No authentication bearer token specified in authorization header.",
        ));
    }
    if take(&s.hang) {
        let hang = *s.hang_for.lock().unwrap();
        tokio::time::sleep(hang).await;
    }
    if take(&s.fail_429) {
        s.stats.served_429.fetch_add(1, Ordering::SeqCst);
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too.many.requests.retry.after",
            "Rate limit exceeded the maximum. Retry the request in [1] seconds",
        );
        if let Some(after) = s.retry_after.lock().unwrap().clone() {
            r.headers_mut()
                .insert(header::RETRY_AFTER, after.parse().unwrap());
        }
        return Some(r);
    }
    if take(&s.fail_5xx) {
        s.stats.served_5xx.fetch_add(1, Ordering::SeqCst);
        return Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "service.unavailable",
            "The service is currently unavailable",
        ));
    }
    if take(&s.garbage) {
        s.stats.served_garbage.fetch_add(1, Ordering::SeqCst);
        return Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "<html><body>502 Bad Gateway</body></html>",
            )
                .into_response(),
        );
    }
    None
}

async fn multi_get(
    State(s): State<Arc<SimState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.stats.detail_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = gate(&s, &headers).await {
        return r;
    }
    let ids: Vec<&str> = q
        .get("id")
        .map(|v| v.split(',').filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    s.stats
        .ids_requested
        .fetch_add(ids.len() as u64, Ordering::SeqCst);
    s.stats
        .max_ids_in_one_call
        .fetch_max(ids.len(), Ordering::SeqCst);
    if let Some(max) = *s.max_ids.lock().unwrap()
        && ids.len() > max
    {
        s.stats.rejected_too_many_ids.fetch_add(1, Ordering::SeqCst);
        return error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            &format!("Maximum of {max} conversation ids allowed"),
        );
    }
    let unknown = s.unknown.lock().unwrap().clone();
    let conversations: Vec<Value> = ids
        .iter()
        .filter(|id| !unknown.contains(**id))
        .map(|id| conversation(id))
        .collect();
    Json(json!({ "conversations": conversations })).into_response()
}

async fn single_get(
    State(s): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    s.stats.single_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = gate(&s, &headers).await {
        return r;
    }
    if s.unknown.lock().unwrap().contains(&id) {
        return error(
            StatusCode::NOT_FOUND,
            "not.found",
            "The requested conversation was not found.",
        );
    }
    Json(conversation(&id)).into_response()
}

async fn query(
    State(s): State<Arc<SimState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.stats.query_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = gate(&s, &headers).await {
        return r;
    }
    if body.get("interval").and_then(Value::as_str).is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            "interval is required",
        );
    }
    let unknown = s.unknown.lock().unwrap().clone();
    let mut ids = Vec::new();
    for filter in body
        .get("conversationFilters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for p in filter
            .get("predicates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if p.get("dimension").and_then(Value::as_str) == Some("conversationId")
                && let Some(v) = p.get("value").and_then(Value::as_str)
            {
                ids.push(v.to_owned());
            }
        }
    }
    let conversations: Vec<Value> = ids
        .iter()
        .filter(|id| !unknown.contains(*id))
        .map(|id| conversation(id))
        .collect();
    if conversations.is_empty() {
        return Json(json!({"totalHits": 0})).into_response();
    }
    Json(json!({"totalHits": conversations.len(), "conversations": conversations})).into_response()
}

async fn stats(State(s): State<Arc<SimState>>) -> Json<Value> {
    Json(s.stats.to_json())
}

fn hex_of(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..12])
}

/// A realistic `AnalyticsConversationWithoutAttributes`, the same every time for an id.
pub fn conversation(id: &str) -> Value {
    let h = Sha256::digest(id.as_bytes());
    let start_secs = 1_795_856_400 + (u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % 3600) as i64;
    let duration_ms = 60_000 + (u32::from_be_bytes([h[4], h[5], h[6], h[7]]) % 1_740_000) as i64;
    let start = chrono::DateTime::from_timestamp(start_secs, 0).unwrap();
    let end = start + chrono::Duration::milliseconds(duration_ms);
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let media = ["voice", "message", "email", "callback"][(h[8] % 4) as usize];
    let direction = if h[9] % 3 == 0 { "outbound" } else { "inbound" };
    let queue = [
        "b2f1c1a0-0f4e-4f55-9f0e-1a2b3c4d5e01",
        "b2f1c1a0-0f4e-4f55-9f0e-1a2b3c4d5e02",
        "b2f1c1a0-0f4e-4f55-9f0e-1a2b3c4d5e03",
    ][(h[10] % 3) as usize];
    let division = "7f3c0d2e-5a1b-4c9d-8e7f-001122334455";
    let in_progress = h[11] % 10 == 0;
    let segment = |kind: &str, queue: Option<&str>| {
        let mut seg = json!({"segmentStart": fmt(start), "segmentEnd": fmt(end), "segmentType": kind, "disconnectType": "peer"});
        if let Some(q) = queue {
            seg["queueId"] = json!(q);
        }
        seg
    };
    let session = |kind: &str, queue: Option<&str>| json!({"sessionId": hex_of(&format!("{id}{kind}")), "mediaType": media, "direction": direction, "ani": "tel:+15555550520", "dnis": "tel:+15555550000", "segments": [segment(kind, queue)]});
    let mut c = json!({
        "conversationId": id,
        "conversationStart": fmt(start),
        "originatingDirection": direction,
        "divisionIds": [division],
        "participants": [
            {"participantId": hex_of(&format!("{id}c")), "purpose": "customer", "sessions": [session("interact", None)]},
            {"participantId": hex_of(&format!("{id}i")), "purpose": "ivr", "participantName": "Main IVR", "sessions": [session("ivr", None)]},
            {"participantId": hex_of(&format!("{id}a")), "purpose": "acd", "participantName": "Billing", "sessions": [session("interact", Some(queue))]},
            {"participantId": hex_of(&format!("{id}g")), "purpose": "agent", "userId": hex_of(&format!("{id}u")), "sessions": [session("interact", Some(queue))]},
        ],
    });
    if !in_progress {
        c["conversationEnd"] = json!(fmt(end));
    }
    c
}
