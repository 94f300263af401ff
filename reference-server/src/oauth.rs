//! The built-in OAuth 2.1 authorization server: metadata (RFC 8414), dynamic client
//! registration (RFC 7591), the authorization endpoint with a login and consent page, and the
//! token endpoint (authorization code with PKCE S256, refresh-token rotation, client credentials).
//!
//! [`router`] serves it next to `/mcp`; the issuer is the server's origin, so the endpoints are
//! `/authorize`, `/token`, `/register` and `/jwks.json`. One-time codes, refresh-token families,
//! revocations and rate limits live in the [`SharedStore`], so several replicas act as one; when
//! the store cannot answer, every endpoint fails closed (503). Registered clients live in the
//! store too; consents and login sessions are kept in this process (another replica at worst
//! asks the person again).

pub mod authorize;
pub mod clients;
mod consent;
pub mod metadata;
mod page;
pub mod token;
pub mod users;

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::{Host, Url};

use crate::auth::jwks::Jwks;
use crate::auth::jwt::{SigningKey, TokenIssuer};
use crate::store::{SharedStore, StoreError};

pub use clients::{Client, ClientMetadata, ClientRegistry, Registered, RegistrationError};
pub use users::{User, UserDirectory, hash_password, hash_password_with};

/// Every scope this server knows, least to most privileged.
pub const SUPPORTED_SCOPES: [&str; 3] = ["mcp:read", "mcp:write", "mcp:admin"];

/// Largest request body any OAuth endpoint accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A GCRA quota: `burst` requests back to back, then one per `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    pub interval: Duration,
    pub burst: u32,
}

/// Configuration of the authorization server.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The issuer: an origin (`https://host[:port]`, or `http://` on a loopback host), no path.
    pub issuer: String,
    /// The MCP endpoint's canonical URI: the only accepted `resource` and the tokens' `aud`.
    pub canonical_resource: String,
    /// Access-token lifetime (default 1 hour).
    pub access_ttl: Duration,
    /// Refresh-token lifetime (default 30 days; each rotation starts a new one).
    pub refresh_ttl: Duration,
    /// Authorization-code lifetime (default 5 minutes).
    pub code_ttl: Duration,
    pub users: Vec<User>,
    /// Scopes granted when an authorization request names none.
    pub default_scope: Vec<String>,
    /// The most a `client_credentials` token may carry (registration is open to anyone, so a
    /// machine client registered through it must not mint itself admin tokens).
    pub client_credentials_scope: Vec<String>,
    /// Registrations per client IP.
    pub registration_rate: RateQuota,
    /// Login attempts per user name and client IP.
    pub login_rate: RateQuota,
    /// A registered client unused for this long is forgotten (default 30 days).
    pub client_idle_ttl: Duration,
    /// How long a successful login is remembered by the `__Host-` session cookie.
    pub login_session_ttl: Duration,
}

impl OAuthConfig {
    /// A configuration with the default lifetimes and limits.
    pub fn new(issuer: impl Into<String>, canonical_resource: impl Into<String>, users: Vec<User>) -> Self {
        Self {
            issuer: issuer.into(),
            canonical_resource: canonical_resource.into(),
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            code_ttl: Duration::from_secs(300),
            users,
            default_scope: vec!["mcp:read".into()],
            client_credentials_scope: vec!["mcp:read".into(), "mcp:write".into()],
            registration_rate: RateQuota { interval: Duration::from_secs(60), burst: 10 },
            login_rate: RateQuota { interval: Duration::from_secs(60), burst: 5 },
            client_idle_ttl: Duration::from_secs(30 * 24 * 3600),
            login_session_ttl: Duration::from_secs(3600),
        }
    }

