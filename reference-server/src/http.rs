//! Streamable HTTP transport (MCP 2025-11-25) on `/mcp`: POST for client messages, GET for the
//! standalone server stream, DELETE to end a session.
//!
//! [`app`] builds the whole router from a server and the address it is bound to, so tests can
//! bind `127.0.0.1:0` and serve it with [`listener::serve`].
//!
//! Replicas: with a shared store (Redis) every rate-limit layer and every session lookup goes
//! through the store, so any replica serves any session and a DELETE on one ends it on all.
//! When the store cannot answer, requests are refused with 503 (JSON-RPC -32603), never served
//! on a guess. Live channels stay in one process: a server-to-client request (sampling,
//! elicitation) travels on the POST stream or GET stream of the replica that sent it, so the
//! client's answer to it, and its GET stream, must reach that same replica. Ordinary requests
//! need no affinity.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Uri};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::audit::AuditEvent;
use crate::auth::authenticator::{Authenticator, Caller, Refusal};
use crate::auth::jwt::TokenVerifier;
use crate::auth::policy::{Action, Decision};
use crate::jsonrpc::{self, Id, Incoming, Message};
use crate::protocol::ProtocolVersion;
use crate::rate_limit::{Limited, RateError, retry_after_secs};
use crate::server::{McpServer, OpenSessionError, STORE_UNAVAILABLE_MESSAGE};
use crate::session::{Session, session_label};
use crate::store::StoreError;

pub mod guard;
pub mod listener;
mod sse;

use guard::OriginPolicy;

pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";

/// Shared state of the HTTP transport. Every middleware layer and handler takes a clone per
/// request, so it is one `Arc` (one reference count) rather than a bundle of them.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct AppStateInner {
    pub server: McpServer,
    pub origins: Arc<OriginPolicy>,
    pub tls: bool,
    pub auth: Arc<Authenticator>,
    /// RFC 9728 protected resource metadata, served at both well-known URLs.
    pub resource_metadata: Arc<Value>,
}

/// The router: `/mcp` behind the Origin guard and authentication, the protected resource
/// metadata, and (when enabled) the built-in authorization server; all behind the Host guard.
pub fn app(server: McpServer, bound: SocketAddr, tls: bool) -> Router {
    let config = server.config().clone();
    let origins = Arc::new(OriginPolicy::new(bound, tls, &config.allowed_hosts, &config.allowed_origins));
    let request_timeout = Duration::from_millis(config.limits.request_timeout_ms);
    let scheme = if tls { "https" } else { "http" };
    let origin = format!("{scheme}://{bound}");
    let resource = config.auth.resource.clone().unwrap_or_else(|| format!("{origin}/mcp"));
    let issuer = config.auth.issuer.clone().unwrap_or_else(|| origin.clone());
    let resource_metadata_url = format!("{origin}/.well-known/oauth-protected-resource/mcp");
    let (oauth, verifier) = match build_authorization_server(&server, &config, &issuer, &resource) {
        Ok(built) => built,
        Err(e) => {
            // Fail closed: with enforcement on and no way to verify tokens, only API keys work.
            tracing::error!(error = %e, "the authorization server could not be built");
            (None, None)
        }
    };
    let mut authorization_servers: Vec<String> = oauth.iter().map(|_| issuer.clone()).collect();
    authorization_servers.extend(config.auth.trusted_issuers.iter().map(|t| t.issuer.clone()));
    let resource_metadata = Arc::new(crate::auth::www_authenticate::protected_resource_metadata(
        &resource,
        &authorization_servers,
        &crate::auth::policy::SCOPES,
    ));
    let auth = Arc::new(Authenticator::new(
        config.auth.policy,
        verifier,
        server.api_keys().cloned(),
        server.store().clone(),
        resource_metadata_url,
    ));
    let state = AppState(Arc::new(AppStateInner { server, origins, tls, auth, resource_metadata }));
    let mcp_method = MethodRouter::new().post(post_mcp).get(get_mcp).delete(delete_mcp).fallback(method_not_allowed);
    // Only the overhead benchmark's no-security contender (feature `bench-insecure`) leaves out
    // authentication, the Host/Origin guards, the IP rate limit and the security headers.
    let insecure = config.faults.security_off();
    let mcp = Router::new().route("/mcp", mcp_method);
    // Each `from_fn` layer costs a boxed-service clone and a state clone per request, so the
    // guards that share a scope share a layer (order inside each is the order of the checks).
    let mcp = if insecure {
        mcp.layer(middleware::from_fn(no_authentication))
    } else {
        mcp.layer(middleware::from_fn_with_state(state.clone(), check_origin_then_authenticate))
    };
    let mut router: Router = Router::new()
        .merge(mcp)
        .route("/.well-known/oauth-protected-resource", get(resource_metadata_document))
        .route("/.well-known/oauth-protected-resource/mcp", get(resource_metadata_document))
        .fallback(not_found)
        .with_state(state.clone());
    if let Some(oauth) = oauth {
        router = router.merge(crate::oauth::router(oauth));
    }
    router = if insecure {
        router.layer(middleware::from_fn(move |req: Request, next: Next| timeout(request_timeout, req, next)))
    } else {
        router.layer(middleware::from_fn_with_state(
            state.clone(),
            move |state: State<AppState>, req: Request, next: Next| {
                timeout_check_host_limit_ip(request_timeout, state, req, next)
            },
        ))
    };
    router = router.layer(tower_http::catch_panic::CatchPanicLayer::custom(|_panic| {
        tracing::error!("handler panicked");
        generic_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }));
    if insecure { router } else { router.layer(middleware::from_fn_with_state(state, guard::security_headers)) }
}

