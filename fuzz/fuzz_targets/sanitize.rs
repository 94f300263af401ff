#![no_main]
//! The output sanitizer: idempotent, free of control and invisible characters, bounded length.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcproof_server::fuzzing::sanitize(data));
