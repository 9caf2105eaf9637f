//! EventBridge's partner event sources, which moto does not serve (`DescribeEventSource`
//! answers 500): a stand-in speaking EventBridge's JSON protocol (`X-Amz-Target:
//! AWSEvents.DescribeEventSource`) that answers it from a table and passes every other
//! call on to moto, so one `AWS_ENDPOINT_URL_EVENTBRIDGE` serves both. It also lists the
//! sources (`ListEventSources`) and answers `DescribeConnection` for the connections put
//! in a state moto cannot reach (`DEAUTHORIZED`: EventBridge sets it after an endpoint's
//! 401/407). It is also the judge of archive replays (moto replays every archived event
//! to every rule at once, whatever the window and `FilterArns`): it holds the archives
//! (`ListArchives`, `DescribeArchive`, with the creation time a test gives them), records
//! each `StartReplay` it accepts, and refuses one as EventBridge does ([`Archives`]).

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
    /// The archives and the replays started.
    pub archives: Archives,
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
        let archives = Archives::default();
        let held = archives.clone();
        let (endpoint, server) =
            super::net::amz_json_proxy(moto, move |target, body| match target {
                "AWSEvents.DescribeEventSource" => Some(describe(&table, body)),
                "AWSEvents.ListEventSources" => {
                    Some(list(&table, body, size.load(Ordering::Relaxed)))
                }
                "AWSEvents.DescribeConnection" => connection(&states, body),
                "AWSEvents.ListArchives"
                | "AWSEvents.DescribeArchive"
                | "AWSEvents.StartReplay"
                | "AWSEvents.ListReplays"
                | "AWSEvents.DescribeReplay" => Some(held.answer(target, body)),
                _ => None,
            })
            .await;
        EventSources {
            endpoint,
            sources,
            connections,
            archives,
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

/// Archives and replays, kept as EventBridge keeps them.
/// - `ListArchives` filters on `EventSourceArn` and `NamePrefix`; `DescribeArchive` of an
///   unknown name is `ResourceNotFoundException`.
/// - `ListReplays` filters on `EventSourceArn`, `NamePrefix` and `State`, and gives each
///   replay's name, archive, state and event window.
/// - Both lists answer pages of at most `Limit` (1–100) and [`Archives::set_page_size`]
///   entries, with a `NextToken` while more remain (EventBridge pages as it likes).
/// - `StartReplay` is refused (400) when the name is not 1–64 of `[.\-_A-Za-z0-9]`, the
///   archive (`EventSourceArn`) does not exist, `Destination.Arn` is not the archive's bus,
///   `EventEndTime` is not after `EventStartTime`, a `FilterArns` entry is not a rule of
///   that bus, or a replay of that name exists (`ResourceAlreadyExistsException`). An
///   accepted request is recorded as sent ([`Archives::replays`]).
#[derive(Clone, Default)]
pub struct Archives {
    inner: Arc<Mutex<ArchiveState>>,
}

struct ArchiveState {
    archives: Vec<serde_json::Value>,
    replays: Vec<serde_json::Value>,
    page_size: usize,
}

impl Default for ArchiveState {
    fn default() -> ArchiveState {
        ArchiveState {
            archives: Vec::new(),
            replays: Vec::new(),
            page_size: 100,
        }
    }
}

impl Archives {
    /// An archive `name` of the bus `bus_arn`, created at `created` (epoch seconds),
    /// keeping events `retention_days` (0: forever), `ENABLED`.
    pub fn add(&self, name: &str, bus_arn: &str, created: i64, retention_days: i32) {
        let region_account: Vec<&str> = bus_arn.split(':').skip(3).take(2).collect();
        let arn = format!("arn:aws:events:{}:archive/{name}", region_account.join(":"));
        self.inner.lock().unwrap().archives.push(serde_json::json!({
            "ArchiveName": name,
            "ArchiveArn": arn,
            "EventSourceArn": bus_arn,
            "State": "ENABLED",
            "RetentionDays": retention_days,
            "CreationTime": created,
            "EventCount": 0,
            "SizeBytes": 0,
            "EventPattern": "{\"source\":[{\"prefix\":\"aws.partner/genesys.com\"}]}",
        }));
    }

    /// `ListArchives` and `ListReplays` answer at most `size` entries a page.
    pub fn set_page_size(&self, size: usize) {
        self.inner.lock().unwrap().page_size = size.clamp(1, 100);
    }

    /// The `StartReplay` requests accepted, as sent.
    pub fn replays(&self) -> Vec<serde_json::Value> {
        self.inner.lock().unwrap().replays.clone()
    }

    fn answer(&self, target: &str, body: &[u8]) -> super::net::Answer {
        let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let mut state = self.inner.lock().unwrap();
        let answer = match target {
            "AWSEvents.ListArchives" => list_archives(&state, &request),
            "AWSEvents.DescribeArchive" => describe_archive(&state, &request),
            "AWSEvents.StartReplay" => start_replay(&mut state, request),
            "AWSEvents.ListReplays" => list_replays(&state, &request),
            _ => describe_replay(&state, &request),
        };
        let (status, body) = match answer {
            Ok(body) => (StatusCode::OK, body),
            Err((code, message)) => (
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "__type": code, "message": message }),
            ),
        };
        (status, json_headers(), body.to_string().into_bytes())
    }
}

