//! Strict JSON-RPC 2.0 parsing for MCP.
//!
//! One pass over the bytes builds a `serde_json::Value` while enforcing the nesting-depth and
//! string-length limits, so a hostile body costs bounded stack and memory. The envelope is then
//! checked against JSON-RPC 2.0 and MCP's extra rules (`id` never null). Error messages are fixed
//! strings: the input is never echoed back.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined server error, used for rate limiting.
pub const RATE_LIMITED: i64 = -32000;
/// Implementation-defined: the request is not allowed in the current lifecycle state.
pub const NOT_INITIALIZED: i64 = -32002;

/// Bounds applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    pub max_depth: usize,
    pub max_string_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self { max_depth: 32, max_string_bytes: 64 * 1024 }
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    pub fn method_not_found() -> Self {
        Self::new(METHOD_NOT_FOUND, "Method not found")
    }

    /// The generic error every unexpected failure becomes; the detail stays in the server log.
    pub fn internal() -> Self {
        Self::new(INTERNAL_ERROR, "Internal error")
    }

    pub fn to_json(&self) -> Value {
        let mut e = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            e["data"] = data.clone();
        }
        e
    }
}

/// A request or notification id: a string or a number, never null.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    Number(serde_json::Number),
    String(String),
}

impl Id {
    pub fn to_json(&self) -> Value {
        match self {
            Id::Number(n) => Value::Number(n.clone()),
            Id::String(s) => Value::String(s.clone()),
        }
    }
}

/// A parsed request (has an id and expects a response).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Id,
    pub method: String,
    /// `params`, always an object or array when present.
    pub params: Option<Value>,
}

/// A parsed notification (no id, never answered).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Option<Value>,
}

/// A response from the client to a request the server sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: Id,
    /// `Ok(result)` or `Err(error object)`.
    pub outcome: Result<Value, Value>,
}

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

impl Message {
    /// Encodes the message back to JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Message::Request(r) => {
                let mut v = json!({ "jsonrpc": "2.0", "id": r.id.to_json(), "method": r.method });
                if let Some(p) = &r.params {
                    v["params"] = p.clone();
                }
                v
            }
            Message::Notification(n) => {
                let mut v = json!({ "jsonrpc": "2.0", "method": n.method });
                if let Some(p) = &n.params {
                    v["params"] = p.clone();
                }
                v
            }
            Message::Response(r) => match &r.outcome {
                Ok(result) => json!({ "jsonrpc": "2.0", "id": r.id.to_json(), "result": result }),
                Err(error) => json!({ "jsonrpc": "2.0", "id": r.id.to_json(), "error": error }),
            },
        }
    }
}

/// What a body held: one message, or (2025-03-26 only) a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Single(Message),
    /// Each element parsed on its own; invalid ones carry their error.
    Batch(Vec<Result<Message, Rejection>>),
}

/// Why a body or an element was refused: the error to send and the id to send it with (null
/// when the id could not be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub id: Option<Id>,
    pub error: ErrorObject,
}

impl Rejection {
    fn new(id: Option<Id>, code: i64, message: &str) -> Self {
        Self { id, error: ErrorObject::new(code, message) }
    }

    /// The error response for this rejection.
    pub fn to_response(&self) -> Value {
        error_response(self.id.as_ref(), &self.error)
    }
}

/// An error response; `id` is null when unknown.
pub fn error_response(id: Option<&Id>, error: &ErrorObject) -> Value {
    json!({ "jsonrpc": "2.0", "id": id.map_or(Value::Null, Id::to_json), "error": error.to_json() })
}

/// A success response.
pub fn result_response(id: &Id, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id.to_json(), "result": result })
}

/// Parses bytes as JSON under `limits`: invalid UTF-8, invalid JSON, trailing data, too-deep
/// nesting and too-long strings are all refused. Duplicate object keys are accepted (RFC 8259
/// allows them) but reported, so the envelope layer can refuse ambiguous messages.
pub fn parse_json(bytes: &[u8], limits: &ParseLimits) -> Result<(Value, bool), JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut dup = false;
    let seed = LimitedValue { depth: 0, limits, duplicate_at_top: &mut dup };
    let value = seed.deserialize(&mut de).map_err(|e| classify(&e))?;
    de.end().map_err(|_| JsonError::Syntax)?;
    Ok((value, dup))
}

/// Why bytes are not acceptable JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("invalid JSON")]
    Syntax,
    #[error("JSON nested too deeply")]
    TooDeep,
    #[error("JSON string too long")]
    StringTooLong,
}

const TOO_DEEP: &str = "mcproof: nesting limit";
const TOO_LONG: &str = "mcproof: string limit";

fn classify(e: &serde_json::Error) -> JsonError {
    let text = e.to_string();
    if text.starts_with(TOO_DEEP) {
        JsonError::TooDeep
    } else if text.starts_with(TOO_LONG) {
        JsonError::StringTooLong
    } else {
        JsonError::Syntax
    }
}

