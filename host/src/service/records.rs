//! Records: JSON documents validated against their collection's schema.
//!
//! Upsert is idempotent on (`external_id`, `external_source`): the same key
//! twice is one record, also under concurrency, because every write goes
//! through the single writer and the key index is read in the same
//! transaction. `version` gives optimistic concurrency; archived records are
//! read-only (cancel and delete still work); delete is a soft delete.

use mcp_factory_guest::config::CollectionOp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use serde_json::{Value, json};

use super::auth::Act;
use super::collections;
use super::error::{Entity, Result, ServiceError};
use super::query::{self, Filter, Sort};
use super::triggers::{self, Change, Event};
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

/// What a record write was checked against before it was queued. Schema
/// validation runs on the blocking pool, never on the writer thread, where a
/// costly schema would hold up every tenant's writes; in its transaction the
/// job only confirms that the collection's schema (and, for a patch, the
/// record) is still what was checked, or answers [`ServiceError::Stale`] and
/// the service checks again.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    /// The schema the data passed; `None`: the collection did not exist.
    schema: Option<Arc<Value>>,
    /// For a patch: the version of the record it was applied to.
    record_version: Option<u64>,
}

impl Checked {
    /// A check that failed at an operation of a batch: the batch reports it
    /// at that index if, in the transaction, the collection is still as seen.
    pub(crate) fn refused(schema: Option<Arc<Value>>) -> Checked {
        Checked {
            schema,
            record_version: None,
        }
    }
}

/// How often a write is checked before it gives up on a collection or record
/// that keeps changing under it.
pub(crate) const CHECK_ATTEMPTS: usize = 3;

/// A collection's schema as a write will find it, compiled.
pub(crate) type Target = Option<(Arc<Value>, Arc<jsonschema::Validator>)>;

/// The collection's schema in `v`, compiled (cached per version).
pub(crate) fn target(v: &impl View, ctx: &Ctx, ws: &str, coll: &str) -> Result<Target> {
    let Some(bytes) = store::collections::get(v, ws, coll)? else {
        return Ok(None);
    };
    if ctx.inline && bytes.len() > INLINE_COLLECTION_BYTES {
        return Err(not_inline(coll));
    }
    let c: collections::Collection = decode(&bytes, "collection")?;
    if ctx.inline {
        return match ctx.schemas.cached(ws, coll, c.version, &c.schema) {
            Some((validator, schema, true)) => Ok(Some((schema, validator))),
            _ => Err(not_inline(coll)),
        };
    }
    let (validator, schema) = ctx
        .schemas
        .get_with_schema(ws, coll, c.version, &c.schema)
        .map_err(|v| {
            ServiceError::schema(
                format!("the schema of collection '{coll}' does not compile"),
                &v,
            )
        })?;
    Ok(Some((schema, validator)))
}

/// A collection whose stored form (schema included) is larger than this is
/// never checked on an async worker: decoding and comparing its schema is
/// already too much work there.
const INLINE_COLLECTION_BYTES: usize = 16 * 1024;

/// An inline check that must move to the blocking pool: the schema is not
/// compiled yet, or not [`crate::schema::cheap`], or large. The only
/// [`ServiceError::Stale`] a check (as opposed to a write) gives, and
/// [`Service::checked_write`] takes it only from an inline check.
fn not_inline(coll: &str) -> ServiceError {
    ServiceError::Stale(format!(
        "the schema of '{coll}' is checked on the blocking pool"
    ))
}

/// Whether `data` is small enough to check on an async worker: at most
/// [`LIGHT_VALUES`] JSON values and [`LIGHT_BYTES`] bytes of strings and keys
/// (the walk stops as soon as either is passed). Validating that much against
/// a compiled schema takes microseconds.
pub(crate) fn light(data: &Value) -> bool {
    fn walk(v: &Value, values: &mut usize, bytes: &mut usize) -> bool {
        let Some(left) = values.checked_sub(1) else {
            return false;
        };
        *values = left;
        match v {
            Value::String(s) => spend(bytes, s.len()),
            Value::Array(a) => a.iter().all(|v| walk(v, values, bytes)),
            Value::Object(o) => o
                .iter()
                .all(|(k, v)| spend(bytes, k.len()) && walk(v, values, bytes)),
            _ => true,
        }
    }
    fn spend(bytes: &mut usize, n: usize) -> bool {
        bytes.checked_sub(n).map(|left| *bytes = left).is_some()
    }
    let (mut values, mut bytes) = (LIGHT_VALUES, LIGHT_BYTES);
    walk(data, &mut values, &mut bytes)
}

