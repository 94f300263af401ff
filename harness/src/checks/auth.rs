//! Checks of the `auth` area: the MCP server as an OAuth 2.1 resource server (basic/authorization):
//! the 401 challenge, refusal of invalid tokens, RFC 9728 protected resource metadata, the
//! authorization server's PKCE methods (RFC 8414 metadata), and credentials kept out of URLs.
//!
//! These rules apply to servers that require authentication. Every check first sends an
//! `initialize` without any credential; when that is served, the server does not require
//! authentication and the check SKIPs (`posture/auth-required` judges that). Requests that must
//! carry no credential are sent raw: only `Content-Type` and `Accept`, none of the scan's
//! credentials or extra headers. Documents are fetched only from the target's own host.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::check::{ALL_REVISIONS, Check, CheckInfo, FROM_2025_06_18, Kind, Level, Transport, Verdict};
use crate::client::http::{HttpClient, HttpRequest, HttpResponse, PREFERRED_REVISION, initialize_body};
use crate::evidence::{Exchange, redact_text};
use crate::probe::{Probe, truncate};

const HTTP: &[Transport] = &[Transport::Http];

/// The RFC 9728 well-known suffix.
const WELL_KNOWN_PRM: &str = "/.well-known/oauth-protected-resource";

/// The checks of this area.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            info: CheckInfo {
                id: "auth/challenge-401",
                title: "Requests without credentials get 401 with a Bearer challenge naming the resource metadata",
                level: Level::Must,
                weight: 12,
                source: "basic/authorization §Protected Resource Metadata Discovery Requirements, §Error Handling; RFC 9110 §15.5.2; RFC 6750 §3; RFC 9728 §5.1; spec-checks AU-01",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "POSTs initialize with no credential. SKIP when it is served (the server does not require authentication). PASS on 401 with a `WWW-Authenticate: Bearer` challenge whose `resource_metadata` is an absolute http(s) URL (from 2025-11-25 a challenge without it passes when the well-known metadata URL serves the document; 2025-03-26 predates it). FAIL on a 401 without WWW-Authenticate or without a Bearer challenge, on any other status (403, 5xx, …), or when the refusal carries an InitializeResult.",
                remediation: "Answer every request without a credential with `401 Unauthorized` and `WWW-Authenticate: Bearer resource_metadata=\"https://<host>/.well-known/oauth-protected-resource/<path>\", scope=\"…\"`, before any MCP processing.",
            },
            run: |p| Box::pin(challenge_401(p)),
        },
        Check {
            info: CheckInfo {
                id: "auth/invalid-token-401",
                title: "Invalid and forged bearer tokens get 401 invalid_token",
                level: Level::Must,
                weight: 14,
                source: "basic/authorization §Token Handling, §Error Handling; OAuth 2.1 §5.2; RFC 6750 §3.1; spec-checks AU-06",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "POSTs initialize with `Authorization: Bearer <random garbage>`, then with a JWT-shaped token (RS256 header, plausible claims for this endpoint) whose signature is random bytes, and no other credential. PASS when both get 401 with a Bearer challenge carrying `error=\"invalid_token\"`. FAIL when either is served, answered with another status (403, 400, 5xx, …) or a 401 without WWW-Authenticate; WARN for a 401 whose Bearer challenge lacks the error code (RFC 6750 SHOULD). SKIP when the server does not require authentication.",
                remediation: "Verify every access token (signature against the issuer's keys, issuer, audience, expiry) before serving the request, and refuse a token that fails with `401` and `WWW-Authenticate: Bearer error=\"invalid_token\", resource_metadata=\"…\"`.",
            },
            run: |p| Box::pin(invalid_token_401(p)),
        },
        Check {
            info: CheckInfo {
                id: "auth/protected-resource-metadata",
                title: "Protected resource metadata names this endpoint and its authorization servers",
                level: Level::Must,
                weight: 10,
                source: "basic/authorization §Authorization Server Location, §Canonical Server URI; RFC 9728 §2, §3.1, §3.3; spec-checks AU-02, AU-03, AU-04, AU-15",
                revisions: FROM_2025_06_18,
                transports: HTTP,
                kind: Kind::Passive,
                description: "Fetches, without credentials, the metadata URL from the 401 challenge's `resource_metadata` (if it is on the target's host), else the path-inserted well-known URL, then the root one. PASS when a 200 JSON document has `resource` equal to the endpoint URL and a non-empty `authorization_servers` array of https (or loopback http) URLs. FAIL when none is served, `resource` names another URL (RFC 9728 §3.3: clients must discard it), or `authorization_servers` is missing, empty or not https. WARN when only the root document answers and its `resource` is a less specific URL of the same origin. SKIP when the server does not require authentication.",
                remediation: "Serve RFC 9728 metadata at `/.well-known/oauth-protected-resource/<mcp path>` (and name it in the 401 challenge) with `\"resource\": \"<the exact MCP endpoint URL>\"` and `\"authorization_servers\": [\"https://<issuer>\"]`.",
            },
            run: |p| Box::pin(protected_resource_metadata(p)),
        },
        Check {
            info: CheckInfo {
                id: "auth/as-metadata-pkce",
                title: "The authorization server advertises PKCE S256 and not plain",
                level: Level::Must,
                weight: 10,
                source: "basic/authorization §Authorization Code Protection, §Authorization Server Metadata Discovery; RFC 8414 §3; OAuth 2.1 §4.1.1, §7.5.2; RFC 9700 §2.1.1; spec-checks AS-01, AS-02, AS-03",
                revisions: FROM_2025_06_18,
                transports: HTTP,
                kind: Kind::Passive,
                description: "For each issuer in the protected resource metadata's `authorization_servers` that is on the target's host, GETs its RFC 8414 metadata (path-inserted `/.well-known/oauth-authorization-server`, then the OpenID configuration forms). PASS when every document's `code_challenge_methods_supported` contains `S256` and not `plain`. FAIL when it is missing, lacks S256, offers plain (a downgrade), or no metadata document is served. SKIP for authorization servers on another host (the harness sends traffic only to the target) or when the server does not require authentication.",
                remediation: "Publish RFC 8414 metadata with `\"code_challenge_methods_supported\": [\"S256\"]`, require a code_challenge on every authorization request and refuse `plain`.",
            },
            run: |p| Box::pin(as_metadata_pkce(p)),
        },
        Check {
            info: CheckInfo {
                id: "auth/credential-not-in-query",
                title: "Credentials in the URL query are refused",
                level: Level::BestPractice,
                weight: 4,
                source: "basic/authorization §Token Requirements (\"MUST NOT include access tokens in the URI query string\"); OAuth 2.1 §5.2; RFC 6750 §2.3, §5.3; spec-checks AU-13",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "POSTs initialize with the scan's own credential only in the query string (`?access_token=…`, then `?api_key=…`) and no credential header. PASS when both are refused (400, 401 or 403). FAIL when either is served: the server honours credentials in URLs, which end up in logs, browser history and Referer headers. SKIP when the server does not require authentication or the scan has no credential to send.",
                remediation: "Read credentials only from the Authorization header (or a dedicated header such as X-API-Key); refuse requests carrying access_token or api_key query parameters with 400 invalid_request, and keep such URLs out of logs.",
            },
            run: |p| Box::pin(credential_not_in_query(p)),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// A POST with only the headers MCP needs: no credential of any kind, no operator headers.
fn bare_post(label: impl Into<String>, body: &Value) -> HttpRequest {
    HttpRequest::post(label, body)
        .raw()
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
}

/// A GET of a JSON document with no credential.
fn bare_get(label: impl Into<String>, url: &str) -> HttpRequest {
    HttpRequest::new(label, http::Method::GET).raw().at_path(url).header("accept", "application/json")
}

fn status_text(r: &HttpResponse) -> String {
    match (r.status, &r.error) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => format!("no response ({})", truncate(e, 80)),
        (None, None) => "no response".into(),
    }
}

