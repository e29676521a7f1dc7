//! Relationships: typed, directed links between two records with optional
//! metadata, unique on (type, source, target). Indexed in both directions,
//! so "what links out of / into this record" is one range scan.
//! A record may be named by its internal id or its external id.

use mcp_factory_guest::config::RelationshipOp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::Act;
use super::error::{Entity, Result, ServiceError};
use super::triggers::{self, Change, Event};
use super::{Caller, Ctx, Service, decode, encode, now, oplog, records, workspaces};
use crate::store::relationships::{Link, Side};
use crate::store::{self, Txn, View};

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

impl Relationship {
    fn link(&self) -> Link<'_> {
        Link {
            rel_type: &self.rel_type,
            source_collection: &self.source_collection,
            source_id: &self.source_id,
            target_collection: &self.target_collection,
            target_id: &self.target_id,
        }
    }
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

impl Direction {
    fn sides(self) -> &'static [Side] {
        match self {
            Direction::Outgoing => &[Side::Outgoing],
            Direction::Incoming => &[Side::Incoming],
            Direction::Both => &[Side::Outgoing, Side::Incoming],
        }
    }
}

pub(crate) fn load(v: &impl View, ws: &str, id: &str) -> Result<Relationship> {
    match store::relationships::get(v, ws, id)? {
        Some(bytes) => decode(&bytes, "relationship"),
        None => Err(ServiceError::not_found(
            Entity::Relationship,
            id,
            format!("relationship '{id}' not found in workspace '{ws}'"),
        )),
    }
}

/// Checks `op` on `rel_type` and, for writing, the collections at both ends.
fn require_link(
    txn: &Txn,
    ctx: &Ctx,
    ws: &str,
    rel_type: &str,
    op: RelationshipOp,
    ends: [&str; 2],
) -> Result<()> {
    let w = workspaces::load(txn, ws)?;
    ctx.caller.authorize(&w, Act::Relationship(rel_type, op))?;
    for c in ends {
        ctx.caller.authorize(&w, Act::RelationshipEnd(c, true))?;
    }
    Ok(())
}

/// Resolves both ends to live records (internal or external ids); returns
/// their internal ids.
fn resolve(txn: &Txn, ws: &str, req: &UpsertRelationship) -> Result<(String, String)> {
    let source = records::resolve_in(txn, ws, &req.source_collection, &req.source_id)?;
    let target = records::resolve_in(txn, ws, &req.target_collection, &req.target_id)?;
    Ok((source.id, target.id))
}

impl UpsertRelationship {
    /// The link this request names, with the ends' resolved internal ids.
    fn link<'a>(&'a self, source_id: &'a str, target_id: &'a str) -> Link<'a> {
        Link {
            rel_type: &self.rel_type,
            source_collection: &self.source_collection,
            source_id,
            target_collection: &self.target_collection,
            target_id,
        }
    }
}

pub(crate) fn upsert_in(
    txn: &Txn,
    ctx: &Ctx,
    ws: &str,
    req: UpsertRelationship,
) -> Result<Relationship> {
    let ends = [
        req.source_collection.as_str(),
        req.target_collection.as_str(),
    ];
    require_link(txn, ctx, ws, &req.rel_type, RelationshipOp::Create, ends)?;
    super::check_ident("rel_type", &req.rel_type, 64)?;
    if req
        .metadata
        .as_ref()
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(ServiceError::invalid("'metadata' must be a JSON object"));
    }
    let (source_id, target_id) = resolve(txn, ws, &req)?;
    let link = req.link(&source_id, &target_id);
    let stamp = now();
    let mut event = Event::Create;
    let rel = match store::relationships::find(txn, ws, link)? {
        Some(id) => {
            event = Event::Update;
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
            let id = uuid::Uuid::now_v7().to_string();
            store::relationships::link(txn, ws, link, &id)?;
            Relationship {
                id,
                workspace_id: ws.to_string(),
                rel_type: req.rel_type.clone(),
                source_collection: req.source_collection.clone(),
                source_id: source_id.clone(),
                target_collection: req.target_collection.clone(),
                target_id: target_id.clone(),
                metadata: req.metadata,
                created_at: stamp.clone(),
                updated_at: stamp,
            }
        }
    };
    store::relationships::put(txn, ws, &rel.id, &encode(&rel)?)?;
    let seq = oplog::append(
        txn,
        ws,
        &ctx.caller,
        "upsert_relationship",
        json!({"id": rel.id, "rel_type": rel.rel_type}),
    )?;
    triggers::emit(txn, &ctx.caller, ws, seq, Change::Relationship(event, &rel))?;
    Ok(rel)
}

