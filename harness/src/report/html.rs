//! The `html` renderer: one self-contained HTML file (inline CSS, no script, no external
//! resource) with a grade badge, the score and target, a table of counts per area, and every
//! result with its evidence in an expandable `<details>`.
//!
//! Every interpolated string is HTML-escaped after its control and deceptive characters are
//! made visible, and a Content-Security-Policy meta tag forbids scripts and remote loads, so a
//! hostile server's words in the evidence stay words.

use std::fmt::Write as _;

use crate::check::Status;
use crate::evidence::Exchange;
use crate::grade::Grade;
use crate::runner::CheckResult;

use super::Report;
use super::text::{by_area, counts, counts_line, exchange_line, is_finding, seconds, server_label, visible};

/// HTML-escapes `s` for text and for quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line of server-controlled text, made visible and escaped.
fn e(s: &str) -> String {
    escape(&visible(s, false))
}

/// Multi-line server-controlled text (for `<pre>`), made visible and escaped.
fn pre(s: &str) -> String {
    escape(&visible(s, true))
}

const CSS: &str = r#"
:root{--pass:#1a7f37;--warn:#9a6700;--fail:#cf222e;--skip:#57606a;--error:#8250df;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;margin:0;padding:24px 32px;max-width:1200px}
header{display:flex;gap:24px;align-items:center;border-bottom:1px solid var(--line);padding-bottom:16px}
.badge{flex:none;width:96px;height:96px;border-radius:50%;display:flex;align-items:center;justify-content:center;font-size:56px;font-weight:700;color:#fff}
.g-A{background:var(--pass)}.g-B{background:#4d8f2a}.g-C{background:var(--warn)}.g-D{background:#bc4c00}.g-F{background:var(--fail)}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:20px 0 6px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}
dl.meta dt{color:#57606a}dl.meta dd{margin:0;word-break:break-all}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid var(--line);padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:var(--bg)}
.tag{display:inline-block;min-width:52px;text-align:center;font-size:12px;font-weight:700;border-radius:4px;padding:1px 6px;color:#fff}
.s-PASS{background:var(--pass)}.s-WARN{background:var(--warn)}.s-FAIL{background:var(--fail)}.s-SKIP{background:var(--skip)}.s-ERROR{background:var(--error)}
details.result{border:1px solid var(--line);border-radius:6px;margin:6px 0;background:#fff}
details.result>summary{cursor:pointer;padding:6px 10px}
details.result[open]>summary{border-bottom:1px solid var(--line);background:var(--bg)}
.id{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
.level{font-size:12px;color:#57606a;border:1px solid var(--line);border-radius:10px;padding:0 6px}
.msg{display:block;color:#424a53;margin-top:2px}
.accepted{font-size:12px;color:var(--skip);font-style:italic}
.body{padding:8px 14px}
.body dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0 0 8px}
.body dt{color:#57606a}.body dd{margin:0}
pre{background:var(--bg);border:1px solid var(--line);border-radius:4px;padding:8px;overflow:auto;white-space:pre-wrap;word-break:break-all;font-size:12px;max-height:400px}
details.ex{margin:4px 0}details.ex>summary{cursor:pointer;font-family:ui-monospace,monospace;font-size:12px}
footer{margin-top:32px;border-top:1px solid var(--line);padding-top:8px;color:#57606a;font-size:12px}
"#;

fn grade_class(g: Grade) -> &'static str {
    match g {
        Grade::A => "g-A",
        Grade::B => "g-B",
        Grade::C => "g-C",
        Grade::D => "g-D",
        Grade::F => "g-F",
    }
}

fn exchange(out: &mut String, n: usize, x: &Exchange) {
    let _ = writeln!(out, "<details class=\"ex\"><summary>#{n} {}</summary>", e(&exchange_line(x)));
    let mut req = format!("{} {}\n", x.request.method, x.request.target);
    for (k, v) in &x.request.headers {
        let _ = writeln!(req, "{k}: {v}");
    }
    if !x.request.body.is_empty() {
        let _ = write!(req, "\n{}", x.request.body);
    }
    let _ = writeln!(out, "<div>Request</div><pre>{}</pre>", pre(&req));
    match &x.response {
        Some(resp) => {
            let mut text = format!("{}\n", resp.status);
            for (k, v) in &resp.headers {
                let _ = writeln!(text, "{k}: {v}");
            }
            if !resp.body.is_empty() {
                let _ = write!(text, "\n{}", resp.body);
            }
            if resp.truncated {
                text.push_str("\n[… truncated]");
            }
            let _ = writeln!(out, "<div>Response ({} ms)</div><pre>{}</pre>", x.elapsed_ms, pre(&text));
        }
        None => {
            let _ = writeln!(
                out,
                "<div>No response after {} ms{}</div>",
                x.elapsed_ms,
                x.error.as_deref().map(|err| format!(": {}", e(err))).unwrap_or_default()
            );
        }
    }
    out.push_str("</details>\n");
}

fn result(out: &mut String, r: &CheckResult) {
    let status = r.status.as_str();
    let open = if matches!(r.status, Status::Fail | Status::Error) && r.accepted.is_none() { " open" } else { "" };
    let _ = writeln!(out, "<details class=\"result\" id=\"{}\"{open}>", e(&r.id));
    let accepted = if r.accepted.is_some() { " <span class=\"accepted\">accepted by baseline</span>" } else { "" };
    let _ = writeln!(
        out,
        "<summary><span class=\"tag s-{status}\">{status}</span> <span class=\"id\">{}</span> {} <span class=\"level\">{}</span>{accepted}<span class=\"msg\">{}</span></summary>",
        e(&r.id),
        e(&r.title),
        r.level,
        e(&r.message)
    );
    out.push_str("<div class=\"body\"><dl>\n");
    if let Some(reason) = &r.accepted {
        let _ = writeln!(out, "<dt>Accepted</dt><dd>{}</dd>", e(reason));
    }
    let _ = writeln!(out, "<dt>Remediation</dt><dd>{}</dd>", e(&r.remediation));
    let _ = writeln!(out, "<dt>Source</dt><dd>{}</dd>", e(&r.source));
    let kind = serde_json::to_value(r.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let _ = writeln!(
        out,
        "<dt>Check</dt><dd>{} · weight {} · {} · {}</dd>",
        r.level,
        r.weight,
        e(&kind),
        seconds(r.duration_ms)
    );
    out.push_str("</dl>\n");
    if r.evidence.is_empty() {
        out.push_str("<div class=\"accepted\">No exchange recorded.</div>\n");
    }
    for (i, x) in r.evidence.iter().enumerate() {
        exchange(out, i + 1, x);
    }
    out.push_str("</div></details>\n");
}

/// Renders the report as one self-contained HTML page.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let version = if report.negotiated_version.is_empty() { "none negotiated" } else { &report.negotiated_version };
    let transport = match report.transport {
        crate::check::Transport::Http => "HTTP",
        crate::check::Transport::Stdio => "stdio",
    };
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>mcproof report: grade {} · {}</title>", report.grade, e(&report.target));
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>");

    let _ = writeln!(
        out,
        "<header>\n<div class=\"badge {}\" title=\"grade\">{}</div>\n<div>",
        grade_class(report.grade),
        report.grade
    );
    let _ = writeln!(out, "<h1>mcproof report · score {}/100</h1>", report.score);
    out.push_str("<dl class=\"meta\">\n");
    for (k, v) in [
        ("Target", format!("{} ({transport})", report.target)),
        ("Server", server_label(report)),
        ("Protocol", version.to_owned()),
        ("Started", report.started_at.clone()),
        ("Duration", seconds(report.duration_ms)),
        ("Seed", report.seed.to_string()),
        ("Harness", format!("{} {} · {}", report.tool.name, report.tool.version, report.schema)),
    ] {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{}</dd>", e(&v));
    }
    out.push_str("</dl>\n</div>\n</header>\n");

    let _ = writeln!(out, "<p>{}. SKIP and ERROR are not scored.</p>", e(&counts_line(report)));

    let areas = by_area(report);
    out.push_str("<h2>By area</h2>\n<table>\n<thead><tr><th>Area</th><th>Pass</th><th>Warn</th><th>Fail</th><th>Skip</th><th>Error</th><th>Accepted</th></tr></thead>\n<tbody>\n");
    for (area, results) in &areas {
        let c = counts(results);
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#area-{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e(area),
            e(area),
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5]
        );
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "</tbody>\n<tfoot><tr><th>All</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></tfoot>\n</table>",
        s.pass, s.warn, s.fail, s.skip, s.error, s.accepted
    );

    let findings = report.results.iter().filter(|r| is_finding(r)).count();
    let _ = writeln!(out, "<h2>Results</h2>\n<p>{findings} finding(s); within each area, findings come first.</p>");
    for (area, results) in &areas {
        let _ = writeln!(out, "<h3 id=\"area-{}\">{}</h3>", e(area), e(area));
        for r in results {
            result(&mut out, r);
        }
    }
    let _ = writeln!(
        out,
        "<footer>Generated by {} {} · replay generated probes with --seed {} · scoring: docs/scoring.md</footer>\n</body>\n</html>",
        e(&report.tool.name),
        e(&report.tool.version),
        report.seed
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_all_five() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
