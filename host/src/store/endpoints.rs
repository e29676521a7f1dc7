//! Endpoint configurations (current revision) and their revision history.

use redb::ReadableTable;

use super::view::{Txn, View, values};
use super::*;

pub fn get(v: &impl View, ws: &str, slug: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(ENDPOINTS)?
        .get((ws, slug))?
        .map(|g| g.value().to_vec()))
}

/// Every endpoint of `ws`, in slug order.
pub fn list(v: &impl View, ws: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let end = succ(ws);
    values(v.open(ENDPOINTS)?.range((ws, "")..(end.as_str(), ""))?)
}

/// Every endpoint of every workspace.
pub fn all(v: &impl View) -> Result<Vec<Vec<u8>>, StoreError> {
    values(v.open(ENDPOINTS)?.range::<(&str, &str)>(..)?)
}

pub fn put(t: &Txn, ws: &str, slug: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(ENDPOINTS)?.insert((ws, slug), json)?;
    Ok(())
}

/// Removes the endpoint; its revisions stay, so a re-created endpoint
/// continues the numbering.
pub fn remove(t: &Txn, ws: &str, slug: &str) -> Result<(), StoreError> {
    t.table(ENDPOINTS)?.remove((ws, slug))?;
    Ok(())
}

pub fn revision(
    v: &impl View,
    ws: &str,
    slug: &str,
    n: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(ENDPOINT_REVISIONS)?
        .get((ws, slug, n))?
        .map(|g| g.value().to_vec()))
}

/// All revisions of an endpoint, oldest first.
pub fn revisions(v: &impl View, ws: &str, slug: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let end = succ(slug);
    values(
        v.open(ENDPOINT_REVISIONS)?
            .range((ws, slug, 0)..(ws, end.as_str(), 0))?,
    )
}

/// The highest revision number ever written for the endpoint (0: none).
pub fn last_revision(t: &Txn, ws: &str, slug: &str) -> Result<u64, StoreError> {
    let end = succ(slug);
    let table = t.table(ENDPOINT_REVISIONS)?;
    let last = table
        .range((ws, slug, 0)..(ws, end.as_str(), 0))?
        .next_back()
        .transpose()?;
    Ok(last.map_or(0, |(k, _)| k.value().2))
}

pub fn put_revision(t: &Txn, ws: &str, slug: &str, n: u64, json: &[u8]) -> Result<(), StoreError> {
    t.table(ENDPOINT_REVISIONS)?.insert((ws, slug, n), json)?;
    Ok(())
}
