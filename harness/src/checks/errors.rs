//! Checks of the `errors` area: what error answers reveal. Error paths are provoked with
//! requests a conforming server refuses before doing anything (unknown methods, invalid params,
//! arguments that break a tool's input schema, a malformed body, garbage cursors), and
//! everything that comes back is searched for internals and for a canary the harness planted.

use std::sync::LazyLock;
use std::time::Duration;

use futures_util::FutureExt as _;
use regex::Regex;
use serde_json::{Value, json};

use super::tools::{Conn, Reply, canary, strings_in, violations};
use crate::check::{ALL_REVISIONS, Check, CheckInfo, Kind, Level, Transport, Verdict};
use crate::evidence::Exchange;
use crate::probe::{Probe, truncate};

const BOTH: &[Transport] = &[Transport::Http, Transport::Stdio];

/// The checks of this area.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            info: CheckInfo {
                id: "errors/no-internals",
                title: "Error answers reveal no stack traces, paths or SQL",
                level: Level::Must,
                weight: 10,
                source: "server/tools §Security Considerations (sanitize tool outputs); \
                         server/utilities/logging §Security; spec-checks TO-06",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Active,
                description: "Provokes error paths — an unknown method, invalid tools/call params, arguments that \
                              break each listed tool's inputSchema (wrong types, extra properties) and a malformed \
                              body — and searches every answer (error messages and data, tool content, \
                              notifications, non-JSON bodies) for stack-trace markers (Traceback, `panicked at`, \
                              `at f (file:line)`, `file.rs:12`, node_modules), absolute paths (/home/, /usr/, \
                              C:\\…) and SQL fragments (SELECT … FROM, sqlite, SQL syntax errors).",
                remediation: "Answer errors with a generic, actionable message; log the detail (stack, path, query) \
                              on the server only. Catch panics and exceptions at the request boundary and map them \
                              to a fixed message.",
            },
            run: |p| no_internals(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "errors/canary-not-echoed",
                title: "Values sent by the client are never echoed in errors or logs",
                level: Level::Must,
                weight: 10,
                source: "server/utilities/logging §Security; server/tools §Security Considerations; \
                         spec-checks OT-01, TO-06",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Active,
                description: "Plants a canary (`CANARY-` + hex, a stand-in for a secret a user pasted) in \
                              schema-violating tool arguments (wrong-typed values, an extra property's value, \
                              over-long or pattern-breaking strings) and in an unknown method's params, after \
                              `logging/setLevel debug` when the server declares logging. The canary must not come \
                              back in any response or notification: a validation message that quotes the offending \
                              value fails.",
                remediation: "Build validation and error messages from the schema side (the property path and the \
                              rule broken), never from the offending value; keep argument values out of log \
                              notifications.",
            },
            run: |p| canary_not_echoed(p).boxed(),
        },
        Check {
            info: CheckInfo {
                id: "errors/invalid-cursor",
                title: "An invalid pagination cursor gets Invalid params",
                level: Level::Should,
                weight: 5,
                source: "server/utilities/pagination §Error Handling; spec-checks OT-05",
                revisions: ALL_REVISIONS,
                transports: BOTH,
                kind: Kind::Active,
                description: "tools/list with cursor \"../../etc\" and with a 10,000-character cursor. PASS: a \
                              JSON-RPC error -32602. WARN: another JSON-RPC error code, or a bare HTTP 4xx. FAIL: a \
                              list served for the garbage cursor (the spec says invalid cursors SHOULD get -32602), \
                              an HTTP 5xx, a crash or no answer, or internals in the answer.",
                remediation: "Treat cursors as opaque tokens the server issued: verify them (e.g. an authenticated \
                              encoding) and answer anything else with -32602 Invalid params, without echoing it.",
            },
            run: |p| invalid_cursor(p).boxed(),
        },
    ]
}

