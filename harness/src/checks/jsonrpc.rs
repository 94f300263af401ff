//! Checks of the `jsonrpc` area: the JSON-RPC 2.0 envelope, error codes, ids, notifications and
//! batching (spec-checks JR-01..JR-09).
//!
//! Every check here runs over Streamable HTTP (in a fresh session) and over stdio (in a fresh
//! child process) alike: [`Conn`] hides the difference. The rules are the same on both; where a
//! transport adds its own (HTTP 202 for notifications), the check branches on it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use http::Method;
use serde_json::{Value, json};

use crate::check::{ALL_REVISIONS, Check, CheckInfo, FROM_2025_06_18, Kind, Level, Transport, Verdict};
use crate::client::http::{HttpRequest, PREFERRED_REVISION};
use crate::client::{HttpClient, McpSession, StdioConn, is_response_to, messages_of};
use crate::evidence::{Exchange, RequestRecord, ResponseRecord, excerpt, redact_text};
use crate::probe::{Probe, truncate};

pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
pub(crate) const INVALID_PARAMS: i64 = -32602;

pub(crate) const BOTH: &[Transport] = &[Transport::Http, Transport::Stdio];

/// The checks of this area.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            info: CheckInfo {
                id: "jsonrpc/parse-error",
                title: "Malformed JSON and invalid UTF-8 get a parse error (-32700) and the server keeps answering",
                level: Level::Must,
                weight: 10,
                source: "basic/index §Messages; basic/transports intro (UTF-8); JSON-RPC 2.0 §5.1; spec-checks JR-01",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Active,
                description: "Sends a truncated JSON body and a request whose string holds the invalid UTF-8 bytes \
                    C3 28, then a ping. The malformed input must be refused with -32700 (over HTTP a 4xx refusal \
                    without a JSON-RPC body is also accepted), never with a 5xx, and the ping must still be answered.",
                remediation: "Parse every body or line as strict UTF-8 JSON before dispatching it; answer failures \
                    with {\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"Parse error\"}} \
                    (HTTP 400), and keep serving the connection.",
            },
            run: |p| parse_error(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "jsonrpc/invalid-request",
                title: "Malformed requests (null id, wrong jsonrpc version, non-string method) are refused",
                level: Level::Must,
                weight: 10,
                source: "basic/index §Requests (id MUST NOT be null); JSON-RPC 2.0 §4, §5.1; spec-checks JR-02",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Active,
                description: "Sends a ping with id null, a ping with jsonrpc \"1.0\" and a request whose method is \
                    the number 42. None may be served: each must get a JSON-RPC error (-32600 is the precise code) \
                    or, over HTTP, a 4xx refusal. A result, or HTTP 202 as if it were a notification, fails.",
                remediation: "Validate the envelope before dispatch: jsonrpc exactly \"2.0\", method a string, id a \
                    string or number (MCP forbids null). Answer violations with -32600 Invalid Request.",
            },
            run: |p| invalid_request(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "jsonrpc/method-not-found",
                title: "Unknown methods get Method not found (-32601)",
                level: Level::Must,
                weight: 8,
                source: "JSON-RPC 2.0 §5.1; server/utilities/completion §Error Handling; spec-checks JR-03",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Active,
                description: "Calls a method no MCP revision defines, in an initialized session, and expects an \
                    error with code -32601 and the request's id.",
                remediation: "Route unknown methods to a JSON-RPC error with code -32601 (Method not found); do \
                    not answer them with a generic internal error or a result.",
            },
            run: |p| method_not_found(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "jsonrpc/invalid-params",
                title: "Requests with missing required parameters get Invalid params (-32602)",
                level: Level::Should,
                weight: 5,
                source: "server/tools §Error Handling; server/prompts; server/resources; JSON-RPC 2.0 §5.1; \
                    spec-checks JR-04",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Active,
                description: "For each declared feature, sends its call without the required parameter \
                    (tools/call without name, prompts/get without name, resources/read without uri). It must be \
                    refused with -32602; a result (even a tool error) fails, another error code warns.",
                remediation: "Validate request params against the MCP schema before doing anything and answer \
                    missing or mistyped members with -32602 Invalid params.",
            },
            run: |p| invalid_params(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "jsonrpc/id-echo",
                title: "Responses carry the request id unchanged, in value and type",
                level: Level::Must,
                weight: 10,
                source: "basic/index §Responses; JSON-RPC 2.0 §5; spec-checks JR-05",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Passive,
                description: "Sends ping with a string id, a number id and a string id made of digits. Each \
                    response must carry exactly that id: the same value and the same JSON type.",
                remediation: "Keep the id as the raw JSON value (string or number) and copy it into the response; \
                    never convert ids between strings and numbers.",
            },
            run: |p| id_echo(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "jsonrpc/response-shape",
                title: "Responses hold exactly one of result or error; errors have an integer code and a string message",
                level: Level::Must,
                weight: 8,
                source: "basic/index §Responses; schema.ts JSONRPCResultResponse / JSONRPCErrorResponse; JSON-RPC \
                    2.0 §5, §5.1; spec-checks JR-06",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Passive,
                description: "Inspects the responses to ping and tools/list (and, when active checks are on, to an \
                    unknown method and to tools/call without a name): each must have jsonrpc \"2.0\", an id, and \
                    exactly one of result or error; an error needs an integer code and a string message.",
                remediation: "Build responses from one constructor per kind (result or error); emit error.code as a \
                    JSON integer and error.message as a string.",
            },
            run: |p| response_shape(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "jsonrpc/notifications-unanswered",
                title: "Notifications are never answered (HTTP: 202 with no body)",
                level: Level::Must,
                weight: 8,
                source: "basic/index §Notifications; basic/transports §Sending Messages to the Server (4); \
                    spec-checks JR-07",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Active,
                description: "Sends notifications/initialized and an unknown notification. Over HTTP each must get \
                    202 Accepted with an empty body (a 4xx refusal is allowed); a 200 or any JSON-RPC response \
                    fails. Over stdio no response line may follow (checked up to a ping and 1 s after it).",
                remediation: "Treat every message without an id as a notification: process or ignore it, answer \
                    HTTP 202 with no body, and never write a JSON-RPC response for it.",
            },
            run: |p| notifications_unanswered(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "jsonrpc/server-messages",
                title: "The server's own notifications carry no id; its requests use unique, non-null ids",
                level: Level::Must,
                weight: 8,
                source: "basic/index §Requests, §Notifications; spec-checks JR-08",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Passive,
                description: "Records every server-to-client message seen on a GET stream (1 s, HTTP) and while \
                    answering ping and tools/list sent with a progress token. Notifications must have no id; \
                    requests need a string or number id, never repeated. Passes (saying so) when the server sent \
                    nothing.",
                remediation: "Send notifications without an id member; give server-to-client requests ids from a \
                    per-session counter that never repeats.",
            },
            run: |p| server_messages(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "jsonrpc/batch-rejected",
                title: "JSON-RPC batches are refused from revision 2025-06-18 on",
                level: Level::Must,
                weight: 8,
                source: "basic/transports §Sending Messages to the Server (3); schema.ts JSONRPCMessage; 2025-06-18 \
                    changelog #1; spec-checks JR-09",
                revisions: FROM_2025_06_18,
                transports: BOTH,
                kind: Kind::Active,
                description: "After negotiating 2025-06-18 or later, sends an array of two pings. It must be \
                    refused (HTTP 4xx and/or one -32600 error); answering the pings fails.",
                remediation: "Accept exactly one JSON-RPC message per body or line when the negotiated revision is \
                    2025-06-18 or later; answer an array with -32600 Invalid Request (HTTP 400).",
            },
            run: |p| batch_rejected(p).boxed(),
        },
    ]
}

