//! `query_products`: a read-only search over a small product catalogue in SQLite.
//!
//! It is the server's SQL-injection exemplar: values only ever reach SQLite as bound
//! parameters (the `LIKE` pattern has its wildcards escaped), identifiers (columns, ordering)
//! only ever come from a fixed allow-list, the row count is capped, and the connection is put in
//! `query_only` mode after seeding, so even a mistake here could not write.

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use rusqlite::{Connection, params};
use serde_json::{Map, Value, json};

use crate::auth::Tier;
use crate::tools::{Annotations, Tool, ToolContext, ToolError, ToolOutput, ToolSpec};

/// Most rows one call returns.
pub const MAX_ROWS: i64 = 50;
/// Rows returned when `limit` is absent.
pub const DEFAULT_ROWS: i64 = 10;
/// Longest `name_contains` accepted.
pub const MAX_NAME_FILTER_CHARS: usize = 64;

/// A column of `products`. Only these names are ever written into SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Id,
    Name,
    Category,
    PriceCents,
    Stock,
}

impl Column {
    const ALL: [Self; 5] = [Self::Id, Self::Name, Self::Category, Self::PriceCents, Self::Stock];

    fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Name => "name",
            Self::Category => "category",
            Self::PriceCents => "price_cents",
            Self::Stock => "stock",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    fn is_text(self) -> bool {
        matches!(self, Self::Name | Self::Category)
    }
}

/// (name, category, price in cents, stock). Two names carry `%` and `_` so tests can prove the
/// `LIKE` escaping.
const SEED: &[(&str, &str, i64, i64)] = &[
    ("Claw hammer", "tools", 1899, 34),
    ("Cordless drill", "tools", 8999, 12),
    ("Screwdriver set", "tools", 2450, 40),
    ("Adjustable wrench", "tools", 1575, 22),
    ("Tape measure", "tools", 999, 61),
    ("Garden trowel", "garden", 1299, 18),
    ("Watering can", "garden", 2199, 9),
    ("Pruning shears", "garden", 2899, 15),
    ("Seed starter kit", "garden", 1599, 30),
    ("Chef knife", "kitchen", 4999, 7),
    ("Cast iron skillet", "kitchen", 3999, 11),
    ("100% cotton tea towel", "kitchen", 699, 80),
    ("Measuring cups", "kitchen", 1199, 25),
    ("Stapler", "office", 1499, 44),
    ("Desk lamp", "office", 3499, 13),
    ("USB_C cable", "office", 1299, 120),
    ("Notebook", "office", 499, 200),
    ("Camping tent", "outdoor-gear", 15999, 4),
    ("Headlamp", "outdoor-gear", 2599, 27),
    ("Water bottle", "outdoor-gear", 1899, 58),
];

/// The in-memory catalogue. `rusqlite::Connection` is `Send` but not `Sync`, hence the mutex;
/// queries are tiny, so they run inline rather than on a blocking thread.
pub struct ProductDb {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for ProductDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductDb").finish_non_exhaustive()
    }
}

impl ProductDb {
    /// Creates and seeds the catalogue, then makes the connection read-only.
    pub fn seeded() -> Result<Self, rusqlite::Error> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(
            "CREATE TABLE products (
                 id INTEGER PRIMARY KEY,
                 name TEXT NOT NULL,
                 category TEXT NOT NULL,
                 price_cents INTEGER NOT NULL,
                 stock INTEGER NOT NULL
             );",
        )?;
        {
            let mut insert =
                conn.prepare("INSERT INTO products (name, category, price_cents, stock) VALUES (?1, ?2, ?3, ?4)")?;
            for (name, category, price, stock) in SEED {
                insert.execute(params![name, category, price, stock])?;
            }
        }
        conn.pragma_update(None, "query_only", true)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    /// Runs one validated query. Every value is a bound parameter; identifiers come from
    /// [`Column`] only.
    fn run(&self, q: &Query) -> Result<Vec<Value>, rusqlite::Error> {
        let columns: Vec<&str> = q.columns.iter().map(|c| c.as_str()).collect();
        let direction = if q.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {} FROM products \
             WHERE (?1 IS NULL OR category = ?1) AND (?2 IS NULL OR name LIKE ?2 ESCAPE '\\') \
             ORDER BY {} {direction}, id ASC LIMIT ?3",
            columns.join(", "),
            q.order_by.as_str(),
        );
        let like = q.name_contains.as_deref().map(|s| format!("%{}%", escape_like(s)));
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![q.category, like, q.limit], |row| {
            let mut object = Map::new();
            for (i, column) in q.columns.iter().enumerate() {
                let value = if column.is_text() {
                    Value::from(row.get::<_, String>(i)?)
                } else {
                    Value::from(row.get::<_, i64>(i)?)
                };
                object.insert(column.as_str().to_owned(), value);
            }
            Ok(Value::Object(object))
        })?;
        rows.collect()
    }
}

