//! HTTP hygiene and robustness: security headers on every response, generic error bodies, and
//! a table of bad inputs after which the server is still up and has lost no data.
//!
//! The bad-input table is data ([`bad_inputs`]) run by one runner ([`run_case`]) that checks
//! every case, collects every mismatch and asserts once, listing all failures.
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// The security headers every response must carry (plain HTTP: no HSTS).
fn check_security_headers(r: &Reply, tls: bool) -> Result<(), String> {
    let mut problems = Vec::new();
    let expect = |name: &str, value: &str, problems: &mut Vec<String>| match r.header(name) {
        Some(v) if v == value => {}
        other => problems.push(format!("{name}: expected {value:?}, got {other:?}")),
    };
    expect("x-content-type-options", "nosniff", &mut problems);
    expect("x-frame-options", "DENY", &mut problems);
    expect("content-security-policy", "default-src 'none'; frame-ancestors 'none'", &mut problems);
    if r.header("referrer-policy").is_none() {
        problems.push("Referrer-Policy missing".into());
    }
    if let Some(server) = r.header("server") {
        problems.push(format!("Server header present: {server:?}"));
    }
    if let Some(p) = r.header("x-powered-by") {
        problems.push(format!("X-Powered-By present: {p:?}"));
    }
    match (tls, r.header("strict-transport-security")) {
        (false, Some(h)) => problems.push(format!("HSTS over plain HTTP: {h:?}")),
        (true, None) => problems.push("HSTS missing over TLS".into()),
        _ => {}
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

/// Fails if a body reveals internals: paths, panics, versions, stack traces.
fn check_generic_body(r: &Reply) -> Result<(), String> {
    let text = r.text();
    if let Some(marker) = leaks_internals(&text) {
        return Err(format!("body leaks {marker:?}: {}", r.describe()));
    }
    let version = env!("CARGO_PKG_VERSION");
    if text.contains(version) || text.to_ascii_lowercase().contains("axum") || text.contains("hyper") {
        return Err(format!("body discloses the implementation: {}", r.describe()));
    }
    Ok(())
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let mut config = standard();
    config.limits.max_body_bytes = 4096;
    let srv = start(config).await;
    let mut c = srv.client();
    c.initialize().await;
    let base = srv.base.clone();
    let mut failures = Failures::new();

    let mut replies: Vec<(String, Reply)> = Vec::new();
    replies.push(("200 ping".into(), c.request_reply("ping", json!({})).await));
    replies.push(("202 notification".into(), c.post(&json!({ "jsonrpc": "2.0", "method": "notifications/x" })).await));
    replies.push(("400 parse error".into(), c.post_with("{", &[]).await));
    replies.push(("413 too large".into(), c.post_with(vec![b' '; 8192], &[]).await));
    replies.push(("415 content type".into(), c.post_with("{}", &[("content-type", Some("text/plain"))]).await));
    replies.push(("406 accept".into(), c.post_with("{}", &[("accept", Some("text/html"))]).await));
    replies.push(("403 origin".into(), c.post_with("{}", &[("origin", Some("http://evil.example"))]).await));
    replies.push(("4xx host".into(), c.post_with("{}", &[("host", Some("evil.example.com"))]).await));
    let ping = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }).to_string();
    replies.push(("404 session".into(), c.post_with(ping, &[("mcp-session-id", Some("nope"))]).await));
    for path in ["/", "/.env", "/admin", "/.git/config", "/mcp/extra", "/metrics"] {
        replies.push((format!("404 GET {path}"), c.send(Method::GET, &format!("{base}{path}"), None, &[]).await));
    }
    replies.push(("405 PUT /mcp".into(), c.send(Method::PUT, &srv.url, Some(b"{}".to_vec()), &[]).await));
    replies.push(("405 PATCH /mcp".into(), c.send(Method::PATCH, &srv.url, Some(b"{}".to_vec()), &[]).await));
    let mut other = srv.client();
    other.initialize().await;
    replies.push(("204 DELETE".into(), other.delete(&[]).await));

    for (name, reply) in &replies {
        failures.record(name, check_security_headers(reply, false));
    }
    // An open SSE stream gets them too.
    let stream = c.get_stream(&[]).await;
    let headers = Reply { status: stream.status().as_u16(), headers: stream.headers().clone(), body: Vec::new() };
    failures.record("200 GET stream", check_security_headers(&headers, false));
    failures.assert();
}

