//! mcproof: a conformance test harness and fuzzer that proves, with evidence, whether an MCP
//! server is secure.
//!
//! This crate is a skeleton: the check engine, targets, reports and CLI are being built (see
//! the project's issue "Harness: check engine, targets, …"). It exists now so that the
//! workspace layout, lints and CI are in place.

/// The protocol revisions the harness knows about, newest first.
pub const KNOWN_REVISIONS: [&str; 4] = ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];
