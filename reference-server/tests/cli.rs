//! The `mcproof-server` command line: the one-line listening banner, configuration errors
//! (exit 2 with a message on stderr), `--help` and `--print-config`.
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const TIMEOUT: Duration = Duration::from_secs(10);
const BIN: &str = env!("CARGO_BIN_EXE_mcproof-server");

/// A command with no configuration leaking in from the environment.
fn server() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("MCPROOF_") {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    cmd
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs to completion (bounded).
async fn run(args: &[&str]) -> Output {
    let out = tokio::time::timeout(TIMEOUT, server().args(args).output())
        .await
        .unwrap_or_else(|_| panic!("mcproof-server {args:?} did not exit within {TIMEOUT:?}"))
        .expect("run mcproof-server");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_config_error(out: &Output, args: &str, mention: &str) {
    assert_eq!(out.code, Some(2), "{args}: exit code; stderr: {}", out.stderr);
    assert!(!out.stderr.trim().is_empty(), "{args}: a message on stderr");
    assert!(
        out.stderr.to_ascii_lowercase().contains(&mention.to_ascii_lowercase()),
        "{args}: stderr should mention {mention:?}: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{args}: {}", out.stderr);
    assert!(!out.stdout.contains("listening on"), "{args}: must not start: {}", out.stdout);
}

#[tokio::test]
async fn listen_prints_one_line_then_serves() {
    let mut child = server().args(["--listen", "127.0.0.1:0"]).spawn().expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(TIMEOUT, stdout.next_line())
        .await
        .expect("banner within the timeout")
        .expect("read stdout")
        .expect("a banner line");
    let re = regex::Regex::new(r"^listening on http://127\.0\.0\.1:(\d+)/mcp$").expect("regex");
    let caps = re.captures(&line).unwrap_or_else(|| panic!("banner {line:?}"));
    let port: u16 = caps[1].parse().expect("port");
    assert_ne!(port, 0, "the real port is printed");

    let url = format!("http://127.0.0.1:{port}/mcp");
    let client = reqwest::Client::builder().timeout(TIMEOUT).no_proxy().build().expect("client");
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "0" } }
    });
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string())
        .send()
        .await
        .expect("POST initialize");
    // Authentication is required by default: it serves, and asks for a credential.
    assert_eq!(response.status().as_u16(), 401);
    let challenge = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(challenge.starts_with("Bearer resource_metadata="), "{challenge}");
    assert!(!response.headers().contains_key("mcp-session-id"));

    child.start_kill().expect("kill");
    let _ = tokio::time::timeout(TIMEOUT, child.wait()).await.expect("exits after kill");
    let mut rest = Vec::new();
    while let Ok(Ok(Some(l))) = tokio::time::timeout(TIMEOUT, stdout.next_line()).await {
        rest.push(l);
    }
    assert!(rest.is_empty(), "exactly one stdout line; also got {rest:?}");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = tokio::time::timeout(TIMEOUT, e.read_to_string(&mut stderr)).await;
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn bad_flags_and_configurations_exit_2_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unknown_key = dir.path().join("unknown.toml");
    std::fs::write(&unknown_key, "listen = \"127.0.0.1:0\"\nno_such_key = true\n").expect("write");
    let bad_type = dir.path().join("bad_type.toml");
    std::fs::write(&bad_type, "[limits]\nmax_depth = \"deep\"\n").expect("write");
    let bad_value = dir.path().join("bad_value.toml");
    std::fs::write(&bad_value, "[limits]\nmax_depth = 1000\n").expect("write");
    let nested_unknown = dir.path().join("nested.toml");
    std::fs::write(&nested_unknown, "[rate_limits.ip]\nper_minute = 5\nburst = 1\nextra = 2\n").expect("write");
    let wildcard = dir.path().join("wildcard.toml");
    std::fs::write(&wildcard, "allowed_origins = [\"*\"]\n").expect("write");
    let missing = dir.path().join("missing.pem");
    let missing_s = missing.to_string_lossy().into_owned();

    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--no-such-flag".into()], "--no-such-flag"),
        (vec!["--listen".into(), "not-an-address".into()], "listen"),
        (vec!["--config".into(), unknown_key.to_string_lossy().into_owned()], "no_such_key"),
        (vec!["--config".into(), bad_type.to_string_lossy().into_owned()], "max_depth"),
        (vec!["--config".into(), bad_value.to_string_lossy().into_owned()], "max_depth"),
        (vec!["--config".into(), nested_unknown.to_string_lossy().into_owned()], "extra"),
        (vec!["--config".into(), wildcard.to_string_lossy().into_owned()], "origin"),
        (vec!["--config".into(), dir.path().join("absent.toml").to_string_lossy().into_owned()], "absent.toml"),
        (vec!["--listen".into(), "0.0.0.0:0".into()], "allowed"),
        (vec!["--rate-limit".into(), "ip=abc".into()], "rate-limit"),
        (vec!["--rate-limit".into(), "ip=60".into()], "rate-limit"),
        (vec!["--rate-limit".into(), "nosuchlayer=60/5".into()], "nosuchlayer"),
        (vec!["--rate-limit".into(), "ip=0/5".into()], "ip"),
        (vec!["--profile".into(), "nope".into()], "profile"),
        (vec!["--stdio".into(), "--listen".into(), "127.0.0.1:0".into()], "--listen"),
        (vec!["--tls-cert".into(), missing_s.clone()], "--tls-key"),
        (
            vec![
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--tls-cert".into(),
                missing_s.clone(),
                "--tls-key".into(),
                missing_s,
            ],
            "missing.pem",
        ),
        (vec!["--allowed-origin".into(), "http://*.example.com".into()], "origin"),
    ];
    let mut failures = Vec::new();
    for (args, mention) in &cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&refs).await;
        let ok = out.code == Some(2)
            && !out.stderr.trim().is_empty()
            && out.stderr.to_ascii_lowercase().contains(&mention.to_ascii_lowercase())
            && !out.stderr.contains("panicked")
            && !out.stdout.contains("listening on");
        if !ok {
            failures.push(format!(
                "{args:?}: exit {:?}, expected 2 and stderr mentioning {mention:?}; stderr: {:?}",
                out.code,
                out.stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n  - {}",
        failures.len(),
        cases.len(),
        failures.join("\n  - ")
    );
}

#[tokio::test]
async fn unknown_config_key_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[limits]\nmax_body_byts = 10\n").expect("write");
    let out = run(&["--config", &file.to_string_lossy(), "--print-config"]).await;
    assert_config_error(&out, "--config with a typo", "max_body_byts");
}

