//! Checks of the `stdio` area: what a stdio server writes to its stdout. Each check starts a
//! fresh child, drives a short ordinary session (initialize, notifications/initialized,
//! tools/list, failing tools/call) and inspects every line the child wrote.

use std::time::Duration;

use futures_util::FutureExt as _;
use serde_json::{Value, json};

use super::tools::{Reply, canary, stdio_send, violations};
use crate::check::{ALL_REVISIONS, Check, CheckInfo, Kind, Level, Transport, Verdict};
use crate::client::http::{PREFERRED_REVISION, initialize_body};
use crate::client::stdio::Line;
use crate::evidence::{Exchange, RequestRecord, ResponseRecord, excerpt};
use crate::probe::{Probe, truncate};

const STDIO: &[Transport] = &[Transport::Stdio];

/// Longest wait for one answer in these checks: a server whose framing is broken never
/// produces a parsable response, and the check must still end quickly.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// The checks of this area.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            info: CheckInfo {
                id: "stdio/clean-stdout",
                title: "stdout carries only JSON-RPC messages",
                level: Level::Must,
                weight: 10,
                source: "basic/transports §stdio; spec-checks SI-01",
                revisions: ALL_REVISIONS,
                transports: STDIO,
                kind: Kind::Active,
                description: "Starts the server, sends initialize, notifications/initialized, tools/list and a \
                              tools/call of a tool that does not exist, then reads stdout line by line: every \
                              non-empty line must parse as one JSON-RPC 2.0 message (or, in 2025-03-26, a batch \
                              of them). Banners, log lines and prompts on stdout fail.",
                remediation: "Write only MCP messages to stdout; send logs, banners and diagnostics to stderr (or \
                              to MCP log notifications). Check libraries and print statements that default to \
                              stdout.",
            },
            run: |p| clean_stdout(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "stdio/newline-framing",
                title: "Each stdout line is one complete message (no embedded newlines)",
                level: Level::Must,
                weight: 10,
                source: "basic/transports §stdio; spec-checks SI-02",
                revisions: ALL_REVISIONS,
                transports: STDIO,
                kind: Kind::Active,
                description: "Drives calls whose answers carry text (schema-violating tool calls, an unknown tool \
                              name containing a newline) and checks that no message is spread over several lines: \
                              no stdout line is a fragment of JSON (pretty-printed output, raw newlines inside \
                              strings) and every request is answered on a line of its own.",
                remediation: "Serialize each message compactly (no pretty-printing) and let the JSON encoder escape \
                              newlines inside strings; write exactly one message per line, terminated by \\n.",
            },
            run: |p| newline_framing(p).boxed(),
        },
    ]
}

/// Whether `v` is a JSON-RPC 2.0 message (request, notification or response).
fn is_message(v: &Value) -> bool {
    let Some(obj) = v.as_object() else { return false };
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        return false;
    }
    let is_request = obj.get("method").is_some_and(Value::is_string);
    let is_response = obj.contains_key("id") && (obj.contains_key("result") ^ obj.contains_key("error"));
    is_request || is_response
}

/// A started child and the lines it wrote, with the exchanges that drove it.
struct Session {
    lines: Vec<Line>,
    evidence: Vec<Exchange>,
    unanswered: Vec<String>,
    stderr: String,
}

