//! Collection rows (config of a workspace).

use super::view::{Txn, View, values};
use super::*;

pub fn get(v: &impl View, ws: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(COLLECTIONS)?
        .get((ws, id))?
        .map(|g| g.value().to_vec()))
}

/// Every collection of `ws`, in id order.
pub fn list(v: &impl View, ws: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let end = succ(ws);
    values(v.open(COLLECTIONS)?.range((ws, "")..(end.as_str(), ""))?)
}

pub fn put(t: &Txn, ws: &str, id: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(COLLECTIONS)?.insert((ws, id), json)?;
    Ok(())
}

pub fn remove(t: &Txn, ws: &str, id: &str) -> Result<(), StoreError> {
    t.table(COLLECTIONS)?.remove((ws, id))?;
    Ok(())
}
