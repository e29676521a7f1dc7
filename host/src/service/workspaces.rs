//! Workspaces, previews, promotion and rollback.
//!
//! A production workspace holds config (collections; later endpoints, hooks,
//! triggers) that changes only through promotion from one of its previews. A
//! preview (`<production>--<name>`) starts with a copy of that config and
//! none of the data. Promotion copies config, never data, in one
//! transaction; each promotion is recorded with the config before and after,
//! so it can be rolled back.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::collections::{self, Collection};
use super::components;
use super::endpoints::{self, Endpoint};
use super::error::{Entity, Result, ServiceError};
use super::hooks::{self, Hook};
use super::secrets::NewSecret;
use super::triggers::{self, Trigger};
use super::{Caller, Ctx, Service, decode, encode, now, oplog};
use crate::store::{self, Txn, View};

/// Workspace ids that would shadow REST routes.
const RESERVED: &[&str] = &["workspaces", "tokens", "health"];

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Production,
    Preview,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Production => "production",
            Kind::Preview => "preview",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub kind: Kind,
    /// The production workspace of a preview.
    #[serde(default)]
    pub parent: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePreview {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A recorded promotion or rollback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Promotion {
    pub id: String,
    pub workspace_id: String,
    /// "promotion" or "rollback".
    pub kind: String,
    /// The preview promoted from, or the promotion rolled back.
    pub from: String,
    pub token_id: String,
    pub created_at: String,
    pub diff: Value,
    /// Production config before and after.
    pub before: Config,
    pub after: Config,
    /// Secrets made for hooks and triggers new to production: only in the
    /// answer to the promotion (or rollback), never stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<NewSecret>,
}

/// Reads a workspace through any view.
pub(crate) fn load(v: &impl View, id: &str) -> Result<Workspace> {
    match store::workspaces::get(v, id)? {
        Some(bytes) => decode(&bytes, "workspace"),
        None => Err(ServiceError::not_found(
            Entity::Workspace,
            id,
            format!(
                "workspace '{id}' not found; list workspaces with `mcp-factory workspaces list`"
            ),
        )),
    }
}

/// Loads a workspace and checks the caller's grant.
pub(crate) fn load_for(
    v: &impl View,
    caller: &Caller,
    id: &str,
    collection: Option<&str>,
    perm: &str,
) -> Result<Workspace> {
    let ws = load(v, id)?;
    caller.require(&ws, collection, perm)?;
    Ok(ws)
}

fn all(v: &impl View) -> Result<Vec<Workspace>> {
    store::workspaces::all(v)?
        .iter()
        .map(|b| decode(b, "workspace"))
        .collect()
}

/// Refuses config changes outside previews.
pub(crate) fn require_preview(ws: &Workspace, what: &str) -> Result<()> {
    if ws.kind == Kind::Preview {
        return Ok(());
    }
    Err(ServiceError::Forbidden(format!(
        "workspace '{id}' is production: {what} can only be changed in a preview workspace. \
         Create one with `mcp-factory workspaces create-preview {id} --name <name>`, make the \
         change there, then `mcp-factory workspaces promote {id} --from {id}--<name>`",
        id = ws.id
    )))
}

/// A workspace's config: what previews copy and promotion moves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    pub collections: Vec<Collection>,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Uploaded components (applying a config adds missing ones, never
    /// removes: earlier revisions may name them).
    #[serde(default)]
    pub components: Vec<components::Upload>,
    #[serde(default)]
    pub hooks: Vec<Hook>,
    #[serde(default)]
    pub triggers: Vec<Trigger>,
}

fn read_config(v: &impl View, ws: &str) -> Result<Config> {
    Ok(Config {
        collections: collections::list_in(v, ws)?,
        endpoints: endpoints::list_in(v, ws)?,
        components: components::list_in(v, ws)?,
        hooks: hooks::list_in(v, ws)?,
        triggers: triggers::list_in(v, ws)?,
    })
}

