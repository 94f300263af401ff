//! Checks of the `lifecycle` area: initialization order, version negotiation, honest
//! capabilities and what the server sends on its own (spec-checks LC-01..LC-06).
//!
//! LC-04 (no sampling, elicitation or roots requests to a client that did not declare them) is
//! checked passively: the harness always initializes with `capabilities: {}`, so any such
//! request it sees on a POST answer or the GET stream while it lists tools and pings is a
//! violation. It does not call tools (that would need schema-valid arguments for every tool).
//! LC-05 (nothing but ping and logging before `initialized`) watches for 1.5 s instead of the
//! 5 s of the spec-checks row, to keep scans short.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use http::Method;
use serde_json::{Value, json};

use super::jsonrpc::{BOTH, Conn, Judged, METHOD_NOT_FOUND, Reply, error_code, fold, http_reply, is_response};
use crate::check::{ALL_REVISIONS, Check, CheckInfo, Kind, Level, Verdict};
use crate::client::McpSession;
use crate::client::http::{HttpRequest, HttpResponse, PREFERRED_REVISION, initialize_body};
use crate::client::stdio::Line;
use crate::evidence::{Exchange, RequestRecord, ResponseRecord, excerpt};
use crate::probe::{Probe, truncate};

/// The revisions that have an `initialize` handshake.
const WITH_INITIALIZE: &[&str] = &["2025-03-26", "2025-06-18", "2025-11-25"];
/// Every revision an `initialize` may name (for "is this a real revision").
const KNOWN_REVISIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const BOGUS_VERSION: &str = "1999-01-01";

