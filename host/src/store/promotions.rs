//! Promotion history of production workspaces.

use super::view::{Txn, View, values};
use super::*;

pub fn get(v: &impl View, ws: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(PROMOTIONS)?
        .get((ws, id))?
        .map(|g| g.value().to_vec()))
}

/// Oldest first (ids are UUID v7).
pub fn list(v: &impl View, ws: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let end = succ(ws);
    values(v.open(PROMOTIONS)?.range((ws, "")..(end.as_str(), ""))?)
}

pub fn put(t: &Txn, ws: &str, id: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(PROMOTIONS)?.insert((ws, id), json)?;
    Ok(())
}
