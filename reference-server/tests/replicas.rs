//! Two in-process `mcproof-server` replicas sharing one real `redis-server` act as one server:
//! a rate limit holds across them, a session created on one is served (and ended) on the other,
//! a one-time code is redeemed once, a revocation on one is honoured by the other, and when
//! Redis dies both refuse promptly with 503 (fail closed) and recover when it returns.
//!
//! Authentication is on (`required`): both replicas share one signing key, issuer and resource,
//! as replicas behind one load balancer would, and the test mints access tokens with that key.
//!
//! `redis-server` comes from `scripts/redis.sh`. Without it this test fails, unless
//! `MCPROOF_SKIP_REDIS` is set, in which case it prints SKIPPED and passes.

#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

mod redis_server;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mcproof_server::auth::AuthPolicy;
use mcproof_server::auth::jwt::{Alg, SigningKey, TokenIssuer};
use mcproof_server::config::{Config, Profile, Quota};
use mcproof_server::http::listener::{self, ConnLimits};
use mcproof_server::server::McpServer;
use mcproof_server::store::{RedisStore, SharedStore};
use redis_server::RedisServer;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Replicas and a minimal MCP client.

const ISSUER: &str = "http://127.0.0.1";
const RESOURCE: &str = "http://127.0.0.1/mcp";
const VERSION: &str = "2025-11-25";
const CHEAP: &str = "test_simple_text";
/// The cheap tool's quota: this many back-to-back calls, then one a minute.
const BURST: u32 = 4;

struct Replica {
    server: McpServer,
    url: String,
    _task: tokio::task::JoinHandle<()>,
}

fn config(signing_key: &Path) -> Config {
    let mut config = Config { profile: Profile::Conformance, ..Config::default() };
    config.auth.policy = AuthPolicy::Required;
    config.auth.issuer = Some(ISSUER.into());
    config.auth.resource = Some(RESOURCE.into());
    config.auth.signing_key_file = Some(signing_key.to_path_buf());
    config.rate_limits.per_tool.insert(CHEAP.into(), Quota { per_minute: 1, burst: BURST });
    config
}

async fn replica(config: Config, redis_url: &str) -> Replica {
    let store: Arc<dyn SharedStore> = Arc::new(RedisStore::connect(redis_url).await.unwrap());
    let server = McpServer::with_store(config, store).unwrap();
    assert!(server.is_shared() && server.rate_limits().is_shared());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = tcp.local_addr().unwrap();
    let limits = ConnLimits {
        max_connections: server.config().limits.max_connections,
        header_read_timeout: Duration::from_millis(server.config().limits.header_read_timeout_ms),
    };
    let app = mcproof_server::http::app(server.clone(), addr, false);
    let task = tokio::spawn(listener::serve(tcp, app, None, limits));
    Replica { server, url: format!("http://{addr}/mcp"), _task: task }
}

struct Reply {
    status: u16,
    retry_after: Option<String>,
    session: Option<String>,
    body: String,
    elapsed: Duration,
}

impl Reply {
    /// The JSON-RPC message: the body, or the last `data:` line of an SSE body.
    fn json(&self) -> Value {
        let text = match self.body.lines().rev().find_map(|l| l.strip_prefix("data:")) {
            Some(data) if !self.body.trim_start().starts_with('{') => data.trim().to_owned(),
            _ => self.body.clone(),
        };
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }

    fn describe(&self) -> String {
        format!("{} after {:?}: {}", self.status, self.elapsed, self.body)
    }
}

struct Client {
    http: reqwest::Client,
}

