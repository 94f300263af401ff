//! The command line's CI contract: exit codes, outputs, reports, baselines, filters, usage
//! errors, the catalogue commands, and secrets never printed.
//!
//! Every run of the binary is bounded by a watchdog that kills it (and its process group)
//! after a hard limit; a test that had to kill fails.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{BIN, mcproof, tail};

/// Hard limit for a scan of the embedded server or a stdio twin (normally a few seconds).
const SCAN_LIMIT: Duration = Duration::from_secs(60);
/// Hard limit for commands that scan nothing.
const QUICK_LIMIT: Duration = Duration::from_secs(20);

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `-- <mcproof> __serve-reference --stdio [--fault F]`: the embedded server's stdio twin.
fn stdio_twin(fault: Option<&str>) -> Vec<&str> {
    let mut v = vec!["--", BIN, "__serve-reference", "--stdio"];
    if let Some(f) = fault {
        v.extend(["--fault", f]);
    }
    v
}

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(tail).copied().collect()
}

fn results(report: &Value) -> &Vec<Value> {
    report["results"].as_array().expect("results array")
}

fn catalogue() -> Vec<Value> {
    let run = mcproof(&["checks", "--format", "json"], QUICK_LIMIT);
    run.expect(0);
    run.json().as_array().expect("checks --format json is an array").clone()
}

// ---------------------------------------------------------------------------------------------
// The default scan.

#[test]
fn scan_without_target_grades_the_embedded_server_a() {
    let run = mcproof(&["scan"], SCAN_LIMIT);
    run.expect(0);
    assert!(run.stdout.contains("grade A"), "text report should say grade A:\n{}", tail(&run.stdout));
    assert!(run.stderr.contains("embedded reference server"), "stderr: {}", run.stderr);
}

#[test]
fn scan_without_target_as_json() {
    let run = mcproof(&["scan", "--format", "json", "-q"], SCAN_LIMIT);
    run.expect(0);
    let report = run.json();
    assert_eq!(report["schema"], "mcproof-report/1");
    assert_eq!(report["grade"], "A", "{}", report["summary"]);
    let results = results(&report);
    assert!(!results.is_empty());
    for r in results {
        assert!(
            r["status"] != "FAIL" || r.get("accepted").is_some_and(|a| a.is_string()),
            "unaccepted FAIL in the default scan: {} — {}",
            r["id"],
            r["message"]
        );
        assert!(r["status"] != "ERROR", "ERROR in the default scan: {} — {}", r["id"], r["message"]);
    }
    // -q keeps stderr free of progress and summary lines.
    assert!(!run.stderr.contains("scanning"), "stderr with -q: {}", run.stderr);
}

#[test]
fn every_report_format_is_written() {
    let dir = tempdir();
    let path = |name: &str| dir.path().join(name);
    let (sarif, junit, json, md, html) = (path("r.sarif"), path("r.xml"), path("r.json"), path("r.md"), path("r.html"));
    let specs: Vec<String> =
        [("sarif", &sarif), ("junit", &junit), ("json", &json), ("markdown", &md), ("html", &html)]
            .iter()
            .map(|(f, p)| format!("{f}={}", p.display()))
            .collect();
    let mut a = vec!["scan", "-q"];
    for s in &specs {
        a.extend(["--report", s.as_str()]);
    }
    let run = mcproof(&a, SCAN_LIMIT);
    run.expect(0);
    for p in [&sarif, &junit, &json, &md, &html] {
        let len = std::fs::metadata(p).unwrap_or_else(|e| panic!("{} not written: {e}", p.display())).len();
        assert!(len > 0, "{} is empty", p.display());
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("read json")).expect("json report");
    assert_eq!(report["schema"], "mcproof-report/1");
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).expect("read sarif")).expect("sarif");
    assert_eq!(sarif["version"], "2.1.0");
    let junit = std::fs::read_to_string(&junit).expect("read junit");
    assert!(junit.trim_start().starts_with("<?xml") || junit.contains("<testsuite"), "junit: {}", tail(&junit));
    let html = std::fs::read_to_string(&html).expect("read html");
    assert!(html.to_lowercase().contains("<html"), "html: {}", tail(&html));
    assert!(std::fs::read_to_string(&md).expect("read md").contains('|'));
}

