//! The `json` renderer: the report itself, pretty-printed. Its shape is the `mcproof-report/1`
//! schema documented in docs/report-schema.md and docs/report-schema.json.

use super::Report;

/// Renders the report as pretty-printed JSON.
pub fn render(report: &Report) -> String {
    // A report holds only strings, numbers and JSON values: serializing it cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_default()
}
