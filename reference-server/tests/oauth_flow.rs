//! The built-in OAuth 2.1 authorization server, end to end over real loopback HTTP, driven as a
//! client would drive it (redirects are not followed: each 302 is inspected): discovery →
//! registration → authorize (login and consent) → token → refresh → reuse detection, and every
//! rejection path with its exact status and error code (spec-checks AS-01..AS-05, AS-09, AS-10,
//! SB-01..SB-03).
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcproof_server::auth::jwks::Jwks;
use mcproof_server::auth::jwt::{Alg, KeySource, SigningKey, TokenVerifier, TrustedIssuer, Verified};
use mcproof_server::auth::pkce;
use mcproof_server::oauth::users::test_params;
use mcproof_server::oauth::{OAuthConfig, OAuthState, RateQuota, User, hash_password_with, router};
use mcproof_server::store::{GcraDecision, MemoryStore, SharedStore, StoreError, StoreFuture};
use reqwest::header::{self, HeaderMap};
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use url::Url;

const ALICE_PW: &str = "alice correct horse";
const BOB_PW: &str = "bob battery staple";

struct Server {
    base: String,
    resource: String,
    state: OAuthState,
    http: reqwest::Client,
}

async fn start(tweak: impl FnOnce(&mut OAuthConfig)) -> Server {
    start_with_store(tweak, Arc::new(MemoryStore::default())).await
}

async fn start_with_store(tweak: impl FnOnce(&mut OAuthConfig), store: Arc<dyn SharedStore>) -> Server {
    start_full(tweak, store, SigningKey::generate(Alg::EdDSA).expect("key")).await
}

async fn start_full(tweak: impl FnOnce(&mut OAuthConfig), store: Arc<dyn SharedStore>, key: SigningKey) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let resource = format!("{base}/mcp");
    let users = vec![
        User::new("alice", hash_password_with(ALICE_PW, test_params()).expect("hash"), &["mcp:read", "mcp:write"]),
        User::new("bob", hash_password_with(BOB_PW, test_params()).expect("hash"), &["mcp:read"]),
    ];
    let mut config = OAuthConfig::new(&base, &resource, users);
    config.default_scope = vec!["mcp:read".into()];
    tweak(&mut config);
    let state = OAuthState::new(config, key, store).expect("state");
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = reqwest::Client::builder().redirect(Policy::none()).build().expect("client");
    Server { base, resource, state, http }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// A fresh PKCE verifier (32 random bytes, base64url) and its S256 challenge.
fn pkce_pair() -> (String, String) {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("random");
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = pkce::pkce_s256(&verifier);
    (verifier, challenge)
}

