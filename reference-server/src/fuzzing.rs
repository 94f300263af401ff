//! The invariants the cargo-fuzz targets in `fuzz/` check, one function per target.
//!
//! Each target is a three-line shim over one of these functions, and `tests/tests/fuzz_replay.rs`
//! runs every committed seed and regression through the same function on stable, so CI covers
//! the corpus without nightly. Every function takes raw bytes (the fuzzer's input), panics when
//! an invariant breaks, and returns quietly otherwise. Inputs are capped in size so that no input
//! can make one execution slow: a timeout must mean a real super-linear path, not a large input.
//!
//! The functions assert properties, not just "no panic": round trips, agreement with an
//! independent reading of the same bytes, idempotence, confinement, and "never verifies".

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Value, json};

use crate::auth::jwt::{Alg, SigningKey, TokenIssuer, TokenVerifier};
use crate::auth::pkce;
use crate::jsonrpc::{self, Incoming, Message, ParseLimits};
use crate::sandbox::{Sandbox, SandboxError};
use crate::sanitize;
use crate::schema::{InputValidator, MAX_MESSAGES};

/// Largest input any target looks at. libFuzzer's default `-max_len` is 4 KiB; replayed seeds
/// may be larger, and this keeps their cost bounded too.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// jsonrpc_parse

/// `jsonrpc_parse`: strict parsing never panics; an accepted message re-encodes to an equivalent
/// message; a rejection carries -32700 exactly when the bytes are not JSON and -32600 otherwise;
/// and the stdio dispatcher answers every request exactly once and every rejected line with
/// the parser's own error.
pub fn jsonrpc_parse(data: &[u8]) {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    jsonrpc::fuzz_round_trip(data);
    let limits = ParseLimits::default();
    for allow_batch in [false, true] {
        match jsonrpc::parse(data, &limits, allow_batch) {
            Ok(Incoming::Single(_)) => {}
            Ok(Incoming::Batch(items)) => {
                assert!(allow_batch, "a batch was accepted where batches are refused");
                assert!(!items.is_empty(), "an empty batch was accepted");
                for item in items {
                    match item {
                        Ok(message) => {
                            let again = jsonrpc::classify_message(message.to_json(), false);
                            assert_eq!(again, Ok(message), "a batch element does not re-encode to itself");
                        }
                        Err(r) => assert_eq!(r.error.code, jsonrpc::INVALID_REQUEST, "batch element refused oddly"),
                    }
                }
            }
            Err(rejection) => check_rejection_code(data, &rejection),
        }
    }
    // The stdio loop frames on newlines and skips blank lines (no answer is owed for them).
    if !data.contains(&b'\n') && !data.contains(&b'\r') && !data.iter().all(u8::is_ascii_whitespace) {
        dispatch_over_stdio(data);
    }
}

/// -32700 iff `serde_json::from_slice::<Value>` cannot read the bytes. That reading, like the
/// strict parser, refuses two things RFC 8259's grammar allows (JSONTestSuite's `i_` cases):
/// numbers beyond the f64 range (`1e400`) and lone surrogate escapes (`"\ud800"`), so both are
/// parse errors. The strict parser enforces its depth and length limits while streaming, so a
/// too-deep or too-long prefix is refused with -32600 even if the bytes after it are broken:
/// that is deliberate (the rest is never read).
fn check_rejection_code(data: &[u8], rejection: &jsonrpc::Rejection) {
    let code = rejection.error.code;
    assert!(code == jsonrpc::PARSE_ERROR || code == jsonrpc::INVALID_REQUEST, "unexpected rejection code {code}");
    let is_json = serde_json::from_slice::<Value>(data).is_ok();
    if is_json {
        assert_eq!(code, jsonrpc::INVALID_REQUEST, "valid JSON refused as a parse error");
    }
    if code == jsonrpc::PARSE_ERROR {
        assert!(!is_json, "a parse error for bytes serde_json reads");
        assert_eq!(rejection.id, None, "a parse error cannot know the id");
    }
    let response = rejection.to_response();
    assert_eq!(response["jsonrpc"], "2.0");
    assert_eq!(response["error"]["code"], code);
}

