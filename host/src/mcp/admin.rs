//! The Admin MCP server (`/mcp`): generic tools over the whole record
//! store, one tool per domain with an `action` parameter, as in the Rekor
//! "MCP Tools" document. Each call runs as the request's token through the
//! same service functions as the REST API, and answers in the REST shapes.
//!
//! The tools are one typed table. [`Tool`] names them; each tool's
//! [`Spec`] holds its description, its examples (JSON values, rendered into
//! the description and run by a test), its hand-written input schema and
//! its annotations; each tool's arguments are a serde type next to its spec
//! (tagged by `action` where the tool has actions), and [`Call`] is the
//! enum over them that [`AdminMcp::run`] dispatches. The tests below check
//! that the schemas, the serde types and the examples agree.
//!
//! Endpoints (grants, limits, components) are configured by people through
//! the CLI and REST API, never by an agent: there is no endpoint tool.

use std::sync::{Arc, LazyLock};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, JsonObject, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ServerConfig, SubscriptionFilter, Tool as McpTool, ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData, ServerHandler};
use serde::Deserialize;
#[cfg(test)]
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::service::collections::UpsertCollection;
use crate::service::hooks::CreateHook;
use crate::service::records::{Mark, PatchRecord, Query, UpsertRecord};
use crate::service::relationships::{Direction, UpsertRelationship};
use crate::service::sql::SqlRequest;
use crate::service::triggers::{CreateTrigger, Event};
use crate::service::workspaces::{CreatePreview, CreateWorkspace};
use crate::service::{Caller, Page, Service, ServiceError};

/// The Admin MCP tools, in the order `tools/list` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    ManageWorkspace,
    ManageCollection,
    ManageRecord,
    ManageRelationship,
    QueryRelationships,
    ManageHook,
    ManageTrigger,
    BatchOperations,
    SqlQuery,
}

impl Tool {
    pub const ALL: [Tool; 9] = [
        Tool::ManageWorkspace,
        Tool::ManageCollection,
        Tool::ManageRecord,
        Tool::ManageRelationship,
        Tool::QueryRelationships,
        Tool::ManageHook,
        Tool::ManageTrigger,
        Tool::BatchOperations,
        Tool::SqlQuery,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tool::ManageWorkspace => "manage_workspace",
            Tool::ManageCollection => "manage_collection",
            Tool::ManageRecord => "manage_record",
            Tool::ManageRelationship => "manage_relationship",
            Tool::QueryRelationships => "query_relationships",
            Tool::ManageHook => "manage_hook",
            Tool::ManageTrigger => "manage_trigger",
            Tool::BatchOperations => "batch_operations",
            Tool::SqlQuery => "sql_query",
        }
    }

    pub fn named(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.name() == name)
    }

    fn spec(self) -> Spec {
        match self {
            Tool::ManageWorkspace => workspace_spec(),
            Tool::ManageCollection => collection_spec(),
            Tool::ManageRecord => record_spec(),
            Tool::ManageRelationship => relationship_spec(),
            Tool::QueryRelationships => query_relationships_spec(),
            Tool::ManageHook => hook_spec(),
            Tool::ManageTrigger => trigger_spec(),
            Tool::BatchOperations => batch_spec(),
            Tool::SqlQuery => sql_spec(),
        }
    }

    /// The arguments (already checked against the input schema) as this
    /// tool's typed call.
    fn parse(self, args: Value) -> Result<Call, ServiceError> {
        let tool = self.name();
        Ok(match self {
            Tool::ManageWorkspace => Call::Workspace(typed(tool, args)?),
            Tool::ManageCollection => Call::Collection(typed(tool, args)?),
            Tool::ManageRecord => Call::Record(typed(tool, args)?),
            Tool::ManageRelationship => Call::Relationship(typed(tool, args)?),
            Tool::QueryRelationships => Call::QueryRelationships(typed(tool, args)?),
            Tool::ManageHook => Call::Hook(typed(tool, args)?),
            Tool::ManageTrigger => Call::Trigger(typed(tool, args)?),
            Tool::BatchOperations => Call::Batch(typed(tool, args)?),
            Tool::SqlQuery => Call::Sql(typed(tool, args)?),
        })
    }
}

/// One parsed Admin MCP call: the tool and its typed arguments.
#[derive(Debug)]
enum Call {
    Workspace(WorkspaceCall),
    Collection(CollectionCall),
    Record(RecordCall),
    Relationship(RelationshipCall),
    QueryRelationships(QueryRelationshipsCall),
    Hook(HookCall),
    Trigger(TriggerCall),
    Batch(BatchCall),
    Sql(SqlCall),
}

#[cfg(test)]
impl Call {
    fn tool(&self) -> Tool {
        match self {
            Call::Workspace(_) => Tool::ManageWorkspace,
            Call::Collection(_) => Tool::ManageCollection,
            Call::Record(_) => Tool::ManageRecord,
            Call::Relationship(_) => Tool::ManageRelationship,
            Call::QueryRelationships(_) => Tool::QueryRelationships,
            Call::Hook(_) => Tool::ManageHook,
            Call::Trigger(_) => Tool::ManageTrigger,
            Call::Batch(_) => Tool::BatchOperations,
            Call::Sql(_) => Tool::SqlQuery,
        }
    }

    /// The arguments as the serde type sees them (every field it reads).
    fn fields(&self) -> serde_json::Result<Value> {
        match self {
            Call::Workspace(a) => serde_json::to_value(a),
            Call::Collection(a) => serde_json::to_value(a),
            Call::Record(a) => serde_json::to_value(a),
            Call::Relationship(a) => serde_json::to_value(a),
            Call::QueryRelationships(a) => serde_json::to_value(a),
            Call::Hook(a) => serde_json::to_value(a),
            Call::Trigger(a) => serde_json::to_value(a),
            Call::Batch(a) => serde_json::to_value(a),
            Call::Sql(a) => serde_json::to_value(a),
        }
    }
}

/// `args` as `T`. A missing argument is named as the caller wrote it.
fn typed<T: DeserializeOwned>(tool: &str, args: Value) -> Result<T, ServiceError> {
    serde_json::from_value(args).map_err(|e| {
        let e = e.to_string();
        let message = match e
            .strip_prefix("missing field `")
            .and_then(|f| f.strip_suffix('`'))
        {
            Some(field) => format!("argument '{field}' is required here"),
            None => e,
        };
        ServiceError::invalid(format!("{tool}: {message}"))
    })
}

/// What `tools/list` shows of a tool, and what its examples are.
struct Spec {
    /// What the tool is for and how to use it; the examples follow it.
    about: String,
    /// Calls the server accepts, in an order that runs as a story against a
    /// workspace `crm` (with its preview `crm--dev`) that has the
    /// collections `contacts` and `invoices` (see the tests).
    examples: Vec<Value>,
    properties: Value,
    required: &'static [&'static str],
    hints: Hints,
}

