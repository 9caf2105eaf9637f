//! Does a resource policy (an SQS queue's, an SNS topic's, a Lambda function's, a KMS
//! key's) let an AWS service principal act for one rule? A small reading of IAM's policy
//! grammar: `Effect`, `Principal` / `NotPrincipal` (`*`, `{"Service": …}`,
//! `{"AWS": "*"}`), `Action` / `NotAction` (wildcards), and conditions under `ArnEquals`,
//! `ArnLike`, `StringEquals`, `StringLike`, `Bool`, their `Not` forms and `…IfExists`.
//!
//! The keys a service principal's request carries are known (`aws:SourceArn`,
//! `aws:SourceAccount`, `aws:PrincipalIsAWSService`, `aws:PrincipalServiceName`,
//! `aws:SecureTransport`); some it never carries (`aws:SourceOwner`, `aws:PrincipalOrgID`,
//! `aws:PrincipalOrgPaths`), and IAM then holds a condition met only under a `Not`
//! operator or `…IfExists`. A condition on any other key or under any other operator is
//! read in the policy's favour: met in an `Allow`, not met in a `Deny`. The doctor reports
//! what it can show is missing, never a guess.

use serde_json::Value;

/// Who is asking, for what: a service principal doing `actions` on behalf of a rule.
#[derive(Debug, Clone)]
pub(crate) struct Request<'a> {
    /// `events.amazonaws.com`.
    pub(crate) service: &'a str,
    /// Every action must be allowed (KMS needs both `kms:GenerateDataKey` and
    /// `kms:Decrypt`).
    pub(crate) actions: &'a [&'a str],
    /// `aws:SourceArn`: the rule's ARN.
    pub(crate) source_arn: &'a str,
    /// `aws:SourceAccount`: the rule's account.
    pub(crate) source_account: &'a str,
}

/// What a policy says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every action is allowed and none denied.
    Allowed,
    /// These actions are not allowed (or denied explicitly).
    Missing(Vec<String>),
}

/// The verdict of `policy` (the JSON document as text; `None` or empty: no policy).
pub(crate) fn evaluate(policy: Option<&str>, request: &Request) -> Verdict {
    let doc: Value = policy
        .filter(|p| !p.trim().is_empty())
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Value::Null);
    let statements: Vec<&Value> = match &doc["Statement"] {
        Value::Array(list) => list.iter().collect(),
        Value::Object(_) => vec![&doc["Statement"]],
        _ => Vec::new(),
    };
    let missing: Vec<String> = request
        .actions
        .iter()
        .filter(|action| {
            let applies = |effect: &str| {
                statements.iter().any(|s| {
                    s["Effect"].as_str() == Some(effect)
                        && statement_applies(s, action, request, effect == "Deny")
                })
            };
            !applies("Allow") || applies("Deny")
        })
        .map(|a| (*a).to_owned())
        .collect();
    if missing.is_empty() {
        Verdict::Allowed
    } else {
        Verdict::Missing(missing)
    }
}

fn statement_applies(s: &Value, action: &str, request: &Request, deny: bool) -> bool {
    let principal = match (&s["Principal"], &s["NotPrincipal"]) {
        (Value::Null, Value::Null) => false,
        (p, Value::Null) => principal_matches(p, request.service),
        (_, not) => !principal_matches(not, request.service),
    };
    let action = action.to_ascii_lowercase();
    let named = |v: &Value| {
        strings(v)
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &action))
    };
    let acts = match (&s["Action"], &s["NotAction"]) {
        (Value::Null, Value::Null) => false,
        (a, Value::Null) => named(a),
        (_, not) => !named(not),
    };
    principal && acts && conditions_met(&s["Condition"], request, deny)
}

fn principal_matches(principal: &Value, service: &str) -> bool {
    match principal {
        Value::String(p) => p == "*",
        Value::Object(map) => map.iter().any(|(kind, who)| {
            let who = strings(who);
            match kind.as_str() {
                "Service" => who.iter().any(|w| w == service),
                "AWS" => who.iter().any(|w| w == "*"),
                _ => false,
            }
        }),
        _ => false,
    }
}

/// What a service principal's request says about a condition key.
enum Key<'a> {
    /// The request carries this value.
    Value(&'a str),
    /// A service principal's request never carries the key.
    Absent,
    /// This reading does not know.
    Unknown,
}

