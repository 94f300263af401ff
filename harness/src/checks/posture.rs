//! Checks of the `posture` area: the HTTP hygiene that web scanners grade (AgentGrade's checks
//! and the like): TLS, authentication required, security headers, CORS, exposed admin pages and
//! files, version disclosure, open redirects and error leaks.
//!
//! Probes of paths other than the endpoint (`/admin`, `/.env`, …) are sent without the scan's
//! credentials: "exposed" means reachable by anyone. Every content rule looks for the thing
//! itself (a login form, `KEY=VALUE` lines, `[core]`) and ignores pages identical to the
//! answer for a random nonexistent path, so catch-all pages do not count.

use std::sync::LazyLock;

use http::Method;
use regex::Regex;
use serde_json::{Value, json};

use crate::check::{ALL_REVISIONS, Check, CheckInfo, Kind, Level, Transport, Verdict};
use crate::client::http::{HttpClient, HttpRequest, HttpResponse, PREFERRED_REVISION, initialize_body};
use crate::evidence::{Exchange, redact_text};
use crate::probe::{Probe, truncate};

const HTTP: &[Transport] = &[Transport::Http];

/// The foreign origin used for CORS and redirect probes (a reserved name: RFC 6761 `.example`).
const EVIL_ORIGIN: &str = "https://evil.example";
const EVIL_URL: &str = "https://evil.example/";