impl Client {
    fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .unwrap();
        Client { http }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &str,
        sid: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method, url)
            .header("accept", "application/json, text/event-stream")
            .header("authorization", format!("Bearer {token}"))
            .header("mcp-protocol-version", VERSION);
        if let Some(sid) = sid {
            req = req.header("mcp-session-id", sid);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_string());
        }
        let started = Instant::now();
        let r = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = r.status().as_u16();
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (retry_after, session) = (header("retry-after"), header("mcp-session-id"));
        let body = r.text().await.unwrap_or_default();
        Reply { status, retry_after, session, body, elapsed: started.elapsed() }
    }

    async fn post(&self, url: &str, token: &str, sid: Option<&str>, body: Value) -> Reply {
        self.send(reqwest::Method::POST, url, token, sid, Some(body)).await
    }

    async fn request(&self, url: &str, token: &str, sid: &str, id: i64, method: &str, params: Value) -> Reply {
        self.post(url, token, Some(sid), json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await
    }

    /// `initialize` + `notifications/initialized`; the new session id.
    async fn initialize(&self, url: &str, token: &str) -> Result<String, Reply> {
        let params = json!({ "protocolVersion": VERSION, "capabilities": {}, "clientInfo": { "name": "replicas", "version": "1" } });
        let r = self
            .post(url, token, None, json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params }))
            .await;
        let Some(sid) = r.session.clone().filter(|_| r.status == 200) else { return Err(r) };
        let n =
            self.post(url, token, Some(&sid), json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;
        if n.status != 202 {
            return Err(n);
        }
        Ok(sid)
    }
}