/// Markers of internals in error text, each with a name for the report.
static MARKERS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        ("Python traceback", r"\bTraceback \(most recent call last\)|\bTraceback\b"),
        ("Python stack frame", r#"File "[^"]+", line \d+"#),
        ("Rust panic", r"panicked at"),
        ("stack frame", r"\bat\s+[\w$.<>\[\]]+\s*\([^()\s]*:\d+(?::\d+)?\)"),
        ("source file and line", r"[\w./\\-]+\.(?:rs|py|js|mjs|cjs|ts|go|java|rb|php|cs|kt|scala):\d+"),
        ("node_modules path", r"node_modules"),
        ("Go panic", r"goroutine \d+ \["),
        ("Java exception", r"Exception in thread|\bjava\.lang\.[A-Z]\w*(?:Exception|Error)\b"),
        ("absolute path", r#"(?:^|[\s"'(=:,\[])(?:/home/|/usr/|/root/|/opt/|/var/|/srv/|/Users/|/tmp/)"#),
        ("Windows path", r"\b[A-Za-z]:\\[A-Za-z]"),
        ("SQL statement", r"\bSELECT\s+.{1,200}?\s+FROM\b|\bINSERT\s+INTO\b|\bDELETE\s+FROM\b"),
        ("SQLite error", r"(?i)sqlite"),
        (
            "SQL syntax error",
            r#"(?i)near "[^"]*": syntax error|syntax error at or near|error in your SQL syntax|SQLSTATE"#,
        ),
    ]
    .into_iter()
    .filter_map(|(name, p)| Regex::new(p).ok().map(|re| (name, re)))
    .collect()
});

/// The first internals marker in `text`, with an excerpt around it.
pub(crate) fn find_internals(text: &str) -> Option<(&'static str, String)> {
    for (name, re) in MARKERS.iter() {
        if let Some(m) = re.find(text) {
            let start = text[..m.start()].char_indices().rev().nth(40).map_or(0, |(i, _)| i);
            let end = text[m.end()..].char_indices().nth(60).map_or(text.len(), |(i, _)| m.end() + i);
            let snippet: String = text[start..end].chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            return Some((name, snippet));
        }
    }
    None
}

/// Text the server itself publishes in its tool metadata (descriptions, patterns, enum values),
/// at least 8 characters long, longest first. An error that repeats a tool's own schema (e.g.
/// "does not match the pattern ^SELECT …") reveals nothing new, so such text is removed before
/// the search.
fn published_text(probe: &Probe) -> Vec<String> {
    let mut all = Vec::new();
    for tool in &probe.inventory.tools {
        strings_in(tool, &mut all, 0);
    }
    all.retain(|s| s.chars().count() >= 8);
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all.dedup();
    all.truncate(2048);
    all
}

/// The first internals marker in `texts`, ignoring text the server publishes anyway.
fn internals_in(texts: &[String], published: &[String]) -> Option<(&'static str, String)> {
    texts.iter().find_map(|t| {
        let mut t = t.clone();
        for p in published {
            if t.contains(p.as_str()) {
                t = t.replace(p.as_str(), " ");
            }
        }
        find_internals(&t)
    })
}

/// One provoked error path and what came back.
struct Provoked {
    what: String,
    reply: Reply,
}

/// Sends the error-provoking requests on a fresh connection. With `canary`, the canary goes in
/// the unknown method's params and in the tool arguments; `malformed` adds a malformed body.
async fn provoke(probe: &Probe, canary: &str, malformed: bool) -> Result<(Vec<Provoked>, Vec<Exchange>), Verdict> {
    let mut conn = Conn::open(probe).await?;
    let mut out = Vec::new();
    let mut setup = Vec::new();
    if conn.init_result().get("capabilities").and_then(|c| c.get("logging")).is_some() {
        let r = conn.request(probe, "logging/setLevel debug", "logging/setLevel", json!({ "level": "debug" })).await;
        setup.push(r.exchange.clone());
        out.push(Provoked { what: "logging/setLevel debug".into(), reply: r });
    }
    let r = conn
        .request(
            probe,
            "unknown method",
            "mcproof/no-such-method",
            json!({ "note": canary, "n": [1, { "x": canary }] }),
        )
        .await;
    out.push(Provoked { what: "an unknown method".into(), reply: r });
    let r = conn
        .request(probe, "tools/call with a numeric name", "tools/call", json!({ "name": 42, "arguments": {} }))
        .await;
    out.push(Provoked { what: "tools/call with `name: 42`".into(), reply: r });
    for v in violations(probe, canary) {
        let label = format!("tools/call {} with schema-violating arguments: {}", truncate(&v.tool, 40), v.what);
        let r = conn.request(probe, &label, "tools/call", json!({ "name": v.tool, "arguments": v.args })).await;
        out.push(Provoked {
            what: format!("tools/call `{}` (schema-violating arguments)", truncate(&v.tool, 40)),
            reply: r,
        });
    }
    if malformed {
        let body = br#"{"jsonrpc":"2.0","id":9999,"method":"tools/list","params":{"#;
        let r = conn.send("malformed JSON body", body, Some(Value::Null), Some(Duration::from_secs(2))).await;
        out.push(Provoked { what: "a malformed JSON body".into(), reply: r });
    }
    let late = conn.drain(Duration::from_millis(300)).await;
    if !late.is_empty() {
        let mut reply = Reply::default();
        for line in late {
            match line.json {
                Some(v) => reply.messages.push(v),
                None => reply.unparsed.push(line.text.clone()),
            }
            reply.raw.push_str(&line.text);
            reply.raw.push('\n');
        }
        out.push(Provoked { what: "messages that arrived afterwards".into(), reply });
    }
    conn.close().await;
    Ok((out, setup))
}