/// The checks of this area.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            info: CheckInfo {
                id: "lifecycle/initialize-first",
                title: "Requests before initialize are not served",
                level: Level::Must,
                weight: 10,
                source: "basic/lifecycle §Initialization; basic/transports §Session Management; spec-checks LC-01",
                revisions: WITH_INITIALIZE,
                transports: BOTH,
                kind: Kind::Active,
                description: "On a fresh connection (HTTP: no session id; stdio: a new process) sends tools/list \
                    before initialize. It must be refused (a JSON-RPC error or an HTTP 4xx); a tool list fails. \
                    A stateless HTTP server (one that issues no session ids) that serves it gets a WARN.",
                remediation: "Refuse every request other than initialize and ping until the connection is \
                    initialized (stdio), and answer requests without a valid Mcp-Session-Id with HTTP 400 (HTTP).",
            },
            run: |p| initialize_first(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "lifecycle/version-echo",
                title: "A supported protocol version is echoed by initialize",
                level: Level::Must,
                weight: 10,
                source: "basic/lifecycle §Version Negotiation; basic/transports §Protocol Version Header; \
                    spec-checks LC-02",
                revisions: WITH_INITIALIZE,
                transports: BOTH,
                kind: Kind::Active,
                description: "Initializes once per revision (2025-03-26, 2025-06-18, 2025-11-25). Every answer \
                    needs a well-formed protocolVersion. A revision the server shows it supports (it answered \
                    with it elsewhere, or, over HTTP, it accepts it in MCP-Protocol-Version while refusing \
                    1999-01-01) must be echoed when asked for.",
                remediation: "If the requested protocolVersion is one the server supports, return exactly that \
                    version; offer another (the latest) only for versions it does not support.",
            },
            run: |p| version_echo(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "lifecycle/version-fallback",
                title: "An unsupported protocol version gets a supported one in return",
                level: Level::Must,
                weight: 8,
                source: "basic/lifecycle §Version Negotiation, §Error Handling; spec-checks LC-03",
                revisions: WITH_INITIALIZE,
                transports: BOTH,
                kind: Kind::Active,
                description: "Initializes with protocolVersion 1999-01-01. The server must answer with a version \
                    it supports (SHOULD: its latest); echoing 1999-01-01 fails. A -32602 error matches the spec's \
                    own example but not its MUST, so an error is a WARN.",
                remediation: "When the requested version is unsupported, answer initialize with the latest \
                    version the server supports and let the client decide whether to continue.",
            },
            run: |p| version_fallback(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "lifecycle/honest-capabilities",
                title: "Capabilities are declared exactly for the features the server serves",
                level: Level::Must,
                weight: 8,
                source: "server/tools §Capabilities; server/resources §Capabilities; server/prompts \
                    §Capabilities; server/utilities/completion §Error Handling; spec-checks LC-06",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Active,
                description: "Calls tools/list, resources/list, prompts/list and completion/complete and compares \
                    the answers with the declared capabilities: a working method whose capability is not declared \
                    fails, and so does a declared one answered with -32601; an undeclared one answered with \
                    another error than -32601 warns.",
                remediation: "Declare tools, resources, prompts and completions in the initialize result exactly \
                    when the server implements them, and answer the methods of undeclared features with -32601.",
            },
            run: |p| honest_capabilities(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "lifecycle/no-requests-without-capability",
                title: "No sampling, elicitation or roots requests to a client that did not declare them",
                level: Level::Must,
                weight: 10,
                source: "basic/lifecycle §Operation; client/sampling §Capabilities; client/elicitation \
                    §Capabilities; client/roots §Capabilities; spec-checks LC-04",
                revisions: WITH_INITIALIZE,
                transports: BOTH,
                kind: Kind::Passive,
                description: "Initializes with `capabilities: {}` (no sampling, elicitation or roots), then for \
                    about 1.5 s holds the GET stream open (HTTP, if the server offers one) while sending tools/list \
                    and ping, and collects every message the server sends (POST answers, JSON or SSE, the GET \
                    stream, or stdout on stdio). Any sampling/createMessage, elicitation/create or roots/list \
                    request fails. Tools are not called, so requests made only inside tool calls are not seen.",
                remediation: "Record the client capabilities from initialize and never send sampling/createMessage, \
                    elicitation/create or roots/list to a client that did not declare sampling, elicitation or \
                    roots; degrade the feature (or answer the tool call with an error) instead.",
            },
            run: |p| no_requests_without_capability(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "lifecycle/quiet-before-initialized",
                title: "Only ping and logging before the initialized notification",
                level: Level::Should,
                weight: 5,
                source: "basic/lifecycle §Initialization; spec-checks LC-05",
                revisions: WITH_INITIALIZE,
                transports: BOTH,
                kind: Kind::Active,
                description: "Initializes but does not send notifications/initialized, then watches for about \
                    1.5 s (HTTP: the initialize answer and the GET stream, if offered; stdio: stdout). A request \
                    other than ping fails (the spec: the server SHOULD NOT send requests other than pings and \
                    logging before initialized). Notifications are not requests and do not fail; those other than \
                    notifications/message are named in the message.",
                remediation: "Wait for notifications/initialized before sending the client any request other than \
                    ping (for example sampling, elicitation or roots requests, even to clients that declared them).",
            },
            run: |p| quiet_before_initialized(p).boxed(),
        },
    ]
}

// ----------------------------------------------------------------------------------------------
// LC-01
// ----------------------------------------------------------------------------------------------

/// Whether discovery saw the server issue an `Mcp-Session-Id`.
fn issues_sessions(probe: &Probe) -> bool {
    probe.inventory.evidence.iter().any(|e| {
        e.response.as_ref().is_some_and(|r| r.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("mcp-session-id")))
    })
}

async fn initialize_first(probe: &Probe) -> Verdict {
    let id = json!(probe.next_id());
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {} });
    if let Ok(stdio) = probe.stdio() {
        let mut conn = match stdio.spawn() {
            Ok(c) => c,
            Err(e) => return Verdict::error(format!("could not start the server: {e}")),
        };
        let r =
            conn.exchange("tools/list before initialize (new process)", body.to_string().as_bytes(), Some(&id)).await;
        let _ = conn.close(Duration::from_secs(2)).await;
        let judged = match &r.response {
            Some(m) if m.get("result").is_some() => {
                Judged::Fail("a new process served tools/list before initialize (a result came back)".into())
            }
            Some(m) => Judged::Ok(format!(
                "a new process refused tools/list before initialize with error {}",
                error_code(m).map_or("(no code)".into(), |c| c.to_string())
            )),
            None => Judged::Warn(format!(
                "a new process did not answer tools/list before initialize ({}); it should refuse with an error",
                r.error.as_deref().unwrap_or("no response")
            )),
        };
        return fold(vec![judged], vec![r.exchange]);
    }
    let http = match probe.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let reply = http_reply(http.send(HttpRequest::post("tools/list without initialize or session id", &body)).await);
    let sessions = issues_sessions(probe);
    let judged = judge_uninitialized(&reply, sessions);
    fold(vec![judged], vec![reply.exchange])
}

