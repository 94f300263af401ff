//! Checks of the `tools` area: what `tools/list` publishes (schemas, names, annotations, icons,
//! descriptions) and how `tools/call` answers a tool that does not exist.
//!
//! This module also holds the transport-independent plumbing the `errors` and `stdio` checks
//! share: [`Conn`] (one initialized connection over HTTP or stdio) and [`violation`] (arguments
//! that break a tool's `inputSchema`, so the tool never runs on a conforming server).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use regex::Regex;
use serde_json::{Map, Value, json};

use crate::check::{
    ALL_REVISIONS, Check, CheckInfo, FROM_2025_06_18, FROM_2025_11_25, Kind, Level, Transport, Verdict,
};
use crate::client::http::PREFERRED_REVISION;
use crate::client::stdio::Line;
use crate::client::{HttpClient, HttpRequest, McpSession, StdioConn, is_response_to};
use crate::evidence::{Exchange, RequestRecord, ResponseRecord, excerpt, redact_text};
use crate::probe::{Probe, truncate};

const BOTH: &[Transport] = &[Transport::Http, Transport::Stdio];

/// The checks of this area.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            info: CheckInfo {
                id: "tools/input-schema-valid",
                title: "Tool input and output schemas are valid object schemas",
                level: Level::Must,
                weight: 10,
                source: "server/tools §Tool; basic/index §JSON Schema Usage; schema.ts Tool; spec-checks TO-01",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Passive,
                description: "Every tool from tools/list has an inputSchema that is a JSON object with root \
                              `type: \"object\"` and that is a valid JSON Schema (meta-validated against 2020-12, \
                              or the draft its `$schema` names, and compiled offline). An outputSchema, if \
                              present, must meet the same rules.",
                remediation: "Publish each tool's inputSchema (and outputSchema) as a JSON Schema 2020-12 object \
                              schema: `{\"type\":\"object\",\"properties\":{…},\"required\":[…]}`. Validate the \
                              schemas against the meta-schema in your tests.",
            },
            run: |p| input_schema_valid(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "tools/names",
                title: "Tool names are well-formed and unique",
                level: Level::Should,
                weight: 5,
                source: "server/tools §Tool Names; spec-checks TO-03",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Passive,
                description: "Every tool name matches ^[A-Za-z0-9_.-]{1,128}$ and no two tools share a name. \
                              Names that differ only by case are reported as a warning (clients may fold case).",
                remediation: "Rename tools to 1–128 characters from A-Z, a-z, 0-9, `_`, `-` and `.`, unique within \
                              the server and not differing only by case.",
            },
            run: |p| names(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "tools/unknown-tool-error",
                title: "Calling an unknown tool is a JSON-RPC error",
                level: Level::Should,
                weight: 5,
                source: "server/tools §Error Handling; schema.ts CallToolResult.isError; spec-checks TO-04",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Active,
                description: "tools/call with a tool name that does not exist, and tools/call with `arguments` that \
                              is a string instead of an object, are protocol errors: the server answers with a \
                              JSON-RPC `error` (the spec's example uses -32602), not with a `result` (isError or \
                              not). The malformed-arguments call goes to a tool annotated readOnlyHint (or any tool \
                              with --destructive).",
                remediation: "Answer tools/call for an unknown tool, or with arguments that are not an object, with \
                              a JSON-RPC error (-32602 Invalid params). Reserve `isError: true` results for failures \
                              of a tool that exists and was called correctly.",
            },
            run: |p| unknown_tool_error(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "tools/annotations-coherent",
                title: "Tool annotations are well-typed and coherent",
                level: Level::Should,
                weight: 4,
                source: "server/tools §Tool; schema.ts ToolAnnotations; spec-checks TO-07",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Passive,
                description: "Where a tool publishes `annotations`, it is an object whose readOnlyHint, \
                              destructiveHint, idempotentHint and openWorldHint are booleans, and a tool is not \
                              declared both read-only (readOnlyHint: true) and destructive (destructiveHint: true), \
                              which contradict each other. Tools without annotations pass (clients then assume \
                              the worst).",
                remediation: "Publish truthful, boolean hints: a tool that changes state has readOnlyHint false; \
                              destructiveHint is only meaningful (and only set to true) when readOnlyHint is false.",
            },
            run: |p| annotations_coherent(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "tools/icon-uris",
                title: "Icon URIs are https: or data:image/",
                level: Level::Should,
                weight: 4,
                source: "basic/index §Icons (Security considerations); spec-checks TO-09",
                revisions: FROM_2025_11_25,
                transports: BOTH,
                kind: Kind::Passive,
                description: "Every `icons[].src` served in tools/list and in the initialize result's serverInfo \
                              uses https: or is a data:image/ URI. javascript:, file:, http:, ftp:, ws: and other \
                              schemes (or relative references) are unsafe for consumers to load. Publishing no \
                              icons passes.",
                remediation: "Serve icons from https: URLs on your own origin, or inline them as data:image/png (or \
                              another image type) URIs.",
            },
            run: |p| icon_uris(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "tools/descriptions",
                title: "Every tool has a description",
                level: Level::BestPractice,
                weight: 2,
                source: "server/tools §Tool (description); seed practices: clear tool metadata",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Passive,
                description: "Every tool from tools/list has a non-empty `description`, so that a model and a human \
                              approving a call can tell what the tool does.",
                remediation: "Give every tool a short, accurate description of what it does, what it touches and \
                              what it returns.",
            },
            run: |p| descriptions(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "tools/structured-output",
                title: "Tools with an outputSchema return conforming structuredContent",
                level: Level::Must,
                weight: 10,
                source: "server/tools §Output Schema, §Structured Content; spec-checks TO-02",
                revisions: FROM_2025_06_18,
                transports: BOTH,
                kind: Kind::Active,
                description: "Calls up to 5 tools that declare an outputSchema and are safe to call (readOnlyHint: \
                              true, or any tool with --destructive) and whose required arguments can be filled \
                              from their schema (const, default, enum, examples) into arguments that satisfy the \
                              inputSchema. Each successful result must carry structuredContent that validates \
                              against the outputSchema (MUST); a text content item with the same JSON serialized \
                              is expected for older clients (SHOULD, else WARN). isError results are not judged.",
                remediation: "Return `structuredContent` that conforms to the tool's published outputSchema on \
                              every successful call (validate it in your tests), and also return it serialized as \
                              JSON in a text content item for clients that predate structured output.",
            },
            run: |p| structured_output(p).boxed(),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing: one initialized connection over either transport.
