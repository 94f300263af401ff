//! Request guards that run before any MCP handling: Host and Origin validation (DNS
//! rebinding), CORS preflight, and the security headers every response carries.

use std::collections::HashSet;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};

use super::{AppState, jsonrpc_error};

/// Which `Host` and `Origin` values are accepted.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    hosts: HashSet<String>,
    origins: HashSet<String>,
}

const LOOPBACK_NAMES: [&str; 4] = ["localhost", "127.0.0.1", "[::1]", "::1"];

impl OriginPolicy {
    /// Loopback names and the server's own origins are always accepted on a loopback bind;
    /// everything else must be configured.
    pub fn new(bound: SocketAddr, tls: bool, extra_hosts: &[String], extra_origins: &[String]) -> Self {
        let mut hosts: HashSet<String> = extra_hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        let mut origins: HashSet<String> =
            extra_origins.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect();
        let scheme = if tls { "https" } else { "http" };
        if bound.ip().is_loopback() {
            hosts.extend(LOOPBACK_NAMES.iter().map(|s| (*s).to_owned()));
            for name in ["localhost", "127.0.0.1", "[::1]"] {
                origins.insert(format!("{scheme}://{name}:{}", bound.port()));
            }
        } else {
            for host in extra_hosts {
                origins.insert(format!("{scheme}://{}:{}", host.to_ascii_lowercase(), bound.port()));
            }
        }
        Self { hosts, origins }
    }

    /// Whether a `Host` header names this server. The port is not compared: a rebinding
    /// attacker controls the name, not the port.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let name = if host.starts_with('[') {
            match host.find(']') {
                Some(end) => &host[..=end],
                None => return false,
            }
        } else {
            host.rsplit_once(':')
                .map_or(host.as_str(), |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { "" })
        };
        !name.is_empty() && self.hosts.contains(name)
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.origins.contains(&origin.trim_end_matches('/').to_ascii_lowercase())
    }
}

/// Refuses requests whose Host does not name this server (DNS rebinding), on every route: the
/// refusal to send, if any.
pub fn foreign_host_refusal(state: &AppState, request: &Request) -> Option<Response> {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    match host {
        Some(h) if state.origins.host_allowed(h) => {}
        // Fault `host-check`: any Host is served (no DNS-rebinding guard).
        Some(_) if state.server.config().faults.is_on("host-check") => {}
        _ => {
            tracing::warn!("refused request with a foreign Host header");
            return Some(jsonrpc_error(StatusCode::MISDIRECTED_REQUEST, None, -32600, "Invalid Host header"));
        }
    }
    None
}

/// Refuses MCP requests whose Origin is present and not this server's; answers CORS preflights;
/// otherwise runs `inner` and adds CORS headers for an allowed Origin.
pub async fn check_origin<F, Fut>(state: &AppState, request: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let headers = request.headers();
    let origin = match headers.get(header::ORIGIN) {
        None => None,
        Some(value) => match value.to_str() {
            Ok(o) if state.origins.origin_allowed(o) => Some(value.clone()),
            // Faults `origin-check` (any Origin is served) and `origin-null` (the opaque `null` is).
            Ok(_) if state.server.config().faults.is_on("origin-check") => None,
            Ok("null") if state.server.config().faults.is_on("origin-null") => None,
            _ => {
                tracing::warn!("refused request with a foreign Origin header");
                // The spec's shape for this refusal: a JSON-RPC error with no id member at all.
                let body = serde_json::json!({ "jsonrpc": "2.0", "error": { "code": -32600, "message": "Origin not allowed" } });
                let mut response = (StatusCode::FORBIDDEN, body.to_string()).into_response();
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                return response;
            }
        },
    };
    if request.method() == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return preflight(origin, headers);
    }
    let mut response = inner(request).await;
    if let Some(origin) = origin {
        add_cors(response.headers_mut(), origin);
    }
    response
}

const ALLOWED_HEADERS: &str =
    "content-type, accept, authorization, x-api-key, mcp-session-id, mcp-protocol-version, last-event-id";
const EXPOSED_HEADERS: &str = "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate";

fn preflight(origin: Option<HeaderValue>, headers: &HeaderMap) -> Response {
    let Some(origin) = origin else {
        return (StatusCode::FORBIDDEN, Body::empty()).into_response();
    };
    let method_ok = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| matches!(m, "GET" | "POST" | "DELETE"));
    if !method_ok {
        return (StatusCode::FORBIDDEN, Body::empty()).into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    add_cors(h, origin);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, DELETE"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// CORS for an allowed origin: the exact origin is echoed (never `*`), and the MCP headers
/// are exposed to browser clients.
fn add_cors(h: &mut HeaderMap, origin: HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Headers every response carries, whatever produced it.
pub async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let faults = &state.server.config().faults;
    // Fault `cors-policy`: a wildcard CORS policy (with credentials) for any Origin, preflights included.
    let wildcard_cors = faults.is_on("cors-policy") && request.headers().contains_key(header::ORIGIN);
    let wildcard_preflight = wildcard_cors
        && request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response =
        if wildcard_preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(request).await };
    let h = response.headers_mut();
    if !faults.is_on("header-nosniff") {
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }
    if !faults.is_on("header-frame-options") {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if !faults.is_on("header-csp") {
        let csp = if faults.is_on("header-frame-options") {
            "default-src 'none'"
        } else {
            "default-src 'none'; frame-ancestors 'none'"
        };
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    }
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.tls && !faults.is_on("header-hsts") {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    }
    h.remove(header::SERVER);
    h.remove(HeaderName::from_static("x-powered-by"));
    if faults.is_on("server-header") {
        h.insert(header::SERVER, HeaderValue::from_static(concat!("mcproof-server/", env!("CARGO_PKG_VERSION"))));
        h.insert(HeaderName::from_static("x-powered-by"), HeaderValue::from_static("axum/0.8.9"));
    }
    if wildcard_cors {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        if wildcard_preflight {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, DELETE"));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_policy_accepts_own_names_and_origins_only() {
        let p = OriginPolicy::new(SocketAddr::from(([127, 0, 0, 1], 4000)), false, &[], &[]);
        for ok in ["127.0.0.1:4000", "localhost:4000", "localhost", "[::1]:4000", "LOCALHOST:9"] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in ["evil.example.com", "evil.example.com:4000", "127.0.0.1.evil.com", "localhost:abc", "[::1", ""] {
            assert!(!p.host_allowed(bad), "{bad}");
        }
        assert!(p.origin_allowed("http://127.0.0.1:4000"));
        assert!(p.origin_allowed("http://localhost:4000/"));
        for bad in ["http://evil.example.com", "null", "http://127.0.0.1:4001", "https://127.0.0.1:4000"] {
            assert!(!p.origin_allowed(bad), "{bad}");
        }
    }
}
