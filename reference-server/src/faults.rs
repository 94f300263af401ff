//! Fault switches: each disables exactly one control, so that the harness can prove that the
//! check for that control fails when the control is missing.
//!
//! They exist only with the `faults` cargo feature. Without it [`Faults::is_on`] is a constant
//! `false` that the compiler removes, and no flag, file key or environment variable can turn
//! a fault on: release builds cannot be weakened by configuration.

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
    ("batch-rejection", "accept JSON-RPC batches in every revision"),
    ("null-id-rejection", "accept requests whose id is null"),
    ("parse-error-code", "answer malformed JSON with -32603 instead of -32700"),
    ("method-not-found-code", "answer unknown methods with -32603 instead of -32601"),
    ("id-type-echo", "return numeric request ids as strings"),
    ("notification-202", "answer notifications with 200 and a JSON body instead of 202"),
    ("version-negotiation", "answer initialize with 2025-03-26 whatever was asked"),
    ("initialize-first", "serve requests on stdio before initialize"),
    ("honest-capabilities", "offer tools without declaring the tools capability"),
    ("header-nosniff", "omit X-Content-Type-Options"),
    ("header-frame-options", "omit X-Frame-Options"),
    ("header-csp", "omit Content-Security-Policy"),
    ("header-hsts", "omit Strict-Transport-Security over TLS"),
    ("cors-policy", "answer every Origin with Access-Control-Allow-Origin: * and credentials"),
    ("server-header", "send a Server header with name and version"),
    ("error-sanitization", "put internal details (paths, stack traces) in error bodies"),
    ("stdio-clean-stdout", "write a log line to stdout on stdio"),
];

/// The set of faults switched on (always empty without the `faults` feature).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    #[cfg(feature = "faults")]
    on: std::collections::BTreeSet<&'static str>,
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
            Ok(Self { on })
        }
        #[cfg(not(feature = "faults"))]
        {
            if names.is_empty() { Ok(Self::default()) } else { Err(FaultError::NotCompiled) }
        }
    }

    pub fn is_empty(&self) -> bool {
        #[cfg(feature = "faults")]
        {
            self.on.is_empty()
        }
        #[cfg(not(feature = "faults"))]
        {
            true
        }
    }
}