// ---------------------------------------------------------------------------------------------
// Exit 1 and --fail-on.

#[test]
fn broken_must_control_exits_1_and_names_the_check() {
    let run = mcproof(&args(&["scan"], &stdio_twin(Some("stdio-clean-stdout"))), SCAN_LIMIT);
    run.expect(1);
    assert!(run.stdout.contains("stdio/clean-stdout"), "text report should name the check:\n{}", run.stdout);
    assert!(run.stdout.contains("FAIL"), "{}", run.stdout);
}

#[test]
fn fail_on_never_exits_0_on_the_same_target() {
    let run = mcproof(&args(&["scan", "--fail-on", "never"], &stdio_twin(Some("stdio-clean-stdout"))), SCAN_LIMIT);
    run.expect(0);
    assert!(run.stdout.contains("stdio/clean-stdout"), "{}", run.stdout);
}

// ---------------------------------------------------------------------------------------------
// Baselines, strict both ways.

#[test]
fn baseline_accepts_what_it_lists_and_fails_when_stale() {
    let dir = tempdir();
    let file = dir.path().join("baseline.toml");
    let faulty = stdio_twin(Some("stdio-clean-stdout"));

    // (a) write a baseline of the faulty target, then scan it with that baseline: exit 0.
    let run = mcproof(&args(&["baseline", "-q", "-o", path_str(&file)], &faulty), SCAN_LIMIT);
    run.expect(0);
    let text = std::fs::read_to_string(&file).expect("baseline written");
    assert!(text.contains("stdio/clean-stdout"), "baseline:\n{text}");
    assert!(run.stdout.is_empty(), "`baseline` prints no report: {}", run.stdout);

    let run = mcproof(&args(&["scan", "--format", "json", "--baseline", path_str(&file)], &faulty), SCAN_LIMIT);
    run.expect(0);
    let report = run.json();
    let clean = results(&report).iter().find(|r| r["id"] == "stdio/clean-stdout").expect("stdio/clean-stdout ran");
    assert_eq!(clean["status"], "FAIL");
    assert!(clean["accepted"].is_string(), "the FAIL is marked accepted: {clean}");

    // (b) the same baseline against the secure twin: the accepted FAIL is gone, so it is stale.
    let run = mcproof(&args(&["scan", "--baseline", path_str(&file)], &stdio_twin(None)), SCAN_LIMIT);
    run.expect(1);
    assert!(run.stderr.contains("stale"), "stderr should say stale:\n{}", run.stderr);
    assert!(run.stderr.contains("stdio/clean-stdout"), "stderr should name the entry:\n{}", run.stderr);
}

#[test]
fn baseline_entry_for_an_unknown_check_is_stale() {
    let dir = tempdir();
    let file = dir.path().join("baseline.toml");
    std::fs::write(
        &file,
        "[[accept]]\ncheck = \"no-such/check-id\"\nstatus = \"FAIL\"\nreason = \"a typo must not pass silently\"\n",
    )
    .expect("write");
    let run = mcproof(&args(&["scan", "--baseline", path_str(&file)], &stdio_twin(None)), SCAN_LIMIT);
    run.expect(1);
    assert!(run.stderr.contains("stale"), "{}", run.stderr);
    assert!(run.stderr.contains("no-such/check-id"), "{}", run.stderr);
}

