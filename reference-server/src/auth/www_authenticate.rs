//! `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728 §5.1) and protected resource metadata
//! (RFC 9728 §2–3).
//!
//! Challenges are built only from server configuration and fixed vocabulary: nothing a client
//! sent (least of all its token) is ever reflected into a header, so a hostile request cannot
//! inject parameters or learn anything from the echo.

use http::HeaderValue;
use serde_json::{Value, json};

/// The RFC 9728 well-known suffix.
pub const WELL_KNOWN_PRM: &str = "/.well-known/oauth-protected-resource";

/// The human-readable name advertised in the metadata document.
pub const RESOURCE_NAME: &str = "mcproof reference MCP server";

/// Why a challenge could not be built. Only reachable through bad configuration, since every
/// value comes from the server itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// A parameter value held a control or non-ASCII character, which no quoted-string may carry.
    #[error("challenge parameter `{0}` contains a control or non-ASCII character")]
    ControlCharacter(&'static str),
    /// A scope was empty or not a space-separated list of RFC 6749 §3.3 scope tokens.
    #[error("challenge scope is not a valid RFC 6749 scope list")]
    InvalidScope,
}

/// The fixed set of `error_description` texts. A description never carries request data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidTokenReason {
    /// Not a token this server can parse.
    Malformed,
    /// Signature, issuer, key or format rejected; deliberately vague.
    Invalid,
    /// `exp` has passed (the client should refresh).
    Expired,
    /// Revoked, or an API key past its rotation grace period.
    Revoked,
    /// Issued for another resource (`aud` mismatch, RFC 8707).
    WrongAudience,
}

impl InvalidTokenReason {
    /// The `error_description` text.
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "The access token is malformed",
            Self::Invalid => "The access token is invalid",
            Self::Expired => "The access token expired",
            Self::Revoked => "The access token was revoked",
            Self::WrongAudience => "The access token was not issued for this resource",
        }
    }
}

/// 401 for a request without (usable) credentials. RFC 6750 §3.1: no `error` code here.
///
/// `Bearer resource_metadata="…", scope="…"`
pub fn unauthorized(resource_metadata_url: &str, scope: &str) -> Result<HeaderValue, ChallengeError> {
    build(&[("resource_metadata", Param::Quoted(resource_metadata_url)), ("scope", Param::Scope(scope))])
}

/// 401 for a token that failed verification.
///
/// `Bearer error="invalid_token", error_description="…", resource_metadata="…"`
pub fn invalid_token(
    resource_metadata_url: &str,
    reason: Option<InvalidTokenReason>,
) -> Result<HeaderValue, ChallengeError> {
    let mut params = vec![("error", Param::Quoted("invalid_token"))];
    if let Some(reason) = reason {
        params.push(("error_description", Param::Quoted(reason.description())));
    }
    params.push(("resource_metadata", Param::Quoted(resource_metadata_url)));
    build(&params)
}

/// 403 for a valid token whose scopes do not cover the request. `scope` is what the request
/// needs, so a client can step up once (MCP "Step-Up Authorization Flow").
///
/// `Bearer error="insufficient_scope", scope="…", resource_metadata="…"`
pub fn insufficient_scope(resource_metadata_url: &str, scope: &str) -> Result<HeaderValue, ChallengeError> {
    build(&[
        ("error", Param::Quoted("insufficient_scope")),
        ("scope", Param::Scope(scope)),
        ("resource_metadata", Param::Quoted(resource_metadata_url)),
    ])
}

/// 400 for a malformed authorization request (RFC 6750 §3.1 `invalid_request`): a credential in
/// the query string, two credentials, an empty bearer token.
///
/// `Bearer error="invalid_request", resource_metadata="…"`
pub fn invalid_request(resource_metadata_url: &str) -> Result<HeaderValue, ChallengeError> {
    build(&[("error", Param::Quoted("invalid_request")), ("resource_metadata", Param::Quoted(resource_metadata_url))])
}

