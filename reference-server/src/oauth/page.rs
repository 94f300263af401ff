//! Server-rendered HTML for the authorization endpoint, and its cookies.
//!
//! Every interpolated value goes through [`escape`]; the page cannot be framed (clickjacking a
//! consent button is the classic attack) and allows no script at all. Cookies are `__Host-`
//! prefixed (host-only, `Path=/`, `Secure`), `HttpOnly` and `SameSite=Lax`.

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};

use super::{no_store, sha256};

pub(crate) const CSRF_COOKIE: &str = "__Host-mcproof-csrf";
pub(crate) const SESSION_COOKIE: &str = "__Host-mcproof-session";
/// How long a consent page may be left open before its CSRF token lapses.
pub(crate) const CSRF_MAX_AGE_SECS: u64 = 600;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;\
color:#111}code{word-break:break-all;background:#f3f3f3;padding:0 .2rem}.warn{color:#8a4b00}\
.error{color:#b00020}label{display:block;margin:.6rem 0}input{width:100%;padding:.4rem}\
button{margin:.8rem .5rem 0 0;padding:.5rem 1.2rem}";

/// The CSP: nothing loads, only the page's own stylesheet (by hash) applies, no framing.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = STANDARD.encode(sha256(STYLE.as_bytes()));
    format!("default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; frame-ancestors 'none'")
});

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// What the login and consent page shows and carries.
pub(crate) struct ConsentView<'a> {
    pub client_name: &'a str,
    pub client_id: &'a str,
    /// Whether the client registered a name (a name is self-asserted; say so).
    pub named: bool,
    pub redirect_uri: &'a str,
    pub redirect_host: &'a str,
    pub loopback: bool,
    pub resource: &'a str,
    pub scopes: &'a [String],
    /// The authorization request, re-submitted with the form and re-validated.
    pub hidden: &'a [(&'static str, &'a str)],
    pub csrf: &'a str,
    /// `Some(user)` when a login session exists: no password fields.
    pub signed_in_as: Option<&'a str>,
    pub username: Option<&'a str>,
    /// An error code and message to show above the form (a failed login).
    pub error: Option<(&'a str, &'a str)>,
}

fn scope_description(scope: &str) -> &'static str {
    match scope {
        "mcp:read" => "read: list and call read-only tools and resources",
        "mcp:write" => "write: call tools that change data",
        "mcp:admin" => "admin: operator tools",
        _ => "",
    }
}

pub(crate) fn render_consent(v: &ConsentView<'_>) -> String {
    let mut h = String::with_capacity(4096);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>Authorize {name}</title><style>{STYLE}</style></head>\
         <body><main><h1>Authorize access</h1>\
         <p><strong id=\"client-name\">{name}</strong> (client id <code>{id}</code>) asks for access to \
         <code>{resource}</code>.</p>",
        name = escape(v.client_name),
        id = escape(v.client_id),
        resource = escape(v.resource),
    );
    if v.named {
        h.push_str("<p class=\"warn\">The application chose its own name; this server has not verified it.</p>");
    }
    let _ = write!(
        h,
        "<p>If you allow it, you will be sent to <code id=\"redirect-uri\">{uri}</code> \
         on host <strong id=\"redirect-host\">{host}</strong>.</p>",
        uri = escape(v.redirect_uri),
        host = escape(v.redirect_host),
    );
    if v.loopback {
        h.push_str(
            "<p class=\"warn\">That address is on this computer (localhost): allow only if you started \
             this application yourself.</p>",
        );
    }
    h.push_str("<p>Permissions requested:</p><ul id=\"scopes\">");
    for scope in v.scopes {
        let _ = write!(h, "<li><code>{}</code> {}</li>", escape(scope), escape(scope_description(scope)));
    }
    h.push_str("</ul>");
    if let Some((code, message)) = v.error {
        let _ = write!(
            h,
            "<p class=\"error\" role=\"alert\"><code id=\"error\">{}</code> {}</p>",
            escape(code),
            escape(message)
        );
    }
    h.push_str("<form method=\"post\" action=\"/authorize\">");
    for (name, value) in v.hidden {
        let _ = write!(h, "<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(name), escape(value));
    }
    let _ = write!(h, "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">", escape(v.csrf));
    match v.signed_in_as {
        Some(user) => {
            let _ = write!(h, "<p>Signed in as <strong>{}</strong>.</p>", escape(user));
        }
        None => {
            let _ = write!(
                h,
                "<label>User name <input name=\"username\" autocomplete=\"username\" value=\"{}\"></label>\
                 <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>",
                escape(v.username.unwrap_or("")),
            );
        }
    }
    h.push_str(
        "<button type=\"submit\" name=\"action\" value=\"approve\">Allow</button>\
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form></main></body></html>",
    );
    h
}

/// An error shown to the person (never a redirect: the redirect URI is not trusted yet).
pub(crate) fn render_error(error: &str, description: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorization error</title>\
         <style>{STYLE}</style></head><body><main><h1>Authorization error</h1>\
         <p>Error: <code id=\"error\">{}</code></p><p class=\"error\">{}</p></main></body></html>",
        escape(error),
        escape(description)
    )
}