fn key<'a>(name: &str, request: &Request<'a>) -> Key<'a> {
    match name.to_ascii_lowercase().as_str() {
        "aws:sourcearn" => Key::Value(request.source_arn),
        "aws:sourceaccount" => Key::Value(request.source_account),
        "aws:principalservicename" => Key::Value(request.service),
        "aws:principalisawsservice" | "aws:securetransport" => Key::Value("true"),
        "aws:sourceowner" | "aws:principalorgid" | "aws:principalorgpaths" => Key::Absent,
        _ => Key::Unknown,
    }
}

/// Every condition of a statement holds; what this reading cannot decide counts as met in
/// an `Allow` and not met in a `Deny` (`deny`).
fn conditions_met(conditions: &Value, request: &Request, deny: bool) -> bool {
    let Value::Object(operators) = conditions else {
        return true;
    };
    operators.iter().all(|(operator, keys)| {
        let Value::Object(keys) = keys else {
            return !deny;
        };
        keys.iter().all(|(name, expected)| {
            let if_exists = operator.ends_with("IfExists");
            let negated = operator.contains("Not");
            match key(name, request) {
                Key::Value(actual) => {
                    condition_holds(operator, &strings(expected), actual).unwrap_or(!deny)
                }
                // IAM: a key missing from the request matches only a negated operator or
                // an …IfExists one.
                Key::Absent if operator == "Null" => strings(expected)
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case("true")),
                Key::Absent => if_exists || negated,
                Key::Unknown => !deny,
            }
        })
    })
}

/// One condition operator on one known value; `None` for an operator this reading does
/// not know.
fn condition_holds(operator: &str, expected: &[String], actual: &str) -> Option<bool> {
    let op = operator.strip_suffix("IfExists").unwrap_or(operator);
    let (negated, op) = match op {
        "ArnNotEquals" => (true, "ArnEquals"),
        "ArnNotLike" => (true, "ArnLike"),
        "StringNotEquals" => (true, "StringEquals"),
        "StringNotLike" => (true, "StringLike"),
        other => (false, other),
    };
    let any = match op {
        "StringEquals" => expected.iter().any(|e| e == actual),
        "Bool" => expected.iter().any(|e| e.eq_ignore_ascii_case(actual)),
        // The key is present: `Null` holds for "false".
        "Null" => expected.iter().any(|e| e.eq_ignore_ascii_case("false")),
        // ArnEquals compares like ArnLike in IAM: both take wildcards.
        "ArnEquals" | "ArnLike" | "StringLike" => expected.iter().any(|e| glob(e, actual)),
        _ => return None,
    };
    Some(any != negated)
}