    /// Checks the configuration; [`OAuthState::new`] calls it.
    pub fn validate(&self) -> Result<(), OAuthConfigError> {
        let issuer = Url::parse(&self.issuer).map_err(|_| OAuthConfigError::Issuer(self.issuer.clone()))?;
        let origin_only = issuer.path() == "/"
            && issuer.query().is_none()
            && issuer.fragment().is_none()
            && issuer.username().is_empty()
            && !self.issuer.ends_with('/');
        if !origin_only || !secure_or_loopback(&issuer) {
            return Err(OAuthConfigError::Issuer(self.issuer.clone()));
        }
        let resource = Url::parse(&self.canonical_resource)
            .map_err(|_| OAuthConfigError::Resource(self.canonical_resource.clone()))?;
        if resource.fragment().is_some() || !secure_or_loopback(&resource) {
            return Err(OAuthConfigError::Resource(self.canonical_resource.clone()));
        }
        for (name, ttl) in
            [("access_ttl", self.access_ttl), ("refresh_ttl", self.refresh_ttl), ("code_ttl", self.code_ttl)]
        {
            if ttl.is_zero() {
                return Err(OAuthConfigError::Lifetime(name));
            }
        }
        for scope in self.default_scope.iter().chain(&self.client_credentials_scope) {
            if !SUPPORTED_SCOPES.contains(&scope.as_str()) {
                return Err(OAuthConfigError::Scope(scope.clone()));
            }
        }
        Ok(())
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// https, or http on a loopback host (MCP: all authorization endpoints use HTTPS except in development).
fn secure_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}

/// Why an [`OAuthConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthConfigError {
    #[error("issuer must be an https origin (or http on a loopback host) without path, query or trailing slash: {0:?}")]
    Issuer(String),
    #[error("canonical resource must be an absolute https URI (or http on a loopback host) without fragment: {0:?}")]
    Resource(String),
    #[error("{0} must be positive")]
    Lifetime(&'static str),
    #[error("unsupported scope {0:?}")]
    Scope(String),
    #[error(transparent)]
    User(#[from] users::PasswordError),
}

/// Everything the endpoints share. Cheap to clone.
#[derive(Clone)]
pub struct OAuthState {
    inner: Arc<Inner>,
}

struct Inner {
    config: OAuthConfig,
    tokens: TokenIssuer,
    jwks: Jwks,
    metadata: Value,
    store: Arc<dyn SharedStore>,
    clients: ClientRegistry,
    users: UserDirectory,
    consents: consent::Consents,
    logins: consent::LoginSessions,
}

impl fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthState")
            .field("issuer", &self.inner.config.issuer)
            .field("resource", &self.inner.config.canonical_resource)
            .field("store", &self.inner.store.backend())
            .finish_non_exhaustive()
    }
}

impl OAuthState {
    /// Validates `config` and builds the state. Access tokens are signed with `key` (its public
    /// half is published at `/jwks.json`), for `config.issuer` and `aud = canonical_resource`.
    pub fn new(config: OAuthConfig, key: SigningKey, store: Arc<dyn SharedStore>) -> Result<Self, OAuthConfigError> {
        config.validate()?;
        let users = UserDirectory::new(&config.users)?;
        let tokens = TokenIssuer::new(&config.issuer, &config.canonical_resource, key, config.access_ttl);
        let jwks = tokens.jwks();
        let metadata = metadata::document(&config);
        Ok(Self {
            inner: Arc::new(Inner {
                clients: ClientRegistry::new(store.clone(), config.client_idle_ttl),
                consents: consent::Consents::default(),
                logins: consent::LoginSessions::new(config.login_session_ttl),
                config,
                tokens,
                jwks,
                metadata,
                store,
                users,
            }),
        })
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.inner.config
    }

    /// The registry, for registering clients without HTTP (operators, tests).
    pub fn clients(&self) -> &ClientRegistry {
        &self.inner.clients
    }

    /// The public keys access tokens are signed with: configure the resource server's verifier with these.
    pub fn jwks(&self) -> &Jwks {
        &self.inner.jwks
    }

    /// The issuer of access tokens (shared with anything else that mints tokens for this server).
    pub fn token_issuer(&self) -> &TokenIssuer {
        &self.inner.tokens
    }

    pub fn store(&self) -> &Arc<dyn SharedStore> {
        &self.inner.store
    }

    fn users(&self) -> &UserDirectory {
        &self.inner.users
    }

    fn consents(&self) -> &consent::Consents {
        &self.inner.consents
    }

    fn logins(&self) -> &consent::LoginSessions {
        &self.inner.logins
    }
}

