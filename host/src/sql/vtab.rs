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
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use rusqlite::types::Value as SqlValue;
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConfig, VTabConnection,
    VTabCursor,
};
use rusqlite::{Connection, ffi};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::paths::{self, Cast, Hidden};
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
    /// Hidden columns of `records`: `data ->> '…'` extracts ([`paths`]).
    pub hidden: Vec<Hidden>,
    /// When the query's time is up (checked where SQLite's progress
    /// handler cannot be: inside one call of the table, while grouping).
    pub deadline: Instant,
    /// Why the table stopped the query, when it did (read by `query`).
    pub stop: std::sync::Mutex<Option<Stop>>,
}

/// A limit the table itself enforced.
#[derive(Debug)]
pub enum Stop {
    Timeout,
    TooBig(String),
}

impl Source {
    fn stop(&self, why: Stop) {
        if let Ok(mut s) = self.stop.lock() {
            *s = Some(why);
        }
    }

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

    fn schema(self, hidden: &[Hidden]) -> CString {
        let mut cols: Vec<String> = self
            .columns()
            .iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect();
        if self == Kind::Records {
            cols.extend(hidden.iter().map(Hidden::declaration));
        }
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
/// `deleted = 0` or `deleted = 1` (a literal): rows filtered by the flag,
/// which is their first bytes.
const BY_DELETED: c_int = 8;
/// Rows are served grouped by the ORDER BY columns (a GROUP BY or
/// DISTINCT that needs no order): `idx_str` names them and the columns
/// to keep ([`GroupPlan`]).
const GROUPED: c_int = 16;

/// Column indexes of `records` that the table reads specially.
const DATA: c_int = 3;
const DELETED: c_int = 11;
/// The first hidden column (`data ->> …`, [`paths`]).
const HIDDEN0: c_int = 12;

/// Bytes all grouping tables together may hold (SQLite's own sorter is
/// under its heap limit; this is the same kind of ceiling for ours).
pub(super) const GROUP_BUDGET: usize = 256 << 20;
pub(super) static GROUP_BYTES: AtomicUsize = AtomicUsize::new(0);

#[cfg(test)]
thread_local! {
    /// Scans served grouped on this thread (tests check the plan with it).
    pub(super) static GROUPED_SCANS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

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
            Cow::Owned(kind.schema(&source.hidden)),
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
        let constraints: Vec<(c_int, bool)> = info
            .constraints()
            .map(|c| {
                let eq =
                    c.is_usable() && c.operator() == IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ;
                (c.column(), eq)
            })
            .collect();
        for (i, &(column, eq)) in constraints.iter().enumerate() {
            // Only exact (`=`, BINARY collation) matches become key lookups;
            // SQLite evaluates every other constraint itself.
            if !eq || !binary[i] {
                continue;
            }
            let bit = match column {
                0 => BY_ID,
                1 => BY_WORKSPACE,
                2 => BY_COLLECTION,
                // A literal 0 or 1 only: the flag is exactly one of them.
                DELETED
                    if matches!(
                        info.rhs_value(i),
                        Ok(Some(rusqlite::types::ValueRef::Integer(0 | 1)))
                    ) =>
                {
                    BY_DELETED
                }
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
        // GROUP BY / DISTINCT over columns of this table: serve the rows
        // grouped, so SQLite needs no sorter (it only needs each group's
        // rows together, in any order).
        let grouping = matches!(
            info.distinct(),
            rusqlite::vtab::DistinctMode::Grouped | rusqlite::vtab::DistinctMode::Distinct
        );
        let mut keys: Vec<c_int> = info.order_bys().map(|o| o.column()).collect();
        // The columns the query reads (SQLite's colUsed), but for those whose
        // value the pushed-down constraints fix: what a grouped scan keeps
        // per row, and which hidden columns a row's `data` is parsed for.
        let columns = HIDDEN0 + c_int::try_from(self.source.hidden.len()).unwrap_or(0);
        let used = info.col_used();
        let pushed = |c: c_int| match c {
            0 => idx & BY_ID != 0,
            1 => idx & BY_WORKSPACE != 0,
            2 => idx & BY_COLLECTION != 0,
            DELETED => idx & BY_DELETED != 0,
            _ => false,
        };
        let kept: Vec<c_int> = (0..columns)
            .filter(|&c| used & (1u64 << c.min(63)) != 0 && !pushed(c))
            .collect();
        if grouping && !keys.is_empty() && keys.iter().all(|&k| k >= 0) {
            info.set_order_by_consumed(true);
            idx |= GROUPED;
        } else {
            keys.clear();
        }
        info.set_idx_str(&GroupPlan { keys, kept }.to_string());
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
            picked: RefCell::new(None),
            extractor: paths::Extractor::new(&[], []),
            deleted: None,
            grouped: None,
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
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(KEY));
    let at = FINDER.find(bytes)?;
    let end = bytes.len().checked_sub(1).filter(|&e| bytes[e] == b'}')?;
    let start = at + KEY.len();
    (start < end).then_some(start..end)
}

/// A raw JSON scalar as an SQLite value, borrowing plain strings.
fn raw_to_sql(raw: &str, ctx: &mut Context) -> rusqlite::Result<()> {
    if plain_string(raw) {
        return ctx.set_result(&raw[1..raw.len() - 1]);
    }
    ctx.set_result(paths::scalar(raw)?)
}

type Rows = Box<dyn Iterator<Item = Result<Vec<u8>, StoreError>>>;

#[repr(C)]
pub struct Cursor<'vtab> {
    /// SQLite's base struct; must be first.
    base: ffi::sqlite3_vtab_cursor,
    table: &'vtab Table,
    rows: Rows,
    /// The current row's stored JSON.
    current: Option<String>,
    /// Column spans of the current record, found on first column read.
    record: RefCell<Option<Spans>>,
    /// Where the current record's hidden columns are in its bytes, found on
    /// first hidden column read (one parse of `data` for all of them).
    picked: RefCell<Option<Picked>>,
    /// Reads the hidden columns the query uses from a row's `data`.
    extractor: paths::Extractor,
    /// Only records whose `deleted` flag is this (`deleted = 0|1` pushed down).
    deleted: Option<bool>,
    /// The rows, grouped, when the table serves a GROUP BY itself.
    grouped: Option<Grouped>,
    /// The current row, decoded (other tables).
    value: Value,
    rowid: i64,
}

fn err(e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::ModuleError(e.to_string())
}

/// A pushed-down value for a TEXT column, as SQLite compares it: a number
/// takes the column's TEXT affinity (`collection = 5` is `= '5'`); a blob
/// or NULL equals no text.
fn text_arg(args: &Filters<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match args.get::<SqlValue>(i)? {
        SqlValue::Text(s) => Some(s),
        v @ (SqlValue::Integer(_) | SqlValue::Real(_)) => {
            match super::functions::builtin_value("SELECT CAST(?1 AS TEXT)", v)? {
                SqlValue::Text(s) => Some(s),
                _ => None,
            }
        }
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
        if let Some(p) = self.picked.borrow_mut().as_mut() {
            p.iter_mut().for_each(|x| *x = None);
        }
        if let Some(g) = &mut self.grouped {
            g.step();
            self.rowid += 1;
            return Ok(());
        }
        loop {
            let Some(row) = self.rows.next() else {
                self.current = None;
                return Ok(());
            };
            let bytes = String::from_utf8(row.map_err(err)?).map_err(err)?;
            self.rowid += 1;
            self.source().scanned.fetch_add(1, Ordering::Relaxed);
            if self.table.kind == Kind::Records {
                if !keeps(self.deleted, &bytes)? {
                    continue;
                }
                self.current = Some(bytes);
                return Ok(());
            }
            let v: Value = serde_json::from_str(&bytes).map_err(err)?;
            if self.visible(&v) {
                self.value = v;
                self.current = Some(bytes);
                return Ok(());
            }
        }
    }

    fn record_column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let src = self.source();
        if let Some(g) = &self.grouped {
            return g.column(src, ctx, i);
        }
        let text = self.current.as_deref().unwrap_or_default();
        if self.record.borrow().is_none() && i == DATA {
            // Fast path: `data` alone needs no decoding.
            if let Some(data) = data_span(text.as_bytes()) {
                return ctx.set_result(slice(text, data)?);
            }
        }
        let range = raw_range(
            src,
            &self.extractor,
            text,
            i,
            &mut self.record.borrow_mut(),
            &mut self.picked.borrow_mut(),
        )?;
        let raw = match range {
            Some(r) => Some(slice(text, r)?),
            None => None,
        };
        emit(src, ctx, i, raw)
    }

    /// Reads every row the pushed-down constraints select and holds the
    /// `plan.kept` columns of each, grouped by the `plan.keys` columns.
    /// A large collection read in place is read by two threads, one from
    /// each end (the scan is most of the query's time).
    fn group(
        &mut self,
        plan: GroupPlan,
        consts: Vec<(c_int, SqlValue)>,
        direct: Option<String>,
    ) -> rusqlite::Result<Grouped> {
        let src = self.table.source.clone();
        let deleted = self.deleted;
        let grouper = || Grouper::new(&src, &plan, &consts, deleted);
        let Some(coll) = direct else {
            let mut one = grouper();
            for row in self.rows.by_ref() {
                let text = String::from_utf8(row.map_err(err)?).map_err(err)?;
                one.row(&text)?;
            }
            return Grouper::merge(vec![one]);
        };
        let (snap, ws) = (&src.snapshot, src.workspace.as_str());
        let (_, all) = store::records::count(snap, ws, &coll).map_err(err)?;
        if all >= PARALLEL_ROWS {
            let front_n = all.div_ceil(2);
            let back_n = all - front_n;
            let (front, back) = std::thread::scope(|s| {
                let back = s.spawn(|| grouper().read(snap, ws, &coll, true, back_n));
                let front = grouper().read(snap, ws, &coll, false, front_n);
                let back = back
                    .join()
                    .unwrap_or_else(|_| Err(err("a grouping thread panicked")));
                (front, back)
            });
            let ((front, front_last), (back, back_last)) = (front?, back?);
            // The halves meet exactly (the count is the snapshot's own, but
            // a wrong count must not lose or repeat rows): the front's last
            // id is below the back's, with nothing between them.
            let meet = match (&front_last, &back_last) {
                (Some(f), Some(b)) => {
                    f < b
                        && front.rows_read == front_n
                        && back.rows_read == back_n
                        && store::records::count_between(snap, ws, &coll, f, b, 2).map_err(err)?
                            == 1
                }
                _ => false,
            };
            if meet {
                return Grouper::merge(vec![front, back]);
            }
        }
        let (one, _) = grouper().read(snap, ws, &coll, false, u64::MAX)?;
        Grouper::merge(vec![one])
    }
}

/// Collections from this many records (live and deleted) are grouped by
/// two threads (in unit tests, small ones too, so the merge is tested).
const PARALLEL_ROWS: u64 = if cfg!(test) { 4 } else { 50_000 };

/// One thread's part of a grouped scan.
struct Grouper<'a> {
    src: &'a Source,
    keys: &'a [c_int],
    deleted: Option<bool>,
    extractor: paths::Extractor,
    g: Grouped,
    /// The first groups' keys, looked up by comparison before the map: the
    /// usual GROUP BY has a handful of groups, and hashing costs more.
    few: Vec<(Vec<u8>, usize)>,
    index: std::collections::HashMap<Vec<u8>, usize>,
    key: Vec<u8>,
    fields: Vec<Option<Range<usize>>>,
    picked: Option<Picked>,
    /// Rows read (for the scan count) and bytes read (for the checks).
    rows_read: u64,
    bytes_read: usize,
    checked_at: usize,
}

