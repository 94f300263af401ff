//! The `markdown` renderer: a summary for CI step summaries and pull-request comments
//! (GitHub-flavoured Markdown). A grade and score line, a table of counts, a table of the
//! findings (FAIL, WARN, ERROR), each finding's evidence in a collapsible `<details>`, and a
//! collapsed table of every result.
//!
//! Everything from the server is escaped: in tables and paragraphs every character Markdown or
//! HTML would interpret (pipes included) is backslash-escaped; evidence sits in code fences
//! longer than any backtick run inside it; `<summary>` text is HTML-escaped.

use std::fmt::Write as _;

use crate::check::Status;
use crate::evidence::Exchange;
use crate::runner::CheckResult;

use super::Report;
use super::text::{by_area, counts, counts_line, exchange_line, is_finding, ranked, seconds, server_label, visible};

/// Text for a Markdown paragraph or table cell: one line, control characters made visible,
/// `<`, `>` and `&` as HTML entities (no tag, no entity from the server), and every other
/// character with a Markdown meaning backslash-escaped (a pipe cannot end a table cell).
pub(crate) fn inline(s: &str) -> String {
    let flat = visible(s, false);
    let flat = flat.trim();
    let mut out = String::with_capacity(flat.len() + 8);
    // A leading `-`, `+`, `=` or `1.` would start a list or a heading underline.
    let b = flat.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let ends_marker = |i: usize| b.get(i).is_none_or(|c| c.is_ascii_whitespace());
    let marker = match b.first() {
        Some(b'-' | b'+') if ends_marker(1) => Some(0),
        Some(b'=') if b.iter().all(|c| *c == b'=') => Some(0),
        Some(_) if digits > 0 && matches!(b.get(digits), Some(b'.' | b')')) && ends_marker(digits + 1) => Some(digits),
        _ => None,
    };
    for (i, c) in flat.char_indices() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c if Some(i) == marker => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// HTML-escaped text (for `<summary>`).
fn html(s: &str) -> String {
    super::html::escape(&visible(s, false))
}

/// A fenced code block whose fence is longer than any run of backticks in `body`.
fn fenced(body: &str, info: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest.max(2) + 1);
    let body = body.strip_suffix('\n').unwrap_or(body);
    format!("{fence}{info}\n{body}\n{fence}\n")
}

fn status_cell(r: &CheckResult) -> String {
    let icon = match r.status {
        Status::Fail => "❌",
        Status::Warn => "⚠️",
        Status::Error => "💥",
        Status::Skip => "⏭️",
        Status::Pass => "✅",
    };
    if r.accepted.is_some() { format!("{icon} {} (accepted)", r.status) } else { format!("{icon} {}", r.status) }
}

fn exchange_block(out: &mut String, n: usize, x: &Exchange) {
    let _ = writeln!(out, "**Exchange {n}:** {}\n", inline(&exchange_line(x)));
    let mut raw = String::new();
    let _ = writeln!(raw, "> {} {}", x.request.method, x.request.target);
    for (k, v) in &x.request.headers {
        let _ = writeln!(raw, "> {k}: {v}");
    }
    if !x.request.body.is_empty() {
        let _ = writeln!(raw, ">\n{}", x.request.body);
    }
    match &x.response {
        Some(resp) => {
            let _ = writeln!(raw, "\n< {}", resp.status);
            for (k, v) in &resp.headers {
                let _ = writeln!(raw, "< {k}: {v}");
            }
            if !resp.body.is_empty() {
                let _ = writeln!(raw, "<\n{}{}", resp.body, if resp.truncated { "\n[… truncated]" } else { "" });
            }
        }
        None => {
            let _ =
                writeln!(raw, "\n< no response{}", x.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default());
        }
    }
    let _ = writeln!(raw, "\n({} ms)", x.elapsed_ms);
    out.push_str(&fenced(&visible(&raw, true), "text"));
    out.push('\n');
}

