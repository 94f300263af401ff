//! The report renderers against a synthetic report that has every status, an accepted
//! failure, and evidence full of characters that break naive renderers (`<>&"'|`, control
//! characters, ANSI escapes, bidi overrides, non-ASCII).
//!
//! Each format is checked by a real consumer where one exists: the JSON against
//! docs/report-schema.json, the SARIF against the official SARIF 2.1.0 schema, the JUnit XML by
//! an XML parser, the HTML by headless Chromium (see `html_report_renders_in_headless_chromium`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcproof::check::{Kind, Level, Status, Transport};
use mcproof::evidence::{Exchange, RequestRecord, ResponseRecord};
use mcproof::grade;
use mcproof::report::{self, Format, REPORT_SCHEMA, Report, Summary, ToolInfo};
use mcproof::runner::CheckResult;
use serde_json::{Value, json};

const TARGET: &str = "http://127.0.0.1:8931/mcp";
const TRICKY: &str = "<>&\"'| \u{1b}[31mred\u{1b}[0m \u{7}bell \u{0}nul \u{202e}evil\u{202c} héllo — 日本語 ✓";
const SCRIPT: &str = "<script>alert('pwned')</script>";

fn exchange(label: &str, status: Option<u16>, body: &str) -> Exchange {
    Exchange {
        label: label.to_owned(),
        request: RequestRecord {
            method: "POST".into(),
            target: TARGET.into(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Origin".into(), "https://evil.example".into()),
                ("Authorization".into(), "Bearer [REDACTED]".into()),
            ],
            body: r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"x":"a|b"}}"#.into(),
        },
        response: status.map(|s| ResponseRecord {
            status: s,
            headers: vec![("content-type".into(), "application/json".into()), ("x-weird".into(), TRICKY.into())],
            body: body.to_owned(),
            truncated: body.len() > 100,
        }),
        elapsed_ms: 12,
        error: if status.is_none() { Some("connection refused <local>".into()) } else { None },
    }
}

#[allow(clippy::too_many_arguments)]
fn result(
    id: &str,
    title: &str,
    level: Level,
    weight: u32,
    status: Status,
    message: &str,
    evidence: Vec<Exchange>,
    accepted: Option<&str>,
) -> CheckResult {
    CheckResult {
        id: id.into(),
        title: title.into(),
        area: id.split('/').next().unwrap_or(id).into(),
        level,
        weight,
        kind: Kind::Active,
        source: "basic/transports §Security Warning; spec-checks HT-01".into(),
        status,
        message: message.into(),
        remediation: format!("Fix {id}: reject it with 403 & log | don't echo <input>."),
        evidence,
        duration_ms: 42,
        accepted: accepted.map(str::to_owned),
    }
}

fn results() -> Vec<CheckResult> {
    let long_body = format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"text\":\"{}\"}}}}", "x".repeat(400));
    vec![
        result(
            "transport/origin-validated",
            "Origin header is validated",
            Level::Must,
            12,
            Status::Fail,
            &format!("Server answered 200 to a forbidden Origin; it said {SCRIPT} and {TRICKY}"),
            vec![exchange(
                "POST initialize with Origin: https://evil.example",
                Some(200),
                &format!("{TRICKY} {SCRIPT}"),
            )],
            None,
        ),
        result(
            "transport/protocol-version-header",
            "MCP-Protocol-Version is enforced",
            Level::Must,
            10,
            Status::Pass,
            "Server rejected an unsupported MCP-Protocol-Version with 400",
            vec![exchange("POST with MCP-Protocol-Version: 1999-01-01", Some(400), "{\"error\":\"bad version\"}")],
            None,
        ),
        result(
            "posture/auth-required",
            "Authentication is required",
            Level::Must,
            15,
            Status::Fail,
            "tools/list answered without credentials",
            vec![exchange("POST tools/list without Authorization", Some(200), &long_body)],
            Some("internal deployment behind an <authenticating> proxy | \"SSO\" & 'mTLS'"),
        ),
        result(
            "posture/security-headers",
            "Security headers are set",
            Level::Should,
            6,
            Status::Warn,
            "X-Content-Type-Options is missing | pipe in message",
            vec![exchange("GET /mcp", Some(405), "")],
            None,
        ),
        result(
            "sessions/delete-invalidates",
            "DELETE ends the session",
            Level::Must,
            10,
            Status::Error,
            "the check did not finish within 10 s\nsecond line",
            vec![exchange("DELETE /mcp", None, "")],
            None,
        ),
        result(
            "stdio/stderr-clean",
            "Nothing but JSON-RPC on stdout",
            Level::Should,
            5,
            Status::Skip,
            "not applicable to HTTP targets",
            vec![],
            None,
        ),
        result(
            "jsonrpc/error-codes",
            "Standard JSON-RPC error codes",
            Level::Must,
            8,
            Status::Pass,
            "Parse error answered with -32700",
            vec![],
            None,
        ),
        result(
            "tools/annotations-coherent",
            "Tool annotations are coherent",
            Level::BestPractice,
            3,
            Status::Warn,
            "Tool \u{200b}delete_all has readOnlyHint=true",
            vec![],
            None,
        ),
    ]
}

