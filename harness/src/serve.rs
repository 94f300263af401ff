//! The embedded reference server: the default scan target, and (hidden) a way to run it
//! directly so stdio targets can be tested without a second binary.

use std::net::SocketAddr;
use std::time::Duration;

use mcproof_server::config::Config;
use mcproof_server::faults::Faults;
use mcproof_server::http::listener::{self, ConnLimits};
use mcproof_server::server::McpServer;

/// A reference server running in this process on 127.0.0.1.
#[derive(Debug)]
pub struct Embedded {
    pub url: url::Url,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the reference server (standard profile, secure defaults) on `127.0.0.1:0`.
pub async fn start_embedded(faults: &[String]) -> anyhow::Result<Embedded> {
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        faults: Faults::from_names(faults)?,
        ..Config::default()
    };
    let server = McpServer::new(config)?;
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = tcp.local_addr()?;
    let app = mcproof_server::http::app(server, addr, false);
    let limits = ConnLimits { max_connections: 512, header_read_timeout: Duration::from_secs(10) };
    let task = tokio::spawn(listener::serve(tcp, app, None, limits));
    let url = url::Url::parse(&format!("http://127.0.0.1:{}/mcp", addr.port()))?;
    Ok(Embedded { url, task })
}

/// Runs the embedded reference server on stdin/stdout until end of input.
pub async fn serve_stdio(faults: &[String]) -> anyhow::Result<()> {
    let config = Config { faults: Faults::from_names(faults)?, ..Config::default() };
    let server = McpServer::new(config)?;
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    mcproof_server::stdio::run(server, stdin, tokio::io::stdout()).await?;
    Ok(())
}
