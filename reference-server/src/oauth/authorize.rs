//! The authorization endpoint: validates the request, shows the login and consent page, and
//! redirects back with a one-time code.
//!
//! The order of checks is what prevents open redirects: until `client_id` names a registered
//! client and `redirect_uri` equals one of its registered URIs byte for byte, every error is a
//! page shown here. Only then are errors sent back to the client by redirect (RFC 6749 §4.1.2.1),
//! always with `state` as sent and `iss` (RFC 9207).
//!
//! The form re-submits the whole authorization request and it is validated again on POST, so
//! nothing is kept between the two requests but the CSRF cookie (double submit, `__Host-`
//! prefixed so no other origin, not even a sibling subdomain, can plant it).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Uri};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use url::Url;

use super::clients::{Client, GrantType};
use super::page::{self, CSRF_COOKIE, CSRF_MAX_AGE_SECS, ConsentView, SESSION_COOKIE};
use super::users::User;
use super::{
    OAuthState, Params, PeerIp, is_canonical_resource, is_form, no_store, random_token, scope_string, secret_key,
};
use crate::store::{GcraDecision, StoreError};

/// Longest `state` echoed back.
pub const MAX_STATE_BYTES: usize = 2048;

/// What the store keeps for a code, under the code's SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub resource: String,
    pub scope: Vec<String>,
    pub sub: String,
    /// The refresh-token family the code's tokens will belong to.
    pub family: String,
    /// Milliseconds since the epoch; the store's TTL enforces it too.
    pub expires_at_ms: u64,
}

/// A validated authorization request.
#[derive(Debug)]
pub(crate) struct AuthzRequest {
    client: Arc<Client>,
    redirect_uri: String,
    scope: Vec<String>,
    state: Option<String>,
    code_challenge: String,
    resource: String,
}

/// Why a request was refused, and how to tell.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// Shown here: the client or redirect URI cannot be trusted with the answer.
    Page { status: StatusCode, error: &'static str, description: String },
    /// Sent to the validated redirect URI.
    Redirect { redirect_uri: String, error: &'static str, description: String, state: Option<String> },
}

impl Rejection {
    fn page(error: &'static str, description: impl Into<String>) -> Self {
        Rejection::Page { status: StatusCode::BAD_REQUEST, error, description: description.into() }
    }

    fn store(e: &StoreError) -> Self {
        tracing::error!(error = %e, "oauth authorize: shared store failed; refusing");
        Rejection::Page {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "temporarily_unavailable",
            description: "The authorization state store is unavailable. Try again later.".into(),
        }
    }

    fn into_response(self, state: &OAuthState) -> Response {
        match self {
            Rejection::Page { status, error, description } => error_page(status, error, &description),
            Rejection::Redirect { redirect_uri, error, description, state: st } => {
                let mut pairs = vec![("error", error.to_owned()), ("error_description", description)];
                if let Some(s) = st {
                    pairs.push(("state", s));
                }
                pairs.push(("iss", state.config().issuer.clone()));
                redirect(&redirect_uri, &pairs, &[])
            }
        }
    }
}

fn error_page(status: StatusCode, error: &str, description: &str) -> Response {
    page::html(status, page::render_error(error, description), &[])
}

fn store_failure_page(e: &StoreError) -> Response {
    tracing::error!(error = %e, "oauth authorize: shared store failed; refusing");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "The authorization state store is unavailable. Try again later.",
    )
}

