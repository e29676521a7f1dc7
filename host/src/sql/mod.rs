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
//! the prepared statement, and an authorizer that allows only reads.
//!
//! Limits bound the whole cost of a query: the deadline starts before the
//! connection is set up and the progress handler checks it throughout;
//! SQLite's length limits are lowered to what an agent's query needs, and
//! the built-ins whose one call costs length × length are guarded
//! ([`functions`]); SQLite's heap is capped for all queries together; the
//! result stops at [`MAX_ROWS`] rows or [`MAX_RESULT_BYTES`] bytes of JSON,
//! counted while it is built, and says so (`truncated`). Views are created
//! only for the collections a query names, so a workspace with 1,000
//! collections does not pay for 1,000 views per query.

pub mod check;
mod functions;
mod paths;
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
/// Most bytes of JSON in a result's rows (blobs count twice: they are sent
/// as hex); past it the result is cut and `truncated` is set. Fits a tool
/// result (8 MiB) with room to spare.
pub const MAX_RESULT_BYTES: usize = 4 << 20;
/// Largest string or blob a query may build: above any stored record
/// (request bodies are at most 4 MiB), well below what hurts.
const MAX_LENGTH: i32 = 8 << 20;
/// Longest LIKE / GLOB pattern (SQLite's default is 50,000).
const LIKE_PATTERN_MAX: i32 = 1000;
/// Page cache of one query, which its sorts use, in KiB.
const SORT_CACHE_KIB: i64 = 64 * 1024;
/// SQLite's heap, for all queries of the process together.
const HEAP_LIMIT: i64 = 512 * 1024 * 1024;

/// A collection a query may see: its id and JSON Schema (for its view).
#[derive(Debug, Clone)]
pub struct Collection {
    pub id: String,
    pub schema: Value,
}

