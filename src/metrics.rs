//! One CloudWatch Embedded Metric Format line per invocation.
//!
//! EMF: a JSON log line with an `_aws` block naming the metrics; CloudWatch Logs turns it
//! into metrics without any API call
//! (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::classify::FailureCategory;

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InvocationMetrics {
    /// Records in the batch.
    pub records: usize,
    /// Records acknowledged (deleted by SQS).
    pub acknowledged: usize,
    /// Records returned in `batchItemFailures`.
    pub returned: usize,
    /// Records per category.
    pub by_category: BTreeMap<FailureCategory, usize>,
    /// Requests sent to Genesys Cloud (tokens and look-ups).
    pub genesys_calls: u64,
    /// Wall time of the invocation.
    pub duration_ms: u64,
    /// Report and incident events that could not be put on the notification bus.
    pub notify_failed: usize,
    /// Incidents of the batch the incident table did not take (`INCIDENT_TABLE`).
    pub incident_update_failed: usize,
    /// Incident transitions announced (`DLQ Triage Incident` events put).
    pub incident_events: usize,
    /// Reports stored without their page (`report.html`).
    pub page_not_stored: usize,
    /// Incident transitions unannounced for longer than ten minutes, as the sweep found
    /// them (`IncidentUnannounced`; 0 from a batch).
    pub incident_unannounced: usize,
    /// 1 when the incident sweep failed (`IncidentSweepFailed`).
    pub incident_sweep_failed: usize,
}

impl InvocationMetrics {
    /// The EMF document, timestamped `epoch_ms`.
    pub(crate) fn to_emf(&self, namespace: &str, function_name: &str, epoch_ms: i64) -> Value {
        let mut metrics = vec![
            json!({"Name": "Records", "Unit": "Count"}),
            json!({"Name": "Acknowledged", "Unit": "Count"}),
            json!({"Name": "Returned", "Unit": "Count"}),
            json!({"Name": "GenesysCalls", "Unit": "Count"}),
            json!({"Name": "DurationMs", "Unit": "Milliseconds"}),
            json!({"Name": "NotifyFailed", "Unit": "Count"}),
            json!({"Name": "IncidentUpdateFailed", "Unit": "Count"}),
            json!({"Name": "IncidentEvents", "Unit": "Count"}),
            json!({"Name": "PageNotStored", "Unit": "Count"}),
            json!({"Name": "IncidentUnannounced", "Unit": "Count"}),
            json!({"Name": "IncidentSweepFailed", "Unit": "Count"}),
        ];
        let mut doc = Map::new();
        doc.insert("FunctionName".into(), json!(function_name));
        doc.insert("Records".into(), json!(self.records));
        doc.insert("Acknowledged".into(), json!(self.acknowledged));
        doc.insert("Returned".into(), json!(self.returned));
        doc.insert("GenesysCalls".into(), json!(self.genesys_calls));
        doc.insert("DurationMs".into(), json!(self.duration_ms));
        doc.insert("NotifyFailed".into(), json!(self.notify_failed));
        doc.insert(
            "IncidentUpdateFailed".into(),
            json!(self.incident_update_failed),
        );
        doc.insert("IncidentEvents".into(), json!(self.incident_events));
        doc.insert("PageNotStored".into(), json!(self.page_not_stored));
        doc.insert(
            "IncidentUnannounced".into(),
            json!(self.incident_unannounced),
        );
        doc.insert(
            "IncidentSweepFailed".into(),
            json!(self.incident_sweep_failed),
        );
        for category in FailureCategory::ALL {
            let name = format!("Failures.{category}");
            metrics.push(json!({"Name": name, "Unit": "Count"}));
            doc.insert(
                name,
                json!(self.by_category.get(&category).copied().unwrap_or(0)),
            );
        }
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": epoch_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_metric_has_a_value() {
        let m = InvocationMetrics {
            records: 3,
            acknowledged: 2,
            returned: 1,
            by_category: [(FailureCategory::RateLimitExceeded, 3)].into(),
            genesys_calls: 2,
            duration_ms: 40,
            notify_failed: 1,
            incident_update_failed: 2,
            incident_events: 1,
            page_not_stored: 1,
            incident_unannounced: 1,
            incident_sweep_failed: 1,
        };
        let doc = m.to_emf("Ns", "fn", 1);
        let declared = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        assert_eq!(declared.len(), 11 + 9);
        assert_eq!(doc["NotifyFailed"], 1);
        assert_eq!(doc["PageNotStored"], 1);
        assert_eq!(doc["IncidentUpdateFailed"], 2);
        for metric in declared {
            let name = metric["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name}");
        }
        assert_eq!(doc["Failures.RATE_LIMIT_EXCEEDED"], 3);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Ns");
    }
}
