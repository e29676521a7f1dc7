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
    /// The endpoint whose code made the change for the token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The hook whose ingest made the change, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
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
) -> Result<u64> {
    let seq = store::oplog::next_seq(txn, ws)?;
    let entry = Entry {
        workspace_id: ws.to_string(),
        seq,
        token_id: caller.token_id.clone(),
        endpoint: caller.endpoint.as_ref().map(|e| e.slug.clone()),
        hook: caller.hook.clone(),
        operation: operation.to_string(),
        target,
        at: now(),
    };
    store::oplog::put(txn, ws, seq, &encode(&entry)?)?;
    Ok(seq)
}

impl Service {
    /// Entries after sequence `after` (exclusive), oldest first.
    pub async fn list_operations(
        &self,
        caller: &Caller,
        ws: &str,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Page<Entry>> {
        let (limit, _) = super::page(limit, None)?;
        let (this, caller, ws) = (self.clone(), caller.clone(), ws.to_string());
        self.blocking(move || this.operations_in(&caller, &ws, after, limit))
            .await
    }

    fn operations_in(
        &self,
        caller: &Caller,
        ws: &str,
        after: u64,
        limit: usize,
    ) -> Result<Page<Entry>> {
        let txn = self.store.read()?;
        let w = self.read_workspace(&txn, caller, ws, None, "read:records")?;
        // A token limited to some collections sees only their entries, as
        // SQL's `operations_log` shows them.
        let all = super::collections::list_in(&txn, ws)?;
        let limited = all
            .iter()
            .any(|c| !caller.can(&w, Some(&c.id), "read:records"));
        let mut keep = |bytes: &[u8]| {
            #[derive(Deserialize)]
            struct Target {
                #[serde(default)]
                collection: Option<String>,
            }
            #[derive(Deserialize)]
            struct Head {
                target: Target,
            }
            serde_json::from_slice::<Head>(bytes).is_ok_and(|h| {
                h.target
                    .collection
                    .is_some_and(|c| caller.can(&w, Some(&c), "read:records"))
            })
        };
        let keep: Option<store::oplog::Keep<'_>> = if limited { Some(&mut keep) } else { None };
        let (total, rows) = store::oplog::after(&txn, ws, after, limit, keep)?;
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