/// What a query can see and how long it may run.
pub struct Scope {
    pub snapshot: Snapshot,
    pub workspace: String,
    /// The collections the query may see.
    pub collections: Vec<Collection>,
    /// Whether `collections` is a subset of the workspace's (an endpoint's,
    /// or a token's collection grants): then no other collection's records
    /// are reachable, even through `records`.
    pub restricted: bool,
    /// Only relationships of these types (`None`: every type; empty: none,
    /// for a caller without `read:relationships`).
    pub rel_types: Option<Vec<String>>,
    /// Only operations-log entries of the visible collections, even when
    /// every collection is visible (endpoint code never sees the others).
    pub oplog_collections_only: bool,
    /// The time limit, for messages…
    pub timeout: Duration,
    /// …and when it runs out: set by the caller when the query got its
    /// slot, so that set-up counts too.
    pub deadline: Instant,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub row_count: usize,
    pub truncated: bool,
    /// Why the rows were cut, when `truncated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_reason: Option<String>,
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
    /// A string, blob or the heap outgrew its limit.
    #[error("{0}")]
    TooBig(String),
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

/// SQLite's limits for one query, lowered from its defaults (a 1 GB
/// string, 1 MB of SQL, 2,000 columns, expressions 1,000 deep, …) to what
/// an agent's query needs.
const LIMITS: &[(Limit, i32)] = &[
    (Limit::SQLITE_LIMIT_LENGTH, MAX_LENGTH),
    (Limit::SQLITE_LIMIT_SQL_LENGTH, 100_000),
    (Limit::SQLITE_LIMIT_COLUMN, 1000),
    (Limit::SQLITE_LIMIT_EXPR_DEPTH, 200),
    (Limit::SQLITE_LIMIT_COMPOUND_SELECT, 50),
    (Limit::SQLITE_LIMIT_VDBE_OP, 100_000),
    (Limit::SQLITE_LIMIT_FUNCTION_ARG, 32),
    (Limit::SQLITE_LIMIT_ATTACHED, 0),
    (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, LIKE_PATTERN_MAX),
    (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 1000),
    (Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 0),
    (Limit::SQLITE_LIMIT_WORKER_THREADS, 0),
];

/// Tables whose rows list the schema: a query naming one gets every view,
/// so that discovering the views still works.
const SCHEMA_TABLES: &[&str] = &[
    "sqlite_schema",
    "sqlite_master",
    "sqlite_temp_schema",
    "sqlite_temp_master",
];

/// The collections whose views `sql` may use: those it names (SQLite's
/// names are case-insensitive, quoted or not), or all if it reads the schema.
fn named<'a>(sql: &str, collections: &'a [Collection]) -> Result<Vec<&'a Collection>, SqlError> {
    let words: HashSet<String> = translate::tokenize(sql)?
        .into_iter()
        .filter_map(|t| match t {
            sqlparser::tokenizer::Token::Word(w) => Some(w.value.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    let all = SCHEMA_TABLES.iter().any(|t| words.contains(*t));
    Ok(collections
        .iter()
        .filter(|c| all || words.contains(&c.id.to_ascii_lowercase()))
        .collect())
}

/// Runs one read-only query in `scope`.
pub fn query(scope: Scope, text: &str, params: &Map<String, Value>) -> Result<Output, SqlError> {
    let start = Instant::now();
    let deadline = scope.deadline;
    let timeout = scope.timeout;
    let past = || Instant::now() > deadline;
    let tr = translate::translate(text, &scope.workspace, params)?;
    check::check(&tr.sql)?;

    let mut conn = Connection::open_in_memory().map_err(internal)?;
    // Set-up counts against the time limit too.
    conn.progress_handler(1000, Some(move || Instant::now() > deadline))
        .map_err(internal)?;
    // Process-wide heap ceiling for SQLite (idempotent), set before any user SQL.
    conn.pragma_update(None, "hard_heap_limit", HEAP_LIMIT)
        .map_err(internal)?;
    // GROUP BY / ORDER BY sort in memory rather than spilling to temp files
    // (the heap limit above still bounds them).
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(internal)?;
    conn.pragma_update(None, "cache_size", -SORT_CACHE_KIB)
        .map_err(internal)?;
    for (limit, value) in LIMITS {
        conn.set_limit(*limit, *value).map_err(internal)?;
    }
    functions::register(&conn).map_err(internal)?;
    // `data ->> '…'` as columns the table reads while scanning (the
    // rewrite is only a plan: the query as written is the fallback).
    let mut hidden = paths::HiddenSet::default();
    let rewritten = paths::rewrite(&tr.sql, &mut hidden)?;
    let views = views::ddl(&named(&tr.sql, &scope.collections)?, &mut hidden);
    let source = Arc::new(vtab::Source {
        allowed: scope
            .restricted
            .then(|| scope.collections.iter().map(|c| c.id.clone()).collect()),
        visible: scope.collections.into_iter().map(|c| c.id).collect(),
        rel_types: scope
            .rel_types
            .map(|c| c.into_iter().collect::<HashSet<_>>()),
        oplog_collections_only: scope.oplog_collections_only,
        snapshot: scope.snapshot,
        workspace: scope.workspace,
        scanned: Default::default(),
        hidden: hidden.into_vec(),
        deadline,
        stop: Default::default(),
    });
    vtab::register(&conn, &source).map_err(internal)?;
    for ddl in views {
        if past() {
            return Err(SqlError::Timeout(timeout));
        }
        conn.execute_batch(&ddl).map_err(|e| {
            if past() {
                SqlError::Timeout(timeout)
            } else {
                internal(e)
            }
        })?;
    }

    // From here on, only reads: the authorizer is the second line.
    let refusal: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = refusal.clone();
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

    let map_err = |e: rusqlite::Error| -> SqlError {
        if let Some(what) = refusal.lock().ok().and_then(|s| s.clone()) {
            return check::refused_kind(&what);
        }
        match source.stop.lock().ok().and_then(|mut s| s.take()) {
            Some(vtab::Stop::Timeout) => return SqlError::Timeout(timeout),
            Some(vtab::Stop::TooBig(why)) => return SqlError::TooBig(why),
            None => {}
        }
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::OperationInterrupted => {
                SqlError::Timeout(timeout)
            }
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::TooBig => {
                SqlError::TooBig(format!(
                    "query stopped: a string or blob grew past the {} MiB limit",
                    MAX_LENGTH >> 20
                ))
            }
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::OutOfMemory => {
                SqlError::TooBig(format!(
                    "query stopped: it needed more memory than SQL queries may use ({} MiB for \
                     all running queries); sort or group fewer or smaller rows",
                    HEAP_LIMIT >> 20
                ))
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
    // The rewritten query is prepared with double-quoted strings off: a
    // hidden column name that no table has is then an error (and the query
    // runs as written), never a string constant.
    use rusqlite::config::DbConfig;
    let prepared = match &rewritten {
        Some(sql) => {
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DML, false)
                .map_err(internal)?;
            let stmt = conn.prepare(sql).ok();
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DML, true)
                .map_err(internal)?;
            stmt
        }
        None => None,
    };
    if let Ok(mut s) = refusal.lock() {
        *s = None;
    }
    let mut stmt = match prepared {
        Some(stmt) => stmt,
        None => conn.prepare(&tr.sql).map_err(map_err)?,
    };
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
    let mut truncated_reason = None;
    // JSON bytes of the rows so far: `[`, `]` and commas, plus each value.
    let mut bytes = 2;
    let mut cursor = stmt.raw_query();
    'rows: while let Some(row) = cursor.next().map_err(map_err)? {
        if rows.len() == MAX_ROWS {
            truncated_reason = Some(format!(
                "the result has more than {MAX_ROWS} rows; add LIMIT/OFFSET or aggregate"
            ));
            break;
        }
        let mut out = Vec::with_capacity(columns.len());
        bytes += 3;
        for i in 0..columns.len() {
            let v = row.get_ref(i).map_err(map_err)?;
            // Counted before the value is converted, so an oversized one is
            // never copied (or hex-doubled).
            bytes += json_len(v) + 1;
            if bytes > MAX_RESULT_BYTES {
                truncated_reason = Some(format!(
                    "the result reached {} MiB of JSON after {} rows; select fewer or smaller \
                     columns, or fewer rows",
                    MAX_RESULT_BYTES >> 20,
                    rows.len()
                ));
                break 'rows;
            }
            out.push(json_of(v));
        }
        rows.push(out);
    }
    Ok(Output {
        columns,
        row_count: rows.len(),
        rows,
        truncated: truncated_reason.is_some(),
        truncated_reason,
        elapsed_ms: start.elapsed().as_secs_f64() * 1000.0,
        rows_scanned: source.scanned.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// Bytes `v` takes in the JSON result (strings: at least their length and
/// quotes; escapes are not worth a second pass).
fn json_len(v: ValueRef<'_>) -> usize {
    match v {
        ValueRef::Null => 4,
        ValueRef::Integer(_) | ValueRef::Real(_) => 24,
        ValueRef::Text(t) => t.len() + 2,
        ValueRef::Blob(b) => 2 * b.len() + 2,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, WriteMode};

    fn record(id: usize, deleted: bool, data: &str) -> String {
        format!(
            r#"{{"deleted":{deleted},"id":"{id}","workspace_id":"w","collection":"c","external_id":null,"external_source":null,"created_at":"t","updated_at":"t","version":1,"archived":false,"cancelled":false,"data":{data}}}"#
        )
    }

    async fn store(dir: &std::path::Path) -> Store {
        let store = Store::open(dir).expect("store");
        store
            .write(WriteMode::Exclusive, |t| -> Result<(), StoreError> {
                for i in 0..30 {
                    let data = format!(r#"{{"s":"s{}","v":{i}}}"#, i % 3);
                    let json = record(i, i == 0, &data);
                    crate::store::records::put(t, "w", "c", &format!("{i:02}"), json.as_bytes())?;
                }
                Ok(())
            })
            .await
            .expect("write");
        store
    }

    fn scope(store: &Store) -> Scope {
        Scope {
            snapshot: store.read().expect("read"),
            workspace: "w".into(),
            collections: vec![Collection {
                id: "c".into(),
                schema: serde_json::json!({"type": "object", "properties": {
                    "s": {"type": "string"}, "v": {"type": "integer"}}}),
            }],
            restricted: false,
            rel_types: None,
            oplog_collections_only: false,
            timeout: DEFAULT_TIMEOUT,
            deadline: Instant::now() + DEFAULT_TIMEOUT,
        }
    }

    fn grouped() -> u64 {
        vtab::GROUPED_SCANS.with(std::cell::Cell::get)
    }

    #[tokio::test]
    async fn group_by_over_extracts_and_view_columns_is_served_grouped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path()).await;
        let run = |sql: &str| query(scope(&store), sql, &Map::new());
        for (sql, served) in [
            (
                "SELECT data->>'$.s', count(*), sum(data->>'$.v') FROM records WHERE collection = 'c' GROUP BY 1",
                true,
            ),
            ("SELECT s, count(*), sum(v) FROM c GROUP BY s", true),
            ("SELECT DISTINCT s FROM c", true),
            // As written, SQLite's own expression: its sorter.
            (
                "SELECT (data)->>'$.s', count(*) FROM records WHERE collection = 'c' GROUP BY 1",
                false,
            ),
        ] {
            let before = grouped();
            let mut out = run(sql).expect(sql);
            assert_eq!(grouped() - before, u64::from(served), "{sql}");
            out.rows.sort_by_key(|r| r[0].to_string());
            let counts: Vec<&Value> = out.rows.iter().map(|r| r.get(1).unwrap_or(&r[0])).collect();
            if sql.starts_with("SELECT DISTINCT") {
                assert_eq!(out.rows.len(), 3, "{sql}");
            } else if sql.contains("FROM c ") {
                assert_eq!(
                    counts,
                    [9, 10, 10],
                    "{sql}: the deleted record is not in the view"
                );
            } else {
                assert_eq!(counts, [10, 10, 10], "{sql}");
            }
        }
        // Past the first 16 groups (a hash map), merged from two threads,
        // in SQLite's key order: every record once.
        let before = grouped();
        let out =
            run("SELECT data->>'$.v', count(*) FROM records WHERE collection = 'c' GROUP BY 1")
                .expect("many groups");
        assert_eq!(grouped() - before, 1);
        let want: Vec<Vec<Value>> = (0..30)
            .map(|i| vec![Value::from(i), Value::from(1)])
            .collect();
        assert_eq!(out.rows, want);
        assert_eq!(out.rows_scanned, 30);
        // What grouping holds counts against one budget for all queries.
        vtab::GROUP_BYTES.fetch_add(vtab::GROUP_BUDGET, std::sync::atomic::Ordering::Relaxed);
        let e = run("SELECT s, count(*) FROM c GROUP BY s");
        vtab::GROUP_BYTES.fetch_sub(vtab::GROUP_BUDGET, std::sync::atomic::Ordering::Relaxed);
        let e = e.expect_err("over the budget");
        assert!(matches!(e, SqlError::TooBig(_)), "{e}");
        assert!(e.to_string().contains("grouping needed more than"), "{e}");
        // Nothing stays counted once the queries are done.
        assert_eq!(
            vtab::GROUP_BYTES.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
}
