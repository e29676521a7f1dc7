//! The REST API under `/v1`, in the REKOR-SURFACE shapes. Handlers only
//! translate between HTTP and `service` calls.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Auth, Body, Params, RawBody};
use crate::runtime::{CallErrorKind, RunError};
use crate::service::Page;
use crate::service::collections::UpsertCollection;
use crate::service::hooks::{CreateHook, HookAuth};
use crate::service::records::{Mark, PatchRecord, Query as RecordQuery, UpsertRecord};
use crate::service::relationships::{Direction, UpsertRelationship};
use crate::service::sql::SqlRequest;
use crate::service::tokens::CreateToken;
use crate::service::triggers::CreateTrigger;
use crate::service::workspaces::{CreatePreview, CreateWorkspace};
use mcp_factory_guest::config::EndpointConfig;

type Res = Result<Response, ApiError>;

fn ok<T: serde::Serialize>(v: T) -> Res {
    Ok(axum::Json(v).into_response())
}

fn created<T: serde::Serialize>(v: T) -> Res {
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

fn list<T: serde::Serialize>(all: Vec<T>) -> Res {
    let n = all.len();
    ok(Page::of(all, n.max(1), 0))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/workspaces",
            get(list_workspaces).post(create_workspace),
        )
        .route(
            "/v1/workspaces/{id}",
            get(get_workspace).delete(delete_workspace),
        )
        .route(
            "/v1/workspaces/{id}/previews",
            get(list_previews).post(create_preview),
        )
        .route("/v1/workspaces/{id}/promote", post(promote))
        .route("/v1/workspaces/{id}/promotions", get(list_promotions))
        .route(
            "/v1/workspaces/{id}/promotions/{pid}/rollback",
            post(rollback),
        )
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/v1/{ws}/collections", get(list_collections))
        .route(
            "/v1/{ws}/collections/{name}",
            get(get_collection)
                .put(upsert_collection)
                .delete(delete_collection),
        )
        .route(
            "/v1/{ws}/records/{coll}",
            get(list_records).put(upsert_record).post(upsert_record),
        )
        .route("/v1/{ws}/records/{coll}/query", post(query_records))
        .route(
            "/v1/{ws}/records/{coll}/{id}",
            get(get_record).patch(patch_record).delete(delete_record),
        )
        .route("/v1/{ws}/records/{coll}/{id}/cancel", post(cancel_record))
        .route("/v1/{ws}/records/{coll}/{id}/archive", post(archive_record))
        .route(
            "/v1/{ws}/records/{coll}/{id}/relationships",
            get(record_relationships),
        )
        .route(
            "/v1/{ws}/relationships",
            put(upsert_relationship).post(upsert_relationship),
        )
        .route(
            "/v1/{ws}/relationships/{id}",
            get(get_relationship).delete(delete_relationship),
        )
        .route("/v1/{ws}/endpoints", get(list_endpoints))
        .route(
            "/v1/{ws}/endpoints/{slug}",
            get(get_endpoint)
                .put(upsert_endpoint)
                .delete(delete_endpoint),
        )
        .route(
            "/v1/{ws}/endpoints/{slug}/revisions",
            get(list_endpoint_revisions),
        )
        .route(
            "/v1/{ws}/endpoints/{slug}/rollback",
            post(rollback_endpoint),
        )
        .route("/v1/{ws}/endpoints/{slug}/tools", get(endpoint_tools))
        .route(
            "/v1/{ws}/endpoints/{slug}/tools/{name}",
            post(call_endpoint_tool),
        )
        .route("/v1/{ws}/endpoints/{slug}/logs", get(endpoint_logs))
        .route(
            "/v1/{ws}/plugins",
            get(list_plugins)
                .post(upload_plugin)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::runtime::MAX_COMPONENT_BYTES,
                )),
        )
        .route(
            "/v1/{ws}/plugins/{digest}",
            axum::routing::delete(delete_plugin),
        )
        .route("/v1/{ws}/hooks", get(list_hooks).post(create_hook))
        .route("/v1/{ws}/hooks/{id}", get(get_hook).delete(delete_hook))
        .route(
            "/v1/{ws}/hooks/{id}/rotate-secret",
            post(rotate_hook_secret),
        )
        .route("/v1/{ws}/hooks/{id}/ingest", post(ingest))
        .route("/v1/{ws}/triggers", get(list_triggers).post(create_trigger))
        .route(
            "/v1/{ws}/triggers/{id}",
            get(get_trigger).delete(delete_trigger),
        )
        .route(
            "/v1/{ws}/triggers/{id}/rotate-secret",
            post(rotate_trigger_secret),
        )
        .route("/v1/{ws}/triggers/{id}/enable", post(enable_trigger))
        .route("/v1/{ws}/triggers/{id}/replay", post(replay_trigger))
        .route("/v1/{ws}/triggers/{id}/deliveries", get(trigger_deliveries))
        .route("/v1/{ws}/batch", post(batch))
        .route("/v1/{ws}/sql", post(sql_query))
        .route("/v1/{ws}/operations", get(list_operations))
}