enum Hints {
    ReadOnly,
    Writes { destructive: bool },
}

impl Spec {
    fn description(&self, tool: Tool) -> String {
        let mut d = self.about.clone();
        d.push_str("\n\nExamples:");
        for e in &self.examples {
            d.push('\n');
            d.push_str(&call_text(tool, e));
        }
        d
    }

    fn input_schema(&self) -> JsonObject {
        let mut schema = JsonObject::new();
        schema.insert("type".into(), json!("object"));
        schema.insert("properties".into(), self.properties.clone());
        schema.insert("required".into(), json!(self.required));
        schema
    }

    fn listed(&self, tool: Tool) -> McpTool {
        let annotations = match self.hints {
            Hints::ReadOnly => ToolAnnotations::new().read_only(true).open_world(false),
            Hints::Writes { destructive } => ToolAnnotations::new()
                .read_only(false)
                .destructive(destructive)
                .idempotent(false)
                .open_world(false),
        };
        McpTool::new(
            tool.name(),
            self.description(tool),
            Arc::new(self.input_schema()),
        )
        .with_raw_output_schema(super::object_output_schema())
        .with_annotations(annotations)
    }
}

/// `tool({..args..})`, as the descriptions write a call: compact JSON with
/// `action` and `workspace_id` first.
fn call_text(tool: Tool, args: &Value) -> String {
    let Some(o) = args.as_object() else {
        return format!("{}({args})", tool.name());
    };
    let first = ["action", "workspace_id"];
    let ordered = first
        .iter()
        .filter_map(|k| o.get_key_value(*k))
        .chain(o.iter().filter(|(k, _)| !first.contains(&k.as_str())));
    let fields: Vec<String> = ordered
        .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
        .collect();
    format!("{}({{{}}})", tool.name(), fields.join(","))
}

fn workspace_id_property() -> Value {
    json!({
        "type": "string",
        "description": format!(
            "Workspace id, e.g. \"crm\" (production) or \"crm--dev\" (a preview). List them with {}.",
            call_text(Tool::ManageWorkspace, &list_workspaces_example())
        ),
    })
}

const INSTRUCTIONS: &str = "Admin tools over the mcp-factory record store. Start with \
     manage_workspace({\"action\": \"list\"}), then manage_collection({\"action\": \"list\", \
     \"workspace_id\": \"crm\"}) with a workspace id it returned, then read with sql_query or \
     manage_record.";

// ---------------------------------------------------------------- manage_workspace

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
#[serde(tag = "action", rename_all = "snake_case")]
enum WorkspaceCall {
    List {},
    Get {
        workspace_id: String,
    },
    Create {
        workspace_id: String,
        name: Option<String>,
        description: Option<String>,
    },
    Delete {
        workspace_id: String,
    },
    CreatePreview {
        workspace_id: String,
        name: String,
        description: Option<String>,
    },
    ListPreviews {
        workspace_id: String,
    },
}

fn list_workspaces_example() -> Value {
    json!({"action": "list"})
}

fn workspace_spec() -> Spec {
    Spec {
        about: format!(
            "Manage workspaces. Actions: create, get, list, delete, create_preview, \
             list_previews. Start here to discover existing workspaces before operating: list \
             them, then list a workspace's collections with {} to see what data types exist, \
             then read with sql_query. Note: schema changes (collections, triggers, hooks) can \
             only be made in preview workspaces. create_preview makes \"<workspace_id>--<name>\" \
             (name \"dev\" on \"crm\" makes \"crm--dev\") with a copy of the workspace's \
             collections, hooks and triggers (disabled there) and none of its data; a person then promotes it with the CLI (`mcp-factory workspaces \
             promote crm --from crm--dev`). A workspace with previews cannot be deleted before \
             them.",
            call_text(Tool::ManageCollection, &list_collections_example())
        ),
        examples: vec![
            list_workspaces_example(),
            json!({"action": "get", "workspace_id": "crm"}),
            json!({"action": "create", "workspace_id": "acme", "name": "Acme Inc."}),
            json!({"action": "create_preview", "workspace_id": "acme", "name": "dev"}),
            json!({"action": "list_previews", "workspace_id": "acme"}),
            json!({"action": "delete", "workspace_id": "acme--dev"}),
        ],
        properties: json!({
            "action": {"type": "string", "enum": ["create", "get", "list", "delete", "create_preview", "list_previews"]},
            "workspace_id": {"type": "string", "description": "The workspace to get, delete or preview; the id of a new workspace for create."},
            "name": {"type": "string", "description": "create: display name. create_preview: the preview's name (\"dev\" makes \"crm--dev\")."},
            "description": {"type": "string"}
        }),
        required: &["action"],
        hints: Hints::Writes { destructive: true },
    }
}

// ---------------------------------------------------------------- manage_collection

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
#[serde(tag = "action", rename_all = "snake_case")]
enum CollectionCall {
    List {
        workspace_id: String,
    },
    Get {
        workspace_id: String,
        collection: String,
    },
    Upsert {
        workspace_id: String,
        collection: String,
        name: Option<String>,
        description: Option<String>,
        schema: Value,
    },
    Delete {
        workspace_id: String,
        collection: String,
        #[serde(default)]
        force: bool,
    },
}

fn list_collections_example() -> Value {
    json!({"action": "list", "workspace_id": "crm"})
}

fn collection_spec() -> Spec {
    Spec {
        about: "Manage collection schemas. Actions: upsert, get, list, delete. Use list to \
                discover what collections exist in a workspace. A collection's `schema` is a \
                JSON Schema (draft 2020-12) that every record's data must match. upsert and \
                delete work in preview workspaces only (\"crm--dev\", not \"crm\"). delete \
                refuses a collection that still holds records unless force is true, which \
                deletes its records and their relationships too."
            .into(),
        examples: vec![
            list_collections_example(),
            json!({"action": "get", "workspace_id": "crm", "collection": "invoices"}),
            json!({
                "action": "upsert", "workspace_id": "crm--dev", "collection": "payments",
                "name": "Payments",
                "schema": {
                    "type": "object",
                    "properties": {"amount": {"type": "number"}, "paid_at": {"type": "string", "format": "date-time"}},
                    "required": ["amount"]
                }
            }),
            json!({"action": "delete", "workspace_id": "crm--dev", "collection": "payments", "force": true}),
        ],
        properties: json!({
            "action": {"type": "string", "enum": ["upsert", "get", "list", "delete"]},
            "workspace_id": workspace_id_property(),
            "collection": {"type": "string", "description": "Collection id, e.g. \"contacts\"."},
            "name": {"type": "string", "description": "upsert: display name."},
            "description": {"type": "string"},
            "schema": {"type": "object", "description": "upsert: the JSON Schema of a record's data."},
            "force": {"type": "boolean", "description": "delete: also when records exist (they are deleted too)."}
        }),
        required: &["action", "workspace_id"],
        hints: Hints::Writes { destructive: true },
    }
}