#[tokio::test]
async fn not_found_and_method_not_allowed_are_generic() {
    let srv = start(standard()).await;
    let c = srv.client();
    let base = srv.base.clone();
    let mut failures = Failures::new();
    for path in ["/.env", "/admin", "/.git/HEAD", "/server-status", "/debug/pprof", "/mcp.bak", "/%2e%2e/etc/passwd"] {
        let r = c.send(Method::GET, &format!("{base}{path}"), None, &[]).await;
        failures.check(&format!("GET {path} status"), r.status == 404, || r.describe());
        failures.record(&format!("GET {path} body"), check_generic_body(&r));
        failures.check(&format!("GET {path} no path echo"), !r.text().contains(path.trim_start_matches('/')), || {
            r.describe()
        });
    }
    for method in [Method::PUT, Method::PATCH, Method::TRACE] {
        let r = c.send(method.clone(), &srv.url, None, &[]).await;
        failures.check(&format!("{method} /mcp status"), r.status == 405, || r.describe());
        failures.record(&format!("{method} /mcp body"), check_generic_body(&r));
    }
    failures.assert();
}

// ---------------------------------------------------------------- bad inputs (table + runner)

/// `Case::status` for "any 4xx" (the spec allows 403 or 421 for a foreign Host).
const ANY_4XX: u16 = 0;

/// One bad input and what the server must answer.
struct Case {
    name: &'static str,
    method: Method,
    /// Path relative to the server base.
    path: &'static str,
    headers: Vec<(&'static str, Option<String>)>,
    body: Option<Vec<u8>>,
    status: u16,
    /// The JSON-RPC `error.code` in the body, when one is required.
    code: Option<i64>,
    /// The body must be a `CallToolResult` with `isError: true`.
    tool_error: bool,
}

impl Case {
    fn post(name: &'static str, body: impl Into<Vec<u8>>, status: u16, code: Option<i64>) -> Self {
        Self {
            name,
            method: Method::POST,
            path: "/mcp",
            headers: Vec::new(),
            body: Some(body.into()),
            status,
            code,
            tool_error: false,
        }
    }

    fn with(mut self, name: &'static str, value: Option<&str>) -> Self {
        self.headers.push((name, value.map(str::to_owned)));
        self
    }

    fn tool_error(mut self) -> Self {
        self.tool_error = true;
        self
    }

