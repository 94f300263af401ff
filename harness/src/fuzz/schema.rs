//! Tool arguments from a tool's `inputSchema`: values that respect it (types, enums, bounds,
//! lengths, simple patterns, required members) and values that break exactly one constraint,
//! so that the server's validation and the code behind it are both exercised.
//!
//! Only the JSON Schema keywords that shape most tool schemas are understood; anything else
//! (`$ref`, `if`/`then`, `dependentSchemas`…) is ignored, which at worst yields an invalid value
//! where a valid one was meant — still a fine fuzz input.

use regex::Regex;
use serde_json::{Map, Number, Value, json};

use super::mutate::{any_value, key, other_type, string};
use super::rng::Rng;

/// Deepest schema nesting followed.
const MAX_DEPTH: usize = 8;

/// Arguments that satisfy `schema`, as far as this generator understands it.
pub fn valid(rng: &mut Rng, schema: &Value) -> Value {
    gen_valid(rng, schema, 0)
}

/// Arguments that break one constraint of `schema` somewhere (at the root or in a member).
pub fn broken(rng: &mut Rng, schema: &Value) -> Value {
    gen_broken(rng, schema, 0)
}

fn types_of(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => {
            let inferred = if schema.get("properties").is_some() || schema.get("required").is_some() {
                "object"
            } else if schema.get("items").is_some() || schema.get("prefixItems").is_some() {
                "array"
            } else if schema.get("minLength").is_some()
                || schema.get("maxLength").is_some()
                || schema.get("pattern").is_some()
            {
                "string"
            } else if schema.get("minimum").is_some() || schema.get("maximum").is_some() {
                "number"
            } else {
                return Vec::new();
            };
            vec![inferred.to_owned()]
        }
    }
}

fn num(schema: &Value, name: &str) -> Option<f64> {
    schema.get(name).and_then(Value::as_f64).filter(|f| f.is_finite())
}

fn count(schema: &Value, name: &str) -> Option<usize> {
    schema.get(name).and_then(Value::as_u64).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

fn gen_valid(rng: &mut Rng, schema: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match schema {
        Value::Bool(true) => return any_value(rng, depth),
        Value::Bool(false) | Value::Null => return Value::Null,
        _ => {}
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(values)) = schema.get("enum")
        && let Some(v) = rng.pick(values)
    {
        return v.clone();
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = schema.get(combinator)
            && let Some(branch) = rng.pick(branches)
        {
            return gen_valid(rng, branch, depth + 1);
        }
    }
    let types = types_of(schema);
    let Some(ty) = rng.pick(&types).cloned() else { return any_value(rng, depth) };
    match ty.as_str() {
        "string" => valid_string(rng, schema),
        "integer" => {
            let lo = num(schema, "minimum")
                .or_else(|| num(schema, "exclusiveMinimum").map(|m| m.floor() + 1.0))
                .unwrap_or(-1000.0);
            let hi = num(schema, "maximum")
                .or_else(|| num(schema, "exclusiveMaximum").map(|m| m.ceil() - 1.0))
                .unwrap_or(lo.max(0.0) + 1000.0);
            let (lo, hi) = (lo.max(-9e15) as i64, hi.min(9e15) as i64);
            let v = match rng.below(4) {
                0 => lo,
                1 => hi,
                _ => rng.range(lo, hi),
            };
            json!(v)
        }
        "number" => {
            let lo = num(schema, "minimum").or_else(|| num(schema, "exclusiveMinimum")).unwrap_or(-1000.0);
            let hi = num(schema, "maximum").or_else(|| num(schema, "exclusiveMaximum")).unwrap_or(lo + 1000.0);
            let t = (rng.below(1001) as f64) / 1000.0;
            let v = if schema.get("exclusiveMinimum").is_some() || schema.get("exclusiveMaximum").is_some() {
                lo + (hi - lo) * (0.25 + t / 2.0)
            } else {
                lo + (hi - lo) * t
            };
            Number::from_f64(v).map_or(json!(0), Value::Number)
        }
        "boolean" => Value::Bool(rng.chance(50)),
        "null" => Value::Null,
        "array" => {
            let min = count(schema, "minItems").unwrap_or(0).min(16);
            let max = count(schema, "maxItems").unwrap_or(min + 3).clamp(min, min + 3);
            let n = rng.range(min as i64, max as i64) as usize;
            let items = schema.get("items").cloned().unwrap_or(Value::Bool(true));
            Value::Array((0..n).map(|_| gen_valid(rng, &items, depth + 1)).collect())
        }
        "object" => valid_object(rng, schema, depth),
        _ => any_value(rng, depth),
    }
}

fn valid_object(rng: &mut Rng, schema: &Value, depth: usize) -> Value {
    let mut out = Map::new();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (name, sub) in props {
            if required.contains(&name.as_str()) || rng.chance(50) {
                out.insert(name.clone(), gen_valid(rng, sub, depth + 1));
            }
        }
    }
    for name in &required {
        if !out.contains_key(*name) {
            out.insert((*name).to_owned(), any_value(rng, depth + 1));
        }
    }
    if let Some(extra @ Value::Object(_)) = schema.get("additionalProperties")
        && rng.chance(30)
    {
        out.insert(format!("extra{}", rng.below(10)), gen_valid(rng, extra, depth + 1));
    }
    Value::Object(out)
}

