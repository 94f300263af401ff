//! Runs cases against the target and judges every answer. Counts every message it puts on the
//! wire and stops at the budget or the deadline, so the bounds of a run hold exactly.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};

use super::oracle::{Failure, Oracle, Sent, check_internals, check_messages, error_texts, unanswered};
use super::{Body, SLOTS, Step};
use crate::check::Transport;
use crate::client::http::{HttpResponse, PREFERRED_REVISION, initialize_body};
use crate::client::stdio::Line;
use crate::client::{ClientLimits, HttpClient, HttpRequest, McpSession, StdioClient, StdioConn};
use crate::evidence::{Exchange, RequestRecord, ResponseRecord, excerpt, redact_text};
use crate::target::Target;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("invalid target configuration: {0}")]
    Config(String),
    #[error("cannot reach the target: {0}")]
    Unreachable(String),
    #[error("the target does not speak MCP: {0}")]
    NotMcp(String),
}

/// What discovery learned, and the traffic it recorded (a mutation corpus).
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub version: String,
    pub server_info: Value,
    pub capabilities: Value,
    pub tools: Vec<Value>,
    pub resources: Vec<String>,
    pub templates: Vec<String>,
    pub prompts: Vec<Value>,
    /// Every message discovery sent and received.
    pub recorded: Vec<Value>,
}

/// What running a case produced.
#[derive(Debug, Clone, Default)]
pub struct CaseRun {
    pub exchanges: Vec<Exchange>,
    pub failure: Option<Failure>,
    /// The budget or the deadline ran out before the case finished.
    pub stopped: bool,
}

/// 429 answers retried per message (after the server's Retry-After, at most 2 s).
const RATE_RETRIES: usize = 3;
const MAX_TOOL_PAGES: u64 = 5;

// One per run: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Conn {
    Http(HttpClient),
    Stdio { client: StdioClient, conn: Option<StdioConn>, known: Vec<Value>, barrier: u64, startup: Duration },
}

/// Sends cases to one target.
pub struct Executor {
    conn: Conn,
    target: Target,
    timeout: Duration,
    sent: u64,
    limit: u64,
    deadline: Option<Instant>,
    /// The HTTP target has answered at least once (so a refused connection later is a crash).
    worked: bool,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("target", &self.target.describe()).field("sent", &self.sent).finish()
    }
}

impl Executor {
    pub fn new(target: &Target, timeout: Duration) -> Result<Self, ExecError> {
        let limits = ClientLimits { timeout, max_body: 1024 * 1024, max_depth: 128 };
        let conn = match target {
            Target::Http(h) => {
                Conn::Http(HttpClient::new(h.clone(), limits).map_err(|e| ExecError::Config(e.to_string()))?)
            }
            Target::Stdio(s) => Conn::Stdio {
                client: StdioClient::new(s.clone(), limits),
                conn: None,
                known: Vec::new(),
                barrier: 0,
                startup: s.startup_timeout.max(timeout),
            },
        };
        Ok(Self { conn, target: target.clone(), timeout, sent: 0, limit: u64::MAX, deadline: None, worked: false })
    }

    pub fn is_stdio(&self) -> bool {
        matches!(self.conn, Conn::Stdio { .. })
    }

    pub fn transport(&self) -> Transport {
        self.target.transport()
    }

    pub fn describe(&self) -> String {
        self.target.describe()
    }