/// With every security control off (`bench-insecure`): each request is the anonymous caller of
/// the `public` policy, and nothing is checked.
async fn no_authentication(mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(Caller::unauthenticated_owner());
    next.run(req).await
}

/// The built-in authorization server (when enforcement is on and it is enabled) and the
/// verifier for the tokens this server accepts: its own, and those of configured external issuers.
fn build_authorization_server(
    server: &McpServer,
    config: &crate::config::Config,
    issuer: &str,
    resource: &str,
) -> Result<(Option<crate::oauth::OAuthState>, Option<TokenVerifier>), String> {
    if config.auth.policy.enforced().is_none() {
        return Ok((None, None));
    }
    let mut trusted = Vec::new();
    for external in &config.auth.trusted_issuers {
        let t = crate::auth::jwt::TrustedIssuer::remote(&external.issuer, resource, &external.jwks_url)
            .map_err(|e| format!("trusted issuer {}: {e}", external.issuer))?;
        trusted.push(t);
    }
    let oauth = if config.auth.authorization_server {
        let mut oauth_config = crate::oauth::OAuthConfig::new(issuer, resource, config.auth.users.clone());
        oauth_config.access_ttl = Duration::from_secs(config.auth.access_token_ttl_secs);
        oauth_config.refresh_ttl = Duration::from_secs(config.auth.refresh_token_ttl_secs);
        let key = server.signing_key().map_err(|e| e.to_string())?;
        let state =
            crate::oauth::OAuthState::new(oauth_config, key, server.store().clone()).map_err(|e| e.to_string())?;
        trusted.push(state.token_issuer().trusted());
        Some(state)
    } else {
        None
    };
    let verifier =
        if trusted.is_empty() { None } else { Some(TokenVerifier::new(trusted).map_err(|e| e.to_string())?) };
    Ok((oauth, verifier))
}

async fn resource_metadata_document(State(state): State<AppState>) -> Response {
    let mut response = json_response(StatusCode::OK, &state.resource_metadata);
    if state.server.config().faults.is_on("prm-resource") {
        let servers = &state.resource_metadata["authorization_servers"];
        let document = json!({ "resource": "https://other.example/mcp", "authorization_servers": servers });
        response = json_response(StatusCode::OK, &document);
    }
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// Establishes the caller of an `/mcp` request (or refuses it) before anything is parsed.
/// The `/mcp` guards: the Origin check (and CORS), then authentication.
async fn check_origin_then_authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    guard::check_origin(&state, req, |req| authenticate(&state, req, next)).await
}

async fn authenticate(state: &AppState, mut req: Request, next: Next) -> Response {
    match state.auth.authenticate(req.headers(), req.uri()).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(refusal) => refuse(state, &Caller::unauthenticated_owner(), &refusal),
    }
}

