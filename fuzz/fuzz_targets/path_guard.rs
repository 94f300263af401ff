#![no_main]
//! The path guard over a real tree with escaping symlinks: nothing outside the root is ever resolved.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcproof_server::fuzzing::path_guard(data));
