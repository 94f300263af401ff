//! Per-principal notes: `notes_create`, `notes_list`, `notes_delete`.
//!
//! The server's object-ownership exemplar (tier `Owner`): notes are stored under the id of the
//! principal that created them and every lookup is keyed by the caller's own id, so another
//! principal's note is not merely forbidden but invisible: deleting it answers exactly like
//! deleting an id that never existed, and ids are random so they cannot be enumerated.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use crate::auth::Tier;
use crate::tools::{Annotations, Tool, ToolContext, ToolError, ToolOutput, ToolSpec};

/// Most notes one principal may hold.
pub const MAX_NOTES_PER_PRINCIPAL: usize = 100;
/// Most principals with notes; bounds memory whatever identities callers present.
pub const MAX_PRINCIPALS: usize = 10_000;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 128;
/// Longest body, in characters.
pub const MAX_BODY_CHARS: usize = 4096;
/// The shape of a note id: `note_` and 32 lowercase hex digits (128 random bits).
pub const NOTE_ID_PATTERN: &str = "^note_[0-9a-f]{32}$";

/// One stored note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub id: String,
    pub title: String,
    pub body: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

impl Note {
    fn to_json(&self) -> Value {
        json!({ "id": self.id, "title": self.title, "body": self.body, "created": self.created })
    }
}

/// Why a note could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("you already have {MAX_NOTES_PER_PRINCIPAL} notes; delete some with notes_delete first")]
    TooManyNotes,
    #[error("the note store is full; try again later")]
    StoreFull,
    #[error("title must be 1 to {MAX_TITLE_CHARS} characters")]
    BadTitle,
    #[error("body must be at most {MAX_BODY_CHARS} characters")]
    BadBody,
}

/// In-memory notes, keyed by owner (principal id). Shared by the notes tools and the admin
/// purge tool.
#[derive(Debug)]
pub struct NoteStore {
    notes: Mutex<HashMap<String, Vec<Note>>>,
    max_per_principal: usize,
}

impl Default for NoteStore {
    fn default() -> Self {
        Self::new(MAX_NOTES_PER_PRINCIPAL)
    }
}

impl NoteStore {
    pub fn new(max_per_principal: usize) -> Self {
        Self { notes: Mutex::new(HashMap::new()), max_per_principal }
    }

    /// Stores a note for `owner`. Limits are re-checked here, not only in the schema.
    pub fn create(&self, owner: &str, title: &str, body: &str) -> Result<Note, NoteError> {
        let title_len = title.chars().count();
        if title_len == 0 || title_len > MAX_TITLE_CHARS {
            return Err(NoteError::BadTitle);
        }
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(NoteError::BadBody);
        }
        let mut all = self.notes.lock();
        if !all.contains_key(owner) && all.len() >= MAX_PRINCIPALS {
            return Err(NoteError::StoreFull);
        }
        let mine = all.entry(owner.to_owned()).or_default();
        if mine.len() >= self.max_per_principal {
            return Err(NoteError::TooManyNotes);
        }
        let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let note = Note { id: new_note_id(), title: title.to_owned(), body: body.to_owned(), created };
        mine.push(note.clone());
        Ok(note)
    }

    /// `owner`'s notes, oldest first.
    pub fn list(&self, owner: &str) -> Vec<Note> {
        self.notes.lock().get(owner).cloned().unwrap_or_default()
    }

    /// Deletes `owner`'s note `id`; false if `owner` has no such note (whoever else might).
    pub fn delete(&self, owner: &str, id: &str) -> bool {
        let mut all = self.notes.lock();
        let Some(mine) = all.get_mut(owner) else {
            return false;
        };
        let before = mine.len();
        mine.retain(|n| n.id != id);
        let deleted = mine.len() != before;
        if mine.is_empty() {
            all.remove(owner);
        }
        deleted
    }

    /// Removes every note of `owner`; returns how many there were.
    pub fn purge(&self, owner: &str) -> usize {
        self.notes.lock().remove(owner).map_or(0, |notes| notes.len())
    }
}

/// 128 random bits: ids are not secrets, but unguessable ids keep one principal from probing
/// for another's notes.
fn new_note_id() -> String {
    format!("note_{}", hex::encode(rand::random::<[u8; 16]>()))
}

fn schema(properties: Value, required: &[&str]) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties
    })
}

fn note_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "title", "body", "created"],
        "properties": {
            "id": { "type": "string", "pattern": NOTE_ID_PATTERN },
            "title": { "type": "string", "maxLength": MAX_TITLE_CHARS },
            "body": { "type": "string", "maxLength": MAX_BODY_CHARS },
            "created": { "type": "integer", "minimum": 0 }
        }
    })
}

fn string_arg<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, ToolError> {
    args.get(key).and_then(Value::as_str).ok_or_else(|| ToolError::Rejected(format!("`{key}` must be a string")))
}

