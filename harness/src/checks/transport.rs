//! Checks of the `transport` area: the Streamable HTTP rules of MCP (basic/transports): Origin
//! and Host validation, the protocol-version header, status codes and content types, the GET
//! stream, SSE event ids, and a bound on request bodies.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::Method;
use serde_json::{Value, json};

use crate::check::{ALL_REVISIONS, Check, CheckInfo, FROM_2025_06_18, Kind, Level, Transport, Verdict};
use crate::client::http::{HttpResponse, PREFERRED_REVISION, initialize_body};
use crate::client::{HttpClient, HttpRequest, McpSession};
use crate::evidence::Exchange;
use crate::probe::{Probe, truncate};

const HTTP: &[Transport] = &[Transport::Http];
/// Revisions with `initialize`, `Mcp-Session-Id`, the GET stream and SSE resumability (all
/// removed in 2026-07-28).
pub(crate) const SESSION_REVISIONS: &[&str] = &["2025-03-26", "2025-06-18", "2025-11-25"];

const EVIL_ORIGIN: &str = "https://evil.example";
const EVIL_HOST: &str = "evil.example.com";
/// How long a GET stream is read before the harness lets go of it.
pub(crate) const STREAM_WINDOW: Duration = Duration::from_millis(1000);

/// The checks of this area.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            info: CheckInfo {
                id: "transport/origin-forbidden",
                title: "A foreign Origin is refused with 403 on every method",
                level: Level::Must,
                weight: 12,
                source: "basic/transports §Security Warning 1; spec-checks HT-01",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "Sends `Origin: https://evil.example` on an initialize POST, then, in a valid session, on a \
                    request POST, a GET and a DELETE. Every one must be answered with HTTP 403 (GET and DELETE may \
                    also be 405 where the server offers no such method). A foreign-Origin request that is served \
                    (2xx, or a result in the body) fails; another refusal status is a warning. Afterwards the session \
                    must still be alive: a DELETE from the foreign Origin must not end it.",
                remediation: "Validate the Origin header on every request before any MCP handling: if it is present \
                    and not one of the origins you serve, answer 403 (optionally with a JSON-RPC error without an id). \
                    This is what stops a web page from driving a local MCP server through the user's browser.",
            },
            run: run_origin_forbidden,
        },
        Check {
            info: CheckInfo {
                id: "transport/origin-null-refused",
                title: "The opaque `Origin: null` is refused",
                level: Level::BestPractice,
                weight: 3,
                source: "basic/transports §Security Warning 1 (the spec is silent on `null`); spec-checks HT-02",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "Sends initialize with `Origin: null`, which browsers send from sandboxed iframes, \
                    `file:`, `data:` pages and after cross-origin redirects, so any web page can produce it. A 4xx \
                    passes; serving it (2xx) fails. Requests without any Origin (non-browser clients) must still \
                    be served; discovery already proved that, since the harness sends no Origin.",
                remediation: "Treat `null` as a foreign origin: answer 403. Never put `null` in an Origin allow-list.",
            },
            run: run_origin_null_refused,
        },
        Check {
            info: CheckInfo {
                id: "transport/host-validated",
                title: "A local server refuses a foreign Host header (DNS rebinding)",
                level: Level::Should,
                weight: 6,
                source: "basic/transports §Security Warning; basic/security_best_practices §Local MCP Server \
                    Compromise; spec-checks HT-03",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "Loopback targets only. Sends initialize with `Host: evil.example.com` (same port) and no \
                    Origin, then a GET in a valid session with that Host, as a page on a rebound attacker domain \
                    would (a same-origin GET carries no Origin, so only the Host tells). Both must be refused with a \
                    4xx (403 or 421); serving either fails. A control initialize with the target's own Host, set \
                    the same way, must be served, else the result is an ERROR. Remote targets are skipped: their \
                    accepted names are the operator's choice. Over HTTP/2 the header travels beside `:authority`.",
                remediation: "Check the Host header of every request against the names the server answers to \
                    (localhost, 127.0.0.1, [::1] and configured names) and refuse others with 421 or 403.",
            },
            run: run_host_validated,
        },
        Check {
            info: CheckInfo {
                id: "transport/version-header-invalid",
                title: "An invalid or unsupported MCP-Protocol-Version is refused with 400",
                level: Level::Must,
                weight: 8,
                source: "basic/transports §Protocol Version Header; spec-checks HT-05",
                revisions: FROM_2025_06_18,
                transports: HTTP,
                kind: Kind::Active,
                description: "In a valid session, sends a request POST and a GET with `MCP-Protocol-Version: banana`, \
                    then with `MCP-Protocol-Version: 1999-01-01`. Each must get HTTP 400 (a GET may get 405 if the \
                    server offers no GET stream). Serving any of them fails; another refusal status warns.",
                remediation: "Parse the MCP-Protocol-Version header on every request; if it is present and not a \
                    revision the server supports, answer 400 Bad Request.",
            },
            run: run_version_header_invalid,
        },
        Check {
            info: CheckInfo {
                id: "transport/version-header-missing",
                title: "A request without MCP-Protocol-Version is still served",
                level: Level::Should,
                weight: 4,
                source: "basic/transports §Protocol Version Header (backwards compatibility); spec-checks HT-06",
                revisions: FROM_2025_06_18,
                transports: HTTP,
                kind: Kind::Active,
                description: "In a valid session, sends a request without the MCP-Protocol-Version header. The \
                    server knows the negotiated version from the session (or should assume 2025-03-26), so the \
                    request must be served; a refusal (400 or another error status) fails.",
                remediation: "When the header is missing, use the version negotiated for the session, or assume \
                    2025-03-26; refuse only present-but-invalid values.",
            },
            run: run_version_header_missing,
        },
        Check {
            info: CheckInfo {
                id: "transport/notification-202",
                title: "Accepted notifications and responses get 202 with no body",
                level: Level::Must,
                weight: 8,
                source: "basic/transports §Sending Messages to the Server 4; spec-checks HT-11",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "After initialize, POSTs `notifications/initialized`: it must be answered 202 with an \
                    empty body. Then POSTs a JSON-RPC response object to a request the server never sent: it must \
                    get 202 (empty body) or an HTTP error status. A 200, or a 202 with a body, fails.",
                remediation: "Answer every POSTed notification or response you accept with 202 Accepted and no \
                    body; refuse the ones you cannot accept with a 4xx.",
            },
            run: run_notification_202,
        },
        Check {
            info: CheckInfo {
                id: "transport/response-content-type",
                title: "A request is answered as application/json or text/event-stream",
                level: Level::Must,
                weight: 8,
                source: "basic/transports §Sending Messages to the Server 5; spec-checks HT-12",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "POSTs `tools/list` (or `ping` when the server has no tools capability) with \
                    `Accept: application/json, text/event-stream`. The answer's Content-Type must be one of the two. \
                    A JSON answer must be the JSON-RPC response to the request (else FAIL); an event stream should \
                    carry it (else WARN).",
                remediation: "Answer JSON-RPC requests with `Content-Type: application/json` and one JSON object, or \
                    with `Content-Type: text/event-stream` and an SSE stream that carries the response.",
            },
            run: run_response_content_type,
        },
        Check {
            info: CheckInfo {
                id: "transport/get-stream",
                title: "GET opens an SSE stream (or 405) that carries no responses",
                level: Level::Must,
                weight: 8,
                source: "basic/transports §Listening for Messages from the Server 3-4; spec-checks HT-13",
                revisions: SESSION_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "In a valid session, GETs the endpoint with `Accept: text/event-stream` and reads the \
                    stream for about a second while POSTing a request in the same session. The GET must be \
                    answered 200 with `text/event-stream`, or 405. A 2xx that is not an event stream fails, and so \
                    does any JSON-RPC response (result or error) on the GET stream. Other statuses warn.",
                remediation: "Serve GET on the MCP endpoint as an SSE stream for server-initiated requests and \
                    notifications only, or answer 405 Method Not Allowed. Send responses on the stream of the POST \
                    that carried the request.",
            },
            run: run_get_stream,
        },
        Check {
            info: CheckInfo {
                id: "transport/sse-event-ids",
                title: "SSE event ids are unique across the streams of a session",
                level: Level::Must,
                weight: 8,
                source: "basic/transports §Resumability and Redelivery 1, §Sending Messages to the Server 6; \
                    spec-checks HT-15, HT-17",
                revisions: SESSION_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "In one session, POSTs two requests and opens the GET stream twice in a row (about a \
                    second each), collecting every SSE event of every stream. An event id that repeats (within or \
                    across streams) fails: a client resuming with Last-Event-ID could then be replayed another \
                    stream's messages. With 2025-11-25, a POST-initiated stream that does not open with a priming \
                    event (an id and empty data) warns. Skipped when the server opens no SSE stream at all.",
                remediation: "Draw SSE event ids from one counter (or random source) per session, or encode the \
                    stream in the id, so that no id is ever reused within a session; open each POST stream with an \
                    event that has an id and empty data.",
            },
            run: run_sse_event_ids,
        },
        Check {
            info: CheckInfo {
                id: "transport/body-limit",
                title: "An oversized request body (2 MiB) is refused, not processed",
                level: Level::BestPractice,
                weight: 4,
                source: "basic/security_best_practices (resource exhaustion); OWASP API4:2023 Unrestricted \
                    Resource Consumption",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "POSTs a 2 MiB `ping` request (the bulk in `params._meta`, in short strings) in a valid \
                    session. MCP messages are small; the server should refuse it with 413 or another 4xx. Serving \
                    it (2xx), failing with a 5xx, or not answering within the client timeout fails; a connection \
                    closed without an HTTP status warns.",
                remediation: "Cap request bodies (1 MiB or less is plenty for MCP) before reading them into \
                    memory: check Content-Length and stop reading at the cap, answering 413 Payload Too Large.",
            },
            run: run_body_limit,
        },
    ]
}