impl<'a> Grouper<'a> {
    fn new(
        src: &'a Source,
        plan: &'a GroupPlan,
        consts: &[(c_int, SqlValue)],
        deleted: Option<bool>,
    ) -> Grouper<'a> {
        Grouper {
            src,
            keys: &plan.keys,
            deleted,
            extractor: plan.extractor(&src.hidden),
            g: Grouped::new(plan.kept.clone(), consts.to_vec()),
            few: Vec::new(),
            index: Default::default(),
            key: Vec::new(),
            fields: Vec::new(),
            picked: None,
            rows_read: 0,
            bytes_read: 0,
            checked_at: 0,
        }
    }

    /// Reads `most` records of `coll` in place, from the start or the end;
    /// returns the part and the last id read.
    fn read(
        mut self,
        snap: &Snapshot,
        ws: &str,
        coll: &str,
        reverse: bool,
        most: u64,
    ) -> rusqlite::Result<(Grouper<'a>, Option<String>)> {
        let mut last = String::new();
        let mut any = false;
        store::records::scan_keyed(
            snap,
            ws,
            coll,
            reverse,
            |id, bytes| -> Result<std::ops::ControlFlow<()>, ScanError> {
                if self.rows_read >= most {
                    return Ok(std::ops::ControlFlow::Break(()));
                }
                let text = std::str::from_utf8(bytes).map_err(|e| ScanError(err(e)))?;
                self.row(text).map_err(ScanError)?;
                last.clear();
                last.push_str(id);
                any = true;
                Ok(std::ops::ControlFlow::Continue(()))
            },
        )
        .map_err(|e| e.0)?;
        Ok((self, any.then_some(last)))
    }

    /// One row: its kept columns into the arena, its key into a group.
    fn row(&mut self, text: &str) -> rusqlite::Result<()> {
        let src = self.src;
        let g = &mut self.g;
        self.rows_read += 1;
        self.bytes_read += text.len();
        // The limits are checked every 64 rows and every 4 MiB read (rows
        // can be large, and each is parsed).
        if self.rows_read.is_multiple_of(64) || self.bytes_read > self.checked_at + (4 << 20) {
            self.checked_at = self.bytes_read;
            g.check(src)?;
        }
        if !keeps(self.deleted, text)? {
            return Ok(());
        }
        let mut spans = None;
        if let Some(p) = self.picked.as_mut() {
            p.iter_mut().for_each(|x| *x = None);
        }
        let fields = &mut self.fields;
        fields.clear();
        for &c in &g.kept {
            fields.push(raw_range(
                src,
                &self.extractor,
                text,
                c,
                &mut spans,
                &mut self.picked,
            )?);
        }
        let row = u32::try_from(g.rows()).map_err(|_| g.too_big())?;
        for f in fields.iter() {
            let at = u32::try_from(g.text.len()).map_err(|_| g.too_big())?;
            match f {
                Some(r) => {
                    let len = u32::try_from(r.len()).map_err(|_| g.too_big())?;
                    g.text.push_str(slice(text, r.clone())?);
                    g.fields.push((at, len));
                }
                None => g.fields.push((at, u32::MAX)),
            }
        }
        let key = &mut self.key;
        key.clear();
        for &k in self.keys {
            if let Some((_, v)) = g.consts.iter().find(|(c, _)| *c == k) {
                key_of(v, key);
                continue;
            }
            let Some(p) = g.kept.iter().position(|&c| c == k) else {
                return Err(err("grouping by a column that is not read"));
            };
            let raw = match &fields[p] {
                Some(r) => Some(slice(text, r.clone())?),
                None => None,
            };
            match raw {
                // The common key, a plain string, without a copy.
                Some(r)
                    if k != DATA
                        && plain_string(r)
                        && (k < HIDDEN0 || hidden(src, k)?.cast == Cast::None) =>
                {
                    key_bytes(TEXT, &r.as_bytes()[1..r.len() - 1], key);
                }
                raw => key_of(&sql_value(src, k, raw)?, key),
            }
        }
        let found = match self.few.iter().find(|(k, _)| k == key) {
            Some(&(_, gi)) => Some(gi),
            None if self.few.len() < 16 => None,
            None => self.index.get(key.as_slice()).copied(),
        };
        let gi = match found {
            Some(gi) => gi,
            None => {
                // The key twice (map and its allocation), the entry, the
                // group's vector.
                g.counted += 2 * key.len() + 96;
                let gi = g.groups.len();
                if self.few.len() < 16 {
                    self.few.push((key.clone(), gi));
                } else {
                    self.index.insert(key.clone(), gi);
                }
                g.groups.push(Vec::new());
                gi
            }
        };
        g.groups[gi].push(row);
        g.counted += 4 + 8 * g.kept.len();
        Ok(())
    }

    /// The parts as one: rows of later parts after the first's, groups of
    /// equal keys joined, in SQLite's order of their keys (as its sorter
    /// would give them: a GROUP BY without ORDER BY, or with LIMIT, shows
    /// the same groups).
    fn merge(parts: Vec<Grouper<'_>>) -> rusqlite::Result<Grouped> {
        let mut out: Option<Grouped> = None;
        let mut keys: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        for mut part in parts {
            let src = part.src;
            let mut g = std::mem::replace(&mut part.g, Grouped::new(Vec::new(), Vec::new()));
            src.scanned.fetch_add(part.rows_read, Ordering::Relaxed);
            let named: Vec<(Vec<u8>, usize)> =
                part.few.drain(..).chain(part.index.drain()).collect();
            let Some(all) = out.as_mut() else {
                keys.extend(named);
                g.check(src)?;
                out = Some(g);
                continue;
            };
            let (text_at, row_at) = (all.text.len(), all.rows());
            let shift = |x: usize| u32::try_from(x).map_err(|_| all.too_big());
            let text_at = shift(text_at)?;
            let row_at = shift(row_at)?;
            all.text.push_str(&g.text);
            for (at, len) in g.fields.drain(..) {
                all.fields.push((
                    at.checked_add(text_at)
                        .ok_or_else(|| err("grouping: too much text"))?,
                    len,
                ));
            }
            for (key, gi) in named {
                let rows = std::mem::take(&mut g.groups[gi]);
                let rows = rows.into_iter().map(|r| r + row_at);
                match keys.get(&key) {
                    Some(&to) => all.groups[to].extend(rows),
                    None => {
                        keys.insert(key, all.groups.len());
                        all.groups.push(rows.collect());
                    }
                }
            }
            all.counted += g.counted;
            all.held += std::mem::take(&mut g.held);
            all.check(src)?;
        }
        let mut g = out.ok_or_else(|| err("grouping: no part"))?;
        let mut order: Vec<(Vec<u8>, usize)> = keys.into_iter().collect();
        order.sort_by(|a, b| cmp_keys(&a.0, &b.0));
        let mut groups: Vec<Option<Vec<u32>>> = g.groups.drain(..).map(Some).collect();
        g.groups = order
            .into_iter()
            .filter_map(|(_, gi)| groups.get_mut(gi).and_then(Option::take))
            .collect();
        g.text.shrink_to_fit();
        g.fields.shrink_to_fit();
        Ok(g)
    }
}

