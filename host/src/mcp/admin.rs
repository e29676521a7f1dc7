//! The Admin MCP server (`/mcp`): generic tools over the whole record
//! store, one tool per domain with an `action` parameter, as in the Rekor
//! "MCP Tools" document. Each call runs as the request's token through the
//! same service functions as the REST API, and answers in the REST shapes.
//!
//! Endpoints (grants, limits, components) are configured by people through
//! the CLI and REST API, never by an agent: there is no endpoint tool.

use std::sync::{Arc, LazyLock};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, JsonObject, ListToolsResult,
    PaginatedRequestParams, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::service::collections::UpsertCollection;
use crate::service::records::{Mark, PatchRecord, Query, UpsertRecord};
use crate::service::relationships::{Direction, UpsertRelationship};
use crate::service::sql::SqlRequest;
use crate::service::workspaces::{CreatePreview, CreateWorkspace};
use crate::service::{Caller, Page, Service, ServiceError};

const WORKSPACE_ID: &str = "Workspace id, e.g. \"crm\" (production) or \"crm--dev\" (a preview). \
     List them with manage_workspace({action: \"list\"}).";

/// The Admin MCP tools, in the order `tools/list` shows them.
static TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(|| {
    vec![
        tool(
            "manage_workspace",
            "Manage workspaces. Actions: create, get, list, delete, create_preview, list_previews. \
             Start here to discover existing workspaces before operating: \
             manage_workspace({action: \"list\"}), then manage_collection({action: \"list\", \
             workspace_id}) to see what data types exist, then sql_query to read. Note: schema \
             changes (collections) can only be made in preview workspaces. Use create_preview to \
             create a preview from a production workspace, then promote via CLI \
             (`mcp-factory workspaces promote`).",
            json!({
                "action": {"type": "string", "enum": ["create", "get", "list", "delete", "create_preview", "list_previews"]},
                "workspace_id": {"type": "string", "description": "The workspace to get, delete or preview; the id of a new workspace for create."},
                "name": {"type": "string", "description": "create: display name. create_preview: the preview's name (\"dev\" makes \"crm--dev\")."},
                "description": {"type": "string"}
            }),
            &["action"],
            Hints::Writes { destructive: true },
        ),
        tool(
            "manage_collection",
            "Manage collection schemas. Actions: upsert, get, list, delete. Use list to discover \
             what collections exist in a workspace. A collection's `schema` is a JSON Schema \
             (draft 2020-12) that every record's data must match. upsert and delete work in \
             preview workspaces only.",
            json!({
                "action": {"type": "string", "enum": ["upsert", "get", "list", "delete"]},
                "workspace_id": {"type": "string", "description": WORKSPACE_ID},
                "collection": {"type": "string", "description": "Collection id, e.g. \"contacts\"."},
                "name": {"type": "string", "description": "upsert: display name."},
                "description": {"type": "string"},
                "schema": {"type": "object", "description": "upsert: the JSON Schema of a record's data."},
                "force": {"type": "boolean", "description": "delete: also when records exist."}
            }),
            &["action", "workspace_id"],
            Hints::Writes { destructive: true },
        ),
        tool(
            "manage_record",
            "Create, read, update, delete, or cancel individual records. Actions: upsert, get, \
             update, delete, cancel, query. upsert creates or replaces: supply external_id (and \
             optional external_source) for idempotent writes from external systems — the internal \
             UUID is auto-generated. Use id (the internal UUID, or an external id) for get, update, \
             delete and cancel, or to replace a known record. update merges `data` into the \
             record (JSON merge patch). query filters and sorts one collection. Archived records \
             (_archived: true) are read-only but can be cancelled or deleted.",
            json!({
                "action": {"type": "string", "enum": ["upsert", "get", "update", "delete", "cancel", "query"]},
                "workspace_id": {"type": "string", "description": WORKSPACE_ID},
                "collection": {"type": "string"},
                "id": {"type": "string", "description": "Record id (internal UUID or external id)."},
                "record_id": {"type": "string", "description": "Same as id."},
                "external_id": {"type": "string"},
                "external_source": {"type": "string"},
                "data": {"type": "object", "description": "upsert: the record's data; update: a merge patch."},
                "version": {"type": "integer", "minimum": 0, "description": "Expected current version (optimistic concurrency)."},
                "filter": {"type": "object", "description": "query: e.g. {\"status\": {\"eq\": \"open\"}}."},
                "sort": {"description": "query: e.g. [{\"field\": \"amount\", \"order\": \"desc\"}]."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                "offset": {"type": "integer", "minimum": 0}
            }),
            &["action", "workspace_id", "collection"],
            Hints::Writes { destructive: true },
        ),
        tool(
            "manage_relationship",
            "Create, read, update, or delete relationships between records. Relationships are \
             typed, directed links (rel_type, source → target) with optional metadata. Actions: \
             upsert (by rel_type, source and target; ids may be internal or external), get, \
             delete (by the relationship's id).",
            json!({
                "action": {"type": "string", "enum": ["upsert", "get", "delete"]},
                "workspace_id": {"type": "string", "description": WORKSPACE_ID},
                "id": {"type": "string", "description": "get/delete: the relationship id."},
                "rel_type": {"type": "string"},
                "source_collection": {"type": "string"},
                "source_id": {"type": "string"},
                "target_collection": {"type": "string"},
                "target_id": {"type": "string"},
                "metadata": {"type": "object"}
            }),
            &["action", "workspace_id"],
            Hints::Writes { destructive: true },
        ),
        tool(
            "query_relationships",
            "Query relationships for a specific record. Find related records by type and \
             direction (outgoing, incoming or both; default both).",
            json!({
                "workspace_id": {"type": "string", "description": WORKSPACE_ID},
                "collection": {"type": "string"},
                "record_id": {"type": "string", "description": "Internal UUID or external id."},
                "rel_type": {"type": "string"},
                "direction": {"type": "string", "enum": ["outgoing", "incoming", "both"]}
            }),
            &["workspace_id", "collection", "record_id"],
            Hints::ReadOnly,
        ),
        tool(
            "batch_operations",
            "Execute multiple record, relationship, and collection operations atomically. All \
             operations succeed or all fail. Use for transactions, multi-entity writes, or any case \
             where consistency between operations is required. Max 1,000 operations. Each \
             operation is an object with a \"type\": upsert_record {collection, data, id?, \
             external_id?, external_source?, version?}, delete_record {collection, id}, \
             upsert_relationship {rel_type, source_collection, source_id, target_collection, \
             target_id, metadata?}, delete_relationship {id | rel_type, source…, target…}, \
             upsert_collection {collection, schema, name?, description?}, delete_collection \
             {collection}.",
            json!({
                "workspace_id": {"type": "string", "description": WORKSPACE_ID},
                "operations": {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": 1000}
            }),
            &["workspace_id", "operations"],
            Hints::Writes { destructive: true },
        ),
        tool(
            "sql_query",
            "Execute a read-only SQL query against workspace data. Tables: records, relationships, \
             collections, workspaces, operations_log. Always include workspace_id = \
             {workspace_id:String} and deleted = false in WHERE. Use FINAL after table name. \
             Example: SELECT * FROM records FINAL WHERE workspace_id = {workspace_id:String} AND \
             collection = 'contacts' AND deleted = false LIMIT 10. Read JSON fields with \
             data.field.:String or CAST(data.value, 'Float64').",
            json!({
                "workspace_id": {"type": "string", "description": WORKSPACE_ID},
                "query": {"type": "string"},
                "params": {"type": "object", "description": "Values for {name:Type} placeholders besides workspace_id."}
            }),
            &["workspace_id", "query"],
            Hints::ReadOnly,
        ),
    ]
});

enum Hints {
    ReadOnly,
    Writes { destructive: bool },
}

fn tool(
    name: &'static str,
    description: &'static str,
    props: Value,
    required: &[&str],
    h: Hints,
) -> Tool {
    let schema = json!({
        "type": "object",
        "properties": props,
        "required": required,
    });
    let Value::Object(schema) = schema else {
        unreachable!("a literal object")
    };
    let annotations = match h {
        Hints::ReadOnly => ToolAnnotations::new().read_only(true).open_world(false),
        Hints::Writes { destructive } => ToolAnnotations::new()
            .read_only(false)
            .destructive(destructive)
            .idempotent(false)
            .open_world(false),
    };
    Tool::new(name, description, Arc::new(schema))
        .with_raw_output_schema(super::object_output_schema())
        .with_annotations(annotations)
}

/// The names of the Admin MCP tools, in order.
pub const NAMES: [&str; 7] = [
    "manage_workspace",
    "manage_collection",
    "manage_record",
    "manage_relationship",
    "query_relationships",
    "batch_operations",
    "sql_query",
];

/// Each tool's input schema, compiled once (checked before the tool runs).
static VALIDATORS: LazyLock<Vec<jsonschema::Validator>> = LazyLock::new(|| {
    TOOLS
        .iter()
        .map(|t| {
            jsonschema::validator_for(&Value::Object((*t.input_schema).clone()))
                .unwrap_or_else(|e| panic!("the {} schema is invalid: {e}", t.name))
        })
        .collect()
});

#[derive(Clone)]
pub struct AdminMcp {
    service: Service,
}

impl AdminMcp {
    pub fn new(service: Service) -> AdminMcp {
        AdminMcp { service }
    }
}

/// The arguments of one call, with typed accessors whose errors say which
/// argument is missing or wrong.
struct Args {
    tool: &'static str,
    map: JsonObject,
}

type Out = Result<Value, ServiceError>;

impl Args {
    fn str(&self, key: &str) -> Result<&str, ServiceError> {
        self.opt_str(key)?.ok_or_else(|| {
            ServiceError::invalid(format!("{}: argument '{key}' is required here", self.tool))
        })
    }

    fn opt_str(&self, key: &str) -> Result<Option<&str>, ServiceError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ServiceError::invalid(format!(
                "{}: argument '{key}' must be a string",
                self.tool
            ))),
        }
    }

    fn action(&self, actions: &[&str]) -> Result<&str, ServiceError> {
        let a = self.str("action")?;
        if actions.contains(&a) {
            Ok(a)
        } else {
            Err(ServiceError::invalid(format!(
                "{}: unknown action '{a}'; use one of {}",
                self.tool,
                actions.join(", ")
            )))
        }
    }

    /// The record id: `id` or `record_id`.
    fn record_id(&self) -> Result<&str, ServiceError> {
        match self.opt_str("id")? {
            Some(id) => Ok(id),
            None => self.opt_str("record_id")?.ok_or_else(|| {
                ServiceError::invalid(format!(
                    "{}: argument 'id' (or 'record_id') is required here",
                    self.tool
                ))
            }),
        }
    }

    /// The named arguments as a request body of type `T` (unknown fields
    /// are refused by `T`).
    fn body<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<T, ServiceError> {
        let mut m = Map::new();
        for k in keys {
            let (from, to) = k.split_once('=').unwrap_or((k, k));
            if let Some(v) = self.map.get(from).filter(|v| !v.is_null()) {
                m.insert(to.to_string(), v.clone());
            }
        }
        serde_json::from_value(Value::Object(m))
            .map_err(|e| ServiceError::invalid(format!("{}: {e}", self.tool)))
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Out {
    serde_json::to_value(v).map_err(|e| ServiceError::Internal(e.to_string()))
}

fn list<T: serde::Serialize>(all: Vec<T>) -> Out {
    let n = all.len();
    to_value(Page::of(all, n.max(1), 0))
}

impl AdminMcp {
    async fn run(&self, c: &Caller, a: &Args) -> Out {
        let s = &self.service;
        match a.tool {
            "manage_workspace" => {
                match a.action(&[
                    "create",
                    "get",
                    "list",
                    "delete",
                    "create_preview",
                    "list_previews",
                ])? {
                    "list" => list(s.list_workspaces(c, None)?),
                    "create" => {
                        let req: CreateWorkspace =
                            a.body(&["workspace_id=id", "name", "description"])?;
                        to_value(s.create_workspace(c, req).await?)
                    }
                    "get" => to_value(s.get_workspace(c, a.str("workspace_id")?)?),
                    "delete" => to_value(s.delete_workspace(c, a.str("workspace_id")?).await?),
                    "create_preview" => {
                        let req: CreatePreview = a.body(&["name", "description"])?;
                        to_value(s.create_preview(c, a.str("workspace_id")?, req).await?)
                    }
                    _ => list(s.list_previews(c, a.str("workspace_id")?)?),
                }
            }
            "manage_collection" => {
                let ws = a.str("workspace_id")?;
                match a.action(&["upsert", "get", "list", "delete"])? {
                    "list" => list(s.list_collections(c, ws)?),
                    "get" => to_value(s.get_collection(c, ws, a.str("collection")?)?),
                    "upsert" => {
                        let req: UpsertCollection = a.body(&["name", "description", "schema"])?;
                        to_value(
                            s.upsert_collection(c, ws, a.str("collection")?, req)
                                .await?,
                        )
                    }
                    _ => {
                        let force = a.map.get("force").and_then(Value::as_bool).unwrap_or(false);
                        to_value(
                            s.delete_collection(c, ws, a.str("collection")?, force)
                                .await?,
                        )
                    }
                }
            }
            "manage_record" => {
                let ws = a.str("workspace_id")?;
                let coll = a.str("collection")?;
                match a.action(&["upsert", "get", "update", "delete", "cancel", "query"])? {
                    "upsert" => {
                        let mut req: UpsertRecord =
                            a.body(&["data", "external_id", "external_source", "version"])?;
                        req.id = a
                            .opt_str("id")?
                            .or(a.opt_str("record_id")?)
                            .map(String::from);
                        to_value(s.upsert_record(c, ws, coll, req).await?)
                    }
                    "get" => to_value(s.get_record(c, ws, coll, a.record_id()?)?),
                    "update" => {
                        let req: PatchRecord = a.body(&["data", "version"])?;
                        to_value(s.patch_record(c, ws, coll, a.record_id()?, req).await?)
                    }
                    "delete" => to_value(
                        s.mark_record(c, ws, coll, a.record_id()?, Mark::Delete)
                            .await?,
                    ),
                    "cancel" => to_value(
                        s.mark_record(c, ws, coll, a.record_id()?, Mark::Cancel)
                            .await?,
                    ),
                    _ => {
                        let q: Query = a.body(&["filter", "sort", "limit", "offset"])?;
                        to_value(s.query_records(c, ws, coll, &q)?)
                    }
                }
            }
            "manage_relationship" => {
                let ws = a.str("workspace_id")?;
                match a.action(&["upsert", "get", "delete"])? {
                    "upsert" => {
                        let req: UpsertRelationship = a.body(&[
                            "rel_type",
                            "source_collection",
                            "source_id",
                            "target_collection",
                            "target_id",
                            "metadata",
                        ])?;
                        to_value(s.upsert_relationship(c, ws, req).await?)
                    }
                    "get" => to_value(s.get_relationship(c, ws, a.str("id")?)?),
                    _ => to_value(s.delete_relationship(c, ws, a.str("id")?).await?),
                }
            }
            "query_relationships" => {
                let direction: Direction = a.opt_str("direction")?.unwrap_or("both").parse()?;
                list(s.query_relationships(
                    c,
                    a.str("workspace_id")?,
                    a.str("collection")?,
                    a.str("record_id")?,
                    a.opt_str("rel_type")?,
                    direction,
                )?)
            }
            "batch_operations" => {
                let ops = match a.map.get("operations") {
                    Some(Value::Array(ops)) => ops.clone(),
                    _ => {
                        return Err(ServiceError::invalid(
                            "batch_operations: 'operations' must be an array of operations",
                        ));
                    }
                };
                to_value(s.batch(c, a.str("workspace_id")?, ops).await?)
            }
            _ => {
                let req: SqlRequest = a.body(&["query", "params"])?;
                to_value(s.sql_query(c, a.str("workspace_id")?, req).await?)
            }
        }
    }
}

impl ServerHandler for AdminMcp {
    fn get_info(&self) -> ServerConfig {
        super::server_info(
            "mcp-factory-admin",
            "Admin tools over the mcp-factory record store. Start with \
             manage_workspace({action: \"list\"}), then manage_collection({action: \"list\", \
             workspace_id}), then read with sql_query or manage_record.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(TOOLS.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let c = super::request_caller(&ctx)?;
        let Some(i) = NAMES.iter().position(|n| *n == request.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool '{}'; the Admin MCP has {}",
                    request.name,
                    NAMES.join(", ")
                ),
                None,
            ));
        };
        let map = request.arguments.unwrap_or_default();
        let value = Value::Object(map);
        let problems: Vec<String> = VALIDATORS[i]
            .iter_errors(&value)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if !problems.is_empty() {
            let e = ServiceError::invalid(format!(
                "{}: the arguments do not match its input schema: {}",
                NAMES[i],
                problems.join("; ")
            ));
            return Ok(CallToolResponse::Complete(super::error_result(&e)?));
        }
        let Value::Object(map) = value else {
            unreachable!("built from a map")
        };
        let args = Args {
            tool: NAMES[i],
            map,
        };
        let result: CallToolResult = match self.run(&c.caller, &args).await {
            Ok(v) => super::json_result(v, false),
            Err(e) => super::error_result(&e)?,
        };
        Ok(CallToolResponse::Complete(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_validators_and_tools_agree() {
        let listed: Vec<&str> = TOOLS.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(listed, NAMES);
        assert_eq!(VALIDATORS.len(), NAMES.len());
        for t in TOOLS.iter() {
            let d = t.description.as_deref().unwrap_or("");
            assert!(
                d.len() > 40,
                "{} needs a description that teaches its use",
                t.name
            );
            assert_eq!(t.input_schema["type"], "object");
        }
        // Descriptions teach the discovery pattern.
        assert!(
            TOOLS[0]
                .description
                .as_deref()
                .unwrap_or("")
                .contains("manage_collection")
        );
    }
}
