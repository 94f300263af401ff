//! Proof cases for the `stdio`, `tools` and `errors` checks: each names the reference-server
//! fault switch that breaks exactly the control its check tests.

use super::common::Case;

pub fn cases() -> Vec<Case> {
    vec![
        // stdio
        Case::stdio_fault("stdio/clean-stdout", "stdio-clean-stdout"),
        Case::stdio_fault("stdio/newline-framing", "stdio-framing"),
        // tools
        Case::fault("tools/input-schema-valid", "tool-schema"),
        Case::fault("tools/names", "tool-names"),
        Case::fault("tools/unknown-tool-error", "unknown-tool-error"),
        Case::fault("tools/annotations-coherent", "annotations"),
        Case::fault("tools/icon-uris", "icon-uris"),
        Case::fault("tools/descriptions", "tool-description"),
        // errors
        Case::fault("errors/no-internals", "error-sanitization"),
        Case::fault("errors/canary-not-echoed", "canary-echo"),
        Case::fault("errors/invalid-cursor", "invalid-cursor"),
    ]
}
