//! Record rows, the external-key index and the per-collection counts.
//!
//! The store keeps record JSON as bytes and leaves its shape to the service,
//! with one exception: the counts need to know whether a record is deleted,
//! so they read the `deleted` flag, which the service writes first (its test
//! `deleted_is_serialized_first_and_data_last` keeps it there).

use std::ops::ControlFlow;

use redb::ReadableTable;

use super::view::{Rows, Snapshot, Txn, View, ids, rows};
use super::*;

pub fn get(v: &impl View, ws: &str, coll: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(RECORDS)?
        .get((ws, coll, id))?
        .map(|g| g.value().to_vec()))
}

/// Calls `f` with the records of a collection (their bytes, not copied) in
/// id order, or in reverse id order if `reverse`, until `f` says to stop.
pub fn scan<E: From<StoreError>>(
    v: &impl View,
    ws: &str,
    coll: &str,
    reverse: bool,
    mut f: impl FnMut(&[u8]) -> Result<ControlFlow<()>, E>,
) -> Result<(), E> {
    scan_keyed(v, ws, coll, reverse, |_, bytes| f(bytes))
}

/// Like [`scan`], with each record's id.
pub fn scan_keyed<E: From<StoreError>>(
    v: &impl View,
    ws: &str,
    coll: &str,
    reverse: bool,
    mut f: impl FnMut(&str, &[u8]) -> Result<ControlFlow<()>, E>,
) -> Result<(), E> {
    let end = succ(coll);
    let table = v.open(RECORDS)?;
    let range = table
        .range((ws, coll, "")..(ws, end.as_str(), ""))
        .map_err(E::from)?;
    let rows: Box<dyn Iterator<Item = _>> = if reverse {
        Box::new(range.rev())
    } else {
        Box::new(range)
    };
    for row in rows {
        let (key, value) = row.map_err(StoreError::from)?;
        if f(key.value().2, value.value())?.is_break() {
            break;
        }
    }
    Ok(())
}

/// How many records of a collection have an id in `from..to`, counting at
/// most `most`.
pub fn count_between(
    v: &impl View,
    ws: &str,
    coll: &str,
    from: &str,
    to: &str,
    most: usize,
) -> Result<usize, StoreError> {
    let table = v.open(RECORDS)?;
    let mut n = 0;
    for row in table.range((ws, coll, from)..(ws, coll, to))? {
        row?;
        n += 1;
        if n >= most {
            break;
        }
    }
    Ok(n)
}

/// How many records a collection holds: (live, all including deleted).
pub fn count(v: &impl View, ws: &str, coll: &str) -> Result<(u64, u64), StoreError> {
    Ok(v.open(RECORD_COUNTS)?
        .get((ws, coll))?
        .map_or((0, 0), |g| g.value()))
}

/// Whether stored record bytes are soft-deleted: the `deleted` flag comes
/// first, so this is a prefix test (a full parse only if it were not first).
pub fn is_deleted(json: &[u8]) -> Result<bool, StoreError> {
    if json.starts_with(br#"{"deleted":false,"#) {
        return Ok(false);
    }
    if json.starts_with(br#"{"deleted":true,"#) {
        return Ok(true);
    }
    #[derive(serde::Deserialize)]
    struct Flag {
        deleted: bool,
    }
    serde_json::from_slice::<Flag>(json)
        .map(|f| f.deleted)
        .map_err(|e| StoreError::new(format!("record without a 'deleted' flag: {e}")))
}

/// Counts every collection's records from scratch (for a store written
/// before the counts existed).
pub(super) fn rebuild_counts(t: &Txn) -> Result<(), StoreError> {
    let records = t.table(RECORDS)?;
    let mut counts = t.table(RECORD_COUNTS)?;
    counts.retain(|_, _| false)?;
    let mut current: Option<(String, String, u64, u64)> = None;
    let mut flush = |c: Option<(String, String, u64, u64)>| -> Result<(), StoreError> {
        if let Some((ws, coll, live, all)) = c {
            counts.insert((ws.as_str(), coll.as_str()), (live, all))?;
        }
        Ok(())
    };
    for row in records.iter()? {
        let (key, value) = row?;
        let (ws, coll, _) = key.value();
        let live = u64::from(!is_deleted(value.value())?);
        match &mut current {
            Some((w, c, l, a)) if w == ws && c == coll => {
                *l += live;
                *a += 1;
            }
            _ => flush(current.replace((ws.to_string(), coll.to_string(), live, 1)))?,
        }
    }
    flush(current)
}

