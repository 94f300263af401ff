//! What security costs per `tools/call`, in process (no network): the axum `app` driven with
//! `tower::ServiceExt::oneshot`, one `query_products` call with small arguments per iteration,
//! the response body read to the end.
//!
//! - `secure_http/cached_token`: policy `required`, a bearer access token from the server's own
//!   issuer (a verified-token cache hit after the first call), plus everything below.
//! - `secure_http/api_key`: the same with an API key (`mcp_sk_…`, SHA-256 lookup).
//! - `public_http`: policy `public` (no credential, no scope decision); the Host/Origin guards,
//!   rate limits (huge quotas: checked, never hit), JSON-RPC parsing, schema validation, output
//!   sanitization and the hash-chained audit record (tracing sink, no subscriber) still run.
//! - `no_security_http`: the same axum app and the same tool with every security control off
//!   (`Faults::all_security_off`, feature `bench-insecure`, enabled only for the benches): no
//!   authentication or scope decision, no rate limits, no Host/Origin guards or security
//!   headers, no schema validation, no output sanitization, no audit. What is left is the
//!   transport any server needs (body size and JSON depth limits, request timeout, JSON-RPC
//!   parsing, sessions). `secure_http/cached_token` minus this case is what security adds.
//! - `handle_request`: `McpServer::handle_request` without HTTP (rate limits, validation,
//!   sanitization and audit still run).
//! - `tool_call`: the tool's own `Tool::call` on already-parsed arguments: the handler with no
//!   security and no transport, the floor.
//!
//! Every case runs on one current-thread tokio runtime (`block_on` per call).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use mcproof_benches::{MEASUREMENT, SAMPLES, TOOLS_CALL, WARM_UP};
use mcproof_server::audit::{AuditEvent, AuditLog};
use mcproof_server::auth::AuthPolicy;
use mcproof_server::auth::api_keys::{ApiKeyStore, KeyTier};
use mcproof_server::auth::jwt::{Alg, SigningKey, TokenIssuer};
use mcproof_server::config::{Config, Quota};
use mcproof_server::jsonrpc::{Id, Request as RpcRequest};
use mcproof_server::protocol::ProtocolVersion;
use mcproof_server::server::{McpServer, output_to_result};
use mcproof_server::tools::{StandardDeps, ToolContext, standard_registry};
use serde_json::{Map, Value};
use tower::ServiceExt as _;

const BOUND: &str = "127.0.0.1:8080";
const HUGE: Quota = Quota { per_minute: u32::MAX, burst: u32::MAX };

#[allow(clippy::field_reassign_with_default, reason = "reads as the list of what the benchmark changes")]
fn config(policy: AuthPolicy, dir: &Path) -> Config {
    let mut config = Config::default();
    config.listen = BOUND.parse().unwrap_or_else(|e| panic!("addr: {e}"));
    config.rate_limits.ip = HUGE;
    config.rate_limits.session = HUGE;
    config.rate_limits.principal = HUGE;
    config.rate_limits.tool = HUGE;
    config.sandbox_dir = Some(dir.join("sandbox"));
    config.auth.policy = policy;
    if policy != AuthPolicy::Public {
        config.auth.signing_key_file = Some(dir.join("signing.pem"));
        config.auth.api_keys_file = Some(dir.join("api-keys.json"));
    }
    config
}

/// An in-process client of one router, holding its session.
struct Client {
    router: Router,
    credential: Option<String>,
    session: Option<String>,
}

impl Client {
    fn request(&self, body: &str) -> Request<Body> {
        let mut req = Request::post("/mcp")
            .header("host", BOUND)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(c) = &self.credential {
            req = req.header("authorization", format!("Bearer {c}"));
        }
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        req.body(Body::from(body.to_owned())).unwrap_or_else(|e| panic!("request: {e}"))
    }

    async fn post(&self, body: &str) -> (StatusCode, http::HeaderMap, bytes::Bytes) {
        let response = self.router.clone().oneshot(self.request(body)).await.unwrap_or_else(|e| match e {});
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        (parts.status, parts.headers, bytes)
    }

