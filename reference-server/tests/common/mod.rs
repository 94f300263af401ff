//! Shared helpers for the reference server's integration tests.
//!
//! * [`start`] / [`start_tls`] run the server in-process on `127.0.0.1:0` and return its URL,
//!   with authentication on (`required`) and an API key ([`TestServer::api_key`]) that
//!   [`TestServer::client`] sends on every request: the core behaviour is tested as a real,
//!   authenticated client sees it. [`start_as_configured`] leaves the auth settings alone.
//! * [`Mcp`] is a small Streamable HTTP client: it adds the headers a well-behaved client sends
//!   (`Content-Type`, `Accept`, `Mcp-Session-Id`, `MCP-Protocol-Version`), and every header can be
//!   replaced or removed per request so tests can send exactly the malformed request they need.
//! * [`Reply`] holds a whole response; [`parse_sse`] splits an event stream into events.
//! * [`Failures`] collects mismatches of a table-driven test and asserts once at the end with
//!   every failure listed (the style of regex's test runner).
//!
//! Every network wait is bounded ([`TIMEOUT`]); only loopback addresses are used.
#![allow(dead_code)] // reason: each test binary uses a different subset of these helpers
#![allow(clippy::unwrap_used)] // reason: test helpers; a panic is the failure report

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub use mcproof_server::auth::AuthPolicy;
use mcproof_server::auth::api_keys::{ApiKeyStore, KeyTier};
pub use mcproof_server::config::{Config, Profile};
use mcproof_server::http::listener::{self, ConnLimits};
use mcproof_server::server::McpServer;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

/// Upper bound on every network wait in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The `Accept` value a conforming client sends on POST.
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";
pub const LATEST: &str = "2025-11-25";
/// Text planted in bad inputs; it must never come back in a response.
pub const CANARY: &str = "CANARY-7f3a9c";
/// The server binary, for tests that run it as a process.
pub const SERVER_BIN: &str = env!("CARGO_BIN_EXE_mcproof-server");
/// The principal of the API key [`start`] creates.
pub const TEST_PRINCIPAL: &str = "test-client";
/// The scopes of that key: everything but `mcp:admin`.
pub const TEST_SCOPES: [&str; 2] = ["mcp:read", "mcp:write"];

/// A server running in-process; stopped when dropped.
pub struct TestServer {
    pub server: McpServer,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT` for TLS).
    pub base: String,
    /// `{base}/mcp`.
    pub url: String,
    /// The server's own origin, `http://127.0.0.1:PORT`.
    pub origin: String,
    /// The API key [`start`] made for [`TEST_PRINCIPAL`] (`None` from [`start_as_configured`]).
    pub api_key: Option<String>,
    task: tokio::task::JoinHandle<()>,
    /// Holds the key store file for the server's lifetime.
    _keys_dir: Option<tempfile::TempDir>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A client for this server (no session yet) that sends the default credential, if any.
    pub fn client(&self) -> Mcp {
        self.client_on(http_client(), &self.url)
    }

    /// A client on `http` for `url` that sends the default credential, if any.
    pub fn client_on(&self, http: reqwest::Client, url: &str) -> Mcp {
        let client = Mcp::new(http, url);
        match &self.api_key {
            Some(key) => client.with_bearer(key),
            None => client,
        }
    }

    /// A client that sends no credential at all.
    pub fn anonymous_client(&self) -> Mcp {
        Mcp::new(http_client(), &self.url)
    }

    /// The default credential as a header line to append to a [`raw_http`] head
    /// (`\r\nAuthorization: Bearer …`), or an empty string when there is none.
    pub fn auth_line(&self) -> String {
        self.api_key.as_ref().map(|k| format!("\r\nAuthorization: Bearer {k}")).unwrap_or_default()
    }
}

