//! Hooks: inbound webhooks. A hook accepts Record-format JSON
//! (`{"data", "external_id"?, "external_source"?}`, or a list of them) at
//! `POST /v1/{ws}/hooks/{id}/ingest` and upserts it into its collection
//! through the normal write path, as itself: a caller whose only grant is
//! writing that collection, marked as the hook in the operations log (and
//! skipped by `skip_hook_writes` triggers).
//!
//! The sender proves it holds the hook's secret, either as a bearer token
//! or with a Standard Webhooks signature (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`), so a sender that only signs can post. The
//! `webhook-id` (or an `Idempotency-Key`) makes a retried delivery a no-op
//! for a day. A hook is config: created and deleted in previews, carried by
//! promotion; its secret and keys are not.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::batch::{Around, Operation};
use super::error::{Entity, Result, ServiceError};
use super::secrets::{self, Owner, SecretInfo};
use super::workspaces::{self, Workspace};
use super::{Caller, Grant, Scope, Service, check_ident, decode, encode, now, oplog};
use crate::store::{self, Txn, View};
use crate::webhooks;

/// How long an idempotency key makes a repeat a no-op.
pub const KEY_TTL_SECS: u64 = 24 * 3600;
/// Longest idempotency key.
const MAX_KEY: usize = 255;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hook {
    /// The hook's name, which is also its id: the ingest URL stays the
    /// same from a preview to production.
    pub id: String,
    pub workspace_id: String,
    pub collection: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Hook {
    pub fn same_config(&self, o: &Hook) -> bool {
        self.collection == o.collection && self.description == o.description
    }

    pub fn ingest_path(&self) -> String {
        format!("/v1/{}/hooks/{}/ingest", self.workspace_id, self.id)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateHook {
    pub name: String,
    pub collection: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HookInfo {
    #[serde(flatten)]
    pub hook: Hook,
    pub ingest_path: String,
    pub secrets: Vec<SecretInfo>,
}

/// A new hook: the only time its secret is seen.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedHook {
    pub secret: String,
    pub ingest_path: String,
    #[serde(flatten)]
    pub hook: Hook,
}

/// How an ingest request proves it holds the hook's secret.
#[derive(Debug, Clone)]
pub enum HookAuth {
    /// `Authorization: Bearer whsec_…`.
    Bearer(String),
    /// Standard Webhooks headers.
    Signed {
        id: String,
        timestamp: String,
        signature: String,
    },
}

/// One item of an ingest body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    data: Value,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    external_source: Option<String>,
}

/// What an idempotency key remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Remembered {
    at: String,
    records: Vec<String>,
}

pub(crate) fn list_in(v: &impl View, ws: &str) -> Result<Vec<Hook>> {
    store::hooks::list(v, ws)?
        .iter()
        .map(|b| decode(b, "hook"))
        .collect()
}

pub(crate) fn find_in(v: &impl View, ws: &str, id: &str) -> Result<Option<Hook>> {
    store::hooks::get(v, ws, id)?
        .map(|b| decode(&b, "hook"))
        .transpose()
}

fn load_in(v: &impl View, ws: &str, id: &str) -> Result<Hook> {
    find_in(v, ws, id)?.ok_or_else(|| {
        ServiceError::not_found(
            Entity::Hook,
            id,
            format!(
                "hook '{id}' not found in workspace '{ws}'; list them with `mcp-factory hooks list --workspace {ws}`"
            ),
        )
    })
}

/// Loads hook `id` of `ws` for a caller who needs `perm` on its collection.
fn hook_for(
    v: &impl View,
    caller: &Caller,
    ws: &str,
    id: &str,
    perm: &str,
) -> Result<(Workspace, Hook)> {
    let w = workspaces::load_for(v, caller, ws, None, perm)?;
    let hook = load_in(v, ws, id)?;
    caller.require(&w, Some(&hook.collection), perm)?;
    Ok((w, hook))
}

/// Removes a hook and its keys; its secret too unless `keep_secret`.
pub(crate) fn remove_in(txn: &Txn, ws: &str, id: &str, keep_secret: bool) -> Result<()> {
    store::hooks::remove(txn, ws, id)?;
    store::hooks::remove_keys(txn, ws, id)?;
    if !keep_secret {
        secrets::remove(txn, ws, Owner::Hook, id)?;
    }
    Ok(())
}

/// Makes `ws`'s hooks equal to `target` (see `workspaces::apply_config`).
/// Returns the secrets made for hooks new to `ws` (none for a `fresh`
/// preview: its secrets are never shown, `rotate-secret` there to get one).
pub(crate) fn apply(
    txn: &Txn,
    ws: &Workspace,
    target: &[Hook],
    fresh: bool,
) -> Result<Vec<secrets::NewSecret>> {
    let current = list_in(txn, &ws.id)?;
    for c in &current {
        if !target.iter().any(|t| t.id == c.id) {
            remove_in(txn, &ws.id, &c.id, true)?;
        }
    }
    let stamp = now();
    let mut made = Vec::new();
    for t in target {
        let old = current.iter().find(|c| c.id == t.id);
        if old.is_some_and(|o| o.same_config(t)) {
            continue;
        }
        if store::collections::get(txn, &ws.id, &t.collection)?.is_none() {
            return Err(ServiceError::invalid(format!(
                "hook '{}' names collection '{}', which '{}' would not have",
                t.id, t.collection, ws.id
            )));
        }
        let next = Hook {
            workspace_id: ws.id.clone(),
            created_at: old.map_or_else(|| stamp.clone(), |o| o.created_at.clone()),
            updated_at: stamp.clone(),
            ..t.clone()
        };
        store::hooks::put(txn, &ws.id, &t.id, &encode(&next)?)?;
        if let Some(secret) = secrets::ensure(txn, &ws.id, Owner::Hook, &t.id)?
            && !fresh
        {
            made.push(secrets::NewSecret {
                kind: "hook".into(),
                id: t.id.clone(),
                secret,
            });
        }
    }
    Ok(made)
}

/// The caller a hook writes as: write (and read) on its collection only.
fn hook_caller(h: &Hook) -> Caller {
    let mut c = Caller::new(
        format!("hook:{}", h.id),
        format!("hook '{}'", h.id),
        vec![Grant {
            scope: Scope {
                workspaces: vec![h.workspace_id.clone()],
                collections: Some(vec![h.collection.clone()]),
                environments: None,
            },
            permissions: vec!["read:records".into(), "write:records".into()],
        }],
    );
    c.hook = Some(h.id.clone());
    c
}

fn unauthorized(ws: &str, id: &str, why: impl std::fmt::Display) -> ServiceError {
    ServiceError::Unauthorized(format!("hook '{id}' in '{ws}' refused the request: {why}"))
}

/// Parses an ingest body: one item or a list of 1 to 1,000.
fn parse_items(body: &[u8]) -> Result<Vec<Item>> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ServiceError::invalid(format!("the body is not JSON: {e}")))?;
    let raw = match v {
        Value::Array(a) => a,
        other => vec![other],
    };
    if raw.is_empty() {
        return Err(ServiceError::invalid("the list holds no records"));
    }
    if raw.len() > super::batch::MAX_OPERATIONS {
        return Err(ServiceError::invalid(format!(
            "one ingest holds at most {} records; got {}. Send several",
            super::batch::MAX_OPERATIONS,
            raw.len()
        )));
    }
    let mut items = Vec::with_capacity(raw.len());
    let mut failed = Vec::new();
    for (index, r) in raw.into_iter().enumerate() {
        match serde_json::from_value::<Item>(r) {
            Ok(i) => items.push(i),
            Err(e) => failed.push(json!({
                "index": index,
                "code": "VALIDATION_ERROR",
                "message": format!("not Record-format JSON ({{\"data\", \"external_id\"?, \"external_source\"?}}): {e}"),
            })),
        }
    }
    if !failed.is_empty() {
        return Err(ServiceError::Validation {
            message: format!(
                "ingest rejected, nothing was written: {} of {} items are malformed (first: {})",
                failed.len(),
                failed.len() + items.len(),
                failed[0]["message"].as_str().unwrap_or_default()
            ),
            details: json!({"failed": failed}),
        });
    }
    Ok(items)
}

