//! Telling the incident channel: one EventBridge event per stored report
//! (`NOTIFY_EVENT_BUS`). Users route it with a rule (SNS, chat, a pager) and filter on its
//! categories. Best effort: bounded in time, and it never changes what is acknowledged.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::artifacts::ReportKeys;
use crate::aws_error::{AwsError, within};
use crate::health::{Bounds, GenesysAccess, HealthQuery, TargetHealth};
use crate::incidents::{self, Change, EventContext, Transition};
use crate::report::{Report, headline, s3_console_link};

/// The event's `source`.
pub(crate) const SOURCE: &str = "genesys-dlq-triage";
/// The event's `detail-type`.
pub(crate) const DETAIL_TYPE: &str = "DLQ Triage Report";
/// How many incidents the event lists, largest first.
const TOP_INCIDENTS: usize = 5;

/// The event's `detail`: the headline, counts per category, the top incidents, and where
/// the report is (S3 URIs and console links).
pub(crate) fn detail(report: &Report, bucket: &str, keys: &ReportKeys, region: &str) -> Value {
    let console = |key: &str| s3_console_link(bucket, key, region);
    let incidents: Vec<Value> = report
        .summary
        .incidents
        .iter()
        .take(TOP_INCIDENTS)
        .map(|i| {
            json!({
                "category": i.category,
                "targetArn": i.target_arn,
                "count": i.count,
                "firstSeen": i.first_seen,
                "lastSeen": i.last_seen,
                "recommendedAction": i.recommended_action,
            })
        })
        .collect();
    let mut detail = json!({
        "headline": headline(report).replace("**", "").replace('`', ""),
        "reportId": report.report_id,
        "totalFailures": report.total_failures,
        "byCategory": report.summary.by_category,
        "categories": report.summary.by_category.keys().collect::<Vec<_>>(),
        "topIncidents": incidents,
        "report": {
            "json": format!("s3://{bucket}/{}", keys.json),
            "markdown": format!("s3://{bucket}/{}", keys.markdown),
        },
        "consoleLinks": {
            "json": console(&keys.json),
            "markdown": console(&keys.markdown),
        },
    });
    if let Some(html) = &keys.html {
        detail["report"]["html"] = json!(format!("s3://{bucket}/{html}"));
        detail["consoleLinks"]["html"] = json!(console(html));
    }
    detail
}

/// Who hears of a stored report and of an incident's transitions: the port the triage
/// service announces through.
pub trait Announce: Send + Sync {
    /// Announces `report`, stored under `keys`, within `timeout`; why
    /// not, when it was not accepted.
    fn announce<'a>(
        &'a self,
        report: &'a Report,
        keys: &'a ReportKeys,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), NotifyError>>;

    /// Announces one incident transition within `timeout`; a `resolved` one with the
    /// target's health, and the Genesys side's through `genesys` when given.
    fn incident<'a>(
        &'a self,
        change: &'a Change,
        genesys: Option<&'a GenesysAccess>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), NotifyError>>;
}

/// Puts report and incident events on one bus, naming where the reports are.
#[derive(Debug, Clone)]
pub(crate) struct Notifier {
    events: aws_sdk_eventbridge::Client,
    bus: String,
    bucket: String,
    prefix: String,
    /// Looks the target's health up for `resolved` events.
    health: Option<std::sync::Arc<dyn TargetHealth>>,
}

impl Notifier {
    /// A notifier to `bus` (a name or ARN) for reports stored in `bucket` below `prefix`;
    /// an empty `bucket` (no bucket name is empty) when none is known, as for
    /// `dlq-triage incidents` without `--bucket` or `REPORT_BUCKET`.
    pub(crate) fn new(
        events: aws_sdk_eventbridge::Client,
        bus: String,
        bucket: String,
        prefix: &str,
    ) -> Notifier {
        Notifier {
            events,
            bus,
            bucket,
            prefix: prefix.trim_start_matches('/').to_owned(),
            health: None,
        }
    }

    /// Adds the target's health over the incident (EventBridge's metrics for its rules,
    /// its API destination's limit, the partner source's state) to each `resolved` event,
    /// looked up through `health`.
    pub(crate) fn with_health(mut self, health: impl TargetHealth + 'static) -> Notifier {
        self.health = Some(std::sync::Arc::new(health));
        self
    }

    /// What an incident's event says of where the reports are (nothing when no bucket is
    /// known), and the console's region.
    pub(crate) fn context(&self) -> EventContext {
        EventContext {
            reports: (!self.bucket.is_empty())
                .then(|| format!("s3://{}/{}", self.bucket, self.prefix)),
            region: self.region(),
        }
    }

