//! Oracles: how the fuzzer decides that an answer (or its absence) is a failure.
//!
//! They are deliberately conservative: a server may refuse anything the fuzzer sends, in any
//! status and with any error; what it may not do is fail internally (5xx), die, stop
//! answering, answer with something that is not JSON-RPC, lose or change a request's id, or
//! leak internals. Ids the fuzzer itself made odd (fractions, huge numbers, objects) may come
//! back as anything, since the server is right to refuse them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Body;
use crate::check::Level;

/// The failure classes, each reported as check `fuzz/<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Oracle {
    /// An HTTP status of 500 or more.
    ServerError,
    /// The stdio process exited, or the HTTP server stopped accepting connections after it had
    /// answered.
    Crash,
    /// A request got no answer within the timeout.
    Hang,
    /// An answer that is not JSON-RPC: not JSON, both or neither of result and error, a bad
    /// error object, a wrong `jsonrpc` member.
    Malformed,
    /// A response with an id no request had, an id whose type changed, or no response for a
    /// request that was answered with 200 or 202.
    WrongId,
    /// Stack traces, source paths or SQL in an error answer.
    Internals,
}

impl Oracle {
    pub const ALL: [Oracle; 6] =
        [Oracle::ServerError, Oracle::Crash, Oracle::Hang, Oracle::Malformed, Oracle::WrongId, Oracle::Internals];

    pub fn id(self) -> &'static str {
        match self {
            Oracle::ServerError => "server-error",
            Oracle::Crash => "crash",
            Oracle::Hang => "hang",
            Oracle::Malformed => "malformed-response",
            Oracle::WrongId => "wrong-id",
            Oracle::Internals => "internals",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.id() == s)
    }

    pub fn title(self) -> &'static str {
        match self {
            Oracle::ServerError => "Fuzzed input never causes an HTTP 5xx",
            Oracle::Crash => "Fuzzed input never crashes the server",
            Oracle::Hang => "Fuzzed requests are always answered in time",
            Oracle::Malformed => "Every answer to fuzzed input is well-formed JSON-RPC",
            Oracle::WrongId => "Every response carries its request's id, with the same type",
            Oracle::Internals => "Answers to fuzzed input reveal no stack traces, paths or SQL",
        }
    }

    /// What a PASS says.
    pub fn absent(self) -> &'static str {
        match self {
            Oracle::ServerError => "no HTTP 5xx",
            Oracle::Crash => "no crash",
            Oracle::Hang => "no unanswered request",
            Oracle::Malformed => "no malformed answer",
            Oracle::WrongId => "no lost or altered id",
            Oracle::Internals => "no internals in any answer",
        }
    }

    pub fn level(self) -> Level {
        match self {
            Oracle::Hang => Level::Should,
            _ => Level::Must,
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            Oracle::ServerError | Oracle::Crash | Oracle::Hang => {
                "basic §JSON-RPC messages (requests MUST be answered); basic/transports; seeds: input validation"
            }
            Oracle::Malformed => "JSON-RPC 2.0 §5 Response object; basic §Responses",
            Oracle::WrongId => "JSON-RPC 2.0 §5 (id MUST be the same as the request's); basic §Responses",
            Oracle::Internals => "server/tools §Security Considerations; spec-checks TO-06",
        }
    }

    pub fn remediation(self) -> &'static str {
        match self {
            Oracle::ServerError | Oracle::Crash => {
                "Validate every message and argument before use and map every failure to a JSON-RPC error \
                 (-32600/-32602 for bad input); catch panics and exceptions at the request boundary. Replay the \
                 reproducer with `mcproof replay FILE TARGET` while fixing."
            }
            Oracle::Hang => {
                "Bound the work each request may do (time limits, sizes, depth) and answer every request, with an \
                 error if need be."
            }
            Oracle::Malformed => {
                "Serialize answers from a typed JSON-RPC response (exactly one of result and error; error with an \
                 integer code and a string message) and never write anything else to the MCP channel."
            }
            Oracle::WrongId => {
                "Echo the request id exactly as received (same type and value); answer every request with an id, \
                 with null only when the id could not be read."
            }
            Oracle::Internals => "Answer errors with a generic message and log the detail on the server only.",
        }
    }
}

