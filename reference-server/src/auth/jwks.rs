//! JSON Web Key Sets: publishing our public keys, parsing other issuers' keys strictly, and
//! fetching remote sets with timeouts, a size cap, a cache and a rate-limited refresh.
//!
//! Only two public key types exist here: OKP Ed25519 (`EdDSA`) and EC P-256 (`ES256`). A key's
//! type fixes its algorithm; a token header never chooses it. HMAC secrets (`HS256`) are
//! verification keys too, but only when configured explicitly ([`VerificationKey::hmac`],
//! [`KeySet::from_secret_jwks`]); a public JWK set that carries symmetric or private material
//! is refused outright.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::{Host, Url};

use super::jwt::{Alg, MAX_JSON_DEPTH, SigningKey, json_depth_within};

/// More keys than any real issuer publishes; bounds work per fetched document.
pub const MAX_JWKS_KEYS: usize = 64;
/// Longest `kid` accepted (ours are 22 characters).
pub const MAX_KID_LEN: usize = 128;
/// Shortest HMAC secret accepted: RFC 7518 §3.2 asks for at least the hash output size.
pub const MIN_HMAC_SECRET_LEN: usize = 32;

/// Why a key or key set was refused or could not be fetched. No variant carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("JWK set is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    #[error("key type or curve not supported")]
    Unsupported,
    #[error("key is not meant for signature verification")]
    NotForSigning,
    #[error("public JWK set carries private or symmetric key material")]
    PrivateMaterial,
    #[error("duplicate kid in key set")]
    DuplicateKid,
    #[error("JWKS URL refused: {0}")]
    Url(&'static str),
    #[error("JWKS fetch failed: {0}")]
    Fetch(String),
    #[error("JWKS endpoint answered HTTP {0}")]
    Status(u16),
    #[error("JWKS document exceeds the size limit")]
    TooLarge,
    #[error("JWKS fetch is rate limited and no keys are cached")]
    RateLimited,
}

/// One public JSON Web Key (RFC 7517) of a supported type. Serializes only public members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
}

/// A JWK set as published at a `jwks_uri`. After [`Jwks::parse`] it holds only signature keys
/// of supported types, each validated; keys for encryption or of other types are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl<'de> Deserialize<'de> for Jwks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Jwks::from_value(&value).map_err(serde::de::Error::custom)
    }
}

impl Jwks {
    /// The public halves of `keys`, for our JWKS endpoint.
    pub fn from_signing_keys(keys: &[SigningKey]) -> Jwks {
        Jwks { keys: keys.iter().map(SigningKey::public_jwk).collect() }
    }

    /// Parses and validates a JWK set document. Refuses: anything but `{"keys":[...]}`, more than
    /// [`MAX_JWKS_KEYS`] keys, private or symmetric members (`d`, `p`, `q`, `k`, ...), malformed
    /// keys of a supported type (wrong length, off-curve point, `alg` that does not match the
    /// curve), and duplicate `kid`s. Skips: keys marked for encryption and unsupported types.
    pub fn parse(bytes: &[u8]) -> Result<Jwks, JwksError> {
        if !json_depth_within(bytes, MAX_JSON_DEPTH) {
            return Err(JwksError::Json("nesting too deep".into()));
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| JwksError::Json(e.to_string()))?;
        Jwks::from_value(&value)
    }

