//! `--to-target`'s [`TargetDirectory`] from AWS: the rule's target (`ListTargetsByRule`),
//! its input setting, and where its kind delivers — a queue's URL (`GetQueueUrl`), an API
//! destination's endpoint and method (`DescribeApiDestination`).

use std::time::Duration;

use aws_sdk_eventbridge::types::Target;

use super::plan::{ApiDestination, LookupError, ResolvedTarget, TargetDirectory, TargetKind};
use super::transform::TargetInput;
use crate::aws_error::{AwsError, within};
use crate::targets::{AwsTargets, arn_parts};

/// How long one look-up of where a target delivers (`GetQueueUrl`,
/// `DescribeApiDestination`) may take: a hung service ends the look-up with
/// `CALL: no answer within 10s` instead of hanging the replay.
const LOOKUP_WITHIN: Duration = Duration::from_secs(10);

impl TargetDirectory for AwsTargets {
    async fn resolve(
        &self,
        rule_arn: &str,
        target_arn: &str,
    ) -> Result<ResolvedTarget, LookupError> {
        let target = self
            .find_target(rule_arn, target_arn)
            .await
            .map_err(LookupError::Listing)?
            .ok_or_else(|| LookupError::Gone {
                rule: rule_arn.to_owned(),
                target: target_arn.to_owned(),
            })?;
        let (service, region, account, resource) =
            arn_parts(target_arn).ok_or_else(|| LookupError::NotAnArn(target_arn.to_owned()))?;
        let kind = match service {
            "lambda" if resource.starts_with("function:") => TargetKind::Function,
            "sqs" => queue_kind(self, &target, (region, account), resource, LOOKUP_WITHIN).await?,
            "events" if resource.starts_with("api-destination/") => {
                api_destination_kind(self, &target, region, resource, LOOKUP_WITHIN).await?
            }
            "events" if resource.starts_with("event-bus/") => TargetKind::Bus,
            other => TargetKind::Unsupported(format!(
                "the target is a{} {other} resource, which --to-target does not deliver to; use --to-url, --to-queue, --to-function or --to-bus",
                if "aeiou".contains(other.chars().next().unwrap_or('x')) {
                    "n"
                } else {
                    ""
                }
            )),
        };
        Ok(ResolvedTarget {
            arn: target_arn.to_owned(),
            input: input_setting(&target),
            kind,
        })
    }
}

/// An SQS target: its URL, and the target's `SqsParameters.MessageGroupId`.
async fn queue_kind(
    targets: &AwsTargets,
    target: &Target,
    (region, account): (&str, &str),
    name: &str,
    after: Duration,
) -> Result<TargetKind, AwsError> {
    let mut sqs = aws_sdk_sqs::config::Builder::from(targets.sdk());
    if !region.is_empty() {
        sqs = sqs.region(aws_config::Region::new(region.to_owned()));
    }
    let call = aws_sdk_sqs::Client::from_conf(sqs.build())
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send();
    let url = within("GetQueueUrl", after, call)
        .await?
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    Ok(TargetKind::Queue {
        url,
        group_id: target
            .sqs_parameters()
            .and_then(|p| p.message_group_id())
            .map(str::to_owned),
    })
}

/// An API destination target: its endpoint and method, with the target's
/// `HttpParameters`.
async fn api_destination_kind(
    targets: &AwsTargets,
    target: &Target,
    region: &str,
    resource: &str,
    after: Duration,
) -> Result<TargetKind, AwsError> {
    let name = resource["api-destination/".len()..]
        .split('/')
        .next()
        .unwrap_or_default();
    let call = targets
        .events(region)
        .describe_api_destination()
        .name(name)
        .send();
    let api = within("DescribeApiDestination", after, call).await?;
    let params = target.http_parameters();
    let map = |m: Option<&std::collections::HashMap<String, String>>| {
        m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    Ok(TargetKind::ApiDestination(ApiDestination {
        endpoint: api.invocation_endpoint().unwrap_or_default().to_owned(),
        method: api
            .http_method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|| "POST".to_owned()),
        path_parameters: params
            .map(|p| p.path_parameter_values().to_vec())
            .unwrap_or_default(),
        headers: map(params.and_then(|p| p.header_parameters())),
        query: map(params.and_then(|p| p.query_string_parameters())),
        connection_arn: api.connection_arn().map(str::to_owned),
    }))
}

/// The target's `InputTransformer`, `InputPath` or `Input`.
fn input_setting(target: &Target) -> TargetInput {
    if let Some(t) = target.input_transformer() {
        TargetInput::Transformer {
            paths: t
                .input_paths_map()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            template: t.input_template().to_owned(),
        }
    } else if let Some(path) = target.input_path() {
        TargetInput::Path(path.to_owned())
    } else if let Some(input) = target.input() {
        TargetInput::Constant(input.to_owned())
    } else {
        TargetInput::Event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws_error::shapes;

    /// SQS and EventBridge accept the connection and never answer: each look-up ends
    /// within its bound, naming the call.
    #[tokio::test]
    async fn a_hung_look_up_is_a_timeout_naming_the_call() {
        let targets = AwsTargets::new(shapes::hole_sdk().await);
        let target = Target::builder().id("t").arn("arn").build().unwrap();
        let after = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let e = queue_kind(&targets, &target, ("us-east-1", "111"), "q", after)
            .await
            .unwrap_err();
        assert!(matches!(e, AwsError::TimedOut { .. }), "{e:?}");
        assert_eq!(e.to_string(), "GetQueueUrl: no answer within 300ms");
        let e = api_destination_kind(&targets, &target, "", "api-destination/crm/1", after)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "DescribeApiDestination: no answer within 300ms"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
