//! The record store on redb: table definitions, key layout, transactions and
//! the group-commit writer. This is the only module that touches redb.
//!
//! Keys are tuples with the workspace first, so every listing is one range
//! scan. Values are JSON documents kept as bytes; the service layer owns their
//! shape. Writes go through [`Store::write`]: a single writer thread drains
//! queued jobs into one write transaction and one durable commit (group
//! commit), and acknowledges each job only after that commit returned.

mod tables;
mod writer;

use std::path::Path;
use std::sync::Arc;

use redb::ReadableDatabase;

pub use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};
pub use tables::*;
pub use writer::{JobError, WriteMode};

/// Errors from the storage engine. Always a server-side failure.
#[derive(Debug, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StoreError(String);

impl StoreError {
    pub fn new(msg: impl std::fmt::Display) -> Self {
        StoreError(msg.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError(e.to_string()) }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Handle to the open database and its writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<redb::Database>,
    writer: writer::Writer,
}

impl Store {
    /// Opens (or creates) `dir/mcp-factory.redb`. Commits are durable and
    /// two-phase (quick repair), because the store accepts untrusted data.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::new(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("mcp-factory.redb");
        let db = redb::Builder::new()
            .create(&path)
            .map_err(|e| StoreError::new(format!("cannot open {}: {e}", path.display())))?;
        let db = Arc::new(db);
        tables::create_all(&db)?;
        let writer = writer::Writer::spawn(db.clone());
        Ok(Store { db, writer })
    }

    /// A consistent read snapshot.
    pub fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }

    /// Runs `job` inside a write transaction on the writer thread and returns
    /// its result once the transaction is durably committed.
    ///
    /// In [`WriteMode::Shared`] the job shares a transaction with other queued
    /// jobs; it must do all its checks before its first write, so that an
    /// `Err` means it wrote nothing. In [`WriteMode::Exclusive`] it gets a
    /// transaction of its own that is aborted if it returns `Err`.
    pub async fn write<T, E, F>(&self, mode: WriteMode, job: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: JobError + Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.writer.submit(mode, job).await
    }
}

/// The smallest string greater than every string that starts with `prefix`
/// component-wise: `(…, s)` ranges over `(…, s)..(…, succ(s))` for tuple keys.
pub fn succ(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push_str(s);
    out.push('\0');
    out
}

/// Removes every row of workspace `ws` from every table (workspace delete).
pub fn delete_workspace_rows(txn: &WriteTransaction, ws: &str) -> Result<(), StoreError> {
    let end = succ(ws);
    let end = end.as_str();
    txn.open_table(WORKSPACES)?.remove(ws)?;
    txn.open_table(OPLOG_SEQ)?.remove(ws)?;
    txn.open_table(COLLECTIONS)?
        .retain_in((ws, "")..(end, ""), |_, _| false)?;
    txn.open_table(RECORDS)?
        .retain_in((ws, "", "")..(end, "", ""), |_, _| false)?;
    txn.open_table(RECORDS_BY_EXTERNAL)?
        .retain_in((ws, "", "", "")..(end, "", "", ""), |_, _| false)?;
    txn.open_table(RELATIONSHIPS)?
        .retain_in((ws, "")..(end, ""), |_, _| false)?;
    txn.open_table(RELS_OUT)?.retain_in(
        (ws, "", "", "", "", "")..(end, "", "", "", "", ""),
        |_, _| false,
    )?;
    txn.open_table(RELS_IN)?.retain_in(
        (ws, "", "", "", "", "")..(end, "", "", "", "", ""),
        |_, _| false,
    )?;
    txn.open_table(OPLOG)?
        .retain_in((ws, 0)..(end, 0), |_, _| false)?;
    txn.open_table(PROMOTIONS)?
        .retain_in((ws, "")..(end, ""), |_, _| false)?;
    Ok(())
}
