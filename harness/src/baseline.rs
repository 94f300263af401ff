//! Baselines of accepted findings, strict both ways.
//!
//! A baseline is a TOML file listing findings a team has reviewed and accepted, each with a
//! reason:
//!
//! ```toml
//! # mcproof baseline: accepted findings. Strict both ways.
//! [[accept]]
//! check = "posture/auth-required"
//! status = "FAIL"        # FAIL or WARN (or ERROR)
//! reason = "why this is accepted"
//! ```
//!
//! Strict both ways: a FAIL the baseline does not list stays a failure, and a listed entry whose
//! check now reports another status (or did not run at all) is *stale* and is a failure too, so a
//! baseline never silently outlives the finding it was written for. Accepting a finding marks
//! the result (`CheckResult::accepted`) but never changes the score or grade.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::check::Status;
use crate::runner::CheckResult;

/// Reason written by [`Baseline::from_results`] when the caller gives none.
pub const DEFAULT_REASON: &str = "accepted when this baseline was created; review and replace this reason";

/// A set of accepted findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    pub entries: Vec<Entry>,
}

/// One accepted finding: `check` is expected to report exactly `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub check: String,
    /// FAIL, WARN or ERROR.
    pub status: Status,
    pub reason: String,
}

/// Why a baseline file was refused.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read baseline {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or not of the baseline's shape (unknown keys, wrong types, missing fields).
    #[error("invalid baseline: {0}")]
    Syntax(String),
    #[error("invalid baseline: entry {index} has an empty `check`")]
    EmptyCheck { index: usize },
    #[error(
        "invalid baseline: entry {index} ({check}) has status {status:?}; only FAIL, WARN or ERROR can be accepted"
    )]
    BadStatus { index: usize, check: String, status: String },
    #[error("invalid baseline: entry {index} ({check}) has an empty `reason`; say why the finding is accepted")]
    EmptyReason { index: usize, check: String },
    #[error("invalid baseline: {check} is listed more than once (entries {first} and {index})")]
    Duplicate { check: String, first: usize, index: usize },
    #[error("{path}: {source}")]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<BaselineError>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    accept: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    check: String,
    status: String,
    reason: String,
}

/// What applying a baseline found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Results the baseline accepted (their ids, in report order).
    pub accepted: Vec<String>,
    /// Entries that no longer match the results: each one fails the run.
    pub stale: Vec<Stale>,
}

impl Applied {
    /// No stale entry.
    pub fn is_clean(&self) -> bool {
        self.stale.is_empty()
    }
}

/// A baseline entry that no longer matches what the check reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub check: String,
    /// The status the baseline accepts.
    pub expected: Status,
    /// What the check reported now; `None` when it is not in the results.
    pub found: Option<Status>,
    /// A sentence saying what is stale and what to do.
    pub message: String,
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn parse_status(s: &str) -> Option<Status> {
    match s.trim().to_ascii_uppercase().as_str() {
        "PASS" => Some(Status::Pass),
        "WARN" => Some(Status::Warn),
        "FAIL" => Some(Status::Fail),
        "SKIP" => Some(Status::Skip),
        "ERROR" => Some(Status::Error),
        _ => None,
    }
}

fn acceptable(status: Status) -> bool {
    matches!(status, Status::Fail | Status::Warn | Status::Error)
}