    /// As [`Jwks::parse`], from an already parsed JSON value.
    pub fn from_value(value: &Value) -> Result<Jwks, JwksError> {
        let keys = value
            .as_object()
            .and_then(|o| o.get("keys"))
            .and_then(Value::as_array)
            .ok_or_else(|| JwksError::Json("expected an object with a \"keys\" array".into()))?;
        if keys.len() > MAX_JWKS_KEYS {
            return Err(JwksError::Json("too many keys".into()));
        }
        let mut out: Vec<Jwk> = Vec::new();
        for key in keys {
            let obj = key.as_object().ok_or_else(|| JwksError::Json("key is not an object".into()))?;
            const SECRET_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
            if SECRET_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
                return Err(JwksError::PrivateMaterial);
            }
            if !obj.get("kty").is_some_and(Value::is_string) {
                return Err(JwksError::InvalidKey("kty missing"));
            }
            if !signature_use(obj.get("use"), obj.get("key_ops"))? {
                continue;
            }
            let kty = obj.get("kty").and_then(Value::as_str).unwrap_or_default();
            let crv = obj.get("crv").and_then(Value::as_str);
            let supported = matches!((kty, crv), ("OKP", Some("Ed25519")) | ("EC", Some("P-256")));
            if !supported {
                continue;
            }
            let jwk: Jwk = serde_json::from_value(key.clone()).map_err(|e| JwksError::Json(e.to_string()))?;
            VerificationKey::from_jwk(&jwk)?;
            if out.iter().any(|k| k.kid == jwk.kid) {
                return Err(JwksError::DuplicateKid);
            }
            out.push(jwk);
        }
        Ok(Jwks { keys: out })
    }

    /// The JSON document (`{"keys":[...]}`).
    pub fn to_json(&self) -> String {
        // Serializing plain strings and vectors cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"keys\":[]}"))
    }
}

/// `use` and `key_ops` say whether a key may verify signatures: absent means yes; `use` other
/// than `sig`, or `key_ops` without `verify`, means no. Ill-typed members are errors.
fn signature_use(use_: Option<&Value>, key_ops: Option<&Value>) -> Result<bool, JwksError> {
    let use_ok = match use_ {
        None => true,
        Some(Value::String(u)) => u == "sig",
        Some(_) => return Err(JwksError::InvalidKey("use is not a string")),
    };
    let ops_ok = match key_ops {
        None => true,
        Some(Value::Array(ops)) => {
            if !ops.iter().all(Value::is_string) {
                return Err(JwksError::InvalidKey("key_ops is not an array of strings"));
            }
            ops.iter().any(|o| o == "verify")
        }
        Some(_) => return Err(JwksError::InvalidKey("key_ops is not an array")),
    };
    Ok(use_ok && ops_ok)
}

/// Strict base64url: the URL-safe alphabet only, no padding, no whitespace, zero trailing bits.
pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= MAX_KID_LEN && kid.bytes().all(|b| (0x21..0x7f).contains(&b))
}

enum Material {
    Ed25519(ParsedPublicKey),
    P256(ParsedPublicKey),
    Hmac(Box<hmac::Key>),
}