/// A failure seen while running a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub oracle: Oracle,
    /// What was seen, in one sentence.
    pub detail: String,
    /// Index of the step that failed.
    pub step: usize,
    /// Oracle plus what the failing message was (method, tool): one finding per signature.
    pub signature: String,
}

/// What a message sent asks of the answer.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    /// Ids of well-formed requests (string, or integer within ±2^53): each needs a response
    /// with exactly this id, or an error with a null id.
    pub expected: Vec<Value>,
    /// Every non-null id in the message, odd ones included: a response may carry any of them.
    pub ids: Vec<Value>,
    /// Strings the message carried (an answer that repeats them leaks nothing).
    pub echoes: Vec<String>,
    /// What the message was, for grouping findings: method (and tool), `batch` or `raw`.
    pub what: String,
    /// Sent as raw text: a lenient parser may read ids the fuzzer cannot know (after a BOM,
    /// from duplicate keys), so unknown ids in the answer are not judged.
    pub raw: bool,
}

const SAFE_INTEGER: i64 = 1 << 53;

/// A request id every JSON-RPC peer can echo exactly.
pub fn is_plain_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => n.as_i64().is_some_and(|i| (-SAFE_INTEGER..=SAFE_INTEGER).contains(&i)),
        _ => false,
    }
}

/// The id of `message` if it is a well-formed request.
pub fn valid_request_id(message: &Value) -> Option<Value> {
    let m = message.as_object()?;
    let shape_ok = m.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
        && m.get("method").is_some_and(Value::is_string)
        && m.get("params").is_none_or(|p| p.is_object() || p.is_array());
    let id = m.get("id")?;
    (shape_ok && is_plain_id(id)).then(|| id.clone())
}

impl Sent {
    pub fn of(body: &Body) -> Self {
        let mut sent = Sent::default();
        match body {
            Body::Raw(text) => {
                sent.what = "raw".into();
                sent.raw = true;
                sent.echoes.push(text.clone());
                if let Ok(v) = serde_json::from_str::<Value>(text.trim_start_matches('\u{feff}')) {
                    sent.add(&v);
                }
            }
            Body::Json(v) => sent.add(v),
        }
        if sent.what.is_empty() {
            sent.what = describe(body);
        }
        sent.echoes.retain(|s| s.chars().count() >= 4);
        sent.echoes.sort_by_key(|s| std::cmp::Reverse(s.len()));
        sent
    }

    fn add(&mut self, v: &Value) {
        let items: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for item in items {
            if let Some(id) = valid_request_id(item) {
                self.expected.push(id);
            }
            if let Some(id) = item.get("id").filter(|id| !id.is_null()) {
                self.ids.push(id.clone());
            }
        }
        strings(v, &mut self.echoes, 0);
    }
}

/// A short name for a message: its method (and tool name), `batch`, `raw` or `invalid`.
pub fn describe(body: &Body) -> String {
    match body {
        Body::Raw(_) => "raw".into(),
        Body::Json(Value::Array(_)) => "batch".into(),
        Body::Json(v) => match v.get("method").and_then(Value::as_str) {
            Some("tools/call") => {
                let tool = v.get("params").and_then(|p| p.get("name")).and_then(Value::as_str).unwrap_or("?");
                format!("tools/call {}", crate::probe::truncate(tool, 40))
            }
            Some(m) => crate::probe::truncate(m, 40),
            None if v.get("result").is_some() || v.get("error").is_some() => "response".into(),
            None => "invalid".into(),
        },
    }
}

