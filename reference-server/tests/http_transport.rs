//! Streamable HTTP transport (MCP 2025-11-25) on `/mcp`: envelope rules (JR-*), lifecycle and
//! version negotiation (LC-*), and the transport rules (HT-*) of
//! `shared/reference/spec-checks.md`.
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

mod common;

use std::collections::HashSet;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn assert_jsonrpc_error(reply: &Reply, status: u16, code: i64, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.describe());
    let body = reply.json();
    assert_eq!(body["error"]["code"], json!(code), "{what}: {}", reply.describe());
    assert!(body.get("result").is_none(), "{what}: an error must not carry a result: {body}");
}

// ---------------------------------------------------------------- media types (HT-12, HT-14)

#[tokio::test]
async fn post_requires_json_content_type_and_both_accept_types() {
    let srv = start(standard()).await;
    let c = srv.client();
    let init = initialize_body(1, LATEST).to_string();

    let r = c.post_with(init.clone(), &[("content-type", None)]).await;
    assert_eq!(r.status, 415, "no Content-Type: {}", r.describe());
    let r = c.post_with(init.clone(), &[("content-type", Some("text/plain"))]).await;
    assert_eq!(r.status, 415, "text/plain: {}", r.describe());
    let r = c.post_with(init.clone(), &[("content-type", Some("application/json; charset=utf-8"))]).await;
    assert_eq!(r.status, 200, "application/json with charset: {}", r.describe());

    for accept in ["application/json", "text/event-stream", "text/html", "application/*"] {
        let r = c.post_with(init.clone(), &[("accept", Some(accept))]).await;
        assert_eq!(r.status, 406, "Accept {accept:?}: {}", r.describe());
        assert!(r.header("mcp-session-id").is_none(), "no session may be created on 406");
    }
    // No Accept header at all (reqwest would add `*/*`, so this one is sent raw).
    let port = srv.addr.port();
    let head =
        format!("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json{}", srv.auth_line());
    let r = raw_http(srv.addr, &head, init.as_bytes()).await;
    assert_eq!(r.status, 406, "no Accept: {}", r.describe());
    assert!(r.header("mcp-session-id").is_none());
    // Wildcards admit both types.
    for accept in ["*/*", "application/json, text/*"] {
        let r = c.post_with(init.clone(), &[("accept", Some(accept))]).await;
        assert_eq!(r.status, 200, "Accept {accept:?}: {}", r.describe());
    }
}

// ---------------------------------------------------------------- body limits

#[tokio::test]
async fn oversized_body_is_413_with_or_without_content_length() {
    let mut config = standard();
    config.limits.max_body_bytes = 4096;
    let srv = start(config).await;
    let mut c = srv.client();
    c.initialize().await;
    let padding = "x".repeat(200);
    let items: Vec<Value> = (0..40).map(|_| json!(padding)).collect();
    let big = json!({ "jsonrpc": "2.0", "id": 5, "method": "ping", "params": { "pad": items } }).to_string();
    assert!(big.len() > 4096);

    let r = c.post_with(big.clone(), &[]).await;
    assert_eq!(r.status, 413, "with Content-Length: {}", r.describe());

    // Chunked: no Content-Length, so the limit must hold while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.as_bytes().chunks(512).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = c.build(Method::POST, &c.url, None, &[]).body(body).send().await.expect("chunked POST");
    let r = Reply::read(response).await;
    assert_eq!(r.status, 413, "chunked: {}", r.describe());

    assert_eq!(c.ping_ok().await, Ok(()));
}

// ---------------------------------------------------------------- JSON-RPC envelope (JR-*)