// Tags of group key values, in SQLite's order of storage classes.
const NULL: u8 = 0;
const INTEGER: u8 = 1;
const REAL: u8 = 2;
const TEXT: u8 = 3;
const BLOB: u8 = 4;

/// Reads one value of a group key: (tag, payload), and the rest.
fn key_part(k: &[u8]) -> (u8, &[u8], &[u8]) {
    let Some((&tag, rest)) = k.split_first() else {
        return (NULL, &[], &[]);
    };
    let n = match tag {
        NULL => 0,
        INTEGER | REAL => 8,
        _ => {
            let len: [u8; 8] = rest
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 8]);
            8 + usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX)
        }
    };
    let n = n.min(rest.len());
    (tag, &rest[..n], &rest[n..])
}

fn int_of(p: &[u8]) -> i64 {
    i64::from_le_bytes(p.try_into().unwrap_or([0; 8]))
}

fn real_of(p: &[u8]) -> f64 {
    f64::from_bits(u64::from_le_bytes(p.try_into().unwrap_or([0; 8])))
}

/// An integer against a real, exactly (SQLite's `sqlite3IntFloatCompare`).
fn cmp_int_real(i: i64, r: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if r < -LIMIT {
        return Ordering::Greater;
    }
    if r >= LIMIT {
        return Ordering::Less;
    }
    let t = r.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(r - t)).unwrap_or(Ordering::Equal),
        o => o,
    }
}