fn strings(v: &Value, out: &mut Vec<String>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out, depth + 1)),
        Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                strings(x, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Checks the JSON-RPC messages of one answer. `known` holds every id the client has used on
/// this connection (responses may arrive late on stdio).
pub fn check_messages(messages: &[Value], sent: &Sent, known: &[Value]) -> Option<(Oracle, String)> {
    for m in messages {
        let Some(obj) = m.as_object() else {
            return Some((Oracle::Malformed, format!("a message is not a JSON object: {}", short(m))));
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Some((Oracle::Malformed, format!("a message lacks \"jsonrpc\": \"2.0\": {}", short(m))));
        }
        if obj.contains_key("method") {
            if !obj.get("method").is_some_and(Value::is_string) {
                return Some((Oracle::Malformed, format!("a server message's method is not a string: {}", short(m))));
            }
            continue;
        }
        let (has_result, has_error) = (obj.contains_key("result"), obj.contains_key("error"));
        if has_result && has_error {
            return Some((Oracle::Malformed, format!("a response has both result and error: {}", short(m))));
        }
        if !has_result && !has_error {
            return Some((Oracle::Malformed, format!("a response has neither result nor error: {}", short(m))));
        }
        if has_error {
            let e = &obj["error"];
            let code_ok = e.get("code").is_some_and(|c| c.is_i64() || c.is_u64());
            let message_ok = e.get("message").is_some_and(Value::is_string);
            if !code_ok || !message_ok {
                return Some((
                    Oracle::Malformed,
                    format!("an error object lacks an integer code or a string message: {}", short(m)),
                ));
            }
        }
        let Some(id) = obj.get("id") else {
            return Some((Oracle::Malformed, format!("a response has no id: {}", short(m))));
        };
        if id.is_null() {
            if has_result {
                return Some((Oracle::WrongId, format!("a successful result carries a null id: {}", short(m))));
            }
            continue;
        }
        let is_known = known.contains(id) || sent.ids.contains(id);
        if is_known {
            continue;
        }
        // An odd id the fuzzer sent may legitimately come back converted or refused.
        let odd_sent = sent.raw || sent.ids.iter().any(|s| !is_plain_id(s));
        if let Some(original) = sent.expected.iter().chain(known.iter()).find(|s| loosely_equal(s, id)) {
            return Some((
                Oracle::WrongId,
                format!("the id changed type or form: sent {}, answered {}", short(original), short(id)),
            ));
        }
        if !odd_sent {
            return Some((Oracle::WrongId, format!("a response carries id {} that no request had", short(id))));
        }
    }
    None
}

/// Whether each expected id got an answer (its own, or a null-id error). Returns the first
/// unanswered one.
pub fn unanswered<'a>(messages: &[Value], sent: &'a Sent) -> Option<&'a Value> {
    let null_error = messages.iter().any(|m| m.get("id").is_some_and(Value::is_null) && m.get("error").is_some());
    if null_error {
        return None;
    }
    sent.expected.iter().find(|id| {
        !messages.iter().any(|m| m.get("id") == Some(*id) && (m.get("result").is_some() || m.get("error").is_some()))
    })
}

fn loosely_equal(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |f| f.to_string()),
        other => other.to_string(),
    };
    a != b && text(a) == text(b)
}

/// Text of an answer where internals would show: error messages and data, the text of tool
/// results flagged `isError`.
pub fn error_texts(messages: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for m in messages {
        if let Some(e) = m.get("error") {
            if let Some(s) = e.get("message").and_then(Value::as_str) {
                out.push(s.to_owned());
            }
            if let Some(d) = e.get("data") {
                out.push(d.as_str().map_or_else(|| d.to_string(), str::to_owned));
            }
        }
        if let Some(r) = m.get("result").filter(|r| r.get("isError") == Some(&Value::Bool(true)))
            && let Some(items) = r.get("content").and_then(Value::as_array)
        {
            out.extend(items.iter().filter_map(|c| c.get("text")?.as_str().map(str::to_owned)));
        }
    }
    out
}

