//! The fixtures the official MCP conformance suite (`@modelcontextprotocol/conformance`) expects
//! from a server: the "everything server" tools, resources, prompts and completions.
//!
//! They are served only under `--profile conformance`. The payloads follow the suite's reference
//! server (`examples/servers/typescript/everything-server.ts`), with the same security rules as
//! every other tool here: strict input schemas, bounded inputs, truthful annotations, template
//! parameters validated before use, and nothing the client sent echoed back unbounded.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};

use crate::auth::Tier;
use crate::jsonrpc::ErrorObject;
use crate::protocol::ProtocolVersion;
use crate::session::{LogLevel, PeerError};
use crate::tools::{Annotations, Tool, ToolContext, ToolError, ToolOutput, ToolSpec};

/// MCP's conventional error code for an unknown resource URI.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// A 1×1 red PNG (valid chunks and CRCs).
pub const TEST_IMAGE_PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// 2 ms of silence: RIFF/WAVE, PCM, mono, 8 kHz, 16-bit, 16 frames.
pub const TEST_AUDIO_WAV_BASE64: &str =
    "UklGRkQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YSAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";

/// The logger name of the fixtures' `notifications/message`.
pub const LOGGER: &str = "mcproof-conformance";

/// The pause between the notifications of the logging and progress fixtures.
const STEP_DELAY: Duration = Duration::from_millis(50);
/// The longest prompt or message a fixture tool accepts (also its schema's `maxLength`).
const MAX_TOOL_TEXT: usize = 4096;
/// The longest prompt argument or completion value accepted.
const MAX_ARGUMENT: usize = 1024;
/// The longest client-supplied text (a sampled answer, elicited content) a tool repeats.
const MAX_ECHO: usize = 2048;
/// The most completion values returned (the spec's cap).
const MAX_COMPLETIONS: usize = 100;

const TEMPLATE_URI: &str = "test://template/{id}/data";
const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

// ----------------------------------------------------------------------------------------------
// Tools

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    SimpleText,
    Image,
    Audio,
    EmbeddedResource,
    MultipleContent,
    Logging,
    Progress,
    Error,
    Sampling,
    Elicitation,
    ElicitationDefaults,
    ElicitationEnums,
    JsonSchema202012,
}

struct FixtureTool {
    spec: ToolSpec,
    kind: Kind,
}

/// The JSON Schema dialect of every fixture input schema.
const SCHEMA_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// A strict object schema with no properties: only `{}` is accepted.
fn no_arguments() -> Value {
    json!({
        "$schema": SCHEMA_2020_12,
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": false,
    })
}

/// A strict object schema with one required, bounded string property.
fn one_string(name: &str, description: &str) -> Value {
    json!({
        "$schema": SCHEMA_2020_12,
        "type": "object",
        "properties": { name: { "type": "string", "description": description, "minLength": 1, "maxLength": MAX_TOOL_TEXT } },
        "required": [name],
        "additionalProperties": false,
    })
}

/// The SEP-1613 schema: `$schema`, `$defs` and `additionalProperties` must reach the client
/// intact. The `address` property refers to `$defs/address` and repeats its keywords beside the
/// `$ref`: 2020-12 applies both, and `additionalProperties` only sees `properties` of its own
/// schema object, so the repetition keeps every node strict without rejecting valid input.
fn json_schema_2020_12() -> Value {
    let address_properties = json!({
        "street": { "type": "string", "maxLength": 256 },
        "city": { "type": "string", "maxLength": 256 },
    });
    json!({
        "$schema": SCHEMA_2020_12,
        "type": "object",
        "$defs": {
            "address": {
                "type": "object",
                "properties": address_properties,
                "required": [],
                "additionalProperties": false,
            }
        },
        "properties": {
            "name": { "type": "string", "maxLength": 256 },
            "address": {
                "$ref": "#/$defs/address",
                "type": "object",
                "properties": address_properties,
                "required": [],
                "additionalProperties": false,
            },
        },
        "required": [],
        "additionalProperties": false,
    })
}

fn fixture(name: &str, title: &str, description: &str, input_schema: Value, kind: Kind) -> Arc<dyn Tool> {
    // Asking the client (sampling, elicitation) can give a different answer each time; every
    // fixture is otherwise a pure function of its arguments. None touches anything outside.
    let asks_client =
        matches!(kind, Kind::Sampling | Kind::Elicitation | Kind::ElicitationDefaults | Kind::ElicitationEnums);
    let annotations = Annotations { read_only: true, destructive: false, idempotent: !asks_client, open_world: false };
    Arc::new(FixtureTool {
        spec: ToolSpec {
            name: name.to_owned(),
            title: title.to_owned(),
            description: description.to_owned(),
            input_schema,
            output_schema: None,
            annotations,
            tier: Tier::Public,
        },
        kind,
    })
}

/// The fixture tools, in the order `tools/list` shows them.
pub fn tools() -> Vec<Arc<dyn Tool>> {
    vec![
        fixture(
            "test_simple_text",
            "Simple text",
            "Conformance fixture: returns one text content item.",
            no_arguments(),
            Kind::SimpleText,
        ),
        fixture(
            "test_image_content",
            "Image content",
            "Conformance fixture: returns a 1x1 PNG image content item.",
            no_arguments(),
            Kind::Image,
        ),
        fixture(
            "test_audio_content",
            "Audio content",
            "Conformance fixture: returns a short WAV audio content item (audio/wav).",
            no_arguments(),
            Kind::Audio,
        ),
        fixture(
            "test_embedded_resource",
            "Embedded resource",
            "Conformance fixture: returns an embedded text resource.",
            no_arguments(),
            Kind::EmbeddedResource,
        ),
        fixture(
            "test_multiple_content_types",
            "Multiple content types",
            "Conformance fixture: returns text, image and embedded resource content together.",
            no_arguments(),
            Kind::MultipleContent,
        ),
        fixture(
            "test_tool_with_logging",
            "Tool with logging",
            "Conformance fixture: sends three log notifications while it runs.",
            no_arguments(),
            Kind::Logging,
        ),
        fixture(
            "test_tool_with_progress",
            "Tool with progress",
            "Conformance fixture: reports progress 0, 50 and 100 of 100 when the call carries a progress token.",
            no_arguments(),
            Kind::Progress,
        ),
        fixture(
            "test_error_handling",
            "Error handling",
            "Conformance fixture: always returns a tool error result (isError: true).",
            no_arguments(),
            Kind::Error,
        ),
        fixture(
            "test_sampling",
            "Sampling",
            "Conformance fixture: asks the client to sample an LLM completion for the prompt and returns the answer.",
            one_string("prompt", "The prompt to send to the client's LLM."),
            Kind::Sampling,
        ),
        fixture(
            "test_elicitation",
            "Elicitation",
            "Conformance fixture: asks the client's user for a response, showing the message, and returns what they chose.",
            one_string("message", "The message to show the user."),
            Kind::Elicitation,
        ),
        fixture(
            "test_elicitation_sep1034_defaults",
            "Elicitation with defaults",
            "Conformance fixture: elicits a form whose string, integer, number, enum and boolean fields have defaults (SEP-1034).",
            no_arguments(),
            Kind::ElicitationDefaults,
        ),
        fixture(
            "test_elicitation_sep1330_enums",
            "Elicitation with enums",
            "Conformance fixture: elicits a form with untitled, titled and legacy single- and multi-select enums (SEP-1330).",
            no_arguments(),
            Kind::ElicitationEnums,
        ),
        fixture(
            "json_schema_2020_12_tool",
            "JSON Schema 2020-12",
            "Conformance fixture: takes an optional name and address described with JSON Schema 2020-12 $defs (SEP-1613) and returns them.",
            json_schema_2020_12(),
            Kind::JsonSchema202012,
        ),
    ]
}