#[tokio::test]
async fn malformed_json_and_invalid_utf8_are_parse_errors_with_null_id() {
    let srv = start(standard()).await;
    let mut c = srv.client();
    c.initialize().await;
    let cases: [(&str, Vec<u8>); 4] = [
        ("truncated", br#"{"jsonrpc":"2.0","id":1,"method":"#.to_vec()),
        ("invalid UTF-8", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xC3\x28\"}".to_vec()),
        ("bare bytes C3 28", vec![0xC3, 0x28]),
        ("empty body", Vec::new()),
    ];
    for (name, body) in cases {
        let r = c.post_with(body, &[]).await;
        assert_jsonrpc_error(&r, 400, -32700, name);
        assert_eq!(r.json()["id"], Value::Null, "{name}: id must be null: {}", r.describe());
    }
    assert_eq!(c.ping_ok().await, Ok(()));
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let srv = start(standard()).await;
    let mut c = srv.client();
    c.initialize().await;
    let cases = [
        ("null id", json!({ "jsonrpc": "2.0", "id": null, "method": "ping" })),
        ("jsonrpc 1.0", json!({ "jsonrpc": "1.0", "id": 2, "method": "ping" })),
        ("no jsonrpc", json!({ "id": 2, "method": "ping" })),
        ("numeric method", json!({ "jsonrpc": "2.0", "id": 3, "method": 42 })),
        ("array params", json!({ "jsonrpc": "2.0", "id": 4, "method": "ping", "params": "str" })),
        ("scalar body", json!(17)),
    ];
    for (name, body) in cases {
        let r = c.post(&body).await;
        assert_eq!(r.status, 400, "{name}: {}", r.describe());
        assert_eq!(r.error_code(), Some(-32600), "{name}: {}", r.describe());
        assert!(r.try_json().is_some_and(|b| b.get("result").is_none()), "{name}: no result may come back");
    }
    assert_eq!(c.ping_ok().await, Ok(()));
}

#[tokio::test]
async fn too_deep_and_too_long_inputs_are_invalid_request() {
    let srv = start(standard()).await;
    let mut c = srv.client();
    c.initialize().await;
    let deep =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{}1{}}}}}"#, "[".repeat(40), "]".repeat(40));
    let r = c.post_with(deep, &[]).await;
    assert_jsonrpc_error(&r, 400, -32600, "40 levels deep");

    let long = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping", "params": { "s": "a".repeat(70 * 1024) } });
    let r = c.post(&long).await;
    assert_jsonrpc_error(&r, 400, -32600, "70 KiB string");

    // Just inside the limits is served.
    let ok =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{}1{}}}}}"#, "[".repeat(20), "]".repeat(20));
    let r = c.post_with(ok, &[]).await;
    assert_eq!(r.status, 200, "20 levels deep: {}", r.describe());
}

#[tokio::test]
async fn batches_are_refused_from_2025_06_18_and_served_for_2025_03_26() {
    let srv = start(standard()).await;
    let batch = json!([
        { "jsonrpc": "2.0", "id": 1, "method": "ping" },
        { "jsonrpc": "2.0", "id": 2, "method": "ping" }
    ]);
    for version in ["2025-11-25", "2025-06-18"] {
        let mut c = srv.client();
        c.initialize_version(version).await;
        let r = c.post(&batch).await;
        assert_eq!(r.status, 400, "{version}: {}", r.describe());
        assert_eq!(r.error_code(), Some(-32600), "{version}: {}", r.describe());
        assert!(!r.text().contains("\"result\""), "{version}: batch was processed: {}", r.describe());
        // Without the header the session's version still decides.
        let r = c.post_with(batch.to_string(), &[("mcp-protocol-version", None)]).await;
        assert_eq!(r.status, 400, "{version} without header: {}", r.describe());
    }
    // A header claiming 2025-03-26 does not re-enable batches in a newer session.
    let mut c = srv.client();
    c.initialize_version(LATEST).await;
    let r = c.post_with(batch.to_string(), &[("mcp-protocol-version", Some("2025-03-26"))]).await;
    assert_eq!(r.status, 400, "batch with a 2025-03-26 header in a 2025-11-25 session: {}", r.describe());
    assert_eq!(r.error_code(), Some(-32600), "{}", r.describe());

    let mut old = srv.client();
    old.initialize_version("2025-03-26").await;
    let r = old.post(&batch).await;
    assert_eq!(r.status, 200, "2025-03-26: {}", r.describe());
    let responses = r.json();
    let ids: Vec<Value> =
        responses.as_array().expect("an array of responses").iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, vec![json!(1), json!(2)], "{}", r.describe());
    assert!(responses.as_array().unwrap().iter().all(|m| m["result"] == json!({})));
}

