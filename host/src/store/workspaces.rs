//! Workspace rows, and deleting everything a workspace owns.

use redb::ReadableTable;

use super::view::{Txn, View, values};
use super::*;

pub fn get(v: &impl View, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(v.open(WORKSPACES)?.get(id)?.map(|g| g.value().to_vec()))
}

pub fn all(v: &impl View) -> Result<Vec<Vec<u8>>, StoreError> {
    values(v.open(WORKSPACES)?.range::<&str>(..)?)
}

pub fn put(t: &Txn, id: &str, json: &[u8]) -> Result<(), StoreError> {
    t.table(WORKSPACES)?.insert(id, json)?;
    Ok(())
}

/// Removes every row of workspace `ws` from every per-workspace table (the
/// list in `tables.rs`), and the bytes of components no upload names any
/// more.
pub fn delete_all(t: &Txn, ws: &str) -> Result<(), StoreError> {
    let end = succ(ws);
    let digests: Vec<String> = {
        let uploads = t.table(COMPONENT_UPLOADS)?;
        let mut out = Vec::new();
        for row in uploads.range((ws, "")..(end.as_str(), ""))? {
            out.push(row?.0.value().1.to_string());
        }
        out
    };
    super::tables::delete_workspace_rows(t, ws, &end)?;
    super::components::collect_garbage(t, &digests)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tables;
    use super::*;

    /// Deleting a workspace leaves no row of it in any table (defect: its
    /// endpoints, revisions and uploads used to stay, and came back when a
    /// workspace of the same id was created).
    #[tokio::test]
    async fn deleting_a_workspace_leaves_no_row_in_any_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let fill = |ws: &'static str| {
            let store = store.clone();
            async move {
                store
                    .write(WriteMode::Exclusive, move |t| -> Result<(), StoreError> {
                        put(t, ws, b"{}")?;
                        t.table(OPLOG_SEQ)?.insert(ws, 3)?;
                        t.table(COLLECTIONS)?.insert((ws, "c"), b"{}".as_slice())?;
                        t.table(RECORDS)?.insert((ws, "c", "r"), b"{}".as_slice())?;
                        t.table(RECORD_COUNTS)?.insert((ws, "c"), (1, 1))?;
                        t.table(RECORDS_BY_EXTERNAL)?
                            .insert((ws, "c", "e", ""), "r")?;
                        t.table(RELATIONSHIPS)?
                            .insert((ws, "l"), b"{}".as_slice())?;
                        t.table(RELS_OUT)?
                            .insert((ws, "c", "r", "t", "c", "r"), "l")?;
                        t.table(RELS_IN)?
                            .insert((ws, "c", "r", "t", "c", "r"), "l")?;
                        t.table(OPLOG)?.insert((ws, 1), b"{}".as_slice())?;
                        t.table(PROMOTIONS)?.insert((ws, "p"), b"{}".as_slice())?;
                        t.table(ENDPOINTS)?.insert((ws, "e"), b"{}".as_slice())?;
                        t.table(ENDPOINT_REVISIONS)?
                            .insert((ws, "e", 1), b"{}".as_slice())?;
                        t.table(COMPONENT_UPLOADS)?
                            .insert((ws, "sha256:aa"), b"{}".as_slice())?;
                        t.table(COMPONENTS)?
                            .insert("sha256:aa", b"wasm".as_slice())?;
                        t.table(HOOKS)?.insert((ws, "h"), b"{}".as_slice())?;
                        t.table(SECRETS)?
                            .insert((ws, "hook", "h"), b"{}".as_slice())?;
                        t.table(HOOK_KEYS)?
                            .insert((ws, "h", "k"), b"{}".as_slice())?;
                        t.table(HOOK_KEYS_BY_EXPIRY)?.insert((ws, 9, "h", "k"), 0)?;
                        t.table(TRIGGERS)?.insert((ws, "t"), b"{}".as_slice())?;
                        t.table(TRIGGER_STATE)?
                            .insert((ws, "t"), b"{}".as_slice())?;
                        t.table(TRIGGER_ROUTES)?.insert((ws, "c", "c", "t"), 1)?;
                        t.table(EVENTS)?.insert((ws, 1), b"{}".as_slice())?;
                        t.table(CURSORS)?.insert((ws, "t"), 1)?;
                        t.table(REPLAYS)?.insert((ws, "t", 1), b"{}".as_slice())?;
                        t.table(DELIVERY)?.insert((ws, "t"), b"{}".as_slice())?;
                        t.table(DEAD_LETTERS)?
                            .insert((ws, "t", 1), b"{}".as_slice())?;
                        Ok(())
                    })
                    .await
                    .expect("fill")
            }
        };
        fill("w").await;
        fill("w-x").await; // a neighbour whose id sorts right after
        let counts = |ws: &str| {
            let txn = store.db.begin_read().expect("read");
            tables::count_workspace_rows(&txn, ws, &succ(ws)).expect("count")
        };
        // Every per-workspace table was filled: the check below means something.
        assert!(counts("w").iter().all(|(_, n)| *n > 0), "{:?}", counts("w"));
        store
            .write(WriteMode::Exclusive, |t| delete_all(t, "w"))
            .await
            .expect("delete");
        let left: Vec<_> = counts("w").into_iter().filter(|(_, n)| *n > 0).collect();
        assert!(left.is_empty(), "rows left behind: {left:?}");
        assert!(
            counts("w-x").iter().all(|(_, n)| *n > 0),
            "the neighbour is untouched"
        );
        // Shared component bytes stay while another workspace uploaded them.
        let txn = store.read().expect("read");
        assert!(
            super::super::components::bytes(&txn, "sha256:aa")
                .expect("read")
                .is_some()
        );
        assert_eq!(
            tables::ALL.len(),
            counts("w").len() + 2,
            "two global tables"
        );
    }
}
