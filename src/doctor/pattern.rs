//! Can a rule's event pattern match a Genesys Cloud topic? EventBridge gives a Genesys
//! event `source` = the partner event source's name and `detail-type` = the topic as the
//! integration publishes it (`v2.detail.events.conversation.{id}.customer.end`), so the
//! two fields decide. Each field's list is read with EventBridge's matchers: exact
//! strings, `prefix`, `suffix`, `wildcard`, `equals-ignore-case`, `anything-but`,
//! `exists`. Anything this reading does not know (numeric matchers, `$or`) counts as
//! "may match": coverage findings name only what cannot match.

use serde_json::Value;

/// Whether `pattern` (a rule's `EventPattern`) may match an event with this `source` and
/// `detail_type`. A pattern that is not JSON may match (EventBridge would have refused it).
pub(crate) fn may_match(pattern: &str, source: &str, detail_type: &str) -> bool {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(pattern) else {
        return true;
    };
    let field = |name: &str, value: &str| fields.get(name).is_none_or(|m| list_matches(m, value));
    field("source", source) && field("detail-type", detail_type)
}

/// A field's list of matchers: any one may match.
fn list_matches(matchers: &Value, value: &str) -> bool {
    match matchers {
        Value::Array(list) => list.iter().any(|m| one_matches(m, value)),
        // Not a list: EventBridge refuses it; take it as may match.
        _ => true,
    }
}

fn one_matches(matcher: &Value, value: &str) -> bool {
    match matcher {
        Value::String(s) => s == value,
        Value::Object(map) if map.len() == 1 => {
            let (kind, arg) = map.iter().next().expect("one entry");
            match (kind.as_str(), arg) {
                ("prefix", Value::String(p)) => value.starts_with(p.as_str()),
                ("prefix", Value::Object(o)) => match o.get("equals-ignore-case") {
                    Some(Value::String(p)) => value.to_lowercase().starts_with(&p.to_lowercase()),
                    _ => true,
                },
                ("suffix", Value::String(p)) => value.ends_with(p.as_str()),
                ("equals-ignore-case", Value::String(p)) => {
                    p.to_lowercase() == value.to_lowercase()
                }
                // EventBridge's wildcard: `*` any run of characters.
                ("wildcard", Value::String(p)) => wildcard(p, value),
                ("exists", Value::Bool(exists)) => *exists,
                ("anything-but", arg) => !anything_but_excludes(arg, value),
                _ => true,
            }
        }
        // null, numbers, several keys: not a topic's matcher; may match.
        _ => true,
    }
}

/// `*` matches any run of characters; nothing else is special.
fn wildcard(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().expect("split yields one part");
    let Some(mut tail) = value.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for part in middle {
        match tail.find(part) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

fn anything_but_excludes(arg: &Value, value: &str) -> bool {
    match arg {
        Value::String(s) => s == value,
        Value::Array(list) => list.iter().any(|v| v.as_str() == Some(value)),
        Value::Object(o) => match o.get("prefix") {
            Some(Value::String(p)) => value.starts_with(p.as_str()),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "aws.partner/genesys.com/cloud/org-1/prod";
    const END: &str = "v2.detail.events.conversation.{id}.customer.end";

    #[test]
    fn exact_and_prefix_matchers_read_the_topic() {
        let exact = format!(r#"{{"source":["{SOURCE}"],"detail-type":["{END}"]}}"#);
        assert!(may_match(&exact, SOURCE, END));
        assert!(!may_match(
            &exact,
            SOURCE,
            "v2.conversations.{id}.transcription"
        ));
        let prefix = r#"{"detail-type":[{"prefix":"v2.detail.events.conversation."}]}"#;
        assert!(may_match(prefix, SOURCE, END));
        assert!(!may_match(prefix, SOURCE, "v2.users.{id}.presence"));
    }

    #[test]
    fn another_source_matches_nothing_of_this_bus() {
        let other = r#"{"source":[{"prefix":"aws.partner/genesys.com/cloud/org-2/"}]}"#;
        assert!(!may_match(other, SOURCE, END));
    }

    #[test]
    fn wildcard_anything_but_and_unknown_matchers() {
        let wildcard = r#"{"detail-type":[{"wildcard":"v2.detail.events.conversation.*.end"}]}"#;
        assert!(may_match(wildcard, SOURCE, END));
        let but = format!(r#"{{"detail-type":[{{"anything-but":["{END}"]}}]}}"#);
        assert!(!may_match(&but, SOURCE, END));
        let numeric = r#"{"detail-type":[{"numeric":[">",0]}]}"#;
        assert!(may_match(numeric, SOURCE, END));
        assert!(may_match("not json", SOURCE, END));
    }
}