/// Spawns [`SERVER_BIN`] `--listen 127.0.0.1:0 <args>` (no `MCPROOF_CONFIG`, stdout piped,
/// stderr discarded, killed when dropped) and returns it with its banner line
/// (`listening on <url>`).
pub async fn spawn_server(args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(SERVER_BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("MCPROOF_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let banner = tokio::time::timeout(TIMEOUT, lines.next_line()).await.expect("banner").expect("read").expect("line");
    (child, banner)
}

/// Starts the server with `config` on a fresh loopback port (plain HTTP), with authentication
/// on (see [`with_test_key`]).
pub async fn start(config: Config) -> TestServer {
    let (config, key, dir) = with_test_key(config);
    start_inner(config, None, Some(key), Some(dir)).await
}

/// Starts the server with `config` exactly as given (the default policy is `public`, auth off).
pub async fn start_as_configured(config: Config) -> TestServer {
    start_inner(config, None, None, None).await
}

/// Starts the server with `config` over TLS with the given PEM files, with authentication on
/// (see [`with_test_key`]).
pub async fn start_tls(config: Config, cert: &Path, key: &Path) -> TestServer {
    let acceptor = listener::tls_acceptor(cert, key).expect("TLS acceptor from the test certificate");
    let (config, api_key, dir) = with_test_key(config);
    start_inner(config, Some(acceptor), Some(api_key), Some(dir)).await
}

/// Turns authentication on: a `public` policy becomes `required` (`public-tier` is kept), and
/// an API key for [`TEST_PRINCIPAL`] with [`TEST_SCOPES`] is put in a fresh key store (which
/// replaces any configured one). Returns the key and the directory holding the store.
pub fn with_test_key(mut config: Config) -> (Config, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory for the key store");
    let path = dir.path().join("api-keys.json");
    let mut store = ApiKeyStore::load(&path).expect("a new key store");
    let (key, _) = store
        .create(TEST_PRINCIPAL, &TEST_SCOPES, KeyTier::Authenticated, std::time::SystemTime::now())
        .expect("create the test API key");
    if config.auth.policy == AuthPolicy::Public {
        config.auth.policy = AuthPolicy::Required;
    }
    config.auth.api_keys_file = Some(path);
    (config, key.expose_secret().to_owned(), dir)
}

/// Serves an already built `server` on an already bound loopback listener (plain HTTP), for
/// tests that need the address before the configuration (several replicas of one deployment).
pub fn serve_on(server: McpServer, tcp: tokio::net::TcpListener) -> TestServer {
    serve_inner(server, tcp, None, None, None)
}

async fn start_inner(
    config: Config,
    tls: Option<tokio_rustls::TlsAcceptor>,
    api_key: Option<String>,
    keys_dir: Option<tempfile::TempDir>,
) -> TestServer {
    let server = McpServer::new(config).expect("the test configuration is valid");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    serve_inner(server, tcp, tls, api_key, keys_dir)
}

fn serve_inner(
    server: McpServer,
    tcp: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    api_key: Option<String>,
    keys_dir: Option<tempfile::TempDir>,
) -> TestServer {
    let addr = tcp.local_addr().expect("local address");
    let limits = ConnLimits {
        max_connections: server.config().limits.max_connections,
        header_read_timeout: Duration::from_millis(server.config().limits.header_read_timeout_ms),
    };
    let is_tls = tls.is_some();
    let app = mcproof_server::http::app(server.clone(), addr, is_tls);
    let task = tokio::spawn(listener::serve(tcp, app, tls, limits));
    let (base, origin) = if is_tls {
        (format!("https://localhost:{}", addr.port()), format!("https://localhost:{}", addr.port()))
    } else {
        (format!("http://127.0.0.1:{}", addr.port()), format!("http://127.0.0.1:{}", addr.port()))
    };
    TestServer { server, addr, url: format!("{base}/mcp"), base, origin, api_key, task, _keys_dir: keys_dir }
}

/// The standard profile with defaults.
pub fn standard() -> Config {
    Config::default()
}

/// The conformance profile (fixture tools that emit notifications).
pub fn conformance() -> Config {
    Config { profile: Profile::Conformance, ..Config::default() }
}

/// A reqwest client with bounded waits and no proxy.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(TIMEOUT).connect_timeout(TIMEOUT).no_proxy().build().expect("reqwest client")
}

/// A whole HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = tokio::time::timeout(TIMEOUT, response.bytes())
            .await
            .expect("response body within the timeout")
            .expect("response body")
            .to_vec();
        Self { status, headers, body }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn content_type(&self) -> String {
        self.header("content-type").unwrap_or_default()
    }

    pub fn is_sse(&self) -> bool {
        self.content_type().starts_with("text/event-stream")
    }

    /// The body as JSON, if it is JSON.
    pub fn try_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as JSON; panics with the whole reply otherwise.
    pub fn json(&self) -> Value {
        self.try_json().unwrap_or_else(|| panic!("expected a JSON body, got {}", self.describe()))
    }

    /// The SSE events of an event-stream body.
    pub fn events(&self) -> Vec<SseEvent> {
        parse_sse(&self.text())
    }

    /// The JSON-RPC response carried by this reply: the JSON body, or the response
    /// (an object with `result` or `error`) among the SSE events.
    pub fn message(&self) -> Value {
        if self.is_sse() {
            self.events()
                .iter()
                .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
                .find(|m| m.get("result").is_some() || m.get("error").is_some())
                .unwrap_or_else(|| panic!("no JSON-RPC response in the event stream: {}", self.describe()))
        } else {
            self.json()
        }
    }

    /// `error.code` of the JSON-RPC message in the body, if any.
    pub fn error_code(&self) -> Option<i64> {
        let body = if self.is_sse() { Some(self.message()) } else { self.try_json() };
        body.and_then(|b| b.pointer("/error/code").and_then(Value::as_i64))
    }

    /// Status, content type, a few headers and a body excerpt, for failure messages.
    pub fn describe(&self) -> String {
        let text = self.text();
        let excerpt: String = text.chars().take(600).collect();
        format!("HTTP {} content-type={:?} body={:?}", self.status, self.content_type(), excerpt)
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub retry: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// Whether any `data:` line was present (distinguishes empty data from none).
    pub has_data: bool,
}

/// Splits an event stream into events (comments skipped, `\r\n` accepted). A block with at
/// least one field is an event, even if its data is empty (the priming event).
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let mut current = SseEvent::default();
    let mut any = false;
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.split('\n') {
        if line.is_empty() {
            if any {
                events.push(std::mem::take(&mut current));
                any = false;
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        any = true;
        match field {
            "id" => current.id = Some(value.to_owned()),
            "event" => current.event = Some(value.to_owned()),
            "retry" => current.retry = Some(value.to_owned()),
            "data" => {
                if current.has_data {
                    current.data.push('\n');
                }
                current.data.push_str(value);
                current.has_data = true;
            }
            _ => {}
        }
    }
    if any {
        events.push(current);
    }
    events
}

/// Reads a streaming response until it holds `n` complete SSE events (or panics after
/// [`TIMEOUT`]); returns them and drops nothing else.
pub async fn read_events(response: &mut reqwest::Response, n: usize) -> Vec<SseEvent> {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let complete = text.replace("\r\n", "\n").matches("\n\n").count();
        if complete >= n {
            let events = parse_sse(&text);
            if events.len() >= n {
                return events;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {n} SSE events within {TIMEOUT:?}; got {text:?}"))
            .expect("reading the event stream");
        match chunk {
            Some(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
            None => panic!("event stream ended before {n} events; got {text:?}"),
        }
    }
}

/// A header change for one request: `Some(value)` sets it, `None` removes it.
pub type Hdr<'a> = (&'a str, Option<&'a str>);

/// A Streamable HTTP client for one session.
#[derive(Clone)]
pub struct Mcp {
    pub http: reqwest::Client,
    pub url: String,
    /// Sent as `Mcp-Session-Id` when set.
    pub session: Option<String>,
    /// Sent as `MCP-Protocol-Version` when set (after `initialize`, the negotiated version).
    pub version: Option<String>,
    /// A credential header (lowercase name, value) sent on every request when set; a request's
    /// own headers can still replace or remove it.
    pub credential: Option<(String, String)>,
    next_id: Arc<AtomicI64>,
}

impl Mcp {
    /// A client without a credential.
    pub fn new(http: reqwest::Client, url: &str) -> Self {
        Self {
            http,
            url: url.to_owned(),
            session: None,
            version: None,
            credential: None,
            next_id: Arc::new(AtomicI64::new(1)),
        }
    }

    /// Sends `Authorization: Bearer <token>` (a JWT or an `mcp_sk_` API key) on every request.
    pub fn with_bearer(mut self, token: &str) -> Self {
        self.credential = Some(("authorization".into(), format!("Bearer {token}")));
        self
    }

    /// Sends `X-API-Key: <key>` on every request.
    pub fn with_api_key(mut self, key: &str) -> Self {
        self.credential = Some(("x-api-key".into(), key.to_owned()));
        self
    }

    /// Sends no credential.
    pub fn without_credential(mut self) -> Self {
        self.credential = None;
        self
    }

    pub fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends `method` to `url` with the default headers (for POST: JSON content type and both
    /// Accept types; for GET: `Accept: text/event-stream`; the session and version when set),
    /// then applies `headers` on top.
    pub fn build(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        headers: &[Hdr<'_>],
    ) -> reqwest::RequestBuilder {
        let mut map: Vec<(String, String)> = Vec::new();
        if method == Method::POST {
            map.push(("content-type".into(), "application/json".into()));
            map.push(("accept".into(), ACCEPT_BOTH.into()));
        } else if method == Method::GET {
            map.push(("accept".into(), "text/event-stream".into()));
        }
        if let Some(s) = &self.session {
            map.push(("mcp-session-id".into(), s.clone()));
        }
        if let Some(v) = &self.version {
            map.push(("mcp-protocol-version".into(), v.clone()));
        }
        if let Some(credential) = &self.credential {
            map.push(credential.clone());
        }
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            map.retain(|(n, _)| *n != name);
            if let Some(value) = value {
                map.push((name, (*value).to_owned()));
            }
        }
        let mut rb = self.http.request(method, url);
        for (name, value) in map {
            rb = rb.header(name, value);
        }
        if let Some(body) = body {
            rb = rb.body(body);
        }
        rb
    }

    /// Sends a request and reads the whole reply.
    pub async fn send(&self, method: Method, url: &str, body: Option<Vec<u8>>, headers: &[Hdr<'_>]) -> Reply {
        let response = self
            .build(method.clone(), url, body, headers)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
        Reply::read(response).await
    }

    /// POSTs raw bytes to the MCP endpoint with the default headers changed by `headers`.
    pub async fn post_with(&self, body: impl Into<Vec<u8>>, headers: &[Hdr<'_>]) -> Reply {
        self.send(Method::POST, &self.url.clone(), Some(body.into()), headers).await
    }

    /// POSTs a JSON message with the default headers.
    pub async fn post(&self, body: &Value) -> Reply {
        self.post_with(body.to_string(), &[]).await
    }

    pub async fn delete(&self, headers: &[Hdr<'_>]) -> Reply {
        self.send(Method::DELETE, &self.url.clone(), None, headers).await
    }

    /// Opens a GET stream (does not read the body).
    pub async fn get_stream(&self, headers: &[Hdr<'_>]) -> reqwest::Response {
        self.build(Method::GET, &self.url, None, headers).send().await.expect("GET /mcp")
    }

    /// `initialize` with `version`; stores the session id and negotiated version, sends
    /// `notifications/initialized`, and returns the `InitializeResult`.
    pub async fn initialize_version(&mut self, version: &str) -> Value {
        self.initialize_with(version, json!({})).await
    }

    /// `initialize` declaring the client `capabilities` (e.g. `{"sampling":{}}`).
    pub async fn initialize_with(&mut self, version: &str, capabilities: Value) -> Value {
        let mut body = initialize_body(self.next_id(), version);
        body["params"]["capabilities"] = capabilities;
        let reply = self.post(&body).await;
        assert_eq!(reply.status, 200, "initialize: {}", reply.describe());
        let session =
            reply.header("mcp-session-id").unwrap_or_else(|| panic!("no Mcp-Session-Id: {}", reply.describe()));
        let result = reply.json()["result"].clone();
        let negotiated =
            result["protocolVersion"].as_str().unwrap_or_else(|| panic!("no protocolVersion: {}", reply.describe()));
        self.session = Some(session);
        self.version = Some(negotiated.to_owned());
        let ack = self.post(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;
        assert_eq!(ack.status, 202, "notifications/initialized: {}", ack.describe());
        result
    }

    /// `initialize` with the latest version; returns the session id.
    pub async fn initialize(&mut self) -> String {
        self.initialize_version(LATEST).await;
        self.session.clone().expect("session set by initialize")
    }

    /// Sends a request and returns the reply (any status).
    pub async fn request_reply(&self, method: &str, params: Value) -> Reply {
        self.post(&json!({ "jsonrpc": "2.0", "id": self.next_id(), "method": method, "params": params })).await
    }

    /// Sends a request and returns the JSON-RPC response message (from JSON or SSE).
    pub async fn request(&self, method: &str, params: Value) -> Value {
        let reply = self.request_reply(method, params).await;
        assert!(reply.status == 200, "{method}: {}", reply.describe());
        reply.message()
    }

    /// `tools/call`; returns the JSON-RPC response message.
    pub async fn call_tool(&self, name: &str, args: Value) -> Value {
        self.request("tools/call", json!({ "name": name, "arguments": args })).await
    }

    /// `tools/call` expecting a result (not a protocol error); returns `result`.
    pub async fn call_tool_ok(&self, name: &str, args: Value) -> Value {
        let message = self.call_tool(name, args.clone()).await;
        match message.get("result") {
            Some(result) => result.clone(),
            None => panic!("tools/call {name} {args}: expected a result, got {message}"),
        }
    }

    /// `ping` succeeds with `{}`.
    pub async fn ping_ok(&self) -> Result<(), String> {
        let reply = self.request_reply("ping", json!({})).await;
        if reply.status != 200 {
            return Err(format!("ping: {}", reply.describe()));
        }
        match reply.try_json() {
            Some(m) if m["result"] == json!({}) => Ok(()),
            _ => Err(format!("ping: {}", reply.describe())),
        }
    }
}

/// An `initialize` request body.
pub fn initialize_body(id: i64, version: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": { "name": "mcproof-tests", "version": "0.0.0" }
        }
    })
}

/// A `tools/call` request body with `id`, calling `name` with `arguments`.
pub fn tool_call_body(id: i64, name: &str, arguments: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": { "name": name, "arguments": arguments } })
}

/// The concatenated text of a `CallToolResult`'s text content.
pub fn result_text(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["text"].as_str()).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// Collects the mismatches of a table-driven test and asserts once, listing all of them.
#[derive(Debug, Default)]
pub struct Failures {
    checked: usize,
    failures: Vec<String>,
}

impl Failures {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one case: `Ok` passes, `Err(why)` fails under `name`.
    pub fn record(&mut self, name: &str, outcome: Result<(), String>) {
        self.checked += 1;
        if let Err(why) = outcome {
            self.failures.push(format!("{name}: {why}"));
        }
    }

    /// Records a failure unless `ok`.
    pub fn check(&mut self, name: &str, ok: bool, why: impl FnOnce() -> String) {
        self.record(name, if ok { Ok(()) } else { Err(why()) });
    }

    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }

    /// Panics with every failure, one per line.
    pub fn assert(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} checks failed:\n  - {}",
            self.failures.len(),
            self.checked,
            self.failures.join("\n  - ")
        );
    }
}

/// Sends one raw HTTP/1.1 request (for what reqwest will not send, e.g. no `Accept` at all:
/// reqwest adds `Accept: */*`). `head` is the request line and headers without the final blank
/// line; `Connection: close` and `Content-Length` are added. Returns the parsed reply.
pub async fn raw_http(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect within the timeout")
        .expect("connect");
    let mut request =
        format!("{}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", head.trim_end(), body.len()).into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .expect("reply within the timeout")
        .expect("read reply");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {:?}", String::from_utf8_lossy(&raw)));
    let head_text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head_text}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(n), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()),
                reqwest::header::HeaderValue::from_str(value.trim()),
            )
        {
            headers.append(n, v);
        }
    }
    let mut body = raw[split + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked")) {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// Whether a string could have come from a stack trace or internal path.
pub fn leaks_internals(text: &str) -> Option<&'static str> {
    const MARKERS: [&str; 10] = [
        "panicked",
        "stack backtrace",
        "RUST_BACKTRACE",
        ".rs:",
        "src/",
        "/home/",
        "/tmp/",
        "/usr/",
        "thread '",
        "Traceback",
    ];
    MARKERS.into_iter().find(|m| text.contains(m))
}
