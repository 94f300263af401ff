//! The embedded reference server: the default scan target, and (hidden) a way to run it
//! directly so stdio targets can be tested without a second binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use mcproof_server::auth::AuthPolicy;
use mcproof_server::auth::api_keys::{ApiKeyStore, KeyTier};
use mcproof_server::config::Config;
use mcproof_server::faults::Faults;
use mcproof_server::http::listener::{self, ConnLimits};
use mcproof_server::server::McpServer;

/// A reference server running in this process on 127.0.0.1.
pub struct Embedded {
    pub url: url::Url,
    /// The API key (`mcp_sk_…`) the scan sends as a bearer token; `None` when authentication is off.
    pub api_key: Option<String>,
    task: tokio::task::JoinHandle<()>,
    /// The directory holding the key store (only SHA-256 digests), removed on drop.
    keys: Option<KeyDir>,
}

impl Embedded {
    /// The target that reaches this server, with its API key as the bearer token.
    pub fn target(&self) -> crate::target::Target {
        let mut http = crate::target::HttpTarget::new(self.url.clone());
        http.bearer = self.api_key.clone();
        crate::target::Target::Http(http)
    }
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("url", &self.url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.task.abort();
        drop(self.keys.take());
    }
}

/// A private temporary directory, removed on drop.
#[derive(Debug)]
struct KeyDir(PathBuf);

impl KeyDir {
    fn create() -> anyhow::Result<Self> {
        let name = format!("mcproof-embedded-{}-{:016x}", std::process::id(), rand::random::<u64>());
        let path = std::env::temp_dir().join(name);
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the embedded server requires authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddedAuth {
    /// Policy `required` with one API key (scopes `mcp:read mcp:write`) for the scan: the
    /// secure configuration, and what `mcproof scan` with no target scans.
    Required,
    /// Policy `public` (authentication off), for tests that bring their own credentials.
    Public,
}

/// Starts the reference server (standard profile, secure defaults, authentication required with
/// one API key the scan sends) on `127.0.0.1:0`.
pub async fn start_embedded(faults: &[String]) -> anyhow::Result<Embedded> {
    start_embedded_with(faults, EmbeddedAuth::Required).await
}

/// Starts the reference server on `127.0.0.1:0` with the given authentication.
pub async fn start_embedded_with(faults: &[String], auth: EmbeddedAuth) -> anyhow::Result<Embedded> {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        faults: Faults::from_names(faults)?,
        ..Config::default()
    };
    let (keys, api_key) = match auth {
        EmbeddedAuth::Public => {
            config.auth.policy = AuthPolicy::Public;
            (None, None)
        }
        EmbeddedAuth::Required => {
            let dir = KeyDir::create()?;
            let file = dir.0.join("api-keys.json");
            let mut store = ApiKeyStore::load(&file)?;
            let (key, _) =
                store.create("mcproof-scan", &["mcp:read", "mcp:write"], KeyTier::Authenticated, SystemTime::now())?;
            config.auth.policy = AuthPolicy::Required;
            config.auth.api_keys_file = Some(file);
            (Some(dir), Some(key.expose_secret().to_owned()))
        }
    };
    let server = McpServer::new(config)?;
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = tcp.local_addr()?;
    let app = mcproof_server::http::app(server, addr, false);
    let limits = ConnLimits { max_connections: 512, header_read_timeout: Duration::from_secs(10) };
    let task = tokio::spawn(listener::serve(tcp, app, None, limits));
    let url = url::Url::parse(&format!("http://127.0.0.1:{}/mcp", addr.port()))?;
    Ok(Embedded { url, api_key, task, keys })
}

/// Runs the embedded reference server on stdin/stdout until end of input.
pub async fn serve_stdio(faults: &[String]) -> anyhow::Result<()> {
    let config = Config { faults: Faults::from_names(faults)?, ..Config::default() };
    let server = McpServer::new(config)?;
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    mcproof_server::stdio::run(server, stdin, tokio::io::stdout()).await?;
    Ok(())
}
