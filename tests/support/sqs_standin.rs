//! An in-memory SQS for throughput work and fault injection: a server on 127.0.0.1 that
//! speaks the JSON protocol the AWS SDK uses (`POST /`, `X-Amz-Target: AmazonSQS.<Op>`,
//! `application/x-amz-json-1.0`), so `dlq-triage poll` and the SDK reach it through
//! `AWS_ENDPOINT_URL` exactly as they reach SQS.
//!
//! moto scans every message of a queue on each call, so it cannot show how fast a drain
//! goes; this stand-in answers in constant time per message, after a configurable latency
//! per call. It keeps what a drain depends on:
//!
//! - `ReceiveMessage` of up to 10 visible messages, oldest first, hiding them for the
//!   request's `VisibilityTimeout` (or the queue's 30 s); long polling up to
//!   `WaitTimeSeconds`; `ApproximateReceiveCount`, `SentTimestamp`,
//!   `ApproximateFirstReceiveTimestamp` and every message attribute.
//! - A new receipt handle on every receive. As SQS documents for `DeleteMessage`, a handle
//!   from an earlier receive "succeeds, but the message will not be deleted"; a visibility
//!   change with it fails its entry with `InvalidParameterValue` ("The receipt handle has
//!   expired"); a handle that was never issued fails with `ReceiptHandleIsInvalid`.
//!   Deleting again with the handle that deleted a message succeeds.
//! - `DeleteMessageBatch`, `ChangeMessageVisibilityBatch` (0 makes a message visible at
//!   once), `SendMessageBatch`, `GetQueueAttributes` (`QueueArn` and the approximate counts).
//! - Errors as SQS's JSON protocol gives them: HTTP 400 with
//!   `{"__type": "com.amazonaws.sqs#Code", "message": …}` and the
//!   `x-amzn-query-error: Code;Sender` header the SDK reads the error code from.
//!
//! Faults are injected per call ([`Faults`]): throttling (`RequestThrottled`, which the
//! SDK retries with backoff), a failed entry in a batch (`InternalError`, not the sender's
//! fault, which the caller retries), and a dropped connection (the call is carried out and
//! its answer lost: the connection closes without a response). Every injected fault is
//! counted ([`Counters`]).
//!
//! Standard queues only: FIFO's message groups are not modelled (the FIFO tests use moto).

use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The account id in every queue URL and ARN.
const ACCOUNT: &str = "000000000000";

/// Faults injected into calls, as fractions (0.0–1.0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Calls answered `RequestThrottled` (HTTP 400) without being carried out.
    pub throttle: f64,
    /// Entries of a delete or visibility batch that fail with `InternalError`
    /// (`SenderFault: false`) without being carried out. The fault is transient, as
    /// SQS's are: the next entry with the same receipt handle is carried out (unless
    /// `entries_keep_failing`).
    pub failed_entry: f64,
    /// A receipt handle whose entry failed fails in every later batch too.
    pub entries_keep_failing: bool,
    /// Calls carried out whose connection is then closed without an answer.
    pub drop: f64,
}

/// What the stand-in was asked and what it injected.
#[derive(Debug, Default)]
pub struct Counters {
    /// Every call, faults included.
    pub calls: AtomicU64,
    /// `ReceiveMessage` calls.
    pub receives: AtomicU64,
    /// Messages handed out by receives (a message received twice counts twice).
    pub received: AtomicU64,
    /// Messages deleted.
    pub deleted: AtomicU64,
    /// Delete entries with a handle from an earlier receive: "succeeded", deleted nothing.
    pub stale_deletes: AtomicU64,
    /// Calls answered with `RequestThrottled`.
    pub throttled: AtomicU64,
    /// Batch entries failed with `InternalError`.
    pub failed_entries: AtomicU64,
    /// Calls whose answer was dropped.
    pub dropped: AtomicU64,
    /// Calls being answered now.
    pub in_flight: AtomicU64,
    /// The most calls ever answered at once.
    pub most_in_flight: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// A counter's value now.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One message.
#[derive(Debug)]
struct Message {
    body: String,
    attributes: Value,
    sent_ms: u128,
    first_receive_ms: Option<u128>,
    receive_count: u32,
    /// Bumped on each receive; a handle names the generation it was issued for.
    generation: u64,
    /// When it becomes visible again, while in flight.
    hidden_until: Option<Instant>,
    /// The generation whose handle deleted it.
    deleted_by: Option<u64>,
}

/// A queue: messages by id, the visible ones in order, the hidden ones by deadline.
#[derive(Debug, Default)]
struct Queue {
    messages: HashMap<String, Message>,
    visible: VecDeque<String>,
    /// (when it becomes visible, id, generation); stale entries are skipped.
    hidden: BinaryHeap<std::cmp::Reverse<(Instant, String, u64)>>,
    in_flight: u64,
    next_id: u64,
}

impl Queue {
    /// Makes visible every hidden message whose timeout lapsed.
    fn wake(&mut self, now: Instant) {
        while let Some(std::cmp::Reverse((at, _, _))) = self.hidden.peek() {
            if *at > now {
                break;
            }
            let std::cmp::Reverse((at, id, generation)) = self.hidden.pop().expect("peeked");
            // An entry whose message was deleted, received again, or given another
            // timeout since is skipped.
            if let Some(m) = self.messages.get_mut(&id)
                && m.deleted_by.is_none()
                && m.generation == generation
                && m.hidden_until == Some(at)
            {
                m.hidden_until = None;
                self.in_flight -= 1;
                self.visible.push_back(id);
            }
        }
    }

