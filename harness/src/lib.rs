//! mcproof: a conformance test harness and fuzzer that proves, with evidence, whether an MCP
//! server is secure.
//!
//! A scan connects to a [`target`], learns what the server offers ([`probe`]), runs the
//! [`checks`] catalogue through the [`runner`], and renders a [`report`] with a [`grade`].
//! Verdicts never call the reference server's code: the harness is an independent
//! implementation of every rule it checks.

pub mod baseline;
pub mod check;
pub mod checks;
pub mod client;
pub mod evidence;
pub mod fuzz;
pub mod grade;
pub mod probe;
pub mod report;
pub mod runner;
pub mod serve;
pub mod target;

/// The protocol revisions the harness knows about, newest first.
pub const KNOWN_REVISIONS: [&str; 4] = ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];
