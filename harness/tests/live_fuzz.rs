//! Live fuzzing end to end (`mcproof fuzz`, `mcproof replay`), on loopback only:
//! the secure reference server survives a bounded run; a planted bug (fault `planted-panic`)
//! is found within 60 s, shrunk to a small reproducer and replayed by the binary; a stdio
//! target runs to its bound; `--max-requests` is exact.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mcproof::check::Status;
use mcproof::fuzz::{self, Body, FuzzOptions, Oracle, Reproducer, Step};
use mcproof::serve::start_embedded;
use mcproof::target::{StdioTarget, Target};
use serde_json::Value;

/// The seed of the planted-bug run (any seed finds it; this one is fixed so the test is exact).
const PLANTED_SEED: u64 = 5;

/// Runs the `mcproof` binary and returns its exit code, stdout and stderr.
async fn mcproof(args: Vec<String>, bearer: Option<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcproof"));
        cmd.args(&args).env_remove("MCPROOF_BEARER").env_remove("MCPROOF_API_KEY");
        if let Some(b) = bearer {
            cmd.env("MCPROOF_BEARER", b);
        }
        let out = cmd.output().expect("run mcproof");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secure_reference_server_survives_a_bounded_run() {
    let server = start_embedded(&[]).await.expect("start the reference server");
    let dir = tempfile::tempdir().expect("tempdir");
    let options = FuzzOptions {
        seed: 20_251_125,
        duration: Duration::from_secs(10),
        max_requests: 2000,
        ..FuzzOptions::default()
    };
    let started = Instant::now();
    let outcome = fuzz::run(&server.target(), &options, Some(dir.path()), |_| {}).await.expect("fuzz");
    let found: Vec<String> = outcome.findings.iter().map(|f| format!("{:?}", f.reproducer)).collect();
    assert!(found.is_empty(), "findings against the secure server:\n{}", found.join("\n"));
    assert!(started.elapsed() < Duration::from_secs(20), "the run overran its 10 s bound: {:?}", started.elapsed());
    assert!(outcome.requests <= 2000, "{} requests", outcome.requests);
    assert!(outcome.requests >= 300 && outcome.cases >= 40, "{} requests, {} cases", outcome.requests, outcome.cases);
    let report = fuzz::report(&outcome, "2026-01-01T00:00:00Z".into());
    assert_eq!(report.results.len(), Oracle::ALL.len());
    assert!(report.results.iter().all(|r| r.status == Status::Pass && r.id.starts_with("fuzz/")));
    assert_eq!(report.seed, 20_251_125);
    // Nothing saved when nothing failed.
    assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 0);
}

