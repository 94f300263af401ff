#![no_main]
//! Strict JSON-RPC parsing and the stdio dispatcher: round trip, right error codes, one answer per request.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcproof_server::fuzzing::jsonrpc_parse(data));
