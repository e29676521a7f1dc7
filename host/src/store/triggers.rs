//! Triggers (outbound webhook config), their disabled state and the routes
//! the write path reads to find the triggers of a change.

use super::view::{Txn, View, values};
use super::*;

pub fn get(v: &impl View, ws: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(TRIGGERS)?.get((ws, id))?.map(|g| g.value().to_vec()))
}

/// Every trigger of `ws`, in id order.
pub fn list(v: &impl View, ws: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let end = succ(ws);
    values(v.open(TRIGGERS)?.range((ws, "")..(end.as_str(), ""))?)
}

/// Every trigger of every workspace.
pub fn all(v: &impl View) -> Result<Vec<Vec<u8>>, StoreError> {
    values(v.open(TRIGGERS)?.range::<(&str, &str)>(..)?)
}

pub fn put(t: &Txn, ws: &str, id: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(TRIGGERS)?.insert((ws, id), json)?;
    Ok(())
}

pub fn remove(t: &Txn, ws: &str, id: &str) -> Result<(), StoreError> {
    t.table(TRIGGERS)?.remove((ws, id))?;
    Ok(())
}

pub fn state(v: &impl View, ws: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(TRIGGER_STATE)?
        .get((ws, id))?
        .map(|g| g.value().to_vec()))
}

pub fn put_state(t: &Txn, ws: &str, id: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(TRIGGER_STATE)?.insert((ws, id), json)?;
    Ok(())
}

pub fn remove_state(t: &Txn, ws: &str, id: &str) -> Result<(), StoreError> {
    t.table(TRIGGER_STATE)?.remove((ws, id))?;
    Ok(())
}

/// Routes a trigger: changes of `name` (a collection for `kind` "c", a
/// relationship type for "r") in `ws` go to `trigger` when `flags` say so.
pub fn route(
    t: &Txn,
    ws: &str,
    kind: &str,
    name: &str,
    trigger: &str,
    flags: u8,
) -> Result<(), StoreError> {
    t.table(TRIGGER_ROUTES)?
        .insert((ws, kind, name, trigger), flags)?;
    Ok(())
}

/// Removes every route of `trigger` in `ws`.
pub fn unroute(t: &Txn, ws: &str, trigger: &str) -> Result<(), StoreError> {
    let end = succ(ws);
    t.table(TRIGGER_ROUTES)?
        .retain_in((ws, "", "", "")..(end.as_str(), "", "", ""), |k, _| {
            k.3 != trigger
        })?;
    Ok(())
}

/// The triggers (and their flags) routed from changes of `name`.
pub fn routes(
    v: &impl View,
    ws: &str,
    kind: &str,
    name: &str,
) -> Result<Vec<(String, u8)>, StoreError> {
    let end = succ(name);
    let table = v.open(TRIGGER_ROUTES)?;
    let mut out = Vec::new();
    for row in table.range((ws, kind, name, "")..(ws, kind, end.as_str(), ""))? {
        let (k, f) = row?;
        out.push((k.value().3.to_string(), f.value()));
    }
    Ok(out)
}
