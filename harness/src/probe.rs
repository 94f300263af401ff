//! What a running check can use: the connected target, what discovery learned, the options.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::check::Verdict;
use crate::client::http::PREFERRED_REVISION;
use crate::client::{ClientLimits, HttpClient, McpSession, StdioClient};
use crate::evidence::Exchange;
use crate::target::Target;

/// What the scan may do.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Run active checks (malformed and unusual requests). On by default.
    pub active: bool,
    /// Run destructive checks (bursts, tools with side effects). Off by default.
    pub destructive: bool,
    /// Seed for every generated probe, recorded in the report.
    pub seed: u64,
    /// Client limits for every exchange.
    pub limits: ClientLimits,
    /// Longest a single check may run before it is reported as ERROR.
    pub check_timeout: Duration,
    /// Checks running at once.
    pub concurrency: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            active: true,
            destructive: false,
            seed: 0,
            limits: ClientLimits::default(),
            check_timeout: Duration::from_secs(30),
            concurrency: 8,
        }
    }
}

/// What discovery learned before the checks ran.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The negotiated revision.
    pub version: String,
    /// The `InitializeResult`.
    pub init_result: Value,
    /// Every tool from `tools/list` (all pages, bounded).
    pub tools: Vec<Value>,
    /// The exchanges discovery made (initialize, tools/list), reusable as evidence.
    pub evidence: Vec<Exchange>,
}

impl Inventory {
    pub fn capabilities(&self) -> &Value {
        self.init_result.get("capabilities").unwrap_or(&Value::Null)
    }

    pub fn server_name(&self) -> Option<&str> {
        self.init_result.get("serverInfo")?.get("name")?.as_str()
    }
}

/// Why a target could not be scanned at all (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach the target: {0}")]
    Unreachable(String),
    #[error("the target does not speak MCP: {0}")]
    NotMcp(String),
    #[error("invalid target configuration: {0}")]
    Config(String),
}

/// The connected target plus options; shared by every check of a scan.
#[derive(Debug)]
pub struct Probe {
    pub target: Target,
    pub options: ScanOptions,
    pub inventory: Inventory,
    http: Option<HttpClient>,
    stdio: Option<StdioClient>,
    next_id: AtomicU64,
}

const MAX_TOOL_PAGES: usize = 20;

impl Probe {
    /// Connects, initializes and lists tools. Fails only if the target is unreachable or does
    /// not answer `initialize` like an MCP server.
    pub async fn connect(target: Target, options: ScanOptions) -> Result<Self, ConnectError> {
        let (http, stdio) = match &target {
            Target::Http(h) => (
                Some(HttpClient::new(h.clone(), options.limits).map_err(|e| ConnectError::Config(e.to_string()))?),
                None,
            ),
            Target::Stdio(s) => (None, Some(StdioClient::new(s.clone(), options.limits))),
        };
        let mut probe =
            Self { target, options, inventory: Inventory::default(), http, stdio, next_id: AtomicU64::new(100) };
        probe.inventory = probe.discover().await?;
        Ok(probe)
    }

    async fn discover(&self) -> Result<Inventory, ConnectError> {
        let mut inventory = Inventory::default();
        if let Some(http) = &self.http {
            let (session, response) = http.initialize(PREFERRED_REVISION).await;
            inventory.evidence.push(response.exchange.clone());
            let session = session.map_err(|why| match response.status {
                None => ConnectError::Unreachable(why),
                Some(_) => ConnectError::NotMcp(why),
            })?;
            inventory.version = session.version.clone();
            inventory.init_result = session.result.clone();
            let mut cursor: Option<Value> = None;
            for page in 0..MAX_TOOL_PAGES {
                let params = cursor.as_ref().map_or(json!({}), |c| json!({ "cursor": c }));
                let r = http.request(&session, 1 + page as u64, "tools/list", params).await;
                inventory.evidence.push(r.exchange.clone());
                let Some(result) = r.response_to(&json!(1 + page as u64)).and_then(|m| m.get("result")) else { break };
                if let Some(tools) = result.get("tools").and_then(Value::as_array) {
                    inventory.tools.extend(tools.iter().cloned());
                }
                cursor = result.get("nextCursor").filter(|c| c.is_string()).cloned();
                if cursor.is_none() {
                    break;
                }
            }
            let _ = http.delete(&session).await;
        } else if let Some(stdio) = &self.stdio {
            let mut conn = stdio.spawn().map_err(ConnectError::Unreachable)?;
            let init = conn.initialize(PREFERRED_REVISION).await;
            inventory.evidence.push(init.exchange.clone());
            let Some(result) = init.response.as_ref().and_then(|r| r.get("result")).cloned() else {
                let why = init.error.clone().unwrap_or_else(|| "initialize was answered with an error".into());
                let stderr = conn.stderr();
                let _ = conn.close(Duration::from_secs(2)).await;
                let detail = if stderr.is_empty() { why } else { format!("{why}; stderr: {}", truncate(&stderr, 300)) };
                return Err(ConnectError::NotMcp(detail));
            };
            inventory.version =
                result.get("protocolVersion").and_then(Value::as_str).unwrap_or(PREFERRED_REVISION).to_owned();
            inventory.init_result = result;
            let r = conn.request(1, "tools/list", json!({})).await;
            inventory.evidence.push(r.exchange.clone());
            if let Some(tools) = r.response.as_ref().and_then(|m| m.get("result")?.get("tools")?.as_array().cloned()) {
                inventory.tools = tools;
            }
            let _ = conn.close(Duration::from_secs(3)).await;
        }
        Ok(inventory)
    }

    /// A fresh request id, unique within the scan.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The HTTP client, or a SKIP verdict for stdio targets.
    pub fn http(&self) -> Result<&HttpClient, Verdict> {
        self.http.as_ref().ok_or_else(|| Verdict::skip("not applicable: the target is not an HTTP endpoint"))
    }

    /// The stdio launcher, or a SKIP verdict for HTTP targets.
    pub fn stdio(&self) -> Result<&StdioClient, Verdict> {
        self.stdio.as_ref().ok_or_else(|| Verdict::skip("not applicable: the target is not a stdio command"))
    }

    /// A fresh, initialized HTTP session (new `initialize`), or an ERROR verdict carrying the
    /// failed exchange.
    pub async fn session(&self) -> Result<(&HttpClient, McpSession), Verdict> {
        let http = self.http()?;
        let (session, response) = http.initialize(PREFERRED_REVISION).await;
        match session {
            Ok(s) => Ok((http, s)),
            Err(why) => Err(Verdict::error(format!("could not open a session: {why}")).with(response.exchange)),
        }
    }

    /// `Some(why)` once the target has stopped answering (most HTTP requests time out without
    /// a response); the runner then stops the scan's remaining checks instead of letting each
    /// one wait out its timeouts.
    pub fn stopped_answering(&self) -> Option<String> {
        self.http.as_ref()?.health().stopped_answering(self.options.limits.timeout)
    }

    /// The negotiated revision.
    pub fn version(&self) -> &str {
        &self.inventory.version
    }
}

/// Cuts text for messages.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
