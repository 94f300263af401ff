//! The per-request work that is not authentication: JSON-RPC parsing (mcproof's strict parser
//! against a plain `serde_json::Value` parse of the same bytes), schema validation of a typical
//! tool input (mcproof's `InputValidator`, which collects messages, against `jsonschema`'s
//! `is_valid` on the same schema), and the output sanitizer's throughput in bytes per second
//! (against a plain copy of the text, the floor of any transformation that returns a new
//! string).

use std::hint::black_box;

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime};
use mcproof_benches::{
    INITIALIZE, MEASUREMENT, QUERY_ARGS, SAMPLES, TOOLS_CALL, TOOLS_LIST, WARM_UP, tool_output_text,
};
use mcproof_server::auth::Principal;
use mcproof_server::jsonrpc::{ParseLimits, parse};
use mcproof_server::sanitize::sanitize;
use mcproof_server::tools::{StandardDeps, standard_registry};
use serde_json::Value;

fn fast<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.warm_up_time(WARM_UP).measurement_time(MEASUREMENT).sample_size(SAMPLES);
    group
}

fn jsonrpc_parse(c: &mut Criterion) {
    let limits = ParseLimits::default();
    let mut group = fast(c, "request_path/jsonrpc_parse");
    for (label, body) in [("tools_call", TOOLS_CALL), ("initialize", INITIALIZE), ("tools_list", TOOLS_LIST)] {
        let body = body.as_bytes();
        assert!(parse(body, &limits, false).is_ok(), "{label} must parse");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("mcproof_strict/{label}"), |b| b.iter(|| parse(black_box(body), &limits, false)));
        group.bench_function(format!("serde_json_value/{label}"), |b| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(body)))
        });
    }
    group.finish();
}

fn schema_validation(c: &mut Criterion) {
    let sandbox = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let registry = standard_registry(&StandardDeps::new(sandbox.path())).unwrap_or_else(|e| panic!("registry: {e}"));
    let principal = Principal::admin("bench");
    let (tool, validator) = registry.find("query_products", &principal).unwrap_or_else(|| panic!("query_products"));
    let schema = tool.spec().input_schema.clone();
    let instance: Value = serde_json::from_str(QUERY_ARGS).unwrap_or_else(|e| panic!("args: {e}"));
    assert!(validator.validate(&instance).is_ok(), "the typical input must be valid");
    let baseline = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema: {e}"));
    assert!(baseline.is_valid(&instance));
    let invalid: Value = serde_json::json!({ "category": "Tools!", "limit": 500, "extra": true });

    let mut group = fast(c, "request_path/schema_validate");
    group.bench_function("mcproof/query_products_valid", |b| b.iter(|| validator.validate(black_box(&instance))));
    group.bench_function("jsonschema_is_valid/query_products_valid", |b| {
        b.iter(|| baseline.is_valid(black_box(&instance)))
    });
    group.bench_function("mcproof/query_products_invalid", |b| b.iter(|| validator.validate(black_box(&invalid))));
    group.finish();
}

fn sanitizer(c: &mut Criterion) {
    let mut group = fast(c, "request_path/sanitize");
    for (label, len) in [("4KiB", 4 * 1024), ("32KiB", 32 * 1024)] {
        let text = tool_output_text(len);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("mcproof/{label}"), |b| b.iter(|| sanitize(black_box(&text))));
        group.bench_function(format!("copy_floor/{label}"), |b| b.iter(|| black_box(&text).to_owned()));
    }
    group.finish();
}

criterion_group!(benches, jsonrpc_parse, schema_validation, sanitizer);
criterion_main!(benches);
