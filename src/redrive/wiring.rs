//! The production redrive, built once per container from the SDK configuration: the
//! journal in `INCIDENT_TABLE`, the payloads below `s3://REPORT_BUCKET/REPORT_PREFIX`,
//! deliveries planned as `replay --to-target` plans them (the API destination's auth from
//! its own connection), events on `NOTIFY_EVENT_BUS`, the gate through `AwsHealth`.

use std::sync::Arc;
use std::time::Duration;

use super::ports::{AwsDeliver, BusNotices, Notices, StoredPayloads};
use super::{DynamoJournal, RedrivePolicy, Redriver};
use crate::artifacts::s3_client;
use crate::connection::{AwsConnectionAuth, ConnectionAuth};
use crate::health::AwsHealth;
use crate::reports::{Reader, ReportArg};

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
    let auth: Arc<dyn ConnectionAuth> = Arc::new(AwsConnectionAuth::new(sdk.clone()));
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