/// Parses one HTTP body or stdio line. `allow_batch` is true only for revision 2025-03-26.
pub fn parse(bytes: &[u8], limits: &ParseLimits, allow_batch: bool) -> Result<Incoming, Rejection> {
    let (value, duplicate_at_top) = parse_json(bytes, limits).map_err(|e| match e {
        JsonError::Syntax => Rejection::new(None, PARSE_ERROR, "Parse error"),
        JsonError::TooDeep => Rejection::new(None, INVALID_REQUEST, "Request nested too deeply"),
        JsonError::StringTooLong => Rejection::new(None, INVALID_REQUEST, "Request contains an over-long string"),
    })?;
    match value {
        Value::Array(items) => {
            if !allow_batch {
                return Err(Rejection::new(
                    None,
                    INVALID_REQUEST,
                    "Batch requests are not supported in this protocol version",
                ));
            }
            if items.is_empty() {
                return Err(Rejection::new(None, INVALID_REQUEST, "Empty batch"));
            }
            Ok(Incoming::Batch(items.into_iter().map(|item| classify_message(item, false)).collect()))
        }
        other => classify_message(other, duplicate_at_top).map(Incoming::Single),
    }
}

/// Checks one decoded value against the JSON-RPC 2.0 envelope rules.
pub fn classify_message(value: Value, duplicate_keys: bool) -> Result<Message, Rejection> {
    let Value::Object(mut obj) = value else {
        return Err(Rejection::new(None, INVALID_REQUEST, "Invalid Request: not an object"));
    };
    // Read the id first so that later errors can carry it.
    let id = match obj.remove("id") {
        None => None,
        Some(Value::String(s)) => Some(Some(Id::String(s))),
        Some(Value::Number(n)) => Some(Some(Id::Number(n))),
        Some(Value::Null) => Some(None),
        Some(_) => {
            return Err(Rejection::new(None, INVALID_REQUEST, "Invalid Request: id must be a string or a number"));
        }
    };
    let known_id = id.clone().flatten();
    let fail = |message: &str| Rejection::new(known_id.clone(), INVALID_REQUEST, message);
    if duplicate_keys {
        return Err(fail("Invalid Request: duplicate member"));
    }
    match obj.remove("jsonrpc") {
        Some(Value::String(v)) if v == "2.0" => {}
        _ => return Err(fail("Invalid Request: jsonrpc must be \"2.0\"")),
    }
    let Some(id) = id.map(|i| i.ok_or(())) else {
        // No id: a notification, unless it looks like a response.
        if obj.contains_key("result") || obj.contains_key("error") {
            return Err(fail("Invalid Request: response without id"));
        }
        let (method, params) = method_and_params(&mut obj).map_err(fail)?;
        no_extra_members(&obj).map_err(fail)?;
        return Ok(Message::Notification(Notification { method, params }));
    };
    let id = id.map_err(|()| fail("Invalid Request: id must not be null"))?;
    if obj.contains_key("method") {
        if obj.contains_key("result") || obj.contains_key("error") {
            return Err(fail("Invalid Request: both method and result or error"));
        }
        let (method, params) = method_and_params(&mut obj).map_err(fail)?;
        no_extra_members(&obj).map_err(fail)?;
        return Ok(Message::Request(Request { id, method, params }));
    }
    let outcome = match (obj.remove("result"), obj.remove("error")) {
        (Some(result), None) => Ok(result),
        (None, Some(error)) if valid_error_object(&error) => Err(error),
        (None, Some(_)) => return Err(fail("Invalid Request: malformed error object")),
        _ => return Err(fail("Invalid Request: a response needs exactly one of result or error")),
    };
    no_extra_members(&obj).map_err(fail)?;
    Ok(Message::Response(Response { id, outcome }))
}

fn method_and_params(obj: &mut Map<String, Value>) -> Result<(String, Option<Value>), &'static str> {
    let method = match obj.remove("method") {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => return Err("Invalid Request: method must be a non-empty string"),
    };
    let params = match obj.remove("params") {
        None => None,
        Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
        Some(_) => return Err("Invalid Request: params must be an object or an array"),
    };
    Ok((method, params))
}

fn no_extra_members(obj: &Map<String, Value>) -> Result<(), &'static str> {
    if obj.is_empty() { Ok(()) } else { Err("Invalid Request: unexpected member") }
}

fn valid_error_object(error: &Value) -> bool {
    let Some(e) = error.as_object() else { return false };
    e.get("code").is_some_and(|c| c.is_i64()) && e.get("message").is_some_and(Value::is_string)
}

/// Builds a `Value` while enforcing depth and string-length limits, and notes duplicate keys
/// in the top-level object.
struct LimitedValue<'a> {
    depth: usize,
    limits: &'a ParseLimits,
    duplicate_at_top: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for LimitedValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl LimitedValue<'_> {
    fn check_str<E: de::Error>(&self, s: &str) -> Result<(), E> {
        if s.len() > self.limits.max_string_bytes { Err(E::custom(TOO_LONG)) } else { Ok(()) }
    }

    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > self.limits.max_depth { Err(E::custom(TOO_DEEP)) } else { Ok(depth) }
    }
}