/// Deletes by id (hard delete: a link has no history of its own).
pub(crate) fn delete_in(txn: &Txn, ctx: &Ctx, ws: &str, id: &str) -> Result<Relationship> {
    let w = workspaces::load(txn, ws)?;
    ctx.caller
        .authorize_token(&w, Act::Perm(None, "write:relationships"))?;
    // The relationship's own type decides, whatever the request named.
    let rel = load(txn, ws, id)?;
    let ends = [
        rel.source_collection.as_str(),
        rel.target_collection.as_str(),
    ];
    require_link(txn, ctx, ws, &rel.rel_type, RelationshipOp::Delete, ends)?;
    remove_rows(txn, &rel)?;
    let seq = oplog::append(
        txn,
        ws,
        &ctx.caller,
        "delete_relationship",
        json!({"id": id, "rel_type": rel.rel_type}),
    )?;
    triggers::emit(
        txn,
        &ctx.caller,
        ws,
        seq,
        Change::Relationship(Event::Delete, &rel),
    )?;
    Ok(rel)
}

/// Removes a relationship and both its index entries.
pub(crate) fn remove_rows(txn: &Txn, rel: &Relationship) -> Result<()> {
    store::relationships::remove(txn, &rel.workspace_id, &rel.id, rel.link())?;
    Ok(())
}

/// Finds the id of the relationship (type, source, target), names resolved,
/// for deleting it: the caller's right to delete it is checked first, so a
/// refused caller learns nothing of which records exist.
pub(crate) fn find_in(txn: &Txn, ctx: &Ctx, ws: &str, req: &UpsertRelationship) -> Result<String> {
    let ends = [
        req.source_collection.as_str(),
        req.target_collection.as_str(),
    ];
    require_link(txn, ctx, ws, &req.rel_type, RelationshipOp::Delete, ends)?;
    let (source_id, target_id) = resolve(txn, ws, req)?;
    store::relationships::find(txn, ws, req.link(&source_id, &target_id))?.ok_or_else(|| {
        ServiceError::not_found(
            Entity::Relationship,
            format!(
                "{}:{}/{}->{}/{}",
                req.rel_type,
                req.source_collection,
                req.source_id,
                req.target_collection,
                req.target_id
            ),
            format!(
                "no '{}' relationship from {}/{} to {}/{}",
                req.rel_type,
                req.source_collection,
                req.source_id,
                req.target_collection,
                req.target_id
            ),
        )
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
        self.write_shared(caller, move |txn, ctx| {
            upsert_in(txn, ctx, &ws, req.clone())
        })
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
        let w = workspaces::load(&txn, ws)?;
        caller.authorize_token(&w, Act::Perm(None, "read:relationships"))?;
        let rel = load(&txn, ws, id)?;
        caller.authorize(&w, Act::Relationship(&rel.rel_type, RelationshipOp::List))?;
        caller.authorize(&w, Act::RelationshipEnd(&rel.source_collection, false))?;
        caller.authorize(&w, Act::RelationshipEnd(&rel.target_collection, false))?;
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
        let w = workspaces::load(&txn, ws)?;
        caller.authorize(&w, Act::RelationshipEnd(coll, false))?;
        match rel_type {
            Some(t) => caller.authorize(&w, Act::Relationship(t, RelationshipOp::List))?,
            // Every type: only outside endpoints (whose grants name types).
            None if caller.endpoint.is_some() => {
                return Err(ServiceError::Forbidden(
                    "this endpoint has no grant for listing relationships of every type; name a rel_type".into(),
                ));
            }
            None => caller.authorize(&w, Act::Perm(None, "read:relationships"))?,
        }
        // Accept an external id as well as the internal one; links of a
        // record that is gone can still be listed by its internal id.
        let rid = match records::resolve_in(&txn, ws, coll, record) {
            Ok(r) => r.id,
            Err(ServiceError::NotFound { .. }) => record.to_string(),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for side in direction.sides() {
            for id in store::relationships::of_record(&txn, ws, coll, &rid, rel_type, *side)? {
                let rel = load(&txn, ws, &id)?;
                let other = match side {
                    Side::Outgoing => &rel.target_collection,
                    Side::Incoming => &rel.source_collection,
                };
                if caller.may(&w, Act::RelationshipEnd(other, false)) {
                    out.push(rel);
                }
            }
        }
        Ok(out)
    }
}
