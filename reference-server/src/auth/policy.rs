//! The authorization decision: which scope a request needs, what a caller's scopes grant, and
//! how a credential is read from a request.
//!
//! Everything here is a pure function of its inputs so the HTTP layer can call it on every
//! request, and tests can enumerate it. Ownership (may this principal touch *this* note?) is not
//! decided here: only the tool knows the object, so the tools check `ctx.principal.id`.

use std::fmt;
use std::str::FromStr;

use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use serde::{Deserialize, Serialize};

use super::api_keys::KEY_PREFIX;
use super::www_authenticate::{self, ChallengeError};
use super::{Principal, Tier};

/// Read-only tools, listings and resources.
pub const SCOPE_READ: &str = "mcp:read";
/// Tools with side effects.
pub const SCOPE_WRITE: &str = "mcp:write";
/// Operator tools.
pub const SCOPE_ADMIN: &str = "mcp:admin";
/// Every scope this server understands, least to most privileged (the order of `scopes_supported`).
pub const SCOPES: [&str; 3] = [SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN];

/// The `X-API-Key` header.
pub const X_API_KEY: &str = "x-api-key";

/// Longest credential header value accepted; real tokens are far shorter.
const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// Query parameters that carry credentials elsewhere. Their presence is refused outright, so a
/// credential put in a URL (and so in logs, history and Referer) is never honoured.
const QUERY_CREDENTIAL_NAMES: [&str; 6] = ["access_token", "api_key", "apikey", "api-key", "x-api-key", "x_api_key"];

/// Whether MCP requests need a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Every MCP request needs a valid credential.
    #[default]
    Required,
    /// Callers without a credential act as [`anonymous`], who sees and calls only public tools.
    /// Callers that present a credential are held to it: a bad one is still refused.
    PublicTier,
}

impl Policy {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::PublicTier => "public-tier",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "required" => Ok(Self::Required),
            "public-tier" => Ok(Self::PublicTier),
            _ => Err(UnknownPolicy),
        }
    }
}

/// A policy name that is neither `required` nor `public-tier`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown auth policy (expected `required` or `public-tier`)")]
pub struct UnknownPolicy;

/// The principal of a caller without a credential under [`Policy::PublicTier`]: public tier only
/// (unlike [`Principal::anonymous`], which serves the credential-less `public` mode).
pub fn anonymous() -> Principal {
    Principal { id: "anonymous".to_owned(), tier: Tier::Public }
}

/// The principal of a verified credential.
pub fn principal_for(id: &str, scopes: &[String]) -> Principal {
    Principal { id: id.to_owned(), tier: tier_from_scopes(scopes) }
}

/// The tier scopes confer: `mcp:admin` → admin; any other scope → owner (an authenticated
/// principal owns its own data; the tools check which objects are its own); none → public.
pub fn tier_from_scopes<S: AsRef<str>>(scopes: &[S]) -> Tier {
    if scopes.iter().any(|s| s.as_ref() == SCOPE_ADMIN) {
        Tier::Admin
    } else if scopes.is_empty() {
        Tier::Public
    } else {
        Tier::Owner
    }
}

/// The scope a request needs, or `None` when any valid credential will do (`initialize` and
/// notifications: starting a session touches no data).
///
/// `tool_tier` and `read_only` describe the tool of a `tools/call` (from its spec and
/// `readOnlyHint`); they are ignored for other methods. Admin-tier tools need `mcp:admin`;
/// read-only tools `mcp:read`; other tools `mcp:write`. A call naming no known tool
/// (`tool_tier: None`) needs `mcp:read`: nothing will run, and it fails as an unknown tool.
/// Everything else (`ping`, listings, reads, subscriptions, completions) needs `mcp:read`.
pub fn required_scope_for(method: &str, tool_tier: Option<Tier>, read_only: bool) -> Option<&'static str> {
    match method {
        "initialize" => None,
        m if m.starts_with("notifications/") => None,
        "tools/call" => Some(match tool_tier {
            Some(Tier::Admin) => SCOPE_ADMIN,
            Some(_) if !read_only => SCOPE_WRITE,
            _ => SCOPE_READ,
        }),
        _ => Some(SCOPE_READ),
    }
}