// ----------------------------------------------------------------------------------------------
// A connection over either transport.
// ----------------------------------------------------------------------------------------------

/// An initialized connection to the target: an HTTP session or a fresh stdio child.
pub(crate) struct Conn<'a> {
    /// The negotiated revision.
    pub version: String,
    /// The `InitializeResult`.
    pub init: Value,
    kind: ConnKind<'a>,
}

enum ConnKind<'a> {
    Http { http: &'a HttpClient, session: McpSession },
    Stdio { conn: Box<StdioConn>, command: String, timeout: Duration },
}

/// How long to read after sending.
pub(crate) enum Until {
    /// Until the response to this id arrives (HTTP: the whole body).
    Id(Value),
    /// Until the first response of any id, or this long (HTTP: the whole body).
    Any(Duration),
    /// Everything that arrives within this long (HTTP: the whole body).
    Quiet(Duration),
}

/// What came back for one send.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub exchange: Exchange,
    /// Whether this was HTTP (else stdio).
    pub http: bool,
    /// HTTP status; `None` on stdio or when no HTTP answer arrived.
    pub status: Option<u16>,
    /// Every JSON-RPC message that came back (arrays flattened).
    pub messages: Vec<Value>,
    /// A top-level JSON array came back (a batch response).
    pub array: bool,
    /// No body (HTTP) or no line (stdio) came back.
    pub empty: bool,
    /// Transport failure, if any.
    pub error: Option<String>,
}

impl Reply {
    /// Response messages (result or error, no method).
    pub fn responses(&self) -> impl Iterator<Item = &Value> {
        self.messages.iter().filter(|m| is_response(m))
    }

    /// The response to `id`, else the first response.
    pub fn response(&self, id: &Value) -> Option<&Value> {
        self.messages.iter().find(|m| is_response_to(m, id)).or_else(|| self.responses().next())
    }

    /// `error.code` of the first error response.
    pub fn error_code(&self) -> Option<i64> {
        self.responses().find_map(error_code)
    }