/// The scope decision for every request in a body (all must be allowed).
fn authorize_incoming(state: &AppState, caller: &Caller, incoming: &Incoming) -> Result<(), Refusal> {
    if state.server.config().faults.security_off() {
        return Ok(());
    }
    let decide = |message: &Message| {
        let (method, tool) = match message {
            Message::Request(r) => {
                let tool = (r.method == "tools/call")
                    .then(|| r.params.as_ref()?.get("name")?.as_str())
                    .flatten()
                    .and_then(|name| state.server.tool_requirements(name));
                (r.method.as_str(), tool)
            }
            Message::Notification(n) => (n.method.as_str(), None),
            Message::Response(_) => ("notifications/response", None),
        };
        let action =
            Action { method, tool_tier: tool.map(|(tier, _)| tier), read_only: tool.is_some_and(|(_, ro)| ro) };
        match state.auth.authorize(caller, &action) {
            Decision::Allow => Ok(()),
            denied => Err(Refusal::Denied(denied)),
        }
    };
    match incoming {
        Incoming::Single(message) => decide(message),
        Incoming::Batch(items) => items.iter().filter_map(|i| i.as_ref().ok()).try_for_each(decide),
    }
}

/// The scope decision for GET (the server stream) and DELETE (ending a session), which carry no
/// JSON-RPC method: decided like any other non-tool request (`mcp:read`; open to callers without
/// a credential only under `public-tier`), so a session is never a substitute for a credential.
#[allow(clippy::result_large_err, reason = "the error is the HTTP response itself, built only on the refusal path")]
fn authorize_transport(state: &AppState, caller: &Caller, method: &str) -> Result<(), Response> {
    if state.server.config().faults.security_off() {
        return Ok(());
    }
    match state.auth.authorize(caller, &Action { method, tool_tier: None, read_only: true }) {
        Decision::Allow => Ok(()),
        denied => Err(refuse(state, caller, &Refusal::Denied(denied))),
    }
}

/// A refusal with its status, `WWW-Authenticate` challenge and an RFC 6750-style body, audited.
fn refuse(state: &AppState, caller: &Caller, refusal: &Refusal) -> Response {
    state.server.audit().record(AuditEvent::AuthDecision {
        principal: caller.principal.id.clone(),
        action: "mcp".into(),
        allowed: false,
        reason: refusal.label().into(),
    });
    let error = match refusal {
        Refusal::BadCredential(_) => "invalid_request",
        Refusal::InvalidToken(..) => "invalid_token",
        Refusal::Denied(Decision::InsufficientScope { .. }) => "insufficient_scope",
        Refusal::Denied(_) => "unauthorized",
        Refusal::Unavailable => "temporarily_unavailable",
    };
    let mut response = json_response(refusal.status(), &json!({ "error": error }));
    if let Some(challenge) = refusal.challenge(&state.auth.resource_metadata_url)
        && !state.server.config().faults.is_on("auth-challenge")
    {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}

/// A JSON-RPC error body with an HTTP status; `id` is null when unknown.
pub fn jsonrpc_error(status: StatusCode, id: Option<&Id>, code: i64, message: &str) -> Response {
    let body = jsonrpc::error_response(id, &jsonrpc::ErrorObject::new(code, message));
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.to_string()).into_response()
}

/// A generic body for non-MCP errors: no paths, versions or stack traces.
fn generic_error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

async fn not_found(State(state): State<AppState>, uri: Uri) -> Response {
    tracing::debug!(path = %crate::server::truncate(uri.path(), 128), "404");
    if state.server.config().faults.is_on("error-sanitization") {
        let trace = "Error: no route matched\n    at Router::route (/home/mcproof/reference-server/src/http.rs:87:5)\n    at serve (/home/mcproof/reference-server/src/http/listener.rs:42:9)\n";
        return (StatusCode::NOT_FOUND, trace).into_response();
    }
    generic_error(StatusCode::NOT_FOUND, "Not Found")
}

async fn method_not_allowed() -> Response {
    let mut response = generic_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    response
}

async fn timeout(limit: Duration, req: Request, next: Next) -> Response {
    within(limit, next.run(req)).await
}

/// `handling`'s response, or 503 when it takes longer than `limit`.
async fn within(limit: Duration, handling: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(limit, handling).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("request timed out");
            generic_error(StatusCode::SERVICE_UNAVAILABLE, "Request timed out")
        }
    }
}

fn peer_ip(req: &Request) -> IpAddr {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip())
}

/// The request timeout around the Host guard (DNS rebinding, every route), the per-IP rate
/// limit and everything inside them.
async fn timeout_check_host_limit_ip(
    limit: Duration,
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    within(limit, async {
        if let Some(refused) = guard::foreign_host_refusal(&state, &req) {
            return refused;
        }
        limit_ip(&state, req, next).await
    })
    .await
}

