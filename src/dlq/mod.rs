//! Dead-letter messages: a Lambda SQS event or `aws sqs receive-message` output, parsed
//! tolerantly into one [`DeadLetter`] model.
//!
//! Nothing here rejects a record. A body that is not JSON, JSON that is not an event, a
//! missing attribute or a `null` value all become fields of the model, so that every
//! message of a batch yields exactly one record.

mod lenient;

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use lenient::{Lenient, MaybeArrayOf, MaybeObject};

use crate::genesys::ConversationRefs;

/// The message attribute names EventBridge adds to a dead-lettered event.
pub(crate) mod attr {
    /// ARN of the rule whose target failed.
    pub(crate) const RULE_ARN: &str = "RULE_ARN";
    /// ARN of the failed target.
    pub(crate) const TARGET_ARN: &str = "TARGET_ARN";
    /// EventBridge's error class, e.g. `THROTTLING`.
    pub(crate) const ERROR_CODE: &str = "ERROR_CODE";
    /// Free-text description of the failure.
    pub(crate) const ERROR_MESSAGE: &str = "ERROR_MESSAGE";
    /// `MaximumRetryAttempts` or `MaximumEventAgeInSeconds`; absent when not retried.
    pub(crate) const EXHAUSTED_RETRY_CONDITION: &str = "EXHAUSTED_RETRY_CONDITION";
    /// Number of retries made, as a string integer.
    pub(crate) const RETRY_ATTEMPTS: &str = "RETRY_ATTEMPTS";
    /// Every name above.
    pub(crate) const ALL: [&str; 6] = [
        RULE_ARN,
        TARGET_ARN,
        ERROR_CODE,
        ERROR_MESSAGE,
        EXHAUSTED_RETRY_CONDITION,
        RETRY_ATTEMPTS,
    ];
}

/// What kind of body a dead-lettered message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BodyKind {
    /// An EventBridge event whose `source` is a Genesys Cloud partner source.
    GenesysEvent,
    /// An EventBridge event from any other source.
    OtherEvent,
    /// The original polling tool's flat shape (`interactionId`, `eventType`, `timestamp`, `detail`).
    FlatInteraction,
    /// The "Custom Event Bus" failure summary (`busArn` + `failedMessages`, no `detail`).
    CustomBusFailure,
    /// Valid JSON that is not an event.
    NotAnEvent,
    /// Not JSON at all.
    NotJson,
    /// JSON nested deeper than the parser follows (128 levels): not an event anyone sends.
    TooDeep,
}

impl BodyKind {
    /// The camelCase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyKind::GenesysEvent => "genesysEvent",
            BodyKind::OtherEvent => "otherEvent",
            BodyKind::FlatInteraction => "flatInteraction",
            BodyKind::CustomBusFailure => "customBusFailure",
            BodyKind::NotAnEvent => "notAnEvent",
            BodyKind::NotJson => "notJson",
            BodyKind::TooDeep => "tooDeep",
        }
    }

    /// Whether the body is something a consumer could take as an event.
    pub fn is_event(self) -> bool {
        matches!(
            self,
            BodyKind::GenesysEvent | BodyKind::OtherEvent | BodyKind::FlatInteraction
        )
    }
}

/// The failure context EventBridge attached to the message (its six message attributes),
/// trimmed, with empty values as missing. Every field may be missing. The report carries
/// these fields flat in each record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureContext {
    /// `RULE_ARN`.
    pub rule_arn: Option<String>,
    /// `TARGET_ARN`.
    pub target_arn: Option<String>,
    /// `ERROR_CODE`.
    pub error_code: Option<String>,
    /// `ERROR_MESSAGE`.
    pub error_message: Option<String>,
    /// `EXHAUSTED_RETRY_CONDITION`.
    pub exhausted_retry_condition: Option<String>,
    /// `RETRY_ATTEMPTS`, when it is a number.
    pub retry_attempts: Option<u32>,
}

