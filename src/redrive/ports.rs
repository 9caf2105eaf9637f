//! What a redrive reads, sends through and announces to: [`Payloads`] (the incident's
//! stored payloads, selected as `replay` selects them), [`Deliver`] (planned as
//! `--to-target` plans them, with the API destination's auth from its own connection, and
//! sent by the `replay` courier), [`Notices`] (`DLQ Triage Redrive` events). Each is an
//! `Arc<dyn …>` with an in-memory twin.

#[cfg(test)]
use std::collections::HashMap;
use std::sync::Arc;
#[cfg(test)]
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;

use super::journal::Run;
use crate::aws_error::{AwsError, within};
use crate::classify::FailureCategory;
use crate::connection::ConnectionAuth;
use crate::replay::{
    Attempt, AwsCourier, Candidate, Courier, Delivery, Plan, PlanError, TargetPlan,
};
use crate::reports::{Filter, Location, ReadError, Reader, ReportArg, Window};
use crate::targets::AwsTargets;

/// The detail-type of every redrive event (its source is the notifier's,
/// [`crate::notify::SOURCE`]).
pub(crate) const DETAIL_TYPE: &str = "DLQ Triage Redrive";

/// Why a run's stored payloads could not be selected or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PayloadsError {
    /// The run names a category this build does not know.
    #[error("unknown category {0}")]
    UnknownCategory(String),
    /// A report or a payload could not be read (or listed).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// An object below the reports prefix that is not a report.
    #[error("{location}: not a dlq-triage report ({error})")]
    NotAReport {
        /// Where.
        location: Location,
        /// The parser's reason.
        error: serde_json::Error,
    },
    /// The twin holds no payload for the message id.
    #[cfg(test)]
    #[error("no payload for {0}")]
    Missing(String),
}

/// Why a redrive event was not put: the notifier's one line (`PutEvents: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct NoticeError(pub String);

/// The stored payloads of a run's incident.
pub(crate) trait Payloads: Send + Sync {
    /// The run's events, once per event id, in an order that is the same at every call.
    fn select<'a>(&'a self, run: &'a Run) -> BoxFuture<'a, Result<Vec<Candidate>, PayloadsError>>;
    /// One event's stored payload.
    fn read<'a>(&'a self, record: &'a Candidate) -> BoxFuture<'a, Result<Vec<u8>, PayloadsError>>;
}

/// The filter of a run: its category and target, its window on the dead-letter clock.
pub(crate) fn filter_of(run: &Run) -> Result<Filter, PayloadsError> {
    let category = FailureCategory::ALL
        .into_iter()
        .find(|c| c.as_str() == run.category)
        .ok_or_else(|| PayloadsError::UnknownCategory(run.category.clone()))?;
    let at = |ms| chrono::DateTime::from_timestamp_millis(ms);
    Ok(Filter {
        categories: vec![category],
        targets: vec![run.target_arn.clone()],
        message_ids: Vec::new(),
        window: Window {
            since: at(run.since),
            until: at(run.until),
        },
    })
}

/// Keeps the first record of each event id (a record without one stands for itself).
pub(crate) fn once_per_event(records: Vec<Candidate>) -> Vec<Candidate> {
    let mut seen = std::collections::HashSet::new();
    records
        .into_iter()
        .filter(|c| seen.insert(c.event_id.clone().unwrap_or_else(|| c.message_id.clone())))
        .collect()
}

/// The reports below the function's prefix (`s3://REPORT_BUCKET/REPORT_PREFIX`).
pub(crate) struct StoredPayloads {
    reader: Reader,
    reports: ReportArg,
}

impl StoredPayloads {
    /// The reports below `reports`, read through `reader`.
    pub(crate) fn new(reader: Reader, reports: ReportArg) -> StoredPayloads {
        StoredPayloads { reader, reports }
    }
}

