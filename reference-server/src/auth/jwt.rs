//! JWT access tokens (RFC 9068 profile): a minimal compact-JWS signer and verifier over aws-lc-rs.
//!
//! Issuing: Ed25519 (`EdDSA`) by default, `ES256` available, header `{alg, kid, typ: "at+jwt"}`.
//!
//! Verifying follows one rule above all: **the key decides the algorithm, never the header.** A
//! token names a `kid`; the key found under it verifies exactly one algorithm, and a header whose
//! `alg` differs is refused (`none`, `HS256` against a public key, anything unknown). Beyond that:
//! compact serialization only (three parts, strict unpadded base64url), a size cap, bounded JSON
//! nesting, no `crit`, `typ` (if present) `JWT` or `at+jwt`, the signature over the exact
//! `header.payload` bytes, then the claims: `iss` trusted, `aud` holding our canonical resource
//! URI, `exp` required, `nbf`/`iat` sane, all within a small bounded leeway.
//!
//! [`TokenError`] says precisely why a token failed, for logs and the audit; the HTTP layer only
//! ever answers `invalid_token`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::jwks::{Jwk, Jwks, JwksError, KeySet, RemoteJwks, VerificationKey, b64url_decode};

/// Longest token accepted, in bytes. Ours are about 400; this bounds decoding and parsing work.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Deepest JSON nesting accepted in a header, claims set or JWK set.
pub const MAX_JSON_DEPTH: usize = 16;
/// Clock-skew allowance applied to `exp`, `nbf` and `iat` unless configured otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Largest leeway that may be configured: more would make expiry meaningless.
pub const MAX_LEEWAY: Duration = Duration::from_secs(120);
/// Verified tokens remembered by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Access-token lifetime by default (issue 4: one hour).
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// JWS algorithms this module knows. Signing uses `EdDSA` or `ES256`; `HS256` exists only to
/// verify with HMAC secrets configured as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    EdDSA,
    ES256,
    HS256,
}

impl Alg {
    /// The JOSE name (RFC 7518, RFC 8037).
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::ES256 => "ES256",
            Alg::HS256 => "HS256",
        }
    }

    /// The algorithm with this exact (case-sensitive) JOSE name, if known.
    pub fn from_name(name: &str) -> Option<Alg> {
        match name {
            "EdDSA" => Some(Alg::EdDSA),
            "ES256" => Some(Alg::ES256),
            "HS256" => Some(Alg::HS256),
            _ => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a signing key could not be made, loaded, saved or used. Never carries key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("algorithm {0} cannot sign here")]
    UnsupportedAlg(Alg),
    #[error("key generation failed")]
    Generate,
    #[error("not a PKCS#8 Ed25519 or P-256 private key")]
    Parse,
    #[error("not a PEM \"PRIVATE KEY\" block")]
    Pem,
    #[error("signing failed")]
    Sign,
    #[error("system randomness failed")]
    Random,
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
}

/// A private signing key with its `kid`: base64url of the first 16 bytes of SHA-256 of the public
/// key (the raw 32 bytes for Ed25519, the uncompressed point for P-256), so the `kid` follows
/// the key across restarts and replicas without any registry.
pub struct SigningKey {
    pair: Pair,
    public: Vec<u8>,
    kid: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg())
            .field("kid", &self.kid)
            .field("private", &"<redacted>")
            .finish()
    }
}

const PEM_LABEL: &str = "PRIVATE KEY";

impl SigningKey {
    /// A fresh key from the system CSPRNG. `HS256` is refused: we never sign with shared secrets.
    pub fn generate(alg: Alg) -> Result<SigningKey, KeyError> {
        let pair = match alg {
            Alg::EdDSA => Pair::Ed25519(Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?),
            Alg::ES256 => {
                Pair::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| KeyError::Generate)?)
            }
            Alg::HS256 => return Err(KeyError::UnsupportedAlg(alg)),
        };
        Ok(SigningKey::from_pair(pair))
    }

    fn from_pair(pair: Pair) -> SigningKey {
        let public = match &pair {
            Pair::Ed25519(p) => p.public_key().as_ref().to_vec(),
            Pair::Es256(p) => p.public_key().as_ref().to_vec(),
        };
        let digest = digest::digest(&digest::SHA256, &public);
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
        SigningKey { pair, public, kid }
    }

    /// Loads an unencrypted PKCS#8 key (DER); the key type decides the algorithm.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        if let Ok(p) = Ed25519KeyPair::from_pkcs8(der) {
            return Ok(SigningKey::from_pair(Pair::Ed25519(p)));
        }
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map(|p| SigningKey::from_pair(Pair::Es256(p)))
            .map_err(|_| KeyError::Parse)
    }

    /// Loads a `-----BEGIN PRIVATE KEY-----` PEM block (as written by [`SigningKey::to_pkcs8_pem`]
    /// or `openssl genpkey`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<SigningKey, KeyError> {
        SigningKey::from_pkcs8_der(&pem_decode(pem)?)
    }

    /// The private key as PKCS#8 v1 DER. This is the secret: store it with owner-only permissions.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, KeyError> {
        let doc = match &self.pair {
            Pair::Ed25519(p) => p.to_pkcs8v1(),
            Pair::Es256(p) => p.to_pkcs8v1(),
        };
        doc.map(|d| d.as_ref().to_vec()).map_err(|_| KeyError::Parse)
    }

    /// The private key as a PKCS#8 PEM block, so the key (and its `kid`) survives restarts.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        Ok(pem_encode(&self.to_pkcs8_der()?))
    }

    pub fn alg(&self) -> Alg {
        match self.pair {
            Pair::Ed25519(_) => Alg::EdDSA,
            Pair::Es256(_) => Alg::ES256,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Raw public key bytes: 32 bytes (Ed25519) or the 65-byte uncompressed point (P-256).
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// The public JWK, for our JWKS endpoint.
    pub fn public_jwk(&self) -> Jwk {
        let (kty, crv, x, y) = match self.pair {
            Pair::Ed25519(_) => ("OKP", "Ed25519", URL_SAFE_NO_PAD.encode(&self.public), None),
            Pair::Es256(_) => {
                // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
                let x = self.public.get(1..33).unwrap_or_default();
                let y = self.public.get(33..65).unwrap_or_default();
                ("EC", "P-256", URL_SAFE_NO_PAD.encode(x), Some(URL_SAFE_NO_PAD.encode(y)))
            }
        };
        Jwk {
            kty: kty.into(),
            crv: crv.into(),
            x,
            y,
            kid: self.kid.clone(),
            alg: Some(self.alg().as_str().into()),
            use_: Some("sig".into()),
            key_ops: None,
        }
    }

    /// The matching verification key.
    pub fn verification_key(&self) -> Result<VerificationKey, JwksError> {
        VerificationKey::from_jwk(&self.public_jwk())
    }

    /// The raw JWS signature over `message` (64 bytes; `r || s` for ES256).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ed25519(p) => Ok(p.sign(message).as_ref().to_vec()),
            Pair::Es256(p) => {
                p.sign(&SystemRandom::new(), message).map(|s| s.as_ref().to_vec()).map_err(|_| KeyError::Sign)
            }
        }
    }

    /// A compact JWS over `payload` with our header `{"alg","kid","typ":"at+jwt"}`.
    pub fn sign_compact(&self, payload: &[u8]) -> Result<String, KeyError> {
        let header = serde_json::json!({ "alg": self.alg().as_str(), "kid": self.kid, "typ": "at+jwt" });
        self.sign_compact_with_header(header.to_string().as_bytes(), payload)
    }

    /// A compact JWS with a caller-chosen header. For tests and the harness's test authority,
    /// which need tokens with odd headers; the verifier must refuse those on its own.
    pub fn sign_compact_with_header(&self, header: &[u8], payload: &[u8]) -> Result<String, KeyError> {
        let mut out = URL_SAFE_NO_PAD.encode(header);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let signature = self.sign(out.as_bytes())?;
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(out)
    }

    /// The private scalar (Ed25519 seed or P-256 `d`), so tests can prove it is never published.
    #[cfg(test)]
    pub(crate) fn private_scalar_for_tests(&self) -> Vec<u8> {
        use aws_lc_rs::encoding::AsBigEndian;
        match &self.pair {
            Pair::Ed25519(p) => p.seed().and_then(|s| s.as_be_bytes()).map(|b| b.as_ref().to_vec()),
            Pair::Es256(p) => p.private_key().as_be_bytes().map(|b| b.as_ref().to_vec()),
        }
        .unwrap_or_default()
    }
}

fn pem_encode(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {PEM_LABEL}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {PEM_LABEL}-----\n"));
    out
}

fn pem_decode(pem: &str) -> Result<Vec<u8>, KeyError> {
    let mut lines = pem.trim().lines().map(str::trim);
    if lines.next() != Some(&format!("-----BEGIN {PEM_LABEL}-----")) {
        return Err(KeyError::Pem);
    }
    let mut body = String::new();
    for line in lines {
        if line == format!("-----END {PEM_LABEL}-----") {
            return STANDARD.decode(body).map_err(|_| KeyError::Pem);
        }
        body.push_str(line);
    }
    Err(KeyError::Pem)
}

/// The claims of an access token (RFC 9068 §2.2). `aud` is a list; one audience serializes as a
/// plain string. `scope` is the space-separated scope string (empty when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(serialize_with = "ser_aud", deserialize_with = "de_aud")]
    pub aud: Vec<String>,
    #[serde(default)]
    pub scope: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    pub iat: u64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

fn ser_aud<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

fn de_aud<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Audience::deserialize(d)? {
        Audience::One(a) => vec![a],
        Audience::Many(v) => v,
    })
}

/// A JSON string borrowed from the decoded token when it holds no escapes (the usual case), so
/// parsing a header or claims set allocates nothing; owned when escapes had to be undone.
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> serde::de::Visitor<'de> for StrVisitor {
    type Value = Str<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
        Ok(Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Str<'de>, E> {
        Ok(Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Str<'de>, E> {
        Ok(Str(Cow::Owned(v)))
    }
}