#[tokio::test]
async fn help_lists_the_options() {
    let out = run(&["--help"]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for option in [
        "--listen",
        "--stdio",
        "--config",
        "--profile",
        "--allowed-host",
        "--allowed-origin",
        "--tls-cert",
        "--tls-key",
        "--sandbox-dir",
        "--audit-log",
        "--rate-limit",
        "--print-config",
    ] {
        assert!(out.stdout.contains(option), "--help lacks {option}:\n{}", out.stdout);
    }
    let out = run(&["audit", "--help"]).await;
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("verify"), "{}", out.stdout);
    let out = run(&["--version"]).await;
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn print_config_shows_the_effective_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "profile = \"conformance\"\n[limits]\nmax_depth = 20\n").expect("write");
    let out = run(&[
        "--config",
        &file.to_string_lossy(),
        "--print-config",
        "--rate-limit",
        "tool:read_file=60/5",
        "--rate-limit",
        "ip=600/100",
        "--listen",
        "127.0.0.1:9999",
    ])
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let config: mcproof_server::config::Config = toml::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--print-config output is a valid config ({e}):\n{}", out.stdout));
    assert_eq!(config.profile, mcproof_server::config::Profile::Conformance);
    assert_eq!(config.limits.max_depth, 20, "the file is applied");
    assert_eq!(config.listen.port(), 9999, "flags override the file");
    assert_eq!(config.rate_limits.ip, mcproof_server::config::Quota { per_minute: 600, burst: 100 });
    assert_eq!(
        config.rate_limits.per_tool.get("read_file"),
        Some(&mcproof_server::config::Quota { per_minute: 60, burst: 5 })
    );
    assert!(!out.stdout.contains("listening on"));
}

#[tokio::test]
async fn audit_verify_of_a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(&["audit", "verify", &dir.path().join("none.jsonl").to_string_lossy()]).await;
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(!out.stderr.trim().is_empty());
}