impl Tool for FixtureTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Map<String, Value>,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            Ok(match self.kind {
                Kind::SimpleText => ToolOutput::text("This is a simple text response for testing."),
                Kind::Image => content(vec![image_item()]),
                Kind::Audio => {
                    content(vec![json!({ "type": "audio", "data": TEST_AUDIO_WAV_BASE64, "mimeType": "audio/wav" })])
                }
                Kind::EmbeddedResource => content(vec![json!({
                    "type": "resource",
                    "resource": {
                        "uri": "test://embedded-resource",
                        "mimeType": "text/plain",
                        "text": "This is an embedded resource content.",
                    },
                })]),
                Kind::MultipleContent => content(vec![
                    json!({ "type": "text", "text": "Multiple content types test:" }),
                    image_item(),
                    json!({
                        "type": "resource",
                        "resource": {
                            "uri": "test://mixed-content-resource",
                            "mimeType": "application/json",
                            "text": json!({ "test": "data", "value": 123 }).to_string(),
                        },
                    }),
                ]),
                Kind::Logging => {
                    let steps = ["Tool execution started", "Tool processing data", "Tool execution completed"];
                    for (i, step) in steps.into_iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(STEP_DELAY).await;
                        }
                        ctx.peer.log(LogLevel::Info, LOGGER, json!(step)).await;
                    }
                    ToolOutput::text("Tool with logging executed successfully")
                }
                Kind::Progress => {
                    for (i, step) in [0u32, 50, 100].into_iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(STEP_DELAY).await;
                        }
                        let message = format!("Completed step {step} of 100");
                        ctx.progress(f64::from(step), Some(100.0), Some(&message)).await;
                    }
                    ToolOutput::text("Progress reported: 0, 50 and 100 of 100")
                }
                Kind::Error => ToolOutput::error("This tool intentionally returns an error for testing"),
                Kind::Sampling => sample(ctx, string_arg(&args, "prompt")).await,
                Kind::Elicitation => {
                    let schema = json!({
                        "type": "object",
                        "properties": { "response": { "type": "string", "description": "User's response" } },
                        "required": ["response"],
                    });
                    elicit(ctx, string_arg(&args, "message"), schema, "User response").await
                }
                Kind::ElicitationDefaults => {
                    let message = "Please review and update the form fields with defaults";
                    elicit(ctx, message, sep1034_schema(), "Elicitation completed").await
                }
                Kind::ElicitationEnums => {
                    let message = "Please select options from the enum fields";
                    elicit(ctx, message, sep1330_schema(), "Elicitation completed").await
                }
                Kind::JsonSchema202012 => {
                    // The arguments passed the schema: only known, bounded fields are present.
                    ToolOutput::text(format!("JSON Schema 2020-12 tool called with: {}", Value::Object(args)))
                }
            })
        })
    }
}

fn content(items: Vec<Value>) -> ToolOutput {
    ToolOutput { content: items, structured: None, is_error: false }
}

fn image_item() -> Value {
    json!({ "type": "image", "data": TEST_IMAGE_PNG_BASE64, "mimeType": "image/png" })
}

/// A required string argument; the schema guarantees it is there.
fn string_arg<'a>(args: &'a Map<String, Value>, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// At most `max` characters of client-supplied text.
fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The tool-level error for a server-to-client request that got no usable answer. The
/// client's own error object is not repeated.
fn peer_failure(what: &str, error: &PeerError) -> ToolOutput {
    ToolOutput::error(match error {
        PeerError::Unsupported(capability) => {
            format!("The client did not declare the `{capability}` capability, so {what} is not possible.")
        }
        PeerError::Timeout => format!("The client did not answer the {what} request in time."),
        PeerError::Closed => {
            format!("The connection closed before the client answered the {what} request.")
        }
        PeerError::Rejected(_) => format!("The client refused the {what} request."),
    })
}

async fn sample(ctx: &ToolContext, prompt: &str) -> ToolOutput {
    let params = json!({
        "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
        "maxTokens": 100,
    });
    match ctx.peer.request("sampling", "sampling/createMessage", params).await {
        Ok(result) => match sampled_text(&result) {
            Some(text) => ToolOutput::text(format!("LLM response: {}", bounded(text, MAX_ECHO))),
            None => ToolOutput::error("The client's sampling answer held no text content."),
        },
        Err(error) => peer_failure("sampling", &error),
    }
}

/// The text of a `CreateMessageResult`: `content` is one block, or (2025-11-25) an array of them.
fn sampled_text(result: &Value) -> Option<&str> {
    let content = result.get("content")?;
    let blocks: Vec<&Value> = match content {
        Value::Array(items) => items.iter().collect(),
        block => vec![block],
    };
    blocks
        .into_iter()
        .find(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .and_then(|b| b.get("text"))
        .and_then(Value::as_str)
}

async fn elicit(ctx: &ToolContext, message: &str, requested_schema: Value, label: &str) -> ToolOutput {
    let mut params = json!({ "message": message, "requestedSchema": requested_schema });
    // `mode` exists from 2025-11-25 (SEP-1036); older clients do not know it.
    if ctx.peer.session().protocol_version >= ProtocolVersion::V2025_11_25 {
        params["mode"] = json!("form");
    }
    match ctx.peer.request("elicitation", "elicitation/create", params).await {
        Ok(result) => {
            let action = result.get("action").and_then(Value::as_str);
            let Some(action @ ("accept" | "decline" | "cancel")) = action else {
                return ToolOutput::error("The client's elicitation answer had no valid action.");
            };
            let content = match result.get("content") {
                Some(c @ Value::Object(_)) => c.to_string(),
                _ => "{}".to_owned(),
            };
            ToolOutput::text(format!("{label}: action={action}, content={}", bounded(&content, MAX_ECHO)))
        }
        Err(error) => peer_failure("elicitation", &error),
    }
}

fn sep1034_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "User name", "default": "John Doe" },
            "age": { "type": "integer", "description": "User age", "default": 30 },
            "score": { "type": "number", "description": "User score", "default": 95.5 },
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active",
            },
            "verified": { "type": "boolean", "description": "Verification status", "default": true },
        },
        "required": [],
    })
}