    fn hide(&mut self, id: &str, until: Instant) {
        let m = self.messages.get_mut(id).expect("a held message");
        if m.hidden_until.is_none() {
            self.in_flight += 1;
        }
        m.hidden_until = Some(until);
        self.hidden
            .push(std::cmp::Reverse((until, id.to_owned(), m.generation)));
    }
}

/// The server's state.
#[derive(Debug)]
struct State {
    queues: Mutex<HashMap<String, Queue>>,
    latency_us: AtomicU64,
    faults: Mutex<Faults>,
    /// Receipt handles whose last entry failed with `InternalError`.
    failed_handles: Mutex<HashSet<String>>,
    counters: Counters,
}

/// The running stand-in. Dropping it stops the server.
pub struct SqsStandIn {
    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SqsStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl SqsStandIn {
    /// Starts a stand-in on a free port of 127.0.0.1 that answers every call after
    /// `latency`.
    pub async fn start(latency: Duration) -> SqsStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(State {
            queues: Mutex::new(HashMap::new()),
            latency_us: AtomicU64::new(latency.as_micros() as u64),
            faults: Mutex::new(Faults::default()),
            failed_handles: Mutex::new(HashSet::new()),
            counters: Counters::default(),
        });
        let serving = state.clone();
        let server = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                tokio::spawn(serve_connection(socket, serving.clone()));
            }
        });
        SqsStandIn {
            endpoint,
            state,
            server,
        }
    }

    /// Creates an empty standard queue; returns its URL.
    pub fn create_queue(&self, name: &str) -> String {
        self.state
            .queues
            .lock()
            .unwrap()
            .insert(name.to_owned(), Queue::default());
        format!("{}/{ACCOUNT}/{name}", self.endpoint)
    }

    /// SDK configuration for this server with test credentials.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        crate::local_sdk(&self.endpoint, "testing", "testing").await
    }

    /// A queue created here, with a client for it (fill it with [`crate::sqs::Queue::send`]).
    pub async fn queue(&self, name: &str) -> crate::sqs::Queue {
        crate::sqs::Queue {
            client: aws_sdk_sqs::Client::new(&self.sdk().await),
            url: self.create_queue(name),
        }
    }

    /// Adds messages (body, String message attributes) straight into a queue, with no
    /// latency or faults: for filling a queue quickly. Returns their ids, in order.
    pub fn fill(&self, url: &str, messages: &[(String, Vec<(String, String)>)]) -> Vec<String> {
        let mut queues = self.state.queues.lock().unwrap();
        let queue = queues
            .get_mut(queue_name(url))
            .expect("a queue created here");
        messages
            .iter()
            .map(|(body, attributes)| {
                let attributes = attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), json!({"DataType": "String", "StringValue": v})))
                    .collect();
                add(queue, body.clone(), Value::Object(attributes))
            })
            .collect()
    }

    /// Sets the latency of every call from now on.
    pub fn set_latency(&self, latency: Duration) {
        self.state
            .latency_us
            .store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Sets the faults injected from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
    }

    /// What was asked and injected so far.
    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    /// (visible, in flight) of a queue, exactly.
    pub fn depth(&self, url: &str) -> (u64, u64) {
        let mut queues = self.state.queues.lock().unwrap();
        let queue = queues
            .get_mut(queue_name(url))
            .expect("a queue created here");
        queue.wake(Instant::now());
        (queue.visible.len() as u64, queue.in_flight)
    }

    /// The bodies of the messages still in a queue (deleted or not yet), by message id.
    pub fn remaining(&self, url: &str) -> HashMap<String, String> {
        let queues = self.state.queues.lock().unwrap();
        queues[queue_name(url)]
            .messages
            .iter()
            .filter(|(_, m)| m.deleted_by.is_none())
            .map(|(id, m)| (id.clone(), m.body.clone()))
            .collect()
    }

    /// How many times each message was received, by id.
    pub fn receive_counts(&self, url: &str) -> HashMap<String, u32> {
        let queues = self.state.queues.lock().unwrap();
        queues[queue_name(url)]
            .messages
            .iter()
            .map(|(id, m)| (id.clone(), m.receive_count))
            .collect()
    }
}

fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default()
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

fn add(queue: &mut Queue, body: String, attributes: Value) -> String {
    queue.next_id += 1;
    let n = queue.next_id;
    // Shaped like SQS's ids (a UUID), unique within the server's queues.
    let id = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        fastrand::u32(..),
        (n >> 32) & 0xffff,
        fastrand::u16(..0x1000),
        fastrand::u16(..0x1000),
        n & 0xffff_ffff_ffff
    );
    queue.messages.insert(
        id.clone(),
        Message {
            body,
            attributes,
            sent_ms: now_ms(),
            first_receive_ms: None,
            receive_count: 0,
            generation: 0,
            hidden_until: None,
            deleted_by: None,
        },
    );
    queue.visible.push_back(id.clone());
    id
}

/// One HTTP/1.1 connection: requests one after the other (the SDK does not pipeline).
async fn serve_connection(mut socket: TcpStream, state: Arc<State>) {
    let mut buffer: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let Some((head_end, content_length, target, close)) =
            read_head(&mut socket, &mut buffer).await
        else {
            return;
        };
        while buffer.len() < head_end + content_length {
            let mut chunk = [0u8; 16384];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buffer[head_end..head_end + content_length].to_vec();
        buffer.drain(..head_end + content_length);

        let now = state.counters.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        state
            .counters
            .most_in_flight
            .fetch_max(now, Ordering::Relaxed);
        let latency = Duration::from_micros(state.latency_us.load(Ordering::Relaxed));
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let faults = *state.faults.lock().unwrap();
        Counters::bump(&state.counters.calls, 1);
        let operation = target.strip_prefix("AmazonSQS.").unwrap_or_default();
        let (status, answer, query_error) = if fastrand::f64() < faults.throttle {
            Counters::bump(&state.counters.throttled, 1);
            error(
                "RequestThrottled",
                "Rate exceeded",
                "RequestThrottled;Sender",
            )
        } else {
            match serde_json::from_slice::<Value>(&body) {
                Ok(request) => answer(&state, operation, &request, faults).await,
                Err(e) => error(
                    "InvalidParameterValue",
                    &format!("the body is not JSON: {e}"),
                    "InvalidParameterValue;Sender",
                ),
            }
        };
        state.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        if fastrand::f64() < faults.drop {
            Counters::bump(&state.counters.dropped, 1);
            return;
        }
        let text = answer.to_string();
        let mut response = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nx-amzn-requestid: {:016x}\r\n",
            if status == 200 { "OK" } else { "Bad Request" },
            text.len(),
            fastrand::u64(..)
        );
        if let Some(q) = query_error {
            response.push_str(&format!("x-amzn-query-error: {q}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&text);
        if socket.write_all(response.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

/// Reads up to the end of a request's head; (where the body starts, its length, the
/// `X-Amz-Target`, whether the client asked to close). `None` when the connection ended.
async fn read_head(
    socket: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> Option<(usize, usize, String, bool)> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let mut content_length = 0;
            let mut target = String::new();
            let mut close = false;
            for line in head.lines().skip(1) {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.parse().unwrap_or(0),
                    "x-amz-target" => target = value.to_owned(),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
            return Some((end + 4, content_length, target, close));
        }
        let mut chunk = [0u8; 16384];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

type Answer = (u16, Value, Option<&'static str>);

fn error(code: &str, message: &str, query_error: &'static str) -> Answer {
    (
        400,
        json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": message}),
        Some(query_error),
    )
}

/// Answers one call; a receive that finds nothing waits (long polling) up to its
/// `WaitTimeSeconds` for a message to become visible.
async fn answer(state: &State, operation: &str, request: &Value, faults: Faults) -> Answer {
    let wait = Duration::from_secs(request["WaitTimeSeconds"].as_u64().unwrap_or(0).min(20));
    let deadline = Instant::now() + wait;
    loop {
        let answer = handle(state, operation, request, faults);
        let empty = operation == "ReceiveMessage"
            && answer.1["Messages"].as_array().is_some_and(Vec::is_empty);
        if !empty || Instant::now() >= deadline {
            return answer;
        }
        // The stand-in polls its own memory; 10 ms is well inside any client's patience.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn handle(state: &State, operation: &str, request: &Value, faults: Faults) -> Answer {
    let url = request["QueueUrl"].as_str().unwrap_or_default();
    let mut queues = state.queues.lock().unwrap();
    let Some(queue) = queues.get_mut(queue_name(url)) else {
        return error(
            "QueueDoesNotExist",
            "The specified queue does not exist.",
            "AWS.SimpleQueueService.NonExistentQueue;Sender",
        );
    };
    let now = Instant::now();
    queue.wake(now);
    match operation {
        "ReceiveMessage" => receive(state, queue, request, now),
        "DeleteMessageBatch" => batch(state, queue, request, faults, |queue, _, handle| {
            delete(state, queue, handle)
        }),
        "ChangeMessageVisibilityBatch" => {
            batch(state, queue, request, faults, |queue, entry, handle| {
                let seconds = entry["VisibilityTimeout"].as_u64().unwrap_or(0);
                change_visibility(queue, handle, Duration::from_secs(seconds), now)
            })
        }
        "SendMessageBatch" => send(queue, request),
        "GetQueueAttributes" => (
            200,
            json!({"Attributes": {
                "QueueArn": format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{}", queue_name(url)),
                "ApproximateNumberOfMessages": queue.visible.len().to_string(),
                "ApproximateNumberOfMessagesNotVisible": queue.in_flight.to_string(),
                "ApproximateNumberOfMessagesDelayed": "0",
                "VisibilityTimeout": "30",
            }}),
            None,
        ),
        other => error(
            "UnsupportedOperation",
            &format!("the stand-in does not answer {other:?}"),
            "AWS.SimpleQueueService.UnsupportedOperation;Sender",
        ),
    }
}

fn receive(state: &State, queue: &mut Queue, request: &Value, now: Instant) -> Answer {
    Counters::bump(&state.counters.receives, 1);
    let max = request["MaxNumberOfMessages"]
        .as_u64()
        .unwrap_or(1)
        .clamp(1, 10) as usize;
    let visibility = Duration::from_secs(request["VisibilityTimeout"].as_u64().unwrap_or(30));
    let mut messages = Vec::new();
    while messages.len() < max {
        let Some(id) = queue.visible.pop_front() else {
            break;
        };
        let m = queue.messages.get_mut(&id).expect("a visible message");
        m.receive_count += 1;
        m.generation += 1;
        let first = *m.first_receive_ms.get_or_insert_with(now_ms);
        let handle = receipt_handle(&id, m.generation);
        messages.push(json!({
            "MessageId": id,
            "ReceiptHandle": handle,
            "Body": m.body,
            "Attributes": {
                "ApproximateReceiveCount": m.receive_count.to_string(),
                "SentTimestamp": m.sent_ms.to_string(),
                "ApproximateFirstReceiveTimestamp": first.to_string(),
                "SenderId": "AIDASTANDIN",
            },
            "MessageAttributes": m.attributes,
        }));
        queue.hide(&id, now + visibility);
    }
    Counters::bump(&state.counters.received, messages.len() as u64);
    (200, json!({ "Messages": messages }), None)
}

/// A receipt handle naming the message and the receive it was issued for, padded to the
/// length of SQS's (opaque, a few hundred characters).
fn receipt_handle(id: &str, generation: u64) -> String {
    let padding: String = (0..10)
        .map(|_| format!("{:016x}", fastrand::u64(..)))
        .collect();
    format!("{id}.{generation}.{padding}")
}

/// The message id and receive a handle names, if it is one this server issued.
fn parse_handle(handle: &str) -> Option<(&str, u64)> {
    let mut parts = handle.splitn(3, '.');
    let id = parts.next()?;
    let generation = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((id, generation))
}

/// What one batch entry came to: `None` done, or (code, message, sender's fault).
type EntryResult = Option<(&'static str, String, bool)>;

/// A batch request's entries; SQS refuses a batch of none or of more than 10.
fn entries(request: &Value) -> Result<Vec<Value>, Answer> {
    match request["Entries"].as_array() {
        Some(entries) if (1..=10).contains(&entries.len()) => Ok(entries.clone()),
        _ => Err(error(
            "TooManyEntriesInBatchRequest",
            "a batch has 1 to 10 entries",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest;Sender",
        )),
    }
}

fn batch(
    state: &State,
    queue: &mut Queue,
    request: &Value,
    faults: Faults,
    mut each: impl FnMut(&mut Queue, &Value, &str) -> EntryResult,
) -> Answer {
    let entries = match entries(request) {
        Ok(entries) => entries,
        Err(refused) => return refused,
    };
    let (mut successful, mut failed) = (Vec::new(), Vec::new());
    for entry in &entries {
        let id = entry["Id"].clone();
        let handle = entry["ReceiptHandle"].as_str().unwrap_or_default();
        let result = if entry_fails(state, handle, faults) {
            Counters::bump(&state.counters.failed_entries, 1);
            Some((
                "InternalError",
                "We encountered an internal error.".to_owned(),
                false,
            ))
        } else {
            each(queue, entry, handle)
        };
        match result {
            None => successful.push(json!({ "Id": id })),
            Some((code, message, sender)) => failed.push(json!({
                "Id": id, "Code": code, "Message": message, "SenderFault": sender
            })),
        }
    }
    (
        200,
        json!({ "Successful": successful, "Failed": failed }),
        None,
    )
}

/// Whether the entry for `handle` fails with `InternalError` this time: a handle that
/// failed last time fails again only with `entries_keep_failing`; another fails by chance.
fn entry_fails(state: &State, handle: &str, faults: Faults) -> bool {
    let mut failed = state.failed_handles.lock().unwrap();
    let fails = if failed.contains(handle) {
        faults.entries_keep_failing
    } else {
        fastrand::f64() < faults.failed_entry
    };
    if fails {
        failed.insert(handle.to_owned());
    } else {
        failed.remove(handle);
    }
    fails
}

fn invalid_handle(handle: &str) -> EntryResult {
    Some((
        "ReceiptHandleIsInvalid",
        format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        true,
    ))
}

/// The id and message a handle was issued for, and the receive it names; the entry's
/// failure when this server never issued it.
fn issued<'h, 'q>(
    queue: &'q mut Queue,
    handle: &'h str,
) -> Result<(&'h str, u64, &'q mut Message), EntryResult> {
    let (id, generation) = parse_handle(handle).ok_or_else(|| invalid_handle(handle))?;
    match queue.messages.get_mut(id) {
        Some(m) if generation > 0 && generation <= m.generation => Ok((id, generation, m)),
        _ => Err(invalid_handle(handle)),
    }
}

fn delete(state: &State, queue: &mut Queue, handle: &str) -> EntryResult {
    let (id, generation, m) = match issued(queue, handle) {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    if m.deleted_by.is_some() {
        return None;
    }
    if generation < m.generation {
        // SQS: with a handle from an earlier receive "the request succeeds, but the
        // message will not be deleted".
        Counters::bump(&state.counters.stale_deletes, 1);
        return None;
    }
    m.deleted_by = Some(generation);
    m.body = String::new();
    if m.hidden_until.take().is_some() {
        queue.in_flight -= 1;
    } else {
        queue.visible.retain(|v| v != id);
    }
    Counters::bump(&state.counters.deleted, 1);
    None
}

fn change_visibility(
    queue: &mut Queue,
    handle: &str,
    visibility: Duration,
    now: Instant,
) -> EntryResult {
    let (id, generation, m) = match issued(queue, handle) {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    if m.deleted_by.is_some() || generation < m.generation {
        return Some((
            "InvalidParameterValue",
            format!(
                "Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
            ),
            true,
        ));
    }
    if m.hidden_until.is_none() {
        return Some((
            "MessageNotInflight",
            "The message referred to isn't in flight.".to_owned(),
            true,
        ));
    }
    if visibility.is_zero() {
        // Visible at once; its heap entry is skipped when it comes due.
        m.hidden_until = None;
        queue.in_flight -= 1;
        queue.visible.push_back(id.to_owned());
    } else {
        queue.hide(id, now + visibility);
    }
    None
}

fn send(queue: &mut Queue, request: &Value) -> Answer {
    let entries = match entries(request) {
        Ok(entries) => entries,
        Err(refused) => return refused,
    };
    let successful: Vec<Value> = entries
        .iter()
        .map(|e| {
            let body = e["MessageBody"].as_str().unwrap_or_default().to_owned();
            let attributes = e
                .get("MessageAttributes")
                .cloned()
                .unwrap_or_else(|| json!({}));
            let id = add(queue, body, attributes);
            json!({ "Id": e["Id"], "MessageId": id, "MD5OfMessageBody": "" })
        })
        .collect();
    (200, json!({ "Successful": successful, "Failed": [] }), None)
}
