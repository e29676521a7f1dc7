//! Workspace rows, and deleting everything a workspace owns.

use super::view::{Txn, View, values};
use super::*;

pub fn get(v: &impl View, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(WORKSPACES)?.get(id)?.map(|g| g.value().to_vec()))
}

pub fn all(v: &impl View) -> Result<Vec<Vec<u8>>, StoreError> {
    values(v.open(WORKSPACES)?.range::<&str>(..)?)
}

pub fn put(t: &Txn, id: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(WORKSPACES)?.insert(id, json)?;
    Ok(())
}

/// Removes every row of workspace `ws` from every table.
pub fn delete_all(t: &Txn, ws: &str) -> Result<(), StoreError> {
    let end = succ(ws);
    let end = end.as_str();
    t.table(WORKSPACES)?.remove(ws)?;
    t.table(OPLOG_SEQ)?.remove(ws)?;
    t.table(COLLECTIONS)?
        .retain_in((ws, "")..(end, ""), |_, _| false)?;
    t.table(RECORDS)?
        .retain_in((ws, "", "")..(end, "", ""), |_, _| false)?;
    t.table(RECORDS_BY_EXTERNAL)?
        .retain_in((ws, "", "", "")..(end, "", "", ""), |_, _| false)?;
    t.table(RELATIONSHIPS)?
        .retain_in((ws, "")..(end, ""), |_, _| false)?;
    let all6 = (ws, "", "", "", "", "")..(end, "", "", "", "", "");
    t.table(RELS_OUT)?.retain_in(all6.clone(), |_, _| false)?;
    t.table(RELS_IN)?.retain_in(all6, |_, _| false)?;
    t.table(OPLOG)?.retain_in((ws, 0)..(end, 0), |_, _| false)?;
    t.table(PROMOTIONS)?
        .retain_in((ws, "")..(end, ""), |_, _| false)?;
    Ok(())
}
