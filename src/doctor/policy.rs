//! Does a resource policy (an SQS queue's, an SNS topic's, a Lambda function's, a KMS
//! key's) let an AWS service principal act for one rule? A small reading of IAM's policy
//! grammar: `Effect`, `Principal` (`*`, `{"Service": …}`, `{"AWS": "*"}`), `Action`
//! (wildcards), and the `aws:SourceArn` / `aws:SourceAccount` conditions under
//! `ArnEquals`, `ArnLike`, `StringEquals`, `StringLike`, their `Not` forms and
//! `…IfExists`. A condition on any other key is taken as met: the doctor reports what it
//! can show is missing, never a guess.

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
                    s["Effect"].as_str() == Some(effect) && statement_applies(s, action, request)
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

fn statement_applies(s: &Value, action: &str, request: &Request) -> bool {
    principal_matches(&s["Principal"], request.service)
        && strings(&s["Action"])
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
        && conditions_met(&s["Condition"], request)
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

fn conditions_met(conditions: &Value, request: &Request) -> bool {
    let Value::Object(operators) = conditions else {
        return true;
    };
    operators.iter().all(|(operator, keys)| {
        let Value::Object(keys) = keys else {
            return true;
        };
        keys.iter().all(|(key, expected)| {
            let actual = match key.to_ascii_lowercase().as_str() {
                "aws:sourcearn" => request.source_arn,
                "aws:sourceaccount" => request.source_account,
                _ => return true,
            };
            condition_holds(operator, &strings(expected), actual)
        })
    })
}

/// One condition operator on one known value; an operator this reading does not know is
/// taken as met.
fn condition_holds(operator: &str, expected: &[String], actual: &str) -> bool {
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
        // ArnEquals compares like ArnLike in IAM: both take wildcards.
        "ArnEquals" | "ArnLike" | "StringLike" => expected.iter().any(|e| glob(e, actual)),
        _ => return true,
    };
    any != negated
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
    fn globs_cross_slashes_and_match_single_characters() {
        assert!(glob("arn:aws:events:*:*:rule/*", RULE));
        assert!(glob("sqs:send?essage", "sqs:sendmessage"));
        assert!(!glob("arn:aws:events:*:*:rule/x*", RULE));
    }
}
