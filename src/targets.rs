//! A failed event's rule target, as EventBridge holds it. `replay --to-target` resolves it
//! to deliver there (`replay`'s `TargetDirectory`); before a triage run, the Lambda and
//! `poll` ask only how each failed target takes its input ([`TargetInputs`]), so the
//! report says when a replay should go through `--to-target`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_eventbridge::types::Target;
use futures::future::BoxFuture;

use crate::aws_error::{self, AwsError};
use crate::dlq::DeadLetter;

/// The most one `ListTargetsByRule` page may take (a small look-up; a hung EventBridge
/// is an error naming the call, never a hung replay or batch).
const LIST_WITHIN: Duration = Duration::from_secs(10);

/// Why a rule's target could not be looked up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetsError {
    /// The rule's ARN is not an EventBridge rule ARN.
    #[error("{0} is not an EventBridge rule ARN")]
    NotARuleArn(String),
    /// `ListTargetsByRule` failed or did not answer in time.
    #[error("{error} (rule {rule})")]
    Listing {
        /// The rule's ARN.
        rule: String,
        error: AwsError,
    },
}

/// Looks targets up in EventBridge (`ListTargetsByRule`, `DescribeApiDestination`) and
/// SQS (`GetQueueUrl`).
#[derive(Debug, Clone)]
pub(crate) struct AwsTargets {
    sdk: aws_config::SdkConfig,
}

impl AwsTargets {
    /// Lookups through this configuration; a rule in another region is looked up there.
    pub(crate) fn new(sdk: aws_config::SdkConfig) -> AwsTargets {
        AwsTargets { sdk }
    }

    /// The SDK configuration lookups go through.
    pub(crate) fn sdk(&self) -> &aws_config::SdkConfig {
        &self.sdk
    }

    /// An EventBridge client for `region` (the configured one when empty).
    pub(crate) fn events(&self, region: &str) -> aws_sdk_eventbridge::Client {
        let mut config = aws_sdk_eventbridge::config::Builder::from(&self.sdk);
        if !region.is_empty() {
            config = config.region(aws_config::Region::new(region.to_owned()));
        }
        aws_sdk_eventbridge::Client::from_conf(config.build())
    }

    /// The target of `rule_arn` whose ARN is `target_arn` (`ListTargetsByRule`, every
    /// page); `None` when the rule has no such target.
    pub(crate) async fn find_target(
        &self,
        rule_arn: &str,
        target_arn: &str,
    ) -> Result<Option<Target>, TargetsError> {
        self.find_target_within(rule_arn, target_arn, LIST_WITHIN)
            .await
    }

    /// [`AwsTargets::find_target`], each page bounded by `after`.
    async fn find_target_within(
        &self,
        rule_arn: &str,
        target_arn: &str,
        after: Duration,
    ) -> Result<Option<Target>, TargetsError> {
        let RuleArn {
            region,
            bus,
            name: rule,
            ..
        } = RuleArn::parse(rule_arn)
            .ok_or_else(|| TargetsError::NotARuleArn(rule_arn.to_owned()))?;
        let events = self.events(&region);
        let mut next: Option<String> = None;
        loop {
            let call = events
                .list_targets_by_rule()
                .rule(&rule)
                .set_event_bus_name(bus.clone())
                .set_next_token(next.take())
                .send();
            let page = aws_error::within("ListTargetsByRule", after, call)
                .await
                .map_err(|error| TargetsError::Listing {
                    rule: rule_arn.to_owned(),
                    error,
                })?;
            if let Some(t) = page.targets().iter().find(|t| t.arn() == target_arn) {
                return Ok(Some(t.clone()));
            }
            match page.next_token() {
                Some(token) => next = Some(token.to_owned()),
                None => return Ok(None),
            }
        }
    }
}

/// An EventBridge rule as its ARN names it: `arn:aws:events:REGION:ACCOUNT:rule/[BUS/]NAME`
/// (a partner bus's name holds slashes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RuleArn {
    /// The whole ARN.
    pub(crate) arn: String,
    pub(crate) region: String,
    /// `None` on the default bus.
    pub(crate) bus: Option<String>,
    pub(crate) name: String,
}

impl RuleArn {
    /// The rule `arn` names; `None` when it is not an EventBridge rule ARN.
    pub(crate) fn parse(arn: &str) -> Option<RuleArn> {
        let (service, region, _, resource) = arn_parts(arn)?;
        let path = resource
            .strip_prefix("rule/")
            .filter(|_| service == "events")?;
        let (bus, name) = match path.rsplit_once('/') {
            Some((bus, name)) => (Some(bus.to_owned()), name),
            None => (None, path),
        };
        Some(RuleArn {
            arn: arn.to_owned(),
            region: region.to_owned(),
            bus,
            name: name.to_owned(),
        })
    }
}

/// The parts of an ARN: (service, region, account, resource).
pub(crate) fn arn_parts(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    Some((service, region, account, resource))
}

/// The (rule, target) pairs of the dead letters that name both: what [`TargetInputs`] is
/// asked about.
pub(crate) fn failed_targets(letters: &[DeadLetter]) -> Vec<(String, String)> {
    letters
        .iter()
        .filter_map(|l| Some((l.failure.rule_arn.clone()?, l.failure.target_arn.clone()?)))
        .collect()
}