impl FailureContext {
    /// Reads EventBridge's attributes by name through `get` (an attribute map's lookup).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> FailureContext {
        let mut context = FailureContext::default();
        for name in attr::ALL {
            context.set(name, get(name));
        }
        context
    }

    /// Sets the field of attribute `name` from its raw string value; other names are ignored.
    fn set(&mut self, name: &str, value: Option<String>) {
        let value = value
            .map(|s| {
                if s.trim().len() == s.len() {
                    s
                } else {
                    s.trim().to_owned()
                }
            })
            .filter(|s| !s.is_empty());
        match name {
            attr::RULE_ARN => self.rule_arn = value,
            attr::TARGET_ARN => self.target_arn = value,
            attr::ERROR_CODE => self.error_code = value,
            attr::ERROR_MESSAGE => self.error_message = value,
            attr::EXHAUSTED_RETRY_CONDITION => self.exhausted_retry_condition = value,
            attr::RETRY_ATTEMPTS => self.retry_attempts = value.and_then(|s| s.parse().ok()),
            _ => {}
        }
    }

    /// Fills what is missing from `other` (a Custom Event Bus summary's own fields).
    fn or(self, other: FailureContext) -> FailureContext {
        FailureContext {
            rule_arn: self.rule_arn.or(other.rule_arn),
            target_arn: self.target_arn.or(other.target_arn),
            error_code: self.error_code.or(other.error_code),
            error_message: self.error_message.or(other.error_message),
            exhausted_retry_condition: self
                .exhausted_retry_condition
                .or(other.exhausted_retry_condition),
            retry_attempts: self.retry_attempts.or(other.retry_attempts),
        }
    }
}

/// The parts of an event body the triage needs; everything else stays in the raw body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventEnvelope {
    /// EventBridge `id` (or the flat shape's id, if any).
    pub id: Option<String>,
    /// EventBridge `detail-type`, or the flat shape's `eventType`.
    pub detail_type: Option<String>,
    /// EventBridge `source`.
    pub source: Option<String>,
    /// EventBridge `time`, or the flat shape's `timestamp`.
    pub time: Option<String>,
    /// `detail.topicName`: the concrete Genesys topic.
    pub topic_name: Option<String>,
    /// `detail.timestamp`.
    pub detail_timestamp: Option<String>,
    /// `detail.eventBody.conversationId` as text.
    pub body_conversation_id: Option<String>,
    /// `detail.eventBody.id` as text.
    pub body_id: Option<String>,
    /// The flat shape's top-level `interactionId`.
    pub interaction_id: Option<String>,
    /// `detail.metadata.CorrelationId`: the id Genesys Cloud support asks for.
    pub correlation_id: Option<String>,
    /// The top-level `replay-name` EventBridge adds to every event an archive replay
    /// (`StartReplay`) sends: this dead letter is a replayed event that failed again.
    pub replay_name: Option<String>,
}

impl EventEnvelope {
    /// The Genesys conversation this event refers to, lower-cased, or `None`.
    pub fn conversation_id(&self) -> Option<String> {
        crate::genesys::conversation_id(ConversationRefs {
            body_conversation_id: self.body_conversation_id.as_deref(),
            topic_name: self.topic_name.as_deref(),
            body_id: self.body_id.as_deref(),
            interaction_id: self.interaction_id.as_deref(),
        })
    }
}

/// One dead-lettered message, whatever its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The SQS message id (the `itemIdentifier` of a batch failure), or `record-<index>`
    /// for a message that had none.
    pub message_id: String,
    /// Whether `message_id` is the queue's own (it can be named in `batchItemFailures`).
    pub has_queue_id: bool,
    /// `ApproximateReceiveCount`, when present and numeric.
    pub receive_count: Option<u32>,
    /// `SentTimestamp`: when the message entered the DLQ.
    pub sent_at: Option<DateTime<Utc>>,
    /// `MessageGroupId`, on a FIFO queue.
    pub message_group_id: Option<String>,
    /// The queue the message came from (`eventSourceARN`), when known.
    pub source_queue_arn: Option<String>,
    /// The body, byte for byte as SQS delivered it (UTF-8: SQS bodies are text). Shared,
    /// not copied, with the payload written from it.
    pub body: Bytes,
    /// What kind of body it is.
    pub kind: BodyKind,
    /// The parsed envelope, for event bodies.
    pub event: Option<EventEnvelope>,
    /// The failure context from the message attributes (or, for a Custom Event Bus
    /// failure summary without attributes, from the summary itself).
    pub failure: FailureContext,
    /// How many failed events this dead letter stands for: 1, or for a Custom Event Bus
    /// summary the length of its `failedMessages[]`.
    pub event_count: usize,
    /// A Custom Event Bus summary's `failedMessages[].eventId`s.
    pub failed_event_ids: Vec<String>,
}

/// Why a batch document could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Nothing but whitespace: what `aws sqs receive-message` prints for an empty queue.
    #[error(
        "input is empty: nothing to analyse (`aws sqs receive-message` prints nothing when the queue is empty)"
    )]
    Empty,
    /// The document is not valid JSON.
    #[error("input is not valid JSON: {0}")]
    InvalidJson(String),
    /// Valid JSON, but neither shape.
    #[error(
        "input is neither a Lambda SQS event ({{\"Records\": [...]}}) nor `aws sqs receive-message` output ({{\"Messages\": [...]}})"
    )]
    UnknownShape,
}