/// Whether the response to request `id` is an InitializeResult (the request was served).
fn served_initialize(r: &HttpResponse, id: u64) -> bool {
    r.response_to(&json!(id)).and_then(|m| m.get("result")).is_some()
}

/// The outcome of the unauthenticated `initialize` every check starts with.
struct Challenge {
    response: HttpResponse,
    /// The first Bearer challenge's parameters, if the refusal carried one.
    bearer: Option<Vec<(String, String)>>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.bearer.as_ref()?.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends `initialize` without credentials. `Err` is the verdict to return: SKIP when it was
/// served (authentication is not required), ERROR when nothing answered.
async fn unauthenticated(probe: &Probe) -> Result<(&HttpClient, Challenge), Verdict> {
    let http = probe.http()?;
    let id = probe.next_id();
    let r = http.send(bare_post("initialize without credentials", &initialize_body(id, PREFERRED_REVISION))).await;
    let Some(status) = r.status else {
        return Err(Verdict::error(format!("initialize without credentials got {}", status_text(&r))).with(r.exchange));
    };
    if served_initialize(&r, id) {
        return Err(Verdict::skip(format!(
            "not applicable: initialize without credentials was served (HTTP {status}), so the server does not require authentication (posture/auth-required judges that)"
        ))
        .with(r.exchange));
    }
    let bearer = bearer_challenge(&r);
    Ok((http, Challenge { response: r, bearer }))
}

/// Every `WWW-Authenticate` value of a response.
fn www_authenticate(r: &HttpResponse) -> Vec<String> {
    r.headers.get_all("www-authenticate").iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect()
}

/// The parameters of the first Bearer challenge of the response's `WWW-Authenticate` headers.
fn bearer_challenge(r: &HttpResponse) -> Option<Vec<(String, String)>> {
    www_authenticate(r)
        .iter()
        .flat_map(|v| parse_challenges(v))
        .find(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, params)| params)
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parses a `WWW-Authenticate` value (RFC 9110 §11.6.1) into challenges: scheme and auth-params
/// (names lowercased; a token68 is kept under the empty name). Lenient: stops at what it cannot read.
pub fn parse_challenges(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i] == ' ' || chars[*i] == '\t') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && is_tchar(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    loop {
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t' || chars[i] == ',') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let scheme = token(&mut i);
        if scheme.is_empty() {
            break;
        }
        let mut params = Vec::new();
        loop {
            skip_ws(&mut i);
            let save = i;
            let name = token(&mut i);
            skip_ws(&mut i);
            if name.is_empty() || i >= chars.len() || chars[i] != '=' {
                // Not a parameter: either a token68 (`Negotiate abc==`) or the next challenge.
                i = save;
                if params.is_empty() {
                    let start = i;
                    while i < chars.len() && (is_tchar(chars[i]) || chars[i] == '/') {
                        i += 1;
                    }
                    while i < chars.len() && chars[i] == '=' {
                        i += 1;
                    }
                    skip_ws(&mut i);
                    if i > start && (i >= chars.len() || chars[i] == ',') {
                        params.push((String::new(), chars[start..i].iter().collect::<String>().trim().to_owned()));
                    } else {
                        i = start;
                    }
                }
                break;
            }
            // `name=` then `=`, a comma or the end is a token68 (`abc==`), not a parameter.
            let mut j = i;
            while j < chars.len() && chars[j] == '=' {
                j += 1;
            }
            let rest = chars[j..].iter().find(|c| **c != ' ' && **c != '\t');
            if params.is_empty() && (j > i + 1 || matches!(rest, None | Some(','))) {
                params.push((String::new(), chars[save..j].iter().collect::<String>().trim().to_owned()));
                i = j;
                break;
            }
            i += 1; // '='
            skip_ws(&mut i);
            let value = if i < chars.len() && chars[i] == '"' {
                i += 1;
                let mut v = String::new();
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    v.push(chars[i]);
                    i += 1;
                }
                i += 1; // closing quote
                v
            } else {
                token(&mut i)
            };
            params.push((name.to_ascii_lowercase(), value));
            skip_ws(&mut i);
            if i < chars.len() && chars[i] == ',' {
                i += 1;
                continue;
            }
            break;
        }
        out.push((scheme, params));
        // Anything unreadable up to the next comma is skipped.
        while i < chars.len() && chars[i] != ',' && !is_tchar(chars[i]) {
            i += 1;
        }
    }
    out
}