/// A server shared by every execution, with short tool time-outs so no input can stall a run.
fn fuzz_server() -> &'static (tokio::runtime::Runtime, crate::server::McpServer) {
    static SERVER: OnceLock<(tokio::runtime::Runtime, crate::server::McpServer)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("fuzz runtime: {e}"));
        let mut config = crate::config::Config::default();
        config.limits.tool_timeout_ms = 500;
        config.limits.request_timeout_ms = 1_000;
        let server = runtime
            .block_on(async { crate::server::McpServer::new(config) })
            .unwrap_or_else(|e| panic!("fuzz server: {e}"));
        (runtime, server)
    })
}

const INIT_LINES: &str = concat!(
    r#"{"jsonrpc":"2.0","id":"fuzz-init","method":"initialize","params":{"protocolVersion":"2025-11-25","#,
    r#""capabilities":{},"clientInfo":{"name":"fuzz","version":"0"}}}"#,
    "\n",
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    "\n"
);

/// Runs one initialized stdio session whose only client line is `line`, and checks the answers.
fn dispatch_over_stdio(line: &[u8]) {
    use tokio::io::AsyncReadExt as _;

    let (runtime, server) = fuzz_server();
    let mut input = INIT_LINES.as_bytes().to_vec();
    input.extend_from_slice(line);
    input.push(b'\n');
    let output = runtime.block_on(async {
        let (writer, mut reader) = tokio::io::duplex(64 * 1024);
        let serve = crate::stdio::run(server.clone(), &input[..], writer);
        let mut out = Vec::new();
        let (served, read) = tokio::join!(serve, reader.read_to_end(&mut out));
        served.unwrap_or_else(|e| panic!("stdio loop failed: {e}"));
        read.unwrap_or_else(|e| panic!("reading stdio output: {e}"));
        out
    });
    let messages: Vec<Value> = output
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap_or_else(|e| panic!("server wrote a non-JSON line ({e})")))
        .collect();
    for m in &messages {
        assert_eq!(m["jsonrpc"], "2.0", "server wrote a message without jsonrpc 2.0: {m}");
    }
    let answers = |id: &Value| {
        messages
            .iter()
            .filter(|m| m.get("id") == Some(id) && (m.get("result").is_some() || m.get("error").is_some()))
            .count()
    };
    let parsed = jsonrpc::parse(line, server.parse_limits(), false);
    // A line that reuses the initialize id is a second request with that id, answered too.
    // So is a rejected line that carries that id: its error goes back with the id.
    let init_id = jsonrpc::Id::String("fuzz-init".to_owned());
    let reused = match &parsed {
        Ok(Incoming::Single(Message::Request(r))) => r.id == init_id,
        Err(rejection) => rejection.id.as_ref() == Some(&init_id),
        Ok(_) => false,
    };
    assert_eq!(answers(&json!("fuzz-init")), 1 + usize::from(reused), "initialize answered other than once");
    match parsed {
        Err(rejection) => {
            let expected = rejection.to_response();
            assert!(messages.contains(&expected), "rejected line not answered with {expected}");
        }
        Ok(Incoming::Single(Message::Request(req))) => {
            let id = req.id.to_json();
            if id != json!("fuzz-init") {
                let n = answers(&id);
                assert_eq!(n, 1, "request {} answered {n} times", req.method);
            }
        }
        Ok(_) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// jsonrpc_differential

/// `jsonrpc_differential`: the strict parser and an independent model over
/// `serde_json::from_slice::<Value>` agree.
///
/// - strict accepts ⇒ serde_json accepts, and the message re-encodes to the same `Value`;
/// - the model accepts (serde_json reads the bytes, no duplicate top-level key, depth and string
///   limits hold, and the envelope is a valid MCP request, notification or response) ⇒ strict
///   accepts the same message.
///
/// Deliberate differences, all refusals by the strict parser of JSON that serde_json reads:
/// duplicate top-level keys (serde_json keeps the last), nesting deeper than 32, strings longer
/// than 64 KiB, `id: null`, an empty `method`, members other than the envelope's, and batches
/// (accepted only for revision 2025-03-26, tested with `allow_batch = false` here).
pub fn jsonrpc_differential(data: &[u8]) {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    let limits = ParseLimits::default();
    let strict = jsonrpc::parse(data, &limits, false);
    let loose = serde_json::from_slice::<Value>(data);
    if let Ok(Incoming::Single(message)) = &strict {
        let value = loose.as_ref().unwrap_or_else(|e| panic!("strict accepted what serde_json refuses: {e}"));
        assert_eq!(&message.to_json(), value, "strict parser read a different message than serde_json");
    }
    let Ok(value) = loose else { return };
    let duplicates = top_level_has_duplicate_keys(data);
    let model = model_accepts(&value, &limits) && !duplicates;
    match (&strict, model) {
        (Ok(Incoming::Single(_)), true) | (Err(_), false) => {}
        (Ok(Incoming::Single(_)), false) => panic!("strict accepted what the model refuses: {value}"),
        (Err(r), true) => panic!("strict refused ({}) what the model accepts: {value}", r.error.message),
        (Ok(Incoming::Batch(_)), _) => panic!("batch accepted with allow_batch = false"),
    }
}

/// The MCP JSON-RPC envelope rules, written independently of [`jsonrpc::classify_message`].
fn model_accepts(value: &Value, limits: &ParseLimits) -> bool {
    if !within_limits(value, limits) {
        return false;
    }
    let Some(obj) = value.as_object() else { return false };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return false;
    }
    let id_ok = |v: &Value| v.is_string() || v.is_number();
    let params_ok = obj.get("params").is_none_or(|p| p.is_object() || p.is_array());
    let only = |allowed: &[&str]| obj.keys().all(|k| allowed.contains(&k.as_str()));
    let method_ok = obj.get("method").and_then(Value::as_str).is_some_and(|m| !m.is_empty());
    if obj.contains_key("method") {
        // Request (id present) or notification (id absent).
        method_ok && params_ok && obj.get("id").is_none_or(id_ok) && only(&["jsonrpc", "id", "method", "params"])
    } else {
        // Response: an id and exactly one of result or a well-formed error.
        let Some(id) = obj.get("id") else { return false };
        let error_ok =
            |e: &Value| e.get("code").is_some_and(Value::is_i64) && e.get("message").is_some_and(Value::is_string);
        let outcome = match (obj.get("result"), obj.get("error")) {
            (Some(_), None) => true,
            (None, Some(e)) => error_ok(e),
            _ => false,
        };
        id_ok(id) && outcome && only(&["jsonrpc", "id", "result", "error"])
    }
}