impl From<NoteError> for ToolError {
    fn from(e: NoteError) -> Self {
        ToolError::Rejected(e.to_string())
    }
}

macro_rules! tool_struct {
    ($name:ident) => {
        pub struct $name {
            spec: ToolSpec,
            store: Arc<NoteStore>,
        }

        impl $name {
            pub fn new(store: Arc<NoteStore>) -> Self {
                Self { spec: Self::make_spec(), store }
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

tool_struct!(NotesCreate);
tool_struct!(NotesList);
tool_struct!(NotesDelete);

impl NotesCreate {
    fn make_spec() -> ToolSpec {
        ToolSpec {
            name: "notes_create".to_owned(),
            title: "Create note".to_owned(),
            description: format!(
                "Stores a private note for the calling user and returns it with its id. Only you can list or \
                 delete your notes. Up to {MAX_NOTES_PER_PRINCIPAL} notes; title up to {MAX_TITLE_CHARS} and \
                 body up to {MAX_BODY_CHARS} characters."
            ),
            input_schema: schema(
                json!({
                    "title": {
                        "type": "string",
                        "description": "Short title.",
                        "minLength": 1,
                        "maxLength": MAX_TITLE_CHARS
                    },
                    "body": {
                        "type": "string",
                        "description": "Note text.",
                        "maxLength": MAX_BODY_CHARS
                    }
                }),
                &["title", "body"],
            ),
            output_schema: Some(schema(json!({ "note": note_schema() }), &["note"])),
            annotations: Annotations { read_only: false, destructive: false, idempotent: false, open_world: false },
            tier: Tier::Owner,
        }
    }
}

impl Tool for NotesCreate {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Map<String, Value>,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let title = string_arg(&args, "title")?;
            let body = string_arg(&args, "body")?;
            let note = self.store.create(&ctx.principal.id, title, body)?;
            Ok(ToolOutput::structured(json!({ "note": note.to_json() })))
        })
    }
}

impl NotesList {
    fn make_spec() -> ToolSpec {
        ToolSpec {
            name: "notes_list".to_owned(),
            title: "List notes".to_owned(),
            description: "Lists the calling user's notes, oldest first. Other users' notes are never included."
                .to_owned(),
            input_schema: schema(json!({}), &[]),
            output_schema: Some(schema(
                json!({
                    "notes": { "type": "array", "maxItems": MAX_NOTES_PER_PRINCIPAL, "items": note_schema() },
                    "count": { "type": "integer", "minimum": 0, "maximum": MAX_NOTES_PER_PRINCIPAL }
                }),
                &["notes", "count"],
            )),
            annotations: Annotations { read_only: true, destructive: false, idempotent: true, open_world: false },
            tier: Tier::Owner,
        }
    }
}

impl Tool for NotesList {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        _args: Map<String, Value>,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let notes: Vec<Value> = self.store.list(&ctx.principal.id).iter().map(Note::to_json).collect();
            let count = notes.len();
            Ok(ToolOutput::structured(json!({ "notes": notes, "count": count })))
        })
    }
}

impl NotesDelete {
    fn make_spec() -> ToolSpec {
        ToolSpec {
            name: "notes_delete".to_owned(),
            title: "Delete note".to_owned(),
            description: "Permanently deletes one of the calling user's notes by id (from notes_list or \
                          notes_create). Answers `deleted: false` when you have no note with that id; repeating \
                          the call is harmless."
                .to_owned(),
            input_schema: schema(
                json!({
                    "id": {
                        "type": "string",
                        "description": "The note id, e.g. `note_0123456789abcdef0123456789abcdef`.",
                        "maxLength": 37,
                        "pattern": NOTE_ID_PATTERN
                    }
                }),
                &["id"],
            ),
            output_schema: Some(schema(json!({ "deleted": { "type": "boolean" } }), &["deleted"])),
            annotations: Annotations { read_only: false, destructive: true, idempotent: true, open_world: false },
            tier: Tier::Owner,
        }
    }
}

