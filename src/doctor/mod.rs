//! `dlq-triage doctor`: a read-only audit of the path Genesys Cloud → partner event source
//! → bus → rule → target → dead-letter queue → the triage function, for the failures
//! that leave no dead letter (a target without a DLQ, a DLQ EventBridge may not send to,
//! a deauthorized connection, a pending event source, a topic no rule routes).
//!
//! [`audit`] gathers what AWS and Genesys Cloud say ([`aws`]), each call bounded by its own
//! timeout; the judgements on policies ([`policy`]) and event patterns ([`pattern`]) are
//! pure. A call that fails or is denied is one line of [`Audit::unavailable`], never a
//! failed audit. Findings come out most severe first; `docs/contract.md` lists every code.

mod aws;
mod pattern;
mod policy;
mod scheduled;

use std::time::Duration;

use serde::Serialize;

pub(crate) use aws::{Scope, audit};
pub(crate) use scheduled::Announced;
pub(crate) use scheduled::ScheduledAudit;

/// How bad a finding is. `critical`: events are being lost or go nowhere now; `error`:
/// events will be lost when a delivery fails; `warning`: a weakness that delays or risks
/// events; `info`: worth knowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    /// Events are lost (or accepted and never delivered) now.
    Critical,
    /// Events will be lost on the next failed delivery.
    Error,
    /// Delayed or at risk.
    Warning,
    /// Worth knowing.
    Info,
}

impl Severity {
    /// Its name in the JSON and the text.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One thing wrong (or worth knowing) about the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    /// Stable code, e.g. `target-without-dlq`.
    pub code: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// The resource: an ARN, or a name where there is no ARN.
    pub resource: String,
    /// What is wrong.
    pub problem: String,
    /// What it costs: events dropped, lost or delayed.
    pub cost: String,
    /// The change that fixes it: a CLI command or a template property.
    pub fix: String,
}

/// What the audit looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Checked {
    /// Event buses whose rules were read.
    pub buses: Vec<String>,
    /// Rules read.
    pub rules: usize,
    /// Targets read.
    pub targets: usize,
    /// Genesys Cloud EventBridge integrations read (`None`: no Genesys credentials).
    pub integrations: Option<usize>,
}

/// The audit's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Audit {
    /// When it ran (RFC 3339).
    pub generated_at: String,
    /// Most severe first.
    pub findings: Vec<Finding>,
    /// One line per call that failed or was denied: what could not be checked.
    pub unavailable: Vec<String>,
    /// What was looked at.
    pub checked: Checked,
}

/// Exit status: nothing wrong.
pub(crate) const EXIT_FINE: u8 = 0;
/// Exit status: warnings, or something could not be checked.
pub(crate) const EXIT_WARNINGS: u8 = 1;
/// Exit status: events are being lost (a `critical` or `error` finding).
pub(crate) const EXIT_LOSING: u8 = 2;

impl Audit {
    /// Findings most severe first, then by resource and code; one per (code, resource).
    pub(crate) fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            (a.severity, &a.resource, a.code).cmp(&(b.severity, &b.resource, b.code))
        });
        self.findings
            .dedup_by(|a, b| a.code == b.code && a.resource == b.resource);
    }

    /// 2 when events are being lost, 1 for warnings or checks that could not run, else 0.
    pub(crate) fn exit_status(&self) -> u8 {
        let worst = self.findings.iter().map(|f| f.severity).min();
        match worst {
            Some(Severity::Critical | Severity::Error) => EXIT_LOSING,
            Some(Severity::Warning) => EXIT_WARNINGS,
            _ if !self.unavailable.is_empty() => EXIT_WARNINGS,
            _ => EXIT_FINE,
        }
    }

    /// The plain-text listing the CLI prints.
    pub(crate) fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for f in &self.findings {
            let _ = writeln!(
                out,
                "{:<8} {}  {}\n         problem: {}\n         cost:    {}\n         fix:     {}",
                f.severity.as_str().to_uppercase(),
                f.code,
                f.resource,
                f.problem,
                f.cost,
                f.fix
            );
        }
        for u in &self.unavailable {
            let _ = writeln!(out, "unavailable: {u}");
        }
        let c = &self.checked;
        let _ = writeln!(
            out,
            "checked {} bus(es), {} rule(s), {} target(s){}: {} finding(s){}",
            c.buses.len(),
            c.rules,
            c.targets,
            match c.integrations {
                Some(n) => format!(", {n} Genesys Cloud integration(s)"),
                None => ", no Genesys Cloud credentials".to_owned(),
            },
            self.findings.len(),
            if self.findings.is_empty() && self.unavailable.is_empty() {
                " (all fine)"
            } else {
                ""
            }
        );
        out
    }
}

/// The timeout of each call the audit makes, unless told otherwise.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: &'static str, severity: Severity, resource: &str) -> Finding {
        Finding {
            code,
            severity,
            resource: resource.into(),
            problem: String::new(),
            cost: String::new(),
            fix: String::new(),
        }
    }

    #[test]
    fn most_severe_first_once_each_and_the_exit_status_follows_the_worst() {
        let mut audit = Audit {
            findings: vec![
                finding("dlq-retention-short", Severity::Warning, "q"),
                finding("target-without-dlq", Severity::Error, "r"),
                finding("dlq-retention-short", Severity::Warning, "q"),
                finding("connection-deauthorized", Severity::Critical, "c"),
            ],
            ..Audit::default()
        };
        audit.sort();
        let codes: Vec<_> = audit.findings.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            [
                "connection-deauthorized",
                "target-without-dlq",
                "dlq-retention-short"
            ]
        );
        assert_eq!(audit.exit_status(), EXIT_LOSING);
        audit.findings.drain(..2);
        assert_eq!(audit.exit_status(), EXIT_WARNINGS);
        audit.findings.clear();
        assert_eq!(audit.exit_status(), EXIT_FINE);
        audit
            .unavailable
            .push("SQS GetQueueAttributes: AccessDenied".into());
        assert_eq!(audit.exit_status(), EXIT_WARNINGS);
    }
}
