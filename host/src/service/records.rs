//! Records: JSON documents validated against their collection's schema.
//!
//! Upsert is idempotent on (`external_id`, `external_source`): the same key
//! twice is one record, also under concurrency, because every write goes
//! through the single writer and the key index is read in the same
//! transaction. `version` gives optimistic concurrency; archived records are
//! read-only (cancel and delete still work); delete is a soft delete.

use mcp_factory_guest::config::CollectionOp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::Act;
use super::collections;
use super::error::{Entity, Result, ServiceError};
use super::query::{self, Filter, Sort};
use super::{Caller, Ctx, Page, Service, decode, encode, now, oplog, workspaces};
use crate::store::{self, Txn, View};

#[derive(Debug, Clone, Serialize, Deserialize)]
/// A record as stored and returned. Two fields have fixed places because SQL
/// reads them from the stored bytes without decoding the rest
/// (`sql::vtab`): `deleted` first and `data` last. A test below keeps it so.
pub struct Record {
    pub deleted: bool,
    pub id: String,
    pub workspace_id: String,
    pub collection: String,
    pub external_id: Option<String>,
    pub external_source: Option<String>,
    pub version: u64,
    pub archived: bool,
    pub cancelled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub data: Value,
}

/// Body of an upsert (`PUT /v1/{ws}/records/{collection}`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertRecord {
    pub data: Value,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub external_source: Option<String>,
    /// Expected current version; a mismatch is a 409.
    #[serde(default)]
    pub version: Option<u64>,
}

/// Body of a partial update: `data` is a JSON merge patch (RFC 7386).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchRecord {
    pub data: Value,
    #[serde(default)]
    pub version: Option<u64>,
}

/// A query (`POST /v1/{ws}/records/{collection}/query`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    #[serde(default)]
    pub filter: Option<Value>,
    #[serde(default)]
    pub sort: Option<Value>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub include_deleted: bool,
}

/// A status change that leaves `data` alone.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    Delete,
    Cancel,
    Archive,
}

impl Mark {
    /// The endpoint operation that allows this change.
    fn grant(self) -> CollectionOp {
        match self {
            Mark::Delete => CollectionOp::Delete,
            Mark::Cancel | Mark::Archive => CollectionOp::Update,
        }
    }

    fn op(self) -> &'static str {
        match self {
            Mark::Delete => "delete_record",
            Mark::Cancel => "cancel_record",
            Mark::Archive => "archive_record",
        }
    }
}

fn not_found(ws: &str, coll: &str, id: &str) -> ServiceError {
    ServiceError::not_found(
        Entity::Record,
        id,
        format!("record '{id}' not found in collection '{coll}' of workspace '{ws}'"),
    )
}

pub(crate) fn load_in(v: &impl View, ws: &str, coll: &str, id: &str) -> Result<Option<Record>> {
    store::records::get(v, ws, coll, id)?
        .map(|b| decode(&b, "record"))
        .transpose()
}

/// The stored JSON of the live record named `id`: its internal id or, failing
/// that, its external id (from any source; an ambiguous one is refused).
pub(crate) fn find_bytes(v: &impl View, ws: &str, coll: &str, id: &str) -> Result<Vec<u8>> {
    let live = |rid: &str| -> Result<Option<Vec<u8>>> {
        let Some(bytes) = store::records::get(v, ws, coll, rid)? else {
            return Ok(None);
        };
        // Reads the soft-delete flag without decoding the whole record.
        let flag: DeletedFlag = decode(&bytes, "record")?;
        Ok((!flag.deleted).then_some(bytes))
    };
    if let Some(bytes) = live(id)? {
        return Ok(bytes);
    }
    match store::records::external_any(v, ws, coll, id)?.as_slice() {
        [one] => live(one)?.ok_or_else(|| not_found(ws, coll, id)),
        [] => Err(not_found(ws, coll, id)),
        _ => Err(ServiceError::invalid(format!(
            "external id '{id}' in '{coll}' comes from several sources; use the record's internal id"
        ))),
    }
}

