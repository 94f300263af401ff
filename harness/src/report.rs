//! The report of a scan and its renderers (text, JSON, SARIF, JUnit, Markdown, HTML).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::{Status, Transport};
use crate::grade::Grade;
use crate::runner::CheckResult;

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod sarif;
pub mod text;

/// Version of the JSON report schema (`docs/report-schema.md`); bumped on breaking changes.
pub const REPORT_SCHEMA: &str = "mcproof-report/1";

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub skip: usize,
    pub error: usize,
    /// Failures accepted by the baseline (counted in `fail` too).
    pub accepted: usize,
}

impl Summary {
    pub fn of(results: &[CheckResult]) -> Self {
        let mut s = Self { total: results.len(), ..Self::default() };
        for r in results {
            match r.status {
                Status::Pass => s.pass += 1,
                Status::Fail => s.fail += 1,
                Status::Warn => s.warn += 1,
                Status::Skip => s.skip += 1,
                Status::Error => s.error += 1,
            }
            if r.accepted.is_some() {
                s.accepted += 1;
            }
        }
        s
    }
}

/// Everything a scan found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub tool: ToolInfo,
    /// URL or command line.
    pub target: String,
    pub transport: Transport,
    pub negotiated_version: String,
    /// The server's `serverInfo`, as it described itself.
    pub server_info: Value,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub duration_ms: u64,
    /// Seed of every generated probe; rerun with `--seed` to replay.
    pub seed: u64,
    pub summary: Summary,
    pub score: u32,
    pub grade: Grade,
    pub results: Vec<CheckResult>,
}

/// The harness that produced a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

impl Default for ToolInfo {
    fn default() -> Self {
        Self { name: "mcproof".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Json,
    Sarif,
    Junit,
    Markdown,
    Html,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        <Self as clap::ValueEnum>::from_str(s, true).ok()
    }
}

/// Parses a `--report FORMAT=PATH` argument (shared by `scan`, `baseline` and `fuzz`).
pub fn parse_report_arg(s: &str) -> Result<(Format, std::path::PathBuf), String> {
    let (format, path) = s.split_once('=').ok_or("expected FORMAT=PATH, e.g. sarif=out.sarif")?;
    let format = Format::parse(format)
        .ok_or_else(|| format!("unknown format `{format}`: use text, json, sarif, junit, markdown or html"))?;
    if path.is_empty() {
        return Err("empty PATH".into());
    }
    Ok((format, std::path::PathBuf::from(path)))
}

/// A report file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct ReportWriteError {
    pub path: std::path::PathBuf,
    pub source: std::io::Error,
}

/// Writes every `--report FORMAT=PATH` file, then `report` in `format` to stdout (coloured text
/// only on a terminal, without `--no-color` or `NO_COLOR`). Shared by `scan`, `baseline` and `fuzz`.
pub fn emit(
    report: &Report,
    format: Format,
    files: &[(Format, std::path::PathBuf)],
    no_color: bool,
) -> Result<(), ReportWriteError> {
    use std::io::{IsTerminal as _, Write as _};
    for (file_format, path) in files {
        std::fs::write(path, render(report, *file_format, false))
            .map_err(|source| ReportWriteError { path: path.clone(), source })?;
    }
    let color = format == Format::Text
        && !no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal();
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) must not turn a finished scan into an error.
    let _ = stdout.write_all(render(report, format, color).as_bytes());
    let _ = stdout.flush();
    Ok(())
}

/// Renders `report` in `format`. `color` applies to text only.
pub fn render(report: &Report, format: Format, color: bool) -> String {
    match format {
        Format::Text => text::render(report, color),
        Format::Json => json::render(report),
        Format::Sarif => sarif::render(report),
        Format::Junit => junit::render(report),
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report),
    }
}

/// RFC 3339 UTC timestamp of `t` (no external time crate needed).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
