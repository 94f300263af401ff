//! The standard profile's tools over HTTP (TO-01..07): metadata, argument validation by
//! revision, SQL and path injection, output sanitization, and the hidden admin tool.
#![allow(clippy::unwrap_used)] // reason: tests; a panic is the failure report

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::*;
use serde_json::{Value, json};

const STANDARD_TOOLS: [&str; 6] =
    ["query_products", "read_file", "notes_create", "notes_list", "notes_delete", "fetch_document"];

async fn session(srv: &TestServer) -> Mcp {
    let mut c = srv.client();
    c.initialize().await;
    c
}

/// Characters that must never reach a model: zero-width, bidi controls, word joiners, BOM,
/// soft hyphen and Unicode tag characters.
fn invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x2069 | 0xFEFF | 0xE0000..=0xE007F)
}

#[tokio::test]
async fn tools_list_metadata_is_complete_and_strict() {
    let srv = start(standard()).await;
    let c = session(&srv).await;
    let m = c.request("tools/list", json!({})).await;
    assert!(m["result"].get("nextCursor").is_none_or(Value::is_null), "one page: {m}");
    let tools = m["result"]["tools"].as_array().expect("tools array").clone();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().expect("name")).collect();
    let set: HashSet<&str> = names.iter().copied().collect();
    assert_eq!(set.len(), names.len(), "unique names: {names:?}");
    assert_eq!(set, STANDARD_TOOLS.into_iter().collect::<HashSet<_>>(), "standard tools: {names:?}");
    let name_re = regex::Regex::new(r"^[A-Za-z0-9_.-]{1,128}$").expect("regex");

    let mut failures = Failures::new();
    for tool in &tools {
        let name = tool["name"].as_str().unwrap_or_default();
        failures.check(&format!("{name}: name syntax"), name_re.is_match(name), || name.to_owned());
        let description = tool["description"].as_str().unwrap_or_default();
        failures.check(&format!("{name}: description"), description.trim().len() >= 20, || description.to_owned());
        failures.check(&format!("{name}: description is visible text"), !description.chars().any(invisible), || {
            description.to_owned()
        });
        let schema = &tool["inputSchema"];
        failures.check(&format!("{name}: inputSchema type object"), schema["type"] == json!("object"), || {
            schema.to_string()
        });
        failures.check(
            &format!("{name}: additionalProperties false"),
            schema["additionalProperties"] == json!(false),
            || schema.to_string(),
        );
        failures.record(&format!("{name}: inputSchema compiles as 2020-12"), compile(schema).map(|_| ()));
        if let Some(props) = schema["properties"].as_object() {
            for (prop, def) in props {
                failures.check(
                    &format!("{name}.{prop}: typed"),
                    def.get("type").is_some() || def.get("enum").is_some(),
                    || def.to_string(),
                );
                if def["type"] == json!("string") {
                    failures.check(
                        &format!("{name}.{prop}: bounded string"),
                        def.get("maxLength").is_some() || def.get("enum").is_some(),
                        || def.to_string(),
                    );
                }
            }
        }
        if let Some(output) = tool.get("outputSchema") {
            failures.check(&format!("{name}: outputSchema type object"), output["type"] == json!("object"), || {
                output.to_string()
            });
            failures.record(&format!("{name}: outputSchema compiles"), compile(output).map(|_| ()));
        }
        let a = &tool["annotations"];
        for hint in ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"] {
            failures.check(&format!("{name}: {hint} boolean"), a[hint].is_boolean(), || a.to_string());
        }
        failures.check(
            &format!("{name}: readOnly and destructive"),
            !(a["readOnlyHint"] == json!(true) && a["destructiveHint"] == json!(true)),
            || a.to_string(),
        );
        if let Some(icons) = tool.get("icons").and_then(Value::as_array) {
            for icon in icons {
                let src = icon["src"].as_str().unwrap_or_default();
                failures.check(
                    &format!("{name}: icon scheme"),
                    src.starts_with("https:") || src.starts_with("data:image/"),
                    || src.to_owned(),
                );
            }
        }
    }
    let hints =
        |n: &str| tools.iter().find(|t| t["name"] == json!(n)).map(|t| t["annotations"].clone()).unwrap_or_default();
    failures.check("query_products read-only", hints("query_products")["readOnlyHint"] == json!(true), || {
        hints("query_products").to_string()
    });
    failures.check("notes_delete destructive", hints("notes_delete")["destructiveHint"] == json!(true), || {
        hints("notes_delete").to_string()
    });
    failures.check("notes_create not read-only", hints("notes_create")["readOnlyHint"] == json!(false), || {
        hints("notes_create").to_string()
    });
    failures.assert();
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options().with_draft(jsonschema::Draft::Draft202012).build(schema).map_err(|e| format!("{e}"))
}

