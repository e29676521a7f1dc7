//! Uploaded components (custom endpoint code). A component is stored once
//! by its SHA-256 digest; each production workspace keeps its own list of
//! uploads (previews share their production workspace's), and an endpoint
//! may only name a component uploaded to its workspace family.
//!
//! Whether the bytes are a valid component for the `custom` world is for
//! the runtime to say before [`Service::upload_component`] is called.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::{Result, ServiceError};
use super::{Caller, Service, decode, encode, now, oplog, workspaces};
use crate::store::{self, View};

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

/// The production workspace whose uploads `ws` uses.
fn family(ws: &workspaces::Workspace) -> &str {
    ws.parent.as_deref().unwrap_or(&ws.id)
}

/// Checks that `digest` was uploaded to the family of `ws`.
pub(crate) fn require_uploaded(v: &impl View, ws: &str, digest: &str) -> Result<()> {
    let w = workspaces::load(v, ws)?;
    let root = family(&w);
    if store::components::meta(v, root, digest)?.is_some() {
        return Ok(());
    }
    Err(ServiceError::invalid(format!(
        "'component': {digest} is not uploaded to workspace '{root}'; upload it with \
         `mcp-factory plugins upload <file.wasm> --workspace {ws}`"
    )))
}

/// The bytes of a stored component.
pub(crate) fn bytes(v: &impl View, digest: &str) -> Result<Vec<u8>> {
    store::components::bytes(v, digest)?.ok_or_else(|| {
        ServiceError::NotFound(format!("component {digest} is not stored on this server"))
    })
}

impl Service {
    /// Stores a validated component for the family of `ws` (idempotent).
    pub async fn upload_component(
        &self,
        caller: &Caller,
        ws: &str,
        wasm: Vec<u8>,
        tools: Vec<String>,
    ) -> Result<Upload> {
        let ws = ws.to_string();
        self.write_shared(caller, move |txn, ctx| {
            let w = workspaces::load_for(txn, &ctx.caller, &ws, None, "write:workspaces")?;
            let root = family(&w).to_string();
            let d = digest(&wasm);
            if let Some(old) = store::components::meta(txn, &root, &d)? {
                return decode(&old, "component upload");
            }
            let up = Upload {
                digest: d.clone(),
                size: wasm.len() as u64,
                tools,
                uploaded_at: now(),
                token_id: ctx.caller.token_id.clone(),
            };
            store::components::put_bytes(txn, &d, &wasm)?;
            store::components::put_meta(txn, &root, &d, &encode(&up)?)?;
            oplog::append(
                txn,
                &root,
                &ctx.caller,
                "upload_component",
                json!({"digest": d, "size": up.size}),
            )?;
            Ok(up)
        })
        .await
    }

    /// Checks `caller` may upload components to `ws` (before any work is
    /// spent on the bytes).
    pub fn require_upload(&self, caller: &Caller, ws: &str) -> Result<()> {
        let txn = self.store.read()?;
        self.read_workspace(&txn, caller, ws, None, "write:workspaces")
            .map(drop)
    }

    /// The components uploaded to the family of `ws`.
    pub fn list_components(&self, caller: &Caller, ws: &str) -> Result<Vec<Upload>> {
        let txn = self.store.read()?;
        let w = self.read_workspace(&txn, caller, ws, None, "read:workspaces")?;
        store::components::list(&txn, family(&w))?
            .iter()
            .map(|b| decode(b, "component upload"))
            .collect()
    }

    /// A stored component's bytes (for the runtime; no caller check: the
    /// endpoint naming it was checked when stored).
    pub fn component_bytes(&self, digest: &str) -> Result<Vec<u8>> {
        bytes(&self.store.read()?, digest)
    }
}
