//! The function's daily audit: the same checks as `dlq-triage doctor` (its own
//! configuration included), and one `DLQ Triage Finding` event on `NOTIFY_EVENT_BUS` per
//! new finding. New means: not seen in the last [`SEEN_FOR`] by an earlier run, as an item
//! of the incident table (`INCIDENT_TABLE`, key `finding#<code>#<resource>`, removed by the
//! table's TTL 30 days after it was last seen). Without the table every run announces
//! every finding.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};

use super::{Audit, Finding, Scope};
use crate::aws_error::{AwsError, within};
use crate::health::GenesysAccess;

/// The event's source (the tool's) and detail-type.
pub(crate) const SOURCE: &str = "genesys-dlq-triage";
/// The detail-type of one finding's event.
pub(crate) const DETAIL_TYPE: &str = "DLQ Triage Finding";
/// A finding seen within this long is not new (the schedule runs daily; one missed run
/// does not announce everything again).
pub(crate) const SEEN_FOR: chrono::Duration = chrono::Duration::hours(36);
/// How long a finding's item outlives its last sighting.
const KEEP_FOR: chrono::Duration = chrono::Duration::days(30);
/// `PutEvents` takes at most 10 entries.
const ENTRIES_PER_CALL: usize = 10;

/// What one scheduled run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Announced {
    /// Findings of the audit.
    pub findings: usize,
    /// Calls that failed or were denied.
    pub unavailable: usize,
    /// Events put for new findings.
    pub announced: usize,
    /// New findings whose event could not be put (tried again next run).
    pub failed: usize,
}

/// The scheduled audit, built once per container.
#[derive(Debug, Clone)]
pub(crate) struct ScheduledAudit {
    pub(crate) sdk: aws_config::SdkConfig,
    /// The function's own name: its configuration is audited too.
    pub(crate) function: String,
    pub(crate) notify_bus: Option<String>,
    pub(crate) table: Option<String>,
    pub(crate) timeout: Duration,
}

impl ScheduledAudit {
    /// Audits, then announces each new finding; the whole run bounded by `budget`.
    pub(crate) async fn run(
        &self,
        genesys: Option<&GenesysAccess>,
        now: DateTime<Utc>,
        budget: Duration,
    ) -> Announced {
        let scope = Scope {
            function: Some(self.function.clone()),
            ..Scope::default()
        };
        let audit = match tokio::time::timeout(
            budget,
            super::audit(&self.sdk, genesys, &scope, self.timeout),
        )
        .await
        {
            Ok(audit) => audit,
            Err(_) => {
                tracing::error!(budget = ?budget, "the scheduled audit did not finish in time");
                return Announced::default();
            }
        };
        for f in &audit.findings {
            tracing::warn!(code = f.code, severity = f.severity.as_str(), resource = %f.resource, problem = %f.problem, "doctor finding");
        }
        for u in &audit.unavailable {
            tracing::warn!(unavailable = %u, "doctor check not run");
        }
        let mut done = Announced {
            findings: audit.findings.len(),
            unavailable: audit.unavailable.len(),
            ..Announced::default()
        };
        let Some(bus) = &self.notify_bus else {
            return done;
        };
        let fresh = self.new_findings(&audit, now).await;
        let events = aws_sdk_eventbridge::Client::new(&self.sdk);
        for chunk in fresh.chunks(ENTRIES_PER_CALL) {
            let entries = chunk
                .iter()
                .map(|f| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(bus)
                        .source(SOURCE)
                        .detail_type(DETAIL_TYPE)
                        .detail(detail(f, &audit).to_string())
                        .build()
                })
                .collect();
            let put = within(
                "PutEvents",
                self.timeout,
                events.put_events().set_entries(Some(entries)).send(),
            )
            .await;
            let failed: Vec<&Finding> = match put {
                Ok(out) => chunk
                    .iter()
                    .zip(out.entries())
                    .filter(|(_, e)| e.error_code().is_some())
                    .map(|(f, _)| f)
                    .collect(),
                Err(e @ AwsError::Failed { .. }) => {
                    tracing::error!(error = %e, "finding events not put");
                    chunk.iter().collect()
                }
                Err(AwsError::TimedOut { .. }) => chunk.iter().collect(),
            };
            done.announced += chunk.len() - failed.len();
            done.failed += failed.len();
            for f in failed {
                self.forget(f).await;
            }
        }
        done
    }

    /// The findings not seen by a run within [`SEEN_FOR`], marking each as seen now.
    async fn new_findings(&self, audit: &Audit, now: DateTime<Utc>) -> Vec<Finding> {
        let Some(table) = &self.table else {
            return audit.findings.clone();
        };
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.sdk);
        let cutoff = (now - SEEN_FOR).timestamp_millis();
        let mut fresh = Vec::new();
        for f in &audit.findings {
            let update = dynamodb
                .update_item()
                .table_name(table)
                .key("incidentKey", AttributeValue::S(key(f)))
                .update_expression("SET seenAt = :now, expiresAt = :expires")
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(now.timestamp_millis().to_string()),
                )
                .expression_attribute_values(
                    ":expires",
                    AttributeValue::N((now + KEEP_FOR).timestamp().to_string()),
                )
                .return_values(ReturnValue::UpdatedOld)
                .send();
            match within("UpdateItem", self.timeout, update).await {
                Ok(out) => {
                    let seen: Option<i64> = out
                        .attributes()
                        .and_then(|a| a.get("seenAt"))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse().ok());
                    if seen.is_none_or(|s| s < cutoff) {
                        fresh.push(f.clone());
                    }
                }
                // The table is best effort: announce rather than stay silent.
                Err(e @ AwsError::Failed { .. }) => {
                    tracing::warn!(error = %e, "finding not deduplicated");
                    fresh.push(f.clone());
                }
                Err(AwsError::TimedOut { .. }) => fresh.push(f.clone()),
            }
        }
        fresh
    }

    /// Forgets that `f` was seen, so the next run announces it.
    async fn forget(&self, f: &Finding) {
        let Some(table) = &self.table else {
            return;
        };
        let remove = aws_sdk_dynamodb::Client::new(&self.sdk)
            .update_item()
            .table_name(table)
            .key("incidentKey", AttributeValue::S(key(f)))
            .update_expression("REMOVE seenAt")
            .send();
        if let Err(e @ AwsError::Failed { .. }) = within("UpdateItem", self.timeout, remove).await {
            tracing::warn!(error = %e, "finding not forgotten");
        }
    }
}

/// A finding's item key and its events' `dedupKey`; a resource too long for a DynamoDB key
/// is named by its SHA-256.
pub(crate) fn key(f: &Finding) -> String {
    use sha2::{Digest, Sha256};
    let key = format!("finding#{}#{}", f.code, f.resource);
    if key.len() <= 1024 {
        return key;
    }
    format!(
        "finding#{}#sha256:{}",
        f.code,
        hex::encode(Sha256::digest(&f.resource))
    )
}

/// The event's detail: the finding's fields, its `dedupKey` and the audit's time.
fn detail(f: &Finding, audit: &Audit) -> serde_json::Value {
    let mut detail = serde_json::to_value(f).unwrap_or_default();
    detail["dedupKey"] = key(f).into();
    detail["generatedAt"] = audit.generated_at.clone().into();
    detail
}
