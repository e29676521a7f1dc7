//! The workspace's tables as SQLite virtual tables, read straight from one
//! redb snapshot: no second copy of the data. Every row comes from the
//! scope's workspace (and, for an endpoint, its collections) only, so no
//! query text can reach another workspace.
//!
//! `records` pushes `collection = …`, `id = …` and `workspace_id = …` down
//! to redb: a query on one collection scans that collection's key range,
//! and a lookup by id is a point read.
//!
//! rusqlite's `VTab` / `VTabCursor` are `unsafe` traits: the implementing
//! structs must be `#[repr(C)]` with the SQLite base struct first. That is
//! the only unsafe contract here, and the only module allowed it.
#![allow(unsafe_code)]

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::{CStr, CString, c_int};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::types::Value as SqlValue;
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConfig, VTabConnection,
    VTabCursor,
};
use rusqlite::{Connection, ffi};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::store::{self, Snapshot, StoreError};

/// What every table of one query reads from.
pub struct Source {
    pub snapshot: Snapshot,
    pub workspace: String,
    /// Endpoint scope: only these collections (None: all).
    pub allowed: Option<HashSet<String>>,
    /// The collections of the workspace this scope can see.
    pub visible: Vec<String>,
    /// Only relationships of these types (None: all).
    pub rel_types: Option<HashSet<String>>,
    /// Only operations-log entries that name a visible collection.
    pub oplog_collections_only: bool,
    /// Rows read from the store by this query, all tables together.
    pub scanned: AtomicU64,
}

impl Source {
    fn allows(&self, coll: &str) -> bool {
        self.allowed.as_ref().is_none_or(|a| a.contains(coll))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Records,
    Relationships,
    Collections,
    Workspaces,
    OperationsLog,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Records,
        Kind::Relationships,
        Kind::Collections,
        Kind::Workspaces,
        Kind::OperationsLog,
    ];

    pub fn name(self) -> &'static CStr {
        match self {
            Kind::Records => c"records",
            Kind::Relationships => c"relationships",
            Kind::Collections => c"collections",
            Kind::Workspaces => c"workspaces",
            Kind::OperationsLog => c"operations_log",
        }
    }

    /// Column names and SQLite types, in order.
    pub fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Records => &[
                ("id", "TEXT"),
                ("workspace_id", "TEXT"),
                ("collection", "TEXT"),
                ("data", "TEXT"),
                ("external_id", "TEXT"),
                ("external_source", "TEXT"),
                ("created_at", "TEXT"),
                ("updated_at", "TEXT"),
                ("version", "INTEGER"),
                ("archived", "INTEGER"),
                ("cancelled", "INTEGER"),
                ("deleted", "INTEGER"),
            ],
            Kind::Relationships => &[
                ("id", "TEXT"),
                ("workspace_id", "TEXT"),
                ("rel_type", "TEXT"),
                ("source_collection", "TEXT"),
                ("source_id", "TEXT"),
                ("target_collection", "TEXT"),
                ("target_id", "TEXT"),
                ("metadata", "TEXT"),
                ("created_at", "TEXT"),
                ("updated_at", "TEXT"),
            ],
            Kind::Collections => &[
                ("id", "TEXT"),
                ("workspace_id", "TEXT"),
                ("name", "TEXT"),
                ("description", "TEXT"),
                ("schema", "TEXT"),
                ("version", "INTEGER"),
                ("created_at", "TEXT"),
                ("updated_at", "TEXT"),
            ],
            Kind::Workspaces => &[
                ("id", "TEXT"),
                ("name", "TEXT"),
                ("description", "TEXT"),
                ("kind", "TEXT"),
                ("parent", "TEXT"),
                ("created_at", "TEXT"),
            ],
            Kind::OperationsLog => &[
                ("seq", "INTEGER"),
                ("workspace_id", "TEXT"),
                ("token_id", "TEXT"),
                ("operation", "TEXT"),
                ("target", "TEXT"),
                ("at", "TEXT"),
            ],
        }
    }

    fn schema(self) -> CString {
        let cols: Vec<String> = self
            .columns()
            .iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect();
        CString::new(format!("CREATE TABLE x({})", cols.join(", "))).unwrap_or_default()
    }
}

/// Registers the five tables on `conn` (eponymous: no DDL needed).
pub fn register(conn: &Connection, source: &Arc<Source>) -> rusqlite::Result<()> {
    const MODULE: Module<'static, Table> = Module::eponymous_only_module();
    for kind in Kind::ALL {
        conn.create_module(kind.name(), &MODULE, Some((kind, source.clone())))?;
    }
    Ok(())
}

#[repr(C)]
pub struct Table {
    /// SQLite's base struct; must be first.
    base: ffi::sqlite3_vtab,
    kind: Kind,
    source: Arc<Source>,
}