fn sep1330_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "description": "Select one option",
                "enum": ["option1", "option2", "option3"],
            },
            "titledSingle": {
                "type": "string",
                "description": "Select one option with titles",
                "oneOf": [
                    { "const": "value1", "title": "First Option" },
                    { "const": "value2", "title": "Second Option" },
                    { "const": "value3", "title": "Third Option" },
                ],
            },
            "legacyEnum": {
                "type": "string",
                "description": "Select one option (legacy)",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {
                "type": "array",
                "description": "Select multiple options",
                "minItems": 1,
                "maxItems": 3,
                "items": { "type": "string", "enum": ["option1", "option2", "option3"] },
            },
            "titledMulti": {
                "type": "array",
                "description": "Select multiple options with titles",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "anyOf": [
                        { "const": "value1", "title": "First Choice" },
                        { "const": "value2", "title": "Second Choice" },
                        { "const": "value3", "title": "Third Choice" },
                    ]
                },
            },
        },
        "required": [],
    })
}

// ----------------------------------------------------------------------------------------------
// Resources, prompts and completions

enum Body {
    Text(&'static str),
    Blob(&'static str),
}

struct StaticResource {
    uri: &'static str,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    mime_type: &'static str,
    body: Body,
}

const RESOURCES: &[StaticResource] = &[
    StaticResource {
        uri: "test://static-text",
        name: "static-text",
        title: "Static Text Resource",
        description: "A static text resource for testing",
        mime_type: "text/plain",
        body: Body::Text("This is the content of the static text resource."),
    },
    StaticResource {
        uri: "test://static-binary",
        name: "static-binary",
        title: "Static Binary Resource",
        description: "A static binary resource (a 1x1 PNG image) for testing",
        mime_type: "image/png",
        body: Body::Blob(TEST_IMAGE_PNG_BASE64),
    },
    StaticResource {
        uri: "test://watched-resource",
        name: "watched-resource",
        title: "Watched Resource",
        description: "A resource clients may subscribe to",
        mime_type: "text/plain",
        body: Body::Text("Watched resource content"),
    },
    StaticResource {
        uri: "test://example-resource",
        name: "example-resource",
        title: "Example Resource",
        description: "A text resource that prompts can embed",
        mime_type: "text/plain",
        body: Body::Text("Embedded resource content for testing."),
    },
];

/// A prompt argument: its name, description and the completion candidates offered for it.
struct PromptArg {
    name: &'static str,
    description: &'static str,
    candidates: &'static [&'static str],
}

struct Prompt {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    args: &'static [PromptArg],
}

const PROMPTS: &[Prompt] = &[
    Prompt {
        name: "test_simple_prompt",
        title: "Simple Test Prompt",
        description: "A simple prompt without arguments",
        args: &[],
    },
    Prompt {
        name: "test_prompt_with_arguments",
        title: "Prompt With Arguments",
        description: "A prompt with two required arguments",
        args: &[
            PromptArg {
                name: "arg1",
                description: "First test argument",
                candidates: &["test", "testValue1", "example"],
            },
            PromptArg {
                name: "arg2",
                description: "Second test argument",
                candidates: &["test", "testValue2", "sample"],
            },
        ],
    },
    Prompt {
        name: "test_prompt_with_embedded_resource",
        title: "Prompt With Embedded Resource",
        description: "A prompt that embeds one of this server's resources",
        args: &[PromptArg {
            name: "resourceUri",
            description: "URI of the resource to embed (one listed by resources/list)",
            candidates: &[
                "test://static-text",
                "test://static-binary",
                "test://watched-resource",
                "test://example-resource",
            ],
        }],
    },
    Prompt {
        name: "test_prompt_with_image",
        title: "Prompt With Image",
        description: "A prompt that includes image content",
        args: &[],
    },
];

/// Completion candidates for the template's `{id}`.
const TEMPLATE_ID_CANDIDATES: &[&str] = &["123", "example", "sample"];

/// The id of a `test://template/{id}/data` URI, if the URI has that shape and the id is
/// 1–64 characters of `[A-Za-z0-9_-]`.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri.strip_prefix(TEMPLATE_PREFIX)?.strip_suffix(TEMPLATE_SUFFIX)?;
    let valid = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    valid.then_some(id)
}

fn not_found() -> ErrorObject {
    ErrorObject::new(RESOURCE_NOT_FOUND, "Resource not found")
}

fn user_message(content: Value) -> Value {
    json!({ "role": "user", "content": content })
}

fn text_block(text: &str) -> Value {
    json!({ "type": "text", "text": text })
}

/// The fixture resources, prompts and completions. Stateless: subscriptions live in the session.
#[derive(Debug, Default, Clone)]
pub struct Fixtures {
    _private: (),
}

impl Fixtures {
    pub fn new() -> Self {
        Self::default()
    }

    /// The result of `resources/list`.
    pub fn resources_list(&self) -> Value {
        let resources: Vec<Value> = RESOURCES
            .iter()
            .map(|r| {
                json!({
                    "uri": r.uri,
                    "name": r.name,
                    "title": r.title,
                    "description": r.description,
                    "mimeType": r.mime_type,
                })
            })
            .collect();
        json!({ "resources": resources })
    }

    /// The result of `resources/templates/list`.
    pub fn resource_templates_list(&self) -> Value {
        json!({
            "resourceTemplates": [{
                "uriTemplate": TEMPLATE_URI,
                "name": "template",
                "title": "Resource Template",
                "description": "A resource template with parameter substitution; id is 1-64 characters of A-Z, a-z, 0-9, _ and -",
                "mimeType": "application/json",
            }]
        })
    }

