//! Record rows and the external-key index.

use super::view::{Rows, Snapshot, Txn, View, ids, rows};
use super::*;

pub fn get(v: &impl View, ws: &str, coll: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(RECORDS)?
        .get((ws, coll, id))?
        .map(|g| g.value().to_vec()))
}

/// Calls `f` with every record of a collection, in id order, without copying.
pub fn scan<E: From<StoreError>>(
    v: &impl View,
    ws: &str,
    coll: &str,
    mut f: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let end = succ(coll);
    let table = v.open(RECORDS)?;
    for row in table
        .range((ws, coll, "")..(ws, end.as_str(), ""))
        .map_err(E::from)?
    {
        let (_, value) = row.map_err(StoreError::from)?;
        f(value.value())?;
    }
    Ok(())
}

/// Whether the collection holds any record (deleted ones included).
pub fn any(v: &impl View, ws: &str, coll: &str) -> Result<bool, StoreError> {
    let end = succ(coll);
    let table = v.open(RECORDS)?;
    let mut range = table.range((ws, coll, "")..(ws, end.as_str(), ""))?;
    Ok(range.next().transpose()?.is_some())
}

pub fn put(t: &Txn, ws: &str, coll: &str, id: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(RECORDS)?.insert((ws, coll, id), json)?;
    Ok(())
}

/// Removes a collection's records and their external keys.
pub fn delete_collection(t: &Txn, ws: &str, coll: &str) -> Result<(), StoreError> {
    let end = succ(coll);
    let end = end.as_str();
    t.table(RECORDS)?
        .retain_in((ws, coll, "")..(ws, end, ""), |_, _| false)?;
    t.table(RECORDS_BY_EXTERNAL)?
        .retain_in((ws, coll, "", "")..(ws, end, "", ""), |_, _| false)?;
    Ok(())
}

/// The record id holding external key (`ext`, `source`).
pub fn external(
    v: &impl View,
    ws: &str,
    coll: &str,
    ext: &str,
    source: &str,
) -> Result<Option<String>, StoreError> {
    Ok(v.open(RECORDS_BY_EXTERNAL)?
        .get((ws, coll, ext, source))?
        .map(|g| g.value().to_string()))
}

/// The record ids holding external id `ext` from any source.
pub fn external_any(
    v: &impl View,
    ws: &str,
    coll: &str,
    ext: &str,
) -> Result<Vec<String>, StoreError> {
    let end = succ(ext);
    ids(v
        .open(RECORDS_BY_EXTERNAL)?
        .range((ws, coll, ext, "")..(ws, coll, end.as_str(), ""))?)
}

pub fn external_put(
    t: &Txn,
    ws: &str,
    coll: &str,
    ext: &str,
    source: &str,
    id: &str,
) -> Result<(), StoreError> {
    t.table(RECORDS_BY_EXTERNAL)?
        .insert((ws, coll, ext, source), id)?;
    Ok(())
}

pub fn external_remove(
    t: &Txn,
    ws: &str,
    coll: &str,
    ext: &str,
    source: &str,
) -> Result<(), StoreError> {
    t.table(RECORDS_BY_EXTERNAL)?
        .remove((ws, coll, ext, source))?;
    Ok(())
}

/// Streams the records of one collection, or of every collection of `ws`.
pub fn stream(s: &Snapshot, ws: &str, coll: Option<&str>) -> Result<Rows, StoreError> {
    match coll {
        Some(c) => {
            let end = succ(c);
            let t = s.0.open_table(RECORDS)?;
            Ok(rows(t.range((ws, c, "")..(ws, end.as_str(), ""))?))
        }
        None => {
            let end = succ(ws);
            let t = s.0.open_table(RECORDS)?;
            Ok(rows(t.range((ws, "", "")..(end.as_str(), "", ""))?))
        }
    }
}