/// Two group keys in SQLite's ascending order: NULL, numbers (by value),
/// text (BINARY: bytes), blobs; column by column.
fn cmp_keys(mut a: &[u8], mut b: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let class = |t: u8| match t {
        INTEGER | REAL => 1,
        NULL => 0,
        t => t - 1,
    };
    while !a.is_empty() || !b.is_empty() {
        let (ta, pa, ra) = key_part(a);
        let (tb, pb, rb) = key_part(b);
        let o = match (ta, tb) {
            (INTEGER, INTEGER) => int_of(pa).cmp(&int_of(pb)),
            (REAL, REAL) => real_of(pa)
                .partial_cmp(&real_of(pb))
                .unwrap_or(Ordering::Equal),
            (INTEGER, REAL) => cmp_int_real(int_of(pa), real_of(pb)),
            (REAL, INTEGER) => cmp_int_real(int_of(pb), real_of(pa)).reverse(),
            (x, y) if x == y => pa.get(8..).cmp(&pb.get(8..)),
            (x, y) => class(x).cmp(&class(y)),
        };
        if o != Ordering::Equal {
            return o;
        }
        (a, b) = (ra, rb);
    }
    Ordering::Equal
}

/// Whether a record passes the pushed-down `deleted = 0|1` (if any).
fn keeps(deleted: Option<bool>, record: &str) -> rusqlite::Result<bool> {
    match deleted {
        Some(d) => Ok(store::records::is_deleted(record.as_bytes()).map_err(err)? == d),
        None => Ok(true),
    }
}

