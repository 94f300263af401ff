//! `admin_purge_notes`: an operator removes every note of one principal.
//!
//! The server's tier exemplar: it requires `Admin`, so the registry hides it from everyone
//! else (a non-admin cannot tell it exists). It is destructive, and idempotent: purging twice
//! leaves the same state, the second call reporting 0.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};

use crate::auth::Tier;
use crate::tools::notes::NoteStore;
use crate::tools::{Annotations, Tool, ToolContext, ToolError, ToolOutput, ToolSpec};

/// Longest principal id accepted.
pub const MAX_PRINCIPAL_CHARS: usize = 128;

/// The `admin_purge_notes` tool.
pub struct AdminPurgeNotes {
    spec: ToolSpec,
    store: Arc<NoteStore>,
}

impl std::fmt::Debug for AdminPurgeNotes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminPurgeNotes").finish_non_exhaustive()
    }
}

impl AdminPurgeNotes {
    pub fn new(store: Arc<NoteStore>) -> Self {
        Self { spec: spec(), store }
    }
}

fn spec() -> ToolSpec {
    ToolSpec {
        name: "admin_purge_notes".to_owned(),
        title: "Purge a user's notes".to_owned(),
        description: "Operators only: permanently deletes every note of one principal and returns how many were \
                      removed. Repeating the call is harmless (it then removes 0)."
            .to_owned(),
        input_schema: json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "required": ["principal"],
            "properties": {
                "principal": {
                    "type": "string",
                    "description": "The principal id whose notes to delete (a token `sub`, or `anonymous`).",
                    "minLength": 1,
                    "maxLength": MAX_PRINCIPAL_CHARS,
                    "pattern": "^[A-Za-z0-9._:@|+-]+$"
                }
            }
        }),
        output_schema: Some(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "required": ["removed"],
            "properties": { "removed": { "type": "integer", "minimum": 0 } }
        })),
        annotations: Annotations { read_only: false, destructive: true, idempotent: true, open_world: false },
        tier: Tier::Admin,
    }
}

impl Tool for AdminPurgeNotes {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Map<String, Value>,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            // The registry already hides this tool from non-admins; checking again here means a
            // registry bug cannot turn into a privilege escalation.
            if !ctx.principal.may(Tier::Admin) {
                return Err(ToolError::Rejected("this tool requires operator rights".to_owned()));
            }
            let principal = match args.get("principal") {
                Some(Value::String(p)) if !p.is_empty() && p.chars().count() <= MAX_PRINCIPAL_CHARS => p,
                _ => {
                    return Err(ToolError::Rejected(format!(
                        "`principal` must be a non-empty string of at most {MAX_PRINCIPAL_CHARS} characters"
                    )));
                }
            };
            let removed = self.store.purge(principal);
            tracing::info!(admin = %ctx.principal.id, removed, "admin_purge_notes");
            Ok(ToolOutput::structured(json!({ "removed": removed })))
        })
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::auth::Principal;

    use crate::schema::{InputValidator, strictness_problems};

    use crate::tools::ToolRegistry;

    fn ctx(principal: Principal) -> ToolContext {
        ToolContext::detached(principal)
    }

    async fn purge(tool: &AdminPurgeNotes, who: Principal, target: &str) -> Result<Value, ToolError> {
        let Value::Object(args) = json!({ "principal": target }) else { panic!("object") };
        Ok(tool.call(&ctx(who), args).await?.structured.unwrap_or_default())
    }

    #[tokio::test]
    async fn purges_one_principal_and_is_idempotent() {
        let store = Arc::new(NoteStore::default());
        for title in ["a", "b", "c"] {
            store.create("alice", title, "").unwrap_or_else(|e| panic!("{e}"));
        }
        store.create("bob", "keep", "").unwrap_or_else(|e| panic!("{e}"));
        let tool = AdminPurgeNotes::new(Arc::clone(&store));
        let first = purge(&tool, Principal::admin("root"), "alice").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, json!({"removed": 3}));
        let second = purge(&tool, Principal::admin("root"), "alice").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(second, json!({"removed": 0}));
        assert_eq!(store.list("bob").len(), 1);
    }

    #[tokio::test]
    async fn non_admins_are_refused_and_cannot_see_it() {
        let store = Arc::new(NoteStore::default());
        store.create("alice", "a", "").unwrap_or_else(|e| panic!("{e}"));
        let tool = Arc::new(AdminPurgeNotes::new(Arc::clone(&store)));
        assert!(matches!(purge(&tool, Principal::anonymous(), "alice").await, Err(ToolError::Rejected(_))));
        assert_eq!(store.list("alice").len(), 1);
        let mut registry = ToolRegistry::default();
        registry.register(tool).unwrap_or_else(|e| panic!("{e}"));
        assert!(registry.find("admin_purge_notes", &Principal::anonymous()).is_none());
        assert_eq!(registry.visible_to(&Principal::anonymous()).count(), 0);
        assert!(registry.find("admin_purge_notes", &Principal::admin("root")).is_some());
    }

    #[test]
    fn schema_is_strict_and_rejects_extra_properties() {
        let spec = spec();
        assert!(strictness_problems(&spec.input_schema).is_empty(), "{:?}", strictness_problems(&spec.input_schema));
        let v = InputValidator::compile(&spec.input_schema).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.validate(&json!({"principal": "auth0|abc123"})), Ok(()));
        assert!(v.validate(&json!({"principal": "alice", "all": true})).is_err());
        assert!(v.validate(&json!({"principal": ""})).is_err());
        assert!(v.validate(&json!({"principal": "a b"})).is_err());
        assert_eq!(spec.tier, Tier::Admin);
        assert_eq!(
            spec.annotations,
            Annotations { read_only: false, destructive: true, idempotent: true, open_world: false }
        );
    }
}