/// `aud` as it arrives: one string or an array of strings (anything else is malformed).
enum RawAud<'a> {
    One(Str<'a>),
    Many(Vec<Str<'a>>),
}

impl RawAud<'_> {
    fn contains(&self, audience: &str) -> bool {
        match self {
            RawAud::One(a) => a.0 == audience,
            RawAud::Many(v) => v.iter().any(|a| a.0 == audience),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawAud<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AudVisitor;
        impl<'de> serde::de::Visitor<'de> for AudVisitor {
            type Value = RawAud<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<RawAud<'de>, E> {
                StrVisitor.visit_borrowed_str(v).map(RawAud::One)
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawAud<'de>, E> {
                StrVisitor.visit_str(v).map(RawAud::One)
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawAud<'de>, E> {
                StrVisitor.visit_string(v).map(RawAud::One)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawAud<'de>, A::Error> {
                let mut all = Vec::new();
                while let Some(a) = seq.next_element::<Str<'de>>()? {
                    all.push(a);
                }
                Ok(RawAud::Many(all))
            }
        }
        d.deserialize_any(AudVisitor)
    }
}

/// Claims as they arrive: every member optional so a missing one gets its own error. Derived
/// deserialization refuses duplicate members, so two parsers can never disagree on `exp` or `aud`.
/// Strings borrow from the decoded payload; only what [`Verified`] keeps is copied, once.
#[derive(Default, Deserialize)]
struct RawClaims<'a> {
    #[serde(borrow)]
    iss: Option<Str<'a>>,
    #[serde(borrow)]
    sub: Option<Str<'a>>,
    #[serde(borrow)]
    aud: Option<RawAud<'a>>,
    #[serde(borrow)]
    scope: Option<Str<'a>>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    #[serde(borrow)]
    jti: Option<Str<'a>>,
    #[serde(borrow)]
    client_id: Option<Str<'a>>,
}

/// Deserializes any value (even `null`) as "present", so `"crit": null` is still refused.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Str<'a>,
    #[serde(default, borrow)]
    kid: Option<Str<'a>>,
    #[serde(default, borrow)]
    typ: Option<Str<'a>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    /// RFC 7797 unencoded payloads change what is signed; refused like `crit`.
    #[serde(default, deserialize_with = "present")]
    b64: bool,
}

/// Why a token was refused. For logs and the audit only; clients always see `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token exceeds {MAX_TOKEN_LEN} bytes")]
    Oversized,
    #[error("not a well-formed compact JWS: {0}")]
    Malformed(&'static str),
    #[error("algorithm not allowed for the key")]
    AlgNotAllowed,
    #[error("header has no kid")]
    MissingKid,
    #[error("no trusted key has this kid")]
    UnknownKid,
    #[error("typ is neither JWT nor at+jwt")]
    BadType,
    #[error("critical header parameters are not supported")]
    CritHeader,
    #[error("signature does not verify")]
    BadSignature,
    #[error("issuer is not trusted")]
    UntrustedIssuer,
    #[error("audience does not include this resource")]
    WrongAudience,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token has no exp")]
    MissingExp,
    #[error("token was issued in the future")]
    IssuedInFuture,
    #[error("claim missing or invalid: {0}")]
    InvalidClaim(&'static str),
    #[error("token has been revoked")]
    Revoked,
    #[error("the issuer's keys are unavailable")]
    KeysUnavailable,
}

impl TokenError {
    /// A short stable code for audit records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Oversized => "oversized",
            TokenError::Malformed(_) => "malformed",
            TokenError::AlgNotAllowed => "alg_not_allowed",
            TokenError::MissingKid => "missing_kid",
            TokenError::UnknownKid => "unknown_kid",
            TokenError::BadType => "bad_typ",
            TokenError::CritHeader => "crit_header",
            TokenError::BadSignature => "bad_signature",
            TokenError::UntrustedIssuer => "untrusted_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::MissingExp => "missing_exp",
            TokenError::IssuedInFuture => "iat_in_future",
            TokenError::InvalidClaim(_) => "invalid_claim",
            TokenError::Revoked => "revoked",
            TokenError::KeysUnavailable => "keys_unavailable",
        }
    }
}

/// Whether `bytes` (JSON text) nests objects and arrays at most `max` deep. A linear pre-scan,
/// so deep input is refused before any recursive parser sees it.
pub(crate) fn json_depth_within(bytes: &[u8], max: usize) -> bool {
    // Fast path: nesting never exceeds the number of `{` and `[` bytes, and counting them is a
    // branch-free loop the compiler vectorizes. Typical headers and claims sets have a handful,
    // so the stateful scan below only runs on input that could actually nest too deep.
    if bytes.iter().map(|&b| usize::from(b == b'{' || b == b'[')).sum::<usize>() <= max {
        return true;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Whether JSON text starts (after whitespace) with `{`. Derived struct deserializers also accept
/// arrays (fields by position); a JOSE header or claims set must be an object (RFC 7515 §4, RFC
/// 7519 §7.2).
fn is_json_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b'{')
}

/// A compact JWS split and decoded, header checked, signature not yet verified. Borrows from the
/// token and from the [`DecodeBufs`] its parts were decoded into.
struct Compact<'a> {
    alg: Alg,
    kid: Cow<'a, str>,
    signing_input: &'a [u8],
    payload: &'a [u8],
    signature: &'a [u8],
}

/// Stack room for a token's decoded parts, sized for ordinary tokens (ours decode to about 60,
/// 300 and 64 bytes) so verifying one allocates nothing; a larger part (legal up to
/// [`MAX_TOKEN_LEN`]) is decoded onto the heap instead.
struct DecodeBufs {
    header: [u8; 192],
    payload: [u8; 768],
    signature: [u8; 96],
    heap: [Vec<u8>; 3],
}

impl DecodeBufs {
    fn new() -> Self {
        DecodeBufs {
            header: [0; 192],
            payload: [0; 768],
            signature: [0; 96],
            heap: [Vec::new(), Vec::new(), Vec::new()],
        }
    }
}

/// Strict unpadded base64url of `s`, into `buf` when it fits, else into `heap`.
fn decode_part<'b>(s: &str, buf: &'b mut [u8], heap: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    if base64::decoded_len_estimate(s.len()) <= buf.len() {
        let n = URL_SAFE_NO_PAD.decode_slice(s, buf).ok()?;
        buf.get(..n)
    } else {
        *heap = b64url_decode(s)?;
        Some(heap.as_slice())
    }
}

