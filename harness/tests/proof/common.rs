//! Shared plumbing for the proof cases: targets with one control broken.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use mcproof::check::Check;
use mcproof::probe::{Probe, ScanOptions};
use mcproof::runner::{CheckResult, run_one};
use mcproof::target::{HttpTarget, StdioTarget, Target};
use mcproof_server::auth::AuthPolicy;
use mcproof_server::auth::api_keys::{ApiKeyStore, KeyTier};
use mcproof_server::config::Config;
use mcproof_server::faults::Faults;

/// How a case breaks the control its check tests.
pub enum Broken {
    /// The reference server over HTTP with one fault switch on.
    Fault(&'static str),
    /// The reference server over HTTPS with one fault switch on (the secure run uses HTTPS too).
    TlsFault(&'static str),
    /// The reference server on stdio (through `mcproof __serve-reference --stdio`) with a fault.
    StdioFault(&'static str),
    /// A wiremock (or other) stand-in; returns the target to scan. The secure run uses the
    /// reference server over HTTP.
    Mock(&'static str, fn() -> BoxFuture<'static, Stand>),
    /// Both targets given (for a control the reference server does not have yet, the secure
    /// side is a stand-in too): what, the broken target, the secure target.
    #[allow(dead_code)] // no case needs it now; kept for controls the reference server lacks
    Stands(&'static str, fn() -> BoxFuture<'static, Stand>, fn() -> BoxFuture<'static, Stand>),
    /// The reference server over HTTP with its configuration changed after the secure defaults
    /// are applied (e.g. authentication off): what, the change.
    Config(&'static str, fn(&mut Config)),
}

/// A stand-in target and whatever must stay alive while it is scanned.
pub struct Stand {
    pub target: Target,
    pub keep: Box<dyn std::any::Any + Send>,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broken::Fault(n) | Broken::TlsFault(n) | Broken::StdioFault(n) => write!(f, "fault {n}"),
            Broken::Mock(what, _) => write!(f, "mock: {what}"),
            Broken::Stands(what, _, _) => write!(f, "stand-ins: {what}"),
            Broken::Config(what, _) => write!(f, "configuration: {what}"),
        }
    }
}

/// One proof case.
pub struct Case {
    pub check: &'static str,
    pub broken: Broken,
}

impl Case {
    pub fn fault(check: &'static str, fault: &'static str) -> Self {
        Self { check, broken: Broken::Fault(fault) }
    }

    pub fn tls_fault(check: &'static str, fault: &'static str) -> Self {
        Self { check, broken: Broken::TlsFault(fault) }
    }

    pub fn stdio_fault(check: &'static str, fault: &'static str) -> Self {
        Self { check, broken: Broken::StdioFault(fault) }
    }

    pub fn mock(check: &'static str, what: &'static str, make: fn() -> BoxFuture<'static, Stand>) -> Self {
        Self { check, broken: Broken::Mock(what, make) }
    }

    /// The broken target is the reference server with `change` applied to its configuration.
    pub fn config(check: &'static str, what: &'static str, change: fn(&mut Config)) -> Self {
        Self { check, broken: Broken::Config(what, change) }
    }

    /// Both the broken and the secure target are given (see [`Broken::Stands`]).
    #[allow(dead_code)]
    pub fn stands(
        check: &'static str,
        what: &'static str,
        broken: fn() -> BoxFuture<'static, Stand>,
        secure: fn() -> BoxFuture<'static, Stand>,
    ) -> Self {
        Self { check, broken: Broken::Stands(what, broken, secure) }
    }
}

/// What the check said against each target.
pub struct Outcome {
    pub broken: CheckResult,
    pub secure: CheckResult,
}

/// A running in-process reference server.
pub struct Running {
    pub url: url::Url,
    pub ca_pem: Option<std::path::PathBuf>,
    /// The API key the targets send as a bearer token (`None` when authentication is off).
    pub api_key: Option<String>,
    _task: tokio::task::JoinHandle<()>,
    _dir: Option<tempfile::TempDir>,
    _keys: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self._task.abort();
    }
}

/// Starts the reference server on 127.0.0.1:0 with `faults`, optionally over TLS, in its secure
/// configuration: authentication required, with one API key (scopes `mcp:read mcp:write`) that
/// the targets from [`http_target`] send.
pub async fn start(faults: &[&str], tls: bool) -> Running {
    start_with(faults, tls, |_| {}).await
}

/// [`start`] with `change` applied to the configuration last.
pub async fn start_with(faults: &[&str], tls: bool, change: fn(&mut Config)) -> Running {
    let keys = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key_file = keys.path().join("api-keys.json");
    let mut store = ApiKeyStore::load(&key_file).unwrap_or_else(|e| panic!("{e}"));
    let (key, _) = store
        .create("mcproof-proof", &["mcp:read", "mcp:write"], KeyTier::Authenticated, std::time::SystemTime::now())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        faults: Faults::from_names(faults).unwrap_or_else(|e| panic!("{e}")),
        ..Config::default()
    };
    config.auth.policy = AuthPolicy::Required;
    config.auth.api_keys_file = Some(key_file);
    change(&mut config);
    let api_key = (config.auth.policy != AuthPolicy::Public).then(|| key.expose_secret().to_owned());
    let server = mcproof_server::server::McpServer::new(config).unwrap_or_else(|e| panic!("{e}"));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = tcp.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (acceptor, dir, ca) = if tls {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let key = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, key.cert.pem()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&key_path, key.signing_key.serialize_pem()).unwrap_or_else(|e| panic!("{e}"));
        let acceptor =
            mcproof_server::http::listener::tls_acceptor(&cert_path, &key_path).unwrap_or_else(|e| panic!("{e}"));
        (Some(acceptor), Some(dir), Some(cert_path))
    } else {
        (None, None, None)
    };
    let app = mcproof_server::http::app(server, addr, tls);
    let limits = mcproof_server::http::listener::ConnLimits {
        max_connections: 256,
        header_read_timeout: Duration::from_secs(5),
    };
    let task = tokio::spawn(mcproof_server::http::listener::serve(tcp, app, acceptor, limits));
    let scheme = if tls { "https" } else { "http" };
    let url = url::Url::parse(&format!("{scheme}://127.0.0.1:{}/mcp", addr.port())).unwrap_or_else(|e| panic!("{e}"));
    Running { url, ca_pem: ca, api_key, _task: task, _dir: dir, _keys: keys }
}

