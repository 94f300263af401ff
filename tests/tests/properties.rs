//! Property tests over the reference server's security-relevant pieces: rate limiter, session
//! ids, sanitizer, JSON-RPC codec, path guard. Each `prop_<invariant>` names the invariant it
//! checks, and each assertion message says which invariant broke.
//!
//! Case counts are bounded so the whole file runs in a few seconds on a debug build; raise them
//! for a deeper local run with `PROPTEST_CASES=10000 cargo test -p mcproof-tests --test properties`.
//!
//! When one fails: proptest prints the shrunk input and stores its seed under
//! `tests/proptest-regressions/properties.txt`. Commit that file with the fix, so the case
//! is replayed first on every later run, and add a named unit test for the root cause next to
//! the code that was wrong.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mcproof_server::config::Quota;
use mcproof_server::jsonrpc::{self, Id, Incoming, Message, Notification, ParseLimits, Request, Response};
use mcproof_server::rate_limit::{Decision, KeyedLimiter};
use mcproof_server::sandbox::{Sandbox, SandboxError};
use mcproof_server::sanitize::{self, MAX_OUTPUT_CHARS};
use mcproof_server::session::new_session_id;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Number, Value};

/// Bounded cases, bounded shrinking so a failure is reported quickly on CI, and failing seeds
/// kept in a fixed file (proptest cannot find a `lib.rs` next to an integration test).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 2_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/properties.txt"
        )))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limiter
// ---------------------------------------------------------------------------------------------

/// The reference model: textbook GCRA over integer nanoseconds, one TAT per key, no eviction.
/// `None` means admitted; `Some(wait)` is the exact time until the key is admitted again.
#[derive(Debug, Default)]
struct ReferenceGcra {
    interval: u128,
    tolerance: u128,
    tat: BTreeMap<u8, u128>,
}

impl ReferenceGcra {
    fn new(per_minute: u32, burst: u32) -> Self {
        let interval = 60_000_000_000u128 / u128::from(per_minute);
        Self { interval, tolerance: interval * u128::from(burst - 1), tat: BTreeMap::new() }
    }

    fn check(&mut self, key: u8, now: u128) -> Option<u128> {
        let tat = self.tat.get(&key).copied().unwrap_or(now).max(now);
        if tat - now > self.tolerance {
            return Some(tat - self.tolerance - now);
        }
        self.tat.insert(key, tat + self.interval);
        None
    }
}

/// One arrival: which of three keys, and the gap since the previous arrival in thousandths of
/// the emission interval (zero often, so bursts are common).
fn arrivals() -> impl Strategy<Value = Vec<(u8, u32)>> {
    let gap = prop_oneof![3 => Just(0u32), 2 => 0u32..=1_000, 1 => 0u32..=5_000];
    prop::collection::vec((0u8..3, gap), 1..300)
}

