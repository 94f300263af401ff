//! The token verifier against Wycheproof (C2SP), read in place from `shared/external/wycheproof/`.
//!
//! Every case whose key type or header algorithm the verifier supports (Ed25519, P-256, and HMAC
//! secrets configured explicitly) runs; RSA, P-521, HS384/HS512 cases are counted as skipped by
//! algorithm. Results are collected and asserted once, so a failure lists every disagreement. The
//! skip list below names upstream vectors whose label is wrong; it is strict both ways: a listed
//! case that stops disagreeing with its label fails the run, as does an unlisted disagreement.
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

use std::collections::BTreeMap;
use std::path::PathBuf;

use mcproof_server::auth::jwks::{Jwks, KeySet};
use mcproof_server::auth::jwt::{Alg, verify_signature};
use serde_json::{Value, json};

fn wycheproof(name: &str) -> Value {
    let path: PathBuf =
        [env!("CARGO_MANIFEST_DIR"), "..", "..", "shared", "external", "wycheproof", name].iter().collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Vectors whose expected result contradicts their own description; each disagrees with our
/// (strict, RFC 7515) verifier for the stated reason.
const JWS_SKIPS: &[(u64, &str)] = &[
    (367, "labelled invalidBase64Padding but byte-identical to tcId 357 (valid): the padding was lost upstream"),
    (
        370,
        "labelled invalidBase64PaddingInPayload but byte-identical to tcId 357 (valid): the padding was lost upstream",
    ),
    (372, "labelled valid with a '?' inside the header: strict base64url (RFC 7515 §2) refuses it"),
    (373, "labelled valid with a '?' inside the payload: strict base64url (RFC 7515 §2) refuses it"),
];

/// Whether a JWK (as Wycheproof writes it) is of a type the verifier supports.
fn key_supported(k: &Value) -> bool {
    match (k["kty"].as_str(), k["crv"].as_str()) {
        (Some("EC"), Some("P-256")) | (Some("OKP"), Some("Ed25519")) => true,
        (Some("oct"), _) => matches!(k.get("alg").and_then(Value::as_str), None | Some("HS256")),
        _ => false,
    }
}

fn keys_of(material: &Value) -> Vec<Value> {
    match material.get("keys").and_then(Value::as_array) {
        Some(keys) => keys.clone(),
        None => vec![material.clone()],
    }
}

/// The verifier's keys for a group: a public JWK set, or (when the group holds `oct` keys) a set
/// of explicitly configured HMAC secrets. `Err` means the verifier refuses the key material.
fn group_keys(group: &Value) -> (bool, Result<KeySet, String>) {
    let material = group.get("public").or_else(|| group.get("private")).cloned().unwrap_or(Value::Null);
    let keys = keys_of(&material);
    let supported = keys.iter().any(key_supported);
    let set = if keys.iter().any(|k| k["kty"] == "oct") {
        KeySet::from_secret_jwks(&json!({ "keys": keys })).map_err(|e| e.to_string())
    } else {
        Jwks::from_value(&json!({ "keys": keys })).and_then(|jwks| KeySet::from_jwks(&jwks)).map_err(|e| e.to_string())
    };
    (supported, set)
}

/// The `alg` of a compact JWS header, if it decodes.
fn header_alg(jws: &str) -> Option<String> {
    use base64::Engine;
    let first = jws.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(first).ok()?;
    let header: Value = serde_json::from_slice(&bytes).ok()?;
    header["alg"].as_str().map(str::to_owned)
}

#[derive(Default, Debug)]
struct Tally {
    total: usize,
    applicable: usize,
    passed: usize,
    skipped_by_alg: usize,
    skipped_by_list: usize,
    failures: Vec<String>,
}

fn run_jws_file(name: &str, skips: &[(u64, &str)]) -> Tally {
    let doc = wycheproof(name);
    let skips: BTreeMap<u64, &str> = skips.iter().copied().collect();
    let mut seen_skips = Vec::new();
    let mut tally = Tally::default();
    for group in doc["testGroups"].as_array().unwrap() {
        let (key_ok, keys) = group_keys(group);
        for case in group["tests"].as_array().unwrap() {
            tally.total += 1;
            let id = case["tcId"].as_u64().unwrap();
            let jws = case["jws"].as_str().unwrap();
            let expected = case["result"].as_str().unwrap();
            let alg_ok = header_alg(jws).is_some_and(|a| Alg::from_name(&a).is_some());
            if !key_ok && !alg_ok {
                tally.skipped_by_alg += 1;
                assert!(!skips.contains_key(&id), "tcId {id} is skip-listed but not applicable");
                continue;
            }
            tally.applicable += 1;
            let outcome = match &keys {
                Ok(set) => verify_signature(set, jws).map(|_| ()).map_err(|e| format!("{e:?}")),
                Err(refused) => Err(format!("key refused: {refused}")),
            };
            let agrees = match expected {
                "valid" => outcome.is_ok(),
                "invalid" => outcome.is_err(),
                _ => true, // "acceptable": either outcome
            };
            let comment = case["comment"].as_str().unwrap_or("");
            if let Some(reason) = skips.get(&id) {
                seen_skips.push(id);
                if agrees {
                    tally.failures.push(format!("tcId {id} ({comment}) is skip-listed ({reason}) but now agrees"));
                } else {
                    tally.skipped_by_list += 1;
                }
                continue;
            }
            if agrees {
                tally.passed += 1;
            } else {
                tally.failures.push(format!("tcId {id} ({comment}): expected {expected}, got {outcome:?}"));
            }
        }
    }
    for id in skips.keys() {
        if !seen_skips.contains(id) {
            tally.failures.push(format!("skip-listed tcId {id} does not exist or is not applicable"));
        }
    }
    assert_eq!(tally.total as u64, doc["numberOfTests"].as_u64().unwrap(), "{name}: numberOfTests");
    tally
}

fn report(name: &str, t: &Tally) {
    println!(
        "{name}: {} cases, {} applicable, {} passed, {} skipped by algorithm, {} skipped by list",
        t.total, t.applicable, t.passed, t.skipped_by_alg, t.skipped_by_list
    );
}

#[test]
fn json_web_signature_vectors() {
    let t = run_jws_file("json_web_signature_test.json", JWS_SKIPS);
    report("json_web_signature_test.json", &t);
    assert!(t.failures.is_empty(), "{} disagreements:\n{}", t.failures.len(), t.failures.join("\n"));
    assert_eq!(t.passed + t.skipped_by_list, t.applicable);
    // Guard against the runner silently applying to nothing (e.g. the file changing shape).
    assert!(t.applicable >= 80, "only {} applicable cases", t.applicable);
}

#[test]
fn json_web_key_vectors() {
    let t = run_jws_file("json_web_key_test.json", &[]);
    report("json_web_key_test.json", &t);
    assert!(t.failures.is_empty(), "{} disagreements:\n{}", t.failures.len(), t.failures.join("\n"));
    assert!(t.applicable >= 15, "only {} applicable cases", t.applicable);
}

/// The JWS file has no EdDSA vectors, so the Ed25519 primitive behind `EdDSA` is checked with
/// Wycheproof's Ed25519 vectors, each group's key loaded through our JWK parser.
#[test]
fn ed25519_vectors_through_jwk_keys() {
    let doc = wycheproof("ed25519_test.json");
    let (mut total, mut passed, mut failures) = (0usize, 0usize, Vec::new());
    for group in doc["testGroups"].as_array().unwrap() {
        let jwk = &group["publicKeyJwk"];
        let keys = Jwks::from_value(&json!({ "keys": [jwk] })).and_then(|j| KeySet::from_jwks(&j));
        for case in group["tests"].as_array().unwrap() {
            total += 1;
            let id = case["tcId"].as_u64().unwrap();
            let msg = hex::decode(case["msg"].as_str().unwrap()).unwrap();
            let sig = hex::decode(case["sig"].as_str().unwrap()).unwrap();
            let ok = match &keys {
                Ok(set) => set.get(jwk["kid"].as_str().unwrap()).is_some_and(|k| k.verify_raw(&msg, &sig)),
                Err(_) => false,
            };
            let agrees = match case["result"].as_str().unwrap() {
                "valid" => ok,
                "invalid" => !ok,
                _ => true,
            };
            if agrees {
                passed += 1;
            } else {
                failures.push(format!("tcId {id} ({}): expected {}", case["comment"], case["result"]));
            }
        }
    }
    println!("ed25519_test.json: {total} cases, {passed} passed");
    assert_eq!(total as u64, doc["numberOfTests"].as_u64().unwrap());
    assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.join("\n"));
}
