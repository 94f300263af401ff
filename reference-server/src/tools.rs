//! Tools: the trait every tool implements, their metadata, and the registry that validates
//! arguments against each tool's compiled input schema before the tool runs.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};

use crate::auth::{Principal, Tier};
use crate::schema::{self, InputValidator};
use crate::session::Peer;

pub mod admin;
pub mod documents;
pub mod files;
pub mod notes;
pub mod query;

/// Behaviour hints published with a tool. They must be true: the harness checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

/// A tool's published metadata and the tier needed to see and call it.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: String,
    pub title: String,
    pub description: String,
    /// A JSON Schema 2020-12 object schema; strict (`additionalProperties: false`).
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    pub annotations: Annotations,
    pub tier: Tier,
}

impl ToolSpec {
    /// The `Tool` object of `tools/list`.
    pub fn to_json(&self) -> Value {
        let a = &self.annotations;
        let mut tool = json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "annotations": {
                "title": self.title,
                "readOnlyHint": a.read_only,
                "destructiveHint": a.destructive,
                "idempotentHint": a.idempotent,
                "openWorldHint": a.open_world,
            },
        });
        if let Some(output) = &self.output_schema {
            tool["outputSchema"] = output.clone();
        }
        tool
    }
}

/// What a running tool can reach: who called it and the client connection.
pub struct ToolContext {
    pub principal: Principal,
    /// Sends notifications (logging, progress) and requests (sampling, elicitation) to the client.
    pub peer: Peer,
    /// `params._meta.progressToken` of the call, if the client asked for progress.
    pub progress_token: Option<Value>,
}

impl ToolContext {
    /// Sends `notifications/progress` if the client asked for progress; otherwise does nothing.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else { return };
        let mut params = json!({ "progressToken": token, "progress": progress });
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        self.peer.notify("notifications/progress", params).await;
    }
}

/// The successful outcome of a tool call (which may still be a tool-level error, `is_error`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    /// Content items (`{"type":"text","text":…}`, images, resources…).
    pub content: Vec<Value>,
    /// `structuredContent`, present when the tool declares an output schema.
    pub structured: Option<Value>,
    pub is_error: bool,
}

impl ToolOutput {
    /// One text item.
    pub fn text(text: impl Into<String>) -> Self {
        Self { content: vec![json!({ "type": "text", "text": text.into() })], ..Self::default() }
    }

    /// A tool-level error the model can act on (`isError: true`).
    pub fn error(text: impl Into<String>) -> Self {
        Self { is_error: true, ..Self::text(text) }
    }

    /// Structured output plus its serialized copy as text, for older clients.
    pub fn structured(value: Value) -> Self {
        Self {
            content: vec![json!({ "type": "text", "text": value.to_string() })],
            structured: Some(value),
            is_error: false,
        }
    }
}

/// Why a tool did not produce output.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The caller's request cannot be served; the message is shown to the caller as an
    /// `isError` result and must say how to fix it without echoing secrets back.
    #[error("{0}")]
    Rejected(String),
    /// Something broke inside. The detail goes to the server log only; the caller sees a
    /// generic message.
    #[error("internal tool error: {0}")]
    Internal(String),
}

/// A callable tool.
pub trait Tool: Send + Sync + 'static {
    fn spec(&self) -> &ToolSpec;
    /// Runs the tool on arguments that already passed `spec().input_schema`.
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Map<String, Value>,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>>;
}

/// Every tool the server offers, each with its compiled input validator.
#[derive(Default)]
pub struct ToolRegistry {
    tools: Vec<(Arc<dyn Tool>, InputValidator)>,
    by_name: HashMap<String, usize>,
}

/// A tool could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("duplicate tool name `{0}`")]
    Duplicate(String),
    #[error("tool `{name}` has an invalid input schema: {source}")]
    Schema { name: String, source: schema::SchemaError },
}

impl ToolRegistry {
    pub fn register(&mut self, tool: Arc<dyn Tool>) -> Result<(), RegistryError> {
        let name = tool.spec().name.clone();
        if self.by_name.contains_key(&name) {
            return Err(RegistryError::Duplicate(name));
        }
        let validator = InputValidator::compile(&tool.spec().input_schema)
            .map_err(|source| RegistryError::Schema { name: name.clone(), source })?;
        self.by_name.insert(name, self.tools.len());
        self.tools.push((tool, validator));
        Ok(())
    }

    /// The tools `principal` may see, in registration order.
    pub fn visible_to<'a>(&'a self, principal: &'a Principal) -> impl Iterator<Item = &'a Arc<dyn Tool>> + 'a {
        self.tools.iter().map(|(t, _)| t).filter(|t| principal.may(t.spec().tier))
    }

    /// A tool by name with its validator, only if `principal` may use it: callers that may
    /// not cannot tell a hidden tool from a missing one.
    pub fn find(&self, name: &str, principal: &Principal) -> Option<(&Arc<dyn Tool>, &InputValidator)> {
        let (tool, validator) = self.tools.get(*self.by_name.get(name)?)?;
        principal.may(tool.spec().tier).then_some((tool, validator))
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}