    /// Wire messages sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Allows `n` more wire messages.
    pub fn set_budget(&mut self, n: u64) {
        self.limit = self.sent.saturating_add(n);
    }

    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.sent)
    }

    pub fn exhausted(&self) -> bool {
        self.sent >= self.limit
    }

    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Claims one wire message, or refuses at the budget or the deadline.
    fn take(&mut self) -> bool {
        if self.sent >= self.limit || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        self.sent += 1;
        true
    }

    /// Connects, initializes and lists what the server offers. Fails if the target is not
    /// reachable or does not answer `initialize`.
    pub async fn discover(&mut self) -> Result<Inventory, ExecError> {
        let mut inv = Inventory::default();
        let init = initialize_body(0, PREFERRED_REVISION);
        inv.recorded.push(init.clone());
        let result = match &mut self.conn {
            Conn::Http(http) => {
                let http = http.clone();
                self.sent += 1;
                let r = http.send(HttpRequest::post("initialize", &init)).await;
                let Some(status) = r.status else {
                    return Err(ExecError::Unreachable(r.error.unwrap_or_else(|| "no response".into())));
                };
                self.worked = true;
                inv.recorded.extend(r.messages.iter().cloned());
                let Some(result) = r.response_to(&json!(0)).and_then(|m| m.get("result")).cloned() else {
                    return Err(ExecError::NotMcp(format!("no initialize result (HTTP {status})")));
                };
                let session = McpSession {
                    id: r.header("mcp-session-id").map(str::to_owned),
                    version: result.get("protocolVersion").and_then(Value::as_str).unwrap_or(PREFERRED_REVISION).into(),
                    result: result.clone(),
                };
                let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
                self.sent += 1;
                let _ = http.send(HttpRequest::post("notifications/initialized", &note).in_session(&session)).await;
                let mut lists = vec![("tools/list".to_owned(), json!({}))];
                lists.extend(list_methods(&result));
                let mut id = 1u64;
                let mut queue = lists;
                while let Some((method, params)) = queue.pop() {
                    if id > MAX_TOOL_PAGES + 4 {
                        break;
                    }
                    let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
                    inv.recorded.push(body.clone());
                    self.sent += 1;
                    let r = http.send(HttpRequest::post(method.as_str(), &body).in_session(&session)).await;
                    inv.recorded.extend(r.messages.iter().cloned());
                    if let Some(res) = r.response_to(&json!(id)).and_then(|m| m.get("result")) {
                        absorb(&mut inv, &method, res);
                        if let Some(c) = res.get("nextCursor").filter(|c| c.is_string()) {
                            queue.push((method.clone(), json!({ "cursor": c })));
                        }
                    }
                    id += 1;
                }
                self.sent += 1;
                let _ = http.delete(&session).await;
                result
            }
            Conn::Stdio { client, conn, startup, .. } => {
                let mut c = client.spawn().map_err(ExecError::Unreachable)?;
                self.sent += 2;
                let r = c.initialize(PREFERRED_REVISION).await;
                let _ = startup;
                let Some(result) = r.response.as_ref().and_then(|m| m.get("result")).cloned() else {
                    let stderr = c.stderr();
                    let why = r.error.unwrap_or_else(|| "initialize was answered with an error".into());
                    let _ = c.close(Duration::from_secs(2)).await;
                    return Err(ExecError::NotMcp(format!("{why}; stderr: {}", crate::probe::truncate(&stderr, 300))));
                };
                inv.recorded.extend(r.response.clone());
                let mut lists = vec![("tools/list".to_owned(), json!({}))];
                lists.extend(list_methods(&result));
                let mut id = 1u64;
                while let Some((method, params)) = lists.pop() {
                    if id > MAX_TOOL_PAGES + 4 {
                        break;
                    }
                    let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
                    inv.recorded.push(body.clone());
                    self.sent += 1;
                    let r = c.exchange(&method, body.to_string().as_bytes(), Some(&json!(id))).await;
                    if let Some(m) = &r.response {
                        inv.recorded.push(m.clone());
                        if let Some(res) = m.get("result") {
                            absorb(&mut inv, &method, res);
                            if let Some(cur) = res.get("nextCursor").filter(|c| c.is_string()) {
                                lists.push((method.clone(), json!({ "cursor": cur })));
                            }
                        }
                    }
                    id += 1;
                }
                *conn = Some(c);
                result
            }
        };
        inv.version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or(PREFERRED_REVISION).to_owned();
        inv.server_info = result.get("serverInfo").cloned().unwrap_or_default();
        inv.capabilities = result.get("capabilities").cloned().unwrap_or_default();
        Ok(inv)
    }

    /// Checks that the target answers at all (one `initialize`, whose session is then ended;
    /// for stdio, that the command starts), so that replay can tell "not reproduced" from
    /// "unreachable".
    pub async fn preflight(&mut self) -> Result<(), ExecError> {
        match &mut self.conn {
            Conn::Http(http) => {
                let http = http.clone();
                self.sent += 1;
                let r = http.send(HttpRequest::post("initialize", &initialize_body(0, PREFERRED_REVISION))).await;
                if r.status.is_none() {
                    return Err(ExecError::Unreachable(r.error.unwrap_or_else(|| "no response".into())));
                }
                self.worked = true;
                if let Some(id) = r.header("mcp-session-id") {
                    let session =
                        McpSession { id: Some(id.to_owned()), version: PREFERRED_REVISION.into(), result: Value::Null };
                    self.sent += 1;
                    let _ = http.delete(&session).await;
                }
                Ok(())
            }
            Conn::Stdio { client, .. } => {
                let c = client.spawn().map_err(ExecError::Unreachable)?;
                let _ = c.close(Duration::from_millis(500)).await;
                Ok(())
            }
        }
    }

    /// Runs `steps`. `fresh` starts from a new process on stdio (for shrinking and replay);
    /// otherwise the warm process is reused. HTTP cases always open their own sessions.
    pub async fn run_case(&mut self, steps: &[Step], fresh: bool) -> CaseRun {
        if self.is_stdio() { self.run_stdio(steps, fresh).await } else { self.run_http(steps).await }
    }

    pub async fn close(&mut self) {
        if let Conn::Stdio { conn, .. } = &mut self.conn
            && let Some(c) = conn.take()
        {
            let _ = c.close(Duration::from_secs(2)).await;
        }
    }

    // ---- HTTP ----

    async fn send_http(&mut self, http: &HttpClient, req: &HttpRequest) -> Option<HttpResponse> {
        let mut last = None;
        for attempt in 0..RATE_RETRIES {
            if !self.take() {
                return last;
            }
            let r = http.send(req.clone()).await;
            if r.status.is_some() {
                self.worked = true;
            }
            if r.status != Some(429) || attempt + 1 == RATE_RETRIES {
                return Some(r);
            }
            let wait = r.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(1).clamp(1, 2);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            last = Some(r);
        }
        last
    }

    async fn run_http(&mut self, steps: &[Step]) -> CaseRun {
        let Conn::Http(http) = &self.conn else { return CaseRun::default() };
        let http = http.clone();
        let mut slots: Vec<Option<McpSession>> = vec![None; SLOTS];
        let mut deleted = [false; SLOTS];
        let mut run = CaseRun::default();
        for (index, step) in steps.iter().enumerate() {
            let verdict = match step {
                Step::Init { slot } => {
                    let slot = usize::from(*slot).min(SLOTS - 1);
                    let body = initialize_body(0, PREFERRED_REVISION);
                    let sent = Sent::of(&Body::Json(body.clone()));
                    let Some(r) = self.send_http(&http, &HttpRequest::post("initialize", &body)).await else {
                        run.stopped = true;
                        break;
                    };
                    run.exchanges.push(r.exchange.clone());
                    let verdict = self.judge_http(&http, &sent, &r, true).await;
                    if verdict.is_none()
                        && let Some(result) = r.response_to(&json!(0)).and_then(|m| m.get("result"))
                    {
                        let session = McpSession {
                            id: r.header("mcp-session-id").map(str::to_owned),
                            version: result
                                .get("protocolVersion")
                                .and_then(Value::as_str)
                                .unwrap_or(PREFERRED_REVISION)
                                .to_owned(),
                            result: result.clone(),
                        };
                        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
                        let req = HttpRequest::post("notifications/initialized", &note).in_session(&session);
                        slots[slot] = Some(session);
                        deleted[slot] = false;
                        let Some(r) = self.send_http(&http, &req).await else {
                            run.stopped = true;
                            break;
                        };
                        run.exchanges.push(r.exchange.clone());
                        self.judge_http(&http, &Sent::of(&Body::Json(note)), &r, true).await
                    } else {
                        verdict
                    }
                }
                Step::Send { slot, body } => {
                    let sent = Sent::of(body);
                    let mut req = HttpRequest::post_bytes(sent.what.clone(), body.bytes());
                    if let Body::Json(v) = body {
                        req.until_response_to = v.get("id").cloned();
                    }
                    match slot.map(|s| usize::from(s).min(SLOTS - 1)).and_then(|s| slots[s].as_ref()) {
                        Some(session) => req = req.in_session(session),
                        None => req = req.header("mcp-protocol-version", PREFERRED_REVISION),
                    }
                    let Some(r) = self.send_http(&http, &req).await else {
                        run.stopped = true;
                        break;
                    };
                    run.exchanges.push(r.exchange.clone());
                    self.judge_http(&http, &sent, &r, true).await
                }
                Step::Delete { slot } => {
                    let slot = usize::from(*slot).min(SLOTS - 1);
                    let mut req = HttpRequest::new("DELETE session", Method::DELETE);
                    if let Some(session) = &slots[slot] {
                        req = req.in_session(session);
                    }
                    deleted[slot] = true;
                    let Some(r) = self.send_http(&http, &req).await else {
                        run.stopped = true;
                        break;
                    };
                    run.exchanges.push(r.exchange.clone());
                    let sent = Sent { what: "DELETE".into(), ..Sent::default() };
                    self.judge_http(&http, &sent, &r, false).await
                }
            };
            if let Some((oracle, detail, what)) = verdict {
                run.failure = Some(Failure {
                    oracle,
                    signature: super::oracle::signature(oracle, &what, &detail),
                    detail: format!("{detail} (after {what})"),
                    step: index,
                });
                break;
            }
        }
        // Housekeeping, not part of the case: end the sessions the case left open.
        if run.failure.as_ref().is_none_or(|f| f.oracle != Oracle::Crash) {
            for (slot, session) in slots.iter().enumerate() {
                if let Some(s) = session
                    && !deleted[slot]
                    && self.take()
                {
                    let _ = http.delete(s).await;
                }
            }
        }
        run
    }

    /// Judges one HTTP answer; returns the oracle, what was seen, and what was sent.
    async fn judge_http(
        &mut self,
        http: &HttpClient,
        sent: &Sent,
        r: &HttpResponse,
        jsonrpc: bool,
    ) -> Option<(Oracle, String, String)> {
        let what = sent.what.clone();
        let tag = |(o, d): (Oracle, String)| (o, d, what.clone());
        let Some(status) = r.status else {
            let error = r.error.clone().unwrap_or_default();
            if error.contains("timed out") {
                return Some(tag((Oracle::Hang, format!("no answer within {} s", self.timeout.as_secs_f64()))));
            }
            if self.worked && !self.alive(http).await {
                return Some(tag((
                    Oracle::Crash,
                    format!("the server stopped accepting connections ({})", crate::probe::truncate(&error, 160)),
                )));
            }
            return None;
        };
        let body_text = r.body_text();
        if status >= 500 {
            return Some(tag((
                Oracle::ServerError,
                format!("HTTP {status} ({})", crate::probe::truncate(body_text.trim(), 80)),
            )));
        }
        if !jsonrpc {
            return check_internals(&[body_text], sent).map(tag);
        }
        let ct = r.content_type().unwrap_or_default();
        let mut messages = Vec::new();
        if r.is_sse() {
            for event in &r.events {
                if event.data.trim().is_empty() {
                    continue;
                }
                match parse_answer(event.data.as_bytes()) {
                    Parsed::Json(v) => messages.extend(as_messages(v)),
                    Parsed::TooDeep => {}
                    Parsed::NotJson => {
                        return Some(tag((
                            Oracle::Malformed,
                            format!("an SSE event's data is not JSON: {}", crate::probe::truncate(&event.data, 120)),
                        )));
                    }
                }
            }
        } else if ct == "application/json" || ct.ends_with("+json") {
            if !r.body.is_empty() && !r.truncated {
                match parse_answer(&r.body) {
                    Parsed::Json(v @ (Value::Object(_) | Value::Array(_))) => messages = as_messages(v),
                    Parsed::Json(v) if status == 200 => {
                        return Some(tag((
                            Oracle::Malformed,
                            format!("a 200 answer is JSON but not a JSON-RPC message: {}", super::oracle::short(&v)),
                        )));
                    }
                    Parsed::NotJson if status == 200 => {
                        return Some(tag((
                            Oracle::Malformed,
                            format!(
                                "a 200 answer labelled JSON is not JSON: {}",
                                crate::probe::truncate(&body_text, 120)
                            ),
                        )));
                    }
                    _ => {}
                }
            }
        } else if status == 200 && !sent.expected.is_empty() {
            return Some(tag((
                Oracle::Malformed,
                format!("a request was answered 200 with Content-Type `{ct}` (neither JSON nor SSE)"),
            )));
        }
        if let Some(v) = check_messages(&messages, sent, &[]) {
            return Some(tag(v));
        }
        if status == 200 || status == 202 {
            if r.timed_out && r.is_sse() && unanswered(&messages, sent).is_some() {
                return Some(tag((
                    Oracle::Hang,
                    format!("the SSE stream carried no response within {} s", self.timeout.as_secs_f64()),
                )));
            }
            if let Some(id) = unanswered(&messages, sent) {
                return Some(tag((
                    Oracle::WrongId,
                    format!("HTTP {status} without a response to request id {}", super::oracle::short(id)),
                )));
            }
        }
        let mut texts = error_texts(&messages);
        if messages.is_empty() && !body_text.is_empty() {
            texts.push(body_text);
        }
        check_internals(&texts, sent).map(tag)
    }

    /// Whether the HTTP server still accepts a connection (one request, outside the budget's
    /// refusal: a crash verdict must not depend on how much budget is left).
    async fn alive(&mut self, http: &HttpClient) -> bool {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.sent += 1;
        let r = http.send(HttpRequest::post("liveness: initialize", &initialize_body(0, PREFERRED_REVISION))).await;
        r.status.is_some()
    }

    // ---- stdio ----

    async fn run_stdio(&mut self, steps: &[Step], fresh: bool) -> CaseRun {
        let mut run = CaseRun::default();
        let command = self.target.describe();
        let timeout = self.timeout;
        // A connection to use: fresh, or the warm one (restarted and initialized if it died).
        let needs_spawn = {
            let Conn::Stdio { conn, .. } = &mut self.conn else { return run };
            fresh || conn.as_mut().is_none_or(StdioConn::has_exited)
        };
        if needs_spawn {
            let Conn::Stdio { client, conn, known, startup, .. } = &mut self.conn else { return run };
            if let Some(old) = conn.take() {
                let _ = old.close(Duration::from_millis(500)).await;
            }
            known.clear();
            let mut c = match client.spawn() {
                Ok(c) => c,
                Err(_) => {
                    run.stopped = true;
                    return run;
                }
            };
            if !fresh {
                let _ = startup;
                if self.sent + 2 > self.limit {
                    run.stopped = true;
                    return run;
                }
                self.sent += 2;
                let r = c.initialize(PREFERRED_REVISION).await;
                known.push(json!(0));
                if r.response.is_none() {
                    run.stopped = true;
                    *conn = Some(c);
                    return run;
                }
            }
            *conn = Some(c);
        }
        for (index, step) in steps.iter().enumerate() {
            let body = match step {
                Step::Init { .. } => Body::Json(initialize_body(0, PREFERRED_REVISION)),
                Step::Send { body, .. } => body.clone(),
                Step::Delete { .. } => continue,
            };
            let sent = Sent::of(&body);
            if !self.take() {
                run.stopped = true;
                break;
            }
            let with_barrier = self.take();
            let Conn::Stdio { conn: Some(c), known, barrier, startup, .. } = &mut self.conn else { break };
            let started = Instant::now();
            known.extend(sent.ids.iter().cloned());
            let bytes = body.bytes();
            let write_error = c.write(&bytes).await.err();
            if let Step::Init { .. } = step
                && write_error.is_none()
            {
                let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
                let _ = c.write(note.to_string().as_bytes()).await;
            }
            let barrier_id = with_barrier.then(|| {
                *barrier += 1;
                json!(format!("mcproof-barrier-{barrier}"))
            });
            if let Some(id) = &barrier_id
                && write_error.is_none()
            {
                let ping = json!({ "jsonrpc": "2.0", "id": id, "method": "ping" });
                let _ = c.write(ping.to_string().as_bytes()).await;
                known.push(id.clone());
            }
            let wait = if matches!(step, Step::Init { .. }) { *startup } else { timeout };
            let deadline = Instant::now() + wait;
            let mut lines: Vec<Line> = Vec::new();
            let mut barrier_seen = barrier_id.is_none();
            loop {
                // Answered: each expected id has its response, or a null-id error came back.
                let so_far: Vec<Value> = lines.iter().filter_map(|l| l.json.clone()).flat_map(as_messages).collect();
                let pending = unanswered(&so_far, &sent).is_some();
                if barrier_seen && !pending {
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match c.next_line(left).await {
                    Some(line) => {
                        if barrier_id
                            .as_ref()
                            .is_some_and(|b| line.json.as_ref().is_some_and(|v| crate::client::is_response_to(v, b)))
                        {
                            barrier_seen = true;
                        }
                        lines.push(line);
                    }
                    None => break,
                }
            }
            let mut exited = c.has_exited();
            if !exited && lines.is_empty() && write_error.is_some() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                exited = c.has_exited();
            }
            if !exited && (!barrier_seen || write_error.is_some()) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                exited = c.has_exited();
            }
            let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
            let error = match (&write_error, exited) {
                (Some(e), _) => Some(redact_text(e)),
                (None, true) => Some("the server process exited".to_owned()),
                _ => None,
            };
            run.exchanges.push(Exchange {
                label: sent.what.clone(),
                request: RequestRecord {
                    method: "stdio".into(),
                    target: command.clone(),
                    headers: Vec::new(),
                    body: excerpt(&bytes).0,
                },
                response: (!lines.is_empty()).then(|| {
                    let (body, truncated) = excerpt(text.join("\n").as_bytes());
                    ResponseRecord { status: 0, headers: Vec::new(), body, truncated }
                }),
                elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                error,
            });
            let verdict = judge_stdio(&sent, &lines, known, exited, barrier_seen, write_error.is_some(), wait);
            if let Some((oracle, detail)) = verdict {
                let signature = super::oracle::signature(oracle, &sent.what, &detail);
                let mut detail = format!("{detail} (after {})", sent.what);
                if oracle == Oracle::Crash {
                    let stderr = c.stderr();
                    if let Some((name, _)) = crate::checks::errors::find_internals(&stderr) {
                        detail.push_str(&format!("; its stderr shows a {name}"));
                    }
                }
                run.failure = Some(Failure { oracle, signature, detail, step: index });
                break;
            }
        }
        run
    }
}