// ---------------------------------------------------------------- manage_record

/// A record named by `id` or by its alias `record_id` (`id` wins when both
/// are given): the internal UUID or an external id.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct EitherId {
    id: Option<String>,
    record_id: Option<String>,
}

impl EitherId {
    fn get(self) -> Option<String> {
        self.id.or(self.record_id)
    }
}

/// [`EitherId`] where one is required.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(Serialize), serde(into = "EitherId"))]
#[serde(try_from = "EitherId")]
struct RecordId(String);

impl TryFrom<EitherId> for RecordId {
    type Error = &'static str;
    fn try_from(e: EitherId) -> Result<RecordId, Self::Error> {
        e.get()
            .map(RecordId)
            .ok_or("argument 'id' (or 'record_id') is required here")
    }
}

impl From<RecordId> for EitherId {
    fn from(r: RecordId) -> EitherId {
        EitherId {
            id: Some(r.0),
            record_id: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
#[serde(tag = "action", rename_all = "snake_case")]
enum RecordCall {
    Upsert {
        workspace_id: String,
        collection: String,
        #[serde(flatten)]
        id: EitherId,
        data: Value,
        external_id: Option<String>,
        external_source: Option<String>,
        version: Option<u64>,
    },
    Get {
        workspace_id: String,
        collection: String,
        #[serde(flatten)]
        id: RecordId,
    },
    Update {
        workspace_id: String,
        collection: String,
        #[serde(flatten)]
        id: RecordId,
        data: Value,
        version: Option<u64>,
    },
    Delete {
        workspace_id: String,
        collection: String,
        #[serde(flatten)]
        id: RecordId,
    },
    Cancel {
        workspace_id: String,
        collection: String,
        #[serde(flatten)]
        id: RecordId,
    },
    Query {
        workspace_id: String,
        collection: String,
        filter: Option<Value>,
        sort: Option<Value>,
        limit: Option<usize>,
        offset: Option<usize>,
    },
}

fn filter_example() -> Value {
    json!({"field": "data.status", "op": "eq", "value": "open"})
}

fn sort_example() -> Value {
    json!([{"field": "data.amount", "order": "desc"}])
}

fn record_spec() -> Spec {
    Spec {
        about: "Create, read, update, delete, or cancel individual records. Actions: upsert, \
                get, update, delete, cancel, query. upsert creates or replaces: supply \
                external_id (and optional external_source) for idempotent writes from external \
                systems — the internal UUID is auto-generated. Use id (the internal UUID, or an \
                external id) for get, update, delete and cancel, or to replace a known record. \
                update merges `data` into the record (JSON merge patch). version (optional) is \
                the version you expect the record to have (optimistic concurrency). query \
                filters, sorts and pages one collection (limit default 50, max 1000; offset). \
                A filter is {\"field\": …, \"op\": …, \"value\": …}: field is data.<property> \
                or a record field (id, external_id, external_source, version, archived, \
                cancelled, created_at, updated_at); op is eq, ne, gt, gte, lt, lte, in (a list \
                value), contains or exists (value true or false). Combine filters with \
                {\"and\": [...]}, {\"or\": [...]}, {\"not\": {...}} or a list (all of them). \
                sort is {\"field\": …, \"order\": \"asc\"|\"desc\"} or a list of them. Archived \
                records (archived: true) are read-only but can be cancelled or deleted; delete \
                is a soft delete."
            .into(),
        examples: vec![
            json!({
                "action": "upsert", "workspace_id": "crm", "collection": "invoices",
                "external_id": "INV-1001", "external_source": "billing",
                "data": {"number": "INV-1001", "customer": "Acme Corp", "status": "open", "amount": 1200}
            }),
            json!({"action": "get", "workspace_id": "crm", "collection": "invoices", "id": "INV-1001"}),
            json!({
                "action": "query", "workspace_id": "crm", "collection": "invoices",
                "filter": filter_example(), "sort": sort_example(), "limit": 10
            }),
            json!({
                "action": "query", "workspace_id": "crm", "collection": "invoices",
                "filter": {"and": [
                    {"field": "data.amount", "op": "gte", "value": 1000},
                    {"field": "data.status", "op": "in", "value": ["open", "draft"]},
                    {"not": {"field": "archived", "op": "eq", "value": true}}
                ]}
            }),
            json!({
                "action": "update", "workspace_id": "crm", "collection": "invoices",
                "id": "INV-1001", "data": {"status": "paid"}, "version": 1
            }),
            json!({"action": "cancel", "workspace_id": "crm", "collection": "invoices", "id": "INV-1001"}),
            json!({"action": "delete", "workspace_id": "crm", "collection": "invoices", "id": "INV-1001"}),
        ],
        properties: json!({
            "action": {"type": "string", "enum": ["upsert", "get", "update", "delete", "cancel", "query"]},
            "workspace_id": workspace_id_property(),
            "collection": {"type": "string", "description": "Collection id, e.g. \"invoices\"."},
            "id": {"type": "string", "description": "Record id (internal UUID or external id)."},
            "record_id": {"type": "string", "description": "Same as id."},
            "external_id": {"type": "string"},
            "external_source": {"type": "string"},
            "data": {"type": "object", "description": "upsert: the record's data; update: a merge patch."},
            "version": {"type": "integer", "minimum": 0, "description": "Expected current version (optimistic concurrency)."},
            "filter": {"type": "object", "description": format!("query: e.g. {}.", filter_example())},
            "sort": {"description": format!("query: e.g. {}.", sort_example())},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            "offset": {"type": "integer", "minimum": 0}
        }),
        required: &["action", "workspace_id", "collection"],
        hints: Hints::Writes { destructive: true },
    }
}

// ---------------------------------------------------------------- manage_relationship

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
#[serde(tag = "action", rename_all = "snake_case")]
enum RelationshipCall {
    Upsert {
        workspace_id: String,
        rel_type: String,
        source_collection: String,
        source_id: String,
        target_collection: String,
        target_id: String,
        metadata: Option<Value>,
    },
    Get {
        workspace_id: String,
        id: String,
    },
    Delete {
        workspace_id: String,
        id: String,
    },
}

fn relationship_spec() -> Spec {
    Spec {
        about: "Create, read, update, or delete relationships between records. Relationships \
                are typed, directed links (rel_type, source → target) with optional metadata, \
                unique on (rel_type, source, target). Actions: upsert (by rel_type, source and \
                target; ids may be internal or external; upserting an existing link replaces \
                its metadata), get, delete (by the relationship's id, as upsert and \
                query_relationships return it)."
            .into(),
        examples: vec![
            json!({
                "action": "upsert", "workspace_id": "crm", "rel_type": "billed_to",
                "source_collection": "invoices", "source_id": "INV-1000",
                "target_collection": "contacts", "target_id": "c_001",
                "metadata": {"role": "payer"}
            }),
            json!({"action": "get", "workspace_id": "crm", "id": "01980c5e-7a3e-7b41-9c55-3f1e2d4a5b6c"}),
            json!({"action": "delete", "workspace_id": "crm", "id": "01980c5e-7a3e-7b41-9c55-3f1e2d4a5b6c"}),
        ],
        properties: json!({
            "action": {"type": "string", "enum": ["upsert", "get", "delete"]},
            "workspace_id": workspace_id_property(),
            "id": {"type": "string", "description": "get/delete: the relationship id."},
            "rel_type": {"type": "string"},
            "source_collection": {"type": "string"},
            "source_id": {"type": "string"},
            "target_collection": {"type": "string"},
            "target_id": {"type": "string"},
            "metadata": {"type": "object"}
        }),
        required: &["action", "workspace_id"],
        hints: Hints::Writes { destructive: true },
    }
}

// ---------------------------------------------------------------- query_relationships

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct QueryRelationshipsCall {
    workspace_id: String,
    collection: String,
    record_id: String,
    rel_type: Option<String>,
    direction: Option<String>,
}

fn query_relationships_spec() -> Spec {
    Spec {
        about: "Query relationships for a specific record (its internal UUID or external id). \
                Find related records by type and direction: outgoing (the record is the \
                source), incoming (it is the target) or both (the default)."
            .into(),
        examples: vec![
            json!({
                "workspace_id": "crm", "collection": "contacts", "record_id": "c_001",
                "rel_type": "billed_to", "direction": "incoming"
            }),
            json!({"workspace_id": "crm", "collection": "invoices", "record_id": "INV-1000"}),
        ],
        properties: json!({
            "workspace_id": workspace_id_property(),
            "collection": {"type": "string"},
            "record_id": {"type": "string", "description": "Internal UUID or external id."},
            "rel_type": {"type": "string"},
            "direction": {"type": "string", "enum": ["outgoing", "incoming", "both"]}
        }),
        required: &["workspace_id", "collection", "record_id"],
        hints: Hints::ReadOnly,
    }
}

// ---------------------------------------------------------------- manage_hook

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
#[serde(tag = "action", rename_all = "snake_case")]
enum HookCall {
    List {
        workspace_id: String,
    },
    Get {
        workspace_id: String,
        hook_id: String,
    },
    Create {
        workspace_id: String,
        name: String,
        collection: String,
        description: Option<String>,
    },
    Delete {
        workspace_id: String,
        hook_id: String,
    },
}

fn hook_spec() -> Spec {
    Spec {
        about: "Manage inbound webhook endpoints. Hooks accept Record-format JSON and upsert \
                through the normal write path. Actions: create, get, list, delete. A hook writes \
                into one collection: other systems POST {\"data\": {...}, \"external_id\"?, \
                \"external_source\"?} (or a list of up to 1,000, in one transaction) to its \
                ingest_path, validated against the collection's schema; the same external_id \
                updates the same record. create returns the hook's secret, shown only then: \
                senders send it as `Authorization: Bearer <secret>` or sign with it (Standard \
                Webhooks: webhook-id, webhook-timestamp, webhook-signature); a repeated \
                webhook-id is a no-op for 24 h. The name is the hook's id. create and delete \
                work in preview workspaces only; promotion carries hooks to production with new \
                secrets."
            .into(),
        examples: vec![
            json!({"action": "create", "workspace_id": "crm--dev", "name": "stripe-payments", "collection": "invoices", "description": "Invoices from Stripe"}),
            json!({"action": "get", "workspace_id": "crm--dev", "hook_id": "stripe-payments"}),
            json!({"action": "list", "workspace_id": "crm--dev"}),
            json!({"action": "delete", "workspace_id": "crm--dev", "hook_id": "stripe-payments"}),
        ],
        properties: json!({
            "action": {"type": "string", "enum": ["create", "get", "list", "delete"]},
            "workspace_id": workspace_id_property(),
            "hook_id": {"type": "string", "description": "get, delete: the hook (its name)."},
            "name": {"type": "string", "description": "create: the hook's name and id, e.g. \"stripe-payments\" (lowercase letters, digits, '-', '_')."},
            "collection": {"type": "string", "description": "create: the collection it writes to."},
            "description": {"type": "string"}
        }),
        required: &["action", "workspace_id"],
        hints: Hints::Writes { destructive: true },
    }
}

// ---------------------------------------------------------------- manage_trigger

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
#[serde(tag = "action", rename_all = "snake_case")]
enum TriggerCall {
    List {
        workspace_id: String,
    },
    Get {
        workspace_id: String,
        trigger_id: String,
    },
    Create {
        workspace_id: String,
        name: String,
        collection: Option<String>,
        rel_type: Option<String>,
        url: String,
        events: Vec<Event>,
        skip_hook_writes: Option<bool>,
        description: Option<String>,
    },
    Delete {
        workspace_id: String,
        trigger_id: String,
    },
}

fn trigger_spec() -> Spec {
    Spec {
        about: "Manage outbound triggers. Triggers fire HTTP POST to a URL when records or \
                relationships change. Actions: create, get, list, delete. A trigger watches one \
                collection (record events) or one rel_type (relationship events) for the events \
                create, update and delete. Delivery is durable: every acknowledged change is \
                delivered at least once, in order per trigger, retried for about a day \
                (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); each request is signed \
                with the trigger's secret (Standard Webhooks headers), which create returns and \
                nothing shows again. The body is {\"type\": \"record.created\", \"timestamp\", \
                \"workspace_id\", \"sequence\", \"data\": <the record or relationship>}. URLs \
                must be public https (a server started with --egress-allow may reach listed \
                private hosts). skip_hook_writes (default true) ignores writes made by hooks. get \
                shows status, pending and dead deliveries. create and delete work in preview \
                workspaces only; promotion carries triggers to production with new secrets."
            .into(),
        examples: vec![
            json!({"action": "create", "workspace_id": "crm--dev", "name": "erp-invoices", "collection": "invoices", "url": "https://erp.example.com/webhooks/invoices", "events": ["create", "update"]}),
            json!({"action": "create", "workspace_id": "crm--dev", "name": "ownership", "rel_type": "owns", "url": "https://erp.example.com/webhooks/owners", "events": ["create", "delete"], "skip_hook_writes": false, "description": "Who owns what"}),
            json!({"action": "get", "workspace_id": "crm--dev", "trigger_id": "erp-invoices"}),
            json!({"action": "list", "workspace_id": "crm--dev"}),
            json!({"action": "delete", "workspace_id": "crm--dev", "trigger_id": "ownership"}),
        ],
        properties: json!({
            "action": {"type": "string", "enum": ["create", "get", "list", "delete"]},
            "workspace_id": workspace_id_property(),
            "trigger_id": {"type": "string", "description": "get, delete: the trigger (its name)."},
            "name": {"type": "string", "description": "create: the trigger's name and id, e.g. \"erp-invoices\"."},
            "collection": {"type": "string", "description": "create: fire on changes of this collection's records (or give rel_type)."},
            "rel_type": {"type": "string", "description": "create: fire on changes of relationships of this type (or give collection)."},
            "url": {"type": "string", "description": "create: where to POST, e.g. \"https://erp.example.com/webhooks/invoices\"."},
            "events": {"type": "array", "items": {"type": "string", "enum": ["create", "update", "delete"]}, "minItems": 1, "description": "create: which changes fire it."},
            "skip_hook_writes": {"type": "boolean", "description": "create: ignore writes made by hooks (default true; stops hook → trigger loops)."},
            "description": {"type": "string"}
        }),
        required: &["action", "workspace_id"],
        hints: Hints::Writes { destructive: true },
    }
}

// ---------------------------------------------------------------- batch_operations

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct BatchCall {
    workspace_id: String,
    operations: Vec<Value>,
}

fn batch_spec() -> Spec {
    Spec {
        about: "Execute multiple record, relationship, and collection operations atomically. \
                All operations succeed or all fail. Use for transactions, multi-entity writes, \
                or any case where consistency between operations is required. Max 1,000 \
                operations. Each operation is an object with a \"type\" and that type's \
                fields: upsert_record (collection, data; optional id, external_id, \
                external_source, version), delete_record (collection, id), \
                upsert_relationship (rel_type, source_collection, source_id, \
                target_collection, target_id; optional metadata), delete_relationship (id, or \
                rel_type with source_collection, source_id, target_collection and target_id), \
                upsert_collection (collection, schema; optional name, description) and \
                delete_collection (collection; optional force). An operation sees the ones \
                before it (link a record created in the same batch). Collection operations \
                work in preview workspaces only."
            .into(),
        examples: vec![
            json!({"workspace_id": "crm", "operations": [
                {"type": "upsert_record", "collection": "invoices", "external_id": "INV-1002",
                 "external_source": "billing",
                 "data": {"number": "INV-1002", "customer": "Acme Corp", "status": "draft", "amount": 300}},
                {"type": "upsert_relationship", "rel_type": "billed_to",
                 "source_collection": "invoices", "source_id": "INV-1002",
                 "target_collection": "contacts", "target_id": "c_001"}
            ]}),
            json!({"workspace_id": "crm", "operations": [
                {"type": "delete_relationship", "rel_type": "billed_to",
                 "source_collection": "invoices", "source_id": "INV-1002",
                 "target_collection": "contacts", "target_id": "c_001"},
                {"type": "delete_record", "collection": "invoices", "id": "INV-1002"}
            ]}),
            json!({"workspace_id": "crm--dev", "operations": [
                {"type": "upsert_collection", "collection": "payments", "name": "Payments",
                 "schema": {"type": "object", "properties": {"amount": {"type": "number"}}}},
                {"type": "upsert_record", "collection": "payments", "data": {"amount": 50}}
            ]}),
        ],
        properties: json!({
            "workspace_id": workspace_id_property(),
            "operations": {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": 1000}
        }),
        required: &["workspace_id", "operations"],
        hints: Hints::Writes { destructive: true },
    }
}

// ---------------------------------------------------------------- sql_query

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct SqlCall {
    workspace_id: String,
    query: String,
    #[serde(default)]
    params: Map<String, Value>,
}

fn sql_spec() -> Spec {
    Spec {
        about: "Execute a read-only SQL query (one SELECT) against workspace data. Tables: \
                records, relationships, collections, workspaces, operations_log, and one view \
                per collection, named after it, with a column per top-level property of its \
                schema (live records only). In records, read JSON fields with \
                data.field.:String (or :Float64, :Int64, :Bool), CAST(data.value, 'Float64') \
                or SQLite's data ->> '$.field', and add deleted = false to skip deleted \
                records. Rekor's forms work as they are: FINAL after a table name, and \
                workspace_id = {workspace_id:String}, which is always the workspace queried. \
                Other {name:Type} placeholders take their values from params. At most 1,000 \
                rows and 10 s per query."
            .into(),
        examples: vec![
            json!({"workspace_id": "crm", "query": "SELECT * FROM records FINAL WHERE workspace_id = {workspace_id:String} AND collection = 'contacts' AND deleted = false LIMIT 10"}),
            json!({"workspace_id": "crm", "query": "SELECT data.status.:String AS status, sum(CAST(data.amount, 'Float64')) AS total FROM records FINAL WHERE workspace_id = {workspace_id:String} AND collection = 'invoices' AND deleted = false GROUP BY status"}),
            json!({
                "workspace_id": "crm",
                "query": "SELECT number, customer, amount FROM invoices WHERE amount >= {min:Float64} ORDER BY amount DESC",
                "params": {"min": 500}
            }),
            json!({"workspace_id": "crm", "query": "SELECT i.data ->> '$.number' AS invoice, c.data ->> '$.name' AS contact FROM relationships r JOIN records i ON i.id = r.source_id JOIN records c ON c.id = r.target_id WHERE r.rel_type = 'billed_to'"}),
        ],
        properties: json!({
            "workspace_id": workspace_id_property(),
            "query": {"type": "string"},
            "params": {"type": "object", "description": "Values for {name:Type} placeholders besides workspace_id."}
        }),
        required: &["workspace_id", "query"],
        hints: Hints::ReadOnly,
    }
}

// ---------------------------------------------------------------- the table and the server

/// One row of the table: a tool as listed, and its compiled input schema
/// (checked before the tool runs). Indexed by `Tool as usize`.
struct Entry {
    listed: McpTool,
    validator: jsonschema::Validator,
}

static TABLE: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    Tool::ALL
        .into_iter()
        .map(|tool| {
            let spec = tool.spec();
            let validator = jsonschema::validator_for(&Value::Object(spec.input_schema()))
                .unwrap_or_else(|e| panic!("the {} schema is invalid: {e}", tool.name()));
            Entry {
                listed: spec.listed(tool),
                validator,
            }
        })
        .collect()
});

fn entry(tool: Tool) -> &'static Entry {
    &TABLE[tool as usize]
}

#[derive(Clone)]
pub struct AdminMcp {
    service: Service,
    /// Without it (legacy SSE) `subscriptions/listen` is not offered.
    listens: Option<super::listen::Listens>,
}

impl AdminMcp {
    pub fn new(service: Service) -> AdminMcp {
        AdminMcp {
            service,
            listens: None,
        }
    }

