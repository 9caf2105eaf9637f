//! What a rule's target receives: the target's `Input`, `InputPath` or `InputTransformer`
//! applied to the event, as EventBridge documents it ("Amazon EventBridge input
//! transformation", EventBridge User Guide). A pure function, so `--to-target` sends what
//! the target would have received, and a table of the documented examples tests it.
//!
//! The rules, in brief (`docs/replay.md` has the full case table):
//! - `<name>` in the template is a variable from `InputPathsMap` or a reserved one
//!   (`aws.events.rule-arn`, `aws.events.rule-name`, `aws.events.event`,
//!   `aws.events.event.json`, `aws.events.event.ingestion-time`); anything else in angle
//!   brackets stays as written.
//! - Outside a JSON string, a variable is placed as JSON (a string gets its quotes).
//!   Inside a JSON string (`"… <name> …"`), a string value is placed as its raw text —
//!   EventBridge does not escape it — and any other value as its JSON text.
//! - A path that matches nothing defines no variable: EventBridge documents only that it
//!   "won't appear in the output"; we place `null` outside strings and nothing inside them,
//!   so the body stays valid JSON.
//! - `aws.events.event` is the event without `detail`; `aws.events.event.json` the whole
//!   event, byte for byte; `aws.events.event.ingestion-time` is not kept in a dead letter,
//!   so the event's own `time` stands in for it.

use std::collections::BTreeMap;

use serde_json::Value;

/// How a rule's target takes its input (exactly one of EventBridge's four choices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetInput {
    /// No transformation: the event itself.
    Event,
    /// `Input`: this constant JSON text instead of the event.
    Constant(String),
    /// `InputPath`: the part of the event this JSON path selects.
    Path(String),
    /// `InputTransformer`.
    Transformer {
        /// `InputPathsMap`: variable name → JSON path.
        paths: BTreeMap<String, String>,
        /// `InputTemplate`.
        template: String,
    },
}

impl TargetInput {
    /// A short description for the dry run and the journal.
    pub fn describe(&self) -> &'static str {
        match self {
            TargetInput::Event => "the event as-is",
            TargetInput::Constant(_) => "constant Input",
            TargetInput::Path(_) => "InputPath",
            TargetInput::Transformer { .. } => "InputTransformer",
        }
    }

    /// Whether the target receives something other than the event.
    pub fn transforms(&self) -> bool {
        match self {
            TargetInput::Event => false,
            TargetInput::Constant(_) | TargetInput::Path(_) | TargetInput::Transformer { .. } => {
                true
            }
        }
    }
}

/// The rule a target belongs to, for the reserved variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleContext {
    /// `aws.events.rule-arn`.
    pub rule_arn: String,
    /// `aws.events.rule-name`.
    pub rule_name: String,
}

impl RuleContext {
    /// From a rule ARN (`arn:aws:events:REGION:ACCOUNT:rule/[BUS/]NAME`).
    pub fn from_arn(rule_arn: &str) -> RuleContext {
        let rule_name = rule_arn.rsplit('/').next().unwrap_or(rule_arn).to_owned();
        RuleContext {
            rule_arn: rule_arn.to_owned(),
            rule_name,
        }
    }
}

/// Why an input could not be built for a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The stored payload is not a JSON event, so no path can be read from it.
    #[error("the stored payload is not JSON ({0}), so the target's {1} cannot be applied")]
    NotJson(String, &'static str),
    /// A path outside the subset EventBridge supports.
    #[error("unsupported JSON path {0:?}: EventBridge takes dot notation, array indices and *")]
    UnsupportedPath(String),
    /// `InputPath` selected nothing.
    #[error("InputPath {0:?} matches nothing in the event")]
    NothingSelected(String),
}