/// A table error carried through the store's scan.
struct ScanError(rusqlite::Error);

impl From<StoreError> for ScanError {
    fn from(e: StoreError) -> Self {
        ScanError(err(e))
    }
}

/// Part of a stored record's text, at a JSON token's edges.
fn slice(text: &str, r: Range<usize>) -> rusqlite::Result<&str> {
    text.get(r)
        .ok_or_else(|| err("stored JSON: a value that is not whole text"))
}

/// The hidden column `i`.
fn hidden(src: &Source, i: c_int) -> rusqlite::Result<&Hidden> {
    usize::try_from(i - HIDDEN0)
        .ok()
        .and_then(|h| src.hidden.get(h))
        .ok_or_else(|| err(format!("no column {i}")))
}

/// A raw JSON string with no escapes: its text is what is between the quotes.
fn plain_string(raw: &str) -> bool {
    raw.len() >= 2 && raw.starts_with('"') && !raw.contains('\\')
}

/// Where a row's hidden columns are within its `data` (`None`: not read
/// yet; `Some(None)`: the path is not there).
type Picked = Vec<Option<Option<Range<usize>>>>;

/// Where column `i`'s raw JSON is in a stored record (`None`: a hidden
/// column's path is not there). `spans` and `picked` cache the parses of
/// the record and of its `data` for the other columns of the same row.
fn raw_range(
    src: &Source,
    extractor: &paths::Extractor,
    text: &str,
    i: c_int,
    spans_cache: &mut Option<Spans>,
    picked: &mut Option<Picked>,
) -> rusqlite::Result<Option<Range<usize>>> {
    let bytes = text.as_bytes();
    let full = |spans_cache: &mut Option<Spans>| -> rusqlite::Result<Spans> {
        if spans_cache.is_none() {
            *spans_cache = Some(spans(bytes).map_err(err)?);
        }
        Ok(spans_cache.clone().unwrap_or_default())
    };
    if i == DELETED {
        // The flag comes first: no decoding.
        if bytes.starts_with(b"{\"deleted\":false,") {
            return Ok(Some(11..16));
        }
        if bytes.starts_with(b"{\"deleted\":true,") {
            return Ok(Some(11..15));
        }
    }
    if i >= HIDDEN0 {
        let h = usize::try_from(i - HIDDEN0).unwrap_or(usize::MAX);
        let found = picked.get_or_insert_with(|| vec![None; src.hidden.len()]);
        if found.get(h).is_some_and(Option::is_none) {
            let data = match data_span(bytes) {
                Some(d) => d,
                None => full(spans_cache)?[DATA as usize].clone(),
            };
            let text = slice(text, data.clone())?;
            // First of the row: every column the query uses at once; a
            // column SQLite did not announce, alone. Held as ranges of the
            // whole record.
            if found.iter().all(Option::is_none) {
                extractor
                    .run(&src.hidden, text, data.start, found)
                    .map_err(err)?;
            }
            if found[h].is_none() {
                paths::Extractor::new(&src.hidden, [h])
                    .run(&src.hidden, text, data.start, found)
                    .map_err(err)?;
            }
        }
        return Ok(found.get(h).cloned().flatten().flatten());
    }
    if i == DATA
        && let Some(d) = data_span(bytes)
    {
        return Ok(Some(d));
    }
    let s = full(spans_cache)?;
    Ok(usize::try_from(i).ok().and_then(|i| s.get(i).cloned()))
}

