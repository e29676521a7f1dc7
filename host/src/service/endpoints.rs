//! Endpoint configurations: workspace config like collections (changed only
//! in previews, copied by promotion), validated when stored — tool names
//! by the same code the generated component runs
//! ([`mcp_factory_guest::config`]), collections against the workspace —
//! and kept as numbered revisions that can be rolled back to.
//!
//! The runtime (`crate::runtime`) serves what is stored here: each call
//! reads the endpoint from one store snapshot, so it runs on exactly one
//! revision, and calls in flight finish on the revision they started on.

use mcp_factory_guest::config::{EndpointConfig, ToolPlan};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{Entity, Result, ServiceError};
use std::sync::Arc;

use super::auth::EndpointScope;
use super::{Caller, Ctx, Service, collections, decode, encode, now, oplog, workspaces};
use crate::store::{self, Txn, View};

/// An endpoint at its current revision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    pub slug: String,
    pub workspace_id: String,
    pub revision: u64,
    pub config: EndpointConfig,
    /// The generated tools' names, in serving order.
    pub tools: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// An endpoint's tools may have changed (sent after the change is durable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub workspace_id: String,
    pub slug: String,
    /// The revision now served; `None` once the endpoint is deleted.
    pub revision: Option<u64>,
}

/// One stored revision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revision {
    pub revision: u64,
    pub config: EndpointConfig,
    pub token_id: String,
    pub created_at: String,
}

fn not_found(ws: &str, slug: &str) -> ServiceError {
    ServiceError::not_found(
        Entity::Endpoint,
        slug,
        format!(
            "endpoint '{slug}' not found in workspace '{ws}'; list them with `mcp-factory endpoints list --workspace {ws}`"
        ),
    )
}

pub(crate) fn load(v: &impl View, ws: &str, slug: &str) -> Result<Option<Endpoint>> {
    store::endpoints::get(v, ws, slug)?
        .map(|b| decode(&b, "endpoint"))
        .transpose()
}

pub(crate) fn list_in(v: &impl View, ws: &str) -> Result<Vec<Endpoint>> {
    store::endpoints::list(v, ws)?
        .iter()
        .map(|b| decode(b, "endpoint"))
        .collect()
}

/// Checks a configuration against the naming rules and the workspace;
/// returns its tools.
pub(crate) fn validate(v: &impl View, ws: &str, config: &EndpointConfig) -> Result<Vec<ToolPlan>> {
    let tools = config.tools().map_err(|e| ServiceError::Validation {
        message: format!("invalid endpoint config: {e}"),
        details: json!({"at": e.at}),
    })?;
    let l = &config.limits;
    for (field, value) in [
        ("memory_mb", l.memory_mb),
        ("timeout_ms", l.timeout_ms),
        ("max_concurrency", l.max_concurrency),
    ] {
        if value == Some(0) {
            return Err(ServiceError::Validation {
                message: format!(
                    "invalid endpoint config: limits.{field} must be at least 1 (the server's cap applies above it)"
                ),
                details: json!({"at": format!("limits.{field}")}),
            });
        }
    }
    if let Some(d) = &config.component {
        super::components::require_uploaded(v, ws, d)?;
    }
    for c in config.collections() {
        if store::collections::get(v, ws, &c)?.is_none() {
            return Err(ServiceError::invalid(format!(
                "the endpoint names collection '{c}', which does not exist in '{ws}'; create it first"
            )));
        }
    }
    check_tool_schemas(config, &schemas_of(v, ws, config)?)?;
    // A batch key that is not a collection is a relationship type.
    for (key, ops) in config.batch.iter().flat_map(|b| &b.operations) {
        let is_collection = store::collections::get(v, ws, key)?.is_some();
        if !is_collection && ops.iter().any(|o| o == "update") {
            return Err(ServiceError::Validation {
                message: format!(
                    "invalid endpoint config: batch.operations.{key}: '{key}' is not a collection of '{ws}', \
                     and as a relationship type it allows only create and delete"
                ),
                details: json!({"at": format!("batch.operations.{key}")}),
            });
        }
    }
    Ok(tools)
}

