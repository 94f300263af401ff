//! Validation of tool arguments against each tool's JSON Schema 2020-12 `inputSchema`.
//!
//! Three choices make this safe to run on attacker-supplied arguments:
//!
//! - **No network, no filesystem.** The validator is built `offline`: a `$ref` to anything that
//!   is not inside the schema itself fails at compile time instead of being fetched (a remote
//!   `$ref` would be an SSRF and a supply-chain hole).
//! - **Linear-time regexes.** `pattern` is evaluated with the `regex` crate, which has no
//!   backtracking, so no pattern/instance pair can cause catastrophic run time.
//! - **No echo.** jsonschema's own messages quote the offending value, which may be a secret the
//!   caller pasted by mistake or an injection payload. Messages here are built from the error
//!   kind, the instance location and the schema's own limits only; property names are echoed,
//!   cut to [`MAX_NAME_CHARS`] and stripped of invisible characters.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, PatternOptions, ValidationError};
use serde_json::Value;

/// At most this many messages are returned for one instance; a caller fixes the first ones
/// and retries, and a huge invalid instance cannot make a huge error response.
pub const MAX_MESSAGES: usize = 10;

/// Property names and instance paths echoed in messages are cut to this many characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Upper bound on the compiled size of one `pattern`, so a schema cannot make the server
/// allocate without limit (the schemas are ours, but the bound is cheap).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A schema could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

/// A compiled input schema.
pub struct InputValidator {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for InputValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputValidator").finish_non_exhaustive()
    }
}

impl InputValidator {
    /// Compiles `schema` as JSON Schema 2020-12 (whatever its `$schema` says), checking it
    /// against the meta-schema, with external references and backtracking regexes disabled.
    pub fn compile(schema: &Value) -> Result<Self, SchemaError> {
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .offline()
            .with_pattern_options(PatternOptions::regex().size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT))
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| SchemaError(format!("invalid input schema: {}", compile_message(&e))))?;
        Ok(Self { validator })
    }

    /// Checks an instance; on failure returns one actionable message per violation (at most
    /// [`MAX_MESSAGES`]), none of which contains the instance's values.
    pub fn validate(&self, instance: &Value) -> Result<(), Vec<String>> {
        let mut errors = self.validator.iter_errors(instance);
        let mut messages: Vec<String> = errors.by_ref().take(MAX_MESSAGES).map(|e| message(&e)).collect();
        if messages.is_empty() {
            return Ok(());
        }
        if errors.next().is_some()
            && let Some(last) = messages.last_mut()
        {
            *last = "(more problems not shown; fix the ones above and retry)".to_owned();
        }
        Err(messages)
    }
}

/// The compile error's text. The schema is server-authored, so its values may be shown; the
/// text is still bounded.
fn compile_message(e: &ValidationError<'_>) -> String {
    let path = e.instance_path().as_str();
    let text = match e.kind() {
        ValidationErrorKind::Referencing(r) => format!("unresolvable reference: {r}"),
        _ => e.to_string(),
    };
    let location = if path.is_empty() { "(root)" } else { path };
    truncate_visible(&format!("{location}: {text}"), 512)
}

/// One actionable message for one violation: `<instance path>: <what must hold>`.
fn message(e: &ValidationError<'_>) -> String {
    let location = render_location(e.instance_path().as_str());
    format!("{location}: {}", describe(e.kind()))
}

