#![no_main]
//! OAuth authorize/token parameter parsing, scopes, redirect URIs and PKCE S256.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcproof_server::fuzzing::oauth_params(data));
