//! Conversation ids in Genesys Cloud events (the id sources are listed in `docs/contract.md`).
//!
//! Order: `detail.eventBody.conversationId`; then the topic, by [`TOPIC_FAMILIES`] — for
//! conversation topics the `{id}` segment that is the conversation, for queue and user
//! conversation-object topics `detail.eventBody.id` (there the topic's `{id}` is a queue or
//! a user, never the conversation); then the original tool's flat `interactionId`. Only a
//! canonical UUID counts.

/// Where a topic family keeps its conversation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    /// The topic segment at this index (0-based, split on `.`).
    TopicSegment(usize),
    /// `detail.eventBody.id`: the event body is a conversation object.
    BodyId,
}

/// The media segments of conversation-object topics (`…conversations.calls`, …).
const MEDIA: &[&str] = &[
    "callbacks",
    "calls",
    "chats",
    "cobrowseSessions",
    "emails",
    "messages",
    "screenshares",
    "socialexpressions",
    "videos",
];

/// Every topic family of Genesys Cloud's notification catalog that names a conversation
/// (the topics the EventBridge integration offers, as the Genesys SDKs list them:
/// `NotificationTopics` of MyPureCloud/platform-client-sdk-dotnet), as patterns: `{id}`
/// is one segment holding a UUID (Genesys ids are UUIDs), `{media}` one of [`MEDIA`], a
/// trailing `*` one or more segments.
pub const TOPIC_FAMILIES: &[(&str, IdSource)] = &[
    ("v2.conversations.{id}.*", IdSource::TopicSegment(2)),
    (
        "v2.detail.events.conversation.{id}.*",
        IdSource::TopicSegment(4),
    ),
    (
        "v2.analytics.conversation.{id}.*",
        IdSource::TopicSegment(3),
    ),
    (
        "v2.speechandtextanalytics.conversation.{id}.*",
        IdSource::TopicSegment(3),
    ),
    (
        "v2.speechandtextanalytics.conversations.{id}.*",
        IdSource::TopicSegment(3),
    ),
    ("v2.bot.conversation.{id}.*", IdSource::TopicSegment(3)),
    (
        "v2.users.{id}.conversations.{id}.*",
        IdSource::TopicSegment(4),
    ),
    ("v2.routing.queues.{id}.conversations", IdSource::BodyId),
    (
        "v2.routing.queues.{id}.conversations.{media}",
        IdSource::BodyId,
    ),
    ("v2.users.{id}.conversations", IdSource::BodyId),
    ("v2.users.{id}.conversations.{media}", IdSource::BodyId),
];

/// Where `topic` keeps its conversation id, if its family names one.
pub fn id_source(topic: &str) -> Option<IdSource> {
    let segments: Vec<&str> = topic.split('.').collect();
    TOPIC_FAMILIES
        .iter()
        .find(|(pattern, _)| matches(pattern, &segments))
        .map(|(_, source)| *source)
}

fn matches(pattern: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    let (fixed, rest) = match parts.split_last() {
        Some((&"*", fixed)) => (fixed, true),
        _ => (parts.as_slice(), false),
    };
    let length_ok = if rest {
        segments.len() > fixed.len()
    } else {
        segments.len() == fixed.len()
    };
    length_ok
        && fixed.iter().zip(segments).all(|(p, s)| match *p {
            "{id}" => canonical_uuid(s).is_some(),
            "{media}" => MEDIA.contains(s),
            literal => literal == *s,
        })
}

/// The fields of an event that can name its conversation, as [`conversation_id`] reads
/// them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConversationRefs<'a> {
    /// `detail.eventBody.conversationId`.
    pub body_conversation_id: Option<&'a str>,
    /// `detail.topicName`.
    pub topic_name: Option<&'a str>,
    /// `detail.eventBody.id`.
    pub body_id: Option<&'a str>,
    /// The flat shape's top-level `interactionId`.
    pub interaction_id: Option<&'a str>,
}

/// The conversation id an event refers to, lower-cased, or `None`.
pub fn conversation_id(event: ConversationRefs<'_>) -> Option<String> {
    if let Some(id) = event.body_conversation_id.and_then(canonical_uuid) {
        return Some(id);
    }
    if let Some(topic) = event.topic_name {
        let found = match id_source(topic) {
            Some(IdSource::TopicSegment(i)) => topic.split('.').nth(i).and_then(canonical_uuid),
            Some(IdSource::BodyId) => event.body_id.and_then(canonical_uuid),
            None => None,
        };
        if found.is_some() {
            return found;
        }
    }
    event.interaction_id.and_then(canonical_uuid)
}