/// The bytes the target receives for `event` (the stored payload).
pub fn apply(
    input: &TargetInput,
    event: &[u8],
    rule: &RuleContext,
) -> Result<Vec<u8>, TransformError> {
    match input {
        TargetInput::Event => Ok(event.to_vec()),
        TargetInput::Constant(text) => Ok(text.clone().into_bytes()),
        TargetInput::Path(path) => {
            let parsed = parse_event(event, "InputPath")?;
            let path_ = JsonPath::parse(path)?;
            match path_.select(&parsed) {
                Some(value) => Ok(value.to_string().into_bytes()),
                None => Err(TransformError::NothingSelected(path.clone())),
            }
        }
        TargetInput::Transformer { paths, template } => {
            let parsed = parse_event(event, "InputTransformer")?;
            let mut vars: BTreeMap<&str, Option<Value>> = BTreeMap::new();
            for (name, path) in paths {
                vars.insert(name, JsonPath::parse(path)?.select(&parsed));
            }
            Ok(fill(template, &vars, &parsed, event, rule).into_bytes())
        }
    }
}

/// Reads one value of the event by a JSON path of EventBridge's subset (also used for an
/// API destination's dynamic path, header and query parameters). `None` when the path
/// matches nothing.
pub(super) fn select(event: &Value, path: &str) -> Result<Option<Value>, TransformError> {
    Ok(JsonPath::parse(path)?.select(event))
}

fn parse_event(event: &[u8], what: &'static str) -> Result<Value, TransformError> {
    serde_json::from_slice(event).map_err(|e| TransformError::NotJson(e.to_string(), what))
}

const RULE_ARN: &str = "aws.events.rule-arn";
const RULE_NAME: &str = "aws.events.rule-name";
const EVENT: &str = "aws.events.event";
const EVENT_JSON: &str = "aws.events.event.json";
const INGESTION_TIME: &str = "aws.events.event.ingestion-time";

/// What one placeholder stands for.
enum Filling {
    /// A JSON value (placed raw inside strings when it is a string).
    Value(Value),
    /// JSON text placed as it is, in either position.
    Raw(String),
    /// A variable whose path matched nothing.
    Missing,
}

fn fill(
    template: &str,
    vars: &BTreeMap<&str, Option<Value>>,
    event: &Value,
    raw_event: &[u8],
    rule: &RuleContext,
) -> String {
    let lookup = |name: &str| -> Option<Filling> {
        match name {
            RULE_ARN => Some(Filling::Value(Value::String(rule.rule_arn.clone()))),
            RULE_NAME => Some(Filling::Value(Value::String(rule.rule_name.clone()))),
            INGESTION_TIME => Some(match event.get("time") {
                Some(t) => Filling::Value(t.clone()),
                None => Filling::Missing,
            }),
            EVENT => {
                let mut without_detail = event.clone();
                if let Some(map) = without_detail.as_object_mut() {
                    map.remove("detail");
                }
                Some(Filling::Value(without_detail))
            }
            EVENT_JSON => Some(Filling::Raw(
                String::from_utf8_lossy(raw_event).trim().to_owned(),
            )),
            _ => vars.get(name).map(|v| match v {
                Some(value) => Filling::Value(value.clone()),
                None => Filling::Missing,
            }),
        }
    };

    let mut out = String::with_capacity(template.len() + 64);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(end) = rest[1..].find('>')
        {
            let name = &rest[1..1 + end];
            if is_variable_name(name)
                && let Some(filling) = lookup(name)
            {
                place(&mut out, filling, in_string);
                rest = &rest[end + 2..];
                escaped = false;
                continue;
            }
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn place(out: &mut String, filling: Filling, in_string: bool) {
    match (filling, in_string) {
        (Filling::Value(Value::String(s)), true) => out.push_str(&s),
        (Filling::Value(v), _) => out.push_str(&v.to_string()),
        (Filling::Raw(text), _) => out.push_str(&text),
        (Filling::Missing, true) => {}
        (Filling::Missing, false) => out.push_str("null"),
    }
}

fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// A JSON path of the subset EventBridge evaluates: `$`, then `.name` steps (names of
/// letters, digits, `-`, `_`, `/`, `:`, `@`), `[N]` indices, and `*` / `[*]` wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JsonPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    Any,
}

impl JsonPath {
    fn parse(path: &str) -> Result<JsonPath, TransformError> {
        let bad = || TransformError::UnsupportedPath(path.to_owned());
        let rest = path.trim().strip_prefix('$').ok_or_else(bad)?;
        let mut steps = Vec::new();
        let mut chars = rest;
        while !chars.is_empty() {
            if let Some(after) = chars.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let name = &after[..end];
                if name == "*" {
                    steps.push(Step::Any);
                } else if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_/:@$ ".contains(&b))
                {
                    steps.push(Step::Key(name.to_owned()));
                } else {
                    return Err(bad());
                }
                chars = &after[end..];
            } else if let Some(after) = chars.strip_prefix('[') {
                let end = after.find(']').ok_or_else(bad)?;
                let inside = &after[..end];
                if inside == "*" {
                    steps.push(Step::Any);
                } else {
                    steps.push(Step::Index(inside.parse().map_err(|_| bad())?));
                }
                chars = &after[end + 1..];
            } else {
                return Err(bad());
            }
        }
        Ok(JsonPath(steps))
    }

    /// The selected value; wildcards collect every match into an array.
    fn select(&self, root: &Value) -> Option<Value> {
        let wildcard = self.0.contains(&Step::Any);
        let mut current = vec![root];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in current {
                match (step, v) {
                    (Step::Key(k), Value::Object(m)) => next.extend(m.get(k)),
                    (Step::Index(i), Value::Array(a)) => next.extend(a.get(*i)),
                    (Step::Any, Value::Array(a)) => next.extend(a.iter()),
                    (Step::Any, Value::Object(m)) => next.extend(m.values()),
                    // A key of a non-object, an index of a non-array, any of a scalar.
                    (Step::Key(_) | Step::Index(_) | Step::Any, _) => {}
                }
            }
            current = next;
        }
        if wildcard {
            (!current.is_empty()).then(|| Value::Array(current.into_iter().cloned().collect()))
        } else {
            current.first().map(|v| (*v).clone())
        }
    }
}

