//! JSON-RPC parsing on the request path: mcproof's strict parser against a plain
//! `serde_json::Value` parse of the same bytes (the full suite arrives with the benchmarks issue).

use criterion::{Criterion, criterion_group, criterion_main};
use mcproof_server::jsonrpc::{ParseLimits, parse};
use std::hint::black_box;

fn jsonrpc_parse(c: &mut Criterion) {
    let body = mcproof_benches::TOOLS_CALL.as_bytes();
    let limits = ParseLimits::default();
    let mut group = c.benchmark_group("request_path/jsonrpc_parse");
    group.bench_function("mcproof_strict/tools_call", |b| b.iter(|| parse(black_box(body), &limits, false)));
    group.bench_function("serde_json_value/tools_call", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)))
    });
    group.finish();
}

criterion_group!(benches, jsonrpc_parse);
criterion_main!(benches);