/// The first internals marker in `texts`, ignoring anything the request itself carried.
pub fn check_internals(texts: &[String], sent: &Sent) -> Option<(Oracle, String)> {
    for text in texts {
        let mut t = text.clone();
        for echo in &sent.echoes {
            if t.contains(echo.as_str()) {
                t = t.replace(echo.as_str(), " ");
            }
        }
        if let Some((name, snippet)) = crate::checks::errors::find_internals(&t) {
            return Some((Oracle::Internals, format!("{name} in an answer: …{snippet}…")));
        }
    }
    None
}

/// What makes two failures the same finding. 5xx and hangs are grouped by the message that
/// caused them (different methods reach different code); a crash is one finding; the others by
/// what was wrong with the answer (digits folded), whatever message provoked it.
pub fn signature(oracle: Oracle, what: &str, detail: &str) -> String {
    match oracle {
        Oracle::ServerError | Oracle::Hang => format!("{}:{what}", oracle.id()),
        Oracle::Crash => oracle.id().to_owned(),
        _ => {
            let folded: String = detail.chars().take(96).map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
            format!("{}:{folded}", oracle.id())
        }
    }
}

/// A value, cut for a one-line message.
pub fn short(v: &Value) -> String {
    crate::probe::truncate(&v.to_string(), 160)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sent(v: Value) -> Sent {
        Sent::of(&Body::Json(v))
    }

    #[test]
    fn conforming_answers_pass_and_broken_ones_fail() {
        let s = sent(json!({"jsonrpc":"2.0","id":7,"method":"ping"}));
        assert_eq!(s.expected, vec![json!(7)]);
        let ok = [json!({"jsonrpc":"2.0","id":7,"result":{}})];
        assert_eq!(check_messages(&ok, &s, &[]), None);
        assert_eq!(unanswered(&ok, &s), None);
        let null_err = [json!({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad"}})];
        assert_eq!(check_messages(&null_err, &s, &[]), None);
        assert_eq!(unanswered(&null_err, &s), None);

        let both = [json!({"jsonrpc":"2.0","id":7,"result":{},"error":{"code":1,"message":"x"}})];
        assert_eq!(check_messages(&both, &s, &[]).map(|f| f.0), Some(Oracle::Malformed));
        let typed = [json!({"jsonrpc":"2.0","id":"7","result":{}})];
        assert_eq!(check_messages(&typed, &s, &[]).map(|f| f.0), Some(Oracle::WrongId));
        let other = [json!({"jsonrpc":"2.0","id":8,"result":{}})];
        assert_eq!(check_messages(&other, &s, &[]).map(|f| f.0), Some(Oracle::WrongId));
        assert_eq!(unanswered(&other, &s), Some(&json!(7)));
        let no_code = [json!({"jsonrpc":"2.0","id":7,"error":{"message":"x"}})];
        assert_eq!(check_messages(&no_code, &s, &[]).map(|f| f.0), Some(Oracle::Malformed));

        // Odd ids may come back as anything.
        let odd = sent(json!({"jsonrpc":"2.0","id":u64::MAX,"method":"ping"}));
        assert!(odd.expected.is_empty());
        let converted = [json!({"jsonrpc":"2.0","id":1.8446744073709552e19,"result":{}})];
        assert_eq!(check_messages(&converted, &odd, &[]), None);
    }

    #[test]
    fn internals_count_only_when_the_request_did_not_carry_them() {
        let s = sent(json!({"jsonrpc":"2.0","id":1,"method":"x","params":{"p":"/home/user/file.rs:12"}}));
        let echoed = vec!["unknown path /home/user/file.rs:12".to_owned()];
        assert_eq!(check_internals(&echoed, &s), None);
        let leaked = vec!["thread 'main' panicked at src/server.rs:42:5".to_owned()];
        assert_eq!(check_internals(&leaked, &s).map(|f| f.0), Some(Oracle::Internals));
    }
}