fn run_origin_forbidden(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(origin_forbidden(p))
}
fn run_origin_null_refused(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(origin_null_refused(p))
}
fn run_host_validated(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(host_validated(p))
}
fn run_version_header_invalid(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(version_header_invalid(p))
}
fn run_version_header_missing(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(version_header_missing(p))
}
fn run_notification_202(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(notification_202(p))
}
fn run_response_content_type(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(response_content_type(p))
}
fn run_get_stream(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(get_stream(p))
}
fn run_sse_event_ids(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(sse_event_ids(p))
}
fn run_body_limit(p: &Probe) -> BoxFuture<'_, Verdict> {
    Box::pin(body_limit(p))
}

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by the `sessions` area).

/// A harmless request every server answers: `tools/list` when tools are declared, else `ping`.
pub(crate) fn harmless_request(p: &Probe) -> (Value, &'static str) {
    let id = p.next_id();
    let method = if p.inventory.capabilities().get("tools").is_some() { "tools/list" } else { "ping" };
    (json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": {} }), method)
}

/// `HTTP 403`, or what went wrong when no status came back.
pub(crate) fn status_of(r: &HttpResponse) -> String {
    match (r.status, &r.error) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => format!("no HTTP answer ({})", truncate(e, 120)),
        (None, None) => "no HTTP answer".to_owned(),
    }
}

