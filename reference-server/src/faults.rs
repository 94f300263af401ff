//! Fault switches: each disables exactly one control, so that the harness can prove that the
//! check for that control fails when the control is missing.
//!
//! They exist only with the `faults` cargo feature. Without it [`Faults::is_on`] is a constant
//! `false` that the compiler removes, and no flag, file key or environment variable can turn
//! a fault on: release builds cannot be weakened by configuration.
//!
//! The `bench-insecure` feature adds one more switch, [`Faults::all_security_off`], that turns
//! every security control off at once: the no-security contender of the overhead benchmark.
//! Only the benches enable that feature (as a dev-dependency), and only Rust code can set it.

/// Every fault name with the one control it disables.
pub const KNOWN: &[(&str, &str)] = &[
    ("origin-check", "accept any Origin header (no 403)"),
    ("host-check", "accept any Host header (no DNS-rebinding guard)"),
    ("version-header-check", "accept invalid or unsupported MCP-Protocol-Version headers"),
    ("session-required", "serve requests that carry no Mcp-Session-Id (as a throwaway session)"),
    ("unknown-session-404", "answer unknown or ended session ids with 400 instead of 404"),
    ("session-delete", "DELETE answers 204 but the session stays alive"),
    ("session-entropy", "issue sequential, guessable session ids"),
    ("session-fixation", "adopt the session id a client sends with initialize"),
    ("session-id-charset", "issue session ids containing a space (outside visible ASCII 0x21-0x7E)"),
    ("session-unknown-accepted", "serve requests carrying a session id that was never issued (as a throwaway session)"),
    ("origin-null", "accept the opaque `Origin: null` as if no Origin were sent"),
    ("version-header-fallback", "refuse requests without MCP-Protocol-Version with 400 instead of assuming a version"),
    ("response-content-type", "answer JSON-RPC requests with Content-Type text/plain"),
    ("get-stream", "answer GET with 200 and a JSON body instead of an SSE stream or 405"),
    ("sse-event-ids", "number SSE event ids per stream, so that ids repeat across the streams of a session"),
    ("body-limit", "read request bodies of any size (no 413)"),
    ("batch-rejection", "accept JSON-RPC batches in every revision"),
    ("null-id-rejection", "accept requests whose id is null"),
    ("parse-error-code", "answer malformed JSON with -32603 instead of -32700"),
    ("method-not-found-code", "answer unknown methods with -32603 instead of -32601"),
    ("id-type-echo", "return numeric request ids as strings"),
    ("notification-202", "answer notifications with 200 and a JSON body instead of 202"),
    ("version-negotiation", "answer initialize with 2025-03-26 whatever was asked"),
    ("initialize-first", "serve requests on stdio before initialize"),
    ("honest-capabilities", "offer tools without declaring the tools capability"),
    ("invalid-params-code", "answer tools/call without a name with an isError result instead of -32602"),
    ("response-shape", "add \"result\": null to error responses (both result and error)"),
    ("version-fallback", "echo an unsupported requested protocol version instead of offering a supported one"),
    ("header-nosniff", "omit X-Content-Type-Options"),
    ("header-frame-options", "omit X-Frame-Options and CSP frame-ancestors"),
    ("header-csp", "omit Content-Security-Policy"),
    ("header-hsts", "omit Strict-Transport-Security over TLS"),
    ("cors-policy", "answer every Origin with Access-Control-Allow-Origin: * and credentials"),
    ("server-header", "send a Server header with name and version"),
    ("error-sanitization", "put internal details (paths, stack traces) in error bodies"),
    ("stdio-clean-stdout", "write a log line to stdout on stdio"),
    ("stdio-framing", "pretty-print tool results on stdio (messages spread over several lines)"),
    ("tool-schema", "publish a tool's inputSchema with root type \"string\""),
    ("tool-names", "publish a tool name containing a space"),
    ("tool-description", "publish a tool without a description"),
    ("unknown-tool-error", "answer tools/call of an unknown tool with an isError result instead of -32602"),
    ("annotations", "publish a destructive tool with readOnlyHint: true and destructiveHint: true"),
    ("icon-uris", "publish a tool icon with a javascript: URI"),
    ("canary-echo", "echo the offending argument values in validation messages"),
    ("invalid-cursor", "accept garbage tools/list cursors and serve the list"),
    ("sampling-without-capability", "push a sampling/createMessage request onto every new session's GET stream"),
    ("output-schema", "add a wrong-typed `count` to every tool's structuredContent (breaks its outputSchema)"),
    ("auth-challenge", "answer 401 and 403 refusals without the WWW-Authenticate challenge"),
    ("prm-resource", "serve protected resource metadata whose `resource` is another server's URL"),
    ("planted-panic", "panic in tools/call when `arguments.x` is an object 3+ containers deep (a planted bug)"),
];