/// Names added, changed and removed going from `from` to `to`.
fn changes<T>(
    from: &[T],
    to: &[T],
    key: impl Fn(&T) -> &str,
    same: impl Fn(&T, &T) -> bool,
) -> Value {
    let find = |list: &'_ [T], k: &str| list.iter().position(|x| key(x) == k);
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for t in to {
        match find(from, key(t)) {
            None => added.push(key(t).to_string()),
            Some(i) if !same(&from[i], t) => changed.push(key(t).to_string()),
            Some(_) => {}
        }
    }
    let removed: Vec<String> = from
        .iter()
        .filter(|f| find(to, key(f)).is_none())
        .map(|f| key(f).to_string())
        .collect();
    json!({"added": added, "changed": changed, "removed": removed})
}

/// What going from `from` to `to` adds, changes and removes.
fn diff(from: &Config, to: &Config) -> Value {
    let collections = changes(
        &from.collections,
        &to.collections,
        |c| &c.id,
        Collection::same_config,
    );
    let endpoints = changes(
        &from.endpoints,
        &to.endpoints,
        |e| &e.slug,
        |a, b| a.config == b.config,
    );
    let empty = |v: &Value| {
        ["added", "changed", "removed"]
            .iter()
            .all(|k| v[k].as_array().is_none_or(Vec::is_empty))
    };
    let hooks = changes(&from.hooks, &to.hooks, |h| &h.id, Hook::same_config);
    let triggers = changes(
        &from.triggers,
        &to.triggers,
        |t| &t.id,
        Trigger::same_config,
    );
    let has_changes = ![&collections, &endpoints, &hooks, &triggers]
        .iter()
        .all(|v| empty(v));
    json!({
        "collections": collections,
        "endpoints": endpoints,
        "hooks": hooks,
        "triggers": triggers,
        "has_changes": has_changes,
    })
}

/// How a config is applied.
#[derive(Clone, Copy)]
enum Apply<'a> {
    /// Into a new preview: its triggers start disabled, its secrets are
    /// never shown.
    Preview,
    /// A promotion: trigger URLs are checked again against `egress`.
    Promotion(&'a crate::egress::Egress),
    /// A rollback: restores what was there.
    Rollback,
}

/// Makes `ws`'s config equal to `target`: collections (versions keep
/// increasing; one that still holds records is not removed), then endpoints
/// (which name collections), each changed one as a new revision, then hooks
/// and triggers (which name collections). Runs in an exclusive transaction:
/// it can fail after its first write. Returns the secrets made for hooks
/// and triggers new to `ws`.
fn apply_config(
    txn: &Txn,
    ctx: &Ctx,
    ws: &str,
    target: &Config,
    how: Apply,
) -> Result<Vec<NewSecret>> {
    apply_collections(txn, ws, &target.collections)?;
    // Only the uploads the target's endpoints use (the quota of `ws` is
    // not filled with components nothing there runs).
    for up in &target.components {
        if target
            .endpoints
            .iter()
            .any(|e| e.config.component.as_deref() == Some(up.digest.as_str()))
        {
            components::copy_in(txn, ws, up)?;
        }
    }
    let current = endpoints::list_in(txn, ws)?;
    for e in &current {
        if !target.endpoints.iter().any(|t| t.slug == e.slug) {
            endpoints::remove(txn, ctx, ws, &e.slug)?;
        }
    }
    for t in &target.endpoints {
        endpoints::publish(txn, ctx, ws, &t.slug, t.config.clone())?;
    }
    let w = load(txn, ws)?;
    let fresh = matches!(how, Apply::Preview);
    let egress = match how {
        Apply::Promotion(e) => Some(e),
        _ => None,
    };
    let mut made = hooks::apply(txn, &w, &target.hooks, fresh)?;
    made.extend(triggers::apply(txn, &w, &target.triggers, fresh, egress)?);
    Ok(made)
}