    /// Serves `subscriptions/listen` (2026-07-28).
    pub fn with_listens(mut self, listens: super::listen::Listens) -> AdminMcp {
        self.listens = Some(listens);
        self
    }
}

type Out = Result<Value, ServiceError>;

fn to_value<T: serde::Serialize>(v: T) -> Out {
    serde_json::to_value(v).map_err(|e| ServiceError::Internal(e.to_string()))
}

fn list<T: serde::Serialize>(all: Vec<T>) -> Out {
    let n = all.len();
    to_value(Page::of(all, n.max(1), 0))
}

impl AdminMcp {
    /// One `tools/call` as `caller`: an unknown tool is a protocol error;
    /// arguments that break the input schema, and every service error, are
    /// `isError` results.
    async fn call(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(tool) = Tool::named(name) else {
            let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool '{name}'; the Admin MCP has {}",
                    names.join(", ")
                ),
                None,
            ));
        };
        let args = Value::Object(arguments.unwrap_or_default());
        let problems: Vec<String> = entry(tool)
            .validator
            .iter_errors(&args)
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
                tool.name(),
                problems.join("; ")
            ));
            return super::error_result(&e);
        }
        let out = match tool.parse(args) {
            Ok(call) => self.run(caller, call).await,
            Err(e) => Err(e),
        };
        match out {
            Ok(v) => Ok(super::json_result(v, false)),
            Err(e) => super::error_result(&e),
        }
    }

    async fn run(&self, c: &Caller, call: Call) -> Out {
        match call {
            Call::Workspace(a) => self.workspace(c, a).await,
            Call::Collection(a) => self.collection(c, a).await,
            Call::Record(a) => self.record(c, a).await,
            Call::Relationship(a) => self.relationship(c, a).await,
            Call::QueryRelationships(a) => {
                let direction: Direction = a.direction.as_deref().unwrap_or("both").parse()?;
                list(self.service.query_relationships(
                    c,
                    &a.workspace_id,
                    &a.collection,
                    &a.record_id,
                    a.rel_type.as_deref(),
                    direction,
                )?)
            }
            Call::Hook(a) => self.hook(c, a).await,
            Call::Trigger(a) => self.trigger(c, a).await,
            Call::Batch(a) => to_value(self.service.batch(c, &a.workspace_id, a.operations).await?),
            Call::Sql(a) => {
                let req = SqlRequest {
                    query: a.query,
                    params: a.params,
                };
                to_value(self.service.sql_query(c, &a.workspace_id, req).await?)
            }
        }
    }

    async fn workspace(&self, c: &Caller, a: WorkspaceCall) -> Out {
        let s = &self.service;
        match a {
            WorkspaceCall::List {} => list(s.list_workspaces(c, None)?),
            WorkspaceCall::Get { workspace_id } => to_value(s.get_workspace(c, &workspace_id)?),
            WorkspaceCall::Create {
                workspace_id,
                name,
                description,
            } => {
                let req = CreateWorkspace {
                    id: workspace_id,
                    name,
                    description,
                };
                to_value(s.create_workspace(c, req).await?)
            }
            WorkspaceCall::Delete { workspace_id } => {
                to_value(s.delete_workspace(c, &workspace_id).await?)
            }
            WorkspaceCall::CreatePreview {
                workspace_id,
                name,
                description,
            } => {
                let req = CreatePreview { name, description };
                to_value(s.create_preview(c, &workspace_id, req).await?)
            }
            WorkspaceCall::ListPreviews { workspace_id } => {
                list(s.list_previews(c, &workspace_id)?)
            }
        }
    }

    async fn collection(&self, c: &Caller, a: CollectionCall) -> Out {
        let s = &self.service;
        match a {
            CollectionCall::List { workspace_id } => list(s.list_collections(c, &workspace_id)?),
            CollectionCall::Get {
                workspace_id,
                collection,
            } => to_value(s.get_collection(c, &workspace_id, &collection)?),
            CollectionCall::Upsert {
                workspace_id,
                collection,
                name,
                description,
                schema,
            } => {
                let req = UpsertCollection {
                    name,
                    description,
                    schema,
                };
                to_value(
                    s.upsert_collection(c, &workspace_id, &collection, req)
                        .await?,
                )
            }
            CollectionCall::Delete {
                workspace_id,
                collection,
                force,
            } => to_value(
                s.delete_collection(c, &workspace_id, &collection, force)
                    .await?,
            ),
        }
    }

    async fn record(&self, c: &Caller, a: RecordCall) -> Out {
        let s = &self.service;
        match a {
            RecordCall::Upsert {
                workspace_id,
                collection,
                id,
                data,
                external_id,
                external_source,
                version,
            } => {
                let req = UpsertRecord {
                    data,
                    id: id.get(),
                    external_id,
                    external_source,
                    version,
                };
                to_value(s.upsert_record(c, &workspace_id, &collection, req).await?)
            }
            RecordCall::Get {
                workspace_id,
                collection,
                id,
            } => to_value(s.get_record(c, &workspace_id, &collection, &id.0)?),
            RecordCall::Update {
                workspace_id,
                collection,
                id,
                data,
                version,
            } => {
                let req = PatchRecord { data, version };
                to_value(
                    s.patch_record(c, &workspace_id, &collection, &id.0, req)
                        .await?,
                )
            }
            RecordCall::Delete {
                workspace_id,
                collection,
                id,
            } => to_value(
                s.mark_record(c, &workspace_id, &collection, &id.0, Mark::Delete)
                    .await?,
            ),
            RecordCall::Cancel {
                workspace_id,
                collection,
                id,
            } => to_value(
                s.mark_record(c, &workspace_id, &collection, &id.0, Mark::Cancel)
                    .await?,
            ),
            RecordCall::Query {
                workspace_id,
                collection,
                filter,
                sort,
                limit,
                offset,
            } => {
                let q = Query {
                    filter,
                    sort,
                    limit,
                    offset,
                    ..Query::default()
                };
                to_value(s.query_records(c, &workspace_id, &collection, &q).await?)
            }
        }
    }

    async fn hook(&self, c: &Caller, a: HookCall) -> Out {
        let s = &self.service;
        match a {
            HookCall::List { workspace_id } => list(s.list_hooks(c, &workspace_id)?),
            HookCall::Get {
                workspace_id,
                hook_id,
            } => to_value(s.get_hook(c, &workspace_id, &hook_id)?),
            HookCall::Create {
                workspace_id,
                name,
                collection,
                description,
            } => {
                let req = CreateHook {
                    name,
                    collection,
                    description,
                };
                to_value(s.create_hook(c, &workspace_id, req).await?)
            }
            HookCall::Delete {
                workspace_id,
                hook_id,
            } => to_value(s.delete_hook(c, &workspace_id, &hook_id).await?),
        }
    }

    async fn trigger(&self, c: &Caller, a: TriggerCall) -> Out {
        let s = &self.service;
        match a {
            TriggerCall::List { workspace_id } => list(s.list_triggers(c, &workspace_id).await?),
            TriggerCall::Get {
                workspace_id,
                trigger_id,
            } => to_value(s.get_trigger(c, &workspace_id, &trigger_id).await?),
            TriggerCall::Create {
                workspace_id,
                name,
                collection,
                rel_type,
                url,
                events,
                skip_hook_writes,
                description,
            } => {
                let req = CreateTrigger {
                    name,
                    collection,
                    rel_type,
                    url,
                    events,
                    skip_hook_writes,
                    description,
                };
                to_value(s.create_trigger(c, &workspace_id, req).await?)
            }
            TriggerCall::Delete {
                workspace_id,
                trigger_id,
            } => to_value(s.delete_trigger(c, &workspace_id, &trigger_id).await?),
        }
    }

    async fn relationship(&self, c: &Caller, a: RelationshipCall) -> Out {
        let s = &self.service;
        match a {
            RelationshipCall::Upsert {
                workspace_id,
                rel_type,
                source_collection,
                source_id,
                target_collection,
                target_id,
                metadata,
            } => {
                let req = UpsertRelationship {
                    rel_type,
                    source_collection,
                    source_id,
                    target_collection,
                    target_id,
                    metadata,
                };
                to_value(s.upsert_relationship(c, &workspace_id, req).await?)
            }
            RelationshipCall::Get { workspace_id, id } => {
                to_value(s.get_relationship(c, &workspace_id, &id)?)
            }
            RelationshipCall::Delete { workspace_id, id } => {
                to_value(s.delete_relationship(c, &workspace_id, &id).await?)
            }
        }
    }
}

