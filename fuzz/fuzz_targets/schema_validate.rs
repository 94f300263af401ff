#![no_main]
//! Tool-input schema validation (schema, newline, instance): no panic, deterministic, bounded, offline.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcproof_server::fuzzing::schema_validate(data));
