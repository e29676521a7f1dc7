//! Relationships: typed, directed links between two records with optional
//! metadata, unique on (type, source, target). Indexed in both directions,
//! so "what links out of / into this record" is one range scan.
//! A record may be named by its internal id or its external id.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{Result, ServiceError};
use super::{Caller, Ctx, Service, decode, encode, now, oplog, records, workspaces};
use crate::store::{
    self, RECORDS, RECORDS_BY_EXTERNAL, RELATIONSHIPS, RELS_IN, RELS_OUT, WriteTransaction,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relationship {
    pub id: String,
    pub workspace_id: String,
    pub rel_type: String,
    pub source_collection: String,
    pub source_id: String,
    pub target_collection: String,
    pub target_id: String,
    #[serde(default)]
    pub metadata: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertRelationship {
    pub rel_type: String,
    pub source_collection: String,
    pub source_id: String,
    pub target_collection: String,
    pub target_id: String,
    #[serde(default)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Outgoing,
    Incoming,
    Both,
}

impl std::str::FromStr for Direction {
    type Err = ServiceError;
    fn from_str(s: &str) -> Result<Direction> {
        match s {
            "outgoing" => Ok(Direction::Outgoing),
            "incoming" => Ok(Direction::Incoming),
            "both" => Ok(Direction::Both),
            _ => Err(ServiceError::invalid(format!(
                "direction '{s}': use outgoing, incoming or both"
            ))),
        }
    }
}

pub(crate) fn load(txn: &WriteTransaction, ws: &str, id: &str) -> Result<Relationship> {
    match txn.open_table(RELATIONSHIPS)?.get((ws, id))? {
        Some(v) => decode(v.value(), "relationship"),
        None => Err(ServiceError::NotFound(format!(
            "relationship '{id}' not found in workspace '{ws}'"
        ))),
    }
}

fn perm_check(
    ctx: &Ctx,
    ws: &str,
    txn: &WriteTransaction,
    colls: [&str; 2],
    perm: &str,
) -> Result<()> {
    for c in colls {
        workspaces::load_for(txn, &ctx.caller, ws, Some(c), perm)?;
    }
    Ok(())
}

pub(crate) fn upsert_in(
    txn: &WriteTransaction,
    ctx: &Ctx,
    ws: &str,
    req: UpsertRelationship,
) -> Result<Relationship> {
    perm_check(
        ctx,
        ws,
        txn,
        [&req.source_collection, &req.target_collection],
        "write:relationships",
    )?;
    super::check_ident("rel_type", &req.rel_type, 64)?;
    if req
        .metadata
        .as_ref()
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(ServiceError::invalid("'metadata' must be a JSON object"));
    }
    let source = records::resolve_in(txn, ws, &req.source_collection, &req.source_id)?;
    let target = records::resolve_in(txn, ws, &req.target_collection, &req.target_id)?;
    let (sc, si, t, tc, ti) = (
        req.source_collection.as_str(),
        source.id.as_str(),
        req.rel_type.as_str(),
        req.target_collection.as_str(),
        target.id.as_str(),
    );
    let existing = txn
        .open_table(RELS_OUT)?
        .get((ws, sc, si, t, tc, ti))?
        .map(|v| v.value().to_string());
    let stamp = now();
    let rel = match existing {
        Some(id) => {
            let old = load(txn, ws, &id)?;
            if old.metadata == req.metadata {
                return Ok(old);
            }
            Relationship {
                metadata: req.metadata,
                updated_at: stamp,
                ..old
            }
        }
        None => {
            let rel = Relationship {
                id: uuid::Uuid::now_v7().to_string(),
                workspace_id: ws.to_string(),
                rel_type: t.to_string(),
                source_collection: sc.to_string(),
                source_id: si.to_string(),
                target_collection: tc.to_string(),
                target_id: ti.to_string(),
                metadata: req.metadata,
                created_at: stamp.clone(),
                updated_at: stamp,
            };
            txn.open_table(RELS_OUT)?
                .insert((ws, sc, si, t, tc, ti), rel.id.as_str())?;
            txn.open_table(RELS_IN)?
                .insert((ws, tc, ti, t, sc, si), rel.id.as_str())?;
            rel
        }
    };
    txn.open_table(RELATIONSHIPS)?
        .insert((ws, rel.id.as_str()), encode(&rel)?.as_slice())?;
    oplog::append(
        txn,
        ws,
        &ctx.caller,
        "upsert_relationship",
        json!({"id": rel.id, "rel_type": rel.rel_type}),
    )?;
    Ok(rel)
}

/// Deletes by id (hard delete: a link has no history of its own).
pub(crate) fn delete_in(
    txn: &WriteTransaction,
    ctx: &Ctx,
    ws: &str,
    id: &str,
) -> Result<Relationship> {
    workspaces::load_for(txn, &ctx.caller, ws, None, "write:relationships")?;
    let rel = load(txn, ws, id)?;
    perm_check(
        ctx,
        ws,
        txn,
        [&rel.source_collection, &rel.target_collection],
        "write:relationships",
    )?;
    remove_rows(txn, &rel)?;
    oplog::append(
        txn,
        ws,
        &ctx.caller,
        "delete_relationship",
        json!({"id": id, "rel_type": rel.rel_type}),
    )?;
    Ok(rel)
}

/// Removes a relationship and both its index entries.
pub(crate) fn remove_rows(txn: &WriteTransaction, rel: &Relationship) -> Result<()> {
    let ws = rel.workspace_id.as_str();
    let (sc, si, t, tc, ti) = (
        rel.source_collection.as_str(),
        rel.source_id.as_str(),
        rel.rel_type.as_str(),
        rel.target_collection.as_str(),
        rel.target_id.as_str(),
    );
    txn.open_table(RELS_OUT)?.remove((ws, sc, si, t, tc, ti))?;
    txn.open_table(RELS_IN)?.remove((ws, tc, ti, t, sc, si))?;
    txn.open_table(RELATIONSHIPS)?
        .remove((ws, rel.id.as_str()))?;
    Ok(())
}

/// Finds the id of the relationship (type, source, target), names resolved.
pub(crate) fn find_in(
    txn: &WriteTransaction,
    ws: &str,
    req: &UpsertRelationship,
) -> Result<String> {
    let s = records::resolve_in(txn, ws, &req.source_collection, &req.source_id)?;
    let t = records::resolve_in(txn, ws, &req.target_collection, &req.target_id)?;
    txn.open_table(RELS_OUT)?
        .get((
            ws,
            req.source_collection.as_str(),
            s.id.as_str(),
            req.rel_type.as_str(),
            req.target_collection.as_str(),
            t.id.as_str(),
        ))?
        .map(|v| v.value().to_string())
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no '{}' relationship from {}/{} to {}/{}",
                req.rel_type,
                req.source_collection,
                req.source_id,
                req.target_collection,
                req.target_id
            ))
        })
}

