//! Atomic batches: up to 1,000 record, relationship and collection operations
//! in one transaction. Every operation is checked (a failing one does not stop
//! the checks of the others, so the error lists every failing index and why);
//! if any fails, the transaction is aborted and nothing is written.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Act;
use super::collections::{self, UpsertCollection};
use super::error::{Result, ServiceError};
use super::records::{self, Checked, Mark, Target, UpsertRecord};
use super::relationships::{self, UpsertRelationship};
use super::{Caller, Ctx, Service};
use crate::store::{Snapshot, Txn};

/// Most operations in one batch.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    UpsertRecord {
        collection: String,
        data: Value,
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        external_id: Option<String>,
        #[serde(default)]
        external_source: Option<String>,
        #[serde(default)]
        version: Option<u64>,
    },
    DeleteRecord {
        collection: String,
        id: String,
    },
    UpsertRelationship(UpsertRelationship),
    DeleteRelationship {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        rel_type: Option<String>,
        #[serde(default)]
        source_collection: Option<String>,
        #[serde(default)]
        source_id: Option<String>,
        #[serde(default)]
        target_collection: Option<String>,
        #[serde(default)]
        target_id: Option<String>,
    },
    UpsertCollection {
        collection: String,
        schema: Value,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
    DeleteCollection {
        collection: String,
        #[serde(default)]
        force: bool,
    },
}

impl Operation {
    fn kind(&self) -> &'static str {
        match self {
            Operation::UpsertRecord { .. } => "upsert_record",
            Operation::DeleteRecord { .. } => "delete_record",
            Operation::UpsertRelationship(_) => "upsert_relationship",
            Operation::DeleteRelationship { .. } => "delete_relationship",
            Operation::UpsertCollection { .. } => "upsert_collection",
            Operation::DeleteCollection { .. } => "delete_collection",
        }
    }

    fn run(self, txn: &Txn, ctx: &Ctx, ws: &str, prepared: Prepared) -> Result<Value> {
        let v = match self {
            Operation::UpsertRecord {
                collection,
                data,
                id,
                external_id,
                external_source,
                version,
            } => {
                let req = UpsertRecord {
                    data,
                    id,
                    external_id,
                    external_source,
                    version,
                };
                let Prepared::Record(checked, refusal) = prepared else {
                    return Err(unprepared());
                };
                to_value(records::upsert_in(
                    txn,
                    ctx,
                    ws,
                    &collection,
                    &req,
                    &checked,
                    refusal,
                )?)
            }
            Operation::DeleteRecord { collection, id } => to_value(records::mark_in(
                txn,
                ctx,
                ws,
                &collection,
                &id,
                Mark::Delete,
            )?),
            Operation::UpsertRelationship(req) => {
                to_value(relationships::upsert_in(txn, ctx, ws, req)?)
            }
            Operation::DeleteRelationship { id: Some(id), .. } => {
                to_value(relationships::delete_in(txn, ctx, ws, &id)?)
            }
            Operation::DeleteRelationship {
                id: None,
                rel_type: Some(rel_type),
                source_collection: Some(source_collection),
                source_id: Some(source_id),
                target_collection: Some(target_collection),
                target_id: Some(target_id),
            } => {
                let req = UpsertRelationship {
                    rel_type,
                    source_collection,
                    source_id,
                    target_collection,
                    target_id,
                    metadata: None,
                };
                let id = relationships::find_in(txn, ctx, ws, &req)?;
                to_value(relationships::delete_in(txn, ctx, ws, &id)?)
            }
            Operation::DeleteRelationship { .. } => {
                return Err(ServiceError::invalid(
                    "delete_relationship needs 'id', or 'rel_type' with source_collection/source_id/target_collection/target_id",
                ));
            }
            Operation::UpsertCollection {
                collection,
                schema,
                name,
                description,
            } => {
                let Prepared::Collection(compiled) = prepared else {
                    return Err(unprepared());
                };
                to_value(collections::upsert_in(
                    txn,
                    ctx,
                    ws,
                    &collection,
                    UpsertCollection {
                        name,
                        description,
                        schema,
                    },
                    compiled,
                )?)
            }
            Operation::DeleteCollection { collection, force } => {
                to_value(collections::delete_in(txn, ctx, ws, &collection, force)?)
            }
        };
        Ok(v)
    }
}

