//! `read_file`: reads a text file from the server's sandbox directory.
//!
//! The server's path-traversal exemplar: every path goes through [`Sandbox`], and every
//! refusal about *where* a path points gets the same message, so a caller learns neither the
//! real location of the sandbox nor which outside paths exist.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};

use crate::auth::Tier;
use crate::sandbox::{Sandbox, SandboxError};
use crate::tools::{Annotations, Tool, ToolContext, ToolError, ToolOutput, ToolSpec};

/// Largest file `read_file` returns.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Longest `path` accepted.
pub const MAX_PATH_CHARS: usize = 256;

/// The one answer to traversal, absolute paths and symlink escapes.
pub const CONFINEMENT_MESSAGE: &str = "path must be relative to the sandbox and stay inside it";

/// The `read_file` tool.
pub struct ReadFile {
    spec: ToolSpec,
    sandbox: Arc<Sandbox>,
}

impl std::fmt::Debug for ReadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadFile").finish_non_exhaustive()
    }
}

impl ReadFile {
    pub fn new(sandbox: Arc<Sandbox>) -> Self {
        Self { spec: spec(), sandbox }
    }
}

fn spec() -> ToolSpec {
    ToolSpec {
        name: "read_file".to_owned(),
        title: "Read file".to_owned(),
        description: "Reads a UTF-8 text file (at most 64 KiB) from the server's sandbox directory. `path` is \
                      relative to the sandbox root and uses '/' separators, e.g. `readme.txt` or `docs/guide.md`."
            .to_owned(),
        input_schema: json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "required": ["path"],
            "properties": {
                "path": {
                    "type": "string",
                    "description": "Relative path inside the sandbox, e.g. `docs/guide.md`.",
                    "minLength": 1,
                    "maxLength": MAX_PATH_CHARS,
                    "pattern": "^[A-Za-z0-9_.-][A-Za-z0-9_./-]*$"
                }
            }
        }),
        output_schema: None,
        annotations: Annotations { read_only: true, destructive: false, idempotent: true, open_world: false },
        tier: Tier::Authenticated,
    }
}

/// Turns a sandbox refusal into a message the caller can act on, without paths.
fn rejection(error: SandboxError) -> ToolError {
    if error.is_confinement() {
        return ToolError::Rejected(CONFINEMENT_MESSAGE.to_owned());
    }
    match error {
        SandboxError::Io(e) => {
            tracing::warn!(error = %e, "read_file: I/O error");
            ToolError::Internal("file could not be read".to_owned())
        }
        SandboxError::TooLarge { .. } => {
            ToolError::Rejected(format!("file is larger than the {MAX_FILE_BYTES}-byte limit of read_file"))
        }
        SandboxError::NotFound => {
            ToolError::Rejected("no such file in the sandbox; `readme.txt` lists what is available".to_owned())
        }
        other => ToolError::Rejected(other.to_string()),
    }
}

impl Tool for ReadFile {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call<'a>(
        &'a self,
        _ctx: &'a ToolContext,
        args: Map<String, Value>,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let path = match args.get("path") {
                Some(Value::String(p)) if p.chars().count() <= MAX_PATH_CHARS => p.clone(),
                _ => {
                    return Err(ToolError::Rejected(format!(
                        "`path` must be a string of at most {MAX_PATH_CHARS} characters"
                    )));
                }
            };
            let sandbox = Arc::clone(&self.sandbox);
            // Filesystem calls block; keep them off the async workers.
            let text = tokio::task::spawn_blocking(move || sandbox.read(&path, MAX_FILE_BYTES))
                .await
                .map_err(|e| ToolError::Internal(format!("read task failed: {e}")))?
                .map_err(rejection)?;
            Ok(ToolOutput::text(text))
        })
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::auth::Principal;

    use crate::schema::{InputValidator, strictness_problems};

    fn ctx() -> ToolContext {
        ToolContext::detached(Principal::anonymous())
    }

    fn fixture() -> (tempfile::TempDir, ReadFile) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().join("root");
        crate::sandbox::seed(&root).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("outside.txt"), "TOP SECRET").unwrap_or_else(|e| panic!("{e}"));
        let sandbox = Sandbox::new(&root).unwrap_or_else(|e| panic!("{e}"));
        (dir, ReadFile::new(Arc::new(sandbox)))
    }

    async fn read(tool: &ReadFile, path: &str) -> Result<ToolOutput, ToolError> {
        let Value::Object(args) = json!({ "path": path }) else { panic!("object") };
        tool.call(&ctx(), args).await
    }

    #[tokio::test]
    async fn reads_a_sandboxed_file() {
        let (_dir, tool) = fixture();
        let out = read(&tool, "docs/guide.md").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(out.content[0]["text"].as_str().unwrap_or_default().starts_with("# Guide"));
    }

    #[tokio::test]
    async fn traversal_and_absolute_paths_are_refused_without_revealing_paths() {
        let (dir, tool) = fixture();
        let root = dir.path().display().to_string();
        for path in
            ["../outside.txt", "docs/../../outside.txt", "/etc/passwd", "C:/Windows/win.ini", "..\\outside.txt", "a\0b"]
        {
            match read(&tool, path).await {
                Err(ToolError::Rejected(message)) => {
                    assert_eq!(message, CONFINEMENT_MESSAGE, "{path}");
                    assert!(!message.contains(&root));
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlink_escapes_are_refused() {
        let (dir, tool) = fixture();
        let root = tool.sandbox.root().to_path_buf();
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("leak.txt"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap_or_else(|e| panic!("{e}"));
        for path in ["leak.txt", "up/outside.txt"] {
            match read(&tool, path).await {
                Err(ToolError::Rejected(message)) => {
                    assert_eq!(message, CONFINEMENT_MESSAGE, "{path}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn other_refusals_are_actionable() {
        let (_dir, tool) = fixture();
        let big = "x".repeat(usize::try_from(MAX_FILE_BYTES).unwrap_or(0) + 1);
        std::fs::write(tool.sandbox.root().join("big.txt"), big).unwrap_or_else(|e| panic!("{e}"));
        for (path, expected) in
            [("missing.txt", "no such file"), ("docs", "not a regular file"), ("big.txt", "larger than")]
        {
            match read(&tool, path).await {
                Err(ToolError::Rejected(message)) => {
                    assert!(message.contains(expected), "{path}: {message}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn schema_is_strict_and_rejects_extra_properties() {
        let spec = spec();
        assert!(strictness_problems(&spec.input_schema).is_empty(), "{:?}", strictness_problems(&spec.input_schema));
        let v = InputValidator::compile(&spec.input_schema).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.validate(&json!({"path": "docs/guide.md"})), Ok(()));
        assert!(v.validate(&json!({"path": "readme.txt", "mode": "w"})).is_err());
        assert!(v.validate(&json!({})).is_err());
        assert!(v.validate(&json!({"path": "/etc/passwd"})).is_err());
        assert!(v.validate(&json!({"path": "..\\x"})).is_err());
        assert!(v.validate(&json!({"path": "x".repeat(257)})).is_err());
        assert_eq!(
            spec.annotations,
            Annotations { read_only: true, destructive: false, idempotent: true, open_world: false }
        );
    }
}