#[tokio::test]
async fn ping_and_unknown_methods_keep_the_id_unchanged() {
    let srv = start(standard()).await;
    let mut c = srv.client();
    c.initialize().await;
    for id in [json!("abc-1"), json!(42), json!(0), json!(-7), json!("")] {
        let r = c.post(&json!({ "jsonrpc": "2.0", "id": id, "method": "ping" })).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        let m = r.json();
        assert_eq!(m["id"], id, "ping id {id}: {m}");
        assert_eq!(m["result"], json!({}), "{m}");
        assert!(m.get("error").is_none());

        let r = c.post(&json!({ "jsonrpc": "2.0", "id": id, "method": "no/such_method" })).await;
        let m = r.json();
        assert_eq!(m["id"], id, "unknown method id {id}: {m}");
        assert_eq!(m["error"]["code"], json!(-32601), "{m}");
        assert!(m["error"]["message"].is_string(), "{m}");
        assert!(m.get("result").is_none());
    }
}

#[tokio::test]
async fn notifications_get_202_with_empty_body() {
    let srv = start(standard()).await;
    let mut c = srv.client();
    c.initialize().await;
    for method in ["notifications/initialized", "notifications/x_unknown", "notifications/cancelled"] {
        let r = c.post(&json!({ "jsonrpc": "2.0", "method": method, "params": {} })).await;
        assert_eq!(r.status, 202, "{method}: {}", r.describe());
        assert!(r.body.is_empty(), "{method}: body must be empty: {}", r.describe());
    }
    // A response to a request the server never sent is refused.
    let r = c.post(&json!({ "jsonrpc": "2.0", "id": "nope", "result": {} })).await;
    assert_eq!(r.status, 400, "response for an unknown id: {}", r.describe());
}

// ---------------------------------------------------------------- lifecycle (LC-*)

#[tokio::test]
async fn initialize_returns_a_strong_distinct_session_id() {
    let srv = start(standard()).await;
    let mut seen = HashSet::new();
    for i in 0..12 {
        let c = srv.client();
        let r = c.post(&initialize_body(i, LATEST)).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        assert!(r.content_type().starts_with("application/json"), "{}", r.describe());
        let id = r.header("mcp-session-id").expect("Mcp-Session-Id");
        assert_eq!(id.len(), 43, "256-bit base64url id: {id:?}");
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "visible ASCII only: {id:?}");
        assert!(seen.insert(id), "duplicate session id");
    }
}

#[tokio::test]
async fn version_negotiation_echoes_supported_and_offers_latest_otherwise() {
    let srv = start(standard()).await;
    for (requested, expected) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("1999-01-01", "2025-11-25"),
        ("2099-12-31", "2025-11-25"),
    ] {
        let r = srv.client().post(&initialize_body(1, requested)).await;
        assert_eq!(r.status, 200, "{requested}: {}", r.describe());
        assert_eq!(r.json()["result"]["protocolVersion"], json!(expected), "{requested}: {}", r.describe());
    }
}