#[test]
fn malformed_baselines_are_usage_errors() {
    let dir = tempdir();
    let cases = [
        (
            "unknown-key.toml",
            "[[accept]]\ncheck = \"stdio/clean-stdout\"\nstatus = \"FAIL\"\nreason = \"r\"\nexpires = \"never\"\n",
            "expires",
        ),
        (
            "empty-reason.toml",
            "[[accept]]\ncheck = \"stdio/clean-stdout\"\nstatus = \"FAIL\"\nreason = \"  \"\n",
            "reason",
        ),
        ("not-toml.toml", "this is [not toml\n", "baseline"),
        (
            "pass-status.toml",
            "[[accept]]\ncheck = \"stdio/clean-stdout\"\nstatus = \"PASS\"\nreason = \"r\"\n",
            "status",
        ),
    ];
    for (name, text, needle) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, text).expect("write");
        let run = mcproof(
            &args(&["scan", "--baseline", path_str(&file)], &stdio_twin(Some("stdio-clean-stdout"))),
            SCAN_LIMIT,
        );
        run.usage_error(needle);
        assert!(run.stdout.is_empty(), "{name}: no report on a usage error: {}", run.stdout);
    }
    let missing = dir.path().join("missing.toml");
    mcproof(&["scan", "--baseline", path_str(&missing)], QUICK_LIMIT).usage_error("missing.toml");
}

// ---------------------------------------------------------------------------------------------
// Filtering.

fn scan_json(extra: &[&str]) -> Vec<Value> {
    let run = mcproof(&args(&["scan", "--format", "json", "-q"], extra), SCAN_LIMIT);
    run.expect(0);
    results(&run.json()).clone()
}

fn area(check: &Value) -> &str {
    check["id"].as_str().and_then(|id| id.split('/').next()).expect("id")
}

#[test]
fn check_filter_runs_exactly_one_check() {
    let results = scan_json(&["--check", "jsonrpc/id-echo"]);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["id"], "jsonrpc/id-echo");
}

#[test]
fn area_filter() {
    let all = catalogue();
    let posture = all.iter().filter(|c| area(c) == "posture").count();
    let results = scan_json(&["--area", "posture"]);
    assert_eq!(results.len(), posture);
    assert!(results.iter().all(|r| r["area"] == "posture"), "{results:?}");
}

#[test]
fn skip_filter() {
    let all = catalogue();
    let results = scan_json(&["--skip", "posture/*"]);
    assert_eq!(results.len(), all.iter().filter(|c| area(c) != "posture").count());
    assert!(results.iter().all(|r| r["area"] != "posture"));
}

#[test]
fn level_filter() {
    let all = catalogue();
    let results = scan_json(&["--level", "must"]);
    assert_eq!(results.len(), all.iter().filter(|c| c["level"] == "MUST").count());
    assert!(results.iter().all(|r| r["level"] == "MUST"), "{results:?}");
}

#[test]
fn unknown_check_filter_is_a_usage_error() {
    mcproof(&["scan", "--check", "no/such"], QUICK_LIMIT).usage_error("no/such");
    mcproof(&["scan", "--skip", "nosuch/*"], QUICK_LIMIT).usage_error("nosuch/*");
    mcproof(&["scan", "--area", "nosucharea"], QUICK_LIMIT).usage_error("nosucharea");
}

// ---------------------------------------------------------------------------------------------
// Usage errors: exit 2, a message on stderr, nothing scanned.

