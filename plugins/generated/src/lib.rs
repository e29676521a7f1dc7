//! The generated endpoint component: reads the endpoint config from the
//! host (`context`), lists the tools it describes (named by
//! `mcp_factory_guest::config`, the same code the host validates with), and
//! runs each through the capability-checked `store` imports.

use mcp_factory_guest::config::{CollectionOp, EndpointConfig, RelationshipOp, ToolKind, ToolPlan};
use serde_json::{Value, json};

wit_bindgen::generate!({ path: "../../wit", world: "generated" });

use exports::mcp_factory::plugin::tool_provider::Guest;
use mcp_factory::plugin::types::{Annotations, CallError, StoreError, Tool, ToolResult};
use mcp_factory::plugin::{context, store};

struct Generated;

fn config() -> Result<EndpointConfig, CallError> {
    serde_json::from_str(&context::endpoint_config()).map_err(|e| CallError::Failed(format!("endpoint config: {e}")))
}

fn plans() -> Result<Vec<ToolPlan>, CallError> {
    config()?.tools().map_err(|e| CallError::Failed(e.to_string()))
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

fn collection_schema(schemas: &Value, collection: &str) -> Value {
    schemas.get(collection).cloned().unwrap_or(json!({"type": "object"}))
}

fn op_schema(op: CollectionOp, schemas: &Value, collection: &str) -> Value {
    match op {
        CollectionOp::Create => obj(
            json!({"data": collection_schema(schemas, collection),
                   "external_id": {"type": "string"}, "external_source": {"type": "string"}}),
            &["data"],
        ),
        CollectionOp::Get | CollectionOp::Delete => obj(json!({"id": {"type": "string"}}), &["id"]),
        CollectionOp::List => obj(
            json!({"filter": {"description": "{\"field\":\"data.status\",\"op\":\"eq\",\"value\":\"open\"}; and/or/not combine"},
                   "sort": {"description": "{\"field\":\"data.amount\",\"order\":\"desc\"}"},
                   "limit": {"type": "integer", "minimum": 1, "maximum": 1000}, "offset": {"type": "integer", "minimum": 0}}),
            &[],
        ),
        CollectionOp::Update => obj(
            json!({"id": {"type": "string"}, "data": {"type": "object", "description": "fields to change (JSON merge patch)"},
                   "version": {"type": "integer"}}),
            &["id", "data"],
        ),
    }
}

fn rel_schema(op: RelationshipOp) -> Value {
    match op {
        RelationshipOp::Create => obj(
            json!({"source_collection": {"type": "string"}, "source_id": {"type": "string"},
                   "target_collection": {"type": "string"}, "target_id": {"type": "string"},
                   "metadata": {"type": "object"}}),
            &["source_collection", "source_id", "target_collection", "target_id"],
        ),
        RelationshipOp::List => obj(
            json!({"collection": {"type": "string"}, "id": {"type": "string"},
                   "direction": {"enum": ["outgoing", "incoming", "both"]}}),
            &["collection", "id"],
        ),
        RelationshipOp::Delete => obj(json!({"id": {"type": "string"}}), &["id"]),
    }
}

/// One schema per action, joined under an `action` argument when a tool
/// covers several operations.
fn with_actions(actions: Vec<(&'static str, Value)>) -> Value {
    if let [(_, only)] = actions.as_slice() {
        return only.clone();
    }
    let names: Vec<&str> = actions.iter().map(|(a, _)| *a).collect();
    let one_of: Vec<Value> = actions
        .into_iter()
        .map(|(a, mut s)| {
            s["properties"]["action"] = json!({"const": a});
            let mut req = s["required"].as_array().cloned().unwrap_or_default();
            req.push(json!("action"));
            s["required"] = Value::Array(req);
            s
        })
        .collect();
    json!({"type": "object", "properties": {"action": {"enum": names}}, "required": ["action"], "oneOf": one_of})
}

fn input_schema(plan: &ToolPlan, schemas: &Value) -> Value {
    match &plan.kind {
        ToolKind::Collection { collection, operations } => {
            with_actions(operations.iter().map(|o| (o.as_str(), op_schema(*o, schemas, collection))).collect())
        }
        ToolKind::Relationship { operations, .. } => {
            with_actions(operations.iter().map(|o| (o.as_str(), rel_schema(*o))).collect())
        }
        ToolKind::Batch => obj(json!({"operations": {"type": "array", "maxItems": 1000, "items": {"type": "object"}}}), &["operations"]),
        ToolKind::Sql => obj(json!({"query": {"type": "string"}, "params": {"type": "object"}}), &["query"]),
    }
}

fn describe(plan: &ToolPlan, schemas: &Value) -> String {
    match &plan.kind {
        ToolKind::Collection { collection, .. } => {
            format!("{}\nRecords of '{collection}' follow this JSON Schema: {}", plan.description, collection_schema(schemas, collection))
        }
        _ => plan.description.clone(),
    }
}

fn text(args: &Value, key: &str) -> Result<String, CallError> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| CallError::InvalidArguments(format!("'{key}' (a string) is required")))
}