/// See [`light`].
pub(crate) const LIGHT_VALUES: usize = 256;
/// See [`light`].
pub(crate) const LIGHT_BYTES: usize = 16 * 1024;

fn no_collection(ws: &str, coll: &str) -> ServiceError {
    ServiceError::not_found(
        Entity::Collection,
        coll,
        format!(
            "collection '{coll}' not found in workspace '{ws}'; list them with `mcp-factory collections list --workspace {ws}`"
        ),
    )
}

/// Validates `data` against `target` (outside the writer thread).
fn validate(ws: &str, coll: &str, target: &Target, data: &Value) -> Result<Arc<Value>> {
    let Some((schema, validator)) = target else {
        return Err(no_collection(ws, coll));
    };
    crate::schema::check(validator, data).map_err(|v| {
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
    })?;
    Ok(schema.clone())
}

fn stale(coll: &str) -> ServiceError {
    ServiceError::Stale(format!(
        "collection '{coll}' or the record changed while this write was waiting; send it again"
    ))
}

/// In the transaction: collection `coll` still has the schema the write was
/// checked against (no validation here: see [`Checked`]).
fn confirm(txn: &Txn, ws: &str, coll: &str, checked: &Checked) -> Result<()> {
    let now = match collections::load_in(txn, ws, coll) {
        Ok(c) => Some(c),
        Err(ServiceError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    match (now, &checked.schema) {
        (None, None) => Ok(()),
        (Some(c), Some(s)) if c.schema == **s => Ok(()),
        _ => Err(stale(coll)),
    }
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

/// The checks of an upsert that need no schema, made before it is queued
/// and again in its transaction.
fn upsert_checks(
    v: &impl View,
    caller: &Caller,
    ws: &str,
    req: &UpsertRecord,
    coll: &str,
) -> Result<workspaces::Workspace> {
    // The token must be able to write here at all; whether this is a create
    // or an update (which an endpoint grants apart) is known in the
    // transaction.
    let w = workspaces::load(v, ws)?;
    caller.authorize_token(&w, Act::Record(coll, CollectionOp::Create))?;
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
    Ok(w)
}

/// Checks an upsert before it is queued; `target` is the collection as the
/// write will find it.
pub(crate) fn check_upsert(
    v: &impl View,
    caller: &Caller,
    ws: &str,
    coll: &str,
    req: &UpsertRecord,
    target: &Target,
) -> Result<Checked> {
    upsert_checks(v, caller, ws, req, coll)?;
    Ok(Checked {
        schema: Some(validate(ws, coll, target, &req.data)?),
        record_version: None,
    })
}

/// Writes an upsert checked by [`check_upsert`]. A `checked` that refused
/// (a batch's) makes this fail with `refusal` once the checks that come
/// first have passed.
pub(crate) fn upsert_in(
    txn: &Txn,
    ctx: &Ctx,
    ws: &str,
    coll: &str,
    req: &UpsertRecord,
    checked: &Checked,
    refusal: Option<ServiceError>,
) -> Result<Record> {
    let w = upsert_checks(txn, &ctx.caller, ws, req, coll)?;
    confirm(txn, ws, coll, checked)?;
    if let Some(e) = refusal {
        return Err(e);
    }
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
                data: req.data.clone(),
                external_id: req.external_id.clone().or(old.external_id),
                external_source: req.external_source.clone().or(old.external_source),
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
            data: req.data.clone(),
            external_id: req.external_id.clone(),
            external_source: req.external_source.clone(),
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
    let kind = if record.version == 1 {
        "create_record"
    } else {
        "update_record"
    };
    let seq = oplog::append(
        txn,
        ws,
        &ctx.caller,
        kind,
        json!({"collection": coll, "id": record.id}),
    )?;
    let event = match op {
        CollectionOp::Create => Event::Create,
        _ => Event::Update,
    };
    triggers::emit(txn, &ctx.caller, ws, seq, Change::Record(event, &record))?;
    Ok(record)
}

/// The checks of a patch that need no schema, made before it is queued and
/// again in its transaction; returns the record with the patch applied.
fn patch_checks(
    v: &impl View,
    caller: &Caller,
    ws: &str,
    coll: &str,
    id: &str,
    req: &PatchRecord,
) -> Result<(Record, Value)> {
    let w = workspaces::load(v, ws)?;
    caller.authorize(&w, Act::Record(coll, CollectionOp::Update))?;
    if !req.data.is_object() {
        return Err(ServiceError::invalid(
            "'data' must be a JSON object (a JSON merge patch)",
        ));
    }
    let old = resolve_in(v, ws, coll, id)?;
    refuse_archived(&old)?;
    check_version(&old, req.version)?;
    let mut data = old.data.clone();
    json_patch::merge(&mut data, &req.data);
    Ok((old, data))
}

/// Checks a patch before it is queued, against the record in `v`.
pub(crate) fn check_patch(
    v: &impl View,
    ctx: &Ctx,
    ws: &str,
    coll: &str,
    id: &str,
    req: &PatchRecord,
) -> Result<Checked> {
    let (old, data) = patch_checks(v, &ctx.caller, ws, coll, id, req)?;
    let target = target(v, ctx, ws, coll)?;
    Ok(Checked {
        schema: Some(validate(ws, coll, &target, &data)?),
        record_version: Some(old.version),
    })
}

/// Writes a patch checked by [`check_patch`].
pub(crate) fn patch_in(
    txn: &Txn,
    ctx: &Ctx,
    ws: &str,
    coll: &str,
    id: &str,
    req: &PatchRecord,
    checked: &Checked,
) -> Result<Record> {
    let (old, data) = patch_checks(txn, &ctx.caller, ws, coll, id, req)?;
    if checked.record_version != Some(old.version) {
        return Err(stale(coll));
    }
    confirm(txn, ws, coll, checked)?;
    let record = Record {
        data,
        version: old.version + 1,
        updated_at: now(),
        ..old
    };
    write_record(txn, &record)?;
    let seq = oplog::append(
        txn,
        ws,
        &ctx.caller,
        "update_record",
        json!({"collection": coll, "id": record.id}),
    )?;
    triggers::emit(
        txn,
        &ctx.caller,
        ws,
        seq,
        Change::Record(Event::Update, &record),
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
    let seq = oplog::append(
        txn,
        ws,
        &ctx.caller,
        mark.op(),
        json!({"collection": coll, "id": record.id}),
    )?;
    let event = match mark {
        Mark::Delete => Event::Delete,
        Mark::Cancel | Mark::Archive => Event::Update,
    };
    triggers::emit(txn, &ctx.caller, ws, seq, Change::Record(event, &record))?;
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
        let (w, c) = (ws.to_string(), coll.to_string());
        let req = Arc::new(req);
        let r = req.clone();
        let light = light(&req.data);
        // The common case, without the store: light data valid against the
        // collection's cheap schema as last compiled. Only a pass is used
        // (it says nothing to a caller the write will refuse); the write's
        // transaction checks permissions and confirms the schema, else the
        // write is checked again the usual way.
        let first = light
            .then(|| self.schemas.latest_cheap(ws, coll))
            .flatten()
            .filter(|(validator, _)| validator.is_valid(&req.data))
            .map(|(_, schema)| Checked {
                schema: Some(schema),
                record_version: None,
            });
        self.checked_write(
            caller,
            light,
            first,
            move |v, ctx| {
                let target = target(v, ctx, &w, &c)?;
                check_upsert(v, &ctx.caller, &w, &c, &r, &target)
            },
            {
                let (ws, coll) = (ws.to_string(), coll.to_string());
                move |txn, ctx, checked| upsert_in(txn, ctx, &ws, &coll, &req, checked, None)
            },
        )
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
        let req = Arc::new(req);
        let (w, c, i, r) = (ws.clone(), coll.clone(), id.clone(), req.clone());
        // Not light: the check reads and merges the stored record, whose
        // size the patch does not tell.
        self.checked_write(
            caller,
            false,
            None,
            move |v, ctx| check_patch(v, ctx, &w, &c, &i, &r),
            move |txn, ctx, checked| patch_in(txn, ctx, &ws, &coll, &id, &req, checked),
        )
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

    #[test]
    fn light_data_is_small_in_values_and_in_bytes() {
        assert!(light(
            &json!({"title": "deal", "value": 1.5, "tags": ["a", "b"]})
        ));
        let values: Vec<Value> = (0..LIGHT_VALUES).map(|i| json!(i)).collect();
        assert!(!light(&json!(values)), "one array value over the count");
        assert!(light(&json!(values[1..].to_vec())));
        assert!(
            !light(&json!({"s": "x".repeat(LIGHT_BYTES)})),
            "key + string over"
        );
        assert!(light(&json!({"s": "x".repeat(LIGHT_BYTES - 1)})));
        let key = "k".repeat(LIGHT_BYTES + 1);
        assert!(!light(&json!({key: 1})), "keys count as bytes");
    }

    /// A write checked before it was queued is refused as stale when the
    /// collection's schema or the record changed before its transaction, and
    /// the service then checks it again against what is there now.
    #[tokio::test]
    async fn a_write_checked_against_an_old_schema_or_record_is_checked_again() {
        use crate::service::collections::UpsertCollection;
        use crate::service::workspaces::{CreatePreview, CreateWorkspace};
        use crate::store::{Store, WriteMode};

        let dir = tempfile::tempdir().expect("tempdir");
        let svc = Service::new(Store::open(dir.path()).expect("store")).expect("service");
        let sys = Caller::system();
        let ws = CreateWorkspace {
            id: "w".into(),
            name: None,
            description: None,
        };
        svc.create_workspace(&sys, ws).await.expect("ws");
        let dev = CreatePreview {
            name: "dev".into(),
            description: None,
        };
        svc.create_preview(&sys, "w", dev).await.expect("preview");
        let schema = |s: Value| UpsertCollection {
            name: None,
            description: None,
            schema: s,
        };
        svc.upsert_collection(&sys, "w--dev", "items", schema(json!({"type": "object"})))
            .await
            .expect("collection");
        let ctx = svc.ctx(&sys);
        let req = UpsertRecord {
            data: json!({"n": "text"}),
            ..Default::default()
        };
        let snap = svc.store().read().expect("snapshot");
        let t = target(&snap, &ctx, "w--dev", "items").expect("target");
        let checked = check_upsert(&snap, &sys, "w--dev", "items", &req, &t).expect("valid now");
        drop(snap);

        let strict = json!({"type": "object", "properties": {"n": {"type": "number"}}});
        svc.upsert_collection(&sys, "w--dev", "items", schema(strict))
            .await
            .expect("schema change");
        let (c, r) = (ctx.clone(), req.clone());
        let out = svc
            .store()
            .write(WriteMode::Shared, move |txn| {
                upsert_in(txn, &c, "w--dev", "items", &r, &checked, None)
            })
            .await;
        assert!(matches!(out, Err(ServiceError::Stale(_))), "{out:?}");
        let err = svc
            .upsert_record(&sys, "w--dev", "items", req)
            .await
            .expect_err("checked again, against the new schema");
        assert!(
            err.to_string().contains("does not match the schema"),
            "{err}"
        );

        // A patch checked against one version of the record.
        let rec = svc
            .upsert_record(
                &sys,
                "w--dev",
                "items",
                UpsertRecord {
                    data: json!({"n": 1}),
                    ..Default::default()
                },
            )
            .await
            .expect("record");
        let patch = PatchRecord {
            data: json!({"m": 1}),
            version: None,
        };
        let snap = svc.store().read().expect("snapshot");
        let checked = check_patch(&snap, &ctx, "w--dev", "items", &rec.id, &patch).expect("valid");
        drop(snap);
        let other = PatchRecord {
            data: json!({"n": 2}),
            version: None,
        };
        svc.patch_record(&sys, "w--dev", "items", &rec.id, other)
            .await
            .expect("a patch in between");
        let (c, p, id) = (ctx.clone(), patch.clone(), rec.id.clone());
        let out = svc
            .store()
            .write(WriteMode::Shared, move |txn| {
                patch_in(txn, &c, "w--dev", "items", &id, &p, &checked)
            })
            .await;
        assert!(matches!(out, Err(ServiceError::Stale(_))), "{out:?}");
        let now = svc
            .patch_record(&sys, "w--dev", "items", &rec.id, patch)
            .await
            .expect("checked again");
        assert_eq!(now.data, json!({"n": 2, "m": 1}));
        assert_eq!(now.version, 3);
    }
}