#[tokio::test]
async fn standard_profile_declares_only_tools_and_logging() {
    let srv = start(standard()).await;
    let mut c = srv.client();
    let result = c.initialize_version(LATEST).await;
    let caps = result["capabilities"].as_object().expect("capabilities object");
    let mut keys: Vec<&str> = caps.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["logging", "tools"], "{result}");
    assert_eq!(result["serverInfo"]["name"], json!("mcproof-server"));
    for method in ["resources/list", "prompts/list", "completion/complete", "resources/read"] {
        let m = c.request(method, json!({})).await;
        assert_eq!(m["error"]["code"], json!(-32601), "{method}: {m}");
    }
    let m = c.request("tools/list", json!({})).await;
    assert!(m["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()), "{m}");
}

#[tokio::test]
async fn client_chosen_session_id_is_never_adopted_and_live_sessions_cannot_reinitialize() {
    let srv = start(standard()).await;
    let chosen = "attacker-chosen-session-id-0123456789abcdefg";
    let c = srv.client();
    let r = c.post_with(initialize_body(1, LATEST).to_string(), &[("mcp-session-id", Some(chosen))]).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let issued = r.header("mcp-session-id").expect("session id");
    assert_ne!(issued, chosen, "the client-chosen session id was adopted");
    let mut attacker = srv.client();
    attacker.session = Some(chosen.into());
    let r = attacker.request_reply("ping", json!({})).await;
    assert_eq!(r.status, 404, "the chosen id must not be a live session: {}", r.describe());

    // Re-initialize inside a live session.
    let mut c = srv.client();
    let sid = c.initialize().await;
    let r = c.post(&initialize_body(9, LATEST)).await;
    assert_eq!(r.status, 400, "re-initialize: {}", r.describe());
    assert!(r.header("mcp-session-id").is_none_or(|s| s == sid), "{}", r.describe());
    assert_eq!(c.ping_ok().await, Ok(()), "the live session still works");
}

#[tokio::test]
async fn requests_need_a_live_session() {
    let srv = start(standard()).await;
    let mut c = srv.client();
    let sid = c.initialize().await;

    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }).to_string();
    let r = c.post_with(body, &[("mcp-session-id", None)]).await;
    assert_eq!(r.status, 400, "missing Mcp-Session-Id: {}", r.describe());
    assert!(!r.text().contains("\"tools\""), "no tool list without a session");

    let mut stranger = srv.client();
    stranger.session = Some("A".repeat(43));
    stranger.version = Some(LATEST.into());
    let r = stranger.request_reply("tools/list", json!({})).await;
    assert_eq!(r.status, 404, "never-issued id: {}", r.describe());

    let r = c.delete(&[]).await;
    assert_eq!(r.status, 204, "DELETE: {}", r.describe());
    let r = c.request_reply("tools/list", json!({})).await;
    assert_eq!(r.status, 404, "POST after DELETE: {}", r.describe());
    let r = Reply::read(c.get_stream(&[]).await).await;
    assert_eq!(r.status, 404, "GET after DELETE: {}", r.describe());
    let r = c.delete(&[]).await;
    assert_eq!(r.status, 404, "DELETE after DELETE: {}", r.describe());
    assert!(srv.server.sessions().get(&sid).is_none());
}

#[tokio::test]
async fn protocol_version_header_is_checked() {
    let srv = start(standard()).await;
    let mut c = srv.client();
    c.initialize().await;
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }).to_string();
    for (value, status) in [
        (Some("banana"), 400),
        (Some("1999-01-01"), 400),
        // Supported but not the negotiated one: tolerated, the session's version governs
        // (the official conformance suite sends 2025-03-26 on 2025-11-25 sessions).
        (Some("2025-06-18"), 200),
        (Some("2025-03-26"), 200),
        (None, 200),
        (Some(LATEST), 200),
    ] {
        let r = c.post_with(body.clone(), &[("mcp-protocol-version", value)]).await;
        assert_eq!(r.status, status, "POST MCP-Protocol-Version {value:?}: {}", r.describe());
        if status == 400 {
            // GET is checked only where it must fail: a successful GET would hold the stream.
            let g = Reply::read(c.get_stream(&[("mcp-protocol-version", value)]).await).await;
            assert_eq!(g.status, 400, "GET MCP-Protocol-Version {value:?}: {}", g.describe());
        }
    }
}

#[tokio::test]
async fn pre_initialize_requests_are_not_served() {
    let srv = start(standard()).await;
    let c = srv.client();
    let r = c.post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" })).await;
    assert!((400..500).contains(&r.status), "tools/list before initialize: {}", r.describe());
    assert!(!r.text().contains("\"tools\""), "{}", r.describe());
}

// ---------------------------------------------------------------- response shapes (HT-12, HT-17)

#[tokio::test]
async fn plain_requests_are_answered_as_json() {
    let srv = start(conformance()).await;
    let mut c = srv.client();
    c.initialize().await;
    let r = c.request_reply("tools/list", json!({})).await;
    assert_eq!(r.status, 200);
    assert!(r.content_type().starts_with("application/json"), "{}", r.describe());
    let r = c.request_reply("tools/call", json!({ "name": "test_simple_text", "arguments": {} })).await;
    assert!(r.content_type().starts_with("application/json"), "{}", r.describe());
    assert_eq!(r.json()["result"]["isError"], json!(false), "{}", r.describe());
}