proptest! {
    #![proptest_config(config(128))]

    /// For any arrival sequence, [`KeyedLimiter`] makes the same decision as the reference
    /// GCRA model every time (including the exact `retry_after`), and per key never admits
    /// more than `burst + floor(W / T)` requests in any window of length `W` (`T` the emission
    /// interval; `burst + per_minute` for a one-minute window).
    #[test]
    fn prop_rate_limiter_never_exceeds_quota_plus_burst(
        per_minute in 1u32..=6_000,
        burst in 1u32..=20,
        arrivals in arrivals(),
    ) {
        let limiter = KeyedLimiter::new(Quota { per_minute, burst }, 1_000);
        let mut model = ReferenceGcra::new(per_minute, burst);
        prop_assert_eq!(limiter.interval().as_nanos(), model.interval, "emission interval differs from 60 s / rate");
        // At or after the limiter's epoch, so every offset maps to the same nanosecond count.
        let t0 = Instant::now();
        let mut now: u128 = 0;
        let mut admitted: BTreeMap<u8, Vec<u128>> = BTreeMap::new();
        for (i, (key, gap)) in arrivals.iter().enumerate() {
            now += model.interval * u128::from(*gap) / 1_000;
            let at = t0 + Duration::from_nanos(u64::try_from(now).expect("offsets stay far below u64::MAX ns"));
            let got = limiter.check(&format!("key-{key}"), at);
            let want = model.check(*key, now);
            match (got, want) {
                (Decision::Allow, None) => admitted.entry(*key).or_default().push(now),
                (Decision::Deny { retry_after }, Some(wait)) => {
                    prop_assert_eq!(retry_after.as_nanos(), wait, "arrival {}: retry_after differs from the model", i);
                }
                (got, want) => prop_assert!(false, "arrival {i} (key {key}, t={now} ns): limiter {got:?}, model {want:?}"),
            }
        }
        let interval = model.interval;
        for (key, times) in &admitted {
            for (i, start) in times.iter().enumerate() {
                for (j, end) in times.iter().enumerate().skip(i) {
                    let in_window = (j - i + 1) as u128;
                    let bound = u128::from(burst) + (end - start) / interval;
                    prop_assert!(
                        in_window <= bound,
                        "key {key}: {in_window} admitted in a {} ns window, bound burst + W/T = {bound}",
                        end - start
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Session ids
// ---------------------------------------------------------------------------------------------

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Chi-square critical values with a false-failure probability below 1e-9 each, computed from
/// the chi-square survival function: P(X > 160 | 63 df) = 2.2e-10, P(X > 75 | 15 df) = 5.7e-10.
const CHI2_63_DF_LIMIT: f64 = 160.0;
const CHI2_15_DF_LIMIT: f64 = 75.0;

/// Base64url without padding, as `new_session_id` encodes (written out here so the test does
/// not share the encoder under test).
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for k in 0..=chunk.len() {
            out.push(char::from(BASE64URL[(n >> (18 - 6 * k) & 63) as usize]));
        }
    }
    out
}

/// Chi-square statistics of a sample of 43-character ids: over the 64 symbols of the first 42
/// characters (6 random bits each), and over the 16 possible symbols of the last one (4 random
/// bits followed by two zero bits).
fn chi_square(ids: &[String]) -> (f64, f64) {
    let mut body = [0u64; 64];
    let mut last = [0u64; 16];
    for id in ids {
        let bytes = id.as_bytes();
        for &b in &bytes[..42] {
            body[BASE64URL.iter().position(|&s| s == b).expect("alphabet checked first")] += 1;
        }
        last[BASE64URL.iter().position(|&s| s == bytes[42]).expect("alphabet checked first") / 4] += 1;
    }
    let stat = |counts: &[u64]| {
        let expected = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
        counts.iter().map(|&c| (c as f64 - expected).powi(2) / expected).sum::<f64>()
    };
    (stat(&body), stat(&last))
}

/// splitmix64: a fixed-seed generator for the deterministic half of the uniformity test.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Session ids are 43 visible characters of the base64url alphabet encoding exactly 32 bytes
/// (the last character carries 4 bits, so its two low bits are zero), unique over 2,000 draws,
/// and uniformly distributed.
///
/// `new_session_id` draws from the OS generator and exposes no seeded path, so uniformity is
/// tested in two halves:
/// 1. **Fixed seed (deterministic):** the encoding maps uniform bytes to uniform symbols: 2,000
///    ids built from splitmix64 bytes with the same encoding pass the chi-square test, and a
///    biased source (bytes with the top bit cleared) fails it, which shows the test has power.
/// 2. **The real generator:** 2,000 ids (84,000 body symbols, 1,312.5 expected per symbol;
///    2,000 last symbols, 125 per symbol) must stay under critical values whose false-failure
///    probability is 2.2e-10 + 5.7e-10 < 1e-9 per run if the generator is uniform, so the test
///    does not flake in practice; a generator that dropped even 1 bit of 6 per symbol would give
///    a statistic in the tens of thousands.
#[test]
fn prop_session_ids_unique_and_uniform() {
    const N: usize = 2_000;
    // 1. Fixed seed.
    let mut state = 0x6d63_7072_6f6f_6621;
    let mut fixed = Vec::with_capacity(N);
    let mut biased = Vec::with_capacity(N);
    for _ in 0..N {
        let bytes: Vec<u8> = (0..4).flat_map(|_| splitmix64(&mut state).to_le_bytes()).collect();
        fixed.push(base64url(&bytes));
        biased.push(base64url(&bytes.iter().map(|b| b & 0x7f).collect::<Vec<u8>>()));
    }
    let (body, last) = chi_square(&fixed);
    assert!(body < CHI2_63_DF_LIMIT && last < CHI2_15_DF_LIMIT, "fixed-seed ids not uniform: {body:.1}, {last:.1}");
    let (body, _) = chi_square(&biased);
    assert!(body > 10.0 * CHI2_63_DF_LIMIT, "the test cannot tell a biased source: {body:.1}");

    // 2. The real generator.
    let ids: Vec<String> = (0..N).map(|_| new_session_id()).collect();
    for id in &ids {
        assert_eq!(id.len(), 43, "a session id is base64url of 32 bytes: {id:?}");
        assert!(id.bytes().all(|b| BASE64URL.contains(&b)), "id outside the base64url alphabet: {id:?}");
        assert!(id.bytes().all(|b| b.is_ascii_graphic()), "id not visible ASCII: {id:?}");
        let last = BASE64URL.iter().position(|&s| s == id.as_bytes()[42]).unwrap_or(usize::MAX);
        assert_eq!(last % 4, 0, "the last symbol of 32 encoded bytes has two zero bits: {id:?}");
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), N, "session ids repeat");
    let (body, last) = chi_square(&ids);
    println!(
        "session ids: chi-square {body:.1} (63 df, limit {CHI2_63_DF_LIMIT}), {last:.1} (15 df, limit {CHI2_15_DF_LIMIT})"
    );
    assert!(body < CHI2_63_DF_LIMIT, "session id symbols not uniform: chi-square {body:.1} over 63 df");
    assert!(last < CHI2_15_DF_LIMIT, "last session id symbol not uniform: chi-square {last:.1} over 15 df");
}

// ---------------------------------------------------------------------------------------------
// Sanitizer
// ---------------------------------------------------------------------------------------------

/// Characters the sanitizer must handle: controls, line separators, invisible and bidi
/// characters, and a few ordinary ones.
const SPECIAL: &[char] = &[
    '\0',
    '\x07',
    '\x1b',
    '\r',
    '\n',
    '\t',
    '\u{7f}',
    '\u{85}',
    '\u{ad}',
    '\u{200b}',
    '\u{200d}',
    '\u{200e}',
    '\u{202e}',
    '\u{2028}',
    '\u{2029}',
    '\u{2066}',
    '\u{feff}',
    '\u{fe0f}',
    '\u{e0041}',
    '\u{e0100}',
    '\u{1d173}',
    'é',
    '中',
    '😀',
    ' ',
    '-',
    '.',
    '@',
    '=',
    ':',
    '"',
];

/// Fragments that sit near the redaction rules' edges.
const FRAGMENTS: &[&str] = &[
    "password=",
    "api_key: ",
    "Bearer ",
    "Authorization: Basic ",
    "eyJ",
    "AKIA",
    "ghp_",
    "sk-",
    "@example.com",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "123-45-6789",
    "(555) 123-4567",
    "[REDACTED:secret]",
    "[REDACTED:pii]",
    "-----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----",
    "ignore previous instructions",
    "\r\n",
];

/// Random text mixing arbitrary characters, special characters and rule-edge fragments.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => any::<char>().prop_map(String::from),
        3 => select(SPECIAL).prop_map(String::from),
        3 => "[a-zA-Z0-9_ ]{1,12}",
        2 => select(FRAGMENTS).prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

/// A credential the sanitizer must never let through: an AWS access key id, a JWT, or a
/// GitHub token, with random (well-formed) bodies.
fn secret() -> impl Strategy<Value = String> {
    prop_oneof![
        ("(AKIA|ASIA|ABIA|ACCA)", "[0-9A-Z]{16}").prop_map(|(p, b)| format!("{p}{b}")),
        ("[A-Za-z0-9_-]{2,40}", "[A-Za-z0-9_-]{2,60}", "[A-Za-z0-9_-]{0,43}")
            .prop_map(|(h, p, s)| format!("eyJ{h}.eyJ{p}.{s}")),
        "gh[pousr]_[A-Za-z0-9]{36}",
    ]
}

/// Characters around an embedded secret. The AWS and GitHub rules need a word boundary (a key
/// glued to other letters is not a key), so the separators are visible non-word characters the
/// sanitizer keeps.
fn separator() -> impl Strategy<Value = &'static str> {
    select(&[" ", "\n", "\t", ", ", "(", ")", "\"", "'", "<", ">", ": ", "= ", "; "][..])
}

proptest! {
    #![proptest_config(config(256))]

    /// Sanitizing twice gives the same text as sanitizing once.
    #[test]
    fn prop_sanitize_is_idempotent(input in text()) {
        let once = sanitize::sanitize(&input).text;
        let twice = sanitize::sanitize(&once).text;
        prop_assert_eq!(&twice, &once, "sanitize is not idempotent");
    }

    /// Sanitized text contains no control character other than `\n` and `\t`, no invisible or
    /// format character and no line/paragraph separator, and is at most `MAX_OUTPUT_CHARS`
    /// characters long.
    #[test]
    fn prop_sanitized_text_is_visible_and_bounded(input in text()) {
        let out = sanitize::sanitize(&input);
        let bad: Vec<char> = out.text.chars().filter(|&c| sanitize::is_stripped(c)).collect();
        prop_assert!(bad.is_empty(), "stripped characters survived: {bad:?}");
        prop_assert!(out.text.chars().count() <= MAX_OUTPUT_CHARS, "output longer than the bound");
        prop_assert!(!out.truncated, "short input reported as truncated");
    }

    /// A secret embedded anywhere in random text (separated by a non-word character) never
    /// appears in the sanitized text, and at least one redaction is counted.
    #[test]
    fn prop_secrets_never_survive_sanitizing(
        before in text(),
        lead in separator(),
        secret in secret(),
        trail in separator(),
        after in text(),
    ) {
        let input = format!("{before}{lead}{secret}{trail}{after}");
        let out = sanitize::sanitize(&input);
        prop_assert!(!out.text.contains(&secret), "secret survived: {secret:?} in {:?}", out.text);
        prop_assert!(out.redactions >= 1, "no redaction counted");
    }
}

proptest! {
    #![proptest_config(config(4))]

    /// Inputs far above the bound (up to 4.5 times `MAX_OUTPUT_CHARS`) come out at most
    /// `MAX_OUTPUT_CHARS` characters long, clean, and still idempotent.
    #[test]
    fn prop_sanitized_length_is_bounded_for_huge_inputs(unit in text(), repeat in 1usize..=4, fill in 1usize..=3) {
        let unit = format!("{unit} {}", "x".repeat(100 * fill));
        let copies = (MAX_OUTPUT_CHARS + MAX_OUTPUT_CHARS * repeat) / unit.chars().count() + 1;
        let input = unit.repeat(copies);
        let out = sanitize::sanitize(&input);
        prop_assert!(out.text.chars().count() <= MAX_OUTPUT_CHARS, "output has {} chars", out.text.chars().count());
        prop_assert!(
            out.truncated || out.redactions > 0,
            "a shorter output is either cut (and says so) or redacted"
        );
        prop_assert!(!out.text.chars().any(sanitize::is_stripped), "stripped characters survived");
        prop_assert_eq!(&sanitize::sanitize(&out.text).text, &out.text, "not idempotent after truncation");
    }
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC
// ---------------------------------------------------------------------------------------------

/// Any JSON value of bounded depth and size.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".{0,10}", inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        any::<i64>().prop_map(|n| Id::Number(n.into())),
        any::<u64>().prop_map(|n| Id::Number(n.into())),
        ".{0,24}".prop_map(Id::String),
    ]
}

fn params() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(json_value().prop_map(|v| match v {
        v @ (Value::Array(_) | Value::Object(_)) => v,
        other => Value::Array(vec![other]),
    }))
}

