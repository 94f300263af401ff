//! Authentication and authorization of the whole server, end to end over real loopback HTTP:
//! `McpServer` + `http::app` + `listener::serve`, driven as an MCP client would drive it.
//!
//! * The OAuth 2.1 flow from the first 401: challenge → protected resource metadata → AS
//!   metadata → registration → login and consent → code → token (PKCE S256) → MCP with the
//!   bearer token → refresh → reuse detection; a replayed code revokes its access token on
//!   `/mcp` through the shared store (also across two replicas sharing Redis).
//! * Every rejection with its exact status, body `error` and `WWW-Authenticate` challenge
//!   (spec-checks AU-01, AU-05..AU-13), API keys (both headers, revoked, rotated), scopes and
//!   tiers (AU-10, AU-11), ownership and session binding (AU-08, AU-09), the `public-tier`
//!   policy, and an audit log that records the decisions and never a credential.
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

mod common;
mod redis_server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use mcproof_server::auth::api_keys::{ApiKeyStore, KeyTier};
use mcproof_server::auth::jwt::{Alg, Claims, SigningKey, TokenIssuer};
use mcproof_server::auth::pkce;
use mcproof_server::oauth::users::test_params;
use mcproof_server::oauth::{User, hash_password_with};
use mcproof_server::server::McpServer;
use mcproof_server::store::{RedisStore, SharedStore};
use redis_server::RedisServer;
use reqwest::Method;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use url::Url;

const ALICE_PW: &str = "alice correct horse";
const BOB_PW: &str = "bob battery staple";
const REDIRECT: &str = "http://127.0.0.1:43210/callback";

// ---------------------------------------------------------------------------------- fixture

/// The API keys of a fixture (plaintext, as a client holds them).
struct Keys {
    /// `alice`, `mcp:read mcp:write`.
    alice: String,
    /// `bob`, `mcp:read mcp:write`.
    bob: String,
    /// `reader`, `mcp:read` only.
    reader: String,
    /// `ops`, an admin key.
    admin: String,
    /// `gone`, revoked before the server started.
    revoked: String,
    /// Public id of `alice`'s key (for rotation).
    alice_id: String,
    /// Public id of `reader`'s key.
    reader_id: String,
}

struct Fixture {
    srv: TestServer,
    keys: Keys,
    keys_file: PathBuf,
    audit_file: PathBuf,
    /// A client that follows no redirects (each 302 is inspected).
    web: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn users() -> Vec<User> {
    vec![
        User::new("alice", hash_password_with(ALICE_PW, test_params()).unwrap(), &["mcp:read", "mcp:write"]),
        User::new("bob", hash_password_with(BOB_PW, test_params()).unwrap(), &["mcp:read"]),
    ]
}

/// Creates the key store through the store API (as `mcproof-server keys create` does).
fn make_keys(path: &Path) -> Keys {
    let mut store = ApiKeyStore::load(path).unwrap();
    let now = SystemTime::now();
    let mut create = |principal: &str, scopes: &[&str], tier: KeyTier| {
        let (key, record) = store.create(principal, scopes, tier, now).unwrap();
        (key.expose_secret().to_owned(), record.id)
    };
    let (alice, alice_id) = create("alice", &["mcp:read", "mcp:write"], KeyTier::Authenticated);
    let (bob, _) = create("bob", &["mcp:read", "mcp:write"], KeyTier::Authenticated);
    let (reader, reader_id) = create("reader", &["mcp:read"], KeyTier::Authenticated);
    let (admin, _) = create("ops", &["mcp:read", "mcp:write"], KeyTier::Admin);
    let (revoked, revoked_id) = create("gone", &["mcp:read", "mcp:write"], KeyTier::Authenticated);
    store.revoke(&revoked_id, now).unwrap();
    Keys { alice, bob, reader, admin, revoked, alice_id, reader_id }
}

fn auth_config(policy: AuthPolicy, keys_file: &Path, audit_file: &Path) -> Config {
    let mut config = Config::default();
    config.auth.policy = policy;
    config.auth.users = users();
    config.auth.api_keys_file = Some(keys_file.to_path_buf());
    config.audit_log = Some(audit_file.to_path_buf());
    config
}

fn web_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).timeout(TIMEOUT).no_proxy().build().unwrap()
}

async fn fixture(policy: AuthPolicy) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("api-keys.json");
    let audit_file = dir.path().join("audit.jsonl");
    let keys = make_keys(&keys_file);
    let srv = start_as_configured(auth_config(policy, &keys_file, &audit_file)).await;
    Fixture { srv, keys, keys_file, audit_file, web: web_client(), _dir: dir }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