impl ServerHandler for AdminMcp {
    fn get_info(&self) -> ServerConfig {
        super::server_info("mcp-factory-admin", INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            TABLE.iter().map(|e| e.listed.clone()).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let c = super::request_caller(&ctx)?;
        let result = self
            .call(&c.caller, &request.name, request.arguments)
            .await?;
        Ok(CallToolResponse::Complete(result))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        super::unserved_list(&ctx, "prompts/list")
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        super::unserved_list(&ctx, "resources/list")
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        super::unserved_list(&ctx, "resources/templates/list")
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.listens.as_ref()?;
        Some(super::listen::accepted(
            requested,
            &self.get_info().capabilities,
        ))
    }

    /// The Admin MCP's tools never change: a listen stream stays open until
    /// the client leaves, the server stops or the token is revoked.
    async fn listen(&self, ctx: SubscriptionContext) -> Result<(), ErrorData> {
        let Some(listens) = &self.listens else {
            return Ok(());
        };
        let c = super::caller_of(&ctx.request_context().extensions)?;
        super::listen::run(ctx, listens, &c, None, false, || false).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::store::Store;

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The `action` values serde accepts, read from its "unknown variant"
    /// message (serde lists every variant there).
    fn serde_actions(tool: Tool) -> BTreeSet<String> {
        let err = tool
            .parse(json!({"action": "no such action"}))
            .expect_err("an unknown action is refused")
            .to_string();
        let (_, expected) = err
            .split_once("expected one of ")
            .unwrap_or_else(|| panic!("{}: no variant list in {err:?}", tool.name()));
        expected
            .split(", ")
            .map(|a| a.trim_matches('`').to_string())
            .collect()
    }

    #[test]
    fn names_validators_and_tools_agree() {
        let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
        let listed: Vec<&str> = TABLE.iter().map(|e| e.listed.name.as_ref()).collect();
        assert_eq!(listed, names);
        assert_eq!(
            names,
            [
                "manage_workspace",
                "manage_collection",
                "manage_record",
                "manage_relationship",
                "query_relationships",
                "manage_hook",
                "manage_trigger",
                "batch_operations",
                "sql_query",
            ]
        );
        for (i, t) in Tool::ALL.into_iter().enumerate() {
            assert_eq!(t as usize, i, "Tool::ALL is in declaration order");
            assert_eq!(entry(t).listed.name, t.name());
            assert_eq!(Tool::named(t.name()), Some(t));
            let listed = &entry(t).listed;
            let d = listed.description.as_deref().unwrap_or("");
            assert!(
                d.len() > 40,
                "{} needs a description that teaches its use",
                t.name()
            );
            assert_eq!(listed.input_schema["type"], "object");
        }
        assert_eq!(Tool::named("manage_endpoint"), None);
        // Descriptions teach the discovery pattern.
        let first = entry(Tool::ManageWorkspace).listed.description.as_deref();
        assert!(first.unwrap_or("").contains("manage_collection"));
    }

    /// Each tool's schema and its serde type agree: the same `action`
    /// values, and the same argument names (every property is read by some
    /// action, every field an action reads is a property). Every action has
    /// an example, and every example fits the schema and parses.
    #[test]
    fn schemas_and_typed_arguments_agree() {
        for tool in Tool::ALL {
            let spec = tool.spec();
            let name = tool.name();
            let properties = keys(&spec.properties);
            let schema_actions: Option<BTreeSet<String>> =
                spec.properties["action"]["enum"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                });
            let mut read: BTreeSet<String> = BTreeSet::new();
            let mut exemplified: BTreeSet<String> = BTreeSet::new();
            for ex in &spec.examples {
                assert!(
                    entry(tool).validator.is_valid(ex),
                    "{name}({ex}) does not fit the input schema"
                );
                let call = tool
                    .parse(ex.clone())
                    .unwrap_or_else(|e| panic!("{name}({ex}) does not parse: {e}"));
                assert_eq!(call.tool(), tool, "{name}({ex}) parses as another tool");
                let fields = call.fields().expect("serialises");
                if let Some(a) = fields["action"].as_str() {
                    exemplified.insert(a.to_string());
                }
                read.extend(keys(&fields));
            }
            assert_eq!(
                read, properties,
                "{name}: the fields its actions read (left) differ from its schema's properties (right)"
            );
            match schema_actions {
                Some(actions) => {
                    assert_eq!(serde_actions(tool), actions, "{name}: actions");
                    assert_eq!(exemplified, actions, "{name}: every action has an example");
                }
                None => assert!(!spec.examples.is_empty(), "{name} has an example"),
            }
        }
    }

    /// Every `tool({...})` call written anywhere in the descriptions (tool,
    /// property or server instructions) is one of that tool's examples, so
    /// the test below runs it too.
    #[test]
    fn every_call_in_a_description_is_an_example() {
        fn descriptions(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(d)) = o.get("description") {
                        out.push(d.clone());
                    }
                    o.values().for_each(|v| descriptions(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| descriptions(v, out)),
                _ => {}
            }
        }
        let mut texts = vec![INSTRUCTIONS.to_string()];
        for e in TABLE.iter() {
            texts.push(e.listed.description.as_deref().unwrap_or("").to_string());
            descriptions(&Value::Object((*e.listed.input_schema).clone()), &mut texts);
        }
        let mut found = 0;
        for text in &texts {
            for tool in Tool::ALL {
                let open = format!("{}(", tool.name());
                for (at, _) in text.match_indices(&open) {
                    let rest = &text[at + open.len()..];
                    let arg = serde_json::Deserializer::from_str(rest)
                        .into_iter::<Value>()
                        .next()
                        .and_then(Result::ok)
                        .unwrap_or_else(|| {
                            panic!("{open}…) in {text:?} is not followed by JSON arguments")
                        });
                    assert!(
                        tool.spec().examples.contains(&arg),
                        "{open}{arg}) is written in a description but is not an example of {}",
                        tool.name()
                    );
                    found += 1;
                }
            }
        }
        let examples: usize = Tool::ALL.iter().map(|t| t.spec().examples.len()).sum();
        assert!(
            found >= examples,
            "the examples are rendered: {found} calls found"
        );
    }

