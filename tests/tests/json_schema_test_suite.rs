//! JSON-Schema-Test-Suite (draft 2020-12) against the reference server's schema validation
//! layer: [`InputValidator::compile`] then [`InputValidator::validate`], valid meaning `Ok`.
//!
//! Every required case (`draft2020-12/*.json`) must give the suite's verdict, except the ones
//! listed in `tests/data/json-schema-xfail.toml`, each with a reason category and why. The list
//! is strict both ways: an unlisted failure fails the test, and so does a listed case that now
//! passes ("stale xfail": delete its entry) or an entry that names no case. A schema the layer
//! refuses to compile counts as a failure of every case in its group, whatever their verdicts:
//! the server would not register such a tool at all.
//!
//! The cases that cannot pass by design are the ones whose `$ref` names a remote document
//! (`http://localhost:1234/…`, kept in the suite's `remotes/`): the validator is built
//! `offline` with no resolver at all, so that a tool schema can never make the server fetch
//! anything, and it does not special-case the suite's documents either.
//!
//! `draft2020-12/optional/` is run separately and only reported (`--nocapture` shows it).
//!
//! Run with `cargo test -p mcproof-tests --test json_schema_test_suite -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use mcproof_server::schema::InputValidator;
use serde::Deserialize;
use serde_json::Value;

/// The suite, read in place (never copied into the project).
const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/external/json-schema-test-suite/draft2020-12");
/// Expected failures with reasons.
const XFAIL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/json-schema-xfail.toml");

/// One group of the suite: a schema and the instances tested against it.
#[derive(Debug, Deserialize)]
struct Group {
    description: String,
    schema: Value,
    tests: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    description: String,
    data: Value,
    valid: bool,
}

/// `tests/data/json-schema-xfail.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XfailFile {
    /// Reason category → what it means.
    categories: BTreeMap<String, String>,
    xfail: Vec<Xfail>,
}

/// Expected failures: `cases` of `group` in `file`, or every case of the group when `cases` is
/// absent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Xfail {
    file: String,
    group: String,
    cases: Option<Vec<String>>,
    reason: String,
    why: String,
}

/// The result of one case.
#[derive(Debug)]
struct Run {
    file: String,
    group: String,
    case: String,
    /// `None` when the layer gave the suite's verdict; otherwise what went wrong.
    failure: Option<String>,
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the external suites live in ../shared/external)", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Runs every case of every file in `dir` (not recursive) through the validation layer.
fn run_dir(dir: &Path) -> Vec<Run> {
    let mut runs = Vec::new();
    for path in json_files(dir) {
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let groups: Vec<Group> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for group in groups {
            let compiled = InputValidator::compile(&group.schema);
            for case in group.tests {
                let failure = match &compiled {
                    Err(e) => Some(format!("schema refused: {e}")),
                    Ok(validator) => match (validator.validate(&case.data), case.valid) {
                        (Ok(()), true) | (Err(_), false) => None,
                        (Ok(()), false) => Some("accepted an invalid instance".to_owned()),
                        (Err(messages), true) => Some(format!("rejected a valid instance: {}", messages.join("; "))),
                    },
                };
                runs.push(Run {
                    file: file.clone(),
                    group: group.description.clone(),
                    case: case.description,
                    failure,
                });
            }
        }
    }
    runs
}

fn load_xfail() -> XfailFile {
    let text = fs::read_to_string(XFAIL).unwrap_or_else(|e| panic!("{XFAIL}: {e}"));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{XFAIL}: {e}"))
}