/// The authorization server's routes. Mount next to `/mcp`; requests should carry
/// `ConnectInfo<SocketAddr>` (per-IP rate limits; without it every caller shares one bucket).
pub fn router(state: OAuthState) -> Router {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata::authorization_server).options(preflight))
        .route("/.well-known/openid-configuration", get(metadata::authorization_server).options(preflight))
        .route("/jwks.json", get(metadata::jwks).options(preflight))
        .route("/register", post(clients::register).options(preflight))
        .route("/authorize", get(authorize::get_authorize).post(authorize::post_authorize))
        .route("/token", post(token::token).options(preflight))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(cors))
        .with_state(state)
}

/// The JSON endpoints are called by browser-based MCP clients too. They take no cookies, so a
/// wildcard origin without credentials exposes nothing; `/authorize` is navigated to, never
/// fetched, and gets no CORS headers.
async fn cors(uri: http::Uri, mut response: Response) -> Response {
    if uri.path() != "/authorize" {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    response
}

async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, MCP-Protocol-Version"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// An RFC 6749 §5.2 (or RFC 7591 §3.2.2) error: `{error, error_description}` with `no-store`.
#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: Cow<'static, str>,
    retry_after: Option<u64>,
}

impl OAuthError {
    pub(crate) fn new(status: StatusCode, error: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self { status, error, description: description.into(), retry_after: None }
    }

    pub(crate) fn bad_request(error: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, description)
    }

    pub(crate) fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub(crate) fn server_error() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
    }

    pub(crate) fn rate_limited(retry_after: Duration) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "slow_down", "too many requests; retry later");
        e.retry_after = Some(crate::rate_limit::retry_after_secs(retry_after));
        e
    }
}

/// Fail closed: no store answer, no grant. The message says why without leaking internals.
impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "oauth: shared store failed; refusing the request");
        match e {
            StoreError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "authorization state store unavailable; retry later",
            ),
            StoreError::Corrupt(_) => Self::server_error(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, body.to_string()).into_response();
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        no_store(h);
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: a 401 for client authentication carries the scheme the client may use.
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"mcproof-oauth\""));
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub(crate) fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store(h);
    response
}

/// Request parameters (query or form body). RFC 6749 §3.1: parameters without a value are
/// treated as omitted, and none may appear more than once.
#[derive(Debug, Default)]
pub(crate) struct Params {
    map: HashMap<String, Vec<String>>,
}

/// Most distinct parameters accepted in one request.
const MAX_PARAMS: usize = 64;

impl Params {
    /// `None` when there are too many parameters.
    pub(crate) fn parse(input: &[u8]) -> Option<Self> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(input) {
            if v.is_empty() {
                continue;
            }
            if !map.contains_key(k.as_ref()) && map.len() >= MAX_PARAMS {
                return None;
            }
            map.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Some(Self { map })
    }

    /// The single value of `name`; `Err` when it was sent more than once.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, Repeated> {
        match self.map.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(one.as_str())),
            Some(_) => Err(Repeated(name.to_owned())),
        }
    }

    /// The first parameter (by name order) sent more than once, other than those in `except`.
    pub(crate) fn repeated_except(&self, except: &[&str]) -> Option<&str> {
        let mut names: Vec<&String> =
            self.map.iter().filter(|(k, v)| v.len() > 1 && !except.contains(&k.as_str())).map(|(k, _)| k).collect();
        names.sort();
        names.first().map(|s| s.as_str())
    }
}

/// A parameter that appeared more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Repeated(pub String);

/// Space-separated scopes, deduplicated, each one this server supports; `Err` names the first
/// unsupported one.
pub(crate) fn parse_scope(s: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for token in s.split(' ').filter(|t| !t.is_empty()) {
        if !SUPPORTED_SCOPES.contains(&token) {
            return Err(token.chars().take(64).collect());
        }
        if !out.iter().any(|t| t == token) {
            out.push(token.to_owned());
        }
    }
    Ok(out)
}

/// Untrusted text (a parameter name, a scope) made fit for `error_description`, whose charset
/// RFC 6749 §5.2 restricts: only `[A-Za-z0-9._:-]`, at most 40 characters.
pub(crate) fn quoted_name(s: &str) -> String {
    let kept: String =
        s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')).take(40).collect();
    format!("'{kept}'")
}