/// A key that verifies signatures of exactly one algorithm, fixed when the key was made.
pub struct VerificationKey {
    kid: String,
    alg: Alg,
    material: Material,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // HMAC keys are secrets; public keys are just noise in logs. Name the key only.
        f.debug_struct("VerificationKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// A public key from a JWK: OKP Ed25519 (32-byte `x`, no `y`) or EC P-256 (32-byte `x` and
    /// `y`, a point on the curve). `alg`, if present, must be the curve's algorithm; `use`, if
    /// present, must be `sig`; `key_ops`, if present, must include `verify`.
    pub fn from_jwk(jwk: &Jwk) -> Result<VerificationKey, JwksError> {
        if !valid_kid(&jwk.kid) {
            return Err(JwksError::InvalidKey("kid"));
        }
        if jwk.use_.as_deref().is_some_and(|u| u != "sig")
            || jwk.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|o| o == "verify"))
        {
            return Err(JwksError::NotForSigning);
        }
        let x = b64url_decode(&jwk.x).ok_or(JwksError::InvalidKey("x is not base64url"))?;
        let (alg, material) = match (jwk.kty.as_str(), jwk.crv.as_str()) {
            ("OKP", "Ed25519") => {
                if jwk.y.is_some() {
                    return Err(JwksError::InvalidKey("OKP key with y"));
                }
                if x.len() != 32 {
                    return Err(JwksError::InvalidKey("Ed25519 x must be 32 bytes"));
                }
                let key = ParsedPublicKey::new(&ED25519, &x).map_err(|_| JwksError::InvalidKey("Ed25519 x"))?;
                (Alg::EdDSA, Material::Ed25519(key))
            }
            ("EC", "P-256") => {
                let y = jwk.y.as_deref().ok_or(JwksError::InvalidKey("EC key without y"))?;
                let y = b64url_decode(y).ok_or(JwksError::InvalidKey("y is not base64url"))?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(JwksError::InvalidKey("P-256 coordinates must be 32 bytes"));
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                    .map_err(|_| JwksError::InvalidKey("P-256 point is not on the curve"))?;
                (Alg::ES256, Material::P256(key))
            }
            _ => return Err(JwksError::Unsupported),
        };
        if let Some(declared) = &jwk.alg
            && declared != alg.as_str()
        {
            return Err(JwksError::InvalidKey("alg does not match the key type"));
        }
        Ok(VerificationKey { kid: jwk.kid.clone(), alg, material })
    }

    /// An HMAC-SHA256 secret for `HS256`, configured explicitly. Only this constructor makes an
    /// HS256 key, so a public key can never be turned into an HMAC secret by a token header.
    pub fn hmac(kid: &str, secret: &[u8]) -> Result<VerificationKey, JwksError> {
        if !valid_kid(kid) {
            return Err(JwksError::InvalidKey("kid"));
        }
        if secret.len() < MIN_HMAC_SECRET_LEN {
            return Err(JwksError::InvalidKey("HMAC secret shorter than 32 bytes"));
        }
        Ok(VerificationKey {
            kid: kid.to_owned(),
            alg: Alg::HS256,
            material: Material::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret))),
        })
    }

    /// An HS256 secret from an `oct` JWK (`{"kty":"oct","k":...,"kid":...}`): `alg`, if present,
    /// must be `HS256`; `use`/`key_ops` must allow signing; `k` must be at least 32 bytes.
    pub fn from_oct_jwk(value: &Value) -> Result<VerificationKey, JwksError> {
        let obj = value.as_object().ok_or(JwksError::InvalidKey("key is not an object"))?;
        if obj.get("kty").and_then(Value::as_str) != Some("oct") {
            return Err(JwksError::Unsupported);
        }
        match obj.get("alg") {
            None => {}
            Some(Value::String(a)) if a == "HS256" => {}
            Some(Value::String(_)) => return Err(JwksError::Unsupported),
            Some(_) => return Err(JwksError::InvalidKey("alg is not a string")),
        }
        if !signature_use(obj.get("use"), obj.get("key_ops"))? {
            return Err(JwksError::NotForSigning);
        }
        let kid = obj.get("kid").and_then(Value::as_str).ok_or(JwksError::InvalidKey("kid"))?;
        let k = obj.get("k").and_then(Value::as_str).ok_or(JwksError::InvalidKey("k missing"))?;
        let secret = b64url_decode(k).ok_or(JwksError::InvalidKey("k is not base64url"))?;
        VerificationKey::hmac(kid, &secret)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Whether `signature` is this key's signature over `message`. Signature lengths are fixed
    /// (64 bytes for EdDSA and ES256, 32 for HS256); ES256 is the JWS `r || s` form, never DER.
    pub fn verify_raw(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Ed25519(key) | Material::P256(key) => {
                signature.len() == 64 && key.verify_sig(message, signature).is_ok()
            }
            // `hmac::verify` compares in constant time.
            Material::Hmac(key) => signature.len() == 32 && hmac::verify(key, message, signature).is_ok(),
        }
    }
}

/// The keys one issuer signs with, by `kid`.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
}

