//! Proof cases for the `jsonrpc` and `lifecycle` checks: each names the reference-server fault
//! switch (or the stand-in) that breaks exactly the control its check tests.

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use mcproof::target::{HttpTarget, Target};
use serde_json::json;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::{Case, Stand};

pub fn cases() -> Vec<Case> {
    vec![
        // jsonrpc
        Case::fault("jsonrpc/parse-error", "parse-error-code"),
        Case::fault("jsonrpc/invalid-request", "null-id-rejection"),
        Case::fault("jsonrpc/method-not-found", "method-not-found-code"),
        Case::fault("jsonrpc/invalid-params", "invalid-params-code"),
        Case::fault("jsonrpc/id-echo", "id-type-echo"),
        Case::fault("jsonrpc/response-shape", "response-shape"),
        Case::fault("jsonrpc/notifications-unanswered", "notification-202"),
        Case::mock("jsonrpc/server-messages", "a notification that carries an id", notification_with_id),
        Case::fault("jsonrpc/batch-rejected", "batch-rejection"),
        // lifecycle
        Case::stdio_fault("lifecycle/initialize-first", "initialize-first"),
        Case::fault("lifecycle/version-echo", "version-negotiation"),
        Case::fault("lifecycle/version-fallback", "version-fallback"),
        Case::fault("lifecycle/honest-capabilities", "honest-capabilities"),
    ]
}

/// A minimal Streamable HTTP server whose progress notifications carry an `id` (JR-08).
fn notification_with_id() -> BoxFuture<'static, Stand> {
    async {
        let server = MockServer::start().await;
        let init = json!({
            "jsonrpc": "2.0",
            "id": 0,
            "result": {
                "protocolVersion": "2025-11-25",
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "mock", "version": "0.0.0" },
            },
        });
        Mock::given(method("POST"))
            .and(body_string_contains("\"method\":\"initialize\""))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("mcp-session-id", "mock-session-0123456789")
                    .set_body_json(init),
            )
            .with_priority(1)
            .mount(&server)
            .await;
        // Any request with a progress token: a progress notification carrying an id, then a result.
        let sse = concat!(
            "event: message\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"notifications/progress\",",
            "\"params\":{\"progressToken\":\"t\",\"progress\":1}}\n\n",
            "event: message\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
        );
        Mock::given(method("POST"))
            .and(body_string_contains("progressToken"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream"))
            .with_priority(2)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_string_contains("\"method\":\"notifications/"))
            .respond_with(ResponseTemplate::new(202))
            .with_priority(3)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_string_contains("\"method\":\"tools/list\""))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "jsonrpc": "2.0", "id": 1, "result": { "tools": [] } })),
            )
            .with_priority(4)
            .mount(&server)
            .await;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(405)).mount(&server).await;
        Mock::given(method("DELETE")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
        let url = url::Url::parse(&format!("{}/mcp", server.uri())).unwrap_or_else(|e| panic!("{e}"));
        Stand { target: Target::Http(HttpTarget::new(url)), keep: Box::new(server) }
    }
    .boxed()
}