    #[test]
    fn a_missing_argument_is_named() {
        let err = |tool: Tool, args: Value| {
            tool.parse(args)
                .expect_err("an argument is missing")
                .to_string()
        };
        assert_eq!(
            err(
                Tool::ManageRecord,
                json!({"action": "get", "workspace_id": "crm", "collection": "contacts"})
            ),
            "manage_record: argument 'id' (or 'record_id') is required here"
        );
        assert_eq!(
            err(Tool::ManageWorkspace, json!({"action": "get"})),
            "manage_workspace: argument 'workspace_id' is required here"
        );
        assert_eq!(
            err(
                Tool::ManageCollection,
                json!({"action": "upsert", "workspace_id": "crm--dev", "collection": "notes"})
            ),
            "manage_collection: argument 'schema' is required here"
        );
        // `record_id` stands for `id`; `id` wins when both are given.
        let id = |args: Value| match Tool::ManageRecord.parse(args) {
            Ok(Call::Record(RecordCall::Get { id, .. })) => id.0,
            other => panic!("not a record get: {other:?}"),
        };
        let base = json!({"action": "get", "workspace_id": "crm", "collection": "contacts"});
        let with = |extra: Value| {
            let mut v = base.clone();
            if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            v
        };
        assert_eq!(id(with(json!({"record_id": "r1"}))), "r1");
        assert_eq!(id(with(json!({"id": "a", "record_id": "b"}))), "a");
        // Arguments another action reads are ignored, as before.
        assert!(
            Tool::ManageWorkspace
                .parse(json!({"action": "list", "workspace_id": "crm", "force": true}))
                .is_ok()
        );
    }