/// Checks a POST-SSE stream: priming event first, then notifications, then the response last.
fn check_request_stream(r: &Reply, id: i64, notification: &str, count: usize) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.is_sse(), "expected text/event-stream: {}", r.describe());
    let events = r.events();
    assert!(events.len() >= count + 2, "{events:?}");
    let first = &events[0];
    assert!(first.id.as_deref().is_some_and(|i| !i.is_empty()), "priming event has an id: {first:?}");
    assert!(first.data.is_empty(), "priming event has empty data: {first:?}");
    let messages: Vec<Value> = events[1..]
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap_or_else(|_| panic!("event data is JSON: {e:?}")))
        .collect();
    let ids: Vec<&String> = events.iter().filter_map(|e| e.id.as_ref()).collect();
    let unique: HashSet<&&String> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "event ids are unique: {ids:?}");
    let (last, notes) = messages.split_last().expect("messages");
    assert_eq!(last["id"], json!(id), "the response comes last: {messages:?}");
    assert!(last.get("result").is_some(), "{last}");
    let matching: Vec<&Value> = notes.iter().filter(|m| m["method"] == json!(notification)).collect();
    assert_eq!(matching.len(), count, "{notification} events: {messages:?}");
    for n in notes {
        assert!(n.get("id").is_none(), "notifications carry no id: {n}");
    }
    notes.to_vec()
}

#[tokio::test]
async fn progress_notifications_are_streamed_before_the_response() {
    let srv = start(conformance()).await;
    let mut c = srv.client();
    c.initialize().await;
    let mut body = tool_call_body(77, "test_tool_with_progress", json!({}));
    body["params"]["_meta"] = json!({ "progressToken": "tok-1" });
    let r = c.post(&body).await;
    let notes = check_request_stream(&r, 77, "notifications/progress", 3);
    let progress: Vec<Value> = notes.iter().map(|n| n["params"]["progress"].clone()).collect();
    assert_eq!(progress, vec![json!(0.0), json!(50.0), json!(100.0)], "{notes:?}");
    assert!(notes.iter().all(|n| n["params"]["progressToken"] == json!("tok-1")));
}

#[tokio::test]
async fn log_notifications_are_streamed_after_set_level() {
    let srv = start(conformance()).await;
    let mut c = srv.client();
    c.initialize().await;
    let m = c.request("logging/setLevel", json!({ "level": "debug" })).await;
    assert_eq!(m["result"], json!({}), "{m}");
    let r = c.post(&tool_call_body(78, "test_tool_with_logging", json!({}))).await;
    check_request_stream(&r, 78, "notifications/message", 3);
}

// ---------------------------------------------------------------- GET stream (HT-13)

#[tokio::test]
async fn get_opens_one_event_stream_per_session() {
    let srv = start(standard()).await;
    let mut c = srv.client();
    c.initialize().await;

    let mut stream = c.get_stream(&[]).await;
    assert_eq!(stream.status().as_u16(), 200);
    let ct = stream.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let first = read_events(&mut stream, 1).await;
    assert!(first[0].id.is_some(), "{first:?}");

    let second = Reply::read(c.get_stream(&[]).await).await;
    assert_eq!(second.status, 409, "second concurrent GET: {}", second.describe());
    // POSTs still work while the stream is open, and their answers do not appear on it (HT-13).
    assert_eq!(c.ping_ok().await, Ok(()));
    let m = c.request("tools/list", json!({})).await;
    assert!(m.get("result").is_some());
    match tokio::time::timeout(std::time::Duration::from_millis(300), stream.chunk()).await {
        Err(_) => {}
        Ok(chunk) => {
            let text = chunk.ok().flatten().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            assert!(
                !text.contains("\"result\"") && !text.contains("\"error\""),
                "a response on the GET stream: {text:?}"
            );
        }
    }
    drop(stream);

    let r = Reply::read(c.get_stream(&[("mcp-session-id", None)]).await).await;
    assert_eq!(r.status, 400, "GET without session: {}", r.describe());
    let port = srv.addr.port();
    let head = format!(
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nMcp-Session-Id: {}{}",
        c.session.clone().unwrap_or_default(),
        srv.auth_line()
    );
    let r = raw_http(srv.addr, &head, b"").await;
    assert_eq!(r.status, 406, "GET without Accept: {}", r.describe());
    let r = Reply::read(c.get_stream(&[("accept", Some("application/json"))]).await).await;
    assert_eq!(r.status, 406, "GET with Accept: application/json: {}", r.describe());
}