/// Whether `scopes` cover `required`. The MCP scopes are ordered, each including those below it
/// (`mcp:admin` ⊇ `mcp:write` ⊇ `mcp:read`), so a client asked to step up gets one scope that
/// covers the request instead of climbing repeatedly; a reduced-scope token still does what its
/// scope covers. Any other scope matches only itself.
pub fn grants<S: AsRef<str>>(scopes: &[S], required: &str) -> bool {
    match rank(required) {
        Some(need) => scopes.iter().any(|s| rank(s.as_ref()).is_some_and(|have| have >= need)),
        None => scopes.iter().any(|s| s.as_ref() == required),
    }
}

fn rank(scope: &str) -> Option<usize> {
    SCOPES.iter().position(|s| *s == scope)
}

/// What a request is about to do, as the HTTP layer knows it before dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action<'a> {
    /// The JSON-RPC method.
    pub method: &'a str,
    /// For `tools/call`: the tier of the named tool, `None` if no such tool exists.
    pub tool_tier: Option<Tier>,
    /// For `tools/call`: the tool's `readOnlyHint`.
    pub read_only: bool,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead (ownership is still checked by the tool).
    Allow,
    /// 401: a credential is needed; the challenge names the scope that would cover the request.
    Unauthenticated {
        /// The scope to put in the challenge.
        scope: &'static str,
    },
    /// 403: the credential is valid but its scopes do not cover the request.
    InsufficientScope {
        /// The scope the request needs.
        scope: &'static str,
    },
}

impl Decision {
    /// The HTTP status of a refusal (200 for [`Decision::Allow`], which is never sent as such).
    pub fn status(self) -> StatusCode {
        match self {
            Self::Allow => StatusCode::OK,
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// The `WWW-Authenticate` value of a refusal; `None` for [`Decision::Allow`].
    pub fn challenge(self, resource_metadata_url: &str) -> Option<Result<HeaderValue, ChallengeError>> {
        match self {
            Self::Allow => None,
            Self::Unauthenticated { scope } => Some(www_authenticate::unauthorized(resource_metadata_url, scope)),
            Self::InsufficientScope { scope } => {
                Some(www_authenticate::insufficient_scope(resource_metadata_url, scope))
            }
        }
    }

    /// A short label for the audit log.
    pub fn label(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::InsufficientScope { .. } => "insufficient-scope",
        }
    }
}

/// Decides one request. `caller_scopes` is `None` when no credential was presented, and the
/// verified credential's scopes otherwise (a credential that failed verification never gets here:
/// that is a 401 `invalid_token` whatever the policy).
pub fn decide<S: AsRef<str>>(policy: Policy, caller_scopes: Option<&[S]>, action: &Action<'_>) -> Decision {
    let required = required_scope_for(action.method, action.tool_tier, action.read_only);
    match caller_scopes {
        None if policy == Policy::PublicTier && anonymous_may(action) => Decision::Allow,
        None => Decision::Unauthenticated { scope: required.unwrap_or(SCOPE_READ) },
        Some(scopes) => match required {
            Some(scope) if !grants(scopes, scope) => Decision::InsufficientScope { scope },
            _ => Decision::Allow,
        },
    }
}

/// Under `public-tier`, what a caller without a credential may do: everything except calling a
/// tool above the public tier. Listings are filtered to public tools by the tool registry (the
/// anonymous principal's tier is public); unknown tools fail as such.
fn anonymous_may(action: &Action<'_>) -> bool {
    action.method != "tools/call" || matches!(action.tool_tier, None | Some(Tier::Public))
}

/// The credential a request carries.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// None at all.
    None,
    /// `Authorization: Bearer <token>` with a token that is not an API key (a JWT access token).
    Bearer(String),
    /// `Authorization: Bearer mcp_sk_…` or `X-API-Key: …`.
    ApiKey(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Bearer(_) => f.write_str("Bearer([REDACTED])"),
            Self::ApiKey(_) => f.write_str("ApiKey([REDACTED])"),
        }
    }
}

/// Why a request's credential could not be read. No variant carries any of the request's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// A credential in the query string. Refused rather than ignored so the client learns; the
    /// HTTP layer must not log the URL of such a request.
    #[error("credentials are not accepted in the query string")]
    InQueryString,
    /// Both `Authorization` and `X-API-Key`, or one of them twice.
    #[error("more than one credential was sent")]
    MultipleCredentials,
    /// An empty token, bytes outside the token alphabet, or an oversized value.
    #[error("malformed credential header")]
    Malformed,
    /// An `Authorization` scheme other than Bearer.
    #[error("unsupported authorization scheme")]
    UnsupportedScheme,
}