/// Whether a request was served: a 2xx status, or a JSON-RPC result in the body whatever the status.
pub(crate) fn served(r: &HttpResponse) -> bool {
    r.status_in(200..=299) || r.messages.iter().any(|m| m.get("result").is_some())
}

/// Ends a session the check opened (best effort; not evidence).
pub(crate) async fn close(http: &HttpClient, session: &McpSession) {
    if session.id.is_some() {
        let _ = http.delete(session).await;
    }
}

/// Ends a session known only by the id an initialize response carried (best effort).
pub(crate) async fn close_raw(http: &HttpClient, r: &HttpResponse) {
    if let Some(id) = r.header("mcp-session-id") {
        let req = HttpRequest::new("DELETE session", Method::DELETE).header("mcp-session-id", id);
        let _ = http.send(req).await;
    }
}

/// A GET on the endpoint, read for [`STREAM_WINDOW`] at most.
pub(crate) fn get_request(label: impl Into<String>) -> HttpRequest {
    let mut req = HttpRequest::new(label, Method::GET);
    req.stream_for = Some(STREAM_WINDOW);
    req
}

/// A fresh random token of `bytes` random bytes, base64url without padding.
pub(crate) fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// How one refusal probe came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Refused the way the rule wants.
    Refused,
    /// Served: the violation.
    Served,
    /// Refused (or not answered) some other way.
    Other,
}

