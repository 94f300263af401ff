#![no_main]
//! The strict JSON-RPC parser against an independent model over serde_json's reading of the same bytes.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcproof_server::fuzzing::jsonrpc_differential(data));