/// A store result as a tool result: store refusals are business errors the
/// agent can act on.
fn result(r: Result<String, StoreError>) -> Result<ToolResult, CallError> {
    Ok(match r {
        Ok(json) => ToolResult { content: json, is_error: false },
        Err(e) => {
            let (kind, msg) = match e {
                StoreError::NotFound(m) => ("NOT_FOUND", m),
                StoreError::Invalid(m) => ("VALIDATION_ERROR", m),
                StoreError::Conflict(m) => ("CONFLICT", m),
                StoreError::Denied(m) => ("FORBIDDEN", m),
                StoreError::Failed(m) => ("INTERNAL_ERROR", m),
            };
            ToolResult { content: json!({"error": {"code": kind, "message": msg}}).to_string(), is_error: true }
        }
    })
}

fn pick<T: Copy>(ops: &[T], name: impl Fn(T) -> &'static str, args: &Value) -> Result<T, CallError> {
    if let [only] = ops {
        return Ok(*only);
    }
    let action = text(args, "action")?;
    ops.iter()
        .copied()
        .find(|o| name(*o) == action)
        .ok_or_else(|| CallError::InvalidArguments(format!("unknown action '{action}'")))
}

fn run_collection(collection: &str, op: CollectionOp, args: &Value) -> Result<ToolResult, CallError> {
    let r = match op {
        CollectionOp::Create => {
            let mut req = json!({"data": args.get("data").cloned().unwrap_or(json!({}))});
            for k in ["external_id", "external_source"] {
                if let Some(v) = args.get(k) {
                    req[k] = v.clone();
                }
            }
            store::upsert_record(collection, &req.to_string())
        }
        CollectionOp::Get => store::get_record(collection, &text(args, "id")?),
        CollectionOp::List => {
            let mut q = json!({});
            for k in ["filter", "sort", "limit", "offset"] {
                if let Some(v) = args.get(k) {
                    q[k] = v.clone();
                }
            }
            store::query_records(collection, &q.to_string())
        }
        CollectionOp::Update => {
            let patch = args.get("data").cloned().unwrap_or(json!({}));
            store::update_record(collection, &text(args, "id")?, &patch.to_string(), args.get("version").and_then(Value::as_u64))
        }
        CollectionOp::Delete => store::delete_record(collection, &text(args, "id")?),
    };
    result(r)
}

fn run_relationship(rel_type: &str, op: RelationshipOp, args: &Value) -> Result<ToolResult, CallError> {
    let r = match op {
        RelationshipOp::Create => {
            let mut req = json!({"rel_type": rel_type});
            for k in ["source_collection", "source_id", "target_collection", "target_id", "metadata"] {
                if let Some(v) = args.get(k) {
                    req[k] = v.clone();
                }
            }
            store::link(&req.to_string())
        }
        RelationshipOp::List => {
            let direction = args.get("direction").and_then(Value::as_str).unwrap_or("both");
            store::list_links(&text(args, "collection")?, &text(args, "id")?, Some(rel_type), direction)
        }
        RelationshipOp::Delete => store::unlink(&text(args, "id")?),
    };
    result(r)
}

impl Guest for Generated {
    fn list_tools() -> Vec<Tool> {
        let schemas: Value = serde_json::from_str(&context::collection_schemas()).unwrap_or(json!({}));
        plans()
            .unwrap_or_default()
            .iter()
            .map(|p| Tool {
                name: p.name.clone(),
                description: describe(p, &schemas),
                input_schema: input_schema(p, &schemas).to_string(),
                annotations: Annotations {
                    read_only: p.annotations.read_only,
                    destructive: p.annotations.destructive,
                    idempotent: p.annotations.idempotent,
                },
            })
            .collect()
    }

    fn call_tool(name: String, arguments: String) -> Result<ToolResult, CallError> {
        let plan = plans()?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| CallError::UnknownTool(format!("no tool '{name}' in this endpoint")))?;
        let args: Value = serde_json::from_str(&arguments).map_err(|e| CallError::InvalidArguments(format!("arguments are not JSON: {e}")))?;
        match &plan.kind {
            ToolKind::Collection { collection, operations } => run_collection(collection, pick(operations, CollectionOp::as_str, &args)?, &args),
            ToolKind::Relationship { rel_type, operations } => run_relationship(rel_type, pick(operations, RelationshipOp::as_str, &args)?, &args),
            ToolKind::Batch => {
                let ops = args.get("operations").cloned().unwrap_or(json!([]));
                result(store::batch(&ops.to_string()))
            }
            ToolKind::Sql => {
                let params = args.get("params").cloned().unwrap_or(json!({}));
                result(store::sql(&text(&args, "query")?, &params.to_string()))
            }
        }
    }
}

export!(Generated);
