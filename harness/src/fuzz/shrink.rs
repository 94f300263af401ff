//! Shrinking: a failing case is made as small as it can be while the same oracle still fires —
//! steps dropped (delta debugging), then each message simplified (members and items dropped,
//! containers replaced by a child, strings shortened, numbers zeroed). Every attempt runs on a
//! fresh connection, so the result reproduces on its own.

use serde_json::{Map, Value, json};

use super::exec::Executor;
use super::mutate::{PathStep, get, get_mut};
use super::oracle::{Failure, Oracle};
use super::{Body, Step};
use crate::evidence::Exchange;

/// Attempts allowed when each costs a timeout (hangs).
const SLOW_ATTEMPTS: usize = 6;
/// Candidate edits looked at per message per pass.
const MAX_CANDIDATES: usize = 400;

/// The result of shrinking.
#[derive(Debug, Clone)]
pub struct Shrunk {
    pub steps: Vec<Step>,
    /// The exchanges of the last failing run of `steps`.
    pub evidence: Vec<Exchange>,
    /// The case failed on a fresh connection at least once.
    pub confirmed: bool,
    /// The failure of the last failing run.
    pub failure: Option<Failure>,
}

struct Tester<'a> {
    exec: &'a mut Executor,
    oracle: Oracle,
    attempts: usize,
    max_attempts: usize,
    evidence: Vec<Exchange>,
    failure: Option<Failure>,
}

impl Tester<'_> {
    fn spent(&self) -> bool {
        self.exec.exhausted() || self.attempts >= self.max_attempts
    }

    async fn fails(&mut self, steps: &[Step]) -> bool {
        if self.spent() || steps.is_empty() {
            return false;
        }
        self.attempts += 1;
        let run = self.exec.run_case(steps, true).await;
        match run.failure {
            Some(f) if f.oracle == self.oracle => {
                self.evidence = run.exchanges;
                self.failure = Some(f);
                true
            }
            _ => false,
        }
    }
}

/// Shrinks `steps`, which failed with `failure`, within the executor's budget.
pub async fn shrink(exec: &mut Executor, steps: Vec<Step>, failure: &Failure, _timeout: std::time::Duration) -> Shrunk {
    let max_attempts = if failure.oracle == Oracle::Hang { SLOW_ATTEMPTS } else { usize::MAX };
    let mut t = Tester { exec, oracle: failure.oracle, attempts: 0, max_attempts, evidence: Vec::new(), failure: None };
    // Confirm on a fresh connection first (twice, for flaky failures).
    let mut confirmed = false;
    for _ in 0..2 {
        if t.fails(&steps).await {
            confirmed = true;
            break;
        }
    }
    if !confirmed {
        return Shrunk { steps, evidence: t.evidence, confirmed: false, failure: None };
    }
    let mut steps = steps;
    // Steps: delta debugging over contiguous chunks, halving the chunk size.
    let mut chunk = steps.len() / 2;
    while chunk >= 1 && !t.spent() {
        let mut i = 0;
        while i < steps.len() && !t.spent() {
            let end = (i + chunk).min(steps.len());
            let mut candidate = steps.clone();
            candidate.drain(i..end);
            if t.fails(&candidate).await {
                steps = candidate;
            } else {
                i += chunk;
            }
        }
        chunk /= 2;
    }
    // Messages: simplify each body in turn until no edit keeps the failure. After an edit is
    // taken the search resumes at the same candidate (the earlier ones failed already), and a
    // last pass from the top catches edits that only work now.
    for index in 0..steps.len() {
        let mut start = 0;
        while !t.spent() {
            let Step::Send { slot, body } = &steps[index] else { break };
            let slot = *slot;
            let candidates = match body {
                Body::Json(v) => json_candidates(v).into_iter().map(Body::Json).collect::<Vec<_>>(),
                Body::Raw(s) => raw_candidates(s),
            };
            let mut taken = None;
            for (k, c) in candidates.into_iter().enumerate().skip(start) {
                if t.spent() {
                    break;
                }
                let mut candidate = steps.clone();
                candidate[index] = Step::Send { slot, body: c };
                if t.fails(&candidate).await {
                    steps = candidate;
                    taken = Some(k);
                    break;
                }
            }
            match taken {
                Some(k) => start = k,
                None if start > 0 => start = 0,
                None => break,
            }
        }
    }
    Shrunk { steps, evidence: t.evidence, confirmed: true, failure: t.failure }
}