fn report_with(results: Vec<CheckResult>, transport: Transport, target: &str) -> Report {
    let (score, grade) = grade::score(&results);
    Report {
        schema: REPORT_SCHEMA.into(),
        tool: ToolInfo::default(),
        target: target.into(),
        transport,
        negotiated_version: "2025-11-25".into(),
        server_info: json!({"name": "evil<server>", "version": "6.6.6"}),
        started_at: "2026-01-02T03:04:05Z".into(),
        duration_ms: 1234,
        seed: 424242,
        summary: Summary::of(&results),
        score,
        grade,
        results,
    }
}

fn sample() -> Report {
    report_with(results(), Transport::Http, TARGET)
}

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn errors_of(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

#[test]
fn the_sample_covers_every_case() {
    let r = sample();
    for s in [Status::Pass, Status::Warn, Status::Fail, Status::Skip, Status::Error] {
        assert!(r.results.iter().any(|x| x.status == s), "no {s}");
    }
    assert_eq!(r.summary.accepted, 1);
    // 18 pass + 6/2 + 3/2 over 12+10+15+6+8+3 = 54 → 41.7 % → 42, grade D (the cap is moot).
    assert_eq!((r.score, r.grade), (42, grade::Grade::D));
}

#[test]
fn every_format_is_deterministic_and_carries_the_essentials() {
    let r = sample();
    for format in [Format::Text, Format::Json, Format::Sarif, Format::Junit, Format::Markdown, Format::Html] {
        let a = report::render(&r, format, false);
        let b = report::render(&r.clone(), format, false);
        assert_eq!(a, b, "{format:?} is not deterministic");
        // To read them: MCPROOF_DUMP_REPORTS=<dir> writes every rendering of the sample there.
        if let Some(dir) = std::env::var_os("MCPROOF_DUMP_REPORTS") {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(Path::new(&dir).join(format!("sample.{format:?}").to_lowercase()), &a);
        }
        for needle in ["2025-11-25", "424242", "127.0.0.1:8931", "42", "0.1.0"] {
            assert!(a.contains(needle), "{format:?} lacks {needle}");
        }
        for x in &r.results {
            assert!(a.contains(&x.id), "{format:?} lacks {}", x.id);
        }
        assert!(a.contains("internal deployment behind"), "{format:?} lacks the accepted reason");
    }
}

#[test]
fn text_has_no_colour_codes_unless_asked() {
    let r = sample();
    let plain = report::text::render(&r, false);
    assert!(!plain.contains('\u{1b}'), "ANSI escape in plain text:\n{plain}");
    assert!(!plain.chars().any(|c| c.is_control() && c != '\n'), "control character in plain text");
    assert!(!plain.contains('\u{202e}'), "bidi override survived");
    assert!(plain.contains("␛[31m"), "the server's escape sequence is shown, not executed");
    let coloured = report::text::render(&r, true);
    assert!(coloured.contains("\u{1b}[1;31mFAIL \u{1b}[0m"), "{coloured}");
    // Stripping the harness's own colour codes gives the plain report back.
    let stripped = regex::Regex::new("\u{1b}\\[[0-9;]*m").expect("re").replace_all(&coloured, "");
    assert_eq!(stripped, plain);
}

#[test]
fn text_puts_findings_first_with_evidence() {
    let plain = report::text::render(&sample(), false);
    assert!(plain.contains("grade     D   score 42/100"), "{plain}");
    assert!(plain.contains("target    http://127.0.0.1:8931/mcp (http)"));
    // Within `posture`, the FAIL comes before the WARN; within `transport`, FAIL before PASS.
    let pos = |s: &str| plain.find(s).unwrap_or_else(|| panic!("missing {s}:\n{plain}"));
    assert!(pos("FAIL   [MUST] posture/auth-required") < pos("WARN   [SHOULD] posture/security-headers"));
    assert!(pos("FAIL   [MUST] transport/origin-validated") < pos("PASS   [MUST] transport/protocol-version-header"));
    assert!(plain.contains("accepted: internal deployment behind an <authenticating> proxy"));
    assert!(
        plain.contains(
            "evidence: POST initialize with Origin: https://evil.example: POST http://127.0.0.1:8931/mcp → 200"
        )
    );
    assert!(
        plain.contains(
            "evidence: DELETE /mcp: POST http://127.0.0.1:8931/mcp → no response (connection refused <local>)"
        )
    );
    // The long body is cut at 200 characters.
    let line = plain.lines().find(|l| l.contains("xxxxxxxx")).expect("excerpt line");
    let excerpt = line.trim().strip_prefix("response").expect("the response's body").trim();
    assert!(excerpt.chars().count() == 201 && excerpt.ends_with('…'), "{line}");
    assert!(plain.contains("8 checks: 2 pass, 2 warn, 2 fail (1 accepted by baseline), 1 skip, 1 error"), "{plain}");
}

#[test]
fn json_matches_the_documented_schema_and_round_trips() {
    let r = sample();
    let out = report::json::render(&r);
    assert_eq!(out, serde_json::to_string_pretty(&r).expect("json"));
    let instance: Value = serde_json::from_str(&out).expect("valid JSON");
    let schema = load_json(&data("../docs/report-schema.json"));
    assert!(jsonschema::meta::is_valid(&schema), "docs/report-schema.json is not a valid JSON Schema");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    assert_eq!(errors_of(&validator, &instance), Vec::<String>::new());
    // The schema is strict: an undocumented field or a wrong enum is caught.
    let mut extra = instance.clone();
    extra["results"][0]["undocumented"] = json!(1);
    assert!(!validator.is_valid(&extra));
    let mut wrong = instance.clone();
    wrong["results"][0]["status"] = json!("OK");
    assert!(!validator.is_valid(&wrong));
    // A result without `accepted` and one with it both validate (it is optional).
    assert!(instance["results"][0].get("accepted").is_none());
    assert!(instance["results"][2]["accepted"].is_string());
    // And the JSON reads back into the same report.
    let back: Report = serde_json::from_str(&out).expect("reads back");
    assert_eq!(serde_json::to_string_pretty(&back).expect("json"), out);
    assert_eq!(back.schema, "mcproof-report/1");
}

#[test]
fn json_schema_documents_every_field() {
    // Every property in the schema is named in docs/report-schema.md, and vice versa for the
    // report's top-level keys.
    let doc = std::fs::read_to_string(data("../docs/report-schema.md")).expect("doc");
    let schema = load_json(&data("../docs/report-schema.json"));
    fn walk(v: &Value, out: &mut Vec<String>) {
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (k, sub) in props {
                out.push(k.clone());
                walk(sub, out);
            }
        }
        for key in ["$defs", "items"] {
            if let Some(Value::Object(m)) = v.get(key) {
                for sub in m.values() {
                    walk(sub, out);
                }
            }
        }
        if let Some(Value::Array(alts)) = v.get("oneOf") {
            for sub in alts {
                walk(sub, out);
            }
        }
    }
    let mut names = Vec::new();
    walk(&schema, &mut names);
    assert!(names.len() > 30, "{names:?}");
    for n in names {
        assert!(doc.contains(&format!("`{n}`")), "docs/report-schema.md does not document `{n}`");
    }
}

