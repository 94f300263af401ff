//! The check model: what a check is (data), what running it yields (a verdict with evidence).

use std::fmt;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::evidence::Exchange;
use crate::probe::Probe;

/// How strongly the source states the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// A best practice from the seed documents or common hardening guidance.
    #[serde(rename = "BEST-PRACTICE")]
    BestPractice,
    #[serde(rename = "SHOULD")]
    Should,
    #[serde(rename = "MUST")]
    Must,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::BestPractice => "BEST-PRACTICE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().replace('_', "-").as_str() {
            "MUST" => Some(Level::Must),
            "SHOULD" => Some(Level::Should),
            "BEST-PRACTICE" | "BEST" | "BP" => Some(Level::BestPractice),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a check only observes, sends unusual but harmless traffic, or may change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Reads only what ordinary traffic shows.
    Passive,
    /// Sends malformed or unusual requests; changes no server data.
    Active,
    /// May call tools with side effects or push the server to its limits; needs `--destructive`.
    Destructive,
}

/// The transports a check applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Http,
    Stdio,
}

/// MCP revisions a check applies to.
pub const ALL_REVISIONS: &[&str] = &["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"];
/// Revisions from 2025-06-18 on (batching removed, protocol-version header).
pub const FROM_2025_06_18: &[&str] = &["2025-06-18", "2025-11-25", "2026-07-28"];
/// Revisions from 2025-11-25 on.
pub const FROM_2025_11_25: &[&str] = &["2025-11-25", "2026-07-28"];

/// Everything about a check except how to run it. Stable `id`s are `area/name`, never reused.
#[derive(Debug, Clone, Serialize)]
pub struct CheckInfo {
    pub id: &'static str,
    pub title: &'static str,
    pub level: Level,
    /// Share of the score (see docs/scoring.md).
    pub weight: u32,
    /// Spec section or seed practice, plus the spec-checks row where there is one.
    pub source: &'static str,
    pub revisions: &'static [&'static str],
    pub transports: &'static [Transport],
    pub kind: Kind,
    /// What is checked and how, in a sentence or two.
    pub description: &'static str,
    /// How to fix a failure.
    pub remediation: &'static str,
}

impl CheckInfo {
    /// The part of the id before the slash.
    pub fn area(&self) -> &'static str {
        self.id.split_once('/').map_or(self.id, |(area, _)| area)
    }

    pub fn applies_to(&self, transport: Transport) -> bool {
        self.transports.contains(&transport)
    }
}

/// A check: its description plus the function that runs it.
#[derive(Clone)]
pub struct Check {
    pub info: CheckInfo,
    pub run: for<'a> fn(&'a Probe) -> BoxFuture<'a, Verdict>,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check").field("id", &self.info.id).finish_non_exhaustive()
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Skip => "SKIP",
            Status::Error => "ERROR",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What running a check found, with the exchanges that prove it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub status: Status,
    /// One sentence: what was observed (for SKIP: why it did not run; for ERROR: what broke).
    pub message: String,
    pub evidence: Vec<Exchange>,
}

impl Verdict {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), evidence: Vec::new() }
    }

    pub fn pass(message: impl Into<String>) -> Self {
        Self::new(Status::Pass, message)
    }

    pub fn fail(message: impl Into<String>) -> Self {
        Self::new(Status::Fail, message)
    }

    pub fn warn(message: impl Into<String>) -> Self {
        Self::new(Status::Warn, message)
    }

    pub fn skip(message: impl Into<String>) -> Self {
        Self::new(Status::Skip, message)
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Status::Error, message)
    }

    pub fn with(mut self, exchange: Exchange) -> Self {
        self.evidence.push(exchange);
        self
    }

    pub fn with_all(mut self, exchanges: impl IntoIterator<Item = Exchange>) -> Self {
        self.evidence.extend(exchanges);
        self
    }
}
