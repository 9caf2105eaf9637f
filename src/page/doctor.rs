//! `doctor.html`: the audit's findings as one self-contained page, under the same
//! `Content-Security-Policy` and style as the report pages; every value escaped.

use askama::Template;

use super::Frame;
use crate::doctor::{Audit, Finding, Severity};

/// The audit page's view: the findings as they are, the counts worked out here.
#[derive(Template)]
#[template(path = "doctor.html")]
struct DoctorPage<'a> {
    frame: Frame<'a>,
    losing: usize,
    headline: &'a str,
    findings: &'a [Finding],
    unavailable: &'a [String],
}

/// The page of `audit`, whose JSON is at `data`.
pub(crate) fn render_doctor(audit: &Audit, data: &str) -> String {
    let losing = audit
        .findings
        .iter()
        .filter(|f| matches!(f.severity, Severity::Critical | Severity::Error))
        .count();
    let text = audit.text();
    let page = DoctorPage {
        frame: Frame::new(
            "Pipeline audit".into(),
            audit.exit_status() == crate::doctor::EXIT_LOSING,
            &audit.generated_at,
            data,
            false,
        ),
        losing,
        headline: text.lines().last().unwrap_or_default(),
        findings: &audit.findings,
        unavailable: &audit.unavailable,
    };
    super::rendered(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped_and_nothing_is_loaded() {
        let audit = Audit {
            findings: vec![Finding {
                code: "topic-unrouted",
                severity: Severity::Warning,
                resource: "bus topic <script>alert(1)</script>".into(),
                problem: "\"><img src=x>".into(),
                cost: String::new(),
                fix: String::new(),
            }],
            ..Audit::default()
        };
        let page = render_doctor(&audit, "doctor.json");
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("default-src 'none'"));
        assert!(page.contains("&lt;script&gt;"));
    }
}
