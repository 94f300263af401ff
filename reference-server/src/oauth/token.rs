//! The token endpoint: authorization code (PKCE S256), refresh-token rotation, client credentials.
//!
//! Codes and refresh tokens are single use through the store's atomic take. Each leaves a marker
//! behind for the rest of its lifetime, so that a second presentation is recognised as a replay
//! (RFC 6749 §4.1.2, OAuth 2.1 §4.3.1) rather than as an unknown token, and what it issued is
//! revoked: a replayed code revokes its refresh-token family and its access token's `jti`; a
//! replayed refresh token revokes its family, so every token of it stops working.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use http::header::{self, HeaderMap};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::authorize::CodeRecord;
use super::clients::{AuthMethod, Client, GrantType};
use super::{
    OAuthError, OAuthState, Params, is_canonical_resource, is_form, json_response, now_millis, parse_scope,
    random_token, scope_string, secret_key,
};
use crate::auth::pkce;

/// Margin added to an access token's `exp` when revoking its `jti`, covering verifier leeway.
const REVOCATION_MARGIN: Duration = Duration::from_secs(300);

/// What the store keeps, under `spent.<code hash>`, once a code has been redeemed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SpentCode {
    family: String,
    /// The access token issued for the code, once it has been.
    jti: Option<String>,
    /// Its `exp`, seconds since the epoch.
    exp: Option<u64>,
}

/// What the store keeps for a refresh token, under its hash and tagged with its family.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshRecord {
    client_id: String,
    sub: String,
    scope: Vec<String>,
    resource: String,
    expires_at_ms: u64,
}

/// The store key marking a redeemed code.
fn spent_key(code_hash: &str) -> String {
    format!("spent.{code_hash}")
}

/// The store key marking a rotated refresh token (kept in the refresh table with its family).
fn rotated_key(token_hash: &str) -> String {
    format!("rotated.{token_hash}")
}

fn remaining(expires_at_ms: u64) -> Duration {
    Duration::from_millis(expires_at_ms.saturating_sub(now_millis()))
}

fn invalid_grant(description: &'static str) -> OAuthError {
    OAuthError::bad_request("invalid_grant", description)
}

fn invalid_request(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::bad_request("invalid_request", description)
}