    /// The result of `resources/read`; an unknown URI (or a template id that fails validation)
    /// is `-32002 Resource not found`.
    pub fn resource_read(&self, uri: &str) -> Result<Value, ErrorObject> {
        if let Some(r) = RESOURCES.iter().find(|r| r.uri == uri) {
            let item = match r.body {
                Body::Text(text) => json!({ "uri": r.uri, "mimeType": r.mime_type, "text": text }),
                Body::Blob(blob) => json!({ "uri": r.uri, "mimeType": r.mime_type, "blob": blob }),
            };
            return Ok(json!({ "contents": [item] }));
        }
        let id = template_id(uri).ok_or_else(not_found)?;
        let text = json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") }).to_string();
        Ok(json!({ "contents": [{ "uri": uri, "mimeType": "application/json", "text": text }] }))
    }

    /// Whether `uri` names a resource this server can read (for `resources/subscribe`).
    pub fn resource_exists(&self, uri: &str) -> bool {
        RESOURCES.iter().any(|r| r.uri == uri) || template_id(uri).is_some()
    }

    /// The result of `prompts/list`.
    pub fn prompts_list(&self) -> Value {
        let prompts: Vec<Value> = PROMPTS
            .iter()
            .map(|p| {
                let mut prompt = json!({ "name": p.name, "title": p.title, "description": p.description });
                if !p.args.is_empty() {
                    let args: Vec<Value> = p
                        .args
                        .iter()
                        .map(|a| json!({ "name": a.name, "description": a.description, "required": true }))
                        .collect();
                    prompt["arguments"] = json!(args);
                }
                prompt
            })
            .collect();
        json!({ "prompts": prompts })
    }

    /// The result of `prompts/get`. Unknown prompts, missing, unexpected, non-string or
    /// over-long arguments are `-32602`.
    pub fn prompt_get(&self, name: &str, args: &Map<String, Value>) -> Result<Value, ErrorObject> {
        let prompt =
            PROMPTS.iter().find(|p| p.name == name).ok_or_else(|| ErrorObject::invalid_params("Unknown prompt"))?;
        let expected: Vec<&str> = prompt.args.iter().map(|a| a.name).collect();
        if args.keys().any(|k| !expected.contains(&k.as_str())) {
            let takes = if expected.is_empty() { "no arguments".to_owned() } else { expected.join(", ") };
            return Err(ErrorObject::invalid_params(format!(
                "Unexpected argument: prompt `{}` takes {takes}",
                prompt.name
            )));
        }
        let arg = |arg_name: &str| -> Result<&str, ErrorObject> {
            let value = args
                .get(arg_name)
                .ok_or_else(|| ErrorObject::invalid_params(format!("Missing required argument `{arg_name}`")))?;
            value.as_str().filter(|v| v.chars().count() <= MAX_ARGUMENT).ok_or_else(|| {
                ErrorObject::invalid_params(format!(
                    "Argument `{arg_name}` must be a string of at most {MAX_ARGUMENT} characters"
                ))
            })
        };
        let messages = match prompt.name {
            "test_simple_prompt" => vec![user_message(text_block("This is a simple prompt for testing."))],
            "test_prompt_with_arguments" => {
                let (arg1, arg2) = (arg("arg1")?, arg("arg2")?);
                vec![user_message(text_block(&format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")))]
            }
            "test_prompt_with_embedded_resource" => {
                let uri = arg("resourceUri")?;
                let contents = self.resource_read(uri).map_err(|_| {
                    ErrorObject::invalid_params(
                        "resourceUri must name a resource this server lists (see resources/list)",
                    )
                })?;
                let resource = contents["contents"][0].clone();
                vec![
                    user_message(json!({ "type": "resource", "resource": resource })),
                    user_message(text_block("Please process the embedded resource above.")),
                ]
            }
            "test_prompt_with_image" => {
                vec![user_message(image_item()), user_message(text_block("Please analyze the image above."))]
            }
            _ => return Err(ErrorObject::invalid_params("Unknown prompt")),
        };
        Ok(json!({ "description": prompt.description, "messages": messages }))
    }

    /// The result of `completion/complete` for the fixture prompts' arguments and the
    /// template's `id`: the candidates that start with the typed value.
    pub fn complete(&self, params: &Value) -> Result<Value, ErrorObject> {
        let reference = params
            .get("ref")
            .filter(|r| r.is_object())
            .ok_or_else(|| ErrorObject::invalid_params("completion/complete needs a `ref` object"))?;
        let argument = params
            .get("argument")
            .filter(|a| a.is_object())
            .ok_or_else(|| ErrorObject::invalid_params("completion/complete needs an `argument` object"))?;
        let (Some(arg_name), Some(value)) =
            (argument.get("name").and_then(Value::as_str), argument.get("value").and_then(Value::as_str))
        else {
            return Err(ErrorObject::invalid_params("argument needs string `name` and `value`"));
        };
        if value.chars().count() > MAX_ARGUMENT {
            return Err(ErrorObject::invalid_params(format!(
                "argument value is longer than {MAX_ARGUMENT} characters"
            )));
        }
        let candidates: &[&str] = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference.get("name").and_then(Value::as_str).unwrap_or_default();
                let prompt = PROMPTS
                    .iter()
                    .find(|p| p.name == name)
                    .ok_or_else(|| ErrorObject::invalid_params("Unknown prompt"))?;
                let arg = prompt
                    .args
                    .iter()
                    .find(|a| a.name == arg_name)
                    .ok_or_else(|| ErrorObject::invalid_params("The prompt has no such argument"))?;
                arg.candidates
            }
            Some("ref/resource") => {
                let uri = reference.get("uri").and_then(Value::as_str).unwrap_or_default();
                if uri != TEMPLATE_URI {
                    return Err(ErrorObject::invalid_params("Unknown resource template"));
                }
                if arg_name != "id" {
                    return Err(ErrorObject::invalid_params("The resource template has no such argument"));
                }
                TEMPLATE_ID_CANDIDATES
            }
            _ => {
                return Err(ErrorObject::invalid_params("ref.type must be ref/prompt or ref/resource"));
            }
        };
        let values: Vec<&str> =
            candidates.iter().copied().filter(|c| c.starts_with(value)).take(MAX_COMPLETIONS).collect();
        Ok(json!({ "completion": { "values": values, "total": values.len(), "hasMore": false } }))
    }
}

// ----------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Instant;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use tokio::sync::mpsc;

    use crate::auth::Principal;
    use crate::jsonrpc::INVALID_PARAMS;
    use crate::schema::{InputValidator, strictness_problems};
    use crate::session::{Peer, Session};