/// How failed targets take their input: the port the Lambda and `poll` ask before a run.
pub trait TargetInputs: Send + Sync {
    /// Target ARN → `InputTransformer`, `InputPath`, `Input` or `none`, for the (rule,
    /// target) pairs given; what is not known within `budget` is left out.
    fn describe(
        &self,
        pairs: Vec<(String, String)>,
        budget: Duration,
    ) -> BoxFuture<'_, BTreeMap<String, String>>;
}

/// The in-memory twin: a fixed table of target ARN → input setting.
impl TargetInputs for BTreeMap<String, String> {
    fn describe(
        &self,
        pairs: Vec<(String, String)>,
        _budget: Duration,
    ) -> BoxFuture<'_, BTreeMap<String, String>> {
        Box::pin(async move {
            pairs
                .into_iter()
                .filter_map(|(_, target)| Some((target.clone(), self.get(&target)?.clone())))
                .collect()
        })
    }
}

/// [`TargetInputs`] from EventBridge: one `ListTargetsByRule` per (rule, target),
/// remembered for `ttl` — failures too (a role without `events:ListTargetsByRule` costs
/// one call per pair per `ttl`, not one per batch).
#[derive(Debug)]
pub(crate) struct TargetInputLookup {
    targets: AwsTargets,
    ttl: Duration,
    seen: std::sync::Mutex<HashMap<(String, String), Remembered>>,
}

/// When a (rule, target) was looked up, and its input setting if it was found.
type Remembered = (std::time::Instant, Option<&'static str>);

impl TargetInputLookup {
    /// A lookup through `targets`, remembering answers for `ttl`.
    pub(crate) fn new(targets: AwsTargets, ttl: Duration) -> TargetInputLookup {
        TargetInputLookup {
            targets,
            ttl,
            seen: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The input setting of one (rule, target), `None` when it is not known.
    async fn input_of(&self, rule: &str, target: &str) -> Option<&'static str> {
        match self.targets.find_target(rule, target).await {
            Ok(found) => found.as_ref().map(input_name),
            Err(e) => {
                tracing::info!(rule = %rule, target = %target, error = %e, "target input not looked up");
                None
            }
        }
    }
}

impl TargetInputs for TargetInputLookup {
    fn describe(
        &self,
        pairs: Vec<(String, String)>,
        budget: Duration,
    ) -> BoxFuture<'_, BTreeMap<String, String>> {
        Box::pin(async move {
            let pairs: BTreeSet<(String, String)> = pairs.into_iter().collect();
            let mut known = BTreeMap::new();
            let mut missing = Vec::new();
            {
                let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                for pair in pairs {
                    match seen.get(&pair) {
                        Some((at, answer)) if at.elapsed() < self.ttl => {
                            if let Some(a) = answer {
                                known.insert(pair.1.clone(), (*a).to_owned());
                            }
                        }
                        _ => missing.push(pair),
                    }
                }
            }
            let lookups = missing.into_iter().map(|(rule, target)| async move {
                let answer = self.input_of(&rule, &target).await;
                ((rule, target), answer)
            });
            // What does not answer in time is tried again next time, not remembered.
            if let Ok(answers) =
                tokio::time::timeout(budget, futures::future::join_all(lookups)).await
            {
                let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                for (pair, answer) in answers {
                    if let Some(a) = answer {
                        known.insert(pair.1.clone(), a.to_owned());
                    }
                    seen.insert(pair, (std::time::Instant::now(), answer));
                }
            }
            known
        })
    }
}

/// The name the report gives a target's input setting.
fn input_name(target: &Target) -> &'static str {
    if target.input_transformer().is_some() {
        "InputTransformer"
    } else if target.input_path().is_some() {
        "InputPath"
    } else if target.input().is_some() {
        "Input"
    } else {
        "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws_error::shapes;

    /// The listing's failure is said once, printed with its causes or not.
    #[test]
    fn a_failed_listing_says_its_cause_once() {
        let e = TargetsError::Listing {
            rule: "arn:r".into(),
            error: AwsError::TimedOut {
                action: "events:ListTargetsByRule".into(),
                after: Duration::from_secs(10),
            },
        };
        assert_eq!(
            e.to_string(),
            "events:ListTargetsByRule: no answer within 10s (rule arn:r)"
        );
        assert_eq!(crate::aws_error::said_twice(&e), Vec::<String>::new());
    }

    /// A hung EventBridge: the look-up fails naming the call and the rule, in its time.
    #[tokio::test]
    async fn a_hung_target_listing_is_a_timeout_naming_the_call() {
        let targets = AwsTargets::new(shapes::hole_sdk().await);
        let rule = "arn:aws:events:us-east-1:111122223333:rule/genesys-bus/to-crm";
        let e = targets
            .find_target_within(rule, "arn:t", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(
            &e,
            TargetsError::Listing { rule: r, error: AwsError::TimedOut { .. } } if r == rule
        ));
        assert_eq!(
            e.to_string(),
            format!("ListTargetsByRule: no answer within 300ms (rule {rule})")
        );
    }

    /// A rule ARN that is not a rule's: named, before any call.
    #[tokio::test]
    async fn a_rule_arn_that_is_not_a_rules_is_named() {
        let targets = AwsTargets::new(shapes::hole_sdk().await);
        let arn = "arn:aws:sqs:us-east-1:111122223333:q";
        let e = targets.find_target(arn, "arn:t").await.unwrap_err();
        assert!(matches!(&e, TargetsError::NotARuleArn(a) if a == arn));
        assert_eq!(
            e.to_string(),
            format!("{arn} is not an EventBridge rule ARN")
        );
    }
}