#[tokio::test]
async fn structured_content_conforms_to_the_output_schema() {
    let srv = start(standard()).await;
    let c = session(&srv).await;
    let tools = c.request("tools/list", json!({})).await["result"]["tools"].as_array().expect("tools").clone();
    let calls = [
        ("query_products", json!({ "category": "garden", "limit": 3 })),
        ("notes_create", json!({ "title": "t", "body": "b" })),
        ("notes_list", json!({})),
        ("notes_delete", json!({ "id": "note_00000000000000000000000000000000" })),
    ];
    let mut failures = Failures::new();
    for (name, args) in calls {
        let Some(schema) = tools.iter().find(|t| t["name"] == json!(name)).and_then(|t| t.get("outputSchema")) else {
            continue;
        };
        let result = c.call_tool_ok(name, args).await;
        let structured = &result["structuredContent"];
        failures.check(&format!("{name}: structuredContent present"), structured.is_object(), || result.to_string());
        let validator = compile(schema).expect("output schema compiles");
        failures.check(&format!("{name}: conforms"), validator.is_valid(structured), || result.to_string());
        let text_copy: Option<Value> = serde_json::from_str(&result_text(&result)).ok();
        failures.check(&format!("{name}: text copy"), text_copy.as_ref() == Some(structured), || result.to_string());
    }
    failures.assert();
}

/// Arguments that break each tool's schema, and a word the message must contain.
fn schema_violations() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("query_products", json!({ "extra": 1 }), "extra"),
        ("query_products", json!({ "limit": "ten" }), "limit"),
        ("query_products", json!({ "limit": 0 }), "limit"),
        ("query_products", json!({ "limit": 51 }), "limit"),
        ("query_products", json!({ "limit": 1.5 }), "limit"),
        ("query_products", json!({ "order_by": "price; DROP TABLE products" }), "order_by"),
        ("query_products", json!({ "columns": ["name", "sql"] }), "columns"),
        ("query_products", json!({ "name_contains": "x".repeat(500) }), "name_contains"),
        ("read_file", json!({}), "path"),
        ("read_file", json!({ "path": 7 }), "path"),
        ("read_file", json!({ "path": "readme.txt", "mode": "w" }), "mode"),
        ("notes_create", json!({ "title": "only a title" }), "body"),
        ("notes_create", json!({ "title": "", "body": "b" }), "title"),
        ("notes_create", json!({ "title": "t", "body": "b".repeat(5000) }), "body"),
        ("notes_delete", json!({ "id": "1 OR 1=1" }), "id"),
        ("fetch_document", json!({ "id": "../etc/passwd" }), "id"),
    ]
}

#[tokio::test]
async fn schema_violations_are_tool_errors_from_2025_11_25() {
    let srv = start(standard()).await;
    let c = session(&srv).await;
    let mut failures = Failures::new();
    for (tool, args, word) in schema_violations() {
        let name = format!("{tool} {args}");
        let m = c.call_tool(tool, args).await;
        let result = &m["result"];
        let ok = m.get("error").is_none() && result["isError"] == json!(true);
        failures.check(&format!("{name}: isError"), ok, || m.to_string());
        let text = result_text(result);
        failures
            .check(&format!("{name}: actionable"), text.contains(word), || format!("message lacks {word:?}: {text:?}"));
        failures.check(&format!("{name}: no structuredContent"), result.get("structuredContent").is_none(), || {
            m.to_string()
        });
    }
    // Nothing was created by the refused notes_create calls.
    let listed = c.call_tool_ok("notes_list", json!({})).await;
    failures.check("no side effect", listed["structuredContent"]["count"] == json!(0), || listed.to_string());
    failures.assert();
}