/// What the checks before queueing found for one operation (see
/// [`prepare`]).
enum Prepared {
    /// Nothing to check outside the transaction.
    Nothing,
    /// A record upsert: what its data was checked against, and the check's
    /// refusal, reported at its index unless the collection changed.
    Record(Checked, Option<ServiceError>),
    /// A collection upsert: whether its schema compiles.
    Collection(Result<()>),
}

fn unprepared() -> ServiceError {
    ServiceError::Internal("a batch operation ran without its checks".into())
}

/// The costly checks of a batch, made on the blocking pool before it is
/// queued: schemas compiled and record data validated, each against the
/// collection as the batch will find it at that operation (its own
/// collection upserts and deletes included).
fn prepare(v: &Snapshot, ctx: &Ctx, ws: &str, ops: &[Operation]) -> Result<Vec<Prepared>> {
    let mut seen: HashMap<&str, Target> = HashMap::new();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(match op {
            Operation::UpsertRecord {
                collection,
                data,
                id,
                external_id,
                external_source,
                version,
            } => {
                let target = match seen.get(collection.as_str()) {
                    Some(t) => t.clone(),
                    None => {
                        let t = records::target(v, ctx, ws, collection)?;
                        seen.insert(collection, t.clone());
                        t
                    }
                };
                let req = UpsertRecord {
                    data: data.clone(),
                    id: id.clone(),
                    external_id: external_id.clone(),
                    external_source: external_source.clone(),
                    version: *version,
                };
                match records::check_upsert(v, &ctx.caller, ws, collection, &req, &target) {
                    Ok(checked) => Prepared::Record(checked, None),
                    Err(e) => Prepared::Record(Checked::refused(target.map(|t| t.0)), Some(e)),
                }
            }
            Operation::UpsertCollection {
                collection, schema, ..
            } => match collections::compile_schema(collection, schema) {
                Ok(validator) => {
                    let t = Some((Arc::new(schema.clone()), Arc::new(validator)));
                    seen.insert(collection, t);
                    Prepared::Collection(Ok(()))
                }
                Err(e) => Prepared::Collection(Err(e)),
            },
            Operation::DeleteCollection { collection, .. } => {
                seen.insert(collection, None);
                Prepared::Nothing
            }
            _ => Prepared::Nothing,
        });
    }
    Ok(out)
}

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Parses raw operations, reporting every malformed one by index.
pub fn parse(raw: &[Value]) -> Result<Vec<Operation>> {
    if raw.is_empty() {
        return Err(ServiceError::invalid(
            "a batch needs at least one operation",
        ));
    }
    if raw.len() > MAX_OPERATIONS {
        return Err(ServiceError::Validation {
            message: format!(
                "a batch holds at most {MAX_OPERATIONS} operations; got {}. Split it into several batches",
                raw.len()
            ),
            details: json!({"max_operations": MAX_OPERATIONS, "operations": raw.len()}),
        });
    }
    let mut ops = Vec::with_capacity(raw.len());
    let mut failed = Vec::new();
    for (index, v) in raw.iter().enumerate() {
        match serde_json::from_value::<Operation>(v.clone()) {
            Ok(op) => ops.push(op),
            Err(e) => failed.push(json!({
                "index": index,
                "type": v.get("type").cloned().unwrap_or(Value::Null),
                "code": "VALIDATION_ERROR",
                "message": format!("malformed operation: {e}"),
            })),
        }
    }
    if failed.is_empty() {
        Ok(ops)
    } else {
        Err(batch_error(failed, raw.len()))
    }
}