// ---- workspaces ----

async fn list_workspaces(State(s): State<AppState>, Auth(c): Auth) -> Res {
    list(s.service.list_workspaces(&c, None)?)
}

async fn create_workspace(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(req): Body<CreateWorkspace>,
) -> Res {
    created(s.service.create_workspace(&c, req).await?)
}

async fn get_workspace(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> Res {
    ok(s.service.get_workspace(&c, &id)?)
}

async fn delete_workspace(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> Res {
    ok(s.service.delete_workspace(&c, &id).await?)
}

async fn list_previews(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> Res {
    list(s.service.list_previews(&c, &id)?)
}

async fn create_preview(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(req): Body<CreatePreview>,
) -> Res {
    created(s.service.create_preview(&c, &id, req).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    from: String,
    #[serde(default)]
    dry_run: bool,
}

async fn promote(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<PromoteBody>,
) -> Res {
    ok(s.service.promote(&c, &id, &b.from, b.dry_run).await?)
}

async fn list_promotions(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> Res {
    list(s.service.list_promotions(&c, &id)?)
}

async fn rollback(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((id, pid)): Path<(String, String)>,
) -> Res {
    ok(s.service.rollback(&c, &id, &pid).await?)
}

// ---- tokens ----

async fn list_tokens(State(s): State<AppState>, Auth(c): Auth) -> Res {
    list(s.service.list_tokens(&c))
}

async fn create_token(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(req): Body<CreateToken>,
) -> Res {
    created(s.service.create_token(&c, req).await?)
}

async fn revoke_token(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> Res {
    ok(s.service.revoke_token(&c, &id).await?)
}

// ---- collections ----

async fn list_collections(State(s): State<AppState>, Auth(c): Auth, Path(ws): Path<String>) -> Res {
    list(s.service.list_collections(&c, &ws)?)
}

async fn get_collection(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, name)): Path<(String, String)>,
) -> Res {
    ok(s.service.get_collection(&c, &ws, &name)?)
}

async fn upsert_collection(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, name)): Path<(String, String)>,
    Body(req): Body<UpsertCollection>,
) -> Res {
    ok(s.service.upsert_collection(&c, &ws, &name, req).await?)
}

#[derive(Deserialize)]
struct ForceParam {
    #[serde(default)]
    force: bool,
}

async fn delete_collection(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, name)): Path<(String, String)>,
    Params(q): Params<ForceParam>,
) -> Res {
    ok(s.service.delete_collection(&c, &ws, &name, q.force).await?)
}

// ---- records ----

#[derive(Deserialize)]
struct ListParams {
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn list_records(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, coll)): Path<(String, String)>,
    Params(p): Params<ListParams>,
) -> Res {
    let q = RecordQuery {
        limit: p.limit,
        offset: p.offset,
        ..Default::default()
    };
    ok(s.service.query_records(&c, &ws, &coll, &q).await?)
}

async fn query_records(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, coll)): Path<(String, String)>,
    Body(q): Body<RecordQuery>,
) -> Res {
    ok(s.service.query_records(&c, &ws, &coll, &q).await?)
}

async fn upsert_record(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, coll)): Path<(String, String)>,
    Body(req): Body<UpsertRecord>,
) -> Res {
    ok(s.service.upsert_record(&c, &ws, &coll, req).await?)
}