/// [`find_bytes`], decoded.
pub(crate) fn resolve_in(v: &impl View, ws: &str, coll: &str, id: &str) -> Result<Record> {
    decode(&find_bytes(v, ws, coll, id)?, "record")
}

fn validate_data(txn: &Txn, ctx: &Ctx, ws: &str, coll: &str, data: &Value) -> Result<()> {
    let c = collections::load_in(txn, ws, coll)?;
    let validator = ctx
        .schemas
        .get(ws, coll, c.version, &c.schema)
        .map_err(|v| {
            ServiceError::schema(
                format!("the schema of collection '{coll}' does not compile"),
                &v,
            )
        })?;
    crate::schema::check(&validator, data).map_err(|v| {
        let first = &v[0];
        let at = if first.path.is_empty() {
            "the record".to_string()
        } else {
            format!("'{}'", first.path)
        };
        ServiceError::schema(
            format!(
                "data does not match the schema of '{coll}': {at} fails '{}': {}",
                first.rule, first.message
            ),
            &v,
        )
    })
}

fn check_version(r: &Record, expected: Option<u64>) -> Result<()> {
    match expected {
        Some(v) if v != r.version => Err(ServiceError::Conflict {
            message: format!(
                "version conflict on record '{}': you sent version {v}, the current version is {}; re-read it and retry",
                r.id, r.version
            ),
            details: json!({"current_version": r.version, "expected_version": v}),
        }),
        _ => Ok(()),
    }
}

fn refuse_archived(r: &Record) -> Result<()> {
    if r.archived {
        return Err(ServiceError::conflict(format!(
            "record '{}' is archived and read-only; it can still be cancelled or deleted",
            r.id
        )));
    }
    Ok(())
}

fn write_record(txn: &Txn, r: &Record) -> Result<()> {
    store::records::put(txn, &r.workspace_id, &r.collection, &r.id, &encode(r)?)?;
    Ok(())
}

pub(crate) fn upsert_in(
    txn: &Txn,
    ctx: &Ctx,
    ws: &str,
    coll: &str,
    req: UpsertRecord,
) -> Result<Record> {
    // The token must be able to write here at all; whether this is a create
    // or an update (which an endpoint grants apart) is known below.
    let w = workspaces::load(txn, ws)?;
    ctx.caller
        .authorize_token(&w, Act::Record(coll, CollectionOp::Create))?;
    if !req.data.is_object() {
        return Err(ServiceError::invalid("'data' must be a JSON object"));
    }
    if req.external_source.is_some() && req.external_id.is_none() {
        return Err(ServiceError::invalid(
            "'external_source' needs an 'external_id'",
        ));
    }
    if req.external_id.as_deref() == Some("") {
        return Err(ServiceError::invalid("'external_id' cannot be empty"));
    }
    validate_data(txn, ctx, ws, coll, &req.data)?;
    let by_id = match &req.id {
        Some(id) => Some(load_in(txn, ws, coll, id)?.ok_or_else(|| not_found(ws, coll, id))?),
        None => None,
    };
    // The source the record will have: the request's, or the one it keeps.
    // The uniqueness check must look up exactly the key that is written.
    let source = req
        .external_source
        .clone()
        .or_else(|| by_id.as_ref().and_then(|r| r.external_source.clone()))
        .unwrap_or_default();
    let by_external: Option<String> = match &req.external_id {
        Some(ext) => store::records::external(txn, ws, coll, ext, &source)?,
        None => None,
    };
    let existing = match (by_id, &by_external) {
        (Some(r), Some(other)) if r.id != *other => {
            return Err(ServiceError::conflict(format!(
                "external id '{}' (source '{source}') already belongs to record '{other}', not '{}'",
                req.external_id.as_deref().unwrap_or_default(),
                r.id
            )));
        }
        (Some(r), _) => Some(r),
        (None, Some(id)) => load_in(txn, ws, coll, id)?,
        (None, None) => None,
    };
    // Bringing back a deleted record is a create, not an update.
    let op = if existing.as_ref().is_some_and(|r| !r.deleted) {
        CollectionOp::Update
    } else {
        CollectionOp::Create
    };
    ctx.caller.authorize(&w, Act::Record(coll, op))?;
    let stamp = now();
    let record = match existing {
        Some(old) => {
            refuse_archived(&old)?;
            check_version(&old, req.version)?;
            if let (Some(ext), Some(old_ext)) = (&req.external_id, &old.external_id)
                && (ext != old_ext || req.external_source != old.external_source)
            {
                let old_source = old.external_source.clone().unwrap_or_default();
                store::records::external_remove(txn, ws, coll, old_ext, &old_source)?;
            }
            Record {
                data: req.data,
                external_id: req.external_id.or(old.external_id),
                external_source: req.external_source.or(old.external_source),
                version: old.version + 1,
                deleted: false,
                updated_at: stamp,
                ..old
            }
        }
        None => Record {
            id: uuid::Uuid::now_v7().to_string(),
            workspace_id: ws.to_string(),
            collection: coll.to_string(),
            data: req.data,
            external_id: req.external_id,
            external_source: req.external_source,
            version: 1,
            archived: false,
            cancelled: false,
            deleted: false,
            created_at: stamp.clone(),
            updated_at: stamp,
        },
    };
    if let Some(ext) = &record.external_id {
        let source = record.external_source.clone().unwrap_or_default();
        store::records::external_put(txn, ws, coll, ext, &source, &record.id)?;
    }
    write_record(txn, &record)?;
    let op = if record.version == 1 {
        "create_record"
    } else {
        "update_record"
    };
    oplog::append(
        txn,
        ws,
        &ctx.caller,
        op,
        json!({"collection": coll, "id": record.id}),
    )?;
    Ok(record)
}

