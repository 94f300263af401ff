//! Property tests of the token verifier: no single-byte change of a valid token verifies, and
//! arbitrary input never does.
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcproof_server::auth::jwt::{Alg, Claims, SigningKey, TokenIssuer, TokenVerifier};
use proptest::prelude::*;

const ISS: &str = "https://as.example";
const AUD: &str = "https://mcp.example/mcp";
const NOW: u64 = 1_800_000_000;

struct Fixture {
    verifier: TokenVerifier,
    /// One valid token per signing algorithm.
    tokens: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let ed = TokenIssuer::new(ISS, AUD, SigningKey::generate(Alg::EdDSA).unwrap(), Duration::from_secs(3600));
    let es = TokenIssuer::new(
        "https://as2.example",
        AUD,
        SigningKey::generate(Alg::ES256).unwrap(),
        Duration::from_secs(3600),
    );
    let verifier = TokenVerifier::new(vec![ed.trusted(), es.trusted()]).unwrap();
    let tokens = [&ed, &es]
        .iter()
        .map(|i| {
            i.issue_with(&Claims {
                iss: i.issuer.clone(),
                sub: "alice".into(),
                aud: vec![AUD.into()],
                scope: "mcp:read mcp:write".into(),
                exp: NOW + 3600,
                nbf: Some(NOW),
                iat: NOW,
                jti: "j1".into(),
                client_id: Some("c".into()),
            })
            .unwrap()
        })
        .collect();
    Fixture { verifier, tokens }
});

fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW + 60)
}

#[test]
fn fixture_tokens_verify() {
    for token in &FIXTURE.tokens {
        FIXTURE.verifier.verify_sync(token, at()).unwrap();
        FIXTURE.verifier.verify_uncached_sync(token, at()).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any one byte replaced by a different byte (anywhere: header, payload, signature, dots) is
    /// refused, through the cache (which holds the original) and without it.
    #[test]
    fn prop_single_byte_change_is_rejected(which in 0usize..2, pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let token = &FIXTURE.tokens[which];
        let mut bytes = token.as_bytes().to_vec();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        // A change that makes the token invalid UTF-8 cannot even reach the verifier (`&str`).
        if let Ok(mutated) = String::from_utf8(bytes) {
            // Warm the cache with the original so a hit on the wrong entry would show.
            FIXTURE.verifier.verify_sync(token, at()).unwrap();
            prop_assert!(FIXTURE.verifier.verify_sync(&mutated, at()).is_err());
            prop_assert!(FIXTURE.verifier.verify_uncached_sync(&mutated, at()).is_err());
        }
    }

    /// Arbitrary strings never verify.
    #[test]
    fn prop_arbitrary_strings_never_verify(s in any::<String>()) {
        prop_assert!(FIXTURE.verifier.verify_uncached_sync(&s, at()).is_err());
    }

    /// Nor do arbitrary strings shaped like a compact JWS (three base64url parts), nor a real
    /// header and payload with an arbitrary signature.
    #[test]
    fn prop_jws_shaped_strings_never_verify(
        h in "[A-Za-z0-9_-]{0,64}",
        p in "[A-Za-z0-9_-]{0,128}",
        s in "[A-Za-z0-9_-]{0,100}",
        which in 0usize..2,
    ) {
        let shaped = format!("{h}.{p}.{s}");
        prop_assert!(FIXTURE.verifier.verify_uncached_sync(&shaped, at()).is_err());
        let token = &FIXTURE.tokens[which];
        let signed = &token[..token.rfind('.').unwrap()];
        let resigned = format!("{signed}.{s}");
        prop_assert!(FIXTURE.verifier.verify_uncached_sync(&resigned, at()).is_err());
    }
}
