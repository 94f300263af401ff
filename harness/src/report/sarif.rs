//! The `sarif` renderer: SARIF 2.1.0 for code scanning (GitHub and other SARIF consumers).
//!
//! One run. `tool.driver.rules` describes every check in the report; `results` holds the
//! findings: FAIL as level `error`, WARN as level `warning`, each with the check's evidence in
//! `properties.evidence`. A finding the baseline accepts carries an external suppression with
//! the baseline's reason. Checks that ERRORed are tool execution notifications, not results.
//!
//! Code scanning needs a location: it is the target URL (`mcp-server` for a stdio target), line
//! 1, and `partialFingerprints` identify a finding by check and target so that alerts stay
//! the same alert from one run to the next.

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::check::{Level, Status, Transport};
use crate::runner::CheckResult;

use super::Report;

/// The `$schema` written into every log.
pub const SARIF_SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The artifact URI for a stdio target (which has no URL).
pub const STDIO_ARTIFACT: &str = "mcp-server";

/// GitHub's `security-severity` for a check level: MUST is high, SHOULD medium, best practice
/// low.
pub fn security_severity(level: Level) -> &'static str {
    match level {
        Level::Must => "8.0",
        Level::Should => "5.0",
        Level::BestPractice => "3.0",
    }
}

/// `area/kebab-name` → `AreaKebabName`, the rule's `name`.
fn rule_name(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    let mut upper = true;
    for c in id.chars() {
        if c.is_ascii_alphanumeric() {
            if upper {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
            upper = false;
        } else {
            upper = true;
        }
    }
    out
}

/// Where a finding is: the target URL, or [`STDIO_ARTIFACT`].
fn artifact_uri(report: &Report) -> String {
    match report.transport {
        Transport::Http => match url::Url::parse(&report.target) {
            Ok(u) => u.to_string(),
            Err(_) => STDIO_ARTIFACT.to_owned(),
        },
        Transport::Stdio => STDIO_ARTIFACT.to_owned(),
    }
}

fn fingerprint(id: &str, uri: &str) -> String {
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    h.update([0]);
    h.update(uri.as_bytes());
    hex::encode(&h.finalize()[..16])
}

fn rule(r: &CheckResult, description: Option<&str>) -> Value {
    let full = match description {
        Some(d) if !d.is_empty() => d.to_owned(),
        _ => r.title.clone(),
    };
    let default_level = match r.level {
        Level::Must => "error",
        Level::Should | Level::BestPractice => "warning",
    };
    json!({
        "id": r.id,
        "name": rule_name(&r.id),
        "shortDescription": { "text": r.title },
        "fullDescription": { "text": full },
        "help": {
            "text": format!("Remediation: {}\nSource: {}\nLevel: {}", r.remediation, r.source, r.level),
            "markdown": format!(
                "**Remediation:** {}\n\n**Source:** {}\n\n**Level:** {}",
                markdown_text(&r.remediation),
                markdown_text(&r.source),
                r.level
            ),
        },
        "defaultConfiguration": { "level": default_level },
        "properties": {
            "level": r.level.as_str(),
            "tags": ["security", r.area],
            "security-severity": security_severity(r.level),
            "precision": "high",
            "weight": r.weight,
            "kind": r.kind,
        },
    })
}

/// Text safe for a Markdown paragraph: characters Markdown or HTML would interpret are
/// backslash-escaped, line breaks flattened.
fn markdown_text(s: &str) -> String {
    super::markdown::inline(s)
}

/// Renders the report as a SARIF 2.1.0 log.
pub fn render(report: &Report) -> String {
    let catalogue = crate::checks::catalogue();
    let uri = artifact_uri(report);

    let mut rules: Vec<Value> = Vec::new();
    let mut index: Vec<&str> = Vec::new();
    for r in &report.results {
        if index.contains(&r.id.as_str()) {
            continue;
        }
        let description = catalogue.iter().find(|c| c.info.id == r.id).map(|c| c.info.description);
        rules.push(rule(r, description));
        index.push(&r.id);
    }
    let rule_index = |id: &str| index.iter().position(|i| *i == id).unwrap_or(0);

    let mut results = Vec::new();
    let mut notifications = Vec::new();
    for r in &report.results {
        let level = match r.status {
            Status::Fail => "error",
            Status::Warn => "warning",
            Status::Error => {
                notifications.push(json!({
                    "level": "error",
                    "message": { "text": format!("{}: {}", r.id, r.message) },
                    "associatedRule": { "id": r.id, "index": rule_index(&r.id) },
                    "properties": { "evidence": r.evidence, "accepted": r.accepted },
                }));
                continue;
            }
            Status::Pass | Status::Skip => continue,
        };
        let mut result = Map::new();
        result.insert("ruleId".into(), json!(r.id));
        result.insert("ruleIndex".into(), json!(rule_index(&r.id)));
        result.insert("kind".into(), json!("fail"));
        result.insert("level".into(), json!(level));
        result.insert("message".into(), json!({ "text": r.message }));
        result.insert(
            "locations".into(),
            json!([{
                "physicalLocation": {
                    "artifactLocation": { "uri": uri },
                    "region": { "startLine": 1 },
                },
            }]),
        );
        result.insert("partialFingerprints".into(), json!({ "mcproofFindingHash/v1": fingerprint(&r.id, &uri) }));
        if let Some(reason) = &r.accepted {
            result.insert("suppressions".into(), json!([{ "kind": "external", "justification": reason }]));
        }
        result.insert(
            "properties".into(),
            json!({
                "level": r.level.as_str(),
                "status": r.status,
                "source": r.source,
                "remediation": r.remediation,
                "durationMs": r.duration_ms,
                "evidence": r.evidence,
            }),
        );
        results.push(Value::Object(result));
    }

    let mut invocation = Map::new();
    invocation.insert("executionSuccessful".into(), json!(true));
    if !report.started_at.is_empty() {
        invocation.insert("startTimeUtc".into(), json!(report.started_at));
    }
    if !notifications.is_empty() {
        invocation.insert("toolExecutionNotifications".into(), Value::Array(notifications));
    }

    let log = json!({
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": report.tool.name,
                    "version": report.tool.version,
                    "semanticVersion": report.tool.version,
                    "rules": rules,
                },
            },
            "invocations": [Value::Object(invocation)],
            "results": results,
            "properties": {
                "schema": report.schema,
                "target": report.target,
                "transport": report.transport,
                "negotiatedVersion": report.negotiated_version,
                "serverInfo": report.server_info,
                "seed": report.seed,
                "durationMs": report.duration_ms,
                "score": report.score,
                "grade": report.grade,
                "summary": report.summary,
            },
        }],
    });
    serde_json::to_string_pretty(&log).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_pascal_case() {
        assert_eq!(rule_name("posture/auth-required"), "PostureAuthRequired");
        assert_eq!(rule_name("jsonrpc/id-null-2"), "JsonrpcIdNull2");
    }

    #[test]
    fn severities_follow_levels() {
        assert_eq!(security_severity(Level::Must), "8.0");
        assert_eq!(security_severity(Level::Should), "5.0");
        assert_eq!(security_severity(Level::BestPractice), "3.0");
    }
}
