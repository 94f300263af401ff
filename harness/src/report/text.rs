//! The `text` renderer: a report for a terminal. A header (target, grade, score), the results
//! grouped by area with findings (FAIL, WARN, ERROR) first and their evidence summarized, then a
//! footer with the counts. ANSI colour only when asked for.
//!
//! Everything the server controls (messages, bodies, server info) passes through [`visible`]
//! first, so a hostile server cannot write escape sequences or bidi overrides to the terminal.
//!
//! This module also holds the helpers the other human-facing renderers share: display order,
//! grouping by area, and [`visible`].

use std::fmt::Write as _;

use crate::check::Status;
use crate::evidence::Exchange;
use crate::runner::CheckResult;

use super::Report;

/// Longest body excerpt shown inline, in characters.
pub const EXCERPT_CHARS: usize = 200;

// ---------------------------------------------------------------------------------------------
// Shared helpers (used by markdown, html and junit too).

/// Display rank of a status: findings first (FAIL, WARN, ERROR), then SKIP, then PASS.
pub(crate) fn rank(status: Status) -> u8 {
    match status {
        Status::Fail => 0,
        Status::Warn => 1,
        Status::Error => 2,
        Status::Skip => 3,
        Status::Pass => 4,
    }
}

/// Whether a result is a finding a reader must look at (FAIL, WARN or ERROR).
pub(crate) fn is_finding(r: &CheckResult) -> bool {
    matches!(r.status, Status::Fail | Status::Warn | Status::Error)
}

/// The areas in the order they first appear in the report, each with its results sorted by
/// [`rank`] (stable: catalogue order within a status).
pub(crate) fn by_area(report: &Report) -> Vec<(&str, Vec<&CheckResult>)> {
    let mut areas: Vec<(&str, Vec<&CheckResult>)> = Vec::new();
    for r in &report.results {
        match areas.iter_mut().find(|(a, _)| *a == r.area) {
            Some((_, list)) => list.push(r),
            None => areas.push((r.area.as_str(), vec![r])),
        }
    }
    for (_, list) in &mut areas {
        list.sort_by_key(|r| rank(r.status));
    }
    areas
}

/// All results sorted by [`rank`] (stable).
pub(crate) fn ranked(report: &Report) -> Vec<&CheckResult> {
    let mut all: Vec<&CheckResult> = report.results.iter().collect();
    all.sort_by_key(|r| rank(r.status));
    all
}

/// Counts of one area: pass, warn, fail, skip, error, accepted.
pub(crate) fn counts(results: &[&CheckResult]) -> [usize; 6] {
    let mut c = [0; 6];
    for r in results {
        let i = match r.status {
            Status::Pass => 0,
            Status::Warn => 1,
            Status::Fail => 2,
            Status::Skip => 3,
            Status::Error => 4,
        };
        c[i] += 1;
        if r.accepted.is_some() {
            c[5] += 1;
        }
    }
    c
}

/// Characters that hide or reorder text: bidi controls, zero-width characters, Unicode tags,
/// line and paragraph separators, and noncharacters that XML forbids.
fn is_deceptive(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{FFFE}' | '\u{FFFF}'
        | '\u{E0000}'..='\u{E007F}')
}