async fn get_record(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, coll, id)): Path<(String, String, String)>,
) -> Res {
    let bytes = s.service.get_record_json(&c, &ws, &coll, &id)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

async fn patch_record(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, coll, id)): Path<(String, String, String)>,
    Body(req): Body<PatchRecord>,
) -> Res {
    ok(s.service.patch_record(&c, &ws, &coll, &id, req).await?)
}

async fn mark(s: AppState, c: Auth, (ws, coll, id): (String, String, String), m: Mark) -> Res {
    ok(s.service.mark_record(&c.0, &ws, &coll, &id, m).await?)
}

async fn delete_record(
    State(s): State<AppState>,
    c: Auth,
    Path(p): Path<(String, String, String)>,
) -> Res {
    mark(s, c, p, Mark::Delete).await
}

async fn cancel_record(
    State(s): State<AppState>,
    c: Auth,
    Path(p): Path<(String, String, String)>,
) -> Res {
    mark(s, c, p, Mark::Cancel).await
}

async fn archive_record(
    State(s): State<AppState>,
    c: Auth,
    Path(p): Path<(String, String, String)>,
) -> Res {
    mark(s, c, p, Mark::Archive).await
}

#[derive(Deserialize)]
struct RelParams {
    #[serde(rename = "type")]
    rel_type: Option<String>,
    direction: Option<String>,
}

async fn record_relationships(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, coll, id)): Path<(String, String, String)>,
    Params(p): Params<RelParams>,
) -> Res {
    let direction: Direction = p.direction.as_deref().unwrap_or("both").parse()?;
    list(
        s.service
            .query_relationships(&c, &ws, &coll, &id, p.rel_type.as_deref(), direction)?,
    )
}

// ---- relationships ----

async fn upsert_relationship(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(ws): Path<String>,
    Body(req): Body<UpsertRelationship>,
) -> Res {
    ok(s.service.upsert_relationship(&c, &ws, req).await?)
}

async fn get_relationship(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, id)): Path<(String, String)>,
) -> Res {
    ok(s.service.get_relationship(&c, &ws, &id)?)
}

async fn delete_relationship(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, id)): Path<(String, String)>,
) -> Res {
    ok(s.service.delete_relationship(&c, &ws, &id).await?)
}

// ---- endpoints ----

async fn list_endpoints(State(s): State<AppState>, Auth(c): Auth, Path(ws): Path<String>) -> Res {
    list(s.service.list_endpoints(&c, &ws)?)
}

#[derive(Deserialize)]
struct ResolvedParam {
    #[serde(default)]
    resolved: bool,
}

async fn get_endpoint(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, slug)): Path<(String, String)>,
    Params(p): Params<ResolvedParam>,
) -> Res {
    ok(s.service.get_endpoint(&c, &ws, &slug, p.resolved)?)
}

async fn upsert_endpoint(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, slug)): Path<(String, String)>,
    Body(config): Body<EndpointConfig>,
) -> Res {
    ok(s.service.upsert_endpoint(&c, &ws, &slug, config).await?)
}

async fn delete_endpoint(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, slug)): Path<(String, String)>,
) -> Res {
    ok(s.service.delete_endpoint(&c, &ws, &slug).await?)
}

async fn list_endpoint_revisions(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, slug)): Path<(String, String)>,
) -> Res {
    list(s.service.list_endpoint_revisions(&c, &ws, &slug)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    revision: u64,
}

async fn rollback_endpoint(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, slug)): Path<(String, String)>,
    Body(b): Body<RollbackBody>,
) -> Res {
    ok(s.service
        .rollback_endpoint(&c, &ws, &slug, b.revision)
        .await?)
}

async fn endpoint_tools(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, slug)): Path<(String, String)>,
) -> Res {
    let tools = s
        .runtime
        .endpoint_tools(&s.service, &c, &ws, &slug)
        .await
        .map_err(run_error)?;
    let data: Vec<Value> = tools
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name,
                "description": t.description,
                "input_schema": serde_json::from_str::<Value>(&t.input_schema).unwrap_or(Value::Null),
                "annotations": {"read_only": t.annotations.read_only, "destructive": t.annotations.destructive,
                                "idempotent": t.annotations.idempotent},
            })
        })
        .collect();
    list(data)
}

