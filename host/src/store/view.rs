//! Read views over the store: a [`Snapshot`] (a read transaction) or a
//! [`Txn`] (the current write transaction, which sees its own writes). The
//! per-entity functions read through [`View`], so one function serves both.

use std::borrow::Borrow;
use std::cell::Cell;
use std::ops::RangeBounds;

use redb::{AccessGuard, Key, Range, ReadableTable, TableDefinition, Value};

use super::StoreError;

/// A consistent read snapshot.
pub struct Snapshot(pub(super) redb::ReadTransaction);

/// The write transaction a write job runs in. It notes whether the job
/// opened a table for writing, so the writer knows whether a failed job may
/// have left writes behind in a transaction it shares with other jobs.
pub struct Txn<'a> {
    txn: &'a redb::WriteTransaction,
    wrote: Cell<bool>,
}

impl<'a> Txn<'a> {
    pub(super) fn new(txn: &'a redb::WriteTransaction) -> Txn<'a> {
        Txn {
            txn,
            wrote: Cell::new(false),
        }
    }

    /// A table to write to. Every write goes through here (reads go through
    /// [`View::open`]), so this is where a job becomes one that wrote.
    pub(super) fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<redb::Table<'_, K, V>, StoreError> {
        self.wrote.set(true);
        Ok(self.txn.open_table(def)?)
    }

    /// The transaction itself, for tests that break a store on purpose.
    #[cfg(test)]
    pub(super) fn raw(&self) -> &redb::WriteTransaction {
        self.wrote.set(true);
        self.txn
    }

    /// Whether the job asked for a table to write to.
    pub(super) fn wrote(&self) -> bool {
        self.wrote.get()
    }
}

/// A table opened for reading from either kind of view.
pub enum Tbl<'t, K: Key + 'static, V: Value + 'static> {
    Read(redb::ReadOnlyTable<K, V>),
    Write(redb::Table<'t, K, V>),
}

impl<K: Key + 'static, V: Value + 'static> Tbl<'_, K, V> {
    pub(super) fn get<'a>(
        &self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> Result<Option<AccessGuard<'_, V>>, StoreError> {
        Ok(match self {
            Tbl::Read(t) => t.get(key)?,
            Tbl::Write(t) => t.get(key)?,
        })
    }

    pub(super) fn range<'a, KR>(
        &self,
        range: impl RangeBounds<KR> + 'a,
    ) -> Result<Range<'_, K, V>, StoreError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        Ok(match self {
            Tbl::Read(t) => t.range(range)?,
            Tbl::Write(t) => t.range(range)?,
        })
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Snapshot {}
    impl Sealed for super::Txn<'_> {}
}

/// Something the store can be read through.
pub trait View: sealed::Sealed {
    #[doc(hidden)]
    fn open<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Tbl<'_, K, V>, StoreError>;
}

impl View for Snapshot {
    fn open<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Tbl<'_, K, V>, StoreError> {
        Ok(Tbl::Read(self.0.open_table(def)?))
    }
}

impl View for Txn<'_> {
    fn open<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Tbl<'_, K, V>, StoreError> {
        Ok(Tbl::Write(self.txn.open_table(def)?))
    }
}

/// A stream of JSON values read from a snapshot; it keeps the snapshot alive
/// on its own, so it can outlive the borrow it was made from.
pub type Rows = Box<dyn Iterator<Item = Result<Vec<u8>, StoreError>> + Send>;

/// Turns a range that owns its snapshot into [`Rows`].
pub(super) fn rows<K: Key + 'static>(range: Range<'static, K, &'static [u8]>) -> Rows
where
    Range<'static, K, &'static [u8]>: Send,
{
    Box::new(range.map(|row| {
        row.map(|(_, v)| v.value().to_vec())
            .map_err(StoreError::from)
    }))
}

/// Copies the values of a range of a bytes-valued table.
pub(super) fn values<K: Key + 'static>(
    range: Range<'_, K, &'static [u8]>,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut out = Vec::new();
    for row in range {
        out.push(row?.1.value().to_vec());
    }
    Ok(out)
}

/// Copies the values of a range of a string-valued table (ids).
pub(super) fn ids<K: Key + 'static>(
    range: Range<'_, K, &'static str>,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for row in range {
        out.push(row?.1.value().to_string());
    }
    Ok(out)
}