fn batch_error(failed: Vec<Value>, total: usize) -> ServiceError {
    let first = failed
        .first()
        .map(|f| {
            format!(
                "operation {}: {}",
                f["index"],
                f["message"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default();
    ServiceError::Validation {
        message: format!(
            "batch rejected, nothing was written: {} of {total} operations failed (first: {first})",
            failed.len()
        ),
        details: json!({ "failed": failed }),
    }
}

/// Work a caller of [`Service::run_operations`] adds to the batch's own
/// transaction: `before` may answer instead of running the operations (it
/// runs before any write), `after` writes beside them.
pub(crate) struct Around {
    pub before: Before,
    pub after: After,
}

/// [`Around::before`]: an answer instead of running, or `None` to run.
pub(crate) type Before = Box<dyn Fn(&Txn) -> Result<Option<Value>> + Send + Sync>;
/// [`Around::after`]: writes beside the operations, given their results.
pub(crate) type After = Box<dyn Fn(&Txn, &Value) -> Result<()> + Send + Sync>;

impl Service {
    /// Runs `raw` atomically in `ws`; returns one result per operation.
    pub async fn batch(&self, caller: &Caller, ws: &str, raw: Vec<Value>) -> Result<Value> {
        let ops = parse(&raw)?;
        {
            let txn = self.store.read()?;
            caller.authorize(&super::workspaces::load(&txn, ws)?, Act::Batch)?;
        }
        // Collections whose schema a batch changes: their endpoints' tools change.
        let touched: Vec<String> = ops
            .iter()
            .filter_map(|op| match op {
                Operation::UpsertCollection { collection, .. }
                | Operation::DeleteCollection { collection, .. } => Some(collection.clone()),
                _ => None,
            })
            .collect();
        let caller = Caller {
            in_batch: true,
            ..caller.clone()
        };
        let out = self.run_operations(&caller, ws, ops, None).await?;
        for c in &touched {
            self.announce_users_of(ws, c);
        }
        Ok(out)
    }

    /// Checks `ops` and runs them in one exclusive transaction (checked
    /// again if what they were checked against changed meanwhile).
    pub(crate) async fn run_operations(
        &self,
        caller: &Caller,
        ws: &str,
        ops: Vec<Operation>,
        around: Option<Arc<Around>>,
    ) -> Result<Value> {
        let ops = Arc::new(ops);
        let mut attempt = 1;
        loop {
            let (w, o) = (ws.to_string(), ops.clone());
            let prepared = self
                .check(
                    caller,
                    Arc::new(move |v: &Snapshot, ctx: &Ctx| prepare(v, ctx, &w, &o)),
                )
                .await?;
            match self
                .run_batch(caller, ws, (*ops).clone(), prepared, around.clone())
                .await
            {
                Err(ServiceError::Stale(_)) if attempt < records::CHECK_ATTEMPTS => attempt += 1,
                other => break other,
            }
        }
    }

    /// Runs prepared operations in one exclusive transaction.
    async fn run_batch(
        &self,
        caller: &Caller,
        ws: &str,
        ops: Vec<Operation>,
        prepared: Vec<Prepared>,
        around: Option<Arc<Around>>,
    ) -> Result<Value> {
        let ws = ws.to_string();
        self.write_exclusive(caller, move |txn, ctx| {
            if let Some(a) = &around
                && let Some(answer) = (a.before)(txn)?
            {
                return Ok(answer);
            }
            let total = ops.len();
            let mut results = Vec::with_capacity(total);
            let mut failed = Vec::new();
            for (index, (op, prepared)) in ops.into_iter().zip(prepared).enumerate() {
                let kind = op.kind();
                match op.run(txn, ctx, &ws, prepared) {
                    Ok(v) => results.push(json!({"index": index, "type": kind, "result": v})),
                    Err(e @ ServiceError::Store(_)) => return Err(e),
                    // Checked against a collection that changed meanwhile:
                    // check the batch again, unless it fails anyway (an
                    // earlier operation's failure may be the change).
                    Err(e @ ServiceError::Stale(_)) if failed.is_empty() => return Err(e),
                    Err(e) => {
                        let mut f = json!({"index": index, "type": kind, "code": e.code(), "message": e.to_string()});
                        if let Some(d) = e.details() {
                            f["details"] = d;
                        }
                        failed.push(f);
                    }
                }
            }
            if failed.is_empty() {
                let out = json!({"results": results, "meta": {"operations": total}});
                if let Some(a) = &around {
                    (a.after)(txn, &out)?;
                }
                Ok(out)
            } else {
                Err(batch_error(failed, total))
            }
        })
        .await
    }
}
