//! Credential verification: API keys against one raw SHA-256 of the key; JWT access tokens
//! (HS256, EdDSA, ES256, RS256) with mcproof's verifier against `jsonwebtoken` (aws-lc-rs
//! backend) on the very same tokens, with the raw primitive (aws-lc-rs HMAC-SHA256 or
//! signature verification over the same signing input, key already parsed) as the floor; and a
//! hit in mcproof's verified-token cache.
//!
//! mcproof has no RS256 (it trusts EdDSA, ES256 and configured HS256 secrets only): the RS256
//! group holds jsonwebtoken and the raw floor, for reference.
//!
//! Both verifiers do the full job: split and decode, header checks, claims parsing, issuer,
//! audience, `exp`/`nbf`/`iat` with a 30 s leeway. mcproof's "uncached" case is
//! `verify_uncached_sync`; `cache_hit` is `verify_sync` on a token verified before.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcproof_benches::{MEASUREMENT, SAMPLES, WARM_UP};
use mcproof_server::auth::api_keys::{ApiKeyStore, KeyTier};
use mcproof_server::auth::jwks::{KeySet, VerificationKey};
use mcproof_server::auth::jwt::{Alg, Claims, KeySource, SigningKey, TokenIssuer, TokenVerifier, TrustedIssuer};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

const ISS: &str = "https://auth.example.com";
const AUD: &str = "https://mcp.example.com/mcp";

fn fast<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.warm_up_time(WARM_UP).measurement_time(MEASUREMENT).sample_size(SAMPLES);
    group
}

/// What jsonwebtoken deserializes: the same claims mcproof reads.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // reason: fields are read by the deserializer; the bench only needs them parsed
struct JwtClaims {
    iss: String,
    sub: String,
    aud: String,
    scope: String,
    exp: u64,
    nbf: Option<u64>,
    iat: u64,
    jti: String,
    client_id: Option<String>,
}

fn claims(now: SystemTime) -> Claims {
    let now = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Claims {
        iss: ISS.into(),
        sub: "user-7f3a9c".into(),
        aud: vec![AUD.into()],
        scope: "mcp:read mcp:write".into(),
        exp: now + 3_600,
        nbf: Some(now),
        iat: now,
        jti: "q1w2e3r4t5y6u7i8o9p0aa".into(),
        client_id: Some("client-42".into()),
    }
}

/// A compact JWS with header `{"alg","kid","typ":"at+jwt"}` signed by `sign`.
fn compact(alg: &str, kid: &str, claims: &Claims, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let header = serde_json::json!({ "alg": alg, "kid": kid, "typ": "at+jwt" }).to_string();
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let mut out = URL_SAFE_NO_PAD.encode(header);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = sign(out.as_bytes());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(signature));
    out
}

/// `(signing input, signature)` of a compact JWS.
fn split(token: &str) -> (&[u8], Vec<u8>) {
    let dot = token.rfind('.').unwrap_or(0);
    (&token.as_bytes()[..dot], URL_SAFE_NO_PAD.decode(&token[dot + 1..]).unwrap_or_default())
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[ISS]);
    v.set_audience(&[AUD]);
    v.leeway = 30;
    v.validate_nbf = true;
    v
}

fn verifier(keys: KeySource) -> TokenVerifier {
    let trusted = TrustedIssuer { issuer: ISS.into(), audience: AUD.into(), keys };
    TokenVerifier::new(vec![trusted]).unwrap_or_else(|e| panic!("verifier: {e}"))
}

/// The three or four contenders of one algorithm, on one token.
fn jwt_group(
    c: &mut Criterion,
    name: &str,
    token: &str,
    ours: Option<&TokenVerifier>,
    theirs: (&DecodingKey, Validation),
    floor: &dyn Fn(&[u8], &[u8]) -> bool,
) {
    let now = SystemTime::now();
    if let Some(v) = ours {
        v.verify_uncached_sync(token, now).unwrap_or_else(|e| panic!("{name}: mcproof refuses the token: {e}"));
    }
    let (key, validation) = theirs;
    jsonwebtoken::decode::<JwtClaims>(token, key, &validation)
        .unwrap_or_else(|e| panic!("{name}: jsonwebtoken refuses the token: {e}"));
    let (input, signature) = split(token);
    assert!(floor(input, &signature), "{name}: raw verification fails");

    let mut group = fast(c, name);
    if let Some(v) = ours {
        group.bench_function("mcproof", |b| b.iter(|| black_box(v.verify_uncached_sync(black_box(token), now))));
    }
    group.bench_function("jsonwebtoken", |b| {
        b.iter(|| black_box(jsonwebtoken::decode::<JwtClaims>(black_box(token), key, &validation)))
    });
    group.bench_function("raw_floor", |b| b.iter(|| black_box(floor(black_box(input), &signature))));
    group.finish();
}