impl Payloads for StoredPayloads {
    fn select<'a>(&'a self, run: &'a Run) -> BoxFuture<'a, Result<Vec<Candidate>, PayloadsError>> {
        Box::pin(async move {
            let filter = filter_of(run)?;
            let since = filter.window.since.map(|t| t.date_naive());
            let args = std::slice::from_ref(&self.reports);
            let locations = self.reader.locate(args, since).await?;
            let mut selector = crate::replay::Selector::new(&filter);
            for location in &locations {
                let bytes = self.reader.read(location).await?;
                let report: crate::report::Report =
                    serde_json::from_slice(&bytes).map_err(|error| PayloadsError::NotAReport {
                        location: location.clone(),
                        error,
                    })?;
                selector.add(location, &report);
            }
            Ok(once_per_event(selector.finish().records))
        })
    }

    fn read<'a>(&'a self, record: &'a Candidate) -> BoxFuture<'a, Result<Vec<u8>, PayloadsError>> {
        Box::pin(async move { Ok(self.reader.read(&record.payload).await?) })
    }
}

/// The twin: records and their payloads (by message id) in memory.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct MemoryPayloads {
    /// The records, in order.
    pub records: Vec<Candidate>,
    /// Payload by message id; a missing one cannot be read.
    pub payloads: HashMap<String, Vec<u8>>,
}

#[cfg(test)]
impl Payloads for MemoryPayloads {
    fn select<'a>(&'a self, run: &'a Run) -> BoxFuture<'a, Result<Vec<Candidate>, PayloadsError>> {
        let records = filter_of(run).map(|f| {
            once_per_event(
                self.records
                    .iter()
                    .filter(|c| {
                        f.categories.contains(&c.category)
                            && c.target_arn.as_deref() == f.targets.first().map(String::as_str)
                    })
                    .cloned()
                    .collect(),
            )
        });
        Box::pin(async move {
            // A real listing waits on S3: let concurrent workers interleave here too.
            tokio::task::yield_now().await;
            records
        })
    }

    fn read<'a>(&'a self, record: &'a Candidate) -> BoxFuture<'a, Result<Vec<u8>, PayloadsError>> {
        let found = self
            .payloads
            .get(&record.message_id)
            .cloned()
            .ok_or_else(|| PayloadsError::Missing(record.message_id.clone()));
        Box::pin(async move { found })
    }
}

/// Plans and sends one event to its own rule's target.
pub(crate) trait Deliver: Send + Sync {
    /// The delivery of `payload` to the record's target, with the target's auth.
    fn plan<'a>(
        &'a self,
        record: &'a Candidate,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<Delivery, PlanError>>;
    /// One attempt.
    fn send<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Attempt>;
    /// Forgets the target's auth (after a 401/407), so the next plan reads it again.
    fn forget_auth<'a>(&'a self, target_arn: &'a str) -> BoxFuture<'a, ()>;
}

/// Plans with `replay`'s `TargetPlan` (`ListTargetsByRule`, `DescribeApiDestination`),
/// API destinations' auth from their own connection (`ConnectionAuth`), and sends with
/// `replay`'s courier.
pub(crate) struct AwsDeliver {
    plan: TargetPlan<AwsTargets>,
    courier: AwsCourier,
    auth: Arc<dyn ConnectionAuth>,
    sdk: aws_config::SdkConfig,
    timeout: Duration,
}

impl AwsDeliver {
    /// Through `sdk`, each delivery and each connection read within `timeout`.
    pub(crate) fn new(
        sdk: &aws_config::SdkConfig,
        auth: Arc<dyn ConnectionAuth>,
        timeout: Duration,
    ) -> AwsDeliver {
        AwsDeliver {
            plan: TargetPlan::new(AwsTargets::new(sdk.clone()), Vec::new(), None)
                .with_connection_auth(auth.clone(), timeout),
            courier: AwsCourier::new(Some(sdk), timeout),
            auth,
            sdk: sdk.clone(),
            timeout,
        }
    }

