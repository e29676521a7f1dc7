//! Read-only SQL over one workspace, for the REST API, the Admin MCP
//! `sql_query` tool and endpoint `sql_query` tools alike: [`query`].
//!
//! Each query gets a fresh in-memory SQLite connection whose only tables are
//! virtual tables over one redb read snapshot of the caller's workspace
//! (`records`, `relationships`, `collections`, `workspaces`,
//! `operations_log`) plus one view per collection. Isolation is by
//! construction: another workspace's rows are not reachable by any query.
//!
//! Rekor's ClickHouse forms (`FINAL`, `{workspace_id:String}`,
//! `data.x.:String`, `CAST(x, 'Float64')`) are translated first
//! ([`translate`]). Then three locks, each enough alone for writes: the
//! statement policy ([`check`]: one SELECT), SQLite's own read-only flag for
//! the prepared statement, and an authorizer that allows only reads. Limits:
//! [`MAX_ROWS`] rows returned, a wall-time limit enforced by the progress
//! handler, bounded string sizes and heap.

pub mod check;
pub mod translate;
mod views;
mod vtab;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::{Snapshot, StoreError};

/// Most rows a query returns; more are cut and `truncated` is set.
pub const MAX_ROWS: usize = 1000;
/// Default wall-time limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest string or blob a query may build.
const MAX_LENGTH: i32 = 16 * 1024 * 1024;
/// Page cache of one query, which its sorts use, in KiB.
const SORT_CACHE_KIB: i64 = 64 * 1024;
/// SQLite's heap, for all queries of the process together.
const HEAP_LIMIT: i64 = 512 * 1024 * 1024;

/// What a query can see and how long it may run.
pub struct Scope {
    pub snapshot: Snapshot,
    pub workspace: String,
    /// Only these collections (an endpoint's, or a token's collection
    /// grants); `None` for all of the workspace.
    pub collections: Option<Vec<String>>,
    /// Only relationships of these types (`None`: every type; empty: none,
    /// for a caller without `read:relationships`).
    pub rel_types: Option<Vec<String>>,
    /// Only operations-log entries of the visible collections, even when
    /// every collection is visible (endpoint code never sees the others).
    pub oplog_collections_only: bool,
    pub timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub row_count: usize,
    pub truncated: bool,
    pub elapsed_ms: f64,
    /// Rows read from the store: shows what `collection = …` and `id = …`
    /// push-down saved.
    pub rows_scanned: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Not allowed (writes, several statements, forbidden functions).
    #[error("{0}")]
    Refused(String),
    /// Malformed query, unknown table or column, missing parameter.
    #[error("{0}")]
    Invalid(String),
    #[error("query stopped: it ran past the {} ms time limit", .0.as_millis())]
    Timeout(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn internal(e: impl std::fmt::Display) -> SqlError {
    SqlError::Store(StoreError::new(format!("sql engine: {e}")))
}

/// Describes a denied authorizer action for the error message.
fn denied(action: &AuthAction<'_>) -> String {
    match action {
        AuthAction::Pragma { pragma_name, .. } => format!("PRAGMA {pragma_name}"),
        AuthAction::Attach { .. } => "ATTACH".into(),
        AuthAction::Function { function_name } => format!("function {function_name}()"),
        AuthAction::Insert { .. } => "INSERT".into(),
        AuthAction::Update { .. } => "UPDATE".into(),
        AuthAction::Delete { .. } => "DELETE".into(),
        other => format!("{other:?}")
            .split([' ', '{', '('])
            .next()
            .unwrap_or("statement")
            .to_uppercase(),
    }
}

/// Runs one read-only query in `scope`.
pub fn query(scope: Scope, text: &str, params: &Map<String, Value>) -> Result<Output, SqlError> {
    let start = Instant::now();
    let tr = translate::translate(text, &scope.workspace, params)?;
    check::check(&tr.sql)?;

    let conn = Connection::open_in_memory().map_err(internal)?;
    // Process-wide heap ceiling for SQLite (idempotent), set before any user SQL.
    conn.pragma_update(None, "hard_heap_limit", HEAP_LIMIT)
        .map_err(internal)?;
    // GROUP BY / ORDER BY sort in memory rather than spilling to temp files
    // (the heap limit above still bounds them).
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(internal)?;
    conn.pragma_update(None, "cache_size", -SORT_CACHE_KIB)
        .map_err(internal)?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_LENGTH)
        .map_err(internal)?;
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, 1_000_000)
        .map_err(internal)?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)
        .map_err(internal)?;
    let source = Arc::new(vtab::Source {
        allowed: scope
            .collections
            .map(|c| c.into_iter().collect::<HashSet<_>>()),
        rel_types: scope
            .rel_types
            .map(|c| c.into_iter().collect::<HashSet<_>>()),
        oplog_collections_only: scope.oplog_collections_only,
        snapshot: scope.snapshot,
        workspace: scope.workspace,
        scanned: Default::default(),
    });
    vtab::register(&conn, &source).map_err(internal)?;
    for ddl in views::ddl(&source.collections()?) {
        conn.execute_batch(&ddl).map_err(internal)?;
    }

    // From here on, only reads: the authorizer is the second line.
    let refusal: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = refusal.clone();
    let mut conn = conn;
    conn.authorizer(Some(move |ctx: AuthContext<'_>| match ctx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => {
            Authorization::Allow
        }
        AuthAction::Function { function_name }
            if !check::DENIED_FUNCTIONS.contains(&function_name.to_ascii_lowercase().as_str()) =>
        {
            Authorization::Allow
        }
        other => {
            if let Ok(mut s) = seen.lock() {
                *s = Some(denied(&other));
            }
            Authorization::Deny
        }
    }))
    .map_err(internal)?;
    let deadline = start + scope.timeout;
    conn.progress_handler(1000, Some(move || Instant::now() > deadline))
        .map_err(internal)?;

    let map_err = |e: rusqlite::Error| -> SqlError {
        if let Some(what) = refusal.lock().ok().and_then(|s| s.clone()) {
            return check::refused_kind(&what);
        }
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::OperationInterrupted => {
                SqlError::Timeout(scope.timeout)
            }
            rusqlite::Error::MultipleStatement => {
                SqlError::Refused("only one statement per query is allowed".into())
            }
            rusqlite::Error::SqliteFailure(_, Some(msg)) => {
                SqlError::Invalid(format!("SQL error: {msg}"))
            }
            _ => SqlError::Invalid(format!("SQL error: {e}")),
        }
    };
    let mut stmt = conn.prepare(&tr.sql).map_err(map_err)?;
    if !stmt.readonly() {
        return Err(SqlError::Refused(
            "the statement would write; sql_query is read-only".into(),
        ));
    }
    for (name, value) in &tr.binds {
        if let Some(i) = stmt.parameter_index(name).map_err(map_err)? {
            stmt.raw_bind_parameter(i, value).map_err(map_err)?;
        }
    }
    let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let mut rows = Vec::new();
    let mut truncated = false;
    let mut cursor = stmt.raw_query();
    while let Some(row) = cursor.next().map_err(map_err)? {
        if rows.len() == MAX_ROWS {
            truncated = true;
            break;
        }
        let mut out = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            out.push(json_of(row.get_ref(i).map_err(map_err)?));
        }
        rows.push(out);
    }
    Ok(Output {
        columns,
        row_count: rows.len(),
        rows,
        truncated,
        elapsed_ms: start.elapsed().as_secs_f64() * 1000.0,
        rows_scanned: source.scanned.load(std::sync::atomic::Ordering::Relaxed),
    })
}

fn json_of(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(hex::encode(b)),
    }
}