async fn no_internals(probe: &Probe) -> Verdict {
    let canary = canary(probe);
    let (provoked, _) = match provoke(probe, &canary, true).await {
        Ok(p) => p,
        Err(v) => return v,
    };
    let published = published_text(probe);
    let mut findings = Vec::new();
    let mut evidence = Vec::new();
    let mut clean = Vec::new();
    for p in provoked {
        let hit = internals_in(&p.reply.texts(), &published);
        match hit {
            Some((marker, snippet)) => {
                findings.push(format!("{} → {marker}: \"{}\"", p.what, truncate(snippet.trim(), 120)));
                evidence.push(p.reply.exchange);
            }
            None => clean.push(p.reply.exchange),
        }
    }
    let total = findings.len() + clean.len();
    if !findings.is_empty() {
        let shown: Vec<&str> = findings.iter().take(2).map(String::as_str).collect();
        return Verdict::fail(format!(
            "{} of {total} error answer(s) reveal internals: {}{}",
            findings.len(),
            shown.join("; "),
            if findings.len() > shown.len() { "; …" } else { "" }
        ))
        .with_all(evidence)
        .with_all(clean.into_iter().take(2));
    }
    Verdict::pass(format!(
        "{total} provoked error answer(s) hold no stack trace, source path, absolute path or SQL fragment"
    ))
    .with_all(clean)
}

async fn canary_not_echoed(probe: &Probe) -> Verdict {
    let canary = canary(probe);
    let (provoked, _) = match provoke(probe, &canary, false).await {
        Ok(p) => p,
        Err(v) => return v,
    };
    // A partial echo (the value cut short) still leaks: match on the prefix and 8 hex digits.
    let needle = &canary[..canary.len().min(15)];
    let mut findings = Vec::new();
    let mut evidence = Vec::new();
    let mut clean = Vec::new();
    let mut carried = 0;
    for p in provoked {
        if p.what.starts_with("tools/call `") || p.what == "an unknown method" {
            carried += 1;
        }
        if p.reply.raw.contains(needle) || p.reply.texts().iter().any(|t| t.contains(needle)) {
            let what = p
                .reply
                .messages
                .iter()
                .find(|m| m.to_string().contains(needle))
                .map(|m| match m.get("method").and_then(Value::as_str) {
                    Some(method) => format!("a {method} notification"),
                    None if m.get("error").is_some() => "the error".to_owned(),
                    None => "the result".to_owned(),
                })
                .unwrap_or_else(|| "the answer".to_owned());
            findings.push(format!("{} → the canary came back in {what}", p.what));
            evidence.push(p.reply.exchange);
        } else {
            clean.push(p.reply.exchange);
        }
    }
    if !findings.is_empty() {
        let shown: Vec<&str> = findings.iter().take(2).map(String::as_str).collect();
        return Verdict::fail(format!(
            "the planted canary {needle}… was echoed back in {} answer(s): {}{}",
            findings.len(),
            shown.join("; "),
            if findings.len() > shown.len() { "; …" } else { "" }
        ))
        .with_all(evidence);
    }
    let tools_note = if probe.inventory.tools.is_empty() {
        " (the server lists no tools, so only the unknown method carried it)".to_owned()
    } else {
        String::new()
    };
    Verdict::pass(format!(
        "the canary, sent in {carried} request(s), never came back in a response or notification{tools_note}"
    ))
    .with_all(clean)
}