/// Validates an authorization request (query of GET, form of POST).
pub(crate) async fn validate(state: &OAuthState, params: &Params) -> Result<AuthzRequest, Rejection> {
    // 1. Who asks, and where the answer may go. Errors here never redirect.
    let client_id = params
        .get("client_id")
        .map_err(|_| Rejection::page("invalid_request", "client_id was sent more than once"))?
        .ok_or_else(|| Rejection::page("invalid_request", "client_id is required"))?;
    let client = match state.clients().get(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(Rejection::page("invalid_client", "unknown client_id")),
        Err(e) => return Err(Rejection::store(&e)),
    };
    let redirect_uri = params
        .get("redirect_uri")
        .map_err(|_| Rejection::page("invalid_request", "redirect_uri was sent more than once"))?
        .ok_or_else(|| Rejection::page("invalid_request", "redirect_uri is required"))?;
    if !client.redirect_uris.iter().any(|r| r.as_bytes().ct_eq(redirect_uri.as_bytes()).into()) {
        return Err(Rejection::page("invalid_request", "redirect_uri does not match a registered redirect URI"));
    }
    let redirect_uri = redirect_uri.to_owned();

    // 2. From here on, errors go back to the client. `state` first, so that it can be echoed.
    let st = match params.get("state") {
        Ok(Some(s)) if s.len() <= MAX_STATE_BYTES => Some(s.to_owned()),
        Ok(None) => None,
        Ok(Some(_)) | Err(_) => {
            return Err(Rejection::Redirect {
                redirect_uri,
                error: "invalid_request",
                description: "state must be sent once and at most 2048 bytes".into(),
                state: None,
            });
        }
    };
    let fail = |error: &'static str, description: &str| Rejection::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description: description.to_owned(),
        state: st.clone(),
    };
    if let Some(name) = params.repeated_except(&["resource"]) {
        return Err(fail(
            "invalid_request",
            &format!("parameter {} was sent more than once", super::quoted_name(name)),
        ));
    }
    if params.get("response_type").ok().flatten() != Some("code") {
        return Err(fail("unsupported_response_type", "only response_type=code is supported"));
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail("unauthorized_client", "this client is not registered for the authorization_code grant"));
    }
    let code_challenge = params
        .get("code_challenge")
        .ok()
        .flatten()
        .ok_or_else(|| fail("invalid_request", "code_challenge is required (PKCE)"))?;
    if params.get("code_challenge_method").ok().flatten() != Some("S256") {
        return Err(fail("invalid_request", "code_challenge_method must be S256"));
    }
    let well_formed = code_challenge.len() == 43
        && code_challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(fail("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)"));
    }
    let resource = match params.get("resource") {
        Ok(Some(r)) if is_canonical_resource(state.config(), r) => state.config().canonical_resource.clone(),
        Ok(Some(_)) => return Err(fail("invalid_target", "resource is not this server's canonical URI")),
        Ok(None) => return Err(fail("invalid_target", "resource (RFC 8707) is required")),
        Err(_) => return Err(fail("invalid_target", "exactly one resource is supported")),
    };
    let scope = match params.get("scope").ok().flatten() {
        None => state.config().default_scope.clone(),
        Some(s) => super::parse_scope(s)
            .map_err(|bad| fail("invalid_scope", &format!("unsupported scope {}", super::quoted_name(&bad))))?,
    };
    let scope = if scope.is_empty() { state.config().default_scope.clone() } else { scope };
    Ok(AuthzRequest { client, redirect_uri, scope, state: st, code_challenge: code_challenge.to_owned(), resource })
}

/// The scopes `user` can grant out of `requested`.
fn grantable(requested: &[String], user: &User) -> Vec<String> {
    requested.iter().filter(|s| user.scopes.contains(s)).cloned().collect()
}

/// `GET /authorize`.
pub(crate) async fn get_authorize(State(state): State<OAuthState>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(params) = Params::parse(uri.query().unwrap_or("").as_bytes()) else {
        return error_page(StatusCode::BAD_REQUEST, "invalid_request", "too many parameters");
    };
    let request = match validate(&state, &params).await {
        Ok(r) => r,
        Err(rejection) => return rejection.into_response(&state),
    };
    // OpenID `prompt=login` / `prompt=consent`: the client wants the person asked again.
    let prompt = params.get("prompt").ok().flatten().unwrap_or("");
    let prompted = |v: &str| prompt.split(' ').any(|p| p == v);
    let ask_again = prompted("login") || prompted("consent");
    let user = if prompted("login") { None } else { signed_in_user(&state, &headers) };
    if let (Some(user), false) = (&user, ask_again) {
        // Consent given earlier to this very client for these scopes: no question, straight back.
        let granted = grantable(&request.scope, user);
        if !granted.is_empty() && state.consents().covers(&user.name, &request.client.client_id, &granted) {
            return issue_code(&state, &request, &user.name, granted, Vec::new()).await;
        }
    }
    consent_page(&request, StatusCode::OK, user.as_ref().map(|u| u.name.as_str()), None, None)
}

fn signed_in_user(state: &OAuthState, headers: &HeaderMap) -> Option<User> {
    let name = page::cookie(headers, SESSION_COOKIE).and_then(|c| state.logins().user(c))?;
    state.users().get(&name).cloned()
}