/// A string or a list of strings, as IAM allows in most places.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM's wildcards: `*` any run of characters (slashes and colons too), `?` one.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str =
        "arn:aws:events:us-east-1:111122223333:rule/aws.partner/genesys.com/cloud/org/prod/to-crm";

    fn sqs(policy: &str) -> Verdict {
        evaluate(
            Some(policy),
            &Request {
                service: "events.amazonaws.com",
                actions: &["sqs:SendMessage"],
                source_arn: RULE,
                source_account: "111122223333",
            },
        )
    }

    fn statement(condition: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"events.amazonaws.com"}},"Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-1:111122223333:dlq"{condition}}}]}}"#
        )
    }

    #[test]
    fn the_rule_named_in_source_arn_is_allowed() {
        let exact = statement(&format!(
            r#","Condition":{{"ArnEquals":{{"aws:SourceArn":"{RULE}"}}}}"#
        ));
        assert_eq!(sqs(&exact), Verdict::Allowed);
    }

    #[test]
    fn a_wildcard_over_the_accounts_rules_allows_a_partner_bus_rule() {
        let like = statement(
            r#","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:events:us-east-1:111122223333:rule/*"}}"#,
        );
        assert_eq!(sqs(&like), Verdict::Allowed);
    }

    #[test]
    fn another_rule_or_no_policy_is_not_allowed() {
        let other = statement(
            r#","Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:events:us-east-1:111122223333:rule/other"}}"#,
        );
        let missing = Verdict::Missing(vec!["sqs:SendMessage".into()]);
        assert_eq!(sqs(&other), missing);
        assert_eq!(
            evaluate(
                None,
                &Request {
                    service: "events.amazonaws.com",
                    actions: &["sqs:SendMessage"],
                    source_arn: RULE,
                    source_account: "1",
                }
            ),
            missing
        );
    }

    #[test]
    fn another_account_in_source_account_is_not_allowed() {
        let account = statement(r#","Condition":{"StringEquals":{"aws:SourceAccount":"999"}}"#);
        assert!(matches!(sqs(&account), Verdict::Missing(_)));
    }

    #[test]
    fn an_explicit_deny_wins() {
        let policy = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:*"},{"Effect":"Deny","Principal":{"Service":["events.amazonaws.com"]},"Action":["sqs:SendMessage"],"Condition":{"ArnNotEquals":{"aws:SourceArn":"arn:aws:events:us-east-1:111122223333:rule/other"}}}]}"#;
        assert!(matches!(sqs(policy), Verdict::Missing(_)));
    }

    #[test]
    fn kms_needs_both_actions() {
        let policy = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"kms:GenerateDataKey*","Resource":"*"}}"#;
        let verdict = evaluate(
            Some(policy),
            &Request {
                service: "events.amazonaws.com",
                actions: &["kms:GenerateDataKey", "kms:Decrypt"],
                source_arn: RULE,
                source_account: "111122223333",
            },
        );
        assert_eq!(verdict, Verdict::Missing(vec!["kms:Decrypt".into()]));
    }

    #[test]
    fn a_deny_on_a_condition_eventbridge_meets_not_does_not_deny_it() {
        // The usual "TLS only" statement, and a deny on a key this reading does not know.
        let policy = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage"},{"Effect":"Deny","Principal":"*","Action":"sqs:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}},{"Effect":"Deny","Principal":"*","Action":"sqs:*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}"#;
        assert_eq!(sqs(policy), Verdict::Allowed, "{policy}");
    }

    #[test]
    fn a_deny_with_not_principal_denies_eventbridge_unless_it_is_named() {
        let allow = r#"{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage"}"#;
        let deny = |except: &str| {
            format!(
                r#"{{"Statement":[{allow},{{"Effect":"Deny","NotPrincipal":{{"AWS":"arn:aws:iam::111122223333:role/admin"{except}}},"Action":"sqs:SendMessage"}}]}}"#
            )
        };
        assert!(matches!(sqs(&deny("")), Verdict::Missing(_)));
        assert_eq!(
            sqs(&deny(r#","Service":"events.amazonaws.com""#)),
            Verdict::Allowed
        );
    }

    #[test]
    fn not_action_allows_what_it_does_not_name() {
        let policy = |not: &str| {
            format!(
                r#"{{"Statement":{{"Effect":"Allow","Principal":{{"Service":"events.amazonaws.com"}},"NotAction":"{not}"}}}}"#
            )
        };
        assert_eq!(sqs(&policy("sqs:DeleteQueue")), Verdict::Allowed);
        assert!(matches!(sqs(&policy("sqs:Send*")), Verdict::Missing(_)));
    }

    #[test]
    fn sns_default_topic_policy_does_not_let_eventbridge_publish() {
        // The policy SNS gives a new topic: anyone, on condition of AWS:SourceOwner, a key
        // a service principal's request does not carry.
        let default = r#"{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__default_statement_ID","Effect":"Allow","Principal":{"AWS":"*"},"Action":["SNS:GetTopicAttributes","SNS:SetTopicAttributes","SNS:AddPermission","SNS:RemovePermission","SNS:DeleteTopic","SNS:Subscribe","SNS:ListSubscriptionsByTopic","SNS:Publish"],"Resource":"arn:aws:sns:us-east-1:111122223333:alerts","Condition":{"StringEquals":{"AWS:SourceOwner":"111122223333"}}}]}"#;
        let request = Request {
            service: "events.amazonaws.com",
            actions: &["sns:Publish"],
            source_arn: RULE,
            source_account: "111122223333",
        };
        assert_eq!(
            evaluate(Some(default), &request),
            Verdict::Missing(vec!["sns:Publish".into()])
        );
        let if_exists = default.replace("StringEquals", "StringEqualsIfExists");
        assert_eq!(evaluate(Some(&if_exists), &request), Verdict::Allowed);
    }

    #[test]
    fn globs_cross_slashes_and_match_single_characters() {
        assert!(glob("arn:aws:events:*:*:rule/*", RULE));
        assert!(glob("sqs:send?essage", "sqs:sendmessage"));
        assert!(!glob("arn:aws:events:*:*:rule/x*", RULE));
    }
}