/// The HTTP target for a running server.
pub fn http_target(running: &Running) -> Target {
    let mut t = HttpTarget::new(running.url.clone());
    t.ca_cert = running.ca_pem.clone();
    t.bearer = running.api_key.clone();
    Target::Http(t)
}

/// The embedded reference server on stdio with `faults`.
pub fn stdio_target(faults: &[&str]) -> Target {
    let mut args = vec!["__serve-reference".to_owned(), "--stdio".to_owned()];
    for f in faults {
        args.push("--fault".into());
        args.push((*f).to_owned());
    }
    Target::Stdio(StdioTarget {
        command: env!("CARGO_BIN_EXE_mcproof").to_owned(),
        args,
        env: vec![("MCPROOF_LOG".into(), "warn".into())],
        cwd: None,
        startup_timeout: Duration::from_secs(10),
    })
}

/// Options for proof scans: everything enabled, short timeouts.
pub fn options() -> ScanOptions {
    let mut o = ScanOptions { destructive: true, ..ScanOptions::default() };
    o.limits.timeout = Duration::from_secs(5);
    o.check_timeout = Duration::from_secs(30);
    o
}

async fn run_on(check: &Check, target: Target) -> CheckResult {
    match Probe::connect(target, options()).await {
        Ok(probe) => run_one(&probe, check).await,
        Err(e) => CheckResult {
            id: check.info.id.into(),
            title: String::new(),
            area: String::new(),
            level: check.info.level,
            weight: 0,
            kind: check.info.kind,
            source: String::new(),
            status: mcproof::check::Status::Error,
            message: format!("could not connect: {e}"),
            remediation: String::new(),
            evidence: Vec::new(),
            duration_ms: 0,
            accepted: None,
        },
    }
}

/// Runs `check` against the broken target and against the secure one.
/// With `MCPROOF_PROOF_SHOW` set, prints both verdicts of every case to stderr.
pub async fn run_case(check: &Check, case: &Case) -> Outcome {
    let outcome = run_both(check, case).await;
    if std::env::var_os("MCPROOF_PROOF_SHOW").is_some() {
        eprintln!("{} [{}]", check.info.id, case.broken);
        eprintln!("  broken: {} {}", outcome.broken.status, outcome.broken.message);
        eprintln!("  secure: {} {}", outcome.secure.status, outcome.secure.message);
    }
    outcome
}

async fn run_both(check: &Check, case: &Case) -> Outcome {
    match &case.broken {
        Broken::Fault(f) | Broken::TlsFault(f) => {
            let tls = matches!(case.broken, Broken::TlsFault(_));
            let broken_server = start(&[f], tls).await;
            let secure_server = start(&[], tls).await;
            Outcome {
                broken: run_on(check, http_target(&broken_server)).await,
                secure: run_on(check, http_target(&secure_server)).await,
            }
        }
        Broken::StdioFault(f) => {
            Outcome { broken: run_on(check, stdio_target(&[f])).await, secure: run_on(check, stdio_target(&[])).await }
        }
        Broken::Mock(_, make) => {
            let stand = make().await;
            let broken = run_on(check, stand.target.clone()).await;
            drop(stand.keep);
            let secure_server = start(&[], false).await;
            Outcome { broken, secure: run_on(check, http_target(&secure_server)).await }
        }
        Broken::Config(_, change) => {
            let broken_server = start_with(&[], false, *change).await;
            let secure_server = start(&[], false).await;
            Outcome {
                broken: run_on(check, http_target(&broken_server)).await,
                secure: run_on(check, http_target(&secure_server)).await,
            }
        }
        Broken::Stands(_, make_broken, make_secure) => {
            let stand = make_broken().await;
            let broken = run_on(check, stand.target.clone()).await;
            drop(stand.keep);
            let stand = make_secure().await;
            let secure = run_on(check, stand.target.clone()).await;
            drop(stand.keep);
            Outcome { broken, secure }
        }
    }
}