    fn region(&self) -> String {
        self.events
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    /// Puts one event of `detail_type` with `detail`, within `timeout`.
    async fn put(
        &self,
        detail_type: &str,
        detail: &Value,
        timeout: Duration,
    ) -> Result<(), NotifyError> {
        put_event(&self.events, &self.bus, detail_type, detail, timeout).await
    }
}

/// Why an event was not put on the bus. The text names the call and what it said, never
/// the event's content.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The bus did not answer in time.
    #[error("PutEvents did not answer within {0:?}")]
    Timeout(Duration),
    /// The call failed (described as one line, the service's code kept).
    #[error(transparent)]
    Call(BusCall),
    /// The bus took the call and refused the entry.
    #[error("PutEvents: {code}: {message}")]
    Refused {
        /// The entry's error code.
        code: String,
        /// Its error message.
        message: String,
    },
}

/// A `PutEvents` call that failed: the service's (or the way to it's) error, as one line.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BusCall(Box<AwsError>);

impl BusCall {
    /// The service's error code, when it said one.
    pub fn code(&self) -> Option<&str> {
        self.0.code()
    }
}

/// Puts one event of ours (`source` [`SOURCE`]) of `detail_type` with `detail` on `bus`,
/// within `timeout`; a refused entry is an error naming its code.
pub(crate) async fn put_event(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    detail_type: &str,
    detail: &Value,
    timeout: Duration,
) -> Result<(), NotifyError> {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(SOURCE)
        .detail_type(detail_type)
        .detail(detail.to_string())
        .build();
    let put = events.put_events().entries(entry).send();
    match within("PutEvents", timeout, put).await {
        Err(AwsError::TimedOut { after, .. }) => Err(NotifyError::Timeout(after)),
        Err(e) => Err(NotifyError::Call(BusCall(Box::new(e)))),
        Ok(out) if out.failed_entry_count() > 0 => {
            let failed = out.entries().first();
            Err(NotifyError::Refused {
                code: (failed.and_then(|f| f.error_code()))
                    .unwrap_or("unknown")
                    .to_owned(),
                message: (failed.and_then(|f| f.error_message()))
                    .unwrap_or_default()
                    .to_owned(),
            })
        }
        Ok(_) => Ok(()),
    }
}

impl Announce for Notifier {
    /// The console links name the client's region.
    fn announce<'a>(
        &'a self,
        report: &'a Report,
        keys: &'a ReportKeys,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let detail = detail(report, &self.bucket, keys, &self.region());
            self.put(DETAIL_TYPE, &detail, timeout).await
        })
    }

    fn incident<'a>(
        &'a self,
        change: &'a Change,
        genesys: Option<&'a GenesysAccess>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let context = self.context();
            let started = std::time::Instant::now();
            let mut detail = incidents::detail(change, &context);
            if let (Some(health), Transition::Resolved) = (&self.health, change.transition) {
                // Each call a fifth of the time, all of them four fifths: the last fifth is
                // the put's, which is made anyway.
                let query = HealthQuery::of_incident(&change.item);
                let bounds = Bounds {
                    per_call: timeout / 5,
                    total: timeout * 4 / 5,
                };
                let health = health.look_up(&query, genesys, bounds).await;
                detail["health"] = serde_json::to_value(health).unwrap_or_default();
            }
            let left = timeout.saturating_sub(started.elapsed());
            self.put(incidents::DETAIL_TYPE, &detail, left).await
        })
    }
}