/// `POST /token`.
pub(crate) async fn token(State(state): State<OAuthState>, headers: HeaderMap, body: Bytes) -> Response {
    match token_inner(&state, &headers, &body).await {
        Ok(response) => response,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

async fn token_inner(state: &OAuthState, headers: &HeaderMap, body: &[u8]) -> Result<Response, OAuthError> {
    if !is_form(headers) {
        return Err(invalid_request("Content-Type must be application/x-www-form-urlencoded"));
    }
    let params = Params::parse(body).ok_or_else(|| invalid_request("too many parameters"))?;
    if let Some(name) = params.repeated_except(&[]) {
        return Err(invalid_request(format!("parameter {} was sent more than once", super::quoted_name(name))));
    }
    let client = authenticate_client(state, headers, &params).await?;
    match params.get("grant_type").ok().flatten() {
        Some("authorization_code") => authorization_code(state, &client, &params).await,
        Some("refresh_token") => refresh_token(state, &client, &params).await,
        Some("client_credentials") => client_credentials(state, &client, &params).await,
        Some(_) => Err(OAuthError::bad_request("unsupported_grant_type", "unsupported grant_type")),
        None => Err(invalid_request("grant_type is required")),
    }
}

/// Client authentication (RFC 6749 §2.3): HTTP Basic, or `client_secret` in the form, exactly as
/// the client registered; public clients name themselves with `client_id` and present no secret.
async fn authenticate_client(
    state: &OAuthState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Arc<Client>, OAuthError> {
    let form_id = params.get("client_id").ok().flatten();
    let form_secret = params.get("client_secret").ok().flatten();
    if let Some((id, secret)) = basic_credentials(headers)? {
        if form_secret.is_some() {
            return Err(invalid_request("use one client authentication method, not two"));
        }
        if form_id.is_some_and(|f| f != id) {
            return Err(OAuthError::invalid_client("client_id does not match the authenticated client"));
        }
        let client = lookup_client(state, &id).await?;
        if client.auth_method != AuthMethod::ClientSecretBasic || !client.secret_matches(&secret) {
            return Err(OAuthError::invalid_client("client authentication failed"));
        }
        return Ok(client);
    }
    let id = form_id.ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
    let client = lookup_client(state, id).await?;
    let authenticated = match client.auth_method {
        AuthMethod::None => form_secret.is_none(),
        AuthMethod::ClientSecretPost => form_secret.is_some_and(|s| client.secret_matches(s)),
        AuthMethod::ClientSecretBasic => false,
    };
    if !authenticated {
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    Ok(client)
}

async fn lookup_client(state: &OAuthState, id: &str) -> Result<Arc<Client>, OAuthError> {
    state.clients().get(id).await?.ok_or_else(|| OAuthError::invalid_client("unknown client"))
}

/// `Authorization: Basic` credentials, form-urlencoded inside as RFC 6749 §2.3.1 says. Any other
/// `Authorization` header is a failed client authentication.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let fail = || OAuthError::invalid_client("malformed Authorization header");
    let value = value.to_str().map_err(|_| fail())?;
    let (scheme, encoded) = value.split_once(' ').ok_or_else(fail)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(fail());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| fail())?;
    let colon = decoded.iter().position(|b| *b == b':').ok_or_else(fail)?;
    let (id, secret) = (&decoded[..colon], &decoded[colon + 1..]);
    let id = form_decode(id).ok_or_else(fail)?;
    let secret = form_decode(secret).ok_or_else(fail)?;
    if id.is_empty() {
        return Err(fail());
    }
    Ok(Some((id, secret)))
}

/// `application/x-www-form-urlencoded` decoding of one value.
fn form_decode(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.contains('&') || text.contains('=') {
        // Not valid inside one encoded value; refuse rather than guess.
        return None;
    }
    let query = format!("v={text}");
    url::form_urlencoded::parse(query.as_bytes()).next().map(|(_, v)| v.into_owned())
}

fn check_resource(state: &OAuthState, params: &Params) -> Result<(), OAuthError> {
    match params.get("resource").ok().flatten() {
        Some(r) if !is_canonical_resource(state.config(), r) => {
            Err(OAuthError::bad_request("invalid_target", "resource is not this server's canonical URI"))
        }
        _ => Ok(()),
    }
}

async fn authorization_code(state: &OAuthState, client: &Client, params: &Params) -> Result<Response, OAuthError> {
    let code = params.get("code").ok().flatten().ok_or_else(|| invalid_request("code is required"))?;
    let verifier = params
        .get("code_verifier")
        .ok()
        .flatten()
        .ok_or_else(|| invalid_request("code_verifier is required (PKCE)"))?;
    let redirect_uri =
        params.get("redirect_uri").ok().flatten().ok_or_else(|| invalid_request("redirect_uri is required"))?;
    check_resource(state, params)?;
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::bad_request("unauthorized_client", "client is not registered for this grant"));
    }
    let store = state.store();
    let code_hash = secret_key(code);
    let Some(bytes) = store.take_code(&code_hash).await? else {
        if let Some(bytes) = store.take_code(&spent_key(&code_hash)).await? {
            let spent: SpentCode = serde_json::from_slice(&bytes).map_err(|_| OAuthError::server_error())?;
            revoke_spent(state, &spent).await?;
            return Err(invalid_grant("authorization code was already used; the tokens it issued are revoked"));
        }
        return Err(invalid_grant("authorization code is invalid or expired"));
    };
    let record: CodeRecord = serde_json::from_slice(&bytes).map_err(|_| OAuthError::server_error())?;
    let lifetime = remaining(record.expires_at_ms);
    if lifetime.is_zero() {
        return Err(invalid_grant("authorization code is invalid or expired"));
    }
    // From now on the code is spent: whatever happens next, presenting it again is a replay.
    let mut spent = SpentCode { family: record.family.clone(), jti: None, exp: None };
    put_spent(state, &code_hash, &spent, lifetime).await?;
    if record.client_id != client.client_id {
        return Err(invalid_grant("authorization code was issued to another client"));
    }
    if record.redirect_uri != redirect_uri {
        return Err(invalid_grant("redirect_uri does not match the authorization request"));
    }
    if !pkce::verify_s256(verifier, &record.code_challenge) {
        return Err(invalid_grant("code_verifier does not match the code_challenge"));
    }
    let access = mint_access(state, &record.sub, &record.scope, &client.client_id)?;
    spent.jti = Some(access.jti.clone());
    spent.exp = Some(access.exp);
    put_spent(state, &code_hash, &spent, lifetime).await?;
    let refresh = if client.allows(GrantType::RefreshToken) {
        let rec = RefreshRecord {
            client_id: client.client_id.clone(),
            sub: record.sub.clone(),
            scope: record.scope.clone(),
            resource: record.resource.clone(),
            expires_at_ms: 0,
        };
        Some(mint_refresh(state, &record.family, rec).await?)
    } else {
        None
    };
    // A replay that raced this exchange revoked the family before the tokens were out: withhold them.
    if store.family_revoked(&record.family).await? {
        revoke_spent(state, &spent).await?;
        return Err(invalid_grant("authorization code was already used; the tokens it issued are revoked"));
    }
    tracing::info!(client_id = %client.client_id, sub = %record.sub, "oauth: code exchanged");
    Ok(token_response(state, &access, &record.scope, refresh.as_deref()))
}