fn assert_unavailable(r: &Reply, what: &str) {
    assert_eq!(r.status, 503, "{what}: {}", r.describe());
    let body = r.json();
    assert_eq!(body["error"]["code"], json!(-32603), "{what}: {body}");
    assert_eq!(body["error"]["message"], json!("Shared state unavailable; try again"), "{what}: {body}");
    assert!(r.elapsed < Duration::from_secs(3), "{what}: not prompt: {}", r.describe());
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_act_as_one_server() {
    let Some(mut redis) = RedisServer::start_or_skip("two_replicas_on_one_redis_act_as_one_server") else { return };
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("signing-key.pem");
    let key = SigningKey::generate(Alg::EdDSA).unwrap();
    std::fs::write(&key_path, key.to_pkcs8_pem().unwrap()).unwrap();
    let issuer = TokenIssuer::new(ISSUER, RESOURCE, key, Duration::from_secs(600));
    let token_for = |sub: &str| issuer.issue(sub, "mcp:read mcp:write", None).unwrap();

    let a = replica(config(&key_path), &redis.url()).await;
    let b = replica(config(&key_path), &redis.url()).await;
    let client = Client::new();
    let (alice, _) = token_for("alice");
    let (mallory, _) = token_for("mallory");

    // (b) A session made on A is served by B (which never saw it), for its owner only.
    let sid = client.initialize(&a.url, &alice).await.unwrap_or_else(|r| panic!("initialize: {}", r.describe()));
    let r = client.request(&b.url, &alice, &sid, 1, "tools/list", json!({})).await;
    assert_eq!(r.status, 200, "A's session on B: {}", r.describe());
    assert!(r.json()["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()), "{}", r.describe());
    let r = client.request(&b.url, &mallory, &sid, 2, "tools/list", json!({})).await;
    assert_eq!(r.status, 404, "another principal cannot use the session on B: {}", r.describe());

    // (a) One tool quota across both replicas: alternating quick calls, exactly BURST admitted.
    let extra = 4;
    let (mut admitted, mut limited) = (0, 0);
    for i in 0..(BURST + extra) {
        let url = if i % 2 == 0 { &a.url } else { &b.url };
        let r = client.request(url, &alice, &sid, 10 + i64::from(i), "tools/call", json!({ "name": CHEAP })).await;
        match r.status {
            200 => {
                assert_eq!(r.json()["result"]["isError"], json!(false), "{}", r.describe());
                admitted += 1;
            }
            429 => {
                let secs: u64 =
                    r.retry_after.as_deref().unwrap_or_else(|| panic!("429 without Retry-After")).parse().unwrap();
                assert!(secs >= 1, "Retry-After {secs}");
                assert_eq!(r.json()["error"]["code"], json!(-32000), "{}", r.describe());
                assert_eq!(r.json()["error"]["data"]["layer"], json!("tool"), "{}", r.describe());
                limited += 1;
            }
            _ => panic!("call {i}: {}", r.describe()),
        }
    }
    assert_eq!((admitted, limited), (BURST, extra), "one budget across replicas");
    // The quota is per principal: mallory's own session is not limited by alice's calls.
    let msid = client.initialize(&b.url, &mallory).await.unwrap_or_else(|r| panic!("initialize: {}", r.describe()));
    let r = client.request(&a.url, &mallory, &msid, 30, "tools/call", json!({ "name": CHEAP })).await;
    assert_eq!(r.status, 200, "{}", r.describe());

    // (b, cont.) Ended on B, the session is gone on A too (A holds a live local copy).
    let r = client.send(reqwest::Method::DELETE, &b.url, &alice, Some(&sid), None).await;
    assert_eq!(r.status, 204, "DELETE on B: {}", r.describe());
    let r = client.request(&a.url, &alice, &sid, 40, "tools/list", json!({})).await;
    assert_eq!(r.status, 404, "ended on B, used on A: {}", r.describe());
    let r = client.request(&b.url, &alice, &sid, 41, "tools/list", json!({})).await;
    assert_eq!(r.status, 404, "ended on B, used on B: {}", r.describe());

    // (c) A one-time code stored through A is taken once, by B; A then finds nothing.
    let code_hash = format!("replicas-code-{}", rand::random::<u64>());
    a.server.store().put_code(&code_hash, b"record", Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.server.store().take_code(&code_hash).await.unwrap().as_deref(), Some(&b"record"[..]));
    assert_eq!(a.server.store().take_code(&code_hash).await.unwrap(), None);
    assert_eq!(b.server.store().take_code(&code_hash).await.unwrap(), None);

    // (d) A token revoked through A is refused by B (and by A).
    let (token, claims) = token_for("carol");
    let csid = client.initialize(&b.url, &token).await.unwrap_or_else(|r| panic!("initialize: {}", r.describe()));
    let r = client.request(&b.url, &token, &csid, 50, "ping", json!({})).await;
    assert_eq!(r.status, 200, "before revocation: {}", r.describe());
    let until = SystemTime::UNIX_EPOCH + Duration::from_secs(claims.exp + 120);
    a.server.store().revoke_jti(&claims.jti, until).await.unwrap();
    for (name, url) in [("B", &b.url), ("A", &a.url)] {
        let r = client.request(url, &token, &csid, 51, "ping", json!({})).await;
        assert_eq!(r.status, 401, "revoked token on {name}: {}", r.describe());
    }

    // (e) Redis dies: both replicas refuse every request promptly with 503 (fail closed).
    let msid_check = msid.clone();
    redis.kill();
    for (name, url) in [("A", &a.url), ("B", &b.url)] {
        let r = client.request(url, &mallory, &msid_check, 60, "tools/list", json!({})).await;
        assert_unavailable(&r, &format!("tools/list on {name} with Redis down"));
        let r = client.request(url, &mallory, &msid_check, 61, "tools/call", json!({ "name": CHEAP })).await;
        assert_unavailable(&r, &format!("tools/call on {name} with Redis down"));
        let r = client.initialize(url, &mallory).await.expect_err("initialize with Redis down");
        assert_unavailable(&r, &format!("initialize on {name} with Redis down"));
    }

    // Redis returns (empty: it keeps nothing on disk): requests succeed again within seconds.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    let sid = loop {
        match client.initialize(&a.url, &alice).await {
            Ok(sid) => break sid,
            Err(r) => {
                assert_eq!(r.status, 503, "while reconnecting: {}", r.describe());
                assert!(Instant::now() < deadline, "A did not recover: {}", r.describe());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = client.request(&b.url, &alice, &sid, 70, "tools/list", json!({})).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "while reconnecting: {}", r.describe());
        assert!(Instant::now() < deadline, "B did not recover: {}", r.describe());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