impl Baseline {
    /// Parses a baseline. Unknown keys, empty checks or reasons, duplicate checks and statuses
    /// other than FAIL, WARN and ERROR are refused.
    pub fn parse(text: &str) -> Result<Self, BaselineError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| BaselineError::Syntax(e.to_string().trim().to_owned()))?;
        let mut entries = Vec::with_capacity(raw.accept.len());
        let mut seen: Vec<(String, usize)> = Vec::new();
        for (i, e) in raw.accept.into_iter().enumerate() {
            let index = i + 1;
            let check = e.check.trim().to_owned();
            if check.is_empty() {
                return Err(BaselineError::EmptyCheck { index });
            }
            let status = parse_status(&e.status)
                .filter(|s| acceptable(*s))
                .ok_or_else(|| BaselineError::BadStatus { index, check: check.clone(), status: e.status.clone() })?;
            let reason = e.reason.trim().to_owned();
            if reason.is_empty() {
                return Err(BaselineError::EmptyReason { index, check });
            }
            if let Some((_, first)) = seen.iter().find(|(c, _)| *c == check) {
                return Err(BaselineError::Duplicate { check, first: *first, index });
            }
            seen.push((check.clone(), index));
            entries.push(Entry { check, status, reason });
        }
        Ok(Self { entries })
    }

    /// Reads and parses a baseline file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, BaselineError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| BaselineError::Io { path: path.to_owned(), source })?;
        Self::parse(&text).map_err(|e| BaselineError::InFile { path: path.to_owned(), source: Box::new(e) })
    }

    /// A baseline accepting every FAIL, WARN and ERROR in `results`, in report order. A result
    /// already accepted keeps its reason; the others get `reason` (or [`DEFAULT_REASON`]).
    pub fn from_results(results: &[CheckResult], reason: &str) -> Self {
        let reason = if reason.trim().is_empty() { DEFAULT_REASON } else { reason.trim() };
        let mut seen = HashSet::new();
        let entries = results
            .iter()
            .filter(|r| acceptable(r.status) && seen.insert(r.id.as_str()))
            .map(|r| Entry {
                check: r.id.clone(),
                status: r.status,
                reason: r.accepted.as_deref().map(str::trim).filter(|a| !a.is_empty()).unwrap_or(reason).to_owned(),
            })
            .collect();
        Self { entries }
    }

    /// The baseline as a TOML file that [`Baseline::parse`] reads back unchanged.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# mcproof baseline: accepted findings. Strict both ways.\n\
             # A FAIL not listed here fails the run; an entry whose check now reports another\n\
             # status (or no longer runs) is stale and fails the run too. See docs/scoring.md.\n",
        );
        for e in &self.entries {
            out.push_str("\n[[accept]]\n");
            out.push_str(&format!("check = {}\n", toml_string(&e.check)));
            out.push_str(&format!("status = {}\n", toml_string(e.status.as_str())));
            out.push_str(&format!("reason = {}\n", toml_string(&e.reason)));
        }
        out
    }

    /// Marks the results this baseline accepts (`accepted = Some(reason)`) and reports the
    /// entries that are stale: their check now has another status, or is not in `results`.
    /// Results the baseline does not list are left untouched (an unlisted FAIL stays a failure).
    pub fn apply(&self, results: &mut [CheckResult]) -> Applied {
        let mut applied = Applied::default();
        for e in &self.entries {
            let mut found = None;
            for r in results.iter_mut().filter(|r| r.id == e.check) {
                found = Some(r.status);
                if r.status == e.status {
                    r.accepted = Some(e.reason.clone());
                }
            }
            match found {
                Some(s) if s == e.status => {}
                Some(s) => applied.stale.push(Stale {
                    check: e.check.clone(),
                    expected: e.status,
                    found: Some(s),
                    message: format!(
                        "stale baseline entry: {} is accepted as {} but now reports {}; {}",
                        e.check,
                        e.status,
                        s,
                        if s == Status::Pass {
                            "the finding is fixed, remove the entry"
                        } else {
                            "review the new result and update or remove the entry"
                        }
                    ),
                }),
                None => applied.stale.push(Stale {
                    check: e.check.clone(),
                    expected: e.status,
                    found: None,
                    message: format!(
                        "stale baseline entry: {} is accepted as {} but is not in this run's results \
                         (unknown id, or filtered out); remove the entry or run the check",
                        e.check, e.status
                    ),
                }),
            }
        }
        applied.accepted = results.iter().filter(|r| r.accepted.is_some()).map(|r| r.id.clone()).collect();
        applied
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Kind, Level};

    fn r(id: &str, status: Status) -> CheckResult {
        CheckResult {
            id: id.into(),
            title: id.into(),
            area: id.split('/').next().unwrap_or(id).into(),
            level: Level::Must,
            weight: 10,
            kind: Kind::Passive,
            source: String::new(),
            status,
            message: String::new(),
            remediation: String::new(),
            evidence: Vec::new(),
            duration_ms: 0,
            accepted: None,
        }
    }

    const GOOD: &str = r#"
