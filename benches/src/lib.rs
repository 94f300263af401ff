//! Shared inputs and settings for the criterion benches (issue 6).
//!
//! Every bench puts mcproof and its baseline in the same criterion group, so that the two run
//! back to back under the same machine load; the ratios between them are what we report.

use std::time::Duration;

/// Criterion warm-up per case: short, so the whole suite stays within about ten minutes on the
/// 2-core box.
pub const WARM_UP: Duration = Duration::from_millis(700);
/// Criterion measurement time per case.
pub const MEASUREMENT: Duration = Duration::from_secs(2);
/// Criterion samples per case (criterion's minimum is 10).
pub const SAMPLES: usize = 30;

/// A typical `tools/call` request body (about 200 bytes).
pub const TOOLS_CALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"query_products","arguments":{"category":"tools","limit":10,"order_by":"price_cents"},"_meta":{"progressToken":"p-1"}}}"#;

/// A typical `initialize` request body (as sent by an MCP client library).
pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{"listChanged":true},"sampling":{},"elicitation":{}},"clientInfo":{"name":"example-client","title":"Example Client","version":"1.4.2"}}}"#;

/// A `tools/list` request body.
pub const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":"list-1","method":"tools/list","params":{}}"#;

/// The arguments of [`TOOLS_CALL`]: a typical, valid `query_products` input.
pub const QUERY_ARGS: &str = r#"{"category":"tools","name_contains":"drill","columns":["id","name","price_cents"],"order_by":"price_cents","descending":true,"limit":10}"#;

/// Realistic tool output of about `len` bytes: prose, a table, code, a URL, an e-mail address
/// and an API key (the sanitizer redacts the last two), with no control characters.
pub fn tool_output_text(len: usize) -> String {
    const PARAGRAPH: &str = "Quarterly report for the tools category. Sales of cordless drills rose 12% over the \
previous quarter, while hand saws stayed flat. The supplier in Rotterdam confirmed the next delivery for \
2026-12-04; contact ops-team@example.com for changes. Inventory notes:\n\
| id | name | price_cents |\n|----|------|-------------|\n| 17 | Cordless drill 18V | 8999 |\n| 23 | Hand saw | 1599 |\n\
Config used by the export job: `export --format csv --since 2026-09-01` (see https://example.com/docs/export).\n\
The staging key sk_live_4eC39HqLyjWDarjtT1zdp7dc was rotated last week and must not appear in output.\n\n";
    let mut out = String::with_capacity(len + PARAGRAPH.len());
    while out.len() < len {
        out.push_str(PARAGRAPH);
    }
    out.truncate(len);
    out
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`), `None` elsewhere.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident * 4096)
}

/// The `i`-th of many distinct, IP-address-like rate-limit keys (`10.a.b.c`, 8 to 11 bytes).
pub fn ip_like_key(i: u32, buf: &mut String) {
    use std::fmt::Write as _;
    buf.clear();
    let [_, a, b, c] = i.to_be_bytes();
    let hi = (i >> 24) & 0xff;
    // Fold the top byte into the first octet so that keys stay distinct past 2^24.
    let _ = write!(buf, "{}.{a}.{b}.{c}", 10 + hi);
}