impl Service {
    pub async fn create_hook(
        &self,
        caller: &Caller,
        ws: &str,
        req: CreateHook,
    ) -> Result<CreatedHook> {
        check_ident("hook name", &req.name, 64)?;
        check_ident("collection name", &req.collection, 64)?;
        let ws = ws.to_string();
        self.write_shared(caller, move |txn, ctx| {
            let w =
                workspaces::load_for(txn, &ctx.caller, &ws, Some(&req.collection), "write:hooks")?;
            workspaces::require_preview(&w, "hooks")?;
            // The hook writes the collection: its creator must be able to.
            ctx.caller
                .require(&w, Some(&req.collection), "write:records")?;
            super::collections::load_in(txn, &ws, &req.collection)?;
            if find_in(txn, &ws, &req.name)?.is_some() {
                return Err(ServiceError::conflict(format!(
                    "hook '{}' already exists in '{ws}'; delete it first, or choose another name",
                    req.name
                )));
            }
            let stamp = now();
            let hook = Hook {
                id: req.name.clone(),
                workspace_id: ws.clone(),
                collection: req.collection.clone(),
                description: req.description.clone(),
                created_at: stamp.clone(),
                updated_at: stamp,
            };
            store::hooks::put(txn, &ws, &hook.id, &encode(&hook)?)?;
            let secret = secrets::mint(txn, &ws, Owner::Hook, &hook.id)?;
            oplog::append(
                txn,
                &ws,
                &ctx.caller,
                "create_hook",
                json!({"hook": hook.id, "collection": hook.collection}),
            )?;
            Ok(CreatedHook {
                secret,
                ingest_path: hook.ingest_path(),
                hook,
            })
        })
        .await
    }