#[test]
fn usage_errors_exit_2_with_a_message() {
    let dir = tempdir();
    let exists = dir.path().join("exists");
    std::fs::create_dir(&exists).expect("mkdir");
    let in_file = format!("json={}", exists.join("not-a-dir").join("x.json").display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["scan", "--no-such-flag"], "--no-such-flag"),
        (vec!["frobnicate"], "frobnicate"),
        (vec!["scan", "--report", "nope=x"], "nope"),
        (vec!["scan", "--report", "json"], "FORMAT=PATH"),
        (vec!["scan", "--report", "json="], "PATH"),
        (vec!["scan", "--report", "json=/nonexistent-dir/x.json"], "/nonexistent-dir"),
        (vec!["scan", "--report", &in_file], "not-a-dir"),
        (vec!["scan", "ftp://x"], "http"),
        (vec!["scan", "not a url"], "URL"),
        (vec!["scan", "http://127.0.0.1:1/mcp", "--", "sh", "-c", "exit 0"], "not both"),
        (vec!["scan", "http://127.0.0.1:1/mcp", "--header", "novalue"], "--header"),
        (vec!["scan", "http://127.0.0.1:1/mcp", "--header", "bad name: v"], "header"),
        (vec!["scan", "--header", "novalue"], "--header"),
        (vec!["scan", "http://127.0.0.1:1/mcp", "--header", "X-A: line\nbreak"], "--header"),
        (vec!["scan", "http://127.0.0.1:1/mcp", "--bearer", "line\nbreak"], "--bearer"),
        (vec!["scan", "--env", "NOEQUALS", "--", "sh", "-c", "exit 0"], "--env"),
        (vec!["scan", "--level", "nope"], "nope"),
        (vec!["scan", "--fail-on", "sometimes"], "sometimes"),
        (vec!["scan", "--format", "pdf"], "pdf"),
        (vec!["scan", "--timeout", "soon"], "soon"),
        (vec!["explain", "no/such"], "no/such"),
        (vec!["explain"], "<ID>"),
        (vec!["checks", "--format", "nope"], "nope"),
        (vec!["baseline", "--", "sh", "-c", "exit 0"], "--output"),
    ];
    for (argv, needle) in cases {
        let run = mcproof(&argv, QUICK_LIMIT);
        assert_eq!(
            run.code,
            Some(2),
            "`mcproof {}` should exit 2, got {:?}\nstdout: {}\nstderr: {}",
            argv.join(" "),
            run.code,
            tail(&run.stdout),
            run.stderr
        );
        assert!(
            run.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "`mcproof {}`: stderr should mention `{needle}`:\n{}",
            argv.join(" "),
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(run.elapsed < Duration::from_secs(10), "`mcproof {}` took {:?}", argv.join(" "), run.elapsed);
    }
}

// ---------------------------------------------------------------------------------------------
// The catalogue commands.

#[test]
fn checks_lists_the_whole_catalogue() {
    let all = catalogue();
    assert!(!all.is_empty());
    let run = mcproof(&["checks"], QUICK_LIMIT);
    run.expect(0);
    for c in &all {
        let id = c["id"].as_str().expect("id");
        assert!(run.stdout.lines().any(|l| l.starts_with(&format!("{id} "))), "`checks` does not list {id}");
    }
    assert!(run.stdout.contains(&format!("{} checks", all.len())), "{}", run.stdout);

    let run = mcproof(&["checks", "--format", "markdown"], QUICK_LIMIT);
    run.expect(0);
    let rows: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), all.len() + 2, "header, separator and one row per check:\n{}", run.stdout);
    assert!(rows[1].starts_with("|---"), "{}", rows[1]);
    let columns = rows[0].matches('|').count();
    for c in &all {
        let id = c["id"].as_str().expect("id");
        let row = rows.iter().find(|r| r.contains(&format!("`{id}`"))).unwrap_or_else(|| panic!("no row for {id}"));
        assert_eq!(row.matches('|').count() - row.matches("\\|").count(), columns, "{row}");
    }
}

#[test]
fn explain_prints_level_source_and_remediation() {
    let run = mcproof(&["explain", "transport/origin-forbidden"], QUICK_LIMIT);
    run.expect(0);
    let info = catalogue().into_iter().find(|c| c["id"] == "transport/origin-forbidden").expect("in catalogue");
    for needle in ["transport/origin-forbidden", "level:", "source:", "how to fix"] {
        assert!(run.stdout.contains(needle), "missing `{needle}`:\n{}", run.stdout);
    }
    for field in ["level", "source", "remediation"] {
        let value = info[field].as_str().expect(field);
        assert!(run.stdout.contains(value), "missing the {field} `{value}`:\n{}", run.stdout);
    }
}