type Refusal = (&'static str, String);

/// One page of `entries` as `request` (`Limit`, `NextToken`) and the page size allow:
/// the page and the next token.
fn page(
    state: &ArchiveState,
    request: &serde_json::Value,
    entries: Vec<serde_json::Value>,
) -> Result<(Vec<serde_json::Value>, Option<String>), Refusal> {
    let limit = match request["Limit"].as_u64() {
        None => state.page_size,
        Some(l @ 1..=100) => (l as usize).min(state.page_size),
        Some(l) => {
            return Err((
                "ValidationException",
                format!(
                    "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100"
                ),
            ));
        }
    };
    let from = match request["NextToken"].as_str() {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            (
                "ValidationException",
                "The NextToken provided is invalid.".to_owned(),
            )
        })?,
    };
    let more = entries.len() > from + limit;
    let page = entries.into_iter().skip(from).take(limit).collect();
    Ok((page, more.then(|| (from + limit).to_string())))
}

fn list_archives(
    state: &ArchiveState,
    request: &serde_json::Value,
) -> Result<serde_json::Value, Refusal> {
    let source = request["EventSourceArn"].as_str();
    let prefix = request["NamePrefix"].as_str().unwrap_or_default();
    let archives: Vec<serde_json::Value> = state
        .archives
        .iter()
        .filter(|a| source.is_none_or(|s| a["EventSourceArn"] == s))
        .filter(|a| {
            a["ArchiveName"]
                .as_str()
                .unwrap_or_default()
                .starts_with(prefix)
        })
        .map(|a| {
            let mut listed = a.clone();
            // ListArchives gives neither the ARN nor the pattern; DescribeArchive does.
            listed.as_object_mut().unwrap().remove("ArchiveArn");
            listed.as_object_mut().unwrap().remove("EventPattern");
            listed
        })
        .collect();
    let (archives, next) = page(state, request, archives)?;
    let mut body = serde_json::json!({ "Archives": archives });
    if let Some(next) = next {
        body["NextToken"] = next.into();
    }
    Ok(body)
}

/// `ListReplays`: the replays accepted, as EventBridge lists them (all `RUNNING` here,
/// as `DescribeReplay` says).
fn list_replays(
    state: &ArchiveState,
    request: &serde_json::Value,
) -> Result<serde_json::Value, Refusal> {
    let source = request["EventSourceArn"].as_str();
    let prefix = request["NamePrefix"].as_str().unwrap_or_default();
    let wanted = request["State"].as_str();
    let replays: Vec<serde_json::Value> = state
        .replays
        .iter()
        .filter(|r| source.is_none_or(|s| r["EventSourceArn"] == s))
        .filter(|r| {
            r["ReplayName"]
                .as_str()
                .unwrap_or_default()
                .starts_with(prefix)
        })
        .filter(|_| wanted.is_none_or(|w| w == "RUNNING"))
        .map(|r| {
            serde_json::json!({
                "ReplayName": r["ReplayName"],
                "EventSourceArn": r["EventSourceArn"],
                "State": "RUNNING",
                "EventStartTime": r["EventStartTime"],
                "EventEndTime": r["EventEndTime"],
                "ReplayStartTime": 1_800_000_000,
            })
        })
        .collect();
    let (replays, next) = page(state, request, replays)?;
    let mut body = serde_json::json!({ "Replays": replays });
    if let Some(next) = next {
        body["NextToken"] = next.into();
    }
    Ok(body)
}

