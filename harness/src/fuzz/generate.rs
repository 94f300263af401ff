//! Case generation: messages from the MCP schema (every client method and notification with
//! its params shape), mutated recorded traffic, tool arguments from each tool's `inputSchema`,
//! and stateful sequences (sessions opened, used, deleted and reused; calls without a session;
//! two sessions interleaved). Case N depends only on the seed, N and the inventory.

use serde_json::{Value, json};

use super::exec::Inventory;
use super::mutate::{self, any_value, key, odd_id, string};
use super::rng::Rng;
use super::{Body, Step, schema};
use crate::KNOWN_REVISIONS;

/// Generates the cases of a run.
#[derive(Debug)]
pub struct Generator {
    seed: u64,
    index: u64,
    inv: Inventory,
    stdio: bool,
}

const LOG_LEVELS: &[&str] = &["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

impl Generator {
    pub fn new(seed: u64, inventory: &Inventory, stdio: bool) -> Self {
        Self { seed, index: 0, inv: inventory.clone(), stdio }
    }

    /// The next case and its index.
    pub fn next_case(&mut self) -> (u64, Vec<Step>) {
        let index = self.index;
        self.index += 1;
        (index, self.case(index))
    }

    /// Case `index` of this seed.
    pub fn case(&self, index: u64) -> Vec<Step> {
        let mut rng = Rng::derive(self.seed, index);
        let mut ids = 1u64;
        let mut steps = Vec::new();
        let n = rng.range(1, 8) as usize;
        if self.stdio {
            for _ in 0..n {
                steps.push(Step::Send { slot: None, body: self.message(&mut rng, &mut ids) });
            }
            return steps;
        }
        match rng.below(100) {
            // One session, several messages.
            0..=69 => {
                steps.push(Step::Init { slot: 0 });
                for _ in 0..n {
                    steps.push(Step::Send { slot: Some(0), body: self.message(&mut rng, &mut ids) });
                }
            }
            // No initialize at all.
            70..=77 => {
                for _ in 0..n.min(3) {
                    steps.push(Step::Send { slot: None, body: self.message(&mut rng, &mut ids) });
                }
            }
            // Initialize, calls, DELETE, then the old session id again.
            78..=87 => {
                steps.push(Step::Init { slot: 0 });
                for _ in 0..rng.range(0, 2) {
                    steps.push(Step::Send { slot: Some(0), body: self.message(&mut rng, &mut ids) });
                }
                steps.push(Step::Delete { slot: 0 });
                for _ in 0..rng.range(1, 3) {
                    steps.push(Step::Send { slot: Some(0), body: self.message(&mut rng, &mut ids) });
                }
                if rng.chance(30) {
                    steps.push(Step::Delete { slot: 0 });
                }
            }
            // Two sessions interleaved.
            88..=95 => {
                steps.push(Step::Init { slot: 0 });
                steps.push(Step::Init { slot: 1 });
                for _ in 0..n {
                    let slot = rng.below(2) as u8;
                    steps.push(Step::Send { slot: Some(slot), body: self.message(&mut rng, &mut ids) });
                }
                if rng.chance(50) {
                    steps.push(Step::Delete { slot: rng.below(2) as u8 });
                    steps.push(Step::Send { slot: Some(rng.below(2) as u8), body: self.message(&mut rng, &mut ids) });
                }
            }
            // A slot never opened, a DELETE without a session.
            _ => {
                steps.push(Step::Delete { slot: 2 });
                steps.push(Step::Send { slot: Some(2), body: self.message(&mut rng, &mut ids) });
            }
        }
        steps
    }

    /// One message body.
    pub fn message(&self, rng: &mut Rng, ids: &mut u64) -> Body {
        let id = json!(*ids);
        *ids += 1;
        match rng.below(100) {
            0..=39 => {
                let mut m = self.tool_call(rng, id);
                if rng.chance(15) {
                    mutate::mutate(rng, &mut m);
                }
                Body::Json(m)
            }
            40..=64 => {
                let mut m = self.method_message(rng, id);
                if rng.chance(60) {
                    for _ in 0..rng.range(1, 3) {
                        mutate::mutate(rng, &mut m);
                    }
                }
                Body::Json(m)
            }
            65..=79 => Body::Json(self.recorded(rng, id)),
            80..=87 => Body::Json(self.notification(rng)),
            88..=93 => {
                let n = rng.below(5);
                let mut items: Vec<Value> = Vec::new();
                for i in 0..n {
                    let item_id = json!(format!("b{}-{i}", *ids));
                    items.push(if rng.chance(30) { self.notification(rng) } else { self.method_message(rng, item_id) });
                }
                if rng.chance(15) {
                    items = vec![Value::Array(items)];
                }
                Body::Json(Value::Array(items))
            }
            _ => {
                let m = self.method_message(rng, id);
                Body::Raw(mutate::raw(rng, &m))
            }
        }
    }

    /// A `tools/call` with arguments that respect the tool's schema, break it, or carry extra
    /// members.
    fn tool_call(&self, rng: &mut Rng, id: Value) -> Value {
        let tool = rng.pick(&self.inv.tools).cloned().unwrap_or_else(|| json!({ "name": string(rng) }));
        let name = match tool.get("name").cloned() {
            Some(n) if !rng.chance(3) => n,
            _ => json!(string(rng)),
        };
        let input = tool.get("inputSchema").cloned().unwrap_or_else(|| json!({ "type": "object" }));
        let arguments = match rng.below(10) {
            0..=3 => schema::valid(rng, &input),
            4..=7 => schema::broken(rng, &input),
            _ => {
                let mut v = schema::valid(rng, &input);
                if !v.is_object() {
                    v = json!({});
                }
                if let Value::Object(m) = &mut v {
                    for _ in 0..rng.range(1, 3) {
                        m.insert(key(rng), any_value(rng, 1));
                    }
                }
                v
            }
        };
        let mut params = json!({ "name": name, "arguments": arguments });
        if rng.chance(10) {
            params["_meta"] = json!({ "progressToken": if rng.chance(50) { json!("p") } else { any_value(rng, 2) } });
        }
        json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params })
    }

    fn cursor(rng: &mut Rng) -> Value {
        match rng.below(4) {
            0 => json!(string(rng)),
            1 => json!("../../etc"),
            2 => json!("x".repeat(10_000)),
            _ => any_value(rng, 2),
        }
    }

    fn uri(&self, rng: &mut Rng) -> Value {
        match rng.below(4) {
            0 | 1 if !self.inv.resources.is_empty() => {
                json!(rng.pick(&self.inv.resources).cloned().unwrap_or_default())
            }
            2 if !self.inv.templates.is_empty() => {
                let t = rng.pick(&self.inv.templates).cloned().unwrap_or_default();
                let filler = string(rng);
                let mut out = String::new();
                let mut in_var = false;
                for c in t.chars() {
                    match c {
                        '{' => in_var = true,
                        '}' => {
                            in_var = false;
                            out.push_str(&filler);
                        }
                        _ if !in_var => out.push(c),
                        _ => {}
                    }
                }
                json!(out)
            }
            _ => json!(
                ["file:///etc/passwd", "file://../../x", "", "x:", "test://static/resource/99999999"][rng.below(5)]
            ),
        }
    }

    fn prompt(&self, rng: &mut Rng) -> (Value, Value) {
        let p = rng.pick(&self.inv.prompts).cloned().unwrap_or_else(|| json!({ "name": string(rng) }));
        let mut args = serde_json::Map::new();
        if let Some(list) = p.get("arguments").and_then(Value::as_array) {
            for a in list {
                if let Some(n) = a.get("name").and_then(Value::as_str)
                    && rng.chance(70)
                {
                    args.insert(n.to_owned(), if rng.chance(80) { json!(string(rng)) } else { any_value(rng, 1) });
                }
            }
        }
        (p.get("name").cloned().unwrap_or(Value::Null), Value::Object(args))
    }

    /// A request of a method from the MCP schema with a params shape that fits it.
    fn method_message(&self, rng: &mut Rng, id: Value) -> Value {
        let (method, params) = match rng.below(16) {
            0 => {
                let version = match rng.below(4) {
                    0 => json!(string(rng)),
                    _ => json!(rng.pick(&KNOWN_REVISIONS).copied().unwrap_or("2025-11-25")),
                };
                (
                    "initialize",
                    json!({
                        "protocolVersion": version,
                        "capabilities": { "roots": { "listChanged": true }, "sampling": {}, "elicitation": {} },
                        "clientInfo": { "name": "mcproof-fuzz", "version": "0" },
                    }),
                )
            }
            1 => ("ping", json!({})),
            2 | 3 => ("tools/list", if rng.chance(50) { json!({}) } else { json!({ "cursor": Self::cursor(rng) }) }),
            4 => ("resources/list", json!({ "cursor": Self::cursor(rng) })),
            5 => ("resources/templates/list", json!({})),
            6 | 7 => ("resources/read", json!({ "uri": self.uri(rng) })),
            8 => (["resources/subscribe", "resources/unsubscribe"][rng.below(2)], json!({ "uri": self.uri(rng) })),
            9 => ("prompts/list", json!({})),
            10 | 11 => {
                let (name, arguments) = self.prompt(rng);
                ("prompts/get", json!({ "name": name, "arguments": arguments }))
            }
            12 => (
                "logging/setLevel",
                json!({ "level": if rng.chance(80) { json!(rng.pick(LOG_LEVELS).copied().unwrap_or("debug")) } else { json!(string(rng)) } }),
            ),
            13 | 14 => {
                let reference = if rng.chance(50) || self.inv.templates.is_empty() {
                    json!({ "type": "ref/prompt", "name": self.prompt(rng).0 })
                } else {
                    json!({ "type": "ref/resource", "uri": rng.pick(&self.inv.templates).cloned().unwrap_or_default() })
                };
                (
                    "completion/complete",
                    json!({ "ref": reference, "argument": { "name": key(rng), "value": string(rng) } }),
                )
            }
            _ => {
                let m = ["tasks/list", "sampling/createMessage", "roots/list", "rpc.discover", "", "tools/call/x"];
                let method = rng.pick(&m).copied().unwrap_or("x");
                return json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": any_value(rng, 1) });
            }
        };
        let mut m = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if rng.chance(5) {
            m["id"] = odd_id(rng);
        }
        m
    }

    fn notification(&self, rng: &mut Rng) -> Value {
        let (method, params) = match rng.below(5) {
            0 => ("notifications/initialized", json!({})),
            1 => ("notifications/cancelled", json!({ "requestId": any_value(rng, 2), "reason": string(rng) })),
            2 => (
                "notifications/progress",
                json!({ "progressToken": any_value(rng, 2), "progress": mutate::number(rng), "total": mutate::number(rng) }),
            ),
            3 => ("notifications/roots/list_changed", json!({})),
            _ => ("notifications/unknown", any_value(rng, 1)),
        };
        json!({ "jsonrpc": "2.0", "method": method, "params": params })
    }

    /// A message recorded during discovery (a request with a new id, or a response sent back
    /// as if it were the client's), mutated.
    fn recorded(&self, rng: &mut Rng, id: Value) -> Value {
        let mut m =
            rng.pick(&self.inv.recorded).cloned().unwrap_or_else(|| json!({ "jsonrpc": "2.0", "method": "ping" }));
        if m.get("method").is_some() && m.get("id").is_some() {
            m["id"] = id;
        }
        for _ in 0..rng.range(1, 3) {
            mutate::mutate(rng, &mut m);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> Inventory {
        Inventory {
            tools: vec![json!({
                "name": "echo",
                "inputSchema": { "type": "object", "properties": { "text": { "type": "string", "maxLength": 100 } }, "required": ["text"] }
            })],
            recorded: vec![json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}})],
            ..Inventory::default()
        }
    }

    #[test]
    fn cases_depend_only_on_seed_and_index() {
        let a = Generator::new(9, &inventory(), false);
        let b = Generator::new(9, &inventory(), false);
        for i in [0, 1, 17, 999] {
            assert_eq!(a.case(i), b.case(i));
        }
        assert_ne!(a.case(1), a.case(2));
        let c = Generator::new(10, &inventory(), false);
        assert_ne!(a.case(1), c.case(1));
    }

    #[test]
    fn generation_covers_the_kinds_it_promises() {
        let g = Generator::new(1, &inventory(), false);
        let (mut deletes, mut no_session, mut two, mut batches, mut raws, mut calls) = (0, 0, 0, 0, 0, 0);
        for i in 0..400 {
            let case = g.case(i);
            assert!(!case.is_empty() && case.len() <= 14, "case {i}: {} steps", case.len());
            deletes += usize::from(case.iter().any(|s| matches!(s, Step::Delete { .. })));
            no_session += usize::from(case.iter().any(|s| matches!(s, Step::Send { slot: None, .. })));
            two += usize::from(case.iter().any(|s| matches!(s, Step::Init { slot: 1 })));
            for s in &case {
                if let Step::Send { body, .. } = s {
                    match body {
                        Body::Raw(_) => raws += 1,
                        Body::Json(Value::Array(_)) => batches += 1,
                        Body::Json(v) if v.get("method") == Some(&json!("tools/call")) => calls += 1,
                        _ => {}
                    }
                }
            }
        }
        for (what, n) in [
            ("delete", deletes),
            ("no session", no_session),
            ("two sessions", two),
            ("batch", batches),
            ("raw", raws),
            ("call", calls),
        ] {
            assert!(n >= 10, "{what}: only {n}");
        }
    }
}