/// Calls one endpoint tool with the body as its arguments (the route MCP
/// clients reach through `/e/{slug}/mcp` in a later issue).
async fn call_endpoint_tool(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, slug, name)): Path<(String, String, String)>,
    Body(args): Body<Value>,
) -> Res {
    if !args.is_object() {
        return Err(ApiError::bad_request(
            "tool arguments must be a JSON object",
        ));
    }
    let r = s
        .runtime
        .call_endpoint_tool(&s.service, &c, &ws, &slug, &name, &args.to_string())
        .await
        .map_err(run_error)?;
    let content: Value = serde_json::from_str(&r.content).unwrap_or(Value::String(r.content));
    ok(json!({"content": content, "is_error": r.is_error}))
}

#[derive(Deserialize)]
struct LogParams {
    limit: Option<usize>,
}

async fn endpoint_logs(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, slug)): Path<(String, String)>,
    Params(p): Params<LogParams>,
) -> Res {
    s.service.get_endpoint(&c, &ws, &slug, false)?;
    let limit = p.limit.unwrap_or(100).min(crate::runtime::logs::KEEP);
    list(s.runtime.log_tail(&ws, &slug, limit))
}

// ---- plugins (custom components) ----

async fn delete_plugin(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, digest)): Path<(String, String)>,
) -> Res {
    ok(s.service.delete_component(&c, &ws, &digest).await?)
}

async fn list_plugins(State(s): State<AppState>, Auth(c): Auth, Path(ws): Path<String>) -> Res {
    list(s.service.list_components(&c, &ws)?)
}

/// The body is the component's bytes (`application/wasm`).
async fn upload_plugin(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(ws): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Res {
    let wasm = body.map_err(|e| {
        ApiError::new(
            e.status(),
            "PAYLOAD_TOO_LARGE",
            format!(
                "reading the component failed: {e} (the limit is {} bytes)",
                crate::runtime::MAX_COMPONENT_BYTES
            ),
        )
    })?;
    if wasm.is_empty() {
        return Err(ApiError::bad_request(
            "send the component's bytes as the request body (Content-Type: application/wasm)",
        ));
    }
    let up = s
        .runtime
        .upload(&s.service, &c, &ws, wasm.to_vec())
        .await
        .map_err(run_error)?;
    created(up)
}

fn run_error(e: RunError) -> ApiError {
    match e {
        RunError::Service(s) => s.into(),
        RunError::Call(m, CallErrorKind::UnknownTool) => {
            ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", m)
        }
        RunError::Call(m, CallErrorKind::InvalidArguments) => ApiError::bad_request(m),
        RunError::Call(m, CallErrorKind::Failed) | RunError::Sandbox(m) | RunError::Load(m) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ENDPOINT_ERROR", m)
        }
    }
}

// ---- batch, operations log ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    operations: Vec<Value>,
}

async fn batch(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(ws): Path<String>,
    Body(b): Body<BatchBody>,
) -> Res {
    ok(s.service.batch(&c, &ws, b.operations).await?)
}

async fn sql_query(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(ws): Path<String>,
    Body(req): Body<SqlRequest>,
) -> Res {
    ok(s.service.sql_query(&c, &ws, req).await?)
}

#[derive(Deserialize)]
struct OpsParams {
    after: Option<u64>,
    limit: Option<usize>,
}

async fn list_operations(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(ws): Path<String>,
    Params(p): Params<OpsParams>,
) -> Res {
    ok(s.service
        .list_operations(&c, &ws, p.after.unwrap_or(0), p.limit)
        .await?)
}

// ---- hooks ----

async fn list_hooks(State(s): State<AppState>, Auth(c): Auth, Path(ws): Path<String>) -> Res {
    list(s.service.list_hooks(&c, &ws)?)
}

async fn create_hook(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(ws): Path<String>,
    Body(req): Body<CreateHook>,
) -> Res {
    created(s.service.create_hook(&c, &ws, req).await?)
}

async fn get_hook(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, id)): Path<(String, String)>,
) -> Res {
    ok(s.service.get_hook(&c, &ws, &id)?)
}

