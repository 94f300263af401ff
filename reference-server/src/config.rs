//! Server configuration: defaults, a TOML file, environment variables and flags, in rising order
//! of precedence. Secrets are never read from the file or from flags (there are none yet; the
//! auth issue adds them, read from the environment or from files named here).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::AuthPolicy;

/// Everything the server needs to know to run. Unknown keys in a file are errors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to bind. Loopback by default: a local server must not listen on every interface.
    pub listen: SocketAddr,
    /// Which tools, resources and prompts are offered.
    pub profile: Profile,
    /// Host names (without port) accepted in the `Host` header, on top of the loopback names
    /// that are always accepted for a loopback bind. Guards against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) accepted in the `Origin` header, on top of the server's
    /// own loopback origins.
    pub allowed_origins: Vec<String>,
    /// Serve HTTPS with these PEM files (and send HSTS).
    pub tls: Option<TlsConfig>,
    /// Size, depth and time limits.
    pub limits: Limits,
    /// Layered rate limits.
    pub rate_limits: RateLimitConfig,
    /// Session table bounds.
    pub sessions: SessionConfig,
    /// Directory the file-reader tool is confined to. A seeded temporary directory when unset.
    pub sandbox_dir: Option<PathBuf>,
    /// Append the hash-chained audit log here (JSON lines). Unset: audit events go to the
    /// server log on stderr only.
    pub audit_log: Option<PathBuf>,
    /// Authentication and the built-in authorization server.
    pub auth: AuthConfig,
    /// Keep shared state (rate limits, one-time codes, refresh-token families, revocations) in
    /// this Redis (`redis://127.0.0.1:6379`), so that several replicas act as one server.
    pub redis: Option<String>,
    /// Fault switches (only with the `faults` feature; never from a file).
    #[serde(skip)]
    pub faults: crate::faults::Faults,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            profile: Profile::Standard,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            tls: None,
            limits: Limits::default(),
            rate_limits: RateLimitConfig::default(),
            sessions: SessionConfig::default(),
            sandbox_dir: None,
            audit_log: None,
            auth: AuthConfig::default(),
            redis: None,
            faults: crate::faults::Faults::default(),
        }
    }
}

/// Authentication: the policy, the built-in OAuth 2.1 authorization server, API keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `required` (default), `public-tier`, or `public` (authentication off).
    pub policy: AuthPolicy,
    /// Run the built-in authorization server (metadata, registration, authorize, token, JWKS).
    pub authorization_server: bool,
    /// The issuer (an origin, `https://host[:port]`); default: the server's own origin.
    pub issuer: Option<String>,
    /// The canonical resource URI tokens must be issued for; default: the server's `/mcp` URL.
    pub resource: Option<String>,
    /// Users who can log in at `/authorize` (Argon2id PHC hashes, never passwords).
    pub users: Vec<crate::oauth::users::User>,
    /// API-key store written by `mcproof-server keys` (only SHA-256 digests inside).
    pub api_keys_file: Option<PathBuf>,
    /// PKCS#8 PEM signing key for access tokens; an ephemeral Ed25519 key when unset.
    pub signing_key_file: Option<PathBuf>,
    /// External authorization servers whose access tokens are accepted, by issuer and JWKS URL
    /// (https, or http on loopback). Their tokens must be issued for this server's resource.
    pub trusted_issuers: Vec<TrustedIssuerConfig>,
    /// Access-token lifetime in seconds.
    pub access_token_ttl_secs: u64,
    /// Refresh-token lifetime in seconds.
    pub refresh_token_ttl_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            policy: AuthPolicy::Required,
            authorization_server: true,
            issuer: None,
            resource: None,
            users: Vec::new(),
            api_keys_file: None,
            signing_key_file: None,
            trusted_issuers: Vec::new(),
            access_token_ttl_secs: 3_600,
            refresh_token_ttl_secs: 30 * 24 * 3_600,
        }
    }
}

/// An external issuer whose tokens this server accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerConfig {
    pub issuer: String,
    pub jwks_url: String,
}

/// Which set of tools, resources and prompts the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// The secure tools only.
    #[default]
    Standard,
    /// The secure tools plus the fixtures the official MCP conformance suite expects.
    Conformance,
}

/// TLS certificate and key (PEM files).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Bounds on what a single request may cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted request body, in bytes (larger: HTTP 413).
    pub max_body_bytes: usize,
    /// Deepest accepted JSON nesting.
    pub max_depth: usize,
    /// Longest accepted JSON string (keys and values), in bytes.
    pub max_string_bytes: usize,
    /// Time allowed to produce a response's headers, in milliseconds.
    pub request_timeout_ms: u64,
    /// Time a tool may run, in milliseconds (includes waiting for the client's sampling or
    /// elicitation answers).
    pub tool_timeout_ms: u64,
    /// Time a client may take to send its request headers, in milliseconds (slow-loris guard).
    pub header_read_timeout_ms: u64,
    /// Most concurrent connections.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            max_depth: 32,
            max_string_bytes: 64 * 1024,
            request_timeout_ms: 30_000,
            tool_timeout_ms: 20_000,
            header_read_timeout_ms: 10_000,
            max_connections: 1024,
        }
    }
}