/// `s` with every control and deceptive character made visible: C0 controls and DEL become
/// their Unicode control pictures (ESC → ␛), C1 controls and deceptive characters become
/// `\u{…}`. With `multiline`, line feeds and tabs are kept (carriage returns dropped);
/// without, all three become spaces. The result holds no character XML 1.0 forbids.
pub fn visible(s: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' if multiline => out.push(c),
            '\r' if multiline => {}
            '\n' | '\t' | '\r' => out.push(' '),
            '\u{0}'..='\u{1F}' => out.push(char::from_u32(0x2400 + u32::from(c)).unwrap_or('?')),
            '\u{7F}' => out.push('\u{2421}'),
            '\u{80}'..='\u{9F}' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c if is_deceptive(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// The first `max` characters of `s`, with `…` when cut.
pub(crate) fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The server as it described itself: `name version`, or the raw `serverInfo` when it has no
/// name.
pub(crate) fn server_label(report: &Report) -> String {
    let info = &report.server_info;
    let name = info.get("name").and_then(|v| v.as_str());
    let version = info.get("version").and_then(|v| v.as_str());
    match (name, version) {
        (Some(n), Some(v)) => format!("{n} {v}"),
        (Some(n), None) => n.to_owned(),
        _ if info.is_null() => "unknown".to_owned(),
        _ => info.to_string(),
    }
}

/// `1.234 s` for milliseconds.
pub(crate) fn seconds(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// One line for an exchange: `label: METHOD target → status` (or the transport error).
pub(crate) fn exchange_line(x: &Exchange) -> String {
    let outcome = match (&x.response, &x.error) {
        (Some(resp), _) if resp.status != 0 => format!("→ {}", resp.status),
        (Some(_), _) => "→ replied".to_owned(),
        (None, Some(err)) => format!("→ no response ({err})"),
        (None, None) => "→ no response".to_owned(),
    };
    let label = if x.label.is_empty() { String::new() } else { format!("{}: ", x.label) };
    visible(&format!("{label}{} {} {outcome}", x.request.method, x.request.target), false)
}

/// The body a reader wants first, named: the response's, else the request's.
pub(crate) fn main_body(x: &Exchange) -> Option<(&'static str, &str)> {
    match &x.response {
        Some(resp) if !resp.body.is_empty() => Some(("response", &resp.body)),
        _ if !x.request.body.is_empty() => Some(("request", &x.request.body)),
        _ => None,
    }
}

/// The summary line of counts.
pub(crate) fn counts_line(report: &Report) -> String {
    let s = &report.summary;
    let accepted = if s.accepted > 0 { format!(" ({} accepted by baseline)", s.accepted) } else { String::new() };
    format!(
        "{} checks: {} pass, {} warn, {} fail{accepted}, {} skip, {} error",
        s.total, s.pass, s.warn, s.fail, s.skip, s.error
    )
}

// ---------------------------------------------------------------------------------------------

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[1;33m";
const MAGENTA: &str = "\x1b[1;35m";
const CYAN: &str = "\x1b[36m";

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color { format!("{code}{s}{RESET}") } else { s.to_owned() }
    }

    fn status(&self, status: Status) -> String {
        let code = match status {
            Status::Pass => GREEN,
            Status::Warn => YELLOW,
            Status::Fail => RED,
            Status::Skip => CYAN,
            Status::Error => MAGENTA,
        };
        self.paint(code, &format!("{:<5}", status.as_str()))
    }

    fn grade(&self, report: &Report) -> String {
        use crate::grade::Grade;
        let code = match report.grade {
            Grade::A => GREEN,
            Grade::B | Grade::C => YELLOW,
            Grade::D | Grade::F => RED,
        };
        self.paint(code, report.grade.as_str())
    }
}

/// Renders the report for a terminal; `color` turns ANSI colour on.
pub fn render(report: &Report, color: bool) -> String {
    let p = Painter { color };
    let mut out = String::new();
    let v = |s: &str| visible(s, false);

    let _ = writeln!(
        out,
        "{}",
        p.paint(BOLD, &format!("{} {} · MCP security report", v(&report.tool.name), v(&report.tool.version)))
    );
    let transport = match report.transport {
        crate::check::Transport::Http => "http",
        crate::check::Transport::Stdio => "stdio",
    };
    let _ = writeln!(out, "  target    {} ({transport})", v(&report.target));
    let _ = writeln!(out, "  server    {}", v(&server_label(report)));
    let version = if report.negotiated_version.is_empty() { "none negotiated" } else { &report.negotiated_version };
    let _ = writeln!(out, "  protocol  {}", v(version));
    let _ = writeln!(out, "  grade     {}   score {}/100", p.paint(BOLD, &p.grade(report)), report.score);
    let _ = writeln!(
        out,
        "  seed      {} · started {} · took {}",
        report.seed,
        v(&report.started_at),
        seconds(report.duration_ms)
    );

    for (area, results) in by_area(report) {
        let c = counts(&results);
        let mut parts = Vec::new();
        for (n, label) in [(c[2], "fail"), (c[1], "warn"), (c[4], "error"), (c[3], "skip"), (c[0], "pass")] {
            if n > 0 {
                parts.push(format!("{n} {label}"));
            }
        }
        let _ = writeln!(out, "\n{}  {}", p.paint(BOLD, &v(area)), p.paint(DIM, &format!("({})", parts.join(", "))));
        for r in results {
            render_result(&mut out, &p, r);
        }
    }

    let _ = writeln!(out, "\n{}", "─".repeat(72));
    let _ = writeln!(out, "{}", counts_line(report));
    let _ = writeln!(
        out,
        "grade {} · score {}/100 · SKIP and ERROR are not scored · seed {} (replay with --seed {})",
        p.grade(report),
        report.score,
        report.seed,
        report.seed
    );
    out
}

fn render_result(out: &mut String, p: &Painter, r: &CheckResult) {
    let v = |s: &str| visible(s, false);
    let accepted = if r.accepted.is_some() { p.paint(DIM, " (accepted by baseline)") } else { String::new() };
    let _ = writeln!(out, "  {}  [{}] {} · {}{accepted}", p.status(r.status), r.level, v(&r.id), v(&r.title));
    const INDENT: &str = "         ";
    if !is_finding(r) {
        if !r.message.is_empty() {
            let _ = writeln!(out, "{INDENT}{}", p.paint(DIM, &v(&r.message)));
        }
        return;
    }
    let _ = writeln!(out, "{INDENT}{}", v(&r.message));
    if let Some(reason) = &r.accepted {
        let _ = writeln!(out, "{INDENT}accepted: {}", v(reason));
    }
    let _ = writeln!(out, "{INDENT}fix:      {}", v(&r.remediation));
    let _ = writeln!(out, "{INDENT}source:   {}", v(&r.source));
    match r.evidence.first() {
        None => {
            let _ = writeln!(out, "{INDENT}evidence: none recorded");
        }
        Some(x) => {
            let more = match r.evidence.len() {
                1 => String::new(),
                n => format!(" (+{} more exchange{})", n - 1, if n == 2 { "" } else { "s" }),
            };
            let _ = writeln!(out, "{INDENT}evidence: {}{more}", exchange_line(x));
            if let Some((which, body)) = main_body(x) {
                let _ = writeln!(out, "{INDENT}{which:<9} {}", p.paint(DIM, &cut(&v(body), EXCERPT_CHARS)));
            }
        }
    }
}