fn apply_collections(txn: &Txn, ws: &str, target: &[Collection]) -> Result<()> {
    let current = collections::list_in(txn, ws)?;
    for c in &current {
        if !target.iter().any(|t| t.id == c.id) && store::records::any(txn, ws, &c.id)? {
            return Err(ServiceError::conflict(format!(
                "collection '{}' would be removed from '{ws}' but still holds records; \
                 delete them (or the collection, with --force) first",
                c.id
            )));
        }
    }
    let stamp = now();
    for c in &current {
        if !target.iter().any(|t| t.id == c.id) {
            store::collections::remove(txn, ws, &c.id)?;
        }
    }
    for t in target {
        let old = current.iter().find(|c| c.id == t.id);
        if old.is_some_and(|o| o.same_config(t)) {
            continue;
        }
        let mut next = t.clone();
        next.version = old.map_or(1, |o| o.version + 1).max(t.version);
        next.created_at = old.map_or_else(|| stamp.clone(), |o| o.created_at.clone());
        next.updated_at = stamp.clone();
        store::collections::put(txn, ws, &t.id, &encode(&next)?)?;
    }
    Ok(())
}

fn create_in(txn: &Txn, ctx: &Ctx, ws: Workspace) -> Result<Workspace> {
    if !ctx.caller.can(&ws, None, "write:workspaces") {
        return Err(ServiceError::Forbidden(format!(
            "token '{}' may not create workspace '{}' (needs 'write:workspaces' on it)",
            ctx.caller.token_name, ws.id
        )));
    }
    if store::workspaces::get(txn, &ws.id)?.is_some() {
        return Err(ServiceError::conflict(format!(
            "workspace '{}' already exists",
            ws.id
        )));
    }
    store::workspaces::put(txn, &ws.id, &encode(&ws)?)?;
    oplog::append(
        txn,
        &ws.id,
        &ctx.caller,
        "create_workspace",
        json!({"workspace_id": ws.id}),
    )?;
    Ok(ws)
}

impl Service {
    pub async fn create_workspace(
        &self,
        caller: &Caller,
        req: CreateWorkspace,
    ) -> Result<Workspace> {
        super::check_ident("workspace id", &req.id, 48)?;
        if req.id.ends_with('-') {
            return Err(ServiceError::invalid(format!(
                "invalid workspace id '{}': it cannot end with '-' ('<id>--<name>' names its previews)",
                req.id
            )));
        }
        if req.id.contains("--") {
            return Err(ServiceError::invalid(format!(
                "invalid workspace id '{}': '--' is reserved for previews (create one with `workspaces create-preview`)",
                req.id
            )));
        }
        if RESERVED.contains(&req.id.as_str()) {
            return Err(ServiceError::invalid(format!(
                "workspace id '{}' is reserved; choose another",
                req.id
            )));
        }
        let ws = Workspace {
            name: req.name.unwrap_or_else(|| req.id.clone()),
            id: req.id,
            description: req.description,
            kind: Kind::Production,
            parent: None,
            created_at: now(),
        };
        self.write_shared(caller, move |txn, ctx| create_in(txn, ctx, ws.clone()))
            .await
    }

    pub fn get_workspace(&self, caller: &Caller, id: &str) -> Result<Workspace> {
        let ws = load(&self.store.read()?, id)?;
        if !caller.sees(&ws) {
            return Err(ServiceError::Forbidden(format!(
                "token '{}' has no grant for workspace '{id}'",
                caller.token_name
            )));
        }
        Ok(ws)
    }

    /// The workspaces the caller has any grant on.
    pub fn list_workspaces(&self, caller: &Caller, kind: Option<Kind>) -> Result<Vec<Workspace>> {
        Ok(all(&self.store.read()?)?
            .into_iter()
            .filter(|ws| caller.sees(ws) && kind.is_none_or(|k| k == ws.kind))
            .collect())
    }