/// What a response looked like, kept for assertions and failure messages.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    async fn from(r: reqwest::Response) -> Reply {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.text().await.expect("body");
        Reply { status, headers, body }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn location(&self) -> Url {
        Url::parse(self.header("location").unwrap_or_else(|| panic!("no Location ({}): {}", self.status, self.body)))
            .expect("Location is a URL")
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }

    /// The value of a cookie set by this response.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k == name && !v.is_empty()).then(|| v.to_owned())
        })
    }

    /// The error code shown on an HTML error page.
    fn page_error(&self) -> String {
        let re = regex::Regex::new(r#"<code id="error">([^<]*)</code>"#).expect("regex");
        re.captures(&self.body).map(|c| c[1].to_owned()).unwrap_or_else(|| panic!("no error code: {}", self.body))
    }

    /// The hidden fields of the consent form, HTML-unescaped.
    fn hidden_fields(&self) -> Vec<(String, String)> {
        let re = regex::Regex::new(r#"<input type="hidden" name="([^"]*)" value="([^"]*)">"#).expect("regex");
        re.captures_iter(&self.body).map(|c| (unescape(&c[1]), unescape(&c[2]))).collect()
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A registered client.
struct Registered {
    id: String,
    secret: Option<String>,
    redirect: String,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path_and_query: &str, cookie: Option<&str>) -> Reply {
        let mut req = self.http.get(self.url(path_and_query));
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        Reply::from(req.send().await.expect("GET")).await
    }

    async fn post_form(&self, path: &str, pairs: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
        let mut req = self
            .http
            .post(self.url(path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(pairs));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Reply::from(req.send().await.expect("POST")).await
    }

    async fn register_raw(&self, body: &Value) -> Reply {
        let req = self.http.post(self.url("/register")).json(body);
        Reply::from(req.send().await.expect("register")).await
    }

    /// Registers a public client with a loopback redirect URI.
    async fn register_public(&self, name: &str) -> Registered {
        let redirect = "http://127.0.0.1:43210/callback".to_owned();
        let r = self
            .register_raw(&json!({
                "client_name": name,
                "redirect_uris": [redirect],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let body = r.json();
        assert!(body.get("client_secret").is_none(), "a public client gets no secret");
        Registered { id: body["client_id"].as_str().expect("client_id").to_owned(), secret: None, redirect }
    }

    fn authorize_query(&self, client: &Registered, challenge: &str, state: &str, extra: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", client.redirect.as_str()),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("resource", self.resource.as_str()),
            ("scope", "mcp:read mcp:write"),
            ("state", state),
        ];
        for (k, v) in extra {
            pairs.retain(|(name, _)| name != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        format!("/authorize?{}", form(&pairs))
    }

    /// GET the consent page, then POST the form with `user`'s credentials and `action`.
    async fn consent(&self, authorize: &str, user: &str, password: &str, action: &str) -> (Reply, Reply) {
        let page = self.get(authorize, None).await;
        assert_eq!(page.status, 200, "consent page: {}", page.body);
        let csrf_cookie = page.cookie("__Host-mcproof-csrf").expect("csrf cookie");
        let mut fields = page.hidden_fields();
        fields.push(("username".into(), user.into()));
        fields.push(("password".into(), password.into()));
        fields.push(("action".into(), action.into()));
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let cookie = format!("__Host-mcproof-csrf={csrf_cookie}");
        let posted = self.post_form("/authorize", &pairs, &[("cookie", &cookie)]).await;
        (page, posted)
    }

    /// Runs authorize with alice's login and returns the code.
    async fn code_for(&self, client: &Registered, challenge: &str) -> String {
        let (_, posted) =
            self.consent(&self.authorize_query(client, challenge, "s1", &[]), "alice", ALICE_PW, "approve").await;
        assert_eq!(posted.status, 302, "{}", posted.body);
        query(&posted.location(), "code").expect("code")
    }

    async fn exchange(&self, client: &Registered, code: &str, verifier: &str) -> Reply {
        self.exchange_with(client, code, verifier, &[]).await
    }

    /// [`Self::exchange`] with some form fields changed: each of `changes` replaces the field
    /// of that name (or is added); an empty value removes it.
    async fn exchange_with(&self, client: &Registered, code: &str, verifier: &str, changes: &[(&str, &str)]) -> Reply {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", client.redirect.as_str()),
            ("client_id", client.id.as_str()),
        ];
        for &(k, v) in changes {
            match pairs.iter_mut().find(|(name, _)| *name == k) {
                Some(pair) => pair.1 = v,
                None => pairs.push((k, v)),
            }
        }
        pairs.retain(|(_, v)| !v.is_empty());
        self.post_form("/token", &pairs, &[]).await
    }

    async fn refresh(&self, client: &Registered, token: &str, scope: Option<&str>) -> Reply {
        let mut pairs =
            vec![("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", client.id.as_str())];
        if let Some(s) = scope {
            pairs.push(("scope", s));
        }
        self.post_form("/token", &pairs, &[]).await
    }

    async fn verifier(&self) -> TokenVerifier {
        let jwks = self.get("/jwks.json", None).await;
        assert_eq!(jwks.status, 200);
        let keys = Jwks::parse(jwks.body.as_bytes()).expect("jwks");
        TokenVerifier::new(vec![TrustedIssuer {
            issuer: self.base.clone(),
            audience: self.resource.clone(),
            keys: KeySource::Static(keys),
        }])
        .expect("verifier")
    }
}

fn assert_oauth_error(r: &Reply, status: u16, error: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert_eq!(r.json()["error"], error, "{what}: {}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
}

/// An error sent back to the client by redirect: no code, `state` echoed, `iss` present.
fn assert_error_redirect(srv: &Server, r: &Reply, error: &str, state: &str, what: &str) {
    assert_eq!(r.status, 302, "{what}: {}", r.body);
    let loc = r.location();
    assert!(loc.as_str().starts_with("http://127.0.0.1:43210/callback?"), "{what}: {loc}");
    assert_eq!(query(&loc, "error").as_deref(), Some(error), "{what}: {loc}");
    assert_eq!(query(&loc, "code"), None, "{what}: no code on error");
    assert_eq!(query(&loc, "state").as_deref(), Some(state), "{what}");
    assert_eq!(query(&loc, "iss").as_deref(), Some(srv.base.as_str()), "{what}");
}

/// An error page: the status, the code, and no redirect.
fn assert_error_page(r: &Reply, status: u16, error: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert!(r.header("location").is_none(), "{what}: must not redirect");
    assert_eq!(r.page_error(), error, "{what}");
}

// ------------------------------------------------------------------------------- the whole flow

#[tokio::test]
async fn discovery_registration_consent_token_refresh_and_reuse_detection() {
    let srv = start(|_| {}).await;

    // Discovery (AS-01, AS-02).
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let r = srv.get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
        let m = r.json();
        assert_eq!(m["issuer"], srv.base);
        assert_eq!(m["authorization_endpoint"], srv.url("/authorize"));
        assert_eq!(m["token_endpoint"], srv.url("/token"));
        assert_eq!(m["registration_endpoint"], srv.url("/register"));
        assert_eq!(m["jwks_uri"], srv.url("/jwks.json"));
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["response_types_supported"], json!(["code"]));
        assert_eq!(m["grant_types_supported"], json!(["authorization_code", "refresh_token", "client_credentials"]));
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            json!(["none", "client_secret_basic", "client_secret_post"])
        );
        assert_eq!(m["scopes_supported"], json!(["mcp:read", "mcp:write", "mcp:admin"]));
    }
    let jwks = srv.get("/jwks.json", None).await.json();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert!(jwks["keys"][0].get("d").is_none(), "no private material");

    // Registration: the name carries HTML metacharacters to prove escaping.
    let client = srv.register_public("Inspector <b>&</b> \"Co\"").await;

    // Authorize: the page names the client and the redirect URI, cannot be framed, sets only
    // __Host- cookies, and carries a CSRF token.
    let (verifier, challenge) = pkce_pair();
    let state = "st8 with spaces & symbols=?/";
    let authorize = srv.authorize_query(&client, &challenge, state, &[]);
    let (page, posted) = srv.consent(&authorize, "alice", ALICE_PW, "approve").await;
    assert!(page.body.contains("Inspector &lt;b&gt;&amp;&lt;/b&gt; &quot;Co&quot;"), "{}", page.body);
    assert!(!page.body.contains("<b>&</b>"), "client name must be escaped");
    assert!(page.body.contains("http://127.0.0.1:43210/callback"), "page names the redirect URI");
    assert!(page.body.contains("mcp:write"), "page lists the scopes");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(page.header("content-security-policy").expect("csp").contains("frame-ancestors 'none'"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let cookies = page.set_cookies();
    assert!(!cookies.is_empty());
    for c in &cookies {
        assert!(c.starts_with("__Host-"), "{c}");
        for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(c.split("; ").any(|a| a == attr), "{c} lacks {attr}");
        }
        assert!(!c.contains("Domain="), "{c}");
    }
    let csrf = page.hidden_fields().into_iter().find(|(k, _)| k == "csrf_token").expect("csrf field").1;
    assert_eq!(Some(csrf), page.cookie("__Host-mcproof-csrf"), "the form's token is bound to the cookie");

    // Approved: 302 to the exact redirect URI with code, state as sent, and iss (RFC 9207).
    assert_eq!(posted.status, 302, "{}", posted.body);
    let loc = posted.location();
    assert!(loc.as_str().starts_with("http://127.0.0.1:43210/callback?"), "{loc}");
    assert_eq!(query(&loc, "state").as_deref(), Some(state));
    assert_eq!(query(&loc, "iss").as_deref(), Some(srv.base.as_str()));
    let code = query(&loc, "code").expect("code");
    assert_eq!(URL_SAFE_NO_PAD.decode(&code).expect("base64url code").len(), 32);
    for c in posted.set_cookies() {
        assert!(c.starts_with("__Host-") && c.contains("; Secure; HttpOnly; SameSite=Lax"), "{c}");
    }
    let session = posted.cookie("__Host-mcproof-session").expect("login session cookie");

    // Token.
    let r = srv.exchange(&client, &code, &verifier).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let t = r.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    assert_eq!(t["scope"], "mcp:read mcp:write");
    let access = t["access_token"].as_str().expect("access token").to_owned();
    let r1 = t["refresh_token"].as_str().expect("refresh token").to_owned();

    // The access token verifies against the published JWKS, for our audience.
    let verifier_rs = srv.verifier().await;
    let v: Verified = verifier_rs.verify(&access, SystemTime::now()).await.expect("access token verifies");
    assert_eq!(v.sub(), "alice");
    assert_eq!(v.iss(), srv.base);
    assert_eq!(v.aud().collect::<Vec<_>>(), [srv.resource.as_str()]);
    assert_eq!(v.client_id(), Some(client.id.as_str()));
    assert_eq!(v.scope(), "mcp:read mcp:write");
    assert_eq!(v.exp() - v.iat(), 3600);
    assert!(!v.jti().is_empty());

    // Refresh rotates (AS-09); scope may narrow, never widen.
    let r = srv.refresh(&client, &r1, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r2 = r.json()["refresh_token"].as_str().expect("rotated").to_owned();
    assert_ne!(r1, r2);
    let r = srv.refresh(&client, &r2, Some("mcp:admin")).await;
    assert_oauth_error(&r, 400, "invalid_scope", "widening on refresh");
    let r = srv.refresh(&client, &r2, Some("mcp:read")).await;
    assert_eq!(r.status, 200, "narrowing keeps the token usable: {}", r.body);
    assert_eq!(r.json()["scope"], "mcp:read");
    let r3 = r.json()["refresh_token"].as_str().expect("rotated").to_owned();
    let narrowed = r.json()["access_token"].as_str().expect("access").to_owned();
    assert_eq!(verifier_rs.verify(&narrowed, SystemTime::now()).await.expect("verifies").scope(), "mcp:read");

    // Reuse of a rotated token revokes the family: the newest token stops working too.
    let r = srv.refresh(&client, &r1, None).await;
    assert_oauth_error(&r, 400, "invalid_grant", "rotated refresh token replayed");
    let r = srv.refresh(&client, &r3, None).await;
    assert_oauth_error(&r, 400, "invalid_grant", "family revoked after reuse");

    // Consent is remembered per client: with the login session, the same client goes straight
    // back with a code (no page)…
    let (verifier2, challenge2) = pkce_pair();
    let again = srv.authorize_query(&client, &challenge2, "s2", &[]);
    let session_cookie = format!("__Host-mcproof-session={session}");
    let r = srv.get(&again, Some(&session_cookie)).await;
    assert_eq!(r.status, 302, "consent skipped: {}", r.body);
    let code2 = query(&r.location(), "code").expect("code");
    assert_eq!(query(&r.location(), "state").as_deref(), Some("s2"));
    let r = srv.exchange(&client, &code2, &verifier2).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // prompt=consent asks again even so.
    let prompted = srv.authorize_query(&client, &challenge2, "s2", &[("prompt", "consent")]);
    assert_eq!(srv.get(&prompted, Some(&session_cookie)).await.status, 200);

    // …but another client is asked again (SB-01, SB-03), signed in, without password fields.
    let other = srv.register_public("Other client").await;
    let r = srv.get(&srv.authorize_query(&other, &challenge2, "s3", &[]), Some(&session_cookie)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Other client"));
    assert!(r.body.contains("Signed in as <strong>alice</strong>"), "{}", r.body);
    assert!(!r.body.contains("type=\"password\""));

    // Without any cookie, the page asks again for the same client too (no consent cookie to replay).
    let r = srv.get(&again, None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn reused_code_is_refused_and_revokes_what_it_issued() {
    let srv = start(|_| {}).await;
    let client = srv.register_public("Replay test").await;
    let (verifier, challenge) = pkce_pair();
    let code = srv.code_for(&client, &challenge).await;
    let first = srv.exchange(&client, &code, &verifier).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let access = first.json()["access_token"].as_str().expect("access").to_owned();
    let refresh = first.json()["refresh_token"].as_str().expect("refresh").to_owned();
    let jti = srv.verifier().await.verify(&access, SystemTime::now()).await.expect("valid").jti().to_owned();
    assert!(!srv.state.store().jti_revoked(&jti).await.expect("store"));

    let second = srv.exchange(&client, &code, &verifier).await;
    assert_oauth_error(&second, 400, "invalid_grant", "code used twice");

    // What the code issued is revoked: the access token's jti and the refresh family.
    assert!(srv.state.store().jti_revoked(&jti).await.expect("store"), "access token revoked");
    let r = srv.refresh(&client, &refresh, None).await;
    assert_oauth_error(&r, 400, "invalid_grant", "refresh token of a replayed code");
    // A third attempt is still refused.
    let third = srv.exchange(&client, &code, &verifier).await;
    assert_oauth_error(&third, 400, "invalid_grant", "code used a third time");
}

// ------------------------------------------------------------------------------------ PKCE (AS-03)

#[test]
fn rfc7636_appendix_b_vector() {
    assert_eq!(
        pkce::pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    assert!(pkce::verify_s256(
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    ));
}

#[tokio::test]
async fn pkce_is_s256_only_and_the_verifier_must_match() {
    let srv = start(|_| {}).await;
    let client = srv.register_public("PKCE test").await;

    // The RFC 7636 Appendix B pair works end to end.
    let code = srv.code_for(&client, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").await;
    let r = srv.exchange(&client, &code, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (verifier, challenge) = pkce_pair();
    // plain → invalid_request, no code.
    let q = srv.authorize_query(&client, &verifier, "p1", &[("code_challenge_method", "plain")]);
    assert_error_redirect(&srv, &srv.get(&q, None).await, "invalid_request", "p1", "plain PKCE");
    // Missing method (defaults to plain in RFC 7636) → invalid_request.
    let q = srv.authorize_query(&client, &challenge, "p2", &[("code_challenge_method", "")]);
    assert_error_redirect(&srv, &srv.get(&q, None).await, "invalid_request", "p2", "no challenge method");
    // Missing challenge → invalid_request.
    let q = srv.authorize_query(&client, "", "p3", &[]);
    assert_error_redirect(&srv, &srv.get(&q, None).await, "invalid_request", "p3", "no code_challenge");
    // A challenge that is not a SHA-256 → invalid_request.
    let q = srv.authorize_query(&client, "short", "p4", &[]);
    assert_error_redirect(&srv, &srv.get(&q, None).await, "invalid_request", "p4", "malformed challenge");

    // Wrong verifier → invalid_grant; missing verifier → invalid_request.
    let code = srv.code_for(&client, &challenge).await;
    let (other_verifier, _) = pkce_pair();
    let r = srv.exchange(&client, &code, &other_verifier).await;
    assert_oauth_error(&r, 400, "invalid_grant", "wrong code_verifier");
    let code = srv.code_for(&client, &challenge).await;
    let r = srv.exchange_with(&client, &code, &verifier, &[("code_verifier", "")]).await;
    assert_oauth_error(&r, 400, "invalid_request", "missing code_verifier");
    // That code was not consumed by the malformed request.
    let r = srv.exchange(&client, &code, &verifier).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

// ------------------------------------------------------------------- redirect URIs (AS-04, AS-05)

#[tokio::test]
async fn redirect_uri_must_match_exactly_and_never_redirects_elsewhere() {
    let srv = start(|_| {}).await;
    let r = srv
        .register_raw(&json!({
            "client_name": "Exact",
            "redirect_uris": ["https://client.test/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let client = Registered {
        id: r.json()["client_id"].as_str().expect("id").to_owned(),
        secret: None,
        redirect: "https://client.test/cb".into(),
    };
    let (_, challenge) = pkce_pair();
    for bad in [
        "https://client.test/cb/../x",
        "https://client.test/cb?x=1",
        "https://client.test.evil.example/cb",
        "https://CLIENT.test/cb/",
        "https://client.test/cb/",
        "https://client.test/CB",
        "http://client.test/cb",
        "https://evil.example/",
    ] {
        let q = srv.authorize_query(&client, &challenge, "s", &[("redirect_uri", bad)]);
        assert_error_page(&srv.get(&q, None).await, 400, "invalid_request", bad);
    }
    // Missing redirect_uri → page too.
    let q = srv.authorize_query(&client, &challenge, "s", &[("redirect_uri", "")]);
    assert_error_page(&srv.get(&q, None).await, 400, "invalid_request", "missing redirect_uri");
    // Unknown client → page, even with an otherwise bad request (client is checked first).
    let stranger = Registered { id: "mcpc_unknown".into(), secret: None, redirect: "https://client.test/cb".into() };
    let q = srv.authorize_query(&stranger, &challenge, "s", &[("response_type", "token")]);
    assert_error_page(&srv.get(&q, None).await, 400, "invalid_client", "unknown client");
    // With client and redirect URI valid, response_type errors are redirected.
    let q = srv.authorize_query(&client, &challenge, "rt", &[("response_type", "token")]);
    let r = srv.get(&q, None).await;
    assert_eq!(r.status, 302);
    assert_eq!(query(&r.location(), "error").as_deref(), Some("unsupported_response_type"));
    assert_eq!(query(&r.location(), "state").as_deref(), Some("rt"));
    assert!(r.location().as_str().starts_with("https://client.test/cb?"));
    // A parameter sent twice → invalid_request (redirected, the client being known).
    let q = format!("{}&scope=mcp:read", srv.authorize_query(&client, &challenge, "dup", &[]));
    let r = srv.get(&q, None).await;
    assert_eq!(query(&r.location(), "error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn token_endpoint_checks_redirect_uri_client_and_resource() {
    let srv = start(|_| {}).await;
    let client = srv.register_public("Token checks").await;
    let other = srv.register_public("Other").await;

    // Mismatched redirect_uri at the token endpoint → invalid_grant.
    let (verifier, challenge) = pkce_pair();
    let code = srv.code_for(&client, &challenge).await;
    let r = srv.exchange_with(&client, &code, &verifier, &[("redirect_uri", "http://127.0.0.1:43210/other")]).await;
    assert_oauth_error(&r, 400, "invalid_grant", "redirect_uri mismatch at token");

    // A code redeemed by another client → invalid_grant.
    let code = srv.code_for(&client, &challenge).await;
    let r = srv.exchange(&other, &code, &verifier).await;
    assert_oauth_error(&r, 400, "invalid_grant", "code of another client");

    // Unknown client → 401 invalid_client with a challenge.
    let stranger = Registered { id: "mcpc_nobody".into(), secret: None, redirect: client.redirect.clone() };
    let r = srv.exchange(&stranger, "whatever", &verifier).await;
    assert_oauth_error(&r, 401, "invalid_client", "unknown client at token");
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Basic")));

    // Wrong resource at the token endpoint → invalid_target.
    let code = srv.code_for(&client, &challenge).await;
    let r = srv.exchange_with(&client, &code, &verifier, &[("resource", "https://other.example/mcp")]).await;
    assert_oauth_error(&r, 400, "invalid_target", "wrong resource at token");

    // Unknown grant type, garbage code, non-form body.
    let r = srv.post_form("/token", &[("grant_type", "password"), ("client_id", &client.id)], &[]).await;
    assert_oauth_error(&r, 400, "unsupported_grant_type", "password grant");
    let r = srv.exchange(&client, "not-a-code", &verifier).await;
    assert_oauth_error(&r, 400, "invalid_grant", "unknown code");
    let r = Reply::from(
        srv.http.post(srv.url("/token")).json(&json!({"grant_type": "authorization_code"})).send().await.expect("post"),
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request", "JSON body at token");
}

// ------------------------------------------------------------------------------- resource (RFC 8707)

#[tokio::test]
async fn resource_is_required_and_must_be_the_canonical_uri() {
    let srv = start(|_| {}).await;
    let client = srv.register_public("Resource test").await;
    let (_, challenge) = pkce_pair();
    let q = srv.authorize_query(&client, &challenge, "r1", &[("resource", "https://other.example/mcp")]);
    assert_error_redirect(&srv, &srv.get(&q, None).await, "invalid_target", "r1", "foreign resource");
    let q = srv.authorize_query(&client, &challenge, "r2", &[("resource", "")]);
    assert_error_redirect(&srv, &srv.get(&q, None).await, "invalid_target", "r2", "missing resource");
    let q = srv.authorize_query(&client, &challenge, "r3", &[("resource", &format!("{}/", srv.resource))]);
    assert_error_redirect(&srv, &srv.get(&q, None).await, "invalid_target", "r3", "trailing slash");
    let q = srv.authorize_query(&client, &challenge, "r4", &[("scope", "mcp:read root")]);
    assert_error_redirect(&srv, &srv.get(&q, None).await, "invalid_scope", "r4", "unknown scope");
}

// ------------------------------------------------------------------------------------ code expiry

#[tokio::test]
async fn expired_code_is_refused() {
    let srv = start(|c| c.code_ttl = Duration::from_secs(1)).await;
    let client = srv.register_public("Expiry test").await;
    let (verifier, challenge) = pkce_pair();
    let code = srv.code_for(&client, &challenge).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = srv.exchange(&client, &code, &verifier).await;
    assert_oauth_error(&r, 400, "invalid_grant", "expired code");
}

// ------------------------------------------------------------------------ the consent form itself

#[tokio::test]
async fn consent_form_needs_csrf_and_the_right_password() {
    let srv = start(|_| {}).await;
    let client = srv.register_public("Form test").await;
    let (_, challenge) = pkce_pair();
    let authorize = srv.authorize_query(&client, &challenge, "f", &[]);
    let page = srv.get(&authorize, None).await;
    let csrf = page.cookie("__Host-mcproof-csrf").expect("cookie");
    let mut fields = page.hidden_fields();
    fields.retain(|(k, _)| k != "csrf_token");
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), ALICE_PW.into()));
    fields.push(("action".into(), "approve".into()));
    let post = |token: Option<String>, cookie: Option<String>| {
        let mut f = fields.clone();
        if let Some(t) = token {
            f.push(("csrf_token".into(), t));
        }
        let srv = &srv;
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let headers: Vec<(&str, String)> =
                cookie.map(|c| ("cookie", format!("__Host-mcproof-csrf={c}"))).into_iter().collect();
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            srv.post_form("/authorize", &pairs, &headers).await
        }
    };
    // Bad CSRF: wrong token, no token, no cookie → 403, no redirect, no code.
    let (other, _) = pkce_pair();
    assert_error_page(&post(Some(other.clone()), Some(csrf.clone())).await, 403, "invalid_request", "wrong CSRF token");
    assert_error_page(&post(None, Some(csrf.clone())).await, 403, "invalid_request", "no CSRF token");
    assert_error_page(&post(Some(csrf.clone()), None).await, 403, "invalid_request", "no CSRF cookie");

    // Wrong password → 403, the form again with the error, no redirect.
    let (page2, posted) = srv.consent(&authorize, "alice", "not the password", "approve").await;
    assert_eq!(page2.status, 200);
    assert_eq!(posted.status, 403, "{}", posted.body);
    assert!(posted.header("location").is_none());
    assert_eq!(posted.page_error(), "access_denied");
    assert!(posted.body.contains("type=\"password\""), "the form is shown again");
    // Unknown user → the same answer.
    let (_, posted) = srv.consent(&authorize, "mallory", ALICE_PW, "approve").await;
    assert_eq!(posted.status, 403, "{}", posted.body);
    assert_eq!(posted.page_error(), "access_denied");

    // Deny → access_denied by redirect, state echoed, no code.
    let (_, posted) = srv.consent(&authorize, "alice", ALICE_PW, "deny").await;
    assert_error_redirect(&srv, &posted, "access_denied", "f", "user denied");

    // The right password with a valid CSRF pair → code.
    let (_, posted) = srv.consent(&authorize, "alice", ALICE_PW, "approve").await;
    assert_eq!(posted.status, 302, "{}", posted.body);
    assert!(query(&posted.location(), "code").is_some());

    // bob holds only mcp:read: a request for read+write is narrowed to what he can grant.
    let (verifier, challenge) = pkce_pair();
    let q = srv.authorize_query(&client, &challenge, "b", &[]);
    let (_, posted) = srv.consent(&q, "bob", BOB_PW, "approve").await;
    assert_eq!(posted.status, 302, "{}", posted.body);
    let code = query(&posted.location(), "code").expect("code");
    let r = srv.exchange(&client, &code, &verifier).await;
    assert_eq!(r.json()["scope"], "mcp:read", "{}", r.body);
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_user_and_ip() {
    let srv = start(|c| c.login_rate = RateQuota { interval: Duration::from_secs(60), burst: 3 }).await;
    let client = srv.register_public("Limit test").await;
    let (_, challenge) = pkce_pair();
    let authorize = srv.authorize_query(&client, &challenge, "l", &[]);
    for i in 0..3 {
        let (_, posted) = srv.consent(&authorize, "alice", "guess", "approve").await;
        assert_eq!(posted.status, 403, "attempt {i}: {}", posted.body);
    }
    let (_, posted) = srv.consent(&authorize, "alice", "guess", "approve").await;
    assert_error_page(&posted, 429, "slow_down", "fourth attempt");
    let retry: u64 = posted.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // Even the right password is refused while limited: guessing cannot continue.
    let (_, posted) = srv.consent(&authorize, "alice", ALICE_PW, "approve").await;
    assert_error_page(&posted, 429, "slow_down", "right password while limited");
    // Another user from the same address is not affected.
    let (_, posted) = srv.consent(&authorize, "bob", BOB_PW, "approve").await;
    assert_eq!(posted.status, 302, "{}", posted.body);
}

// --------------------------------------------------------------------------- registration (AS-05)

#[tokio::test]
async fn registration_validates_metadata_and_is_rate_limited() {
    let srv = start(|c| c.registration_rate = RateQuota { interval: Duration::from_secs(60), burst: 12 }).await;
    let cases: [(Value, &str, &str); 9] = [
        (
            json!({"redirect_uris": ["http://attacker.example/cb"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
            "http non-loopback",
        ),
        (
            json!({"redirect_uris": ["https://client.example/cb#frag"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
            "fragment",
        ),
        (
            json!({"redirect_uris": ["https://*.client.example/cb"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
            "wildcard",
        ),
        (json!({"token_endpoint_auth_method": "none"}), "invalid_redirect_uri", "no redirect_uris"),
        (
            json!({"redirect_uris": "https://client.example/cb"}),
            "invalid_client_metadata",
            "redirect_uris not an array",
        ),
        (
            json!({"redirect_uris": ["https://client.example/cb"], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
            "implicit grant",
        ),
        (
            json!({"redirect_uris": ["https://client.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
            "token response type",
        ),
        (
            json!({"redirect_uris": ["https://client.example/cb"], "client_name": "x".repeat(101)}),
            "invalid_client_metadata",
            "long name",
        ),
        (
            json!({"redirect_uris": ["https://client.example/cb"], "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
            "public machine client",
        ),
    ];
    for (body, error, what) in &cases {
        let r = srv.register_raw(body).await;
        assert_oauth_error(&r, 400, error, what);
    }
    // Not JSON.
    let r = Reply::from(
        srv.http.post(srv.url("/register")).header("content-type", "text/plain").body("{}").send().await.expect("post"),
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_client_metadata", "text/plain body");
    // A confidential client gets its secret once.
    let r =
        srv.register_raw(&json!({"redirect_uris": ["https://client.example/cb"], "client_name": "Confidential"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let body = r.json();
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert!(body["client_secret"].as_str().is_some_and(|s| s.len() > 40));
    assert_eq!(body["client_secret_expires_at"], 0);
    assert_eq!(body["redirect_uris"], json!(["https://client.example/cb"]));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // 11 requests so far; the 12th passes, the 13th is limited.
    let ok = srv
        .register_raw(&json!({"redirect_uris": ["http://localhost:9/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let limited = srv
        .register_raw(&json!({"redirect_uris": ["http://localhost:9/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_oauth_error(&limited, 429, "slow_down", "registration burst exceeded");
    assert!(limited.header("retry-after").is_some());
}

// ---------------------------------------------------------------------------- client credentials

#[tokio::test]
async fn client_credentials_for_confidential_clients_only() {
    let srv = start(|_| {}).await;
    let register = |method: &'static str| {
        let srv = &srv;
        async move {
            let r = srv
                .register_raw(&json!({
                    "client_name": "Machine",
                    "grant_types": ["client_credentials"],
                    "token_endpoint_auth_method": method,
                    "scope": "mcp:read mcp:write mcp:admin",
                }))
                .await;
            assert_eq!(r.status, 201, "{}", r.body);
            let b = r.json();
            Registered {
                id: b["client_id"].as_str().expect("id").to_owned(),
                secret: Some(b["client_secret"].as_str().expect("secret").to_owned()),
                redirect: String::new(),
            }
        }
    };
    let basic_client = register("client_secret_basic").await;
    let basic = |id: &str, secret: &str| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
    };
    let secret = basic_client.secret.clone().expect("secret");

    let r = srv
        .post_form(
            "/token",
            &[("grant_type", "client_credentials")],
            &[("authorization", &basic(&basic_client.id, &secret))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert!(t.get("refresh_token").is_none(), "no refresh token for client_credentials");
    assert_eq!(t["scope"], "mcp:read mcp:write", "capped by client_credentials_scope");
    let v = srv
        .verifier()
        .await
        .verify(t["access_token"].as_str().expect("token"), SystemTime::now())
        .await
        .expect("verifies");
    assert_eq!(v.sub(), basic_client.id);

    // Wrong secret → 401 invalid_client with a Basic challenge.
    let r = srv
        .post_form(
            "/token",
            &[("grant_type", "client_credentials")],
            &[("authorization", &basic(&basic_client.id, "wrong"))],
        )
        .await;
    assert_oauth_error(&r, 401, "invalid_client", "wrong secret (basic)");
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Basic")));
    // The secret in the form when the client registered for Basic → 401.
    let r = srv
        .post_form(
            "/token",
            &[("grant_type", "client_credentials"), ("client_id", &basic_client.id), ("client_secret", &secret)],
            &[],
        )
        .await;
    assert_oauth_error(&r, 401, "invalid_client", "post method for a basic client");
    // More than the cap → invalid_scope.
    let r = srv
        .post_form(
            "/token",
            &[("grant_type", "client_credentials"), ("scope", "mcp:admin")],
            &[("authorization", &basic(&basic_client.id, &secret))],
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_scope", "admin via client_credentials");

    let post_client = register("client_secret_post").await;
    let post_secret = post_client.secret.clone().expect("secret");
    let r = srv
        .post_form(
            "/token",
            &[("grant_type", "client_credentials"), ("client_id", &post_client.id), ("client_secret", "wrong")],
            &[],
        )
        .await;
    assert_oauth_error(&r, 401, "invalid_client", "wrong secret (post)");
    let r = srv
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &post_client.id),
                ("client_secret", &post_secret),
                ("scope", "mcp:read"),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["scope"], "mcp:read");

    // A public client cannot use client_credentials.
    let public = srv.register_public("Public").await;
    let r = srv.post_form("/token", &[("grant_type", "client_credentials"), ("client_id", &public.id)], &[]).await;
    assert_oauth_error(&r, 400, "unauthorized_client", "public client_credentials");
}

// ------------------------------------------------------------------------------- fail closed

/// A memory store whose backend can be taken down and brought back.
#[derive(Default)]
struct ToggleStore {
    inner: MemoryStore,
    down: AtomicBool,
}

impl ToggleStore {
    fn guard<'a, T: Send + 'a>(&'a self, f: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        if self.down.load(Ordering::SeqCst) {
            Box::pin(async { Err(StoreError::Unavailable("connection refused".into())) })
        } else {
            f
        }
    }
}

impl SharedStore for ToggleStore {
    fn backend(&self) -> &'static str {
        "toggle"
    }
    fn ping(&self) -> StoreFuture<'_, ()> {
        self.guard(self.inner.ping())
    }
    fn gcra<'a>(&'a self, key: &'a str, interval: Duration, burst: u32) -> StoreFuture<'a, GcraDecision> {
        self.guard(self.inner.gcra(key, interval, burst))
    }
    fn put_code<'a>(&'a self, k: &'a str, r: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        self.guard(self.inner.put_code(k, r, ttl))
    }
    fn take_code<'a>(&'a self, k: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.guard(self.inner.take_code(k))
    }
    fn put_session<'a>(&'a self, k: &'a str, r: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        self.guard(self.inner.put_session(k, r, ttl))
    }
    fn get_session<'a>(&'a self, k: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.guard(self.inner.get_session(k))
    }
    fn delete_session<'a>(&'a self, k: &'a str) -> StoreFuture<'a, bool> {
        self.guard(self.inner.delete_session(k))
    }
    fn put_refresh<'a>(&'a self, k: &'a str, f: &'a str, r: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        self.guard(self.inner.put_refresh(k, f, r, ttl))
    }
    fn take_refresh<'a>(&'a self, k: &'a str) -> StoreFuture<'a, Option<(String, Vec<u8>)>> {
        self.guard(self.inner.take_refresh(k))
    }
    fn revoke_family<'a>(&'a self, f: &'a str, ttl: Duration) -> StoreFuture<'a, ()> {
        self.guard(self.inner.revoke_family(f, ttl))
    }
    fn family_revoked<'a>(&'a self, f: &'a str) -> StoreFuture<'a, bool> {
        self.guard(self.inner.family_revoked(f))
    }
    fn revoke_jti<'a>(&'a self, j: &'a str, until: SystemTime) -> StoreFuture<'a, ()> {
        self.guard(self.inner.revoke_jti(j, until))
    }
    fn jti_revoked<'a>(&'a self, j: &'a str) -> StoreFuture<'a, bool> {
        self.guard(self.inner.jti_revoked(j))
    }
}

#[tokio::test]
async fn an_unavailable_store_fails_closed_with_503_and_recovers() {
    let store = Arc::new(ToggleStore::default());
    let srv = start_with_store(|_| {}, store.clone()).await;
    let client = srv.register_public("Store test").await;
    let (verifier, challenge) = pkce_pair();
    let code = srv.code_for(&client, &challenge).await;
    let authorize = srv.authorize_query(&client, &challenge, "d", &[]);
    let page = srv.get(&authorize, None).await;
    assert_eq!(page.status, 200);

    store.down.store(true, Ordering::SeqCst);
    let r = srv
        .register_raw(&json!({"redirect_uris": ["https://c.example/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_oauth_error(&r, 503, "temporarily_unavailable", "register with the store down");
    assert!(!r.body.contains("connection refused"), "no internals in the error: {}", r.body);
    assert_error_page(
        &srv.get(&authorize, None).await,
        503,
        "temporarily_unavailable",
        "authorize with the store down",
    );
    let r = srv.exchange(&client, &code, &verifier).await;
    assert_oauth_error(&r, 503, "temporarily_unavailable", "token with the store down");
    let r = srv
        .post_form("/token", &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", &client.id)], &[])
        .await;
    assert_oauth_error(&r, 503, "temporarily_unavailable", "refresh with the store down");

    // Back up: the code was never consumed, so it still works.
    store.down.store(false, Ordering::SeqCst);
    let r = srv.exchange(&client, &code, &verifier).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

// --------------------------------------------------------------------------------- two replicas

#[tokio::test]
async fn replicas_sharing_a_store_act_as_one_server() {
    let store: Arc<dyn SharedStore> = Arc::new(MemoryStore::default());
    let key = SigningKey::generate(Alg::EdDSA).expect("key");
    let der = key.to_pkcs8_der().expect("der");
    let a = start_full(|_| {}, store.clone(), key).await;
    let b_key = SigningKey::from_pkcs8_der(&der).expect("same key");
    // Replica B answers on another port; it must accept A's issuer and resource to share state,
    // so both are configured with A's URLs (as replicas behind one load balancer would be).
    let (issuer, resource) = (a.base.clone(), a.resource.clone());
    let b = start_full(
        move |c| {
            c.issuer = issuer;
            c.canonical_resource = resource;
        },
        store,
        b_key,
    )
    .await;

    // Registered on A, known to B; the code minted on A is redeemed on B, once.
    let client = a.register_public("Replicated").await;
    let (verifier, challenge) = pkce_pair();
    let code = a.code_for(&client, &challenge).await;
    let r = b.exchange(&client, &code, &verifier).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let refresh = r.json()["refresh_token"].as_str().expect("refresh").to_owned();
    let r = a.exchange(&client, &code, &verifier).await;
    assert_oauth_error(&r, 400, "invalid_grant", "code replayed on the other replica");
    // The replay on A revoked the family B issued.
    let r = b.refresh(&client, &refresh, None).await;
    assert_oauth_error(&r, 400, "invalid_grant", "family revoked across replicas");
}