/// Depth (containers, the top level is 1) and string/key length, without recursion.
fn within_limits(value: &Value, limits: &ParseLimits) -> bool {
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::String(s) if s.len() > limits.max_string_bytes => return false,
            Value::Array(items) => {
                if depth + 1 > limits.max_depth {
                    return false;
                }
                stack.extend(items.iter().map(|i| (i, depth + 1)));
            }
            Value::Object(map) => {
                if depth + 1 > limits.max_depth || map.keys().any(|k| k.len() > limits.max_string_bytes) {
                    return false;
                }
                stack.extend(map.values().map(|i| (i, depth + 1)));
            }
            _ => {}
        }
    }
    true
}

/// Whether the top-level value is an object with a repeated key (serde_json's `Value` would
/// silently keep the last one).
fn top_level_has_duplicate_keys(data: &[u8]) -> bool {
    struct Keys(bool);
    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("any JSON value")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                    let mut seen = std::collections::HashSet::new();
                    let mut dup = false;
                    while let Some((k, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                        dup |= !seen.insert(k);
                    }
                    Ok(Keys(dup))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Keys, A::Error> {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(Keys(false))
                }
                fn visit_bool<E>(self, _: bool) -> Result<Keys, E> {
                    Ok(Keys(false))
                }
                fn visit_i64<E>(self, _: i64) -> Result<Keys, E> {
                    Ok(Keys(false))
                }
                fn visit_u64<E>(self, _: u64) -> Result<Keys, E> {
                    Ok(Keys(false))
                }
                fn visit_f64<E>(self, _: f64) -> Result<Keys, E> {
                    Ok(Keys(false))
                }
                fn visit_str<E>(self, _: &str) -> Result<Keys, E> {
                    Ok(Keys(false))
                }
                fn visit_unit<E>(self) -> Result<Keys, E> {
                    Ok(Keys(false))
                }
            }
            d.deserialize_any(V)
        }
    }
    serde_json::from_slice::<Keys>(data).is_ok_and(|k| k.0)
}

