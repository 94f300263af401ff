#![no_main]
//! Token verification: arbitrary strings and mutations of a valid token never verify.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcproof_server::fuzzing::token_verify(data));