fn valid_string(rng: &mut Rng, schema: &Value) -> Value {
    let min = count(schema, "minLength").unwrap_or(0).min(4096);
    let max = count(schema, "maxLength").unwrap_or(min + 24).clamp(min, min + 64);
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        let v = match format {
            "uri" | "url" | "iri" => Some("https://mcproof.invalid/a"),
            "email" => Some("fuzz@mcproof.invalid"),
            "date-time" => Some("2025-01-01T00:00:00Z"),
            "date" => Some("2025-01-01"),
            "time" => Some("00:00:00Z"),
            "uuid" => Some("00000000-0000-4000-8000-000000000000"),
            "ipv4" => Some("127.0.0.1"),
            "hostname" => Some("localhost"),
            _ => None,
        };
        if let Some(v) = v {
            return json!(v);
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && let Ok(re) = regex::RegexBuilder::new(pattern).size_limit(1 << 20).build()
    {
        for _ in 0..40 {
            let candidate = pattern_candidate(rng, min, max);
            if re.is_match(&candidate) && (min..=max).contains(&candidate.chars().count()) {
                return json!(candidate);
            }
        }
    }
    let n = rng.range(min as i64, max as i64) as usize;
    let s: String = (0..n).map(|_| char::from(b'a' + rng.below(26) as u8)).collect();
    json!(s)
}

fn pattern_candidate(rng: &mut Rng, min: usize, max: usize) -> String {
    const ALPHABETS: &[&str] = &["abcxyz", "0123456789", "ABCXYZabc012_-", "abc.-_/", "0123456789abcdef"];
    let alphabet: Vec<char> = rng.pick(ALPHABETS).copied().unwrap_or("a").chars().collect();
    let n = rng.range(min.max(1) as i64, max.max(1) as i64) as usize;
    (0..n).map(|_| alphabet[rng.below(alphabet.len())]).collect()
}

fn matches(pattern: &str, s: &str) -> bool {
    Regex::new(pattern).is_ok_and(|re| re.is_match(s))
}

fn gen_broken(rng: &mut Rng, schema: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH || !schema.is_object() {
        let v = any_value(rng, depth);
        return other_type(rng, &v);
    }
    let types = types_of(schema);
    // Half the time, break a member of an object and keep the rest valid.
    if types.iter().any(|t| t == "object")
        && let Some(Value::Object(props)) = schema.get("properties")
        && !props.is_empty()
        && rng.chance(50)
    {
        let mut value = valid_object(rng, schema, depth);
        let names: Vec<&String> = props.keys().collect();
        if let (Some(name), Value::Object(m)) = (rng.pick(&names), &mut value) {
            let sub = props.get(name.as_str()).cloned().unwrap_or(Value::Bool(true));
            m.insert((*name).clone(), gen_broken(rng, &sub, depth + 1));
        }
        return value;
    }
    let base = gen_valid(rng, schema, depth);
    let mut violations: Vec<&str> = vec!["type", "type"];
    for (keyword, violation) in [
        ("enum", "enum"),
        ("const", "const"),
        ("minimum", "below-minimum"),
        ("exclusiveMinimum", "below-minimum"),
        ("maximum", "above-maximum"),
        ("exclusiveMaximum", "above-maximum"),
        ("minLength", "too-short"),
        ("maxLength", "too-long"),
        ("pattern", "pattern"),
        ("format", "format"),
        ("required", "missing-required"),
        ("minItems", "too-few"),
        ("maxItems", "too-many"),
        ("items", "bad-item"),
    ] {
        if schema.get(keyword).is_some() {
            violations.push(violation);
        }
    }
    if types.iter().any(|t| t == "object") {
        violations.extend(["extra-member", "extra-member"]);
    }
    if types.iter().any(|t| t == "string") {
        violations.push("huge-string");
    }
    if types.iter().any(|t| t == "integer") {
        violations.push("fraction");
    }
    match rng.pick(&violations).copied().unwrap_or("type") {
        "enum" => json!(format!("not-{}", rng.below(1000))),
        "const" => other_type(rng, schema.get("const").unwrap_or(&Value::Null)),
        "below-minimum" => {
            let m = num(schema, "minimum").or_else(|| num(schema, "exclusiveMinimum")).unwrap_or(0.0);
            edge_number(rng, m, -1.0)
        }
        "above-maximum" => {
            let m = num(schema, "maximum").or_else(|| num(schema, "exclusiveMaximum")).unwrap_or(0.0);
            edge_number(rng, m, 1.0)
        }
        "too-short" => {
            let n = count(schema, "minLength").unwrap_or(1).saturating_sub(1).min(4096);
            json!("b".repeat(n))
        }
        "too-long" => {
            let n = count(schema, "maxLength").unwrap_or(0).saturating_add(1).min(super::mutate::MAX_STRING);
            json!("c".repeat(if rng.chance(50) { n } else { (n * 10).min(super::mutate::MAX_STRING) }))
        }
        "pattern" => {
            let pattern = schema.get("pattern").and_then(Value::as_str).unwrap_or("");
            let s = (0..8).map(|_| string(rng)).find(|s| !matches(pattern, s)).unwrap_or_else(|| "\u{0}".into());
            json!(s)
        }
        "format" => json!(["not a uri", "\u{0}", "2025-13-45T99:99:99Z", "::::", "javascript:alert(1)"][rng.below(5)]),
        "missing-required" => {
            let mut v = base;
            let required: Vec<String> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            if let (Some(name), Value::Object(m)) = (rng.pick(&required), &mut v) {
                m.remove(name);
            }
            v
        }
        "too-few" => {
            let n = count(schema, "minItems").unwrap_or(1).saturating_sub(1).min(16);
            Value::Array(vec![Value::Null; n])
        }
        "too-many" => {
            let n = count(schema, "maxItems").unwrap_or(0).saturating_add(1).min(10_000);
            Value::Array(vec![json!(0); n])
        }
        "bad-item" => {
            let item = schema.get("items").cloned().unwrap_or(Value::Bool(true));
            json!([gen_broken(rng, &item, depth + 1)])
        }
        "extra-member" => {
            let mut v = base;
            if !v.is_object() {
                v = json!({});
            }
            if let Value::Object(m) = &mut v {
                for _ in 0..rng.range(1, 3) {
                    m.insert(key(rng), any_value(rng, depth + 1));
                }
            }
            v
        }
        "huge-string" => json!("D".repeat(rng.range(64 * 1024, super::mutate::MAX_STRING as i64) as usize)),
        "fraction" => json!(0.5),
        _ => other_type(rng, &base),
    }
}

/// A number just past `bound` in `direction` (or far past it, or at an extreme).
fn edge_number(rng: &mut Rng, bound: f64, direction: f64) -> Value {
    let v = match rng.below(4) {
        0 => bound + direction,
        1 => bound + direction * 1e-9,
        2 => bound + direction * 1e15,
        _ => direction * f64::MAX,
    };
    if v.fract() == 0.0 && v.abs() < 9e15 {
        json!(v as i64)
    } else {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": { "type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[a-z0-9_]+$" },
                "count": { "type": "integer", "minimum": 1, "maximum": 10 },
                "mode": { "enum": ["fast", "slow"] },
                "tags": { "type": "array", "items": { "type": "string" }, "maxItems": 3 }
            },
            "required": ["path"],
            "additionalProperties": false
        })
    }

    #[test]
    fn valid_arguments_satisfy_the_schema_and_broken_ones_do_not() {
        let compiled = jsonschema::validator_for(&schema()).expect("schema compiles");
        let (mut ok, mut bad) = (0, 0);
        for seed in 0..300 {
            let mut rng = Rng::new(seed);
            let v = valid(&mut rng, &schema());
            assert!(compiled.is_valid(&v), "seed {seed}: {v}");
            ok += 1;
            let b = broken(&mut rng, &schema());
            if !compiled.is_valid(&b) {
                bad += 1;
            }
        }
        assert_eq!(ok, 300);
        // A broken value may land on an optional member left out; nearly all must be invalid.
        assert!(bad >= 270, "only {bad} of 300 broken values were invalid");
    }
}