fn sarif_validators() -> Vec<(&'static str, jsonschema::Validator)> {
    let schema = load_json(&data("tests/data/sarif-schema-2.1.0.json"));
    assert_eq!(schema["title"], "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema");
    let build = |draft| {
        jsonschema::options()
            .with_draft(draft)
            .should_validate_formats(true)
            .build(&schema)
            .expect("SARIF schema compiles")
    };
    vec![
        // As the schema declares itself (the OASIS errata01 file is draft-04)…
        ("draft-04", build(jsonschema::Draft::Draft4)),
        // …and as draft-07, the draft of the OASIS repository's copy of the same schema.
        ("draft-07", build(jsonschema::Draft::Draft7)),
    ]
}

#[test]
fn sarif_validates_against_the_official_schema() {
    let r = sample();
    let out = report::sarif::render(&r);
    let log: Value = serde_json::from_str(&out).expect("valid JSON");
    for (draft, v) in sarif_validators() {
        assert_eq!(errors_of(&v, &log), Vec::<String>::new(), "SARIF invalid under {draft}");
        // The validator is not vacuous.
        let mut broken = log.clone();
        broken["runs"][0]["results"][0]["level"] = json!("fatal");
        assert!(!v.is_valid(&broken), "{draft} accepted a bad level");
    }

    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "mcproof");
    let rules = driver["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), r.results.len(), "one rule per check in the report");
    let auth = rules.iter().find(|x| x["id"] == "posture/auth-required").expect("rule");
    assert_eq!(auth["name"], "PostureAuthRequired");
    assert_eq!(auth["properties"]["security-severity"], "8.0");
    assert_eq!(auth["properties"]["level"], "MUST");
    assert!(auth["properties"]["tags"].as_array().expect("tags").contains(&json!("posture")));
    assert!(auth["help"]["text"].as_str().expect("help").contains("Fix posture/auth-required"));
    assert!(auth["help"]["markdown"].as_str().expect("md").contains("**Source:**"));
    let bp = rules.iter().find(|x| x["id"] == "tools/annotations-coherent").expect("rule");
    assert_eq!(bp["properties"]["security-severity"], "3.0");

    let results = run["results"].as_array().expect("results");
    // FAIL ×2 (one accepted) and WARN ×2; PASS, SKIP and ERROR are not results.
    assert_eq!(results.len(), 4);
    for res in results {
        let idx = res["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[idx]["id"], res["ruleId"]);
        assert_eq!(res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], TARGET);
        assert!(res["properties"]["evidence"].is_array());
    }
    let level_of = |id: &str| results.iter().find(|x| x["ruleId"] == id).map(|x| x["level"].clone());
    assert_eq!(level_of("transport/origin-validated"), Some(json!("error")));
    assert_eq!(level_of("posture/security-headers"), Some(json!("warning")));
    let accepted = results.iter().find(|x| x["ruleId"] == "posture/auth-required").expect("accepted");
    assert_eq!(accepted["suppressions"][0]["kind"], "external");
    assert!(accepted["suppressions"][0]["justification"].as_str().expect("j").starts_with("internal deployment"));
    assert!(results.iter().filter(|x| x.get("suppressions").is_some()).count() == 1);
    let origin = results.iter().find(|x| x["ruleId"] == "transport/origin-validated").expect("origin");
    assert_eq!(origin["properties"]["evidence"][0]["response"]["status"], 200);
    assert!(origin["message"]["text"].as_str().expect("text").contains(SCRIPT), "JSON keeps the data as it was");
    // The ERROR is a tool execution notification.
    let notes = run["invocations"][0]["toolExecutionNotifications"].as_array().expect("notifications");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["associatedRule"]["id"], "sessions/delete-invalidates");
    assert_eq!(run["properties"]["grade"], "D");
    assert_eq!(run["properties"]["score"], 42);
    assert_eq!(run["properties"]["seed"], 424242);
}

