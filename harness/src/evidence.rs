//! Evidence: the exchanges that prove a verdict, with secrets redacted before they are stored.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Longest body excerpt kept in a report, in bytes.
pub const MAX_EXCERPT: usize = 2048;

/// One request and what came back (or did not).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Exchange {
    /// What this exchange tried, e.g. "POST initialize with Origin: https://evil.example".
    pub label: String,
    pub request: RequestRecord,
    /// `None` when there was no response (refused, timed out).
    pub response: Option<ResponseRecord>,
    pub elapsed_ms: u64,
    /// Transport failure, if any.
    pub error: Option<String>,
}

/// A request as sent (redacted).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    /// HTTP method, or `stdio` for a line written to a child.
    pub method: String,
    /// URL, or the command for stdio.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A response as received (redacted, excerpted).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ResponseRecord {
    /// HTTP status; 0 for stdio.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body was longer than the excerpt.
    pub truncated: bool,
}

const SECRET_HEADERS: &[&str] =
    &["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-auth-token"];

/// Redacts a header value if the header carries credentials. Session ids are cut short: they
/// identify a session in the evidence without handing it to whoever reads the report.
pub fn redact_header(name: &str, value: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if SECRET_HEADERS.contains(&lower.as_str()) {
        let scheme = value.split_once(' ').map(|(s, _)| s).filter(|s| s.eq_ignore_ascii_case("bearer"));
        return match scheme {
            Some(s) => format!("{s} [REDACTED]"),
            None => "[REDACTED]".to_owned(),
        };
    }
    if lower == "mcp-session-id" && value.len() > 12 {
        return format!(
            "{}…[{} chars]",
            &value[..value.char_indices().nth(8).map_or(value.len(), |(i, _)| i)],
            value.len()
        );
    }
    redact_text(value)
}

static SECRET_PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        // A token68 after "Bearer", but not an auth-param such as `Bearer resource_metadata="…"`.
        r#"(?i)bearer\s+[A-Za-z0-9._~+/-]{8,}=*(?:[^"A-Za-z0-9._~+/=-]|$)"#,
        r"mcp_sk_[A-Za-z0-9_-]{16,}",
        r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}",
        r"\bAKIA[0-9A-Z]{16}\b",
        r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",
        r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
        r#"(?i)("?(?:access_token|refresh_token|client_secret|password|api_key|apikey|id_token)"?\s*[:=]\s*"?)[^"&\s,}]{4,}"#,
    ]
    .iter()
    .filter_map(|p| Regex::new(p).ok())
    .collect()
});

/// Replaces credentials in free text with `[REDACTED]`.
pub fn redact_text(text: &str) -> String {
    let mut out = text.to_owned();
    for (i, re) in SECRET_PATTERNS.iter().enumerate() {
        let replacement = if i == SECRET_PATTERNS.len() - 1 { "${1}[REDACTED]" } else { "[REDACTED]" };
        out = re.replace_all(&out, replacement).into_owned();
    }
    out
}

/// A redacted, length-capped, lossily decoded excerpt of a body.
pub fn excerpt(bytes: &[u8]) -> (String, bool) {
    let truncated = bytes.len() > MAX_EXCERPT;
    let cut = &bytes[..bytes.len().min(MAX_EXCERPT)];
    (redact_text(&String::from_utf8_lossy(cut)), truncated)
}

/// Redacts every header of a list.
pub fn redact_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    headers.into_iter().map(|(n, v)| (n.to_owned(), redact_header(n, v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_survive_redaction() {
        assert_eq!(redact_header("Authorization", "Bearer abc.def.ghi"), "Bearer [REDACTED]");
        assert_eq!(redact_header("X-API-Key", "mcp_sk_abcdefghijklmnopqrstuvwxyz"), "[REDACTED]");
        let sid = redact_header("Mcp-Session-Id", "qxL1FL0rOc1soo0tH8Pee4A9d565qVJrSN1qRTPh3kg");
        assert!(sid.starts_with("qxL1FL0r") && !sid.contains("RTPh3kg"));
        let body =
            r#"{"access_token":"s3cr3t-value","jwt":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlMTIz"}"#;
        let red = redact_text(body);
        assert!(!red.contains("s3cr3t-value") && !red.contains("eyJzdWIi"), "{red}");
        assert!(redact_text("key AKIAIOSFODNN7EXAMPLE here").contains("[REDACTED]"));
        // A challenge's auth-params are not credentials and stay readable.
        let challenge = r#"Bearer resource_metadata="http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp", scope="mcp:read""#;
        assert_eq!(redact_header("WWW-Authenticate", challenge), challenge);
        assert!(!redact_text("Authorization: Bearer abcdefgh12345678 more").contains("abcdefgh12345678"));
    }

    #[test]
    fn excerpts_are_capped_and_lossy() {
        let (text, truncated) = excerpt(&[b'a'; MAX_EXCERPT + 10]);
        assert!(truncated);
        assert_eq!(text.len(), MAX_EXCERPT);
        let (text, truncated) = excerpt(b"\xff\xfeok");
        assert!(!truncated);
        assert!(text.ends_with("ok"));
    }
}
