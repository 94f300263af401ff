//! What to scan: a Streamable HTTP endpoint or a stdio command.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// A Streamable HTTP endpoint and how to reach it.
#[derive(Debug, Clone, Serialize)]
pub struct HttpTarget {
    pub url: url::Url,
    /// Extra headers sent with every request (values are redacted in reports).
    pub headers: Vec<(String, String)>,
    /// Sent as `Authorization: Bearer …`.
    #[serde(skip)]
    pub bearer: Option<String>,
    /// Sent as `X-API-Key: …`.
    #[serde(skip)]
    pub api_key: Option<String>,
    /// PEM file holding a client certificate and its key, for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Accept any server certificate (off by default).
    pub insecure_tls: bool,
    /// PEM file of an extra CA to trust.
    pub ca_cert: Option<PathBuf>,
}

impl HttpTarget {
    pub fn new(url: url::Url) -> Self {
        Self {
            url,
            headers: Vec::new(),
            bearer: None,
            api_key: None,
            client_cert: None,
            insecure_tls: false,
            ca_cert: None,
        }
    }

    /// Whether the target is on this machine (some checks only apply to local servers).
    pub fn is_loopback(&self) -> bool {
        match self.url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }
}

/// A command that speaks MCP on stdin/stdout.
#[derive(Debug, Clone, Serialize)]
pub struct StdioTarget {
    pub command: String,
    pub args: Vec<String>,
    /// Extra environment (values are redacted in reports).
    #[serde(skip)]
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// How long the child may take to answer `initialize`.
    pub startup_timeout: Duration,
}

/// The target of a scan.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "transport", rename_all = "lowercase")]
pub enum Target {
    Http(HttpTarget),
    Stdio(StdioTarget),
}

impl Target {
    pub fn transport(&self) -> crate::check::Transport {
        match self {
            Target::Http(_) => crate::check::Transport::Http,
            Target::Stdio(_) => crate::check::Transport::Stdio,
        }
    }

    /// A one-line description for reports.
    pub fn describe(&self) -> String {
        match self {
            Target::Http(h) => h.url.to_string(),
            Target::Stdio(s) => {
                let mut line = s.command.clone();
                for a in &s.args {
                    line.push(' ');
                    line.push_str(a);
                }
                line
            }
        }
    }

    /// The target named on the command line, if any (`None`: the embedded reference server).
    /// One parser for `scan`, `baseline`, `fuzz` and `replay`.
    pub fn from_args(url: Option<&str>, command: &[String], conn: &ConnArgs) -> Result<Option<Target>, TargetArgError> {
        let usage = TargetArgError;
        let mut headers = Vec::new();
        for h in &conn.headers {
            let (name, value) = h.split_once(':').ok_or_else(|| usage("--header expects `Name: value`".into()))?;
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(usage(format!("--header: `{name}` is not a valid header name")));
            }
            if http::HeaderValue::from_str(value).is_err() {
                return Err(usage(format!("--header: the value of `{name}` is not a valid header value")));
            }
            headers.push((name.to_owned(), value.to_owned()));
        }
        for (flag, secret) in [("--bearer", &conn.bearer), ("--api-key", &conn.api_key)] {
            if secret.as_deref().is_some_and(|s| http::HeaderValue::from_str(&format!("Bearer {s}")).is_err()) {
                return Err(usage(format!("{flag}: the value is not a valid header value")));
            }
        }
        match (url, command.is_empty()) {
            (Some(_), false) => Err(usage("give either a URL or a command after `--`, not both".into())),
            (None, true) => Ok(None),
            (None, false) => {
                let mut env = Vec::new();
                for pair in &conn.env {
                    let (k, v) =
                        pair.split_once('=').ok_or_else(|| usage(format!("--env expects NAME=VALUE, got `{pair}`")))?;
                    env.push((k.to_owned(), v.to_owned()));
                }
                Ok(Some(Target::Stdio(StdioTarget {
                    command: command[0].clone(),
                    args: command[1..].to_vec(),
                    env,
                    cwd: conn.cwd.clone(),
                    startup_timeout: Duration::from_secs(conn.startup_timeout),
                })))
            }
            (Some(url), true) => {
                let parsed = url::Url::parse(url).map_err(|e| usage(format!("`{url}` is not a URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(usage(
                        "the target URL must be http:// or https:// (for stdio servers put the command after `--`)"
                            .into(),
                    ));
                }
                let mut target = HttpTarget::new(parsed);
                target.headers = headers;
                target.bearer = conn.bearer.clone();
                target.api_key = conn.api_key.clone();
                target.client_cert = conn.client_cert.clone();
                target.ca_cert = conn.ca_cert.clone();
                target.insecure_tls = conn.insecure_tls;
                Ok(Some(Target::Http(target)))
            }
        }
    }
}

/// How to reach the target: the connection options shared by `scan`, `baseline`, `fuzz` and
/// `replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    /// Extra HTTP header `Name: value`; repeatable.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Bearer token sent as `Authorization: Bearer …` (prefer the environment variable).
    #[arg(long, env = "MCPROOF_BEARER", hide_env_values = true, value_name = "TOKEN")]
    pub bearer: Option<String>,
    /// API key sent as `X-API-Key` (prefer the environment variable).
    #[arg(long, env = "MCPROOF_API_KEY", hide_env_values = true, value_name = "KEY")]
    pub api_key: Option<String>,
    /// PEM file with a client certificate and key (mutual TLS).
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// PEM file with an extra CA certificate to trust.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Accept any TLS certificate (verification is on by default).
    #[arg(long)]
    pub insecure_tls: bool,
    /// Environment variable `NAME=VALUE` for a stdio server; repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Working directory for a stdio server.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Seconds a stdio server may take to answer `initialize`.
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    pub startup_timeout: u64,
    /// Seconds a request may go unanswered before it counts as a hang.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub timeout: u64,
}

/// A target given on the command line that cannot be used (a usage error, exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetArgError(pub String);