/// What must hold, built only from the schema side of the error.
fn describe(kind: &ValidationErrorKind) -> String {
    use ValidationErrorKind as K;
    match kind {
        K::AdditionalProperties { unexpected } | K::UnevaluatedProperties { unexpected } => {
            unknown_properties(unexpected)
        }
        K::Required { property } => match property.as_str() {
            Some(name) => format!("missing required property '{}'", render_name(name)),
            None => "a required property is missing".to_owned(),
        },
        K::Type { kind } => match kind {
            TypeKind::Single(t) => format!("must be of type {t}"),
            TypeKind::Multiple(set) => {
                let names: Vec<&str> = set.iter().map(|t| t.as_str()).collect();
                format!("must be one of the types {}", names.join(", "))
            }
        },
        K::MaxLength { limit } => {
            format!("must be at most {limit} {}", plural(*limit, "character"))
        }
        K::MinLength { limit } => {
            format!("must be at least {limit} {}", plural(*limit, "character"))
        }
        K::Maximum { limit } => format!("must be at most {}", render_schema_value(limit, 64)),
        K::Minimum { limit } => format!("must be at least {}", render_schema_value(limit, 64)),
        K::ExclusiveMaximum { limit } => {
            format!("must be less than {}", render_schema_value(limit, 64))
        }
        K::ExclusiveMinimum { limit } => {
            format!("must be greater than {}", render_schema_value(limit, 64))
        }
        K::MultipleOf { .. } => "must be a multiple of the step the schema sets".to_owned(),
        K::Pattern { pattern } => {
            format!("does not match the required pattern {}", truncate_visible(pattern, 128))
        }
        K::BacktrackLimitExceeded { .. } | K::RegexEngineFailure { .. } => {
            "could not be checked against the required pattern; use a shorter, simpler value".to_owned()
        }
        K::Enum { options } => format!("must be one of {}", render_schema_value(options, 256)),
        K::Constant { expected_value } => {
            format!("must equal {}", render_schema_value(expected_value, 128))
        }
        K::MaxItems { limit } => format!("must have at most {limit} {}", plural(*limit, "item")),
        K::MinItems { limit } => format!("must have at least {limit} {}", plural(*limit, "item")),
        K::UniqueItems => "must not contain duplicate items".to_owned(),
        K::MaxProperties { limit } => {
            format!("must have at most {limit} {}", plural(*limit, "property"))
        }
        K::MinProperties { limit } => {
            format!("must have at least {limit} {}", plural(*limit, "property"))
        }
        K::AdditionalItems { limit } => format!("must have at most {limit} {}", plural(*limit as u64, "item")),
        K::UnevaluatedItems { .. } => "has items the schema does not allow".to_owned(),
        K::Contains => "must contain at least one item of the required shape".to_owned(),
        K::Format { format } => format!("must be a valid {}", truncate_visible(format, 64)),
        K::ContentEncoding { content_encoding } => {
            format!("must be valid {} data", truncate_visible(content_encoding, 64))
        }
        K::FromUtf8 { .. } => "must decode to valid UTF-8".to_owned(),
        K::ContentMediaType { content_media_type } => {
            format!("must be valid {} content", truncate_visible(content_media_type, 64))
        }
        K::AnyOf { .. } | K::OneOfNotValid { .. } => "does not match any of the allowed shapes".to_owned(),
        K::OneOfMultipleValid { .. } => "matches more than one of the allowed shapes".to_owned(),
        K::Not { .. } => "matches a shape that is not allowed".to_owned(),
        K::PropertyNames { .. } => "has a property name that is not allowed".to_owned(),
        K::FalseSchema => "is not allowed here".to_owned(),
        K::Custom { keyword, .. } => format!("fails the '{}' check", truncate_visible(keyword, 64)),
        K::Referencing(_) => "could not be checked (schema reference unavailable)".to_owned(),
    }
}

fn unknown_properties(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let listed: Vec<String> = names.iter().take(SHOWN).map(|n| format!("'{}'", render_name(n))).collect();
    let more = names.len().saturating_sub(SHOWN);
    let suffix = if more > 0 { format!(" (and {more} more)") } else { String::new() };
    match names.len() {
        0 => "has a property that is not allowed".to_owned(),
        1 => format!("unknown property {} is not allowed{suffix}", listed.join(", ")),
        _ => format!("unknown properties {} are not allowed{suffix}", listed.join(", ")),
    }
}

fn plural(n: u64, word: &str) -> String {
    match (n, word) {
        (1, _) => word.to_owned(),
        (_, "property") => "properties".to_owned(),
        _ => format!("{word}s"),
    }
}

/// `(root)` for the whole instance, else the JSON pointer, bounded and made visible.
fn render_location(pointer: &str) -> String {
    if pointer.is_empty() { "(root)".to_owned() } else { truncate_visible(pointer, MAX_NAME_CHARS * 2) }
}

fn render_name(name: &str) -> String {
    truncate_visible(name, MAX_NAME_CHARS)
}

/// A schema-side value (limit, enum options) as compact JSON, bounded.
fn render_schema_value(value: &Value, max_chars: usize) -> String {
    truncate_visible(&value.to_string(), max_chars)
}