// Bits of idx_num for `records`: which constraints were pushed down, in argv order.
const BY_ID: c_int = 1;
const BY_WORKSPACE: c_int = 2;
const BY_COLLECTION: c_int = 4;

// SAFETY: `Table` is `#[repr(C)]` with `sqlite3_vtab` as its first field.
unsafe impl<'vtab> VTab<'vtab> for Table {
    type Aux = (Kind, Arc<Source>);
    type Cursor = Cursor<'vtab>;

    fn connect(
        db: &mut VTabConnection,
        aux: Option<&Self::Aux>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        let (kind, source) = aux
            .cloned()
            .ok_or_else(|| rusqlite::Error::ModuleError("table without a source".into()))?;
        db.config(VTabConfig::Innocuous)?;
        Ok((
            Cow::Owned(kind.schema()),
            Table {
                base: ffi::sqlite3_vtab::default(),
                kind,
                source,
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        if self.kind != Kind::Records {
            info.set_estimated_cost(100_000.0);
            return Ok(true);
        }
        // Column index → bit, for usable `=` constraints.
        let mut found: Vec<(usize, c_int)> = Vec::new();
        let binary: Vec<bool> = (0..info.constraints().count())
            .map(|i| {
                info.collation(i)
                    .is_ok_and(|c| c.eq_ignore_ascii_case("BINARY"))
            })
            .collect();
        for (i, c) in info.constraints().enumerate() {
            // Only exact (`=`, BINARY collation) matches become key lookups;
            // SQLite evaluates every other constraint itself.
            if !c.is_usable()
                || c.operator() != IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ
                || !binary[i]
            {
                continue;
            }
            let bit = match c.column() {
                0 => BY_ID,
                1 => BY_WORKSPACE,
                2 => BY_COLLECTION,
                _ => continue,
            };
            if !found.iter().any(|(_, b)| *b == bit) {
                found.push((i, bit));
            }
        }
        found.sort_by_key(|(_, bit)| *bit);
        let mut idx = 0;
        for (n, (i, bit)) in found.iter().enumerate() {
            let mut usage = info.constraint_usage(*i);
            usage.set_argv_index(c_int::try_from(n + 1).unwrap_or(c_int::MAX));
            usage.set_omit(true);
            idx |= bit;
        }
        let (cost, rows) = if idx & BY_ID != 0 {
            (1.0, 1)
        } else if idx & BY_COLLECTION != 0 {
            (1_000.0, 10_000)
        } else {
            (1_000_000.0, 1_000_000)
        };
        info.set_idx_num(idx);
        info.set_estimated_cost(cost);
        info.set_estimated_rows(rows);
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<Cursor<'vtab>> {
        Ok(Cursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            table: self,
            rows: Box::new(std::iter::empty()),
            current: None,
            record: RefCell::new(None),
            value: Value::Null,
            rowid: 0,
        })
    }
}

/// A stored record seen as raw JSON spans: decoding allocates nothing, and
/// a column is converted only when SQLite reads it. Field order follows
/// [`Kind::columns`] for `records`.
#[derive(Deserialize)]
struct RawRecord<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    workspace_id: &'a RawValue,
    #[serde(borrow)]
    collection: &'a RawValue,
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(borrow)]
    external_id: &'a RawValue,
    #[serde(borrow)]
    external_source: &'a RawValue,
    #[serde(borrow)]
    created_at: &'a RawValue,
    #[serde(borrow)]
    updated_at: &'a RawValue,
    #[serde(borrow)]
    version: &'a RawValue,
    #[serde(borrow)]
    archived: &'a RawValue,
    #[serde(borrow)]
    cancelled: &'a RawValue,
    #[serde(borrow)]
    deleted: &'a RawValue,
}

/// Byte ranges of each column's raw JSON within the stored record.
type Spans = [std::ops::Range<usize>; 12];

fn spans(bytes: &[u8]) -> Result<Spans, serde_json::Error> {
    let r: RawRecord<'_> = serde_json::from_slice(bytes)?;
    let base = bytes.as_ptr() as usize;
    let at = |v: &RawValue| {
        let start = v.get().as_ptr() as usize - base;
        start..start + v.get().len()
    };
    Ok([
        at(r.id),
        at(r.workspace_id),
        at(r.collection),
        at(r.data),
        at(r.external_id),
        at(r.external_source),
        at(r.created_at),
        at(r.updated_at),
        at(r.version),
        at(r.archived),
        at(r.cancelled),
        at(r.deleted),
    ])
}

/// The byte range of `data` in a stored record, without decoding it: the
/// service serializes `data` last (and `deleted` first), and serde_json escapes every quote inside
/// strings, so the first `,"data":` is the key and the value runs to the
/// closing brace. `None` if the bytes do not have that shape.
fn data_span(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    const KEY: &[u8] = b",\"data\":";
    let at = bytes.windows(KEY.len()).position(|w| w == KEY)?;
    let end = bytes.len().checked_sub(1).filter(|&e| bytes[e] == b'}')?;
    let start = at + KEY.len();
    (start < end).then_some(start..end)
}