pub(crate) fn patch_in(
    txn: &Txn,
    ctx: &Ctx,
    ws: &str,
    coll: &str,
    id: &str,
    req: PatchRecord,
) -> Result<Record> {
    let w = workspaces::load(txn, ws)?;
    ctx.caller
        .authorize(&w, Act::Record(coll, CollectionOp::Update))?;
    if !req.data.is_object() {
        return Err(ServiceError::invalid(
            "'data' must be a JSON object (a JSON merge patch)",
        ));
    }
    let old = resolve_in(txn, ws, coll, id)?;
    refuse_archived(&old)?;
    check_version(&old, req.version)?;
    let mut data = old.data.clone();
    json_patch::merge(&mut data, &req.data);
    validate_data(txn, ctx, ws, coll, &data)?;
    let record = Record {
        data,
        version: old.version + 1,
        updated_at: now(),
        ..old
    };
    write_record(txn, &record)?;
    oplog::append(
        txn,
        ws,
        &ctx.caller,
        "update_record",
        json!({"collection": coll, "id": record.id}),
    )?;
    Ok(record)
}

pub(crate) fn mark_in(
    txn: &Txn,
    ctx: &Ctx,
    ws: &str,
    coll: &str,
    id: &str,
    mark: Mark,
) -> Result<Record> {
    let w = workspaces::load(txn, ws)?;
    ctx.caller.authorize(&w, Act::Record(coll, mark.grant()))?;
    let old = resolve_in(txn, ws, coll, id)?;
    let mut record = Record {
        version: old.version + 1,
        updated_at: now(),
        ..old
    };
    match mark {
        Mark::Delete => record.deleted = true,
        Mark::Cancel => record.cancelled = true,
        Mark::Archive => record.archived = true,
    }
    write_record(txn, &record)?;
    oplog::append(
        txn,
        ws,
        &ctx.caller,
        mark.op(),
        json!({"collection": coll, "id": record.id}),
    )?;
    Ok(record)
}

impl Service {
    pub async fn upsert_record(
        &self,
        caller: &Caller,
        ws: &str,
        coll: &str,
        req: UpsertRecord,
    ) -> Result<Record> {
        let (ws, coll) = (ws.to_string(), coll.to_string());
        self.write_shared(caller, move |txn, ctx| upsert_in(txn, ctx, &ws, &coll, req))
            .await
    }