    /// Whether any response carries a `result`.
    pub fn served(&self) -> bool {
        self.responses().any(|m| m.get("result").is_some())
    }

    /// "HTTP 400" or "stdio" for messages.
    pub fn how(&self) -> String {
        match self.status {
            Some(s) => format!("HTTP {s}"),
            None if self.http => format!("no HTTP answer ({})", self.error.as_deref().unwrap_or("no response")),
            None => "on stdio".into(),
        }
    }
}

/// Whether a message is a response: `result` or `error`, and no `method`.
pub(crate) fn is_response(m: &Value) -> bool {
    m.get("method").is_none() && (m.get("result").is_some() || m.get("error").is_some())
}

pub(crate) fn error_code(m: &Value) -> Option<i64> {
    m.get("error")?.get("code")?.as_i64()
}

/// A request body as bytes.
pub(crate) fn request_bytes(id: &Value, method: &str, params: Option<Value>) -> Vec<u8> {
    let mut body = json!({ "jsonrpc": "2.0", "id": id, "method": method });
    if let Some(p) = params {
        body["params"] = p;
    }
    body.to_string().into_bytes()
}

/// How long to wait on stdio for an answer that may legitimately never come.
pub(crate) fn short_wait(probe: &Probe) -> Duration {
    probe.options.limits.timeout.min(Duration::from_secs(3))
}

