//! Uploaded components: bytes by digest (stored once), and per workspace
//! the metadata of each upload.

use redb::ReadableTable;

use super::view::{Txn, View, values};
use super::*;

pub fn bytes(v: &impl View, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(COMPONENTS)?.get(digest)?.map(|g| g.value().to_vec()))
}

pub fn put_bytes(t: &Txn, digest: &str, wasm: &[u8]) -> Result<(), StoreError> {
    let mut table = t.table(COMPONENTS)?;
    if table.get(digest)?.is_none() {
        table.insert(digest, wasm)?;
    }
    Ok(())
}

pub fn meta(v: &impl View, ws: &str, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(COMPONENT_UPLOADS)?
        .get((ws, digest))?
        .map(|g| g.value().to_vec()))
}

pub fn put_meta(t: &Txn, ws: &str, digest: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(COMPONENT_UPLOADS)?.insert((ws, digest), json)?;
    Ok(())
}

/// Every upload of `ws`, in digest order.
pub fn list(v: &impl View, ws: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let end = succ(ws);
    values(
        v.open(COMPONENT_UPLOADS)?
            .range((ws, "")..(end.as_str(), ""))?,
    )
}

/// Removes one upload of `ws`; returns whether there was one.
pub fn remove_meta(t: &Txn, ws: &str, digest: &str) -> Result<bool, StoreError> {
    Ok(t.table(COMPONENT_UPLOADS)?.remove((ws, digest))?.is_some())
}

/// Removes the bytes of those `digests` that no upload names any more.
pub fn collect_garbage(t: &Txn, digests: &[String]) -> Result<(), StoreError> {
    let uploads = t.table(COMPONENT_UPLOADS)?;
    let mut gone = Vec::new();
    for d in digests {
        let mut used = false;
        for row in uploads.iter()? {
            if row?.0.value().1 == d.as_str() {
                used = true;
                break;
            }
        }
        if !used {
            gone.push(d);
        }
    }
    drop(uploads);
    let mut bytes = t.table(COMPONENTS)?;
    for d in gone {
        bytes.remove(d.as_str())?;
    }
    Ok(())
}