/// Findings collected over several probes of one check.
#[derive(Default)]
struct Tally {
    served: Vec<String>,
    other: Vec<String>,
    fine: Vec<String>,
    evidence: Vec<Exchange>,
}

impl Tally {
    fn add(&mut self, what: &str, r: HttpResponse, outcome: Outcome) {
        let line = format!("{what} → {}", status_of(&r));
        match outcome {
            Outcome::Refused => self.fine.push(line),
            Outcome::Served => self.served.push(line),
            Outcome::Other => self.other.push(line),
        }
        self.evidence.push(r.exchange);
    }

    /// FAIL if anything was served, WARN if anything was refused the wrong way, else PASS.
    fn verdict(self, fail: &str, warn: &str, pass: &str) -> Verdict {
        let v = if !self.served.is_empty() {
            let mut msg = format!("{fail}: {}", self.served.join("; "));
            if !self.other.is_empty() {
                msg.push_str(&format!(" (also: {})", self.other.join("; ")));
            }
            Verdict::fail(msg)
        } else if !self.other.is_empty() {
            Verdict::warn(format!("{warn}: {}", self.other.join("; ")))
        } else {
            Verdict::pass(format!("{pass}: {}", self.fine.join("; ")))
        };
        v.with_all(self.evidence)
    }
}

/// Classifies a probe that must be refused with `wanted` (or 405 when `allow_405`).
fn refusal(r: &HttpResponse, wanted: impl Fn(u16) -> bool, allow_405: bool) -> Outcome {
    if served(r) {
        Outcome::Served
    } else if r.status.is_some_and(&wanted) || (allow_405 && r.status == Some(405)) {
        Outcome::Refused
    } else {
        Outcome::Other
    }
}

// ---------------------------------------------------------------------------------------------

async fn origin_forbidden(p: &Probe) -> Verdict {
    let http = match p.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let mut tally = Tally::default();
    let init = HttpRequest::post(
        format!("initialize with Origin: {EVIL_ORIGIN}"),
        &initialize_body(p.next_id(), PREFERRED_REVISION),
    )
    .header("origin", EVIL_ORIGIN);
    let r = http.send(init).await;
    close_raw(http, &r).await;
    let outcome = refusal(&r, |s| s == 403, false);
    tally.add("initialize", r, outcome);

    let (http, session) = match p.session().await {
        Ok(s) => s,
        Err(v) => return v.with_all(tally.evidence),
    };
    let (body, method) = harmless_request(p);
    let post = HttpRequest::post(format!("{method} in session with Origin: {EVIL_ORIGIN}"), &body)
        .in_session(&session)
        .header("origin", EVIL_ORIGIN);
    let r = http.send(post).await;
    let outcome = refusal(&r, |s| s == 403, false);
    tally.add(method, r, outcome);

    let get = get_request(format!("GET in session with Origin: {EVIL_ORIGIN}"))
        .in_session(&session)
        .header("origin", EVIL_ORIGIN);
    let r = http.send(get).await;
    let outcome = refusal(&r, |s| s == 403, true);
    tally.add("GET", r, outcome);

    if session.id.is_some() {
        let delete = HttpRequest::new(format!("DELETE session with Origin: {EVIL_ORIGIN}"), Method::DELETE)
            .in_session(&session)
            .header("origin", EVIL_ORIGIN);
        let r = http.send(delete).await;
        let outcome = refusal(&r, |s| s == 403, true);
        tally.add("DELETE", r, outcome);
        // The foreign DELETE must not have ended the session.
        let (body, method) = harmless_request(p);
        let after = http
            .send(
                HttpRequest::post(format!("{method} in the same session, no Origin (still alive?)"), &body)
                    .in_session(&session),
            )
            .await;
        if after.status == Some(404) {
            tally.served.push("the foreign-Origin DELETE ended the session (a later request got 404)".into());
        }
        tally.evidence.push(after.exchange);
        close(http, &session).await;
    }
    tally.verdict(
        "a request with a foreign Origin was not refused with 403",
        "foreign-Origin requests were refused, but not with the 403 the spec requires",
        "every foreign-Origin request was refused",
    )
}

