//! The `text` renderer (being written).

use super::Report;

/// Renders the report.
pub fn render(report: &Report, _color: bool) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default()
}