/// Column `i`'s value from its raw JSON, as SQLite reads it.
fn emit(src: &Source, ctx: &mut Context, i: c_int, raw: Option<&str>) -> rusqlite::Result<()> {
    let Some(raw) = raw else {
        return ctx.set_result(SqlValue::Null);
    };
    if i == DATA {
        // `data` is served as its JSON text.
        return ctx.set_result(raw);
    }
    if i >= HIDDEN0 {
        let h = hidden(src, i)?;
        if h.cast != Cast::None {
            return ctx.set_result(paths::value(Some(raw), h.cast)?);
        }
    }
    raw_to_sql(raw, ctx)
}

/// Column `i`'s value from its raw JSON, owned (for group keys).
fn sql_value(src: &Source, i: c_int, raw: Option<&str>) -> rusqlite::Result<SqlValue> {
    match raw {
        None => Ok(SqlValue::Null),
        Some(r) if i == DATA => Ok(SqlValue::Text(r.to_string())),
        Some(r) if i >= HIDDEN0 => paths::value(Some(r), hidden(src, i)?.cast),
        Some(r) => paths::value(Some(r), Cast::None),
    }
}

/// Appends text or a blob to a group key: its tag, length and bytes.
fn key_bytes(tag: u8, bytes: &[u8], key: &mut Vec<u8>) {
    key.push(tag);
    key.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    key.extend_from_slice(bytes);
}

