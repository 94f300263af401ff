//! Score and grade of a run (the rule is documented, with a worked example, in docs/scoring.md).
//!
//! - Applicable results are PASS, WARN and FAIL. SKIP and ERROR are excluded from the score (a
//!   report lists them separately): a check that did not run proves nothing either way.
//! - score = round(100 × (Σ weight of PASS + ½ Σ weight of WARN) / Σ weight of applicable).
//! - No applicable result (or an applicable weight of 0): score 0, grade F.
//! - Letter: A ≥ 90, B ≥ 75, C ≥ 60, D ≥ 40, else F.
//! - Any FAIL of a MUST-level check caps the grade at C, whether a baseline accepts it or not.
//!
//! A baseline never changes the score or the grade: it decides what fails a CI gate, not how
//! secure the server is.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::check::{Level, Status};
use crate::runner::CheckResult;

/// A letter grade. Ordered from best (`A`) to worst (`F`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
    F,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
            Grade::F => "F",
        }
    }

    /// The letter for a score, before any cap.
    pub fn from_score(score: u32) -> Self {
        match score {
            90.. => Grade::A,
            75..=89 => Grade::B,
            60..=74 => Grade::C,
            40..=59 => Grade::D,
            _ => Grade::F,
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The best grade a run with a failed MUST-level check can get.
pub const MUST_FAIL_CAP: Grade = Grade::C;

/// The numbers behind a score, for reports and docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Σ weight of PASS results.
    pub pass_weight: u64,
    /// Σ weight of WARN results.
    pub warn_weight: u64,
    /// Σ weight of PASS, WARN and FAIL results.
    pub applicable_weight: u64,
    /// Number of PASS, WARN and FAIL results.
    pub applicable: usize,
    /// Number of SKIP and ERROR results (not scored).
    pub excluded: usize,
    /// Some FAIL is of a MUST-level check (accepted or not).
    pub must_failed: bool,
}

impl Tally {
    pub fn of(results: &[CheckResult]) -> Self {
        let mut t = Self::default();
        for r in results {
            let w = u64::from(r.weight);
            match r.status {
                Status::Pass => t.pass_weight += w,
                Status::Warn => t.warn_weight += w,
                Status::Fail => t.must_failed |= r.level == Level::Must,
                Status::Skip | Status::Error => {
                    t.excluded += 1;
                    continue;
                }
            }
            t.applicable += 1;
            t.applicable_weight += w;
        }
        t
    }

    /// round(100 × (pass + warn/2) / applicable), halves rounded up; 0 when nothing applies.
    pub fn score(&self) -> u32 {
        if self.applicable_weight == 0 {
            return 0;
        }
        // Doubled to keep the half-weight of WARN integral: 100·(2P + W) / (2A), rounded.
        let num = 100 * (2 * self.pass_weight + self.warn_weight);
        let den = 2 * self.applicable_weight;
        u32::try_from((2 * num + den) / (2 * den)).unwrap_or(100).min(100)
    }

    pub fn grade(&self) -> Grade {
        if self.applicable_weight == 0 {
            return Grade::F;
        }
        let grade = Grade::from_score(self.score());
        if self.must_failed { grade.max(MUST_FAIL_CAP) } else { grade }
    }
}

/// The weighted score (0–100) and grade of a set of results.
pub fn score(results: &[CheckResult]) -> (u32, Grade) {
    let t = Tally::of(results);
    (t.score(), t.grade())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Kind;

    fn r(id: &str, level: Level, weight: u32, status: Status) -> CheckResult {
        CheckResult {
            id: id.into(),
            title: id.into(),
            area: id.split('/').next().unwrap_or(id).into(),
            level,
            weight,
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

    #[test]
    fn letters_at_their_boundaries() {
        for (s, g) in [(100, Grade::A), (90, Grade::A), (89, Grade::B), (75, Grade::B), (74, Grade::C)] {
            assert_eq!(Grade::from_score(s), g, "{s}");
        }
        for (s, g) in [(60, Grade::C), (59, Grade::D), (40, Grade::D), (39, Grade::F), (0, Grade::F)] {
            assert_eq!(Grade::from_score(s), g, "{s}");
        }
    }

    #[test]
    fn nothing_applicable_is_zero_and_f() {
        assert_eq!(score(&[]), (0, Grade::F));
        let only_skips = [r("a/x", Level::Must, 10, Status::Skip), r("a/y", Level::Should, 5, Status::Error)];
        assert_eq!(score(&only_skips), (0, Grade::F));
    }

    #[test]
    fn all_pass_is_a_hundred() {
        let rs = [r("a/x", Level::Must, 10, Status::Pass), r("a/y", Level::Should, 5, Status::Pass)];
        assert_eq!(score(&rs), (100, Grade::A));
    }

    #[test]
    fn skip_and_error_do_not_count() {
        let rs = [
            r("a/x", Level::Must, 10, Status::Pass),
            r("a/y", Level::Must, 10, Status::Skip),
            r("a/z", Level::Must, 10, Status::Error),
        ];
        assert_eq!(score(&rs), (100, Grade::A));
    }

    #[test]
    fn warn_counts_half_and_rounds_half_up() {
        // (0 + 5/2) / 5 = 50 %.
        assert_eq!(score(&[r("a/x", Level::Should, 5, Status::Warn)]), (50, Grade::D));
        // (2 + 1/2) / 3 = 83.33 % → 83.
        let rs = [r("a/x", Level::Should, 2, Status::Pass), r("a/y", Level::Should, 1, Status::Warn)];
        assert_eq!(score(&rs), (83, Grade::B));
        // (0 + 1/2) / 8 = 6.25 % → 6; (0 + 1/2) / 4 = 12.5 % → 13 (half up).
        let rs = [r("a/x", Level::Should, 1, Status::Warn), r("a/y", Level::Should, 7, Status::Fail)];
        assert_eq!(score(&rs).0, 6);
        let rs = [r("a/x", Level::Should, 1, Status::Warn), r("a/y", Level::Should, 3, Status::Fail)];
        assert_eq!(score(&rs).0, 13);
    }

    #[test]
    fn a_failed_must_caps_the_grade_at_c() {
        let mut rs: Vec<_> = (0..20).map(|i| r(&format!("a/p{i}"), Level::Must, 10, Status::Pass)).collect();
        rs.push(r("a/bad", Level::Must, 8, Status::Fail));
        let (s, g) = score(&rs);
        assert_eq!(s, 96);
        assert_eq!(g, Grade::C);
        // A failed SHOULD does not cap.
        rs.pop();
        rs.push(r("a/meh", Level::Should, 8, Status::Fail));
        assert_eq!(score(&rs), (96, Grade::A));
        // The cap never raises a grade.
        let rs = [r("a/x", Level::Must, 10, Status::Fail)];
        assert_eq!(score(&rs), (0, Grade::F));
    }

    #[test]
    fn baseline_acceptance_changes_nothing() {
        let mut rs = vec![r("a/x", Level::Must, 10, Status::Pass), r("a/y", Level::Must, 10, Status::Fail)];
        let before = score(&rs);
        rs[1].accepted = Some("known, tracked in #12".into());
        assert_eq!(score(&rs), before);
        assert_eq!(before, (50, Grade::D));
    }

    #[test]
    fn the_documented_example() {
        // docs/scoring.md, "Worked example".
        let mut rs = vec![
            r("transport/origin-validated", Level::Must, 12, Status::Pass),
            r("transport/protocol-version-header", Level::Must, 10, Status::Pass),
            r("lifecycle/version-negotiated", Level::Must, 10, Status::Pass),
            r("sessions/id-entropy", Level::Must, 10, Status::Pass),
            r("jsonrpc/error-codes", Level::Must, 8, Status::Pass),
            r("posture/security-headers", Level::Should, 6, Status::Warn),
            r("tools/annotations-coherent", Level::BestPractice, 3, Status::Fail),
            r("posture/auth-required", Level::Must, 15, Status::Skip),
            r("stdio/stderr-clean", Level::Should, 5, Status::Error),
        ];
        let t = Tally::of(&rs);
        assert_eq!((t.pass_weight, t.warn_weight, t.applicable_weight, t.excluded), (50, 6, 59, 2));
        assert_eq!(score(&rs), (90, Grade::A));
        // One MUST-level failure: 76 would be a B, the cap makes it a C.
        rs[4].status = Status::Fail;
        assert_eq!(score(&rs), (76, Grade::C));
        // Accepting it in a baseline changes neither.
        rs[4].accepted = Some("tracked in #42".into());
        assert_eq!(score(&rs), (76, Grade::C));
    }

    #[test]
    fn grades_are_ordered_best_first() {
        assert!(Grade::A < Grade::C && Grade::C < Grade::F);
        assert_eq!(Grade::B.max(MUST_FAIL_CAP), Grade::C);
        assert_eq!(Grade::D.max(MUST_FAIL_CAP), Grade::D);
    }
}
