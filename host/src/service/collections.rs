//! Collections: a name, a display name, a description and a JSON Schema that
//! every record of the collection is validated against. The schema is checked
//! against its meta-schema on write and compiled once (see [`crate::schema`]).
//! Collections are config: they change only in previews.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{Entity, Result, ServiceError};
use super::workspaces::{self, Workspace};
use super::{Caller, Ctx, Service, decode, encode, now, oplog, relationships};
use crate::schema;
use crate::store::{self, Snapshot, Txn, View};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Collection {
    /// The collection's identifier (`invoices`).
    pub id: String,
    /// Display name (`Invoices`).
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub schema: Value,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl Collection {
    /// Same user-visible config (ignores version and timestamps).
    pub fn same_config(&self, other: &Collection) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.schema == other.schema
    }
}

/// Body of an upsert.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertCollection {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub schema: Value,
}

pub(crate) fn list_in(v: &impl View, ws: &str) -> Result<Vec<Collection>> {
    store::collections::list(v, ws)?
        .iter()
        .map(|b| decode(b, "collection"))
        .collect()
}

pub(crate) fn load_in(v: &impl View, ws: &str, id: &str) -> Result<Collection> {
    match store::collections::get(v, ws, id)? {
        Some(bytes) => decode(&bytes, "collection"),
        None => Err(ServiceError::not_found(
            Entity::Collection,
            id,
            format!(
                "collection '{id}' not found in workspace '{ws}'; list them with `mcp-factory collections list --workspace {ws}`"
            ),
        )),
    }
}

/// The checks of a collection upsert that come before its schema's.
fn upsert_checks(v: &impl View, caller: &Caller, ws_id: &str, id: &str) -> Result<()> {
    super::check_ident("collection name", id, 64)?;
    let ws = workspaces::load_for(v, caller, ws_id, Some(id), "write:collections")?;
    workspaces::require_preview(&ws, "collections")
}

/// Compiles a collection's schema: before the write is queued, since a
/// costly schema must not hold up the writer thread.
pub(crate) fn compile_schema(id: &str, schema: &Value) -> Result<jsonschema::Validator> {
    schema::compile(schema).map_err(|v| {
        ServiceError::schema(
            format!("the schema of collection '{id}' is not a valid JSON Schema"),
            &v,
        )
    })
}

/// [`compile_schema`], for its verdict only.
pub(crate) fn check_schema(id: &str, schema: &Value) -> Result<()> {
    compile_schema(id, schema).map(|_| ())
}

