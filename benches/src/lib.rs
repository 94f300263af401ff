//! Shared inputs for the criterion benches.

/// A typical `tools/call` request body (about 200 bytes).
pub const TOOLS_CALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"query_products","arguments":{"category":"tools","limit":10,"order_by":"price"},"_meta":{"progressToken":"p-1"}}}"#;