/// Replaces control and invisible characters with `?` and cuts to `max` characters with `…`,
/// so nothing a caller chose can hide in or bloat a message.
fn truncate_visible(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() || crate::sanitize::is_invisible(c) { '?' } else { c });
    }
    out
}

/// Problems that make a tool's input schema less strict than this server requires: the root is
/// a 2020-12 object schema that forbids unknown properties and lists `required`; every object
/// forbids unknown properties; every string has `maxLength` (or an `enum`/`const`); every number
/// has `minimum` and `maximum`; every array has `maxItems` and typed `items`. Empty when strict.
/// Tools are checked with this in tests (the registry does not enforce it, so test-only tools
/// may be lax).
pub fn strictness_problems(schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if schema.get("$schema").and_then(Value::as_str) != Some("https://json-schema.org/draft/2020-12/schema") {
        problems.push("(root): `$schema` must be the 2020-12 meta-schema".to_owned());
    }
    if schema.get("required").and_then(Value::as_array).is_none() {
        problems.push("(root): `required` must be listed explicitly (use [] when nothing is)".to_owned());
    }
    check_node(schema, "(root)", &mut problems);
    problems
}

fn check_node(node: &Value, at: &str, problems: &mut Vec<String>) {
    if node.get("enum").is_some() || node.get("const").is_some() {
        return;
    }
    match node.get("type").and_then(Value::as_str) {
        Some("object") => {
            if node.get("additionalProperties") != Some(&Value::Bool(false)) {
                problems.push(format!("{at}: objects must set `additionalProperties: false`"));
            }
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    check_node(sub, &format!("{at}/{name}"), problems);
                }
            }
        }
        Some("string") => {
            if node.get("maxLength").and_then(Value::as_u64).is_none() {
                problems.push(format!("{at}: strings must set `maxLength`"));
            }
        }
        Some("integer" | "number") => {
            if node.get("minimum").is_none() || node.get("maximum").is_none() {
                problems.push(format!("{at}: numbers must set `minimum` and `maximum`"));
            }
        }
        Some("array") => {
            if node.get("maxItems").and_then(Value::as_u64).is_none() {
                problems.push(format!("{at}: arrays must set `maxItems`"));
            }
            match node.get("items") {
                Some(items) => check_node(items, &format!("{at}/items"), problems),
                None => problems.push(format!("{at}: arrays must set `items`")),
            }
        }
        Some("boolean") => {}
        _ => problems.push(format!("{at}: must declare a single `type`")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn strict() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "required": ["path"],
            "properties": {
                "path": { "type": "string", "minLength": 1, "maxLength": 16, "pattern": "^[a-z/]+$" },
                "limit": { "type": "integer", "minimum": 1, "maximum": 50 },
                "category": { "type": "string", "maxLength": 32 },
                "order_by": { "type": "string", "enum": ["name", "price_cents"] },
                "columns": {
                    "type": "array", "maxItems": 3, "uniqueItems": true,
                    "items": { "type": "string", "enum": ["id", "name"] }
                }
            }
        })
    }

    fn validator() -> InputValidator {
        InputValidator::compile(&strict()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn errors(instance: Value) -> Vec<String> {
        match validator().validate(&instance) {
            Ok(()) => panic!("expected errors for {instance}"),
            Err(messages) => messages,
        }
    }

    #[test]
    fn valid_instance_passes() {
        assert_eq!(validator().validate(&json!({ "path": "a/b", "limit": 5 })), Ok(()));
    }

    #[test]
    fn messages_are_actionable() {
        assert_eq!(errors(json!({ "path": "a", "limit": 51 })), vec!["/limit: must be at most 50"]);
        assert_eq!(errors(json!({ "path": "a", "limit": 0 })), vec!["/limit: must be at least 1"]);
        assert_eq!(errors(json!({})), vec!["(root): missing required property 'path'"]);
        assert_eq!(errors(json!({ "path": 3 })), vec!["/path: must be of type string"]);
        assert_eq!(errors(json!({ "path": "a", "x": 1 })), vec!["(root): unknown property 'x' is not allowed"]);
        assert_eq!(
            errors(json!({ "path": "a", "category": "c".repeat(33) })),
            vec!["/category: must be at most 32 characters"]
        );
        assert_eq!(
            errors(json!({ "path": "" })),
            vec!["/path: must be at least 1 character", "/path: does not match the required pattern ^[a-z/]+$"]
        );
        assert_eq!(
            errors(json!({ "path": "a", "order_by": "x" })),
            vec![r#"/order_by: must be one of ["name","price_cents"]"#]
        );
        assert_eq!(
            errors(json!({ "path": "a", "columns": ["id", "id"] })),
            vec!["/columns: must not contain duplicate items"]
        );
        let m = errors(json!({ "path": "A" }));
        assert_eq!(m, vec!["/path: does not match the required pattern ^[a-z/]+$"]);
    }

    #[test]
    fn messages_never_echo_the_value() {
        let secret = "AKIAIOSFODNN7EXAMPLE";
        let instances = [
            json!({ "path": secret }),
            json!({ "path": "a", "category": format!("{secret}{}", "x".repeat(40)) }),
            json!({ "path": "a", "order_by": secret }),
            json!({ "path": "a", "columns": [secret] }),
            json!({ "path": "a", "limit": secret }),
            json!({ "path": "a", "x": secret }),
        ];
        for instance in instances {
            for message in errors(instance) {
                assert!(!message.contains(secret), "echoed: {message}");
            }
        }
    }

    #[test]
    fn unknown_property_names_are_cut_and_made_visible() {
        let long = format!("{}\u{202e}{}", "n".repeat(10), "m".repeat(200));
        let messages = errors(json!({ "path": "a", long: 1 }));
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("nnnnnnnnnn?mmm"));
        assert!(messages[0].contains('…'));
        assert!(!messages[0].contains('\u{202e}'));
        assert!(messages[0].chars().count() < 120);
    }

    #[test]
    fn number_of_messages_is_capped() {
        let schema = json!({
            "type": "array",
            "items": { "type": "string", "maxLength": 1 }
        });
        let v = InputValidator::compile(&schema).unwrap_or_else(|e| panic!("{e}"));
        let instance = Value::Array((0..100).map(|_| json!("xx")).collect());
        let messages = v.validate(&instance).err().unwrap_or_default();
        assert_eq!(messages.len(), MAX_MESSAGES);
        assert!(messages[MAX_MESSAGES - 1].contains("more problems"));
        assert_eq!(messages[0], "/0: must be at most 1 character");
    }

    #[test]
    fn external_refs_do_not_compile_and_are_not_fetched() {
        for uri in ["https://example.invalid/schema.json", "http://127.0.0.1:9/x.json", "file:///etc/passwd"] {
            let schema = json!({ "type": "object", "properties": { "a": { "$ref": uri } } });
            let err = InputValidator::compile(&schema).err();
            assert!(err.is_some(), "{uri} compiled");
        }
    }

    #[test]
    fn internal_refs_work() {
        let schema = json!({
            "$defs": { "small": { "type": "integer", "maximum": 3 } },
            "type": "object",
            "properties": { "n": { "$ref": "#/$defs/small" } }
        });
        let v = InputValidator::compile(&schema).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.validate(&json!({ "n": 4 })), Err(vec!["/n: must be at most 3".to_owned()]));
    }

    #[test]
    fn invalid_schemas_and_backtracking_patterns_are_refused() {
        assert!(InputValidator::compile(&json!({ "type": "no-such-type" })).is_err());
        assert!(InputValidator::compile(&json!({ "minLength": -1 })).is_err());
        // Backreferences and look-around need a backtracking engine: refused, not run.
        assert!(InputValidator::compile(&json!({ "type": "string", "pattern": "(a)\\1" })).is_err());
        assert!(InputValidator::compile(&json!({ "type": "string", "pattern": "a(?=b)" })).is_err());
    }

    #[test]
    fn pathological_pattern_runs_in_linear_time() {
        let v = InputValidator::compile(&json!({ "type": "string", "maxLength": 100000, "pattern": "^(a+)+$" }))
            .unwrap_or_else(|e| panic!("{e}"));
        let start = std::time::Instant::now();
        let instance = Value::String(format!("{}!", "a".repeat(50_000)));
        assert!(v.validate(&instance).is_err());
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn strictness_lint() {
        assert!(strictness_problems(&strict()).is_empty(), "{:?}", strictness_problems(&strict()));
        let lax = json!({
            "type": "object",
            "properties": { "s": { "type": "string" }, "n": { "type": "integer" } }
        });
        let problems = strictness_problems(&lax);
        assert_eq!(problems.len(), 5, "{problems:?}");
    }
}