#[test]
fn sarif_of_a_stdio_target_is_located_at_mcp_server() {
    let r = report_with(results(), Transport::Stdio, "node server.js --flag \"quoted arg\"");
    let log: Value = serde_json::from_str(&report::sarif::render(&r)).expect("json");
    for (draft, v) in sarif_validators() {
        assert_eq!(errors_of(&v, &log), Vec::<String>::new(), "{draft}");
    }
    let res = &log["runs"][0]["results"][0];
    assert_eq!(res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "mcp-server");
    // An empty report is still a valid log.
    let empty = report_with(vec![], Transport::Http, TARGET);
    let log: Value = serde_json::from_str(&report::sarif::render(&empty)).expect("json");
    for (draft, v) in sarif_validators() {
        assert_eq!(errors_of(&v, &log), Vec::<String>::new(), "{draft}");
    }
}

#[test]
fn junit_is_well_formed_and_maps_statuses() {
    let r = sample();
    let out = report::junit::render(&r);
    let doc = roxmltree::Document::parse(&out).unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{out}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("8"));
    assert_eq!(root.attribute("failures"), Some("1"), "the accepted FAIL is not a failure");
    assert_eq!(root.attribute("errors"), Some("1"));
    assert_eq!(root.attribute("skipped"), Some("2"), "SKIP and the accepted FAIL");
    let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    let names: Vec<_> = suites.iter().filter_map(|s| s.attribute("name")).collect();
    assert_eq!(
        names,
        [
            "mcproof.transport",
            "mcproof.posture",
            "mcproof.sessions",
            "mcproof.stdio",
            "mcproof.jsonrpc",
            "mcproof.tools"
        ]
    );
    let mut sum = 0;
    for s in &suites {
        let cases = s.children().filter(|n| n.has_tag_name("testcase")).count();
        assert_eq!(s.attribute("tests"), Some(cases.to_string().as_str()));
        sum += cases;
        let props: Vec<_> = s.descendants().filter(|n| n.has_tag_name("property")).collect();
        assert!(
            props.iter().any(|p| p.attribute("name") == Some("mcproof.grade") && p.attribute("value") == Some("D"))
        );
    }
    assert_eq!(sum, 8);

    let case = |id: &str| {
        doc.descendants()
            .find(|n| {
                n.has_tag_name("testcase") && n.attribute("name").is_some_and(|a| a.starts_with(&format!("{id}: ")))
            })
            .unwrap_or_else(|| panic!("no testcase {id}"))
    };
    let origin = case("transport/origin-validated");
    assert_eq!(origin.attribute("classname"), Some("mcproof.transport"));
    assert_eq!(origin.attribute("time"), Some("0.042"));
    let failure = origin.children().find(|n| n.has_tag_name("failure")).expect("failure");
    assert_eq!(failure.attribute("type"), Some("MUST"));
    let msg = failure.attribute("message").expect("message");
    assert!(msg.contains(SCRIPT) && msg.contains("<>&\"'|"), "escaped characters read back: {msg}");
    assert!(msg.contains("héllo — 日本語 ✓") && msg.contains("␛[31m"), "{msg}");
    let text = failure.text().expect("details");
    assert!(text.contains("Remediation: Fix transport/origin-validated") && text.contains("< 200"), "{text}");

    let accepted = case("posture/auth-required");
    assert!(accepted.children().all(|n| !n.has_tag_name("failure")));
    let skipped = accepted.children().find(|n| n.has_tag_name("skipped")).expect("skipped");
    assert!(
        skipped
            .attribute("message")
            .expect("m")
            .starts_with("accepted by baseline: internal deployment behind an <authenticating>")
    );

    let err = case("sessions/delete-invalidates");
    let error = err.children().find(|n| n.has_tag_name("error")).expect("error");
    assert!(error.attribute("message").expect("m").contains("10 s\nsecond line"), "attribute newlines survive");
    assert!(case("stdio/stderr-clean").children().any(|n| n.has_tag_name("skipped")));
    let warn = case("posture/security-headers");
    assert!(warn.children().all(|n| !n.has_tag_name("failure") && !n.has_tag_name("skipped")));
    assert!(
        warn.children()
            .find(|n| n.has_tag_name("system-out"))
            .and_then(|n| n.text())
            .expect("out")
            .starts_with("WARN: ")
    );
    assert!(case("jsonrpc/error-codes").children().all(|n| !n.has_tag_name("failure")));
}