impl Tool for NotesDelete {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Map<String, Value>,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let id = string_arg(&args, "id")?;
            let deleted = self.store.delete(&ctx.principal.id, id);
            Ok(ToolOutput::structured(json!({ "deleted": deleted })))
        })
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::auth::Principal;

    use crate::schema::{InputValidator, strictness_problems};

    fn ctx(id: &str) -> ToolContext {
        ToolContext::detached(Principal { id: id.to_owned(), tier: Tier::Owner })
    }

    async fn call(tool: &dyn Tool, who: &str, args: Value) -> Result<Value, ToolError> {
        let Value::Object(args) = args else { panic!("object") };
        let out = tool.call(&ctx(who), args).await?;
        Ok(out.structured.unwrap_or_default())
    }

    struct Tools {
        create: NotesCreate,
        list: NotesList,
        delete: NotesDelete,
    }

    fn tools(store: &Arc<NoteStore>) -> Tools {
        Tools {
            create: NotesCreate::new(Arc::clone(store)),
            list: NotesList::new(Arc::clone(store)),
            delete: NotesDelete::new(Arc::clone(store)),
        }
    }

    async fn create(t: &Tools, who: &str, title: &str) -> String {
        let out = call(&t.create, who, json!({"title": title, "body": "b"})).await.unwrap_or_else(|e| panic!("{e}"));
        out["note"]["id"].as_str().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn create_list_delete_round_trip() {
        let store = Arc::new(NoteStore::default());
        let t = tools(&store);
        let id = create(&t, "alice", "first").await;
        assert!(regex::Regex::new(NOTE_ID_PATTERN).is_ok_and(|re| re.is_match(&id)), "{id}");
        let listed = call(&t.list, "alice", json!({})).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(listed["count"], 1);
        assert_eq!(listed["notes"][0]["title"], "first");
        let deleted = call(&t.delete, "alice", json!({"id": id})).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(deleted, json!({"deleted": true}));
        let again = call(&t.delete, "alice", json!({"id": id})).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, json!({"deleted": false}));
        assert_eq!(call(&t.list, "alice", json!({})).await.unwrap_or_else(|e| panic!("{e}"))["count"], 0);
    }

    #[tokio::test]
    async fn another_principal_can_neither_see_nor_delete() {
        let store = Arc::new(NoteStore::default());
        let t = tools(&store);
        let alice_note = create(&t, "alice", "alice's").await;
        create(&t, "bob", "bob's").await;
        let bob_view = call(&t.list, "bob", json!({})).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bob_view["count"], 1);
        assert_eq!(bob_view["notes"][0]["title"], "bob's");
        // Deleting alice's note as bob looks exactly like deleting a missing id.
        let foreign = call(&t.delete, "bob", json!({"id": alice_note})).await.unwrap_or_else(|e| panic!("{e}"));
        let missing = call(&t.delete, "bob", json!({"id": format!("note_{}", "0".repeat(32))}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(foreign, missing);
        assert_eq!(store.list("alice").len(), 1, "alice's note survived");
    }

    #[tokio::test]
    async fn caps_are_enforced() {
        let store = Arc::new(NoteStore::new(2));
        let t = tools(&store);
        create(&t, "carol", "1").await;
        create(&t, "carol", "2").await;
        match call(&t.create, "carol", json!({"title": "3", "body": ""})).await {
            Err(ToolError::Rejected(message)) => {
                assert!(message.contains("delete some"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        create(&t, "dave", "other principals are unaffected").await;
        assert_eq!(store.create("x", "", "b"), Err(NoteError::BadTitle));
        assert_eq!(store.create("x", "t", &"b".repeat(MAX_BODY_CHARS + 1)), Err(NoteError::BadBody));
        assert!(store.create("x", "t", &"é".repeat(MAX_BODY_CHARS)).is_ok());
    }

    #[test]
    fn schemas_are_strict_and_annotations_truthful() {
        let store = Arc::new(NoteStore::default());
        let t = tools(&store);
        let specs = [t.create.spec(), t.list.spec(), t.delete.spec()];
        for spec in specs {
            assert!(strictness_problems(&spec.input_schema).is_empty(), "{}", spec.name);
            let v = InputValidator::compile(&spec.input_schema).unwrap_or_else(|e| panic!("{e}"));
            assert!(v.validate(&json!({"owner": "someone-else"})).is_err(), "{}", spec.name);
            assert!(!spec.description.is_empty());
            assert_eq!(spec.tier, Tier::Owner);
            let output = spec.output_schema.clone().unwrap_or_default();
            assert!(InputValidator::compile(&output).is_ok(), "{}", spec.name);
        }
        let v = InputValidator::compile(&t.create.spec().input_schema).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.validate(&json!({"title": "t", "body": ""})), Ok(()));
        assert!(v.validate(&json!({"title": "", "body": ""})).is_err());
        assert!(v.validate(&json!({"title": "t", "body": "b".repeat(MAX_BODY_CHARS + 1)})).is_err());
        let v = InputValidator::compile(&t.delete.spec().input_schema).unwrap_or_else(|e| panic!("{e}"));
        assert!(v.validate(&json!({"id": "../../note"})).is_err());
        assert!(v.validate(&json!({"id": format!("note_{}", "a".repeat(32))})).is_ok());
        let a = |s: &dyn Tool| s.spec().annotations;
        assert_eq!(
            a(&t.create),
            Annotations { read_only: false, destructive: false, idempotent: false, open_world: false }
        );
        assert_eq!(
            a(&t.list),
            Annotations { read_only: true, destructive: false, idempotent: true, open_world: false }
        );
        assert_eq!(
            a(&t.delete),
            Annotations { read_only: false, destructive: true, idempotent: true, open_world: false }
        );
    }
}
