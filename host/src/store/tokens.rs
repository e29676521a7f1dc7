//! API token rows (secrets only as hashes; the service owns the format).

use super::view::{Txn, View, values};
use super::*;

pub fn get(v: &impl View, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(TOKENS)?.get(id)?.map(|g| g.value().to_vec()))
}

pub fn all(v: &impl View) -> Result<Vec<Vec<u8>>, StoreError> {
    values(v.open(TOKENS)?.range::<&str>(..)?)
}

pub fn put(t: &Txn, id: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(TOKENS)?.insert(id, json)?;
    Ok(())
}