// ---------------------------------------------------------------------------------------------
// schema_validate

/// Largest schema or instance the `schema_validate` target compiles or validates.
const MAX_SCHEMA_BYTES: usize = 16 * 1024;

/// `schema_validate`: the input is a schema, a newline, and an instance. Compiling and validating
/// never panic, are deterministic, return at most [`MAX_MESSAGES`] messages, and never reach
/// the network or the filesystem (checked once per process: `$ref`s to `http:` and `file:`
/// URLs fail to compile instead of being fetched).
pub fn schema_validate(data: &[u8]) {
    static OFFLINE: OnceLock<()> = OnceLock::new();
    OFFLINE.get_or_init(assert_validator_is_offline);
    if data.len() > 2 * MAX_SCHEMA_BYTES {
        return;
    }
    let (schema, instance) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"null"[..]),
    };
    let Ok(schema) = serde_json::from_slice::<Value>(schema) else { return };
    let Ok(validator) = InputValidator::compile(&schema) else { return };
    let instances: Vec<Value> = match serde_json::from_slice::<Value>(instance) {
        Ok(v) => vec![v],
        // Bytes that are not JSON still probe the validator, as a string.
        Err(_) => vec![Value::String(String::from_utf8_lossy(instance).into_owned())],
    };
    for instance in instances {
        let first = validator.validate(&instance);
        assert_eq!(first, validator.validate(&instance), "validation is not deterministic");
        if let Err(messages) = first {
            assert!(!messages.is_empty() && messages.len() <= MAX_MESSAGES, "{} messages", messages.len());
        }
    }
}

/// External references must fail at compile time: the validator has no HTTP or file resolver.
fn assert_validator_is_offline() {
    for target in ["http://127.0.0.1:9/schema.json", "https://example.invalid/s.json", "file:///etc/passwd"] {
        let schema = json!({ "$ref": target });
        assert!(InputValidator::compile(&schema).is_err(), "a $ref to {target} compiled: it may have been fetched");
    }
}

// ---------------------------------------------------------------------------------------------
// sanitize

/// `sanitize`: the input as UTF-8 (lossy); when its first byte is `0xFE` the rest is repeated to
/// about 70,000 characters to reach the truncation path (the 256 Ki-character pre-cut is left to
/// the unit tests: one execution that large takes about a second under the sanitizers). The output is a fixed
/// point, free of control and invisible characters, and at most [`sanitize::MAX_OUTPUT_CHARS`]
/// characters; the tool-text wrapper keeps those properties.
pub fn sanitize(data: &[u8]) {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    let text = match data.split_first() {
        Some((0xFE, rest)) if !rest.is_empty() => {
            let unit = String::from_utf8_lossy(rest);
            unit.repeat(70_000 / unit.chars().count().max(1) + 1)
        }
        _ => String::from_utf8_lossy(data).into_owned(),
    };
    let once = sanitize::sanitize(&text);
    check_clean(&once.text);
    let chars = once.text.chars().count();
    assert!(chars <= sanitize::MAX_OUTPUT_CHARS, "output is {chars} characters");
    let twice = sanitize::sanitize(&once.text);
    assert_eq!(twice.text, once.text, "sanitize is not idempotent");
    assert_eq!(twice.removed_chars, 0, "a second pass still removed characters");
    // Markers can triple a short match, so only inputs well under the bound are never cut.
    if text.chars().count() <= sanitize::MAX_OUTPUT_CHARS / 8 {
        assert!(!once.truncated, "a short output is marked truncated");
    }
    check_clean(&sanitize::sanitize_tool_text(&text));
}

