//! Dynamic client registration (RFC 7591) and the registry of known clients.
//!
//! Registration is an open door, so everything a client declares is validated: redirect URIs
//! must be https (or http on a loopback host, RFC 8252), have no fragment and no wildcard, and
//! are later matched byte for byte; names are bounded; grant and response types must be ones
//! this server implements and consistent with each other. A confidential client's secret is
//! returned once and kept only as its SHA-256.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;
use url::{Host, Url};

use super::{OAuthError, OAuthState, PeerIp, SUPPORTED_SCOPES, now_unix, random_token, sha256};
use crate::store::{GcraDecision, SharedStore, StoreError};

/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI, in bytes.
pub const MAX_REDIRECT_URI_BYTES: usize = 2000;
/// Longest client name, in characters.
pub const MAX_CLIENT_NAME_CHARS: usize = 100;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Public client: no secret, PKCE binds the code to the client instance.
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(AuthMethod::None),
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            _ => None,
        }
    }
}

/// Grant types this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            "client_credentials" => Some(GrantType::ClientCredentials),
            _ => None,
        }
    }
}

/// A registered client.
#[derive(Clone, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub client_name: Option<String>,
    /// Matched byte for byte against `redirect_uri` in requests.
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub auth_method: AuthMethod,
    /// The most a `client_credentials` token for this client may carry.
    pub scope: Vec<String>,
    pub issued_at: u64,
    secret_sha256: Option<[u8; 32]>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("client_name", &self.client_name)
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field("auth_method", &self.auth_method)
            .field("scope", &self.scope)
            .field("secret", &self.secret_sha256.map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    pub fn is_confidential(&self) -> bool {
        self.auth_method != AuthMethod::None
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether `presented` is this client's secret, compared in constant time over the hashes.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_sha256 {
            Some(stored) => bool::from(sha256(presented.as_bytes()).ct_eq(stored)),
            None => false,
        }
    }

    /// The name to show people: the registered name, else the id.
    pub fn display_name(&self) -> &str {
        self.client_name.as_deref().unwrap_or(&self.client_id)
    }
}

/// Client metadata as sent to `POST /register`. Unknown members are ignored (RFC 7591 §2).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientMetadata {
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub response_types: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// Why a registration was refused (RFC 7591 §3.2.2 error codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("invalid_redirect_uri: {0}")]
    InvalidRedirectUri(String),
    #[error("invalid_client_metadata: {0}")]
    InvalidClientMetadata(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("no randomness available")]
    Random,
}

impl RegistrationError {
    fn into_oauth(self) -> OAuthError {
        match self {
            RegistrationError::InvalidRedirectUri(d) => {
                OAuthError::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", d)
            }
            RegistrationError::InvalidClientMetadata(d) => {
                OAuthError::new(StatusCode::BAD_REQUEST, "invalid_client_metadata", d)
            }
            RegistrationError::Store(e) => OAuthError::from(e),
            RegistrationError::Random => OAuthError::server_error(),
        }
    }
}

/// A successful registration: the client, and its secret (returned once, never stored).
pub struct Registered {
    pub client: Arc<Client>,
    pub client_secret: Option<String>,
}

impl fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered").field("client", &self.client).field("client_secret", &"<redacted>").finish()
    }
}

/// Registered clients, kept in the shared store (so every replica knows every client) under
/// `oauth-client.<client_id>` with an idle lifetime: a client unused for that long is forgotten
/// and must register again.
pub struct ClientRegistry {
    store: Arc<dyn SharedStore>,
    idle_ttl: Duration,
}

impl fmt::Debug for ClientRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRegistry")
            .field("store", &self.store.backend())
            .field("idle_ttl", &self.idle_ttl)
            .finish()
    }
}

/// Longest client id looked up; anything longer is not one of ours.
const MAX_CLIENT_ID_BYTES: usize = 64;

fn client_key(client_id: &str) -> String {
    format!("oauth-client.{client_id}")
}

impl ClientRegistry {
    pub fn new(store: Arc<dyn SharedStore>, idle_ttl: Duration) -> Self {
        Self { store, idle_ttl }
    }