/// An SQS message as either source spells it, with every field optional and tolerant of
/// `null` or a wrong type.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawMessage {
    #[serde(alias = "MessageId")]
    #[serde(rename = "messageId")]
    message_id: Lenient,
    #[serde(alias = "Body")]
    body: Lenient,
    #[serde(alias = "Attributes")]
    attributes: MaybeObject<RawSystemAttributes>,
    #[serde(alias = "MessageAttributes")]
    #[serde(rename = "messageAttributes")]
    message_attributes: MaybeObject<RawFailureAttributes>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Lenient,
}

/// The system attributes the triage reads; the rest are skipped without allocating.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawSystemAttributes {
    #[serde(rename = "ApproximateReceiveCount")]
    receive_count: Lenient,
    #[serde(rename = "SentTimestamp")]
    sent_timestamp: Lenient,
    #[serde(rename = "MessageGroupId")]
    message_group_id: Lenient,
}

/// EventBridge's message attributes, by name, in either spelling
/// (`{"stringValue": …}` or `{"StringValue": …}`); other attributes are skipped.
#[derive(Debug, Default)]
struct RawFailureAttributes(FailureContext);

impl<'de> Deserialize<'de> for RawFailureAttributes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFailureAttributes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of message attributes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut context = FailureContext::default();
                while let Some(name) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    if attr::ALL.contains(&name.as_ref()) {
                        let value: MaybeObject<RawAttribute> = m.next_value()?;
                        context.set(&name, value.0.and_then(|a| a.string_value.0));
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(RawFailureAttributes(context))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawAttribute {
    #[serde(alias = "StringValue")]
    #[serde(rename = "stringValue")]
    string_value: Lenient,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawDocument {
    #[serde(rename = "Records")]
    records: Option<MaybeArrayOf<MaybeObject<RawMessage>>>,
    #[serde(rename = "Messages")]
    messages: Option<MaybeArrayOf<MaybeObject<RawMessage>>>,
    /// An EventBridge event's (the scheduled sweep's).
    source: Lenient,
    #[serde(rename = "detail-type")]
    detail_type: Lenient,
}

/// Parses a Lambda SQS event (`{"Records": [...]}`) or `aws sqs receive-message` output
/// (`{"Messages": [...]}`) into one [`DeadLetter`] per message.
///
/// A record that is not an object, or has no message id, still yields a record (named
/// `record-<index>`), so nothing is silently dropped.
pub fn parse_batch(input: &[u8]) -> Result<Vec<DeadLetter>, InputError> {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::Empty);
    }
    // serde_json stops at 128 levels of nesting, so no document can exhaust the stack.
    // Validated as UTF-8 once, the document is parsed as text: serde_json then skips the
    // check of every string it decodes (a fifth of the parse). Bytes that are not UTF-8
    // are parsed as bytes, with the same result and error.
    let doc = match std::str::from_utf8(input) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(input),
    }
    .map_err(|e| InputError::InvalidJson(e.to_string()))?;
    from_document(doc)
}

/// A batch deserialized straight into dead letters: the Lambda's event type. Each body
/// moves from the event into its record (the batch is never held twice), and a record of
/// any shape yields a dead letter with the same leniency as [`parse_batch`], where a typed
/// SQS event would fail the whole invocation on one odd field.
#[derive(Debug)]
pub struct DeadLetterBatch(pub Vec<DeadLetter>);

impl<'de> Deserialize<'de> for DeadLetterBatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DeadLetterBatch, D::Error> {
        let doc = MaybeObject::<RawDocument>::deserialize(d)?;
        from_document(doc)
            .map(DeadLetterBatch)
            .map_err(serde::de::Error::custom)
    }
}

/// What the function is invoked with: a batch of dead letters from the SQS event source
/// mapping, or EventBridge's scheduled event (`"source": "aws.events"`, `"detail-type":
/// "Scheduled Event"`), which asks it to resolve the incidents that have gone quiet.
#[derive(Debug)]
pub enum Invocation {
    /// Dead letters.
    Batch(DeadLetterBatch),
    /// The schedule.
    Scheduled,
    /// The daily audit's schedule: the event its rule's `Input` sets, source
    /// `genesys-dlq-triage`, detail-type `DLQ Triage Doctor Run`.
    Doctor,
}

impl<'de> Deserialize<'de> for Invocation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Invocation, D::Error> {
        let doc = MaybeObject::<RawDocument>::deserialize(d)?;
        let scheduled = doc.0.as_ref().is_some_and(|doc| {
            doc.records.is_none()
                && doc.messages.is_none()
                && doc.source.0.as_deref() == Some("aws.events")
                && doc.detail_type.0.as_deref() == Some("Scheduled Event")
        });
        if scheduled {
            return Ok(Invocation::Scheduled);
        }
        let doctor = doc.0.as_ref().is_some_and(|doc| {
            doc.records.is_none()
                && doc.messages.is_none()
                && doc.source.0.as_deref() == Some("genesys-dlq-triage")
                && doc.detail_type.0.as_deref() == Some("DLQ Triage Doctor Run")
        });
        if doctor {
            return Ok(Invocation::Doctor);
        }
        from_document(doc)
            .map(|letters| Invocation::Batch(DeadLetterBatch(letters)))
            .map_err(serde::de::Error::custom)
    }
}