fn check_clean(text: &str) {
    if let Some(c) = text.chars().find(|&c| sanitize::is_stripped(c) || sanitize::is_invisible(c)) {
        panic!("sanitized text contains U+{:04X}", u32::from(c));
    }
}

// ---------------------------------------------------------------------------------------------
// path_guard

/// The tree `path_guard` runs over, created once per process: a sandbox root with files, a
/// subdirectory, and symlinks that stay inside, escape (relative, absolute, through a directory),
/// dangle and loop; next to it a secret file and directory that must stay unreachable.
fn guard_tree() -> &'static (PathBuf, Sandbox) {
    static TREE: OnceLock<(PathBuf, Sandbox)> = OnceLock::new();
    TREE.get_or_init(|| {
        let base = tempfile::Builder::new()
            .prefix("mcproof-fuzz-path-guard-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"))
            // Kept for the life of the process: the OnceLock is never dropped.
            .keep();
        build_tree(&base).unwrap_or_else(|e| panic!("building the fuzz tree: {e}"));
        let root = base.join("root");
        let sandbox = Sandbox::new(&root).unwrap_or_else(|e| panic!("sandbox: {e}"));
        (base, sandbox)
    })
}

fn build_tree(base: &Path) -> std::io::Result<()> {
    use std::fs;
    let root = base.join("root");
    fs::create_dir_all(root.join("docs/deep/er"))?;
    fs::create_dir_all(base.join("outside"))?;
    fs::write(root.join("readme.txt"), "inside\n")?;
    fs::write(root.join("docs/a.md"), "# a\n")?;
    fs::write(root.join("docs/deep/er/b.txt"), "b\n")?;
    fs::write(base.join("secret.txt"), "SECRET\n")?;
    fs::write(base.join("outside/x.txt"), "outside\n")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink("readme.txt", root.join("link-in"))?;
        symlink("docs", root.join("docs-link"))?;
        symlink("../secret.txt", root.join("link-out"))?;
        symlink("../../secret.txt", root.join("docs/up-out"))?;
        symlink(base.join("secret.txt"), root.join("abs-out"))?;
        symlink("../outside", root.join("dir-out"))?;
        symlink("/etc", root.join("etc"))?;
        symlink("missing", root.join("dangling"))?;
        symlink("loop-b", root.join("loop-a"))?;
        symlink("loop-a", root.join("loop-b"))?;
        symlink("..", root.join("docs/parent"))?;
        symlink(".", root.join("self"))?;
    }
    Ok(())
}

/// `path_guard`: each input line is one request (an operation sequence over the same tree).
/// `resolve` never yields a path outside the root, and its answer is the canonical path the
/// filesystem itself gives; requests whose real target is outside are refused; lexically
/// unsafe requests (`..`, absolute, backslash, control characters) are refused before the
/// filesystem is touched; `read` returns exactly the bytes of a regular file inside the root.
pub fn path_guard(data: &[u8]) {
    if data.len() > 8 * 1024 {
        return;
    }
    let (base, sandbox) = guard_tree();
    let root = sandbox.root();
    let text = String::from_utf8_lossy(data);
    for request in text.split('\n').take(64) {
        let resolved = sandbox.resolve(request);
        // The independent oracle: what the filesystem says the request names.
        let real = std::fs::canonicalize(root.join(request)).ok();
        match &resolved {
            Ok(path) => {
                assert!(path.starts_with(root), "resolve escaped the root: {request:?} -> {}", path.display());
                assert_eq!(Some(path), real.as_ref(), "resolve disagrees with the filesystem for {request:?}");
                let parent = Path::new(request).components().any(|c| c == std::path::Component::ParentDir);
                assert!(!parent, "a '..' request resolved: {request:?}");
                assert!(!request.starts_with('/') && !request.contains('\\'), "unsafe request resolved: {request:?}");
            }
            Err(e) => {
                if let Some(real) = &real
                    && !real.starts_with(root)
                {
                    assert!(e.is_confinement() || matches!(e, SandboxError::TooLong), "escape refused as {e:?}");
                }
            }
        }
        if let Ok(content) = sandbox.read(request, 4096) {
            {
                let path = resolved.as_ref().unwrap_or_else(|e| panic!("read succeeded where resolve failed: {e}"));
                let on_disk = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("re-read: {e}"));
                assert_eq!(content, on_disk, "read returned other bytes than the file holds");
                assert!(!content.contains("SECRET") && !content.contains("outside"), "read leaked {request:?}");
            }
        }
    }
    assert!(base.join("secret.txt").exists(), "the tree was modified");
}