fn jwt(c: &mut Criterion) {
    let now = SystemTime::now();
    let claims = claims(now);

    // HS256: a configured secret (mcproof never signs with one; the token is built here).
    let secret = b"0123456789abcdef0123456789abcdef-bench-secret";
    let hkey = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let hs = compact("HS256", "hs-1", &claims, |m| hmac::sign(&hkey, m).as_ref().to_vec());
    let ours = verifier(KeySource::Keys(
        KeySet::new(vec![VerificationKey::hmac("hs-1", secret).unwrap_or_else(|e| panic!("hmac key: {e}"))])
            .unwrap_or_else(|e| panic!("key set: {e}")),
    ));
    let floor = |m: &[u8], s: &[u8]| hmac::verify(&hkey, m, s).is_ok();
    jwt_group(
        c,
        "token_verify/jwt_hs256",
        &hs,
        Some(&ours),
        (&DecodingKey::from_secret(secret), validation(Algorithm::HS256)),
        &floor,
    );

    // EdDSA and ES256: tokens minted by mcproof's own issuer.
    for (alg, name, jalg) in [
        (Alg::EdDSA, "token_verify/jwt_eddsa", Algorithm::EdDSA),
        (Alg::ES256, "token_verify/jwt_es256", Algorithm::ES256),
    ] {
        let key = SigningKey::generate(alg).unwrap_or_else(|e| panic!("key: {e}"));
        let issuer = TokenIssuer::new(ISS, AUD, key, Duration::from_secs(3_600));
        let token = issuer.issue_with(&claims).unwrap_or_else(|e| panic!("sign: {e}"));
        let ours = verifier(issuer.trusted().keys);
        let jwk = issuer.key.public_jwk();
        let dkey = match alg {
            Alg::EdDSA => DecodingKey::from_ed_components(&jwk.x),
            _ => DecodingKey::from_ec_components(&jwk.x, jwk.y.as_deref().unwrap_or_default()),
        }
        .unwrap_or_else(|e| panic!("decoding key: {e}"));
        let raw = match alg {
            Alg::EdDSA => ParsedPublicKey::new(&ED25519, issuer.key.public_key()),
            _ => ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, issuer.key.public_key()),
        }
        .unwrap_or_else(|e| panic!("raw key: {e}"));
        let floor = |m: &[u8], s: &[u8]| raw.verify_sig(m, s).is_ok();
        jwt_group(c, name, &token, Some(&ours), (&dkey, validation(jalg)), &floor);

        if alg == Alg::EdDSA {
            // A verified-token cache hit: the same token again.
            ours.verify_sync(&token, now).unwrap_or_else(|e| panic!("cache fill: {e}"));
            let mut group = fast(c, "token_verify/cache_hit");
            group.bench_function("mcproof_eddsa", |b| b.iter(|| black_box(ours.verify_sync(black_box(&token), now))));
            group.finish();
            let stats = ours.cache_stats();
            assert!(stats.hits > 0, "the cache never hit");
        }
    }

    // RS256: jsonwebtoken and the raw floor only (mcproof does not accept RS256).
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap_or_else(|e| panic!("rsa: {e}"));
    let rng = SystemRandom::new();
    let rs = compact("RS256", "rs-1", &claims, |m| {
        let mut sig = vec![0u8; rsa.public_modulus_len()];
        rsa.sign(&RSA_PKCS1_SHA256, &rng, m, &mut sig).unwrap_or_else(|e| panic!("rsa sign: {e}"));
        sig
    });
    let public_der = rsa.public_key().as_ref().to_vec();
    let raw = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public_der).unwrap_or_else(|e| panic!("rsa: {e}"));
    let floor = |m: &[u8], s: &[u8]| raw.verify_sig(m, s).is_ok();
    jwt_group(
        c,
        "token_verify/jwt_rs256",
        &rs,
        None,
        (&DecodingKey::from_rsa_der(&public_der), validation(Algorithm::RS256)),
        &floor,
    );
}

fn api_key(c: &mut Criterion) {
    let now = SystemTime::now();
    let mut store = ApiKeyStore::in_memory();
    // A store of 1,000 keys: lookups go by id, so the size should not matter.
    for i in 0..999 {
        let _ = store.create(&format!("user-{i}"), &["mcp:read"], KeyTier::Authenticated, now);
    }
    let (key, _) = store
        .create("bench-user", &["mcp:read", "mcp:write"], KeyTier::Authenticated, now)
        .unwrap_or_else(|e| panic!("create: {e}"));
    let presented = key.expose_secret().to_owned();
    store.verify(&presented, now).unwrap_or_else(|e| panic!("verify: {e}"));
    let mut group = fast(c, "token_verify/api_key");
    group.bench_function("mcproof", |b| b.iter(|| black_box(store.verify(black_box(&presented), now))));
    group.bench_function("raw_sha256", |b| {
        b.iter(|| black_box(<[u8; 32]>::from(Sha256::digest(black_box(presented.as_bytes())))))
    });
    group.finish();
}

criterion_group!(benches, api_key, jwt);
criterion_main!(benches);