impl Service {
    pub async fn upsert_relationship(
        &self,
        caller: &Caller,
        ws: &str,
        req: UpsertRelationship,
    ) -> Result<Relationship> {
        let ws = ws.to_string();
        self.write_shared(caller, move |txn, ctx| upsert_in(txn, ctx, &ws, req))
            .await
    }

    pub async fn delete_relationship(
        &self,
        caller: &Caller,
        ws: &str,
        id: &str,
    ) -> Result<Relationship> {
        let (ws, id) = (ws.to_string(), id.to_string());
        self.write_shared(caller, move |txn, ctx| delete_in(txn, ctx, &ws, &id))
            .await
    }

    pub fn get_relationship(&self, caller: &Caller, ws: &str, id: &str) -> Result<Relationship> {
        let txn = self.store.read()?;
        let w = self.read_workspace(&txn, caller, ws, None, "read:relationships")?;
        let rel: Relationship = match txn.open_table(RELATIONSHIPS)?.get((ws, id))? {
            Some(v) => decode(v.value(), "relationship")?,
            None => {
                return Err(ServiceError::NotFound(format!(
                    "relationship '{id}' not found in workspace '{ws}'"
                )));
            }
        };
        caller.require(&w, Some(&rel.source_collection), "read:relationships")?;
        caller.require(&w, Some(&rel.target_collection), "read:relationships")?;
        Ok(rel)
    }

    /// Relationships of one record, through the direction indexes.
    pub fn query_relationships(
        &self,
        caller: &Caller,
        ws: &str,
        coll: &str,
        record: &str,
        rel_type: Option<&str>,
        direction: Direction,
    ) -> Result<Vec<Relationship>> {
        let txn = self.store.read()?;
        let w = self.read_workspace(&txn, caller, ws, Some(coll), "read:relationships")?;
        // Accept an external id as well as the internal one; links to a
        // record that is gone can still be listed by its internal id.
        let rid = match records::find_bytes(
            &txn.open_table(RECORDS)?,
            &txn.open_table(RECORDS_BY_EXTERNAL)?,
            ws,
            coll,
            record,
        ) {
            Ok(bytes) => decode::<records::Record>(&bytes, "record")?.id,
            Err(ServiceError::NotFound(_)) => record.to_string(),
            Err(e) => return Err(e),
        };
        let rid = rid.as_str();
        let mut ids = Vec::new();
        for table_def in [
            (Direction::Outgoing, RELS_OUT),
            (Direction::Incoming, RELS_IN),
        ] {
            if direction != Direction::Both && direction != table_def.0 {
                continue;
            }
            let table = txn.open_table(table_def.1)?;
            let range = match rel_type {
                Some(t) => {
                    let end = store::succ(t);
                    table
                        .range((ws, coll, rid, t, "", "")..(ws, coll, rid, end.as_str(), "", ""))?
                }
                None => {
                    let end = store::succ(rid);
                    table
                        .range((ws, coll, rid, "", "", "")..(ws, coll, end.as_str(), "", "", ""))?
                }
            };
            for row in range {
                ids.push(row?.1.value().to_string());
            }
        }
        let rels = txn.open_table(RELATIONSHIPS)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(v) = rels.get((ws, id.as_str()))? {
                let rel: Relationship = decode(v.value(), "relationship")?;
                let other = if rel.source_collection == coll && rel.source_id == rid {
                    &rel.target_collection
                } else {
                    &rel.source_collection
                };
                if caller.can(&w, Some(other), "read:relationships") {
                    out.push(rel);
                }
            }
        }
        Ok(out)
    }
}