#[tokio::test]
async fn schema_violations_are_invalid_params_under_2025_06_18() {
    let srv = start(standard()).await;
    let mut c = srv.client();
    c.initialize_version("2025-06-18").await;
    let mut failures = Failures::new();
    for (tool, args, _) in schema_violations() {
        let name = format!("{tool} {args}");
        let m = c.call_tool(tool, args).await;
        failures.check(&format!("{name}: -32602"), m["error"]["code"] == json!(-32602), || m.to_string());
        failures.check(&format!("{name}: no result"), m.get("result").is_none(), || m.to_string());
    }
    failures.assert();
}

#[tokio::test]
async fn sql_injection_in_query_products_returns_no_extra_rows() {
    let srv = start(standard()).await;
    let c = session(&srv).await;
    let rows = |result: &Value| result["structuredContent"]["rows"].as_array().cloned().unwrap_or_default();

    let all = c.call_tool_ok("query_products", json!({ "limit": 50 })).await;
    let total = rows(&all).len();
    assert!(total >= 10, "the catalogue is seeded: {all}");

    let mut failures = Failures::new();
    for (payload, expected) in [
        ("' OR 1=1 --", 0),
        ("' OR '1'='1", 0),
        ("%", 1),
        ("_", 1),
        ("%%", 0),
        ("'; DROP TABLE products; --", 0),
        ("\" OR \"\"=\"", 0),
        ("x' UNION SELECT sql, 1, 1, 1, 1 FROM sqlite_master --", 0),
        ("\\", 0),
    ] {
        let m = c.call_tool("query_products", json!({ "name_contains": payload, "limit": 50 })).await;
        let result = &m["result"];
        let got = rows(result).len();
        failures.check(&format!("{payload:?}: rows"), got == expected && result["isError"] == json!(false), || {
            m.to_string()
        });
        let text = m.to_string().to_ascii_lowercase();
        for leak in ["sqlite_master", "select ", "syntax error", "near \"", "no such"] {
            failures.check(
                &format!("{payload:?}: no SQL text ({leak})"),
                !text.contains(leak) || payload.to_ascii_lowercase().contains(leak.trim()),
                || m.to_string(),
            );
        }
    }
    // `%` and `_` are literal.
    let m = c.call_tool_ok("query_products", json!({ "name_contains": "%", "columns": ["name"] })).await;
    failures
        .check("% matches literally", rows(&m) == vec![json!({ "name": "100% cotton tea towel" })], || m.to_string());
    // The table is intact.
    let after = c.call_tool_ok("query_products", json!({ "limit": 50 })).await;
    failures.check("table intact", rows(&after).len() == total, || after.to_string());
    let garden = c.call_tool_ok("query_products", json!({ "category": "garden", "columns": ["name"] })).await;
    failures.check("normal queries still work", !rows(&garden).is_empty(), || garden.to_string());
    failures.assert();
}

/// A sandbox with symlinks that leave it, next to a secret file.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("docs")).expect("mkdir");
        std::fs::write(root.join("readme.txt"), "sandbox readme\nsecond line\n").expect("write");
        std::fs::write(root.join("docs/guide.md"), "# Guide\n").expect("write");
        std::fs::write(dir.path().join("outside.txt"), "TOP SECRET outside the sandbox").expect("write");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("escape.txt")).expect("symlink");
            std::os::unix::fs::symlink("../outside.txt", root.join("relative-escape.txt")).expect("symlink");
            std::os::unix::fs::symlink("/", root.join("rootfs")).expect("symlink");
            std::os::unix::fs::symlink("/etc", root.join("docs/etc")).expect("symlink");
        }
        Self { dir }
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }
}

fn mentions_path(text: &str, path: &Path) -> bool {
    let plain = path.to_string_lossy();
    let canonical = std::fs::canonicalize(path).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    text.contains(plain.as_ref()) || (!canonical.is_empty() && text.contains(&canonical))
}

