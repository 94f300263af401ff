//! The stdio transport (SI-01, SI-02, JR-01, LC-01): the real binary with `--stdio`, every
//! stdout line exactly one JSON-RPC message, bad lines answered without crashing, and exit 0
//! when stdin closes. Every read is bounded by a timeout.
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

const TIMEOUT: Duration = Duration::from_secs(10);
const BIN: &str = env!("CARGO_BIN_EXE_mcproof-server");

struct StdioServer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Option<ChildStderr>,
    /// Every stdout line read so far.
    seen: Vec<String>,
}

impl StdioServer {
    fn spawn(extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("--stdio")
            .args(extra)
            .env_remove("MCPROOF_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn mcproof-server --stdio");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stderr = child.stderr.take();
        Self { child, stdin, stdout, stderr, seen: Vec::new() }
    }

    async fn write_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).await.expect("write to stdin");
        stdin.flush().await.expect("flush stdin");
    }

    async fn send(&mut self, message: &Value) {
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        self.write_raw(&line).await;
    }

    /// The next stdout line, parsed; panics on timeout, EOF or non-JSON.
    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(TIMEOUT, self.stdout.next_line())
            .await
            .expect("a stdout line within the timeout")
            .expect("read stdout")
            .expect("stdout still open");
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
        self.seen.push(line);
        value
    }

    async fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })).await;
        let reply = self.recv().await;
        assert_eq!(reply["id"], id, "reply to {method}: {reply}");
        reply
    }

    /// No stdout line arrives within `wait` (for notifications).
    async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(line) = tokio::time::timeout(wait, self.stdout.next_line()).await {
            panic!("unexpected stdout output: {line:?}");
        }
    }

    /// Closes stdin and waits for exit; returns the exit code, the rest of stdout and stderr.
    async fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        while let Ok(Some(line)) = tokio::time::timeout(TIMEOUT, self.stdout.next_line()).await.expect("stdout closes")
        {
            rest.push(line);
        }
        let status =
            tokio::time::timeout(TIMEOUT, self.child.wait()).await.expect("exit after stdin closes").expect("wait");
        let mut stderr = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = tokio::time::timeout(TIMEOUT, e.read_to_string(&mut stderr)).await;
        }
        self.seen.extend(rest.iter().cloned());
        check_all_lines(&self.seen);
        (status.code(), rest, stderr)
    }
}

/// Every stdout line is exactly one JSON-RPC 2.0 message (SI-01).
fn check_all_lines(lines: &[String]) {
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON value ({e}): {line:?}"));
        let obj = v.as_object().unwrap_or_else(|| panic!("not a JSON-RPC object: {line}"));
        assert_eq!(obj.get("jsonrpc"), Some(&json!("2.0")), "{line}");
        let is_response = obj.contains_key("id") && (obj.contains_key("result") ^ obj.contains_key("error"));
        let is_notification = obj.contains_key("method") && !obj.contains_key("id");
        let is_request = obj.contains_key("method") && obj.get("id").is_some_and(|i| !i.is_null());
        assert!(is_response || is_notification || is_request, "not a JSON-RPC message: {line}");
    }
}

fn init(id: i64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "0" } }
    })
}

