//! Proof cases for `lifecycle/no-requests-without-capability` (LC-04),
//! `lifecycle/quiet-before-initialized` (LC-05) and `tools/structured-output` (TO-02).
//!
//! LC-05's broken target is a stand-in on wiremock (a stateless Streamable HTTP MCP endpoint)
//! whose GET stream carries a `roots/list` request whether or not the client has sent
//! `notifications/initialized`; the other two use reference-server fault switches.

use futures_util::future::BoxFuture;
use mcproof::target::{HttpTarget, Target};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::common::{Case, Stand};

pub fn cases() -> Vec<Case> {
    vec![
        Case::fault("lifecycle/no-requests-without-capability", "sampling-without-capability"),
        Case::mock(
            "lifecycle/quiet-before-initialized",
            "GET /mcp streams a roots/list request before notifications/initialized",
            early_request,
        ),
        Case::fault("tools/structured-output", "output-schema"),
    ]
}

fn jsonrpc(id: &Value, outcome: (&str, Value)) -> ResponseTemplate {
    let mut body = json!({ "jsonrpc": "2.0", "id": id });
    body[outcome.0] = outcome.1;
    ResponseTemplate::new(200).set_body_json(body)
}

/// A minimal, stateless MCP endpoint: JSON answers, no session id, notifications get 202.
fn mcp_answer(req: &Request) -> ResponseTemplate {
    let Ok(message) = serde_json::from_slice::<Value>(&req.body) else {
        return ResponseTemplate::new(400).set_body_json(
            json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32700, "message": "Parse error" } }),
        );
    };
    let Some(id) = message.get("id").cloned() else {
        return ResponseTemplate::new(202);
    };
    match message.get("method").and_then(Value::as_str) {
        Some("initialize") => jsonrpc(
            &id,
            (
                "result",
                json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": { "tools": {} },
                    "serverInfo": { "name": "lifecycle-stand-in", "version": "1.0.0" },
                }),
            ),
        ),
        Some("tools/list") => jsonrpc(&id, ("result", json!({ "tools": [] }))),
        Some("ping") => jsonrpc(&id, ("result", json!({}))),
        _ => jsonrpc(&id, ("error", json!({ "code": -32601, "message": "Method not found" }))),
    }
}

fn early_request() -> BoxFuture<'static, Stand> {
    Box::pin(async {
        let server = MockServer::start().await;
        Mock::given(method("POST")).and(path("/mcp")).respond_with(mcp_answer).mount(&server).await;
        let request = json!({ "jsonrpc": "2.0", "id": "s1", "method": "roots/list", "params": {} });
        let body = format!(": stream open\n\nid: 1\nevent: message\ndata: {request}\n\n");
        Mock::given(method("GET"))
            .and(path("/mcp"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
            .mount(&server)
            .await;
        let url = url::Url::parse(&format!("{}/mcp", server.uri())).unwrap_or_else(|e| panic!("{e}"));
        Stand { target: Target::Http(HttpTarget::new(url)), keep: Box::new(server) }
    })
}