/// Whether an EventBridge `source` is Genesys Cloud's: `aws.partner/genesys.com/…`, or a
/// Genesys variant such as its test source `aws.partner/genesys.com.test/…`.
pub fn is_genesys_source(source: &str) -> bool {
    source
        .strip_prefix("aws.partner/genesys.com")
        .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('.'))
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

    /// An event's conversation fields, owned.
    #[derive(Default)]
    struct OwnedFields {
        body_conversation_id: Option<String>,
        topic_name: Option<String>,
        body_id: Option<String>,
        interaction_id: Option<String>,
    }

    fn conversation_id(e: &OwnedFields) -> Option<String> {
        super::conversation_id(ConversationRefs {
            body_conversation_id: e.body_conversation_id.as_deref(),
            topic_name: e.topic_name.as_deref(),
            body_id: e.body_id.as_deref(),
            interaction_id: e.interaction_id.as_deref(),
        })
    }

    const CONV: &str = "0f6a3c52-1b8e-4d2a-9c1e-7f00aa11bb22";
    const QUEUE: &str = "6bd25fd5-5c3c-4a44-9f6b-0b0c9e8a1d11";

    fn event(topic: &str) -> OwnedFields {
        OwnedFields {
            topic_name: Some(topic.to_owned()),
            ..OwnedFields::default()
        }
    }

    #[test]
    fn event_body_conversation_id_comes_first() {
        let mut e = event(&format!("v2.conversations.{QUEUE}.transcription"));
        e.body_conversation_id = Some(CONV.to_owned());
        assert_eq!(conversation_id(&e).as_deref(), Some(CONV));
    }

    /// One sample topic per family (and the look-alikes that are not), with where the
    /// conversation id comes from. Topic names: the Genesys notification catalog
    /// (`NotificationTopics` of MyPureCloud/platform-client-sdk-dotnet), `{id}` filled in.
    #[test]
    fn every_topic_family_names_its_conversation_source() {
        use IdSource::{BodyId, TopicSegment};
        // `{c}` is the conversation id, `{u}` a user or queue id.
        let cases: &[(&str, Option<IdSource>)] = &[
            ("v2.conversations.{c}.transcription", Some(TopicSegment(2))),
            (
                "v2.conversations.{c}.suggestions.knowledge.article",
                Some(TopicSegment(2)),
            ),
            ("v2.conversations.{c}.agentchecklist", Some(TopicSegment(2))),
            (
                "v2.detail.events.conversation.{c}.customer.end",
                Some(TopicSegment(4)),
            ),
            (
                "v2.detail.events.conversation.{c}.acd.start",
                Some(TopicSegment(4)),
            ),
            (
                "v2.detail.events.conversation.{c}.wrapup",
                Some(TopicSegment(4)),
            ),
            (
                "v2.analytics.conversation.{c}.metrics",
                Some(TopicSegment(3)),
            ),
            (
                "v2.speechandtextanalytics.conversation.{c}.sentiment",
                Some(TopicSegment(3)),
            ),
            (
                "v2.speechandtextanalytics.conversation.{c}.topics",
                Some(TopicSegment(3)),
            ),
            (
                "v2.speechandtextanalytics.conversations.{c}.categories",
                Some(TopicSegment(3)),
            ),
            (
                "v2.bot.conversation.{c}.conversations.summaries",
                Some(TopicSegment(3)),
            ),
            (
                "v2.users.{u}.conversations.{c}.recordings",
                Some(TopicSegment(4)),
            ),
            (
                "v2.users.{u}.conversations.{c}.recordings.{u}",
                Some(TopicSegment(4)),
            ),
            ("v2.routing.queues.{u}.conversations", Some(BodyId)),
            ("v2.routing.queues.{u}.conversations.calls", Some(BodyId)),
            (
                "v2.routing.queues.{u}.conversations.cobrowseSessions",
                Some(BodyId),
            ),
            ("v2.users.{u}.conversations", Some(BodyId)),
            ("v2.users.{u}.conversations.messages", Some(BodyId)),
            // Not conversation topics, whatever their names suggest.
            ("v2.users.{u}.conversationsummary", None),
            ("v2.users.{u}.conversations.summaries", None),
            ("v2.users.{u}.conversations.inbound.typing.event", None),
            ("v2.users.{u}.presence", None),
            ("v2.routing.queues.{u}.users", None),
            ("v2.flows.instances.flow.{u}", None),
            ("v2.analytics.queues.{u}.observations", None),
            ("v2.conversations", None),
        ];
        for (template, want) in cases {
            let topic = &template.replace("{c}", CONV).replace("{u}", QUEUE);
            assert_eq!(id_source(topic), *want, "{topic}");
            let mut e = event(topic);
            e.body_id = Some(CONV.to_owned());
            let got = conversation_id(&e);
            match want {
                Some(_) => assert_eq!(got.as_deref(), Some(CONV), "{topic}"),
                None => assert_eq!(got, None, "{topic}"),
            }
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
        }
    }

    #[test]
    fn genesys_sources_include_its_test_source() {
        for source in [
            "aws.partner/genesys.com/cloud/cf6cb7d5-d0ea-45b5-b0cf-73ad5f5b8721/prod-events",
            "aws.partner/genesys.com.test/cloud/cf6cb7d5-d0ea-45b5-b0cf-73ad5f5b8721/test",
        ] {
            assert!(is_genesys_source(source), "{source}");
        }
        for source in ["aws.partner/genesys.community/x", "aws.ec2", "genesys.com"] {
            assert!(!is_genesys_source(source), "{source}");
        }
    }

    #[test]
    fn flat_interaction_id_is_the_last_resort() {
        let e = OwnedFields {
            interaction_id: Some(CONV.to_uppercase()),
            ..OwnedFields::default()
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
            let e = OwnedFields {
                body_conversation_id: Some(bad.to_owned()),
                ..OwnedFields::default()
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