fn typ_allowed(typ: &str) -> bool {
    // RFC 7515 §4.1.9: typ is case-insensitive and "application/" may be omitted.
    let t = typ.strip_prefix("application/").unwrap_or(typ);
    t.eq_ignore_ascii_case("jwt") || t.eq_ignore_ascii_case("at+jwt")
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Eight bytes as one word (byte order is irrelevant to the tests below).
fn word(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Whether some byte of `w` is below `n` (`n` ≤ 128): the classic borrow trick, exact for "some".
fn has_byte_below(w: u64, n: u8) -> bool {
    w.wrapping_sub(LOW_BITS * u64::from(n)) & !w & HIGH_BITS != 0
}

/// Whether some byte of `w` is `b`.
fn has_byte(w: u64, b: u8) -> bool {
    has_byte_below(w ^ (LOW_BITS * u64::from(b)), 1)
}

/// The first `needle` in `b`, a word at a time (tokens are a few hundred bytes; a byte loop
/// showed up in profiles).
fn find_byte(b: &[u8], needle: u8) -> Option<usize> {
    let mut start = 0;
    while let Some(w) = b.get(start..start + 8).and_then(word) {
        if has_byte(w, needle) {
            break;
        }
        start += 8;
    }
    b.iter().skip(start).position(|&c| c == needle).map(|i| start + i)
}

/// The body of a JSON string up to its closing quote, if it is printable ASCII without escapes,
/// and what follows the quote.
fn plain_str(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut start = 0;
    // Eight bytes at a time while none of them needs a look.
    while let Some(w) = b.get(start..start + 8).and_then(word) {
        if has_byte(w, b'"') || has_byte(w, b'\\') || has_byte(w, 0x7f) || has_byte_below(w, 0x20) || w & HIGH_BITS != 0
        {
            break;
        }
        start += 8;
    }
    for (i, c) in b.iter().copied().enumerate().skip(start) {
        match c {
            b'"' => return Some((s.get(..i)?, s.get(i + 1..)?)),
            b'\\' | 0..0x20 | 0x7f.. => return None,
            _ => {}
        }
    }
    None
}

/// `(alg, kid, typ)` of a header written exactly as `{"alg":"…","kid":"…"}` or
/// `{"alg":"…","kid":"…","typ":"…"}`: no whitespace, no other member, printable ASCII values
/// without escapes. That is how our issuer and most others write headers, and the full parser
/// would read exactly these three values from such bytes (one object, no duplicates, no `crit`,
/// no `b64`); anything else returns `None` and takes the full parser.
fn plain_header(h: &[u8]) -> Option<(&str, &str, Option<&str>)> {
    let h = std::str::from_utf8(h).ok()?;
    let (alg, rest) = plain_str(h.strip_prefix(r#"{"alg":""#)?)?;
    let (kid, rest) = plain_str(rest.strip_prefix(r#","kid":""#)?)?;
    let (typ, rest) = match rest.strip_prefix(r#","typ":""#) {
        Some(r) => plain_str(r).map(|(t, r)| (Some(t), r))?,
        None => (None, rest),
    };
    (rest == "}").then_some((alg, kid, typ))
}

/// A plain unsigned JSON integer (`0`, or no leading zero; at most 19 digits, so it cannot
/// overflow) and what follows it.
fn plain_u64(s: &str) -> Option<(u64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 19 || (digits > 1 && s.starts_with('0')) {
        return None;
    }
    let n = s.bytes().take(digits).fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some((n, s.get(digits..)?))
}

/// The first byte of `s` (ASCII punctuation here) and the rest.
fn split_first(s: &str) -> Option<(u8, &str)> {
    Some((*s.as_bytes().first()?, s.get(1..)?))
}

/// The claims of a payload written the plain way (ours, and most issuers'): one object, no
/// whitespace, only the nine claims [`RawClaims`] knows, each at most once; strings printable
/// ASCII without escapes, `exp`/`nbf`/`iat` plain unsigned integers, `aud` a string or an array
/// of strings. serde's parse reads exactly these values from such bytes; anything else (other
/// members, `null`, escapes, duplicates, whitespace) is `None` and takes that parser, which
/// also gives the precise error.
fn plain_claims(p: &[u8]) -> Option<RawClaims<'_>> {
    let mut raw = RawClaims::default();
    let mut seen = 0u16;
    let mut rest = std::str::from_utf8(p).ok()?.strip_prefix('{')?;
    loop {
        let (key, r) = plain_str(rest.strip_prefix('"')?)?;
        let r = r.strip_prefix(':')?;
        let bit = match key {
            "iss" => 0,
            "sub" => 1,
            "aud" => 2,
            "scope" => 3,
            "exp" => 4,
            "nbf" => 5,
            "iat" => 6,
            "jti" => 7,
            "client_id" => 8,
            _ => return None,
        };
        if seen & (1 << bit) != 0 {
            return None;
        }
        seen |= 1 << bit;
        rest = match key {
            "exp" | "nbf" | "iat" => {
                let (n, r) = plain_u64(r)?;
                *match key {
                    "exp" => &mut raw.exp,
                    "nbf" => &mut raw.nbf,
                    _ => &mut raw.iat,
                } = Some(n);
                r
            }
            "aud" => match r.strip_prefix('[') {
                Some(mut r) => {
                    let mut all = Vec::new();
                    if let Some(after) = r.strip_prefix(']') {
                        r = after;
                    } else {
                        loop {
                            let (v, after) = plain_str(r.strip_prefix('"')?)?;
                            all.push(Str(Cow::Borrowed(v)));
                            match split_first(after)? {
                                (b',', after) => r = after,
                                (b']', after) => {
                                    r = after;
                                    break;
                                }
                                _ => return None,
                            }
                        }
                    }
                    raw.aud = Some(RawAud::Many(all));
                    r
                }
                None => {
                    let (v, r) = plain_str(r.strip_prefix('"')?)?;
                    raw.aud = Some(RawAud::One(Str(Cow::Borrowed(v))));
                    r
                }
            },
            _ => {
                let (v, r) = plain_str(r.strip_prefix('"')?)?;
                *match key {
                    "iss" => &mut raw.iss,
                    "sub" => &mut raw.sub,
                    "scope" => &mut raw.scope,
                    "jti" => &mut raw.jti,
                    _ => &mut raw.client_id,
                } = Some(Str(Cow::Borrowed(v)));
                r
            }
        };
        match split_first(rest)? {
            (b',', r) => rest = r,
            (b'}', "") => return Some(raw),
            _ => return None,
        }
    }
}

fn parse_compact<'a>(token: &'a str, bufs: &'a mut DecodeBufs) -> Result<Compact<'a>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Oversized);
    }
    let split = |t: &'a str| find_byte(t.as_bytes(), b'.').and_then(|i| Some((t.get(..i)?, t.get(i + 1..)?)));
    let parts = split(token).and_then(|(h, rest)| Some((h, split(rest)?)));
    let Some((h, (p, s))) = parts.filter(|(_, (_, s))| find_byte(s.as_bytes(), b'.').is_none()) else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    let DecodeBufs { header: hb, payload: pb, signature: sb, heap: [hh, ph, sh] } = bufs;
    let header = decode_part(h, hb, hh).ok_or(TokenError::Malformed("header is not strict base64url"))?;
    let payload = decode_part(p, pb, ph).ok_or(TokenError::Malformed("payload is not strict base64url"))?;
    let signature = decode_part(s, sb, sh).ok_or(TokenError::Malformed("signature is not strict base64url"))?;
    let (alg, kid, typ) = match plain_header(header) {
        Some((alg, kid, typ)) => (Cow::Borrowed(alg), Some(Cow::Borrowed(kid)), typ.map(Cow::Borrowed)),
        None => {
            if !json_depth_within(header, MAX_JSON_DEPTH) {
                return Err(TokenError::Malformed("header nests too deep"));
            }
            if !is_json_object(header) {
                return Err(TokenError::Malformed("header"));
            }
            let header: Header<'a> = serde_json::from_slice(header).map_err(|_| TokenError::Malformed("header"))?;
            if header.crit || header.b64 {
                return Err(TokenError::CritHeader);
            }
            (header.alg.0, header.kid.map(|k| k.0), header.typ.map(|t| t.0))
        }
    };
    let alg = Alg::from_name(&alg).ok_or(TokenError::AlgNotAllowed)?;
    if typ.as_deref().is_some_and(|t| !typ_allowed(t)) {
        return Err(TokenError::BadType);
    }
    let kid = kid.ok_or(TokenError::MissingKid)?;
    let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];
    Ok(Compact { alg, kid, signing_input, payload, signature })
}

fn check_signature(c: &Compact<'_>, keys: &KeySet) -> Result<(), TokenError> {
    let key = keys.get(&c.kid).ok_or(TokenError::UnknownKid)?;
    // The key decides: a header naming any other algorithm is refused before any crypto runs.
    if key.alg() != c.alg {
        return Err(TokenError::AlgNotAllowed);
    }
    if !key.verify_raw(c.signing_input, c.signature) {
        return Err(TokenError::BadSignature);
    }
    Ok(())
}

/// Signature-only verification of a compact JWS against `keys` (all header rules apply; the
/// payload need not be a claims set). Returns the payload. Used for Wycheproof's JWS vectors.
pub fn verify_signature(keys: &KeySet, token: &str) -> Result<Vec<u8>, TokenError> {
    let mut bufs = DecodeBufs::new();
    let c = parse_compact(token, &mut bufs)?;
    check_signature(&c, keys)?;
    Ok(c.payload.to_vec())
}

/// Where a trusted issuer's keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// A fixed JWK set (our own issuer, or a configured external one).
    Static(Jwks),
    /// Pre-built keys; the only way to trust HMAC (`HS256`) secrets, which must be configured
    /// explicitly ([`VerificationKey::hmac`]).
    Keys(KeySet),
    /// A `jwks_uri`, fetched and cached ([`RemoteJwks`]).
    Remote(Arc<RemoteJwks>),
}

/// An issuer whose tokens we accept, for one audience (our canonical resource URI).
#[derive(Debug)]
pub struct TrustedIssuer {
    pub issuer: String,
    pub audience: String,
    pub keys: KeySource,
}

impl TrustedIssuer {
    /// An external issuer known by its JWKS URL (https, or http on loopback).
    pub fn remote(issuer: &str, audience: &str, jwks_url: &str) -> Result<TrustedIssuer, JwksError> {
        Ok(TrustedIssuer {
            issuer: issuer.into(),
            audience: audience.into(),
            keys: KeySource::Remote(Arc::new(RemoteJwks::new(jwks_url)?)),
        })
    }
}

/// Where one claim sits in [`Verified`]'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

/// The audiences of a verified token: one (the usual case) without a separate allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AudSpans {
    One([Span; 1]),
    Many(Box<[Span]>),
}

/// A token that passed every check, with its claims.
///
/// The string claims it keeps are copied into one buffer, so a verification costs one
/// allocation (and a cache hit one copy) instead of one per claim; read them through the
/// accessors. `scope` was checked to be a list of valid RFC 6749 scope tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Verified {
    text: String,
    iss: Span,
    sub: Span,
    aud: AudSpans,
    scope: Span,
    jti: Span,
    client_id: Option<Span>,
    exp: u64,
    nbf: Option<u64>,
    iat: u64,
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("iss", &self.iss())
            .field("sub", &self.sub())
            .field("aud", &self.aud().collect::<Vec<_>>())
            .field("scope", &self.scope())
            .field("exp", &self.exp)
            .field("nbf", &self.nbf)
            .field("iat", &self.iat)
            .field("jti", &self.jti())
            .field("client_id", &self.client_id())
            .finish()
    }
}

impl Verified {
    fn at(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or_default()
    }

    pub fn iss(&self) -> &str {
        self.at(self.iss)
    }

    pub fn sub(&self) -> &str {
        self.at(self.sub)
    }

    /// The audiences, in token order (our resource is among them).
    pub fn aud(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        let spans: &[Span] = match &self.aud {
            AudSpans::One(one) => one,
            AudSpans::Many(many) => many,
        };
        spans.iter().map(|s| self.at(*s))
    }

    /// The space-separated scope string as issued (empty when absent).
    pub fn scope(&self) -> &str {
        self.at(self.scope)
    }

    /// The scope tokens, in token order (duplicates as issued).
    pub fn scopes(&self) -> impl Iterator<Item = &str> + '_ {
        self.scope().split(' ').filter(|t| !t.is_empty())
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    pub fn exp(&self) -> u64 {
        self.exp
    }

    pub fn nbf(&self) -> Option<u64> {
        self.nbf
    }

    pub fn iat(&self) -> u64 {
        self.iat
    }

    pub fn jti(&self) -> &str {
        self.at(self.jti)
    }

    pub fn client_id(&self) -> Option<&str> {
        self.client_id.map(|s| self.at(s))
    }

    /// The claims as an owned [`Claims`] (e.g. to compare with what was issued).
    pub fn to_claims(&self) -> Claims {
        Claims {
            iss: self.iss().to_owned(),
            sub: self.sub().to_owned(),
            aud: self.aud().map(str::to_owned).collect(),
            scope: self.scope().to_owned(),
            exp: self.exp,
            nbf: self.nbf,
            iat: self.iat,
            jti: self.jti().to_owned(),
            client_id: self.client_id().map(str::to_owned),
        }
    }
}

/// Appends strings to one buffer and remembers where each went.
struct TextBuilder(String);

impl TextBuilder {
    fn push(&mut self, s: &str) -> Span {
        let start = self.0.len();
        self.0.push_str(s);
        Span { start, end: self.0.len() }
    }
}

/// A configuration the verifier cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenConfigError {
    #[error("issuer {0:?} is configured twice")]
    DuplicateIssuer(String),
    #[error("issuer and audience must be non-empty")]
    Empty,
    #[error("leeway above the {}-second maximum", MAX_LEEWAY.as_secs())]
    LeewayTooLarge,
    #[error("issuer keys: {0}")]
    Keys(#[from] JwksError),
}

enum IssuerKeys {
    Static(Arc<KeySet>),
    Remote(Arc<RemoteJwks>),
}

struct IssuerEntry {
    issuer: String,
    audience: String,
    keys: IssuerKeys,
}

/// Cache hit and miss counts, and entries held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
}

struct CacheEntry {
    verified: Verified,
    exp: u64,
    seq: u64,
}

/// Hashes a cache key (SHA-256 of a token) as its first eight bytes, instead of running SipHash
/// over all 32. Only tokens that verified are inserted, and their digests cannot be chosen
/// without a trusted signing key; lookups never insert. So no one can shape the table.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        if let Some(w) = bytes.get(..8).and_then(word) {
            self.0 = w;
        }
    }

    // Arrays hash their length first; it is the same for every key.
    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Verified tokens by SHA-256 of the token. Bounded: when full, expired entries go first, then