#[tokio::test]
async fn read_file_stays_in_the_sandbox_and_hides_its_location() {
    let sandbox = Sandbox::new();
    let config = Config { sandbox_dir: Some(sandbox.root()), ..standard() };
    let srv = start(config).await;
    let c = session(&srv).await;

    let ok = c.call_tool_ok("read_file", json!({ "path": "readme.txt" })).await;
    assert_eq!(ok["isError"], json!(false), "{ok}");
    assert!(result_text(&ok).contains("sandbox readme"), "{ok}");
    let ok = c.call_tool_ok("read_file", json!({ "path": "docs/guide.md" })).await;
    assert_eq!(ok["isError"], json!(false), "{ok}");

    let mut failures = Failures::new();
    for path in [
        "../../etc/passwd",
        "../outside.txt",
        "/etc/passwd",
        "..\\..\\x",
        "..\\outside.txt",
        "docs/../../outside.txt",
        "./../outside.txt",
        "%2e%2e/outside.txt",
        "escape.txt",
        "relative-escape.txt",
        "rootfs/etc/passwd",
        "docs/etc/passwd",
        "docs/etc/hostname",
        "readme.txt\u{0}.png",
        "C:\\Windows\\win.ini",
        "file:///etc/passwd",
        "nonexistent.txt",
        "docs",
        "",
    ] {
        let m = c.call_tool("read_file", json!({ "path": path })).await;
        let result = &m["result"];
        failures.check(&format!("{path:?}: isError"), result["isError"] == json!(true), || m.to_string());
        let text = m.to_string();
        failures.check(
            &format!("{path:?}: no secret"),
            !text.contains("TOP SECRET") && !text.contains("root:x:0"),
            || text.clone(),
        );
        failures.check(
            &format!("{path:?}: sandbox path hidden"),
            !mentions_path(&text, &sandbox.root()) && !mentions_path(&text, sandbox.dir.path()),
            || text.clone(),
        );
        failures.check(&format!("{path:?}: no internals"), leaks_internals(&text).is_none(), || text.clone());
    }
    failures.assert();
    assert_eq!(c.ping_ok().await, Ok(()));
}

#[tokio::test]
async fn fetch_document_output_is_sanitized_and_flagged() {
    let srv = start(standard()).await;
    let c = session(&srv).await;
    let mut failures = Failures::new();
    for id in ["welcome", "support-ticket-4471", "vendor-invoice", "meeting-notes"] {
        let result = c.call_tool_ok("fetch_document", json!({ "id": id })).await;
        failures.check(&format!("{id}: not an error"), result["isError"] == json!(false), || result.to_string());
        let text = result_text(&result);
        let all = result.to_string();
        failures.check(&format!("{id}: no invisible characters"), !all.chars().any(invisible), || {
            let found: Vec<String> =
                all.chars().filter(|c| invisible(*c)).map(|c| format!("U+{:04X}", c as u32)).collect();
            format!("{found:?}")
        });
        failures.check(&format!("{id}: no AWS key"), !all.contains("AKIAIOSFODNN7EXAMPLE"), || text.clone());
        failures.check(&format!("{id}: no e-mail"), !all.contains("jane.doe@example.com"), || text.clone());
        let hostile = id != "welcome";
        let warned = text.to_ascii_lowercase().contains("untrusted");
        failures.check(&format!("{id}: injection warning"), warned == hostile, || text.clone());
    }
    failures.assert();
}

#[tokio::test]
async fn invisible_unicode_in_arguments_is_handled() {
    let srv = start(standard()).await;
    let c = session(&srv).await;
    let sneaky = "pay\u{200B}ment \u{202E}evil\u{202C} \u{E0049}\u{E0047}\u{FEFF}";
    let m = c.call_tool("notes_create", json!({ "title": sneaky, "body": sneaky })).await;
    assert!(m.get("result").is_some(), "{m}");
    assert!(!m.to_string().chars().any(invisible), "invisible characters echoed: {m}");
    for (tool, args) in [
        ("query_products", json!({ "name_contains": "\u{200B}" })),
        ("query_products", json!({ "name_contains": "Claw\u{200B}hammer" })),
        ("read_file", json!({ "path": "readme\u{202E}txt.exe" })),
        ("fetch_document", json!({ "id": "welcome\u{200B}" })),
        ("notes_delete", json!({ "id": "note_\u{E0041}" })),
    ] {
        let m = c.call_tool(tool, args.clone()).await;
        assert!(m.get("result").is_some() || m.get("error").is_some(), "{tool} {args}: {m}");
        assert!(!m.to_string().chars().any(invisible), "{tool} {args}: invisible characters echoed: {m}");
    }
    let listed = c.call_tool_ok("notes_list", json!({})).await;
    assert!(!listed.to_string().chars().any(invisible), "{listed}");
    assert_eq!(c.ping_ok().await, Ok(()));
}