/// Escapes `LIKE` wildcards so the caller's text matches literally (with `ESCAPE '\'`).
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The arguments after parsing.
#[derive(Debug)]
struct Query {
    category: Option<String>,
    name_contains: Option<String>,
    columns: Vec<Column>,
    order_by: Column,
    descending: bool,
    limit: i64,
}

impl Query {
    /// Parses arguments that already passed the schema, re-checking what SQL depends on.
    fn parse(args: &Map<String, Value>) -> Result<Self, ToolError> {
        let category = optional_str(args, "category")?;
        if let Some(c) = &category {
            let valid = c.len() <= 32
                && c.starts_with(|ch: char| ch.is_ascii_lowercase())
                && c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-');
            if !valid {
                return Err(ToolError::Rejected(
                    "`category` must be lowercase letters and '-', starting with a letter, at most 32 characters"
                        .to_owned(),
                ));
            }
        }
        let name_contains = optional_str(args, "name_contains")?;
        if name_contains.as_ref().is_some_and(|s| s.chars().count() > MAX_NAME_FILTER_CHARS) {
            return Err(ToolError::Rejected(format!(
                "`name_contains` must be at most {MAX_NAME_FILTER_CHARS} characters"
            )));
        }
        let columns = match args.get("columns") {
            None => Column::ALL.to_vec(),
            Some(Value::Array(items)) => {
                let mut columns = Vec::new();
                for item in items {
                    let column = item.as_str().and_then(Column::parse).ok_or_else(column_error)?;
                    if columns.contains(&column) {
                        return Err(ToolError::Rejected("`columns` must not repeat a column".to_owned()));
                    }
                    columns.push(column);
                }
                if columns.is_empty() {
                    return Err(column_error());
                }
                columns
            }
            Some(_) => return Err(column_error()),
        };
        let order_by = match args.get("order_by") {
            None => Column::Id,
            Some(v) => v.as_str().and_then(Column::parse).ok_or_else(|| {
                ToolError::Rejected("`order_by` must be one of id, name, category, price_cents, stock".to_owned())
            })?,
        };
        let descending = match args.get("descending") {
            None => false,
            Some(v) => v.as_bool().ok_or_else(|| ToolError::Rejected("`descending` must be a boolean".to_owned()))?,
        };
        let limit = match args.get("limit") {
            None => DEFAULT_ROWS,
            Some(v) => v
                .as_i64()
                .filter(|n| (1..=MAX_ROWS).contains(n))
                .ok_or_else(|| ToolError::Rejected(format!("`limit` must be an integer from 1 to {MAX_ROWS}")))?,
        };
        Ok(Self { category, name_contains, columns, order_by, descending, limit })
    }
}

fn column_error() -> ToolError {
    ToolError::Rejected("`columns` must list one or more of id, name, category, price_cents, stock".to_owned())
}

fn optional_str(args: &Map<String, Value>, key: &str) -> Result<Option<String>, ToolError> {
    match args.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ToolError::Rejected(format!("`{key}` must be a string"))),
    }
}

/// The `query_products` tool.
pub struct QueryProducts {
    spec: ToolSpec,
    db: std::sync::Arc<ProductDb>,
}

impl std::fmt::Debug for QueryProducts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryProducts").finish_non_exhaustive()
    }
}

