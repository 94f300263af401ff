//! The harness's own MCP client. It gives byte-level control over what is sent, reads whatever
//! comes back defensively (size, time and depth limits: a hostile server must not crash or hang
//! the harness), and records every exchange as evidence.

use std::time::Duration;

use serde_json::Value;

pub mod fuzz_invariants;
pub mod http;
pub mod sse;
pub mod stdio;

pub use http::{HttpClient, HttpRequest, McpSession};
pub use stdio::{StdioClient, StdioConn};

/// Bounds on what the client reads from a server.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// Largest response body read, in bytes; the rest is discarded.
    pub max_body: usize,
    /// Time allowed for a whole exchange (connect, send, read).
    pub timeout: Duration,
    /// Deepest JSON nesting parsed.
    pub max_depth: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self { max_body: 1024 * 1024, timeout: Duration::from_secs(10), max_depth: 64 }
    }
}

/// Parses JSON defensively: bounded depth (a pre-scan, so no recursion on hostile input),
/// `None` for anything that is not JSON.
pub fn parse_json(bytes: &[u8], max_depth: usize) -> Option<Value> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return None;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    serde_json::from_slice(bytes).ok()
}

/// The JSON-RPC messages in a parsed body: one object, or each object of an array.
pub fn messages_of(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.into_iter().filter(Value::is_object).collect(),
        v @ Value::Object(_) => vec![v],
        _ => Vec::new(),
    }
}

/// Whether `message` is the response to request `id` (same value and type).
pub fn is_response_to(message: &Value, id: &Value) -> bool {
    message.get("id") == Some(id) && (message.get("result").is_some() || message.get("error").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_json_is_refused_without_recursion() {
        assert!(parse_json("[".repeat(1_000_000).as_bytes(), 64).is_none());
        assert!(parse_json(b"{\"a\":\"[[[[[[\"}", 2).is_some());
        assert!(parse_json(b"\xff\xfe", 64).is_none());
        assert_eq!(messages_of(serde_json::json!([{"id":1}, 3, {"id":2}])).len(), 2);
    }
}