impl Fixture {
    /// The RFC 9728 URL every challenge names.
    fn prm(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.srv.origin)
    }

    fn anonymous(&self) -> Mcp {
        self.srv.anonymous_client()
    }

    fn bearer(&self, token: &str) -> Mcp {
        self.srv.anonymous_client().with_bearer(token)
    }

    fn api_key(&self, key: &str) -> Mcp {
        self.srv.anonymous_client().with_api_key(key)
    }

    /// Mints tokens exactly as the built-in authorization server does (same key, issuer and
    /// audience), so tests can make tokens for any principal, scope or lifetime.
    fn own_issuer(&self) -> TokenIssuer {
        TokenIssuer::new(
            &self.srv.origin,
            &self.srv.url,
            self.srv.server.signing_key().unwrap(),
            Duration::from_secs(600),
        )
    }

    fn token(&self, sub: &str, scope: &str) -> String {
        self.own_issuer().issue(sub, scope, None).unwrap().0
    }

    fn challenge_unauthorized(&self, scope: &str) -> String {
        format!(r#"Bearer resource_metadata="{}", scope="{scope}""#, self.prm())
    }

    fn challenge_invalid_token(&self, description: &str) -> String {
        format!(
            r#"Bearer error="invalid_token", error_description="{description}", resource_metadata="{}""#,
            self.prm()
        )
    }

    fn challenge_invalid_request(&self) -> String {
        format!(r#"Bearer error="invalid_request", resource_metadata="{}""#, self.prm())
    }

    fn challenge_insufficient_scope(&self, scope: &str) -> String {
        format!(r#"Bearer error="insufficient_scope", scope="{scope}", resource_metadata="{}""#, self.prm())
    }

    async fn web_get(&self, url: &str, cookie: Option<&str>) -> Reply {
        let mut req = self.web.get(url);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        Reply::read(req.send().await.unwrap()).await
    }

    async fn post_form(&self, url: &str, pairs: &[(&str, &str)], cookie: Option<&str>) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        let mut req = self.web.post(url).header("content-type", "application/x-www-form-urlencoded").body(body);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        Reply::read(req.send().await.unwrap()).await
    }
}

/// The `WWW-Authenticate` header of a reply ("" when absent).
fn challenge(r: &Reply) -> String {
    r.header("www-authenticate").unwrap_or_default()
}

/// The body's `error` member ("" when absent).
fn body_error(r: &Reply) -> String {
    r.try_json().and_then(|b| b["error"].as_str().map(str::to_owned)).unwrap_or_default()
}

/// Checks a refusal: status, body `error` and the exact challenge (`None`: no challenge), and
/// that nothing was started.
fn check_refusal(r: &Reply, status: u16, error: &str, expected: Option<&str>) -> Result<(), String> {
    let mut problems = Vec::new();
    if r.status != status {
        problems.push(format!("status {} (expected {status})", r.status));
    }
    if body_error(r) != error {
        problems.push(format!("error {:?} (expected {error:?})", body_error(r)));
    }
    let got = r.header("www-authenticate");
    if got.as_deref() != expected {
        problems.push(format!("WWW-Authenticate {got:?} (expected {expected:?})"));
    }
    if r.header("mcp-session-id").is_some() {
        problems.push("a session was created".into());
    }
    if problems.is_empty() { Ok(()) } else { Err(format!("{} — {}", problems.join("; "), r.describe())) }
}

fn assert_refusal(r: &Reply, status: u16, error: &str, expected: Option<&str>, what: &str) {
    if let Err(why) = check_refusal(r, status, error, expected) {
        panic!("{what}: {why}");
    }
}

fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {list}"))
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

fn tool_call(c: &Mcp, name: &str, args: Value) -> Value {
    tool_call_body(c.next_id(), name, args)
}

// ------------------------------------------------------------------------------ OAuth client

/// A fresh PKCE verifier and its S256 challenge.
fn pkce_pair() -> (String, String) {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = pkce::pkce_s256(&verifier);
    (verifier, challenge)
}

fn location(r: &Reply) -> Url {
    Url::parse(&r.header("location").unwrap_or_else(|| panic!("no Location: {}", r.describe()))).unwrap()
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn cookie(r: &Reply, name: &str) -> Option<String> {
    r.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        let (k, v) = c.split(';').next()?.split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_owned())
    })
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