/// Starts the server, sends `requests` after initialize (each waited for, at most [`MAX_WAIT`]),
/// reads a little longer, and closes it.
async fn drive(probe: &Probe, requests: Vec<(String, Value)>) -> Result<Session, Verdict> {
    let stdio = probe.stdio()?;
    let command = stdio.target().command.clone();
    let wait = probe.options.limits.timeout.min(MAX_WAIT);
    let mut conn = stdio.spawn().map_err(|e| Verdict::error(format!("could not start the server: {e}")))?;
    let mut evidence = Vec::new();
    let mut unanswered = Vec::new();
    let init = initialize_body(probe.next_id(), PREFERRED_REVISION);
    let id = init.get("id").cloned();
    let r = stdio_send(&mut conn, &command, "initialize", init.to_string().as_bytes(), id.as_ref(), wait).await;
    let initialized = r.result().is_some();
    if !initialized {
        unanswered
            .push(format!("initialize ({})", r.failure.clone().unwrap_or_else(|| "answered with an error".into())));
    }
    evidence.push(r.exchange);
    if initialized {
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let r = stdio_send(
            &mut conn,
            &command,
            "notifications/initialized",
            note.to_string().as_bytes(),
            None,
            Duration::ZERO,
        )
        .await;
        evidence.push(r.exchange);
        for (label, mut body) in requests {
            let id = json!(probe.next_id());
            body["id"] = id.clone();
            body["jsonrpc"] = json!("2.0");
            let r: Reply = stdio_send(&mut conn, &command, &label, body.to_string().as_bytes(), Some(&id), wait).await;
            let lost = r.response.is_none();
            if lost {
                unanswered.push(format!("{label} ({})", r.failure.clone().unwrap_or_default()));
            }
            evidence.push(r.exchange);
            // An unanswered request means the stream is already broken: stop rather than wait again.
            if lost || conn.has_exited() {
                break;
            }
        }
    }
    // Late output: log lines or notifications written after the last answer.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while conn.next_line(deadline.saturating_duration_since(tokio::time::Instant::now())).await.is_some() {
        if conn.seen.len() > 4096 {
            break;
        }
    }
    let lines = std::mem::take(&mut conn.seen);
    let stderr = conn.stderr();
    let _ = conn.close(Duration::from_secs(2)).await;
    Ok(Session { lines, evidence, unanswered, stderr })
}

/// An evidence record of the whole stdout transcript.
fn transcript(probe: &Probe, lines: &[Line]) -> Exchange {
    let command = probe.stdio().map(|s| s.target().command.clone()).unwrap_or_default();
    let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let (body, truncated) = excerpt(text.join("\n").as_bytes());
    Exchange {
        label: format!("everything the server wrote to stdout ({} line(s))", lines.len()),
        request: RequestRecord { method: "stdio".into(), target: command, headers: Vec::new(), body: String::new() },
        response: Some(ResponseRecord { status: 0, headers: Vec::new(), body, truncated }),
        elapsed_ms: 0,
        error: None,
    }
}

async fn clean_stdout(probe: &Probe) -> Verdict {
    let requests = vec![
        ("tools/list".to_owned(), json!({ "method": "tools/list", "params": {} })),
        (
            "tools/call of a tool that does not exist".to_owned(),
            json!({ "method": "tools/call", "params": { "name": "mcproof_no_such_tool", "arguments": {} } }),
        ),
    ];
    let s = match drive(probe, requests).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let mut bad = Vec::new();
    let mut unchecked = 0;
    let mut counted = 0;
    for (n, line) in s.lines.iter().enumerate() {
        if line.text.trim().is_empty() {
            continue;
        }
        counted += 1;
        if line.truncated {
            unchecked += 1;
            continue;
        }
        let ok = match &line.json {
            Some(Value::Array(items)) => !items.is_empty() && items.iter().all(is_message),
            Some(v) => is_message(v),
            None => false,
        };
        if !ok {
            bad.push(format!("line {}: {:?}", n + 1, truncate(&line.text, 100)));
        }
    }
    let mut evidence = vec![transcript(probe, &s.lines)];
    evidence.extend(s.evidence);
    if !bad.is_empty() {
        let shown: Vec<&str> = bad.iter().take(3).map(String::as_str).collect();
        return Verdict::fail(format!(
            "{} of {counted} stdout line(s) are not JSON-RPC messages: {}",
            bad.len(),
            shown.join("; ")
        ))
        .with_all(evidence);
    }
    if counted == 0 {
        let hint = if s.stderr.is_empty() { String::new() } else { format!("; stderr: {}", truncate(&s.stderr, 200)) };
        return Verdict::error(format!("the server wrote nothing to stdout{hint}")).with_all(evidence);
    }
    let note =
        if unchecked > 0 { format!(" ({unchecked} over-long line(s) could not be checked)") } else { String::new() };
    let unanswered =
        if s.unanswered.is_empty() { String::new() } else { format!("; unanswered: {}", s.unanswered.join(", ")) };
    Verdict::pass(format!("all {counted} stdout line(s) are JSON-RPC messages{note}{unanswered}")).with_all(evidence)
}