    fn hook_info(v: &impl View, hook: Hook) -> Result<HookInfo> {
        Ok(HookInfo {
            ingest_path: hook.ingest_path(),
            secrets: secrets::info(v, &hook.workspace_id, Owner::Hook, &hook.id)?,
            hook,
        })
    }

    pub fn get_hook(&self, caller: &Caller, ws: &str, id: &str) -> Result<HookInfo> {
        let txn = self.store.read()?;
        let (_, hook) = hook_for(&txn, caller, ws, id, "read:hooks")?;
        Self::hook_info(&txn, hook)
    }

    pub fn list_hooks(&self, caller: &Caller, ws: &str) -> Result<Vec<HookInfo>> {
        let txn = self.store.read()?;
        let w = workspaces::load_for(&txn, caller, ws, None, "read:hooks")?;
        list_in(&txn, ws)?
            .into_iter()
            .filter(|h| caller.can(&w, Some(&h.collection), "read:hooks"))
            .map(|h| Self::hook_info(&txn, h))
            .collect()
    }

    pub async fn delete_hook(&self, caller: &Caller, ws: &str, id: &str) -> Result<Hook> {
        let (ws, id) = (ws.to_string(), id.to_string());
        self.write_shared(caller, move |txn, ctx| {
            let (w, hook) = hook_for(txn, &ctx.caller, &ws, &id, "write:hooks")?;
            workspaces::require_preview(&w, "hooks")?;
            remove_in(txn, &ws, &id, false)?;
            oplog::append(txn, &ws, &ctx.caller, "delete_hook", json!({"hook": id}))?;
            Ok(hook)
        })
        .await
    }

    /// A new secret for the hook; the old ones keep verifying for
    /// `grace_secs` (default a day, at most a week). Production allows it:
    /// a secret is not config.
    pub async fn rotate_hook_secret(
        &self,
        caller: &Caller,
        ws: &str,
        id: &str,
        grace_secs: Option<u64>,
    ) -> Result<Value> {
        let grace = secrets::grace(grace_secs)?;
        let (ws, id) = (ws.to_string(), id.to_string());
        self.write_shared(caller, move |txn, ctx| {
            hook_for(txn, &ctx.caller, &ws, &id, "write:hooks")?;
            let secret = secrets::rotate(txn, &ws, Owner::Hook, &id, grace)?;
            oplog::append(
                txn,
                &ws,
                &ctx.caller,
                "rotate_hook_secret",
                json!({"hook": id, "grace_seconds": grace}),
            )?;
            Ok(json!({"hook": id, "secret": secret, "previous_secrets_valid_for_seconds": grace}))
        })
        .await
    }