async fn limit_ip(state: &AppState, req: Request, next: Next) -> Response {
    let ip = peer_ip(&req);
    match state.server.rate_limits().admit_ip(ip).await {
        Ok(()) => next.run(req).await,
        Err(RateError::Limited(limited)) => {
            state.server.audit_limited(&limited, &ip.to_string());
            too_many(None, &limited)
        }
        Err(RateError::Unavailable(e)) => store_unavailable(None, &e),
    }
}

/// HTTP 503 with a JSON-RPC -32603 body when the shared store cannot decide (rate limits,
/// sessions): the request is refused, never served on a guess. The store error is logged (it
/// names no keys or credentials) but not sent.
fn store_unavailable(id: Option<&Id>, error: &StoreError) -> Response {
    tracing::error!(%error, "request refused: shared state unavailable");
    unavailable_response(id)
}

fn unavailable_response(id: Option<&Id>) -> Response {
    let mut response =
        jsonrpc_error(StatusCode::SERVICE_UNAVAILABLE, id, jsonrpc::INTERNAL_ERROR, STORE_UNAVAILABLE_MESSAGE);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// HTTP 429 with an honest `Retry-After` and a JSON-RPC -32000 body.
fn too_many(id: Option<&Id>, limited: &Limited) -> Response {
    let secs = retry_after_secs(limited.retry_after);
    let error = jsonrpc::ErrorObject::new(jsonrpc::RATE_LIMITED, "Rate limit exceeded")
        .with_data(json!({ "layer": limited.layer.as_str(), "retryAfterSeconds": secs }));
    let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, &jsonrpc::error_response(id, &error));
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `Accept` admits `wanted` (`type/subtype`), counting wildcards.
fn accepts(headers: &HeaderMap, wanted: &str) -> bool {
    let (kind, _) = wanted.split_once('/').unwrap_or((wanted, ""));
    headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
        let media = item.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        media == wanted || media == "*/*" || media == format!("{kind}/*")
    })
}

/// The `MCP-Protocol-Version` header: `Ok(None)` when absent, `Err` when present but not a
/// revision this server supports.
#[allow(clippy::result_large_err, reason = "the error is the HTTP response itself, built only on the refusal path")]
fn version_header(headers: &HeaderMap) -> Result<Option<ProtocolVersion>, Response> {
    match headers.get(VERSION_HEADER) {
        None => Ok(None),
        Some(v) => v.to_str().ok().and_then(ProtocolVersion::parse).map(Some).ok_or_else(|| {
            jsonrpc_error(StatusCode::BAD_REQUEST, None, jsonrpc::INVALID_REQUEST, "Unsupported MCP-Protocol-Version")
        }),
    }
}