#[cfg(test)]
mod tests {
    //! The examples of the EventBridge User Guide, "Amazon EventBridge input
    //! transformation" (docs.aws.amazon.com/eventbridge/latest/userguide/
    //! eb-transform-target-input.html; the same table in awsdocs/amazon-eventbridge-user-guide,
    //! doc_source/eb-transform-target-input.md), each with its documented output.
    use super::*;

    /// The documentation's example Amazon EC2 event.
    const EC2_EVENT: &str = r#"{
  "version": "0",
  "id": "7bf73129-1428-4cd3-a780-95db273d1602",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2015-11-11T21:29:54Z",
  "region": "us-east-1",
  "resources": [
    "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"
  ],
  "detail": {
    "instance-id": "i-0123456789",
    "state": "RUNNING"
  }
}"#;

    /// The documentation's Input Path.
    fn doc_paths() -> BTreeMap<String, String> {
        [
            ("timestamp", "$.time"),
            ("instance", "$.detail.instance-id"),
            ("state", "$.detail.state"),
            ("resource", "$.resources[0]"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// The rule of the documented outputs (`arn:aws:events:us-east-2:123456789012:rule/example`).
    fn doc_rule() -> RuleContext {
        RuleContext::from_arn("arn:aws:events:us-east-2:123456789012:rule/example")
    }

    fn transform(template: &str) -> String {
        let input = TargetInput::Transformer {
            paths: doc_paths(),
            template: template.to_owned(),
        };
        String::from_utf8(apply(&input, EC2_EVENT.as_bytes(), &doc_rule()).unwrap()).unwrap()
    }

    /// A documented case: the template, and the documented output, compared as bytes for
    /// string templates and as JSON for JSON templates (the page reflows its JSON outputs).
    struct Case {
        name: &'static str,
        template: &'static str,
        output: &'static str,
        json: bool,
    }

    const CASES: &[Case] = &[
        Case {
            name: "Simple string",
            template: r#""instance <instance> is in <state>""#,
            output: r#""instance i-0123456789 is in RUNNING""#,
            json: false,
        },
        Case {
            name: "String with escaped quotes",
            template: r#""instance \"<instance>\" is in <state>""#,
            output: r#""instance \"i-0123456789\" is in RUNNING""#,
            json: false,
        },
        Case {
            name: "Simple JSON",
            template: "{\n  \"instance\" : <instance>,\n  \"state\": <state>\n}",
            output: r#"{"instance" : "i-0123456789", "state": "RUNNING"}"#,
            json: true,
        },
        Case {
            name: "JSON with strings and variables",
            template: "{\n \"instance\" : <instance>,\n \"state\": \"<state>\",\n \"instanceStatus\": \"instance \\\"<instance>\\\" is in <state>\"\n}",
            output: r#"{"instance": "i-0123456789", "state": "RUNNING", "instanceStatus": "instance \"i-0123456789\" is in RUNNING"}"#,
            json: true,
        },
        Case {
            name: "JSON with a mix of variables and static information",
            template: "{\n  \"instance\" : <instance>,\n  \"state\": [ 9, <state>, true ],\n  \"Transformed\" : \"Yes\"\n}\n",
            output: r#"{"instance": "i-0123456789", "state": [9, "RUNNING", true], "Transformed": "Yes"}"#,
            json: true,
        },
        Case {
            name: "Including reserved variables in a string",
            template: r#""<aws.events.rule-name> triggered""#,
            output: r#""example triggered""#,
            json: false,
        },
    ];

    #[test]
    fn every_documented_example_gives_its_documented_output() {
        for case in CASES {
            let got = transform(case.template);
            if case.json {
                let got: Value = serde_json::from_str(&got)
                    .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {got}", case.name));
                let want: Value = serde_json::from_str(case.output).unwrap();
                assert_eq!(got, want, "{}", case.name);
            } else {
                assert_eq!(got, case.output, "{}", case.name);
            }
        }
    }

    #[test]
    fn reserved_variables_in_json_give_the_rule_and_the_whole_event() {
        // "Including reserved variables in JSON": the documentation elides originalEvent
        // ("commented for brevity"); `aws.events.event.json` is the full event.
        let got = transform(
            "{\n  \"instance\" : <instance>,\n  \"state\": <state>,\n  \"ruleArn\" : <aws.events.rule-arn>,\n  \"ruleName\" : <aws.events.rule-name>,\n  \"originalEvent\" : <aws.events.event.json>\n}",
        );
        let got: Value = serde_json::from_str(&got).unwrap();
        assert_eq!(got["instance"], "i-0123456789");
        assert_eq!(got["state"], "RUNNING");
        assert_eq!(
            got["ruleArn"],
            "arn:aws:events:us-east-2:123456789012:rule/example"
        );
        assert_eq!(got["ruleName"], "example");
        let event: Value = serde_json::from_str(EC2_EVENT).unwrap();
        assert_eq!(got["originalEvent"], event);
    }

    #[test]
    fn aws_events_event_is_the_event_without_its_detail() {
        let got: Value = serde_json::from_str(&transform("{\"e\": <aws.events.event>}")).unwrap();
        assert_eq!(got["e"]["id"], "7bf73129-1428-4cd3-a780-95db273d1602");
        assert!(got["e"].get("detail").is_none(), "{got}");
    }

    #[test]
    fn the_event_json_variable_is_the_stored_bytes_verbatim() {
        let event = br#"{"id":"1","detail":{"b":2,"a":1.50}}"#;
        let input = TargetInput::Transformer {
            paths: BTreeMap::new(),
            template: "{\"original\": <aws.events.event.json>}".into(),
        };
        let got = apply(&input, event, &doc_rule()).unwrap();
        assert_eq!(
            got,
            br#"{"original": {"id":"1","detail":{"b":2,"a":1.50}}}"#.to_vec()
        );
    }

    #[test]
    fn ingestion_time_stands_in_as_the_event_time() {
        assert_eq!(
            transform("\"at <aws.events.event.ingestion-time>\""),
            "\"at 2015-11-11T21:29:54Z\""
        );
    }

    #[test]
    fn array_indices_and_wildcards_select_like_eventbridge() {
        assert_eq!(
            transform("{\"r\": <resource>}"),
            r#"{"r": "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"}"#
        );
        let event = br#"{"detail":{"participants":[{"id":"a"},{"id":"b"}]}}"#;
        let v: Value = serde_json::from_slice(event).unwrap();
        assert_eq!(
            select(&v, "$.detail.participants[*].id").unwrap(),
            Some(serde_json::json!(["a", "b"]))
        );
        assert_eq!(
            select(&v, "$.detail.participants[1].id").unwrap(),
            Some(serde_json::json!("b"))
        );
        assert!(matches!(
            select(&v, "$['detail']"),
            Err(TransformError::UnsupportedPath(_))
        ));
    }

    #[test]
    fn a_path_that_matches_nothing_leaves_valid_json() {
        let input = TargetInput::Transformer {
            paths: [("gone".to_owned(), "$.detail.nothing".to_owned())].into(),
            template: "{\"v\": <gone>, \"s\": \"[<gone>]\"}".into(),
        };
        let got = apply(&input, EC2_EVENT.as_bytes(), &doc_rule()).unwrap();
        assert_eq!(got, br#"{"v": null, "s": "[]"}"#.to_vec());
    }

    #[test]
    fn angle_brackets_that_name_no_variable_stay_as_written() {
        assert_eq!(
            transform("\"<b>bold</b> <instance> <unknown>\""),
            "\"<b>bold</b> i-0123456789 <unknown>\""
        );
    }

    #[test]
    fn string_values_are_placed_unescaped_inside_strings_as_eventbridge_does() {
        // "EventBridge doesn't escape values extracted by Input Path".
        let input = TargetInput::Transformer {
            paths: [("q".to_owned(), "$.detail.q".to_owned())].into(),
            template: "\"say <q>\"".into(),
        };
        let got = apply(&input, br#"{"detail":{"q":"a \"b\""}}"#, &doc_rule()).unwrap();
        assert_eq!(got, br#""say a "b"""#.to_vec());
    }

    #[test]
    fn input_path_and_constant_input() {
        let path = TargetInput::Path("$.detail".into());
        assert_eq!(
            apply(&path, EC2_EVENT.as_bytes(), &doc_rule()).unwrap(),
            br#"{"instance-id":"i-0123456789","state":"RUNNING"}"#.to_vec()
        );
        assert!(matches!(
            apply(
                &TargetInput::Path("$.nope".into()),
                EC2_EVENT.as_bytes(),
                &doc_rule()
            ),
            Err(TransformError::NothingSelected(_))
        ));
        let constant = TargetInput::Constant("{\"ping\":true}".into());
        assert_eq!(
            apply(&constant, b"not even json", &doc_rule()).unwrap(),
            b"{\"ping\":true}".to_vec()
        );
        assert_eq!(
            apply(&TargetInput::Event, b"\x00raw", &doc_rule()).unwrap(),
            b"\x00raw".to_vec()
        );
    }

    #[test]
    fn a_payload_that_is_not_json_cannot_be_transformed() {
        let input = TargetInput::Transformer {
            paths: BTreeMap::new(),
            template: "\"x\"".into(),
        };
        assert!(matches!(
            apply(&input, b"<xml/>", &doc_rule()),
            Err(TransformError::NotJson(_, "InputTransformer"))
        ));
    }

    #[test]
    fn rule_names_come_from_arns_with_and_without_a_bus() {
        assert_eq!(
            RuleContext::from_arn("arn:aws:events:us-east-1:1:rule/genesys-bus/to-crm").rule_name,
            "to-crm"
        );
        assert_eq!(
            RuleContext::from_arn("arn:aws:events:us-east-1:1:rule/to-crm").rule_name,
            "to-crm"
        );
    }
}