fn judge_stdio(
    sent: &Sent,
    lines: &[Line],
    known: &[Value],
    exited: bool,
    barrier_seen: bool,
    write_failed: bool,
    wait: Duration,
) -> Option<(Oracle, String)> {
    let mut messages = Vec::new();
    for line in lines {
        if line.text.trim().is_empty() {
            continue;
        }
        match &line.json {
            Some(v @ (Value::Object(_) | Value::Array(_))) => messages.extend(as_messages(v.clone())),
            _ if line.truncated => {}
            _ => {
                return Some((
                    Oracle::Malformed,
                    format!("a stdout line is not a JSON-RPC message: {}", crate::probe::truncate(&line.text, 120)),
                ));
            }
        }
    }
    if let Some(v) = check_messages(&messages, sent, known) {
        return Some(v);
    }
    if exited || write_failed {
        return Some((Oracle::Crash, "the server process exited".into()));
    }
    if let Some(id) = unanswered(&messages, sent) {
        return Some((
            Oracle::Hang,
            format!("no response to request id {} within {} s", super::oracle::short(id), wait.as_secs_f64()),
        ));
    }
    if !barrier_seen {
        return Some((
            Oracle::Hang,
            format!("a ping sent after the message got no answer within {} s", wait.as_secs_f64()),
        ));
    }
    check_internals(&error_texts(&messages), sent)
}