/// A raw JSON scalar as an SQLite value, borrowing plain strings.
fn raw_to_sql(raw: &str, ctx: &mut Context) -> rusqlite::Result<()> {
    match raw.as_bytes().first() {
        Some(b'"') if !raw.contains('\\') => ctx.set_result(&raw[1..raw.len() - 1]),
        Some(b'"') => ctx.set_result(serde_json::from_str::<String>(raw).map_err(err)?),
        Some(b't') => ctx.set_result(1),
        Some(b'f') => ctx.set_result(0),
        Some(b'n') | None => ctx.set_result(SqlValue::Null),
        Some(_) => match raw.parse::<i64>() {
            Ok(i) => ctx.set_result(i),
            Err(_) => ctx.set_result(raw.parse::<f64>().map_err(err)?),
        },
    }
}

type Rows = Box<dyn Iterator<Item = Result<Vec<u8>, StoreError>>>;

#[repr(C)]
pub struct Cursor<'vtab> {
    /// SQLite's base struct; must be first.
    base: ffi::sqlite3_vtab_cursor,
    table: &'vtab Table,
    rows: Rows,
    /// The current row's stored JSON.
    current: Option<Vec<u8>>,
    /// Column spans of the current record, found on first column read.
    record: RefCell<Option<Spans>>,
    /// The current row, decoded (other tables).
    value: Value,
    rowid: i64,
}

fn err(e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::ModuleError(e.to_string())
}

fn text_arg(args: &Filters<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match args.get::<SqlValue>(i)? {
        SqlValue::Text(s) => Some(s),
        _ => None,
    })
}

impl Cursor<'_> {
    fn source(&self) -> &Source {
        &self.table.source
    }

    /// The record rows for the pushed-down constraints.
    fn record_rows(&self, idx: c_int, args: &Filters<'_>) -> rusqlite::Result<Rows> {
        let src = self.source();
        let mut n = 0;
        let mut next_arg = || {
            let v = text_arg(args, n);
            n += 1;
            v
        };
        // A non-text value never equals a text column: no rows.
        let id = if idx & BY_ID != 0 {
            Some(next_arg()?)
        } else {
            None
        };
        let ws = if idx & BY_WORKSPACE != 0 {
            Some(next_arg()?)
        } else {
            None
        };
        let coll = if idx & BY_COLLECTION != 0 {
            Some(next_arg()?)
        } else {
            None
        };
        let none = || -> Rows { Box::new(std::iter::empty()) };
        if matches!(id, Some(None)) || matches!(coll, Some(None)) || matches!(ws, Some(None)) {
            return Ok(none());
        }
        if ws.flatten().is_some_and(|w| w != src.workspace) {
            return Ok(none());
        }
        let colls: Vec<String> = match coll.flatten() {
            Some(c) if src.allows(&c) => vec![c],
            Some(_) => vec![],
            None if id.is_some() || src.allowed.is_some() => src.visible.clone(),
            None => {
                let all: Rows =
                    store::records::stream(&src.snapshot, &src.workspace, None).map_err(err)?;
                return Ok(all);
            }
        };
        if let Some(id) = id.flatten() {
            let mut hits = Vec::new();
            for c in &colls {
                if let Some(bytes) =
                    store::records::get(&src.snapshot, &src.workspace, c, &id).map_err(err)?
                {
                    hits.push(Ok(bytes));
                }
            }
            return Ok(Box::new(hits.into_iter()));
        }
        let mut streams = Vec::new();
        for c in &colls {
            let rows: Rows =
                store::records::stream(&src.snapshot, &src.workspace, Some(c)).map_err(err)?;
            streams.push(rows);
        }
        Ok(Box::new(streams.into_iter().flatten()))
    }

    fn other_rows(&self) -> rusqlite::Result<Rows> {
        let src = self.source();
        let (snap, ws) = (&src.snapshot, src.workspace.as_str());
        Ok(match self.table.kind {
            Kind::Records => unreachable!("records use record_rows"),
            Kind::Relationships => Box::new(store::relationships::stream(snap, ws).map_err(err)?),
            Kind::OperationsLog => Box::new(store::oplog::stream(snap, ws).map_err(err)?),
            Kind::Collections => Box::new(
                store::collections::list(snap, ws)
                    .map_err(err)?
                    .into_iter()
                    .map(Ok),
            ),
            Kind::Workspaces => Box::new(
                store::workspaces::get(snap, ws)
                    .map_err(err)?
                    .into_iter()
                    .map(Ok),
            ),
        })
    }

    /// Whether a decoded row of a non-record table is inside the scope.
    fn visible(&self, v: &Value) -> bool {
        let src = self.source();
        let ok = |key: &str| v[key].as_str().is_some_and(|c| src.allows(c));
        match self.table.kind {
            Kind::Relationships => {
                ok("source_collection")
                    && ok("target_collection")
                    && src
                        .rel_types
                        .as_ref()
                        .is_none_or(|t| v["rel_type"].as_str().is_some_and(|r| t.contains(r)))
            }
            Kind::Collections => ok("id"),
            Kind::OperationsLog => {
                (src.allowed.is_none() && !src.oplog_collections_only)
                    || v["target"]["collection"]
                        .as_str()
                        .is_some_and(|c| src.allows(c))
            }
            Kind::Records | Kind::Workspaces => true,
        }
    }

    fn advance(&mut self) -> rusqlite::Result<()> {
        self.record.replace(None);
        loop {
            let Some(row) = self.rows.next() else {
                self.current = None;
                return Ok(());
            };
            let bytes = row.map_err(err)?;
            self.rowid += 1;
            self.source().scanned.fetch_add(1, Ordering::Relaxed);
            if self.table.kind == Kind::Records {
                self.current = Some(bytes);
                return Ok(());
            }
            let v: Value = serde_json::from_slice(&bytes).map_err(err)?;
            if self.visible(&v) {
                self.value = v;
                self.current = Some(bytes);
                return Ok(());
            }
        }
    }

    fn record_column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let bytes = self.current.as_deref().unwrap_or_default();
        if self.record.borrow().is_none() {
            // Fast paths: `data` and `deleted` alone need no decoding.
            if i == 3
                && let Some(data) = data_span(bytes)
            {
                return ctx.set_result(std::str::from_utf8(&bytes[data]).map_err(err)?);
            }
            if i == 11 {
                if bytes.starts_with(b"{\"deleted\":false,") {
                    return ctx.set_result(0);
                }
                if bytes.starts_with(b"{\"deleted\":true,") {
                    return ctx.set_result(1);
                }
            }
        }
        let mut slot = self.record.borrow_mut();
        if slot.is_none() {
            *slot = Some(spans(bytes).map_err(err)?);
        }
        let span = usize::try_from(i)
            .ok()
            .and_then(|i| slot.as_ref().and_then(|s| s.get(i)));
        let Some(raw) = span.and_then(|r| bytes.get(r.clone())) else {
            return ctx.set_result(SqlValue::Null);
        };
        let raw = std::str::from_utf8(raw).map_err(err)?;
        if i == 3 {
            // `data` is served as its JSON text.
            return ctx.set_result(raw);
        }
        raw_to_sql(raw, ctx)
    }
}