/// Whether two URLs are the same host (the harness contacts nothing else).
fn same_host(a: &url::Url, b: &url::Url) -> bool {
    match (a.host_str(), b.host_str()) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// https, or http to a loopback host (basic/authorization §Communication Security).
fn secure_scheme(url: &url::Url) -> bool {
    url.scheme() == "https" || (url.scheme() == "http" && is_loopback(url))
}

/// The RFC 9728 §3.1 metadata URLs of `resource`: path-inserted, then root (equal for a
/// resource without a path).
fn prm_urls(resource: &url::Url) -> Vec<String> {
    let mut root = resource.clone();
    root.set_fragment(None);
    root.set_query(None);
    root.set_path(WELL_KNOWN_PRM);
    let path = resource.path().trim_end_matches('/');
    let mut inserted = root.clone();
    inserted.set_path(&format!("{WELL_KNOWN_PRM}{path}"));
    inserted.set_query(resource.query());
    let mut urls = vec![inserted.to_string()];
    if root != inserted {
        urls.push(root.to_string());
    }
    urls
}

/// A URL compared as a resource identifier: scheme and host lowercase (the parser does that),
/// default port, no fragment, no trailing slash on the path.
fn canonical(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_fragment(None);
    let path = u.path().trim_end_matches('/').to_owned();
    u.set_path(&path);
    u.to_string().trim_end_matches('/').to_owned()
}

/// Whether `resource` is the same origin as `endpoint` with a path that is a segment prefix of it.
fn less_specific(resource: &url::Url, endpoint: &url::Url) -> bool {
    if resource.origin() != endpoint.origin() || resource.query().is_some() {
        return false;
    }
    let r = resource.path().trim_end_matches('/');
    let e = endpoint.path().trim_end_matches('/');
    r.is_empty() || (e.starts_with(r) && e[r.len()..].starts_with('/'))
}

/// A fetched JSON document.
struct Document {
    url: String,
    body: Value,
}

/// GETs `url` without credentials; `Ok` when it answered 200 with a JSON object.
async fn fetch_json(http: &HttpClient, label: &str, url: &str) -> (Result<Value, String>, Exchange) {
    let r = http.send(bare_get(format!("GET {label}"), url)).await;
    let outcome = match r.status {
        Some(200) => match serde_json::from_slice::<Value>(&r.body) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(format!("{url} → HTTP 200 but the body is not a JSON object")),
            Err(_) => Err(format!("{url} → HTTP 200 but the body is not JSON")),
        },
        _ => Err(format!("{url} → {}", status_text(&r))),
    };
    (outcome, r.exchange)
}