enum Parsed {
    Json(Value),
    TooDeep,
    NotJson,
}

/// Parses an answer: JSON deeper than the parser's recursion limit is not judged (the
/// server may be echoing the fuzzer's own nesting).
fn parse_answer(bytes: &[u8]) -> Parsed {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Parsed::Json(v),
        Err(e) if e.to_string().contains("recursion limit") => Parsed::TooDeep,
        Err(_) => Parsed::NotJson,
    }
}

fn as_messages(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => vec![other],
    }
}

/// The list requests worth recording for what `result` (an `InitializeResult`) declares.
fn list_methods(result: &Value) -> Vec<(String, Value)> {
    let caps = result.get("capabilities").cloned().unwrap_or_default();
    let mut out = Vec::new();
    if caps.get("resources").is_some() {
        out.push(("resources/list".to_owned(), json!({})));
        out.push(("resources/templates/list".to_owned(), json!({})));
    }
    if caps.get("prompts").is_some() {
        out.push(("prompts/list".to_owned(), json!({})));
    }
    out
}

fn absorb(inv: &mut Inventory, method: &str, result: &Value) {
    let items = |key: &str| result.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    match method {
        "tools/list" => inv.tools.extend(items("tools").into_iter().take(200)),
        "resources/list" => inv
            .resources
            .extend(items("resources").iter().filter_map(|r| r.get("uri")?.as_str().map(str::to_owned)).take(200)),
        "resources/templates/list" => inv.templates.extend(
            items("resourceTemplates")
                .iter()
                .filter_map(|r| r.get("uriTemplate")?.as_str().map(str::to_owned))
                .take(200),
        ),
        "prompts/list" => inv.prompts.extend(items("prompts").into_iter().take(200)),
        _ => {}
    }
}