impl QueryProducts {
    pub fn new(db: std::sync::Arc<ProductDb>) -> Self {
        Self { spec: spec(), db }
    }
}

fn spec() -> ToolSpec {
    let column_names: Vec<&str> = Column::ALL.iter().map(|c| c.as_str()).collect();
    ToolSpec {
        name: "query_products".to_owned(),
        title: "Query products".to_owned(),
        description: "Searches the product catalogue without changing it. Filter by exact `category` and/or a \
                      case-insensitive substring of the product name, pick the columns and the sort order, and get \
                      at most `limit` rows (1-50, default 10)."
            .to_owned(),
        input_schema: json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "required": [],
            "properties": {
                "category": {
                    "type": "string",
                    "description": "Exact category, e.g. `tools`, `garden`, `kitchen`, `office`, `outdoor-gear`.",
                    "minLength": 1,
                    "maxLength": 32,
                    "pattern": "^[a-z][a-z-]{0,31}$"
                },
                "name_contains": {
                    "type": "string",
                    "description": "Case-insensitive substring of the product name; `%` and `_` match literally.",
                    "minLength": 1,
                    "maxLength": MAX_NAME_FILTER_CHARS
                },
                "columns": {
                    "type": "array",
                    "description": "Columns to return (default: all).",
                    "minItems": 1,
                    "maxItems": column_names.len(),
                    "uniqueItems": true,
                    "items": { "type": "string", "enum": column_names }
                },
                "order_by": {
                    "type": "string",
                    "description": "Column to sort by (default `id`).",
                    "enum": column_names
                },
                "descending": {
                    "type": "boolean",
                    "description": "Sort from highest to lowest (default false)."
                },
                "limit": {
                    "type": "integer",
                    "description": "Most rows to return (default 10).",
                    "minimum": 1,
                    "maximum": MAX_ROWS,
                    "default": DEFAULT_ROWS
                }
            }
        }),
        output_schema: Some(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "required": ["rows", "count"],
            "properties": {
                "rows": {
                    "type": "array",
                    "maxItems": MAX_ROWS,
                    "items": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
                            "id": { "type": "integer" },
                            "name": { "type": "string" },
                            "category": { "type": "string" },
                            "price_cents": { "type": "integer" },
                            "stock": { "type": "integer" }
                        }
                    }
                },
                "count": { "type": "integer", "minimum": 0, "maximum": MAX_ROWS }
            }
        })),
        annotations: Annotations { read_only: true, destructive: false, idempotent: true, open_world: false },
        tier: Tier::Public,
    }
}

impl Tool for QueryProducts {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call<'a>(
        &'a self,
        _ctx: &'a ToolContext,
        args: Map<String, Value>,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let query = Query::parse(&args)?;
            let rows = self.db.run(&query).map_err(|e| {
                tracing::error!(error = %e, "query_products: database error");
                ToolError::Internal("product query failed".to_owned())
            })?;
            let count = rows.len();
            Ok(ToolOutput::structured(json!({ "rows": rows, "count": count })))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::Principal;

    use crate::schema::{InputValidator, strictness_problems};

    fn ctx() -> ToolContext {
        ToolContext::detached(Principal::anonymous())
    }

    fn tool() -> QueryProducts {
        QueryProducts::new(Arc::new(ProductDb::seeded().unwrap_or_else(|e| panic!("{e}"))))
    }

    async fn call(tool: &QueryProducts, args: Value) -> Result<Value, ToolError> {
        let Value::Object(args) = args else { panic!("args must be an object") };
        let output = tool.call(&ctx(), args).await?;
        assert!(!output.is_error);
        Ok(output.structured.unwrap_or_default())
    }

    async fn rows(tool: &QueryProducts, args: Value) -> Vec<Value> {
        let out = call(tool, args).await.unwrap_or_else(|e| panic!("{e}"));
        out["rows"].as_array().cloned().unwrap_or_default()
    }