/// Checks that every generated tool's input schema (which embeds its
/// collection's schema) compiles, naming the tool and collection that don't.
pub(crate) fn check_tool_schemas(
    config: &EndpointConfig,
    schemas: &serde_json::Map<String, Value>,
) -> Result<()> {
    let schemas = Value::Object(schemas.clone());
    let tools = mcp_factory_guest::generated::tools(config, &schemas).map_err(|e| {
        ServiceError::Validation {
            message: format!("invalid endpoint config: {e}"),
            details: json!({"at": e.at}),
        }
    })?;
    for (tool, plan) in tools.iter().zip(config.tools().unwrap_or_default()) {
        if let Err(v) = crate::schema::compile(&tool.input_schema) {
            let first = v.first().map(|v| v.message.clone()).unwrap_or_default();
            let what = match &plan.kind {
                mcp_factory_guest::config::ToolKind::Collection { collection, .. } => {
                    format!(" (it embeds the schema of collection '{collection}')")
                }
                _ => String::new(),
            };
            return Err(ServiceError::Validation {
                message: format!(
                    "endpoint tool '{}' would have an input schema that does not compile{what}: {first}",
                    tool.name
                ),
                details: json!({"tool": tool.name}),
            });
        }
    }
    Ok(())
}

/// The JSON Schemas of the collections an endpoint uses: those of its
/// tools and grants, and its batch keys that are collections (the others
/// are relationship types, which have none).
pub(crate) fn schemas_of(
    v: &impl View,
    ws: &str,
    config: &EndpointConfig,
) -> Result<serde_json::Map<String, Value>> {
    let mut names = config.collections();
    names.extend(
        config
            .batch
            .iter()
            .flat_map(|b| b.operations.keys().cloned()),
    );
    let mut schemas = serde_json::Map::new();
    for c in names {
        if let Some(bytes) = store::collections::get(v, ws, &c)? {
            let coll: collections::Collection = decode(&bytes, "collection")?;
            schemas.insert(c, coll.schema);
        }
    }
    Ok(schemas)
}

/// Makes `slug` serve `config` as a new revision (none if unchanged).
pub(crate) fn publish(
    txn: &Txn,
    ctx: &Ctx,
    ws: &str,
    slug: &str,
    config: EndpointConfig,
) -> Result<Endpoint> {
    let tools = validate(txn, ws, &config)?
        .into_iter()
        .map(|t| t.name)
        .collect();
    let old = load(txn, ws, slug)?;
    if let Some(o) = &old
        && o.config == config
    {
        return Ok(o.clone());
    }
    let stamp = now();
    let revision = store::endpoints::last_revision(txn, ws, slug)? + 1;
    let rev = Revision {
        revision,
        config: config.clone(),
        token_id: ctx.caller.token_id.clone(),
        created_at: stamp.clone(),
    };
    store::endpoints::put_revision(txn, ws, slug, revision, &encode(&rev)?)?;
    let endpoint = Endpoint {
        slug: slug.to_string(),
        workspace_id: ws.to_string(),
        revision,
        config,
        tools,
        created_at: old.map_or_else(|| stamp.clone(), |o| o.created_at),
        updated_at: stamp,
    };
    store::endpoints::put(txn, ws, slug, &encode(&endpoint)?)?;
    oplog::append(
        txn,
        ws,
        &ctx.caller,
        "upsert_endpoint",
        json!({"endpoint": slug, "revision": revision}),
    )?;
    Ok(endpoint)
}

pub(crate) fn remove(txn: &Txn, ctx: &Ctx, ws: &str, slug: &str) -> Result<Endpoint> {
    let old = load(txn, ws, slug)?.ok_or_else(|| not_found(ws, slug))?;
    store::endpoints::remove(txn, ws, slug)?;
    oplog::append(
        txn,
        ws,
        &ctx.caller,
        "delete_endpoint",
        json!({"endpoint": slug}),
    )?;
    Ok(old)
}

impl Service {
    /// Creates or changes an endpoint (preview workspaces only).
    pub async fn upsert_endpoint(
        &self,
        caller: &Caller,
        ws: &str,
        slug: &str,
        config: EndpointConfig,
    ) -> Result<Endpoint> {
        super::check_ident("endpoint slug", slug, 64)?;
        {
            let txn = self.store.read()?;
            let w = self.read_workspace(&txn, caller, ws, None, "write:workspaces")?;
            workspaces::require_preview(&w, "endpoints")?;
        }
        // A custom component must load and list valid tools for this config
        // before the revision is published.
        self.check_candidate(caller, ws, slug, &config).await?;
        let (ws, slug) = (ws.to_string(), slug.to_string());
        self.write_shared(caller, move |txn, ctx| {
            let w = workspaces::load_for(txn, &ctx.caller, &ws, None, "write:workspaces")?;
            workspaces::require_preview(&w, "endpoints")?;
            publish(txn, ctx, &ws, &slug, config.clone())
        })
        .await
        .inspect(|e| self.announce(e, Some(e.revision)))
    }