async fn put_spent(state: &OAuthState, code_hash: &str, spent: &SpentCode, ttl: Duration) -> Result<(), OAuthError> {
    let bytes = serde_json::to_vec(spent).map_err(|_| OAuthError::server_error())?;
    state.store().put_code(&spent_key(code_hash), &bytes, ttl).await?;
    Ok(())
}

/// Revokes what a replayed code issued: its refresh-token family and its access token.
async fn revoke_spent(state: &OAuthState, spent: &SpentCode) -> Result<(), OAuthError> {
    let store = state.store();
    store.revoke_family(&spent.family, state.config().refresh_ttl).await?;
    if let (Some(jti), Some(exp)) = (&spent.jti, spent.exp) {
        let until = UNIX_EPOCH + Duration::from_secs(exp) + REVOCATION_MARGIN;
        store.revoke_jti(jti, until).await?;
    }
    tracing::warn!(family = %spent.family, "oauth: authorization code replayed; its tokens are revoked");
    Ok(())
}

async fn refresh_token(state: &OAuthState, client: &Client, params: &Params) -> Result<Response, OAuthError> {
    let token =
        params.get("refresh_token").ok().flatten().ok_or_else(|| invalid_request("refresh_token is required"))?;
    check_resource(state, params)?;
    let requested = match params.get("scope").ok().flatten() {
        Some(s) => Some(parse_scope(s).map_err(|_| OAuthError::bad_request("invalid_scope", "unsupported scope"))?),
        None => None,
    };
    if !client.allows(GrantType::RefreshToken) {
        return Err(OAuthError::bad_request("unauthorized_client", "client is not registered for this grant"));
    }
    let store = state.store();
    let token_hash = secret_key(token);
    let Some((family, bytes)) = store.take_refresh(&token_hash).await? else {
        if let Some((family, _)) = store.take_refresh(&rotated_key(&token_hash)).await? {
            store.revoke_family(&family, state.config().refresh_ttl).await?;
            tracing::warn!(family = %family, "oauth: rotated refresh token replayed; family revoked");
            return Err(invalid_grant("refresh token was already used; its family is revoked"));
        }
        return Err(invalid_grant("refresh token is invalid, expired or revoked"));
    };
    let record: RefreshRecord = serde_json::from_slice(&bytes).map_err(|_| OAuthError::server_error())?;
    let lifetime = remaining(record.expires_at_ms);
    if lifetime.is_zero() {
        return Err(invalid_grant("refresh token is invalid, expired or revoked"));
    }
    store.put_refresh(&rotated_key(&token_hash), &family, b"rotated", lifetime).await?;
    if store.family_revoked(&family).await? {
        return Err(invalid_grant("refresh token is invalid, expired or revoked"));
    }
    if record.client_id != client.client_id {
        // Someone else's token: treat it as stolen.
        store.revoke_family(&family, state.config().refresh_ttl).await?;
        return Err(invalid_grant("refresh token was issued to another client"));
    }
    let scope = match requested {
        None => record.scope.clone(),
        Some(narrower) if narrower.iter().all(|s| record.scope.contains(s)) && !narrower.is_empty() => narrower,
        Some(_) => {
            // Not the holder's fault that it asked for too much: give the token back unchanged.
            store.take_refresh(&rotated_key(&token_hash)).await?;
            store.put_refresh(&token_hash, &family, &bytes, lifetime).await?;
            return Err(OAuthError::bad_request("invalid_scope", "scope may only narrow the original grant"));
        }
    };
    let access = mint_access(state, &record.sub, &scope, &client.client_id)?;
    // RFC 6749 §6: the new refresh token keeps the original scope.
    let new_refresh = mint_refresh(state, &family, record.clone()).await?;
    tracing::info!(client_id = %client.client_id, sub = %record.sub, "oauth: refresh token rotated");
    Ok(token_response(state, &access, &scope, Some(&new_refresh)))
}