/// The RFC 9728 protected resource metadata document.
pub fn protected_resource_metadata(resource: &str, authorization_servers: &[String], scopes: &[&str]) -> Value {
    json!({
        "resource": resource,
        "authorization_servers": authorization_servers,
        "scopes_supported": scopes,
        // Tokens only in the Authorization header: never the body or the query string.
        "bearer_methods_supported": ["header"],
        "resource_name": RESOURCE_NAME,
    })
}

/// The two well-known URLs of `resource`'s metadata (RFC 9728 §3.1): the path-inserted form
/// (`https://host/.well-known/oauth-protected-resource/mcp`), which clients try first, and the
/// root form (`https://host/.well-known/oauth-protected-resource`). For a resource without a path
/// the two are equal. A query is kept on the path-inserted form; a fragment is dropped (resource
/// identifiers have none).
pub fn metadata_urls(resource: &url::Url) -> (String, String) {
    let mut root = resource.clone();
    root.set_fragment(None);
    root.set_query(None);
    root.set_path(WELL_KNOWN_PRM);

    let path = resource.path();
    // "Any terminating slash following the host component MUST be removed" (RFC 9728 §3.1).
    let suffix = if path == "/" { "" } else { path };
    let mut inserted = root.clone();
    inserted.set_path(&format!("{WELL_KNOWN_PRM}{suffix}"));
    inserted.set_query(resource.query());
    (inserted.to_string(), root.to_string())
}

enum Param<'a> {
    /// Any printable ASCII, quoted and escaped.
    Quoted(&'a str),
    /// An RFC 6749 scope list, quoted.
    Scope(&'a str),
}

fn build(params: &[(&'static str, Param<'_>)]) -> Result<HeaderValue, ChallengeError> {
    let mut out = String::from("Bearer ");
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push('=');
        match value {
            Param::Quoted(v) => push_quoted(&mut out, name, v)?,
            Param::Scope(v) => {
                if !is_scope_list(v) {
                    return Err(ChallengeError::InvalidScope);
                }
                push_quoted(&mut out, name, v)?;
            }
        }
    }
    // Every byte was checked to be printable ASCII, so this cannot fail; map rather than panic.
    HeaderValue::from_str(&out).map_err(|_| ChallengeError::ControlCharacter("header"))
}

/// RFC 9110 §5.6.4 quoted-string. Only SP and VCHAR are allowed in: control characters (CR/LF
/// above all) would split or smuggle headers, and non-ASCII has no reliable meaning in a header.
fn push_quoted(out: &mut String, name: &'static str, value: &str) -> Result<(), ChallengeError> {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => return Err(ChallengeError::ControlCharacter(name)),
        }
    }
    out.push('"');
    Ok(())
}