async fn origin_null_refused(p: &Probe) -> Verdict {
    let http = match p.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let init = HttpRequest::post("initialize with Origin: null", &initialize_body(p.next_id(), PREFERRED_REVISION))
        .header("origin", "null");
    let r = http.send(init).await;
    close_raw(http, &r).await;
    let status = status_of(&r);
    let v = if served(&r) {
        Verdict::fail(format!(
            "initialize with `Origin: null` was served ({status}); any web page can send that Origin"
        ))
    } else if r.status_in(400..=499) {
        Verdict::pass(format!("initialize with `Origin: null` was refused ({status})"))
    } else {
        Verdict::warn(format!("initialize with `Origin: null` got {status}: neither served nor clearly refused"))
    };
    v.with(r.exchange)
}

async fn host_validated(p: &Probe) -> Verdict {
    let http = match p.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let url = http.url().clone();
    if !http.target().is_loopback() {
        return Verdict::skip(format!(
            "not applicable: {} is not a loopback target; DNS rebinding aims at local servers, and the names a \
             remote server answers to are its operator's choice",
            url.host_str().unwrap_or("the target")
        ));
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let own_host = format!("{}{port}", url.host_str().unwrap_or("localhost"));
    let evil_host = format!("{EVIL_HOST}{port}");

    // Control: the target's own Host, set explicitly the same way, must be served.
    let control_id = p.next_id();
    let control = HttpRequest::post(
        format!("initialize with Host: {own_host} (control)"),
        &initialize_body(control_id, PREFERRED_REVISION),
    )
    .header("host", &own_host);
    let control = http.send(control).await;
    close_raw(http, &control).await;
    if control.response_to(&json!(control_id)).is_none_or(|m| m.get("result").is_none()) {
        return Verdict::error(format!(
            "the control initialize with the target's own Host header was not served ({}), so a refused foreign \
             Host would prove nothing",
            status_of(&control)
        ))
        .with(control.exchange);
    }

    let mut tally = Tally::default();
    tally.evidence.push(control.exchange);
    let init = HttpRequest::post(
        format!("initialize with Host: {evil_host}, no Origin"),
        &initialize_body(p.next_id(), PREFERRED_REVISION),
    )
    .header("host", &evil_host);
    let r = http.send(init).await;
    close_raw(http, &r).await;
    let outcome = refusal(&r, |s| (400..=499).contains(&s), false);
    tally.add("initialize with a foreign Host", r, outcome);

    let (http, session) = match p.session().await {
        Ok(s) => s,
        Err(v) => return v.with_all(tally.evidence),
    };
    let get =
        get_request(format!("GET in session with Host: {evil_host}")).in_session(&session).header("host", &evil_host);
    let r = http.send(get).await;
    let outcome = refusal(&r, |s| (400..=499).contains(&s), true);
    tally.add("GET with a foreign Host", r, outcome);
    close(http, &session).await;
    tally.verdict(
        "a request with a foreign Host header was served (the server is open to DNS rebinding)",
        "a request with a foreign Host header was neither served nor refused with a 4xx",
        "requests with a foreign Host header were refused",
    )
}

async fn version_header_invalid(p: &Probe) -> Verdict {
    let (http, session) = match p.session().await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let mut tally = Tally::default();
    for value in ["banana", "1999-01-01"] {
        let (body, method) = harmless_request(p);
        let post = HttpRequest::post(format!("{method} with MCP-Protocol-Version: {value}"), &body)
            .in_session(&session)
            .header("mcp-protocol-version", value);
        let r = http.send(post).await;
        let outcome = refusal(&r, |s| s == 400, false);
        tally.add(&format!("POST with `{value}`"), r, outcome);
        let get = get_request(format!("GET with MCP-Protocol-Version: {value}"))
            .in_session(&session)
            .header("mcp-protocol-version", value);
        let r = http.send(get).await;
        let outcome = refusal(&r, |s| s == 400, true);
        tally.add(&format!("GET with `{value}`"), r, outcome);
    }
    close(http, &session).await;
    tally.verdict(
        "a request with an invalid MCP-Protocol-Version was served",
        "requests with an invalid MCP-Protocol-Version were refused, but not with 400",
        "every request with an invalid MCP-Protocol-Version got 400",
    )
}

async fn version_header_missing(p: &Probe) -> Verdict {
    let (http, session) = match p.session().await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let (body, method) = harmless_request(p);
    let id = body["id"].clone();
    let req = HttpRequest::post(format!("{method} without MCP-Protocol-Version"), &body)
        .in_session(&session)
        .without("mcp-protocol-version");
    let r = http.send(req).await;
    close(http, &session).await;
    let status = status_of(&r);
    let v = if r.status_in(200..=299) && r.response_to(&id).is_some() {
        Verdict::pass(format!("{method} without MCP-Protocol-Version was served ({status})"))
    } else if r.status.is_some_and(|s| s >= 400) {
        Verdict::fail(format!(
            "{method} without MCP-Protocol-Version was refused ({status}); the server should use the negotiated \
             version (or assume 2025-03-26)"
        ))
    } else {
        Verdict::warn(format!("{method} without MCP-Protocol-Version got {status} and no response to the request"))
    };
    v.with(r.exchange)
}

async fn notification_202(p: &Probe) -> Verdict {
    let http = match p.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let init_id = p.next_id();
    let init = http.send(HttpRequest::post("initialize", &initialize_body(init_id, PREFERRED_REVISION))).await;
    let Some(result) = init.response_to(&json!(init_id)).and_then(|m| m.get("result")).cloned() else {
        return Verdict::error(format!("could not open a session: initialize got {}", status_of(&init)))
            .with(init.exchange);
    };
    let session = McpSession {
        id: init.header("mcp-session-id").map(str::to_owned),
        version: result.get("protocolVersion").and_then(Value::as_str).unwrap_or(PREFERRED_REVISION).to_owned(),
        result,
    };
    let mut evidence = vec![init.exchange];
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut fine = Vec::new();

    let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let r = http.send(HttpRequest::post("notifications/initialized", &note).in_session(&session)).await;
    let empty = r.body.iter().all(u8::is_ascii_whitespace);
    match r.status {
        Some(202) if empty => fine.push("notifications/initialized → 202, empty body".to_owned()),
        Some(202) => fails.push(format!("notifications/initialized → 202 with a body ({} bytes)", r.body.len())),
        Some(s) if (200..=299).contains(&s) => {
            fails.push(format!("notifications/initialized → HTTP {s} instead of 202"))
        }
        Some(s) if s >= 400 => warns.push(format!("notifications/initialized was refused (HTTP {s})")),
        _ => warns.push(format!("notifications/initialized → {}", status_of(&r))),
    }
    evidence.push(r.exchange);

    let bogus = json!({ "jsonrpc": "2.0", "id": format!("mcproof-unsolicited-{}", p.next_id()), "result": {} });
    let mut req = HttpRequest::post("a response to a request the server never sent", &bogus).in_session(&session);
    req.until_response_to = None;
    let r = http.send(req).await;
    let empty = r.body.iter().all(u8::is_ascii_whitespace);
    match r.status {
        Some(202) if empty => fine.push("unsolicited response → 202, empty body".to_owned()),
        Some(202) => fails.push(format!("unsolicited response → 202 with a body ({} bytes)", r.body.len())),
        Some(s) if (200..=299).contains(&s) => {
            fails.push(format!("unsolicited response → HTTP {s} (neither 202 nor an error status)"))
        }
        Some(s) if (400..=499).contains(&s) => fine.push(format!("unsolicited response refused (HTTP {s})")),
        _ => warns.push(format!("unsolicited response → {}", status_of(&r))),
    }
    evidence.push(r.exchange);
    close(http, &session).await;

    let v = if !fails.is_empty() {
        Verdict::fail(format!("{} (the spec requires 202 with no body, or an HTTP error status)", fails.join("; ")))
    } else if !warns.is_empty() {
        Verdict::warn(warns.join("; "))
    } else {
        Verdict::pass(fine.join("; "))
    };
    v.with_all(evidence)
}

async fn response_content_type(p: &Probe) -> Verdict {
    let (http, session) = match p.session().await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let (body, method) = harmless_request(p);
    let id = body["id"].clone();
    let r = http.send(HttpRequest::post(method, &body).in_session(&session)).await;
    close(http, &session).await;
    let ct = r.content_type();
    let status = status_of(&r);
    let v = match (r.status, ct.as_deref()) {
        (None, _) => Verdict::error(format!("{method} got {status}")),
        (Some(s), _) if !(200..=299).contains(&s) => Verdict::error(format!("{method} was not answered ({status})")),
        (_, Some("application/json")) if r.response_to(&id).is_some() => {
            Verdict::pass(format!("{method} was answered as application/json with its response"))
        }
        (_, Some("application/json")) => Verdict::fail(format!(
            "{method} was answered as application/json, but the body is not the JSON-RPC response to the request"
        )),
        (_, Some("text/event-stream")) if r.response_to(&id).is_some() => {
            Verdict::pass(format!("{method} was answered as an SSE stream that carried its response"))
        }
        (_, Some("text/event-stream")) => Verdict::warn(format!(
            "{method} was answered as an SSE stream, but its response did not arrive within the client timeout"
        )),
        (_, Some(other)) => Verdict::fail(format!(
            "{method} was answered with Content-Type `{}`, neither application/json nor text/event-stream",
            truncate(other, 60)
        )),
        (_, None) => Verdict::fail(format!("{method} was answered ({status}) without a Content-Type")),
    };
    v.with(r.exchange)
}

async fn get_stream(p: &Probe) -> Verdict {
    let (http, session) = match p.session().await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let (body, method) = harmless_request(p);
    let post_id = body["id"].clone();
    let get = get_request("GET stream (read ~1 s while a request is POSTed)").in_session(&session);
    let post = async {
        tokio::time::sleep(Duration::from_millis(250)).await;
        http.send(HttpRequest::post(format!("{method} while the GET stream is open"), &body).in_session(&session)).await
    };
    let (g, r) = tokio::join!(http.send(get), post);
    close(http, &session).await;
    let status = status_of(&g);
    let responses: Vec<String> = g
        .messages
        .iter()
        .filter(|m| m.get("result").is_some() || m.get("error").is_some())
        .map(|m| m.get("id").map_or_else(|| "no id".to_owned(), |id| format!("id {}", truncate(&id.to_string(), 40))))
        .collect();
    let v = match g.status {
        Some(405) => Verdict::pass("GET was answered 405: the server offers no GET stream, as the spec allows"),
        Some(200) if g.is_sse() && responses.is_empty() => Verdict::pass(format!(
            "GET opened an SSE stream; {} event(s) in the window, no JSON-RPC response among them",
            g.events.len()
        )),
        Some(200) if g.is_sse() => Verdict::fail(format!(
            "the GET stream carried JSON-RPC response(s) ({}){}",
            responses.join(", "),
            if g.response_to(&post_id).is_some() { ", including the response to the concurrent POST" } else { "" }
        )),
        Some(s) if (200..=299).contains(&s) => Verdict::fail(format!(
            "GET was answered HTTP {s} with Content-Type `{}` instead of an SSE stream or 405",
            g.content_type().unwrap_or_default()
        )),
        _ => Verdict::warn(format!("GET got {status}: neither an SSE stream nor 405")),
    };
    v.with(g.exchange).with(r.exchange)
}

async fn sse_event_ids(p: &Probe) -> Verdict {
    let (http, session) = match p.session().await {
        Ok(s) => s,
        Err(v) => return v,
    };
    // (label, POST-initiated, events)
    let mut streams: Vec<(String, bool, Vec<crate::client::sse::SseEvent>)> = Vec::new();
    let mut evidence = Vec::new();
    let mut get_status = None;
    for n in 1..=2 {
        let (body, method) = harmless_request(p);
        let r = http.send(HttpRequest::post(format!("{method} #{n}"), &body).in_session(&session)).await;
        if r.is_sse() {
            streams.push((format!("POST {method} #{n}"), true, r.events.clone()));
        }
        evidence.push(r.exchange);
    }
    for n in 1..=2 {
        let mut attempt = 0;
        let r = loop {
            attempt += 1;
            let r = http.send(get_request(format!("GET stream #{n}")).in_session(&session)).await;
            // A server that allows one GET stream at a time may not have noticed the last one close.
            if r.status == Some(409) && attempt < 4 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
            break r;
        };
        get_status = Some(status_of(&r));
        if r.status == Some(200) && r.is_sse() {
            streams.push((format!("GET stream #{n}"), false, r.events.clone()));
        }
        evidence.push(r.exchange);
        if r.status != Some(200) {
            break;
        }
    }
    close(http, &session).await;
    if streams.is_empty() {
        return Verdict::skip(format!(
            "not applicable: the server opened no SSE stream (POSTs were answered with JSON, GET got {})",
            get_status.unwrap_or_else(|| "no answer".into())
        ))
        .with_all(evidence);
    }
    let mut seen: HashMap<&str, &str> = HashMap::new();
    let mut repeats = Vec::new();
    let mut count = 0;
    for (label, _, events) in &streams {
        for id in events.iter().filter_map(|e| e.id.as_deref()).filter(|id| !id.is_empty()) {
            count += 1;
            if let Some(first) = seen.insert(id, label) {
                repeats.push(format!("id `{}` on {first} and again on {label}", truncate(id, 40)));
            }
        }
    }
    let priming = p.version() >= "2025-11-25";
    let unprimed: Vec<&str> = streams
        .iter()
        .filter(|(_, post, events)| {
            *post
                && priming
                && !events.first().is_some_and(|e| e.id.as_deref().is_some_and(|i| !i.is_empty()) && e.data.is_empty())
        })
        .map(|(label, _, _)| label.as_str())
        .collect();
    let names: Vec<&str> = streams.iter().map(|(l, _, _)| l.as_str()).collect();
    let v = if !repeats.is_empty() {
        Verdict::fail(format!("SSE event ids repeat within the session: {}", repeats.join("; ")))
    } else if !unprimed.is_empty() {
        Verdict::warn(format!(
            "event ids are unique ({count} seen), but {} did not open with a priming event (an id and empty data)",
            unprimed.join(", ")
        ))
    } else {
        Verdict::pass(format!("{count} SSE event id(s) over {} ({}), none repeated", names.len(), names.join(", ")))
    };
    v.with_all(evidence)
}

/// Size of the oversized request.
const BIG_BODY: usize = 2 * 1024 * 1024;

/// A `ping` request of about `size` bytes: the bulk in `params._meta`, as many short strings so
/// that per-string limits do not refuse it before the body limit does.
pub(crate) fn padded_ping(id: u64, size: usize) -> Vec<u8> {
    let chunk = "x".repeat(1000);
    let count = size / (chunk.len() + 3) + 1;
    let pad: Vec<&str> = std::iter::repeat_n(chunk.as_str(), count).collect();
    json!({ "jsonrpc": "2.0", "id": id, "method": "ping", "params": { "_meta": { "mcproof/padding": pad } } })
        .to_string()
        .into_bytes()
}

async fn body_limit(p: &Probe) -> Verdict {
    let (http, session) = match p.session().await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let body = padded_ping(p.next_id(), BIG_BODY);
    let size = body.len();
    let req = HttpRequest::post_bytes(format!("ping with a {} KiB body", size / 1024), body).in_session(&session);
    let r = http.send(req).await;
    close(http, &session).await;
    let status = status_of(&r);
    let mib = size as f64 / (1024.0 * 1024.0);
    let v = match r.status {
        Some(413) => Verdict::pass(format!("a {mib:.1} MiB request was refused with 413")),
        Some(s) if (400..=499).contains(&s) => Verdict::pass(format!("a {mib:.1} MiB request was refused ({status})")),
        Some(s) if (200..=299).contains(&s) => {
            Verdict::fail(format!("a {mib:.1} MiB request was read and processed ({status}); no body limit below it"))
        }
        Some(s) if s >= 500 => Verdict::fail(format!("a {mib:.1} MiB request made the server fail ({status})")),
        Some(_) => Verdict::warn(format!("a {mib:.1} MiB request got {status}")),
        None if r.error.as_deref().is_some_and(|e| e.contains("timed out")) => {
            Verdict::fail(format!("a {mib:.1} MiB request was not answered within the client timeout ({status})"))
        }
        None => {
            Verdict::warn(format!("a {mib:.1} MiB request: the connection ended without an HTTP status ({status})"))
        }
    };
    v.with(r.exchange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_ping_is_valid_json_of_the_asked_size_with_short_strings() {
        let body = padded_ping(7, BIG_BODY);
        assert!(body.len() >= BIG_BODY && body.len() < BIG_BODY + 4096, "{}", body.len());
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(v["method"], "ping");
        let pad = v["params"]["_meta"]["mcproof/padding"].as_array().map(Vec::len).unwrap_or(0);
        assert!(pad > 1000);
    }
}
