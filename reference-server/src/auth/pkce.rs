//! PKCE (RFC 7636) with the S256 method only.
//!
//! `plain` is never offered: it gives no protection when the authorization request leaks, and
//! OAuth 2.1 requires S256 wherever the client can compute it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest verifier RFC 7636 §4.1 allows (32 random bytes, base64url encoded).
pub const MIN_VERIFIER_LEN: usize = 43;
/// Longest verifier RFC 7636 §4.1 allows.
pub const MAX_VERIFIER_LEN: usize = 128;

/// The S256 challenge for `verifier`: `BASE64URL(SHA256(ASCII(verifier)))`, no padding.
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `v` is a well-formed code verifier: 43 to 128 characters of the RFC 3986 unreserved
/// set (`A-Z a-z 0-9 - . _ ~`).
pub fn valid_verifier(v: &str) -> bool {
    (MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` is well formed and hashes to `challenge`. The comparison is constant
/// time, so a client probing with verifiers learns nothing from timing about the stored challenge.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    if !valid_verifier(verifier) {
        return false;
    }
    let computed = pkce_s256(verifier);
    // Lengths are public (always 43 for a real challenge); only the content is compared in constant time.
    computed.len() == challenge.len() && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(pkce_s256(RFC_VERIFIER), RFC_CHALLENGE);
        assert!(verify_s256(RFC_VERIFIER, RFC_CHALLENGE));
    }

    #[test]
    fn wrong_verifier_or_challenge_fails() {
        let other = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
        assert!(!verify_s256(other, RFC_CHALLENGE));
        assert!(!verify_s256(RFC_VERIFIER, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(!verify_s256(RFC_VERIFIER, ""));
        assert!(!verify_s256(RFC_VERIFIER, &format!("{RFC_CHALLENGE}=")));
        // `plain` (challenge == verifier) never passes.
        assert!(!verify_s256(RFC_VERIFIER, RFC_VERIFIER));
    }

    #[test]
    fn verifier_shape() {
        assert!(valid_verifier(RFC_VERIFIER));
        assert!(valid_verifier(&"a".repeat(43)));
        assert!(valid_verifier(&"~._-".repeat(32)));
        assert!(!valid_verifier(&"a".repeat(42)));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(valid_verifier(&"a".repeat(128)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(42))));
        assert!(!valid_verifier(&format!("{}/", "a".repeat(42))));
        assert!(!valid_verifier(&format!("{} ", "a".repeat(42))));
        assert!(!valid_verifier(&format!("{}é", "a".repeat(41))));
        // A malformed verifier fails even when it hashes to the challenge given.
        let bad = "short";
        assert!(!verify_s256(bad, &pkce_s256(bad)));
    }
}
