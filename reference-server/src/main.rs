//! `mcproof-server`: serve the reference secure MCP server over Streamable HTTP or stdio, or
//! verify an audit log.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use mcproof_server::config::{Config, Profile, Quota, TlsConfig};
use mcproof_server::http::listener::{self, ConnLimits};
use mcproof_server::server::McpServer;

/// A reference secure MCP server: Streamable HTTP (default) or stdio, hardened by default.
///
/// Configuration comes from defaults, then `--config FILE` (TOML), then environment variables,
/// then flags. Secrets are never taken from flags or the config file.
#[derive(Debug, Parser)]
#[command(name = "mcproof-server", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Audit-log tools.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Read a password on stdin and print its Argon2id hash, for the `auth.users` list of the
    /// config file (passwords themselves never go in configuration).
    HashPassword,
    /// API keys: create (printed once), rotate (the old key keeps working for a grace period),
    /// revoke, list. Only SHA-256 digests are stored.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Make a key for a principal and print it once on stdout.
    Create {
        /// The key store file (created if missing; mode 0600).
        #[arg(long, value_name = "FILE")]
        store: PathBuf,
        /// The principal the key authenticates as.
        #[arg(long)]
        principal: String,
        /// Scopes, comma-separated: mcp:read, mcp:write.
        #[arg(long, value_delimiter = ',', default_value = "mcp:read")]
        scopes: Vec<String>,
        /// An operator key (adds mcp:admin).
        #[arg(long)]
        admin: bool,
    },
    /// Replace a key; the old one keeps working for the grace period.
    Rotate {
        #[arg(long, value_name = "FILE")]
        store: PathBuf,
        /// The key's public id (see `keys list`).
        id: String,
        /// Grace period in hours (default 48).
        #[arg(long)]
        grace_hours: Option<u64>,
    },
    /// Revoke a key at once.
    Revoke {
        #[arg(long, value_name = "FILE")]
        store: PathBuf,
        id: String,
    },
    /// List keys: ids, principals, scopes and states (never keys or digests).
    List {
        #[arg(long, value_name = "FILE")]
        store: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check a hash-chained audit log: exits 0 if intact, 1 naming the first bad line.
    Verify {
        /// The audit log (JSON lines) to check.
        file: PathBuf,
        /// Also require the chain to end with this hash (detects a truncated tail).
        #[arg(long, value_name = "HEX")]
        expect_last_hash: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// TOML configuration file (keys as in `--print-config`).
    #[arg(long, env = "MCPROOF_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port. Default 127.0.0.1:8080.
    #[arg(long, env = "MCPROOF_LISTEN", value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Serve one client on stdin/stdout instead of HTTP (logs stay on stderr).
    #[arg(long, conflicts_with_all = ["listen", "tls_cert", "tls_key"])]
    stdio: bool,
    /// Which tools, resources and prompts to offer.
    #[arg(long, env = "MCPROOF_PROFILE", value_enum)]
    profile: Option<Profile>,
    /// Accept this Host name (no port) besides the loopback names; repeatable.
    #[arg(long = "allowed-host", env = "MCPROOF_ALLOWED_HOSTS", value_delimiter = ',', value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// Accept this Origin (scheme://host[:port]) besides the server's own; repeatable.
    #[arg(long = "allowed-origin", env = "MCPROOF_ALLOWED_ORIGINS", value_delimiter = ',', value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// PEM certificate chain; serves HTTPS (with HSTS) together with --tls-key.
    #[arg(long, env = "MCPROOF_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "MCPROOF_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Directory the file-reader tool is confined to (default: a seeded temporary directory).
    #[arg(long, env = "MCPROOF_SANDBOX_DIR", value_name = "DIR")]
    sandbox_dir: Option<PathBuf>,
    /// Append the hash-chained audit log to this file (default: audit events go to stderr).
    #[arg(long, env = "MCPROOF_AUDIT_LOG", value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Largest request body in bytes (larger gets 413).
    #[arg(long, env = "MCPROOF_MAX_BODY_BYTES", value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Time a tool may run, in milliseconds.
    #[arg(long, env = "MCPROOF_TOOL_TIMEOUT_MS", value_name = "MS")]
    tool_timeout_ms: Option<u64>,
    /// Override a rate limit: LAYER=PER_MINUTE/BURST with LAYER one of ip, session, principal,
    /// tool, or tool:NAME for one tool; repeatable. Example: --rate-limit tool:read_file=60/5
    #[arg(long = "rate-limit", value_name = "LAYER=PER_MINUTE/BURST", value_parser = parse_rate_limit)]
    rate_limits: Vec<(String, Quota)>,
    /// Log format on stderr.
    #[arg(long, env = "MCPROOF_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log filter (tracing env-filter syntax), e.g. info or mcproof_server=debug.
    #[arg(long, env = "MCPROOF_LOG", default_value = "info", value_name = "FILTER")]
    log: String,
    /// Authentication: public (off), required (every request needs a token or API key) or
    /// public-tier (callers without a credential use public tools only).
    #[arg(long, env = "MCPROOF_AUTH_POLICY", value_name = "POLICY", value_parser = parse_policy)]
    auth_policy: Option<mcproof_server::auth::AuthPolicy>,
    /// API-key store written by `mcproof-server keys create`.
    #[arg(long, env = "MCPROOF_API_KEYS", value_name = "FILE")]
    api_keys: Option<PathBuf>,
    /// PKCS#8 PEM key that signs access tokens (default: an ephemeral Ed25519 key).
    #[arg(long, env = "MCPROOF_SIGNING_KEY", value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// Keep shared state in this Redis (redis://HOST:PORT) so several replicas act as one.
    #[arg(long, env = "MCPROOF_REDIS", value_name = "URL")]
    redis: Option<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Disable one control to prove the harness can see it missing; repeatable. Only in builds
    /// with the `faults` feature, never in release builds.
    #[cfg(feature = "faults")]
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
    /// List the fault switches and exit.
    #[cfg(feature = "faults")]
    #[arg(long)]
    list_faults: bool,
}

fn parse_policy(s: &str) -> Result<mcproof_server::auth::AuthPolicy, String> {
    use mcproof_server::auth::AuthPolicy;
    match s {
        "public" => Ok(AuthPolicy::Public),
        "required" => Ok(AuthPolicy::Required),
        "public-tier" => Ok(AuthPolicy::PublicTier),
        other => Err(format!("unknown auth policy `{other}`: use public, required or public-tier")),
    }
}

fn parse_rate_limit(s: &str) -> Result<(String, Quota), String> {
    let usage = "expected LAYER=PER_MINUTE/BURST, e.g. ip=600/100";
    let (layer, rate) = s.split_once('=').ok_or(usage)?;
    let (per_minute, burst) = rate.split_once('/').ok_or(usage)?;
    let per_minute: u32 =
        per_minute.trim().parse().map_err(|_| format!("{usage}: PER_MINUTE must be a whole number"))?;
    let burst: u32 = burst.trim().parse().map_err(|_| format!("{usage}: BURST must be a whole number"))?;
    let layer = layer.trim();
    let known = matches!(layer, "ip" | "session" | "principal" | "tool")
        || layer.strip_prefix("tool:").is_some_and(|n| !n.is_empty());
    if !known {
        return Err(format!("unknown rate-limit layer `{layer}`: use ip, session, principal, tool or tool:NAME"));
    }
    Ok((layer.to_owned(), Quota { per_minute, burst }))
}

impl ServeArgs {
    /// Defaults, then the file, then environment and flags (clap has merged those two).
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(profile) = self.profile {
            config.profile = profile;
        }
        config.allowed_hosts.extend(self.allowed_hosts.iter().cloned());
        config.allowed_origins.extend(self.allowed_origins.iter().cloned());
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.tls = Some(TlsConfig { cert: cert.clone(), key: key.clone() });
        }
        if let Some(dir) = &self.sandbox_dir {
            config.sandbox_dir = Some(dir.clone());
        }
        if let Some(file) = &self.audit_log {
            config.audit_log = Some(file.clone());
        }
        if let Some(bytes) = self.max_body_bytes {
            config.limits.max_body_bytes = bytes;
        }
        if let Some(policy) = self.auth_policy {
            config.auth.policy = policy;
        }
        if let Some(file) = &self.api_keys {
            config.auth.api_keys_file = Some(file.clone());
        }
        if let Some(file) = &self.signing_key {
            config.auth.signing_key_file = Some(file.clone());
        }
        if let Some(url) = &self.redis {
            config.redis = Some(url.clone());
        }
        if let Some(ms) = self.tool_timeout_ms {
            config.limits.tool_timeout_ms = ms;
        }
        for (layer, quota) in &self.rate_limits {
            let rl = &mut config.rate_limits;
            match layer.as_str() {
                "ip" => rl.ip = *quota,
                "session" => rl.session = *quota,
                "principal" => rl.principal = *quota,
                "tool" => rl.tool = *quota,
                other => {
                    let name = other.trim_start_matches("tool:");
                    rl.per_tool.insert(name.to_owned(), *quota);
                }
            }
        }
        #[cfg(feature = "faults")]
        {
            config.faults = mcproof_server::faults::Faults::from_names(&self.faults)?;
        }
        config.validate()?;
        Ok(config)
    }
}