fn hidden_fields(page: &Reply) -> Vec<(String, String)> {
    let re = regex::Regex::new(r#"<input type="hidden" name="([^"]*)" value="([^"]*)">"#).unwrap();
    re.captures_iter(&page.text()).map(|c| (unescape(&c[1]), unescape(&c[2]))).collect()
}

/// What discovery found.
struct Discovered {
    resource: String,
    authorization_endpoint: String,
    token_endpoint: String,
    registration_endpoint: String,
}

/// From a 401's challenge to the authorization server's endpoints, checking each document.
async fn discover(fx: &Fixture, unauthorized: &Reply) -> Discovered {
    let header = challenge(unauthorized);
    let re = regex::Regex::new(r#"resource_metadata="([^"]+)""#).unwrap();
    let prm_url = re.captures(&header).unwrap_or_else(|| panic!("no resource_metadata in {header:?}"))[1].to_owned();
    assert_eq!(prm_url, fx.prm());
    let prm = fx.web_get(&prm_url, None).await;
    assert_eq!(prm.status, 200, "{}", prm.describe());
    let prm = prm.json();
    assert_eq!(prm["resource"], json!(fx.srv.url), "AU-04: {prm}");
    assert_eq!(prm["authorization_servers"], json!([fx.srv.origin]), "AU-03: {prm}");
    assert_eq!(prm["scopes_supported"], json!(["mcp:read", "mcp:write", "mcp:admin"]), "AU-05: {prm}");
    assert_eq!(prm["bearer_methods_supported"], json!(["header"]), "{prm}");
    let issuer = prm["authorization_servers"][0].as_str().unwrap().to_owned();
    let meta = fx.web_get(&format!("{issuer}/.well-known/oauth-authorization-server"), None).await;
    assert_eq!(meta.status, 200, "{}", meta.describe());
    let meta = meta.json();
    assert_eq!(meta["issuer"], json!(issuer));
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    let field = |name: &str| meta[name].as_str().unwrap_or_else(|| panic!("no {name}: {meta}")).to_owned();
    Discovered {
        resource: prm["resource"].as_str().unwrap().to_owned(),
        authorization_endpoint: field("authorization_endpoint"),
        token_endpoint: field("token_endpoint"),
        registration_endpoint: field("registration_endpoint"),
    }
}

/// Registers a public client with a loopback redirect URI; returns its id.
async fn register(fx: &Fixture, registration_endpoint: &str) -> String {
    let r = fx
        .web
        .post(registration_endpoint)
        .json(&json!({
            "client_name": "e2e client",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap();
    let r = Reply::read(r).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    r.json()["client_id"].as_str().unwrap().to_owned()
}

/// GET the login and consent page, POST it approved with `user`'s password; returns the code.
async fn authorize(fx: &Fixture, d: &Discovered, client_id: &str, challenge: &str, user: &str, pw: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("resource", d.resource.as_str()),
            ("scope", "mcp:read mcp:write"),
            ("state", "e2e-state"),
        ])
        .finish();
    let page = fx.web_get(&format!("{}?{q}", d.authorization_endpoint), None).await;
    assert_eq!(page.status, 200, "consent page: {}", page.describe());
    assert!(page.text().contains("e2e client"), "the page names the client");
    let csrf = cookie(&page, "__Host-mcproof-csrf").expect("CSRF cookie");
    let mut fields = hidden_fields(&page);
    fields.push(("username".into(), user.into()));
    fields.push(("password".into(), pw.into()));
    fields.push(("action".into(), "approve".into()));
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let posted = fx.post_form(&d.authorization_endpoint, &pairs, Some(&format!("__Host-mcproof-csrf={csrf}"))).await;
    assert_eq!(posted.status, 302, "{}", posted.describe());
    let loc = location(&posted);
    assert!(loc.as_str().starts_with(&format!("{REDIRECT}?")), "{loc}");
    assert_eq!(query(&loc, "state").as_deref(), Some("e2e-state"));
    assert_eq!(query(&loc, "iss").as_deref(), Some(fx.srv.origin.as_str()));
    query(&loc, "code").expect("code")
}

async fn exchange(fx: &Fixture, token_endpoint: &str, client_id: &str, code: &str, verifier: &str) -> Reply {
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", verifier),
        ("redirect_uri", REDIRECT),
        ("client_id", client_id),
        ("resource", fx.srv.url.as_str()),
    ];
    fx.post_form(token_endpoint, &pairs, None).await
}

async fn refresh(fx: &Fixture, token_endpoint: &str, client_id: &str, token: &str) -> Reply {
    let pairs = [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", client_id)];
    fx.post_form(token_endpoint, &pairs, None).await
}

fn tokens(r: &Reply) -> (String, String) {
    assert_eq!(r.status, 200, "{}", r.describe());
    let t = r.json();
    assert_eq!(t["token_type"], "Bearer", "{t}");
    (t["access_token"].as_str().unwrap().to_owned(), t["refresh_token"].as_str().unwrap().to_owned())
}

fn assert_invalid_grant(r: &Reply, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.describe());
    assert_eq!(r.json()["error"], "invalid_grant", "{what}: {}", r.describe());
}

// ------------------------------------------------------------------------- the whole flow

#[tokio::test]
async fn an_mcp_client_goes_from_401_to_tools_through_the_built_in_authorization_server() {
    let fx = fixture(AuthPolicy::Required).await;

    // 1. No credential: 401 naming the metadata and the scope (AU-01, AU-05).
    let mut c = fx.anonymous();
    let r = c.post(&initialize_body(1, LATEST)).await;
    assert_refusal(&r, 401, "unauthorized", Some(&fx.challenge_unauthorized("mcp:read")), "initialize, no credential");

    // 2..4. Discovery and registration.
    let d = discover(&fx, &r).await;
    let client_id = register(&fx, &d.registration_endpoint).await;

    // 5. Login and consent, code, token with PKCE S256.
    let (verifier, pkce_challenge) = pkce_pair();
    let code = authorize(&fx, &d, &client_id, &pkce_challenge, "alice", ALICE_PW).await;
    let (access, refresh1) = tokens(&exchange(&fx, &d.token_endpoint, &client_id, &code, &verifier).await);

    // 6. MCP with the bearer token.
    c = c.with_bearer(&access);
    c.initialize().await;
    let names = tool_names(&c.request("tools/list", json!({})).await);
    for expected in ["query_products", "notes_create", "notes_list", "notes_delete"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n == "admin_purge_notes"), "admin tool listed for alice: {names:?}");
    let created = c.call_tool_ok("notes_create", json!({ "title": "from oauth", "body": "hello" })).await;
    assert_eq!(created["isError"], json!(false), "{created}");
    let listed = c.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(1), "{listed}");

    // 7. Refresh; the new access token drives the same session (same principal).
    let (access2, refresh2) = tokens(&refresh(&fx, &d.token_endpoint, &client_id, &refresh1).await);
    assert_ne!(access, access2);
    let mut c2 = c.clone().with_bearer(&access2);
    c2.session = c.session.clone();
    let listed = c2.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(1), "{listed}");

    // 8. Reusing the rotated refresh token revokes the family: the newest one fails too.
    assert_invalid_grant(&refresh(&fx, &d.token_endpoint, &client_id, &refresh1).await, "reused refresh token");
    assert_invalid_grant(&refresh(&fx, &d.token_endpoint, &client_id, &refresh2).await, "family revoked");

    // 9. A replayed code: invalid_grant, and its access token is revoked on /mcp at once,
    // even inside an established session (AU-08).
    let (verifier, pkce_challenge) = pkce_pair();
    let code = authorize(&fx, &d, &client_id, &pkce_challenge, "alice", ALICE_PW).await;
    let (access3, _) = tokens(&exchange(&fx, &d.token_endpoint, &client_id, &code, &verifier).await);
    let mut c3 = fx.bearer(&access3);
    c3.initialize().await;
    assert_eq!(c3.ping_ok().await, Ok(()));
    assert_invalid_grant(&exchange(&fx, &d.token_endpoint, &client_id, &code, &verifier).await, "code reused");
    let r = c3.request_reply("ping", json!({})).await;
    let revoked = fx.challenge_invalid_token("The access token was revoked");
    assert_refusal(&r, 401, "invalid_token", Some(&revoked), "access token of a replayed code, in its session");
    let r = fx.bearer(&access3).post(&initialize_body(1, LATEST)).await;
    assert_refusal(&r, 401, "invalid_token", Some(&revoked), "access token of a replayed code, initialize");
    // Tokens of other grants are unaffected.
    assert_eq!(c2.ping_ok().await, Ok(()));
}