/// Table rows of a Markdown document have the right number of cells once escaped pipes are
/// ignored.
fn cells(line: &str) -> usize {
    let mut n: usize = 0;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => n += 1,
            _ => escaped = false,
        }
    }
    n.saturating_sub(1)
}

#[test]
fn markdown_summarizes_and_escapes() {
    let out = report::markdown::render(&sample());
    assert!(out.starts_with("## mcproof: grade **D** · score **42/100**"), "{out}");
    assert!(out.contains("| 2 | 2 | 2 | 1 | 1 | 1 | 8 |"), "counts table:\n{out}");
    let mut header_cells = 0;
    for line in out.lines() {
        if line.starts_with('|') {
            if line.starts_with("|---") || line.starts_with("|:--") {
                continue;
            }
            let n = cells(line);
            if line.starts_with("| Status") || line.starts_with("| Pass") || line.starts_with("| Area") {
                header_cells = n;
            }
            assert_eq!(n, header_cells, "row has {n} cells, header {header_cells}: {line}");
        }
    }
    assert!(out.contains("X-Content-Type-Options is missing \\| pipe in message"));
    // Outside code fences (where Markdown shows text literally) no raw HTML from the server.
    let mut in_fence = false;
    for line in out.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        assert!(in_fence || !line.contains("<script"), "raw HTML from the server: {line}");
    }
    assert!(!in_fence, "unclosed code fence");
    assert!(out.contains("<details><summary>FAIL transport/origin-validated — Origin header is validated</summary>"));
    assert!(out.contains("**Accepted by baseline:** internal deployment behind an &lt;authenticating&gt; proxy"));
    // Evidence in fences, findings only (FAIL, WARN, ERROR), with the request and response.
    assert!(out.contains("```text\n> POST http://127.0.0.1:8931/mcp"));
    assert!(out.contains("\n< 200\n"));
    assert!(!out.contains('\u{1b}') && !out.contains('\u{0}') && !out.contains('\u{202e}'));
    let findings = out.split("### Evidence").nth(1).expect("evidence section");
    assert!(!findings.split("All 8 results").next().expect("x").contains("jsonrpc/error-codes"));
}