    async fn ok(admin: &AdminMcp, c: &Caller, tool: Tool, args: Value) -> Value {
        let r = admin
            .call(c, tool.name(), args.as_object().cloned())
            .await
            .unwrap_or_else(|e| panic!("{}({args}): {e:?}", tool.name()));
        assert_ne!(r.is_error, Some(true), "{}({args}): {r:?}", tool.name());
        r.structured_content.unwrap_or_default()
    }

    /// The workspace the examples are written against: `crm` with the
    /// collections `contacts` and `invoices` (promoted from `crm--dev`), a
    /// contact `c_001` and an invoice `INV-1000`.
    async fn example_world(admin: &AdminMcp, service: &Service, c: &Caller) {
        let contacts = json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
            "required": ["name"]
        });
        let invoices = json!({
            "type": "object",
            "properties": {
                "number": {"type": "string"},
                "customer": {"type": "string"},
                "status": {"type": "string", "enum": ["draft", "open", "paid"]},
                "amount": {"type": "number"}
            },
            "required": ["number", "status", "amount"],
            "additionalProperties": false
        });
        let config = [
            (
                Tool::ManageWorkspace,
                json!({"action": "create", "workspace_id": "crm", "name": "CRM"}),
            ),
            (
                Tool::ManageWorkspace,
                json!({"action": "create_preview", "workspace_id": "crm", "name": "dev"}),
            ),
            (
                Tool::ManageCollection,
                json!({"action": "upsert", "workspace_id": "crm--dev", "collection": "contacts", "schema": contacts}),
            ),
            (
                Tool::ManageCollection,
                json!({"action": "upsert", "workspace_id": "crm--dev", "collection": "invoices", "schema": invoices}),
            ),
        ];
        for (tool, args) in config {
            ok(admin, c, tool, args).await;
        }
        service
            .promote(c, "crm", "crm--dev", false)
            .await
            .expect("promote crm--dev");
        let data = [
            json!({
                "action": "upsert", "workspace_id": "crm", "collection": "contacts",
                "external_id": "c_001", "external_source": "crm",
                "data": {"name": "Jane Doe", "email": "jane@acme.com"}
            }),
            json!({
                "action": "upsert", "workspace_id": "crm", "collection": "invoices",
                "external_id": "INV-1000", "external_source": "billing",
                "data": {"number": "INV-1000", "customer": "Acme Corp", "status": "open", "amount": 800}
            }),
        ];
        for args in data {
            ok(admin, c, Tool::ManageRecord, args).await;
        }
    }

    /// An agent that copies an example from a description gets an answer,
    /// not a refusal: every example runs, in order, through the Admin MCP's
    /// own dispatch. (Before, `manage_record` taught
    /// `{"status": {"eq": "open"}}` and sorting on `amount`, both refused.)
    /// Only a relationship's id cannot be known before it is created, so
    /// `get`/`delete` by id may find nothing; that is NOT_FOUND, never a
    /// refusal of the arguments' shape.
    #[tokio::test]
    async fn every_example_in_a_description_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let service = Service::new(Store::open(dir.path()).expect("store")).expect("service");
        let admin = AdminMcp::new(service.clone());
        let c = Caller::system();
        example_world(&admin, &service, &c).await;
        let mut failures = Vec::new();
        let mut ran = 0;
        for tool in Tool::ALL {
            for ex in tool.spec().examples {
                ran += 1;
                let call = call_text(tool, &ex);
                let r = match admin.call(&c, tool.name(), ex.as_object().cloned()).await {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(format!("{call}: JSON-RPC error {e:?}"));
                        continue;
                    }
                };
                if r.is_error != Some(true) {
                    continue;
                }
                let error = r
                    .structured_content
                    .as_ref()
                    .map(|s| s["error"].clone())
                    .unwrap_or_default();
                let by_unknowable_id = tool == Tool::ManageRelationship
                    && ["get", "delete"].contains(&ex["action"].as_str().unwrap_or(""))
                    && error["code"] == "NOT_FOUND";
                if !by_unknowable_id {
                    failures.push(format!("{call}: {error}"));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {ran} examples were refused:\n{}",
            failures.len(),
            failures.join("\n")
        );
        // The examples did what they say: the batch linked and unlinked
        // INV-1002, the record examples updated and deleted INV-1001.
        let q = ok(
            &admin,
            &c,
            Tool::ManageRecord,
            json!({
                "action": "query", "workspace_id": "crm", "collection": "invoices",
                "sort": {"field": "data.number"}
            }),
        )
        .await;
        let numbers: Vec<&Value> = q["data"]
            .as_array()
            .map(|d| d.iter().map(|r| &r["data"]["number"]).collect())
            .unwrap_or_default();
        assert_eq!(numbers, [&json!("INV-1000")], "{q}");
    }
}