    /// The connection of the API destination `arn` (`DescribeApiDestination` in its region).
    async fn connection_of(&self, arn: &str) -> Result<String, ConnectionOfError> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, _, _, region, _, resource] = parts.as_slice() else {
            return Err(ConnectionOfError::NotAnArn {
                arn: arn.to_owned(),
            });
        };
        let name = resource
            .strip_prefix("api-destination/")
            .and_then(|r| r.split('/').next())
            .ok_or_else(|| ConnectionOfError::NotAnApiDestination {
                arn: arn.to_owned(),
            })?;
        let mut conf = aws_sdk_eventbridge::config::Builder::from(&self.sdk);
        if !region.is_empty() {
            conf = conf.region(aws_config::Region::new((*region).to_owned()));
        }
        let call = aws_sdk_eventbridge::Client::from_conf(conf.build())
            .describe_api_destination()
            .name(name)
            .send();
        let out = match within("DescribeApiDestination", self.timeout, call).await {
            Ok(out) => out,
            Err(AwsError::TimedOut { after, .. }) => {
                return Err(ConnectionOfError::TimedOut { after });
            }
            Err(e) => return Err(ConnectionOfError::Aws(e)),
        };
        out.connection_arn()
            .map(str::to_owned)
            .ok_or_else(|| ConnectionOfError::NoConnection {
                name: name.to_owned(),
            })
    }
}

/// Why an API destination's connection could not be found.
#[derive(Debug, thiserror::Error)]
enum ConnectionOfError {
    /// The target is not an ARN.
    #[error("{arn} is not an ARN")]
    NotAnArn { arn: String },
    /// The target is not an API destination.
    #[error("{arn} is not an API destination")]
    NotAnApiDestination { arn: String },
    /// `DescribeApiDestination` did not answer within `after`.
    #[error("DescribeApiDestination: no answer in time")]
    TimedOut { after: Duration },
    /// `DescribeApiDestination` failed.
    #[error(transparent)]
    Aws(AwsError),
    /// The API destination names no connection.
    #[error("API destination {name} names no connection")]
    NoConnection { name: String },
}

impl Deliver for AwsDeliver {
    fn plan<'a>(
        &'a self,
        record: &'a Candidate,
        payload: Vec<u8>,
    ) -> BoxFuture<'a, Result<Delivery, PlanError>> {
        Box::pin(async move { Ok(self.plan.plan(record, payload).await?.delivery) })
    }

    fn send<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Attempt> {
        Box::pin(self.courier.send(delivery))
    }

    fn forget_auth<'a>(&'a self, target_arn: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match self.connection_of(target_arn).await {
                Ok(c) => self.auth.invalidate(&c),
                Err(e) => {
                    tracing::warn!(target = %target_arn, error = %e, "connection auth not forgotten")
                }
            }
        })
    }
}

/// Puts `DLQ Triage Redrive` events.
pub(crate) trait Notices: Send + Sync {
    /// Puts one event with `detail`.
    fn put(&self, detail: serde_json::Value) -> BoxFuture<'_, Result<(), NoticeError>>;
}

/// `PutEvents` on `NOTIFY_EVENT_BUS`.
pub(crate) struct BusNotices {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl BusNotices {
    /// Events on `bus` through `client`.
    pub(crate) fn new(client: aws_sdk_eventbridge::Client, bus: String) -> BusNotices {
        BusNotices { client, bus }
    }
}

/// The most a redrive event waits for the bus.
const PUT_TIMEOUT: Duration = Duration::from_secs(3);

impl Notices for BusNotices {
    fn put(&self, detail: serde_json::Value) -> BoxFuture<'_, Result<(), NoticeError>> {
        Box::pin(async move {
            crate::notify::put_event(&self.client, &self.bus, DETAIL_TYPE, &detail, PUT_TIMEOUT)
                .await
                .map_err(|e| NoticeError(e.to_string()))
        })
    }
}

/// The twin: remembers every detail.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct MemoryNotices {
    /// What was put.
    pub put: Mutex<Vec<serde_json::Value>>,
    /// Refuse every event (as a bus that is missing or denies `PutEvents`).
    pub refuse: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl Notices for MemoryNotices {
    fn put(&self, detail: serde_json::Value) -> BoxFuture<'_, Result<(), NoticeError>> {
        if self.refuse.load(std::sync::atomic::Ordering::Relaxed) {
            return Box::pin(async { Err(NoticeError("PutEvents: refused".to_owned())) });
        }
        self.put
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(detail);
        Box::pin(async { Ok(()) })
    }
}