/// Keeps the planted panics (hundreds, while shrinking) out of the test output; every other
/// panic still reaches the default hook.
fn quiet_planted_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let planted = info.payload().downcast_ref::<&str>().is_some_and(|m| m.starts_with("planted-panic"))
            || info.payload().downcast_ref::<String>().is_some_and(|m| m.starts_with("planted-panic"));
        if !planted {
            default(info);
        }
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_panic_is_found_shrunk_saved_and_replayed() {
    quiet_planted_panics();
    let faulty = start_embedded(&["planted-panic".to_owned()]).await.expect("start the faulty server");
    let dir = tempfile::tempdir().expect("tempdir");
    let options = FuzzOptions {
        seed: PLANTED_SEED,
        duration: Duration::from_secs(60),
        stop_on_finding: true,
        ..FuzzOptions::default()
    };
    let outcome = fuzz::run(&faulty.target(), &options, Some(dir.path()), |_| {}).await.expect("fuzz");
    let finding = outcome
        .findings
        .iter()
        .find(|f| f.reproducer.oracle == Oracle::ServerError)
        .unwrap_or_else(|| panic!("no 5xx found in {} requests ({} cases)", outcome.requests, outcome.cases));
    eprintln!(
        "planted bug: found after {:?} and {} requests ({} cases); shrunk from {} to {} step(s) in {} requests",
        finding.found_after,
        outcome.requests,
        outcome.cases,
        finding.original_steps,
        finding.reproducer.steps.len(),
        outcome.shrink_requests
    );
    assert!(finding.found_after < Duration::from_secs(60), "found after {:?}", finding.found_after);
    assert!(finding.confirmed, "the shrunk case must fail on a fresh connection");

    // Shrunk: one session, one call, whose arguments are the bug's shape and little else.
    let steps = &finding.reproducer.steps;
    assert!(steps.len() <= 2, "{} steps: {steps:?}", steps.len());
    let call = steps
        .iter()
        .find_map(|s| match s {
            Step::Send { body: Body::Json(v), .. } => Some(v.clone()),
            _ => None,
        })
        .expect("a JSON message");
    assert_eq!(call["method"], "tools/call", "{call}");
    let args = call["params"]["arguments"].as_object().expect("arguments object");
    assert!(args.len() <= 3, "arguments not shrunk: {call}");
    assert!(depth(&args["x"]) >= 3 && depth(&args["x"]) <= 4, "x is the trigger and is minimal: {call}");
    assert!(call.to_string().len() < 200, "message not shrunk: {call}");

    // Saved, and loads back identically.
    let path = finding.path.clone().expect("saved");
    eprintln!("reproducer {}:\n{}", path.display(), std::fs::read_to_string(&path).unwrap_or_default());
    assert!(path.starts_with(dir.path()));
    assert_eq!(Reproducer::load(&path).expect("load"), finding.reproducer);
    let report = fuzz::report(&outcome, "2026-01-01T00:00:00Z".into());
    let failed = report.results.iter().find(|r| r.id == "fuzz/server-error").expect("result");
    assert_eq!(failed.status, Status::Fail);
    assert!(
        !failed.evidence.is_empty()
            && failed.evidence.iter().any(|e| e.response.as_ref().is_some_and(|r| r.status == 500))
    );
    assert!(
        failed.evidence.iter().all(|e| !e.request.headers.iter().any(|(_, v)| v.contains("mcp_sk_"))),
        "key leaked"
    );

    // The binary replays it: reproduced against the faulty server, not against a secure one.
    let file = path.display().to_string();
    let (code, out, err) =
        mcproof(vec!["replay".into(), file.clone(), faulty.url.to_string()], faulty.api_key.clone()).await;
    assert_eq!(code, 1, "replay against the faulty server: {out}\n{err}");
    assert!(out.contains("reproduced: server-error"), "{out}");
    let secure = start_embedded(&[]).await.expect("start the secure server");
    let (code, out, err) = mcproof(vec!["replay".into(), file, secure.url.to_string()], secure.api_key.clone()).await;
    assert_eq!(code, 0, "replay against the secure server: {out}\n{err}");
    assert!(out.contains("not reproduced"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_target_runs_to_its_bound_and_reports() {
    let target = Target::Stdio(StdioTarget {
        command: env!("CARGO_BIN_EXE_mcproof").into(),
        args: vec!["__serve-reference".into(), "--stdio".into()],
        env: Vec::new(),
        cwd: None,
        startup_timeout: Duration::from_secs(20),
    });
    let options =
        FuzzOptions { seed: 77, duration: Duration::from_secs(8), max_requests: 400, ..FuzzOptions::default() };
    let started = Instant::now();
    let outcome = fuzz::run(&target, &options, None, |_| {}).await.expect("fuzz");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(matches!(outcome.stopped_by.as_str(), "duration" | "max-requests"), "{}", outcome.stopped_by);
    assert!(outcome.requests <= 400 && outcome.cases >= 10, "{} requests, {} cases", outcome.requests, outcome.cases);
    let found: Vec<String> = outcome.findings.iter().map(|f| format!("{:?}", f.reproducer)).collect();
    assert!(found.is_empty(), "findings against the reference server on stdio:\n{}", found.join("\n"));
    let report = fuzz::report(&outcome, "2026-01-01T00:00:00Z".into());
    assert_eq!(report.transport, mcproof::check::Transport::Stdio);
    assert_eq!(report.summary.pass, Oracle::ALL.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_requests_is_exact_and_the_run_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let json = dir.path().join("fuzz.json");
    let args: Vec<String> = [
        "fuzz",
        "--max-requests",
        "50",
        "--duration",
        "60",
        "--seed",
        "3",
        "--quiet",
        "--out",
        &out.display().to_string(),
        "--report",
        &format!("json={}", json.display()),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let started = Instant::now();
    let (code, _stdout, stderr) = mcproof(args, None).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(stderr.contains("seed 3"), "the seed is printed: {stderr}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    assert_eq!(summary["requests"], 50, "{summary:#}");
    assert_eq!(summary["stopped_by"], "max-requests");
    assert_eq!(summary["seed"], 3);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    assert_eq!(report["seed"], 3);
    assert_eq!(report["results"].as_array().map(Vec::len), Some(Oracle::ALL.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_exit_codes_for_bad_files_and_dead_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.json");
    let (code, _, _) = mcproof(vec!["replay".into(), missing.display().to_string()], None).await;
    assert_eq!(code, 2);
    let file = write_reproducer(dir.path());
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let (code, _, err) = mcproof(
        vec!["replay".into(), file, format!("http://127.0.0.1:{port}/mcp"), "--timeout".into(), "2".into()],
        None,
    )
    .await;
    assert_eq!(code, 3, "{err}");
}

fn write_reproducer(dir: &Path) -> String {
    let r = Reproducer {
        format: fuzz::repro::FORMAT.into(),
        oracle: Oracle::ServerError,
        detail: "hand-written".into(),
        seed: 0,
        case: 0,
        transport: mcproof::check::Transport::Http,
        found_against: "http://127.0.0.1:9/mcp".into(),
        steps: vec![Step::Init { slot: 0 }],
    };
    r.save(dir).expect("save").display().to_string()
}