/// Finds the caller's session: 400 without a session header, 404 for an unknown, ended or
/// foreign session, 400 when the version header contradicts the negotiated version, 503 when
/// the shared store cannot answer.
#[allow(clippy::result_large_err, reason = "the error is the HTTP response itself, built only on the refusal path")]
async fn session_for(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    id: Option<&Id>,
) -> Result<(Arc<Session>, ProtocolVersion), Response> {
    let faults = &state.server.config().faults;
    // Fault `version-header-check`: invalid or unsupported values are ignored.
    let header_version = match version_header(headers) {
        Err(_) if faults.is_on("version-header-check") => None,
        r => r?,
    };
    // Fault `version-header-fallback`: a missing header is refused instead of tolerated.
    if header_version.is_none() && !headers.contains_key(VERSION_HEADER) && faults.is_on("version-header-fallback") {
        return Err(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            jsonrpc::INVALID_REQUEST,
            "Missing MCP-Protocol-Version",
        ));
    }
    // Faults `session-required` and `session-unknown-accepted`: a throwaway session is made up.
    let throwaway = || {
        let principal = caller.principal.clone();
        let version = header_version.unwrap_or(ProtocolVersion::LATEST);
        Ok((Arc::new(Session::new(version, principal, json!({}))), version))
    };
    let Some(session_id) = header_str(headers, SESSION_HEADER) else {
        if faults.is_on("session-required") {
            return throwaway();
        }
        return Err(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            jsonrpc::INVALID_REQUEST,
            "Missing Mcp-Session-Id header",
        ));
    };
    // Fault `unknown-session-404`: unknown and ended sessions get 400.
    let status = if faults.is_on("unknown-session-404") { StatusCode::BAD_REQUEST } else { StatusCode::NOT_FOUND };
    let not_found = || jsonrpc_error(status, id, -32001, "Session not found");
    let found = match state.server.find_session(session_id).await {
        Ok(found) => found,
        Err(e) => return Err(store_unavailable(id, &e)),
    };
    let Some(session) = found else {
        if faults.is_on("session-unknown-accepted") {
            return throwaway();
        }
        return Err(not_found());
    };
    // A session is bound to the principal that created it; anyone else cannot tell it exists.
    if caller.principal.id != session.principal.id {
        return Err(not_found());
    }
    // The negotiated version governs the session. A different but supported header value is
    // tolerated (the official suite sends 2025-03-26 on 2025-11-25 sessions); only invalid or
    // unsupported values are refused, as the spec requires.
    if let Some(v) = header_version
        && v != session.protocol_version
    {
        tracing::debug!(header = %v, negotiated = %session.protocol_version, "protocol version header differs from the session");
    }
    let version = session.protocol_version;
    if state.server.config().faults.security_off() {
        return Ok((session, version));
    }
    match state.server.rate_limits().admit_session(&session.id).await {
        Ok(()) => Ok((session, version)),
        Err(RateError::Limited(limited)) => {
            state.server.audit_limited(&limited, &session_label(&session.id));
            Err(too_many(id, &limited))
        }
        Err(RateError::Unavailable(e)) => Err(store_unavailable(id, &e)),
    }
}

async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    // Fault `body-limit`: bodies of any size are read.
    let max = if state.server.config().faults.is_on("body-limit") {
        usize::MAX
    } else {
        state.server.config().limits.max_body_bytes
    };
    let too_large =
        || jsonrpc_error(StatusCode::PAYLOAD_TOO_LARGE, None, jsonrpc::INVALID_REQUEST, "Request body too large");
    if header_str(headers, header::CONTENT_LENGTH.as_str())
        .and_then(|l| l.parse::<u64>().ok())
        .is_some_and(|l| l > max as u64)
    {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => {
            Err(jsonrpc_error(StatusCode::BAD_REQUEST, None, jsonrpc::PARSE_ERROR, "Could not read the request body"))
        }
    }
}

async fn post_mcp(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type_ok = header_str(&headers, header::CONTENT_TYPE.as_str())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !content_type_ok {
        return jsonrpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            jsonrpc::INVALID_REQUEST,
            "Content-Type must be application/json",
        );
    }
    if !(accepts(&headers, "application/json") && accepts(&headers, "text/event-stream")) {
        return jsonrpc_error(
            StatusCode::NOT_ACCEPTABLE,
            None,
            jsonrpc::INVALID_REQUEST,
            "Accept must include application/json and text/event-stream",
        );
    }
    let header_version = match version_header(&headers) {
        Ok(v) => v,
        Err(_) if state.server.config().faults.is_on("version-header-check") => None,
        Err(response) => return response,
    };
    let bytes = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    // The revision decides whether a batch is allowed: the session's, else the header's, else
    // 2025-03-26 (what the spec says to assume when nothing else tells). A session another
    // replica created is looked up in the shared store (the version of a session never changes,
    // so a local copy is good enough here; `session_for` re-checks it against the store).
    let session_version = match header_str(&headers, SESSION_HEADER) {
        None => None,
        Some(id) => match state.server.sessions().get(id) {
            Some(s) => Some(s.protocol_version),
            None => match state.server.find_session(id).await {
                Ok(found) => found.map(|s| s.protocol_version),
                Err(e) => return store_unavailable(None, &e),
            },
        },
    };
    let version = session_version.or(header_version).unwrap_or(ProtocolVersion::V2025_03_26);
    let faults = &state.server.config().faults;
    // Fault `null-id-rejection`: a null id is read as the string "null", so the request is served.
    let bytes = match std::str::from_utf8(&bytes) {
        Ok(text) if faults.is_on("null-id-rejection") => Bytes::from(text.replace("\"id\":null", "\"id\":\"null\"")),
        _ => bytes,
    };
    // Fault `batch-rejection`: batches are accepted whatever the revision.
    let allow_batch = version.allows_batches() || faults.is_on("batch-rejection");
    let incoming = match jsonrpc::parse(&bytes, state.server.parse_limits(), allow_batch) {
        Ok(incoming) => incoming,
        Err(mut rejection) => {
            // Fault `parse-error-code`: malformed JSON gets -32603 instead of -32700.
            if rejection.error.code == jsonrpc::PARSE_ERROR && faults.is_on("parse-error-code") {
                rejection.error.code = jsonrpc::INTERNAL_ERROR;
            }
            return json_response(StatusCode::BAD_REQUEST, &rejection.to_response());
        }
    };
    if let Err(refusal) = authorize_incoming(&state, &caller, &incoming) {
        return refuse(&state, &caller, &refusal);
    }
    match incoming {
        Incoming::Single(Message::Request(req)) if req.method == "initialize" => {
            initialize(&state, &headers, &caller, req).await
        }
        Incoming::Single(message) => {
            let id = match &message {
                Message::Request(r) => Some(r.id.clone()),
                _ => None,
            };
            let (session, version) = match session_for(&state, &headers, &caller, id.as_ref()).await {
                Ok(found) => found,
                Err(response) => return response,
            };
            handle_message(&state, session, version, message).await
        }
        Incoming::Batch(items) => {
            let (session, version) = match session_for(&state, &headers, &caller, None).await {
                Ok(found) => found,
                Err(response) => return response,
            };
            batch(&state, session, version, items).await
        }
    }
}