// ---------------------------------------------------------------------------------------------

/// One initialized connection to the target, over HTTP (a fresh session) or stdio (a fresh
/// child process).
pub(crate) enum Conn<'a> {
    Http { client: &'a HttpClient, session: McpSession },
    Stdio { conn: Box<StdioConn>, command: String, timeout: Duration, init: Value },
}

/// What one request produced.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reply {
    pub exchange: Exchange,
    /// The response to the request's id, if one came.
    pub response: Option<Value>,
    /// Every JSON-RPC message that came back with it (notifications included).
    pub messages: Vec<Value>,
    /// Everything received, unparsed (bounded by the client limits); for stdio the lines joined.
    pub raw: String,
    /// Received text that is not JSON (an HTTP body that did not parse, stdio lines that did not).
    pub unparsed: Vec<String>,
    /// HTTP status (`None` for stdio or when nothing came back).
    pub status: Option<u16>,
    /// The transport failed (no answer, refused, the process exited).
    pub failure: Option<String>,
}

impl Reply {
    pub fn result(&self) -> Option<&Value> {
        self.response.as_ref()?.get("result")
    }

    pub fn error(&self) -> Option<&Value> {
        self.response.as_ref()?.get("error")
    }

    pub fn error_code(&self) -> Option<i64> {
        self.error()?.get("code")?.as_i64()
    }

    /// Every piece of text the server sent back: the strings inside every message (decoded), and
    /// whatever did not parse as JSON.
    pub fn texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.messages {
            strings_in(m, &mut out, 0);
        }
        out.extend(self.unparsed.iter().cloned());
        out
    }
}

/// Collects every string value (and object key) in `v`, bounded in depth.
pub(crate) fn strings_in(v: &Value, out: &mut Vec<String>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings_in(i, out, depth + 1)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings_in(v, out, depth + 1);
            }
        }
        _ => {}
    }
}

impl<'a> Conn<'a> {
    /// Opens a fresh connection: a new HTTP session, or a new child process, initialized.
    pub async fn open(probe: &'a Probe) -> Result<Self, Verdict> {
        if let Ok(stdio) = probe.stdio() {
            let mut conn = stdio.spawn().map_err(|e| Verdict::error(format!("could not start the server: {e}")))?;
            let init = conn.initialize(PREFERRED_REVISION).await;
            let Some(result) = init.response.as_ref().and_then(|r| r.get("result")).cloned() else {
                let why = init.error.clone().unwrap_or_else(|| "initialize was answered with an error".into());
                let _ = conn.close(Duration::from_secs(2)).await;
                return Err(Verdict::error(format!("could not initialize: {why}")).with(init.exchange));
            };
            return Ok(Conn::Stdio {
                conn: Box::new(conn),
                command: stdio.target().command.clone(),
                timeout: probe.options.limits.timeout,
                init: result,
            });
        }
        let (client, session) = probe.session().await?;
        Ok(Conn::Http { client, session })
    }

    /// The `InitializeResult` of this connection.
    pub fn init_result(&self) -> &Value {
        match self {
            Conn::Http { session, .. } => &session.result,
            Conn::Stdio { init, .. } => init,
        }
    }

    /// Sends a request with a fresh id and waits (bounded) for its response.
    pub async fn request(&mut self, probe: &Probe, label: &str, method: &str, params: Value) -> Reply {
        let id = json!(probe.next_id());
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.send(label, body.to_string().as_bytes(), Some(id), None).await
    }

    /// Sends raw bytes (one line on stdio). With `id`, waits for the response to it; without,
    /// reads for `wait` (or, on HTTP, whatever the POST returns).
    pub async fn send(&mut self, label: &str, bytes: &[u8], id: Option<Value>, wait: Option<Duration>) -> Reply {
        match self {
            Conn::Http { client, session } => {
                let mut req = HttpRequest::post_bytes(label, bytes.to_vec()).in_session(session);
                req.until_response_to = id.clone();
                let r = client.send(req).await;
                let response = match &id {
                    Some(id) => r.response_to(id).cloned(),
                    None => r.messages.iter().find(|m| m.get("result").is_some() || m.get("error").is_some()).cloned(),
                };
                let raw = r.body_text();
                let unparsed = if r.messages.is_empty() && !raw.trim().is_empty() { vec![raw.clone()] } else { vec![] };
                let failure = r.error.clone().or_else(|| {
                    (id.is_some() && response.is_none() && r.status.is_none_or(|s| s < 300))
                        .then(|| "no JSON-RPC response arrived".to_owned())
                });
                Reply { exchange: r.exchange, response, messages: r.messages, raw, unparsed, status: r.status, failure }
            }
            Conn::Stdio { conn, command, timeout, .. } => {
                let wait = wait.unwrap_or(*timeout);
                stdio_send(conn, command, label, bytes, id.as_ref(), wait).await
            }
        }
    }