/// Writes a collection; `compiled` is [`check_schema`]'s verdict on
/// `req.schema`, reported after the checks that come first.
pub(crate) fn upsert_in(
    txn: &Txn,
    ctx: &Ctx,
    ws_id: &str,
    id: &str,
    req: UpsertCollection,
    compiled: Result<()>,
) -> Result<Collection> {
    upsert_checks(txn, &ctx.caller, ws_id, id)?;
    compiled?;
    let old = match load_in(txn, ws_id, id) {
        Ok(c) => Some(c),
        Err(ServiceError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let stamp = now();
    let next = Collection {
        id: id.to_string(),
        name: req
            .name
            .or_else(|| old.as_ref().map(|o| o.name.clone()))
            .unwrap_or_else(|| id.to_string()),
        description: req
            .description
            .or_else(|| old.as_ref().and_then(|o| o.description.clone())),
        schema: req.schema,
        version: 1,
        created_at: stamp.clone(),
        updated_at: stamp,
    };
    let next = match old {
        Some(o) if o.same_config(&next) => return Ok(o),
        Some(o) => Collection {
            version: o.version + 1,
            created_at: o.created_at,
            ..next
        },
        None => next,
    };
    // The endpoints that embed this schema in their tools must still work.
    for e in super::endpoints::list_in(txn, ws_id)? {
        let mut schemas = super::endpoints::schemas_of(txn, ws_id, &e.config)?;
        if !schemas.contains_key(id) {
            continue;
        }
        schemas.insert(id.to_string(), next.schema.clone());
        super::endpoints::check_tool_schemas(&e.config, &schemas).map_err(|err| {
            ServiceError::invalid(format!(
                "collection '{id}' is used by endpoint '{}', which this schema would break: {err}",
                e.slug
            ))
        })?;
    }
    store::collections::put(txn, ws_id, id, &encode(&next)?)?;
    oplog::append(
        txn,
        ws_id,
        &ctx.caller,
        "upsert_collection",
        json!({"collection": id, "version": next.version}),
    )?;
    Ok(next)
}

pub(crate) fn delete_in(
    txn: &Txn,
    ctx: &Ctx,
    ws_id: &str,
    id: &str,
    force: bool,
) -> Result<Collection> {
    let ws = workspaces::load_for(txn, &ctx.caller, ws_id, Some(id), "write:collections")?;
    workspaces::require_preview(&ws, "collections")?;
    let coll = load_in(txn, ws_id, id)?;
    if let Some(h) = super::hooks::list_in(txn, ws_id)?
        .into_iter()
        .find(|h| h.collection == id)
    {
        return Err(ServiceError::conflict(format!(
            "hook '{}' writes to collection '{id}'; delete it first (`mcp-factory hooks delete {} --workspace {ws_id}`)",
            h.id, h.id
        )));
    }
    if let Some(t) = super::triggers::list_in(txn, ws_id)?
        .into_iter()
        .find(|t| t.collection.as_deref() == Some(id))
    {
        return Err(ServiceError::conflict(format!(
            "trigger '{}' watches collection '{id}'; delete it first (`mcp-factory triggers delete {} --workspace {ws_id}`)",
            t.id, t.id
        )));
    }
    if store::records::any(txn, ws_id, id)? {
        if !force {
            return Err(ServiceError::conflict(format!(
                "collection '{id}' still holds records; delete them first or pass --force (force=true) to delete the records too"
            )));
        }
        delete_collection_rows(txn, ws_id, id)?;
    }
    store::collections::remove(txn, ws_id, id)?;
    oplog::append(
        txn,
        ws_id,
        &ctx.caller,
        "delete_collection",
        json!({"collection": id, "force": force}),
    )?;
    Ok(coll)
}

/// Removes a collection's records, their external keys and every
/// relationship that touches them.
fn delete_collection_rows(txn: &Txn, ws: &str, coll: &str) -> Result<()> {
    store::records::delete_collection(txn, ws, coll)?;
    for id in store::relationships::of_collection(txn, ws, coll)? {
        let rel = relationships::load(txn, ws, &id)?;
        relationships::remove_rows(txn, &rel)?;
    }
    Ok(())
}

impl Service {
    pub async fn upsert_collection(
        &self,
        caller: &Caller,
        ws: &str,
        id: &str,
        req: UpsertCollection,
    ) -> Result<Collection> {
        let (w, c) = (ws.to_string(), id.to_string());
        let req = std::sync::Arc::new(req);
        let r = req.clone();
        let out = self
            .checked_write(
                caller,
                false,
                None,
                move |v, ctx| {
                    upsert_checks(v, &ctx.caller, &w, &c)?;
                    check_schema(&c, &r.schema)
                },
                {
                    let (w, c) = (ws.to_string(), id.to_string());
                    move |txn, ctx, _| upsert_in(txn, ctx, &w, &c, (*req).clone(), Ok(()))
                },
            )
            .await?;
        // Its schema is in the tools of endpoints that use it.
        self.announce_users_of(ws, id);
        Ok(out)
    }

    pub async fn delete_collection(
        &self,
        caller: &Caller,
        ws: &str,
        id: &str,
        force: bool,
    ) -> Result<Collection> {
        let (ws, id) = (ws.to_string(), id.to_string());
        self.write_exclusive(caller, move |txn, ctx| delete_in(txn, ctx, &ws, &id, force))
            .await
    }

    /// Loads the workspace from a read snapshot and checks a permission.
    pub(crate) fn read_workspace(
        &self,
        txn: &Snapshot,
        caller: &Caller,
        ws: &str,
        collection: Option<&str>,
        perm: &str,
    ) -> Result<Workspace> {
        let ws = workspaces::load(txn, ws)?;
        caller.require(&ws, collection, perm)?;
        Ok(ws)
    }

    pub fn get_collection(&self, caller: &Caller, ws: &str, id: &str) -> Result<Collection> {
        let txn = self.store.read()?;
        self.read_workspace(&txn, caller, ws, Some(id), "read:collections")?;
        load_in(&txn, ws, id)
    }

    /// The collections of `ws` the caller may read.
    pub fn list_collections(&self, caller: &Caller, ws_id: &str) -> Result<Vec<Collection>> {
        let txn = self.store.read()?;
        let ws = self.read_workspace(&txn, caller, ws_id, None, "read:collections")?;
        Ok(list_in(&txn, ws_id)?
            .into_iter()
            .filter(|c| caller.can(&ws, Some(&c.id), "read:collections"))
            .collect())
    }
}