/// Finds the protected resource metadata: the challenge's URL when it is on the target's host,
/// then the well-known URLs. `Err` is the verdict (FAIL when nothing serves it, SKIP when it
/// lives only on another host).
async fn find_prm(probe: &Probe) -> Result<(&HttpClient, Challenge, Document, Vec<Exchange>), Verdict> {
    let (http, challenge) = unauthenticated(probe).await?;
    let endpoint = http.url().clone();
    let mut evidence = vec![challenge.response.exchange.clone()];
    let mut candidates = Vec::new();
    let mut elsewhere = None;
    if let Some(advertised) = challenge.param("resource_metadata") {
        match url::Url::parse(advertised) {
            Ok(u) if same_host(&u, &endpoint) && matches!(u.scheme(), "http" | "https") => {
                candidates.push(u.to_string());
            }
            Ok(u) => elsewhere = Some(u.to_string()),
            Err(_) => {}
        }
    }
    for u in prm_urls(&endpoint) {
        if !candidates.contains(&u) {
            candidates.push(u);
        }
    }
    let mut tried = Vec::new();
    for url in candidates {
        let (outcome, exchange) = fetch_json(http, "protected resource metadata", &url).await;
        evidence.push(exchange);
        match outcome {
            Ok(body) => return Ok((http, challenge, Document { url, body }, evidence)),
            Err(why) => tried.push(why),
        }
    }
    Err(match elsewhere {
        Some(u) => Verdict::skip(format!(
            "not applicable: the challenge names protected resource metadata on another host ({u}), which the harness does not contact, and the target's well-known URLs do not serve it ({})",
            tried.join("; ")
        )),
        None => Verdict::fail(format!(
            "no protected resource metadata is served without credentials: {}",
            tried.join("; ")
        )),
    }
    .with_all(evidence))
}

// ---------------------------------------------------------------------------------------------
// auth/challenge-401