// ---------------------------------------------------------------- Origin and Host (HT-01..03)

fn assert_forbidden_origin(r: &Reply, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.describe());
    let body = r.json();
    assert!(body.get("error").is_some(), "{what}: JSON-RPC error body: {body}");
    assert!(body.get("id").is_none_or(Value::is_null), "{what}: no id: {body}");
    assert!(r.header("access-control-allow-origin").is_none(), "{what}: no CORS grant: {}", r.describe());
}

#[tokio::test]
async fn foreign_origins_are_refused_everywhere() {
    let srv = start(standard()).await;
    for origin in ["http://evil.example", "null", "https://evil.example", "http://127.0.0.1:1"] {
        let c = srv.client();
        let r = c.post_with(initialize_body(1, LATEST).to_string(), &[("origin", Some(origin))]).await;
        assert_forbidden_origin(&r, &format!("initialize from {origin}"));
        assert!(r.header("mcp-session-id").is_none(), "no session for a foreign origin");
    }
    let sessions_before = srv.server.sessions().len();

    let mut c = srv.client();
    c.initialize().await;
    let evil = [("origin", Some("http://evil.example"))];
    let body = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }).to_string();
    assert_forbidden_origin(&c.post_with(body, &evil).await, "POST tools/list");
    assert_forbidden_origin(&Reply::read(c.get_stream(&evil).await).await, "GET");
    assert_forbidden_origin(&c.delete(&evil).await, "DELETE");
    // The refused DELETE did not end the session.
    assert_eq!(c.ping_ok().await, Ok(()));
    assert_eq!(srv.server.sessions().len(), sessions_before + 1);
}

#[tokio::test]
async fn own_origin_and_no_origin_are_allowed_with_cors_headers() {
    let srv = start(standard()).await;
    let c = srv.client();
    let r = c.post(&initialize_body(1, LATEST)).await;
    assert_eq!(r.status, 200, "no Origin: {}", r.describe());
    assert!(r.header("access-control-allow-origin").is_none(), "no CORS without Origin");

    let port = srv.addr.port();
    for origin in [srv.origin.clone(), format!("http://localhost:{port}")] {
        let mut c = srv.client();
        let r = c.post_with(initialize_body(1, LATEST).to_string(), &[("origin", Some(&origin))]).await;
        assert_eq!(r.status, 200, "own origin {origin}: {}", r.describe());
        assert_eq!(r.header("access-control-allow-origin").as_deref(), Some(origin.as_str()));
        let exposed = r.header("access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
        for h in ["mcp-session-id", "mcp-protocol-version", "www-authenticate"] {
            assert!(exposed.contains(h), "Expose-Headers lacks {h}: {exposed}");
        }
        c.session = r.header("mcp-session-id");
        c.version = Some(LATEST.into());
        let r = c
            .post_with(json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" }).to_string(), &[("origin", Some(&origin))])
            .await;
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.header("access-control-allow-origin").as_deref(), Some(origin.as_str()));
    }
}

#[tokio::test]
async fn cors_preflight() {
    let srv = start(standard()).await;
    let c = srv.client();
    let origin = srv.origin.clone();
    let preflight = |origin: String| {
        let c = c.clone();
        async move {
            let response = c
                .http
                .request(Method::OPTIONS, &c.url)
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type, mcp-session-id, mcp-protocol-version")
                .send()
                .await
                .expect("OPTIONS");
            Reply::read(response).await
        }
    };
    let r = preflight(origin.clone()).await;
    assert_eq!(r.status, 204, "{}", r.describe());
    assert_eq!(r.header("access-control-allow-origin").as_deref(), Some(origin.as_str()));
    let allowed = r.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    for h in ["mcp-session-id", "mcp-protocol-version", "content-type"] {
        assert!(allowed.contains(h), "Allow-Headers lacks {h}: {allowed}");
    }
    let methods = r.header("access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST"), "{methods}");

    let r = preflight("http://evil.example".into()).await;
    assert_eq!(r.status, 403, "{}", r.describe());
    assert!(r.header("access-control-allow-origin").is_none(), "{}", r.describe());
}