/// the oldest insertions.
struct VerifiedCache {
    capacity: usize,
    map: HashMap<[u8; 32], CacheEntry, BuildHasherDefault<DigestHasher>>,
    order: BTreeMap<u64, [u8; 32]>,
    next_seq: u64,
}

impl VerifiedCache {
    fn new(capacity: usize) -> Self {
        VerifiedCache { capacity, map: HashMap::default(), order: BTreeMap::new(), next_seq: 0 }
    }

    /// A hit only while `now < exp`: never past expiry, not even within the leeway.
    fn get(&mut self, key: &[u8; 32], now: u64) -> Option<Verified> {
        let entry = self.map.get(key)?;
        if now < entry.exp {
            return Some(entry.verified.clone());
        }
        let seq = entry.seq;
        self.map.remove(key);
        self.order.remove(&seq);
        None
    }

    fn insert(&mut self, key: [u8; 32], verified: &Verified, now: u64) {
        let exp = verified.exp;
        if self.capacity == 0 || now >= exp {
            return;
        }
        if let Some(old) = self.map.remove(&key) {
            self.order.remove(&old.seq);
        }
        if self.map.len() >= self.capacity {
            self.purge_expired(now);
        }
        while self.map.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.map.remove(&oldest);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, key);
        self.map.insert(key, CacheEntry { verified: verified.clone(), exp, seq });
    }

    fn purge_expired(&mut self, now: u64) {
        let order = &mut self.order;
        self.map.retain(|_, e| {
            let keep = now < e.exp;
            if !keep {
                order.remove(&e.seq);
            }
            keep
        });
    }

    fn remove_jti(&mut self, jti: &str) {
        let order = &mut self.order;
        self.map.retain(|_, e| {
            let keep = e.verified.jti() != jti;
            if !keep {
                order.remove(&e.seq);
            }
            keep
        });
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn token_hash(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// RFC 6749 §3.3 scope-token characters.
fn scope_token_ok(t: &[u8]) -> bool {
    !t.is_empty() && t.iter().all(|&b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Verifies access tokens from a set of trusted issuers, with a verified-token cache and a
/// revocation set. Share one instance (it is `Send + Sync`).
pub struct TokenVerifier {
    issuers: Vec<IssuerEntry>,
    leeway: u64,
    cache: Mutex<VerifiedCache>,
    /// Revoked `jti` → unix second after which the entry may be forgotten.
    revoked: Mutex<HashMap<String, u64>>,
    /// Set (before the insert, and never cleared) by the first revocation, so that verifying
    /// while nothing was ever revoked (the usual case) skips the lock.
    any_revoked: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issuers: Vec<&str> = self.issuers.iter().map(|i| i.issuer.as_str()).collect();
        f.debug_struct("TokenVerifier").field("issuers", &issuers).field("leeway", &self.leeway).finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier trusting `issuers` (distinct `issuer` strings), with the default leeway and
    /// cache size.
    pub fn new(issuers: Vec<TrustedIssuer>) -> Result<TokenVerifier, TokenConfigError> {
        let mut entries: Vec<IssuerEntry> = Vec::with_capacity(issuers.len());
        for t in issuers {
            if t.issuer.is_empty() || t.audience.is_empty() {
                return Err(TokenConfigError::Empty);
            }
            if entries.iter().any(|e| e.issuer == t.issuer) {
                return Err(TokenConfigError::DuplicateIssuer(t.issuer));
            }
            let keys = match t.keys {
                KeySource::Static(jwks) => IssuerKeys::Static(Arc::new(KeySet::from_jwks(&jwks)?)),
                KeySource::Keys(set) => IssuerKeys::Static(Arc::new(set)),
                KeySource::Remote(remote) => IssuerKeys::Remote(remote),
            };
            entries.push(IssuerEntry { issuer: t.issuer, audience: t.audience, keys });
        }
        Ok(TokenVerifier {
            issuers: entries,
            leeway: DEFAULT_LEEWAY.as_secs(),
            cache: Mutex::new(VerifiedCache::new(DEFAULT_CACHE_CAPACITY)),
            revoked: Mutex::new(HashMap::new()),
            any_revoked: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// Sets the clock-skew leeway (whole seconds; at most [`MAX_LEEWAY`]).
    pub fn with_leeway(mut self, leeway: Duration) -> Result<TokenVerifier, TokenConfigError> {
        if leeway > MAX_LEEWAY {
            return Err(TokenConfigError::LeewayTooLarge);
        }
        self.leeway = leeway.as_secs();
        Ok(self)
    }

    /// Sets how many verified tokens are remembered (0 turns the cache off).
    pub fn with_cache_capacity(self, capacity: usize) -> TokenVerifier {
        *self.cache.lock() = VerifiedCache::new(capacity);
        self
    }

    pub fn leeway(&self) -> Duration {
        Duration::from_secs(self.leeway)
    }

    /// Verifies `token` at `now`: a cache hit if this exact token was verified before and has
    /// not reached `exp` nor been revoked; otherwise the full check, fetching remote keys if needed.
    pub async fn verify(&self, token: &str, now: SystemTime) -> Result<Verified, TokenError> {
        let key = match self.cache_lookup(token, now) {
            Ok(hit) => return Ok(hit),
            Err(key) => key?,
        };
        let verified = self.verify_uncached(token, now).await?;
        self.cache.lock().insert(key, &verified, unix_secs(now));
        Ok(verified)
    }

    /// As [`TokenVerifier::verify`] without fetching: remote issuers are served from the keys
    /// already held, and a remote issuer with none fails with [`TokenError::KeysUnavailable`].
    pub fn verify_sync(&self, token: &str, now: SystemTime) -> Result<Verified, TokenError> {
        let key = match self.cache_lookup(token, now) {
            Ok(hit) => return Ok(hit),
            Err(key) => key?,
        };
        let verified = self.verify_uncached_sync(token, now)?;
        self.cache.lock().insert(key, &verified, unix_secs(now));
        Ok(verified)
    }

    /// `Ok` on a cache hit; otherwise the cache key to store under, or an error that makes
    /// hashing pointless (oversized input).
    fn cache_lookup(&self, token: &str, now: SystemTime) -> Result<Verified, Result<[u8; 32], TokenError>> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Err(TokenError::Oversized));
        }
        let key = token_hash(token);
        let hit = self.cache.lock().get(&key, unix_secs(now));
        match hit {
            Some(v) if !self.is_revoked(v.jti(), now) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Ok(v)
            }
            _ => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Err(Ok(key))
            }
        }
    }

    /// The full check, no cache (what benchmarks measure). Revocation still applies.
    pub async fn verify_uncached(&self, token: &str, now: SystemTime) -> Result<Verified, TokenError> {
        let mut bufs = DecodeBufs::new();
        let (c, raw, entry) = self.prepare(token, &mut bufs)?;
        match &entry.keys {
            IssuerKeys::Static(keys) => self.finish(&c, raw, entry, keys, now),
            IssuerKeys::Remote(remote) => {
                let keys = remote.keys().await.map_err(|_| TokenError::KeysUnavailable)?;
                let keys = if keys.get(&c.kid).is_some() {
                    keys
                } else {
                    // Rotation: the issuer may have published a new key. Rate limited in RemoteJwks.
                    remote.refresh_for_unknown_kid().await.map_err(|_| TokenError::KeysUnavailable)?
                };
                self.finish(&c, raw, entry, &keys, now)
            }
        }
    }

    /// As [`TokenVerifier::verify_uncached`] without fetching (see [`TokenVerifier::verify_sync`]).
    pub fn verify_uncached_sync(&self, token: &str, now: SystemTime) -> Result<Verified, TokenError> {
        let mut bufs = DecodeBufs::new();
        let (c, raw, entry) = self.prepare(token, &mut bufs)?;
        match &entry.keys {
            IssuerKeys::Static(keys) => self.finish(&c, raw, entry, keys, now),
            IssuerKeys::Remote(remote) => {
                let keys = remote.cached().ok_or(TokenError::KeysUnavailable)?;
                self.finish(&c, raw, entry, &keys, now)
            }
        }
    }

    /// Splits and decodes the token, checks the header, parses the (still unverified) claims and
    /// picks the issuer they name. The signature is checked next, with that issuer's keys only,
    /// so a key of one issuer can never vouch for another's `iss`.
    fn prepare<'t>(
        &self,
        token: &'t str,
        bufs: &'t mut DecodeBufs,
    ) -> Result<(Compact<'t>, RawClaims<'t>, &IssuerEntry), TokenError> {
        let c = parse_compact(token, bufs)?;
        let raw = match plain_claims(c.payload) {
            Some(raw) => raw,
            None => {
                if !json_depth_within(c.payload, MAX_JSON_DEPTH) {
                    return Err(TokenError::Malformed("claims nest too deep"));
                }
                if !is_json_object(c.payload) {
                    return Err(TokenError::Malformed("claims"));
                }
                serde_json::from_slice(c.payload).map_err(|_| TokenError::Malformed("claims"))?
            }
        };
        let iss = raw.iss.as_ref().ok_or(TokenError::InvalidClaim("iss"))?;
        let entry = self.issuers.iter().find(|e| e.issuer == iss.0).ok_or(TokenError::UntrustedIssuer)?;
        Ok((c, raw, entry))
    }

    fn finish(
        &self,
        c: &Compact<'_>,
        raw: RawClaims<'_>,
        entry: &IssuerEntry,
        keys: &KeySet,
        now: SystemTime,
    ) -> Result<Verified, TokenError> {
        check_signature(c, keys)?;
        self.validate_claims(raw, entry, now)
    }

    /// The claim checks, then revocation, then (only for a token that passed) the owned copy.
    fn validate_claims(&self, raw: RawClaims<'_>, entry: &IssuerEntry, at: SystemTime) -> Result<Verified, TokenError> {
        let (leeway, now) = (self.leeway, unix_secs(at));
        let iss = raw.iss.ok_or(TokenError::InvalidClaim("iss"))?.0;
        if iss != entry.issuer {
            return Err(TokenError::UntrustedIssuer);
        }
        let exp = raw.exp.ok_or(TokenError::MissingExp)?;
        // Valid while now < exp (+ leeway): at exp the token is dead (RFC 7519 §4.1.4).
        if now >= exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if raw.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(TokenError::NotYetValid);
        }
        let iat = raw.iat.ok_or(TokenError::InvalidClaim("iat"))?;
        if iat > now.saturating_add(leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        if iat > exp {
            return Err(TokenError::InvalidClaim("iat after exp"));
        }
        let aud = raw.aud.ok_or(TokenError::WrongAudience)?;
        if !aud.contains(&entry.audience) {
            return Err(TokenError::WrongAudience);
        }
        let sub = raw.sub.map(|s| s.0).filter(|s| !s.is_empty()).ok_or(TokenError::InvalidClaim("sub"))?;
        let jti = raw.jti.map(|j| j.0).filter(|j| !j.is_empty()).ok_or(TokenError::InvalidClaim("jti"))?;
        let scope = raw.scope.map(|s| s.0).unwrap_or_default();
        if !scope.as_bytes().split(|&b| b == b' ').filter(|t| !t.is_empty()).all(scope_token_ok) {
            return Err(TokenError::InvalidClaim("scope"));
        }
        if self.is_revoked(&jti, at) {
            return Err(TokenError::Revoked);
        }
        let client_id = raw.client_id.map(|c| c.0);
        let aud_len = match &aud {
            RawAud::One(a) => a.0.len(),
            RawAud::Many(v) => v.iter().map(|a| a.0.len()).sum(),
        };
        let len = iss.len() + sub.len() + aud_len + scope.len() + jti.len() + client_id.as_deref().map_or(0, str::len);
        let mut text = TextBuilder(String::with_capacity(len));
        let (iss, sub, scope, jti) = (text.push(&iss), text.push(&sub), text.push(&scope), text.push(&jti));
        let client_id = client_id.map(|c| text.push(&c));
        let aud = match aud {
            RawAud::One(a) => AudSpans::One([text.push(&a.0)]),
            RawAud::Many(v) => AudSpans::Many(v.iter().map(|a| text.push(&a.0)).collect()),
        };
        Ok(Verified { text: text.0, iss, sub, aud, scope, jti, client_id, exp, nbf: raw.nbf, iat })
    }

    /// Revokes every token with this `jti` until `until` (the token's `exp`; the leeway is added
    /// here). Cached verifications of it are dropped at once.
    pub fn revoke_jti(&self, jti: &str, until: SystemTime) {
        let forget_after = unix_secs(until).saturating_add(self.leeway);
        {
            let mut revoked = self.revoked.lock();
            self.any_revoked.store(true, Ordering::Release);
            let now = unix_secs(SystemTime::now());
            revoked.retain(|_, t| *t > now);
            revoked.insert(jti.to_owned(), forget_after);
        }
        self.cache.lock().remove_jti(jti);
    }

    /// Whether `jti` is revoked at `now`.
    pub fn is_revoked(&self, jti: &str, now: SystemTime) -> bool {
        // Nothing ever revoked (the usual case) is answered without the lock; an empty set
        // without hashing the jti.
        if !self.any_revoked.load(Ordering::Acquire) {
            return false;
        }
        let revoked = self.revoked.lock();
        !revoked.is_empty() && revoked.get(jti).is_some_and(|t| unix_secs(now) < *t)
    }

    /// Cache counters, for metrics and tests.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.lock().map.len(),
        }
    }
}