    pub async fn patch_record(
        &self,
        caller: &Caller,
        ws: &str,
        coll: &str,
        id: &str,
        req: PatchRecord,
    ) -> Result<Record> {
        let (ws, coll, id) = (ws.to_string(), coll.to_string(), id.to_string());
        self.write_shared(caller, move |txn, ctx| {
            patch_in(txn, ctx, &ws, &coll, &id, req)
        })
        .await
    }

    pub async fn mark_record(
        &self,
        caller: &Caller,
        ws: &str,
        coll: &str,
        id: &str,
        mark: Mark,
    ) -> Result<Record> {
        let (ws, coll, id) = (ws.to_string(), coll.to_string(), id.to_string());
        self.write_shared(caller, move |txn, ctx| {
            mark_in(txn, ctx, &ws, &coll, &id, mark)
        })
        .await
    }

    /// The stored JSON of a live record, as bytes (not re-serialised).
    pub fn get_record_json(
        &self,
        caller: &Caller,
        ws: &str,
        coll: &str,
        id: &str,
    ) -> Result<Vec<u8>> {
        let txn = self.store.read()?;
        let w = workspaces::load(&txn, ws)?;
        caller.authorize(&w, Act::Record(coll, CollectionOp::Get))?;
        match find_bytes(&txn, ws, coll, id) {
            // Say so when it is the collection that does not exist.
            Err(e @ ServiceError::NotFound { .. }) => {
                collections::load_in(&txn, ws, coll)?;
                Err(e)
            }
            other => other,
        }
    }

    pub fn get_record(&self, caller: &Caller, ws: &str, coll: &str, id: &str) -> Result<Record> {
        decode(&self.get_record_json(caller, ws, coll, id)?, "record")
    }

    /// Filters, sorts and pages a collection's records (see [`query::run`]
    /// for what it reads), on a blocking thread: a query that must scan a
    /// large collection never holds an async worker.
    pub async fn query_records(
        &self,
        caller: &Caller,
        ws: &str,
        coll: &str,
        q: &Query,
    ) -> Result<Page<Value>> {
        let (limit, offset) = super::page(q.limit, q.offset)?;
        let filter = q
            .filter
            .as_ref()
            .filter(|f| !f.is_null())
            .map(Filter::parse)
            .transpose()?;
        let sorts = q
            .sort
            .as_ref()
            .map(Sort::parse)
            .transpose()?
            .unwrap_or_default();
        let plan = query::Plan {
            filter,
            sorts,
            include_deleted: q.include_deleted,
            limit,
            offset,
        };
        let (this, caller, ws, coll) = (
            self.clone(),
            caller.clone(),
            ws.to_string(),
            coll.to_string(),
        );
        self.blocking(move || {
            let txn = this.store.read()?;
            let w = workspaces::load(&txn, &ws)?;
            caller.authorize(&w, Act::Record(&coll, CollectionOp::List))?;
            collections::load_in(&txn, &ws, &coll)?;
            query::run(&txn, &ws, &coll, &plan)
        })
        .await
    }
}

#[derive(Deserialize)]
struct DeletedFlag {
    deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_is_serialized_first_and_data_last() {
        let r = Record {
            id: "r".into(),
            workspace_id: "w".into(),
            collection: "c".into(),
            external_id: Some(r#"tricky ,"data": {"#.into()),
            external_source: None,
            version: 1,
            archived: false,
            cancelled: false,
            deleted: false,
            created_at: "t".into(),
            updated_at: "t".into(),
            data: serde_json::json!({"a": [1, {"b": "}"}]}),
        };
        let bytes = encode(&r).expect("encodes");
        let text = String::from_utf8(bytes).expect("utf8");
        assert!(text.starts_with(r#"{"deleted":false,"#), "{text}");
        assert!(text.ends_with(r#","data":{"a":[1,{"b":"}"}]}}"#), "{text}");
        // A quote inside a string is always escaped, so the first `,"data":`
        // is the key itself.
        assert_eq!(text.find(r#","data":"#), text.rfind(r#","data":"#));
    }
}