    /// `initialize` + `notifications/initialized`.
    async fn open(&mut self) {
        let (status, headers, body) = self.post(mcproof_benches::INITIALIZE).await;
        assert_eq!(status, StatusCode::OK, "initialize: {}", String::from_utf8_lossy(&body));
        self.session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (status, _, _) = self.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let (status, _, body) = self.post(TOOLS_CALL).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::OK, "tools/call: {text}");
        assert!(text.contains("\"result\"") && !text.contains("\"isError\":true"), "tools/call failed: {text}");
    }
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("rt: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    std::fs::create_dir_all(dir.path().join("sandbox")).unwrap_or_else(|e| panic!("sandbox: {e}"));
    mcproof_server::sandbox::seed(&dir.path().join("sandbox")).unwrap_or_else(|e| panic!("seed: {e}"));
    let bound: SocketAddr = BOUND.parse().unwrap_or_else(|e| panic!("addr: {e}"));

    // Secure server: a signing key and an API key on disk, as an operator would configure them.
    let key = SigningKey::generate(Alg::EdDSA).unwrap_or_else(|e| panic!("key: {e}"));
    let pem = key.to_pkcs8_pem().unwrap_or_else(|e| panic!("pem: {e}"));
    std::fs::write(dir.path().join("signing.pem"), &pem).unwrap_or_else(|e| panic!("write: {e}"));
    let mut keys = ApiKeyStore::load(dir.path().join("api-keys.json")).unwrap_or_else(|e| panic!("keys: {e}"));
    let (api_key, _) = keys
        .create("bench-user", &["mcp:read", "mcp:write"], KeyTier::Authenticated, SystemTime::now())
        .unwrap_or_else(|e| panic!("create: {e}"));
    let issuer = TokenIssuer::new(
        &format!("http://{BOUND}"),
        &format!("http://{BOUND}/mcp"),
        SigningKey::from_pkcs8_pem(&pem).unwrap_or_else(|e| panic!("pem: {e}")),
        Duration::from_secs(3_600),
    );
    let (token, _) = issuer.issue("bench-user", "mcp:read mcp:write", None).unwrap_or_else(|e| panic!("token: {e}"));

    let secure = |credential: String| {
        let server = McpServer::new(config(AuthPolicy::Required, dir.path())).unwrap_or_else(|e| panic!("server: {e}"));
        Client { router: mcproof_server::http::app(server, bound, false), credential: Some(credential), session: None }
    };
    let mut with_token = secure(token);
    let mut with_key = secure(api_key.expose_secret().to_owned());
    let public_server =
        McpServer::new(config(AuthPolicy::Public, dir.path())).unwrap_or_else(|e| panic!("server: {e}"));
    let mut public = Client {
        router: mcproof_server::http::app(public_server.clone(), bound, false),
        credential: None,
        session: None,
    };
    let mut insecure_config = config(AuthPolicy::Public, dir.path());
    insecure_config.faults = mcproof_server::faults::Faults::all_security_off();
    let insecure_server = McpServer::new(insecure_config).unwrap_or_else(|e| panic!("server: {e}"));
    let mut insecure =
        Client { router: mcproof_server::http::app(insecure_server, bound, false), credential: None, session: None };
    rt.block_on(async {
        with_token.open().await;
        with_key.open().await;
        public.open().await;
        insecure.open().await;
        // The switch really is off in one and on in the other: security headers are the visible sign.
        let (_, headers, _) = insecure.post(TOOLS_CALL).await;
        assert!(!headers.contains_key("x-content-type-options"), "the no-security app still sends security headers");
        let (_, headers, _) = with_token.post(TOOLS_CALL).await;
        assert!(headers.contains_key("x-content-type-options"), "the secure app sends no security headers");
    });

    let mut group = c.benchmark_group("overhead/tools_call");
    group.warm_up_time(WARM_UP).measurement_time(MEASUREMENT).sample_size(SAMPLES);
    for (label, client) in [
        ("secure_http/cached_token", &with_token),
        ("secure_http/api_key", &with_key),
        ("public_http", &public),
        ("no_security_http", &insecure),
    ] {
        group.bench_function(label, |b| b.iter(|| rt.block_on(async { black_box(client.post(TOOLS_CALL).await) })));
    }

    // Without HTTP: the server's own request handler, in a session of its own.
    let handle_request = |server: &McpServer| {
        let init: RpcRequest = RpcRequest {
            id: Id::Number(0.into()),
            method: "initialize".into(),
            params: Some(
                serde_json::from_str::<Value>(mcproof_benches::INITIALIZE).unwrap_or_default()["params"].clone(),
            ),
        };
        let (session, _) =
            server.initialize(&init, mcproof_server::auth::Principal::anonymous()).unwrap_or_else(|e| panic!("{e:?}"));
        server.start_session(&session).unwrap_or_else(|e| panic!("{e:?}"));
        session.mark_initialized();
        session
    };
    let session = handle_request(&public_server);
    let params: Value = serde_json::from_str::<Value>(TOOLS_CALL).unwrap_or_default()["params"].clone();
    let (tx, _rx) = tokio::sync::mpsc::channel(32);
    let call = || RpcRequest { id: Id::Number(42.into()), method: "tools/call".into(), params: Some(params.clone()) };
    let handled = rt.block_on(public_server.handle_request(&session, call(), tx.clone(), ProtocolVersion::LATEST));
    assert!(handled.response.get("result").is_some(), "handle_request: {}", handled.response);
    group.bench_function("handle_request", |b| {
        b.iter(|| {
            rt.block_on(async {
                black_box(public_server.handle_request(&session, call(), tx.clone(), ProtocolVersion::LATEST).await)
            })
        })
    });

    // The floor: the tool alone on parsed, trusted arguments.
    let floor_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let registry = standard_registry(&StandardDeps::new(floor_dir.path())).unwrap_or_else(|e| panic!("{e}"));
    let principal = mcproof_server::auth::Principal::anonymous();
    let (tool, _) = registry.find("query_products", &principal).unwrap_or_else(|| panic!("query_products"));
    let ctx = ToolContext::detached(principal.clone());
    let args: Map<String, Value> = params["arguments"].as_object().cloned().unwrap_or_default();
    assert!(rt.block_on(tool.call(&ctx, args.clone())).is_ok());
    group.bench_function("tool_call", |b| {
        b.iter(|| rt.block_on(async { black_box(tool.call(&ctx, args.clone()).await) }))
    });
    group.finish();

    // Where the time goes: the always-on controls of one call, one at a time.
    let mut group = c.benchmark_group("overhead/controls");
    group.warm_up_time(WARM_UP).measurement_time(MEASUREMENT).sample_size(SAMPLES);
    let output = rt.block_on(tool.call(&ctx, args.clone())).unwrap_or_else(|e| panic!("tool: {e}"));
    let text_len: usize = output_to_result(output.clone()).to_string().len();
    println!("overhead/controls: the query_products result is {text_len} bytes of JSON");
    group.bench_function("result_with_sanitization", |b| b.iter(|| black_box(output_to_result(output.clone()))));
    group.bench_function("result_clone_only", |b| b.iter(|| black_box(output.clone())));
    let (_, validator) = registry.find("query_products", &principal).unwrap_or_else(|| panic!("query_products"));
    let instance = Value::Object(args.clone());
    group.bench_function("schema_validation", |b| b.iter(|| black_box(validator.validate(&instance))));
    let limits = public_server.rate_limits();
    group.bench_function("rate_limits_principal_and_tool", |b| {
        b.iter(|| black_box(limits.check_call("bench-user", "query_products")))
    });
    let audit = AuditLog::to_tracing();
    group.bench_function("audit_record_tracing_sink", |b| {
        b.iter(|| {
            audit.record(AuditEvent::ToolCall {
                session: Some("s-1234abcd".into()),
                principal: "bench-user".into(),
                tool: "query_products".into(),
                arg_names: vec!["category".into(), "limit".into(), "order_by".into()],
                outcome: "ok".into(),
                duration_ms: 0,
            })
        })
    });
    group.finish();
    drop(rt);
}

criterion_group!(benches, overhead);
criterion_main!(benches);