/// Appends `v` to a group key: values SQLite's GROUP BY takes as equal
/// (an integer and the real of the same value, say) get the same bytes.
fn key_of(v: &SqlValue, key: &mut Vec<u8>) {
    // 2^63 as a double: integral reals below it in magnitude are integers.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    match v {
        SqlValue::Null => key.push(NULL),
        SqlValue::Integer(i) => {
            key.push(INTEGER);
            key.extend_from_slice(&i.to_le_bytes());
        }
        SqlValue::Real(f) if f.fract() == 0.0 && *f >= -LIMIT && *f < LIMIT => {
            key.push(INTEGER);
            key.extend_from_slice(&(*f as i64).to_le_bytes());
        }
        SqlValue::Real(f) => {
            key.push(REAL);
            key.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        SqlValue::Text(t) => key_bytes(TEXT, t.as_bytes(), key),
        SqlValue::Blob(b) => key_bytes(BLOB, b, key),
    }
}

/// How the table serves a GROUP BY: the columns whose values group the rows
/// and the columns it keeps per row, carried from `best_index` to `filter`
/// as `idx_str` (`k=12,13;c=12,14`).
struct GroupPlan {
    keys: Vec<c_int>,
    kept: Vec<c_int>,
}

impl std::fmt::Display for GroupPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[c_int]| v.iter().map(c_int::to_string).collect::<Vec<_>>().join(",");
        write!(f, "k={};c={}", list(&self.keys), list(&self.kept))
    }
}

impl GroupPlan {
    /// Reads the hidden columns among the kept ones from a row's `data`.
    fn extractor(&self, hidden: &[Hidden]) -> paths::Extractor {
        let wanted = self
            .kept
            .iter()
            .filter_map(|&c| usize::try_from(c - HIDDEN0).ok());
        paths::Extractor::new(hidden, wanted)
    }

    fn parse(s: &str) -> Option<GroupPlan> {
        let (k, c) = s.strip_prefix("k=")?.split_once(";c=")?;
        let list = |v: &str| -> Option<Vec<c_int>> {
            v.split(',')
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().ok())
                .collect()
        };
        Some(GroupPlan {
            keys: list(k)?,
            kept: list(c)?,
        })
    }
}

/// The rows of one scan, held grouped: the kept columns' raw JSON, one
/// after the other in `text`, with (start, length) of each in `fields`.
struct Grouped {
    kept: Vec<c_int>,
    /// Columns with one value in every row (pushed-down `=`).
    consts: Vec<(c_int, SqlValue)>,
    text: String,
    /// Per row, per kept column: where its raw JSON is in `text`
    /// (length `u32::MAX`: none).
    fields: Vec<(u32, u32)>,
    /// Each group's rows (row `r`'s fields start at `r * kept.len()`).
    groups: Vec<Vec<u32>>,
    /// The current (group, row).
    at: (usize, usize),
    /// Bytes counted in [`GROUP_BYTES`].
    held: usize,
    /// Bytes held besides the arena (group vectors, the key index), as they grow.
    counted: usize,
}

impl Grouped {
    fn new(kept: Vec<c_int>, consts: Vec<(c_int, SqlValue)>) -> Grouped {
        Grouped {
            kept,
            consts,
            text: String::new(),
            fields: Vec::new(),
            groups: Vec::new(),
            at: (0, 0),
            held: 0,
            counted: 0,
        }
    }

    fn eof(&self) -> bool {
        self.at.0 >= self.groups.len()
    }

    fn step(&mut self) {
        self.at.1 += 1;
        while self.at.0 < self.groups.len() && self.at.1 >= self.groups[self.at.0].len() {
            self.at = (self.at.0 + 1, 0);
        }
    }

    fn too_big(&self) -> rusqlite::Error {
        err(format!(
            "query stopped: grouping needed more than the {} MiB that GROUP BY and DISTINCT may \
             hold for all running queries; group fewer or smaller rows",
            GROUP_BUDGET >> 20
        ))
    }

    /// Counts what is held against the budget, and the time limit.
    fn check(&mut self, src: &Source) -> rusqlite::Result<()> {
        if Instant::now() > src.deadline {
            src.stop(Stop::Timeout);
            return Err(err("query stopped: time limit"));
        }
        let now = self.text.capacity() + self.counted;
        if now > self.held {
            let total = GROUP_BYTES.fetch_add(now - self.held, Ordering::Relaxed) + now - self.held;
            self.held = now;
            if total > GROUP_BUDGET {
                let e = self.too_big();
                src.stop(Stop::TooBig(e.to_string()));
                return Err(e);
            }
        }
        Ok(())
    }