fn judge_uninitialized(reply: &Reply, sessions: bool) -> Judged {
    if reply.served() {
        return if sessions {
            Judged::Fail(format!(
                "tools/list without initialize or session id was served ({}) by a server that issues session ids",
                reply.how()
            ))
        } else {
            Judged::Warn(format!(
                "tools/list without initialize was served ({}); the server issues no session ids (stateless), so it \
                 cannot tell initialized clients apart",
                reply.how()
            ))
        };
    }
    if let Some(code) = reply.error_code() {
        return Judged::Ok(format!("tools/list without a session was refused: {} with error {code}", reply.how()));
    }
    match reply.status {
        Some(s) if (400..500).contains(&s) => {
            Judged::Ok(format!("tools/list without a session was refused with HTTP {s}"))
        }
        Some(s) if s >= 500 => Judged::Warn(format!("tools/list without a session was not served, but got HTTP {s}")),
        Some(s) => Judged::Warn(format!("tools/list without a session got HTTP {s} and no JSON-RPC answer")),
        None => Judged::Warn(format!("tools/list without a session: {}", reply.how())),
    }
}

// ----------------------------------------------------------------------------------------------
// Initialize once, over either transport.
// ----------------------------------------------------------------------------------------------

/// What one `initialize` got.
enum Answer {
    /// A result with this protocolVersion.
    Version(String),
    /// A result without a string protocolVersion.
    Missing,
    /// A JSON-RPC error with this code.
    Error(Option<i64>),
    /// No JSON-RPC answer (with how).
    Nothing(String),
}

struct Init {
    answer: Answer,
    exchange: Exchange,
    /// The HTTP session it opened, if any (to probe headers in, then delete).
    session: Option<McpSession>,
}

async fn initialize_once(probe: &Probe, version: &str) -> Result<Init, Verdict> {
    let classify = |m: Option<&Value>| match m {
        Some(m) if m.get("result").is_some() => {
            match m.get("result").and_then(|r| r.get("protocolVersion")).and_then(Value::as_str) {
                Some(v) => Answer::Version(v.to_owned()),
                None => Answer::Missing,
            }
        }
        Some(m) => Answer::Error(error_code(m)),
        None => Answer::Nothing(String::new()),
    };
    if let Ok(stdio) = probe.stdio() {
        let mut conn = stdio.spawn().map_err(|e| Verdict::error(format!("could not start the server: {e}")))?;
        let mut r = conn.initialize(version).await;
        let _ = conn.close(Duration::from_secs(2)).await;
        r.exchange.label = format!("initialize ({version}), new process");
        let mut answer = classify(r.response.as_ref());
        if let Answer::Nothing(why) = &mut answer {
            *why = r.error.clone().unwrap_or_else(|| "no response".into());
        }
        return Ok(Init { answer, exchange: r.exchange, session: None });
    }
    let http = probe.http()?;
    let (session, response) = http.initialize(version).await;
    let mut answer = classify(response.response_to(&json!(0)));
    if let Answer::Nothing(why) = &mut answer {
        *why = match (&response.error, response.status) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) => format!("HTTP {s}"),
            (None, None) => "no response".into(),
        };
    }
    Ok(Init { answer, exchange: response.exchange, session: session.ok() })
}

/// Whether `v` looks like a revision identifier (`YYYY-MM-DD`).
fn date_shaped(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10 && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
}

async fn close_sessions(probe: &Probe, sessions: impl IntoIterator<Item = McpSession>) {
    if let Ok(http) = probe.http() {
        for s in sessions {
            if s.id.is_some() {
                let _ = http.delete(&s).await;
            }
        }
    }
}

