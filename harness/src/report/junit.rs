//! The `junit` renderer: JUnit XML for CI test reports. One `<testsuite>` per area, one
//! `<testcase>` per check:
//!
//! - FAIL → `<failure message=… type=LEVEL>` with the details, remediation and evidence;
//! - ERROR → `<error>`; SKIP → `<skipped message=…>`;
//! - WARN → a passing test case whose `<system-out>` carries the warning;
//! - a FAIL (or ERROR) the baseline accepts → `<skipped message="accepted by baseline: …">`.
//!
//! All text is escaped for XML 1.0, and characters XML 1.0 forbids (most control characters)
//! are replaced by visible stand-ins, so the file is always well-formed.

use std::fmt::Write as _;

use crate::check::Status;
use crate::evidence::Exchange;
use crate::runner::CheckResult;

use super::Report;
use super::text::{by_area, server_label, visible};

/// XML-escapes `s` for text and attribute values. Control characters become visible stand-ins
/// ([`visible`]); line feeds and tabs are kept as character references so that attribute
/// value normalization does not eat them.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in visible(s, true).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Element text: like [`xml`] but line breaks stay literal (readable in CI log viewers).
fn xml_text(s: &str) -> String {
    xml(s).replace("&#10;", "\n")
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn exchange_text(out: &mut String, n: usize, x: &Exchange) {
    let _ = writeln!(out, "[{n}] {}", x.label);
    let _ = writeln!(out, "> {} {}", x.request.method, x.request.target);
    for (k, v) in &x.request.headers {
        let _ = writeln!(out, "> {k}: {v}");
    }
    if !x.request.body.is_empty() {
        let _ = writeln!(out, "> {}", x.request.body);
    }
    match &x.response {
        Some(resp) => {
            let _ = writeln!(out, "< {}", resp.status);
            for (k, v) in &resp.headers {
                let _ = writeln!(out, "< {k}: {v}");
            }
            if !resp.body.is_empty() {
                let _ = writeln!(out, "< {}{}", resp.body, if resp.truncated { " [… truncated]" } else { "" });
            }
        }
        None => {
            let _ = writeln!(out, "< no response{}", x.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default());
        }
    }
    let _ = writeln!(out, "({} ms)", x.elapsed_ms);
}

/// The full text of a result: message, level, source, remediation, evidence.
fn details(r: &CheckResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", r.status, r.message);
    if let Some(reason) = &r.accepted {
        let _ = writeln!(out, "Accepted by baseline: {reason}");
    }
    let _ = writeln!(out, "Level: {} (weight {})", r.level, r.weight);
    let _ = writeln!(out, "Source: {}", r.source);
    let _ = writeln!(out, "Remediation: {}", r.remediation);
    if !r.evidence.is_empty() {
        let _ = writeln!(out, "\nEvidence:");
        for (i, x) in r.evidence.iter().enumerate() {
            exchange_text(&mut out, i + 1, x);
        }
    }
    out
}

#[derive(Default)]
struct Tally {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    ms: u64,
}

impl Tally {
    fn add(&mut self, r: &CheckResult) {
        self.tests += 1;
        self.ms += r.duration_ms;
        match (r.status, r.accepted.is_some()) {
            (Status::Fail | Status::Error, true) | (Status::Skip, _) => self.skipped += 1,
            (Status::Fail, false) => self.failures += 1,
            (Status::Error, false) => self.errors += 1,
            (Status::Pass | Status::Warn, _) => {}
        }
    }

    fn attrs(&self) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\"",
            self.tests,
            self.failures,
            self.errors,
            self.skipped,
            secs(self.ms)
        )
    }
}

fn testcase(out: &mut String, r: &CheckResult) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"mcproof.{}\" time=\"{}\">",
        xml(&format!("{}: {}", r.id, r.title)),
        xml(&r.area),
        secs(r.duration_ms)
    );
    let body = xml_text(&details(r));
    match (r.status, &r.accepted) {
        (Status::Fail | Status::Error, Some(reason)) => {
            let _ = write!(
                out,
                "\n      <skipped message=\"{}\">{body}</skipped>\n    ",
                xml(&format!("accepted by baseline: {reason}"))
            );
        }
        (Status::Fail, None) => {
            let _ = write!(
                out,
                "\n      <failure message=\"{}\" type=\"{}\">{body}</failure>\n    ",
                xml(&r.message),
                r.level
            );
        }
        (Status::Error, None) => {
            let _ = write!(out, "\n      <error message=\"{}\" type=\"ERROR\">{body}</error>\n    ", xml(&r.message));
        }
        (Status::Skip, _) => {
            let _ = write!(out, "\n      <skipped message=\"{}\"/>\n    ", xml(&r.message));
        }
        (Status::Warn, _) => {
            let _ = write!(out, "\n      <system-out>{body}</system-out>\n    ");
        }
        (Status::Pass, _) => {
            let _ = write!(
                out,
                "\n      <system-out>{}</system-out>\n    ",
                xml_text(&format!("PASS: {}\nSource: {}", r.message, r.source))
            );
        }
    }
    out.push_str("</testcase>\n");
}

/// Renders the report as JUnit XML.
pub fn render(report: &Report) -> String {
    let areas = by_area(report);
    let mut total = Tally::default();
    for r in &report.results {
        total.add(r);
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"mcproof\" {}>", total.attrs());
    let properties = [
        ("mcproof.target", report.target.clone()),
        (
            "mcproof.transport",
            match report.transport {
                crate::check::Transport::Http => "http".to_owned(),
                crate::check::Transport::Stdio => "stdio".to_owned(),
            },
        ),
        ("mcproof.server", server_label(report)),
        ("mcproof.negotiated_version", report.negotiated_version.clone()),
        ("mcproof.grade", report.grade.to_string()),
        ("mcproof.score", report.score.to_string()),
        ("mcproof.seed", report.seed.to_string()),
        ("mcproof.version", report.tool.version.clone()),
        ("mcproof.schema", report.schema.clone()),
    ];
    for (i, (area, results)) in areas.iter().enumerate() {
        let mut t = Tally::default();
        for r in results {
            t.add(r);
        }
        let _ = writeln!(
            out,
            "  <testsuite name=\"mcproof.{}\" id=\"{i}\" {} timestamp=\"{}\">",
            xml(area),
            t.attrs(),
            xml(report.started_at.trim_end_matches('Z'))
        );
        out.push_str("    <properties>\n");
        for (k, v) in &properties {
            let _ = writeln!(out, "      <property name=\"{k}\" value=\"{}\"/>", xml(v));
        }
        out.push_str("    </properties>\n");
        // Catalogue order within a suite reads better in CI than findings-first.
        let mut ordered = results.clone();
        ordered.sort_by_key(|r| report.results.iter().position(|x| std::ptr::eq(x, *r)));
        for r in ordered {
            testcase(&mut out, r);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_drops_forbidden_characters() {
        assert_eq!(xml("<a & 'b' \"c\">"), "&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;");
        let s = xml("bell\u{7}esc\u{1b}nul\u{0}nonchar\u{fffe}");
        assert!(
            !s.chars().any(|c| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}'))
        );
        assert_eq!(xml("a\nb"), "a&#10;b");
        assert_eq!(xml_text("a\nb"), "a\nb");
    }
}