impl CredentialError {
    /// RFC 6750 §3.1: a malformed request is 400 `invalid_request`; an unsupported scheme is a
    /// request without usable credentials, 401 with a plain challenge.
    pub fn status(self) -> StatusCode {
        match self {
            Self::UnsupportedScheme => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The `WWW-Authenticate` value to send with [`CredentialError::status`].
    pub fn challenge(self, resource_metadata_url: &str, scope: &str) -> Result<HeaderValue, ChallengeError> {
        match self {
            Self::UnsupportedScheme => www_authenticate::unauthorized(resource_metadata_url, scope),
            _ => www_authenticate::invalid_request(resource_metadata_url),
        }
    }
}

impl Credential {
    /// Reads the credential of a request. Accepted: `Authorization: Bearer <token>` (an
    /// `mcp_sk_` token is an API key) or `X-API-Key: <key>`, exactly one of them, once. Refused:
    /// any credential in the query string, two credentials, malformed values.
    pub fn from_request(headers: &HeaderMap, uri: &Uri) -> Result<Self, CredentialError> {
        if query_has_credential(uri) {
            return Err(CredentialError::InQueryString);
        }
        let authorization = single(headers, header::AUTHORIZATION.as_str())?;
        let api_key = single(headers, X_API_KEY)?;
        match (authorization, api_key) {
            (Some(_), Some(_)) => Err(CredentialError::MultipleCredentials),
            (Some(value), None) => {
                let token = bearer_token(value)?;
                Ok(if token.starts_with(KEY_PREFIX) {
                    Self::ApiKey(token.to_owned())
                } else {
                    Self::Bearer(token.to_owned())
                })
            }
            (None, Some(value)) => {
                let key = value.to_str().map_err(|_| CredentialError::Malformed)?.trim();
                if key.is_empty() || key.len() > MAX_CREDENTIAL_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(CredentialError::Malformed);
                }
                Ok(Self::ApiKey(key.to_owned()))
            }
            (None, None) => Ok(Self::None),
        }
    }

    /// Whether a credential was presented.
    pub fn is_present(&self) -> bool {
        !matches!(self, Self::None)
    }
}

/// The one value of header `name`, if any; two values are ambiguous and refused.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h HeaderValue>, CredentialError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(CredentialError::MultipleCredentials);
    }
    Ok(first)
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1 `b64token` syntax).
fn bearer_token(value: &HeaderValue) -> Result<&str, CredentialError> {
    let value = value.to_str().map_err(|_| CredentialError::Malformed)?.trim();
    if value.len() > MAX_CREDENTIAL_LEN {
        return Err(CredentialError::Malformed);
    }
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(CredentialError::UnsupportedScheme);
    }
    let token = rest.trim_start_matches(' ');
    if is_b64token(token) { Ok(token) } else { Err(CredentialError::Malformed) }
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

