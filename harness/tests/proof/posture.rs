//! Proof cases for the `posture` checks (HTTP hygiene), plus a small stand-in MCP server on
//! wiremock that answers `initialize`, `tools/list` and `ping` so that a scan can connect to it.
//!
//! `posture/https` has no case: its FAIL needs a plain-HTTP endpoint on a non-loopback host,
//! which loopback-only test traffic cannot honestly provide (see the unit test
//! `plain_http_fails_off_loopback_only` in `src/checks/posture.rs`).

use futures_util::future::BoxFuture;
use mcproof::target::{HttpTarget, Target};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use mcproof_server::auth::AuthPolicy;

use super::common::{Case, Stand};

pub fn cases() -> Vec<Case> {
    vec![
        Case::config("posture/auth-required", "auth.policy = public (authentication off)", |c| {
            c.auth.policy = AuthPolicy::Public;
        }),
        Case::mock("posture/no-admin-exposed", "GET /admin serves an HTML login page", admin_page),
        Case::mock(
            "posture/no-credentials-exposed",
            "initialize instructions hold an AWS access key",
            leaky_instructions,
        ),
        Case::fault("posture/cors-no-wildcard", "cors-policy"),
        Case::fault("posture/csp", "header-csp"),
        Case::tls_fault("posture/hsts", "header-hsts"),
        Case::fault("posture/frame-options", "header-frame-options"),
        Case::fault("posture/nosniff", "header-nosniff"),
        Case::fault("posture/no-version-disclosure", "server-header"),
        Case::mock("posture/no-open-redirect", "GET /mcp?redirect=… answers 302 to the parameter", open_redirect),
        Case::mock("posture/no-sensitive-files", "GET /.env serves an environment file", dot_env),
        Case::fault("posture/no-stack-trace-on-404", "error-sanitization"),
    ]
}

// ---------------------------------------------------------------------------------------------
// A stand-in MCP endpoint

/// How the stand-in MCP endpoint behaves.
#[derive(Clone, Default)]
struct McpMock {
    /// Answer 401 with a Bearer challenge unless `Authorization: Bearer <this>` is sent.
    bearer: Option<&'static str>,
    /// `instructions` of the InitializeResult.
    instructions: Option<String>,
    /// The stand-in's own origin (set when it starts).
    origin: String,
}

fn jsonrpc(id: &Value, outcome: (&str, Value)) -> ResponseTemplate {
    let mut body = json!({ "jsonrpc": "2.0", "id": id });
    body[outcome.0] = outcome.1;
    ResponseTemplate::new(200).set_body_json(body)
}

/// A minimal, stateless Streamable HTTP MCP server: JSON answers, no session id.
fn mcp_answer(req: &Request, mock: &McpMock) -> ResponseTemplate {
    if let Some(token) = mock.bearer {
        let sent = req.headers.get("authorization").and_then(|v| v.to_str().ok());
        if sent != Some(format!("Bearer {token}").as_str()) {
            let origin = &mock.origin;
            return ResponseTemplate::new(401)
                .insert_header(
                    "www-authenticate",
                    format!("Bearer resource_metadata=\"{origin}/.well-known/oauth-protected-resource/mcp\""),
                )
                .set_body_json(json!({ "error": "invalid_token" }));
        }
    }
    let Ok(message) = serde_json::from_slice::<Value>(&req.body) else {
        return ResponseTemplate::new(400).set_body_json(
            json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32700, "message": "Parse error" } }),
        );
    };
    let Some(id) = message.get("id").cloned() else {
        return ResponseTemplate::new(202);
    };
    match message.get("method").and_then(Value::as_str) {
        Some("initialize") => {
            let mut result = json!({
                "protocolVersion": "2025-11-25",
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "posture-stand-in", "version": "1.0.0" },
            });
            if let Some(text) = &mock.instructions {
                result["instructions"] = json!(text);
            }
            jsonrpc(&id, ("result", result))
        }
        Some("tools/list") => jsonrpc(
            &id,
            (
                "result",
                json!({ "tools": [{
                    "name": "echo",
                    "description": "Echoes its text.",
                    "inputSchema": { "type": "object", "properties": { "text": { "type": "string" } } },
                }] }),
            ),
        ),
        Some("ping") => jsonrpc(&id, ("result", json!({}))),
        _ => jsonrpc(&id, ("error", json!({ "code": -32601, "message": "Method not found" }))),
    }
}

/// Starts a stand-in; mount extra (misbehaving) routes on the returned server.
async fn mcp_stand_in(mut mock: McpMock) -> MockServer {
    let server = MockServer::start().await;
    mock.origin = server.uri();
    Mock::given(method("POST"))
        .and(path("/mcp"))
        .respond_with(move |req: &Request| mcp_answer(req, &mock))
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

fn stand(server: MockServer, bearer: Option<&str>) -> Stand {
    let url = url::Url::parse(&format!("{}/mcp", server.uri())).unwrap_or_else(|e| panic!("{e}"));
    let mut target = HttpTarget::new(url);
    target.bearer = bearer.map(str::to_owned);
    Stand { target: Target::Http(target), keep: Box::new(server) }
}

// ---------------------------------------------------------------------------------------------
// Targets

fn admin_page() -> BoxFuture<'static, Stand> {
    Box::pin(async {
        let server = mcp_stand_in(McpMock::default()).await;
        let page = "<!DOCTYPE html><html><head><title>Admin Dashboard</title></head><body><form method=\"post\" action=\"/admin/login\"><input name=\"user\"><input type=\"password\" name=\"password\"><button>Sign in</button></form></body></html>";
        Mock::given(method("GET"))
            .and(path("/admin"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(page, "text/html; charset=utf-8"))
            .with_priority(1)
            .mount(&server)
            .await;
        stand(server, None)
    })
}

fn leaky_instructions() -> BoxFuture<'static, Stand> {
    Box::pin(async {
        // Built at run time so that no key-shaped literal sits in the source.
        let key = format!("AKIA{}", "Q4MCPROOFFAKE7X2");
        let instructions = format!("Deployment note: this server reads S3 with AWS_ACCESS_KEY_ID={key}.");
        let server = mcp_stand_in(McpMock { instructions: Some(instructions), ..McpMock::default() }).await;
        stand(server, None)
    })
}

fn open_redirect() -> BoxFuture<'static, Stand> {
    Box::pin(async {
        let server = mcp_stand_in(McpMock::default()).await;
        Mock::given(method("GET"))
            .and(path("/mcp"))
            .and(query_param("redirect", "https://evil.example/"))
            .respond_with(|req: &Request| {
                let to = req.url.query_pairs().find(|(k, _)| k == "redirect").map(|(_, v)| v.into_owned());
                ResponseTemplate::new(302).insert_header("location", to.unwrap_or_default())
            })
            .with_priority(1)
            .mount(&server)
            .await;
        stand(server, None)
    })
}

fn dot_env() -> BoxFuture<'static, Stand> {
    Box::pin(async {
        let server = mcp_stand_in(McpMock::default()).await;
        let env = "# production\nNODE_ENV=production\nDATABASE_URL=postgres://app:Pr0d-pa55@db.internal:5432/app\nSESSION_SECRET=9f2c4e1a7b\n";
        Mock::given(method("GET"))
            .and(path("/.env"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(env, "text/plain"))
            .with_priority(1)
            .mount(&server)
            .await;
        stand(server, None)
    })
}