    /// The client registered as `client_id`, if any. Each lookup restarts its idle lifetime.
    pub async fn get(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_BYTES {
            return Ok(None);
        }
        let Some(bytes) = self.store.get_session(&client_key(client_id)).await? else { return Ok(None) };
        let client: Client = serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt("client record".into()))?;
        // A record under another id would mean a corrupt or tampered store: never serve it.
        if client.client_id != client_id {
            return Err(StoreError::Corrupt("client record".into()));
        }
        Ok(Some(Arc::new(client)))
    }

    /// Validates metadata and registers a new client under a fresh random id.
    pub async fn register(&self, metadata: &ClientMetadata) -> Result<Registered, RegistrationError> {
        let validated = validate_metadata(metadata)?;
        let client_id = format!("mcpc_{}", random_token(16).map_err(|_| RegistrationError::Random)?);
        let (client_secret, secret_sha256) = if validated.auth_method == AuthMethod::None {
            (None, None)
        } else {
            let secret = format!("mcpcs_{}", random_token(32).map_err(|_| RegistrationError::Random)?);
            let hash = sha256(secret.as_bytes());
            (Some(secret), Some(hash))
        };
        let client = Client {
            client_id: client_id.clone(),
            client_name: validated.client_name,
            redirect_uris: validated.redirect_uris,
            grant_types: validated.grant_types,
            auth_method: validated.auth_method,
            scope: validated.scope,
            issued_at: now_unix(),
            secret_sha256,
        };
        let bytes = serde_json::to_vec(&client).map_err(|_| RegistrationError::Random)?;
        self.store
            .put_session(&client_key(&client_id), &bytes, self.idle_ttl)
            .await
            .map_err(RegistrationError::Store)?;
        Ok(Registered { client: Arc::new(client), client_secret })
    }
}

struct Validated {
    client_name: Option<String>,
    redirect_uris: Vec<String>,
    grant_types: Vec<GrantType>,
    auth_method: AuthMethod,
    scope: Vec<String>,
}

fn meta_err(msg: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(msg.into())
}

fn validate_metadata(m: &ClientMetadata) -> Result<Validated, RegistrationError> {
    // RFC 7591 §2: the default method is client_secret_basic, the default grant authorization_code.
    let auth_method = match &m.token_endpoint_auth_method {
        None => AuthMethod::ClientSecretBasic,
        Some(s) => AuthMethod::parse(s).ok_or_else(|| meta_err("unsupported token_endpoint_auth_method"))?,
    };
    let mut grant_types = Vec::new();
    for g in m.grant_types.as_deref().unwrap_or(&["authorization_code".to_owned()]) {
        let grant =
            GrantType::parse(g).ok_or_else(|| meta_err(format!("unsupported grant type {}", super::quoted_name(g))))?;
        if !grant_types.contains(&grant) {
            grant_types.push(grant);
        }
    }
    if grant_types.is_empty() {
        return Err(meta_err("grant_types must not be empty"));
    }
    let wants_code = grant_types.contains(&GrantType::AuthorizationCode);
    let response_types =
        m.response_types.clone().unwrap_or_else(|| if wants_code { vec!["code".into()] } else { vec![] });
    if let Some(bad) = response_types.iter().find(|r| r.as_str() != "code") {
        return Err(meta_err(format!("unsupported response type {}", super::quoted_name(bad))));
    }
    // RFC 7591 §2.1: the code response type and the authorization_code grant go together.
    if wants_code != response_types.iter().any(|r| r == "code") {
        return Err(meta_err("response_types [\"code\"] requires grant_types with authorization_code and vice versa"));
    }
    if grant_types.contains(&GrantType::RefreshToken) && !wants_code {
        return Err(meta_err("refresh_token requires the authorization_code grant"));
    }
    if grant_types.contains(&GrantType::ClientCredentials) && auth_method == AuthMethod::None {
        return Err(meta_err("client_credentials requires a confidential client (client_secret_basic or _post)"));
    }
    let client_name = match &m.client_name {
        None => None,
        Some(name) => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > MAX_CLIENT_NAME_CHARS {
                return Err(meta_err(format!("client_name must be 1-{MAX_CLIENT_NAME_CHARS} characters")));
            }
            if name.chars().any(|c| c.is_control() || is_invisible(c)) {
                return Err(meta_err("client_name contains control or invisible characters"));
            }
            Some(name.to_owned())
        }
    };
    let redirect_uris = m.redirect_uris.clone().unwrap_or_default();
    if wants_code && redirect_uris.is_empty() {
        return Err(RegistrationError::InvalidRedirectUri("redirect_uris is required".into()));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(RegistrationError::InvalidRedirectUri(format!("at most {MAX_REDIRECT_URIS} redirect_uris")));
    }
    for uri in &redirect_uris {
        validate_redirect_uri(uri)?;
    }
    let scope = match &m.scope {
        None => SUPPORTED_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        Some(s) => {
            super::parse_scope(s).map_err(|bad| meta_err(format!("unsupported scope {}", super::quoted_name(&bad))))?
        }
    };
    Ok(Validated { client_name, redirect_uris, grant_types, auth_method, scope })
}