#[test]
fn help_for_every_subcommand() {
    for argv in [
        vec!["--help"],
        vec!["help"],
        vec!["scan", "--help"],
        vec!["baseline", "--help"],
        vec!["checks", "--help"],
        vec!["explain", "--help"],
        vec!["help", "scan"],
        vec!["--version"],
    ] {
        let run = mcproof(&argv, QUICK_LIMIT);
        run.expect(0);
        assert!(!run.stdout.trim().is_empty(), "`mcproof {}` printed nothing", argv.join(" "));
    }
    let run = mcproof(&["scan", "--help"], QUICK_LIMIT);
    for flag in ["--fail-on", "--baseline", "--report", "--check", "--skip", "--timeout"] {
        assert!(run.stdout.contains(flag), "scan --help lacks {flag}");
    }
    // No subcommand is a usage error, with the help on stderr.
    let run = mcproof(&[], QUICK_LIMIT);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("Usage"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// Secrets are never printed.

#[test]
fn secrets_never_appear_in_any_output() {
    const TOKEN: &str = "SECRET-TOKEN-123";
    const KEY: &str = "SECRET-KEY-456";
    const API_KEY: &str = "SECRET-APIKEY-789";
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt
        .block_on(mcproof::serve::start_embedded_with(&[], mcproof::serve::EmbeddedAuth::Public))
        .expect("embedded server");
    let url = server.url.to_string();
    let dir = tempdir();
    let files: Vec<PathBuf> =
        ["r.sarif", "r.xml", "r.json", "r.md", "r.html", "r.txt"].iter().map(|n| dir.path().join(n)).collect();
    let specs: Vec<String> = ["sarif", "junit", "json", "markdown", "html", "text"]
        .iter()
        .zip(&files)
        .map(|(f, p)| format!("{f}={}", p.display()))
        .collect();
    let header = format!("X-Api-Key: {KEY}");
    let base = vec!["scan", url.as_str(), "--bearer", TOKEN, "--header", header.as_str(), "--api-key", API_KEY];
    let mut argv = args(&base, &["--format", "json"]);
    for s in &specs {
        argv.extend(["--report", s.as_str()]);
    }
    let run = mcproof(&argv, SCAN_LIMIT);
    assert!(matches!(run.code, Some(0 | 1)), "the scan ran: {run:?}");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let report = run.json();
    assert!(!results(&report).is_empty());
    let mut outputs = vec![("stdout".to_owned(), run.stdout.clone()), ("stderr".to_owned(), run.stderr.clone())];
    for f in &files {
        outputs.push((f.display().to_string(), std::fs::read_to_string(f).expect("report written")));
    }
    // The text format on stdout too.
    let text = mcproof(&args(&base, &["--format", "text"]), SCAN_LIMIT);
    outputs.push(("text stdout".into(), text.stdout));
    outputs.push(("text stderr".into(), text.stderr));
    for (name, content) in &outputs {
        for secret in [TOKEN, KEY, API_KEY] {
            assert!(!content.contains(secret), "{name} contains the secret {secret}");
        }
    }
    // The evidence still shows that credentials were sent, redacted.
    assert!(run.stdout.contains("Bearer [REDACTED]"), "the evidence shows the credentials were sent, redacted");
    drop(server);
}

/// `HttpTarget::headers` promises that the values of extra headers are redacted in reports, but
/// only headers with well-known credential names (`Authorization`, `X-API-Key`, …) are: a
/// secret in `--header 'X-Tenant-Token: …'` appears verbatim in the evidence.
#[test]
fn custom_header_values_are_redacted() {
    const SECRET: &str = "SECRET-CUSTOM-HEADER-VALUE";
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt
        .block_on(mcproof::serve::start_embedded_with(&[], mcproof::serve::EmbeddedAuth::Public))
        .expect("embedded server");
    let url = server.url.to_string();
    let header = format!("X-Tenant-Token: {SECRET}");
    let run = mcproof(&["scan", &url, "-q", "--format", "json", "--check", "lifecycle/*", "-H", &header], SCAN_LIMIT);
    assert!(matches!(run.code, Some(0 | 1)), "{run:?}");
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET), "the --header value is printed");
    drop(server);
}