    pub fn list_previews(&self, caller: &Caller, id: &str) -> Result<Vec<Workspace>> {
        let parent = self.get_workspace(caller, id)?;
        Ok(self
            .list_workspaces(caller, Some(Kind::Preview))?
            .into_iter()
            .filter(|w| w.parent.as_deref() == Some(parent.id.as_str()))
            .collect())
    }

    /// Deletes a workspace and all its data. A production workspace with
    /// previews is refused: delete the previews first.
    pub async fn delete_workspace(&self, caller: &Caller, id: &str) -> Result<Workspace> {
        let id = id.to_string();
        let out = self
            .write_exclusive(caller, move |txn, ctx| {
                let ws = load_for(txn, &ctx.caller, &id, None, "write:workspaces")?;
                let previews: Vec<String> = all(txn)?
                    .into_iter()
                    .filter(|w| w.parent.as_deref() == Some(id.as_str()))
                    .map(|w| w.id)
                    .collect();
                if !previews.is_empty() {
                    return Err(ServiceError::conflict(format!(
                        "workspace '{id}' has previews ({}); delete them first",
                        previews.join(", ")
                    )));
                }
                let gone: Vec<String> = endpoints::list_in(txn, &id)?
                    .into_iter()
                    .map(|e| e.slug)
                    .collect();
                store::workspaces::delete_all(txn, &id)?;
                let revoked = super::tokens::revoke_for_deleted_workspace(txn, &id)?;
                Ok((ws, gone, revoked))
            })
            .await?;
        let (out, gone, revoked) = out;
        self.cache_tokens(revoked);
        self.schemas.forget_workspace(&out.id);
        for slug in gone {
            self.announce_change(&out.id, &slug, None);
        }
        Ok(out)
    }

    /// Creates `<ws>--<name>` with a copy of `ws`'s config and no data.
    pub async fn create_preview(
        &self,
        caller: &Caller,
        parent: &str,
        req: CreatePreview,
    ) -> Result<Workspace> {
        super::check_ident("preview name", &req.name, 32)?;
        if req.name.contains("--") {
            return Err(ServiceError::invalid("a preview name cannot contain '--'"));
        }
        let parent = parent.to_string();
        // Exclusive: copying the config can fail after its first write.
        self.write_exclusive(caller, move |txn, ctx| {
            let prod = load_for(txn, &ctx.caller, &parent, None, "write:workspaces")?;
            if prod.kind != Kind::Production {
                return Err(ServiceError::invalid(format!(
                    "'{parent}' is a preview; previews are created from a production workspace (here '{}')",
                    prod.parent.as_deref().unwrap_or("?")
                )));
            }
            let ws = Workspace {
                id: format!("{parent}--{}", req.name),
                name: req.name,
                description: req.description,
                kind: Kind::Preview,
                parent: Some(parent.clone()),
                created_at: now(),
            };
            let config = read_config(txn, &parent)?;
            let ws = create_in(txn, ctx, ws)?;
            apply_config(txn, ctx, &ws.id, &config, Apply::Preview)?;
            Ok(ws)
        })
        .await
    }

    /// Promotes `from`'s config onto production `id`; with `dry_run`, only
    /// returns the diff.
    /// Announces the endpoints a config change touched (from its diff).
    fn announce_diff(&self, ws: &str, diff: &Value) {
        for (key, gone) in [("added", false), ("changed", false), ("removed", true)] {
            for slug in diff["endpoints"][key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let revision = if gone {
                    None
                } else {
                    self.store
                        .read()
                        .ok()
                        .and_then(|t| endpoints::load(&t, ws, slug).ok().flatten())
                        .map(|e| e.revision)
                };
                self.announce_change(ws, slug, revision);
            }
        }
    }