fn init_logging(args: &ServeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false);
    match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot initialize logging: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Audit { action: AuditCommand::Verify { file, expect_last_hash } }) => {
            return verify_audit(&file, expect_last_hash.as_deref());
        }
        Some(Command::Keys { action }) => return keys(action),
        Some(Command::HashPassword) => return hash_password(),
        None => {}
    }
    let args = cli.serve;
    #[cfg(feature = "faults")]
    if args.list_faults {
        for (name, what) in mcproof_server::faults::KNOWN {
            println!("{name:24} {what}");
        }
        return ExitCode::SUCCESS;
    }
    let config = match args.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mcproof-server: error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        return match toml::to_string_pretty(&config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mcproof-server: error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Err(e) = init_logging(&args) {
        eprintln!("mcproof-server: error: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcproof-server: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, args.stdio)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Config(e)) => {
            eprintln!("mcproof-server: error: {e:#}");
            ExitCode::from(2)
        }
        Err(RunError::Runtime(e)) => {
            eprintln!("mcproof-server: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

enum RunError {
    /// The configuration cannot work (bad TLS files, unwritable audit log…): exit 2.
    Config(anyhow::Error),
    /// Something failed while running: exit 1.
    Runtime(anyhow::Error),
}

async fn run(config: Config, stdio: bool) -> Result<(), RunError> {
    let tls = match &config.tls {
        Some(t) if !stdio => Some(listener::tls_acceptor(&t.cert, &t.key).map_err(|e| RunError::Config(e.into()))?),
        _ => None,
    };
    let limits = ConnLimits {
        max_connections: config.limits.max_connections,
        header_read_timeout: Duration::from_millis(config.limits.header_read_timeout_ms),
    };
    let listen = config.listen;
    let store: std::sync::Arc<dyn mcproof_server::store::SharedStore> = match &config.redis {
        Some(url) => std::sync::Arc::new(
            mcproof_server::store::RedisStore::connect(url)
                .await
                .map_err(|e| RunError::Config(anyhow::anyhow!("cannot connect to Redis: {e}")))?,
        ),
        None => std::sync::Arc::new(mcproof_server::store::MemoryStore::default()),
    };
    let server = McpServer::with_store(config, store).map_err(|e| RunError::Config(e.into()))?;
    if stdio {
        tracing::info!("serving MCP on stdio");
        let stdin = tokio::io::BufReader::new(tokio::io::stdin());
        return mcproof_server::stdio::run(server, stdin, tokio::io::stdout())
            .await
            .map_err(|e| RunError::Runtime(e.into()));
    }
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))
        .map_err(RunError::Runtime)?;
    let bound = tcp.local_addr().map_err(|e| RunError::Runtime(e.into()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let app = mcproof_server::http::app(server, bound, tls.is_some());
    {
        // Exactly one line on stdout, so scripts can read the real port.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {scheme}://{bound}/mcp");
        let _ = stdout.flush();
    }
    tracing::info!(%bound, tls = tls.is_some(), "serving MCP over Streamable HTTP");
    tokio::select! {
        () = listener::serve(tcp, app, tls, limits) => Ok(()),
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}

fn hash_password() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("mcproof-server: error: cannot read the password: {e}");
        return ExitCode::from(2);
    }
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("mcproof-server: error: empty password on stdin");
        return ExitCode::from(2);
    }
    match mcproof_server::oauth::users::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mcproof-server: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn keys(action: KeysAction) -> ExitCode {
    use mcproof_server::auth::api_keys::{KeysCommand, execute};
    let cmd = match action {
        KeysAction::Create { store, principal, scopes, admin } => {
            KeysCommand::Create { store, principal, scopes, admin }
        }
        KeysAction::Rotate { store, id, grace_hours } => KeysCommand::Rotate { store, id, grace_hours },
        KeysAction::Revoke { store, id } => KeysCommand::Revoke { store, id },
        KeysAction::List { store } => KeysCommand::List { store },
    };
    match execute(cmd, &mut std::io::stdout(), &mut std::io::stderr()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcproof-server: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn verify_audit(file: &std::path::Path, expect_last_hash: Option<&str>) -> ExitCode {
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("mcproof-server: error: cannot open {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    match mcproof_server::audit::verify(std::io::BufReader::new(f)) {
        Ok(summary) => {
            if let Some(expected) = expect_last_hash
                && !summary.last_hash.eq_ignore_ascii_case(expected)
            {
                println!(
                    "audit log {}: chain intact over {} lines, but it does not end with the expected hash (truncated?)",
                    file.display(),
                    summary.lines
                );
                return ExitCode::FAILURE;
            }
            println!("audit log {}: OK, {} lines, last hash {}", file.display(), summary.lines, summary.last_hash);
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("audit log {}: TAMPERED: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}
