//! Replays the committed fuzz seeds through the same functions the fuzz targets call, so that
//! stable `cargo test` covers them without nightly.

use std::path::PathBuf;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus").join(target);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path.display().to_string(), bytes));
        }
    }
    out.sort();
    out
}

#[test]
fn jsonrpc_parse_seeds_hold_the_round_trip_invariant() {
    let seeds = seeds("jsonrpc_parse");
    assert!(seeds.len() >= 5, "expected the committed seeds, found {}", seeds.len());
    for (name, bytes) in seeds {
        let outcome = std::panic::catch_unwind(|| mcproof_server::jsonrpc::fuzz_round_trip(&bytes));
        assert!(outcome.is_ok(), "seed {name} broke the invariant");
    }
}