#[test]
fn json_schema_test_suite_required_draft2020_12() {
    let runs = run_dir(Path::new(SUITE));
    let xfail = load_xfail();
    let mut problems = Vec::new();

    // Case ids must be unique for the list to be unambiguous.
    let mut seen = BTreeSet::new();
    for run in &runs {
        if !seen.insert((&run.file, &run.group, &run.case)) {
            problems.push(format!("duplicate case id: {} / {} / {}", run.file, run.group, run.case));
        }
    }

    // Which runs each entry covers; an entry that covers nothing is stale.
    let mut expected: BTreeMap<(&str, &str, &str), &str> = BTreeMap::new();
    for entry in &xfail.xfail {
        if !xfail.categories.contains_key(&entry.reason) {
            problems.push(format!("xfail {} / {}: unknown reason {:?}", entry.file, entry.group, entry.reason));
        }
        assert!(!entry.why.trim().is_empty(), "xfail {} / {}: empty why", entry.file, entry.group);
        let in_group: Vec<&Run> = runs.iter().filter(|r| r.file == entry.file && r.group == entry.group).collect();
        if in_group.is_empty() {
            problems.push(format!("stale xfail: no group {:?} in {}", entry.group, entry.file));
        }
        let names: Vec<&str> = match &entry.cases {
            None => in_group.iter().map(|r| r.case.as_str()).collect(),
            Some(cases) => cases.iter().map(String::as_str).collect(),
        };
        for name in names {
            if entry.cases.is_some() && !in_group.iter().any(|r| r.case == name) {
                problems.push(format!("stale xfail: no case {name:?} in {} / {}", entry.file, entry.group));
            }
            if expected.insert((&entry.file, &entry.group, name), &entry.reason).is_some() {
                problems.push(format!("xfail listed twice: {} / {} / {name}", entry.file, entry.group));
            }
        }
    }

    let (mut passed, mut xfailed) = (0usize, BTreeMap::<&str, usize>::new());
    for run in &runs {
        let listed = expected.get(&(run.file.as_str(), run.group.as_str(), run.case.as_str()));
        match (&run.failure, listed) {
            (None, None) => passed += 1,
            (Some(_), Some(reason)) => *xfailed.entry(reason).or_default() += 1,
            (None, Some(_)) => problems.push(format!(
                "stale xfail (now passes; delete the entry): {} / {} / {}",
                run.file, run.group, run.case
            )),
            (Some(failure), None) => {
                problems.push(format!("unlisted failure: {} / {} / {}: {failure}", run.file, run.group, run.case))
            }
        }
    }

    let total = runs.len();
    let xfailed_total: usize = xfailed.values().sum();
    let by_reason: Vec<String> = xfailed.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
    println!(
        "JSON-Schema-Test-Suite draft2020-12 (required): {total} cases, {passed} passed, \
         {xfailed_total} xfailed ({})",
        by_reason.join(", ")
    );
    assert!(total > 1000, "suite not found or truncated at {SUITE}: {total} cases");
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// Reads the suite's remote documents from `remotes/` in place: `http://localhost:1234/X` is
/// `remotes/X`; anything else is refused. Never touches the network.
struct LocalRemotes;

const REMOTES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/external/json-schema-test-suite/remotes/");

impl jsonschema::Retrieve for LocalRemotes {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let rest = uri.strip_prefix("http://localhost:1234/").ok_or_else(|| format!("not a suite remote: {uri}"))?;
        if rest.split('/').any(|part| part == "..") {
            return Err(format!("refusing {uri}").into());
        }
        let text = fs::read_to_string(format!("{REMOTES}{rest}"))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// The `remote-ref` reason is exact: every case it covers gives the suite's verdict once the
/// one thing the layer refuses by design, resolving a remote document, is supplied from
/// `remotes/`. Same draft, format and regex settings as `InputValidator::compile`, plus a
/// local-only retriever (a test-only validator: the server's layer has no resolver hook).
#[test]
fn json_schema_remote_ref_xfails_pass_with_a_local_resolver() {
    let xfail = load_xfail();
    let groups: BTreeSet<(&str, &str)> =
        xfail.xfail.iter().filter(|x| x.reason == "remote-ref").map(|x| (x.file.as_str(), x.group.as_str())).collect();
    assert!(!groups.is_empty(), "no remote-ref entries");
    let mut checked = 0;
    let mut problems = Vec::new();
    for (file, group_name) in &groups {
        let text = fs::read_to_string(Path::new(SUITE).join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let groups: Vec<Group> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let group = groups.iter().find(|g| g.description == *group_name).unwrap_or_else(|| panic!("{group_name}"));
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_retriever(LocalRemotes)
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .should_validate_formats(true)
            .build(&group.schema);
        let validator = match validator {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{file} / {group_name}: still refused with local remotes: {e}"));
                continue;
            }
        };
        for case in &group.tests {
            checked += 1;
            if validator.is_valid(&case.data) != case.valid {
                problems
                    .push(format!("{file} / {group_name} / {}: wrong verdict with local remotes", case.description));
            }
        }
    }
    println!("remote-ref xfails resolved from remotes/: {checked} cases checked, {} wrong", problems.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The optional cases (`optional/` and `optional/format/`): reported, never asserted, because
/// they test behaviour the specification leaves to implementations.
#[test]
fn json_schema_test_suite_optional_draft2020_12_report() {
    let optional = Path::new(SUITE).join("optional");
    // file -> (passed, total, invalid instances accepted, valid ones rejected or schema refused)
    let mut per_file: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    for dir in [optional.clone(), optional.join("format")] {
        let prefix = if dir == optional { "optional/" } else { "optional/format/" };
        for run in run_dir(&dir) {
            let counts = per_file.entry(format!("{prefix}{}", run.file)).or_default();
            counts[1] += 1;
            match &run.failure {
                None => counts[0] += 1,
                Some(f) if f.starts_with("accepted") => counts[2] += 1,
                Some(_) => counts[3] += 1,
            }
        }
    }
    let passed: usize = per_file.values().map(|c| c[0]).sum();
    let total: usize = per_file.values().map(|c| c[1]).sum();
    println!("JSON-Schema-Test-Suite draft2020-12 (optional, informational): {passed}/{total} passed");
    for (file, [ok, n, accepted, rejected]) in &per_file {
        if ok != n {
            println!("  {file}: {ok}/{n} ({accepted} invalid accepted, {rejected} valid rejected or schema refused)");
        }
    }
    assert!(total > 0, "optional suite not found at {}", optional.display());
}