fn from_document(doc: MaybeObject<RawDocument>) -> Result<Vec<DeadLetter>, InputError> {
    let doc = doc.0.ok_or(InputError::UnknownShape)?;
    let messages = match (doc.records, doc.messages) {
        (Some(MaybeArrayOf(Some(r))), _) => r,
        (_, Some(MaybeArrayOf(Some(m)))) => m,
        _ => return Err(InputError::UnknownShape),
    };
    Ok(messages
        .into_iter()
        .enumerate()
        .map(|(index, m)| from_raw(index, m.0.unwrap_or_default()))
        .collect())
}

fn from_raw(index: usize, raw: RawMessage) -> DeadLetter {
    let system = raw.attributes.0.unwrap_or_default();
    DeadLetter::new(
        index,
        raw.message_id.0,
        raw.body.0.unwrap_or_default(),
        SystemAttributes {
            receive_count: system.receive_count.0.as_deref(),
            sent_timestamp: system.sent_timestamp.0.as_deref(),
            message_group_id: system.message_group_id.0.as_deref(),
        },
        raw.message_attributes.0.map(|a| a.0).unwrap_or_default(),
        raw.event_source_arn.0,
    )
}

/// The SQS system attributes the triage uses, as strings (both sources send strings).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemAttributes<'a> {
    /// `ApproximateReceiveCount`.
    pub receive_count: Option<&'a str>,
    /// `SentTimestamp`, epoch milliseconds.
    pub sent_timestamp: Option<&'a str>,
    /// `MessageGroupId` (FIFO queues).
    pub message_group_id: Option<&'a str>,
}

impl DeadLetter {
    /// Builds the model from a message's parts; the body is parsed here. A message without
    /// an id (never from SQS, but possible in a hand-made file) is named `record-<index>`
    /// after its place in the batch, so it still yields a record.
    pub fn new(
        index: usize,
        message_id: Option<String>,
        body: String,
        system: SystemAttributes<'_>,
        failure: FailureContext,
        source_queue_arn: Option<String>,
    ) -> DeadLetter {
        let parsed = parse_body(&body);
        let (event_count, failed_event_ids) = parsed.failed_events.unwrap_or((1, Vec::new()));
        let failure = match parsed.custom_bus {
            Some(summary) => failure.or(summary),
            None => failure,
        };
        let message_id = message_id.filter(|s| !s.is_empty());
        DeadLetter {
            has_queue_id: message_id.is_some(),
            message_id: message_id.unwrap_or_else(|| format!("record-{index}")),
            receive_count: system.receive_count.and_then(|s| s.trim().parse().ok()),
            sent_at: system
                .sent_timestamp
                .and_then(|s| s.trim().parse::<i64>().ok())
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
            message_group_id: system
                .message_group_id
                .filter(|g| !g.is_empty())
                .map(str::to_owned),
            source_queue_arn,
            body: Bytes::from(body),
            kind: parsed.kind,
            event: parsed.event,
            failure,
            event_count,
            failed_event_ids,
        }
    }
}