#[tokio::test]
async fn foreign_host_headers_are_refused() {
    let srv = start(standard()).await;
    let c = srv.client();
    let port = srv.addr.port();
    for host in
        ["evil.example.com".to_owned(), format!("evil.example.com:{port}"), format!("127.0.0.1.evil.com:{port}")]
    {
        let r = c.post_with(initialize_body(1, LATEST).to_string(), &[("host", Some(&host))]).await;
        assert!((400..500).contains(&r.status), "Host {host}: {}", r.describe());
        assert!(r.header("mcp-session-id").is_none(), "Host {host}: a session was created");
    }
    let mut ok = srv.client();
    let localhost = format!("localhost:{port}");
    let r = ok.post_with(initialize_body(1, LATEST).to_string(), &[("host", Some(&localhost))]).await;
    assert_eq!(r.status, 200, "Host {localhost}: {}", r.describe());

    ok.initialize().await;
    let g = Reply::read(ok.get_stream(&[("host", Some("evil.example.com"))]).await).await;
    assert!((400..500).contains(&g.status), "GET with a foreign Host: {}", g.describe());
}

// ---------------------------------------------------------------- server-to-client requests (LC-04, HT-11, HT-17)

/// Opens a POST whose answer is an event stream, without reading it.
async fn post_stream(c: &Mcp, body: &Value) -> reqwest::Response {
    let response = c.build(Method::POST, &c.url, Some(body.to_string().into_bytes()), &[]).send().await.expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    let ct = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    response
}

/// Reads the rest of a stream to its end (bounded).
async fn read_to_end(response: reqwest::Response) -> Vec<SseEvent> {
    let bytes = tokio::time::timeout(TIMEOUT, response.bytes()).await.expect("stream ends").expect("read stream");
    parse_sse(&String::from_utf8_lossy(&bytes))
}

#[tokio::test]
async fn sampling_round_trip_over_the_request_stream() {
    let srv = start(conformance()).await;
    let mut c = srv.client();
    c.initialize_with(LATEST, json!({ "sampling": {} })).await;
    let body = tool_call_body(500, "test_sampling", json!({ "prompt": "say hi" }));
    let mut stream = post_stream(&c, &body).await;
    let events = read_events(&mut stream, 2).await;
    assert!(events[0].id.is_some() && events[0].data.is_empty(), "priming event: {events:?}");
    let request: Value = serde_json::from_str(&events[1].data).expect("JSON event");
    assert_eq!(request["method"], json!("sampling/createMessage"), "{request}");
    let server_id = request["id"].clone();
    assert!(!server_id.is_null(), "server requests carry an id: {request}");

    // A response for an id the server never used is refused; the right one is accepted.
    let r = c.post(&json!({ "jsonrpc": "2.0", "id": "srv-unknown", "result": {} })).await;
    assert_eq!(r.status, 400, "{}", r.describe());
    let answer = json!({
        "jsonrpc": "2.0", "id": server_id,
        "result": { "role": "assistant", "content": { "type": "text", "text": "hi there" }, "model": "test", "stopReason": "endTurn" }
    });
    let r = c.post(&answer).await;
    assert_eq!(r.status, 202, "{}", r.describe());
    assert!(r.body.is_empty());
    // Answering twice is refused: the request is no longer pending.
    let r = c.post(&answer).await;
    assert_eq!(r.status, 400, "second answer: {}", r.describe());

    let rest = read_to_end(stream).await;
    let last: Value = serde_json::from_str(&rest.last().expect("the response").data).expect("JSON");
    assert_eq!(last["id"], json!(500), "{last}");
    assert_eq!(last["result"]["isError"], json!(false), "{last}");
    assert!(last.to_string().contains("hi there"), "{last}");
}

