//! Table definitions: the one list of tables. Every key starts with the
//! workspace id, except the two global tables (tokens, component bytes), so
//! a workspace's rows of one kind are one contiguous range. The list below
//! drives creating the tables, deleting a workspace (every per-workspace
//! table, by its range) and the test that no table keeps a deleted
//! workspace's rows — a table added here is covered by all three.

use redb::{Database, TableDefinition, TableHandle};

use super::StoreError;
use super::view::Txn;

/// Declares the tables: `per_workspace` ones with the key range that holds
/// one workspace's rows (`ws`, and `end` = the smallest id after it), and
/// `global` ones.
macro_rules! tables {
    (
        per_workspace { $( $(#[$pm:meta])* $p:ident : $pk:ty => $pv:ty = $pn:literal, $range:expr ; )* }
        global { $( $(#[$gm:meta])* $g:ident : $gk:ty => $gv:ty = $gn:literal ; )* }
    ) => {
        $( $(#[$pm])* pub(super) const $p: TableDefinition<$pk, $pv> = TableDefinition::new($pn); )*
        $( $(#[$gm])* pub(super) const $g: TableDefinition<$gk, $gv> = TableDefinition::new($gn); )*

        /// Every table's name, per-workspace ones first.
        #[cfg(test)]
        pub(super) const ALL: &[&str] = &[$($pn,)* $($gn,)*];

        /// Creates missing tables and, in the same transaction, builds the
        /// derived ones that a store from an older version lacks.
        pub(super) fn create_all(db: &Database) -> Result<(), StoreError> {
            let txn = db.begin_write()?;
            let had_counts = txn
                .list_tables()?
                .any(|t| t.name() == RECORD_COUNTS.name());
            $( txn.open_table($p)?; )*
            $( txn.open_table($g)?; )*
            if !had_counts {
                super::records::rebuild_counts(&Txn::new(&txn))?;
            }
            txn.commit()?;
            Ok(())
        }

        /// Removes every row of workspace `ws` from every per-workspace table.
        pub(super) fn delete_workspace_rows(t: &Txn, ws: &str, end: &str) -> Result<(), StoreError> {
            $( t.table($p)?.retain_in(($range)(ws, end), |_, _| false)?; )*
            Ok(())
        }

        /// How many rows of workspace `ws` each per-workspace table holds
        /// (for tests: all zero after a delete).
        #[cfg(test)]
        pub(super) fn count_workspace_rows(
            v: &redb::ReadTransaction,
            ws: &str,
            end: &str,
        ) -> Result<Vec<(&'static str, usize)>, StoreError> {
            Ok(vec![$( ($pn, v.open_table($p)?.range(($range)(ws, end))?.count()), )*])
        }
    };
}

tables! {
    per_workspace {
        /// workspace id → workspace JSON.
        WORKSPACES: &str => &[u8] = "workspaces", |ws, _| ws..=ws;
        /// workspace → next operations-log sequence number.
        OPLOG_SEQ: &str => u64 = "operations_log_seq", |ws, _| ws..=ws;
        /// (workspace, collection) → collection JSON (schema included).
        COLLECTIONS: (&str, &str) => &[u8] = "collections", |ws, end| (ws, "")..(end, "");
        /// (workspace, collection, record id) → record JSON.
        RECORDS: (&str, &str, &str) => &[u8] = "records", |ws, end| (ws, "", "")..(end, "", "");
        /// (workspace, collection) → (live records, all records incl. deleted):
        /// kept by `records::put` in the write's own transaction, so a list's
        /// `meta.total` needs no scan. Derived: rebuilt on open when missing.
        RECORD_COUNTS: (&str, &str) => (u64, u64) = "record_counts", |ws, end| (ws, "")..(end, "");
        /// (workspace, collection, external_id, external_source) → record id.
        /// Unique external key; the `external_id` prefix finds a record from any source.
        RECORDS_BY_EXTERNAL: (&str, &str, &str, &str) => &str = "records_by_external",
            |ws, end| (ws, "", "", "")..(end, "", "", "");
        /// (workspace, relationship id) → relationship JSON.
        RELATIONSHIPS: (&str, &str) => &[u8] = "relationships", |ws, end| (ws, "")..(end, "");
        /// (workspace, source collection, source id, rel_type, target collection, target id) → rel id.
        /// Also the uniqueness constraint on (type, source, target).
        RELS_OUT: (&str, &str, &str, &str, &str, &str) => &str = "relationships_out",
            |ws, end| (ws, "", "", "", "", "")..(end, "", "", "", "", "");
        /// (workspace, target collection, target id, rel_type, source collection, source id) → rel id.
        RELS_IN: (&str, &str, &str, &str, &str, &str) => &str = "relationships_in",
            |ws, end| (ws, "", "", "", "", "")..(end, "", "", "", "", "");
        /// (workspace, sequence) → operations-log entry JSON.
        OPLOG: (&str, u64) => &[u8] = "operations_log", |ws, end| (ws, 0)..(end, 0);
        /// (production workspace, promotion id) → promotion JSON (diff and config snapshots).
        PROMOTIONS: (&str, &str) => &[u8] = "promotions", |ws, end| (ws, "")..(end, "");
        /// (workspace, endpoint slug) → endpoint JSON (its current revision).
        ENDPOINTS: (&str, &str) => &[u8] = "endpoints", |ws, end| (ws, "")..(end, "");
        /// (workspace, endpoint slug, revision) → that revision's JSON.
        ENDPOINT_REVISIONS: (&str, &str, u64) => &[u8] = "endpoint_revisions",
            |ws, end| (ws, "", 0)..(end, "", 0);
        /// (production workspace, digest) → upload JSON (size, tools, who, when).
        COMPONENT_UPLOADS: (&str, &str) => &[u8] = "component_uploads", |ws, end| (ws, "")..(end, "");
        /// (workspace, hook id) → hook JSON (config; never its secret).
        HOOKS: (&str, &str) => &[u8] = "hooks", |ws, end| (ws, "")..(end, "");
        /// (workspace, "hook" | "trigger", id) → its signing secrets JSON. Not
        /// config: never copied, listed, logged or reachable from SQL.
        SECRETS: (&str, &str, &str) => &[u8] = "secrets", |ws, end| (ws, "", "")..(end, "", "");
        /// (workspace, hook id, idempotency key) → what the first delivery wrote.
        HOOK_KEYS: (&str, &str, &str) => &[u8] = "hook_idempotency",
            |ws, end| (ws, "", "")..(end, "", "");
        /// (workspace, expiry in Unix seconds, hook id, key): the keys by expiry.
        HOOK_KEYS_BY_EXPIRY: (&str, u64, &str, &str) => u8 = "hook_idempotency_expiry",
            |ws, end| (ws, 0, "", "")..(end, 0, "", "");
        /// (workspace, trigger id) → trigger JSON (config; never its secret).
        TRIGGERS: (&str, &str) => &[u8] = "triggers", |ws, end| (ws, "")..(end, "");
        /// (workspace, trigger id) → disabled state JSON (not config).
        TRIGGER_STATE: (&str, &str) => &[u8] = "trigger_state", |ws, end| (ws, "")..(end, "");
        /// (workspace, "c" | "r", collection or rel_type, trigger id) → event
        /// flags: what the write path reads to find the triggers of a change.
        TRIGGER_ROUTES: (&str, &str, &str, &str) => u8 = "trigger_routes",
            |ws, end| (ws, "", "", "")..(end, "", "", "");
        /// (workspace, operations-log sequence) → an event: the triggers it
        /// goes to, newline, `webhook-id`, newline, body. Written in the
        /// transaction of the change that caused it, once for all its
        /// triggers; removed once each of them is past it.
        EVENTS: (&str, u64) => &[u8] = "events", |ws, end| (ws, 0)..(end, 0);
        /// (workspace, trigger id) → the sequence up to which the trigger
        /// has delivered (or dead-lettered) its events.
        CURSORS: (&str, &str) => u64 = "trigger_cursors", |ws, end| (ws, "")..(end, "");
        /// (workspace, trigger id, sequence) → a dead letter sent again
        /// (`triggers replay`): delivered before the trigger's new events.
        REPLAYS: (&str, &str, u64) => &[u8] = "trigger_replays", |ws, end| (ws, "", 0)..(end, "", 0);
        /// (workspace, trigger id) → delivery attempts of the trigger's first event.
        DELIVERY: (&str, &str) => &[u8] = "delivery_state", |ws, end| (ws, "")..(end, "");
        /// (workspace, trigger id, sequence) → an event whose retries ran out.
        DEAD_LETTERS: (&str, &str, u64) => &[u8] = "dead_letters", |ws, end| (ws, "", 0)..(end, "", 0);
    }
    global {
        /// component digest (`sha256:…`) → the component's bytes, shared by
        /// every upload of it (removed with its last upload).
        COMPONENTS: &str => &[u8] = "components";
        /// token id → token JSON (the secret only as a SHA-256 hash).
        TOKENS: &str => &[u8] = "tokens";
    }
}
