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
    /// A context whose client connection leads nowhere (messages are dropped), for tests and
    /// benchmarks that call tools directly.
    pub fn detached(principal: Principal) -> Self {
        let session = Arc::new(crate::session::Session::new(
            crate::protocol::ProtocolVersion::LATEST,
            principal.clone(),
            json!({}),
        ));
        let peer = Peer::new(tokio::sync::mpsc::channel(8).0, session, std::time::Duration::from_secs(1));
        Self { principal, peer, progress_token: None }
    }

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
    #[error("tool `{name}` cannot be set up: {reason}")]
    Setup { name: String, reason: String },
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

    /// The tier and read-only hint of a tool, whoever asks: for the scope decision and for
    /// auditing refusals, never for answering callers.
    pub fn requirements(&self, name: &str) -> Option<(Tier, bool)> {
        let (tool, _) = self.tools.get(*self.by_name.get(name)?)?;
        Some((tool.spec().tier, tool.spec().annotations.read_only))
    }

    /// The tier a tool requires, whoever asks: for auditing refusals, never for answering callers.
    pub fn required_tier(&self, name: &str) -> Option<Tier> {
        let (tool, _) = self.tools.get(*self.by_name.get(name)?)?;
        Some(tool.spec().tier)
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

/// What the standard tool set needs from its host.
#[derive(Debug, Clone)]
pub struct StandardDeps {
    /// Directory `read_file` is confined to. It must exist; [`crate::sandbox::seed`] fills a
    /// fresh one with demo files.
    pub sandbox_root: std::path::PathBuf,
    /// Notes shared by the `notes_*` tools and `admin_purge_notes`; a clone lets the host share
    /// or inspect them.
    pub notes: Arc<notes::NoteStore>,
}

impl StandardDeps {
    /// Dependencies with an empty note store.
    pub fn new(sandbox_root: impl Into<std::path::PathBuf>) -> Self {
        Self { sandbox_root: sandbox_root.into(), notes: Arc::new(notes::NoteStore::default()) }
    }
}

/// The server's standard tools: `query_products`, `read_file`, `fetch_document`,
/// `notes_create`, `notes_list`, `notes_delete` and `admin_purge_notes`.
///
/// Fails closed: a sandbox directory that cannot be opened (or a product database that cannot
/// be created) stops the server rather than leaving a tool silently broken.
pub fn standard_registry(deps: &StandardDeps) -> Result<ToolRegistry, RegistryError> {
    let setup = |name: &str, reason: String| RegistryError::Setup { name: name.to_owned(), reason };
    let sandbox = crate::sandbox::Sandbox::new(&deps.sandbox_root)
        .map_err(|e| setup("read_file", format!("cannot open the sandbox directory: {e}")))?;
    let products = query::ProductDb::seeded()
        .map_err(|e| setup("query_products", format!("cannot create the product database: {e}")))?;
    let tools: [Arc<dyn Tool>; 7] = [
        Arc::new(query::QueryProducts::new(Arc::new(products))),
        Arc::new(files::ReadFile::new(Arc::new(sandbox))),
        Arc::new(documents::FetchDocument::new()),
        Arc::new(notes::NotesCreate::new(Arc::clone(&deps.notes))),
        Arc::new(notes::NotesList::new(Arc::clone(&deps.notes))),
        Arc::new(notes::NotesDelete::new(Arc::clone(&deps.notes))),
        Arc::new(admin::AdminPurgeNotes::new(Arc::clone(&deps.notes))),
    ];
    let mut registry = ToolRegistry::default();
    for tool in tools {
        registry.register(tool)?;
    }
    Ok(registry)
}

#[cfg(test)]
mod standard_registry_tests {
    use super::*;

    fn registry() -> (tempfile::TempDir, ToolRegistry) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        crate::sandbox::seed(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let registry = standard_registry(&StandardDeps::new(dir.path())).unwrap_or_else(|e| panic!("{e}"));
        (dir, registry)
    }

    #[test]
    fn every_tool_is_strict_well_named_and_clean() {
        let (_dir, registry) = registry();
        let admin = Principal::admin("root");
        let names: Vec<String> = registry.visible_to(&admin).map(|t| t.spec().name.clone()).collect();
        assert_eq!(names.len(), 7);
        let name_re = regex::Regex::new("^[a-z][a-z0-9_]{0,63}$").unwrap_or_else(|e| panic!("{e}"));
        for name in &names {
            let (tool, validator) = registry.find(name, &admin).unwrap_or_else(|| panic!("{name} missing"));
            let spec = tool.spec();
            assert!(name_re.is_match(name), "{name}");
            assert!(!spec.description.trim().is_empty(), "{name}");
            let problems = schema::strictness_problems(&spec.input_schema);
            assert!(problems.is_empty(), "{name}: {problems:?}");
            let mut args = Map::new();
            args.insert("unexpected_extra".to_owned(), json!(1));
            let messages = validator.validate(&Value::Object(args)).err().unwrap_or_default();
            assert!(messages.iter().any(|m| m.contains("unknown property 'unexpected_extra'")), "{name}: {messages:?}");
            if let Some(output) = &spec.output_schema {
                assert!(InputValidator::compile(output).is_ok(), "{name} output schema");
            }
            let a = spec.annotations;
            assert!(!(a.read_only && a.destructive), "{name}: read-only tools cannot be destructive");
            assert!(!a.open_world, "{name}: no standard tool reaches outside the server");
            let metadata = crate::sanitize::sanitize(&spec.to_json().to_string());
            assert!(metadata.injection_markers.is_empty() && metadata.redactions == 0, "{name}");
            assert_eq!(metadata.removed_chars, 0, "{name}");
        }
    }

    #[test]
    fn admin_tool_is_hidden_from_others() {
        let (_dir, registry) = registry();
        let anonymous = Principal::anonymous();
        assert_eq!(registry.visible_to(&anonymous).count(), 6);
        assert!(registry.find("admin_purge_notes", &anonymous).is_none());
    }

    #[test]
    fn missing_sandbox_fails_closed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let result = standard_registry(&StandardDeps::new(dir.path().join("missing")));
        assert!(matches!(result, Err(RegistryError::Setup { ref name, .. }) if name == "read_file"));
    }
}
