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
}