#[test]
fn html_escapes_everything_from_the_server() {
    let out = report::html::render(&sample());
    assert!(out.starts_with("<!DOCTYPE html>"));
    assert!(!out.to_ascii_lowercase().contains("<script"), "a <script> got through");
    assert!(out.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"));
    assert!(out.contains("evil&lt;server&gt; 6.6.6"));
    assert!(!out.contains('\u{1b}') && !out.contains('\u{0}') && !out.contains('\u{202e}'));
    // Self-contained: no external resource of any kind.
    for attr in ["src=", "href=\"http", "href=\"//", "@import", "url("] {
        assert!(!out.contains(attr), "external resource via {attr}");
    }
    assert!(out.contains("Content-Security-Policy"));
    assert!(out.contains("<div class=\"badge g-D\" title=\"grade\">D</div>"));
    assert!(out.contains("score 42/100"));
    // Per-area table and one <details> per result.
    assert_eq!(out.matches("<details class=\"result\"").count(), 8);
    assert!(out.contains("<tr><td><a href=\"#area-posture\">posture</a></td><td>0</td><td>1</td><td>1</td><td>0</td><td>0</td><td>1</td></tr>"));
    assert!(out.contains("accepted by baseline"));
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium.

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
        let Some(paths) = std::env::var_os("PATH") else { continue };
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Screenshots `page` at 1200×900; returns the PNG's bytes.
fn screenshot(browser: &Path, page: &Path, dir: &Path, name: &str) -> Vec<u8> {
    let shot = dir.join(format!("{name}.png"));
    let profile = dir.join(format!("profile-{name}"));
    let url = format!("file://{}", page.display());
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,900")
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match child.try_wait().expect("wait") {
            Some(status) => {
                let mut err = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut s, &mut err);
                }
                assert!(status.success(), "chromium exited with {status}: {err}");
                break;
            }
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 90 s");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()))
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let required = std::env::var_os("MCPROOF_REQUIRE_CHROMIUM").is_some();
    let Some(browser) = chromium() else {
        assert!(!required, "MCPROOF_REQUIRE_CHROMIUM is set but no chromium is on PATH");
        eprintln!(
            "SKIPPED html_report_renders_in_headless_chromium: no chromium on PATH \
             (apt-get install chromium; set MCPROOF_REQUIRE_CHROMIUM=1 to make this a failure)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let page = dir.path().join("report.html");
    std::fs::write(&page, report::html::render(&sample())).expect("write report");
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").expect("write blank");

    let png = screenshot(&browser, &page, dir.path(), "report");
    let empty = screenshot(&browser, &blank, dir.path(), "blank");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    let height = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
    assert_eq!((width, height), (1200, 900), "unexpected screenshot size");
    // A page with a badge, tables and text compresses far worse than a blank one.
    assert!(
        png.len() > 20_000 && png.len() > 4 * empty.len(),
        "the report's screenshot looks blank: {} bytes (blank page: {} bytes)",
        png.len(),
        empty.len()
    );
    // To look at it: MCPROOF_KEEP_SCREENSHOT=/tmp/shot.png (the page goes to /tmp/shot.html).
    if let Some(keep) = std::env::var_os("MCPROOF_KEEP_SCREENSHOT") {
        let keep = PathBuf::from(keep);
        let _ = std::fs::write(&keep, &png);
        let _ = std::fs::copy(&page, keep.with_extension("html"));
    }
}