    fn tool(name: &str) -> Arc<dyn Tool> {
        tools().into_iter().find(|t| t.spec().name == name).unwrap_or_else(|| panic!("no fixture tool {name}"))
    }

    fn ctx_with(
        version: ProtocolVersion,
        caps: Value,
        progress_token: Option<Value>,
    ) -> (ToolContext, mpsc::Receiver<Value>, Arc<Session>) {
        let (tx, rx) = mpsc::channel(16);
        let session = Arc::new(Session::new(version, Principal::anonymous(), caps));
        let peer = Peer::new(tx, session.clone(), Duration::from_secs(1));
        (ToolContext { principal: Principal::anonymous(), peer, progress_token }, rx, session)
    }

    fn client_ctx() -> (ToolContext, mpsc::Receiver<Value>, Arc<Session>) {
        ctx_with(ProtocolVersion::LATEST, json!({ "sampling": {}, "elicitation": {} }), None)
    }

    fn args(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    async fn call(name: &str, ctx: &ToolContext, a: Value) -> ToolOutput {
        tool(name).call(ctx, args(a)).await.unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn drain(rx: &mut mpsc::Receiver<Value>) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(m);
        }
        out
    }

    #[test]
    fn tool_specs_are_strict_truthful_and_public() {
        let tools = tools();
        assert_eq!(tools.len(), 13);
        let mut names: Vec<&str> = tools.iter().map(|t| t.spec().name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 13, "duplicate names");
        for t in &tools {
            let s = t.spec();
            assert!(!s.description.trim().is_empty(), "{}", s.name);
            assert!(!s.title.trim().is_empty(), "{}", s.name);
            assert_eq!(s.tier, Tier::Public, "{}", s.name);
            assert_eq!(s.input_schema["type"], "object", "{}", s.name);
            assert_eq!(s.input_schema["additionalProperties"], false, "{}", s.name);
            assert_eq!(strictness_problems(&s.input_schema), Vec::<String>::new(), "{}", s.name);
            let a = s.annotations;
            assert!(a.read_only && !a.destructive && !a.open_world, "{}", s.name);
            let asks_client = s.name.contains("sampling") || s.name.contains("elicitation");
            assert_eq!(a.idempotent, !asks_client, "{}", s.name);
            let listed = s.to_json();
            assert_eq!(listed["inputSchema"], s.input_schema);
            let validator = InputValidator::compile(&s.input_schema).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            assert!(validator.validate(&json!({ "unexpected": 1 })).is_err(), "{}: accepts unknown args", s.name);
        }
    }

    #[test]
    fn schemas_accept_what_the_suite_sends_and_reject_the_rest() {
        let validator =
            |name: &str| InputValidator::compile(&tool(name).spec().input_schema).unwrap_or_else(|e| panic!("{e}"));
        for name in [
            "test_simple_text",
            "test_image_content",
            "test_audio_content",
            "test_embedded_resource",
            "test_multiple_content_types",
            "test_tool_with_logging",
            "test_tool_with_progress",
            "test_error_handling",
            "test_elicitation_sep1034_defaults",
            "test_elicitation_sep1330_enums",
            "json_schema_2020_12_tool",
        ] {
            assert!(validator(name).validate(&json!({})).is_ok(), "{name}");
        }
        let sampling = validator("test_sampling");
        assert!(sampling.validate(&json!({ "prompt": "Test prompt for sampling" })).is_ok());
        assert!(sampling.validate(&json!({})).is_err());
        assert!(sampling.validate(&json!({ "prompt": 3 })).is_err());
        assert!(sampling.validate(&json!({ "prompt": "x".repeat(MAX_TOOL_TEXT + 1) })).is_err());
        let elicitation = validator("test_elicitation");
        assert!(elicitation.validate(&json!({ "message": "Please provide your information" })).is_ok());
        assert!(elicitation.validate(&json!({ "message": "" })).is_err());
        let schema = validator("json_schema_2020_12_tool");
        assert!(schema.validate(&json!({ "name": "a", "address": { "street": "b", "city": "c" } })).is_ok());
        assert!(schema.validate(&json!({ "address": { "zip": "1" } })).is_err());
        assert!(schema.validate(&json!({ "address": { "city": 5 } })).is_err());
    }