    /// Deletes an endpoint (preview workspaces only).
    pub async fn delete_endpoint(&self, caller: &Caller, ws: &str, slug: &str) -> Result<Endpoint> {
        let (ws, slug) = (ws.to_string(), slug.to_string());
        self.write_shared(caller, move |txn, ctx| {
            let w = workspaces::load_for(txn, &ctx.caller, &ws, None, "write:workspaces")?;
            workspaces::require_preview(&w, "endpoints")?;
            remove(txn, ctx, &ws, &slug)
        })
        .await
        .inspect(|e| self.announce(e, None))
    }

    /// Serves an earlier revision again, as a new revision. Allowed in
    /// production too: it only brings back a configuration that was
    /// validated and served there before.
    pub async fn rollback_endpoint(
        &self,
        caller: &Caller,
        ws: &str,
        slug: &str,
        revision: u64,
    ) -> Result<Endpoint> {
        let (ws, slug) = (ws.to_string(), slug.to_string());
        self.write_shared(caller, move |txn, ctx| {
            workspaces::load_for(txn, &ctx.caller, &ws, None, "write:workspaces")?;
            let rev: Revision = match store::endpoints::revision(txn, &ws, &slug, revision)? {
                Some(b) => decode(&b, "endpoint revision")?,
                None => {
                    return Err(ServiceError::not_found(
                        Entity::EndpointRevision,
                        format!("{slug}@{revision}"),
                        format!(
                            "endpoint '{slug}' has no revision {revision} in '{ws}'; list them with `mcp-factory endpoints revisions {slug} --workspace {ws}`"
                        ),
                    ));
                }
            };
            publish(txn, ctx, &ws, &slug, rev.config)
        })
        .await
        .inspect(|e| self.announce(e, Some(e.revision)))
    }

    fn announce(&self, e: &Endpoint, revision: Option<u64>) {
        self.announce_change(&e.workspace_id, &e.slug, revision);
    }

    pub(crate) fn announce_change(&self, ws: &str, slug: &str, revision: Option<u64>) {
        // No receivers is fine: nobody is connected.
        let _ = self.changes.send(Change {
            workspace_id: ws.to_string(),
            slug: slug.to_string(),
            revision,
        });
    }

    /// Announces the endpoints of `ws` that use `collection`: their tools'
    /// schemas and descriptions follow the collection's schema.
    pub(crate) fn announce_users_of(&self, ws: &str, collection: &str) {
        let Ok(txn) = self.store.read() else { return };
        for e in list_in(&txn, ws).unwrap_or_default() {
            let uses = e.config.collections().iter().any(|c| c == collection)
                || e.config
                    .batch
                    .as_ref()
                    .is_some_and(|b| b.operations.contains_key(collection));
            if uses {
                self.announce_change(ws, &e.slug, Some(e.revision));
            }
        }
    }

    /// Endpoint changes from now on (upserts, deletes, rollbacks,
    /// promotions), each sent once it is durable.
    pub fn endpoint_changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    pub fn list_endpoints(&self, caller: &Caller, ws: &str) -> Result<Vec<Endpoint>> {
        let txn = self.store.read()?;
        self.read_workspace(&txn, caller, ws, None, "read:workspaces")?;
        list_in(&txn, ws)
    }

    /// An endpoint; with `resolved`, plus its tools and the JSON Schemas of
    /// the collections it uses.
    pub fn get_endpoint(
        &self,
        caller: &Caller,
        ws: &str,
        slug: &str,
        resolved: bool,
    ) -> Result<Value> {
        let txn = self.store.read()?;
        self.read_workspace(&txn, caller, ws, None, "read:workspaces")?;
        let e = load(&txn, ws, slug)?.ok_or_else(|| not_found(ws, slug))?;
        let mut out =
            serde_json::to_value(&e).map_err(|err| ServiceError::Internal(err.to_string()))?;
        if resolved {
            let schemas = schemas_of(&txn, ws, &e.config)?;
            let tools = e
                .config
                .tools()
                .map_err(|err| ServiceError::Internal(err.to_string()))?;
            out["resolved"] = json!({"collections": schemas, "tools": tools});
        }
        Ok(out)
    }