    #[tokio::test]
    async fn default_query_returns_ten_rows_with_all_columns() {
        let tool = tool();
        let out = call(&tool, json!({})).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out["count"], 10);
        assert_eq!(
            out["rows"][0],
            json!({"id": 1, "name": "Claw hammer", "category": "tools", "price_cents": 1899, "stock": 34})
        );
        let output_schema = tool.spec().output_schema.clone().unwrap_or_default();
        let validator = InputValidator::compile(&output_schema).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(validator.validate(&out), Ok(()));
    }

    #[tokio::test]
    async fn filters_columns_order_and_limit() {
        let tool = tool();
        let r = rows(
            &tool,
            json!({"category": "garden", "columns": ["name", "price_cents"], "order_by": "price_cents", "descending": true, "limit": 2}),
        )
        .await;
        assert_eq!(
            r,
            vec![
                json!({"name": "Pruning shears", "price_cents": 2899}),
                json!({"name": "Watering can", "price_cents": 2199})
            ]
        );
        let r = rows(&tool, json!({"name_contains": "WATER", "columns": ["name"]})).await;
        assert_eq!(r, vec![json!({"name": "Watering can"}), json!({"name": "Water bottle"})]);
        assert_eq!(rows(&tool, json!({"limit": 50})).await.len(), SEED.len());
    }

    #[tokio::test]
    async fn like_wildcards_match_literally() {
        let tool = tool();
        let r = rows(&tool, json!({"name_contains": "%", "columns": ["name"]})).await;
        assert_eq!(r, vec![json!({"name": "100% cotton tea towel"})]);
        let r = rows(&tool, json!({"name_contains": "_", "columns": ["name"]})).await;
        assert_eq!(r, vec![json!({"name": "USB_C cable"})]);
        assert!(rows(&tool, json!({"name_contains": "\\"})).await.is_empty());
    }

    #[tokio::test]
    async fn sql_injection_strings_return_no_extra_rows_and_no_sql_errors() {
        let tool = tool();
        let payloads = [
            "' OR '1'='1",
            "' OR 1=1 --",
            "%' OR '1'='1' --",
            "x'); DROP TABLE products; --",
            "\" OR \"\"=\"",
            "' UNION SELECT name, sql, 1, 1, 1 FROM sqlite_master --",
            "'; ATTACH DATABASE '/tmp/x.db' AS x; --",
            "%%",
            "_%_",
        ];
        for payload in payloads {
            let r = rows(&tool, json!({"name_contains": payload})).await;
            assert!(r.is_empty(), "{payload}: {r:?}");
        }
        assert_eq!(rows(&tool, json!({"limit": 50})).await.len(), SEED.len(), "table intact");
        // Identifiers are never taken from the caller, even if the schema were bypassed.
        for args in [
            json!({"order_by": "price_cents; DROP TABLE products"}),
            json!({"columns": ["name, sql FROM sqlite_master --"]}),
            json!({"category": "x' OR '1'='1"}),
            json!({"limit": 1000}),
        ] {
            match call(&tool, args.clone()).await {
                Err(ToolError::Rejected(message)) => {
                    assert!(!message.contains("SELECT") && !message.contains("sqlite"), "{message}")
                }
                other => panic!("{args}: {other:?}"),
            }
        }
    }

    #[test]
    fn schema_is_strict_and_rejects_extra_properties() {
        let spec = spec();
        assert!(strictness_problems(&spec.input_schema).is_empty(), "{:?}", strictness_problems(&spec.input_schema));
        let v = InputValidator::compile(&spec.input_schema).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.validate(&json!({"limit": 5, "category": "outdoor-gear"})), Ok(()));
        assert!(v.validate(&json!({"sql": "SELECT 1"})).is_err());
        assert!(v.validate(&json!({"category": "x' OR '1'='1"})).is_err());
        assert!(v.validate(&json!({"limit": 51})).is_err());
        assert!(v.validate(&json!({"limit": 0})).is_err());
        assert!(v.validate(&json!({"columns": ["id", "id"]})).is_err());
        assert!(v.validate(&json!({"columns": ["password"]})).is_err());
        assert!(v.validate(&json!({"name_contains": "x".repeat(65)})).is_err());
        assert!(!spec.description.is_empty());
        assert_eq!(
            spec.annotations,
            Annotations { read_only: true, destructive: false, idempotent: true, open_world: false }
        );
    }
}