impl KeySet {
    /// A set of keys with distinct `kid`s.
    pub fn new(keys: Vec<VerificationKey>) -> Result<KeySet, JwksError> {
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.kid == k.kid) {
                return Err(JwksError::DuplicateKid);
            }
        }
        Ok(KeySet { keys })
    }

    /// The verification keys of a validated JWK set.
    pub fn from_jwks(jwks: &Jwks) -> Result<KeySet, JwksError> {
        KeySet::new(jwks.keys.iter().map(VerificationKey::from_jwk).collect::<Result<_, _>>()?)
    }

    /// A set of explicitly configured HMAC secrets given as a JWK set of `oct` keys. Anything
    /// else in the set (a public key alongside the secrets, an AES key) refuses the whole set:
    /// mixing symmetric and asymmetric keys under one issuer invites algorithm confusion.
    pub fn from_secret_jwks(value: &Value) -> Result<KeySet, JwksError> {
        let keys = value
            .as_object()
            .and_then(|o| o.get("keys"))
            .and_then(Value::as_array)
            .ok_or_else(|| JwksError::Json("expected an object with a \"keys\" array".into()))?;
        if keys.len() > MAX_JWKS_KEYS {
            return Err(JwksError::Json("too many keys".into()));
        }
        KeySet::new(keys.iter().map(VerificationKey::from_oct_jwk).collect::<Result<_, _>>()?)
    }

    pub fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Limits for fetching a remote JWK set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteJwksConfig {
    /// Whole-request timeout (connect, headers and body).
    pub timeout: Duration,
    /// Largest document accepted.
    pub max_body: usize,
    /// How long fetched keys are used before they are fetched again.
    pub ttl: Duration,
    /// Fetches (for an unknown `kid`, an expired cache or a retry after failure) happen at most
    /// this often, so a flood of tokens with made-up `kid`s cannot turn us into a flood of fetches.
    pub min_refresh_interval: Duration,
    /// When a refresh fails, keys this much older than their TTL are still used; past it the
    /// issuer's tokens are refused (fail closed).
    pub max_stale: Duration,
}

impl Default for RemoteJwksConfig {
    fn default() -> Self {
        RemoteJwksConfig {
            timeout: Duration::from_secs(5),
            max_body: 64 * 1024,
            ttl: Duration::from_secs(600),
            min_refresh_interval: Duration::from_secs(30),
            max_stale: Duration::from_secs(3600),
        }
    }
}

#[derive(Default)]
struct RemoteState {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    fetches: u64,
}

/// An issuer's JWK set fetched over HTTPS (or HTTP on loopback, for tests), cached for
/// [`RemoteJwksConfig::ttl`] and refreshed at most once per
/// [`RemoteJwksConfig::min_refresh_interval`]. Redirects are not followed.
pub struct RemoteJwks {
    url: Url,
    client: reqwest::Client,
    config: RemoteJwksConfig,
    state: parking_lot::Mutex<RemoteState>,
    /// One fetch at a time; waiters reuse its result.
    fetch_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks").field("url", &self.url.as_str()).field("config", &self.config).finish()
    }
}

