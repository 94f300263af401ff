//! The invariants the `harness_parsers` fuzz target checks: a hostile server's bytes are the
//! harness's input, so its response parsers must hold up as well as the server's own.
//!
//! `fuzz/fuzz_targets/harness_parsers.rs` is a shim over [`harness_parsers`], and
//! `tests/tests/fuzz_replay.rs` runs the committed seeds through it on stable.

use serde_json::Value;

use super::parse_json;
use super::sse::{SseEvent, SseParser};
use crate::checks::auth::parse_challenges;

/// Largest input looked at, so one execution stays cheap whatever the input.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Line bound the SSE parser runs with here: small, so fuzzing reaches the cut-line paths.
const MAX_LINE: usize = 256;

/// Depth bound `parse_json` runs with here.
const MAX_DEPTH: usize = 16;

/// `harness_parsers`: the first byte seeds the chunk sizes, the rest is a server's response.
///
/// - SSE: the events are the same whether the stream arrives at once, byte by byte, or in
///   the chunks the seed picks; no `id` or `event` holds a line break, and no field is longer
///   than the line bound.
/// - JSON: `parse_json` accepts exactly the bytes serde_json reads that are no deeper than its
///   bound, and never returns a value deeper than the bound.
/// - `WWW-Authenticate`: parsing never panics, yields at most one challenge per character, and
///   every scheme is a non-empty token and every parameter name a lowercase token (or empty,
///   for a token68).
pub fn harness_parsers(data: &[u8]) {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    let Some((&seed, body)) = data.split_first() else { return };
    sse_split_invariance(seed, body);
    json_bounds(body);
    challenges(&String::from_utf8_lossy(body));
}

fn sse_split_invariance(seed: u8, body: &[u8]) {
    let whole = SseParser::new(MAX_LINE).push(body);
    let mut bytewise = SseParser::new(MAX_LINE);
    let by_byte: Vec<SseEvent> = body.iter().flat_map(|b| bytewise.push(std::slice::from_ref(b))).collect();
    assert_eq!(whole, by_byte, "SSE events differ when the stream arrives byte by byte");
    let mut chunked = SseParser::new(MAX_LINE);
    let mut events = Vec::new();
    let mut rest = body;
    let mut state = u32::from(seed) | 1;
    while !rest.is_empty() {
        // A small xorshift stream of chunk sizes from the seed: 1 to 64 bytes.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 64 + 1) as usize;
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        events.extend(chunked.push(chunk));
        rest = tail;
    }
    assert_eq!(whole, events, "SSE events differ with chunk seed {seed}");
    for e in &whole {
        for field in [&e.id, &e.event].into_iter().flatten() {
            assert!(!field.contains('\n') && field.len() <= MAX_LINE * 3, "SSE field breaks its line: {field:?}");
        }
        assert!(e.data.len() <= body.len() * 3, "SSE data longer than its input");
    }
}

fn json_bounds(body: &[u8]) {
    let parsed = parse_json(body, MAX_DEPTH);
    let reference = serde_json::from_slice::<Value>(body).ok();
    match (&parsed, &reference) {
        (Some(v), Some(r)) => {
            assert_eq!(v, r, "parse_json read other JSON than serde_json");
            assert!(depth(v) <= MAX_DEPTH, "parse_json returned a value deeper than its bound");
        }
        (Some(_), None) => panic!("parse_json accepted bytes serde_json refuses"),
        (None, Some(r)) => assert!(depth(r) > MAX_DEPTH, "parse_json refused JSON within its depth bound"),
        (None, None) => {}
    }
}

/// Container depth (the top level is 1), without recursion.
fn depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
        max = max.max(d + usize::from(v.is_array() || v.is_object()));
    }
    max
}

fn challenges(header: &str) {
    let parsed = parse_challenges(header);
    assert!(parsed.len() <= header.chars().count(), "more challenges than characters");
    let is_token = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    for (scheme, params) in &parsed {
        assert!(!scheme.is_empty() && is_token(scheme), "scheme is not a token: {scheme:?}");
        for (name, _) in params {
            assert!(is_token(name) && *name == name.to_ascii_lowercase(), "parameter name {name:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_hold() {
        harness_parsers(b"\x07id: 1\nevent: message\ndata: {\"a\":[1]}\r\n\r\n: c\n\n");
        harness_parsers(b"\x00Bearer realm=\"x\", error=\"invalid_token\", Basic abc==");
        harness_parsers(&[b'\x03'; 300]);
    }
}