    pub async fn promote(
        &self,
        caller: &Caller,
        id: &str,
        from: &str,
        dry_run: bool,
    ) -> Result<Value> {
        let (id, from) = (id.to_string(), from.to_string());
        let egress = self.config.egress.clone();
        self.write_exclusive(caller, move |txn, ctx| {
            let prod = load_for(txn, &ctx.caller, &id, None, "write:workspaces")?;
            let preview = load_for(txn, &ctx.caller, &from, None, "read:collections")?;
            if prod.kind != Kind::Production {
                return Err(ServiceError::invalid(format!(
                    "'{id}' is a preview; promote onto its production workspace"
                )));
            }
            if preview.parent.as_deref() != Some(id.as_str()) {
                return Err(ServiceError::invalid(format!(
                    "'{from}' is not a preview of '{id}'; list them with `mcp-factory workspaces get {id}`"
                )));
            }
            let before = read_config(txn, &id)?;
            let after = read_config(txn, &from)?;
            let diff = diff(&before, &after);
            if dry_run {
                return Ok(json!({"dry_run": true, "workspace_id": id, "from": from, "diff": diff}));
            }
            let secrets = apply_config(txn, ctx, &id, &after, Apply::Promotion(&egress))?;
            let promotion = Promotion {
                id: uuid::Uuid::now_v7().to_string(),
                workspace_id: id.clone(),
                kind: "promotion".into(),
                from,
                token_id: ctx.caller.token_id.clone(),
                created_at: now(),
                diff,
                before,
                after: read_config(txn, &id)?,
                secrets: Vec::new(),
            };
            record_promotion(txn, ctx, &promotion)?;
            Ok(serde_json::to_value(Promotion { secrets, ..promotion }).unwrap_or(Value::Null))
        })
        .await
        .inspect(|p| {
            // A dry run changed nothing.
            if p["dry_run"] != Value::Bool(true)
                && let Some(ws) = p["workspace_id"].as_str()
            {
                self.announce_diff(ws, &p["diff"]);
            }
        })
    }

    pub fn list_promotions(&self, caller: &Caller, id: &str) -> Result<Vec<Promotion>> {
        let ws = self.get_workspace(caller, id)?;
        caller.require(&ws, None, "read:workspaces")?;
        store::promotions::list(&self.store.read()?, id)?
            .iter()
            .map(|b| decode(b, "promotion"))
            .collect()
    }

    /// Restores production config to what it was before `promotion`.
    pub async fn rollback(&self, caller: &Caller, id: &str, promotion: &str) -> Result<Promotion> {
        let (id, pid) = (id.to_string(), promotion.to_string());
        self.write_exclusive(caller, move |txn, ctx| {
            load_for(txn, &ctx.caller, &id, None, "write:workspaces")?;
            let target: Promotion = match store::promotions::get(txn, &id, &pid)? {
                Some(bytes) => decode(&bytes, "promotion")?,
                None => {
                    return Err(ServiceError::not_found(
                        Entity::Promotion,
                        pid.clone(),
                        format!(
                            "promotion '{pid}' not found in '{id}'; list them with `mcp-factory workspaces promotions {id}`"
                        ),
                    ));
                }
            };
            let before = read_config(txn, &id)?;
            let secrets = apply_config(txn, ctx, &id, &target.before, Apply::Rollback)?;
            let after = read_config(txn, &id)?;
            let rollback = Promotion {
                id: uuid::Uuid::now_v7().to_string(),
                workspace_id: id.clone(),
                kind: "rollback".into(),
                from: pid,
                token_id: ctx.caller.token_id.clone(),
                created_at: now(),
                diff: diff(&before, &after),
                before,
                after,
                secrets: Vec::new(),
            };
            record_promotion(txn, ctx, &rollback)?;
            Ok(Promotion { secrets, ..rollback })
        })
        .await
        .inspect(|p| self.announce_diff(&p.workspace_id, &p.diff))
    }
}

fn record_promotion(txn: &Txn, ctx: &Ctx, p: &Promotion) -> Result<()> {
    store::promotions::put(txn, &p.workspace_id, &p.id, &encode(p)?)?;
    oplog::append(
        txn,
        &p.workspace_id,
        &ctx.caller,
        &p.kind,
        json!({"promotion_id": p.id, "from": p.from}),
    )?;
    Ok(())
}
