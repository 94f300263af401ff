//! The tamper-evident audit log, end to end: the real binary writes it while serving, it holds
//! argument names but never values or raw session ids, `audit verify` accepts it intact and
//! names the line that was edited or removed.
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

mod common;

use std::path::Path;
use std::process::Stdio;

use common::*;
use serde_json::{Value, json};
use tokio::process::Command;

/// Serves with `--audit-log file`, runs a few calls, then kills the server. Returns the
/// session ids that were issued.
/// Makes an API key through the real `keys create` command (authentication is on by default).
fn create_key(store: &Path) -> String {
    let out = std::process::Command::new(SERVER_BIN)
        .args(["keys", "create", "--store"])
        .arg(store)
        .args(["--principal", "auditor", "--scopes", "mcp:read,mcp:write"])
        .output()
        .expect("keys create");
    assert!(out.status.success(), "keys create: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
}

async fn produce_log(file: &Path) -> Vec<String> {
    let store = file.with_file_name("keys.json");
    let key = create_key(&store);
    let file = file.to_str().expect("utf-8 path");
    let store = store.to_str().expect("utf-8 path");
    let (mut child, banner) =
        spawn_server(&["--rate-limit", "tool:query_products=60/2", "--audit-log", file, "--api-keys", store]).await;
    let url = banner.strip_prefix("listening on ").unwrap_or_else(|| panic!("banner {banner:?}")).to_owned();

    let mut c = Mcp::new(http_client(), &url).with_api_key(&key);
    let sid = c.initialize().await;
    let note =
        c.call_tool_ok("notes_create", json!({ "title": "audit", "body": format!("secret {CANARY} inside") })).await;
    assert_eq!(note["isError"], json!(false), "{note}");
    // A validation failure with a canary value, a refused path, two queries and a rate-limited one.
    let bad = c.call_tool("query_products", json!({ "limit": CANARY })).await;
    assert_eq!(bad["result"]["isError"], json!(true), "{bad}");
    c.call_tool_ok("read_file", json!({ "path": format!("../{CANARY}") })).await;
    c.call_tool_ok("query_products", json!({ "category": "tools" })).await;
    let limited = c.post(&tool_call_body(99, "query_products", json!({ "name_contains": CANARY }))).await;
    assert_eq!(limited.status, 429, "{}", limited.describe());
    let mut other = Mcp::new(http_client(), &url).with_api_key(&key);
    let sid2 = other.initialize().await;
    assert_eq!(other.delete(&[]).await.status, 204);

    child.start_kill().expect("kill");
    let _ = tokio::time::timeout(TIMEOUT, child.wait()).await.expect("exit after kill");
    vec![sid, sid2]
}

async fn verify(file: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = tokio::time::timeout(
        TIMEOUT,
        Command::new(SERVER_BIN).args(["audit", "verify"]).arg(file).args(extra).output(),
    )
    .await
    .expect("verify exits")
    .expect("run verify");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

#[tokio::test]
async fn the_audit_log_is_complete_value_free_and_tamper_evident() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    let sessions = produce_log(&file).await;
    let text = std::fs::read_to_string(&file).expect("audit log written");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 6, "one line per event: {text}");

    // Structured: every line is JSON with seq, prev, event.kind and hash.
    let events: Vec<Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], json!(i + 1), "{e}");
        assert!(e["hash"].as_str().is_some_and(|h| h.len() == 64), "{e}");
        assert!(e["event"]["kind"].is_string(), "{e}");
    }
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"]["kind"].as_str()).collect();
    for kind in ["session_started", "tool_call", "validation_failed", "rate_limited", "session_ended"] {
        assert!(kinds.contains(&kind), "no {kind} event: {kinds:?}");
    }
    // Names, not values.
    let create = events
        .iter()
        .find(|e| e["event"]["kind"] == json!("tool_call") && e["event"]["tool"] == json!("notes_create"))
        .unwrap_or_else(|| panic!("no notes_create tool_call: {text}"));
    assert_eq!(create["event"]["arg_names"], json!(["body", "title"]), "{create}");
    assert!(!text.contains(CANARY), "an argument value reached the audit log");
    assert!(!text.contains("secret "), "{text}");
    for sid in &sessions {
        assert!(!text.contains(sid.as_str()), "a raw session id reached the audit log");
    }

    // Intact.
    let (code, out) = verify(&file, &[]).await;
    assert_eq!(code, Some(0), "intact log: {out}");
    let last_hash = events.last().and_then(|e| e["hash"].as_str()).expect("last hash").to_owned();
    let (code, out) = verify(&file, &["--expect-last-hash", &last_hash]).await;
    assert_eq!(code, Some(0), "{out}");

    // Edited: the tool name of the notes_create call is changed on its line.
    let n = lines.iter().position(|l| l.contains("\"notes_create\"")).expect("line") + 1;
    let edited: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| if i + 1 == n { l.replace("\"notes_create\"", "\"notes_list\"") } else { (*l).to_owned() })
        .collect();
    let tampered = dir.path().join("edited.jsonl");
    std::fs::write(&tampered, edited.join("\n") + "\n").expect("write");
    let (code, out) = verify(&tampered, &[]).await;
    assert_eq!(code, Some(1), "edited line {n}: {out}");
    assert!(out.contains(&format!("line {n}")), "verify names line {n}: {out}");

    // A removed line breaks the chain at the next one.
    let removed: Vec<&str> = lines.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| *l).collect();
    let cut = dir.path().join("removed.jsonl");
    std::fs::write(&cut, removed.join("\n") + "\n").expect("write");
    let (code, out) = verify(&cut, &[]).await;
    assert_eq!(code, Some(1), "removed line 2: {out}");
    assert!(out.contains("line 2"), "{out}");

    // A dropped tail is only caught with the expected last hash.
    let head: Vec<&str> = lines[..lines.len() - 1].to_vec();
    let short = dir.path().join("short.jsonl");
    std::fs::write(&short, head.join("\n") + "\n").expect("write");
    let (code, _) = verify(&short, &[]).await;
    assert_eq!(code, Some(0), "a shorter chain is still a chain");
    let (code, out) = verify(&short, &["--expect-last-hash", &last_hash]).await;
    assert_eq!(code, Some(1), "truncation against the kept hash: {out}");
}

#[tokio::test]
async fn a_restarted_server_continues_the_chain_and_refuses_a_tampered_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    produce_log(&file).await;
    let first = std::fs::read_to_string(&file).expect("log").lines().count();
    produce_log(&file).await;
    let text = std::fs::read_to_string(&file).expect("log");
    assert!(text.lines().count() > first, "appended");
    let (code, out) = verify(&file, &[]).await;
    assert_eq!(code, Some(0), "the chain continues across restarts: {out}");

    // Tamper, then try to start on it: refused with exit 2 and a message.
    let edited = text.replacen("\"session_started\"", "\"session_ended\"", 1);
    std::fs::write(&file, edited).expect("write");
    let out = tokio::time::timeout(
        TIMEOUT,
        Command::new(SERVER_BIN)
            .args(["--listen", "127.0.0.1:0", "--audit-log"])
            .arg(&file)
            .env_remove("MCPROOF_CONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exits")
    .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
}