// ------------------------------------------------------------------------ every rejection

/// base64url(JSON).
fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn every_credential_is_refused_or_accepted_with_its_exact_status_and_challenge() {
    let fx = fixture(AuthPolicy::Required).await;
    let own = fx.own_issuer();
    let now = now_secs();
    let (valid, claims) = own.issue("alice", "mcp:read mcp:write", None).unwrap();

    let expired =
        own.issue_with(&Claims { iat: now - 7200, nbf: Some(now - 7200), exp: now - 3600, ..claims.clone() }).unwrap();
    let other_audience = TokenIssuer::new(
        &fx.srv.origin,
        "https://other.example/mcp",
        fx.srv.server.signing_key().unwrap(),
        Duration::from_secs(600),
    )
    .issue("alice", "mcp:read mcp:write", None)
    .unwrap()
    .0;
    let other_key = TokenIssuer::new(
        &fx.srv.origin,
        &fx.srv.url,
        SigningKey::generate(Alg::EdDSA).unwrap(),
        Duration::from_secs(600),
    )
    .issue("alice", "mcp:read mcp:write", None)
    .unwrap()
    .0;
    let other_issuer = TokenIssuer::new(
        "http://127.0.0.1:1",
        &fx.srv.url,
        fx.srv.server.signing_key().unwrap(),
        Duration::from_secs(600),
    )
    .issue("alice", "mcp:read mcp:write", None)
    .unwrap()
    .0;
    let claims_json = serde_json::to_value(&claims).unwrap();
    let alg_none = format!("{}.{}.", b64(&json!({ "alg": "none", "typ": "at+jwt" })), b64(&claims_json));
    // The valid token's signature over elevated claims.
    let parts: Vec<&str> = valid.split('.').collect();
    let mut elevated = claims_json.clone();
    elevated["sub"] = json!("ops");
    elevated["scope"] = json!("mcp:read mcp:write mcp:admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&elevated), parts[2]);
    let unknown_key = format!("mcp_sk_{}", "A".repeat(43));

    let prm = fx.prm();
    let unauthorized = fx.challenge_unauthorized("mcp:read");
    let invalid_request = fx.challenge_invalid_request();
    let malformed = fx.challenge_invalid_token("The access token is malformed");
    let invalid = fx.challenge_invalid_token("The access token is invalid");
    let expired_c = fx.challenge_invalid_token("The access token expired");
    let audience_c = fx.challenge_invalid_token("The access token was not issued for this resource");
    let revoked_c = fx.challenge_invalid_token("The access token was revoked");

    let bearer = |t: &str| format!("Bearer {t}");
    // (name, credential headers, query string, status, error, challenge)
    type Case = (&'static str, Vec<(&'static str, String)>, &'static str, u16, &'static str, Option<String>);
    let cases: Vec<Case> = vec![
        ("no credential", vec![], "", 401, "unauthorized", Some(unauthorized.clone())),
        ("malformed token", vec![("authorization", bearer("abc.def.ghi"))], "", 401, "invalid_token", Some(malformed)),
        ("expired token", vec![("authorization", bearer(&expired))], "", 401, "invalid_token", Some(expired_c)),
        (
            "token for another resource",
            vec![("authorization", bearer(&other_audience))],
            "",
            401,
            "invalid_token",
            Some(audience_c),
        ),
        (
            "token signed by another key",
            vec![("authorization", bearer(&other_key))],
            "",
            401,
            "invalid_token",
            Some(invalid.clone()),
        ),
        (
            "token from another issuer",
            vec![("authorization", bearer(&other_issuer))],
            "",
            401,
            "invalid_token",
            Some(invalid.clone()),
        ),
        ("alg none", vec![("authorization", bearer(&alg_none))], "", 401, "invalid_token", Some(invalid.clone())),
        (
            "tampered claims",
            vec![("authorization", bearer(&tampered))],
            "",
            401,
            "invalid_token",
            Some(invalid.clone()),
        ),
        ("unknown API key", vec![("x-api-key", unknown_key.clone())], "", 401, "invalid_token", Some(invalid.clone())),
        (
            "unknown API key as bearer",
            vec![("authorization", bearer(&unknown_key))],
            "",
            401,
            "invalid_token",
            Some(invalid),
        ),
        (
            "revoked API key",
            vec![("x-api-key", fx.keys.revoked.clone())],
            "",
            401,
            "invalid_token",
            Some(revoked_c.clone()),
        ),
        (
            "revoked API key as bearer",
            vec![("authorization", bearer(&fx.keys.revoked))],
            "",
            401,
            "invalid_token",
            Some(revoked_c),
        ),
        (
            "empty bearer",
            vec![("authorization", "Bearer ".into())],
            "",
            400,
            "invalid_request",
            Some(invalid_request.clone()),
        ),
        (
            "Basic scheme",
            vec![("authorization", "Basic YWxpY2U6cHc=".into())],
            "",
            401,
            "invalid_request",
            Some(unauthorized),
        ),
        (
            "two credentials",
            vec![("authorization", bearer(&valid)), ("x-api-key", fx.keys.alice.clone())],
            "",
            400,
            "invalid_request",
            Some(invalid_request.clone()),
        ),
        ("API key in the query", vec![], "api_key", 400, "invalid_request", Some(invalid_request.clone())),
        ("token in the query", vec![], "access_token", 400, "invalid_request", Some(invalid_request.clone())),
        (
            "valid key in the header and the query",
            vec![("x-api-key", fx.keys.alice.clone())],
            "api_key",
            400,
            "invalid_request",
            Some(invalid_request),
        ),
        ("valid token", vec![("authorization", bearer(&valid))], "", 200, "", None),
        ("API key in X-API-Key", vec![("x-api-key", fx.keys.alice.clone())], "", 200, "", None),
        ("API key as bearer", vec![("authorization", bearer(&fx.keys.alice))], "", 200, "", None),
        ("admin key", vec![("x-api-key", fx.keys.admin.clone())], "", 200, "", None),
    ];

    let mut failures = Failures::new();
    let c = fx.anonymous();
    for (name, headers, in_query, status, error, expected) in &cases {
        let url = match *in_query {
            "" => fx.srv.url.clone(),
            "api_key" => format!("{}?api_key={}", fx.srv.url, fx.keys.alice),
            _ => format!("{}?access_token={valid}", fx.srv.url),
        };
        let hdrs: Vec<Hdr<'_>> = headers.iter().map(|(n, v)| (*n, Some(v.as_str()))).collect();
        let body = initialize_body(1, LATEST).to_string().into_bytes();
        let r = c.send(Method::POST, &url, Some(body), &hdrs).await;
        if *status == 200 {
            failures.check(name, r.status == 200 && r.header("mcp-session-id").is_some(), || r.describe());
        } else {
            failures.record(name, check_refusal(&r, *status, error, expected.as_deref()));
        }
        // A challenge never echoes what the client sent.
        for (_, v) in headers {
            let secret = v.trim_start_matches("Bearer ").trim_start_matches("Basic ");
            if secret.len() > 8 {
                failures.check(
                    &format!("{name}: no echo"),
                    !r.text().contains(secret) && !challenge(&r).contains(secret),
                    || r.describe(),
                );
            }
        }
        failures.check(
            &format!("{name}: challenge names the metadata"),
            *status == 200 || challenge(&r).contains(&prm),
            || challenge(&r),
        );
    }

    // Every verb of /mcp is behind authentication (AU-08): GET and DELETE without a credential.
    let get = Reply::read(c.get_stream(&[]).await).await;
    failures.record(
        "GET without credential",
        check_refusal(&get, 401, "unauthorized", Some(&fx.challenge_unauthorized("mcp:read"))),
    );
    let delete = c.delete(&[("mcp-session-id", Some("whatever"))]).await;
    failures.record(
        "DELETE without credential",
        check_refusal(&delete, 401, "unauthorized", Some(&fx.challenge_unauthorized("mcp:read"))),
    );
    failures.assert();

    // The audit log holds the decisions, chained, and not one credential.
    let text = std::fs::read_to_string(&fx.audit_file).unwrap();
    let summary = mcproof_server::audit::verify(std::io::BufReader::new(text.as_bytes()));
    assert!(summary.is_ok(), "the audit chain verifies: {summary:?}");
    let decisions: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.to_string().contains("auth_decision"))
        .collect();
    let refused = cases.iter().filter(|c| c.3 != 200).count() + 2;
    assert!(decisions.len() >= refused, "{} auth decisions for {refused} refusals:\n{text}", decisions.len());
    for reason in ["unauthenticated", "expired", "wrong_audience", "unknown_kid", "bad-credential", "api-key-rejected"]
    {
        assert!(text.contains(&format!("\"{reason}\"")), "no audit decision with reason {reason}:\n{text}");
    }
    let mut secrets =
        vec![valid.clone(), expired, other_audience, other_key, other_issuer, alg_none, tampered, unknown_key];
    secrets
        .extend([&fx.keys.alice, &fx.keys.bob, &fx.keys.reader, &fx.keys.admin, &fx.keys.revoked].map(|k| k.clone()));
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a credential is in the audit log");
        // Not even its secret part or its signature.
        let tail = &secret[secret.len() - 20..];
        assert!(!text.contains(tail), "part of a credential is in the audit log");
    }
}

