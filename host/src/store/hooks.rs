//! Hooks (inbound webhook config), their idempotency keys, and the signing
//! secrets of hooks and triggers.

use super::view::{Txn, View, values};
use super::*;

pub fn get(v: &impl View, ws: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(HOOKS)?.get((ws, id))?.map(|g| g.value().to_vec()))
}

/// Every hook of `ws`, in id order.
pub fn list(v: &impl View, ws: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let end = succ(ws);
    values(v.open(HOOKS)?.range((ws, "")..(end.as_str(), ""))?)
}

pub fn put(t: &Txn, ws: &str, id: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(HOOKS)?.insert((ws, id), json)?;
    Ok(())
}

pub fn remove(t: &Txn, ws: &str, id: &str) -> Result<(), StoreError> {
    t.table(HOOKS)?.remove((ws, id))?;
    Ok(())
}

/// The signing secrets of a hook or trigger (`kind`: "hook" or "trigger").
pub fn secrets(
    v: &impl View,
    ws: &str,
    kind: &str,
    id: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(SECRETS)?
        .get((ws, kind, id))?
        .map(|g| g.value().to_vec()))
}

pub fn put_secrets(t: &Txn, ws: &str, kind: &str, id: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(SECRETS)?.insert((ws, kind, id), json)?;
    Ok(())
}

pub fn remove_secrets(t: &Txn, ws: &str, kind: &str, id: &str) -> Result<(), StoreError> {
    t.table(SECRETS)?.remove((ws, kind, id))?;
    Ok(())
}

/// What an idempotency key of a hook recorded, if it is still kept.
pub fn key(v: &impl View, ws: &str, hook: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(HOOK_KEYS)?
        .get((ws, hook, key))?
        .map(|g| g.value().to_vec()))
}

pub fn put_key(
    t: &Txn,
    ws: &str,
    hook: &str,
    key: &str,
    expires: u64,
    json: &[u8],
) -> Result<(), StoreError> {
    t.table(HOOK_KEYS)?.insert((ws, hook, key), json)?;
    t.table(HOOK_KEYS_BY_EXPIRY)?
        .insert((ws, expires, hook, key), 0)?;
    Ok(())
}

/// Removes up to `limit` keys of `ws` that expired at or before `now`;
/// returns how many.
pub fn expire_keys(t: &Txn, ws: &str, now: u64, limit: usize) -> Result<usize, StoreError> {
    let mut gone: Vec<(u64, String, String)> = Vec::new();
    {
        let by_expiry = t.open(HOOK_KEYS_BY_EXPIRY)?;
        for row in by_expiry
            .range((ws, 0, "", "")..(ws, now.saturating_add(1), "", ""))?
            .take(limit)
        {
            let (k, _) = row?;
            let (_, at, hook, key) = k.value();
            gone.push((at, hook.to_string(), key.to_string()));
        }
    }
    if gone.is_empty() {
        return Ok(0);
    }
    let mut by_expiry = t.table(HOOK_KEYS_BY_EXPIRY)?;
    let mut keys = t.table(HOOK_KEYS)?;
    for (at, hook, key) in &gone {
        by_expiry.remove((ws, *at, hook.as_str(), key.as_str()))?;
        keys.remove((ws, hook.as_str(), key.as_str()))?;
    }
    Ok(gone.len())
}

/// Removes every idempotency key of a hook (with the hook).
pub fn remove_keys(t: &Txn, ws: &str, hook: &str) -> Result<(), StoreError> {
    let end = succ(hook);
    t.table(HOOK_KEYS)?
        .retain_in((ws, hook, "")..(ws, end.as_str(), ""), |_, _| false)?;
    t.table(HOOK_KEYS_BY_EXPIRY)?
        .retain_in((ws, 0, "", "")..(succ(ws).as_str(), 0, "", ""), |k, _| {
            k.2 != hook
        })?;
    Ok(())
}
