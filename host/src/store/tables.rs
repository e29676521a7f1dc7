//! Table definitions. Every key starts with the workspace id (tokens are
//! global), so a workspace's rows of one kind are one contiguous range.

use redb::{Database, TableDefinition};

use super::StoreError;

/// workspace id → workspace JSON.
pub(super) const WORKSPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("workspaces");
/// (workspace, collection) → collection JSON (schema included).
pub(super) const COLLECTIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("collections");
/// (workspace, collection, record id) → record JSON.
pub(super) const RECORDS: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("records");
/// (workspace, collection, external_id, external_source) → record id.
/// Unique external key; the `external_id` prefix finds a record from any source.
pub(super) const RECORDS_BY_EXTERNAL: TableDefinition<(&str, &str, &str, &str), &str> =
    TableDefinition::new("records_by_external");
/// (workspace, relationship id) → relationship JSON.
pub(super) const RELATIONSHIPS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("relationships");
/// (workspace, source collection, source id, rel_type, target collection, target id) → rel id.
/// Also the uniqueness constraint on (type, source, target).
pub(super) const RELS_OUT: TableDefinition<(&str, &str, &str, &str, &str, &str), &str> =
    TableDefinition::new("relationships_out");
/// (workspace, target collection, target id, rel_type, source collection, source id) → rel id.
pub(super) const RELS_IN: TableDefinition<(&str, &str, &str, &str, &str, &str), &str> =
    TableDefinition::new("relationships_in");
/// (workspace, sequence) → operations-log entry JSON.
pub(super) const OPLOG: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("operations_log");
/// workspace → next operations-log sequence number.
pub(super) const OPLOG_SEQ: TableDefinition<&str, u64> = TableDefinition::new("operations_log_seq");
/// (production workspace, promotion id) → promotion JSON (diff and config snapshots).
pub(super) const PROMOTIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("promotions");
/// (workspace, endpoint slug) → endpoint JSON (its current revision).
pub(super) const ENDPOINTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("endpoints");
/// (workspace, endpoint slug, revision) → that revision's JSON.
pub(super) const ENDPOINT_REVISIONS: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("endpoint_revisions");
/// component digest (`sha256:…`) → the component's bytes.
pub(super) const COMPONENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("components");
/// (production workspace, digest) → upload JSON (size, tools, who, when).
pub(super) const COMPONENT_UPLOADS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("component_uploads");
/// token id → token JSON (the secret only as a SHA-256 hash).
pub(super) const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");

pub(super) fn create_all(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.open_table(WORKSPACES)?;
    txn.open_table(COLLECTIONS)?;
    txn.open_table(RECORDS)?;
    txn.open_table(RECORDS_BY_EXTERNAL)?;
    txn.open_table(RELATIONSHIPS)?;
    txn.open_table(RELS_OUT)?;
    txn.open_table(RELS_IN)?;
    txn.open_table(OPLOG)?;
    txn.open_table(OPLOG_SEQ)?;
    txn.open_table(PROMOTIONS)?;
    txn.open_table(ENDPOINTS)?;
    txn.open_table(ENDPOINT_REVISIONS)?;
    txn.open_table(TOKENS)?;
    txn.open_table(COMPONENTS)?;
    txn.open_table(COMPONENT_UPLOADS)?;
    txn.commit()?;
    Ok(())
}
