//! Authorization server metadata (RFC 8414; also served at the OpenID discovery path, which MCP
//! clients try too) and the JWKS with the public keys of access tokens.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderValue};
use serde_json::{Value, json};

use super::{OAuthConfig, OAuthState, SUPPORTED_SCOPES};

/// The metadata document. PKCE is advertised as S256 only: `plain` is refused, so advertising it
/// would invite clients to downgrade.
pub fn document(config: &OAuthConfig) -> Value {
    json!({
        "issuer": config.issuer,
        "authorization_endpoint": config.endpoint("/authorize"),
        "token_endpoint": config.endpoint("/token"),
        "registration_endpoint": config.endpoint("/register"),
        "jwks_uri": config.endpoint("/jwks.json"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": SUPPORTED_SCOPES,
        "authorization_response_iss_parameter_supported": true,
    })
}

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub(crate) async fn authorization_server(State(state): State<OAuthState>) -> Response {
    public_json(state.inner.metadata.to_string())
}

/// `GET /jwks.json`.
pub(crate) async fn jwks(State(state): State<OAuthState>) -> Response {
    public_json(state.jwks().to_json())
}

/// Public documents may be cached briefly: they change only with configuration or key rotation.
fn public_json(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_advertises_s256_only_and_endpoints_under_the_issuer() {
        let c = OAuthConfig::new("https://as.example", "https://as.example/mcp", vec![]);
        let d = document(&c);
        assert_eq!(d["issuer"], "https://as.example");
        assert_eq!(d["authorization_endpoint"], "https://as.example/authorize");
        assert_eq!(d["token_endpoint"], "https://as.example/token");
        assert_eq!(d["registration_endpoint"], "https://as.example/register");
        assert_eq!(d["jwks_uri"], "https://as.example/jwks.json");
        assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(d["response_types_supported"], json!(["code"]));
        assert_eq!(d["scopes_supported"], json!(["mcp:read", "mcp:write", "mcp:admin"]));
    }
}
