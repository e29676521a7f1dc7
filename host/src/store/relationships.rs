//! Relationship rows and the two direction indexes, which are also the
//! uniqueness constraint on (type, source, target).

use super::view::{Rows, Snapshot, Txn, View, ids, rows};
use super::*;

/// The (type, source, target) of a relationship, records by internal id.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub rel_type: &'a str,
    pub source_collection: &'a str,
    pub source_id: &'a str,
    pub target_collection: &'a str,
    pub target_id: &'a str,
}

impl<'a> Link<'a> {
    fn out(&self, ws: &'a str) -> (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str) {
        (
            ws,
            self.source_collection,
            self.source_id,
            self.rel_type,
            self.target_collection,
            self.target_id,
        )
    }

    fn inc(&self, ws: &'a str) -> (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str) {
        (
            ws,
            self.target_collection,
            self.target_id,
            self.rel_type,
            self.source_collection,
            self.source_id,
        )
    }
}

/// Which index to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Links whose source is the record.
    Outgoing,
    /// Links whose target is the record.
    Incoming,
}

pub fn get(v: &impl View, ws: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(RELATIONSHIPS)?
        .get((ws, id))?
        .map(|g| g.value().to_vec()))
}

pub fn put(t: &Txn, ws: &str, id: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(RELATIONSHIPS)?.insert((ws, id), json)?;
    Ok(())
}

/// The id of the relationship with this (type, source, target).
pub fn find(v: &impl View, ws: &str, link: Link<'_>) -> Result<Option<String>, StoreError> {
    Ok(v.open(RELS_OUT)?
        .get(link.out(ws))?
        .map(|g| g.value().to_string()))
}

/// Indexes a new relationship in both directions.
pub fn link(t: &Txn, ws: &str, link: Link<'_>, id: &str) -> Result<(), StoreError> {
    t.table(RELS_OUT)?.insert(link.out(ws), id)?;
    t.table(RELS_IN)?.insert(link.inc(ws), id)?;
    Ok(())
}

/// Removes a relationship row and both its index entries.
pub fn remove(t: &Txn, ws: &str, id: &str, link: Link<'_>) -> Result<(), StoreError> {
    t.table(RELS_OUT)?.remove(link.out(ws))?;
    t.table(RELS_IN)?.remove(link.inc(ws))?;
    t.table(RELATIONSHIPS)?.remove((ws, id))?;
    Ok(())
}

/// Ids of the relationships on one side of a record, optionally of one type:
/// one range scan of a direction index.
pub fn of_record(
    v: &impl View,
    ws: &str,
    coll: &str,
    id: &str,
    rel_type: Option<&str>,
    side: Side,
) -> Result<Vec<String>, StoreError> {
    let table = v.open(if side == Side::Outgoing {
        RELS_OUT
    } else {
        RELS_IN
    })?;
    match rel_type {
        Some(t) => {
            let end = succ(t);
            ids(table.range((ws, coll, id, t, "", "")..(ws, coll, id, end.as_str(), "", ""))?)
        }
        None => {
            let end = succ(id);
            ids(table.range((ws, coll, id, "", "", "")..(ws, coll, end.as_str(), "", "", ""))?)
        }
    }
}

/// Ids of every relationship with an end in collection `coll`.
pub fn of_collection(v: &impl View, ws: &str, coll: &str) -> Result<Vec<String>, StoreError> {
    let end = succ(coll);
    let mut out = Vec::new();
    for index in [RELS_OUT, RELS_IN] {
        let table = v.open(index)?;
        out.extend(ids(table.range(
            (ws, coll, "", "", "", "")..(ws, end.as_str(), "", "", "", ""),
        )?)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Streams every relationship of `ws`.
pub fn stream(s: &Snapshot, ws: &str) -> Result<Rows, StoreError> {
    let end = succ(ws);
    let t = s.0.open_table(RELATIONSHIPS)?;
    Ok(rows(t.range((ws, "")..(end.as_str(), ""))?))
}