    pub fn list_endpoint_revisions(
        &self,
        caller: &Caller,
        ws: &str,
        slug: &str,
    ) -> Result<Vec<Revision>> {
        let txn = self.store.read()?;
        self.read_workspace(&txn, caller, ws, None, "read:workspaces")?;
        store::endpoints::revisions(&txn, ws, slug)?
            .iter()
            .map(|b| decode(b, "endpoint revision"))
            .collect()
    }
}

/// What serving one call of an endpoint needs.
#[derive(Clone)]
pub struct Serving {
    pub endpoint: Arc<Endpoint>,
    /// `{"collection": schema}` for the endpoint's collections.
    pub schemas: Value,
    /// [`Serving::schemas`] as JSON text.
    pub schemas_json: Arc<str>,
    /// What the endpoint's configuration lets its code do. A call runs as
    /// the client's token through this scope (see [`Caller::through`]).
    pub scope: Arc<EndpointScope>,
}

/// The endpoint's scope and schemas, read from `v`.
fn serving_of(
    v: &impl View,
    workspace: workspaces::Workspace,
    endpoint: Endpoint,
) -> Result<Serving> {
    let schemas = schemas_of(v, &endpoint.workspace_id, &endpoint.config)?;
    let scope = Arc::new(EndpointScope {
        workspace,
        slug: endpoint.slug.clone(),
        config: endpoint.config.clone(),
        collections: schemas.keys().cloned().collect(),
    });
    let schemas = Value::Object(schemas);
    Ok(Serving {
        endpoint: Arc::new(endpoint),
        schemas_json: Arc::from(schemas.to_string()),
        schemas,
        scope,
    })
}

/// Endpoints resolved at one store generation ([`Store::generation`]),
/// by workspace and slug. Any commit moves the generation and so empties
/// the cache: what a request is served by is never older than the last
/// acknowledged write. Only the resolution is cached; whether the caller
/// may read the workspace is checked on every request.
#[derive(Default)]
pub(crate) struct ServingCache(std::sync::Mutex<Servings>);

#[derive(Default)]
struct Servings {
    generation: u64,
    entries: usize,
    /// Schema bytes held (each counted three times: as text, and roughly
    /// twice that as a parsed value).
    bytes: usize,
    by_workspace:
        std::collections::HashMap<String, std::collections::HashMap<String, Arc<Serving>>>,
}

/// More resolved endpoints than this at one generation empty the cache.
const SERVINGS_MAX: usize = 10_000;
/// Nor may they hold more schema bytes than this (a tenant can make many
/// endpoints over one large schema).
const SERVINGS_MAX_BYTES: usize = 64 << 20;
/// An endpoint whose schemas are larger than this is resolved on every
/// request, as before there was a cache.
const SERVING_MAX_BYTES: usize = 1 << 20;

fn held(serving: &Serving) -> usize {
    serving.schemas_json.len() * 3
}

impl ServingCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Servings> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, generation: u64, ws: &str, slug: &str) -> Option<Arc<Serving>> {
        let c = self.lock();
        if c.generation != generation {
            return None;
        }
        c.by_workspace.get(ws)?.get(slug).cloned()
    }

    fn put(&self, generation: u64, ws: &str, slug: &str, serving: Arc<Serving>) {
        let size = held(&serving);
        if size > SERVING_MAX_BYTES {
            return;
        }
        let mut c = self.lock();
        if c.generation != generation {
            if generation < c.generation {
                return; // resolved before a newer commit: not worth keeping
            }
            *c = Servings {
                generation,
                ..Servings::default()
            };
        }
        if c.entries >= SERVINGS_MAX || c.bytes + size > SERVINGS_MAX_BYTES {
            c.by_workspace.clear();
            c.entries = 0;
            c.bytes = 0;
        }
        let old = c
            .by_workspace
            .entry(ws.to_string())
            .or_default()
            .insert(slug.to_string(), serving);
        match old {
            Some(o) => c.bytes = c.bytes - held(&o) + size,
            None => {
                c.entries += 1;
                c.bytes += size;
            }
        }
    }
}