    fn other(name: &'static str, method: Method, path: &'static str, status: u16) -> Self {
        Self { name, method, path, headers: Vec::new(), body: None, status, code: None, tool_error: false }
    }
}

fn rpc(id: Value, method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

fn call(name: &str, args: Value) -> String {
    rpc(json!(1), "tools/call", json!({ "name": name, "arguments": args }))
}

/// Every bad input, each with the canary somewhere a careless server would echo it.
fn bad_inputs() -> Vec<Case> {
    let canary = CANARY;
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"{canary}":{}1{}}}}}"#,
        "[".repeat(64),
        "]".repeat(64)
    );
    let long = rpc(json!(1), "ping", json!({ "s": format!("{canary}{}", "a".repeat(70 * 1024)) }));
    let huge = rpc(json!(1), "ping", json!({ "s": vec![canary.repeat(4000); 8] }));
    let mut invalid_utf8 = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{canary}"#).into_bytes();
    invalid_utf8.extend_from_slice(&[0xC3, 0x28, b'"', b'}']);
    let nul =
        format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"{canary}\":\"\u{0}\"}}}}\u{0}");
    vec![
        // Envelope (JR-01, JR-02, JR-09).
        Case::post("truncated JSON", format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{canary}"#), 400, Some(-32700)),
        Case::post("invalid UTF-8", invalid_utf8, 400, Some(-32700)),
        Case::post("bare C3 28", vec![0xC3, 0x28], 400, Some(-32700)),
        Case::post(
            "trailing garbage",
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping"}} {canary}"#),
            400,
            Some(-32700),
        ),
        Case::post("NUL bytes", nul, 400, Some(-32700)),
        Case::post("empty body", "", 400, Some(-32700)),
        Case::post("id null", json!({ "jsonrpc": "2.0", "id": null, "method": canary }).to_string(), 400, Some(-32600)),
        Case::post(
            "jsonrpc 1.0",
            json!({ "jsonrpc": "1.0", "id": 2, "method": canary }).to_string(),
            400,
            Some(-32600),
        ),
        Case::post(
            "method not a string",
            json!({ "jsonrpc": "2.0", "id": 3, "method": 42, "params": { "x": canary } }).to_string(),
            400,
            Some(-32600),
        ),
        Case::post(
            "id is an object",
            json!({ "jsonrpc": "2.0", "id": { "x": canary }, "method": "ping" }).to_string(),
            400,
            Some(-32600),
        ),
        Case::post(
            "both result and error",
            json!({ "jsonrpc": "2.0", "id": 1, "result": {}, "error": { "code": 1, "message": canary } }).to_string(),
            400,
            None,
        ),
        Case::post(
            "batch",
            json!([{ "jsonrpc": "2.0", "id": 1, "method": "ping" }, { "jsonrpc": "2.0", "id": 2, "method": canary }])
                .to_string(),
            400,
            Some(-32600),
        ),
        Case::post(
            "duplicate member",
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","method":"{canary}"}}"#),
            400,
            Some(-32600),
        ),
        Case::post("empty batch", "[]", 400, Some(-32600)),
        Case::post("64 levels deep", deep, 400, Some(-32600)),
        Case::post("70 KiB string", long, 400, Some(-32600)),
        Case::post("body over 256 KiB", huge, 413, None),
        Case::post(
            "response for an unknown id",
            json!({ "jsonrpc": "2.0", "id": canary, "result": { "x": canary } }).to_string(),
            400,
            None,
        ),
        // Methods and params (JR-03, JR-04, TO-04).
        Case::post("unknown method", rpc(json!(1), canary, json!({})), 200, Some(-32601)),
        Case::post("params not an object", rpc(json!(1), "tools/list", json!([canary])), 200, Some(-32602)),
        Case::post(
            "tools/call without name",
            rpc(json!(1), "tools/call", json!({ "arguments": { "x": canary } })),
            200,
            Some(-32602),
        ),
        Case::post("unknown tool", call(canary, json!({})), 200, Some(-32602)),
        // With authentication on, a credential without `mcp:admin` is refused by the scope check
        // (403 insufficient_scope, AU-10) before the tool registry is consulted.
        Case::post("admin tool", call("admin_purge_notes", json!({ "confirm": canary })), 403, None),
        Case::post(
            "arguments not an object",
            rpc(json!(1), "tools/call", json!({ "name": "query_products", "arguments": canary })),
            200,
            Some(-32602),
        ),
        Case::post(
            "tools/list bad cursor",
            rpc(json!(1), "tools/list", json!({ "cursor": canary })),
            200,
            Some(-32602),
        ),
        Case::post(
            "logging/setLevel bad level",
            rpc(json!(1), "logging/setLevel", json!({ "level": canary })),
            200,
            Some(-32602),
        ),
        Case::post("re-initialize", initialize_body(1, canary).to_string(), 400, None),
        // Tool arguments (TO-05, TO-06).
        Case::post("query wrong type", call("query_products", json!({ "limit": canary })), 200, None).tool_error(),
        Case::post(
            "query limit out of range",
            call("query_products", json!({ "limit": 100_000, "category": "tools" })),
            200,
            None,
        )
        .tool_error(),
        Case::post("query extra property", call("query_products", json!({ "extra": canary })), 200, None).tool_error(),
        Case::post(
            "query SQL in category",
            call("query_products", json!({ "category": format!("x' OR 1=1 -- {canary}") })),
            200,
            None,
        )
        .tool_error(),
        Case::post("read_file traversal", call("read_file", json!({ "path": format!("../../{canary}") })), 200, None)
            .tool_error(),
        Case::post("read_file absolute", call("read_file", json!({ "path": format!("/etc/{canary}") })), 200, None)
            .tool_error(),
        Case::post("read_file missing", call("read_file", json!({ "path": format!("{canary}.txt") })), 200, None)
            .tool_error(),
        Case::post("notes_create wrong type", call("notes_create", json!({ "title": 5, "body": canary })), 200, None)
            .tool_error(),
        Case::post("notes_delete unknown id", call("notes_delete", json!({ "id": 987_654_321 })), 200, None)
            .tool_error(),
        // Transport (HT-*).
        Case::post("text/plain", rpc(json!(1), "ping", json!({ "x": canary })), 415, None)
            .with("content-type", Some("text/plain")),
        Case::post("Accept text/html", rpc(json!(1), "ping", json!({ "x": canary })), 406, None)
            .with("accept", Some("text/html")),
        Case::post("unknown session", rpc(json!(1), "ping", json!({})), 404, None).with("mcp-session-id", Some(canary)),
        Case::post("no session", rpc(json!(1), "ping", json!({})), 400, None).with("mcp-session-id", None),
        Case::post("version banana", rpc(json!(1), "ping", json!({})), 400, None)
            .with("mcp-protocol-version", Some("banana")),
        Case::post("version canary", rpc(json!(1), "ping", json!({})), 400, None)
            .with("mcp-protocol-version", Some(canary)),
        Case::post(
            "batch under an older version header",
            json!([{ "jsonrpc": "2.0", "id": 1, "method": canary }]).to_string(),
            400,
            Some(-32600),
        )
        .with("mcp-protocol-version", Some("2025-03-26")),
        Case::post("foreign Origin", rpc(json!(1), "ping", json!({})), 403, None)
            .with("origin", Some("http://evil.example")),
        Case::post("Origin null", rpc(json!(1), "ping", json!({})), 403, None).with("origin", Some("null")),
        Case::post("foreign Host", rpc(json!(1), "ping", json!({})), ANY_4XX, None)
            .with("host", Some("evil.example.com")),
        Case::other("GET Accept application/json", Method::GET, "/mcp", 406).with("accept", Some("application/json")),
        Case::other("GET unknown session", Method::GET, "/mcp", 404).with("mcp-session-id", Some(canary)),
        Case::other("DELETE unknown session", Method::DELETE, "/mcp", 404).with("mcp-session-id", Some(canary)),
        Case::other("DELETE foreign Origin", Method::DELETE, "/mcp", 403).with("origin", Some("http://evil.example")),
        Case::other("PUT /mcp", Method::PUT, "/mcp", 405),
        Case::other("GET /.env", Method::GET, "/.env", 404),
        Case::other("GET /admin", Method::GET, "/admin", 404),
        Case::other("GET canary path", Method::GET, "/CANARY-7f3a9c", 404),
    ]
}