// ----------------------------------------------------------------------------------------------
// LC-02
// ----------------------------------------------------------------------------------------------

async fn version_echo(probe: &Probe) -> Verdict {
    let mut evidence = Vec::new();
    let mut answers = Vec::new();
    let mut sessions = Vec::new();
    for w in WITH_INITIALIZE {
        let init = match initialize_once(probe, w).await {
            Ok(i) => i,
            Err(v) => {
                close_sessions(probe, sessions).await;
                return v.with_all(evidence);
            }
        };
        evidence.push(init.exchange);
        if let Some(s) = init.session {
            sessions.push(s);
        }
        answers.push((*w, init.answer));
    }
    let mut judged = Vec::new();
    // Versions the server has shown it supports: those it answered with.
    let supported: BTreeSet<String> =
        answers.iter().filter_map(|(_, a)| if let Answer::Version(v) = a { Some(v.clone()) } else { None }).collect();
    let mut mismatches = Vec::new();
    for (w, a) in &answers {
        match a {
            Answer::Version(v) if v == w => judged.push(Judged::Ok(format!("{w} echoed"))),
            Answer::Version(v) if !date_shaped(v) => {
                judged.push(Judged::Fail(format!(
                    "asked {w}, answered protocolVersion {:?}, not a revision",
                    truncate(v, 40)
                )));
            }
            Answer::Version(v) => mismatches.push((*w, v.clone())),
            Answer::Missing => {
                judged.push(Judged::Fail(format!("asked {w}, the result has no string protocolVersion")))
            }
            Answer::Error(code) => {
                mismatches.push((*w, format!("error {}", code.map_or("(no code)".into(), |c| c.to_string()))));
            }
            Answer::Nothing(why) => judged.push(Judged::Ok(format!("asked {w}, no answer ({why})"))),
        }
    }
    // A session to probe the MCP-Protocol-Version header in (HTTP only).
    let header_session = sessions.iter().find(|s| s.id.is_some()).cloned();
    let mut control: Option<bool> = None;
    for (w, answered) in mismatches {
        if supported.contains(w) {
            judged.push(Judged::Fail(format!(
                "asked {w}, answered {answered}, although the server answered {w} to another initialize (so it supports it)"
            )));
            continue;
        }
        let (Ok(http), Some(session)) = (probe.http(), header_session.as_ref()) else {
            judged.push(Judged::Ok(format!("asked {w}, answered {answered}; no sign that the server supports {w}")));
            continue;
        };
        // Control first: a server that accepts any header value proves nothing.
        if control.is_none() {
            let r = header_ping(http, session, BOGUS_VERSION, probe.next_id()).await;
            control = Some(r.status.is_some_and(|s| (400..500).contains(&s)) && !r.served());
            evidence.push(r.exchange);
        }
        if control != Some(true) {
            judged.push(Judged::Ok(format!(
                "asked {w}, answered {answered}; the server does not refuse MCP-Protocol-Version: {BOGUS_VERSION}, so its header \
                 handling shows nothing about {w}"
            )));
            continue;
        }
        let r = header_ping(http, session, w, probe.next_id()).await;
        let accepted = r.status.is_some_and(|s| (200..300).contains(&s)) && r.served();
        evidence.push(r.exchange);
        judged.push(if accepted {
            Judged::Fail(format!(
                "asked {w}, answered {answered}, yet the server accepts MCP-Protocol-Version: {w} (and refuses \
                 {BOGUS_VERSION}), so it supports {w} and must echo it"
            ))
        } else {
            Judged::Ok(format!("asked {w}, answered {answered}; the server also refuses {w} in MCP-Protocol-Version, so it does not support it"))
        });
    }
    close_sessions(probe, sessions).await;
    fold(judged, evidence)
}

/// `ping` in `session` with `MCP-Protocol-Version: version`.
async fn header_ping(http: &crate::client::HttpClient, session: &McpSession, version: &str, id: u64) -> Reply {
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "ping" });
    let req = HttpRequest::post(format!("ping with MCP-Protocol-Version: {version}"), &body)
        .in_session(session)
        .header("mcp-protocol-version", version);
    http_reply(http.send(req).await)
}