/// Checks a candidate endpoint revision before it is published: that its
/// custom component loads and lists valid tools for it. The runtime
/// implements it (service cannot call up); [`Service::set_config_check`]
/// installs it, so every door that upserts an endpoint gets the check.
pub trait ConfigCheck: Send + Sync {
    fn check<'a>(
        &'a self,
        service: &'a Service,
        caller: &'a Caller,
        serving: Serving,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>;
}

/// The one workspace a token is scoped to, for endpoint routes: a token
/// naming several workspaces, or `*`, would make "which workspace's
/// endpoint?" ambiguous.
pub fn endpoint_workspace(c: &Caller) -> Result<String> {
    let refuse = |why: String| {
        ServiceError::Forbidden(format!(
            "token '{}' {why}; endpoint routes accept only tokens scoped to exactly one \
             workspace (create one with `mcp-factory tokens create --name agent --grants \
             '[{{\"scope\":{{\"workspaces\":[\"<ws>\"]}},\"permissions\":[\"read:records\",\"write:records\"]}}]'`)",
            c.token_name
        ))
    };
    let mut found: Option<&str> = None;
    for w in c.grants.iter().flat_map(|g| &g.scope.workspaces) {
        if w == "*" {
            return Err(refuse("is a wildcard token (workspaces: \"*\")".into()));
        }
        match found {
            None => found = Some(w),
            Some(f) if f == w => {}
            Some(f) => {
                return Err(refuse(format!(
                    "is scoped to several workspaces ('{f}', '{w}', …)"
                )));
            }
        }
    }
    found
        .map(String::from)
        .ok_or_else(|| refuse("has no workspace".into()))
}

impl Service {
    /// Resolves an endpoint for `client`, who needs `read:records` on the
    /// workspace (each store operation of a call is then checked on its
    /// own, see [`Caller::through`]). One snapshot: the call runs on exactly
    /// one revision.
    ///
    /// Resolutions are cached per store generation ([`ServingCache`]); the
    /// permission check runs every time.
    pub fn serving(&self, client: &Caller, ws: &str, slug: &str) -> Result<Arc<Serving>> {
        // Read before the snapshot (see `Store::generation`).
        let generation = self.store.generation();
        if let Some(hit) = self.servings.get(generation, ws, slug) {
            client.require(&hit.scope.workspace, None, "read:records")?;
            return Ok(hit);
        }
        let txn = self.store.read()?;
        let w = self.read_workspace(&txn, client, ws, None, "read:records")?;
        let endpoint = load(&txn, ws, slug)?.ok_or_else(|| not_found(ws, slug))?;
        let serving = Arc::new(serving_of(&txn, w, endpoint)?);
        self.servings.put(generation, ws, slug, serving.clone());
        Ok(serving)
    }

    /// Resolves endpoint `slug` for an endpoint route: the token must be
    /// scoped to exactly one workspace ([`endpoint_workspace`]), where the
    /// endpoint is looked up.
    pub fn serving_for_route(&self, client: &Caller, slug: &str) -> Result<Arc<Serving>> {
        let ws = endpoint_workspace(client)?;
        self.serving(client, &ws, slug).map_err(|e| match e {
            ServiceError::NotFound { .. } => ServiceError::not_found(
                Entity::Endpoint,
                slug,
                format!(
                    "no endpoint '{slug}' in workspace '{ws}' (the workspace of this token); \
                     list them with `mcp-factory endpoints list --workspace {ws}`"
                ),
            ),
            e => e,
        })
    }

    /// Installs the check every endpoint upsert runs before publishing.
    pub fn set_config_check(&self, check: Arc<dyn ConfigCheck>) {
        let _ = self.config_check.set(check);
    }

    /// Runs the installed [`ConfigCheck`] on what `config` would serve.
    async fn check_candidate(
        &self,
        caller: &Caller,
        ws: &str,
        slug: &str,
        config: &EndpointConfig,
    ) -> Result<()> {
        let Some(check) = self.config_check.get().cloned() else {
            return Ok(());
        };
        if config.component.is_none() {
            return Ok(());
        }
        let serving = self.candidate(caller, ws, slug, config.clone())?;
        check.check(self, caller, serving).await
    }