/// Sends one case and reports every way the answer differs from the expectation.
async fn run_case(c: &Mcp, base: &str, case: &Case) -> Result<(), String> {
    let headers: Vec<Hdr<'_>> = case.headers.iter().map(|(n, v)| (*n, v.as_deref())).collect();
    let url = format!("{base}{}", case.path);
    let request = c.build(case.method.clone(), &url, case.body.clone(), &headers);
    let response = tokio::time::timeout(TIMEOUT, request.send())
        .await
        .map_err(|_| "no answer within the timeout".to_owned())?
        .map_err(|e| format!("request failed: {e}"))?;
    let r = Reply::read(response).await;
    let mut problems = Vec::new();
    let status_ok = if case.status == ANY_4XX { (400..500).contains(&r.status) } else { r.status == case.status };
    if !status_ok {
        problems.push(format!(
            "status {} (expected {})",
            r.status,
            if case.status == ANY_4XX { "4xx".to_owned() } else { case.status.to_string() }
        ));
    }
    let body = if r.is_sse() { Some(r.message()) } else { r.try_json() };
    if let Some(code) = case.code {
        let got = body.as_ref().and_then(|b| b.pointer("/error/code")).and_then(Value::as_i64);
        if got != Some(code) {
            problems.push(format!("error code {got:?} (expected {code})"));
        }
    }
    if case.tool_error {
        let is_error = body.as_ref().and_then(|b| b.pointer("/result/isError")).and_then(Value::as_bool);
        if is_error != Some(true) {
            problems.push("expected a result with isError: true".to_owned());
        }
    }
    if body.as_ref().is_some_and(|b| b.get("result").is_some() && b.get("error").is_some()) {
        problems.push("both result and error".to_owned());
    }
    if r.text().contains(CANARY) {
        problems.push("the canary is echoed".to_owned());
    }
    if let Some(marker) = leaks_internals(&r.text()) {
        problems.push(format!("leaks {marker:?}"));
    }
    if let Err(e) = check_security_headers(&r, false) {
        problems.push(e);
    }
    if problems.is_empty() { Ok(()) } else { Err(format!("{} — {}", problems.join("; "), r.describe())) }
}