/// Mints access tokens for one issuer and audience.
#[derive(Debug)]
pub struct TokenIssuer {
    pub issuer: String,
    pub audience: String,
    pub key: SigningKey,
    pub ttl: Duration,
}

impl TokenIssuer {
    pub fn new(issuer: &str, audience: &str, key: SigningKey, ttl: Duration) -> TokenIssuer {
        TokenIssuer { issuer: issuer.into(), audience: audience.into(), key, ttl }
    }

    /// A token for `sub` with `scope` (space-separated), valid from now for the TTL.
    pub fn issue(&self, sub: &str, scope: &str, client_id: Option<&str>) -> Result<(String, Claims), KeyError> {
        self.issue_at(sub, scope, client_id, SystemTime::now())
    }

    /// As [`TokenIssuer::issue`], at a given time.
    pub fn issue_at(
        &self,
        sub: &str,
        scope: &str,
        client_id: Option<&str>,
        now: SystemTime,
    ) -> Result<(String, Claims), KeyError> {
        let now = unix_secs(now);
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| KeyError::Random)?;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: sub.to_owned(),
            aud: vec![self.audience.clone()],
            scope: scope.split_whitespace().collect::<Vec<_>>().join(" "),
            exp: now.saturating_add(self.ttl.as_secs()),
            nbf: Some(now),
            iat: now,
            jti: URL_SAFE_NO_PAD.encode(jti),
            client_id: client_id.map(str::to_owned),
        };
        Ok((self.issue_with(&claims)?, claims))
    }

    /// Signs exactly `claims` (tests mint expired, foreign-audience and other odd tokens with it).
    pub fn issue_with(&self, claims: &Claims) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        self.key.sign_compact(&payload)
    }

    /// Our public keys, for the JWKS endpoint.
    pub fn jwks(&self) -> Jwks {
        Jwks::from_signing_keys(std::slice::from_ref(&self.key))
    }

    /// The [`TrustedIssuer`] that accepts this issuer's tokens.
    pub fn trusted(&self) -> TrustedIssuer {
        TrustedIssuer {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            keys: KeySource::Static(self.jwks()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report
mod tests {
    use super::*;

    const ISS: &str = "https://as.example";
    const AUD: &str = "https://mcp.example/mcp";

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const NOW: u64 = 1_800_000_000;

    fn issuer(alg: Alg) -> TokenIssuer {
        TokenIssuer::new(ISS, AUD, SigningKey::generate(alg).unwrap(), DEFAULT_ACCESS_TOKEN_TTL)
    }

    fn verifier(iss: &TokenIssuer) -> TokenVerifier {
        TokenVerifier::new(vec![iss.trusted()]).unwrap()
    }

    fn claims(iss: &TokenIssuer) -> Claims {
        Claims {
            iss: iss.issuer.clone(),
            sub: "alice".into(),
            aud: vec![AUD.into()],
            scope: "mcp:read mcp:write".into(),
            exp: NOW + 3600,
            nbf: Some(NOW),
            iat: NOW,
            jti: "jti-1".into(),
            client_id: Some("client-1".into()),
        }
    }

    fn b64(v: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    fn header_of(iss: &TokenIssuer) -> serde_json::Value {
        serde_json::json!({"alg": iss.key.alg().as_str(), "kid": iss.key.kid(), "typ": "at+jwt"})
    }

    fn with_header(iss: &TokenIssuer, header: serde_json::Value, c: &Claims) -> String {
        iss.key.sign_compact_with_header(header.to_string().as_bytes(), &serde_json::to_vec(c).unwrap()).unwrap()
    }

    fn with_payload(iss: &TokenIssuer, payload: serde_json::Value) -> String {
        iss.key.sign_compact(payload.to_string().as_bytes()).unwrap()
    }

    fn check(v: &TokenVerifier, token: &str, now: u64) -> Result<Verified, TokenError> {
        v.verify_uncached_sync(token, t(now))
    }

    #[test]
    fn valid_tokens_verify_for_both_algorithms() {
        for alg in [Alg::EdDSA, Alg::ES256] {
            let iss = issuer(alg);
            let v = verifier(&iss);
            let (token, claims) = iss.issue_at("alice", "mcp:read  mcp:write", Some("c"), t(NOW)).unwrap();
            assert_eq!(claims.scope, "mcp:read mcp:write");
            let ok = check(&v, &token, NOW + 10).unwrap();
            assert_eq!(ok.to_claims(), claims);
            assert_eq!(ok.scopes().collect::<Vec<_>>(), ["mcp:read", "mcp:write"]);
            assert!(ok.has_scope("mcp:write") && !ok.has_scope("mcp:admin"));
            assert_eq!(ok.exp(), NOW + 3600);
            // The header is what we promise.
            let header: serde_json::Value =
                serde_json::from_slice(&b64url_decode(token.split('.').next().unwrap()).unwrap()).unwrap();
            assert_eq!(header, header_of(&iss));
        }
    }

    #[test]
    fn signing_keys_persist_with_their_kid_and_debug_redacts() {
        for alg in [Alg::EdDSA, Alg::ES256] {
            let key = SigningKey::generate(alg).unwrap();
            assert_eq!(key.kid().len(), 22);
            let pem = key.to_pkcs8_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let back = SigningKey::from_pkcs8_pem(&pem).unwrap();
            assert_eq!(back.kid(), key.kid());
            assert_eq!(back.alg(), alg);
            assert_eq!(back.public_jwk(), key.public_jwk());
            // A token signed by the reloaded key verifies under the original's JWKS.
            let iss = TokenIssuer::new(ISS, AUD, back, Duration::from_secs(60));
            let v = TokenVerifier::new(vec![TrustedIssuer {
                issuer: ISS.into(),
                audience: AUD.into(),
                keys: KeySource::Static(Jwks::from_signing_keys(std::slice::from_ref(&key))),
            }])
            .unwrap();
            let (token, _) = iss.issue_at("a", "", None, t(NOW)).unwrap();
            check(&v, &token, NOW).unwrap();

            let debug = format!("{key:?} {iss:?}");
            assert!(debug.contains("<redacted>"));
            let secret = key.private_scalar_for_tests();
            assert!(!debug.contains(&format!("{:?}", &secret[..4])));
            assert!(!debug.contains(&hex::encode(&secret)));
        }
        assert_eq!(SigningKey::generate(Alg::HS256).unwrap_err(), KeyError::UnsupportedAlg(Alg::HS256));
        assert_eq!(SigningKey::from_pkcs8_pem("garbage").unwrap_err(), KeyError::Pem);
        let bad = pem_encode(b"not a key");
        assert_eq!(SigningKey::from_pkcs8_pem(&bad).unwrap_err(), KeyError::Parse);
    }

    #[test]
    fn alg_none_is_refused() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let c = claims(&iss);
        let payload = b64(&serde_json::to_vec(&c).unwrap());
        for alg in ["none", "None", "NONE", ""] {
            let header = b64(serde_json::json!({"alg": alg, "kid": iss.key.kid()}).to_string().as_bytes());
            for sig in ["", "AAAA"] {
                let token = format!("{header}.{payload}.{sig}");
                assert_eq!(check(&v, &token, NOW), Err(TokenError::AlgNotAllowed), "{alg} {sig:?}");
            }
        }
    }

    #[test]
    fn hs256_with_the_public_key_as_secret_is_refused() {
        for alg in [Alg::EdDSA, Alg::ES256] {
            let iss = issuer(alg);
            let v = verifier(&iss);
            let header =
                b64(serde_json::json!({"alg":"HS256","kid": iss.key.kid(),"typ":"JWT"}).to_string().as_bytes());
            let payload = b64(&serde_json::to_vec(&claims(&iss)).unwrap());
            let input = format!("{header}.{payload}");
            let jwk_json = serde_json::to_string(&iss.key.public_jwk()).unwrap();
            // Every plausible "public key as HMAC secret" a confused verifier might use.
            for secret in [iss.key.public_key().to_vec(), jwk_json.into_bytes(), iss.key.public_jwk().x.into_bytes()] {
                let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
                let tag = aws_lc_rs::hmac::sign(&k, input.as_bytes());
                let token = format!("{input}.{}", b64(tag.as_ref()));
                assert_eq!(check(&v, &token, NOW), Err(TokenError::AlgNotAllowed));
            }
            // And the other asymmetric algorithm is not interchangeable either.
            let other = if alg == Alg::EdDSA { "ES256" } else { "EdDSA" };
            let token = with_header(&iss, serde_json::json!({"alg": other, "kid": iss.key.kid()}), &claims(&iss));
            assert_eq!(check(&v, &token, NOW), Err(TokenError::AlgNotAllowed));
            let token = with_header(&iss, serde_json::json!({"alg": "RS256", "kid": iss.key.kid()}), &claims(&iss));
            assert_eq!(check(&v, &token, NOW), Err(TokenError::AlgNotAllowed));
        }
    }

    #[test]
    fn explicitly_configured_hmac_secrets_verify_hs256_only() {
        let secret = [9u8; 32];
        let keys = KeySet::new(vec![VerificationKey::hmac("hk", &secret).unwrap()]).unwrap();
        let v = TokenVerifier::new(vec![TrustedIssuer {
            issuer: ISS.into(),
            audience: AUD.into(),
            keys: KeySource::Keys(keys),
        }])
        .unwrap();
        let iss = issuer(Alg::EdDSA);
        let header = b64(br#"{"alg":"HS256","kid":"hk"}"#);
        let payload = b64(&serde_json::to_vec(&claims(&iss)).unwrap());
        let input = format!("{header}.{payload}");
        let tag =
            aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret), input.as_bytes());
        let token = format!("{input}.{}", b64(tag.as_ref()));
        assert_eq!(check(&v, &token, NOW).unwrap().sub(), "alice");
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'Q' } else { 'A' });
        assert!(check(&v, &forged, NOW).is_err());
        // An EdDSA header against the HMAC kid is refused.
        let token = format!("{}.{payload}.{}", b64(br#"{"alg":"EdDSA","kid":"hk"}"#), b64(&[0u8; 64]));
        assert_eq!(check(&v, &token, NOW), Err(TokenError::AlgNotAllowed));
    }

    #[test]
    fn header_rules() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let c = claims(&iss);
        let kid = iss.key.kid();
        let alg = "EdDSA";
        let cases = [
            (serde_json::json!({"alg": alg, "kid": "nope"}), Err(TokenError::UnknownKid)),
            (serde_json::json!({"alg": alg}), Err(TokenError::MissingKid)),
            (serde_json::json!({"alg": alg, "kid": kid, "crit": ["exp"]}), Err(TokenError::CritHeader)),
            (serde_json::json!({"alg": alg, "kid": kid, "crit": null}), Err(TokenError::CritHeader)),
            (serde_json::json!({"alg": alg, "kid": kid, "b64": false}), Err(TokenError::CritHeader)),
            (serde_json::json!({"alg": alg, "kid": kid, "typ": "JOSE"}), Err(TokenError::BadType)),
            (serde_json::json!({"alg": alg, "kid": kid, "typ": "dpop+jwt"}), Err(TokenError::BadType)),
            (serde_json::json!({"kid": kid}), Err(TokenError::Malformed("header"))),
            (serde_json::json!({"alg": 1, "kid": kid}), Err(TokenError::Malformed("header"))),
            (serde_json::json!({"alg": alg, "kid": 5}), Err(TokenError::Malformed("header"))),
            (serde_json::json!([alg, kid]), Err(TokenError::Malformed("header"))),
            (serde_json::json!({"alg": alg, "kid": kid, "typ": "JWT"}), Ok(())),
            (serde_json::json!({"alg": alg, "kid": kid, "typ": "application/at+jwt"}), Ok(())),
            (serde_json::json!({"alg": alg, "kid": kid}), Ok(())),
        ];
        for (header, want) in cases {
            let token = with_header(&iss, header.clone(), &c);
            assert_eq!(check(&v, &token, NOW).map(|_| ()), want, "{header}");
        }
        // Duplicate header members are refused, not resolved last-wins.
        let dup = format!(r#"{{"alg":"none","alg":"{alg}","kid":"{kid}"}}"#);
        let token = iss.key.sign_compact_with_header(dup.as_bytes(), &serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(check(&v, &token, NOW), Err(TokenError::Malformed("header")));
        // Deep nesting is refused before parsing.
        let deep = format!(r#"{{"alg":"{alg}","kid":"{kid}","x":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
        let token = iss.key.sign_compact_with_header(deep.as_bytes(), &serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(check(&v, &token, NOW), Err(TokenError::Malformed("header nests too deep")));
    }

    #[test]
    fn encoding_rules() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let (token, _) = iss.issue_at("alice", "mcp:read", None, t(NOW)).unwrap();
        check(&v, &token, NOW).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let (h, p, s) = (parts[0], parts[1], parts[2]);
        let malformed = |t: &str| matches!(check(&v, t, NOW), Err(TokenError::Malformed(_)));
        // Padding, in any part (where the length allows a pad), or appended.
        assert!(malformed(&format!("{h}=.{p}.{s}")));
        assert!(malformed(&format!("{h}.{p}=.{s}")));
        assert!(malformed(&format!("{h}.{p}.{s}==")));
        // Standard-alphabet characters, whitespace, other bytes.
        for bad in ["+", "/", " ", "\n", "%", "*"] {
            assert!(malformed(&format!("{h}.{p}.{bad}{s}")), "{bad:?}");
            assert!(malformed(&format!("{h}{bad}.{p}.{s}")), "{bad:?}");
        }
        // Extra or missing parts.
        assert!(malformed(&format!("{h}.{p}.{s}.")));
        assert!(malformed(&format!("{h}.{p}.{s}.{s}")));
        assert!(malformed(&format!("{h}.{p}.{s}.{s}.{s}")));
        assert!(malformed(&format!("{h}.{p}")));
        assert!(malformed(&format!("{h}{p}{s}")));
        assert!(malformed(""));
        // JSON serialization is not compact serialization.
        let json = serde_json::json!({"payload": p, "protected": h, "signature": s}).to_string();
        assert!(malformed(&json));
        // Oversized.
        let big = with_payload(&iss, serde_json::json!({"iss": ISS, "pad": "a".repeat(MAX_TOKEN_LEN)}));
        assert_eq!(check(&v, &big, NOW), Err(TokenError::Oversized));
        assert_eq!(check(&v, &"a".repeat(MAX_TOKEN_LEN + 1), NOW), Err(TokenError::Oversized));
    }

    #[test]
    fn signature_must_match_exact_bytes() {
        let iss = issuer(Alg::ES256);
        let v = verifier(&iss);
        let (token, _) = iss.issue_at("alice", "mcp:read", None, t(NOW)).unwrap();
        let (other, _) = iss.issue_at("mallory", "mcp:admin", None, t(NOW)).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let other_parts: Vec<&str> = other.split('.').collect();
        // Payload swapped under a valid signature of another payload.
        let spliced = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
        assert_eq!(check(&v, &spliced, NOW), Err(TokenError::BadSignature));
        // A different key with the same kid.
        let impostor = SigningKey::generate(Alg::ES256).unwrap();
        let header = serde_json::json!({"alg":"ES256","kid": iss.key.kid()}).to_string();
        let forged =
            impostor.sign_compact_with_header(header.as_bytes(), &serde_json::to_vec(&claims(&iss)).unwrap()).unwrap();
        assert_eq!(check(&v, &forged, NOW), Err(TokenError::BadSignature));
        // Empty, truncated and DER-shaped signatures.
        for sig in ["", "AAAA", &b64(&[0u8; 64]), &b64(&[0u8; 72])] {
            let t = format!("{}.{}.{sig}", parts[0], parts[1]);
            assert_eq!(check(&v, &t, NOW), Err(TokenError::BadSignature));
        }
    }

    #[test]
    fn issuer_and_audience() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let mut c = claims(&iss);
        c.iss = "https://evil.example".into();
        assert_eq!(check(&v, &iss.issue_with(&c).unwrap(), NOW), Err(TokenError::UntrustedIssuer));
        let mut c = claims(&iss);
        c.aud = vec!["https://other.example/mcp".into()];
        assert_eq!(check(&v, &iss.issue_with(&c).unwrap(), NOW), Err(TokenError::WrongAudience));
        // Near misses of the canonical URI are different audiences.
        for aud in [format!("{AUD}/"), AUD.to_uppercase(), format!("{AUD}#x"), String::new()] {
            c.aud = vec![aud];
            assert_eq!(check(&v, &iss.issue_with(&c).unwrap(), NOW), Err(TokenError::WrongAudience));
        }
        c.aud = vec!["https://other.example".into(), AUD.into()];
        let token = iss.issue_with(&c).unwrap();
        assert!(token.contains('.'));
        assert_eq!(check(&v, &token, NOW).unwrap().aud().len(), 2);
        let mut p = serde_json::to_value(claims(&iss)).unwrap();
        p.as_object_mut().unwrap().remove("aud");
        assert_eq!(check(&v, &with_payload(&iss, p), NOW), Err(TokenError::WrongAudience));
        let mut p = serde_json::to_value(claims(&iss)).unwrap();
        p.as_object_mut().unwrap().remove("iss");
        assert_eq!(check(&v, &with_payload(&iss, p), NOW), Err(TokenError::InvalidClaim("iss")));

        // A key trusted for issuer A cannot vouch for issuer B's `iss`.
        let b = TokenIssuer::new(
            "https://b.example",
            AUD,
            SigningKey::generate(Alg::EdDSA).unwrap(),
            Duration::from_secs(60),
        );
        let both = TokenVerifier::new(vec![iss.trusted(), b.trusted()]).unwrap();
        let mut c = claims(&iss);
        c.iss = "https://b.example".into();
        assert_eq!(check(&both, &iss.issue_with(&c).unwrap(), NOW), Err(TokenError::UnknownKid));
        let (tb, _) = b.issue_at("bob", "", None, t(NOW)).unwrap();
        assert_eq!(check(&both, &tb, NOW).unwrap().sub(), "bob");
    }

    #[test]
    fn time_rules_with_bounded_leeway() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let c = claims(&iss);
        let token = iss.issue_with(&c).unwrap();
        let exp = c.exp;
        // Valid up to exp + 30 s (exclusive).
        assert!(check(&v, &token, exp - 1).is_ok());
        assert!(check(&v, &token, exp + 29).is_ok());
        assert_eq!(check(&v, &token, exp + 30), Err(TokenError::Expired));
        assert_eq!(check(&v, &token, exp + 100_000), Err(TokenError::Expired));

        // nbf in the future: accepted within the leeway, refused beyond.
        let mut c2 = c.clone();
        c2.nbf = Some(NOW + 30);
        assert!(check(&v, &iss.issue_with(&c2).unwrap(), NOW).is_ok());
        c2.nbf = Some(NOW + 31);
        assert_eq!(check(&v, &iss.issue_with(&c2).unwrap(), NOW), Err(TokenError::NotYetValid));
        c2.nbf = None;
        assert!(check(&v, &iss.issue_with(&c2).unwrap(), NOW).is_ok());

        // iat in the future, and iat after exp.
        let mut c3 = c.clone();
        c3.iat = NOW + 31;
        assert_eq!(check(&v, &iss.issue_with(&c3).unwrap(), NOW), Err(TokenError::IssuedInFuture));
        c3.exp = NOW + 10;
        c3.iat = NOW + 20;
        assert_eq!(check(&v, &iss.issue_with(&c3).unwrap(), NOW + 15), Err(TokenError::InvalidClaim("iat after exp")));

        // Missing or ill-typed exp.
        let mut p = serde_json::to_value(&c).unwrap();
        p.as_object_mut().unwrap().remove("exp");
        assert_eq!(check(&v, &with_payload(&iss, p.clone()), NOW), Err(TokenError::MissingExp));
        p["exp"] = serde_json::Value::Null;
        assert_eq!(check(&v, &with_payload(&iss, p.clone()), NOW), Err(TokenError::MissingExp));
        for bad in [serde_json::json!("1900000000"), serde_json::json!(-1), serde_json::json!(1.9e9)] {
            p["exp"] = bad;
            assert_eq!(check(&v, &with_payload(&iss, p.clone()), NOW), Err(TokenError::Malformed("claims")));
        }

        // Leeway is configurable but bounded.
        let strict = verifier(&iss).with_leeway(Duration::ZERO).unwrap();
        assert_eq!(check(&strict, &token, exp), Err(TokenError::Expired));
        assert!(check(&strict, &token, exp - 1).is_ok());
        assert!(verifier(&iss).with_leeway(MAX_LEEWAY).is_ok());
        assert_eq!(
            verifier(&iss).with_leeway(MAX_LEEWAY + Duration::from_secs(1)).unwrap_err(),
            TokenConfigError::LeewayTooLarge
        );
    }

    #[test]
    fn claims_rules() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let base = serde_json::to_value(claims(&iss)).unwrap();
        for member in ["sub", "jti", "iat"] {
            let mut p = base.clone();
            p.as_object_mut().unwrap().remove(member);
            assert!(matches!(check(&v, &with_payload(&iss, p), NOW), Err(TokenError::InvalidClaim(_))), "{member}");
        }
        let mut p = base.clone();
        p["sub"] = "".into();
        assert_eq!(check(&v, &with_payload(&iss, p), NOW), Err(TokenError::InvalidClaim("sub")));
        let mut p = base.clone();
        p["scope"] = "mcp:read bad\"scope".into();
        assert_eq!(check(&v, &with_payload(&iss, p), NOW), Err(TokenError::InvalidClaim("scope")));
        let mut p = base.clone();
        p.as_object_mut().unwrap().remove("scope");
        assert!(check(&v, &with_payload(&iss, p), NOW).unwrap().scopes().next().is_none());
        // Duplicate claims are refused (no last-wins `exp` or `aud`).
        let text = base.to_string();
        let dup = text.replacen('{', &format!("{{\"exp\":{},", NOW + 999_999), 1);
        let token = iss.key.sign_compact(dup.as_bytes()).unwrap();
        assert_eq!(check(&v, &token, NOW), Err(TokenError::Malformed("claims")));
        // Claims must be a JSON object, and not deep.
        let positional = serde_json::json!([ISS, "alice", AUD, "", NOW + 3600, NOW, NOW, "j", "c"]).to_string();
        for payload in [b"[]".to_vec(), b"\"x\"".to_vec(), b"".to_vec(), vec![0xff, 0xfe], positional.into_bytes()] {
            let token = iss.key.sign_compact(&payload).unwrap();
            assert_eq!(check(&v, &token, NOW), Err(TokenError::Malformed("claims")));
        }
        let mut p = base.clone();
        p["deep"] = serde_json::from_str(&format!("{}1{}", "[".repeat(20), "]".repeat(20))).unwrap();
        assert_eq!(check(&v, &with_payload(&iss, p), NOW), Err(TokenError::Malformed("claims nest too deep")));
        // Extra claims are fine.
        let mut p = base.clone();
        p["cnf"] = serde_json::json!({"jkt": "abc"});
        assert!(check(&v, &with_payload(&iss, p), NOW).is_ok());
    }

    #[test]
    fn config_errors() {
        let iss = issuer(Alg::EdDSA);
        assert!(matches!(
            TokenVerifier::new(vec![iss.trusted(), iss.trusted()]),
            Err(TokenConfigError::DuplicateIssuer(_))
        ));
        let mut empty = iss.trusted();
        empty.audience.clear();
        assert_eq!(TokenVerifier::new(vec![empty]).unwrap_err(), TokenConfigError::Empty);
        assert_eq!(TokenError::Expired.code(), "expired");
    }

    #[test]
    fn cache_hits_never_outlive_exp() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let c = claims(&iss);
        let token = iss.issue_with(&c).unwrap();
        v.verify_sync(&token, t(NOW)).unwrap();
        assert_eq!(v.cache_stats(), CacheStats { hits: 0, misses: 1, entries: 1 });
        v.verify_sync(&token, t(c.exp - 1)).unwrap();
        assert_eq!(v.cache_stats().hits, 1);
        // At exp the cached entry is gone; the full check (with its leeway) decides.
        assert!(v.verify_sync(&token, t(c.exp)).is_ok());
        let stats = v.cache_stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 2, 0));
        assert_eq!(v.verify_sync(&token, t(c.exp + 30)), Err(TokenError::Expired));
        // A token verified within the leeway after exp is never cached.
        assert_eq!(v.cache_stats().entries, 0);
    }

    #[test]
    fn revocation_evicts_and_refuses() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let c = claims(&iss);
        let token = iss.issue_with(&c).unwrap();
        let mut c2 = c.clone();
        c2.jti = "jti-2".into();
        let other = iss.issue_with(&c2).unwrap();
        v.verify_sync(&token, t(NOW)).unwrap();
        v.verify_sync(&other, t(NOW)).unwrap();
        assert_eq!(v.cache_stats().entries, 2);
        v.revoke_jti(&c.jti, t(c.exp));
        assert_eq!(v.cache_stats().entries, 1);
        assert!(v.is_revoked(&c.jti, t(NOW)));
        assert_eq!(v.verify_sync(&token, t(NOW + 1)), Err(TokenError::Revoked));
        assert_eq!(v.verify_uncached_sync(&token, t(NOW + 1)), Err(TokenError::Revoked));
        assert!(v.verify_sync(&other, t(NOW + 1)).is_ok());
        // The revocation lasts as long as the token could verify (exp + leeway), then lapses.
        assert!(v.is_revoked(&c.jti, t(c.exp + 29)));
        assert!(!v.is_revoked(&c.jti, t(c.exp + 30)));
    }

    #[test]
    fn revocation_racing_a_cache_insert_still_wins() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let c = claims(&iss);
        let token = iss.issue_with(&c).unwrap();
        // Verified before the revocation, inserted after it (what a race would produce).
        let verified = v.verify_uncached_sync(&token, t(NOW)).unwrap();
        v.revoke_jti(&c.jti, t(c.exp));
        v.cache.lock().insert(token_hash(&token), &verified, NOW);
        assert_eq!(v.verify_sync(&token, t(NOW)), Err(TokenError::Revoked));
    }

    #[test]
    fn cache_is_bounded_evicting_expired_then_oldest() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss).with_cache_capacity(3);
        let mint = |jti: &str, exp: u64| {
            let mut c = claims(&iss);
            c.jti = jti.into();
            c.exp = exp;
            iss.issue_with(&c).unwrap()
        };
        let short = mint("short", NOW + 10);
        let a = mint("a", NOW + 1000);
        let b = mint("b", NOW + 1000);
        let d = mint("d", NOW + 1000);
        let e = mint("e", NOW + 1000);
        for tok in [&short, &a, &b] {
            v.verify_sync(tok, t(NOW)).unwrap();
        }
        // Full; `short` has expired by now, so it goes rather than the oldest live entry.
        v.verify_sync(&d, t(NOW + 20)).unwrap();
        let hits = v.cache_stats().hits;
        v.verify_sync(&a, t(NOW + 20)).unwrap();
        assert_eq!(v.cache_stats().hits, hits + 1, "a must still be cached");
        // Full of live entries: the oldest insertion (a) goes.
        v.verify_sync(&e, t(NOW + 20)).unwrap();
        assert_eq!(v.cache_stats().entries, 3);
        let hits = v.cache_stats().hits;
        v.verify_sync(&b, t(NOW + 20)).unwrap();
        v.verify_sync(&d, t(NOW + 20)).unwrap();
        v.verify_sync(&e, t(NOW + 20)).unwrap();
        assert_eq!(v.cache_stats().hits, hits + 3);
        let misses = v.cache_stats().misses;
        v.verify_sync(&a, t(NOW + 20)).unwrap();
        assert_eq!(v.cache_stats().misses, misses + 1, "a was evicted");

        let off = verifier(&iss).with_cache_capacity(0);
        off.verify_sync(&a, t(NOW)).unwrap();
        off.verify_sync(&a, t(NOW)).unwrap();
        assert_eq!(off.cache_stats(), CacheStats { hits: 0, misses: 2, entries: 0 });
    }

    #[test]
    fn failures_are_not_cached() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let mut c = claims(&iss);
        c.aud = vec!["https://other".into()];
        let token = iss.issue_with(&c).unwrap();
        assert!(v.verify_sync(&token, t(NOW)).is_err());
        assert_eq!(v.cache_stats().entries, 0);
    }

    #[test]
    fn verify_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let fut = v.verify("x", SystemTime::now());
        assert_send(&fut);
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<TokenVerifier>();
        assert_sync::<TokenIssuer>();
    }

    /// Every single-byte replacement, deletion and insertion of `text`, and `text` itself.
    fn variants(text: &str) -> Vec<Vec<u8>> {
        const BYTES: &[u8] = b" \"\\019-.eE,:{}[]nx\x01\x7f\xc3";
        let bytes = text.as_bytes();
        let mut out = vec![bytes.to_vec()];
        for i in 0..=bytes.len() {
            for &b in BYTES {
                if i < bytes.len() {
                    let mut v = bytes.to_vec();
                    v[i] = b;
                    out.push(v);
                }
                let mut v = bytes.to_vec();
                v.insert(i, b);
                out.push(v);
            }
            if i < bytes.len() {
                let mut v = bytes.to_vec();
                v.remove(i);
                out.push(v);
            }
        }
        out
    }

    type Summary = (Vec<Option<String>>, Vec<Option<u64>>, Option<(bool, Vec<String>)>);

    fn summary(r: &RawClaims<'_>) -> Summary {
        let s = |v: &Option<Str<'_>>| v.as_ref().map(|v| v.0.to_string());
        let aud = r.aud.as_ref().map(|a| match a {
            RawAud::One(a) => (false, vec![a.0.to_string()]),
            RawAud::Many(v) => (true, v.iter().map(|a| a.0.to_string()).collect()),
        });
        (vec![s(&r.iss), s(&r.sub), s(&r.scope), s(&r.jti), s(&r.client_id)], vec![r.exp, r.nbf, r.iat], aud)
    }

    /// The plain-claims shortcut must never accept what serde refuses, nor read other values.
    #[test]
    fn plain_claims_agree_with_serde() {
        let iss = issuer(Alg::EdDSA);
        let mut c = claims(&iss);
        let one = serde_json::to_string(&c).unwrap();
        c.aud = vec!["https://a.example".into(), AUD.into()];
        c.nbf = None;
        c.client_id = None;
        let many = serde_json::to_string(&c).unwrap();
        let (mut plain, mut total) = (0, 0);
        for text in [one.as_str(), many.as_str(), r#"{"aud":[],"exp":0}"#, "{}"] {
            for v in variants(text) {
                total += 1;
                let Some(fast) = plain_claims(&v) else { continue };
                plain += 1;
                let slow: RawClaims<'_> = serde_json::from_slice(&v)
                    .unwrap_or_else(|e| panic!("serde refuses {:?}: {e}", String::from_utf8_lossy(&v)));
                assert_eq!(summary(&fast), summary(&slow), "{:?}", String::from_utf8_lossy(&v));
            }
        }
        assert!(plain > 1_000 && plain < total, "{plain} of {total} took the shortcut");
        assert!(plain_claims(one.as_bytes()).is_some(), "our own claims take the shortcut");
    }

    /// Likewise for the plain-header shortcut.
    #[test]
    fn plain_header_agrees_with_serde() {
        let (mut plain, mut total) = (0, 0);
        for text in [r#"{"alg":"EdDSA","kid":"k-1","typ":"at+jwt"}"#, r#"{"alg":"HS256","kid":"a"}"#] {
            for v in variants(text) {
                total += 1;
                let Some((alg, kid, typ)) = plain_header(&v) else { continue };
                plain += 1;
                let slow: Header<'_> = serde_json::from_slice(&v)
                    .unwrap_or_else(|e| panic!("serde refuses {:?}: {e}", String::from_utf8_lossy(&v)));
                assert!(!slow.crit && !slow.b64);
                assert_eq!(
                    (alg, Some(kid), typ),
                    (&*slow.alg.0, slow.kid.as_ref().map(|k| &*k.0), slow.typ.as_ref().map(|t| &*t.0)),
                    "{:?}",
                    String::from_utf8_lossy(&v)
                );
            }
        }
        assert!(plain > 100 && plain < total, "{plain} of {total} took the shortcut");
    }

    /// Claims the shortcut leaves to serde (escapes, non-ASCII, whitespace, extra members) verify
    /// and read back unescaped.
    #[test]
    fn escaped_claims_verify_through_the_full_parser() {
        let iss = issuer(Alg::EdDSA);
        let v = verifier(&iss);
        let mut p = serde_json::to_value(claims(&iss)).unwrap();
        p["sub"] = "al\"i\\ce\u{e9}".into();
        p["aud"] = serde_json::json!(["x\ty", AUD]);
        p["jti"] = "j\u{1}".into();
        p["extra"] = serde_json::json!({"nested": [1, 2]});
        let ok = check(&v, &with_payload(&iss, p), NOW).unwrap();
        assert_eq!((ok.sub(), ok.jti(), ok.iss()), ("al\"i\\ce\u{e9}", "j\u{1}", ISS));
        assert_eq!(ok.aud().collect::<Vec<_>>(), ["x\ty", AUD]);
        assert_eq!(
            (ok.scope(), ok.client_id(), ok.nbf(), ok.iat()),
            ("mcp:read mcp:write", Some("client-1"), Some(NOW), NOW)
        );
        // Whitespace in the payload takes the full parser too.
        let spaced = serde_json::to_string_pretty(&claims(&iss)).unwrap();
        assert!(plain_claims(spaced.as_bytes()).is_none());
        let token = iss.key.sign_compact(spaced.as_bytes()).unwrap();
        assert_eq!(check(&v, &token, NOW).unwrap().to_claims(), claims(&iss));
    }

    #[test]
    fn byte_search() {
        let text = b"0123456789abcdef.ghijklmnopqrstuvwxyz.0123";
        assert_eq!(find_byte(text, b'.'), Some(16));
        assert_eq!(find_byte(&text[17..], b'.'), Some(20));
        assert_eq!(find_byte(b"abc", b'.'), None);
        assert_eq!(find_byte(b"", b'.'), None);
        for i in 0..40 {
            let mut v = vec![b'a'; 40];
            v[i] = b'.';
            assert_eq!(find_byte(&v, b'.'), Some(i));
            for bad in ["\"", "\\", "\u{1f}", "\u{7f}", "\u{e9}"] {
                let s = format!("{}{bad}{}\"", "a".repeat(i), "b".repeat(40 - i));
                match plain_str(&s) {
                    Some((body, rest)) => {
                        assert!(bad == "\"" && body.len() == i && rest.len() == 41 - i, "{i} {bad:?}")
                    }
                    None => assert_ne!(bad, "\"", "{i}"),
                }
            }
        }
    }

    #[test]
    fn json_depth_scanner() {
        assert!(json_depth_within(b"{}", 1));
        assert!(!json_depth_within(b"{\"a\":[]}", 1));
        assert!(json_depth_within(b"{\"a\":\"[[[[\"}", 1));
        assert!(json_depth_within(br#"{"a":"\"[[[["}"#, 1));
        assert!(!json_depth_within(&[b'['; 17], 16));
    }

    #[tokio::test]
    async fn remote_issuer_end_to_end_with_rotation() {
        use crate::auth::jwks::RemoteJwksConfig;
        use axum::routing::get;
        let k1 = SigningKey::generate(Alg::EdDSA).unwrap();
        let k2 = SigningKey::generate(Alg::ES256).unwrap();
        let published = Arc::new(parking_lot::Mutex::new(Jwks::from_signing_keys(std::slice::from_ref(&k1)).to_json()));
        let hits = Arc::new(AtomicU64::new(0));
        let (p, h) = (published.clone(), hits.clone());
        let app = axum::Router::new().route(
            "/jwks",
            get(move || {
                let (p, h) = (p.clone(), h.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    p.lock().clone()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let cfg = RemoteJwksConfig { min_refresh_interval: Duration::from_millis(200), ..RemoteJwksConfig::default() };
        let remote = RemoteJwks::with_config(&format!("http://{addr}/jwks"), cfg).unwrap();
        let v = TokenVerifier::new(vec![TrustedIssuer {
            issuer: ISS.into(),
            audience: AUD.into(),
            keys: KeySource::Remote(Arc::new(remote)),
        }])
        .unwrap();
        let i1 = TokenIssuer::new(ISS, AUD, k1, Duration::from_secs(600));
        let i2 = TokenIssuer::new(ISS, AUD, k2, Duration::from_secs(600));
        let now = SystemTime::now();

        // No keys yet: the sync path refuses without fetching.
        let (t1, _) = i1.issue_at("alice", "mcp:read", None, now).unwrap();
        assert_eq!(v.verify_uncached_sync(&t1, now), Err(TokenError::KeysUnavailable));
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        assert_eq!(v.verify(&t1, now).await.unwrap().sub(), "alice");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert!(v.verify_uncached_sync(&t1, now).is_ok());

        // The issuer rotates to k2. The first unknown kid right away is rate limited.
        *published.lock() = Jwks { keys: vec![i1.key.public_jwk(), i2.key.public_jwk()] }.to_json();
        let (t2, _) = i2.issue_at("bob", "", None, now).unwrap();
        assert_eq!(v.verify(&t2, now).await, Err(TokenError::UnknownKid));
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(v.verify(&t2, now).await.unwrap().sub(), "bob");
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        // Made-up kids cannot force more fetches.
        let forged = format!(
            "{}.{}.{}",
            b64(br#"{"alg":"EdDSA","kid":"made-up"}"#),
            t2.split('.').nth(1).unwrap(),
            b64(&[0; 64])
        );
        for _ in 0..20 {
            assert_eq!(v.verify(&forged, now).await, Err(TokenError::UnknownKid));
        }
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }
}