fn describe_archive(
    state: &ArchiveState,
    request: &serde_json::Value,
) -> Result<serde_json::Value, Refusal> {
    let name = request["ArchiveName"].as_str().unwrap_or_default();
    state
        .archives
        .iter()
        .find(|a| a["ArchiveName"] == name)
        .cloned()
        .ok_or_else(|| {
            (
                "ResourceNotFoundException",
                format!("Archive {name} does not exist."),
            )
        })
}

fn describe_replay(
    state: &ArchiveState,
    request: &serde_json::Value,
) -> Result<serde_json::Value, Refusal> {
    let name = request["ReplayName"].as_str().unwrap_or_default();
    let replay = state
        .replays
        .iter()
        .find(|r| r["ReplayName"] == name)
        .ok_or_else(|| {
            (
                "ResourceNotFoundException",
                format!("Replay {name} does not exist."),
            )
        })?;
    let mut described = replay.clone();
    described["State"] = "RUNNING".into();
    Ok(described)
}

/// Whether `rule` is the ARN of a rule of the bus `bus_arn`.
fn rule_of_bus(rule: &str, bus_arn: &str) -> bool {
    let (Some((rule_head, path)), Some((bus_head, bus))) =
        (rule.split_once(":rule/"), bus_arn.split_once(":event-bus/"))
    else {
        return false;
    };
    let on_bus = match path.rsplit_once('/') {
        Some((b, _)) => b == bus,
        None => bus == "default",
    };
    rule_head == bus_head && on_bus
}

fn start_replay(
    state: &mut ArchiveState,
    request: serde_json::Value,
) -> Result<serde_json::Value, Refusal> {
    let invalid = |m: String| ("ValidationException", m);
    let name = request["ReplayName"].as_str().unwrap_or_default();
    let valid_name = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !valid_name {
        return Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'replayName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+ and have length at most 64"
        )));
    }
    let source = request["EventSourceArn"].as_str().unwrap_or_default();
    let archive_name = source.rsplit('/').next().unwrap_or_default();
    let archive = state
        .archives
        .iter()
        .find(|a| a["ArchiveArn"] == source)
        .ok_or_else(|| invalid(format!("Parameter EventSourceArn is not valid. Reason: Archive {archive_name} does not exist.")))?;
    let bus = archive["EventSourceArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if request["Destination"]["Arn"] != bus.as_str() {
        return Err(invalid("Parameter Destination.Arn is not valid. Reason: Cross event bus replay is not permitted.".into()));
    }
    let (start, end) = (
        request["EventStartTime"].as_f64(),
        request["EventEndTime"].as_f64(),
    );
    if !matches!((start, end), (Some(s), Some(e)) if e > s) {
        return Err(invalid("Parameter EventEndTime is not valid. Reason: EventStartTime must be before EventEndTime.".into()));
    }
    let filters = request["Destination"]["FilterArns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(bad) = filters
        .iter()
        .find(|f| !rule_of_bus(f.as_str().unwrap_or_default(), &bus))
    {
        return Err(invalid(format!(
            "Parameter Destination.FilterArns is not valid. Reason: {bad} is not a rule of event bus {bus}."
        )));
    }
    if state.replays.iter().any(|r| r["ReplayName"] == name) {
        return Err((
            "ResourceAlreadyExistsException",
            format!("Replay {name} already exists."),
        ));
    }
    let arn = source.replace(
        &format!("archive/{archive_name}"),
        &format!("replay/{name}"),
    );
    state.replays.push(request);
    Ok(
        serde_json::json!({ "ReplayArn": arn, "State": "STARTING", "ReplayStartTime": 1_800_000_000 }),
    )
}