async fn challenge_401(probe: &Probe) -> Verdict {
    let (http, challenge) = match unauthenticated(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let r = &challenge.response;
    let status = r.status.unwrap_or_default();
    let headers = www_authenticate(r);
    let shown = headers.iter().map(|h| truncate(h, 200)).collect::<Vec<_>>().join(" | ");
    let evidence = vec![r.exchange.clone()];
    if status != 401 {
        let hint = match status {
            403 => " (403 means \"authenticated but not allowed\"; a missing credential is 401)",
            500..=599 => " (a server error instead of a refusal)",
            _ => "",
        };
        return Verdict::fail(format!(
            "initialize without credentials was refused with HTTP {status} instead of 401{hint}"
        ))
        .with_all(evidence);
    }
    if headers.is_empty() {
        return Verdict::fail(
            "initialize without credentials got 401 without a WWW-Authenticate header (RFC 9110 §15.5.2 requires one; MCP clients find the authorization server through it)",
        )
        .with_all(evidence);
    }
    if challenge.bearer.is_none() {
        return Verdict::fail(format!(
            "the 401 challenge has no Bearer scheme (WWW-Authenticate: {shown}); MCP uses OAuth bearer tokens (RFC 6750 §3)"
        ))
        .with_all(evidence);
    }
    let version = probe.version();
    match challenge.param("resource_metadata") {
        Some(u) => match url::Url::parse(u) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Verdict::pass(format!(
                "initialize without credentials got 401 with WWW-Authenticate: {shown}"
            ))
            .with_all(evidence),
            _ => Verdict::fail(format!(
                "the 401 challenge's resource_metadata is not an absolute http(s) URL (WWW-Authenticate: {shown})"
            ))
            .with_all(evidence),
        },
        None if version == "2025-03-26" => Verdict::pass(format!(
            "initialize without credentials got 401 with WWW-Authenticate: {shown} (resource_metadata is not part of the negotiated 2025-03-26 revision)"
        ))
        .with_all(evidence),
        None if version == "2025-06-18" => Verdict::fail(format!(
            "the 401 Bearer challenge lacks resource_metadata (WWW-Authenticate: {shown}); revision 2025-06-18 requires servers to name their protected resource metadata in it"
        ))
        .with_all(evidence),
        None => {
            // From 2025-11-25 a server may rely on the well-known URL instead.
            let mut evidence = evidence;
            for url in prm_urls(http.url()) {
                let (outcome, exchange) = fetch_json(http, "protected resource metadata", &url).await;
                evidence.push(exchange);
                if outcome.is_ok() {
                    return Verdict::pass(format!(
                        "initialize without credentials got 401 with WWW-Authenticate: {shown}; the challenge names no resource_metadata, but {url} serves the metadata (allowed from 2025-11-25)"
                    ))
                    .with_all(evidence);
                }
            }
            Verdict::fail(format!(
                "the 401 Bearer challenge lacks resource_metadata (WWW-Authenticate: {shown}) and no well-known protected resource metadata URL serves it either, so clients cannot find the authorization server"
            ))
            .with_all(evidence)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// auth/invalid-token-401

/// A random-looking token derived from the scan seed (replayable).
fn seeded_bytes(probe: &Probe, salt: u64, n: usize) -> Vec<u8> {
    let mut state = probe.options.seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x6d63_7072_6f6f_6621;
    (0..n)
        .map(|_| {
            // splitmix64
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

/// A JWT with a plausible header and claims for this endpoint and a signature of random bytes.
fn forged_jwt(probe: &Probe, endpoint: &url::Url) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": "mcproof-forged" });
    let origin = endpoint.origin().ascii_serialization();
    let claims = json!({
        "iss": origin,
        "sub": "mcproof-forged-subject",
        "aud": endpoint.as_str(),
        "scope": "mcp:read mcp:write",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": hex::encode(seeded_bytes(probe, 2, 16)),
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(seeded_bytes(probe, 3, 256))
    )
}

async fn invalid_token_401(probe: &Probe) -> Verdict {
    let (http, challenge) = match unauthenticated(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let tokens = [
        ("a random garbage token", format!("mcproof-invalid-{}", hex::encode(seeded_bytes(probe, 1, 20)))),
        ("a JWT with a forged signature", forged_jwt(probe, http.url())),
    ];
    let mut evidence = vec![challenge.response.exchange.clone()];
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut passes = Vec::new();
    for (what, token) in tokens {
        let id = probe.next_id();
        let r = http
            .send(
                bare_post(format!("initialize with {what}"), &initialize_body(id, PREFERRED_REVISION))
                    .header("authorization", &format!("Bearer {token}")),
            )
            .await;
        let Some(status) = r.status else {
            return Verdict::error(format!("initialize with {what} got {}", status_text(&r)))
                .with_all(evidence)
                .with(r.exchange);
        };
        let bearer = bearer_challenge(&r);
        let error = bearer.as_ref().and_then(|p| p.iter().find(|(n, _)| n == "error").map(|(_, v)| v.clone()));
        if served_initialize(&r, id) || (200..300).contains(&status) {
            fails.push(format!("{what} was accepted (HTTP {status}, initialize served)"));
        } else if status != 401 {
            fails.push(format!("{what} got HTTP {status} instead of 401"));
        } else if www_authenticate(&r).is_empty() {
            fails.push(format!("{what} got 401 without a WWW-Authenticate header"));
        } else if bearer.is_none() {
            fails.push(format!("{what} got 401 whose challenge has no Bearer scheme"));
        } else if error.as_deref() == Some("invalid_token") {
            passes.push(format!("{what} → 401 error=\"invalid_token\""));
        } else {
            warns.push(format!(
                "{what} got 401 but the Bearer challenge carries {} instead of error=\"invalid_token\"",
                error.map_or("no error code".to_owned(), |e| format!("error=\"{e}\""))
            ));
        }
        evidence.push(r.exchange);
    }
    if !fails.is_empty() {
        Verdict::fail(format!("invalid bearer tokens are not refused as the spec requires: {}", fails.join("; ")))
            .with_all(evidence)
    } else if !warns.is_empty() {
        Verdict::warn(format!(
            "invalid bearer tokens are refused, but RFC 6750 §3.1 asks for the error code: {}",
            warns.join("; ")
        ))
        .with_all(evidence)
    } else {
        Verdict::pass(format!("invalid bearer tokens are refused: {}", passes.join("; "))).with_all(evidence)
    }
}

// ---------------------------------------------------------------------------------------------
// auth/protected-resource-metadata

async fn protected_resource_metadata(probe: &Probe) -> Verdict {
    let (http, _challenge, doc, evidence) = match find_prm(probe).await {
        Ok(found) => found,
        Err(v) => return v,
    };
    let endpoint = http.url().clone();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let root = prm_urls(&endpoint).last().cloned().unwrap_or_default();
    let fetched_root = doc.url == root && prm_urls(&endpoint).len() > 1;
    match doc.body.get("resource") {
        None => problems.push("it has no `resource` (RFC 9728 §2 requires it)".to_owned()),
        Some(Value::String(r)) => match url::Url::parse(r) {
            Ok(resource) if canonical(&resource) == canonical(&endpoint) => {}
            Ok(resource) if fetched_root && less_specific(&resource, &endpoint) => notes.push(format!(
                "only the root document answered and its resource \"{r}\" is less specific than the endpoint {endpoint} (strict RFC 9728 §3.3 clients reject it)"
            )),
            Ok(_) => problems.push(format!(
                "its resource \"{}\" is not this endpoint ({endpoint}); RFC 9728 §3.3 requires clients to discard such metadata",
                truncate(r, 120)
            )),
            Err(_) => problems.push(format!("its resource \"{}\" is not a URL", truncate(r, 120))),
        },
        Some(other) => problems.push(format!("its resource is not a string ({})", truncate(&other.to_string(), 60))),
    }
    match doc.body.get("authorization_servers") {
        None => problems.push("it has no `authorization_servers` (MCP requires at least one)".to_owned()),
        Some(Value::Array(servers)) if servers.is_empty() => {
            problems.push("its `authorization_servers` is empty (MCP requires at least one)".to_owned());
        }
        Some(Value::Array(servers)) => {
            for s in servers {
                match s.as_str().map(url::Url::parse) {
                    Some(Ok(u)) if secure_scheme(&u) => {}
                    Some(Ok(u)) => problems.push(format!(
                        "authorization server {u} is neither https nor loopback http (basic/authorization §Communication Security)"
                    )),
                    _ => problems.push(format!(
                        "authorization_servers holds {} which is not an absolute URL",
                        truncate(&s.to_string(), 80)
                    )),
                }
            }
        }
        Some(other) => {
            problems.push(format!("its `authorization_servers` is not an array ({})", truncate(&other.to_string(), 60)))
        }
    }
    if problems.is_empty() && notes.is_empty() {
        let servers = doc.body["authorization_servers"].as_array().map(Vec::len).unwrap_or_default();
        Verdict::pass(format!(
            "{} serves metadata whose resource is this endpoint and which names {servers} authorization server(s)",
            doc.url
        ))
        .with_all(evidence)
    } else if problems.is_empty() {
        Verdict::warn(format!("{}: {}", doc.url, notes.join("; "))).with_all(evidence)
    } else {
        Verdict::fail(format!("the protected resource metadata at {} is unusable: {}", doc.url, problems.join("; ")))
            .with_all(evidence)
    }
}

// ---------------------------------------------------------------------------------------------
// auth/as-metadata-pkce

/// RFC 8414 §3.1 / OpenID discovery URLs for `issuer`, in the order MCP clients try them.
fn as_metadata_urls(issuer: &url::Url) -> Vec<String> {
    let path = issuer.path().trim_end_matches('/').to_owned();
    let at = |p: String| {
        let mut u = issuer.clone();
        u.set_query(None);
        u.set_fragment(None);
        u.set_path(&p);
        u.to_string()
    };
    if path.is_empty() {
        vec![at("/.well-known/oauth-authorization-server".into()), at("/.well-known/openid-configuration".into())]
    } else {
        vec![
            at(format!("/.well-known/oauth-authorization-server{path}")),
            at(format!("/.well-known/openid-configuration{path}")),
            at(format!("{path}/.well-known/openid-configuration")),
        ]
    }
}

async fn as_metadata_pkce(probe: &Probe) -> Verdict {
    let (http, _challenge, doc, mut evidence) = match find_prm(probe).await {
        Ok(found) => found,
        Err(v) => return v,
    };
    let endpoint = http.url().clone();
    let servers: Vec<String> = doc
        .body
        .get("authorization_servers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if servers.is_empty() {
        return Verdict::skip(format!(
            "not applicable: the protected resource metadata at {} names no authorization server (auth/protected-resource-metadata judges that)",
            doc.url
        ))
        .with_all(evidence);
    }
    let mut fails = Vec::new();
    let mut passes = Vec::new();
    let mut elsewhere = Vec::new();
    for issuer in servers.iter().take(4) {
        let Ok(issuer_url) = url::Url::parse(issuer) else {
            fails.push(format!("authorization server \"{}\" is not a URL", truncate(issuer, 80)));
            continue;
        };
        if !same_host(&issuer_url, &endpoint) || !matches!(issuer_url.scheme(), "http" | "https") {
            elsewhere.push(issuer_url.to_string());
            continue;
        }
        let mut tried = Vec::new();
        let mut found = None;
        for url in as_metadata_urls(&issuer_url) {
            let (outcome, exchange) = fetch_json(http, "authorization server metadata", &url).await;
            evidence.push(exchange);
            match outcome {
                Ok(body) => {
                    found = Some((url, body));
                    break;
                }
                Err(why) => tried.push(why),
            }
        }
        let Some((url, body)) = found else {
            fails.push(format!("no metadata is served for authorization server {issuer} ({})", tried.join("; ")));
            continue;
        };
        match body.get("code_challenge_methods_supported") {
            None => fails.push(format!(
                "{url} has no code_challenge_methods_supported (MCP clients must refuse to proceed without it)"
            )),
            Some(Value::Array(methods)) => {
                let names: Vec<&str> = methods.iter().filter_map(Value::as_str).collect();
                let s256 = names.contains(&"S256");
                let plain = names.iter().any(|m| m.eq_ignore_ascii_case("plain"));
                let shown = format!("{names:?}");
                match (s256, plain) {
                    (true, false) => passes.push(format!("{url} lists code_challenge_methods_supported {shown}")),
                    (false, _) => fails.push(format!("{url} lists code_challenge_methods_supported {shown} without S256")),
                    (true, true) => fails.push(format!(
                        "{url} lists code_challenge_methods_supported {shown}: offering plain lets a client (or an attacker in the middle of the front channel) downgrade PKCE so the challenge is the verifier"
                    )),
                }
            }
            Some(other) => fails.push(format!(
                "{url} has a code_challenge_methods_supported that is not an array ({})",
                truncate(&other.to_string(), 60)
            )),
        }
    }
    if !fails.is_empty() {
        Verdict::fail(format!("authorization server metadata does not require PKCE S256: {}", fails.join("; ")))
            .with_all(evidence)
    } else if passes.is_empty() {
        Verdict::skip(format!(
            "not applicable: authorization server on another host ({}); the harness sends traffic only to the target",
            elsewhere.join(", ")
        ))
        .with_all(evidence)
    } else {
        let mut message = format!("PKCE is S256 only: {}", passes.join("; "));
        if !elsewhere.is_empty() {
            message.push_str(&format!(" (not checked, on another host: {})", elsewhere.join(", ")));
        }
        Verdict::pass(message).with_all(evidence)
    }
}

// ---------------------------------------------------------------------------------------------
// auth/credential-not-in-query

/// The scan's own credential: `--bearer`, `--api-key`, or an Authorization / X-API-Key header.
fn scan_credential(http: &HttpClient) -> Option<String> {
    let t = http.target();
    if let Some(b) = &t.bearer {
        return Some(b.clone());
    }
    if let Some(k) = &t.api_key {
        return Some(k.clone());
    }
    t.headers.iter().find_map(|(n, v)| {
        if n.eq_ignore_ascii_case("authorization") {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
        } else if n.eq_ignore_ascii_case("x-api-key") {
            Some(v.trim().to_owned())
        } else {
            None
        }
    })
}

async fn credential_not_in_query(probe: &Probe) -> Verdict {
    let (http, challenge) = match unauthenticated(probe).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let mut evidence = vec![challenge.response.exchange.clone()];
    let Some(credential) = scan_credential(http) else {
        return Verdict::skip(
            "not applicable: the scan has no credential (--bearer, --api-key, or an Authorization / X-API-Key header) to put in the query string",
        )
        .with_all(evidence);
    };
    let mut served = Vec::new();
    let mut refused = Vec::new();
    let mut other = Vec::new();
    for param in ["access_token", "api_key"] {
        let mut url = http.url().clone();
        url.query_pairs_mut().append_pair(param, &credential);
        let id = probe.next_id();
        let mut r = http
            .send(
                bare_post(
                    format!("initialize with the credential only in ?{param}="),
                    &initialize_body(id, PREFERRED_REVISION),
                )
                .at_path(url.as_str()),
            )
            .await;
        // The URL holds the credential: keep it out of the evidence.
        r.exchange.request.target = redact_text(&r.exchange.request.target).replace(&credential, "[REDACTED]");
        let seen = status_text(&r);
        if served_initialize(&r, id) {
            served.push(format!("?{param}= was honoured ({seen}, initialize served)"));
        } else if matches!(r.status, Some(400 | 401 | 403)) {
            refused.push(format!("?{param}= → {seen}"));
        } else {
            other.push(format!("?{param}= → {seen}"));
        }
        evidence.push(r.exchange);
    }
    if !served.is_empty() {
        Verdict::fail(format!(
            "the server accepts credentials in the URL query string, where logs, history and Referer headers keep them: {}",
            served.join("; ")
        ))
        .with_all(evidence)
    } else if other.is_empty() {
        Verdict::pass(format!("credentials in the query string are refused: {}", refused.join("; "))).with_all(evidence)
    } else {
        Verdict::pass(format!(
            "credentials in the query string are not honoured: {}",
            refused.into_iter().chain(other).collect::<Vec<_>>().join("; ")
        ))
        .with_all(evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).expect("valid url")
    }

    #[test]
    fn challenges_are_parsed() {
        let c = parse_challenges(
            r#"Bearer resource_metadata="http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp", scope="mcp:read""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "Bearer");
        assert_eq!(
            c[0].1[0],
            ("resource_metadata".into(), "http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp".into())
        );
        assert_eq!(c[0].1[1], ("scope".into(), "mcp:read".into()));
        let c = parse_challenges(r#"Basic realm="x", Bearer error="invalid_token", error_description="a \"b\"""#);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[1].0, "Bearer");
        assert_eq!(c[1].1[0], ("error".into(), "invalid_token".into()));
        assert_eq!(c[1].1[1], ("error_description".into(), "a \"b\"".into()));
        let c = parse_challenges("Negotiate abc==, Bearer");
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].1[0].1, "abc==");
        assert_eq!(c[1].0, "Bearer");
        assert!(parse_challenges("").is_empty());
        let c = parse_challenges("Bearer realm=example");
        assert_eq!(c[0].1[0], ("realm".into(), "example".into()));
    }

    #[test]
    fn metadata_urls_follow_rfc_9728_and_8414() {
        assert_eq!(
            prm_urls(&url("https://h.example/mcp")),
            vec![
                "https://h.example/.well-known/oauth-protected-resource/mcp".to_owned(),
                "https://h.example/.well-known/oauth-protected-resource".to_owned()
            ]
        );
        assert_eq!(
            prm_urls(&url("https://h.example/")),
            vec!["https://h.example/.well-known/oauth-protected-resource"]
        );
        assert_eq!(
            as_metadata_urls(&url("https://as.example/t1")),
            vec![
                "https://as.example/.well-known/oauth-authorization-server/t1",
                "https://as.example/.well-known/openid-configuration/t1",
                "https://as.example/t1/.well-known/openid-configuration"
            ]
        );
        assert_eq!(as_metadata_urls(&url("http://127.0.0.1:9/")).len(), 2);
    }

    #[test]
    fn resources_compare_as_identifiers() {
        assert_eq!(canonical(&url("HTTPS://H.example:443/mcp/")), canonical(&url("https://h.example/mcp")));
        assert_ne!(canonical(&url("https://h.example/mcp")), canonical(&url("https://other.example/mcp")));
        assert!(less_specific(&url("https://h.example"), &url("https://h.example/mcp")));
        assert!(less_specific(&url("https://h.example/a"), &url("https://h.example/a/mcp")));
        assert!(!less_specific(&url("https://h.example/a"), &url("https://h.example/ab")));
        assert!(!less_specific(&url("https://o.example"), &url("https://h.example/mcp")));
        assert!(secure_scheme(&url("http://127.0.0.1:8080/")));
        assert!(!secure_scheme(&url("http://as.example/")));
    }
}