// ------------------------------------------------------------------------ scopes and tiers

#[tokio::test]
async fn scopes_decide_what_a_credential_may_call() {
    let fx = fixture(AuthPolicy::Required).await;

    // A read-only key reads, but cannot write: 403 naming the scope to step up to (AU-10, AU-11).
    let mut reader = fx.api_key(&fx.keys.reader);
    reader.initialize().await;
    let names = tool_names(&reader.request("tools/list", json!({})).await);
    assert!(names.iter().any(|n| n == "notes_create"), "{names:?}");
    let listed = reader.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(0), "{listed}");
    let r = reader.post(&tool_call(&reader, "notes_create", json!({ "title": "t", "body": "b" }))).await;
    assert_refusal(&r, 403, "insufficient_scope", Some(&fx.challenge_insufficient_scope("mcp:write")), "reader writes");
    let r = reader.post(&tool_call(&reader, "notes_delete", json!({ "id": format!("note_{}", "0".repeat(32)) }))).await;
    assert_refusal(
        &r,
        403,
        "insufficient_scope",
        Some(&fx.challenge_insufficient_scope("mcp:write")),
        "reader deletes",
    );
    // A batch is refused as a whole if any request in it is.
    let batch = json!([
        { "jsonrpc": "2.0", "id": 91, "method": "ping" },
        tool_call(&reader, "notes_create", json!({ "title": "t", "body": "b" })),
    ]);
    let mut legacy = fx.api_key(&fx.keys.reader);
    legacy.initialize_version("2025-03-26").await;
    let r = legacy.post(&batch).await;
    assert_refusal(&r, 403, "insufficient_scope", Some(&fx.challenge_insufficient_scope("mcp:write")), "batch");
    let listed = reader.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(0), "nothing was written: {listed}");

    // The same holds for an access token with only mcp:read; the challenged scope suffices.
    let mut t = fx.bearer(&fx.token("bob", "mcp:read"));
    t.initialize().await;
    let r = t.post(&tool_call(&t, "notes_create", json!({ "title": "t", "body": "b" }))).await;
    assert_refusal(&r, 403, "insufficient_scope", Some(&fx.challenge_insufficient_scope("mcp:write")), "read token");
    let mut stepped = fx.bearer(&fx.token("bob", "mcp:write"));
    stepped.initialize().await;
    stepped.call_tool_ok("notes_create", json!({ "title": "t", "body": "b" })).await;

    // The admin tool: 403 for a read-write credential, hidden from its listing.
    let mut alice = fx.api_key(&fx.keys.alice);
    alice.initialize().await;
    alice.call_tool_ok("notes_create", json!({ "title": "a", "body": "1" })).await;
    alice.call_tool_ok("notes_create", json!({ "title": "b", "body": "2" })).await;
    let r = alice.post(&tool_call(&alice, "admin_purge_notes", json!({ "principal": "alice" }))).await;
    assert_refusal(&r, 403, "insufficient_scope", Some(&fx.challenge_insufficient_scope("mcp:admin")), "no admin");
    let mut rw_token = fx.bearer(&fx.token("alice", "mcp:read mcp:write"));
    rw_token.initialize().await;
    let r = rw_token.post(&tool_call(&rw_token, "admin_purge_notes", json!({ "principal": "alice" }))).await;
    assert_refusal(&r, 403, "insufficient_scope", Some(&fx.challenge_insufficient_scope("mcp:admin")), "token");

    // An admin key sees and calls it.
    let mut ops = fx.api_key(&fx.keys.admin);
    ops.initialize().await;
    let names = tool_names(&ops.request("tools/list", json!({})).await);
    assert!(names.iter().any(|n| n == "admin_purge_notes"), "{names:?}");
    let purged = ops.call_tool_ok("admin_purge_notes", json!({ "principal": "alice" })).await;
    assert_eq!(purged["structuredContent"]["removed"], json!(2), "{purged}");
    let listed = alice.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(0), "{listed}");
}