/// Scopes in the canonical order of [`SUPPORTED_SCOPES`], space-separated.
pub(crate) fn scope_string(scopes: &[String]) -> String {
    SUPPORTED_SCOPES.iter().filter(|s| scopes.iter().any(|x| x == *s)).copied().collect::<Vec<_>>().join(" ")
}

/// Whether `resource` names this server's canonical URI (exactly, or after URL normalization:
/// case of scheme and host, default port).
pub(crate) fn is_canonical_resource(config: &OAuthConfig, resource: &str) -> bool {
    if resource == config.canonical_resource {
        return true;
    }
    match (Url::parse(resource), Url::parse(&config.canonical_resource)) {
        (Ok(a), Ok(b)) => a.fragment().is_none() && a == b,
        _ => false,
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `n` random bytes from the system CSPRNG, base64url without padding.
pub(crate) fn random_token(n: usize) -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The store key of a secret (code, refresh token, session id): its SHA-256, base64url.
pub(crate) fn secret_key(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(secret.as_bytes()))
}

/// The peer address from `ConnectInfo`; forwarding headers are not trusted.
pub(crate) struct PeerIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
        Ok(PeerIp(ip))
    }
}

/// Whether the request is a form post (`application/x-www-form-urlencoded`).
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_reject_repeats_and_drop_empty_values() {
        let p = Params::parse(b"a=1&b=&c=x%20y&a=2").expect("parse");
        assert_eq!(p.get("a"), Err(Repeated("a".into())));
        assert_eq!(p.get("b"), Ok(None));
        assert_eq!(p.get("c"), Ok(Some("x y")));
        assert_eq!(p.repeated_except(&[]), Some("a"));
        assert_eq!(p.repeated_except(&["a"]), None);
        assert_eq!(quoted_name("a\"b<c>\\d:é"), "'abcd:'");
        let many: String = (0..=MAX_PARAMS).map(|i| format!("p{i}=1&")).collect();
        assert!(Params::parse(many.as_bytes()).is_none());
    }

    #[test]
    fn scopes_parse_and_order() {
        assert_eq!(parse_scope("mcp:write  mcp:read mcp:read"), Ok(vec!["mcp:write".into(), "mcp:read".into()]));
        assert_eq!(parse_scope("mcp:read root"), Err("root".into()));
        assert_eq!(scope_string(&["mcp:admin".into(), "mcp:read".into()]), "mcp:read mcp:admin");
    }

    #[test]
    fn config_validation() {
        let ok = OAuthConfig::new("http://127.0.0.1:8080", "http://127.0.0.1:8080/mcp", vec![]);
        assert_eq!(ok.validate(), Ok(()));
        for issuer in ["http://example.com", "https://example.com/", "https://example.com/t1", "ftp://x", "nope"] {
            let c = OAuthConfig::new(issuer, "https://example.com/mcp", vec![]);
            assert!(matches!(c.validate(), Err(OAuthConfigError::Issuer(_))), "{issuer}");
        }
        let c = OAuthConfig::new("https://example.com", "https://example.com/mcp#x", vec![]);
        assert!(matches!(c.validate(), Err(OAuthConfigError::Resource(_))));
        let mut c = OAuthConfig::new("https://example.com", "https://example.com/mcp", vec![]);
        c.code_ttl = Duration::ZERO;
        assert_eq!(c.validate(), Err(OAuthConfigError::Lifetime("code_ttl")));
    }

    #[test]
    fn canonical_resource_comparison() {
        let c = OAuthConfig::new("https://example.com", "https://example.com/mcp", vec![]);
        assert!(is_canonical_resource(&c, "https://example.com/mcp"));
        assert!(is_canonical_resource(&c, "HTTPS://EXAMPLE.com:443/mcp"));
        assert!(!is_canonical_resource(&c, "https://example.com/mcp/"));
        assert!(!is_canonical_resource(&c, "https://other.example/mcp"));
        assert!(!is_canonical_resource(&c, "https://example.com/mcp#f"));
    }
}