#[tokio::test]
async fn bad_inputs_are_refused_and_the_server_survives_without_data_loss() {
    let srv = start(standard()).await;
    let mut c = srv.client();
    c.initialize().await;
    let created =
        c.call_tool_ok("notes_create", json!({ "title": "keep me", "body": "survives the bad inputs" })).await;
    assert_eq!(created["isError"], json!(false), "{created}");

    let mut failures = Failures::new();
    for case in bad_inputs() {
        let outcome = run_case(&c, &srv.base, &case).await;
        failures.record(case.name, outcome);
        // After each bad input the server still answers.
        failures.record(&format!("{} → ping", case.name), c.ping_ok().await);
    }
    let listed = c.call_tool_ok("notes_list", json!({})).await;
    let text = format!("{} {}", result_text(&listed), listed["structuredContent"]);
    failures.check("the note survives", text.contains("keep me"), || format!("notes_list: {listed}"));
    failures.assert();
}

// ---------------------------------------------------------------- connection limits

#[tokio::test]
async fn slow_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = standard();
    config.limits.header_read_timeout_ms = 300;
    let srv = start(config).await;
    let mut stream = tokio::net::TcpStream::connect(srv.addr).await.expect("connect");
    stream.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.expect("write");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The server answers 408 or just closes; either way the read ends well before our timeout.
    let read = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a client that never finishes its headers is not disconnected");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "cut after {:?}", started.elapsed());
    let text = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    // The server still serves others.
    let mut c = srv.client();
    c.initialize().await;
    assert_eq!(c.ping_ok().await, Ok(()));
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_and_slots_come_back() {
    let mut config = standard();
    config.limits.max_connections = 2;
    let srv = start(config).await;
    let idle1 = tokio::net::TcpStream::connect(srv.addr).await.expect("connect 1");
    let idle2 = tokio::net::TcpStream::connect(srv.addr).await.expect("connect 2");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let client =
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).no_proxy().build().expect("client");
    let c = srv.client_on(client, &srv.url);
    let refused =
        c.build(Method::POST, &c.url, Some(initialize_body(1, LATEST).to_string().into_bytes()), &[]).send().await;
    assert!(refused.is_err(), "a third connection was served: {:?}", refused.map(|r| r.status()));
    drop((idle1, idle2));
    // The server notices the closed connections; then a new client is served.
    let mut served = false;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let fresh = srv.client();
        if let Ok(Ok(r)) = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            fresh
                .build(Method::POST, &fresh.url, Some(initialize_body(1, LATEST).to_string().into_bytes()), &[])
                .send(),
        )
        .await
        {
            served = r.status().as_u16() == 200;
            if served {
                break;
            }
        }
    }
    assert!(served, "slots are released when connections close");
}

#[tokio::test]
async fn the_request_timeout_does_not_cut_a_streaming_answer() {
    let mut config = conformance();
    config.limits.request_timeout_ms = 200;
    config.limits.tool_timeout_ms = 800;
    let srv = start(config).await;
    let mut c = srv.client();
    c.initialize_with(LATEST, json!({ "elicitation": {} })).await;
    // The elicitation request opens an SSE stream at once, so the headers beat the request
    // timeout; the tool's own limit then ends the call with a tool error on the stream.
    let started = std::time::Instant::now();
    let r = c.post(&tool_call_body(1, "test_elicitation", json!({ "message": "m" }))).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= std::time::Duration::from_millis(700) && elapsed < std::time::Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.is_sse(), "{}", r.describe());
    let m = r.message();
    assert_eq!(m["result"]["isError"], json!(true), "{m}");
    assert!(leaks_internals(&r.text()).is_none(), "{}", r.describe());
    assert_eq!(c.ping_ok().await, Ok(()));
}