impl<'de> Visitor<'de> for LimitedValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json never yields non-finite numbers from text; be defensive anyway.
        serde_json::Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.check_str(v)?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.check_str(&v)?;
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut items = Vec::new();
        let mut ignored = false;
        while let Some(item) =
            seq.next_element_seed(LimitedValue { depth, limits: self.limits, duplicate_at_top: &mut ignored })?
        {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut obj = Map::new();
        let mut ignored = false;
        while let Some(key) = map.next_key::<String>()? {
            self.check_str(&key)?;
            let value =
                map.next_value_seed(LimitedValue { depth, limits: self.limits, duplicate_at_top: &mut ignored })?;
            if obj.insert(key, value).is_some() && depth == 1 {
                *self.duplicate_at_top = true;
            }
        }
        Ok(Value::Object(obj))
    }
}

/// The invariant the `jsonrpc_parse` fuzz target and its seed replay check: parsing never
/// panics, and an accepted single message re-encodes to JSON that parses to the same message.
pub fn fuzz_round_trip(data: &[u8]) {
    let limits = ParseLimits::default();
    if let Ok(Incoming::Single(message)) = parse(data, &limits, false) {
        let encoded = message.to_json().to_string();
        match parse(encoded.as_bytes(), &limits, false) {
            Ok(Incoming::Single(again)) => assert_eq!(message, again, "re-encoded message differs"),
            other => panic!("re-encoded message rejected: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> Result<Message, Rejection> {
        match parse(body.as_bytes(), &ParseLimits::default(), false)? {
            Incoming::Single(m) => Ok(m),
            Incoming::Batch(_) => panic!("unexpected batch"),
        }
    }

    fn code(body: &str) -> i64 {
        one(body).expect_err("should be rejected").error.code
    }

    #[test]
    fn accepts_requests_notifications_and_responses() {
        assert!(matches!(one(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), Ok(Message::Request(_))));
        assert!(matches!(one(r#"{"jsonrpc":"2.0","id":"a","method":"x","params":{}}"#), Ok(Message::Request(_))));
        assert!(matches!(
            one(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification(_))
        ));
        assert!(matches!(one(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#), Ok(Message::Response(_))));
        assert!(matches!(
            one(r#"{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"x"}}"#),
            Ok(Message::Response(_))
        ));
    }

    #[test]
    fn rejects_malformed_envelopes_with_the_right_code() {
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"#), PARSE_ERROR);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"1.0","id":2,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":3,"method":5}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":3}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"ping","id":2}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"ping","extra":1}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}"#), INVALID_REQUEST);
        assert_eq!(code(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#), INVALID_REQUEST);
        assert_eq!(code("\"just a string\""), INVALID_REQUEST);
        assert_eq!(code("{} trailing"), PARSE_ERROR);
    }

    #[test]
    fn invalid_utf8_is_a_parse_error() {
        let body = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xff\"}";
        let err = parse(body, &ParseLimits::default(), false).expect_err("invalid utf-8");
        assert_eq!(err.error.code, PARSE_ERROR);
        assert_eq!(err.id, None);
    }

    #[test]
    fn errors_keep_the_id_when_it_is_readable() {
        let err = one(r#"{"jsonrpc":"1.0","id":"abc","method":"ping"}"#).expect_err("bad version");
        assert_eq!(err.id, Some(Id::String("abc".into())));
        assert_eq!(err.to_response()["id"], json!("abc"));
    }

    #[test]
    fn depth_and_string_limits_hold() {
        let limits = ParseLimits { max_depth: 8, max_string_bytes: 16 };
        let deep = format!("{}{}", "[".repeat(9), "]".repeat(9));
        assert_eq!(parse_json(deep.as_bytes(), &limits), Err(JsonError::TooDeep));
        let ok = format!("{}{}", "[".repeat(8), "]".repeat(8));
        assert!(parse_json(ok.as_bytes(), &limits).is_ok());
        assert_eq!(parse_json(br#""01234567890123456""#, &limits), Err(JsonError::StringTooLong));
        // A far deeper body than serde_json's own recursion limit is refused, not a stack overflow.
        let very_deep = "[".repeat(100_000);
        assert!(parse_json(very_deep.as_bytes(), &ParseLimits::default()).is_err());
    }

    #[test]
    fn error_messages_never_echo_input() {
        let body = r#"{"jsonrpc":"1.0","id":1,"method":"SECRET-CANARY-123"}"#;
        let err = one(body).expect_err("bad version");
        assert!(!err.to_response().to_string().contains("SECRET-CANARY"));
    }

    #[test]
    fn batches_only_when_allowed() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":null,"method":"ping"}]"#;
        let Ok(Incoming::Batch(items)) = parse(body, &ParseLimits::default(), true) else { panic!("batch") };
        assert!(items[0].is_ok());
        assert!(items[1].is_err());
        assert!(parse(body, &ParseLimits::default(), false).is_err());
    }

    #[test]
    fn messages_round_trip() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"a","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
            r#"{"jsonrpc":"2.0","id":2,"result":{"a":[1,2]}}"#,
        ] {
            let m = one(body).expect("valid");
            let again = one(&m.to_json().to_string()).expect("re-encoded is valid");
            assert_eq!(m, again);
        }
    }
}
