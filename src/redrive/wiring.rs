//! The production redrive, built once per container from the SDK configuration: the
//! journal in `INCIDENT_TABLE`, the payloads below `s3://REPORT_BUCKET/REPORT_PREFIX`,
//! deliveries planned as `replay --to-target` plans them (the API destination's auth from
//! its own connection), events on `NOTIFY_EVENT_BUS`, the gate through `AwsHealth`.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::ports::{AwsDeliver, BusNotices, ConnectionHeaders, Notices, StoredPayloads};
use super::{DynamoJournal, RedrivePolicy, Redriver};
use crate::health::AwsHealth;
use crate::store::s3_client;
use crate::stored::{Reader, ReportArg};

/// Each delivery's and each look-up's timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The redrive under `policy` with its journal in `table`, the payloads below `reports`
/// and its events on `notify_bus`.
pub(crate) fn build(
    policy: RedrivePolicy,
    table: &str,
    reports: ReportArg,
    notify_bus: Option<String>,
    sdk: &aws_config::SdkConfig,
    path_style: bool,
) -> Redriver {
    let journal = DynamoJournal::new(aws_sdk_dynamodb::Client::new(sdk), table);
    let payloads = StoredPayloads::new(Reader::with_s3(s3_client(sdk, path_style)), reports);
    let auth: Arc<dyn ConnectionHeaders> = Arc::new(ApiDestinationAuth::new(sdk.clone()));
    let deliver = AwsDeliver::new(sdk, auth, CALL_TIMEOUT);
    let notices = notify_bus.map(|bus| {
        Arc::new(BusNotices::new(aws_sdk_eventbridge::Client::new(sdk), bus)) as Arc<dyn Notices>
    });
    Redriver::new(
        policy,
        Arc::new(journal),
        Arc::new(payloads),
        Arc::new(deliver),
        notices,
        Arc::new(AwsHealth::new(sdk.clone())),
    )
}

/// An API destination's connection headers: `DescribeApiDestination` names the
/// connection, whose auth is read through the connection port.
pub(crate) struct ApiDestinationAuth {
    sdk: aws_config::SdkConfig,
}

impl ApiDestinationAuth {
    pub(crate) fn new(sdk: aws_config::SdkConfig) -> ApiDestinationAuth {
        ApiDestinationAuth { sdk }
    }

    /// The connection ARN of the API destination `arn` (in its own region).
    async fn connection_of(
        &self,
        arn: &str,
        deadline: tokio::time::Instant,
    ) -> Result<String, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let (region, name) = match parts.as_slice() {
            [_, _, _, region, _, resource] => (
                *region,
                resource
                    .strip_prefix("api-destination/")
                    .and_then(|r| r.split('/').next())
                    .ok_or_else(|| format!("{arn} is not an API destination"))?,
            ),
            _ => return Err(format!("{arn} is not an ARN")),
        };
        let mut conf = aws_sdk_eventbridge::config::Builder::from(&self.sdk);
        if !region.is_empty() {
            conf = conf.region(aws_config::Region::new(region.to_owned()));
        }
        let call = aws_sdk_eventbridge::Client::from_conf(conf.build())
            .describe_api_destination()
            .name(name)
            .send();
        let out = tokio::time::timeout_at(deadline, call)
            .await
            .map_err(|_| "DescribeApiDestination: no answer in time".to_owned())?
            .map_err(|e| crate::aws_error::describe("DescribeApiDestination", &e))?;
        out.connection_arn()
            .map(str::to_owned)
            .ok_or_else(|| format!("API destination {name} names no connection"))
    }
}

impl ConnectionHeaders for ApiDestinationAuth {
    fn headers<'a>(
        &'a self,
        target_arn: &'a str,
        deadline: tokio::time::Instant,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, String>> {
        Box::pin(async move {
            let connection = self.connection_of(target_arn, deadline).await?;
            Err(format!(
                "the auth of connection {connection} cannot be read by this build"
            ))
        })
    }

    fn invalidate(&self, _target_arn: &str) {}
}
