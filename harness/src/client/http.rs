//! Streamable HTTP client with full control over headers and bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderMap, Method};
use serde_json::{Value, json};

use super::sse::{SseEvent, SseParser};
use super::{ClientLimits, is_response_to, messages_of, parse_json};
use crate::evidence::{Exchange, RequestRecord, ResponseRecord, excerpt, redact_header, redact_text};
use crate::target::HttpTarget;

/// The revision the harness asks for first.
pub const PREFERRED_REVISION: &str = "2025-11-25";

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid TLS material in {path}: {message}")]
    Tls { path: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A request to send. By default the MCP headers (`Content-Type`, `Accept`, session and
/// version) are added; `raw` leaves the headers exactly as given.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub label: String,
    pub method: Method,
    /// A path (with query) to use instead of the endpoint's, e.g. `/.env`.
    pub path: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Header names to leave out even if they would be added by default.
    pub without: Vec<String>,
    pub body: Option<Vec<u8>>,
    pub raw: bool,
    /// For POSTs answered with SSE: stop reading once the response to this id has arrived.
    pub until_response_to: Option<Value>,
    /// Stop reading an SSE stream after this long (for GET streams).
    pub stream_for: Option<Duration>,
    /// Do not follow redirects (always true: redirects are evidence).
    pub session: Option<String>,
    pub version: Option<String>,
}

impl HttpRequest {
    pub fn new(label: impl Into<String>, method: Method) -> Self {
        Self {
            label: label.into(),
            method,
            path: None,
            headers: Vec::new(),
            without: Vec::new(),
            body: None,
            raw: false,
            until_response_to: None,
            stream_for: None,
            session: None,
            version: None,
        }
    }

    /// A POST of a JSON value; waits for the response to its `id` if it has one.
    pub fn post(label: impl Into<String>, body: &Value) -> Self {
        let mut req = Self::new(label, Method::POST);
        req.until_response_to = body.get("id").cloned();
        req.body = Some(body.to_string().into_bytes());
        req
    }

    /// A POST of raw bytes.
    pub fn post_bytes(label: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        let mut req = Self::new(label, Method::POST);
        req.body = Some(body.into());
        req
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.without.push(name.to_ascii_lowercase());
        self
    }

    pub fn in_session(mut self, session: &McpSession) -> Self {
        self.session = session.id.clone();
        self.version = Some(session.version.clone());
        self
    }

    pub fn at_path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    pub fn raw(mut self) -> Self {
        self.raw = true;
        self
    }
}

/// What came back, parsed as far as it safely could be, plus the evidence record.
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    pub exchange: Exchange,
    /// `None` when no response arrived (refused, timed out, TLS failure).
    pub status: Option<u16>,
    pub headers: HeaderMap,
    /// The body as read (at most `max_body` bytes).
    pub body: Bytes,
    pub truncated: bool,
    /// The read stopped at the deadline (normal for GET streams).
    pub timed_out: bool,
    /// SSE events, when the body was an event stream.
    pub events: Vec<SseEvent>,
    /// JSON-RPC messages from the JSON body or from the SSE events' data.
    pub messages: Vec<Value>,
    /// The transport error, if the exchange failed.
    pub error: Option<String>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> Option<String> {
        self.header("content-type").map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    pub fn is_sse(&self) -> bool {
        self.content_type().as_deref() == Some("text/event-stream")
    }

    /// The response message to request `id`, if one arrived.
    pub fn response_to(&self, id: &Value) -> Option<&Value> {
        self.messages.iter().find(|m| is_response_to(m, id))
    }

    /// The first JSON-RPC message, usually the only one.
    pub fn message(&self) -> Option<&Value> {
        self.messages.first()
    }

    /// `error.code` of the first message that has one.
    pub fn error_code(&self) -> Option<i64> {
        self.messages.iter().find_map(|m| m.get("error")?.get("code")?.as_i64())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn status_in(&self, range: std::ops::RangeInclusive<u16>) -> bool {
        self.status.is_some_and(|s| range.contains(&s))
    }
}

/// An MCP session as the client sees it.
#[derive(Debug, Clone)]
pub struct McpSession {
    /// `Mcp-Session-Id`, if the server issued one.
    pub id: Option<String>,
    /// The negotiated revision.
    pub version: String,
    /// The `InitializeResult`.
    pub result: Value,
}

/// A client for one Streamable HTTP endpoint. Clones share the connection pool and the
/// [`Health`] record.
#[derive(Debug, Clone)]
pub struct HttpClient {
    target: HttpTarget,
    client: reqwest::Client,
    limits: ClientLimits,
    health: Arc<Health>,
}

/// How often the target answered at all: requests that got a status line versus requests that
/// got nothing before the timeout. A target that answers `initialize` and then nothing else
/// would otherwise make every check wait out every timeout.
#[derive(Debug, Default)]
pub struct Health {
    answered: AtomicU64,
    silent: AtomicU64,
}

/// Silent requests needed before the target is judged to have stopped answering…
const SILENT_MIN: u64 = 8;
/// …and how many times the answered ones they must outnumber.
const SILENT_RATIO: u64 = 2;

impl Health {
    /// Requests answered with a status line, and requests that timed out without one.
    pub fn counts(&self) -> (u64, u64) {
        (self.answered.load(Ordering::Relaxed), self.silent.load(Ordering::Relaxed))
    }

    /// `Some(why)` once most requests go unanswered (at least [`SILENT_MIN`] timed out, and
    /// [`SILENT_RATIO`] times as many as were answered).
    pub fn stopped_answering(&self, timeout: Duration) -> Option<String> {
        let (answered, silent) = self.counts();
        (silent >= SILENT_MIN && silent >= SILENT_RATIO * answered).then(|| {
            format!(
                "the target stopped answering: {silent} of {} requests got no response within {} s",
                silent + answered,
                timeout.as_secs_f64()
            )
        })
    }
}

/// The `initialize` request the harness sends.
pub fn initialize_body(id: u64, version: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": { "name": "mcproof", "version": env!("CARGO_PKG_VERSION") },
        },
    })
}