/// Simpler variants of `v`, most reducing first: members and items removed, containers
/// replaced by a child, strings shortened, numbers zeroed, containers emptied.
pub fn json_candidates(v: &Value) -> Vec<Value> {
    let mut paths: Vec<Vec<PathStep>> = vec![Vec::new()];
    let mut i = 0;
    while i < paths.len() && paths.len() < MAX_CANDIDATES {
        let p = paths[i].clone();
        match get(v, &p) {
            Some(Value::Object(m)) => {
                paths.extend(m.keys().map(|k| [p.clone(), vec![PathStep::Key(k.clone())]].concat()));
            }
            Some(Value::Array(a)) => paths.extend((0..a.len()).map(|j| [p.clone(), vec![PathStep::Index(j)]].concat())),
            _ => {}
        }
        i += 1;
    }
    let mut out = Vec::new();
    // Removals.
    for p in paths.iter().skip(1) {
        let Some((last, parent)) = p.split_last() else { continue };
        let mut c = v.clone();
        match (get_mut(&mut c, parent), last) {
            (Some(Value::Object(m)), PathStep::Key(k)) => {
                m.remove(k);
            }
            (Some(Value::Array(a)), PathStep::Index(j)) if *j < a.len() => {
                a.remove(*j);
            }
            _ => continue,
        }
        out.push(c);
    }
    // Hoisting a child, then simpler scalars.
    for p in &paths {
        let Some(node) = get(v, p) else { continue };
        let replacements: Vec<Value> = match node {
            Value::Object(m) if !m.is_empty() => {
                let mut r: Vec<Value> = m.values().filter(|c| c.is_object() || c.is_array()).cloned().collect();
                r.push(Value::Object(Map::new()));
                r
            }
            Value::Array(a) if !a.is_empty() => {
                let mut r: Vec<Value> = a.iter().filter(|c| c.is_object() || c.is_array()).cloned().collect();
                r.push(json!([]));
                r
            }
            Value::String(s) if !s.is_empty() => {
                let n = s.chars().count();
                let mut r = vec![Value::String(s.chars().take(n / 2).collect())];
                if n > 1 {
                    r.push(Value::String(s.chars().take(1).collect()));
                }
                r
            }
            Value::Number(n) if n.as_i64() != Some(0) => vec![json!(0)],
            _ => Vec::new(),
        };
        for r in replacements {
            if p.is_empty() {
                out.push(r);
                continue;
            }
            let mut c = v.clone();
            if let Some(slot) = get_mut(&mut c, p) {
                *slot = r;
            }
            out.push(c);
        }
    }
    out.retain(|c| c != v);
    out.truncate(MAX_CANDIDATES);
    out
}

fn raw_candidates(s: &str) -> Vec<Body> {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let mut out = Vec::new();
    if n > 1 {
        for (a, b) in [(0, n / 2), (n / 2, n), (0, n - 1), (1, n)] {
            out.push(Body::Raw(chars[a..b].iter().collect()));
        }
        let mut k = n / 4;
        while k >= 1 {
            for start in (0..n).step_by(k) {
                let mut c = chars.clone();
                c.drain(start..(start + k).min(n));
                out.push(Body::Raw(c.into_iter().collect()));
                if out.len() >= MAX_CANDIDATES {
                    return out;
                }
            }
            k /= 2;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_all_simpler() {
        let v = json!({"a": [1, {"b": "long string"}], "c": 5});
        let size = |x: &Value| x.to_string().len();
        let cands = json_candidates(&v);
        assert!(!cands.is_empty());
        for c in &cands {
            assert_ne!(c, &v);
            assert!(size(c) <= size(&v), "{c} is bigger than {v}");
        }
        assert!(cands.contains(&json!({"c": 5})));
        assert!(cands.contains(&json!({"a": [1, {"b": "long string"}]})));
        assert!(json_candidates(&json!(null)).is_empty());
    }
}