/// RFC 6749 §3.3: `scope-token *( SP scope-token )`, `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_list(scope: &str) -> bool {
    !scope.is_empty()
        && scope.split(' ').all(|t| !t.is_empty() && t.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

    fn s(v: Result<HeaderValue, ChallengeError>) -> String {
        let v = v.unwrap_or_else(|e| panic!("{e}"));
        v.to_str().unwrap_or_else(|e| panic!("{e}")).to_owned()
    }

    #[test]
    fn unauthorized_challenge_is_exact() {
        assert_eq!(
            s(unauthorized(PRM, "mcp:read")),
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:read""#
        );
        assert_eq!(
            s(unauthorized(PRM, "mcp:read mcp:write")),
            format!(r#"Bearer resource_metadata="{PRM}", scope="mcp:read mcp:write""#)
        );
    }

    #[test]
    fn invalid_token_challenge_is_exact() {
        assert_eq!(
            s(invalid_token(PRM, Some(InvalidTokenReason::Expired))),
            format!(
                r#"Bearer error="invalid_token", error_description="The access token expired", resource_metadata="{PRM}""#
            )
        );
        assert_eq!(s(invalid_token(PRM, None)), format!(r#"Bearer error="invalid_token", resource_metadata="{PRM}""#));
    }

    #[test]
    fn every_description_is_a_valid_error_description() {
        // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
        for r in [
            InvalidTokenReason::Malformed,
            InvalidTokenReason::Invalid,
            InvalidTokenReason::Expired,
            InvalidTokenReason::Revoked,
            InvalidTokenReason::WrongAudience,
        ] {
            assert!(r.description().bytes().all(|b| matches!(b, 0x20 | 0x21 | 0x23..=0x5B | 0x5D..=0x7E)));
            assert!(s(invalid_token(PRM, Some(r))).contains(r.description()));
        }
    }

    #[test]
    fn insufficient_scope_challenge_is_exact() {
        assert_eq!(
            s(insufficient_scope(PRM, "mcp:write")),
            format!(r#"Bearer error="insufficient_scope", scope="mcp:write", resource_metadata="{PRM}""#)
        );
    }

    #[test]
    fn invalid_request_challenge_is_exact() {
        assert_eq!(s(invalid_request(PRM)), format!(r#"Bearer error="invalid_request", resource_metadata="{PRM}""#));
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(
            s(unauthorized(r#"https://h/a"b\c"#, "mcp:read")),
            r#"Bearer resource_metadata="https://h/a\"b\\c", scope="mcp:read""#
        );
    }

    #[test]
    fn control_and_non_ascii_characters_are_rejected() {
        for bad in ["https://h/\r\nSet-Cookie: x=1", "https://h/\n", "https://h/\0", "https://h/\t", "https://h/\u{7f}"]
        {
            assert_eq!(unauthorized(bad, "mcp:read"), Err(ChallengeError::ControlCharacter("resource_metadata")));
            assert_eq!(invalid_request(bad), Err(ChallengeError::ControlCharacter("resource_metadata")));
        }
        assert_eq!(
            insufficient_scope("https://h/é", "mcp:read"),
            Err(ChallengeError::ControlCharacter("resource_metadata"))
        );
    }

    #[test]
    fn bad_scopes_are_rejected() {
        for bad in ["", " ", "mcp:read  mcp:write", " mcp:read", "mcp:read ", "a\"b", "a\\b", "a\rb", "é"] {
            assert_eq!(unauthorized(PRM, bad), Err(ChallengeError::InvalidScope), "{bad:?}");
            assert_eq!(insufficient_scope(PRM, bad), Err(ChallengeError::InvalidScope), "{bad:?}");
        }
    }

    #[test]
    fn metadata_document_has_the_rfc_9728_fields() {
        let doc = protected_resource_metadata(
            "https://mcp.example.com/mcp",
            &["https://mcp.example.com".to_owned()],
            &["mcp:read", "mcp:write", "mcp:admin"],
        );
        assert_eq!(
            doc,
            json!({
                "resource": "https://mcp.example.com/mcp",
                "authorization_servers": ["https://mcp.example.com"],
                "scopes_supported": ["mcp:read", "mcp:write", "mcp:admin"],
                "bearer_methods_supported": ["header"],
                "resource_name": "mcproof reference MCP server",
            })
        );
    }

    fn urls(u: &str) -> (String, String) {
        metadata_urls(&url::Url::parse(u).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn metadata_urls_insert_the_well_known_path() {
        assert_eq!(
            urls("https://mcp.example.com/mcp"),
            (
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp".to_owned(),
                "https://mcp.example.com/.well-known/oauth-protected-resource".to_owned()
            )
        );
        assert_eq!(
            urls("http://127.0.0.1:8443/a/b/"),
            (
                "http://127.0.0.1:8443/.well-known/oauth-protected-resource/a/b/".to_owned(),
                "http://127.0.0.1:8443/.well-known/oauth-protected-resource".to_owned()
            )
        );
        assert_eq!(
            urls("https://h/mcp?tenant=1#frag"),
            (
                "https://h/.well-known/oauth-protected-resource/mcp?tenant=1".to_owned(),
                "https://h/.well-known/oauth-protected-resource".to_owned()
            )
        );
    }

    #[test]
    fn metadata_urls_of_a_pathless_resource_coincide() {
        let (inserted, root) = urls("https://mcp.example.com");
        assert_eq!(inserted, "https://mcp.example.com/.well-known/oauth-protected-resource");
        assert_eq!(inserted, root);
    }
}