// ------------------------------------------------------------- ownership and session binding

#[tokio::test]
async fn principals_own_their_notes_and_their_sessions() {
    let fx = fixture(AuthPolicy::Required).await;
    let mut a = fx.bearer(&fx.token("alice", "mcp:read mcp:write"));
    a.initialize().await;
    let created = a.call_tool_ok("notes_create", json!({ "title": "alice's", "body": "secret" })).await;
    let note_id = created["structuredContent"]["note"]["id"].as_str().unwrap().to_owned();

    // B (bob, by API key) cannot list or delete A's notes.
    let mut b = fx.api_key(&fx.keys.bob);
    b.initialize().await;
    let listed = b.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(0), "{listed}");
    assert!(!listed.to_string().contains("secret"), "{listed}");
    let deleted = b.call_tool_ok("notes_delete", json!({ "id": note_id })).await;
    assert_eq!(deleted["structuredContent"]["deleted"], json!(false), "{deleted}");
    let listed = a.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(1), "A's note survives: {listed}");

    // A's own API key is the same principal: it sees A's note (in its own session).
    let mut a_key = fx.api_key(&fx.keys.alice);
    a_key.initialize().await;
    let listed = a_key.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(1), "{listed}");

    // Session binding (AU-09): B's credential on A's session → 404, as if it did not exist.
    let mut hijack = b.clone();
    hijack.session = a.session.clone();
    let r = hijack.post(&tool_call(&hijack, "notes_list", json!({}))).await;
    assert_eq!(r.status, 404, "B on A's session: {}", r.describe());
    assert!(!r.text().contains("secret"));
    let r = Reply::read(hijack.get_stream(&[]).await).await;
    assert_eq!(r.status, 404, "B's GET stream on A's session: {}", r.describe());
    let r = hijack.delete(&[]).await;
    assert_eq!(r.status, 404, "B ends A's session: {}", r.describe());
    // A bearer token for bob (another credential type) fares no better.
    let mut hijack_token = fx.bearer(&fx.token("bob", "mcp:read mcp:write"));
    hijack_token.session = a.session.clone();
    hijack_token.version = a.version.clone();
    let r = hijack_token.post(&json!({ "jsonrpc": "2.0", "id": 5, "method": "ping" })).await;
    assert_eq!(r.status, 404, "bob's token on A's session: {}", r.describe());

    // A session is not a credential (AU-08): A's session id without one → 401.
    let mut bare = a.clone().without_credential();
    bare.session = a.session.clone();
    let r = bare.post(&json!({ "jsonrpc": "2.0", "id": 6, "method": "ping" })).await;
    assert_refusal(&r, 401, "unauthorized", Some(&fx.challenge_unauthorized("mcp:read")), "session without credential");
    let r = bare.post(&tool_call(&bare, "notes_create", json!({ "title": "x", "body": "y" }))).await;
    assert_refusal(&r, 401, "unauthorized", Some(&fx.challenge_unauthorized("mcp:write")), "write without credential");
    // …or with a bad one.
    let bad = a.clone().with_bearer("abc.def.ghi");
    let r = bad.post(&json!({ "jsonrpc": "2.0", "id": 7, "method": "ping" })).await;
    assert_eq!(r.status, 401, "{}", r.describe());

    // A's session is untouched by all of this.
    assert_eq!(a.ping_ok().await, Ok(()));
    let listed = a.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(1), "{listed}");
}

