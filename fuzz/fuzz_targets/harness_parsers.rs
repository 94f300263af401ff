#![no_main]
//! The harness's own response parsers (SSE framing, bounded JSON, WWW-Authenticate) against hostile servers.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcproof::client::fuzz_invariants::harness_parsers(data));
