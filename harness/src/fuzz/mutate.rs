//! Values and structural mutations: random JSON from a small dictionary of hostile strings and
//! keys, and the edits that break a message's shape (wrong types, missing and extra members,
//! huge strings, deep nesting, odd ids, batches, broken JSON text).

use serde_json::{Map, Number, Value, json};

use super::rng::Rng;

/// Object keys worth trying: common argument names and ones that trouble JavaScript servers.
pub const KEYS: &[&str] = &["x", "id", "name", "value", "data", "a", "__proto__", "constructor", "path", "_meta"];

/// Strings worth trying: traversal, injection and template markers, control and invisible
/// characters, numbers and keywords as strings. None names a host other than loopback or an
/// `.invalid` one, so a server that fetches what it is given stays on this machine.
pub const STRINGS: &[&str] = &[
    "",
    "a",
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "%s%s%s%n",
    "{{7*7}}",
    "${7*7}",
    "'; DROP TABLE t;--",
    "\" OR 1=1 --",
    "$(id)",
    "\u{0}",
    "\u{1b}[31m",
    "\u{202e}gnp.exe",
    "\u{feff}\u{200b}",
    "\u{1F600}",
    "\u{fffd}",
    "null",
    "true",
    "-1",
    "1e309",
    "NaN",
    "http://127.0.0.1:1/",
    "https://mcproof.invalid/",
    "file:///etc/passwd",
    "<script>alert(1)</script>",
    "\r\nX-Injected: 1",
];

/// Integers at the edges of common representations.
const INTS: &[i64] =
    &[0, 1, -1, 2, 255, 256, 65_535, 2_147_483_647, -2_147_483_648, 9_007_199_254_740_993, i64::MAX, i64::MIN];

/// Longest string the generators build (the body stays well under common 1 MiB limits).
pub const MAX_STRING: usize = 200 * 1024;

/// A random dictionary key.
pub fn key(rng: &mut Rng) -> String {
    rng.pick(KEYS).copied().unwrap_or("x").to_owned()
}

/// A random string: dictionary, random printable, or long.
pub fn string(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=5 => rng.pick(STRINGS).copied().unwrap_or("").to_owned(),
        6..=7 => (0..rng.range(1, 24)).map(|_| char::from(b'a' + rng.below(26) as u8)).collect(),
        8 => "A".repeat(rng.range(256, 8192) as usize),
        _ => "\u{00e9}\u{0301}\u{1F600}".repeat(rng.range(16, 512) as usize),
    }
}

/// A random number: edge integers, floats, huge values.
pub fn number(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0..=2 => json!(rng.pick(INTS).copied().unwrap_or(0)),
        3 => json!(u64::MAX),
        4 => Number::from_f64([0.5, -0.0, 1e300, -1e-300, 1.000_000_000_000_000_2][rng.below(5)])
            .map_or(Value::Null, Value::Number),
        _ => json!(rng.range(-1000, 1000)),
    }
}