// -------------------------------------------------------------------- key rotation (restart)

#[tokio::test]
async fn rotated_keys_work_within_their_grace_period_after_a_restart() {
    let fx = fixture(AuthPolicy::Required).await;
    let mut before = fx.api_key(&fx.keys.alice);
    before.initialize().await;

    // Rotate alice's key (48 h grace) and the reader's key (no grace) through the store API,
    // as `mcproof-server keys rotate` does, then start a server on the same files.
    let mut store = ApiKeyStore::load(&fx.keys_file).unwrap();
    let now = SystemTime::now();
    let (alice_new, _) = store.rotate(&fx.keys.alice_id, Duration::from_secs(48 * 3600), now).unwrap();
    let (reader_new, _) = store.rotate(&fx.keys.reader_id, Duration::ZERO, now).unwrap();
    let restarted = start_as_configured(auth_config(AuthPolicy::Required, &fx.keys_file, &fx.audit_file)).await;
    let client = |cred: &str| restarted.anonymous_client().with_api_key(cred);

    let mut old = client(&fx.keys.alice);
    old.initialize().await;
    assert_eq!(old.ping_ok().await, Ok(()), "the rotated key works within its grace period");
    let mut new = client(alice_new.expose_secret());
    new.initialize().await;
    new.call_tool_ok("notes_create", json!({ "title": "n", "body": "b" })).await;
    // Both authenticate as the same principal.
    let mut old_on_new = old.clone();
    old_on_new.session = new.session.clone();
    let listed = old_on_new.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(1), "{listed}");

    // Past its grace period the old key is refused; its successor works.
    let prm = format!("{}/.well-known/oauth-protected-resource/mcp", restarted.origin);
    let revoked = format!(
        r#"Bearer error="invalid_token", error_description="The access token was revoked", resource_metadata="{prm}""#
    );
    let r = client(&fx.keys.reader).post(&initialize_body(1, LATEST)).await;
    assert_refusal(&r, 401, "invalid_token", Some(&revoked), "rotated key past its grace");
    client(reader_new.expose_secret()).initialize().await;
    // The revoked key stays revoked.
    let r = client(&fx.keys.revoked).post(&initialize_body(1, LATEST)).await;
    assert_refusal(&r, 401, "invalid_token", Some(&revoked), "revoked key after restart");
}

// --------------------------------------------------------------------------- public tier