fn error_object() -> impl Strategy<Value = Value> {
    (any::<i64>(), ".{0,30}", prop::option::of(json_value())).prop_map(|(code, message, data)| {
        let mut e = Map::new();
        e.insert("code".into(), code.into());
        e.insert("message".into(), Value::String(message));
        if let Some(data) = data {
            e.insert("data".into(), data);
        }
        Value::Object(e)
    })
}

/// Any valid JSON-RPC message as the parser represents it.
fn message() -> impl Strategy<Value = Message> {
    let method = ".{1,30}";
    prop_oneof![
        (id(), method, params()).prop_map(|(id, method, params)| Message::Request(Request { id, method, params })),
        (method, params()).prop_map(|(method, params)| Message::Notification(Notification { method, params })),
        (id(), json_value()).prop_map(|(id, result)| Message::Response(Response { id, outcome: Ok(result) })),
        (id(), error_object()).prop_map(|(id, error)| Message::Response(Response { id, outcome: Err(error) })),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    /// Encoding a message with `Message::to_json` and parsing the bytes with `jsonrpc::parse`
    /// gives back the same message; re-encoding gives the same JSON.
    #[test]
    fn prop_jsonrpc_round_trip(message in message()) {
        let encoded = message.to_json();
        let bytes = serde_json::to_vec(&encoded).expect("a Value always serializes");
        match jsonrpc::parse(&bytes, &ParseLimits::default(), false) {
            Ok(Incoming::Single(decoded)) => {
                prop_assert_eq!(&decoded, &message, "decoded message differs");
                prop_assert_eq!(decoded.to_json(), encoded, "re-encoded JSON differs");
            }
            other => prop_assert!(false, "encoded message not accepted: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Path guard
// ---------------------------------------------------------------------------------------------

/// One entry of a generated tree, at a path of `a`..`d` names under the root.
#[derive(Debug, Clone)]
enum Node {
    Dir(Vec<&'static str>),
    File(Vec<&'static str>),
    /// A symlink whose (relative) target is written verbatim: may stay inside, climb out with
    /// `..`, or dangle.
    RelativeLink(Vec<&'static str>, String),
    /// A symlink to an absolute path outside the root.
    OutsideLink(Vec<&'static str>, &'static str),
    /// A symlink to the root itself (loops are allowed).
    RootLink(Vec<&'static str>),
}

const NAMES: &[&str] = &["a", "b", "c", "d"];

fn node_path() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(select(NAMES), 1..3)
}

fn node() -> impl Strategy<Value = Node> {
    let rel_target = prop::collection::vec(select(&["a", "b", "c", "d", "..", ".", "outside", "secret.txt"][..]), 1..5)
        .prop_map(|parts| parts.join("/"));
    prop_oneof![
        3 => node_path().prop_map(Node::Dir),
        3 => node_path().prop_map(Node::File),
        2 => (node_path(), rel_target).prop_map(|(p, t)| Node::RelativeLink(p, t)),
        3 => (node_path(), select(&["outside", "outside/secret.txt", "/", "/etc", "outside/d"][..]))
            .prop_map(|(p, t)| Node::OutsideLink(p, t)),
        1 => node_path().prop_map(Node::RootLink),
    ]
}

/// A requested path: mostly tree names (so many requests hit real entries and links), with
/// `.`, `..`, empty components, names of outside files, a leading or trailing `/`.
fn request() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        12 => select(NAMES),
        1 => Just("."),
        1 => Just(".."),
        1 => Just(""),
        1 => select(&["secret.txt", "outside", "root"][..]),
    ];
    (prop::bool::weighted(0.05), prop::collection::vec(part, 1..4), prop::bool::weighted(0.1)).prop_map(
        |(absolute, parts, trailing)| {
            let mut p = parts.join("/");
            if absolute {
                p.insert(0, '/');
            }
            if trailing {
                p.push('/');
            }
            p
        },
    )
}

/// Creates the tree under `root`, parents first; creation failures (a name already taken by
/// another kind of entry, a parent that is a file or a link) are skipped, as in a real
/// server's messy directory.
#[cfg(unix)]
fn build(root: &Path, outside: &Path, nodes: &[Node]) {
    use std::os::unix::fs::symlink;
    let at = |parts: &[&str]| parts.iter().fold(root.to_path_buf(), |p, part| p.join(part));
    for node in nodes {
        let (Node::Dir(p) | Node::File(p) | Node::RelativeLink(p, _) | Node::OutsideLink(p, _) | Node::RootLink(p)) =
            node;
        if let Some(parent) = at(p).parent()
            && parent.starts_with(root)
            && fs::symlink_metadata(parent).is_err()
        {
            let _ = fs::create_dir_all(parent);
        }
        let _ = match node {
            Node::Dir(p) => fs::create_dir_all(at(p)),
            Node::File(p) => fs::write(at(p), "inside"),
            Node::RelativeLink(p, target) => symlink(target, at(p)),
            Node::OutsideLink(p, target) => {
                let target = match target.strip_prefix("outside") {
                    Some(rest) => PathBuf::from(format!("{}{rest}", outside.display())),
                    None => PathBuf::from(target),
                };
                symlink(target, at(p))
            }
            Node::RootLink(p) => symlink(root, at(p)),
        };
    }
}

#[cfg(unix)]
proptest! {
    #![proptest_config(config(96))]

    /// Over a generated tree with directories, files and symlinks (inside, dangling, climbing
    /// out with `..`, absolute outside, looping to the root), `Sandbox::resolve` of any
    /// generated request either fails or returns an existing canonical path inside the root,
    /// the same one the OS resolves; requests that are absolute or contain `..` always fail;
    /// and when the OS would resolve a path to outside the root, the guard says `Escape`.
    #[test]
    fn prop_path_guard_stays_inside(nodes in prop::collection::vec(node(), 0..24), requests in prop::collection::vec(request(), 1..24)) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir_all(&root).expect("root");
        fs::create_dir_all(outside.join("d")).expect("outside");
        fs::write(outside.join("secret.txt"), "SECRET").expect("outside file");
        fs::write(dir.path().join("secret.txt"), "SECRET").expect("sibling file");
        build(&root, &outside, &nodes);
        let sandbox = Sandbox::new(&root).expect("sandbox");
        let canonical_root = fs::canonicalize(&root).expect("canonical root");
        for request in &requests {
            let result = sandbox.resolve(request);
            let os_view = fs::canonicalize(canonical_root.join(request)).ok();
            let lexically_bad = request.starts_with('/') || request.split('/').any(|part| part == "..");
            match &result {
                Ok(path) => {
                    prop_assert!(!lexically_bad, "{request:?}: absolute or `..` request accepted");
                    prop_assert!(path.starts_with(&canonical_root), "{request:?} resolved outside the root: {}", path.display());
                    prop_assert_eq!(Some(path), os_view.as_ref(), "{:?}: guard and OS disagree", request);
                    prop_assert!(path.exists(), "{request:?}: resolved to a missing path");
                }
                Err(SandboxError::Escape) => {
                    let escaped = os_view.as_ref().is_some_and(|p| !p.starts_with(&canonical_root));
                    prop_assert!(escaped, "{request:?}: Escape, but the OS resolves it to {os_view:?}");
                }
                Err(_) => {
                    // Refused lexically or missing: only a problem if the OS finds it inside the
                    // root for a clean request (a wrongly refused honest path).
                    if !lexically_bad && !request.is_empty() {
                        let inside = os_view.as_ref().is_some_and(|p| p.starts_with(&canonical_root));
                        prop_assert!(!inside, "{request:?}: refused ({result:?}) but the OS resolves it inside the root");
                    }
                }
            }
        }
    }
}