    /// On stdio, reads whatever else arrives within `wait` (late notifications); on HTTP,
    /// nothing (notifications travel on the POST's own stream).
    pub async fn drain(&mut self, wait: Duration) -> Vec<Line> {
        let mut lines = Vec::new();
        if let Conn::Stdio { conn, .. } = self {
            let deadline = Instant::now() + wait;
            while let Some(line) = conn.next_line(deadline.saturating_duration_since(Instant::now())).await {
                lines.push(line);
                if lines.len() >= 256 {
                    break;
                }
            }
        }
        lines
    }

    /// Whether the stdio child has exited (always false on HTTP).
    pub fn exited(&mut self) -> bool {
        match self {
            Conn::Http { .. } => false,
            Conn::Stdio { conn, .. } => conn.has_exited(),
        }
    }

    /// Ends the session (DELETE) or closes the child's stdin and waits for it.
    pub async fn close(self) {
        match self {
            Conn::Http { client, session } => {
                let _ = client.delete(&session).await;
            }
            Conn::Stdio { conn, .. } => {
                let _ = conn.close(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Writes one line to a stdio child and reads lines until the response to `id` (or `wait`).
pub(crate) async fn stdio_send(
    conn: &mut StdioConn,
    command: &str,
    label: &str,
    bytes: &[u8],
    id: Option<&Value>,
    wait: Duration,
) -> Reply {
    let started = Instant::now();
    let record = RequestRecord {
        method: "stdio".into(),
        target: command.to_owned(),
        headers: Vec::new(),
        body: excerpt(bytes).0,
    };
    let mut reply = Reply::default();
    let mut lines: Vec<Line> = Vec::new();
    if let Err(e) = conn.write(bytes).await {
        reply.failure = Some(e);
    } else {
        let deadline = started + wait;
        while let Some(line) = conn.next_line(deadline.saturating_duration_since(Instant::now())).await {
            let done = match (&line.json, id) {
                (Some(v), Some(id)) => is_response_to(v, id),
                _ => false,
            };
            lines.push(line);
            if done || lines.len() >= 256 {
                break;
            }
        }
        if let Some(id) = id {
            reply.response = lines.iter().filter_map(|l| l.json.as_ref()).find(|v| is_response_to(v, id)).cloned();
            if reply.response.is_none() {
                reply.failure = Some(if conn.has_exited() {
                    "the server process exited without answering".into()
                } else {
                    format!("no response within {} ms", wait.as_millis())
                });
            }
        }
    }
    for line in &lines {
        match &line.json {
            Some(Value::Array(items)) => reply.messages.extend(items.iter().filter(|i| i.is_object()).cloned()),
            Some(v @ Value::Object(_)) => reply.messages.push(v.clone()),
            _ => reply.unparsed.push(line.text.clone()),
        }
    }
    let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    reply.raw = text.join("\n");
    reply.exchange = Exchange {
        label: label.to_owned(),
        request: record,
        response: (!lines.is_empty()).then(|| {
            let (body, truncated) = excerpt(reply.raw.as_bytes());
            ResponseRecord { status: 0, headers: Vec::new(), body, truncated }
        }),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        error: reply.failure.as_deref().map(redact_text),
    };
    reply
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing: arguments that break a tool's input schema.
// ---------------------------------------------------------------------------------------------

/// Most tools a single check sends schema-violating calls to.
pub(crate) const MAX_TOOLS_PROBED: usize = 12;

/// Arguments that violate a tool's `inputSchema`, and what they break.
#[derive(Debug, Clone)]
pub(crate) struct Violation {
    pub tool: String,
    pub args: Value,
    pub what: String,
}

/// Whether the tool says it only reads (a hint: used only to choose gentler probes).
pub(crate) fn read_only_hint(tool: &Value) -> bool {
    tool.get("annotations").and_then(|a| a.get("readOnlyHint")) == Some(&Value::Bool(true))
}

fn types_of(schema: &Value) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(items) => Some(items.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// A value that breaks property schema `prop` and carries `canary`, with a description.
/// `full` also allows in-type violations (too long, pattern mismatch), which a server that does
/// not validate would pass to the tool; without it only type violations are produced.
fn bad_value(prop: &Value, canary: &str, full: bool) -> Option<(Value, String)> {
    let types = types_of(prop)?;
    if types.is_empty() {
        return None;
    }
    let allows = |t: &str| types.contains(&t) || (t == "integer" && types.contains(&"number"));
    if !allows("string") {
        return Some((Value::String(canary.to_owned()), format!("a string where {} is expected", types.join("/"))));
    }
    if full {
        if let Some(max) = prop.get("maxLength").and_then(Value::as_u64).filter(|m| *m < 4096) {
            let mut s = format!("{canary}-");
            while (s.chars().count() as u64) <= max {
                s.push('x');
            }
            let n = s.chars().count();
            return Some((Value::String(s), format!("a string of {n} characters (maxLength {max})")));
        }
        if let Some(pattern) = prop.get("pattern").and_then(Value::as_str) {
            let candidate = format!("{canary} <\n>");
            if Regex::new(pattern).is_ok_and(|re| !re.is_match(&candidate)) {
                return Some((Value::String(candidate), "a string that breaks its pattern".to_owned()));
            }
        }
    }
    if !allows("array") {
        return Some((json!([canary]), "an array where a string is expected".to_owned()));
    }
    if !allows("object") {
        return Some((json!({ "value": canary }), "an object where a string is expected".to_owned()));
    }
    None
}

/// Arguments that break `tool`'s input schema and carry `canary`, or `None` when no violation
/// can be built safely. Without `full` (a tool not hinted read-only, no --destructive), every
/// required property gets a value of the wrong type, so that even a server that does not
/// validate is unlikely to run the tool; tools with no required property are then left alone.
pub(crate) fn violation(tool: &Value, canary: &str, full: bool) -> Option<Violation> {
    let name = tool.get("name")?.as_str()?.to_owned();
    let schema = tool.get("inputSchema")?;
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return None;
    }
    let empty = Map::new();
    let props = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    let mut args = Map::new();
    let mut what = Vec::new();
    for prop_name in &required {
        match props.get(*prop_name).and_then(|p| bad_value(p, canary, full)) {
            Some((v, d)) => {
                args.insert((*prop_name).to_owned(), v);
                what.push(format!("`{}`: {d}", truncate(prop_name, 40)));
            }
            None => {
                args.clear();
                what.clear();
                break;
            }
        }
    }
    if args.is_empty() {
        if !full {
            return None;
        }
        if let Some((prop_name, (v, d))) =
            props.iter().find_map(|(k, p)| bad_value(p, canary, true).map(|b| (k.clone(), b)))
        {
            args.insert(prop_name.clone(), v);
            what.push(format!("`{}`: {d}", truncate(&prop_name, 40)));
        }
    }
    if closed && (!args.is_empty() || full) {
        let mut extra = "mcproof_unexpected".to_owned();
        while props.contains_key(&extra) {
            extra.push('_');
        }
        args.insert(extra, Value::String(canary.to_owned()));
        what.push("an extra property (additionalProperties is false)".to_owned());
    }
    if args.is_empty() {
        return None;
    }
    Some(Violation { tool: name, args: Value::Object(args), what: what.join(", ") })
}

/// Schema-violating calls for up to [`MAX_TOOLS_PROBED`] tools.
pub(crate) fn violations(probe: &Probe, canary: &str) -> Vec<Violation> {
    probe
        .inventory
        .tools
        .iter()
        .filter_map(|t| violation(t, canary, probe.options.destructive || read_only_hint(t)))
        .take(MAX_TOOLS_PROBED)
        .collect()
}

/// A per-scan canary: `CANARY-` and 16 hex digits derived from the scan seed (replayable).
pub(crate) fn canary(probe: &Probe) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("mcproof canary {}", probe.options.seed).as_bytes());
    format!("CANARY-{}", hex::encode(&digest[..8]))
}

/// The tools/list exchanges of discovery, for passive checks' evidence.
fn list_evidence(probe: &Probe) -> Vec<Exchange> {
    probe.inventory.evidence.iter().filter(|e| e.label.contains("tools/list")).cloned().collect()
}

fn tool_name(tool: &Value) -> String {
    tool.get("name").and_then(Value::as_str).map_or_else(|| "(unnamed)".to_owned(), |n| truncate(n, 64))
}

fn summarize(problems: &[String]) -> String {
    let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
    let more = problems.len().saturating_sub(shown.len());
    let suffix = if more > 0 { format!(" (and {more} more)") } else { String::new() };
    format!("{}{suffix}", shown.join("; "))
}

// ---------------------------------------------------------------------------------------------
// tools/input-schema-valid
// ---------------------------------------------------------------------------------------------

const KNOWN_DIALECTS: &[&str] = &[
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema",
    "http://json-schema.org/draft-06/schema",
    "http://json-schema.org/draft-04/schema",
];

/// Problems of one schema (`field` is inputSchema or outputSchema), or `Err` with a note when
/// its dialect is unknown and it could not be checked.
fn schema_problems(tool: &str, field: &str, schema: &Value) -> Result<Vec<String>, String> {
    let at = format!("`{tool}` {field}");
    let Value::Object(obj) = schema else {
        return Ok(vec![format!("{at} is {} instead of a JSON object", kind_of(schema))]);
    };
    let mut problems = Vec::new();
    match obj.get("type") {
        Some(Value::String(t)) if t == "object" => {}
        Some(t) => problems.push(format!("{at} has root type {} instead of \"object\"", truncate(&t.to_string(), 60))),
        None => problems.push(format!("{at} has no root `type` (must be \"object\")")),
    }
    match obj.get("$schema") {
        None => {}
        Some(Value::String(s)) => {
            let norm = s.trim_end_matches('#');
            if !KNOWN_DIALECTS.contains(&norm) {
                if problems.is_empty() {
                    return Err(format!(
                        "{at} names the dialect {} which mcproof cannot meta-validate",
                        truncate(s, 80)
                    ));
                }
                return Ok(problems);
            }
        }
        Some(other) => problems.push(format!("{at} has a non-string `$schema` ({})", kind_of(other))),
    }
    if !problems.is_empty() {
        return Ok(problems);
    }
    if let Err(e) = jsonschema::meta::validate(schema) {
        if matches!(e.kind(), jsonschema::error::ValidationErrorKind::Referencing(_)) {
            return Err(format!("{at}: its meta-schema could not be loaded ({})", truncate(&e.to_string(), 80)));
        }
        let path = e.instance_path().as_str().to_owned();
        let loc = if path.is_empty() { "(root)".to_owned() } else { path };
        problems.push(format!("{at} is not a valid JSON Schema at {loc}: {}", truncate(&e.to_string(), 160)));
        return Ok(problems);
    }
    if let Err(e) = jsonschema::options().offline().build(schema)
        && !matches!(e.kind(), jsonschema::error::ValidationErrorKind::Referencing(_))
    {
        problems.push(format!("{at} does not compile: {}", truncate(&e.to_string(), 160)));
    }
    Ok(problems)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn input_schema_valid(probe: &Probe) -> Verdict {
    let tools = &probe.inventory.tools;
    if tools.is_empty() {
        return Verdict::skip("not applicable: the server lists no tools").with_all(list_evidence(probe));
    }
    let mut problems = Vec::new();
    let mut unchecked = Vec::new();
    for tool in tools {
        let name = tool_name(tool);
        let fields: [(&str, Option<&Value>); 2] = [
            ("inputSchema", Some(tool.get("inputSchema").unwrap_or(&Value::Null))),
            ("outputSchema", tool.get("outputSchema")),
        ];
        for (field, schema) in fields {
            let Some(schema) = schema else { continue };
            match schema_problems(&name, field, schema) {
                Ok(p) => problems.extend(p),
                Err(note) => unchecked.push(note),
            }
        }
    }
    let evidence = list_evidence(probe);
    if !problems.is_empty() {
        return Verdict::fail(format!("{} schema problem(s): {}", problems.len(), summarize(&problems)))
            .with_all(evidence);
    }
    if !unchecked.is_empty() {
        return Verdict::warn(format!(
            "root types are \"object\", but {} schema(s) could not be meta-validated: {}",
            unchecked.len(),
            summarize(&unchecked)
        ))
        .with_all(evidence);
    }
    Verdict::pass(format!(
        "all {} tool(s) publish object schemas that meta-validate and compile (outputSchema included where present)",
        tools.len()
    ))
    .with_all(evidence)
}

// ---------------------------------------------------------------------------------------------
// tools/names
// ---------------------------------------------------------------------------------------------

async fn names(probe: &Probe) -> Verdict {
    let tools = &probe.inventory.tools;
    if tools.is_empty() {
        return Verdict::skip("not applicable: the server lists no tools").with_all(list_evidence(probe));
    }
    let Ok(re) = Regex::new(r"^[A-Za-z0-9_.-]{1,128}$") else { return Verdict::error("internal: bad regex") };
    let mut problems = Vec::new();
    let mut exact: BTreeMap<&str, usize> = BTreeMap::new();
    let mut folded: HashMap<String, Vec<&str>> = HashMap::new();
    for tool in tools {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            problems.push("a tool has no string `name`".to_owned());
            continue;
        };
        if !re.is_match(name) {
            problems.push(format!("{:?} does not match ^[A-Za-z0-9_.-]{{1,128}}$", truncate(name, 80)));
        }
        *exact.entry(name).or_default() += 1;
        folded.entry(name.to_lowercase()).or_default().push(name);
    }
    for (name, n) in &exact {
        if *n > 1 {
            problems.push(format!("{:?} is listed {n} times", truncate(name, 80)));
        }
    }
    let evidence = list_evidence(probe);
    if !problems.is_empty() {
        return Verdict::fail(format!("{} tool name problem(s): {}", problems.len(), summarize(&problems)))
            .with_all(evidence);
    }
    let mut variants: Vec<String> = folded
        .values()
        .filter(|names| names.len() > 1)
        .map(|names| names.iter().map(|n| format!("{:?}", truncate(n, 60))).collect::<Vec<_>>().join(" / "))
        .collect();
    variants.sort();
    if !variants.is_empty() {
        return Verdict::warn(format!(
            "tool names that differ only by case (clients may confuse them): {}",
            summarize(&variants)
        ))
        .with_all(evidence);
    }
    Verdict::pass(format!("all {} tool name(s) are well-formed and unique", tools.len())).with_all(evidence)
}

// ---------------------------------------------------------------------------------------------
// tools/unknown-tool-error
// ---------------------------------------------------------------------------------------------

/// What one tools/call probe that must be refused came back with.
fn refusal(reply: &Reply, what: &str) -> Result<String, (bool, String)> {
    if let Some(result) = reply.result() {
        let is_error = result.get("isError") == Some(&Value::Bool(true));
        let how = if is_error { "a result with isError: true" } else { "a successful result" };
        return Err((true, format!("{what} was answered with {how} instead of a JSON-RPC error")));
    }
    if let Some(code) = reply.error_code() {
        return Ok(format!("{what} → JSON-RPC error {code}"));
    }
    if reply.error().is_some() {
        return Ok(format!("{what} → JSON-RPC error (no integer code)"));
    }
    match (&reply.failure, reply.status) {
        (_, Some(s)) if s >= 400 => Err((false, format!("{what} was refused with HTTP {s} but no JSON-RPC error"))),
        (Some(f), _) => Err((false, format!("{what}: {f}"))),
        _ => Err((false, format!("{what}: no JSON-RPC response"))),
    }
}

async fn unknown_tool_error(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let mut evidence = Vec::new();
    let mut outcomes = Vec::new();
    let bogus = format!("mcproof_no_such_tool_{}", &canary(probe)[7..15]);
    let listed = |n: &str| probe.inventory.tools.iter().any(|t| t.get("name").and_then(Value::as_str) == Some(n));
    if !listed(&bogus) {
        let r = conn
            .request(
                probe,
                "tools/call of a tool that does not exist",
                "tools/call",
                json!({ "name": bogus, "arguments": {} }),
            )
            .await;
        outcomes.push(refusal(&r, &format!("tools/call of unknown tool {bogus:?}")));
        evidence.push(r.exchange);
    }
    let target = probe
        .inventory
        .tools
        .iter()
        .find(|t| read_only_hint(t))
        .or_else(|| probe.options.destructive.then(|| probe.inventory.tools.first()).flatten())
        .and_then(|t| t.get("name").and_then(Value::as_str));
    let skipped_str = target.is_none();
    if let Some(name) = target {
        let r = conn
            .request(
                probe,
                "tools/call with arguments as a string",
                "tools/call",
                json!({ "name": name, "arguments": "str" }),
            )
            .await;
        outcomes.push(refusal(&r, &format!("tools/call of {:?} with `arguments: \"str\"`", truncate(name, 40))));
        evidence.push(r.exchange);
    }
    conn.close().await;
    let note = if skipped_str {
        " (no tool is hinted read-only, so the `arguments: \"str\"` probe was not sent; use --destructive to send it)"
    } else {
        ""
    };
    let fails: Vec<&String> =
        outcomes.iter().filter_map(|o| o.as_ref().err().filter(|(f, _)| *f).map(|(_, m)| m)).collect();
    if !fails.is_empty() {
        let text: Vec<&str> = fails.iter().map(|s| s.as_str()).collect();
        return Verdict::fail(text.join("; ")).with_all(evidence);
    }
    let unclear: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err().map(|(_, m)| m)).collect();
    if !unclear.is_empty() {
        let text: Vec<&str> = unclear.iter().map(|s| s.as_str()).collect();
        return Verdict::warn(format!("{}{note}", text.join("; "))).with_all(evidence);
    }
    if outcomes.is_empty() {
        return Verdict::skip("not applicable: nothing to probe").with_all(evidence);
    }
    let oks: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    let text: Vec<&str> = oks.iter().map(|s| s.as_str()).collect();
    Verdict::pass(format!("{}{note}", text.join("; "))).with_all(evidence)
}

// ---------------------------------------------------------------------------------------------
// tools/annotations-coherent
// ---------------------------------------------------------------------------------------------

const HINTS: &[&str] = &["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"];

async fn annotations_coherent(probe: &Probe) -> Verdict {
    let tools = &probe.inventory.tools;
    if tools.is_empty() {
        return Verdict::skip("not applicable: the server lists no tools").with_all(list_evidence(probe));
    }
    let mut problems = Vec::new();
    let mut annotated = 0;
    for tool in tools {
        let name = tool_name(tool);
        let Some(a) = tool.get("annotations") else { continue };
        annotated += 1;
        let Value::Object(a) = a else {
            problems.push(format!("`{name}` annotations is {} instead of an object", kind_of(a)));
            continue;
        };
        for hint in HINTS {
            if let Some(v) = a.get(*hint).filter(|v| !v.is_boolean()) {
                problems.push(format!("`{name}` {hint} is {} instead of a boolean", kind_of(v)));
            }
        }
        let t = |k: &str| a.get(k) == Some(&Value::Bool(true));
        if t("readOnlyHint") && t("destructiveHint") {
            problems.push(format!(
                "`{name}` declares readOnlyHint: true and destructiveHint: true (a read-only tool cannot be destructive; \
                 clients cannot tell which hint is true)"
            ));
        }
    }
    let evidence = list_evidence(probe);
    if !problems.is_empty() {
        return Verdict::fail(format!("{} annotation problem(s): {}", problems.len(), summarize(&problems)))
            .with_all(evidence);
    }
    Verdict::pass(format!(
        "{annotated} of {} tool(s) publish annotations; all hints are booleans and none is both read-only and destructive",
        tools.len()
    ))
    .with_all(evidence)
}

// ---------------------------------------------------------------------------------------------
// tools/icon-uris
// ---------------------------------------------------------------------------------------------

fn icon_problem(src: &Value) -> Option<String> {
    let Some(s) = src.as_str() else { return Some(format!("src is {} instead of a string", kind_of(src))) };
    let lower = s.trim_start().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("data:image/") {
        return None;
    }
    let scheme = lower.split_once(':').map(|(s, _)| s).filter(|s| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
    });
    Some(match scheme {
        Some(scheme) => format!("{:?} uses the {scheme}: scheme", truncate(s, 80)),
        None => format!("{:?} is not an absolute https: or data:image/ URI", truncate(s, 80)),
    })
}

fn icons_of<'v>(owner: &'v Value, at: String, out: &mut Vec<(String, &'v Value)>) {
    if let Some(icons) = owner.get("icons") {
        match icons.as_array() {
            Some(items) => {
                for icon in items {
                    out.push((at.clone(), icon.get("src").unwrap_or(&Value::Null)));
                }
            }
            None => out.push((format!("{at} (icons is not an array)"), &Value::Null)),
        }
    }
}

async fn icon_uris(probe: &Probe) -> Verdict {
    let mut icons = Vec::new();
    if let Some(info) = probe.inventory.init_result.get("serverInfo") {
        icons_of(info, "serverInfo".to_owned(), &mut icons);
    }
    for tool in &probe.inventory.tools {
        icons_of(tool, format!("tool `{}`", tool_name(tool)), &mut icons);
    }
    let evidence = probe.inventory.evidence.clone();
    if icons.is_empty() {
        return Verdict::pass("no icons are published (serverInfo and tools)").with_all(evidence);
    }
    let problems: Vec<String> =
        icons.iter().filter_map(|(at, src)| icon_problem(src).map(|p| format!("{at}: icon {p}"))).collect();
    if !problems.is_empty() {
        return Verdict::fail(format!("{} unsafe icon URI(s): {}", problems.len(), summarize(&problems)))
            .with_all(evidence);
    }
    Verdict::pass(format!("all {} icon URI(s) are https: or data:image/", icons.len())).with_all(evidence)
}

// ---------------------------------------------------------------------------------------------
// tools/descriptions
// ---------------------------------------------------------------------------------------------

async fn descriptions(probe: &Probe) -> Verdict {
    let tools = &probe.inventory.tools;
    if tools.is_empty() {
        return Verdict::skip("not applicable: the server lists no tools").with_all(list_evidence(probe));
    }
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| t.get("description").and_then(Value::as_str).is_none_or(|d| d.trim().is_empty()))
        .map(|t| format!("`{}`", tool_name(t)))
        .collect();
    let evidence = list_evidence(probe);
    if !missing.is_empty() {
        return Verdict::fail(format!(
            "{} of {} tool(s) have no description: {}",
            missing.len(),
            tools.len(),
            summarize(&missing)
        ))
        .with_all(evidence);
    }
    Verdict::pass(format!("all {} tool(s) have a description", tools.len())).with_all(evidence)
}

// ---------------------------------------------------------------------------------------------
// tools/structured-output
// ---------------------------------------------------------------------------------------------

/// Most tools the structured-output check calls.
const MAX_OUTPUT_CALLS: usize = 5;

/// Arguments for `tool` that fill every required property from its own schema (`const`,
/// `default`, the first of `enum` or `examples`) and satisfy the inputSchema, or why not.
fn fillable_arguments(tool: &Value) -> Result<Value, String> {
    let Some(schema) = tool.get("inputSchema").filter(|s| s.get("type").and_then(Value::as_str) == Some("object"))
    else {
        return Err("its inputSchema is not an object schema".into());
    };
    let empty = Map::new();
    let props = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let mut args = Map::new();
    for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = name.as_str() else { return Err("its `required` holds a non-string".into()) };
        let prop =
            props.get(name).ok_or_else(|| format!("required `{}` has no property schema", truncate(name, 40)))?;
        let value = prop
            .get("const")
            .or_else(|| prop.get("default"))
            .or_else(|| prop.get("enum").and_then(Value::as_array).and_then(|e| e.first()))
            .or_else(|| prop.get("examples").and_then(Value::as_array).and_then(|e| e.first()))
            .ok_or_else(|| format!("required `{}` has no const, default, enum or examples", truncate(name, 40)))?;
        args.insert(name.to_owned(), value.clone());
    }
    let args = Value::Object(args);
    let validator = jsonschema::options()
        .offline()
        .build(schema)
        .map_err(|e| format!("its inputSchema does not compile ({})", truncate(&e.to_string(), 80)))?;
    if !validator.is_valid(&args) {
        return Err("the arguments filled from its schema do not satisfy its inputSchema".into());
    }
    Ok(args)
}