#[tokio::test]
async fn a_whole_session_over_stdio() {
    let mut s = StdioServer::spawn(&["--max-body-bytes", "2048"]);
    s.send(&init(1)).await;
    let r = s.recv().await;
    assert_eq!(r["id"], json!(1));
    assert_eq!(r["result"]["protocolVersion"], json!("2025-11-25"), "{r}");
    s.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;
    s.expect_silence(Duration::from_millis(200)).await;

    let r = s.request(json!(2), "tools/list", json!({})).await;
    let tools = r["result"]["tools"].as_array().expect("tools");
    assert!(tools.iter().any(|t| t["name"] == json!("read_file")), "{r}");

    // Failing calls: an unknown tool (protocol error) and a refused path (tool error).
    let r = s.request(json!("c-3"), "tools/call", json!({ "name": "nope", "arguments": {} })).await;
    assert_eq!(r["error"]["code"], json!(-32602), "{r}");
    let r = s
        .request(json!(4), "tools/call", json!({ "name": "read_file", "arguments": { "path": "../../etc/passwd" } }))
        .await;
    assert_eq!(r["result"]["isError"], json!(true), "{r}");

    // Multi-line tool output arrives JSON-escaped on one line (SI-02).
    let r = s
        .request(json!(5), "tools/call", json!({ "name": "read_file", "arguments": { "path": "docs/guide.md" } }))
        .await;
    let text = r["result"]["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains('\n'), "guide.md is multi-line: {r}");

    // Malformed JSON, invalid UTF-8 and an over-long line each get one error line.
    s.write_raw(b"{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\n").await;
    let r = s.recv().await;
    assert_eq!(r["error"]["code"], json!(-32700), "{r}");
    assert_eq!(r["id"], Value::Null, "{r}");
    s.write_raw(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"p\xC3\x28\"}\n").await;
    let r = s.recv().await;
    assert_eq!(r["error"]["code"], json!(-32700), "{r}");
    assert_eq!(r["id"], Value::Null, "{r}");
    let long = json!({ "jsonrpc": "2.0", "id": 8, "method": "ping", "params": { "pad": "x".repeat(5000) } });
    s.send(&long).await;
    let r = s.recv().await;
    assert!(r.get("error").is_some(), "over-long line: {r}");
    assert!(r.get("result").is_none(), "{r}");
    // A request with id null and a batch after 2025-06-18.
    s.send(&json!({ "jsonrpc": "2.0", "id": null, "method": "ping" })).await;
    let r = s.recv().await;
    assert_eq!(r["error"]["code"], json!(-32600), "{r}");
    s.send(&json!([{ "jsonrpc": "2.0", "id": 9, "method": "ping" }])).await;
    let r = s.recv().await;
    assert_eq!(r["error"]["code"], json!(-32600), "batch: {r}");
    // Blank lines are ignored.
    s.write_raw(b"\n   \n").await;

    // Still alive.
    let r = s.request(json!(10), "ping", json!({})).await;
    assert_eq!(r["result"], json!({}), "{r}");

    let (code, rest, _stderr) = s.finish().await;
    assert!(rest.is_empty(), "unexpected output after the last request: {rest:?}");
    assert_eq!(code, Some(0), "exit code when stdin closes");
}

#[tokio::test]
async fn requests_before_initialize_are_not_served() {
    let mut s = StdioServer::spawn(&[]);
    let r = s.request(json!(1), "ping", json!({})).await;
    assert_eq!(r["result"], json!({}), "ping is allowed before initialize: {r}");
    let r = s.request(json!(2), "tools/list", json!({})).await;
    assert!(r.get("error").is_some(), "tools/list before initialize: {r}");
    assert!(r.get("result").is_none(), "{r}");
    let r =
        s.request(json!(3), "tools/call", json!({ "name": "read_file", "arguments": { "path": "readme.txt" } })).await;
    assert!(r.get("error").is_some(), "tools/call before initialize: {r}");
    // Initialization still works afterwards, once.
    s.send(&init(4)).await;
    let r = s.recv().await;
    assert!(r.get("result").is_some(), "{r}");
    s.send(&init(5)).await;
    let r = s.recv().await;
    assert!(r.get("error").is_some(), "second initialize: {r}");
    let (code, _, _) = s.finish().await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn logs_go_to_stderr_only() {
    let mut s = StdioServer::spawn(&["--log", "debug"]);
    s.send(&init(1)).await;
    let _ = s.recv().await;
    s.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;
    let _ = s.request(json!(2), "tools/call", json!({ "name": "nope", "arguments": {} })).await;
    let _ = s.request(json!(3), "no/such_method", json!({})).await;
    let (code, rest, stderr) = s.finish().await;
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(code, Some(0));
    assert!(!stderr.is_empty(), "debug logging writes something to stderr");
}

#[tokio::test]
async fn immediate_eof_exits_cleanly() {
    let s = StdioServer::spawn(&[]);
    let (code, rest, _) = s.finish().await;
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(code, Some(0));
}
