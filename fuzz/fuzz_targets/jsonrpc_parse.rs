#![no_main]
//! Strict JSON-RPC parsing: never panics, and every accepted message re-encodes to bytes that
//! parse back to the same message.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcproof_server::jsonrpc::fuzz_round_trip(data));