#[tokio::test]
async fn notes_round_trip_and_canaries_are_not_leaked_elsewhere() {
    let srv = start(standard()).await;
    let c = session(&srv).await;
    let created = c.call_tool_ok("notes_create", json!({ "title": "first", "body": "hello" })).await;
    let id = created["structuredContent"]["note"]["id"].as_str().expect("note id").to_owned();
    assert!(regex::Regex::new("^note_[0-9a-f]{32}$").expect("regex").is_match(&id), "{id}");
    let listed = c.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(listed["structuredContent"]["count"], json!(1), "{listed}");
    let deleted = c.call_tool_ok("notes_delete", json!({ "id": id })).await;
    assert_eq!(deleted["structuredContent"]["deleted"], json!(true), "{deleted}");
    let again = c.call_tool_ok("notes_delete", json!({ "id": id })).await;
    assert_eq!(again["structuredContent"]["deleted"], json!(false), "idempotent: {again}");
}

#[tokio::test]
async fn the_admin_tool_is_hidden_from_the_anonymous_principal() {
    // Authentication off (`public`): the anonymous principal holds no admin tier, and the call
    // reaches the registry, which hides the tool.
    let mut config = standard();
    config.auth.policy = mcproof_server::auth::AuthPolicy::Public;
    let srv = start_as_configured(config).await;
    let c = session(&srv).await;
    c.call_tool_ok("notes_create", json!({ "title": "mine", "body": "keep" })).await;
    let listed = c.request("tools/list", json!({})).await;
    assert!(!listed.to_string().contains("admin_purge_notes"), "{listed}");

    let admin = c.call_tool("admin_purge_notes", json!({ "principal": "anonymous" })).await;
    let missing = c.call_tool("definitely_not_a_tool", json!({ "principal": "anonymous" })).await;
    assert_eq!(admin["error"]["code"], json!(-32602), "{admin}");
    assert_eq!(admin["error"], missing["error"], "a hidden tool answers exactly like a missing one");
    assert!(admin.get("result").is_none());
    let notes = c.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(notes["structuredContent"]["count"], json!(1), "nothing was purged: {notes}");

    // `arguments` of the wrong type is a protocol error too (TO-04).
    let m = c.request("tools/call", json!({ "name": "query_products", "arguments": "str" })).await;
    assert_eq!(m["error"]["code"], json!(-32602), "{m}");
}

#[tokio::test]
async fn the_admin_tool_needs_the_admin_scope_when_authentication_is_on() {
    // With a credential lacking `mcp:admin`, the scope check refuses the call before the
    // registry (403 insufficient_scope naming the scope to step up to, AU-10); listings still
    // hide the tool, and nothing is purged.
    let srv = start(standard()).await;
    let c = session(&srv).await;
    c.call_tool_ok("notes_create", json!({ "title": "mine", "body": "keep" })).await;
    let listed = c.request("tools/list", json!({})).await;
    assert!(!listed.to_string().contains("admin_purge_notes"), "{listed}");
    let r = c
        .request_reply(
            "tools/call",
            json!({ "name": "admin_purge_notes", "arguments": { "principal": TEST_PRINCIPAL } }),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.describe());
    assert_eq!(r.json()["error"], json!("insufficient_scope"), "{}", r.describe());
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(r#"scope="mcp:admin""#),
        "{challenge}"
    );
    let notes = c.call_tool_ok("notes_list", json!({})).await;
    assert_eq!(notes["structuredContent"]["count"], json!(1), "nothing was purged: {notes}");
}