/// Renders the page with a fresh CSRF token, bound to the `__Host-` cookie set alongside.
fn consent_page(
    request: &AuthzRequest,
    status: StatusCode,
    signed_in_as: Option<&str>,
    username: Option<&str>,
    error: Option<(&str, &str)>,
) -> Response {
    let Ok(csrf) = random_token(32) else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "no randomness available");
    };
    let redirect = Url::parse(&request.redirect_uri).ok();
    let redirect_host = redirect.as_ref().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    let loopback = redirect.as_ref().is_some_and(|u| u.scheme() == "http");
    let scope = scope_string(&request.scope);
    let mut hidden: Vec<(&'static str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &request.client.client_id),
        ("redirect_uri", &request.redirect_uri),
        ("scope", &scope),
        ("code_challenge", &request.code_challenge),
        ("code_challenge_method", "S256"),
        ("resource", &request.resource),
    ];
    if let Some(s) = &request.state {
        hidden.push(("state", s));
    }
    let view = ConsentView {
        client_name: request.client.display_name(),
        client_id: &request.client.client_id,
        named: request.client.client_name.is_some(),
        redirect_uri: &request.redirect_uri,
        redirect_host: &redirect_host,
        loopback,
        resource: &request.resource,
        scopes: &request.scope,
        hidden: &hidden,
        csrf: &csrf,
        signed_in_as,
        username,
        error,
    };
    let cookie = page::set_cookie(CSRF_COOKIE, &csrf, CSRF_MAX_AGE_SECS);
    page::html(status, page::render_consent(&view), &[cookie])
}

/// Whether the form's CSRF token equals the cookie's, in constant time.
fn csrf_ok(form: Option<&str>, cookie: Option<&str>) -> bool {
    match (form, cookie) {
        (Some(f), Some(c)) if f.len() >= 43 => bool::from(f.as_bytes().ct_eq(c.as_bytes())),
        _ => false,
    }
}

/// `POST /authorize`: the login and consent form.
pub(crate) async fn post_authorize(
    State(state): State<OAuthState>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        return error_page(StatusCode::BAD_REQUEST, "invalid_request", "expected a form submission");
    }
    let Some(params) = Params::parse(&body) else {
        return error_page(StatusCode::BAD_REQUEST, "invalid_request", "too many parameters");
    };
    let form_token = params.get("csrf_token").ok().flatten();
    if !csrf_ok(form_token, page::cookie(&headers, CSRF_COOKIE)) {
        return error_page(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "The form's CSRF token is missing or does not match its cookie. Start again from the application.",
        );
    }
    let request = match validate(&state, &params).await {
        Ok(r) => r,
        Err(rejection) => return rejection.into_response(&state),
    };
    match params.get("action").ok().flatten() {
        Some("approve") => {}
        Some("deny") => {
            return Rejection::Redirect {
                redirect_uri: request.redirect_uri.clone(),
                error: "access_denied",
                description: "the user denied the request".into(),
                state: request.state.clone(),
            }
            .into_response(&state);
        }
        _ => return error_page(StatusCode::BAD_REQUEST, "invalid_request", "action must be approve or deny"),
    }

    let mut cookies = vec![page::clear_cookie(CSRF_COOKIE)];
    let username = params.get("username").ok().flatten();
    let password = params.get("password").ok().flatten();
    let user = match (username, password) {
        (Some(name), Some(password)) => match login(&state, ip, name, password).await {
            Ok(user) => {
                if let Some(session) = state.logins().start(&user.name) {
                    cookies.push(page::set_cookie(SESSION_COOKIE, &session, state.logins().ttl().as_secs()));
                }
                user
            }
            Err(LoginFailure::Wrong) => {
                tracing::info!(client_id = %request.client.client_id, "oauth login failed");
                return consent_page(
                    &request,
                    StatusCode::FORBIDDEN,
                    None,
                    Some(name),
                    Some(("access_denied", "Invalid user name or password.")),
                );
            }
            Err(LoginFailure::Limited(retry_after)) => {
                let mut response = error_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "slow_down",
                    "Too many sign-in attempts. Wait and try again.",
                );
                let secs = crate::rate_limit::retry_after_secs(retry_after);
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                return response;
            }
            Err(LoginFailure::Store(e)) => return store_failure_page(&e),
            Err(LoginFailure::Internal) => {
                return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error");
            }
        },
        _ => match signed_in_user(&state, &headers) {
            Some(user) => user,
            None => {
                return consent_page(
                    &request,
                    StatusCode::BAD_REQUEST,
                    None,
                    username,
                    Some(("invalid_request", "Enter your user name and password.")),
                );
            }
        },
    };
    let granted = grantable(&request.scope, &user);
    if granted.is_empty() {
        return Rejection::Redirect {
            redirect_uri: request.redirect_uri.clone(),
            error: "invalid_scope",
            description: "the user holds none of the requested scopes".into(),
            state: request.state.clone(),
        }
        .into_response(&state);
    }
    state.consents().record(&user.name, &request.client.client_id, &granted);
    tracing::info!(client_id = %request.client.client_id, user = %user.name, scope = %scope_string(&granted), "oauth consent granted");
    issue_code(&state, &request, &user.name, granted, cookies).await
}