/// Whether the query string carries a credential: a parameter named like one, or any name or
/// value (percent-decoded or not) containing the API-key prefix.
pub(crate) fn query_has_credential(uri: &Uri) -> bool {
    let Some(query) = uri.query() else { return false };
    query.contains(KEY_PREFIX)
        || url::form_urlencoded::parse(query.as_bytes()).any(|(name, value)| {
            QUERY_CREDENTIAL_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
                || name.contains(KEY_PREFIX)
                || value.contains(KEY_PREFIX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    fn call(tier: Option<Tier>, read_only: bool) -> Action<'static> {
        Action { method: "tools/call", tool_tier: tier, read_only }
    }

    fn method(m: &'static str) -> Action<'static> {
        Action { method: m, tool_tier: None, read_only: false }
    }

    #[test]
    fn policy_serde_and_parse() {
        assert_eq!(Policy::default(), Policy::Required);
        assert_eq!(serde_json::to_string(&Policy::PublicTier).ok().as_deref(), Some("\"public-tier\""));
        assert_eq!(serde_json::from_str::<Policy>("\"required\"").ok(), Some(Policy::Required));
        assert!(serde_json::from_str::<Policy>("\"public\"").is_err());
        assert_eq!("public-tier".parse::<Policy>(), Ok(Policy::PublicTier));
        assert_eq!("Required".parse::<Policy>(), Err(UnknownPolicy));
        assert_eq!(Policy::PublicTier.to_string(), "public-tier");
    }

    #[test]
    fn required_scopes() {
        assert_eq!(required_scope_for("initialize", None, false), None);
        assert_eq!(required_scope_for("notifications/initialized", None, false), None);
        for m in ["ping", "tools/list", "resources/list", "resources/read", "prompts/list", "logging/setLevel"] {
            assert_eq!(required_scope_for(m, None, false), Some(SCOPE_READ), "{m}");
        }
        assert_eq!(required_scope_for("tools/call", Some(Tier::Owner), true), Some(SCOPE_READ));
        assert_eq!(required_scope_for("tools/call", Some(Tier::Public), true), Some(SCOPE_READ));
        assert_eq!(required_scope_for("tools/call", Some(Tier::Owner), false), Some(SCOPE_WRITE));
        assert_eq!(required_scope_for("tools/call", Some(Tier::Authenticated), false), Some(SCOPE_WRITE));
        assert_eq!(required_scope_for("tools/call", Some(Tier::Admin), false), Some(SCOPE_ADMIN));
        assert_eq!(required_scope_for("tools/call", Some(Tier::Admin), true), Some(SCOPE_ADMIN));
        assert_eq!(required_scope_for("tools/call", None, false), Some(SCOPE_READ));
        // Tool facts do not leak into other methods.
        assert_eq!(required_scope_for("tools/list", Some(Tier::Admin), false), Some(SCOPE_READ));
    }

    #[test]
    fn tiers_from_scopes() {
        assert_eq!(tier_from_scopes::<&str>(&[]), Tier::Public);
        assert_eq!(tier_from_scopes(&["mcp:read"]), Tier::Owner);
        assert_eq!(tier_from_scopes(&["openid"]), Tier::Owner);
        assert_eq!(tier_from_scopes(&["mcp:read", "mcp:admin"]), Tier::Admin);
        assert_eq!(
            principal_for("alice", &scopes(&["mcp:write"])),
            Principal { id: "alice".into(), tier: Tier::Owner }
        );
        assert_eq!(anonymous().tier, Tier::Public);
        assert!(!anonymous().may(Tier::Authenticated));
    }

    #[test]
    fn scopes_are_ordered() {
        assert!(grants(&["mcp:read"], SCOPE_READ));
        assert!(!grants(&["mcp:read"], SCOPE_WRITE));
        assert!(grants(&["mcp:write"], SCOPE_READ));
        assert!(grants(&["mcp:admin"], SCOPE_WRITE));
        assert!(!grants(&["mcp:write"], SCOPE_ADMIN));
        assert!(!grants::<&str>(&[], SCOPE_READ));
        assert!(!grants(&["openid", "mcp:reader", "MCP:READ"], SCOPE_READ));
        assert!(grants(&["openid"], "openid"));
        assert!(!grants(&["mcp:admin"], "openid"));
    }

    #[test]
    fn required_policy_needs_a_credential_for_everything() {
        for a in [method("initialize"), method("ping"), method("tools/list"), call(Some(Tier::Public), true)] {
            assert_eq!(decide::<String>(Policy::Required, None, &a), Decision::Unauthenticated { scope: SCOPE_READ });
        }
        assert_eq!(
            decide::<String>(Policy::Required, None, &call(Some(Tier::Owner), false)),
            Decision::Unauthenticated { scope: SCOPE_WRITE }
        );
        assert_eq!(
            decide::<String>(Policy::Required, None, &call(Some(Tier::Admin), false)),
            Decision::Unauthenticated { scope: SCOPE_ADMIN }
        );
    }

    #[test]
    fn public_tier_lets_anonymous_reach_public_tools_only() {
        let p = Policy::PublicTier;
        for a in [method("initialize"), method("ping"), method("tools/list"), method("resources/read")] {
            assert_eq!(decide::<String>(p, None, &a), Decision::Allow, "{a:?}");
        }
        assert_eq!(decide::<String>(p, None, &call(Some(Tier::Public), true)), Decision::Allow);
        assert_eq!(decide::<String>(p, None, &call(None, false)), Decision::Allow);
        assert_eq!(
            decide::<String>(p, None, &call(Some(Tier::Authenticated), true)),
            Decision::Unauthenticated { scope: SCOPE_READ }
        );
        assert_eq!(
            decide::<String>(p, None, &call(Some(Tier::Owner), false)),
            Decision::Unauthenticated { scope: SCOPE_WRITE }
        );
        assert_eq!(
            decide::<String>(p, None, &call(Some(Tier::Admin), false)),
            Decision::Unauthenticated { scope: SCOPE_ADMIN }
        );
    }

    #[test]
    fn credentials_are_held_to_their_scopes_under_both_policies() {
        for p in [Policy::Required, Policy::PublicTier] {
            let read = scopes(&["mcp:read"]);
            let write = scopes(&["mcp:write"]);
            let admin = scopes(&["mcp:admin"]);
            let none: Vec<String> = Vec::new();
            assert_eq!(decide(p, Some(&read), &method("tools/list")), Decision::Allow);
            assert_eq!(decide(p, Some(&read), &call(Some(Tier::Owner), true)), Decision::Allow);
            assert_eq!(
                decide(p, Some(&read), &call(Some(Tier::Owner), false)),
                Decision::InsufficientScope { scope: SCOPE_WRITE }
            );
            assert_eq!(decide(p, Some(&write), &call(Some(Tier::Owner), false)), Decision::Allow);
            assert_eq!(
                decide(p, Some(&write), &call(Some(Tier::Admin), false)),
                Decision::InsufficientScope { scope: SCOPE_ADMIN }
            );
            assert_eq!(decide(p, Some(&admin), &call(Some(Tier::Admin), false)), Decision::Allow);
            // A token with no MCP scope may open a session but do nothing in it.
            assert_eq!(decide(p, Some(&none), &method("initialize")), Decision::Allow);
            assert_eq!(decide(p, Some(&none), &method("ping")), Decision::InsufficientScope { scope: SCOPE_READ });
            // A credential is held to its scopes even where an anonymous caller would be let in.
            assert_eq!(
                decide(p, Some(&none), &call(Some(Tier::Public), true)),
                Decision::InsufficientScope { scope: SCOPE_READ }
            );
        }
    }

    #[test]
    fn decisions_render_their_challenges() {
        let prm = "https://h/.well-known/oauth-protected-resource/mcp";
        let d = Decision::Unauthenticated { scope: SCOPE_READ };
        assert_eq!(d.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            d.challenge(prm).and_then(Result::ok).as_ref().and_then(|v| v.to_str().ok()),
            Some(r#"Bearer resource_metadata="https://h/.well-known/oauth-protected-resource/mcp", scope="mcp:read""#)
        );
        let d = Decision::InsufficientScope { scope: SCOPE_WRITE };
        assert_eq!(d.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            d.challenge(prm).and_then(Result::ok).as_ref().and_then(|v| v.to_str().ok()),
            Some(
                r#"Bearer error="insufficient_scope", scope="mcp:write", resource_metadata="https://h/.well-known/oauth-protected-resource/mcp""#
            )
        );
        assert!(Decision::Allow.challenge(prm).is_none());
        assert_eq!(Decision::Allow.label(), "allow");
    }

    fn parse(pairs: &[(&str, &str)], uri: &str) -> Result<Credential, CredentialError> {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            let name = http::HeaderName::from_bytes(n.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            h.append(name, HeaderValue::from_bytes(v.as_bytes()).unwrap_or_else(|e| panic!("{e}")));
        }
        Credential::from_request(&h, &uri.parse::<Uri>().unwrap_or_else(|e| panic!("{e}")))
    }

    const KEY: &str = "mcp_sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn credentials_are_read_from_headers() {
        assert_eq!(parse(&[], "/mcp"), Ok(Credential::None));
        assert_eq!(
            parse(&[("authorization", "Bearer abc.def-ghi_~+/=")], "/mcp"),
            Ok(Credential::Bearer("abc.def-ghi_~+/=".into()))
        );
        assert_eq!(parse(&[("authorization", "bearer   abc")], "/mcp"), Ok(Credential::Bearer("abc".into())));
        assert_eq!(parse(&[("authorization", &format!("Bearer {KEY}"))], "/mcp"), Ok(Credential::ApiKey(KEY.into())));
        assert_eq!(parse(&[("x-api-key", KEY)], "/mcp"), Ok(Credential::ApiKey(KEY.into())));
        // Not key-shaped: still an API key attempt, to be refused by verification (401).
        assert_eq!(parse(&[("x-api-key", "nope")], "/mcp"), Ok(Credential::ApiKey("nope".into())));
        assert!(!Credential::None.is_present());
        assert!(Credential::Bearer("x".into()).is_present());
    }

    #[test]
    fn malformed_and_ambiguous_credentials_are_refused() {
        let bearer = format!("Bearer {KEY}");
        let cases: &[(&[(&str, &str)], CredentialError)] = &[
            (&[("authorization", "Bearer")], CredentialError::Malformed),
            (&[("authorization", "Bearer ")], CredentialError::Malformed),
            (&[("authorization", "Bearer a b")], CredentialError::Malformed),
            (&[("authorization", "Bearer a=b")], CredentialError::Malformed),
            (&[("authorization", "Bearer ===")], CredentialError::Malformed),
            (&[("authorization", "Bearer \u{e9}")], CredentialError::Malformed),
            (&[("authorization", "Basic dXNlcjpwYXNz")], CredentialError::UnsupportedScheme),
            (&[("authorization", "Bearerabc")], CredentialError::UnsupportedScheme),
            (&[("authorization", "Bearer a"), ("authorization", "Bearer b")], CredentialError::MultipleCredentials),
            (&[("x-api-key", KEY), ("x-api-key", KEY)], CredentialError::MultipleCredentials),
            (&[("authorization", &bearer), ("x-api-key", KEY)], CredentialError::MultipleCredentials),
            (&[("x-api-key", "")], CredentialError::Malformed),
            (&[("x-api-key", "a b")], CredentialError::Malformed),
        ];
        for (headers, want) in cases {
            assert_eq!(parse(headers, "/mcp"), Err(*want), "{headers:?}");
        }
        let huge = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_LEN));
        assert_eq!(parse(&[("authorization", &huge)], "/mcp"), Err(CredentialError::Malformed));
    }

    #[test]
    fn credentials_in_the_query_string_are_refused() {
        for uri in [
            "/mcp?access_token=abc",
            "/mcp?x=1&ACCESS_TOKEN=",
            "/mcp?api_key=abc",
            "/mcp?apikey=abc",
            "/mcp?api-key=abc",
            "/mcp?x-api-key=abc",
            &format!("/mcp?k={KEY}"),
            "/mcp?k=mcp%5Fsk%5Fabc",
            "/mcp?mcp_sk_abc",
            "/mcp?a%63cess_token=x",
        ] {
            assert_eq!(parse(&[], uri), Err(CredentialError::InQueryString), "{uri}");
            // Even alongside a header credential (RFC 6750: more than one method is invalid_request).
            assert_eq!(parse(&[("authorization", "Bearer abc")], uri), Err(CredentialError::InQueryString), "{uri}");
        }
        assert_eq!(parse(&[], "/mcp?session=1&token_type=x"), Ok(Credential::None));
    }

    #[test]
    fn credential_errors_map_to_rfc_6750() {
        let prm = "https://h/prm";
        assert_eq!(CredentialError::InQueryString.status(), StatusCode::BAD_REQUEST);
        assert_eq!(CredentialError::MultipleCredentials.status(), StatusCode::BAD_REQUEST);
        assert_eq!(CredentialError::Malformed.status(), StatusCode::BAD_REQUEST);
        assert_eq!(CredentialError::UnsupportedScheme.status(), StatusCode::UNAUTHORIZED);
        let v = CredentialError::Malformed.challenge(prm, SCOPE_READ).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, r#"Bearer error="invalid_request", resource_metadata="https://h/prm""#);
        let v = CredentialError::UnsupportedScheme.challenge(prm, SCOPE_READ).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, r#"Bearer resource_metadata="https://h/prm", scope="mcp:read""#);
    }

    #[test]
    fn credential_debug_is_redacted() {
        let dbg = format!("{:?} {:?}", Credential::Bearer("secret-token".into()), Credential::ApiKey(KEY.into()));
        assert!(!dbg.contains("secret-token") && !dbg.contains(KEY), "{dbg}");
    }
}
