//! The record store on redb: table definitions, key layout, transactions and
//! the group-commit writer. This is the only module that touches redb.
//!
//! Keys are tuples with the workspace first, so every listing is one range
//! scan. Values are JSON documents kept as bytes; the service layer owns their
//! shape. Writes go through [`Store::write`]: a single writer thread drains
//! queued jobs into one write transaction and one durable commit (group
//! commit), and acknowledges each job only after that commit returned.

pub mod collections;
pub mod components;
pub mod endpoints;
pub mod hooks;
pub mod oplog;
pub mod outbox;
pub mod promotions;
pub mod records;
pub mod relationships;
mod tables;
pub mod tokens;
pub mod triggers;
mod view;
pub mod workspaces;
mod writer;

use std::path::Path;
use std::sync::Arc;

use redb::ReadableDatabase;

use tables::*;
pub use view::{Rows, Snapshot, Txn, View};
pub use writer::{JobError, WriteMode};

/// Errors from the storage engine. Always a server-side failure. redb's own
/// errors keep their kind (`Engine`), so a caller can tell, say, a full disk
/// (`redb::Error::Io`) from corruption.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Engine(#[from] redb::Error),
    /// Anything else the store reports (opening, the writer thread).
    #[error("storage error: {0}")]
    Other(String),
    /// A write job panicked (a bug): its writes were rolled back, and the
    /// jobs that shared its transaction were run again without it.
    #[error("internal error: the write panicked ({0}); nothing of it was written")]
    Panicked(String),
}

impl StoreError {
    pub fn new(msg: impl std::fmt::Display) -> Self {
        StoreError::Other(msg.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Engine(e.into()) }
        }
    )*};
}
from_redb!(
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
    generation: writer::Generation,
}

impl Store {
    /// Opens (or creates) `dir/mcp-factory.redb`. Commits are durable and
    /// two-phase (quick repair), because the store accepts untrusted data.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        // A new data directory is the owner's only (mode 0700): it holds
        // every tenant's data and the hook and trigger secrets.
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| StoreError::new(format!("cannot create {}: {e}", dir.display())))?;
        }
        let path = dir.join("mcp-factory.redb");
        let db = redb::Builder::new().create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::new(format!(
                "{} is in use by another mcp-factory process; stop it, or point --data at another directory",
                path.display()
            )),
            e => StoreError::new(format!("cannot open {}: {e}", path.display())),
        })?;
        let db = Arc::new(db);
        tables::create_all(&db)?;
        let generation = writer::Generation::default();
        let writer = writer::Writer::spawn(db.clone(), generation.clone())?;
        Ok(Store {
            db,
            writer,
            generation,
        })
    }

    /// How many transactions this store has committed since it was opened,
    /// counted after each commit and before the writes in it are
    /// acknowledged. Read it *before* taking a snapshot: a value cached
    /// with the generation read then is stale once the generation moves.
    pub fn generation(&self) -> u64 {
        self.generation
            .count
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Wakes on every commit (the value is the generation): how background
    /// work that follows the store (trigger deliveries) learns of new rows.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.watch.subscribe()
    }

    /// A consistent read snapshot.
    pub fn read(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot(self.db.begin_read()?))
    }

    /// Runs `job` inside a write transaction on the writer thread and returns
    /// its result once the transaction is durably committed.
    ///
    /// In [`WriteMode::Shared`] the job shares a transaction with other queued
    /// jobs; if it fails after writing, or panics, the writer rolls the
    /// transaction back and runs the others again, so the job may run more
    /// than once and must keep its effects inside the transaction. It should
    /// still check before it writes: a clean refusal costs nobody a re-run.
    /// In [`WriteMode::Exclusive`] it gets a transaction of its own that is
    /// aborted if it returns `Err`. Waits while the writer's queue is full.
    pub async fn write<T, E, F>(&self, mode: WriteMode, job: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: JobError + Send + 'static,
        F: FnMut(&Txn) -> Result<T, E> + Send + 'static,
    {
        self.writer.submit(mode, job).await
    }
}

/// The smallest string greater than `s`: the tuple keys `(…, s, *)` are
/// exactly the range `(…, s, "")..(…, succ(s), "")`.
fn succ(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push_str(s);
    out.push('\0');
    out
}
