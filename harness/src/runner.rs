//! Runs checks against a probe: filtered, concurrent where independent, each bounded in time,
//! every result collected.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::check::{Check, Kind, Level, Status, Verdict};
use crate::evidence::Exchange;
use crate::probe::Probe;

/// Which checks to run.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these ids (or `area/*` globs); empty means all.
    pub only: Vec<String>,
    /// Never these ids (or `area/*` globs).
    pub skip: Vec<String>,
    /// Only these areas; empty means all.
    pub areas: Vec<String>,
    /// Only checks at or above this level.
    pub min_level: Option<Level>,
}

fn matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(area) => id.split_once('/').is_some_and(|(a, _)| a == area),
        None => pattern == id,
    }
}

impl Filter {
    pub fn selects(&self, check: &Check) -> bool {
        let id = check.info.id;
        (self.only.is_empty() || self.only.iter().any(|p| matches(p, id)))
            && !self.skip.iter().any(|p| matches(p, id))
            && (self.areas.is_empty() || self.areas.iter().any(|a| a == check.info.area()))
            && self.min_level.is_none_or(|min| check.info.level >= min)
    }

    /// Filter patterns that match no check in `catalogue` (a typo should not pass silently).
    pub fn unknown_patterns(&self, catalogue: &[Check]) -> Vec<String> {
        let mut unknown = Vec::new();
        for p in self.only.iter().chain(&self.skip) {
            if !catalogue.iter().any(|c| matches(p, c.info.id)) {
                unknown.push(p.clone());
            }
        }
        for a in &self.areas {
            if !catalogue.iter().any(|c| c.info.area() == a) {
                unknown.push(format!("area {a}"));
            }
        }
        unknown
    }
}

/// One check's result in a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: String,
    pub title: String,
    pub area: String,
    pub level: Level,
    pub weight: u32,
    pub kind: Kind,
    pub source: String,
    pub status: Status,
    pub message: String,
    pub remediation: String,
    pub evidence: Vec<Exchange>,
    pub duration_ms: u64,
    /// Set when a baseline accepts this result; holds the baseline's reason.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accepted: Option<String>,
}

/// Runs one check with its applicability rules and time limit.
pub async fn run_one(probe: &Probe, check: &Check) -> CheckResult {
    let started = Instant::now();
    let info = &check.info;
    let verdict = if !info.applies_to(probe.target.transport()) {
        Verdict::skip(format!(
            "not applicable to {} targets",
            match probe.target.transport() {
                crate::check::Transport::Http => "HTTP",
                crate::check::Transport::Stdio => "stdio",
            }
        ))
    } else if !probe.version().is_empty() && !info.revisions.contains(&probe.version()) {
        Verdict::skip(format!("not applicable to revision {}", probe.version()))
    } else if info.kind == Kind::Active && !probe.options.active {
        Verdict::skip("not enabled: active checks are off (--passive)")
    } else if info.kind == Kind::Destructive && !probe.options.destructive {
        Verdict::skip("not enabled: destructive check (use --destructive)")
    } else if let Some(why) = probe.stopped_answering() {
        Verdict::error(format!("not run: {why}"))
    } else {
        let run = tokio::time::timeout(probe.options.check_timeout, (check.run)(probe));
        tokio::select! {
            outcome = run => match outcome {
                Ok(v) => v,
                Err(_) => Verdict::error(format!(
                    "the check did not finish within {} s",
                    probe.options.check_timeout.as_secs()
                )),
            },
            why = stopped_answering(probe) => Verdict::error(format!("stopped: {why}")),
        }
    };
    CheckResult {
        id: info.id.to_owned(),
        title: info.title.to_owned(),
        area: info.area().to_owned(),
        level: info.level,
        weight: info.weight,
        kind: info.kind,
        source: info.source.to_owned(),
        status: verdict.status,
        message: verdict.message,
        remediation: info.remediation.to_owned(),
        evidence: verdict.evidence,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        accepted: None,
    }
}

/// Resolves once the target has stopped answering (checked every 100 ms).
async fn stopped_answering(probe: &Probe) -> String {
    loop {
        if let Some(why) = probe.stopped_answering() {
            return why;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `checks` concurrently (bounded), calling `progress` after each; results come back in
/// catalogue order whatever order they finished in.
pub async fn run(probe: &Probe, checks: &[Check], mut progress: impl FnMut(&CheckResult)) -> Vec<CheckResult> {
    let mut indexed: Vec<(usize, CheckResult)> = Vec::with_capacity(checks.len());
    let mut stream = futures_util::stream::iter(checks.iter().enumerate())
        .map(|(i, check)| async move { (i, run_one(probe, check).await) })
        .buffer_unordered(probe.options.concurrency.max(1));
    while let Some((i, result)) = stream.next().await {
        progress(&result);
        indexed.push((i, result));
    }
    indexed.sort_by_key(|(i, _)| *i);
    indexed.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_exact_ids() {
        assert!(matches("transport/*", "transport/origin-forbidden"));
        assert!(!matches("transport/*", "sessions/x"));
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "a/bc"));
    }
}