/// What one call showed.
enum OutputJudged {
    Ok(String),
    /// The text copy is missing (SHOULD).
    Warn(String),
    Fail(String),
    /// Not judged (an error, no answer, an unusable schema).
    Unjudged(String),
}

fn judge_output(name: &str, output_schema: &Value, reply: &Reply) -> OutputJudged {
    let Some(result) = reply.result() else {
        let why = match (reply.error_code(), &reply.failure, reply.status) {
            (Some(code), _, _) => format!("JSON-RPC error {code}"),
            (None, Some(f), _) => f.clone(),
            (None, None, Some(s)) => format!("HTTP {s} and no result"),
            _ => "no result".into(),
        };
        return OutputJudged::Unjudged(format!("`{name}` could not produce output ({why})"));
    };
    if result.get("isError") == Some(&Value::Bool(true)) {
        return OutputJudged::Unjudged(format!("`{name}` could not produce output (isError: true)"));
    }
    let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) else {
        return OutputJudged::Fail(format!(
            "`{name}` declares an outputSchema but its result has no structuredContent"
        ));
    };
    let validator = match jsonschema::options().offline().build(output_schema) {
        Ok(v) => v,
        Err(e) => {
            return OutputJudged::Unjudged(format!(
                "`{name}` outputSchema does not compile ({}), so its output cannot be judged",
                truncate(&e.to_string(), 80)
            ));
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(structured)
        .take(3)
        .map(|e| {
            let path = e.instance_path().as_str().to_owned();
            let at = if path.is_empty() { "(root)".to_owned() } else { path };
            format!("at {at}: {}", truncate(&e.to_string(), 120))
        })
        .collect();
    if !errors.is_empty() {
        return OutputJudged::Fail(format!(
            "`{name}` structuredContent does not conform to its outputSchema ({})",
            errors.join("; ")
        ));
    }
    let texts: Vec<&str> = result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect();
    let parsed: Vec<Value> = texts.iter().filter_map(|t| serde_json::from_str::<Value>(t).ok()).collect();
    if parsed.iter().any(|v| v == structured) {
        return OutputJudged::Ok(format!("`{name}` structuredContent conforms and a text item carries the same JSON"));
    }
    if parsed.iter().any(Value::is_object) {
        return OutputJudged::Warn(format!(
            "`{name}` structuredContent conforms, but the JSON in its text content differs from it"
        ));
    }
    OutputJudged::Warn(format!(
        "`{name}` structuredContent conforms, but no text content item carries it serialized as JSON ({} text item(s))",
        texts.len()
    ))
}

async fn structured_output(probe: &Probe) -> Verdict {
    let with_schema: Vec<&Value> =
        probe.inventory.tools.iter().filter(|t| t.get("outputSchema").is_some_and(Value::is_object)).collect();
    if with_schema.is_empty() {
        return Verdict::skip("not applicable: no listed tool declares an outputSchema").with_all(list_evidence(probe));
    }
    let mut skipped = Vec::new();
    let mut chosen = Vec::new();
    // Read-only tools first; others only with --destructive.
    let mut ordered = with_schema.clone();
    ordered.sort_by_key(|t| !read_only_hint(t));
    for tool in ordered {
        let name = tool_name(tool);
        if !read_only_hint(tool) && !probe.options.destructive {
            skipped.push(format!("`{name}` is not hinted read-only (use --destructive to call it)"));
            continue;
        }
        match fillable_arguments(tool) {
            Ok(args) if chosen.len() < MAX_OUTPUT_CALLS => chosen.push((tool, name, args)),
            Ok(_) => skipped.push(format!("`{name}`: at most {MAX_OUTPUT_CALLS} tools are called")),
            Err(why) => skipped.push(format!("`{name}`: {why}")),
        }
    }
    if chosen.is_empty() {
        return Verdict::skip(format!(
            "no tool with an outputSchema is safe to call with arguments mcproof can fill in: {}",
            summarize(&skipped)
        ))
        .with_all(list_evidence(probe));
    }
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let mut evidence = Vec::new();
    let mut judged = Vec::new();
    for (tool, name, args) in chosen {
        let params = json!({ "name": tool.get("name").cloned().unwrap_or(Value::Null), "arguments": args });
        let reply = conn.request(probe, &format!("tools/call {name}"), "tools/call", params).await;
        let schema = tool.get("outputSchema").unwrap_or(&Value::Null);
        judged.push(judge_output(&name, schema, &reply));
        evidence.push(reply.exchange);
    }
    conn.close().await;
    let pick =
        |f: fn(&OutputJudged) -> Option<&String>| -> Vec<String> { judged.iter().filter_map(f).cloned().collect() };
    let fails = pick(|j| if let OutputJudged::Fail(m) = j { Some(m) } else { None });
    let warns = pick(|j| if let OutputJudged::Warn(m) = j { Some(m) } else { None });
    let oks = pick(|j| if let OutputJudged::Ok(m) = j { Some(m) } else { None });
    let unjudged = pick(|j| if let OutputJudged::Unjudged(m) = j { Some(m) } else { None });
    let mut notes = unjudged.clone();
    notes.extend(skipped.iter().map(|s| format!("not called: {s}")));
    let tail = if notes.is_empty() { String::new() } else { format!(" (also: {})", summarize(&notes)) };
    if !fails.is_empty() {
        return Verdict::fail(format!("{}{tail}", fails.join("; "))).with_all(evidence);
    }
    if !warns.is_empty() {
        return Verdict::warn(format!("{}{tail}", warns.join("; "))).with_all(evidence);
    }
    if oks.is_empty() {
        return Verdict::warn(format!("no called tool produced output to judge: {}", summarize(&notes)))
            .with_all(evidence);
    }
    Verdict::pass(format!("{}{tail}", oks.join("; "))).with_all(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(schema: Value) -> Value {
        json!({ "name": "t", "inputSchema": schema })
    }

    #[test]
    fn schema_rules() {
        let ok = json!({ "type": "object", "properties": { "a": { "type": "string" } } });
        assert_eq!(schema_problems("t", "inputSchema", &ok), Ok(vec![]));
        let ok2020 = json!({ "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object" });
        assert_eq!(schema_problems("t", "inputSchema", &ok2020), Ok(vec![]));
        assert_eq!(schema_problems("t", "inputSchema", &json!({ "type": "string" })).map(|p| p.len()), Ok(1));
        assert_eq!(schema_problems("t", "inputSchema", &Value::Null).map(|p| p.len()), Ok(1));
        assert_eq!(schema_problems("t", "inputSchema", &json!({})).map(|p| p.len()), Ok(1));
        let bad = json!({ "type": "object", "properties": { "a": { "type": "strng" } } });
        assert_eq!(schema_problems("t", "inputSchema", &bad).map(|p| p.len()), Ok(1));
        let bad_min = json!({ "type": "object", "properties": { "a": { "minLength": -1 } } });
        assert_eq!(schema_problems("t", "inputSchema", &bad_min).map(|p| p.len()), Ok(1));
        let custom = json!({ "$schema": "https://example.com/my-dialect", "type": "object" });
        assert!(schema_problems("t", "inputSchema", &custom).is_err());
        let remote = json!({ "type": "object", "properties": { "a": { "$ref": "https://example.com/x.json" } } });
        assert_eq!(schema_problems("t", "inputSchema", &remote), Ok(vec![]));
    }

    #[test]
    fn violations_break_the_schema_and_carry_the_canary() {
        let schema = json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["path", "n"],
            "properties": {
                "path": { "type": "string", "maxLength": 8, "pattern": "^[a-z]+$" },
                "n": { "type": "integer" }
            }
        });
        let safe = violation(&tool(schema.clone()), "CANARY-1", false).unwrap_or_else(|| panic!("none"));
        assert_eq!(safe.args["path"], json!(["CANARY-1"]));
        assert_eq!(safe.args["n"], json!("CANARY-1"));
        assert_eq!(safe.args["mcproof_unexpected"], json!("CANARY-1"));
        let full = violation(&tool(schema), "CANARY-1", true).unwrap_or_else(|| panic!("none"));
        let path = full.args["path"].as_str().unwrap_or_default();
        assert!(path.starts_with("CANARY-1") && path.len() > 8, "{path}");
        // No required property: only with `full`.
        let open = json!({ "type": "object", "additionalProperties": false, "properties": {} });
        assert!(violation(&tool(open.clone()), "C", false).is_none());
        assert_eq!(violation(&tool(open), "C", true).map(|v| v.args), Some(json!({ "mcproof_unexpected": "C" })));
        // An untyped required property cannot be broken safely.
        let untyped = json!({ "type": "object", "required": ["x"], "properties": { "x": {} } });
        assert!(violation(&tool(untyped), "C", false).is_none());
    }

    #[test]
    fn icon_schemes() {
        assert!(icon_problem(&json!("https://example.com/i.png")).is_none());
        assert!(icon_problem(&json!("data:image/png;base64,AAAA")).is_none());
        for bad in
            ["javascript:alert(1)", "file:///etc/x.png", "http://example.com/i.png", "/icon.png", "data:text/html,x"]
        {
            assert!(icon_problem(&json!(bad)).is_some(), "{bad}");
        }
        assert!(icon_problem(&json!(3)).is_some());
    }
}