    fn rows(&self) -> usize {
        self.fields.len() / self.kept.len().max(1)
    }

    /// The current row's raw JSON for kept column `i`.
    fn field(&self, i: c_int) -> rusqlite::Result<Option<&str>> {
        let p = self
            .kept
            .iter()
            .position(|&c| c == i)
            .ok_or_else(|| err(format!("column {i} was not kept for grouping")))?;
        let row = self.groups[self.at.0][self.at.1] as usize;
        let (at, len) = self.fields[row * self.kept.len() + p];
        if len == u32::MAX {
            return Ok(None);
        }
        slice(&self.text, at as usize..at as usize + len as usize).map(Some)
    }

    fn column(&self, src: &Source, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        if let Some((_, v)) = self.consts.iter().find(|(c, _)| *c == i) {
            return ctx.set_result(v.clone());
        }
        emit(src, ctx, i, self.field(i)?)
    }
}

impl Drop for Grouped {
    fn drop(&mut self) {
        GROUP_BYTES.fetch_sub(self.held, Ordering::Relaxed);
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
        idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        self.grouped = None;
        self.rowid = 0;
        if self.table.kind != Kind::Records {
            self.rows = self.other_rows()?;
            return self.advance();
        }
        self.rows = self.record_rows(idx_num, args)?;
        // The pushed-down values, in argv order.
        let mut consts = Vec::new();
        for (bit, column) in [
            (BY_ID, 0),
            (BY_WORKSPACE, 1),
            (BY_COLLECTION, 2),
            (BY_DELETED, DELETED),
        ] {
            if idx_num & bit != 0 {
                let v = if column == DELETED {
                    args.get::<SqlValue>(consts.len())?
                } else {
                    text_arg(args, consts.len())?.map_or(SqlValue::Null, SqlValue::Text)
                };
                consts.push((column, v));
            }
        }
        self.deleted = match consts.iter().find(|(c, _)| *c == DELETED) {
            Some((_, SqlValue::Integer(d))) => Some(*d != 0),
            Some(_) => return Err(err("deleted = is pushed down for 0 or 1 only")),
            None => None,
        };
        let plan = idx_str
            .and_then(GroupPlan::parse)
            .ok_or_else(|| err("a scan without a plan"))?;
        if idx_num & GROUPED != 0 {
            #[cfg(test)]
            GROUPED_SCANS.with(|n| n.set(n.get() + 1));
            // A scan of one collection the scope may read, by no id: the
            // grouping reads it in place (what `record_rows` would give).
            let text_of = |c: c_int| match consts.iter().find(|(x, _)| *x == c) {
                Some((_, SqlValue::Text(t))) => Some(Some(t.clone())),
                Some(_) => Some(None),
                None => None,
            };
            let src = &self.table.source;
            let direct = match (text_of(0), text_of(1), text_of(2)) {
                (None, ws, Some(Some(coll)))
                    if ws
                        .as_ref()
                        .is_none_or(|w| w.as_deref() == Some(src.workspace.as_str()))
                        && src.allows(&coll) =>
                {
                    Some(coll)
                }
                _ => None,
            };
            let grouped = self.group(plan, consts, direct)?;
            self.current = None;
            self.grouped = Some(grouped);
            return Ok(());
        }
        self.extractor = plan.extractor(&self.table.source.hidden);
        self.advance()
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.advance()
    }

    fn eof(&self) -> bool {
        match &self.grouped {
            Some(g) => g.eof(),
            None => self.current.is_none(),
        }
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
        // A record's rowid is a hash of its key, the same in every scan:
        // SQLite's OR optimisation runs one scan per branch and drops rows
        // whose rowid it has seen (a position in the scan would drop
        // different records that happened to share it).
        if self.table.kind == Kind::Records
            && self.grouped.is_none()
            && let Some(text) = self.current.as_deref()
        {
            let bytes = text.as_bytes();
            let mut slot = self.record.borrow_mut();
            if slot.is_none() {
                *slot = Some(spans(bytes).map_err(err)?);
            }
            if let Some(s) = slot.as_ref() {
                use std::hash::{Hash, Hasher};
                let mut h = std::hash::DefaultHasher::new();
                bytes.get(s[2].clone()).hash(&mut h);
                bytes.get(s[0].clone()).hash(&mut h);
                return Ok((h.finish() >> 1) as i64);
            }
        }
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