/// An HTML response with the page headers and `cookies` set.
pub(crate) fn html(status: StatusCode, body: String, cookies: &[String]) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    page_headers(h);
    add_cookies(h, cookies);
    response
}

pub(crate) fn page_headers(h: &mut HeaderMap) {
    no_store(h);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(csp) = HeaderValue::from_str(&CSP) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

pub(crate) fn add_cookies(h: &mut HeaderMap, cookies: &[String]) {
    for cookie in cookies {
        if let Ok(v) = HeaderValue::from_str(cookie) {
            h.append(header::SET_COOKIE, v);
        }
    }
}

/// A `Set-Cookie` value with the `__Host-` attributes. `value` must be cookie-safe (base64url).
pub(crate) fn set_cookie(name: &str, value: &str, max_age_secs: u64) -> String {
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}")
}

pub(crate) fn clear_cookie(name: &str) -> String {
    set_cookie(name, "", 0)
}

/// The value of cookie `name`; `None` when absent or sent more than once (ambiguous).
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for header in headers.get_all(header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else { continue };
            if k == name {
                if found.is_some() {
                    return None;
                }
                found = Some(v);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_html_metacharacters() {
        assert_eq!(
            escape("<a href=\"x\" title='y'>&</a>"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn consent_page_escapes_every_value() {
        let evil = "<script>alert(1)</script>\"'";
        let scopes = vec!["mcp:read".to_owned()];
        let hidden = [("state", evil)];
        let view = ConsentView {
            client_name: evil,
            client_id: evil,
            named: true,
            redirect_uri: evil,
            redirect_host: evil,
            loopback: true,
            resource: evil,
            scopes: &scopes,
            hidden: &hidden,
            csrf: evil,
            signed_in_as: None,
            username: Some(evil),
            error: Some((evil, evil)),
        };
        let page = render_consent(&view);
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("\"'"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(!render_error(evil, evil).contains("<script>"));
    }

    #[test]
    fn cookies_have_host_prefix_attributes_and_parse_strictly() {
        let c = set_cookie(CSRF_COOKIE, "abc", 600);
        assert_eq!(c, "__Host-mcproof-csrf=abc; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600");
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; __Host-mcproof-csrf=tok; b=2"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "missing"), None);
        h.append(header::COOKIE, HeaderValue::from_static("__Host-mcproof-csrf=other"));
        assert_eq!(cookie(&h, CSRF_COOKIE), None, "two values are ambiguous");
    }

    #[test]
    fn page_headers_forbid_framing() {
        let r = html(StatusCode::OK, String::new(), &[]);
        assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().expect("csp");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    }
}