/// The set of faults switched on (always empty without the `faults` feature).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    #[cfg(feature = "faults")]
    on: std::collections::BTreeSet<&'static str>,
    #[cfg(feature = "bench-insecure")]
    security_off: bool,
}

/// A fault name that does not exist (or faults are not compiled in).
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("unknown fault `{0}` (see `mcproof-server --list-faults`)")]
    Unknown(String),
    #[error("this build has no fault switches (build with the `faults` feature)")]
    NotCompiled,
}

impl Faults {
    /// Whether fault `name` is on.
    #[inline(always)]
    pub fn is_on(&self, name: &str) -> bool {
        #[cfg(feature = "faults")]
        {
            debug_assert!(KNOWN.iter().any(|(n, _)| *n == name), "unknown fault name {name}");
            self.on.contains(name)
        }
        #[cfg(not(feature = "faults"))]
        {
            let _ = name;
            false
        }
    }

    /// Whether every security control is off (see [`all_security_off`](Self::all_security_off)).
    /// A constant `false` without the `bench-insecure` feature.
    #[inline(always)]
    pub fn security_off(&self) -> bool {
        #[cfg(feature = "bench-insecure")]
        {
            self.security_off
        }
        #[cfg(not(feature = "bench-insecure"))]
        {
            false
        }
    }

    /// No security at all, to measure what security costs: no authentication or scope
    /// decisions, no rate limits, no Host/Origin guards or security headers, no schema
    /// validation, no output sanitization, no audit of tool calls. Transport limits (body size,
    /// JSON depth, request timeout) stay, as any server needs them to parse a request.
    #[cfg(feature = "bench-insecure")]
    pub fn all_security_off() -> Self {
        #[allow(clippy::needless_update, reason = "the `faults` feature adds a field")]
        Self { security_off: true, ..Self::default() }
    }

    /// The faults named, validated against [`KNOWN`].
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, FaultError> {
        #[cfg(feature = "faults")]
        {
            let mut on = std::collections::BTreeSet::new();
            for name in names {
                let name = name.as_ref();
                let known = KNOWN.iter().find(|(n, _)| *n == name).ok_or_else(|| FaultError::Unknown(name.into()))?;
                on.insert(known.0);
            }
            #[allow(clippy::needless_update, reason = "the `bench-insecure` feature adds a field")]
            Ok(Self { on, ..Self::default() })
        }
        #[cfg(not(feature = "faults"))]
        {
            if names.is_empty() { Ok(Self::default()) } else { Err(FaultError::NotCompiled) }
        }
    }

    pub fn is_empty(&self) -> bool {
        #[cfg(feature = "faults")]
        {
            self.on.is_empty() && !self.security_off()
        }
        #[cfg(not(feature = "faults"))]
        {
            !self.security_off()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Faults;

    #[test]
    fn security_is_on_unless_switched_off_in_code() {
        assert!(!Faults::default().security_off());
        assert!(Faults::default().is_empty());
        #[cfg(feature = "bench-insecure")]
        {
            let off = Faults::all_security_off();
            assert!(off.security_off());
            assert!(!off.is_empty());
        }
    }
}