/// A JSON value as an SQLite value: objects and arrays as JSON text.
fn to_sql(v: Option<&Value>) -> SqlValue {
    match v {
        None | Some(Value::Null) => SqlValue::Null,
        Some(Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        Some(Value::Number(n)) => n.as_i64().map_or_else(
            || SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
            SqlValue::Integer,
        ),
        Some(Value::String(s)) => SqlValue::Text(s.clone()),
        Some(other) => SqlValue::Text(other.to_string()),
    }
}

// SAFETY: `Cursor` is `#[repr(C)]` with `sqlite3_vtab_cursor` as its first field.
unsafe impl VTabCursor for Cursor<'_> {
    fn filter(
        &mut self,
        idx_num: c_int,
        _idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        self.rows = if self.table.kind == Kind::Records {
            self.record_rows(idx_num, args)?
        } else {
            self.other_rows()?
        };
        self.rowid = 0;
        self.advance()
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.advance()
    }

    fn eof(&self) -> bool {
        self.current.is_none()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        if self.table.kind == Kind::Records {
            return self.record_column(ctx, i);
        }
        let Some((name, _)) = usize::try_from(i)
            .ok()
            .and_then(|i| self.table.kind.columns().get(i))
        else {
            return ctx.set_result(SqlValue::Null);
        };
        if *name == "workspace_id" {
            return ctx.set_result(self.source().workspace.as_str());
        }
        ctx.set_result(to_sql(self.value.get(*name)))
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.rowid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_span_matches_a_full_decode() {
        let stored = br#"{"id":"x","collection":"c","external_id":"a \",\"data\": b","deleted":false,"data":{"k":[1,"}"]}}"#;
        let fast = data_span(stored).expect("shape");
        let full = spans(stored.as_slice());
        assert!(
            full.is_err(),
            "the sample lacks fields, so only the fast path applies"
        );
        assert_eq!(&stored[fast], br#"{"k":[1,"}"]}"#.as_slice());
        assert_eq!(
            data_span(b"{\"data\":1}"),
            None,
            "data must follow another field"
        );
        assert_eq!(data_span(b"not json"), None);
    }
}
