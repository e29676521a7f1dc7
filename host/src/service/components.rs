//! Uploaded components (custom endpoint code). A component is stored once
//! by its SHA-256 digest; each workspace keeps its own list of uploads, and
//! an endpoint may only name a component uploaded to its workspace. Uploads
//! are config, like collections and endpoints: they are made and deleted in
//! previews only, a new preview starts with its production workspace's, and
//! promotion brings those the promoted endpoints use. Each workspace's
//! uploads are bounded in bytes (`--max-plugin-bytes`).
//!
//! Whether the bytes are a valid component for the `custom` world is for
//! the runtime to say before [`Service::upload_component`] is called.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::{Entity, Result, ServiceError};
use super::{Caller, Service, decode, encode, now, oplog, workspaces};
use crate::store::{self, Txn, View};

/// The digest of a component's bytes: `sha256:<hex>`.
pub fn digest(wasm: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(wasm)))
}

/// One upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Upload {
    pub digest: String,
    pub size: u64,
    /// The tools the component lists (with an empty endpoint config).
    pub tools: Vec<String>,
    pub uploaded_at: String,
    pub token_id: String,
}

/// Checks that `digest` was uploaded to `ws`.
pub(crate) fn require_uploaded(v: &impl View, ws: &str, digest: &str) -> Result<()> {
    workspaces::load(v, ws)?;
    if store::components::meta(v, ws, digest)?.is_some() {
        return Ok(());
    }
    Err(ServiceError::invalid(format!(
        "'component': {digest} is not uploaded to workspace '{ws}'; upload it with \
         `mcp-factory plugins upload <file.wasm> --workspace {ws}`"
    )))
}

/// Refuses an upload of `size` bytes that would take `ws` past `max`.
fn check_quota(v: &impl View, ws: &str, size: u64, max: u64) -> Result<()> {
    let used: u64 = list_in(v, ws)?.iter().map(|u| u.size).sum();
    if used + size > max {
        return Err(ServiceError::Validation {
            message: format!(
                "workspace '{ws}' holds {used} bytes of components; this one ({size} bytes) \
                 would pass its quota of {max} bytes. Delete unused ones with \
                 `mcp-factory plugins delete <digest> --workspace {ws}`"
            ),
            details: json!({"quota_bytes": max, "used_bytes": used, "size": size}),
        });
    }
    Ok(())
}

/// Every upload of `ws`.
pub(crate) fn list_in(v: &impl View, ws: &str) -> Result<Vec<Upload>> {
    store::components::list(v, ws)?
        .iter()
        .map(|b| decode(b, "component upload"))
        .collect()
}

/// Makes sure `ws` lists `up` (a copy of another workspace's upload: by
/// preview creation or promotion); the bytes are already stored.
pub(crate) fn copy_in(txn: &Txn, ws: &str, up: &Upload) -> Result<()> {
    if store::components::meta(txn, ws, &up.digest)?.is_none() {
        store::components::put_meta(txn, ws, &up.digest, &encode(up)?)?;
    }
    Ok(())
}

/// The bytes of a stored component.
pub(crate) fn bytes(v: &impl View, digest: &str) -> Result<Vec<u8>> {
    store::components::bytes(v, digest)?.ok_or_else(|| {
        ServiceError::not_found(
            Entity::Component,
            digest,
            format!("component {digest} is not stored on this server"),
        )
    })
}

impl Service {
    /// Stores a validated component for `ws`, a preview (idempotent).
    pub async fn upload_component(
        &self,
        caller: &Caller,
        ws: &str,
        wasm: Vec<u8>,
        tools: Vec<String>,
    ) -> Result<Upload> {
        let ws = ws.to_string();
        let max = self.config.max_plugin_bytes;
        self.write_shared(caller, move |txn, ctx| {
            let w = workspaces::load_for(txn, &ctx.caller, &ws, None, "write:workspaces")?;
            workspaces::require_preview(&w, "components (plugins)")?;
            let d = digest(&wasm);
            if let Some(old) = store::components::meta(txn, &ws, &d)? {
                return decode(&old, "component upload");
            }
            let size = wasm.len() as u64;
            check_quota(txn, &ws, size, max)?;
            let up = Upload {
                digest: d.clone(),
                size,
                tools: tools.clone(),
                uploaded_at: now(),
                token_id: ctx.caller.token_id.clone(),
            };
            store::components::put_bytes(txn, &d, &wasm)?;
            store::components::put_meta(txn, &ws, &d, &encode(&up)?)?;
            oplog::append(
                txn,
                &ws,
                &ctx.caller,
                "upload_component",
                json!({"digest": d, "size": up.size}),
            )?;
            Ok(up)
        })
        .await
    }

    /// Deletes an upload of `ws` (a preview) that no endpoint of `ws` uses;
    /// its bytes go with the last upload of them.
    pub async fn delete_component(
        &self,
        caller: &Caller,
        ws: &str,
        digest: &str,
    ) -> Result<Upload> {
        let (ws, d) = (ws.to_string(), digest.to_string());
        self.write_shared(caller, move |txn, ctx| {
            let w = workspaces::load_for(txn, &ctx.caller, &ws, None, "write:workspaces")?;
            workspaces::require_preview(&w, "components (plugins)")?;
            let Some(old) = store::components::meta(txn, &ws, &d)? else {
                return Err(ServiceError::not_found(
                    Entity::Component,
                    d.clone(),
                    format!(
                        "component {d} is not uploaded to workspace '{ws}'; list them with \
                         `mcp-factory plugins list --workspace {ws}`"
                    ),
                ));
            };
            let users: Vec<String> = super::endpoints::list_in(txn, &ws)?
                .into_iter()
                .filter(|e| e.config.component.as_deref() == Some(d.as_str()))
                .map(|e| e.slug)
                .collect();
            if !users.is_empty() {
                return Err(ServiceError::conflict(format!(
                    "component {d} is used by endpoint(s) {} of '{ws}'; change or delete them first",
                    users.join(", ")
                )));
            }
            let up: Upload = decode(&old, "component upload")?;
            store::components::remove_meta(txn, &ws, &d)?;
            store::components::collect_garbage(txn, std::slice::from_ref(&d))?;
            oplog::append(txn, &ws, &ctx.caller, "delete_component", json!({"digest": d}))?;
            Ok(up)
        })
        .await
    }

    /// Checks `caller` may upload a component of `size` bytes and `digest`
    /// to `ws`, within its quota (before any work is spent on the bytes;
    /// checked again when it is stored).
    pub fn require_upload(&self, caller: &Caller, ws: &str, digest: &str, size: u64) -> Result<()> {
        let txn = self.store.read()?;
        let w = self.read_workspace(&txn, caller, ws, None, "write:workspaces")?;
        workspaces::require_preview(&w, "components (plugins)")?;
        if store::components::meta(&txn, ws, digest)?.is_some() {
            return Ok(());
        }
        check_quota(&txn, ws, size, self.config.max_plugin_bytes)
    }

    /// The components uploaded to `ws`.
    pub fn list_components(&self, caller: &Caller, ws: &str) -> Result<Vec<Upload>> {
        let txn = self.store.read()?;
        self.read_workspace(&txn, caller, ws, None, "read:workspaces")?;
        list_in(&txn, ws)
    }

    /// A stored component's bytes (for the runtime; no caller check: the
    /// endpoint naming it was checked when stored).
    pub fn component_bytes(&self, digest: &str) -> Result<Vec<u8>> {
        bytes(&self.store.read()?, digest)
    }
}