# mcproof baseline: accepted findings. Strict both ways.
[[accept]]
check = "posture/auth-required"
status = "FAIL"        # FAIL or WARN (or ERROR)
reason = "internal deployment behind an authenticating proxy"

[[accept]]
check = "posture/security-headers"
status = "WARN"
reason = "headers set by the CDN"
"#;

    #[test]
    fn parses_the_documented_format() {
        let b = Baseline::parse(GOOD).expect("parses");
        assert_eq!(b.entries.len(), 2);
        assert_eq!(b.entries[0].check, "posture/auth-required");
        assert_eq!(b.entries[0].status, Status::Fail);
        assert_eq!(b.entries[1].status, Status::Warn);
        assert_eq!(b.entries[1].reason, "headers set by the CDN");
        assert_eq!(Baseline::parse("").expect("empty is an empty baseline"), Baseline::default());
        let error = Baseline::parse("[[accept]]\ncheck = \"a/b\"\nstatus = \"ERROR\"\nreason = \"flaky\"\n");
        assert_eq!(error.expect("ERROR can be accepted").entries[0].status, Status::Error);
    }

    #[test]
    fn refuses_what_is_not_strictly_a_baseline() {
        let cases: &[(&str, &str)] = &[
            ("[[accept]]\ncheck = \"a/b\"\nstatus = \"FAIL\"\nreason = \"r\"\nexpires = \"2026\"\n", "unknown field"),
            ("version = 1\n[[accept]]\ncheck = \"a/b\"\nstatus = \"FAIL\"\nreason = \"r\"\n", "unknown field"),
            ("[[accept]]\ncheck = \"a/b\"\nstatus = \"FAIL\"\n", "missing field"),
            ("[[accept]]\ncheck = \"a/b\"\nstatus = \"FAIL\"\nreason = \"  \"\n", "empty `reason`"),
            ("[[accept]]\ncheck = \"\"\nstatus = \"FAIL\"\nreason = \"r\"\n", "empty `check`"),
            ("[[accept]]\ncheck = \"a/b\"\nstatus = \"PASS\"\nreason = \"r\"\n", "only FAIL, WARN or ERROR"),
            ("[[accept]]\ncheck = \"a/b\"\nstatus = \"SKIP\"\nreason = \"r\"\n", "only FAIL, WARN or ERROR"),
            ("[[accept]]\ncheck = \"a/b\"\nstatus = \"BROKEN\"\nreason = \"r\"\n", "only FAIL, WARN or ERROR"),
            (
                "[[accept]]\ncheck = \"a/b\"\nstatus = \"FAIL\"\nreason = \"r\"\n\
                 [[accept]]\ncheck = \"a/b\"\nstatus = \"WARN\"\nreason = \"r2\"\n",
                "listed more than once",
            ),
            ("[[accept]\n", "invalid baseline"),
            ("accept = 3\n", "invalid baseline"),
        ];
        for (text, want) in cases {
            let err = Baseline::parse(text).expect_err(text).to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn accepts_matches_and_leaves_the_rest() {
        let b = Baseline::parse(GOOD).expect("parses");
        let mut rs = vec![
            r("posture/auth-required", Status::Fail),
            r("posture/security-headers", Status::Warn),
            r("transport/origin", Status::Fail),
            r("transport/ok", Status::Pass),
        ];
        let applied = b.apply(&mut rs);
        assert!(applied.is_clean(), "{applied:?}");
        assert_eq!(applied.accepted, ["posture/auth-required", "posture/security-headers"]);
        assert_eq!(rs[0].accepted.as_deref(), Some("internal deployment behind an authenticating proxy"));
        assert_eq!(rs[1].accepted.as_deref(), Some("headers set by the CDN"));
        assert_eq!(rs[2].accepted, None, "an unlisted FAIL stays a failure");
        assert_eq!(rs[3].accepted, None);
    }

    #[test]
    fn stale_entries_both_ways() {
        let b = Baseline::parse(GOOD).expect("parses");
        // Fixed: the accepted FAIL now passes. The WARN is not in the run at all.
        let mut rs = vec![r("posture/auth-required", Status::Pass)];
        let applied = b.apply(&mut rs);
        assert_eq!(applied.stale.len(), 2);
        assert_eq!(applied.stale[0].found, Some(Status::Pass));
        assert!(applied.stale[0].message.contains("now reports PASS"), "{}", applied.stale[0]);
        assert!(applied.stale[0].message.contains("remove the entry"));
        assert_eq!(applied.stale[1].found, None);
        assert!(applied.stale[1].message.contains("not in this run's results"), "{}", applied.stale[1]);
        assert_eq!(rs[0].accepted, None);
        assert!(applied.accepted.is_empty());

        // Changed: the accepted WARN is now a FAIL; it is stale and the FAIL is not accepted.
        let mut rs = vec![r("posture/auth-required", Status::Fail), r("posture/security-headers", Status::Fail)];
        let applied = b.apply(&mut rs);
        assert_eq!(applied.stale.len(), 1);
        assert_eq!(applied.stale[0].check, "posture/security-headers");
        assert_eq!((applied.stale[0].expected, applied.stale[0].found), (Status::Warn, Some(Status::Fail)));
        assert_eq!(rs[1].accepted, None);
        assert!(rs[0].accepted.is_some());
    }

    #[test]
    fn from_results_round_trips_through_toml() {
        let mut rs = vec![
            r("a/fail", Status::Fail),
            r("a/warn", Status::Warn),
            r("a/error", Status::Error),
            r("a/pass", Status::Pass),
            r("a/skip", Status::Skip),
        ];
        rs[1].accepted = Some("kept \"quoted\" reason\\ with\nnewline\tand \u{7} bell".into());
        let b = Baseline::from_results(&rs, "initial triage");
        assert_eq!(b.entries.iter().map(|e| e.check.as_str()).collect::<Vec<_>>(), ["a/fail", "a/warn", "a/error"]);
        assert_eq!(b.entries[0].reason, "initial triage");
        assert_eq!(b.entries[1].reason, rs[1].accepted.as_deref().unwrap_or_default());
        let text = b.to_toml();
        assert!(text.starts_with("# mcproof baseline"));
        assert_eq!(Baseline::parse(&text).expect("reads back"), b);
        // Applying the generated baseline to the same results is clean and accepts all three.
        let applied = b.apply(&mut rs);
        assert!(applied.is_clean());
        assert_eq!(applied.accepted.len(), 3);
        // An accepted result keeps its reason even when no new one is given.
        let b = Baseline::from_results(&rs[..1], " ");
        assert_eq!(b.entries[0].reason, "initial triage");
        // No reason at all: a default one, so the file still parses.
        let fresh = Baseline::from_results(&[r("x/y", Status::Fail)], "");
        assert_eq!(fresh.entries[0].reason, DEFAULT_REASON);
        assert!(Baseline::parse(&fresh.to_toml()).is_ok());
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("mcproof-baseline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let path = dir.join("baseline.toml");
        std::fs::write(&path, GOOD).expect("write");
        assert_eq!(Baseline::load(&path).expect("loads").entries.len(), 2);
        std::fs::write(&path, "[[accept]]\ncheck = \"a/b\"\nstatus = \"PASS\"\nreason = \"r\"\n").expect("write");
        let err = Baseline::load(&path).expect_err("PASS refused").to_string();
        assert!(err.contains("baseline.toml") && err.contains("PASS"), "{err}");
        let err = Baseline::load(dir.join("missing.toml")).expect_err("missing").to_string();
        assert!(err.contains("missing.toml"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
