//! The operations log: every write, appended in order per workspace with the
//! token that made it, inside the write's own transaction.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::Result;
use super::{Caller, Page, Service, decode, encode, now};
use crate::store::{self, OPLOG, OPLOG_SEQ, WriteTransaction};

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
    txn: &WriteTransaction,
    ws: &str,
    caller: &Caller,
    operation: &str,
    target: Value,
) -> Result<()> {
    let seq = {
        let mut seqs = txn.open_table(OPLOG_SEQ)?;
        let next = seqs.get(ws)?.map_or(1, |v| v.value());
        seqs.insert(ws, next + 1)?;
        next
    };
    let entry = Entry {
        workspace_id: ws.to_string(),
        seq,
        token_id: caller.token_id.clone(),
        operation: operation.to_string(),
        target,
        at: now(),
    };
    txn.open_table(OPLOG)?
        .insert((ws, seq), encode(&entry)?.as_slice())?;
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
        let table = txn.open_table(OPLOG)?;
        let end = store::succ(ws);
        let total = table
            .range((ws, after.saturating_add(1))..(end.as_str(), 0))?
            .count();
        let mut data = Vec::new();
        for row in table
            .range((ws, after.saturating_add(1))..(end.as_str(), 0))?
            .take(limit)
        {
            let (_, v) = row?;
            data.push(decode(v.value(), "operations-log entry")?);
        }
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