/// `https` anywhere, `http` only to a loopback host; no credentials in the URL.
pub fn check_jwks_url(url: &Url) -> Result<(), JwksError> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(JwksError::Url("credentials in URL"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(JwksError::Url("http is allowed only on loopback")),
        _ => Err(JwksError::Url("scheme must be https")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl RemoteJwks {
    /// A fetcher for `url` with the default limits.
    pub fn new(url: &str) -> Result<RemoteJwks, JwksError> {
        RemoteJwks::with_config(url, RemoteJwksConfig::default())
    }

    pub fn with_config(url: &str, config: RemoteJwksConfig) -> Result<RemoteJwks, JwksError> {
        let url = Url::parse(url).map_err(|_| JwksError::Url("not an absolute URL"))?;
        check_jwks_url(&url)?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(url.scheme() == "https");
        if url.scheme() == "http" {
            // Loopback only: a proxy from the environment must not see (or redirect) this traffic.
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| JwksError::Fetch(e.to_string()))?;
        Ok(RemoteJwks {
            url,
            client,
            config,
            state: parking_lot::Mutex::new(RemoteState::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn config(&self) -> &RemoteJwksConfig {
        &self.config
    }

    /// How many fetches were attempted so far (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.state.lock().fetches
    }

    /// Keys held right now, if they are within TTL plus the stale allowance. Never fetches.
    pub fn cached(&self) -> Option<Arc<KeySet>> {
        let st = self.state.lock();
        let fetched = st.fetched_at?;
        (fetched.elapsed() < self.config.ttl + self.config.max_stale).then(|| st.keys.clone()).flatten()
    }

    fn fresh(&self) -> Option<Arc<KeySet>> {
        let st = self.state.lock();
        let fetched = st.fetched_at?;
        (fetched.elapsed() < self.config.ttl).then(|| st.keys.clone()).flatten()
    }

    fn may_attempt(&self) -> bool {
        self.state.lock().last_attempt.is_none_or(|t| t.elapsed() >= self.config.min_refresh_interval)
    }

    /// Keys for verification: the cached set while fresh, else a fetch (rate limited; on failure
    /// the stale set within [`RemoteJwksConfig::max_stale`], else the error).
    pub async fn keys(&self) -> Result<Arc<KeySet>, JwksError> {
        if let Some(keys) = self.fresh() {
            return Ok(keys);
        }
        let _guard = self.fetch_lock.lock().await;
        if let Some(keys) = self.fresh() {
            return Ok(keys);
        }
        if !self.may_attempt() {
            return self.cached().ok_or(JwksError::RateLimited);
        }
        match self.fetch_and_store().await {
            Ok(keys) => Ok(keys),
            Err(e) => self.cached().ok_or(e),
        }
    }

    /// Called when a token names a `kid` we do not hold: fetches again unless a fetch happened
    /// within [`RemoteJwksConfig::min_refresh_interval`]. Returns the keys held afterwards.
    pub async fn refresh_for_unknown_kid(&self) -> Result<Arc<KeySet>, JwksError> {
        let before = self.state.lock().fetched_at;
        let _guard = self.fetch_lock.lock().await;
        // Someone else refreshed while we waited: use their result.
        let refreshed_meanwhile = self.state.lock().fetched_at != before;
        if refreshed_meanwhile && let Some(keys) = self.cached() {
            return Ok(keys);
        }
        if !self.may_attempt() {
            return self.cached().ok_or(JwksError::RateLimited);
        }
        match self.fetch_and_store().await {
            Ok(keys) => Ok(keys),
            Err(e) => self.cached().ok_or(e),
        }
    }

    async fn fetch_and_store(&self) -> Result<Arc<KeySet>, JwksError> {
        {
            let mut st = self.state.lock();
            st.last_attempt = Some(Instant::now());
            st.fetches += 1;
        }
        let jwks = self.fetch().await?;
        let keys = Arc::new(KeySet::from_jwks(&jwks)?);
        let mut st = self.state.lock();
        st.keys = Some(keys.clone());
        st.fetched_at = Some(Instant::now());
        Ok(keys)
    }

    /// One GET of the JWK set: 200 only, body at most [`RemoteJwksConfig::max_body`] bytes,
    /// validated by [`Jwks::parse`]. Does not touch the cache.
    pub async fn fetch(&self) -> Result<Jwks, JwksError> {
        let max = self.config.max_body;
        let work = async {
            let mut resp = self
                .client
                .get(self.url.clone())
                .header(http::header::ACCEPT, "application/jwk-set+json, application/json")
                .send()
                .await
                .map_err(|e| JwksError::Fetch(e.without_url().to_string()))?;
            if resp.status() != http::StatusCode::OK {
                return Err(JwksError::Status(resp.status().as_u16()));
            }
            if resp.content_length().is_some_and(|n| n > max as u64) {
                return Err(JwksError::TooLarge);
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| JwksError::Fetch(e.without_url().to_string()))? {
                if body.len() + chunk.len() > max {
                    return Err(JwksError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Jwks::parse(&body)
        };
        // The client timeout covers the body too; this is a second fence around the whole fetch.
        tokio::time::timeout(self.config.timeout, work).await.map_err(|_| JwksError::Fetch("timed out".into()))?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn ed_jwk() -> Jwk {
        SigningKey::generate(Alg::EdDSA).map(|k| k.public_jwk()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn es_jwk() -> Jwk {
        SigningKey::generate(Alg::ES256).map(|k| k.public_jwk()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn published_set_has_only_public_members() {
        let keys = [SigningKey::generate(Alg::EdDSA).unwrap(), SigningKey::generate(Alg::ES256).unwrap()];
        let json = Jwks::from_signing_keys(&keys).to_json();
        let value: Value = serde_json::from_str(&json).unwrap();
        for key in value["keys"].as_array().unwrap() {
            for member in key.as_object().unwrap().keys() {
                assert!(["kty", "crv", "x", "y", "kid", "alg", "use"].contains(&member.as_str()), "{member}");
            }
        }
        // Neither private scalar appears anywhere in the document, in any common encoding.
        for key in &keys {
            let secret = key.private_scalar_for_tests();
            assert_eq!(secret.len(), 32);
            for enc in [
                URL_SAFE_NO_PAD.encode(&secret),
                base64::engine::general_purpose::STANDARD.encode(&secret),
                hex::encode(&secret),
            ] {
                assert!(!json.contains(&enc[..20]));
            }
        }
        // And it round-trips through the strict parser.
        let parsed = Jwks::parse(json.as_bytes()).unwrap();
        assert_eq!(parsed, Jwks::from_signing_keys(&keys));
        assert_eq!(KeySet::from_jwks(&parsed).unwrap().len(), 2);
    }

    #[test]
    fn parse_rejects_malformed_supported_keys() {
        let good = ed_jwk();
        let mut short = good.clone();
        short.x = URL_SAFE_NO_PAD.encode([1u8; 31]);
        let mut padded = good.clone();
        padded.x.push('=');
        let mut with_y = good.clone();
        with_y.y = Some(good.x.clone());
        let mut wrong_alg = good.clone();
        wrong_alg.alg = Some("ES256".into());
        let mut bad_kid = good.clone();
        bad_kid.kid = String::new();
        let ec = es_jwk();
        let mut off_curve = ec.clone();
        off_curve.y = Some(URL_SAFE_NO_PAD.encode([7u8; 32]));
        let mut no_y = ec.clone();
        no_y.y = None;
        let mut ec_alg = ec.clone();
        ec_alg.alg = Some("ES384".into());
        for (name, key) in [
            ("short", short),
            ("padded", padded),
            ("with_y", with_y),
            ("wrong_alg", wrong_alg),
            ("bad_kid", bad_kid),
            ("off_curve", off_curve),
            ("no_y", no_y),
            ("ec_alg", ec_alg),
        ] {
            let doc = serde_json::to_vec(&Jwks { keys: vec![key] }).unwrap();
            assert!(Jwks::parse(&doc).is_err(), "{name} accepted");
        }
    }

    #[test]
    fn parse_refuses_private_material_and_duplicates_and_skips_others() {
        let ed = ed_jwk();
        let mut v = serde_json::to_value(&ed).unwrap();
        v["d"] = Value::String(URL_SAFE_NO_PAD.encode([1u8; 32]));
        assert_eq!(Jwks::from_value(&serde_json::json!({ "keys": [v] })), Err(JwksError::PrivateMaterial));
        let oct = serde_json::json!({"kty":"oct","k":"AAAA","kid":"s"});
        assert_eq!(Jwks::from_value(&serde_json::json!({ "keys": [oct] })), Err(JwksError::PrivateMaterial));
        let dup = serde_json::json!({ "keys": [ed.clone(), ed.clone()] });
        assert_eq!(Jwks::from_value(&dup), Err(JwksError::DuplicateKid));

        let mut enc = serde_json::to_value(es_jwk()).unwrap();
        enc["use"] = "enc".into();
        let rsa = serde_json::json!({"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"});
        let p384 = serde_json::json!({"kty":"EC","crv":"P-384","x":"AA","y":"AA","kid":"p"});
        let x25519 = serde_json::json!({"kty":"OKP","crv":"X25519","x":"AA","kid":"x"});
        let set = Jwks::from_value(&serde_json::json!({ "keys": [enc, rsa, p384, x25519, ed] })).unwrap();
        assert_eq!(set.keys.len(), 1);

        for bad in [
            serde_json::json!([]),
            serde_json::json!({"keys": {}}),
            serde_json::json!({"keys": [1]}),
            serde_json::json!({"keys": [{"crv":"Ed25519"}]}),
            serde_json::json!({"keys": [{"kty":"OKP","crv":"Ed25519","x":"AA","kid":"k","use":7}]}),
        ] {
            assert!(Jwks::from_value(&bad).is_err(), "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(Jwks::parse(deep.as_bytes()).is_err());
        let many = serde_json::json!({ "keys": vec![serde_json::json!({"kty":"RSA"}); MAX_JWKS_KEYS + 1] });
        assert!(Jwks::from_value(&many).is_err());
    }

    #[test]
    fn hmac_keys_are_explicit_and_long_enough() {
        assert!(VerificationKey::hmac("k", &[0u8; 31]).is_err());
        let k = VerificationKey::hmac("k", &[0u8; 32]).unwrap();
        assert_eq!(k.alg(), Alg::HS256);
        assert!(!format!("{k:?}").contains("0, 0"));
        let mixed = serde_json::json!({"keys":[
            {"kty":"oct","k": URL_SAFE_NO_PAD.encode([1u8; 32]),"kid":"a","alg":"HS256"},
            es_jwk(),
        ]});
        assert!(KeySet::from_secret_jwks(&mixed).is_err());
        let aes = serde_json::json!({"keys":[{"kty":"oct","k": URL_SAFE_NO_PAD.encode([1u8; 32]),"kid":"a","alg":"A256GCM"}]});
        assert!(KeySet::from_secret_jwks(&aes).is_err());
        let ok =
            serde_json::json!({"keys":[{"kty":"oct","k": URL_SAFE_NO_PAD.encode([1u8; 32]),"kid":"a","alg":"HS256"}]});
        assert_eq!(KeySet::from_secret_jwks(&ok).unwrap().len(), 1);
    }

    #[test]
    fn url_policy() {
        for ok in ["https://issuer.example/jwks", "http://127.0.0.1:9/jwks", "http://[::1]/j", "http://localhost/j"] {
            assert!(RemoteJwks::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://issuer.example/jwks",
            "http://10.0.0.1/jwks",
            "ftp://issuer.example/jwks",
            "file:///etc/passwd",
            "https://user:pw@issuer.example/jwks",
            "jwks",
        ] {
            assert!(RemoteJwks::new(bad).is_err(), "{bad}");
        }
    }

    /// A JWKS endpoint on loopback whose body and status the test controls, counting requests.
    struct Server {
        url: String,
        hits: Arc<AtomicUsize>,
        body: Arc<parking_lot::Mutex<(u16, String)>>,
    }

    async fn serve(delay: Duration) -> Server {
        use axum::routing::get;
        let hits = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(parking_lot::Mutex::new((200u16, String::from("{\"keys\":[]}"))));
        let (h, b) = (hits.clone(), body.clone());
        let app = axum::Router::new()
            .route(
                "/jwks",
                get(move || {
                    let (h, b) = (h.clone(), b.clone());
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        let (status, body) = b.lock().clone();
                        (http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK), body)
                    }
                }),
            )
            .route("/redirect", get(|| async { (http::StatusCode::FOUND, [(http::header::LOCATION, "/jwks")]) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server { url: format!("http://{addr}"), hits, body }
    }

    fn quick() -> RemoteJwksConfig {
        RemoteJwksConfig {
            timeout: Duration::from_millis(500),
            min_refresh_interval: Duration::from_millis(300),
            ..RemoteJwksConfig::default()
        }
    }

    #[tokio::test]
    async fn fetch_caches_and_refreshes_at_most_once_per_interval() {
        let server = serve(Duration::ZERO).await;
        let k1 = ed_jwk();
        let k2 = es_jwk();
        server.body.lock().1 = Jwks { keys: vec![k1.clone()] }.to_json();
        let remote = RemoteJwks::with_config(&format!("{}/jwks", server.url), quick()).unwrap();
        assert!(remote.cached().is_none());

        let keys = remote.keys().await.unwrap();
        assert!(keys.get(&k1.kid).is_some());
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);
        // Cached within the TTL.
        remote.keys().await.unwrap();
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);

        // The issuer rotates. An unknown kid right after a fetch is rate limited: no request.
        server.body.lock().1 = Jwks { keys: vec![k1.clone(), k2.clone()] }.to_json();
        let keys = remote.refresh_for_unknown_kid().await.unwrap();
        assert!(keys.get(&k2.kid).is_none());
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);

        // After the interval, one refresh, and concurrent callers share it.
        tokio::time::sleep(Duration::from_millis(350)).await;
        let (a, b) = tokio::join!(remote.refresh_for_unknown_kid(), remote.refresh_for_unknown_kid());
        assert!(a.unwrap().get(&k2.kid).is_some());
        assert!(b.unwrap().get(&k2.kid).is_some());
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);
        assert_eq!(remote.fetch_count(), 2);
    }

    #[tokio::test]
    async fn ttl_expiry_refetches_and_failures_keep_stale_keys_for_a_while() {
        let server = serve(Duration::ZERO).await;
        let k1 = ed_jwk();
        server.body.lock().1 = Jwks { keys: vec![k1.clone()] }.to_json();
        let cfg = RemoteJwksConfig {
            ttl: Duration::from_millis(100),
            min_refresh_interval: Duration::from_millis(50),
            max_stale: Duration::from_millis(400),
            ..quick()
        };
        let remote = RemoteJwks::with_config(&format!("{}/jwks", server.url), cfg).unwrap();
        remote.keys().await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        // The issuer fails: the stale set is still served...
        server.body.lock().0 = 500;
        assert!(remote.keys().await.unwrap().get(&k1.kid).is_some());
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);
        // ...until TTL + max_stale has passed; then we fail closed.
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(remote.keys().await.unwrap_err(), JwksError::Status(500));
    }

    #[tokio::test]
    async fn fetch_limits() {
        let server = serve(Duration::ZERO).await;
        let remote = RemoteJwks::with_config(&format!("{}/jwks", server.url), quick()).unwrap();

        server.body.lock().1 = format!("{{\"keys\":[],\"pad\":\"{}\"}}", "a".repeat(70 * 1024));
        assert_eq!(remote.fetch().await, Err(JwksError::TooLarge));
        server.body.lock().1 = "not json".into();
        assert!(matches!(remote.fetch().await, Err(JwksError::Json(_))));
        server.body.lock().1 = "{\"keys\":[]}".into();
        server.body.lock().0 = 404;
        assert_eq!(remote.fetch().await, Err(JwksError::Status(404)));

        // Redirects are not followed.
        let redirect = RemoteJwks::with_config(&format!("{}/redirect", server.url), quick()).unwrap();
        assert_eq!(redirect.fetch().await, Err(JwksError::Status(302)));

        // A slow endpoint times out.
        let slow = serve(Duration::from_secs(3)).await;
        let remote = RemoteJwks::with_config(&format!("{}/jwks", slow.url), quick()).unwrap();
        let started = Instant::now();
        assert!(matches!(remote.fetch().await, Err(JwksError::Fetch(_))));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn unreachable_issuer_is_an_error_and_rate_limited() {
        // Bind and drop a listener to get a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let remote = RemoteJwks::with_config(&format!("http://127.0.0.1:{port}/jwks"), quick()).unwrap();
        assert!(matches!(remote.keys().await, Err(JwksError::Fetch(_))));
        assert_eq!(remote.keys().await.unwrap_err(), JwksError::RateLimited);
        assert_eq!(remote.fetch_count(), 1);
    }
}