#[tokio::test]
async fn no_sampling_request_without_the_client_capability() {
    let srv = start(conformance()).await;
    let mut c = srv.client();
    c.initialize().await; // capabilities: {}
    let r = c.post(&tool_call_body(501, "test_sampling", json!({ "prompt": "say hi" }))).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(!r.text().contains("sampling/createMessage"), "a sampling request was sent: {}", r.describe());
    assert_eq!(r.message()["result"]["isError"], json!(true), "{}", r.describe());
}

#[tokio::test]
async fn an_unanswered_server_request_times_out_as_a_tool_error() {
    let mut config = conformance();
    config.limits.tool_timeout_ms = 300;
    let srv = start(config).await;
    let mut c = srv.client();
    c.initialize_with(LATEST, json!({ "elicitation": {} })).await;
    let started = std::time::Instant::now();
    let r = c.post(&tool_call_body(502, "test_elicitation", json!({ "message": "pick one" }))).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(r.is_sse(), "{}", r.describe());
    assert!(r.text().contains("elicitation/create"), "{}", r.describe());
    let m = r.message();
    assert_eq!(m["id"], json!(502));
    assert_eq!(m["result"]["isError"], json!(true), "{m}");
    assert_eq!(c.ping_ok().await, Ok(()));
}

#[tokio::test]
async fn event_ids_are_unique_across_streams_and_not_replayed_to_other_sessions() {
    let srv = start(conformance()).await;
    let mut a = srv.client();
    a.initialize().await;
    let call = |id: i64| {
        let mut body = tool_call_body(id, "test_tool_with_progress", json!({}));
        body["params"]["_meta"] = json!({ "progressToken": id });
        body
    };
    let (b1, b2) = (call(1), call(2));
    let (r1, r2) = tokio::join!(a.post(&b1), a.post(&b2));
    let mut ids = Vec::new();
    for r in [&r1, &r2] {
        assert!(r.is_sse(), "{}", r.describe());
        ids.extend(r.events().into_iter().filter_map(|e| e.id));
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "event ids repeat across streams: {ids:?}");
    // Each stream carries only its own request's messages.
    for (r, id) in [(&r1, 1), (&r2, 2)] {
        for e in r.events().iter().filter(|e| !e.data.is_empty()) {
            let m: Value = serde_json::from_str(&e.data).expect("JSON");
            let token = m.pointer("/params/progressToken").or_else(|| m.get("id")).cloned();
            assert_eq!(token, Some(json!(id)), "message of another request on stream {id}: {m}");
        }
    }

    // Session B resuming with A's event id gets nothing of A's.
    let mut b = srv.client();
    b.initialize().await;
    let last_a = ids.last().expect("an event id").clone();
    let response = b.get_stream(&[("last-event-id", Some(&last_a))]).await;
    let status = response.status().as_u16();
    assert!(matches!(status, 200 | 400 | 404 | 405), "GET with a foreign Last-Event-ID: {status}");
    if status == 200 {
        let mut response = response;
        let first = read_events(&mut response, 1).await;
        assert!(first[0].data.is_empty(), "only a fresh priming event: {first:?}");
    }
}

#[tokio::test]
async fn the_session_table_is_bounded() {
    let mut config = standard();
    config.sessions.max_sessions = 2;
    let srv = start(config).await;
    let mut one = srv.client();
    one.initialize().await;
    let mut two = srv.client();
    two.initialize().await;
    let r = srv.client().post(&initialize_body(1, LATEST)).await;
    assert_eq!(r.status, 503, "third session: {}", r.describe());
    assert!(r.header("mcp-session-id").is_none());
    // Ending one frees a slot.
    assert_eq!(one.delete(&[]).await.status, 204);
    let r = srv.client().post(&initialize_body(1, LATEST)).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(two.ping_ok().await, Ok(()));
}