    #[test]
    fn json_schema_2020_12_tool_keeps_its_keywords() {
        let listed = tool("json_schema_2020_12_tool").spec().to_json();
        let schema = &listed["inputSchema"];
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert!(schema["$defs"]["address"].is_object());
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["address"]["$ref"], "#/$defs/address");
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    fn be32(b: &[u8]) -> u32 {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    fn le32(b: &[u8]) -> u32 {
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    #[test]
    fn the_png_is_valid() {
        let png = STANDARD.decode(TEST_IMAGE_PNG_BASE64).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let mut chunks = Vec::new();
        let mut i = 8;
        while i < png.len() {
            let len = be32(&png[i..]) as usize;
            let kind = &png[i + 4..i + 8];
            let data_end = i + 8 + len;
            assert_eq!(crc32(&png[i + 4..data_end]), be32(&png[data_end..]), "CRC of {kind:?}");
            chunks.push(String::from_utf8_lossy(kind).into_owned());
            i = data_end + 4;
        }
        assert_eq!(i, png.len());
        assert_eq!(chunks, ["IHDR", "IDAT", "IEND"]);
        assert_eq!((be32(&png[16..]), be32(&png[20..])), (1, 1), "1x1 pixels");
    }

    #[test]
    fn the_wav_is_valid() {
        let wav = STANDARD.decode(TEST_AUDIO_WAV_BASE64).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(le32(&wav[4..]) as usize, wav.len() - 8);
        assert_eq!(&wav[8..16], b"WAVEfmt ");
        assert_eq!(le32(&wav[16..]), 16);
        let (format, channels) = (u16::from_le_bytes([wav[20], wav[21]]), u16::from_le_bytes([wav[22], wav[23]]));
        let (rate, byte_rate) = (le32(&wav[24..]), le32(&wav[28..]));
        let (align, bits) = (u16::from_le_bytes([wav[32], wav[33]]), u16::from_le_bytes([wav[34], wav[35]]));
        assert_eq!((format, channels, rate, bits), (1, 1, 8000, 16));
        assert_eq!(byte_rate, rate * u32::from(align));
        assert_eq!(u32::from(align), u32::from(channels) * u32::from(bits) / 8);
        assert_eq!(&wav[36..40], b"data");
        assert_eq!(le32(&wav[40..]) as usize, wav.len() - 44);
    }

    #[tokio::test]
    async fn content_fixtures_return_the_expected_items() {
        let (ctx, _rx, _s) = client_ctx();
        let out = call("test_simple_text", &ctx, json!({})).await;
        assert!(!out.is_error);
        assert_eq!(out.content, [json!({ "type": "text", "text": "This is a simple text response for testing." })]);

        let out = call("test_image_content", &ctx, json!({})).await;
        assert_eq!(out.content[0]["type"], "image");
        assert_eq!(out.content[0]["mimeType"], "image/png");
        assert_eq!(out.content[0]["data"], TEST_IMAGE_PNG_BASE64);

        let out = call("test_audio_content", &ctx, json!({})).await;
        assert_eq!(out.content[0]["type"], "audio");
        assert_eq!(out.content[0]["mimeType"], "audio/wav");
        assert_eq!(out.content[0]["data"], TEST_AUDIO_WAV_BASE64);

        let out = call("test_embedded_resource", &ctx, json!({})).await;
        let resource = &out.content[0]["resource"];
        assert_eq!(out.content[0]["type"], "resource");
        assert!(resource["uri"].is_string() && resource["mimeType"].is_string() && resource["text"].is_string());

        let out = call("test_multiple_content_types", &ctx, json!({})).await;
        let types: Vec<&str> = out.content.iter().filter_map(|c| c["type"].as_str()).collect();
        assert_eq!(types, ["text", "image", "resource"]);

        let out = call("test_error_handling", &ctx, json!({})).await;
        assert!(out.is_error);
        assert!(out.content[0]["text"].as_str().is_some_and(|t| !t.is_empty()));

        let out = call("json_schema_2020_12_tool", &ctx, json!({ "name": "n" })).await;
        assert_eq!(out.content[0]["text"], r#"JSON Schema 2020-12 tool called with: {"name":"n"}"#);
    }

    #[tokio::test]
    async fn the_output_sanitizer_leaves_fixture_texts_alone() {
        let (ctx, _rx, _s) = client_ctx();
        for name in [
            "test_simple_text",
            "test_embedded_resource",
            "test_multiple_content_types",
            "test_tool_with_logging",
            "test_tool_with_progress",
            "test_error_handling",
        ] {
            let out = call(name, &ctx, json!({})).await;
            for item in &out.content {
                for text in [&item["text"], &item["resource"]["text"]].into_iter().filter_map(Value::as_str) {
                    assert_eq!(crate::sanitize::sanitize_tool_text(text), text, "{name}");
                }
            }
        }
    }

    #[tokio::test]
    async fn logging_fixture_sends_three_spaced_messages() {
        let (ctx, mut rx, session) = client_ctx();
        session.set_log_level(LogLevel::Debug);
        let started = Instant::now();
        let out = call("test_tool_with_logging", &ctx, json!({})).await;
        assert!(started.elapsed() >= 2 * STEP_DELAY);
        assert!(!out.is_error);
        let sent = drain(&mut rx);
        assert_eq!(sent.len(), 3);
        for m in &sent {
            assert_eq!(m["method"], "notifications/message");
            assert_eq!(m["params"]["level"], "info");
            assert_eq!(m["params"]["logger"], LOGGER);
            assert!(m["params"]["data"].is_string());
            assert!(m.get("id").is_none());
        }

        // Above the session's level nothing is sent.
        session.set_log_level(LogLevel::Warning);
        call("test_tool_with_logging", &ctx, json!({})).await;
        assert!(drain(&mut rx).is_empty());
    }

    #[tokio::test]
    async fn progress_fixture_reports_increasing_progress_for_the_token() {
        let (ctx, mut rx, _s) = ctx_with(ProtocolVersion::LATEST, json!({}), Some(json!("progress-test-1")));
        let out = call("test_tool_with_progress", &ctx, json!({})).await;
        assert!(!out.is_error);
        let sent = drain(&mut rx);
        assert_eq!(sent.len(), 3);
        let progress: Vec<f64> = sent.iter().filter_map(|m| m["params"]["progress"].as_f64()).collect();
        assert_eq!(progress, [0.0, 50.0, 100.0]);
        for m in &sent {
            assert_eq!(m["method"], "notifications/progress");
            assert_eq!(m["params"]["progressToken"], "progress-test-1");
            assert_eq!(m["params"]["total"].as_f64(), Some(100.0));
        }

        // No token, no notifications.
        let (ctx, mut rx, _s) = client_ctx();
        call("test_tool_with_progress", &ctx, json!({})).await;
        assert!(drain(&mut rx).is_empty());
    }

    /// Runs `name` and answers its one server-to-client request with `answer`.
    async fn call_answering(
        name: &str,
        ctx: &ToolContext,
        rx: &mut mpsc::Receiver<Value>,
        session: &Session,
        a: Value,
        answer: Result<Value, Value>,
    ) -> (ToolOutput, Value) {
        let client = async {
            let request = rx.recv().await.unwrap_or_else(|| panic!("no request sent"));
            assert!(session.deliver_response(&request["id"], answer));
            request
        };
        tokio::join!(call(name, ctx, a), client)
    }

    #[tokio::test]
    async fn sampling_fixture_asks_the_client_and_returns_its_text() {
        let (ctx, mut rx, session) = client_ctx();
        let answer = json!({
            "role": "assistant",
            "content": { "type": "text", "text": "This is a test response from the client" },
            "model": "test-model",
            "stopReason": "endTurn",
        });
        let (out, request) = call_answering(
            "test_sampling",
            &ctx,
            &mut rx,
            &session,
            json!({ "prompt": "Test prompt for sampling" }),
            Ok(answer),
        )
        .await;
        assert_eq!(request["method"], "sampling/createMessage");
        assert_eq!(request["params"]["messages"][0]["content"]["text"], "Test prompt for sampling");
        assert_eq!(request["params"]["maxTokens"], 100);
        assert!(!out.is_error);
        assert_eq!(out.content[0]["text"], "LLM response: This is a test response from the client");

        // An array of content blocks (2025-11-25) works too.
        let answer = json!({ "role": "assistant", "content": [{ "type": "text", "text": "hi" }], "model": "m" });
        let (out, _) =
            call_answering("test_sampling", &ctx, &mut rx, &session, json!({ "prompt": "p" }), Ok(answer)).await;
        assert_eq!(out.content[0]["text"], "LLM response: hi");

        // A refusal is a tool error that does not repeat the client's error.
        let refusal = json!({ "code": -1, "message": "secret detail" });
        let (out, _) =
            call_answering("test_sampling", &ctx, &mut rx, &session, json!({ "prompt": "p" }), Err(refusal)).await;
        assert!(out.is_error);
        assert!(!out.content[0]["text"].as_str().unwrap_or_default().contains("secret detail"));
    }

    #[tokio::test]
    async fn sampling_without_the_capability_is_a_tool_error() {
        let (ctx, mut rx, _s) = ctx_with(ProtocolVersion::LATEST, json!({}), None);
        let out = call("test_sampling", &ctx, json!({ "prompt": "p" })).await;
        assert!(out.is_error);
        assert!(drain(&mut rx).is_empty(), "no request may be sent without the capability");
        let out = call("test_elicitation", &ctx, json!({ "message": "m" })).await;
        assert!(out.is_error);
    }

    #[tokio::test]
    async fn elicitation_fixture_reports_the_users_choice() {
        let (ctx, mut rx, session) = client_ctx();
        let answer = json!({ "action": "accept", "content": { "response": "yes" } });
        let (out, request) = call_answering(
            "test_elicitation",
            &ctx,
            &mut rx,
            &session,
            json!({ "message": "Please provide your information" }),
            Ok(answer),
        )
        .await;
        assert_eq!(request["method"], "elicitation/create");
        assert_eq!(request["params"]["mode"], "form");
        assert_eq!(request["params"]["message"], "Please provide your information");
        assert_eq!(request["params"]["requestedSchema"]["properties"]["response"]["type"], "string");
        assert!(!out.is_error);
        assert_eq!(out.content[0]["text"], r#"User response: action=accept, content={"response":"yes"}"#);

        let (out, _) = call_answering(
            "test_elicitation",
            &ctx,
            &mut rx,
            &session,
            json!({ "message": "m" }),
            Ok(json!({ "action": "bogus" })),
        )
        .await;
        assert!(out.is_error);
    }

    #[tokio::test]
    async fn elicitation_has_no_mode_before_2025_11_25() {
        let (ctx, mut rx, session) = ctx_with(ProtocolVersion::V2025_06_18, json!({ "elicitation": {} }), None);
        let (out, request) = call_answering(
            "test_elicitation",
            &ctx,
            &mut rx,
            &session,
            json!({ "message": "m" }),
            Ok(json!({ "action": "decline" })),
        )
        .await;
        assert!(request["params"].get("mode").is_none());
        assert_eq!(out.content[0]["text"], "User response: action=decline, content={}");
    }

    #[tokio::test]
    async fn sep1034_elicitation_carries_defaults_for_every_primitive() {
        let (ctx, mut rx, session) = client_ctx();
        let answer = json!({ "action": "accept", "content": { "name": "Jane Smith", "age": 25 } });
        let (out, request) =
            call_answering("test_elicitation_sep1034_defaults", &ctx, &mut rx, &session, json!({}), Ok(answer)).await;
        let p = &request["params"]["requestedSchema"]["properties"];
        assert_eq!((&p["name"]["type"], &p["name"]["default"]), (&json!("string"), &json!("John Doe")));
        assert_eq!((&p["age"]["type"], &p["age"]["default"]), (&json!("integer"), &json!(30)));
        assert_eq!((&p["score"]["type"], &p["score"]["default"]), (&json!("number"), &json!(95.5)));
        assert_eq!(p["status"]["default"], "active");
        assert!(p["status"]["enum"].as_array().is_some_and(|e| e.contains(&json!("active"))));
        assert_eq!((&p["verified"]["type"], &p["verified"]["default"]), (&json!("boolean"), &json!(true)));
        assert!(out.content[0]["text"].as_str().is_some_and(|t| t.starts_with("Elicitation completed: action=accept")));
    }

    #[tokio::test]
    async fn sep1330_elicitation_offers_every_enum_shape() {
        let (ctx, mut rx, session) = client_ctx();
        let (out, request) = call_answering(
            "test_elicitation_sep1330_enums",
            &ctx,
            &mut rx,
            &session,
            json!({}),
            Ok(json!({ "action": "cancel" })),
        )
        .await;
        let p = &request["params"]["requestedSchema"]["properties"];
        assert!(p["untitledSingle"]["enum"].is_array() && p["untitledSingle"].get("oneOf").is_none());
        let titled = p["titledSingle"]["oneOf"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(!titled.is_empty() && titled.iter().all(|o| o["const"].is_string() && o["title"].is_string()));
        assert!(p["titledSingle"].get("enum").is_none());
        assert_eq!(
            p["legacyEnum"]["enum"].as_array().map(Vec::len),
            p["legacyEnum"]["enumNames"].as_array().map(Vec::len)
        );
        assert_eq!(p["untitledMulti"]["type"], "array");
        assert!(p["untitledMulti"]["items"]["enum"].is_array());
        let any_of = p["titledMulti"]["items"]["anyOf"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(!any_of.is_empty() && any_of.iter().all(|o| o["const"].is_string() && o["title"].is_string()));
        assert_eq!(out.content[0]["text"], "Elicitation completed: action=cancel, content={}");
    }

    #[test]
    fn resources_are_listed_and_readable() {
        let fx = Fixtures::new();
        let list = fx.resources_list();
        let resources = list["resources"].as_array().map(Vec::as_slice).unwrap_or_default();
        for uri in ["test://static-text", "test://static-binary", "test://watched-resource", "test://example-resource"]
        {
            let r = resources.iter().find(|r| r["uri"] == uri).unwrap_or_else(|| panic!("{uri} not listed"));
            assert!(r["name"].is_string() && r["mimeType"].is_string());
            assert!(fx.resource_exists(uri));
            let read = fx.resource_read(uri).unwrap_or_else(|e| panic!("{uri}: {e:?}"));
            assert_eq!(read["contents"][0]["uri"], uri);
            assert_eq!(read["contents"][0]["mimeType"], r["mimeType"]);
        }
        let text = fx.resource_read("test://static-text").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(text["contents"][0]["text"], "This is the content of the static text resource.");
        let binary = fx.resource_read("test://static-binary").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(binary["contents"][0]["blob"], TEST_IMAGE_PNG_BASE64);
        assert!(binary["contents"][0].get("text").is_none());

        let templates = fx.resource_templates_list();
        assert_eq!(templates["resourceTemplates"][0]["uriTemplate"], TEMPLATE_URI);
        assert!(templates["resourceTemplates"][0]["name"].is_string());
    }

    #[test]
    fn template_substitutes_only_valid_ids() {
        let fx = Fixtures::new();
        let read = fx.resource_read("test://template/123/data").unwrap_or_else(|e| panic!("{e:?}"));
        let item = &read["contents"][0];
        assert_eq!(item["uri"], "test://template/123/data");
        let text = item["text"].as_str().unwrap_or_default();
        let parsed: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed, json!({ "id": "123", "templateTest": true, "data": "Data for ID: 123" }));
        assert!(fx.resource_exists("test://template/a_B-9/data"));
        let long = format!("test://template/{}/data", "a".repeat(65));
        for bad in [
            "test://template//data",
            "test://template/../data",
            "test://template/a/b/data",
            "test://template/a%2Fb/data",
            "test://template/<script>/data",
            "test://template/123/data/",
            "test://template/123",
            "test://nope",
            "file:///etc/passwd",
            "",
            long.as_str(),
        ] {
            let err = fx.resource_read(bad).err().unwrap_or_else(|| panic!("{bad} was read"));
            assert_eq!((err.code, err.message.as_str()), (RESOURCE_NOT_FOUND, "Resource not found"), "{bad}");
            assert!(err.data.is_none());
            assert!(!fx.resource_exists(bad), "{bad}");
        }
        assert!(fx.resource_read(&format!("test://template/{}/data", "a".repeat(64))).is_ok());
    }

    #[test]
    fn prompts_are_listed_and_rendered() {
        let fx = Fixtures::new();
        let list = fx.prompts_list();
        let prompts = list["prompts"].as_array().map(Vec::as_slice).unwrap_or_default();
        let names: Vec<&str> = prompts.iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "test_simple_prompt",
                "test_prompt_with_arguments",
                "test_prompt_with_embedded_resource",
                "test_prompt_with_image"
            ]
        );
        assert!(prompts.iter().all(|p| p["description"].as_str().is_some_and(|d| !d.is_empty())));
        let with_args = &prompts[1]["arguments"];
        assert_eq!(with_args[0]["name"], "arg1");
        assert_eq!(with_args[1]["required"], true);

        let empty = Map::new();
        let simple = fx.prompt_get("test_simple_prompt", &empty).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(simple["messages"][0]["role"], "user");
        assert_eq!(simple["messages"][0]["content"]["type"], "text");

        let a = args(json!({ "arg1": "testValue1", "arg2": "testValue2" }));
        let got = fx.prompt_get("test_prompt_with_arguments", &a).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            got["messages"][0]["content"]["text"],
            "Prompt with arguments: arg1='testValue1', arg2='testValue2'"
        );

        let a = args(json!({ "resourceUri": "test://example-resource" }));
        let got = fx.prompt_get("test_prompt_with_embedded_resource", &a).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(got["messages"][0]["content"]["type"], "resource");
        assert_eq!(got["messages"][0]["content"]["resource"]["uri"], "test://example-resource");
        assert_eq!(got["messages"][0]["content"]["resource"]["text"], "Embedded resource content for testing.");

        let got = fx.prompt_get("test_prompt_with_image", &empty).unwrap_or_else(|e| panic!("{e:?}"));
        let image = &got["messages"][0]["content"];
        assert_eq!((&image["type"], &image["mimeType"]), (&json!("image"), &json!("image/png")));
        assert_eq!(image["data"], TEST_IMAGE_PNG_BASE64);
    }

    #[test]
    fn bad_prompt_requests_are_invalid_params() {
        let fx = Fixtures::new();
        let cases = [
            ("nope", json!({})),
            ("test_prompt_with_arguments", json!({ "arg1": "a" })),
            ("test_prompt_with_arguments", json!({ "arg1": "a", "arg2": 2 })),
            ("test_prompt_with_arguments", json!({ "arg1": "a", "arg2": "b", "arg3": "c" })),
            ("test_prompt_with_arguments", json!({ "arg1": "a", "arg2": "b".repeat(MAX_ARGUMENT + 1) })),
            ("test_simple_prompt", json!({ "x": "y" })),
            ("test_prompt_with_embedded_resource", json!({ "resourceUri": "file:///etc/passwd" })),
            ("test_prompt_with_embedded_resource", json!({})),
        ];
        for (name, a) in cases {
            let err = fx.prompt_get(name, &args(a.clone())).err().unwrap_or_else(|| panic!("{name} {a} accepted"));
            assert_eq!(err.code, INVALID_PARAMS, "{name} {a}");
            assert!(!err.message.contains("/etc/passwd"));
        }
    }

    #[test]
    fn completion_answers_the_suites_request() {
        let fx = Fixtures::new();
        let params = json!({
            "ref": { "type": "ref/prompt", "name": "test_prompt_with_arguments" },
            "argument": { "name": "arg1", "value": "test" },
        });
        let got = fx.complete(&params).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(got, json!({ "completion": { "values": ["test", "testValue1"], "total": 2, "hasMore": false } }));

        let params = json!({
            "ref": { "type": "ref/resource", "uri": TEMPLATE_URI },
            "argument": { "name": "id", "value": "" },
        });
        let got = fx.complete(&params).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(got["completion"]["values"], json!(TEMPLATE_ID_CANDIDATES));

        let params = json!({
            "ref": { "type": "ref/prompt", "name": "test_prompt_with_arguments" },
            "argument": { "name": "arg2", "value": "zzz" },
        });
        let got = fx.complete(&params).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(got["completion"]["values"], json!([]));
    }

    #[test]
    fn bad_completion_requests_are_invalid_params() {
        let fx = Fixtures::new();
        let cases = [
            json!({}),
            json!({ "ref": { "type": "ref/prompt", "name": "nope" }, "argument": { "name": "arg1", "value": "" } }),
            json!({ "ref": { "type": "ref/prompt", "name": "test_simple_prompt" }, "argument": { "name": "arg1", "value": "" } }),
            json!({ "ref": { "type": "ref/resource", "uri": "test://other/{x}" }, "argument": { "name": "x", "value": "" } }),
            json!({ "ref": { "type": "ref/resource", "uri": TEMPLATE_URI }, "argument": { "name": "other", "value": "" } }),
            json!({ "ref": { "type": "ref/tool", "name": "x" }, "argument": { "name": "a", "value": "" } }),
            json!({ "ref": { "type": "ref/prompt", "name": "test_prompt_with_arguments" }, "argument": { "name": "arg1" } }),
            json!({ "ref": { "type": "ref/prompt", "name": "test_prompt_with_arguments" }, "argument": { "name": "arg1", "value": "v".repeat(MAX_ARGUMENT + 1) } }),
            json!({ "ref": "ref/prompt", "argument": { "name": "arg1", "value": "" } }),
        ];
        for params in cases {
            let err = fx.complete(&params).err().unwrap_or_else(|| panic!("{params} accepted"));
            assert_eq!(err.code, INVALID_PARAMS, "{params}");
        }
    }
}
