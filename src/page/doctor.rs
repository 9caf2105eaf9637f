//! `doctor.html`: the audit's findings as one self-contained page, under the same
//! `Content-Security-Policy` and style as the report pages; every value escaped.

use std::fmt::Write;

use super::html::esc;
use super::{CSP, STYLE};
use crate::doctor::Audit;

/// The page of `audit`, whose JSON is at `data`.
pub(crate) fn render_doctor(audit: &Audit, data: &str) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"color-scheme\" content=\"light dark\">\n<meta name=\"referrer\" content=\"no-referrer\">\n<title>Pipeline audit</title>\n<style>{STYLE}</style>\n</head>\n<body class=\"{}\">\n<h1>Pipeline audit</h1>\n",
        *CSP,
        if audit.exit_status() == crate::doctor::EXIT_LOSING {
            "ongoing"
        } else {
            "over"
        }
    );
    let losing = audit
        .findings
        .iter()
        .filter(|f| {
            matches!(
                f.severity,
                crate::doctor::Severity::Critical | crate::doctor::Severity::Error
            )
        })
        .count();
    if losing > 0 {
        let _ = writeln!(
            out,
            "<p class=\"lost\">{losing} finding(s) where events are being lost or will be on the next failed delivery.</p>"
        );
    }
    let _ = writeln!(
        out,
        "<p class=\"headline\" id=\"headline\">{}</p>",
        esc(audit.text().lines().last().unwrap_or_default())
    );
    if audit.findings.is_empty() {
        out.push_str("<p>No finding.</p>\n");
    } else {
        out.push_str("<table id=\"findings\">\n<thead><tr><th>Severity</th><th>Code</th><th>Resource</th><th>Problem</th><th>Cost</th><th>Fix</th></tr></thead>\n<tbody>\n");
        for f in &audit.findings {
            let _ = writeln!(
                out,
                "<tr data-severity=\"{0}\"><td>{0}</td><td><code>{1}</code></td><td><code>{2}</code></td><td>{3}</td><td>{4}</td><td><code>{5}</code></td></tr>",
                f.severity.as_str(),
                esc(f.code),
                esc(&f.resource),
                esc(&f.problem),
                esc(&f.cost),
                esc(&f.fix)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if !audit.unavailable.is_empty() {
        out.push_str("<h2>Not checked</h2>\n<ul id=\"unavailable\">\n");
        for u in &audit.unavailable {
            let _ = writeln!(out, "<li>unavailable: {}</li>", esc(u));
        }
        out.push_str("</ul>\n");
    }
    let _ = write!(
        out,
        "<p class=\"meta\">Made by dlq-triage {} at {}. The record is <code>{}</code>; this page shows it.</p>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&audit.generated_at),
        esc(data)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::{Finding, Severity};

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
