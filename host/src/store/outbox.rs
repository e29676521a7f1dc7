//! The transactional outbox of trigger deliveries: one row per (trigger,
//! event), keyed by the operations-log sequence of the write that caused
//! it, so a trigger's rows are in commit order. The head row's attempts are
//! kept beside it; events whose retries ran out move to the dead letters.

use super::view::{Txn, View};
use super::*;

pub fn put(t: &Txn, ws: &str, trigger: &str, seq: u64, row: &[u8]) -> Result<(), StoreError> {
    t.table(OUTBOX)?.insert((ws, trigger, seq), row)?;
    Ok(())
}

/// Up to `limit` of the trigger's first events, oldest first.
pub fn first(
    v: &impl View,
    ws: &str,
    trigger: &str,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    page(v, OUTBOX, ws, trigger, 0, limit)
}

/// Events (or dead letters) of a trigger, in sequence order, skipping `offset`.
fn page(
    v: &impl View,
    def: redb::TableDefinition<(&'static str, &'static str, u64), &'static [u8]>,
    ws: &str,
    trigger: &str,
    offset: usize,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let end = succ(trigger);
    let table = v.open(def)?;
    let mut out = Vec::new();
    for row in table
        .range((ws, trigger, 0)..(ws, end.as_str(), 0))?
        .skip(offset)
        .take(limit)
    {
        let (k, val) = row?;
        out.push((k.value().2, val.value().to_vec()));
    }
    Ok(out)
}

pub fn pending(
    v: &impl View,
    ws: &str,
    trigger: &str,
    offset: usize,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    page(v, OUTBOX, ws, trigger, offset, limit)
}

pub fn dead(
    v: &impl View,
    ws: &str,
    trigger: &str,
    offset: usize,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    page(v, DEAD_LETTERS, ws, trigger, offset, limit)
}

fn count(
    v: &impl View,
    def: redb::TableDefinition<(&'static str, &'static str, u64), &'static [u8]>,
    ws: &str,
    trigger: &str,
) -> Result<usize, StoreError> {
    let end = succ(trigger);
    Ok(v.open(def)?
        .range((ws, trigger, 0)..(ws, end.as_str(), 0))?
        .count())
}

pub fn pending_count(v: &impl View, ws: &str, trigger: &str) -> Result<usize, StoreError> {
    count(v, OUTBOX, ws, trigger)
}

pub fn dead_count(v: &impl View, ws: &str, trigger: &str) -> Result<usize, StoreError> {
    count(v, DEAD_LETTERS, ws, trigger)
}

pub fn get(
    v: &impl View,
    ws: &str,
    trigger: &str,
    seq: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(OUTBOX)?
        .get((ws, trigger, seq))?
        .map(|g| g.value().to_vec()))
}

/// Removes a delivered event; false when it was no longer there.
pub fn remove(t: &Txn, ws: &str, trigger: &str, seq: u64) -> Result<bool, StoreError> {
    Ok(t.table(OUTBOX)?.remove((ws, trigger, seq))?.is_some())
}

pub fn get_dead(
    v: &impl View,
    ws: &str,
    trigger: &str,
    seq: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(DEAD_LETTERS)?
        .get((ws, trigger, seq))?
        .map(|g| g.value().to_vec()))
}

pub fn put_dead(t: &Txn, ws: &str, trigger: &str, seq: u64, row: &[u8]) -> Result<(), StoreError> {
    t.table(DEAD_LETTERS)?.insert((ws, trigger, seq), row)?;
    Ok(())
}

pub fn remove_dead(t: &Txn, ws: &str, trigger: &str, seq: u64) -> Result<bool, StoreError> {
    Ok(t.table(DEAD_LETTERS)?.remove((ws, trigger, seq))?.is_some())
}

/// The attempts made at the trigger's head event.
pub fn delivery(v: &impl View, ws: &str, trigger: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(DELIVERY)?
        .get((ws, trigger))?
        .map(|g| g.value().to_vec()))
}

pub fn put_delivery(t: &Txn, ws: &str, trigger: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(DELIVERY)?.insert((ws, trigger), json)?;
    Ok(())
}

pub fn remove_delivery(t: &Txn, ws: &str, trigger: &str) -> Result<(), StoreError> {
    t.table(DELIVERY)?.remove((ws, trigger))?;
    Ok(())
}

/// Removes everything queued for a trigger (it was deleted).
pub fn drop_trigger(t: &Txn, ws: &str, trigger: &str) -> Result<(), StoreError> {
    let end = succ(trigger);
    t.table(OUTBOX)?
        .retain_in((ws, trigger, 0)..(ws, end.as_str(), 0), |_, _| false)?;
    t.table(DEAD_LETTERS)?
        .retain_in((ws, trigger, 0)..(ws, end.as_str(), 0), |_, _| false)?;
    t.table(DELIVERY)?.remove((ws, trigger))?;
    Ok(())
}