async fn delete_hook(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, id)): Path<(String, String)>,
) -> Res {
    ok(s.service.delete_hook(&c, &ws, &id).await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    #[serde(default)]
    grace_seconds: Option<u64>,
}

/// An optional JSON body: empty is the default.
fn optional<T: Default + serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, ApiError> {
    if b.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        super::extract::parse_json(b)
    }
}

async fn rotate_hook_secret(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, id)): Path<(String, String)>,
    RawBody(b): RawBody,
) -> Res {
    let r: Rotate = optional(&b)?;
    ok(s.service
        .rotate_hook_secret(&c, &ws, &id, r.grace_seconds)
        .await?)
}

/// Hook ingest: authenticated by the hook's secret (bearer or Standard
/// Webhooks signature), never by a token.
async fn ingest(
    State(s): State<AppState>,
    Path((ws, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    RawBody(body): RawBody,
) -> Res {
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str().map(str::to_string).map_err(|_| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "UNAUTHORIZED",
                        format!("the {name} header is not valid text"),
                    )
                })
            })
            .transpose()
    };
    let signature = text(crate::webhooks::SIGNATURE)?;
    let auth = match (super::extract::bearer(&headers)?, signature) {
        (_, Some(signature)) => {
            let missing = |h: &str| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    format!("a signed request needs the {h} header too"),
                )
            };
            HookAuth::Signed {
                id: text(crate::webhooks::ID)?.ok_or_else(|| missing(crate::webhooks::ID))?,
                timestamp: text(crate::webhooks::TIMESTAMP)?
                    .ok_or_else(|| missing(crate::webhooks::TIMESTAMP))?,
                signature,
            }
        }
        (Some(b), None) => HookAuth::Bearer(b.to_string()),
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "hook ingest needs the hook's secret: `Authorization: Bearer whsec_…`, or a Standard Webhooks signature (webhook-id, webhook-timestamp, webhook-signature)",
            ));
        }
    };
    let key = match &auth {
        HookAuth::Signed { id, .. } => Some(id.clone()),
        HookAuth::Bearer(_) => text("idempotency-key")?,
    };
    ok(s.service.ingest(&ws, &id, auth, key, body).await?)
}

// ---- triggers ----

async fn list_triggers(State(s): State<AppState>, Auth(c): Auth, Path(ws): Path<String>) -> Res {
    list(s.service.list_triggers(&c, &ws).await?)
}

async fn create_trigger(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(ws): Path<String>,
    Body(req): Body<CreateTrigger>,
) -> Res {
    created(s.service.create_trigger(&c, &ws, req).await?)
}

async fn get_trigger(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, id)): Path<(String, String)>,
) -> Res {
    ok(s.service.get_trigger(&c, &ws, &id).await?)
}

async fn delete_trigger(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, id)): Path<(String, String)>,
) -> Res {
    ok(s.service.delete_trigger(&c, &ws, &id).await?)
}

async fn rotate_trigger_secret(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, id)): Path<(String, String)>,
    RawBody(b): RawBody,
) -> Res {
    let r: Rotate = optional(&b)?;
    ok(s.service
        .rotate_trigger_secret(&c, &ws, &id, r.grace_seconds)
        .await?)
}

async fn enable_trigger(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, id)): Path<(String, String)>,
) -> Res {
    ok(s.service.enable_trigger(&c, &ws, &id).await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Replay {
    #[serde(default)]
    seq: Option<u64>,
}

async fn replay_trigger(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, id)): Path<(String, String)>,
    RawBody(b): RawBody,
) -> Res {
    let r: Replay = optional(&b)?;
    ok(s.service.replay_trigger(&c, &ws, &id, r.seq).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
}

async fn trigger_deliveries(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((ws, id)): Path<(String, String)>,
    Params(q): Params<DeliveriesQuery>,
) -> Res {
    let dead = match q.status.as_deref() {
        None | Some("pending") => false,
        Some("dead") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "status must be 'pending' or 'dead', got '{other}'"
            )));
        }
    };
    ok(s.service
        .trigger_deliveries(&c, &ws, &id, dead, q.limit, q.offset)
        .await?)
}

pub async fn health() -> Res {
    ok(json!({"status": "ok"}))
}