#[tokio::test]
async fn public_tier_serves_public_tools_without_a_credential_and_nothing_else() {
    let fx = fixture(AuthPolicy::PublicTier).await;

    // No credential: initialize and tools/list work, and only public tools are listed.
    let mut anon = fx.anonymous();
    anon.initialize().await;
    let names = tool_names(&anon.request("tools/list", json!({})).await);
    assert_eq!(names, vec!["query_products".to_owned()], "only public tools");
    let products = anon.call_tool_ok("query_products", json!({ "category": "tools" })).await;
    assert_eq!(products["isError"], json!(false), "{products}");

    // Anything above public: 401 with a challenge naming the scope that would do.
    let r = anon.post(&tool_call(&anon, "notes_list", json!({}))).await;
    assert_refusal(&r, 401, "unauthorized", Some(&fx.challenge_unauthorized("mcp:read")), "notes_list, anonymous");
    let r = anon.post(&tool_call(&anon, "notes_create", json!({ "title": "t", "body": "b" }))).await;
    assert_refusal(&r, 401, "unauthorized", Some(&fx.challenge_unauthorized("mcp:write")), "notes_create, anonymous");
    let r = anon.post(&tool_call(&anon, "admin_purge_notes", json!({ "principal": "alice" }))).await;
    assert_refusal(&r, 401, "unauthorized", Some(&fx.challenge_unauthorized("mcp:admin")), "admin tool, anonymous");

    // With a valid key the same calls work (in the key's own session).
    let mut alice = fx.api_key(&fx.keys.alice);
    alice.initialize().await;
    let names = tool_names(&alice.request("tools/list", json!({})).await);
    assert!(names.iter().any(|n| n == "notes_list") && names.iter().any(|n| n == "query_products"), "{names:?}");
    alice.call_tool_ok("notes_create", json!({ "title": "t", "body": "b" })).await;
    let listed = alice.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(1), "{listed}");
    // The anonymous session is not the key's: the key cannot drive it, nor the reverse.
    let mut crossed = alice.clone();
    crossed.session = anon.session.clone();
    assert_eq!(crossed.post(&json!({ "jsonrpc": "2.0", "id": 8, "method": "ping" })).await.status, 404);
    let mut crossed = anon.clone();
    crossed.session = alice.session.clone();
    assert_eq!(crossed.post(&json!({ "jsonrpc": "2.0", "id": 9, "method": "ping" })).await.status, 404);

    // A bad credential is still refused, even for what anyone may do.
    let r = fx.bearer("abc.def.ghi").post(&initialize_body(1, LATEST)).await;
    assert_refusal(&r, 401, "invalid_token", Some(&fx.challenge_invalid_token("The access token is malformed")), "bad");
    let r = fx.api_key(&fx.keys.revoked).post(&initialize_body(1, LATEST)).await;
    assert_refusal(&r, 401, "invalid_token", Some(&fx.challenge_invalid_token("The access token was revoked")), "rev");
    let mut bad_in_session = anon.clone().with_api_key(&fx.keys.revoked);
    bad_in_session.session = anon.session.clone();
    let r = bad_in_session.post(&tool_call(&bad_in_session, "query_products", json!({}))).await;
    assert_eq!(r.status, 401, "a revoked key on a public call: {}", r.describe());
    // A credential in the query string is refused here too.
    let body = initialize_body(1, LATEST).to_string().into_bytes();
    let r = anon.send(Method::POST, &format!("{}?api_key={}", fx.srv.url, fx.keys.alice), Some(body), &[]).await;
    assert_refusal(&r, 400, "invalid_request", Some(&fx.challenge_invalid_request()), "query string");
}

// ----------------------------------------------------------------- two replicas over Redis

#[tokio::test]
async fn a_code_replayed_on_another_replica_revokes_its_token_on_both() {
    let Some(redis) = RedisServer::start_or_skip("a_code_replayed_on_another_replica_revokes_its_token_on_both") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("signing-key.pem");
    std::fs::write(&key_file, SigningKey::generate(Alg::EdDSA).unwrap().to_pkcs8_pem().unwrap()).unwrap();
    let keys_file = dir.path().join("api-keys.json");
    let keys = make_keys(&keys_file);
    let tcp_a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_a = format!("http://{}", tcp_a.local_addr().unwrap());
    let origin_b = format!("http://{}", tcp_b.local_addr().unwrap());
    // One deployment: the same issuer, resource and signing key; state in one Redis.
    let replica = |audit: &str| {
        let mut config = auth_config(AuthPolicy::Required, &keys_file, &dir.path().join(audit));
        config.auth.issuer = Some(origin_a.clone());
        config.auth.resource = Some(format!("{origin_a}/mcp"));
        config.auth.signing_key_file = Some(key_file.clone());
        config
    };
    let url = redis.url();
    let store_a: Arc<dyn SharedStore> = Arc::new(RedisStore::connect(&url).await.unwrap());
    let store_b: Arc<dyn SharedStore> = Arc::new(RedisStore::connect(&url).await.unwrap());
    let server_a = McpServer::with_store(replica("a.jsonl"), store_a).unwrap();
    let server_b = McpServer::with_store(replica("b.jsonl"), store_b).unwrap();
    let srv_b = serve_on(server_b, tcp_b);
    assert_eq!(srv_b.origin, origin_b);

    // The fixture's client helpers, against replica A.
    let fx = Fixture {
        srv: serve_on(server_a, tcp_a),
        keys,
        keys_file: keys_file.clone(),
        audit_file: dir.path().join("a.jsonl"),
        web: web_client(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let r = fx.anonymous().post(&initialize_body(1, LATEST)).await;
    let d = discover(&fx, &r).await;
    let client_id = register(&fx, &d.registration_endpoint).await;
    let (verifier, pkce_challenge) = pkce_pair();
    let code = authorize(&fx, &d, &client_id, &pkce_challenge, "alice", ALICE_PW).await;
    let (access, _) = tokens(&exchange(&fx, &d.token_endpoint, &client_id, &code, &verifier).await);

    // The token works on both replicas.
    let on_b = |token: &str| Mcp::new(http_client(), &format!("{origin_b}/mcp")).with_bearer(token);
    let mut a = fx.bearer(&access);
    a.initialize().await;
    let mut b = on_b(&access);
    b.initialize().await;

    // The code is replayed at replica B's token endpoint…
    assert_invalid_grant(
        &exchange(&fx, &format!("{origin_b}/token"), &client_id, &code, &verifier).await,
        "replay on B",
    );
    // …and the access token is refused on both replicas at once.
    let revoked = fx.challenge_invalid_token("The access token was revoked");
    let r = a.post(&json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" })).await;
    assert_refusal(&r, 401, "invalid_token", Some(&revoked), "replica A after the replay on B");
    let r = b.post(&json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" })).await;
    assert_eq!(r.status, 401, "replica B after the replay: {}", r.describe());
    assert!(challenge(&r).contains(r#"error="invalid_token""#), "{}", r.describe());
}