/// What parsing a body found.
struct ParsedBody {
    kind: BodyKind,
    event: Option<EventEnvelope>,
    custom_bus: Option<FailureContext>,
    /// A Custom Event Bus summary's `failedMessages[]`: how many, and their `eventId`s.
    failed_events: Option<(usize, Vec<String>)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawBody {
    id: Lenient,
    #[serde(rename = "detail-type")]
    detail_type: Lenient,
    source: Lenient,
    time: Lenient,
    detail: Option<MaybeObject<RawDetail>>,
    // The original tool's flat shape.
    #[serde(rename = "interactionId")]
    interaction_id: Lenient,
    #[serde(rename = "eventType")]
    event_type: Lenient,
    timestamp: Lenient,
    // The Custom Event Bus failure summary.
    #[serde(rename = "busArn")]
    bus_arn: Option<IgnoredAny>,
    #[serde(rename = "failedMessages")]
    failed_messages: Option<serde_json::Value>,
    #[serde(rename = "targetArn")]
    target_arn: Lenient,
    #[serde(rename = "errorCode")]
    error_code: Lenient,
    #[serde(rename = "errorMessage")]
    error_message: Lenient,
    #[serde(rename = "exhaustedRetryCondition")]
    exhausted_retry_condition: Lenient,
    #[serde(rename = "retryAttempts")]
    retry_attempts: Lenient,
    /// Added by EventBridge to the events an archive replay sends.
    #[serde(rename = "replay-name")]
    replay_name: Lenient,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawDetail {
    #[serde(rename = "topicName")]
    topic_name: Lenient,
    timestamp: Lenient,
    #[serde(rename = "eventBody")]
    event_body: MaybeObject<RawEventBody>,
    metadata: MaybeObject<RawMetadata>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawMetadata {
    #[serde(rename = "CorrelationId")]
    correlation_id: Lenient,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawEventBody {
    #[serde(rename = "conversationId")]
    conversation_id: Lenient,
    id: Lenient,
}

/// A Custom Event Bus failure summary: it stands for every event in its
/// `failedMessages[]` (at least itself), and carries the failure's attributes in its body.
fn custom_bus_failure(raw: RawBody) -> ParsedBody {
    let failed = match &raw.failed_messages {
        Some(serde_json::Value::Array(items)) => items.as_slice(),
        _ => &[],
    };
    let ids = failed
        .iter()
        .filter_map(|m| m.get("eventId").and_then(serde_json::Value::as_str))
        .map(str::to_owned)
        .collect();
    ParsedBody {
        kind: BodyKind::CustomBusFailure,
        failed_events: Some((failed.len().max(1), ids)),
        event: None,
        custom_bus: Some(FailureContext {
            rule_arn: None,
            target_arn: raw.target_arn.0,
            error_code: raw.error_code.0,
            error_message: raw.error_message.0,
            exhausted_retry_condition: raw.exhausted_retry_condition.0,
            retry_attempts: raw.retry_attempts.0.and_then(|s| s.parse().ok()),
        }),
    }
}

/// What a message body is, and the event in it when it is one. Never fails: a body of any
/// shape is a kind.
fn parse_body(body: &str) -> ParsedBody {
    let not = |kind| ParsedBody {
        kind,
        event: None,
        custom_bus: None,
        failed_events: None,
    };
    // serde_json's recursion limit (128 levels) bounds the stack whatever the body: a body
    // nested deeper is a record of its own kind, never a crash of the batch.
    let raw: MaybeObject<RawBody> = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => {
            return not(BodyKind::TooDeep);
        }
        Err(_) => return not(BodyKind::NotJson),
    };
    let Some(raw) = raw.0 else {
        return not(BodyKind::NotAnEvent);
    };
    let has_detail = raw.detail.is_some();
    if raw.bus_arn.is_some() && raw.failed_messages.is_some() && !has_detail {
        return custom_bus_failure(raw);
    }
    let detail = raw.detail.and_then(|d| d.0).unwrap_or_default();
    let event_body = detail.event_body.0.unwrap_or_default();
    let metadata = detail.metadata.0.unwrap_or_default();
    let is_eventbridge = raw.detail_type.0.is_some() && (raw.source.0.is_some() || has_detail);
    let is_flat = !is_eventbridge && (raw.interaction_id.0.is_some() || raw.event_type.0.is_some());
    let kind = if is_eventbridge {
        let genesys = raw
            .source
            .0
            .as_deref()
            .is_some_and(crate::genesys::is_genesys_source);
        if genesys {
            BodyKind::GenesysEvent
        } else {
            BodyKind::OtherEvent
        }
    } else if is_flat {
        BodyKind::FlatInteraction
    } else {
        return not(BodyKind::NotAnEvent);
    };
    let event = EventEnvelope {
        id: raw.id.0,
        detail_type: raw.detail_type.0.or(raw.event_type.0),
        source: raw.source.0,
        time: raw.time.0.or(raw.timestamp.0),
        topic_name: detail.topic_name.0,
        detail_timestamp: detail.timestamp.0,
        body_conversation_id: event_body.conversation_id.0,
        body_id: event_body.id.0,
        interaction_id: raw.interaction_id.0,
        correlation_id: metadata.correlation_id.0,
        replay_name: raw.replay_name.0.filter(|n| !n.is_empty()),
    };
    ParsedBody {
        kind,
        event: Some(event),
        custom_bus: None,
        failed_events: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENESYS_BODY: &str = r#"{"version":"0","id":"6efd5506-3fd6-09a1-5599-09ae48bd6dd8","detail-type":"v2.detail.events.conversation.{id}.customer.end","source":"aws.partner/genesys.com/cloud/3a1b/prod-events","account":"111122223333","time":"2025-05-02T10:15:03Z","region":"us-east-1","resources":[],"detail":{"topicName":"v2.detail.events.conversation.0f6a3c52-1b8e-4d2a-9c1e-7f00aa11bb22.customer.end","version":"2","eventBody":{"eventTime":1746180902887,"conversationId":"0f6a3c52-1b8e-4d2a-9c1e-7f00aa11bb22"},"metadata":{"CorrelationId":"d1ab36e9-af51-4b3c-ab96-98d7349e75b4"},"timestamp":"2025-05-02T10:15:02.887Z"}}"#;

    fn lambda_event(body: &str, attrs: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"Records": [{
            "messageId": "5b0a1d2e-8f34-4c1e-9a77-0c2d9e6f1a10",
            "receiptHandle": "AQEB",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1746266103177"},
            "messageAttributes": attrs,
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:dlq",
        }]}))
        .unwrap()
    }

    fn one(input: &[u8]) -> DeadLetter {
        let mut all = parse_batch(input).unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn a_replayed_events_replay_name_is_read_and_an_original_has_none() {
        let replayed = GENESYS_BODY.replacen(
            r#""region":"us-east-1","#,
            r#""region":"us-east-1","replay-name":"dlq-recover-crm-20250502T1010-20250502T1020","#,
            1,
        );
        let parsed = parse_body(&replayed);
        assert_eq!(parsed.kind, BodyKind::GenesysEvent);
        assert_eq!(
            parsed.event.unwrap().replay_name.as_deref(),
            Some("dlq-recover-crm-20250502T1010-20250502T1020")
        );
        assert_eq!(parse_body(GENESYS_BODY).event.unwrap().replay_name, None);
        // A `replay-name` of the wrong type costs nothing but the name.
        let odd = GENESYS_BODY.replacen(
            r#""region":"us-east-1","#,
            r#""region":"us-east-1","replay-name":{"x":1},"#,
            1,
        );
        let parsed = parse_body(&odd);
        assert_eq!(parsed.kind, BodyKind::GenesysEvent);
        assert_eq!(parsed.event.unwrap().replay_name, None);
    }

    #[test]
    fn parses_a_lambda_record_with_camel_case_attributes() {
        let l = one(&lambda_event(
            GENESYS_BODY,
            serde_json::json!({
                "ERROR_CODE": {"stringValue": "UNKNOWN", "dataType": "String"},
                "RETRY_ATTEMPTS": {"stringValue": "129", "dataType": "String"},
                "TARGET_ARN": {"stringValue": "arn:aws:events:us-east-1:1:api-destination/x/y", "dataType": "String"},
            }),
        ));
        assert_eq!(l.message_id, "5b0a1d2e-8f34-4c1e-9a77-0c2d9e6f1a10");
        assert_eq!(l.receive_count, Some(2));
        assert_eq!(l.sent_at.unwrap().timestamp_millis(), 1746266103177);
        assert_eq!(
            l.source_queue_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:111122223333:dlq")
        );
        assert_eq!(l.kind, BodyKind::GenesysEvent);
        assert_eq!(l.body, GENESYS_BODY);
        assert_eq!(l.failure.error_code.as_deref(), Some("UNKNOWN"));
        assert_eq!(l.failure.retry_attempts, Some(129));
        assert_eq!(l.failure.rule_arn, None);
        let e = l.event.unwrap();
        assert_eq!(
            e.detail_type.as_deref(),
            Some("v2.detail.events.conversation.{id}.customer.end")
        );
        assert_eq!(
            e.body_conversation_id.as_deref(),
            Some("0f6a3c52-1b8e-4d2a-9c1e-7f00aa11bb22")
        );
    }

    #[test]
    fn parses_receive_message_output_with_pascal_case_attributes() {
        let input = serde_json::json!({"Messages": [{
            "MessageId": "m-1", "ReceiptHandle": "r", "Body": GENESYS_BODY,
            "Attributes": {"ApproximateReceiveCount": "3"},
            "MessageAttributes": {"ERROR_CODE": {"StringValue": "THROTTLING", "DataType": "String"}}
        }]});
        let l = one(&serde_json::to_vec(&input).unwrap());
        assert_eq!(l.message_id, "m-1");
        assert_eq!(l.receive_count, Some(3));
        assert_eq!(l.failure.error_code.as_deref(), Some("THROTTLING"));
        assert_eq!(l.kind, BodyKind::GenesysEvent);
    }

    #[test]
    fn null_and_odd_attribute_values_are_missing_not_fatal() {
        let l = one(&lambda_event(
            GENESYS_BODY,
            serde_json::json!({
                "ERROR_CODE": {"stringValue": null, "dataType": "String"},
                "ERROR_MESSAGE": null,
                "RETRY_ATTEMPTS": {"stringValue": "many"},
                "RULE_ARN": {"stringValue": 42},
                "TARGET_ARN": "not an object",
            }),
        ));
        assert_eq!(l.failure.error_code, None);
        assert_eq!(l.failure.error_message, None);
        assert_eq!(l.failure.retry_attempts, None);
        assert_eq!(l.failure.rule_arn.as_deref(), Some("42"));
        assert_eq!(l.failure.target_arn, None);
    }

    #[test]
    fn body_kinds_are_recognised() {
        let cases = [
            (GENESYS_BODY.to_owned(), BodyKind::GenesysEvent),
            (r#"{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events","detail":{}}"#.into(), BodyKind::OtherEvent),
            (r#"{"interactionId":"0f6a3c52-1b8e-4d2a-9c1e-7f00aa11bb22","eventType":"x","timestamp":"t","detail":{}}"#.into(), BodyKind::FlatInteraction),
            (r#"{"version":"1.0","busArn":"arn:b","targetArn":"arn:t","errorCode":"ACCESS_DENIED","failedMessages":[]}"#.into(), BodyKind::CustomBusFailure),
            (r#"{"hello":"world"}"#.into(), BodyKind::NotAnEvent),
            ("[1,2,3]".into(), BodyKind::NotAnEvent),
            ("\"just a string\"".into(), BodyKind::NotAnEvent),
            ("null".into(), BodyKind::NotAnEvent),
            ("not json {".into(), BodyKind::NotJson),
            ("".into(), BodyKind::NotJson),
        ];
        for (body, want) in cases {
            let l = one(&lambda_event(&body, serde_json::json!({})));
            assert_eq!(l.kind, want, "{body}");
            assert_eq!(l.body, body, "the body is kept byte for byte");
        }
    }

    #[test]
    fn a_detail_of_the_wrong_type_does_not_hide_the_event() {
        let body = r#"{"detail-type":"v2.x","source":"aws.partner/genesys.com/cloud/o/s","detail":"oops","id":7}"#;
        let l = one(&lambda_event(body, serde_json::json!({})));
        assert_eq!(l.kind, BodyKind::GenesysEvent);
        assert_eq!(l.event.unwrap().id.as_deref(), Some("7"));
    }

    #[test]
    fn a_custom_bus_summary_supplies_the_failure_context() {
        let body = r#"{"version":"1.0","busArn":"arn:b","targetArn":"arn:t","errorCode":"ACCESS_DENIED","errorMessage":"denied","retryAttempts":4,"failedMessages":[{"eventId":"e"}]}"#;
        let l = one(&lambda_event(body, serde_json::json!({})));
        assert_eq!(l.failure.target_arn.as_deref(), Some("arn:t"));
        assert_eq!(l.failure.error_code.as_deref(), Some("ACCESS_DENIED"));
        assert_eq!(l.failure.retry_attempts, Some(4));
        assert_eq!(
            (l.event_count, l.failed_event_ids.clone()),
            (1, vec!["e".to_owned()])
        );
    }

    #[test]
    fn a_custom_bus_summary_stands_for_every_failed_message() {
        // The shape AWS documents for a Custom Event Bus target's dead letter.
        let body = r#"{"version":"1.0","busArn":"arn:b","targetArn":"arn:t","errorCode":"ACCESS_DENIED","failedMessages":[{"eventId":"e1","eventGroupId":null},{"eventId":"e2"},{"noId":true}]}"#;
        let l = one(&lambda_event(body, serde_json::json!({})));
        assert_eq!(l.event_count, 3);
        assert_eq!(l.failed_event_ids, ["e1", "e2"]);
        // An empty or malformed list still stands for the summary itself.
        for failed in ["[]", "\"x\"", "null"] {
            let body = format!(r#"{{"busArn":"arn:b","failedMessages":{failed}}}"#);
            let l = one(&lambda_event(&body, serde_json::json!({})));
            assert_eq!(l.event_count, 1, "{failed}");
        }
        let plain = one(&lambda_event(
            r#"{"detail-type":"x","source":"s","detail":{}}"#,
            serde_json::json!({}),
        ));
        assert_eq!(plain.event_count, 1);
    }

    /// The batch as serde_json reads bytes, checking each string as UTF-8 on its own.
    fn parsed_as_bytes(input: &[u8]) -> Result<Vec<DeadLetter>, String> {
        serde_json::from_slice(input)
            .map_err(|e| InputError::InvalidJson(e.to_string()))
            .and_then(from_document)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn text_and_bytes_parse_alike_valid_or_not() {
        let body = |b: &str| lambda_event(b, serde_json::json!({}));
        let mut inputs = vec![
            body(GENESYS_BODY),
            body("\n\t\\ \"q\" 日本 é 😀"),
            br#"{"Records": [{"messageId": "\u0041", "body": "caf\u00e9 \ud83d\ude00 \"x\" \/"}]}"#
                .to_vec(),
            br#"{"Records": [{"messageId": "a", "body": "\ud800 lone"}]}"#.to_vec(),
            br#"{"Records": [{"messageId": "a", "body": "\ud800"}]}"#.to_vec(),
            br#"{"Messages": [{"MessageId": "m", "Body": "x"}], "Records": 5}"#.to_vec(),
            br#"{"Records": [], "Records": []}"#.to_vec(),
            br#"{"Records": [{"messageId": "a", "body": "x"}] "#.to_vec(),
        ];
        // Bytes that are not UTF-8, in a body and in a field nobody reads.
        let mut bad = body("ok");
        let at = bad.windows(2).position(|w| w == b"ok").unwrap();
        bad[at] = 0xff;
        inputs.push(bad);
        let mut bad = body("ok");
        let at = bad.windows(4).position(|w| w == b"AQEB").unwrap();
        bad[at] = 0xc3;
        inputs.push(bad);
        for input in inputs {
            assert_eq!(
                parse_batch(&input).map_err(|e| e.to_string()),
                parsed_as_bytes(&input),
                "{}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    #[test]
    fn a_long_batch_keeps_each_record_at_its_index() {
        let count = 901;
        let records: Vec<serde_json::Value> = (0..count)
            .map(|i| match i % 5 {
                // No id: named after its place in the batch.
                0 => serde_json::json!({"body": format!("b{i}")}),
                // Not an object at all: still a record.
                1 => serde_json::json!(i),
                _ => serde_json::json!({"messageId": format!("m{i}"), "body": GENESYS_BODY}),
            })
            .collect();
        let input = serde_json::to_vec(&serde_json::json!({"Records": records})).unwrap();
        let letters = parse_batch(&input).unwrap();
        assert_eq!(letters.len(), count);
        for (i, l) in letters.iter().enumerate() {
            match i % 5 {
                0 => {
                    assert_eq!(l.message_id, format!("record-{i}"));
                    assert_eq!(l.body, format!("b{i}"));
                }
                1 => assert_eq!(l.message_id, format!("record-{i}")),
                _ => {
                    assert_eq!(l.message_id, format!("m{i}"));
                    assert_eq!(l.kind, BodyKind::GenesysEvent);
                }
            }
        }
        // The same records one by one, each in a batch of its own, are made alike.
        for i in [0, 2, 128, 388, count - 1] {
            let alone = serde_json::json!({"Records": [records[i].clone()]});
            let mut one = parse_batch(&serde_json::to_vec(&alone).unwrap()).unwrap();
            let mut expected = one.remove(0);
            if expected.message_id == "record-0" {
                expected.message_id = format!("record-{i}");
            }
            assert_eq!(letters[i], expected, "record {i}");
        }
    }

    #[test]
    fn a_long_batch_that_breaks_off_is_not_json() {
        let records: Vec<serde_json::Value> = (0..384)
            .map(|i| serde_json::json!({"messageId": format!("m{i}"), "body": "x"}))
            .collect();
        let mut input = serde_json::to_vec(&serde_json::json!({"Records": records})).unwrap();
        input.truncate(input.len() - 40);
        assert!(matches!(
            parse_batch(&input),
            Err(InputError::InvalidJson(_))
        ));
    }

    #[test]
    fn records_without_ids_or_of_the_wrong_type_still_yield_records() {
        let input = br#"{"Records": [{"body": "x"}, 5, null, {"messageId": "", "body": 12}]}"#;
        let all = parse_batch(input).unwrap();
        let ids: Vec<&str> = all.iter().map(|l| l.message_id.as_str()).collect();
        assert_eq!(ids, ["record-0", "record-1", "record-2", "record-3"]);
        assert_eq!(all[3].body, "12");
    }

    #[test]
    fn empty_or_blank_input_is_its_own_error() {
        for input in [&b""[..], b"\n", b" \r\n\t"] {
            assert!(matches!(parse_batch(input), Err(InputError::Empty)));
        }
        assert!(matches!(
            parse_batch(b" x"),
            Err(InputError::InvalidJson(_))
        ));
    }

    #[test]
    fn documents_of_neither_shape_are_errors() {
        assert!(matches!(
            parse_batch(b"{nope"),
            Err(InputError::InvalidJson(_))
        ));
        assert!(matches!(parse_batch(b"[]"), Err(InputError::UnknownShape)));
        assert!(matches!(
            parse_batch(br#"{"Items": []}"#),
            Err(InputError::UnknownShape)
        ));
        assert!(matches!(
            parse_batch(br#"{"Records": "x"}"#),
            Err(InputError::UnknownShape)
        ));
        assert_eq!(parse_batch(br#"{"Records": []}"#).unwrap().len(), 0);
    }
}
