//! Proof cases for the `auth` checks (the MCP server as an OAuth resource server), plus a small
//! wiremock stand-in that requires a bearer token and serves protected resource metadata and
//! authorization server metadata, misbehaving in exactly one way per case.

use futures_util::future::BoxFuture;
use mcproof::target::{HttpTarget, Target};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::common::{Case, Stand};

pub fn cases() -> Vec<Case> {
    vec![
        Case::fault("auth/challenge-401", "auth-challenge"),
        Case::mock("auth/invalid-token-401", "any bearer token is accepted (no verification)", any_bearer),
        Case::fault("auth/protected-resource-metadata", "prm-resource"),
        Case::mock(
            "auth/as-metadata-pkce",
            "AS metadata lists code_challenge_methods_supported [S256, plain]",
            pkce_plain,
        ),
        Case::mock("auth/credential-not-in-query", "?access_token= in the URL is honoured", query_token),
    ]
}

const TOKEN: &str = "mcproof-auth-proof-token-7d2e91";

/// How the stand-in behaves.
#[derive(Clone, Default)]
struct Behaviour {
    /// Serve any `Authorization: Bearer …` (no token verification).
    any_bearer: bool,
    /// Honour the token in `?access_token=` / `?api_key=`.
    query_token: bool,
    origin: String,
}

fn jsonrpc(id: &Value, result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
}

fn answer(req: &Request, s: &Behaviour) -> ResponseTemplate {
    let prm = format!("{}/.well-known/oauth-protected-resource/mcp", s.origin);
    let bearer = req.headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let in_query = req.url.query_pairs().any(|(k, v)| (k == "access_token" || k == "api_key") && v == TOKEN);
    let authorized = match bearer {
        Some(t) => t == TOKEN || s.any_bearer,
        None => s.query_token && in_query,
    };
    if !authorized {
        let challenge = match bearer {
            Some(_) => format!("Bearer error=\"invalid_token\", resource_metadata=\"{prm}\""),
            None => format!("Bearer resource_metadata=\"{prm}\", scope=\"mcp:read\""),
        };
        return ResponseTemplate::new(401)
            .insert_header("www-authenticate", challenge)
            .set_body_json(json!({ "error": if bearer.is_some() { "invalid_token" } else { "unauthorized" } }));
    }
    let Ok(message) = serde_json::from_slice::<Value>(&req.body) else {
        return ResponseTemplate::new(400).set_body_json(
            json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32700, "message": "Parse error" } }),
        );
    };
    let Some(id) = message.get("id").cloned() else { return ResponseTemplate::new(202) };
    match message.get("method").and_then(Value::as_str) {
        Some("initialize") => jsonrpc(
            &id,
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "auth-stand-in", "version": "1.0.0" },
            }),
        ),
        Some("tools/list") => jsonrpc(&id, json!({ "tools": [] })),
        Some("ping") => jsonrpc(&id, json!({})),
        _ => ResponseTemplate::new(200).set_body_json(
            json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "Method not found" } }),
        ),
    }
}

/// Starts the stand-in with its metadata documents; `methods` is the AS's PKCE list.
async fn stand_in(mut s: Behaviour, methods: Value) -> Stand {
    let server = MockServer::start().await;
    s.origin = server.uri();
    let origin = s.origin.clone();
    Mock::given(method("POST"))
        .and(path("/mcp"))
        .respond_with(move |req: &Request| answer(req, &s))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-protected-resource/mcp"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "resource": format!("{origin}/mcp"),
            "authorization_servers": [origin],
            "scopes_supported": ["mcp:read"],
            "bearer_methods_supported": ["header"],
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": origin,
            "authorization_endpoint": format!("{origin}/authorize"),
            "token_endpoint": format!("{origin}/token"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": methods,
        })))
        .mount(&server)
        .await;
    let url = url::Url::parse(&format!("{}/mcp", server.uri())).unwrap_or_else(|e| panic!("{e}"));
    let mut target = HttpTarget::new(url);
    target.bearer = Some(TOKEN.to_owned());
    Stand { target: Target::Http(target), keep: Box::new(server) }
}

fn any_bearer() -> BoxFuture<'static, Stand> {
    Box::pin(stand_in(Behaviour { any_bearer: true, ..Behaviour::default() }, json!(["S256"])))
}

fn pkce_plain() -> BoxFuture<'static, Stand> {
    Box::pin(stand_in(Behaviour::default(), json!(["S256", "plain"])))
}

fn query_token() -> BoxFuture<'static, Stand> {
    Box::pin(stand_in(Behaviour { query_token: true, ..Behaviour::default() }, json!(["S256"])))
}
