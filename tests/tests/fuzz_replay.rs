//! Replays every committed fuzz seed (`corpus/<target>/`) and every saved crash
//! (`corpus/<target>/regressions/`) through the same invariant function the cargo-fuzz target
//! calls, so stable `cargo test` covers the corpus without nightly.
//!
//! A crash found by `fuzz/nightly.sh` is minimized, copied to `corpus/<target>/regressions/`
//! under a descriptive name, and gets a named test below with a comment on its root cause.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// The function a fuzz target calls on one input; it panics when an invariant breaks.
type Invariant = fn(&[u8]);

/// Every fuzz target and the function it calls. Keep in step with `fuzz/Cargo.toml`.
const TARGETS: &[(&str, Invariant)] = &[
    ("jsonrpc_parse", mcproof_server::fuzzing::jsonrpc_parse),
    ("jsonrpc_differential", mcproof_server::fuzzing::jsonrpc_differential),
    ("schema_validate", mcproof_server::fuzzing::schema_validate),
    ("sanitize", mcproof_server::fuzzing::sanitize),
    ("path_guard", mcproof_server::fuzzing::path_guard),
    ("token_verify", mcproof_server::fuzzing::token_verify),
    ("oauth_params", mcproof_server::fuzzing::oauth_params),
    ("harness_parsers", mcproof::client::fuzz_invariants::harness_parsers),
];

/// Saved regressions whose bug is not fixed yet: `(target, file, reason)`. Strict both ways: each
/// must still fail (a fixed one must leave this list), and nothing else may fail.
const KNOWN_OPEN: &[(&str, &str, &str)] = &[];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus")
}

/// The regular files of `dir` (not dot-files), sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    out.sort();
    out
}

/// Runs every file through `check`, collecting failures, then asserts once with all of them.
fn replay(target: &str, check: Invariant, paths: &[PathBuf]) -> Vec<String> {
    let mut failures = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&bytes))) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{target}: {}: {why}", path.display()));
        }
    }
    failures
}

#[test]
fn every_seed_and_regression_holds_its_targets_invariants() {
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for (target, check) in TARGETS {
        let dir = corpus().join(target);
        let seeds = files(&dir);
        let regressions = files(&dir.join("regressions"));
        assert!(seeds.len() >= 5, "{target}: expected at least 5 committed seeds, found {}", seeds.len());
        assert!(dir.with_extension("dict").is_file(), "{target}: no dictionary corpus/{target}.dict");
        failures.extend(replay(target, *check, &seeds));
        let (open, fixed): (Vec<PathBuf>, Vec<PathBuf>) =
            regressions.into_iter().partition(|p| known_open(target, p).is_some());
        failures.extend(replay(target, *check, &fixed));
        for path in &open {
            if replay(target, *check, std::slice::from_ref(path)).is_empty() {
                failures.push(format!("{target}: {} now passes: remove it from KNOWN_OPEN", path.display()));
            }
        }
        let regressions = [open, fixed].concat();
        counts.push(format!("{target}: {} seeds, {} regressions", seeds.len(), regressions.len()));
    }
    eprintln!("{}", counts.join("\n"));
    assert!(failures.is_empty(), "{} inputs broke an invariant:\n{}", failures.len(), failures.join("\n"));
}

fn known_open(target: &str, path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    KNOWN_OPEN.iter().find(|(t, f, _)| *t == target && *f == name).map(|(_, _, why)| *why)
}

/// Found by the `harness_parsers` target: `SseParser::push` cut an over-long pending line to
/// `max_line` before its terminator arrived, then stripped a trailing CR — which, for a cut line,
/// was whatever byte sat at the cut — so the same stream parsed differently depending on how the
/// server's bytes were split into chunks. Root cause: the CR strip did not know the line had been
/// cut. Fixed by remembering the cut (`SseParser::line_cut`) and skipping the strip for it.
#[test]
fn sse_cr_at_line_cut_is_split_invariant() {
    let path = corpus().join("harness_parsers/regressions/sse-cr-at-line-cut");
    let input = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let outcome = catch_unwind(|| mcproof::client::fuzz_invariants::harness_parsers(&input));
    assert!(outcome.is_ok(), "the SSE parser must parse a cut line the same whatever the chunking");
}

/// Found by the `sanitize` target (smoke run, unoptimized build) as a timeout: a 44-byte input
/// that the target repeats to 70,000 characters — chat-template tokens, "system", and one
/// U+FFFD. Root cause: two injection patterns used a Unicode `\b`, which stops regex's lazy DFA
/// at the first non-ASCII byte, so the whole marker set ran on the PikeVM (27 s for this input
/// in the ASan smoke build with optimized regex engines, 1.9 s after the fix: a CPU cost a
/// hostile tool output could choose). Fixed by
/// spelling the boundaries as `(?:^|\W)` / `(?:\W|$)` (same matches; the unit test
/// `sanitize::tests::word_boundaries_are_spelled_out` checks both). The replay checks the
/// sanitizer's invariants on the input; its speed is the fuzz smoke run's and the benches' job.
#[test]
fn sanitize_long_non_ascii_injection_text_keeps_invariants() {
    let path = corpus().join("sanitize/regressions/injection-markers-long-non-ascii");
    let input = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let outcome = catch_unwind(|| mcproof_server::fuzzing::sanitize(&input));
    assert!(outcome.is_ok(), "the sanitizer's invariants must hold on long marker-laden non-ASCII text");
}

#[test]
fn the_fuzz_manifest_lists_exactly_these_targets() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/Cargo.toml"))
        .unwrap_or_else(|e| panic!("fuzz/Cargo.toml: {e}"));
    let mut listed: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "mcproof-fuzz")
        .collect();
    listed.sort_unstable();
    let mut ours: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
    ours.sort_unstable();
    assert_eq!(listed, ours, "fuzz/Cargo.toml and the replay test disagree about the targets");
}