async fn invalid_cursor(probe: &Probe) -> Verdict {
    let mut conn = match Conn::open(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let published = published_text(probe);
    let long = "A".repeat(10_000);
    let mut outcomes: Vec<(u8, String)> = Vec::new();
    let mut evidence = Vec::new();
    for (what, cursor) in [("cursor \"../../etc\"", "../../etc"), ("a 10,000-character cursor", long.as_str())] {
        let r =
            conn.request(probe, &format!("tools/list with {what}"), "tools/list", json!({ "cursor": cursor })).await;
        let internals = internals_in(&r.texts(), &published);
        let outcome = if let Some((marker, snippet)) = internals {
            (2, format!("{what} → {marker} in the answer: \"{}\"", truncate(&snippet, 120)))
        } else if r.status.is_some_and(|s| s >= 500) {
            (2, format!("{what} → HTTP {}", r.status.unwrap_or_default()))
        } else if r.result().is_some() {
            let n = r.result().and_then(|x| x.get("tools")).and_then(Value::as_array).map_or(0, Vec::len);
            (2, format!("{what} → a list of {n} tool(s) was served instead of an error"))
        } else if let Some(code) = r.error_code() {
            if code == -32602 {
                (0, format!("{what} → -32602"))
            } else {
                (1, format!("{what} → error {code}, not -32602"))
            }
        } else if r.error().is_some() {
            (1, format!("{what} → an error without an integer code"))
        } else if let Some(s) = r.status.filter(|s| *s >= 400) {
            (1, format!("{what} → HTTP {s} without a JSON-RPC error"))
        } else {
            (2, format!("{what} → {}", r.failure.clone().unwrap_or_else(|| "no answer".into())))
        };
        outcomes.push(outcome);
        evidence.push(r.exchange);
    }
    let crashed = conn.exited();
    conn.close().await;
    if crashed {
        outcomes.push((2, "the server process exited".into()));
    }
    let worst = outcomes.iter().map(|(s, _)| *s).max().unwrap_or(0);
    let text = outcomes.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ");
    let verdict = match worst {
        0 => Verdict::pass(format!("invalid cursors are refused with Invalid params: {text}")),
        1 => Verdict::warn(format!("invalid cursors are refused, but not with -32602: {text}")),
        _ => Verdict::fail(text),
    };
    verdict.with_all(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internals_are_found() {
        for text in [
            "Traceback (most recent call last):\n  File \"/app/server.py\", line 12, in call",
            "thread 'main' panicked at src/tools/query.rs:42:9",
            "TypeError: x is undefined\n    at handle (/srv/app/index.js:10:5)",
            "at com.example.Tool.call(Tool.java:42)",
            "cannot open /home/alice/data.db",
            "error: near \"FROM\": syntax error",
            "SELECT name, price FROM products WHERE id = 'x'",
            "rusqlite error",
            "C:\\Users\\bob\\app",
            "Cannot find module in node_modules/foo",
        ] {
            assert!(find_internals(text).is_some(), "{text}");
        }
    }

    #[test]
    fn published_schema_text_is_not_a_finding() {
        let published = vec!["^SELECT [a-z, ]+ FROM products$".to_owned()];
        let texts = vec!["/sql: does not match the required pattern ^SELECT [a-z, ]+ FROM products$".to_owned()];
        assert!(find_internals(&texts[0]).is_some());
        assert!(internals_in(&texts, &published).is_none());
        let texts = vec!["SELECT * FROM users failed".to_owned()];
        assert!(internals_in(&texts, &published).is_some());
    }

    #[test]
    fn ordinary_errors_are_clean() {
        for text in [
            "Method not found",
            "Invalid arguments for tool `read_file`: /path: does not match the required pattern ^[A-Za-z0-9_.-][A-Za-z0-9_./-]*$",
            "Invalid arguments for tool `notes_create`: (root): unknown property 'mcproof_unexpected' is not allowed",
            "Parse error: expected value at line 1 column 61",
            "tools/call needs a string `name`",
            "Invalid cursor",
            "Select a product category from the list",
            "Unknown tool",
        ] {
            assert!(find_internals(text).is_none(), "{text}: {:?}", find_internals(text));
        }
    }
}