async fn client_credentials(state: &OAuthState, client: &Client, params: &Params) -> Result<Response, OAuthError> {
    if !client.is_confidential() || !client.allows(GrantType::ClientCredentials) {
        return Err(OAuthError::bad_request("unauthorized_client", "client is not registered for client_credentials"));
    }
    check_resource(state, params)?;
    let allowed: Vec<String> =
        client.scope.iter().filter(|s| state.config().client_credentials_scope.contains(s)).cloned().collect();
    let scope = match params.get("scope").ok().flatten() {
        None => allowed.clone(),
        Some(s) => parse_scope(s).map_err(|_| OAuthError::bad_request("invalid_scope", "unsupported scope"))?,
    };
    if scope.is_empty() || !scope.iter().all(|s| allowed.contains(s)) {
        return Err(OAuthError::bad_request("invalid_scope", "scope exceeds what this client may be granted"));
    }
    let access = mint_access(state, &client.client_id, &scope, &client.client_id)?;
    tracing::info!(client_id = %client.client_id, "oauth: client credentials token issued");
    Ok(token_response(state, &access, &scope, None))
}

/// An access token and what revoking it needs.
struct Access {
    token: String,
    jti: String,
    exp: u64,
}

fn mint_access(state: &OAuthState, sub: &str, scope: &[String], client_id: &str) -> Result<Access, OAuthError> {
    let (token, claims) = state.token_issuer().issue(sub, &scope_string(scope), Some(client_id)).map_err(|e| {
        tracing::error!(error = %e, "oauth: signing an access token failed");
        OAuthError::server_error()
    })?;
    Ok(Access { token, jti: claims.jti, exp: claims.exp })
}

async fn mint_refresh(state: &OAuthState, family: &str, mut record: RefreshRecord) -> Result<String, OAuthError> {
    let token = format!("mcprt_{}", random_token(32).map_err(|_| OAuthError::server_error())?);
    let ttl = state.config().refresh_ttl;
    record.expires_at_ms = now_millis().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    let bytes = serde_json::to_vec(&record).map_err(|_| OAuthError::server_error())?;
    state.store().put_refresh(&secret_key(&token), family, &bytes, ttl).await?;
    Ok(token)
}

fn token_response(state: &OAuthState, access: &Access, scope: &[String], refresh: Option<&str>) -> Response {
    let mut body = json!({
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": state.config().access_ttl.as_secs(),
        "scope": scope_string(scope),
    });
    if let (Some(refresh), Some(obj)) = (refresh, body.as_object_mut()) {
        obj.insert("refresh_token".into(), refresh.into());
    }
    json_response(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn basic(raw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(raw));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).expect("header"));
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let got = basic_credentials(&basic("my%20client:s%3Acret+x")).expect("ok").expect("some");
        assert_eq!(got, ("my client".to_owned(), "s:cret x".to_owned()));
        let got = basic_credentials(&basic("id:a:b")).expect("ok").expect("some");
        assert_eq!(got, ("id".to_owned(), "a:b".to_owned()));
        assert!(basic_credentials(&basic("no-colon")).is_err());
        assert!(basic_credentials(&basic(":secret")).is_err());
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(basic_credentials(&h).is_err());
        assert_eq!(basic_credentials(&HeaderMap::new()).expect("ok"), None);
    }

    #[test]
    fn markers_use_store_safe_keys() {
        let k = secret_key("code");
        assert!(crate::store::normalize_id(&spent_key(&k)) == spent_key(&k));
        assert!(crate::store::normalize_id(&rotated_key(&k)) == rotated_key(&k));
    }
}
