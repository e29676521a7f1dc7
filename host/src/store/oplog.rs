//! The operations log: per-workspace sequence numbers and entries.

use redb::ReadableTable;

use super::view::{Rows, Snapshot, Txn, View, rows};
use super::*;

/// Allocates the next sequence number of `ws` (1, 2, …).
pub fn next_seq(t: &Txn, ws: &str) -> Result<u64, StoreError> {
    let mut seqs = t.table(OPLOG_SEQ)?;
    let next = seqs.get(ws)?.map_or(1, |v| v.value());
    seqs.insert(ws, next + 1)?;
    Ok(next)
}

pub fn put(t: &Txn, ws: &str, seq: u64, json: &[u8]) -> Result<(), StoreError> {
    t.table(OPLOG)?.insert((ws, seq), json)?;
    Ok(())
}

/// Says whether a reader may see an entry (given its bytes).
pub type Keep<'a> = &'a mut dyn FnMut(&[u8]) -> bool;

/// Entries after `after` (exclusive), oldest first, at most `limit`; and
/// how many there are in all after `after`.
///
/// With no `keep`, the count comes from the sequence numbers: they are dense
/// (each is allocated and written in the same transaction, and entries go
/// only with their workspace), so it is the last sequence minus `after`, and
/// the scan stops after `limit` entries. With `keep` (a reader who sees only
/// some entries), only a scan can count them: it reads every later entry but
/// copies only the `limit` it returns.
pub fn after(
    v: &impl View,
    ws: &str,
    after: u64,
    limit: usize,
    keep: Option<Keep<'_>>,
) -> Result<(usize, Vec<Vec<u8>>), StoreError> {
    let end = succ(ws);
    let table = v.open(OPLOG)?;
    let range = || table.range((ws, after.saturating_add(1))..(end.as_str(), 0));
    let mut out = Vec::new();
    let Some(keep) = keep else {
        let last = match range()?.next_back() {
            Some(row) => row?.0.value().1,
            None => return Ok((0, out)),
        };
        for row in range()?.take(limit) {
            out.push(row?.1.value().to_vec());
        }
        let total = usize::try_from(last - after).unwrap_or(usize::MAX);
        return Ok((total, out));
    };
    let mut total = 0;
    for row in range()? {
        let row = row?;
        let bytes = row.1.value();
        if keep(bytes) {
            total += 1;
            if out.len() < limit {
                out.push(bytes.to_vec());
            }
        }
    }
    Ok((total, out))
}

/// Streams the whole operations log of `ws`, oldest first.
pub fn stream(s: &Snapshot, ws: &str) -> Result<Rows, StoreError> {
    let end = succ(ws);
    let t = s.0.open_table(OPLOG)?;
    Ok(rows(t.range((ws, 0)..(end.as_str(), 0))?))
}