/// A random JSON value at most a few containers deep, or a deliberately deep chain.
pub fn any_value(rng: &mut Rng, depth: usize) -> Value {
    let pick = if depth >= 5 { rng.below(10) } else { rng.below(16) };
    match pick {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2..=3 => number(rng),
        4..=8 => Value::String(string(rng)),
        9 => Value::String(String::new()),
        10..=11 => Value::Array((0..rng.below(4)).map(|_| any_value(rng, depth + 1)).collect()),
        12..=13 => {
            let mut m = Map::new();
            for _ in 0..rng.below(4) {
                m.insert(key(rng), any_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => {
            let levels = rng.range(3, 12) as usize;
            nested(rng, levels)
        }
    }
}

/// A chain of `levels` containers (objects with dictionary keys, or arrays) around a scalar.
pub fn nested(rng: &mut Rng, levels: usize) -> Value {
    let mut v = match rng.below(3) {
        0 => Value::Null,
        1 => number(rng),
        _ => Value::String(rng.pick(STRINGS).copied().unwrap_or("").to_owned()),
    };
    for _ in 0..levels {
        v = if rng.chance(60) {
            let mut m = Map::new();
            m.insert(key(rng), v);
            Value::Object(m)
        } else {
            Value::Array(vec![v])
        };
    }
    v
}

/// A value of another JSON type than `v`.
pub fn other_type(rng: &mut Rng, v: &Value) -> Value {
    loop {
        let candidate = match rng.below(6) {
            0 => Value::Null,
            1 => Value::Bool(true),
            2 => number(rng),
            3 => Value::String(string(rng)),
            4 => json!([]),
            _ => json!({}),
        };
        if std::mem::discriminant(&candidate) != std::mem::discriminant(v) {
            return candidate;
        }
    }
}

/// Odd request ids: null, fractional, negative, huge, strings with control characters, and
/// values that are not ids at all.
pub fn odd_id(rng: &mut Rng) -> Value {
    match rng.below(11) {
        0 => Value::Null,
        1 => json!(1.5),
        2 => json!(-1),
        3 => json!(i64::MIN),
        4 => json!(u64::MAX),
        5 => Number::from_f64(1e300).map_or(Value::Null, Value::Number),
        6 => json!("\u{0}\u{1}\n\u{1b}"),
        7 => json!(""),
        8 => json!({ "id": 1 }),
        9 => json!([1]),
        _ => json!(true),
    }
}

/// Paths (as index lists through objects and arrays) to every node, up to `limit` of them.
fn paths(v: &Value, limit: usize) -> Vec<Vec<PathStep>> {
    let mut out = vec![Vec::new()];
    let mut i = 0;
    while i < out.len() && out.len() < limit {
        let path = out[i].clone();
        if let Some(node) = get(v, &path) {
            match node {
                Value::Object(m) => {
                    for k in m.keys() {
                        let mut p = path.clone();
                        p.push(PathStep::Key(k.clone()));
                        out.push(p);
                    }
                }
                Value::Array(a) => {
                    for j in 0..a.len() {
                        let mut p = path.clone();
                        p.push(PathStep::Index(j));
                        out.push(p);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    out.truncate(limit);
    out
}

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

pub fn get<'a>(v: &'a Value, path: &[PathStep]) -> Option<&'a Value> {
    path.iter().try_fold(v, |node, step| match step {
        PathStep::Key(k) => node.get(k.as_str()),
        PathStep::Index(i) => node.get(*i),
    })
}

pub fn get_mut<'a>(v: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |node, step| match step {
        PathStep::Key(k) => node.get_mut(k.as_str()),
        PathStep::Index(i) => node.get_mut(*i),
    })
}

/// Applies one structural mutation to `message` in place.
pub fn mutate(rng: &mut Rng, message: &mut Value) {
    let all = paths(message, 256);
    let path = rng.pick(&all).cloned().unwrap_or_default();
    match rng.below(12) {
        // Wrong type somewhere.
        0 | 1 => {
            if let Some(node) = get_mut(message, &path) {
                *node = other_type(rng, node);
            }
        }
        // A member or item removed.
        2 => {
            if let Some((last, parent)) = path.split_last()
                && let Some(node) = get_mut(message, parent)
            {
                match (node, last) {
                    (Value::Object(m), PathStep::Key(k)) => {
                        m.remove(k);
                    }
                    (Value::Array(a), PathStep::Index(i)) if *i < a.len() => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        // An extra member.
        3 | 4 => {
            let objects: Vec<_> =
                all.iter().filter(|p| get(message, p).is_some_and(Value::is_object)).cloned().collect();
            if let Some(p) = rng.pick(&objects).cloned() {
                let (k, v) = (key(rng), any_value(rng, p.len()));
                if let Some(Value::Object(m)) = get_mut(message, &p) {
                    m.insert(k, v);
                }
            }
        }
        // A huge string.
        5 => {
            if let Some(node) = get_mut(message, &path) {
                let unit = if rng.chance(50) { "A" } else { "\u{1F600}\u{0}" };
                *node = Value::String(unit.repeat(rng.range(16 * 1024, (MAX_STRING / unit.len()) as i64) as usize));
            }
        }
        // Deep nesting (within the bounds servers commonly enforce, and just past them).
        6 => {
            if let Some(node) = get_mut(message, &path) {
                let levels = [3, 8, 31, 33, 64, 100][rng.below(6)];
                let mut v = node.take();
                for _ in 0..levels {
                    v = if rng.chance(50) { json!([v]) } else { json!({ key(rng): v }) };
                }
                *node = v;
            }
        }
        // An odd id.
        7 | 8 => {
            if let Some(m) = message.as_object_mut() {
                m.insert("id".into(), odd_id(rng));
            }
        }
        // The envelope: jsonrpc, method, params.
        9 => {
            if let Some(m) = message.as_object_mut() {
                match rng.below(5) {
                    0 => {
                        m.insert("jsonrpc".into(), json!(["1.0", "2.1", "", "2"][rng.below(4)]));
                    }
                    1 => {
                        m.insert("jsonrpc".into(), json!(2.0));
                    }
                    2 => {
                        let method = m.get("method").and_then(Value::as_str).unwrap_or("ping").to_owned();
                        let odd = match rng.below(4) {
                            0 => method.to_uppercase(),
                            1 => format!("{method} "),
                            2 => format!("{method}\u{0}"),
                            _ => format!("rpc.{method}"),
                        };
                        m.insert("method".into(), json!(odd));
                    }
                    3 => {
                        let params = m.get("params").cloned().unwrap_or(Value::Null);
                        m.insert("params".into(), json!([params]));
                    }
                    _ => {
                        m.insert("params".into(), other_type(rng, &json!({})));
                    }
                }
            }
        }
        // A member's value replaced by a random one.
        _ => {
            if let Some(node) = get_mut(message, &path) {
                *node = any_value(rng, path.len());
            }
        }
    }
}

/// Broken JSON text made from a well-formed message.
pub fn raw(rng: &mut Rng, message: &Value) -> String {
    let text = message.to_string();
    match rng.below(10) {
        0 => {
            let cut = rng.below(text.len().max(1));
            text.char_indices().take_while(|(i, _)| *i < cut).map(|(_, c)| c).collect()
        }
        1 => format!("{text}}}{{"),
        2 => format!("{text}\n{text}"),
        3 => {
            // Duplicate keys: which one wins is up to the parser.
            text.replacen("{\"", "{\"id\":\"dup\",\"", 1)
        }
        4 => format!("\u{feff}{text}"),
        5 => text.replacen('"', "\"\\ud800", 1),
        6 => ["", " ", "null", "0", "\"x\"", "[]", "{}", "[[]]"][rng.below(8)].to_owned(),
        7 => format!("{}{}", "[".repeat(rng.range(33, 5000) as usize), "]".repeat(rng.below(40))),
        8 => text.replace(':', ": ").replacen(',', ",,", 1),
        _ => text.replacen('1', "01", 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_within_their_bounds() {
        let base = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":[1,2]}}});
        for seed in 0..500 {
            let mut rng = Rng::new(seed);
            let mut m = base.clone();
            mutate(&mut rng, &mut m);
            mutate(&mut rng, &mut m);
            // Two huge strings at most, each under 2 * MAX_STRING once escaped: the body stays under 1 MiB.
            assert!(m.to_string().len() < 1024 * 1024, "seed {seed}: {} bytes", m.to_string().len());
            let _ = raw(&mut rng, &m);
            let v = any_value(&mut rng, 0);
            assert!(depth(&v) <= 16, "seed {seed}: {v}");
        }
    }

    fn depth(v: &Value) -> usize {
        match v {
            Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}