// ---------------------------------------------------------------------------------------------
// token_verify

/// The signing key and one valid token, minted once per process at a fixed time.
struct TokenFixture {
    verifier: TokenVerifier,
    token: String,
    now: SystemTime,
}

const ISSUER: &str = "https://issuer.fuzz.invalid";
const AUDIENCE: &str = "https://mcp.fuzz.invalid/mcp";

fn token_fixture() -> &'static TokenFixture {
    static FIXTURE: OnceLock<TokenFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = SigningKey::generate(Alg::ES256).unwrap_or_else(|e| panic!("key: {e}"));
        let issuer = TokenIssuer::new(ISSUER, AUDIENCE, key, Duration::from_secs(3600));
        let minted = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (token, _) =
            issuer.issue_at("fuzz-user", "mcp:read mcp:write", Some("fuzz-client"), minted).unwrap_or_else(|e| {
                panic!("mint: {e}");
            });
        let verifier = TokenVerifier::new(vec![issuer.trusted()]).unwrap_or_else(|e| panic!("verifier: {e}"));
        let now = minted + Duration::from_secs(60);
        assert!(verifier.verify_sync(&token, now).is_ok(), "the fixture token must verify");
        TokenFixture { verifier, token, now }
    })
}

/// `token_verify`: the first byte picks the mode. Even: the rest, as text, is a token. Odd: the
/// rest is a list of 3-byte edits (`op`, position, value) applied to a valid token (flip a bit,
/// overwrite, insert, delete, truncate, swap). Whatever differs from the valid token never
/// verifies, and verification never panics.
pub fn token_verify(data: &[u8]) {
    if data.len() > 16 * 1024 {
        return;
    }
    let fixture = token_fixture();
    let Some((&mode, rest)) = data.split_first() else { return };
    let candidate: Vec<u8> = if mode % 2 == 0 { rest.to_vec() } else { mutate(fixture.token.as_bytes(), rest) };
    let Ok(candidate) = String::from_utf8(candidate) else { return };
    if candidate == fixture.token {
        return;
    }
    let outcome = fixture.verifier.verify_sync(&candidate, fixture.now);
    assert!(outcome.is_err(), "a token that differs from the minted one verified: {candidate:?}");
}

/// Applies up to 16 edits from `ops` to `token`.
fn mutate(token: &[u8], ops: &[u8]) -> Vec<u8> {
    let mut t = token.to_vec();
    for op in ops.chunks_exact(3).take(16) {
        // The position is proportional, so one byte addresses the whole token.
        let at = usize::from(op[1]) * t.len() / 256;
        let value = op[2];
        match op[0] % 6 {
            0 if at < t.len() => t[at] ^= 1 << (value % 8),
            1 if at < t.len() => t[at] = value,
            2 => t.insert(at, value),
            3 if at < t.len() => {
                t.remove(at);
            }
            4 => t.truncate(at),
            5 if at < t.len() => {
                let other = usize::from(value) % t.len();
                t.swap(at, other);
            }
            _ => {}
        }
    }
    t
}

// ---------------------------------------------------------------------------------------------
// oauth_params