// ----------------------------------------------------------------------------------------------
// LC-03
// ----------------------------------------------------------------------------------------------

async fn version_fallback(probe: &Probe) -> Verdict {
    let init = match initialize_once(probe, BOGUS_VERSION).await {
        Ok(i) => i,
        Err(v) => return v,
    };
    close_sessions(probe, init.session).await;
    let judged = match &init.answer {
        Answer::Version(v) if v == BOGUS_VERSION => {
            Judged::Fail(format!("asked {BOGUS_VERSION}, the server echoed it as if it supported that revision"))
        }
        Answer::Version(v) if !date_shaped(v) => Judged::Fail(format!(
            "asked {BOGUS_VERSION}, answered protocolVersion {:?}, not a revision",
            truncate(v, 40)
        )),
        Answer::Version(v) => {
            let latest = probe.version();
            if date_shaped(latest) && latest > v.as_str() && KNOWN_REVISIONS.contains(&latest) {
                Judged::Warn(format!(
                    "asked {BOGUS_VERSION}, offered {v}, not its latest ({latest}, negotiated when asked for it)"
                ))
            } else {
                let known =
                    if KNOWN_REVISIONS.contains(&v.as_str()) { "" } else { " (a revision mcproof does not know)" };
                Judged::Ok(format!("asked {BOGUS_VERSION}, offered {v}{known}"))
            }
        }
        Answer::Missing => Judged::Fail(format!("asked {BOGUS_VERSION}, the result has no string protocolVersion")),
        Answer::Error(code) => Judged::Warn(format!(
            "asked {BOGUS_VERSION}, refused with error {} instead of offering a supported version (matches the \
             spec's error-handling example, not its MUST)",
            code.map_or("(no code)".into(), |c| c.to_string())
        )),
        Answer::Nothing(why) if why.starts_with("HTTP 4") => {
            Judged::Warn(format!("asked {BOGUS_VERSION}, refused ({why}) instead of offering a supported version"))
        }
        Answer::Nothing(why) => Judged::Fail(format!("asked {BOGUS_VERSION}, no version was offered ({why})")),
    };
    fold(vec![judged], vec![init.exchange])
}

// ----------------------------------------------------------------------------------------------
// LC-06
// ----------------------------------------------------------------------------------------------

async fn honest_capabilities(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let caps = conn.capabilities().clone();
    let features: [(&str, &str, Value); 4] = [
        ("tools", "tools/list", json!({})),
        ("resources", "resources/list", json!({})),
        ("prompts", "prompts/list", json!({})),
        (
            "completions",
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "mcproof-no-such-prompt" }, "argument": { "name": "x", "value": "" } }),
        ),
    ];
    let mut judged = Vec::new();
    let mut evidence = Vec::new();
    for (cap, method, params) in features {
        let declared = caps.get(cap).is_some_and(|c| !c.is_null());
        let id = json!(probe.next_id());
        let reply = conn.request(method, &id, method, Some(params)).await;
        let response = reply.messages.iter().find(|m| is_response(m) && m.get("id") == Some(&id));
        let state = if declared { "declared" } else { "not declared" };
        judged.push(match (declared, response) {
            (true, Some(m)) if m.get("result").is_some() => Judged::Ok(format!("{cap} declared and {method} works")),
            (false, Some(m)) if m.get("result").is_some() => {
                Judged::Fail(format!("{method} works but the {cap} capability is not declared"))
            }
            (true, Some(m)) if error_code(m) == Some(METHOD_NOT_FOUND) => {
                Judged::Fail(format!("{cap} is declared but {method} answers -32601 Method not found"))
            }
            (false, Some(m)) if error_code(m) == Some(METHOD_NOT_FOUND) => {
                Judged::Ok(format!("{cap} not declared and {method} answers -32601"))
            }
            // A declared completion/complete may refuse our unknown prompt reference.
            (true, Some(m)) if cap == "completions" => Judged::Ok(format!(
                "{cap} declared; {method} refused an unknown reference with error {}",
                error_code(m).map_or("(no code)".into(), |c| c.to_string())
            )),
            (_, Some(m)) => Judged::Warn(format!(
                "{cap} {state}; {method} answered error {} (expected {})",
                error_code(m).map_or("(no code)".into(), |c| c.to_string()),
                if declared { "a result" } else { "-32601" }
            )),
            (_, None) => Judged::Warn(format!("{cap} {state}; {method} got no JSON-RPC response ({})", reply.how())),
        });
        evidence.push(reply.exchange);
    }
    conn.close().await;
    fold(judged, evidence)
}