/// Characters that render as nothing and could disguise a name (bidi controls, zero widths).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Accepts `https://…` or `http://` on 127.0.0.1, `[::1]` or `localhost`; no fragment, no
/// wildcard, no user info, no backslash or whitespace, and in the URL parser's normal form so that
/// the exact-string match later means exactly one destination.
pub fn validate_redirect_uri(raw: &str) -> Result<(), RegistrationError> {
    // The URI itself stays out of the description: it is untrusted and may hold any character.
    let bad = |why: &str| RegistrationError::InvalidRedirectUri(why.to_owned());
    if raw.is_empty() || raw.len() > MAX_REDIRECT_URI_BYTES {
        return Err(bad("redirect URI must be 1-2000 bytes"));
    }
    if raw.contains('#') {
        return Err(bad("redirect URI must not contain a fragment"));
    }
    if raw.contains('*') {
        return Err(bad("redirect URI must not contain wildcards"));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
        return Err(bad("redirect URI contains whitespace, control characters or a backslash"));
    }
    let url = Url::parse(raw).map_err(|_| bad("redirect URI is not an absolute URI"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("redirect URI must not contain user information"));
    }
    match url.scheme() {
        "https" => {
            if url.host().is_none() {
                return Err(bad("https redirect URI needs a host"));
            }
        }
        "http" => {
            let loopback = match url.host() {
                Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
                Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
                Some(Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if !loopback {
                return Err(bad("http redirect URIs are allowed only on 127.0.0.1, [::1] or localhost"));
            }
        }
        _ => return Err(bad("redirect URI must use https (or http on a loopback host)")),
    }
    // The parser's normal form (an empty path becomes "/"): anything else, such as dot segments,
    // percent-encoding variants or odd IPv4 spellings, is ambiguous and refused.
    let normal = url.as_str();
    if normal != raw && normal.strip_suffix('/') != Some(raw) {
        return Err(bad("redirect URI is not in normal form"));
    }
    Ok(())
}

/// `POST /register`.
pub(crate) async fn register(
    State(state): State<OAuthState>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match register_inner(&state, ip, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn register_inner(
    state: &OAuthState,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let quota = state.config().registration_rate;
    let key = format!("oauth-register:{}", crate::rate_limit::ip_key(ip));
    if let GcraDecision::Deny { retry_after } = state.store().gcra(&key, quota.interval, quota.burst).await? {
        return Err(OAuthError::rate_limited(retry_after));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "Content-Type must be application/json",
        ));
    }
    let metadata: ClientMetadata = serde_json::from_slice(body).map_err(|_| {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_client_metadata", "body is not valid client metadata JSON")
    })?;
    let registered = state.clients().register(&metadata).await.map_err(RegistrationError::into_oauth)?;
    let client = &registered.client;
    tracing::info!(client_id = %client.client_id, confidential = client.is_confidential(), "oauth client registered");
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.issued_at,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": if client.allows(super::clients::GrantType::AuthorizationCode) { vec!["code"] } else { vec![] },
        "token_endpoint_auth_method": client.auth_method.as_str(),
        "scope": client.scope.join(" "),
    });
    if let Some(obj) = body.as_object_mut() {
        if let Some(name) = &client.client_name {
            obj.insert("client_name".into(), Value::from(name.as_str()));
        }
        if let Some(secret) = &registered.client_secret {
            obj.insert("client_secret".into(), Value::from(secret.as_str()));
            obj.insert("client_secret_expires_at".into(), Value::from(0));
        }
    }
    let mut response = (StatusCode::CREATED, body.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uris: &[&str]) -> ClientMetadata {
        ClientMetadata {
            redirect_uris: Some(uris.iter().map(|s| (*s).to_owned()).collect()),
            token_endpoint_auth_method: Some("none".into()),
            ..ClientMetadata::default()
        }
    }

    #[test]
    fn redirect_uri_rules() {
        for ok in [
            "https://client.example/cb",
            "https://client.example/cb?x=1",
            "https://client.example",
            "http://127.0.0.1:8080/callback",
            "http://[::1]:9000/cb",
            "http://localhost/cb",
        ] {
            assert_eq!(validate_redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://attacker.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://localhost.evil.example/cb",
            "http://10.0.0.1/cb",
            "https://client.example/cb#frag",
            "https://client.example/cb#",
            "https://*.client.example/cb",
            "https://client.example/*",
            "https://user:pw@client.example/cb",
            "https://client.example/a/../cb",
            "https://CLIENT.example/cb",
            "http://0x7f.0.0.1/cb",
            "https://client.example\\@evil.example/cb",
            "javascript:alert(1)",
            "com.example.app:/cb",
            "/relative",
            "",
        ] {
            assert!(matches!(validate_redirect_uri(bad), Err(RegistrationError::InvalidRedirectUri(_))), "{bad}");
        }
    }

    fn registry() -> ClientRegistry {
        ClientRegistry::new(Arc::new(crate::store::MemoryStore::default()), Duration::from_secs(3600))
    }

    #[tokio::test]
    async fn public_and_confidential_registration() {
        let reg = registry();
        let public = reg.register(&meta(&["https://c.example/cb"])).await.expect("public");
        assert!(public.client_secret.is_none());
        assert!(!public.client.is_confidential());
        assert!(!public.client.secret_matches(""));

        let mut m = meta(&["https://c.example/cb"]);
        m.token_endpoint_auth_method = None; // RFC 7591 default: client_secret_basic
        let conf = reg.register(&m).await.expect("confidential");
        let secret = conf.client_secret.clone().expect("secret");
        assert_eq!(conf.client.auth_method, AuthMethod::ClientSecretBasic);
        assert!(conf.client.secret_matches(&secret));
        assert!(!conf.client.secret_matches(&format!("{secret}x")));
        assert!(!format!("{:?}", conf).contains(&secret));

        // Stored and read back through the shared store, secret hash included.
        let stored = reg.get(&conf.client.client_id).await.expect("store").expect("known");
        assert!(stored.secret_matches(&secret));
        assert_eq!(stored.redirect_uris, vec!["https://c.example/cb".to_owned()]);
        assert_eq!(stored.grant_types, vec![GrantType::AuthorizationCode]);
        assert!(reg.get("mcpc_unknown").await.expect("store").is_none());
        assert!(reg.get(&"x".repeat(65)).await.expect("store").is_none());
    }

    #[tokio::test]
    async fn metadata_rules() {
        let reg = registry();
        for (m, redirect_error) in metadata_cases() {
            let err = reg.register(&m).await.err();
            if redirect_error {
                assert!(matches!(err, Some(RegistrationError::InvalidRedirectUri(_))), "{m:?}");
            } else {
                assert!(matches!(err, Some(RegistrationError::InvalidClientMetadata(_))), "{m:?}");
            }
        }
        // A machine client needs no redirect URI.
        let m = ClientMetadata {
            grant_types: Some(vec!["client_credentials".into()]),
            token_endpoint_auth_method: Some("client_secret_post".into()),
            ..ClientMetadata::default()
        };
        let machine = reg.register(&m).await.expect("machine");
        assert!(machine.client.allows(GrantType::ClientCredentials));
        assert!(!machine.client.allows(GrantType::AuthorizationCode));
    }

    /// Invalid metadata, and whether the error is `invalid_redirect_uri`.
    fn metadata_cases() -> Vec<(ClientMetadata, bool)> {
        let mut out = Vec::new();
        let mut m = meta(&[]);
        m.redirect_uris = None;
        out.push((m, true));
        let mut m = meta(&["https://c.example/cb"]);
        m.grant_types = Some(vec!["implicit".into()]);
        out.push((m, false));
        let mut m = meta(&["https://c.example/cb"]);
        m.response_types = Some(vec!["token".into()]);
        out.push((m, false));
        let mut m = meta(&["https://c.example/cb"]);
        m.grant_types = Some(vec!["authorization_code".into(), "client_credentials".into()]);
        out.push((m, false)); // public + client_credentials
        let mut m = meta(&["https://c.example/cb"]);
        m.client_name = Some("x".repeat(MAX_CLIENT_NAME_CHARS + 1));
        out.push((m, false));
        let mut m = meta(&["https://c.example/cb"]);
        m.client_name = Some("Good\u{202E}liaM".into());
        out.push((m, false));
        let mut m = meta(&["https://c.example/cb"]);
        m.scope = Some("mcp:read everything".into());
        out.push((m, false));
        let mut m = meta(&["https://c.example/cb"]);
        m.token_endpoint_auth_method = Some("private_key_jwt".into());
        out.push((m, false));
        let many: Vec<String> = (0..=MAX_REDIRECT_URIS).map(|i| format!("https://c.example/{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        out.push((meta(&refs), true));
        out
    }
}