/// `oauth_params`: the input is a form/query string. Parameter parsing keeps RFC 6749's rules
/// (empty values dropped, repeats refused, at most 64 names); scope parsing yields only
/// supported, distinct scopes; error descriptions only quote the RFC 6749 §5.2 charset; redirect
/// URI validation accepts only normal-form https or loopback http URIs without fragments; and
/// PKCE verifies exactly the verifier whose S256 hash is the challenge.
pub fn oauth_params(data: &[u8]) {
    if data.len() > crate::oauth::MAX_BODY_BYTES {
        return;
    }
    let Some(params) = crate::oauth::Params::parse(data) else {
        let names: std::collections::HashSet<_> =
            url::form_urlencoded::parse(data).filter(|(_, v)| !v.is_empty()).map(|(k, _)| k).collect();
        assert!(names.len() > 64, "parameters refused with only {} names", names.len());
        return;
    };
    let mut sent: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(data) {
        let values = sent.entry(k.into_owned()).or_default();
        if !v.is_empty() {
            values.push(v.into_owned());
        }
    }
    for (name, values) in &sent {
        match params.get(name) {
            Ok(None) => assert!(values.is_empty(), "{name:?} lost its value"),
            Ok(Some(v)) => assert_eq!(values.as_slice(), [v], "{name:?} read wrongly"),
            Err(_) => assert!(values.len() > 1, "{name:?} refused as repeated"),
        }
        let quoted = crate::oauth::quoted_name(name);
        assert!(quoted.chars().count() <= 42, "quoted name too long");
        assert!(
            quoted.trim_matches('\'').chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')),
            "quoted name outside the RFC 6749 charset: {quoted}"
        );
    }
    if let Ok(Some(scope)) = params.get("scope") {
        match crate::oauth::parse_scope(scope) {
            Ok(scopes) => {
                for (i, s) in scopes.iter().enumerate() {
                    assert!(crate::oauth::SUPPORTED_SCOPES.contains(&s.as_str()), "unsupported scope {s}");
                    assert!(!scopes[..i].contains(s), "duplicate scope {s}");
                }
                let canonical = crate::oauth::scope_string(&scopes);
                assert_eq!(crate::oauth::parse_scope(&canonical).map(|v| v.len()), Ok(scopes.len()));
            }
            Err(bad) => assert!(bad.chars().count() <= 64, "unsupported scope echoed at length"),
        }
    }
    if let Ok(Some(uri)) = params.get("redirect_uri")
        && crate::oauth::clients::validate_redirect_uri(uri).is_ok()
    {
        let url = url::Url::parse(uri).unwrap_or_else(|e| panic!("accepted redirect URI does not parse: {e}"));
        assert!(url.fragment().is_none() && url.username().is_empty() && url.password().is_none());
        assert!(matches!(url.scheme(), "https" | "http"), "scheme {}", url.scheme());
        assert!(url.as_str() == uri || url.as_str().strip_suffix('/') == Some(uri), "not in normal form: {uri}");
    }
    let verifier = params.get("code_verifier").ok().flatten().unwrap_or_default();
    let challenge = params.get("code_challenge").ok().flatten().unwrap_or_default();
    let right = pkce::pkce_s256(verifier);
    assert_eq!(
        pkce::verify_s256(verifier, challenge),
        pkce::valid_verifier(verifier) && challenge == right,
        "PKCE verify disagrees with recomputing the S256 challenge"
    );
    assert_eq!(pkce::verify_s256(verifier, &right), pkce::valid_verifier(verifier));
    // `plain` never passes: the verifier itself is never its own challenge.
    assert!(!pkce::verify_s256(verifier, verifier) || right == verifier);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_hold() {
        jsonrpc_parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#);
        jsonrpc_parse(b"{not json");
        jsonrpc_differential(br#"{"jsonrpc":"2.0","id":1,"method":"ping","id":2}"#);
        schema_validate(b"{\"type\":\"object\",\"required\":[\"a\"]}\n{}");
        sanitize(b"\xFEab\xE2\x80\x8Bc ");
        path_guard(b"readme.txt\nlink-out\ndir-out/x.txt\n../secret.txt\nloop-a");
        token_verify(b"\x01\x00\x05\x41");
        oauth_params(b"code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