// ----------------------------------------------------------------------------------------------
// Watching what the server sends on its own (LC-04, LC-05).
// ----------------------------------------------------------------------------------------------

/// How long the server is watched for unsolicited messages.
const WATCH: Duration = Duration::from_millis(1500);

/// Server-to-client requests that need a client capability (LC-04).
const GATED: &[(&str, &str)] =
    &[("sampling/createMessage", "sampling"), ("elicitation/create", "elicitation"), ("roots/list", "roots")];

/// A message the server sent, and where it arrived.
struct Seen {
    message: Value,
    at: String,
}

/// The method of a server-to-client request (a `method` and a non-null `id`).
fn request_method(m: &Value) -> Option<&str> {
    let id = m.get("id")?;
    if id.is_null() {
        return None;
    }
    m.get("method")?.as_str()
}

/// The method of a notification (a `method`, no `id`).
fn notification_method(m: &Value) -> Option<&str> {
    if m.get("id").is_some() {
        return None;
    }
    m.get("method")?.as_str()
}

fn show_id(m: &Value) -> String {
    m.get("id").map_or_else(|| "(none)".to_owned(), |id| truncate(&id.to_string(), 40))
}

/// Every server-initiated message of an HTTP answer (requests and notifications, not responses).
fn seen_in(r: &HttpResponse, at: &str, out: &mut Vec<Seen>) {
    for m in &r.messages {
        if m.get("method").is_some() {
            out.push(Seen { message: m.clone(), at: at.to_owned() });
        }
    }
}

/// Every server-initiated message among stdout lines.
fn seen_on_stdout(lines: &[Line], at: &str, out: &mut Vec<Seen>) {
    for line in lines {
        let items = match &line.json {
            Some(Value::Array(items)) => items.clone(),
            Some(v @ Value::Object(_)) => vec![v.clone()],
            _ => continue,
        };
        for m in items {
            if m.get("method").is_some() {
                out.push(Seen { message: m, at: at.to_owned() });
            }
        }
    }
}

/// Reads stdout lines for `wait` (bounded in count).
async fn watch_stdout(conn: &mut crate::client::StdioConn, wait: Duration) -> Vec<Line> {
    let deadline = Instant::now() + wait;
    let mut lines = Vec::new();
    while let Some(line) = conn.next_line(deadline.saturating_duration_since(Instant::now())).await {
        lines.push(line);
        if lines.len() >= 256 {
            break;
        }
    }
    lines
}

/// An evidence record of stdout lines read while only watching.
fn watch_exchange(label: &str, command: &str, lines: &[Line], elapsed: Duration) -> Exchange {
    let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    Exchange {
        label: label.to_owned(),
        request: RequestRecord {
            method: "stdio".into(),
            target: command.to_owned(),
            headers: Vec::new(),
            body: String::new(),
        },
        response: (!lines.is_empty()).then(|| {
            let (body, truncated) = excerpt(text.join("\n").as_bytes());
            ResponseRecord { status: 0, headers: Vec::new(), body, truncated }
        }),
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        error: None,
    }
}

/// How the GET stream went, for messages.
fn get_outcome(r: &HttpResponse) -> String {
    match r.status {
        Some(s) if r.is_sse() => format!("the GET stream (HTTP {s})"),
        Some(s) => format!("no GET stream (the server answered GET with HTTP {s})"),
        None => format!("the GET stream could not be opened ({})", r.error.as_deref().unwrap_or("no response")),
    }
}