impl<'a> Conn<'a> {
    /// Opens an initialized connection: a new HTTP session, or a new stdio child.
    pub(crate) async fn open(probe: &'a Probe) -> Result<Conn<'a>, Verdict> {
        Self::open_with(probe, PREFERRED_REVISION).await
    }

    /// Opens an initialized connection asking for `version`.
    pub(crate) async fn open_with(probe: &'a Probe, version: &str) -> Result<Conn<'a>, Verdict> {
        if let Ok(stdio) = probe.stdio() {
            let mut conn = stdio.spawn().map_err(|e| Verdict::error(format!("could not start the server: {e}")))?;
            let init = conn.initialize(version).await;
            let Some(result) = init.response.as_ref().and_then(|r| r.get("result")).cloned() else {
                let _ = conn.close(Duration::from_secs(2)).await;
                return Err(Verdict::error("could not initialize a fresh stdio connection").with(init.exchange));
            };
            let negotiated = result.get("protocolVersion").and_then(Value::as_str).unwrap_or(version).to_owned();
            return Ok(Conn {
                version: negotiated,
                init: result,
                kind: ConnKind::Stdio {
                    conn: Box::new(conn),
                    command: stdio.target().command.clone(),
                    timeout: probe.options.limits.timeout,
                },
            });
        }
        let http = probe.http()?;
        let (session, response) = http.initialize(version).await;
        let session = session
            .map_err(|why| Verdict::error(format!("could not open a session: {why}")).with(response.exchange))?;
        Ok(Conn {
            version: session.version.clone(),
            init: session.result.clone(),
            kind: ConnKind::Http { http, session },
        })
    }

    pub(crate) fn is_http(&self) -> bool {
        matches!(self.kind, ConnKind::Http { .. })
    }

    /// The HTTP client and session, for transport-specific requests.
    pub(crate) fn http(&self) -> Option<(&'a HttpClient, &McpSession)> {
        match &self.kind {
            ConnKind::Http { http, session } => Some((http, session)),
            ConnKind::Stdio { .. } => None,
        }
    }

    /// The declared server capabilities.
    pub(crate) fn capabilities(&self) -> &Value {
        self.init.get("capabilities").unwrap_or(&Value::Null)
    }

    /// Sends `bytes` as one body (HTTP, in the session) or one line (stdio) and reads the answer.
    pub(crate) async fn send(&mut self, label: &str, bytes: &[u8], until: Until) -> Reply {
        match &mut self.kind {
            ConnKind::Http { http, session } => {
                let mut req = HttpRequest::post_bytes(label, bytes.to_vec()).in_session(session);
                if let Until::Id(id) = &until {
                    req.until_response_to = Some(id.clone());
                }
                http_reply(http.send(req).await)
            }
            ConnKind::Stdio { conn, command, timeout } => {
                stdio_send(conn, command, *timeout, label, Some(bytes), until).await
            }
        }
    }

    /// Stdio only: reads whatever arrives within `wait` without writing anything (HTTP: an empty
    /// reply).
    pub(crate) async fn read(&mut self, label: &str, wait: Duration) -> Reply {
        match &mut self.kind {
            ConnKind::Http { .. } => Reply { http: true, empty: true, ..Reply::default() },
            ConnKind::Stdio { conn, command, timeout } => {
                stdio_send(conn, command, *timeout, label, None, Until::Quiet(wait)).await
            }
        }
    }

    /// A request with `id`, read until its response.
    pub(crate) async fn request(&mut self, label: &str, id: &Value, method: &str, params: Option<Value>) -> Reply {
        self.send(label, &request_bytes(id, method, params), Until::Id(id.clone())).await
    }

    /// Ends the session (HTTP DELETE) or the child (stdin closed, then killed if needed).
    pub(crate) async fn close(self) {
        match self.kind {
            ConnKind::Http { http, session } => {
                if session.id.is_some() {
                    let _ = http.delete(&session).await;
                }
            }
            ConnKind::Stdio { conn, .. } => {
                let _ = conn.close(Duration::from_secs(2)).await;
            }
        }
    }
}

/// A [`Reply`] from an HTTP response.
pub(crate) fn http_reply(r: crate::client::http::HttpResponse) -> Reply {
    let array = !r.is_sse() && r.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    Reply {
        http: true,
        status: r.status,
        array,
        empty: r.body.iter().all(u8::is_ascii_whitespace),
        messages: r.messages,
        error: r.error,
        exchange: r.exchange,
    }
}

async fn stdio_send(
    conn: &mut StdioConn,
    command: &str,
    timeout: Duration,
    label: &str,
    bytes: Option<&[u8]>,
    until: Until,
) -> Reply {
    let started = Instant::now();
    let record = RequestRecord {
        method: if bytes.is_some() { "stdio".into() } else { "stdio (read only)".into() },
        target: command.to_owned(),
        headers: Vec::new(),
        body: bytes.map(|b| excerpt(b).0).unwrap_or_default(),
    };
    let mut reply = Reply::default();
    let mut texts = Vec::new();
    let written = match bytes {
        Some(b) => conn.write(b).await,
        None => Ok(()),
    };
    if let Err(e) = written {
        reply.error = Some(e);
    } else {
        let budget = match &until {
            Until::Id(_) => timeout,
            Until::Any(d) | Until::Quiet(d) => (*d).min(timeout),
        };
        let deadline = started + budget;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Some(line) = conn.next_line(left).await else { break };
            texts.push(line.text.clone());
            let Some(value) = line.json else { continue };
            reply.array |= value.is_array();
            let new = messages_of(value);
            let done = match &until {
                Until::Id(id) => new.iter().any(|m| is_response_to(m, id)),
                Until::Any(_) => new.iter().any(is_response),
                Until::Quiet(_) => false,
            };
            reply.messages.extend(new);
            if done {
                break;
            }
        }
        if let Until::Id(id) = &until
            && !reply.messages.iter().any(|m| is_response_to(m, id))
        {
            reply.error = Some(if conn.has_exited() {
                "the server process exited without answering".into()
            } else {
                format!("no response within {} ms", budget.as_millis())
            });
        }
    }
    reply.empty = texts.is_empty();
    let (body, truncated) = excerpt(texts.join("\n").as_bytes());
    reply.exchange = Exchange {
        label: label.to_owned(),
        request: record,
        response: (!texts.is_empty()).then(|| ResponseRecord { status: 0, headers: Vec::new(), body, truncated }),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        error: reply.error.as_deref().map(redact_text),
    };
    reply
}

// ----------------------------------------------------------------------------------------------
// Verdict helpers.
// ----------------------------------------------------------------------------------------------

/// One observation, graded.
pub(crate) enum Judged {
    Ok(String),
    Warn(String),
    Fail(String),
}

/// Folds graded observations into a verdict: any FAIL fails, else any WARN warns, else PASS.
pub(crate) fn fold(judged: Vec<Judged>, evidence: Vec<Exchange>) -> Verdict {
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut oks = Vec::new();
    for j in judged {
        match j {
            Judged::Ok(m) => oks.push(m),
            Judged::Warn(m) => warns.push(m),
            Judged::Fail(m) => fails.push(m),
        }
    }
    let verdict = if !fails.is_empty() {
        let mut text = fails.join("; ");
        if !warns.is_empty() {
            text.push_str(&format!("; also: {}", warns.join("; ")));
        }
        Verdict::fail(text)
    } else if !warns.is_empty() {
        Verdict::warn(warns.join("; "))
    } else {
        Verdict::pass(oks.join("; "))
    };
    verdict.with_all(evidence)
}

/// "with HTTP 200" or "on stdio".
fn with_how(reply: &Reply) -> String {
    match reply.status {
        Some(s) => format!("with HTTP {s}"),
        None => reply.how(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn show(v: &Value) -> String {
    truncate(&v.to_string(), 60)
}

// ----------------------------------------------------------------------------------------------
// JR-01
// ----------------------------------------------------------------------------------------------

async fn parse_error(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let wait = short_wait(probe);
    let mut utf8 =
        format!(r#"{{"jsonrpc":"2.0","id":{},"method":"ping","params":{{"s":""#, probe.next_id()).into_bytes();
    utf8.extend_from_slice(b"\xC3\x28\"}}");
    let inputs: [(&str, Vec<u8>, bool); 2] = [
        ("truncated JSON", br#"{"jsonrpc":"2.0","id":1,"method":"#.to_vec(), true),
        ("invalid UTF-8 (C3 28 inside a string)", utf8, false),
    ];
    let mut judged = Vec::new();
    let mut evidence = Vec::new();
    for (what, bytes, strict) in inputs {
        let reply = conn.send(&format!("malformed input: {what}"), &bytes, Until::Any(wait)).await;
        judged.push(judge_parse(what, &reply, strict, wait));
        evidence.push(reply.exchange);
    }
    let id = json!(probe.next_id());
    let ping = conn.request("ping after the malformed input", &id, "ping", None).await;
    if ping.messages.iter().any(|m| is_response_to(m, &id) && m.get("result").is_some()) {
        judged.push(Judged::Ok("the following ping was answered".into()));
    } else {
        judged.push(Judged::Fail(format!(
            "the server stopped answering after the malformed input: ping got no result ({})",
            ping.error.clone().unwrap_or_else(|| ping.how())
        )));
    }
    evidence.push(ping.exchange);
    conn.close().await;
    fold(judged, evidence)
}

/// Grades the answer to malformed input. `strict`: a wrong code or being served is a FAIL (else
/// a WARN: invalid UTF-8 decoded leniently is a deviation, not a broken parser).
fn judge_parse(what: &str, reply: &Reply, strict: bool, wait: Duration) -> Judged {
    let lenient = |m: String| if strict { Judged::Fail(m) } else { Judged::Warn(m) };
    if let Some(s) = reply.status
        && s >= 500
    {
        return Judged::Fail(format!("{what}: answered HTTP {s} (a server error) instead of a parse error"));
    }
    if let Some(code) = reply.error_code() {
        let how = reply.status.map(|s| format!("HTTP {s} with ")).unwrap_or_default();
        return if code == PARSE_ERROR {
            Judged::Ok(format!("{what}: {how}-32700"))
        } else {
            lenient(format!("{what}: {how}error code {code} instead of -32700 (Parse error)"))
        };
    }
    if reply.served() {
        return lenient(format!("{what}: served as a valid request (a result came back) instead of -32700"));
    }
    match reply.status {
        Some(s) if (400..500).contains(&s) => Judged::Ok(format!("{what}: refused with HTTP {s}")),
        Some(s) => Judged::Fail(format!("{what}: HTTP {s} without a parse error")),
        None if reply.http => Judged::Fail(format!("{what}: {}", reply.how())),
        None => Judged::Warn(format!("{what}: no -32700 response line within {} ms", wait.as_millis())),
    }
}

// ----------------------------------------------------------------------------------------------
// JR-02
// ----------------------------------------------------------------------------------------------

async fn invalid_request(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let wait = short_wait(probe);
    let inputs = [
        ("id null", r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#.to_owned()),
        ("jsonrpc \"1.0\"", format!(r#"{{"jsonrpc":"1.0","id":{},"method":"ping"}}"#, probe.next_id())),
        ("method 42", format!(r#"{{"jsonrpc":"2.0","id":{},"method":42}}"#, probe.next_id())),
    ];
    let mut judged = Vec::new();
    let mut evidence = Vec::new();
    for (what, body) in inputs {
        let reply = conn.send(&format!("invalid request: {what}"), body.as_bytes(), Until::Any(wait)).await;
        judged.push(judge_invalid(what, &reply, wait));
        evidence.push(reply.exchange);
    }
    conn.close().await;
    fold(judged, evidence)
}

fn judge_invalid(what: &str, reply: &Reply, wait: Duration) -> Judged {
    if reply.served() {
        return Judged::Fail(format!("{what}: served (a result came back {})", with_how(reply)));
    }
    if let Some(s) = reply.status
        && s >= 500
    {
        return Judged::Fail(format!("{what}: HTTP {s} (a server error) instead of Invalid Request"));
    }
    if let Some(code) = reply.error_code() {
        let how = reply.status.map(|s| format!("HTTP {s} with ")).unwrap_or_default();
        let note = if code == INVALID_REQUEST { String::new() } else { " (-32600 is the precise code)".into() };
        return Judged::Ok(format!("{what}: {how}error {code}{note}"));
    }
    match reply.status {
        Some(s) if (400..500).contains(&s) => Judged::Ok(format!("{what}: refused with HTTP {s}")),
        Some(202) => Judged::Fail(format!("{what}: HTTP 202, accepted as if it were a notification")),
        Some(s) => Judged::Fail(format!("{what}: HTTP {s} without an error")),
        None if reply.http => Judged::Fail(format!("{what}: {}", reply.how())),
        None => Judged::Warn(format!("{what}: no answer within {} ms (silently dropped?)", wait.as_millis())),
    }
}

// ----------------------------------------------------------------------------------------------
// JR-03
// ----------------------------------------------------------------------------------------------

async fn method_not_found(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let id = json!(probe.next_id());
    let reply = conn.request("unknown method mcproof/no_such_method", &id, "mcproof/no_such_method", None).await;
    conn.close().await;
    let judged = match reply.response(&id) {
        None => Judged::Fail(format!("no JSON-RPC response to an unknown method ({})", reply.how())),
        Some(m) if m.get("id") != Some(&id) => Judged::Fail(format!(
            "the error came back with id {} instead of {}",
            m.get("id").map_or("(none)".into(), show),
            show(&id)
        )),
        Some(m) => match error_code(m) {
            Some(METHOD_NOT_FOUND) => Judged::Ok(format!("an unknown method got -32601 with id {}", show(&id))),
            Some(code) => Judged::Fail(format!("an unknown method got error code {code} instead of -32601")),
            None if m.get("result").is_some() => Judged::Fail("an unknown method was answered with a result".into()),
            None => Judged::Fail("an unknown method got an error without an integer code".into()),
        },
    };
    fold(vec![judged], vec![reply.exchange])
}

// ----------------------------------------------------------------------------------------------
// JR-04
// ----------------------------------------------------------------------------------------------

async fn invalid_params(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let caps = conn.capabilities().clone();
    let declared = |c: &str| caps.get(c).is_some_and(|v| !v.is_null());
    let mut calls = Vec::new();
    if declared("tools") {
        calls.push(("tools/call", "name"));
    }
    if declared("prompts") {
        calls.push(("prompts/get", "name"));
    }
    if declared("resources") {
        calls.push(("resources/read", "uri"));
    }
    if calls.is_empty() {
        conn.close().await;
        return Verdict::skip("not applicable: the server declares none of tools, prompts and resources");
    }
    let mut judged = Vec::new();
    let mut evidence = Vec::new();
    for (method, missing) in calls {
        let id = json!(probe.next_id());
        let reply = conn.request(&format!("{method} without {missing}"), &id, method, Some(json!({}))).await;
        let what = format!("{method} without `{missing}`");
        judged.push(match reply.response(&id) {
            Some(m) if m.get("result").is_some() => {
                Judged::Fail(format!("{what} was answered with a result instead of -32602"))
            }
            Some(m) => match error_code(m) {
                Some(INVALID_PARAMS) => Judged::Ok(format!("{what}: -32602")),
                Some(code) => Judged::Warn(format!("{what}: error code {code} instead of -32602")),
                None => Judged::Warn(format!("{what}: an error without an integer code")),
            },
            None => match reply.status {
                Some(s) if s >= 500 => Judged::Fail(format!("{what}: HTTP {s} (a server error)")),
                Some(s) if (400..500).contains(&s) => {
                    Judged::Warn(format!("{what}: refused with HTTP {s} but no JSON-RPC error"))
                }
                _ => Judged::Warn(format!("{what}: no JSON-RPC response ({})", reply.how())),
            },
        });
        evidence.push(reply.exchange);
    }
    conn.close().await;
    fold(judged, evidence)
}

// ----------------------------------------------------------------------------------------------
// JR-05
// ----------------------------------------------------------------------------------------------

async fn id_echo(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let n = probe.next_id();
    let ids = [json!(format!("mcproof-{n}")), json!(probe.next_id()), json!(probe.next_id().to_string())];
    let wait = probe.options.limits.timeout;
    let mut judged = Vec::new();
    let mut evidence = Vec::new();
    let mut answered = 0;
    for id in ids {
        let label = format!("ping with {} id {}", json_type(&id), show(&id));
        let reply = conn.send(&label, &request_bytes(&id, "ping", None), Until::Any(wait)).await;
        judged.push(match reply.response(&id) {
            None => Judged::Fail(format!("no response to ping with {} id {}", json_type(&id), show(&id))),
            Some(m) => {
                answered += 1;
                match m.get("id") {
                    Some(got) if got == &id => Judged::Ok(format!("{} id {} echoed", json_type(&id), show(&id))),
                    Some(got) => Judged::Fail(format!(
                        "{} id {} came back as {} {}",
                        json_type(&id),
                        show(&id),
                        json_type(got),
                        show(got)
                    )),
                    None => Judged::Fail(format!("{} id {} came back without an id", json_type(&id), show(&id))),
                }
            }
        });
        evidence.push(reply.exchange);
    }
    conn.close().await;
    if answered == 0 {
        return Verdict::error("ping was never answered, so id echo could not be tested").with_all(evidence);
    }
    fold(judged, evidence)
}

// ----------------------------------------------------------------------------------------------
// JR-06
// ----------------------------------------------------------------------------------------------

async fn response_shape(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let mut requests: Vec<(&str, Option<Value>)> = vec![("ping", None), ("tools/list", Some(json!({})))];
    if probe.options.active {
        requests.push(("mcproof/no_such_method", None));
        requests.push(("tools/call", Some(json!({}))));
    }
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut evidence = Vec::new();
    for (method, params) in requests {
        let id = json!(probe.next_id());
        let reply = conn.request(method, &id, method, params).await;
        for m in reply.messages.iter().filter(|m| m.get("method").is_none()) {
            checked += 1;
            problems.extend(shape_problems(m).into_iter().map(|p| format!("{method}: {p}")));
        }
        evidence.push(reply.exchange);
    }
    conn.close().await;
    if checked == 0 {
        return Verdict::error("no response came back to inspect").with_all(evidence);
    }
    if problems.is_empty() {
        Verdict::pass(format!("{checked} responses inspected: each has jsonrpc 2.0, an id and exactly one of result or error, errors with an integer code and a string message"))
            .with_all(evidence)
    } else {
        Verdict::fail(problems.join("; ")).with_all(evidence)
    }
}

/// What is wrong with a response message, if anything.
pub(crate) fn shape_problems(m: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(obj) = m.as_object() else { return vec!["not an object".into()] };
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        problems.push(format!("jsonrpc is {} (must be \"2.0\")", obj.get("jsonrpc").map_or("missing".into(), show)));
    }
    if !obj.contains_key("id") {
        problems.push("no id member".into());
    }
    match (obj.get("result"), obj.get("error")) {
        (Some(_), Some(_)) => problems.push("both result and error".into()),
        (None, None) => problems.push("neither result nor error".into()),
        (None, Some(e)) => {
            let code = e.get("code");
            if !code.is_some_and(|c| c.is_i64() || c.is_u64()) {
                problems.push(format!("error.code is {} (must be an integer)", code.map_or("missing".into(), show)));
            }
            let message = e.get("message");
            if !message.is_some_and(Value::is_string) {
                problems
                    .push(format!("error.message is {} (must be a string)", message.map_or("missing".into(), show)));
            }
        }
        (Some(_), None) => {}
    }
    problems
}

// ----------------------------------------------------------------------------------------------
// JR-07
// ----------------------------------------------------------------------------------------------

async fn notifications_unanswered(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let notes = [
        ("notifications/initialized", r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
        ("notifications/mcproof_unknown", r#"{"jsonrpc":"2.0","method":"notifications/mcproof_unknown"}"#),
    ];
    let mut judged = Vec::new();
    let mut evidence = Vec::new();
    if conn.is_http() {
        for (method, body) in notes {
            let reply =
                conn.send(&format!("notification {method}"), body.as_bytes(), Until::Quiet(Duration::ZERO)).await;
            let answered = reply.responses().next().is_some();
            judged.push(match reply.status {
                Some(202) if reply.empty => Judged::Ok(format!("{method}: 202 with no body")),
                _ if answered => Judged::Fail(format!("{method}: answered with a JSON-RPC response ({})", reply.how())),
                Some(202) => Judged::Warn(format!("{method}: 202 but with a body")),
                Some(s) if (400..500).contains(&s) => {
                    Judged::Ok(format!("{method}: refused with HTTP {s} (allowed when the server cannot accept it)"))
                }
                Some(s) => Judged::Fail(format!("{method}: HTTP {s} instead of 202 Accepted")),
                None => Judged::Fail(format!("{method}: {}", reply.how())),
            });
            evidence.push(reply.exchange);
        }
    } else {
        let mut replies = Vec::new();
        for (method, body) in notes {
            replies.push((
                method,
                conn.send(&format!("notification {method}"), body.as_bytes(), Until::Quiet(Duration::ZERO)).await,
            ));
        }
        let id = json!(probe.next_id());
        let ping = conn.request("ping after the notifications", &id, "ping", None).await;
        let after = conn.read("read for 1 s more", Duration::from_secs(1)).await;
        let stray: Vec<&Value> =
            ping.responses().chain(after.responses()).filter(|m| m.get("id") != Some(&id)).collect();
        if stray.is_empty() {
            judged.push(Judged::Ok("no response line followed the two notifications".into()));
        } else {
            judged.push(Judged::Fail(format!(
                "{} response line(s) followed the notifications: {}",
                stray.len(),
                stray.iter().map(|m| show(m)).collect::<Vec<_>>().join(", ")
            )));
        }
        evidence.extend(replies.into_iter().map(|(_, r)| r.exchange));
        evidence.push(ping.exchange);
        if !after.empty {
            evidence.push(after.exchange);
        }
    }
    conn.close().await;
    fold(judged, evidence)
}

// ----------------------------------------------------------------------------------------------
// JR-08
// ----------------------------------------------------------------------------------------------

async fn server_messages(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let mut seen: Vec<Value> = Vec::new();
    let mut evidence = Vec::new();
    let http = conn.is_http();
    if let Some((http, session)) = conn.http() {
        let mut get = HttpRequest::new("GET stream (read 1 s)", Method::GET).in_session(session);
        get.stream_for = Some(Duration::from_secs(1));
        let r = http.send(get).await;
        if !r.messages.is_empty() {
            seen.extend(r.messages.iter().cloned());
            evidence.push(r.exchange);
        }
    }
    for method in ["ping", "tools/list"] {
        let id = json!(probe.next_id());
        let params = json!({ "_meta": { "progressToken": format!("mcproof-progress-{}", probe.next_id()) } });
        let reply = conn.request(&format!("{method} with a progress token"), &id, method, Some(params)).await;
        seen.extend(reply.messages.iter().filter(|m| m.get("method").is_some()).cloned());
        evidence.push(reply.exchange);
    }
    if !conn.is_http() {
        let after = conn.read("read for 0.5 s more", Duration::from_millis(500)).await;
        seen.extend(after.messages.iter().filter(|m| m.get("method").is_some()).cloned());
        if !after.empty {
            evidence.push(after.exchange);
        }
    }
    conn.close().await;
    let mut problems = Vec::new();
    let mut ids = HashSet::new();
    for m in &seen {
        let method = m.get("method").and_then(Value::as_str).unwrap_or("?");
        if m.get("jsonrpc") != Some(&json!("2.0")) {
            problems.push(format!("{method}: jsonrpc is not \"2.0\""));
        }
        match m.get("id") {
            Some(id) if method.starts_with("notifications/") => {
                problems.push(format!("notification {method} carries id {}", show(id)));
            }
            None => {}
            Some(id @ (Value::String(_) | Value::Number(_))) if !ids.insert(id.to_string()) => {
                problems.push(format!("request {method} reuses id {}", show(id)));
            }
            Some(Value::String(_) | Value::Number(_)) => {}
            Some(id) => problems.push(format!("request {method} has a {} id", json_type(id))),
        }
    }
    if !problems.is_empty() {
        return Verdict::fail(problems.join("; ")).with_all(evidence);
    }
    if seen.is_empty() {
        let watched = if http { "a 1 s GET stream, ping and tools/list" } else { "ping and tools/list" };
        return Verdict::pass(format!(
            "the server sent no server-to-client message while observed ({watched} with a progress token), so none was \
             malformed"
        ))
        .with_all(evidence);
    }
    let methods: Vec<&str> = seen.iter().filter_map(|m| m.get("method")?.as_str()).collect();
    Verdict::pass(format!(
        "{} server-to-client message(s) observed ({}), all well formed",
        seen.len(),
        truncate(&methods.join(", "), 200)
    ))
    .with_all(evidence)
}

// ----------------------------------------------------------------------------------------------
// JR-09
// ----------------------------------------------------------------------------------------------

async fn batch_rejected(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    if !FROM_2025_06_18.contains(&conn.version.as_str()) {
        let v = conn.version.clone();
        conn.close().await;
        return Verdict::skip(format!("not applicable: the session negotiated {v}, which allows batches"));
    }
    let (a, b) = (json!(probe.next_id()), json!(probe.next_id()));
    let body =
        format!(r#"[{{"jsonrpc":"2.0","id":{a},"method":"ping"}},{{"jsonrpc":"2.0","id":{b},"method":"ping"}}]"#);
    let wait = short_wait(probe);
    let label = format!("batch of two pings after negotiating {}", conn.version);
    let reply = conn.send(&label, body.as_bytes(), Until::Any(wait)).await;
    conn.close().await;
    let results = reply.responses().filter(|m| m.get("result").is_some()).count();
    let errors = reply.responses().filter(|m| m.get("error").is_some()).count();
    let how = reply.how();
    let judged = if results > 0 {
        Judged::Fail(format!("the batch was processed: {results} ping result(s) came back {}", with_how(&reply)))
    } else if reply.status.is_some_and(|s| s >= 500) {
        Judged::Fail(format!("the batch got {how}, a server error, instead of a refusal"))
    } else if errors > 1 || (reply.array && errors > 0) {
        Judged::Warn(format!(
            "the batch was answered element by element ({errors} errors in an array, {how}); it should be refused whole"
        ))
    } else if let Some(code) = reply.error_code() {
        let note = if code == INVALID_REQUEST { "" } else { " (-32600 is the precise code)" };
        let how = reply.status.map(|s| format!("HTTP {s} with ")).unwrap_or_default();
        Judged::Ok(format!("the batch was refused: {how}error {code}{note}"))
    } else {
        match reply.status {
            Some(s) if (400..500).contains(&s) => Judged::Ok(format!("the batch was refused with HTTP {s}")),
            Some(s) => Judged::Fail(format!("the batch got HTTP {s} without an error")),
            None if reply.http => Judged::Fail(format!("the batch got {how}")),
            None => Judged::Warn(format!("no answer to the batch within {} ms (silently dropped?)", wait.as_millis())),
        }
    };
    fold(vec![judged], vec![reply.exchange])
}