/// Whether the collection holds any record (deleted ones included).
pub fn any(v: &impl View, ws: &str, coll: &str) -> Result<bool, StoreError> {
    let end = succ(coll);
    let table = v.open(RECORDS)?;
    let mut range = table.range((ws, coll, "")..(ws, end.as_str(), ""))?;
    Ok(range.next().transpose()?.is_some())
}

/// Writes a record and keeps its collection's counts: the old value (if
/// any) comes back from the insert, so a create, a delete and a restore each
/// move the counts by what actually changed.
pub fn put(t: &Txn, ws: &str, coll: &str, id: &str, json: &[u8]) -> Result<(), StoreError> {
    let was = match t.table(RECORDS)?.insert((ws, coll, id), json)? {
        Some(old) => Some(is_deleted(old.value())?),
        None => None,
    };
    let now_deleted = is_deleted(json)?;
    if was == Some(now_deleted) {
        return Ok(());
    }
    let mut counts = t.table(RECORD_COUNTS)?;
    let (mut live, mut all) = counts.get((ws, coll))?.map_or((0, 0), |g| g.value());
    match (was, now_deleted) {
        (None, deleted) => {
            all += 1;
            live += u64::from(!deleted);
        }
        (Some(true), false) => live += 1,
        (Some(false), true) => live = live.saturating_sub(1),
        (Some(_), _) => {}
    }
    counts.insert((ws, coll), (live, all))?;
    Ok(())
}

/// Removes a collection's records, their external keys and their counts.
pub fn delete_collection(t: &Txn, ws: &str, coll: &str) -> Result<(), StoreError> {
    t.table(RECORD_COUNTS)?.remove((ws, coll))?;
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

#[cfg(test)]
mod tests {
    use super::super::{Store, WriteMode, tables};
    use super::*;

    /// A store written before the counts existed has no counts table: it is
    /// built from the records when the store opens, deleted ones apart.
    #[tokio::test]
    async fn counts_are_built_for_a_store_from_before_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        store
            .write(WriteMode::Exclusive, |t| -> Result<(), StoreError> {
                for (ws, coll, id, deleted) in [
                    ("w", "a", "1", false),
                    ("w", "a", "2", true),
                    ("w", "a", "3", false),
                    ("w", "b", "1", true),
                    ("w-x", "a", "1", false),
                ] {
                    let json = format!(r#"{{"deleted":{deleted},"id":"{id}","data":{{}}}}"#);
                    put(t, ws, coll, id, json.as_bytes())?;
                }
                // Rewriting a record (deleting one, restoring another) moves
                // the live count only.
                put(t, "w", "a", "3", br#"{"deleted":true,"data":{}}"#)?;
                put(t, "w", "a", "2", br#"{"deleted":false,"data":{}}"#)?;
                Ok(())
            })
            .await
            .expect("write");
        let counts = |store: &Store| {
            let s = store.read().expect("read");
            [("w", "a"), ("w", "b"), ("w-x", "a"), ("w", "none")]
                .map(|(ws, c)| count(&s, ws, c).expect("count"))
        };
        let kept = counts(&store);
        assert_eq!(kept, [(2, 3), (0, 1), (1, 1), (0, 0)]);
        store
            .write(WriteMode::Exclusive, |t| -> Result<(), StoreError> {
                t.raw().delete_table(RECORD_COUNTS)?;
                Ok(())
            })
            .await
            .expect("drop the counts");
        tables::create_all(&store.db).expect("open again");
        assert_eq!(counts(&store), kept);
    }

    #[test]
    fn the_deleted_flag_is_read_wherever_it_is() {
        assert!(!is_deleted(br#"{"deleted":false,"id":"x"}"#).expect("flag"));
        assert!(is_deleted(br#"{"deleted":true,"id":"x"}"#).expect("flag"));
        assert!(is_deleted(br#"{"id":"x","deleted":true}"#).expect("flag"));
        assert!(is_deleted(br#"{"id":"x"}"#).is_err());
    }
}