/// A GET of the standalone stream in `session`, read for [`WATCH`].
fn get_stream(session: &McpSession, label: &str) -> HttpRequest {
    let mut req = HttpRequest::new(label, Method::GET).in_session(session);
    req.stream_for = Some(WATCH);
    req
}

// ----------------------------------------------------------------------------------------------
// LC-04
// ----------------------------------------------------------------------------------------------

fn judge_gated(seen: &[Seen], watched: &str) -> Verdict {
    let violations: Vec<String> = seen
        .iter()
        .filter_map(|s| {
            let method = request_method(&s.message)?;
            let (_, cap) = GATED.iter().find(|(m, _)| *m == method)?;
            Some(format!(
                "request `{method}` (id {}) arrived on {} although the client declared no `{cap}` capability",
                show_id(&s.message),
                s.at
            ))
        })
        .collect();
    if !violations.is_empty() {
        let more = violations.len().saturating_sub(3);
        let mut text = violations.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
        if more > 0 {
            text.push_str(&format!(" (and {more} more)"));
        }
        return Verdict::fail(text);
    }
    let others: BTreeSet<String> =
        seen.iter().filter_map(|s| s.message.get("method")?.as_str().map(|m| truncate(m, 60))).collect();
    let also = if others.is_empty() {
        "nothing unsolicited arrived".to_owned()
    } else {
        format!("other server messages seen: {}", others.into_iter().collect::<Vec<_>>().join(", "))
    };
    Verdict::pass(format!(
        "initialized with capabilities {{}} and watched for {} ms ({watched}): no sampling, elicitation or roots \
         request arrived; {also}",
        WATCH.as_millis()
    ))
}

async fn no_requests_without_capability(probe: &Probe) -> Verdict {
    if let Ok(stdio) = probe.stdio() {
        let mut conn = match stdio.spawn() {
            Ok(c) => c,
            Err(e) => return Verdict::error(format!("could not start the server: {e}")),
        };
        let mut seen = Vec::new();
        let init = conn.initialize(PREFERRED_REVISION).await;
        if init.response.as_ref().and_then(|r| r.get("result")).is_none() {
            let why = init.error.clone().unwrap_or_else(|| "initialize was answered with an error".into());
            let _ = conn.close(Duration::from_secs(2)).await;
            return Verdict::error(format!("could not initialize: {why}")).with(init.exchange);
        }
        seen_on_stdout(&init.lines, "stdout during initialize", &mut seen);
        let list = conn.request(probe.next_id(), "tools/list", json!({})).await;
        seen_on_stdout(&list.lines, "stdout during tools/list", &mut seen);
        let ping = conn.request(probe.next_id(), "ping", json!({})).await;
        seen_on_stdout(&ping.lines, "stdout during ping", &mut seen);
        let rest = watch_stdout(&mut conn, WATCH).await;
        seen_on_stdout(&rest, "stdout while idle", &mut seen);
        let command = stdio.target().command.clone();
        let idle = watch_exchange("stdout watched while idle", &command, &rest, WATCH);
        let _ = conn.close(Duration::from_secs(2)).await;
        return judge_gated(&seen, "stdout after initialize, tools/list and ping").with_all([
            init.exchange,
            list.exchange,
            ping.exchange,
            idle,
        ]);
    }
    let (http, session) = match probe.session().await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let get = http.send(get_stream(&session, "GET stream (watched while tools/list and ping are sent)"));
    let posts = async {
        // Let the GET stream open first, so that nothing routed to it is missed.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let list = http.request(&session, probe.next_id(), "tools/list", json!({})).await;
        let ping = http.request(&session, probe.next_id(), "ping", json!({})).await;
        (list, ping)
    };
    let (get, (list, ping)) = tokio::join!(get, posts);
    if session.id.is_some() {
        let _ = http.delete(&session).await;
    }
    let mut seen = Vec::new();
    seen_in(&get, "the GET stream", &mut seen);
    seen_in(&list, "the tools/list POST answer", &mut seen);
    seen_in(&ping, "the ping POST answer", &mut seen);
    let watched = format!("{}, the tools/list and ping POST answers", get_outcome(&get));
    judge_gated(&seen, &watched).with_all([get.exchange, list.exchange, ping.exchange])
}