    /// Ingests `body` through hook `id` of `ws`: authenticated by `auth`,
    /// idempotent on `key` (the `webhook-id`, or an `Idempotency-Key`),
    /// all items in one transaction.
    pub async fn ingest(
        &self,
        ws: &str,
        id: &str,
        auth: HookAuth,
        key: Option<String>,
        body: axum::body::Bytes,
    ) -> Result<Value> {
        let at = secrets::unix_now();
        // What can be refused without looking anything up, first.
        if let HookAuth::Signed { timestamp, .. } = &auth {
            webhooks::check_time(timestamp, at).map_err(|e| unauthorized(ws, id, e))?;
        }
        if let Some(k) = &key
            && (k.is_empty() || k.len() > MAX_KEY)
        {
            return Err(ServiceError::invalid(format!(
                "the idempotency key (webhook-id or Idempotency-Key) must be 1-{MAX_KEY} bytes"
            )));
        }
        let hook = {
            let txn = self.store.read()?;
            // An unknown hook and a wrong secret answer alike: hooks are
            // not enumerable without a secret.
            let nope = || unauthorized(ws, id, "no such hook, or the secret does not match");
            let hook = find_in(&txn, ws, id)?.ok_or_else(nope)?;
            let live = secrets::live(&txn, ws, Owner::Hook, id, at)?;
            let live: Vec<&str> = live.iter().map(String::as_str).collect();
            match &auth {
                HookAuth::Bearer(b) => {
                    if !live.iter().any(|s| webhooks::same_secret(s, b.trim())) {
                        return Err(nope());
                    }
                }
                HookAuth::Signed {
                    id: wid,
                    timestamp,
                    signature,
                } => webhooks::verify_parts(&live, wid, timestamp, signature, &body, at)
                    .map_err(|e| unauthorized(ws, id, e))?,
            }
            // A hook is held to `--rate-limit` as a token is (counted once
            // the request proved it holds the secret, so strangers cannot
            // use up a sender's allowance).
            self.rate_check(&format!("hook:{ws}/{id}"))?;
            if let Some(k) = &key
                && let Some(r) = store::hooks::key(&txn, ws, id, k)?
            {
                let r: Remembered = decode(&r, "idempotency key")?;
                return Ok(
                    json!({"hook": id, "replayed": true, "first_seen_at": r.at, "records": r.records}),
                );
            }
            hook
        };
        let items = parse_items(&body)?;
        let ops: Vec<Operation> = items
            .into_iter()
            .map(|i| Operation::UpsertRecord {
                collection: hook.collection.clone(),
                data: i.data,
                id: None,
                external_id: i.external_id,
                external_source: i.external_source,
                version: None,
            })
            .collect();
        let caller = hook_caller(&hook);
        let (w, h) = (ws.to_string(), id.to_string());
        let around = key.map(|k| {
            let (w2, h2, k2) = (w.clone(), h.clone(), k.clone());
            Arc::new(Around {
                before: Box::new(move |txn: &Txn| {
                    Ok(match store::hooks::key(txn, &w, &h, &k)? {
                        Some(r) => {
                            let r: Remembered = decode(&r, "idempotency key")?;
                            Some(json!({"hook": h, "replayed": true, "first_seen_at": r.at, "records": r.records}))
                        }
                        None => None,
                    })
                }),
                after: Box::new(move |txn: &Txn, out: &Value| {
                    let records = out["results"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r["result"]["id"].as_str().map(str::to_string))
                        .collect();
                    let r = Remembered { at: now(), records };
                    let expires = u64::try_from(secrets::unix_now()).unwrap_or(0) + KEY_TTL_SECS;
                    store::hooks::put_key(txn, &w2, &h2, &k2, expires, &encode(&r)?)?;
                    Ok(())
                }),
            })
        });
        let out = self.run_operations(&caller, ws, ops, around).await?;
        if out["replayed"] == Value::Bool(true) {
            return Ok(out);
        }
        let records: Vec<Value> = out["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["result"].clone())
            .collect();
        Ok(json!({"hook": id, "replayed": false, "records": records}))
    }

    /// Drops idempotency keys older than a day (housekeeping, in small
    /// writes). Returns how many.
    pub async fn expire_hook_keys(&self) -> Result<usize> {
        let now_s = u64::try_from(secrets::unix_now()).unwrap_or(0);
        let workspaces: Vec<String> = {
            let txn = self.store.read()?;
            store::workspaces::all(&txn)?
                .iter()
                .filter_map(|b| decode::<Workspace>(b, "workspace").ok())
                .map(|w| w.id)
                .collect()
        };
        let mut total = 0;
        for ws in workspaces {
            loop {
                let w = ws.clone();
                let n = self
                    .write_shared(&Caller::system(), move |txn, _| {
                        Ok(store::hooks::expire_keys(txn, &w, now_s, 1000)?)
                    })
                    .await?;
                total += n;
                if n < 1000 {
                    break;
                }
            }
        }
        Ok(total)
    }
}