    /// What `config` would serve as endpoint `slug` of `ws`, before it is
    /// stored (to check a custom component against it).
    pub fn candidate(
        &self,
        caller: &Caller,
        ws: &str,
        slug: &str,
        config: EndpointConfig,
    ) -> Result<Serving> {
        let txn = self.store.read()?;
        let w = self.read_workspace(&txn, caller, ws, None, "write:workspaces")?;
        let tools = validate(&txn, ws, &config)?;
        let old = load(&txn, ws, slug)?;
        let endpoint = Endpoint {
            slug: slug.to_string(),
            workspace_id: ws.to_string(),
            revision: old.as_ref().map_or(0, |o| o.revision) + 1,
            config,
            tools: tools.into_iter().map(|t| t.name).collect(),
            created_at: now(),
            updated_at: now(),
        };
        serving_of(&txn, w, endpoint)
    }

    /// Checks `digest` was uploaded to the family of `ws`, for `caller`.
    pub fn require_component(&self, caller: &Caller, ws: &str, digest: &str) -> Result<()> {
        let txn = self.store.read()?;
        self.read_workspace(&txn, caller, ws, None, "read:workspaces")?;
        super::components::require_uploaded(&txn, ws, digest)
    }

    /// The custom components that endpoints use, each once.
    pub fn endpoint_components(&self) -> Vec<String> {
        let Ok(txn) = self.store.read() else {
            return Vec::new();
        };
        let mut out: Vec<String> = store::endpoints::all(&txn)
            .unwrap_or_default()
            .iter()
            .filter_map(|b| decode::<Endpoint>(b, "endpoint").ok())
            .filter_map(|e| e.config.component)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use mcp_factory_guest::config::EndpointConfig;
    use serde_json::{Value, json};

    use super::Change;
    use crate::service::collections::UpsertCollection;
    use crate::service::workspaces::{CreatePreview, CreateWorkspace};
    use crate::service::{Caller, Service};
    use crate::store::Store;

    /// Workspace `w` with preview `w--dev` holding collection `items`.
    async fn world() -> (tempfile::TempDir, Service) {
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = Service::new(Store::open(dir.path()).expect("store")).expect("service");
        let sys = Caller::system();
        svc.create_workspace(
            &sys,
            CreateWorkspace {
                id: "w".into(),
                name: None,
                description: None,
            },
        )
        .await
        .expect("ws");
        svc.create_preview(
            &sys,
            "w",
            CreatePreview {
                name: "dev".into(),
                description: None,
            },
        )
        .await
        .expect("preview");
        let coll = UpsertCollection {
            name: None,
            description: None,
            schema: json!({"type": "object"}),
        };
        svc.upsert_collection(&sys, "w--dev", "items", coll)
            .await
            .expect("collection");
        (dir, svc)
    }

    /// A resolution is reused until the next commit of any kind; the
    /// caller's permission is checked on every request, hit or not.
    #[tokio::test]
    async fn resolutions_are_reused_only_within_one_store_generation() {
        use std::sync::Arc;

        use crate::service::auth::{Grant, Scope};
        use crate::service::records::UpsertRecord;

        let (_dir, svc) = world().await;
        let sys = Caller::system();
        let config = |ops: Value| -> EndpointConfig {
            serde_json::from_value(json!({"tools": [{"collection": "items", "operations": ops}]}))
                .expect("config")
        };
        svc.upsert_endpoint(&sys, "w--dev", "ep", config(json!(["get"])))
            .await
            .expect("upsert");
        let grants = |perms: &[&str]| {
            vec![Grant {
                scope: Scope {
                    workspaces: vec!["w--dev".into()],
                    collections: None,
                    environments: None,
                },
                permissions: perms.iter().map(|p| p.to_string()).collect(),
            }]
        };
        let reader = Caller::new("t1", "reader", grants(&["read:records"]));
        let writer_only = Caller::new("t2", "writer", grants(&["write:records"]));

        let a = svc.serving(&reader, "w--dev", "ep").expect("served");
        let b = svc.serving(&reader, "w--dev", "ep").expect("served");
        assert!(Arc::ptr_eq(&a, &b), "one generation, one resolution");
        // A hit still checks the caller.
        assert!(matches!(
            svc.serving(&writer_only, "w--dev", "ep"),
            Err(crate::service::ServiceError::Forbidden(_))
        ));
        // Any commit (a record here) starts a new generation.
        svc.upsert_record(
            &sys,
            "w--dev",
            "items",
            serde_json::from_value::<UpsertRecord>(json!({"data": {}})).expect("record"),
        )
        .await
        .expect("record");
        let c = svc.serving(&reader, "w--dev", "ep").expect("served");
        assert!(!Arc::ptr_eq(&a, &c));
        // A new revision is served as soon as its upsert returns.
        svc.upsert_endpoint(&sys, "w--dev", "ep", config(json!(["get", "list"])))
            .await
            .expect("upsert");
        let d = svc.serving(&reader, "w--dev", "ep").expect("served");
        assert_eq!((c.endpoint.revision, d.endpoint.revision), (1, 2));
        svc.delete_endpoint(&sys, "w--dev", "ep")
            .await
            .expect("delete");
        assert!(
            svc.serving(&reader, "w--dev", "ep").is_err(),
            "deleted at once"
        );
    }

    #[tokio::test]
    async fn endpoint_changes_are_announced_after_they_are_durable() {
        let (_dir, svc) = world().await;
        let sys = Caller::system();
        let mut rx = svc.endpoint_changes();
        let config: EndpointConfig = serde_json::from_value(
            json!({"tools": [{"collection": "items", "operations": ["get"]}]}),
        )
        .expect("config");
        svc.upsert_endpoint(&sys, "w--dev", "ep", config)
            .await
            .expect("upsert");
        let change = |rev| Change {
            workspace_id: "w--dev".into(),
            slug: "ep".into(),
            revision: rev,
        };
        assert_eq!(rx.try_recv().expect("announced"), change(Some(1)));
        // A schema change of a collection it uses changes its tools too.
        let changed = UpsertCollection {
            name: None,
            description: None,
            schema: json!({"type": "object", "properties": {"n": {"type": "number"}}}),
        };
        svc.upsert_collection(&sys, "w--dev", "items", changed)
            .await
            .expect("schema change");
        assert_eq!(
            rx.try_recv().expect("schema change announced"),
            change(Some(1))
        );
        let bad: EndpointConfig = serde_json::from_value(
            json!({"tools": [{"collection": "nope", "operations": ["get"]}]}),
        )
        .expect("config");
        assert!(
            svc.upsert_endpoint(&sys, "w--dev", "ep", bad)
                .await
                .is_err()
        );
        assert!(rx.try_recv().is_err(), "a refused change is not announced");
        svc.promote(&sys, "w", "w--dev", true)
            .await
            .expect("dry run");
        assert!(rx.try_recv().is_err(), "a dry run is not announced");
        svc.promote(&sys, "w", "w--dev", false)
            .await
            .expect("promote");
        assert_eq!(
            rx.try_recv().expect("promotion announced"),
            Change {
                workspace_id: "w".into(),
                slug: "ep".into(),
                revision: Some(1)
            }
        );
        svc.delete_endpoint(&sys, "w--dev", "ep")
            .await
            .expect("delete");
        assert_eq!(rx.try_recv().expect("deletion announced"), change(None));
    }

    #[test]
    fn endpoint_routes_take_single_workspace_tokens_only() {
        use super::endpoint_workspace;
        use crate::service::{Grant, Scope};
        let token = |wss: &[&[&str]]| {
            Caller::new(
                "t",
                "t",
                wss.iter()
                    .map(|ws| Grant {
                        scope: Scope {
                            workspaces: ws.iter().map(|s| s.to_string()).collect(),
                            collections: None,
                            environments: None,
                        },
                        permissions: vec!["read:records".into()],
                    })
                    .collect(),
            )
        };
        assert_eq!(endpoint_workspace(&token(&[&["crm"]])).expect("one"), "crm");
        assert_eq!(
            endpoint_workspace(&token(&[&["crm"], &["crm"]])).expect("one"),
            "crm"
        );
        let e = endpoint_workspace(&token(&[&["crm", "ops"]])).expect_err("two");
        assert!(e.to_string().contains("several workspaces"), "{e}");
        let e = endpoint_workspace(&token(&[&["*"]])).expect_err("wildcard");
        assert!(e.to_string().contains("wildcard"), "{e}");
        assert!(endpoint_workspace(&Caller::system()).is_err());
    }
}