enum LoginFailure {
    Wrong,
    Limited(std::time::Duration),
    Store(StoreError),
    Internal,
}

/// Checks a password, counting every attempt against the (user name, client IP) quota first so
/// that guessing stops at the limit whether or not a guess would have been right.
async fn login(state: &OAuthState, ip: std::net::IpAddr, name: &str, password: &str) -> Result<User, LoginFailure> {
    let quota = state.config().login_rate;
    let key = format!("oauth-login:{}:{name}|{}", name.len(), crate::rate_limit::ip_key(ip));
    match state.store().gcra(&key, quota.interval, quota.burst).await {
        Ok(GcraDecision::Allow) => {}
        Ok(GcraDecision::Deny { retry_after }) => return Err(LoginFailure::Limited(retry_after)),
        Err(e) => return Err(LoginFailure::Store(e)),
    }
    let st = state.clone();
    let (name, password) = (name.to_owned(), password.to_owned());
    // Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let verified = tokio::task::spawn_blocking(move || st.users().verify(&name, &password).cloned())
        .await
        .map_err(|_| LoginFailure::Internal)?;
    verified.ok_or(LoginFailure::Wrong)
}

/// Mints a code, stores its hash with everything the token endpoint must check, and redirects.
async fn issue_code(
    state: &OAuthState,
    request: &AuthzRequest,
    user: &str,
    scope: Vec<String>,
    cookies: Vec<String>,
) -> Response {
    let (Ok(code), Ok(family)) = (random_token(32), random_token(16)) else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "no randomness available");
    };
    let ttl = state.config().code_ttl;
    let record = CodeRecord {
        client_id: request.client.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        resource: request.resource.clone(),
        scope,
        sub: user.to_owned(),
        family,
        expires_at_ms: super::now_millis().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
    };
    let Ok(bytes) = serde_json::to_vec(&record) else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error");
    };
    if let Err(e) = state.store().put_code(&secret_key(&code), &bytes, ttl).await {
        return store_failure_page(&e);
    }
    let mut pairs = vec![("code", code)];
    if let Some(s) = &request.state {
        pairs.push(("state", s.clone()));
    }
    pairs.push(("iss", state.config().issuer.clone()));
    redirect(&request.redirect_uri, &pairs, &cookies)
}

/// 302 to a validated redirect URI with `pairs` appended to its query.
fn redirect(redirect_uri: &str, pairs: &[(&str, String)], cookies: &[String]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "invalid redirect URI");
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
    }
    let Ok(location) = HeaderValue::from_str(url.as_str()) else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "invalid redirect URI");
    };
    let mut response = StatusCode::FOUND.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, location);
    no_store(h);
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    page::add_cookies(h, cookies);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_needs_both_halves_equal() {
        let t = "a".repeat(43);
        assert!(csrf_ok(Some(&t), Some(&t)));
        assert!(!csrf_ok(Some(&t), None));
        assert!(!csrf_ok(None, Some(&t)));
        assert!(!csrf_ok(Some(&t), Some(&"b".repeat(43))));
        assert!(!csrf_ok(Some("short"), Some("short")), "a token too short to be ours");
    }

    #[test]
    fn redirect_appends_to_an_existing_query_and_encodes_state() {
        let r = redirect("https://c.example/cb?x=1", &[("code", "abc".into()), ("state", "a b&c=d".into())], &[]);
        assert_eq!(r.status(), StatusCode::FOUND);
        let location = r.headers()[header::LOCATION].to_str().expect("location");
        assert_eq!(location, "https://c.example/cb?x=1&code=abc&state=a+b%26c%3Dd");
        let url = Url::parse(location).expect("url");
        let state: Vec<_> = url.query_pairs().filter(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).collect();
        assert_eq!(state, vec!["a b&c=d".to_owned()]);
    }
}
