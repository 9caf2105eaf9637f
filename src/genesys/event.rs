//! Conversation ids in Genesys Cloud events (the id sources are listed in `docs/contract.md`).
//!
//! Order: `detail.eventBody.conversationId`; for conversation topics the `{id}` segment of
//! `detail.topicName`; for queue and user topics `detail.eventBody.id` (there the topic's
//! `{id}` is a queue or a user, never the conversation); the original tool's flat
//! `interactionId`. Only a canonical UUID counts.

use crate::dlq::EventEnvelope;

/// Where in the topic the conversation id stands, per topic family: (prefix, segment index).
const CONVERSATION_TOPICS: &[(&str, usize)] = &[
    ("v2.conversations.", 2),
    ("v2.detail.events.conversation.", 4),
    ("v2.analytics.conversation.", 3),
];

/// Topic families whose `{id}` is not a conversation, and whose `eventBody` is a
/// conversation object with its id in `id`: (prefix, marker after the `{id}` segment).
const CONVERSATION_OBJECT_TOPICS: &[(&str, &str)] = &[
    ("v2.routing.queues.", "conversations"),
    ("v2.users.", "conversations"),
];

/// The conversation id an event refers to, lower-cased, or `None`.
pub fn conversation_id(event: &EventEnvelope) -> Option<String> {
    if let Some(id) = event
        .body_conversation_id
        .as_deref()
        .and_then(canonical_uuid)
    {
        return Some(id);
    }
    if let Some(topic) = event.topic_name.as_deref() {
        for (prefix, index) in CONVERSATION_TOPICS {
            if topic.starts_with(prefix)
                && let Some(id) = topic.split('.').nth(*index).and_then(canonical_uuid)
            {
                return Some(id);
            }
        }
        let is_object_topic = CONVERSATION_OBJECT_TOPICS.iter().any(|(prefix, marker)| {
            topic.starts_with(prefix)
                && topic[prefix.len()..]
                    .split('.')
                    .nth(1)
                    .is_some_and(|s| s.starts_with(marker))
        });
        if is_object_topic && let Some(id) = event.body_id.as_deref().and_then(canonical_uuid) {
            return Some(id);
        }
    }
    event.interaction_id.as_deref().and_then(canonical_uuid)
}

/// `Some(lower-case)` when `s` is a canonical hyphenated UUID (8-4-4-4-12 hex digits).
pub fn canonical_uuid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let ok = b.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    });
    ok.then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONV: &str = "0f6a3c52-1b8e-4d2a-9c1e-7f00aa11bb22";
    const QUEUE: &str = "6bd25fd5-5c3c-4a44-9f6b-0b0c9e8a1d11";

    fn event(topic: &str) -> EventEnvelope {
        EventEnvelope {
            topic_name: Some(topic.to_owned()),
            ..EventEnvelope::default()
        }
    }

    #[test]
    fn event_body_conversation_id_comes_first() {
        let mut e = event(&format!("v2.conversations.{QUEUE}.transcription"));
        e.body_conversation_id = Some(CONV.to_owned());
        assert_eq!(conversation_id(&e).as_deref(), Some(CONV));
    }

    #[test]
    fn conversation_topics_yield_their_id_segment() {
        for topic in [
            format!("v2.conversations.{CONV}.transcription"),
            format!("v2.detail.events.conversation.{CONV}.customer.end"),
            format!("v2.detail.events.conversation.{CONV}.acd.start"),
            format!("v2.analytics.conversation.{CONV}.metrics"),
        ] {
            assert_eq!(
                conversation_id(&event(&topic)).as_deref(),
                Some(CONV),
                "{topic}"
            );
        }
    }

    #[test]
    fn queue_and_user_topics_never_take_the_topic_id() {
        for topic in [
            format!("v2.routing.queues.{QUEUE}.conversations"),
            format!("v2.routing.queues.{QUEUE}.conversations.calls"),
            format!("v2.users.{QUEUE}.conversations"),
        ] {
            assert_eq!(conversation_id(&event(&topic)), None, "{topic}");
            let mut e = event(&topic);
            e.body_id = Some(CONV.to_owned());
            assert_eq!(conversation_id(&e).as_deref(), Some(CONV), "{topic}");
        }
    }

    #[test]
    fn body_id_counts_only_for_conversation_object_topics() {
        let mut e = event(&format!("v2.users.{QUEUE}.presence"));
        e.body_id = Some(CONV.to_owned());
        assert_eq!(conversation_id(&e), None);
    }

    #[test]
    fn flat_interaction_id_is_the_last_resort() {
        let e = EventEnvelope {
            interaction_id: Some(CONV.to_uppercase()),
            ..EventEnvelope::default()
        };
        assert_eq!(conversation_id(&e).as_deref(), Some(CONV));
    }

    #[test]
    fn only_canonical_uuids_count() {
        for bad in [
            "not-a-uuid",
            "0f6a3c521b8e4d2a9c1e7f00aa11bb22",
            "{0f6a3c52-1b8e-4d2a-9c1e-7f00aa11bb22}",
            "0f6a3c52-1b8e-4d2a-9c1e-7f00aa11bb2g",
            "0f6a3c52-1b8e-4d2a-9c1e-7f00aa11bb22 ",
            "",
        ] {
            assert_eq!(canonical_uuid(bad), None, "{bad:?}");
            let e = EventEnvelope {
                body_conversation_id: Some(bad.to_owned()),
                ..EventEnvelope::default()
            };
            assert_eq!(conversation_id(&e), None, "{bad:?}");
        }
    }

    #[test]
    fn an_invalid_body_id_falls_back_to_the_topic() {
        let mut e = event(&format!(
            "v2.detail.events.conversation.{CONV}.customer.start"
        ));
        e.body_conversation_id = Some("12345".to_owned());
        assert_eq!(conversation_id(&e).as_deref(), Some(CONV));
    }
}
