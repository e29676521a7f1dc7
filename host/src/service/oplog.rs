//! The operations log: every write, appended in order per workspace with the
//! token that made it, inside the write's own transaction.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::Result;
use super::{Caller, Page, Service, decode, encode, now};
use crate::store::{self, Txn};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub workspace_id: String,
    pub seq: u64,
    pub token_id: String,
    pub operation: String,
    pub target: Value,
    pub at: String,
}

pub(crate) fn append(
    txn: &Txn,
    ws: &str,
    caller: &Caller,
    operation: &str,
    target: Value,
) -> Result<()> {
    let seq = store::oplog::next_seq(txn, ws)?;
    let entry = Entry {
        workspace_id: ws.to_string(),
        seq,
        token_id: caller.token_id.clone(),
        operation: operation.to_string(),
        target,
        at: now(),
    };
    store::oplog::put(txn, ws, seq, &encode(&entry)?)?;
    Ok(())
}

impl Service {
    /// Entries after sequence `after` (exclusive), oldest first.
    pub fn list_operations(
        &self,
        caller: &Caller,
        ws: &str,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Page<Entry>> {
        let (limit, _) = super::page(limit, None)?;
        let txn = self.store.read()?;
        self.read_workspace(&txn, caller, ws, None, "read:records")?;
        let (total, rows) = store::oplog::after(&txn, ws, after, limit)?;
        let data = rows
            .iter()
            .map(|b| decode(b, "operations-log entry"))
            .collect::<Result<Vec<Entry>>>()?;
        Ok(Page {
            data,
            meta: super::PageMeta {
                total,
                limit,
                offset: 0,
            },
        })
    }
}