/// Renders the report as a Markdown summary.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let version = if report.negotiated_version.is_empty() { "none negotiated" } else { &report.negotiated_version };

    let _ = writeln!(out, "## mcproof: grade **{}** · score **{}/100**\n", report.grade, report.score);
    let _ = writeln!(
        out,
        "Target {} ({}) · server {} · protocol {} · seed {} · started {} · took {} · {} {}\n",
        inline(&report.target),
        match report.transport {
            crate::check::Transport::Http => "HTTP",
            crate::check::Transport::Stdio => "stdio",
        },
        inline(&server_label(report)),
        inline(version),
        report.seed,
        inline(&report.started_at),
        seconds(report.duration_ms),
        inline(&report.tool.name),
        inline(&report.tool.version),
    );

    let _ = writeln!(out, "| Pass | Warn | Fail | Accepted | Skip | Error | Total |");
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} |\n",
        s.pass, s.warn, s.fail, s.accepted, s.skip, s.error, s.total
    );
    let _ = writeln!(out, "{}. SKIP and ERROR are not scored (docs/scoring.md).\n", counts_line(report));

    let findings: Vec<&CheckResult> = ranked(report).into_iter().filter(|r| is_finding(r)).collect();
    if findings.is_empty() {
        let _ = writeln!(out, "No findings: no check failed, warned or errored.\n");
    } else {
        let _ = writeln!(out, "### Findings\n");
        let _ = writeln!(out, "| Status | Check | Level | Message |");
        let _ = writeln!(out, "|---|---|---|---|");
        for r in &findings {
            let _ = writeln!(
                out,
                "| {} | {} — {} | {} | {} |",
                status_cell(r),
                inline(&r.id),
                inline(&r.title),
                r.level,
                inline(&r.message)
            );
        }
        out.push('\n');
        let _ = writeln!(out, "### Evidence\n");
        for r in &findings {
            let _ = writeln!(out, "<details><summary>{} {} — {}</summary>\n", r.status, html(&r.id), html(&r.title));
            let _ = writeln!(out, "**{}** · {} · weight {}\n", r.status, r.level, r.weight);
            let _ = writeln!(out, "{}\n", inline(&r.message));
            if let Some(reason) = &r.accepted {
                let _ = writeln!(out, "**Accepted by baseline:** {}\n", inline(reason));
            }
            let _ = writeln!(out, "**Remediation:** {}\n", inline(&r.remediation));
            let _ = writeln!(out, "**Source:** {}\n", inline(&r.source));
            if r.evidence.is_empty() {
                let _ = writeln!(out, "No exchange recorded.\n");
            }
            for (i, x) in r.evidence.iter().enumerate() {
                exchange_block(&mut out, i + 1, x);
            }
            let _ = writeln!(out, "</details>\n");
        }
    }

    let _ = writeln!(out, "<details><summary>All {} results by area</summary>\n", s.total);
    let _ = writeln!(out, "| Area | Pass | Warn | Fail | Skip | Error |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let areas = by_area(report);
    for (area, results) in &areas {
        let c = counts(results);
        let _ = writeln!(out, "| {} | {} | {} | {} | {} | {} |", inline(area), c[0], c[1], c[2], c[3], c[4]);
    }
    out.push('\n');
    let _ = writeln!(out, "| Status | Check | Level | Message | Source |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (_, results) in &areas {
        for r in results {
            let _ = writeln!(
                out,
                "| {} | {} — {} | {} | {} | {} |",
                status_cell(r),
                inline(&r.id),
                inline(&r.title),
                r.level,
                inline(&r.message),
                inline(&r.source)
            );
        }
    }
    let _ = writeln!(out, "\n</details>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_escapes_markup_and_pipes() {
        assert_eq!(inline("a|b"), "a\\|b");
        assert_eq!(inline("<b>x</b> & co"), "&lt;b&gt;x&lt;/b&gt; &amp; co");
        assert_eq!(inline("line\nbreak"), "line break");
        assert_eq!(inline("ünïcødé ✓"), "ünïcødé ✓");
        assert_eq!(inline("- not a list"), "\\- not a list");
        assert_eq!(inline("1. not a list"), "1\\. not a list");
        assert_eq!(inline("0.1.0"), "0.1.0");
        assert_eq!(inline("-32700"), "-32700");
        assert_eq!(inline("it's \"fine\" (really)"), "it's \"fine\" (really)");
        assert_eq!(inline("*a* _b_ `c` [d](e) # ~f~ $g$"), "\\*a\\* \\_b\\_ \\`c\\` \\[d\\](e) \\# \\~f\\~ \\$g\\$");
    }

    #[test]
    fn fences_outgrow_backticks() {
        let f = fenced("a ````` b", "");
        assert!(f.starts_with("``````\n"), "{f}");
        assert!(fenced("plain", "text").starts_with("```text\n"));
    }
}