/// The checks of this area.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            info: CheckInfo {
                id: "posture/https",
                title: "The endpoint is served over HTTPS",
                level: Level::Must,
                weight: 12,
                source: "seed practice \"Use HTTPS for all MCP endpoints\"; basic/authorization §Communication Security (OAuth 2.1 §1.5); AgentGrade \"HTTPS enabled\" (20 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "Reads the scheme of the endpoint that answered MCP. Plain HTTP to a non-loopback host fails; plain HTTP on a loopback address (127.0.0.0/8, ::1, localhost) passes with a note, since that traffic never leaves the machine.",
                remediation: "Serve the endpoint over TLS (terminate TLS in the server or a reverse proxy) and redirect or refuse plain HTTP.",
            },
            run: |p| Box::pin(https(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/auth-required",
                title: "Requests without credentials are refused with 401 or 403",
                level: Level::Should,
                weight: 8,
                source: "basic/transports §Security Warning (\"SHOULD implement proper authentication for all connections\"); seed practice \"Implement authentication\"; spec-checks AU-01, SB-06; AgentGrade \"Authentication required\" (15 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "POSTs initialize with no Authorization, API key or configured header. PASS on 401/403. FAIL when initialize is served and a follow-up tools/list in that session is not refused either. WARN when only initialize is served, or the refusal uses another status.",
                remediation: "Require a credential (OAuth bearer token or API key) on every request, initialize included, and answer requests without one with 401 and a WWW-Authenticate challenge.",
            },
            run: |p| Box::pin(auth_required(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/no-admin-exposed",
                title: "No admin panel or login page at well-known paths",
                level: Level::BestPractice,
                weight: 4,
                source: "seed practice \"Avoid exposing admin interfaces\"; AgentGrade \"No admin panel exposed\" (10 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "GETs /admin, /dashboard, /_internal, /console and /actuator without credentials. FAIL when one answers 2xx with an HTML page holding a password field or titled as an admin, dashboard, console or login page, or with a Spring actuator index; pages identical to a random path's answer are ignored.",
                remediation: "Serve admin and management interfaces on a separate internal port or host behind network access controls, never beside the public MCP endpoint.",
            },
            run: |p| Box::pin(no_admin_exposed(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/no-credentials-exposed",
                title: "No credentials in initialize, tools/list or error responses",
                level: Level::BestPractice,
                weight: 5,
                source: "seed practice \"Credential blast radius\" and \"Handle errors without leaking\"; server/tools §Security Considerations; spec-checks TO-06; AgentGrade \"No credentials exposed in response\" (10 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "Searches the bodies and headers of initialize, tools/list and a 404 for credentials: AWS keys, private key blocks, GitHub/Slack/Stripe/Google/OpenAI-style keys, JWTs, bearer tokens, password= / api_key= assignments with real-looking values, and the scan's own credential echoed back. Placeholders and documented example keys are ignored.",
                remediation: "Never put credentials in server instructions, tool descriptions, schemas or error pages; keep them in a secret store and rotate any that were exposed.",
            },
            run: |p| Box::pin(no_credentials_exposed(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/cors-no-wildcard",
                title: "CORS neither allows every origin nor reflects a foreign one",
                level: Level::BestPractice,
                weight: 5,
                source: "seed CORS configuration practices; basic/transports §Security Warning (Origin validation, spec-checks HT-01); AgentGrade \"No wildcard CORS\" (8 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "Sends a CORS preflight and a POST initialize with Origin: https://evil.example, and a preflight with Origin: null. FAIL when a response carries Access-Control-Allow-Origin: * or echoes the foreign (or null) origin; credentials allowed as well make it worse.",
                remediation: "Answer CORS only for an allow-list of exact origins; never send Access-Control-Allow-Origin: * or echo the request's Origin, and refuse foreign origins with 403.",
            },
            run: |p| Box::pin(cors_no_wildcard(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/csp",
                title: "Responses carry a Content-Security-Policy",
                level: Level::BestPractice,
                weight: 2,
                source: "seed \"HTTP security headers\"; OWASP Secure Headers; AgentGrade \"Content-Security-Policy header\" (3 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "Reads Content-Security-Policy on the initialize response and on a 404. FAIL when it is missing or only present as Content-Security-Policy-Report-Only.",
                remediation: "Send `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` on every response of an API-only server (loosen only for pages that need it).",
            },
            run: |p| Box::pin(csp(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/hsts",
                title: "HTTPS responses carry Strict-Transport-Security",
                level: Level::BestPractice,
                weight: 3,
                source: "RFC 6797; seed \"HTTP security headers\"; AgentGrade \"Strict-Transport-Security header\" (3 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "Over https, reads Strict-Transport-Security on the initialize response and on a 404. FAIL when it is missing, has no max-age or max-age=0. SKIP on plain HTTP (browsers ignore it there).",
                remediation: "Send `Strict-Transport-Security: max-age=63072000; includeSubDomains` on every HTTPS response.",
            },
            run: |p| Box::pin(hsts(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/frame-options",
                title: "Responses cannot be framed",
                level: Level::BestPractice,
                weight: 3,
                source: "seed \"HTTP security headers\"; basic/security_best_practices §Consent UI (spec-checks SB-02); AgentGrade \"X-Frame-Options header\" (3 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "Reads X-Frame-Options and CSP frame-ancestors on the initialize response and on a 404. FAIL when neither X-Frame-Options DENY/SAMEORIGIN nor a frame-ancestors directive other than * is present.",
                remediation: "Send `X-Frame-Options: DENY` and `Content-Security-Policy: frame-ancestors 'none'` on every response.",
            },
            run: |p| Box::pin(frame_options(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/nosniff",
                title: "Responses carry X-Content-Type-Options: nosniff",
                level: Level::BestPractice,
                weight: 2,
                source: "seed \"HTTP security headers\"; Fetch standard §X-Content-Type-Options; AgentGrade \"X-Content-Type-Options header\" (3 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "Reads X-Content-Type-Options on the initialize response and on a 404. FAIL when it is missing or not `nosniff`.",
                remediation: "Send `X-Content-Type-Options: nosniff` on every response.",
            },
            run: |p| Box::pin(nosniff(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/no-version-disclosure",
                title: "No server or framework version in headers or error pages",
                level: Level::BestPractice,
                weight: 3,
                source: "seed practice \"Handle errors without leaking\" (no framework names); OWASP WSTG-INFO-02; AgentGrade \"No server version leak\" (5 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Passive,
                description: "Reads Server, X-Powered-By, X-AspNet-Version and X-AspNetMvc-Version on the initialize response and on a 404, and the 404 body's server signature. FAIL when one names a version number (e.g. `nginx/1.25.3`, `PHP/8.1`). The MCP serverInfo.version is part of the protocol and not judged.",
                remediation: "Remove Server and X-Powered-By headers (or reduce them to a bare product name) and turn off server signatures on error pages.",
            },
            run: |p| Box::pin(no_version_disclosure(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/no-open-redirect",
                title: "The endpoint does not redirect to a host named in a parameter",
                level: Level::BestPractice,
                weight: 4,
                source: "basic/authorization §Open Redirection (spec-checks AS-04); OWASP Unvalidated Redirects; AgentGrade \"No open redirect\" (5 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "GETs the endpoint with ?redirect=, ?redirect_uri=, ?next=, ?url=, ?return_to= and ?continue= set to https://evil.example/. FAIL when an answer sends the client there (3xx Location, Refresh header or meta refresh). Redirects to other hosts are not judged.",
                remediation: "Redirect only to relative paths or an allow-list of exact URLs; ignore or reject redirect parameters that name another host.",
            },
            run: |p| Box::pin(no_open_redirect(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/no-sensitive-files",
                title: "No dot-files, configuration, source maps or directory listings served",
                level: Level::BestPractice,
                weight: 5,
                source: "seed practice \"Never commit .env files\" / regular scans; OWASP WSTG-CONF-04; AgentGrade \"No directory listing / sensitive files\" (5 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "GETs /.env, /.git/config, /.git/HEAD, /.aws/credentials, /config.json, /.npmrc, /.vscode/mcp.json, /server.js.map, /index.js.map and / without credentials. FAIL when one answers 2xx with content that is that file (KEY=VALUE lines, `[core]`, `ref: refs/…`, aws_access_key_id, a JSON config with secret-looking keys, a source map, `Index of /`); catch-all pages are ignored.",
                remediation: "Serve only an explicit set of routes; keep dot-files, configuration and source maps out of any served directory and turn off directory listings.",
            },
            run: |p| Box::pin(no_sensitive_files(p)),
        },
        Check {
            info: CheckInfo {
                id: "posture/no-stack-trace-on-404",
                title: "Errors reveal no stack traces, source paths or debug pages",
                level: Level::BestPractice,
                weight: 4,
                source: "seed practice \"Handle errors without leaking stack traces\"; spec-checks JR-01, TO-06; AgentGrade \"No error information leak\" (5 pt)",
                revisions: ALL_REVISIONS,
                transports: HTTP,
                kind: Kind::Active,
                description: "GETs a random nonexistent path and one with invalid bytes, and POSTs truncated JSON to the endpoint. FAIL when a body holds a stack trace (Python, Java, .NET, Node, Go, Rust, PHP, Ruby), a source file path with a line number, or a framework debug page (Werkzeug, Django DEBUG, Spring Whitelabel, Laravel).",
                remediation: "Return generic error bodies (`{\"error\":\"Not Found\"}`); log details server-side only and turn off debug modes in production.",
            },
            run: |p| Box::pin(no_stack_trace_on_404(p)),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// A GET of `path` with no credentials and no MCP headers, as a browser or crawler would send it.
fn anonymous_get(label: impl Into<String>, path: &str) -> HttpRequest {
    HttpRequest::new(label, Method::GET)
        .raw()
        .at_path(path)
        .header("accept", "text/html, application/json;q=0.9, */*;q=0.8")
}

/// A path that exists on no sane server, derived from the scan seed (replayable).
fn nonexistent_path(probe: &Probe) -> String {
    let n = probe.options.seed.rotate_left(17) ^ probe.next_id().wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("/mcproof-nonexistent-{n:016x}")
}

fn status_text(r: &HttpResponse) -> String {
    match (r.status, &r.error) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => format!("no response ({})", truncate(e, 80)),
        (None, None) => "no response".into(),
    }
}

/// `label → HTTP status`, for messages.
fn described(r: &HttpResponse) -> String {
    format!("{} → {}", r.exchange.label, status_text(r))
}

fn is_2xx(r: &HttpResponse) -> bool {
    r.status_in(200..=299)
}

/// The answer is the server's catch-all page (same body as for a random path).
fn same_as_control(r: &HttpResponse, control: &HttpResponse) -> bool {
    is_2xx(control) && !r.body.is_empty() && r.body == control.body
}

fn header_values<'a>(r: &'a HttpResponse, name: &str) -> Vec<&'a str> {
    r.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

/// An initialize response (the endpoint's ordinary answer, credentials included) and the answer
/// for a nonexistent path (the server's error page): the responses the header rules judge.
async fn sample(probe: &Probe) -> Result<Vec<HttpResponse>, Verdict> {
    let http = probe.http()?;
    let (session, init) = http.initialize(PREFERRED_REVISION).await;
    if init.status.is_none() {
        return Err(Verdict::error(format!("initialize got no response: {}", status_text(&init))).with(init.exchange));
    }
    if let Ok(s) = &session {
        let _ = http.delete(s).await;
    }
    let missing = http.send(anonymous_get("GET a nonexistent path", &nonexistent_path(probe))).await;
    let mut out = vec![init];
    if missing.status.is_some() {
        out.push(missing);
    }
    Ok(out)
}

/// Applies `judge` to every sampled response: PASS when all are fine, FAIL naming the others.
async fn every_response(probe: &Probe, what: &str, judge: fn(&HttpResponse) -> Result<String, String>) -> Verdict {
    let responses = match sample(probe).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for r in &responses {
        match judge(r) {
            Ok(seen) => good.push(seen),
            Err(why) => bad.push(format!("{}: {why}", described(r))),
        }
    }
    good.dedup();
    let evidence = responses.into_iter().map(|r| r.exchange);
    if bad.is_empty() {
        Verdict::pass(format!("every sampled response carries {what} ({})", good.join("; "))).with_all(evidence)
    } else {
        Verdict::fail(format!("{what} is missing or ineffective: {}", bad.join("; "))).with_all(evidence)
    }
}

// ---------------------------------------------------------------------------------------------
// posture/https

async fn https(probe: &Probe) -> Verdict {
    let http = match probe.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let verdict = judge_scheme(http.url(), http.target().insecure_tls);
    match probe.inventory.evidence.first() {
        Some(init) => verdict.with(init.clone()),
        None => verdict,
    }
}

/// Whether a URL's host is this machine (loopback or unspecified address, `localhost`,
/// `*.localhost` per RFC 6761).
fn is_local_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.is_unspecified() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

fn judge_scheme(url: &url::Url, insecure_tls: bool) -> Verdict {
    let host = url.host_str().unwrap_or("");
    match url.scheme() {
        "https" if insecure_tls => {
            Verdict::pass("served over HTTPS (the certificate was not verified: the scan ran with insecure TLS)")
        }
        "https" => Verdict::pass("served over HTTPS with a certificate the harness verified"),
        "http" if is_local_host(url) => Verdict::pass(format!(
            "plain HTTP on the loopback host {host}: acceptable while the server is reachable from this machine only; use TLS once it is reachable from elsewhere"
        )),
        scheme => Verdict::fail(format!(
            "MCP is served over {scheme}:// (no TLS) to the non-loopback host {host}: credentials, tool arguments and results cross the network unencrypted"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// posture/auth-required

/// A POST with only the headers MCP needs: no credential of any kind.
fn anonymous_post(label: &str, body: &Value, session: Option<&str>, version: Option<&str>) -> HttpRequest {
    let mut req = HttpRequest::post(label, body)
        .raw()
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    if let Some(v) = version {
        req = req.header("mcp-protocol-version", v);
    }
    req
}

async fn auth_required(probe: &Probe) -> Verdict {
    let http = match probe.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let id = probe.next_id();
    let init = http
        .send(anonymous_post("initialize without credentials", &initialize_body(id, PREFERRED_REVISION), None, None))
        .await;
    let Some(status) = init.status else {
        return Verdict::error(format!("initialize without credentials got {}", status_text(&init)))
            .with(init.exchange);
    };
    if status == 401 || status == 403 {
        let challenge = init.header("www-authenticate").map(|c| truncate(c, 160));
        let note = match (challenge, status) {
            (Some(c), _) => format!(" with WWW-Authenticate: {c}"),
            (None, 401) => " (but without a WWW-Authenticate challenge)".into(),
            (None, _) => String::new(),
        };
        return Verdict::pass(format!("initialize without credentials was refused with HTTP {status}{note}"))
            .with(init.exchange);
    }
    let Some(result) = init.response_to(&json!(id)).and_then(|m| m.get("result")).cloned() else {
        return Verdict::warn(format!(
            "initialize without credentials was answered with HTTP {status} and no InitializeResult rather than 401/403, so it is unclear whether the server requires authentication"
        ))
        .with(init.exchange);
    };
    // initialize was served: does the session it opened serve real requests too?
    let session = init.header("mcp-session-id").map(str::to_owned);
    let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or(PREFERRED_REVISION).to_owned();
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let _ = http
        .send(anonymous_post(
            "notifications/initialized without credentials",
            &note,
            session.as_deref(),
            Some(&version),
        ))
        .await;
    let list_id = probe.next_id();
    let body = json!({ "jsonrpc": "2.0", "id": list_id, "method": "tools/list", "params": {} });
    let list =
        http.send(anonymous_post("tools/list without credentials", &body, session.as_deref(), Some(&version))).await;
    if let Some(s) = &session {
        let delete = HttpRequest::new("DELETE session", Method::DELETE)
            .raw()
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", &version);
        let _ = http.send(delete).await;
    }
    let evidence = [init.exchange.clone(), list.exchange.clone()];
    if list.status.is_some_and(|s| s == 401 || s == 403) {
        return Verdict::warn(format!(
            "initialize is served without credentials (HTTP {status}) although tools/list is refused ({}); authentication should cover every request, initialize included",
            status_text(&list)
        ))
        .with_all(evidence);
    }
    let listed =
        list.response_to(&json!(list_id)).and_then(|m| m.get("result")?.get("tools")?.as_array().map(Vec::len));
    let what = match listed {
        Some(n) => format!("tools/list listed {n} tool(s)"),
        None => format!("tools/list was not refused as unauthenticated ({})", status_text(&list)),
    };
    Verdict::fail(format!(
        "a client with no credentials was served: initialize succeeded (HTTP {status}) and {what}; the server requires no authentication"
    ))
    .with_all(evidence)
}

// ---------------------------------------------------------------------------------------------
// posture/no-admin-exposed

const ADMIN_PATHS: &[&str] = &["/admin", "/dashboard", "/_internal", "/console", "/actuator"];

static PASSWORD_INPUT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?is)<input\b[^>]*\btype\s*=\s*["']?password"#).expect("valid regex"));
static TITLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<(title|h1)\b[^>]*>([^<]{1,200})</(?:title|h1)>").expect("valid regex"));
static ADMIN_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(admin|administration|administrator|dashboard|console|log ?in|sign ?in|management|control panel|phpmyadmin|grafana|kibana|jenkins|actuator)\b")
        .expect("valid regex")
});

fn looks_like_html(r: &HttpResponse, body: &str) -> bool {
    let start = body.trim_start().get(..15).unwrap_or(body.trim_start()).to_ascii_lowercase();
    r.content_type().is_some_and(|ct| ct == "text/html" || ct == "application/xhtml+xml")
        || start.starts_with("<!doctype html")
        || start.starts_with("<html")
}

/// What makes `r` an exposed admin page, if it is one.
fn admin_page(r: &HttpResponse, control: &HttpResponse) -> Option<String> {
    if !is_2xx(r) || same_as_control(r, control) {
        return None;
    }
    let body = r.body_text();
    if looks_like_html(r, &body) {
        if PASSWORD_INPUT.is_match(&body) {
            return Some("an HTML page with a password field (a login form)".into());
        }
        for c in TITLE.captures_iter(&body) {
            let text = c[2].trim();
            if ADMIN_WORDS.is_match(text) {
                return Some(format!(
                    "an HTML page whose <{}> is {:?}",
                    &c[1].to_ascii_lowercase(),
                    truncate(text, 60)
                ));
            }
        }
        return None;
    }
    let json: Value = serde_json::from_slice(&r.body).ok()?;
    json.get("_links").filter(|l| l.is_object()).map(|_| "a Spring Boot actuator index (_links)".into())
}

async fn no_admin_exposed(probe: &Probe) -> Verdict {
    let http = match probe.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let control = http.send(anonymous_get("GET a nonexistent path (control)", &nonexistent_path(probe))).await;
    let mut found = Vec::new();
    let mut seen = Vec::new();
    let mut hits = Vec::new();
    let mut rest = vec![control.exchange.clone()];
    for path in ADMIN_PATHS {
        let r = http.send(anonymous_get(format!("GET {path} without credentials"), path)).await;
        match admin_page(&r, &control) {
            Some(what) => {
                found.push(format!("{path} answers {} with {what}", status_text(&r)));
                hits.push(r.exchange);
            }
            None => {
                seen.push(format!("{path} → {}", status_text(&r)));
                rest.push(r.exchange);
            }
        }
    }
    if found.is_empty() {
        Verdict::pass(format!("no admin or login page without credentials ({})", seen.join(", "))).with_all(rest)
    } else {
        Verdict::fail(format!("exposed without credentials: {}", found.join("; "))).with_all(hits).with_all(rest)
    }
}

// ---------------------------------------------------------------------------------------------
// posture/no-credentials-exposed

/// Kinds of credential and how to recognise them. Group 1, when present, is the secret itself.
static SECRET_RULES: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        ("an AWS access key id", r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b"),
        ("an AWS secret access key", r#"(?i)aws_secret_access_key"?\s*[=:]\s*"?([A-Za-z0-9/+=]{40})"#),
        (
            "a private key block",
            r"(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:\\r|\\n|\r|\n)+[A-Za-z0-9+/=]{40,})",
        ),
        ("a GitHub token", r"\b(gh[pousr]_[A-Za-z0-9]{36,})\b"),
        ("a Slack token", r"\b(xox[abprs]-[A-Za-z0-9-]{10,})"),
        ("a Stripe secret key", r"\b((?:sk|rk)_live_[0-9A-Za-z]{20,})"),
        ("a Google API key", r"\b(AIza[0-9A-Za-z_-]{35})"),
        ("an OpenAI/Anthropic-style secret key", r"\b(sk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,})"),
        ("a JWT", r"\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"),
        ("a bearer token", r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{20,}=*)"),
        (
            "a credential assignment",
            r"(?i)\b(?:\w*_)?(?:password|passwd|client_secret|api[_-]?key|apikey|access_token|refresh_token|secret_key|private_key)\s*=\s*([^\s&;,<>'\x22]{6,})",
        ),
        (
            "a credential field",
            r#"(?i)"(?:\w*_)?(?:password|passwd|client_secret|api[_-]?key|apikey|access_token|refresh_token|secret_key|private_key)"\s*:\s*"([^"]{6,})""#,
        ),
    ]
    .into_iter()
    .map(|(what, re)| (what, Regex::new(re).expect("valid regex")))
    .collect()
});

/// Values that are documentation or placeholders, not credentials.
fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let first = value.chars().next().unwrap_or('x');
    value.chars().all(|c| c == first)
        // the jwt.io sample token's signature
        || value.contains("SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
        || ["example", "xxxx", "****", "your", "placeholder", "redacted", "changeme", "<", "{", "$", "%s", "..."]
            .iter()
            .any(|p| lower.contains(p))
}

/// A token that looks random enough to be a real secret (letters and digits mixed).
fn looks_random(value: &str) -> bool {
    value.chars().any(|c| c.is_ascii_digit()) && value.chars().any(|c| c.is_ascii_alphabetic())
}

/// Every credential found in `text`: (kind, the secret).
pub(crate) fn find_secrets(text: &str) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (what, re) in SECRET_RULES.iter() {
        for c in re.captures_iter(text) {
            let secret = c.get(1).map_or_else(|| c[0].to_owned(), |m| m.as_str().to_owned());
            let strict = matches!(*what, "a bearer token" | "an OpenAI/Anthropic-style secret key");
            if is_placeholder(&secret) || (strict && !looks_random(&secret)) {
                continue;
            }
            if *what == "an OpenAI/Anthropic-style secret key"
                && !(secret.chars().any(|c| c.is_ascii_uppercase()) && secret.chars().any(|c| c.is_ascii_lowercase()))
            {
                continue;
            }
            if !out.iter().any(|(_, s)| s == &secret) {
                out.push((what, secret));
            }
        }
    }
    out
}

/// Headers whose values are legitimately credentials or challenges.
const CREDENTIAL_HEADERS: &[&str] = &["set-cookie", "www-authenticate", "mcp-session-id"];

/// Body plus the header lines worth searching.
fn searchable(r: &HttpResponse) -> String {
    let mut text = r.body_text();
    for (name, value) in &r.headers {
        if !CREDENTIAL_HEADERS.contains(&name.as_str()) {
            text.push('\n');
            text.push_str(name.as_str());
            text.push_str(": ");
            text.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
    }
    text
}

/// Removes `secrets` from the stored evidence (the generic redaction does not know every kind).
fn scrub(mut exchange: Exchange, secrets: &[String]) -> Exchange {
    if let Some(resp) = &mut exchange.response {
        for s in secrets {
            resp.body = resp.body.replace(s.as_str(), "[REDACTED]");
            for (_, v) in &mut resp.headers {
                *v = v.replace(s.as_str(), "[REDACTED]");
            }
        }
    }
    exchange
}

fn masked(secret: &str) -> String {
    let shown = if secret.chars().count() >= 16 { 4 } else { 0 };
    let head: String = secret.chars().take(shown).collect();
    format!("{head}… ({} chars)", secret.chars().count())
}

async fn no_credentials_exposed(probe: &Probe) -> Verdict {
    let http = match probe.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let (session, init) = http.initialize(PREFERRED_REVISION).await;
    if init.status.is_none() {
        return Verdict::error(format!("initialize got {}", status_text(&init))).with(init.exchange);
    }
    let mut responses = vec![init];
    if let Ok(s) = &session {
        responses.push(http.request(s, probe.next_id(), "tools/list", json!({})).await);
        let _ = http.delete(s).await;
    }
    responses.push(http.send(anonymous_get("GET a nonexistent path", &nonexistent_path(probe))).await);
    let own: Vec<(&'static str, String)> = [
        ("the bearer token the scan sent", http.target().bearer.clone()),
        ("the API key the scan sent", http.target().api_key.clone()),
    ]
    .into_iter()
    .filter_map(|(what, v)| v.filter(|v| v.len() >= 8).map(|v| (what, v)))
    .collect();
    let mut findings = Vec::new();
    let mut hits = Vec::new();
    let mut rest = Vec::new();
    for r in responses {
        if r.status.is_none() {
            continue;
        }
        let text = searchable(&r);
        let mut found = find_secrets(&text);
        found.extend(own.iter().filter(|(_, v)| text.contains(v.as_str())).map(|(w, v)| (*w, v.clone())));
        let label = described(&r);
        let secrets: Vec<String> = found.iter().map(|(_, s)| s.clone()).collect();
        let exchange = scrub(r.exchange, &secrets);
        if found.is_empty() {
            rest.push(exchange);
        } else {
            let kinds: Vec<String> = found.iter().map(|(w, s)| format!("{w} ({})", masked(s))).collect();
            findings.push(format!("{label}: {}", kinds.join(", ")));
            hits.push(exchange);
        }
    }
    if findings.is_empty() {
        Verdict::pass("no credentials in the initialize, tools/list and 404 responses").with_all(rest)
    } else {
        Verdict::fail(format!("credentials exposed: {}", findings.join("; "))).with_all(hits).with_all(rest)
    }
}

// ---------------------------------------------------------------------------------------------
// posture/cors-no-wildcard

fn preflight(label: &str, path: &str, origin: &str) -> HttpRequest {
    HttpRequest::new(label, Method::OPTIONS)
        .raw()
        .at_path(path)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, mcp-session-id, mcp-protocol-version, authorization")
}

/// What is wrong with the CORS answer to `origin`, if anything.
fn cors_problem(r: &HttpResponse, origin: &str) -> Option<String> {
    let credentials =
        header_values(r, "access-control-allow-credentials").iter().any(|v| v.trim().eq_ignore_ascii_case("true"));
    let with_credentials = if credentials { " together with Access-Control-Allow-Credentials: true" } else { "" };
    for allowed in header_values(r, "access-control-allow-origin") {
        let allowed = allowed.trim();
        if allowed == "*" {
            return Some(format!("Access-Control-Allow-Origin: *{with_credentials}"));
        }
        if allowed.trim_end_matches('/').eq_ignore_ascii_case(origin) {
            return Some(format!(
                "Access-Control-Allow-Origin echoes the foreign origin {allowed:?}{with_credentials}"
            ));
        }
    }
    None
}

async fn cors_no_wildcard(probe: &Probe) -> Verdict {
    let http = match probe.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let path = endpoint_path(http);
    let mut responses = Vec::new();
    responses.push((
        EVIL_ORIGIN,
        http.send(preflight(&format!("OPTIONS preflight with Origin: {EVIL_ORIGIN}"), &path, EVIL_ORIGIN)).await,
    ));
    let body = initialize_body(probe.next_id(), PREFERRED_REVISION);
    let post = http
        .send(
            HttpRequest::post(format!("POST initialize with Origin: {EVIL_ORIGIN}"), &body)
                .header("origin", EVIL_ORIGIN),
        )
        .await;
    if let Some(s) = post.header("mcp-session-id") {
        let delete = HttpRequest::new("DELETE session", Method::DELETE)
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", PREFERRED_REVISION);
        let _ = http.send(delete).await;
    }
    responses.push((EVIL_ORIGIN, post));
    responses.push(("null", http.send(preflight("OPTIONS preflight with Origin: null", &path, "null")).await));
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (origin, r) in &responses {
        if r.status.is_none() {
            continue;
        }
        match cors_problem(r, origin) {
            Some(p) => problems.push(format!("{}: {p}", described(r))),
            None => seen.push(described(r)),
        }
    }
    let evidence = responses.into_iter().map(|(_, r)| r.exchange);
    if seen.is_empty() && problems.is_empty() {
        return Verdict::error("no CORS probe got a response").with_all(evidence);
    }
    if problems.is_empty() {
        Verdict::pass(format!("foreign origins get no Access-Control-Allow-Origin ({})", seen.join(", ")))
            .with_all(evidence)
    } else {
        Verdict::fail(format!("CORS admits a foreign origin: {}", problems.join("; "))).with_all(evidence)
    }
}

/// The endpoint's path and query, for requests that name it explicitly.
fn endpoint_path(http: &HttpClient) -> String {
    http.url()[url::Position::BeforePath..].to_owned()
}

// ---------------------------------------------------------------------------------------------
// Header rules: posture/csp, posture/hsts, posture/frame-options, posture/nosniff

async fn csp(probe: &Probe) -> Verdict {
    every_response(probe, "Content-Security-Policy", |r| {
        let policies = header_values(r, "content-security-policy");
        match policies.iter().find(|p| !p.trim().is_empty()) {
            Some(p) => Ok(format!("Content-Security-Policy: {}", truncate(p.trim(), 100))),
            None if !header_values(r, "content-security-policy-report-only").is_empty() => {
                Err("only Content-Security-Policy-Report-Only, which enforces nothing".into())
            }
            None => Err("no Content-Security-Policy header".into()),
        }
    })
    .await
}

async fn hsts(probe: &Probe) -> Verdict {
    match probe.http() {
        Ok(h) if h.url().scheme() == "https" => {}
        Ok(_) => {
            return Verdict::skip(
                "not applicable: the endpoint is plain HTTP, where browsers ignore Strict-Transport-Security",
            );
        }
        Err(v) => return v,
    }
    every_response(probe, "Strict-Transport-Security", |r| {
        let Some(value) = header_values(r, "strict-transport-security").first().map(|v| v.trim().to_owned()) else {
            return Err("no Strict-Transport-Security header".into());
        };
        let max_age = value.split(';').find_map(|d| {
            let (k, v) = d.split_once('=')?;
            k.trim().eq_ignore_ascii_case("max-age").then(|| v.trim().trim_matches('"').parse::<u64>().ok())?
        });
        match max_age {
            Some(0) => Err(format!("Strict-Transport-Security: {value} (max-age=0 switches HSTS off)")),
            Some(_) => Ok(format!("Strict-Transport-Security: {value}")),
            None => Err(format!("Strict-Transport-Security: {value} has no valid max-age")),
        }
    })
    .await
}

/// The `frame-ancestors` directive of the enforced CSP, if any.
fn frame_ancestors(r: &HttpResponse) -> Option<String> {
    header_values(r, "content-security-policy").iter().flat_map(|p| p.split(';')).find_map(|d| {
        let d = d.trim();
        let (name, value) = d.split_once(char::is_whitespace).unwrap_or((d, ""));
        name.eq_ignore_ascii_case("frame-ancestors").then(|| value.trim().to_owned())
    })
}

async fn frame_options(probe: &Probe) -> Verdict {
    every_response(probe, "framing protection", |r| {
        let xfo = header_values(r, "x-frame-options").first().map(|v| v.trim().to_owned());
        if let Some(v) = &xfo
            && (v.eq_ignore_ascii_case("deny") || v.eq_ignore_ascii_case("sameorigin"))
        {
            return Ok(format!("X-Frame-Options: {v}"));
        }
        if let Some(fa) = frame_ancestors(r)
            && !fa.split_whitespace().any(|s| s == "*")
            && !fa.is_empty()
        {
            return Ok(format!("CSP frame-ancestors {fa}"));
        }
        Err(match xfo {
            Some(v) => {
                format!("X-Frame-Options: {v} is not DENY or SAMEORIGIN, and no restrictive CSP frame-ancestors")
            }
            None => "neither X-Frame-Options nor a CSP frame-ancestors directive".into(),
        })
    })
    .await
}

async fn nosniff(probe: &Probe) -> Verdict {
    every_response(probe, "X-Content-Type-Options: nosniff", |r| {
        match header_values(r, "x-content-type-options").first().map(|v| v.trim()) {
            Some(v) if v.eq_ignore_ascii_case("nosniff") => Ok("X-Content-Type-Options: nosniff".into()),
            Some(v) => Err(format!("X-Content-Type-Options is {v:?}, not nosniff")),
            None => Err("no X-Content-Type-Options header".into()),
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// posture/no-version-disclosure

static VERSION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d+\.\d+|/v?\d").expect("valid regex"));
static SIGNATURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:nginx|apache|microsoft-iis|jetty|tomcat|openresty|caddy|lighttpd|gunicorn|uvicorn|werkzeug|express|kestrel|envoy|litespeed|php)/\d+(?:\.\d+)+")
        .expect("valid regex")
});

/// Version disclosures in one response.
fn disclosures(r: &HttpResponse) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version"] {
        for v in header_values(r, name) {
            let always = name.starts_with("x-aspnet");
            if always || VERSION.is_match(v) {
                out.push(format!("{name}: {}", truncate(v.trim(), 80)));
            }
        }
    }
    if !is_2xx(r)
        && let Some(m) = SIGNATURE.find(&r.body_text())
    {
        out.push(format!("the error page names {}", m.as_str()));
    }
    out
}

async fn no_version_disclosure(probe: &Probe) -> Verdict {
    let responses = match sample(probe).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let mut found = Vec::new();
    let mut names = Vec::new();
    for r in &responses {
        let d = disclosures(r);
        if !d.is_empty() {
            found.push(format!("{}: {}", described(r), d.join(", ")));
        }
        for name in ["server", "x-powered-by"] {
            names.extend(header_values(r, name).iter().map(|v| format!("{name}: {}", truncate(v, 60))));
        }
    }
    names.dedup();
    let evidence = responses.into_iter().map(|r| r.exchange);
    if !found.is_empty() {
        return Verdict::fail(format!("version disclosed: {}", found.join("; "))).with_all(evidence);
    }
    let seen = if names.is_empty() { "no Server or X-Powered-By header".to_owned() } else { names.join(", ") };
    Verdict::pass(format!("no version number in headers or error pages ({seen})")).with_all(evidence)
}

// ---------------------------------------------------------------------------------------------
// posture/no-open-redirect

const REDIRECT_PARAMS: &[&str] = &["redirect", "redirect_uri", "next", "url", "return_to", "continue"];

static META_REFRESH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)<meta\b[^>]*http-equiv\s*=\s*["']?refresh[^>]*?url\s*=\s*["']?([^"'>\s]+)"#)
        .expect("valid regex")
});

/// Where `r` sends the client, if anywhere: (how, URL).
fn redirect_target(r: &HttpResponse, base: &url::Url) -> Option<(String, url::Url)> {
    if r.status_in(300..=399)
        && let Some(loc) = r.header("location")
        && let Ok(to) = base.join(loc.trim())
    {
        return Some((format!("HTTP {} Location: {}", r.status.unwrap_or(0), truncate(loc, 100)), to));
    }
    if let Some(refresh) = r.header("refresh")
        && let Some(at) = refresh.to_ascii_lowercase().find("url=")
        && let Ok(to) = base.join(refresh[at + 4..].trim().trim_matches(['"', '\'']))
    {
        return Some((format!("Refresh: {}", truncate(refresh, 100)), to));
    }
    let body = r.body_text();
    let c = META_REFRESH.captures(&body)?;
    let to = base.join(&c[1]).ok()?;
    Some((format!("meta refresh to {}", truncate(&c[1], 100)), to))
}

fn is_evil(url: &url::Url) -> bool {
    url.host_str().is_some_and(|h| {
        let h = h.trim_end_matches('.').to_ascii_lowercase();
        h == "evil.example" || h.ends_with(".evil.example")
    })
}

async fn no_open_redirect(probe: &Probe) -> Verdict {
    let http = match probe.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let mut found = Vec::new();
    let mut seen = Vec::new();
    let mut hits = Vec::new();
    let mut rest = Vec::new();
    for param in REDIRECT_PARAMS {
        let mut url = http.url().clone();
        url.query_pairs_mut().append_pair(param, EVIL_URL);
        let path = url[url::Position::BeforePath..].to_owned();
        let r = http.send(anonymous_get(format!("GET the endpoint with ?{param}={EVIL_URL}"), &path)).await;
        match redirect_target(&r, &url).filter(|(_, to)| is_evil(to)) {
            Some((how, _)) => {
                found.push(format!("?{param}= → {how}"));
                hits.push(r.exchange);
            }
            None => {
                seen.push(format!("?{param}= → {}", status_text(&r)));
                rest.push(r.exchange);
            }
        }
    }
    if found.is_empty() {
        Verdict::pass(format!("no redirect to the host named in the parameter ({})", seen.join(", "))).with_all(rest)
    } else {
        Verdict::fail(format!("open redirect to evil.example: {}", found.join("; "))).with_all(hits).with_all(rest)
    }
}

// ---------------------------------------------------------------------------------------------
// posture/no-sensitive-files

struct Sensitive {
    path: &'static str,
    what: &'static str,
    looks_like: fn(&str) -> bool,
}

const SENSITIVE: &[Sensitive] = &[
    Sensitive { path: "/.env", what: "an environment file (KEY=VALUE lines)", looks_like: env_file },
    Sensitive { path: "/.git/config", what: "a Git repository configuration", looks_like: git_config },
    Sensitive { path: "/.git/HEAD", what: "a Git HEAD reference", looks_like: git_head },
    Sensitive { path: "/.aws/credentials", what: "an AWS credentials file", looks_like: aws_credentials },
    Sensitive { path: "/config.json", what: "a JSON configuration with secret-looking keys", looks_like: config_json },
    Sensitive { path: "/.npmrc", what: "an npm configuration with a registry credential", looks_like: npmrc },
    Sensitive { path: "/.vscode/mcp.json", what: "an MCP client configuration", looks_like: mcp_config },
    Sensitive { path: "/server.js.map", what: "a JavaScript source map", looks_like: source_map },
    Sensitive { path: "/index.js.map", what: "a JavaScript source map", looks_like: source_map },
    Sensitive { path: "/", what: "a directory listing", looks_like: listing },
];

fn text_not_markup(body: &str) -> bool {
    let start = body.trim_start();
    !(start.starts_with('<') || start.starts_with('{') || start.starts_with('['))
}

fn env_file(body: &str) -> bool {
    static LINE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=").expect("valid regex"));
    if !text_not_markup(body) {
        return false;
    }
    let lines: Vec<&str> = body.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    !lines.is_empty()
        && lines.iter().all(|l| LINE.is_match(l))
        && lines.iter().any(|l| LINE.captures(l).is_some_and(|c| c[1].chars().any(|ch| ch.is_ascii_uppercase())))
}

fn not_html(body: &str) -> bool {
    !body.trim_start().starts_with('<')
}

fn git_config(body: &str) -> bool {
    not_html(body) && body.contains("[core]")
}

fn git_head(body: &str) -> bool {
    let b = body.trim();
    b.strip_prefix("ref: refs/").is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
        || (b.len() == 40 && b.bytes().all(|c| c.is_ascii_hexdigit()))
}

fn aws_credentials(body: &str) -> bool {
    not_html(body) && body.to_ascii_lowercase().contains("aws_access_key_id")
}

fn config_json(body: &str) -> bool {
    static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(?:secret|password|passwd|token|api[_-]?key|credentials?|private[_-]?key|database[_-]?url|db[_-]?url|connection[_-]?string|dsn)(?:[_-].*)?$")
            .expect("valid regex")
    });
    fn keys_match(v: &Value, depth: usize) -> bool {
        match v {
            Value::Object(m) if depth < 4 => m.iter().any(|(k, v)| SECRET_KEY.is_match(k) || keys_match(v, depth + 1)),
            Value::Array(items) if depth < 4 => items.iter().take(50).any(|v| keys_match(v, depth + 1)),
            _ => false,
        }
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else { return false };
    v.is_object() && v.get("jsonrpc").is_none() && v.get("error").is_none() && keys_match(&v, 0)
}

fn npmrc(body: &str) -> bool {
    text_not_markup(body) && (body.contains("_authToken") || body.contains(":_auth") || body.contains(":_password"))
}

fn mcp_config(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .is_ok_and(|v| ["servers", "mcpServers"].iter().any(|k| v.get(k).is_some_and(Value::is_object)))
}

fn source_map(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .is_ok_and(|v| v.get("version") == Some(&json!(3)) && v.get("mappings").is_some_and(Value::is_string))
}

fn listing(body: &str) -> bool {
    body.contains("<title>Index of /") || body.contains("Directory listing for /")
}

async fn no_sensitive_files(probe: &Probe) -> Verdict {
    let http = match probe.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let control = http.send(anonymous_get("GET a nonexistent path (control)", &nonexistent_path(probe))).await;
    let mut found = Vec::new();
    let mut seen = Vec::new();
    let mut hits = Vec::new();
    let mut rest = vec![control.exchange.clone()];
    for file in SENSITIVE {
        let r = http.send(anonymous_get(format!("GET {} without credentials", file.path), file.path)).await;
        let exposed = is_2xx(&r) && !same_as_control(&r, &control) && (file.looks_like)(&r.body_text());
        if exposed {
            found.push(format!("{} answers {} with {}", file.path, status_text(&r), file.what));
            let secrets: Vec<String> = find_secrets(&r.body_text()).into_iter().map(|(_, s)| s).collect();
            hits.push(scrub(r.exchange, &secrets));
        } else {
            seen.push(format!("{} → {}", file.path, status_text(&r)));
            rest.push(r.exchange);
        }
    }
    if found.is_empty() {
        Verdict::pass(format!("no sensitive file or listing served ({})", seen.join(", "))).with_all(rest)
    } else {
        Verdict::fail(format!("sensitive files served without credentials: {}", found.join("; ")))
            .with_all(hits)
            .with_all(rest)
    }
}

// ---------------------------------------------------------------------------------------------
// posture/no-stack-trace-on-404

static TRACE_MARKERS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        ("a Python traceback", r"Traceback \(most recent call last\)|File \x22[^\x22]+\x22, line \d+"),
        ("a Java stack frame", r"\bat [\w$.]+\([\w$]+\.(?:java|kt|scala):\d+\)|Exception in thread \x22"),
        ("a .NET stack frame", r"\bat [\w.`<>\[\]]+\([^)]*\) in [^\n]+:line \d+"),
        (
            "a stack frame (`at function (file:line:column)`, Node.js style)",
            r"\bat (?:[\w$.<>\[\] ]+ )?\(?(?:/|[A-Za-z]:\\|file://|node:)[^()\s]+:\d+:\d+\)?",
        ),
        ("a Go panic trace", r"goroutine \d+ \[running\]|\.go:\d+ \+0x"),
        ("a Rust panic or backtrace", r"panicked at |stack backtrace:|RUST_BACKTRACE"),
        ("a PHP error", r"(?:Fatal error|Parse error|Warning)</b>:|Stack trace:\s*(?:\\n|\n)#0| on line <b>\d+</b>"),
        ("a Ruby backtrace", r"\.rb:\d+:in `"),
        ("a Werkzeug debugger page", r"Werkzeug Debugger|The debugger caught an exception"),
        ("a Django debug page", r"You're seeing this error because you have <code>DEBUG = True</code>|DEBUG = True"),
        ("a Spring Whitelabel error page", r"Whitelabel Error Page"),
        ("a Laravel debug page", r"Whoops, looks like something went wrong|Illuminate\\"),
        (
            "a source file path with a line number",
            r"(?:/|[A-Za-z]:\\)[\w./\\-]+\.(?:py|js|mjs|cjs|ts|rb|go|rs|java|kt|php|cs|scala|ex|exs):\d+",
        ),
        (
            "an absolute source path",
            r"(?:/home/|/Users/|/usr/src/|/var/www/|/srv/|/opt/app/|C:\\Users\\|C:\\inetpub\\)[\w./\\-]+\.(?:py|js|mjs|ts|rb|go|rs|java|php|cs)\b",
        ),
    ]
    .into_iter()
    .map(|(what, re)| (what, Regex::new(re).expect("valid regex")))
    .collect()
});

/// The first internal detail found in `body`, with the text around it.
fn leak_in(body: &str) -> Option<String> {
    TRACE_MARKERS.iter().find_map(|(what, re)| {
        let m = re.find(body)?;
        Some(format!("{what} ({:?})", redact_text(&truncate(m.as_str(), 90))))
    })
}

async fn no_stack_trace_on_404(probe: &Probe) -> Verdict {
    let http = match probe.http() {
        Ok(h) => h,
        Err(v) => return v,
    };
    let missing = nonexistent_path(probe);
    let requests = [
        anonymous_get("GET a nonexistent path", &missing),
        anonymous_get("GET a nonexistent path with invalid bytes", &format!("{missing}/%ff%fe%00.php?x=%27%22%3C")),
        HttpRequest::post_bytes(
            "POST truncated JSON to the endpoint",
            &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"[..],
        ),
    ];
    let mut found = Vec::new();
    let mut seen = Vec::new();
    let mut hits = Vec::new();
    let mut rest = Vec::new();
    for req in requests {
        let r = http.send(req).await;
        if r.status.is_none() {
            rest.push(r.exchange);
            continue;
        }
        match leak_in(&r.body_text()) {
            Some(what) => {
                found.push(format!("{}: {what}", described(&r)));
                hits.push(r.exchange);
            }
            None => {
                seen.push(described(&r));
                rest.push(r.exchange);
            }
        }
    }
    if seen.is_empty() && found.is_empty() {
        return Verdict::error("none of the error probes got a response").with_all(rest);
    }
    if found.is_empty() {
        Verdict::pass(format!("error bodies reveal no internals ({})", seen.join("; "))).with_all(rest)
    } else {
        Verdict::fail(format!("error bodies reveal internals: {}", found.join("; "))).with_all(hits).with_all(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).expect("valid url")
    }

    #[test]
    fn plain_http_fails_off_loopback_only() {
        use crate::check::Status;
        for remote in ["http://mcp.example.com/mcp", "http://10.0.0.5:8080/mcp", "http://[2001:db8::1]/mcp"] {
            assert_eq!(judge_scheme(&url(remote), false).status, Status::Fail, "{remote}");
        }
        for local in
            ["http://127.0.0.1:3000/mcp", "http://localhost/mcp", "http://[::1]:1/mcp", "http://app.localhost/mcp"]
        {
            assert_eq!(judge_scheme(&url(local), false).status, Status::Pass, "{local}");
        }
        assert_eq!(judge_scheme(&url("https://mcp.example.com/mcp"), false).status, Status::Pass);
    }

    #[test]
    fn secrets_are_found_and_placeholders_are_not() {
        let key = format!("AKIA{}", "Q4MCPROOFFAKE7X2");
        assert_eq!(find_secrets(&format!("aws key {key} here")).len(), 1);
        assert!(find_secrets("AKIAIOSFODNN7EXAMPLE").is_empty(), "documented example key");
        let pem = format!("-----BEGIN RSA {}-----\\n{}", "PRIVATE KEY", "MIIEowIBAAKCAQEA".repeat(4));
        assert_eq!(find_secrets(&pem)[0].0, "a private key block");
        assert_eq!(find_secrets("DB_PASSWORD=s3cr3tPa55 password=hunter22")[0].0, "a credential assignment");
        for benign in [
            r#"{"properties":{"password":{"type":"string"},"api_key":{"type":"string"}}}"#,
            "Send Authorization: Bearer <token>",
            "Authorization: Bearer YOUR_ACCESS_TOKEN_HERE",
            "password=<your password>",
            r#"{"password": "********"}"#,
            "resource_metadata=\"http://127.0.0.1:1/.well-known/oauth-protected-resource\"",
            "disk-usage-reporting-and-cleanup-assistant-tool",
        ] {
            assert!(find_secrets(benign).is_empty(), "{benign}: {:?}", find_secrets(benign));
        }
    }

    #[test]
    fn file_signatures_need_the_real_content() {
        assert!(env_file("# comment\nDATABASE_URL=postgres://u:p@h/db\nAPI_KEY=abc\n"));
        assert!(!env_file("<html><body>Not found</body></html>"));
        assert!(!env_file("ok"));
        assert!(!env_file("{\"a\":1}"));
        assert!(git_config("[core]\n\trepositoryformatversion = 0\n"));
        assert!(git_head("ref: refs/heads/main\n"));
        assert!(!git_head("<html>ref: refs/heads/main</html>"));
        assert!(config_json(r#"{"database":{"password":"x"}}"#));
        assert!(!config_json(r#"{"jsonrpc":"2.0","error":{"code":-32600}}"#));
        assert!(!config_json(r#"{"name":"app","theme":"dark"}"#));
        assert!(source_map(r#"{"version":3,"sources":["a.ts"],"mappings":"AAAA"}"#));
    }

    #[test]
    fn traces_are_recognised_and_plain_errors_are_not() {
        for trace in [
            "Traceback (most recent call last):\n  File \"/app/main.py\", line 3, in <module>",
            "    at Object.<anonymous> (/srv/app/server.js:12:5)",
            "at com.example.Handler.handle(Handler.java:42)",
            "thread 'main' panicked at src/main.rs:2:5",
            "goroutine 1 [running]:",
        ] {
            assert!(leak_in(trace).is_some(), "{trace}");
        }
        for clean in [
            r#"{"error":"Not Found"}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: EOF while parsing a value at line 1 column 33"}}"#,
            "Cannot GET /mcproof-nonexistent-0123456789abcdef/%FF%FE%00.php",
        ] {
            assert!(leak_in(clean).is_none(), "{clean}");
        }
    }
}
