//! nst/JSONTestSuite against the reference server's strict JSON layer
//! ([`mcproof_server::jsonrpc::parse_json`], the layer under the JSON-RPC envelope).
//!
//! Every `y_` file must be accepted and every `n_` file rejected. `i_` files are
//! implementation-defined: what the parser does with each is written down in
//! `tests/data/json-test-suite-i-choices.md`, and the test is strict both ways: an `i_` outcome
//! that differs from the recorded choice fails, as does a choice with no file or a file with no
//! choice. The suite is read in place from `../shared/external/json-test-suite/`.
//!
//! Run with `cargo test -p mcproof-tests --test json_test_suite -- --nocapture` to see the counts.
//! When it fails, the message lists every mismatch: fix the parser, or (for `i_` files only)
//! change the recorded choice and say why.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use mcproof_server::jsonrpc::{JsonError, ParseLimits, parse_json};

/// The suite, read in place (never copied into the project).
const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/external/json-test-suite/test_parsing");
/// The recorded `i_` choices.
const CHOICES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/json-test-suite-i-choices.md");

/// The most permissive limits the server's configuration allows (`limits.max_depth` is at most
/// 100), with strings far longer than any file in the suite. Files that only fail because of
/// the depth limit are `i_` choices, recorded as such.
fn limits() -> ParseLimits {
    ParseLimits { max_depth: 100, max_string_bytes: 1 << 20 }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
        }
    }
}

fn run(path: &Path) -> (Outcome, Option<JsonError>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match parse_json(&bytes, &limits()) {
        Ok(_) => (Outcome::Accepted, None),
        Err(e) => (Outcome::Rejected, Some(e)),
    }
}

/// `- `i_name.json`: accepted|rejected — why` lines of the choices file.
fn recorded_choices() -> BTreeMap<String, Outcome> {
    let text = fs::read_to_string(CHOICES).unwrap_or_else(|e| panic!("{CHOICES}: {e}"));
    let mut choices = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("- `") else { continue };
        let Some((name, rest)) = rest.split_once("`: ") else { panic!("malformed choice line: {line}") };
        let (outcome, why) = rest.split_once(" — ").unwrap_or_else(|| panic!("choice without a reason: {line}"));
        assert!(!why.trim().is_empty(), "choice without a reason: {line}");
        let outcome = match outcome {
            "accepted" => Outcome::Accepted,
            "rejected" => Outcome::Rejected,
            other => panic!("unknown outcome {other:?} in: {line}"),
        };
        assert!(choices.insert(name.to_owned(), outcome).is_none(), "{name} recorded twice");
    }
    choices
}

#[test]
fn json_test_suite_strict_parser() {
    let mut files: Vec<PathBuf> = fs::read_dir(SUITE)
        .unwrap_or_else(|e| panic!("{SUITE}: {e} (the external suites live in ../shared/external)"))
        .map(|entry| entry.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut choices = recorded_choices();
    let mut mismatches = Vec::new();
    let (mut y_total, mut y_ok, mut n_total, mut n_ok, mut i_total, mut i_ok) = (0, 0, 0, 0, 0, 0);
    let mut i_accepted = 0;
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let (outcome, error) = run(path);
        match &name[..2] {
            "y_" => {
                y_total += 1;
                if outcome == Outcome::Accepted {
                    y_ok += 1;
                } else {
                    mismatches.push(format!("{name}: must be accepted, was rejected ({error:?})"));
                }
            }
            "n_" => {
                n_total += 1;
                if outcome == Outcome::Rejected {
                    n_ok += 1;
                } else {
                    mismatches.push(format!("{name}: must be rejected, was accepted"));
                }
            }
            "i_" => {
                i_total += 1;
                i_accepted += usize::from(outcome == Outcome::Accepted);
                match choices.remove(&name) {
                    Some(choice) if choice == outcome => i_ok += 1,
                    Some(choice) => mismatches.push(format!(
                        "{name}: recorded as {}, was {} ({error:?})",
                        choice.as_str(),
                        outcome.as_str()
                    )),
                    None => mismatches.push(format!(
                        "{name}: no recorded choice; it is {} ({error:?}): add `- `{name}`: {} — why`",
                        outcome.as_str(),
                        outcome.as_str()
                    )),
                }
            }
            _ => mismatches.push(format!("{name}: unknown prefix")),
        }
    }
    for stale in choices.keys() {
        mismatches.push(format!("{stale}: recorded choice for a file the suite does not have"));
    }
    println!(
        "JSONTestSuite: y accepted {y_ok}/{y_total}, n rejected {n_ok}/{n_total}, \
         i as recorded {i_ok}/{i_total} ({i_accepted} accepted, {} rejected)",
        i_total - i_accepted
    );
    assert!(y_total > 0 && n_total > 0 && i_total > 0, "suite not found or empty at {SUITE}");
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}