// ----------------------------------------------------------------------------------------------
// LC-05
// ----------------------------------------------------------------------------------------------

fn judge_early(seen: &[Seen], watched: &str) -> Verdict {
    let requests: Vec<String> = seen
        .iter()
        .filter_map(|s| {
            let method = request_method(&s.message)?;
            (method != "ping")
                .then(|| format!("request `{}` (id {}) on {}", truncate(method, 60), show_id(&s.message), s.at))
        })
        .collect();
    if !requests.is_empty() {
        return Verdict::fail(format!(
            "before notifications/initialized the server sent {} (only ping requests and logging are allowed)",
            requests.join("; ")
        ));
    }
    let pings = seen.iter().filter(|s| request_method(&s.message) == Some("ping")).count();
    let logs = seen.iter().filter(|s| notification_method(&s.message) == Some("notifications/message")).count();
    let others: BTreeSet<String> =
        seen.iter().filter_map(notification_method_of).filter(|m| m != "notifications/message").collect();
    let mut what = format!("{pings} ping request(s) and {logs} log notification(s)");
    if !others.is_empty() {
        what.push_str(&format!(
            "; other notifications (not requests, so not covered by the rule): {}",
            others.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Verdict::pass(format!(
        "initialized without sending notifications/initialized and watched for {} ms ({watched}): no request other \
         than ping arrived ({what})",
        WATCH.as_millis()
    ))
}

fn notification_method_of(s: &Seen) -> Option<String> {
    notification_method(&s.message).map(|m| truncate(m, 60))
}

async fn quiet_before_initialized(probe: &Probe) -> Verdict {
    let id = json!(probe.next_id());
    let Some(id_num) = id.as_u64() else { return Verdict::error("internal: request id is not a number") };
    let body = initialize_body(id_num, PREFERRED_REVISION);
    if let Ok(stdio) = probe.stdio() {
        let mut conn = match stdio.spawn() {
            Ok(c) => c,
            Err(e) => return Verdict::error(format!("could not start the server: {e}")),
        };
        let started = Instant::now();
        let init = conn
            .exchange("initialize (notifications/initialized is not sent)", body.to_string().as_bytes(), Some(&id))
            .await;
        if init.response.as_ref().and_then(|r| r.get("result")).is_none() {
            let why = init.error.clone().unwrap_or_else(|| "initialize was answered with an error".into());
            let _ = conn.close(Duration::from_secs(2)).await;
            return Verdict::error(format!("could not initialize: {why}")).with(init.exchange);
        }
        let mut seen = Vec::new();
        seen_on_stdout(&init.lines, "stdout during initialize", &mut seen);
        let rest = watch_stdout(&mut conn, WATCH).await;
        seen_on_stdout(&rest, "stdout after the initialize response", &mut seen);
        let command = stdio.target().command.clone();
        let idle = watch_exchange("stdout watched before initialized", &command, &rest, started.elapsed());
        let _ = conn.close(Duration::from_secs(2)).await;
        return judge_early(&seen, "stdout").with_all([init.exchange, idle]);
    }
    let http = match probe.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let init = http.send(HttpRequest::post("initialize (notifications/initialized is not sent)", &body)).await;
    let Some(result) = init.response_to(&id).and_then(|m| m.get("result")).cloned() else {
        let why = match (&init.error, init.status) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) => format!("no initialize result (HTTP {s})"),
            (None, None) => "no response".into(),
        };
        return Verdict::error(format!("could not initialize: {why}")).with(init.exchange);
    };
    let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or(PREFERRED_REVISION).to_owned();
    let session = McpSession { id: init.header("mcp-session-id").map(str::to_owned), version, result };
    let get = http.send(get_stream(&session, "GET stream before notifications/initialized")).await;
    if session.id.is_some() {
        let _ = http.delete(&session).await;
    }
    let mut seen = Vec::new();
    seen_in(&init, "the initialize POST answer", &mut seen);
    seen_in(&get, "the GET stream", &mut seen);
    let watched = format!("the initialize answer, {}", get_outcome(&get));
    judge_early(&seen, &watched).with_all([init.exchange, get.exchange])
}