/// Whether a line that is not JSON by itself looks like part of a JSON document.
fn looks_like_fragment(text: &str) -> bool {
    let t = text.trim();
    let first = t.chars().next();
    matches!(first, Some('{' | '}' | '[' | ']' | '"'))
        || t.ends_with(',')
        || t.ends_with('{')
        || t.ends_with('[')
        || t.ends_with("\",")
}

async fn newline_framing(probe: &Probe) -> Verdict {
    let canary = canary(probe);
    let mut requests = vec![(
        "tools/call of an unknown tool whose name holds a newline".to_owned(),
        json!({ "method": "tools/call", "params": { "name": "mcproof\nno_such_tool", "arguments": { "text": "line one\nline two" } } }),
    )];
    for v in violations(probe, &canary).into_iter().take(3) {
        requests.push((
            format!("tools/call {} with schema-violating arguments", truncate(&v.tool, 40)),
            json!({ "method": "tools/call", "params": { "name": v.tool, "arguments": v.args } }),
        ));
    }
    let s = match drive(probe, requests).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    // Runs of consecutive lines that are not JSON on their own.
    let mut problems = Vec::new();
    let mut run: Vec<&Line> = Vec::new();
    let mut runs: Vec<Vec<&Line>> = Vec::new();
    for line in &s.lines {
        if line.json.is_none() && !line.truncated && !line.text.trim().is_empty() {
            run.push(line);
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    for run in &runs {
        let joined: Vec<&str> = run.iter().map(|l| l.text.as_str()).collect();
        let joined = joined.join("\n");
        if run.len() > 1 && serde_json::from_str::<Value>(&joined).is_ok() {
            problems.push(format!("a JSON message spread over {} lines: {:?}", run.len(), truncate(&joined, 100)));
        } else if let Some(frag) = run.iter().find(|l| looks_like_fragment(&l.text)) {
            problems.push(format!("a fragment of a JSON message on its own line: {:?}", truncate(&frag.text, 100)));
        }
    }
    let mut evidence = vec![transcript(probe, &s.lines)];
    evidence.extend(s.evidence);
    if !problems.is_empty() {
        let unanswered = if s.unanswered.is_empty() {
            String::new()
        } else {
            format!("; {} request(s) never got a parsable answer", s.unanswered.len())
        };
        return Verdict::fail(format!("{}{unanswered}", problems.into_iter().take(3).collect::<Vec<_>>().join("; ")))
            .with_all(evidence);
    }
    if !s.unanswered.is_empty() {
        return Verdict::error(format!(
            "no answer to {} (and no framing problem visible on stdout)",
            s.unanswered.join(", ")
        ))
        .with_all(evidence);
    }
    let messages = s.lines.iter().filter(|l| l.json.is_some()).count();
    let other = s.lines.iter().filter(|l| l.json.is_none() && !l.text.trim().is_empty()).count();
    let note = if other > 0 { format!(" ({other} non-JSON line(s): see stdio/clean-stdout)") } else { String::new() };
    Verdict::pass(format!("{messages} message(s), each complete on a single line; every request was answered{note}"))
        .with_all(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fragments() {
        assert!(is_message(&json!({"jsonrpc":"2.0","id":1,"result":{}})));
        assert!(is_message(&json!({"jsonrpc":"2.0","method":"notifications/message","params":{}})));
        assert!(!is_message(&json!({"id":1,"result":{}})));
        assert!(!is_message(&json!({"jsonrpc":"2.0","id":1,"result":{},"error":{}})));
        assert!(!is_message(&json!("starting")));
        assert!(looks_like_fragment("{"));
        assert!(looks_like_fragment("  \"jsonrpc\": \"2.0\","));
        assert!(!looks_like_fragment("INFO server started"));
    }
}