async fn initialize(state: &AppState, headers: &HeaderMap, caller: &Caller, req: jsonrpc::Request) -> Response {
    // A client-chosen session id is never adopted (no fixation); an already-live session
    // cannot be initialized twice.
    if header_str(headers, SESSION_HEADER).is_some_and(|id| state.server.sessions().get(id).is_some()) {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            Some(&req.id),
            jsonrpc::INVALID_REQUEST,
            "Session is already initialized",
        );
    }
    let (session, result) = match state.server.initialize(&req, caller.principal.clone()) {
        Ok(done) => done,
        Err(error) => return json_response(StatusCode::OK, &jsonrpc::error_response(Some(&req.id), &error)),
    };
    // Fault `session-fixation`: the id the client sent is adopted.
    let session =
        match header_str(headers, SESSION_HEADER).filter(|_| state.server.config().faults.is_on("session-fixation")) {
            Some(chosen) => match Arc::try_unwrap(session) {
                Ok(mut s) => {
                    s.id = chosen.to_owned();
                    Arc::new(s)
                }
                Err(s) => s,
            },
            None => session,
        };
    match state.server.open_session(&session).await {
        Ok(()) => {}
        Err(OpenSessionError::Store(e)) => return store_unavailable(Some(&req.id), &e),
        Err(OpenSessionError::Local(_)) => {
            return jsonrpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&req.id),
                jsonrpc::INTERNAL_ERROR,
                "Too many sessions; try again later",
            );
        }
    }
    let mut response = json_response(StatusCode::OK, &jsonrpc::result_response(&req.id, result));
    if let Ok(value) = HeaderValue::from_str(&session.id) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

async fn handle_message(
    state: &AppState,
    session: Arc<Session>,
    version: ProtocolVersion,
    message: Message,
) -> Response {
    match message {
        Message::Notification(n) => {
            state.server.handle_notification(&session, &n);
            // Fault `notification-202`: the notification is answered with 200 and a JSON-RPC body.
            if state.server.config().faults.is_on("notification-202") {
                return json_response(StatusCode::OK, &json!({ "jsonrpc": "2.0", "id": null, "result": {} }));
            }
            StatusCode::ACCEPTED.into_response()
        }
        Message::Response(r) => {
            if session.deliver_response(&r.id.to_json(), r.outcome) {
                StatusCode::ACCEPTED.into_response()
            } else {
                jsonrpc_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    jsonrpc::INVALID_REQUEST,
                    "No request with this id is pending",
                )
            }
        }
        Message::Request(req) => request(state, session, version, req).await,
    }
}