/// A rate: `per_minute` sustained, with bursts of up to `burst` back-to-back requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub per_minute: u32,
    pub burst: u32,
}

/// Limits per layer. Each request passes every layer that applies to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Keyed by client IP address (HTTP only).
    pub ip: Quota,
    /// Keyed by session id.
    pub session: Quota,
    /// Keyed by principal, counted on `tools/call`.
    pub principal: Quota,
    /// Keyed by principal and tool, counted on `tools/call`.
    pub tool: Quota,
    /// Per-tool overrides of `tool`.
    pub per_tool: BTreeMap<String, Quota>,
    /// Most keys tracked per layer; beyond it the least recently limited keys are evicted.
    pub max_keys: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            ip: Quota { per_minute: 3_000, burst: 300 },
            session: Quota { per_minute: 1_200, burst: 120 },
            principal: Quota { per_minute: 1_200, burst: 120 },
            tool: Quota { per_minute: 600, burst: 60 },
            per_tool: BTreeMap::new(),
            max_keys: 100_000,
        }
    }
}

/// Session table bounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Most live sessions; past it, new `initialize` requests get 503.
    pub max_sessions: usize,
    /// A session unused for this long is ended, in seconds.
    pub idle_timeout_secs: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { max_sessions: 10_000, idle_timeout_secs: 3_600 }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML file. Unknown keys and wrong types are errors.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })
    }

    /// Checks cross-field rules that types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if l.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid("limits.max_body_bytes must be at least 1024".into()));
        }
        if !(2..=100).contains(&l.max_depth) {
            return Err(ConfigError::Invalid("limits.max_depth must be between 2 and 100".into()));
        }
        if l.max_string_bytes < 256 {
            return Err(ConfigError::Invalid("limits.max_string_bytes must be at least 256".into()));
        }
        for (what, ms) in [
            ("limits.request_timeout_ms", l.request_timeout_ms),
            ("limits.tool_timeout_ms", l.tool_timeout_ms),
            ("limits.header_read_timeout_ms", l.header_read_timeout_ms),
        ] {
            if ms == 0 {
                return Err(ConfigError::Invalid(format!("{what} must be greater than 0")));
            }
        }
        if l.max_connections == 0 {
            return Err(ConfigError::Invalid("limits.max_connections must be greater than 0".into()));
        }
        let rl = &self.rate_limits;
        let layers = [("ip", &rl.ip), ("session", &rl.session), ("principal", &rl.principal), ("tool", &rl.tool)];
        for (name, q) in layers.into_iter().chain(rl.per_tool.iter().map(|(k, q)| (k.as_str(), q))) {
            if q.per_minute == 0 || q.burst == 0 {
                return Err(ConfigError::Invalid(format!(
                    "rate limit `{name}`: per_minute and burst must be greater than 0"
                )));
            }
        }
        if rl.max_keys == 0 {
            return Err(ConfigError::Invalid("rate_limits.max_keys must be greater than 0".into()));
        }
        if self.sessions.max_sessions == 0 || self.sessions.idle_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "sessions.max_sessions and sessions.idle_timeout_secs must be greater than 0".into(),
            ));
        }
        for origin in &self.allowed_origins {
            let parsed = url::Url::parse(origin)
                .map_err(|_| ConfigError::Invalid(format!("allowed origin `{origin}` is not a URL")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() || parsed.path() != "/" {
                return Err(ConfigError::Invalid(format!(
                    "allowed origin `{origin}` must be scheme://host[:port] with http or https"
                )));
            }
            if origin.contains('*') {
                return Err(ConfigError::Invalid("wildcard origins are not allowed".into()));
            }
        }
        for host in &self.allowed_hosts {
            if host.is_empty() || host.contains(['/', '*', ' ', ':']) && !host.starts_with('[') {
                return Err(ConfigError::Invalid(format!(
                    "allowed host `{host}` must be a bare host name without port or wildcard"
                )));
            }
        }
        let a = &self.auth;
        if a.access_token_ttl_secs == 0 || a.refresh_token_ttl_secs == 0 {
            return Err(ConfigError::Invalid("auth token lifetimes must be greater than 0".into()));
        }
        if let Some(redis) = &self.redis
            && !redis.starts_with("redis://")
        {
            return Err(ConfigError::Invalid("redis must be a redis:// URL".into()));
        }
        if !self.listen.ip().is_loopback() && self.allowed_hosts.is_empty() {
            return Err(ConfigError::Invalid(
                "a non-loopback listen address needs at least one allowed_hosts entry (DNS rebinding guard)".into(),
            ));
        }
        Ok(())
    }
}