/// The in-memory twin: remembers the JSON key of each report announced and each incident
/// transition, or refuses.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct MemoryAnnouncer {
    announced: std::sync::Mutex<Vec<String>>,
    incidents: std::sync::Mutex<Vec<Change>>,
    refuse: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl MemoryAnnouncer {
    /// The JSON keys announced, in order.
    pub(crate) fn announced(&self) -> Vec<String> {
        self.announced.lock().unwrap().clone()
    }

    /// The incident transitions announced, in order.
    pub(crate) fn incidents(&self) -> Vec<Change> {
        self.incidents.lock().unwrap().clone()
    }

    /// Every later announcement is refused (`true`), or taken again.
    pub(crate) fn refuse(&self, on: bool) {
        self.refuse.store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What the twin answers when it refuses: the bus's refusal of the entry.
#[cfg(test)]
fn refused() -> NotifyError {
    NotifyError::Refused {
        code: "AccessDeniedException".into(),
        message: "refused".into(),
    }
}

#[cfg(test)]
impl Announce for MemoryAnnouncer {
    fn announce<'a>(
        &'a self,
        _report: &'a Report,
        keys: &'a ReportKeys,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(refused());
            }
            self.announced.lock().unwrap().push(keys.json.clone());
            Ok(())
        })
    }

    fn incident<'a>(
        &'a self,
        change: &'a Change,
        _genesys: Option<&'a GenesysAccess>,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(refused());
            }
            self.incidents.lock().unwrap().push(change.clone());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::FailureCategory;
    use crate::report::fixtures::{record, report_of};

    /// An EventBridge client whose every call gets `status` with `body` (JSON 1.1) from a
    /// local server, with retries off.
    async fn answering(status: u16, body: &'static str) -> aws_sdk_eventbridge::Client {
        let endpoint = crate::http::answering(status, "application/x-amz-json-1.1", body).await;
        let hole = crate::aws_error::shapes::hole_sdk().await;
        let sdk = hole.into_builder().endpoint_url(endpoint).build();
        aws_sdk_eventbridge::Client::new(&sdk)
    }

    async fn put_to(client: &aws_sdk_eventbridge::Client) -> NotifyError {
        put_event(
            client,
            "bus",
            DETAIL_TYPE,
            &json!({}),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err()
    }

    /// A PutEvents the service refuses keeps its code; an entry the bus refuses names its
    /// own; a bus that does not answer is a timeout. Each reads as the line logged before.
    #[tokio::test]
    async fn a_refused_put_keeps_its_code() {
        let denied = answering(
            400,
            r#"{"__type":"AccessDeniedException","message":"not authorized to perform events:PutEvents"}"#,
        )
        .await;
        let e = put_to(&denied).await;
        assert!(
            matches!(&e, NotifyError::Call(c) if c.code() == Some("AccessDeniedException")),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "PutEvents: AccessDeniedException: not authorized to perform events:PutEvents"
        );
        let entry = answering(
            200,
            r#"{"FailedEntryCount":1,"Entries":[{"ErrorCode":"NotAuthorizedForSourceException","ErrorMessage":"Not authorized for the source."}]}"#,
        )
        .await;
        let e = put_to(&entry).await;
        assert!(
            matches!(&e, NotifyError::Refused { code, .. } if code == "NotAuthorizedForSourceException"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "PutEvents: NotAuthorizedForSourceException: Not authorized for the source."
        );
        let taken = answering(200, r#"{"FailedEntryCount":0,"Entries":[{"EventId":"1"}]}"#).await;
        put_event(
            &taken,
            "bus",
            DETAIL_TYPE,
            &json!({}),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_bus_that_does_not_answer_is_a_timeout() {
        let hole = aws_sdk_eventbridge::Client::new(&crate::aws_error::shapes::hole_sdk().await);
        let e = put_event(
            &hole,
            "bus",
            DETAIL_TYPE,
            &json!({}),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, NotifyError::Timeout(d) if d == Duration::from_secs(2)));
        assert_eq!(e.to_string(), "PutEvents did not answer within 2s");
    }

    #[test]
    fn the_detail_names_the_report_its_counts_and_its_top_incidents() {
        let target = "arn:aws:events:us-east-1:1:api-destination/crm/1";
        let records = (0..8)
            .map(|i| {
                let category = if i < 6 {
                    FailureCategory::RateLimitExceeded
                } else {
                    FailureCategory::TargetError
                };
                record(
                    &format!("m{i}"),
                    category,
                    Some(target),
                    Some("E"),
                    "2026-11-28T09:00:00Z",
                )
            })
            .collect();
        let report = report_of(records);
        let keys = ReportKeys {
            json: "p/reports/dt=2026-11-28/r1.json".to_owned(),
            markdown: "p/reports/dt=2026-11-28/r1.md".to_owned(),
            html: Some("p/reports/dt=2026-11-28/r1.html".to_owned()),
        };
        let d = detail(&report, "bucket", &keys, "eu-west-1");
        assert_eq!(d["totalFailures"], 8);
        assert_eq!(d["byCategory"]["RATE_LIMIT_EXCEEDED"], 6);
        assert_eq!(
            d["categories"],
            json!(["RATE_LIMIT_EXCEEDED", "TARGET_ERROR"])
        );
        assert_eq!(d["topIncidents"][0]["count"], 6);
        assert_eq!(d["topIncidents"][0]["targetArn"], target);
        assert_eq!(
            d["report"]["json"],
            "s3://bucket/p/reports/dt=2026-11-28/r1.json"
        );
        assert!(
            d["consoleLinks"]["markdown"]
                .as_str()
                .unwrap()
                .ends_with("bucket?region=eu-west-1&prefix=p/reports/dt=2026-11-28/r1.md")
        );
        assert!(!d["headline"].as_str().unwrap().contains("**"));
        assert_eq!(
            d["report"]["html"],
            "s3://bucket/p/reports/dt=2026-11-28/r1.html"
        );
        let without_page = ReportKeys { html: None, ..keys };
        let d = detail(&report, "bucket", &without_page, "eu-west-1");
        assert!(d["report"].get("html").is_none());
        assert!(d["consoleLinks"].get("html").is_none());
    }
}