/// Runs a request. If it finishes before emitting anything, the answer is one JSON object;
/// as soon as it emits a notification or a server-to-client request, the answer becomes an
/// SSE stream that carries those messages and then the response.
async fn request(state: &AppState, session: Arc<Session>, version: ProtocolVersion, req: jsonrpc::Request) -> Response {
    let (tx, mut rx) = mpsc::channel::<Value>(32);
    let server = state.server.clone();
    let task_session = session.clone();
    let mut task = tokio::spawn(async move { server.handle_request(&task_session, req, tx, version).await });
    tokio::select! {
        biased;
        done = &mut task => match done {
            Ok(handled) if handled.unavailable => {
                let mut response = unavailable_response(None);
                *response.body_mut() = Body::from(handled.response.to_string());
                response
            }
            Ok(handled) => match &handled.limited {
                Some(limited) => {
                    let mut response = too_many(None, limited);
                    *response.body_mut() = Body::from(handled.response.to_string());
                    response
                }
                // Fault `response-content-type`: the JSON answer is labelled text/plain.
                None if state.server.config().faults.is_on("response-content-type") => {
                    let plain = [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))];
                    (StatusCode::OK, plain, handled.response.to_string()).into_response()
                }
                None => json_response(StatusCode::OK, &handled.response),
            },
            Err(_) => {
                tracing::error!("request handler failed");
                jsonrpc_error(StatusCode::INTERNAL_SERVER_ERROR, None, jsonrpc::INTERNAL_ERROR, "Internal error")
            }
        },
        Some(first) = rx.recv() => {
            // Fault `sse-event-ids`: every stream numbers its events from 1.
            if state.server.config().faults.is_on("sse-event-ids") {
                session.restart_event_ids();
            }
            sse::request_stream(session, first, rx, task)
        }
    }
}

async fn batch(
    state: &AppState,
    session: Arc<Session>,
    version: ProtocolVersion,
    items: Vec<Result<Message, jsonrpc::Rejection>>,
) -> Response {
    let mut responses = Vec::new();
    for item in items {
        match item {
            Err(rejection) => responses.push(rejection.to_response()),
            Ok(Message::Request(req)) if req.method == "initialize" => {
                let error = jsonrpc::ErrorObject::new(jsonrpc::INVALID_REQUEST, "initialize cannot be batched");
                responses.push(jsonrpc::error_response(Some(&req.id), &error));
            }
            Ok(Message::Request(req)) => {
                // Messages a batched request emits have no stream to travel on; they are dropped.
                let (tx, _rx) = mpsc::channel(32);
                responses.push(state.server.handle_request(&session, req, tx, version).await.response);
            }
            Ok(Message::Notification(n)) => state.server.handle_notification(&session, &n),
            Ok(Message::Response(r)) => {
                session.deliver_response(&r.id.to_json(), r.outcome);
            }
        }
    }
    if responses.is_empty() {
        StatusCode::ACCEPTED.into_response()
    } else {
        json_response(StatusCode::OK, &Value::Array(responses))
    }
}

async fn get_mcp(State(state): State<AppState>, Extension(caller): Extension<Caller>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize_transport(&state, &caller, "GET /mcp") {
        return refused;
    }
    if !accepts(&headers, "text/event-stream") {
        return jsonrpc_error(
            StatusCode::NOT_ACCEPTABLE,
            None,
            jsonrpc::INVALID_REQUEST,
            "Accept must include text/event-stream",
        );
    }
    let (session, _) = match session_for(&state, &headers, &caller, None).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let faults = &state.server.config().faults;
    // Fault `get-stream`: a JSON body instead of an SSE stream or 405.
    if faults.is_on("get-stream") {
        return json_response(StatusCode::OK, &json!({ "jsonrpc": "2.0", "id": null, "result": {} }));
    }
    // Fault `sse-event-ids`: every stream numbers its events from 1.
    if faults.is_on("sse-event-ids") {
        session.restart_event_ids();
    }
    match session.take_standalone() {
        Some(rx) => sse::standalone_stream(session, rx),
        None => jsonrpc_error(StatusCode::CONFLICT, None, jsonrpc::INVALID_REQUEST, "Only one GET stream per session"),
    }
}

async fn delete_mcp(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize_transport(&state, &caller, "DELETE /mcp") {
        return refused;
    }
    let (session, _) = match session_for(&state, &headers, &caller, None).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    // Fault `session-delete`: the answer says ended, the session lives on.
    if !state.server.config().faults.is_on("session-delete")
        && let Err(e) = state.server.close_session(&session, "deleted by client").await
    {
        return store_unavailable(None, &e);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Adapts an mpsc receiver of SSE chunks into a response body.
fn body_from(rx: mpsc::Receiver<Bytes>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Body::from_stream(stream)
}