impl HttpClient {
    pub fn new(target: HttpTarget, limits: ClientLimits) -> Result<Self, BuildError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(limits.timeout)
            .pool_max_idle_per_host(4)
            .user_agent(concat!("mcproof/", env!("CARGO_PKG_VERSION")));
        if target.insecure_tls {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(path) = &target.ca_cert {
            let pem =
                std::fs::read(path).map_err(|source| BuildError::Read { path: path.display().to_string(), source })?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| BuildError::Tls { path: path.display().to_string(), message: e.to_string() })?;
            builder = builder.add_root_certificate(cert);
        }
        if let Some(path) = &target.client_cert {
            let pem =
                std::fs::read(path).map_err(|source| BuildError::Read { path: path.display().to_string(), source })?;
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| BuildError::Tls { path: path.display().to_string(), message: e.to_string() })?;
            builder = builder.identity(identity);
        }
        let client = builder.build().map_err(|e| BuildError::Client(e.to_string()))?;
        Ok(Self { target, client, limits, health: Arc::default() })
    }

    pub fn target(&self) -> &HttpTarget {
        &self.target
    }

    pub fn url(&self) -> &url::Url {
        &self.target.url
    }

    pub fn limits(&self) -> ClientLimits {
        self.limits
    }

    /// Whether the target still answers (shared by every clone of this client).
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The target's origin, `scheme://host:port`.
    pub fn origin(&self) -> String {
        self.target.url.origin().ascii_serialization()
    }

    /// Sends a request and reads the answer within the limits. Never fails: transport errors
    /// are part of the returned evidence.
    pub async fn send(&self, req: HttpRequest) -> HttpResponse {
        let started = Instant::now();
        let mut url = self.target.url.clone();
        if let Some(path) = &req.path {
            match url.join(path) {
                Ok(u) => url = u,
                Err(e) => return failed(&req, url.as_str(), format!("bad path: {e}"), started),
            }
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        if !req.raw {
            if req.method == Method::POST {
                headers.push(("content-type".into(), "application/json".into()));
                headers.push(("accept".into(), "application/json, text/event-stream".into()));
            } else if req.method == Method::GET {
                headers.push(("accept".into(), "text/event-stream".into()));
            }
            if let Some(s) = &req.session {
                headers.push(("mcp-session-id".into(), s.clone()));
            }
            if let Some(v) = &req.version {
                headers.push(("mcp-protocol-version".into(), v.clone()));
            }
            headers.extend(self.target.headers.iter().cloned());
            if let Some(token) = &self.target.bearer {
                headers.push(("authorization".into(), format!("Bearer {token}")));
            }
            if let Some(key) = &self.target.api_key {
                headers.push(("x-api-key".into(), key.clone()));
            }
        }
        for (name, value) in &req.headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.clone()));
        }
        headers.retain(|(n, _)| !req.without.contains(&n.to_ascii_lowercase()));

        let record = RequestRecord {
            method: req.method.to_string(),
            target: url.to_string(),
            // Values of operator-supplied headers (`--header`) may be credentials under any name.
            headers: headers
                .iter()
                .map(|(n, v)| {
                    let operator = self.target.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
                    let shown = if operator && !req.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n)) {
                        "[REDACTED]".to_owned()
                    } else {
                        redact_header(n, v)
                    };
                    (n.clone(), shown)
                })
                .collect(),
            body: req.body.as_deref().map(|b| excerpt(b).0).unwrap_or_default(),
        };
        let mut builder = self.client.request(req.method.clone(), url.clone());
        for (name, value) in &headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let deadline = started + self.limits.timeout;
        let sent = tokio::time::timeout_at(deadline.into(), builder.send()).await;
        let response = match sent {
            Err(_) => {
                self.health.silent.fetch_add(1, Ordering::Relaxed);
                return failed_with(record, &req, "timed out waiting for the response headers".into(), started);
            }
            Ok(Err(e)) => {
                if e.is_timeout() {
                    self.health.silent.fetch_add(1, Ordering::Relaxed);
                }
                return failed_with(record, &req, describe_reqwest_error(&e), started);
            }
            Ok(Ok(r)) => r,
        };
        self.health.answered.fetch_add(1, Ordering::Relaxed);
        let status = response.status().as_u16();
        let resp_headers = response.headers().clone();
        let is_sse = resp_headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"));
        let read_deadline = match req.stream_for {
            Some(d) => (Instant::now() + d).min(deadline),
            None => deadline,
        };
        let mut body = Vec::new();
        let mut truncated = false;
        let mut timed_out = false;
        let mut events = Vec::new();
        let mut messages = Vec::new();
        let mut parser = SseParser::new(self.limits.max_body);
        let mut stream = response.bytes_stream();
        let mut error = None;
        loop {
            let next = tokio::time::timeout_at(read_deadline.into(), stream.next()).await;
            let chunk = match next {
                Err(_) => {
                    timed_out = true;
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    error = Some(format!("body read failed: {}", describe_reqwest_error(&e)));
                    break;
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            let room = self.limits.max_body.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
            if is_sse {
                for event in parser.push(&chunk) {
                    if let Some(v) = parse_json(event.data.as_bytes(), self.limits.max_depth) {
                        messages.extend(messages_of(v));
                    }
                    events.push(event);
                }
                if req.until_response_to.as_ref().is_some_and(|id| messages.iter().any(|m| is_response_to(m, id))) {
                    break;
                }
            }
        }
        if !is_sse
            && !truncated
            && let Some(v) = parse_json(&body, self.limits.max_depth)
        {
            messages = messages_of(v);
        }
        let (text, cut) = excerpt(&body);
        let exchange = Exchange {
            label: req.label.clone(),
            request: record,
            response: Some(ResponseRecord {
                status,
                headers: resp_headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), redact_header(n.as_str(), &String::from_utf8_lossy(v.as_bytes()))))
                    .collect(),
                body: text,
                truncated: cut || truncated,
            }),
            elapsed_ms: elapsed_ms(started),
            error: error.clone(),
        };
        HttpResponse {
            exchange,
            status: Some(status),
            headers: resp_headers,
            body: Bytes::from(body),
            truncated,
            timed_out,
            events,
            messages,
            error,
        }
    }

    /// `initialize` with `version`, then `notifications/initialized`. Returns the session and
    /// the initialize exchange either way.
    pub async fn initialize(&self, version: &str) -> (Result<McpSession, String>, HttpResponse) {
        let body = initialize_body(0, version);
        let response = self.send(HttpRequest::post(format!("initialize ({version})"), &body)).await;
        let Some(message) = response.response_to(&json!(0)) else {
            let why = match (&response.error, response.status) {
                (Some(e), _) => e.clone(),
                (None, Some(s)) => format!("no JSON-RPC response to initialize (HTTP {s})"),
                (None, None) => "no response".into(),
            };
            return (Err(why), response);
        };
        let Some(result) = message.get("result").cloned() else {
            return (Err("initialize was answered with an error".into()), response);
        };
        let negotiated = result.get("protocolVersion").and_then(Value::as_str).unwrap_or(version).to_owned();
        let session =
            McpSession { id: response.header("mcp-session-id").map(str::to_owned), version: negotiated, result };
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let _ = self.send(HttpRequest::post("notifications/initialized", &note).in_session(&session)).await;
        (Ok(session), response)
    }

    /// A request in `session`.
    pub async fn request(&self, session: &McpSession, id: u64, method: &str, params: Value) -> HttpResponse {
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.send(HttpRequest::post(method, &body).in_session(session)).await
    }

    /// `DELETE` of `session`.
    pub async fn delete(&self, session: &McpSession) -> HttpResponse {
        self.send(HttpRequest::new("DELETE session", Method::DELETE).in_session(session)).await
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn failed(req: &HttpRequest, url: &str, error: String, started: Instant) -> HttpResponse {
    let record = RequestRecord {
        method: req.method.to_string(),
        target: url.to_owned(),
        headers: Vec::new(),
        body: String::new(),
    };
    failed_with(record, req, error, started)
}

fn failed_with(record: RequestRecord, req: &HttpRequest, error: String, started: Instant) -> HttpResponse {
    let error = redact_text(&error);
    HttpResponse {
        exchange: Exchange {
            label: req.label.clone(),
            request: record,
            response: None,
            elapsed_ms: elapsed_ms(started),
            error: Some(error.clone()),
        },
        error: Some(error),
        ..HttpResponse::default()
    }
}

/// A one-line cause for a transport failure (reqwest's Display hides the interesting part).
fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_connect() {
        format!("connection failed: {text}")
    } else if e.is_timeout() {
        format!("timed out: {text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_stops_answering_only_when_most_requests_time_out() {
        let health = Health::default();
        let timeout = Duration::from_secs(2);
        assert!(health.stopped_answering(timeout).is_none());
        health.answered.store(3, Ordering::Relaxed);
        health.silent.store(7, Ordering::Relaxed);
        assert!(health.stopped_answering(timeout).is_none(), "fewer than SILENT_MIN");
        health.silent.store(8, Ordering::Relaxed);
        let why = health.stopped_answering(timeout).expect("8 silent, 3 answered");
        assert!(why.contains("8 of 11 requests"), "{why}");
        health.answered.store(5, Ordering::Relaxed);
        assert!(health.stopped_answering(timeout).is_none(), "answered requests are not outnumbered twice");
    }
}
