//! The generated layer: tool definitions and behaviour from an endpoint
//! config. `plugins/generated` is a thin wrapper over this module; a custom
//! component reaches the same behaviour through [`crate::base`].
//!
//! Definitions are plain Rust, so you can see what a config serves:
//!
//! ```
//! use mcp_factory_guest::config::EndpointConfig;
//! use mcp_factory_guest::generated;
//! use serde_json::json;
//!
//! let config: EndpointConfig = serde_json::from_value(json!({
//!     "tools": [{"collection": "invoices", "operations": ["get", "list"],
//!                "name_override": "search_invoices"}],
//!     "sql_query": true
//! })).unwrap();
//! let schemas = json!({"invoices": {"type": "object", "properties": {"total": {"type": "number"}}}});
//! let tools = generated::tools(&config, &schemas).unwrap();
//! let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
//! assert_eq!(names, ["search_invoices", "sql_query"]);
//! // Two operations under one name: an `action` argument picks one.
//! assert_eq!(tools[0].input_schema["properties"]["action"]["enum"], json!(["get", "list"]));
//! assert!(tools[0].annotations.read_only);
//! // The collection's schema is in the description.
//! assert!(tools[0].description.contains(r#""total":{"type":"number"}"#));
//! ```

use serde_json::{Value, json};

use crate::config::{
    CollectionOp, ConfigError, EndpointConfig, RelationshipOp, ToolKind, ToolPlan,
};
use crate::store::text as store;
use crate::{Error, ToolSpec};

fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

fn collection_schema(schemas: &Value, collection: &str) -> Value {
    schemas
        .get(collection)
        .cloned()
        .unwrap_or(json!({"type": "object"}))
}

/// Keywords whose values are data, not schemas: never rewritten.
const DATA_KEYWORDS: &[&str] = &["enum", "const", "default", "examples"];

/// Whether `schema` refers into itself (`"$ref": "#…"`), so that it cannot
/// be pasted into a tool's input schema as it is: its pointers would then
/// resolve against the tool schema's root. A schema with its own `$id` is
/// a resource of its own, where they still resolve.
fn refers_to_itself(schema: &Value) -> bool {
    fn walk(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.iter().any(|(k, x)| match k.as_str() {
                "$ref" | "$dynamicRef" => x.as_str().is_some_and(|r| r.starts_with('#')),
                k if DATA_KEYWORDS.contains(&k) => false,
                _ => x.get("$id").is_none() && walk(x),
            }),
            Value::Array(a) => a.iter().any(walk),
            _ => false,
        }
    }
    schema.get("$id").is_none() && walk(schema)
}

/// `schema` with each `#…` reference moved under `base` (`#/$defs/x`).
fn rebase(v: &Value, base: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let x = match (k.as_str(), x) {
                        ("$ref" | "$dynamicRef", Value::String(r)) if r.starts_with('#') => {
                            Value::String(format!("{base}{}", &r[1..]))
                        }
                        (k, _) if DATA_KEYWORDS.contains(&k) => x.clone(),
                        (_, x) if x.get("$id").is_some() => x.clone(),
                        (_, x) => rebase(x, base),
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| rebase(x, base)).collect()),
        other => other.clone(),
    }
}

/// Where a self-referring collection schema lives in a tool's input schema.
fn defs_key(collection: &str) -> String {
    format!("collection_{collection}")
}

/// The schema of a record's `data` in a tool's input schema: the
/// collection's schema itself or, when it refers into itself, a `$ref` to
/// its copy under the tool schema's `$defs` (see [`hoisted_defs`]).
fn data_schema(schemas: &Value, collection: &str) -> Value {
    let schema = collection_schema(schemas, collection);
    if refers_to_itself(&schema) {
        json!({"$ref": format!("#/$defs/{}", defs_key(collection))})
    } else {
        schema
    }
}

/// The `$defs` a tool's input schema needs for [`data_schema`].
fn hoisted_defs(schemas: &Value, collection: &str) -> Option<Value> {
    let schema = collection_schema(schemas, collection);
    if !refers_to_itself(&schema) {
        return None;
    }
    let key = defs_key(collection);
    Some(json!({ key.clone(): rebase(&schema, &format!("#/$defs/{key}")) }))
}

fn op_schema(op: CollectionOp, schemas: &Value, collection: &str) -> Value {
    match op {
        CollectionOp::Create => obj(
            json!({"data": data_schema(schemas, collection),
                   "external_id": {"type": "string"}, "external_source": {"type": "string"}}),
            &["data"],
        ),
        CollectionOp::Get | CollectionOp::Delete => obj(json!({"id": {"type": "string"}}), &["id"]),
        CollectionOp::List => obj(
            json!({"filter": {"type": "object", "description": "{\"field\":\"data.status\",\"op\":\"eq\",\"value\":\"open\"}; and/or/not combine"},
                   "sort": {"description": "{\"field\":\"data.amount\",\"order\":\"desc\"}"},
                   "limit": {"type": "integer", "minimum": 1, "maximum": 1000}, "offset": {"type": "integer", "minimum": 0}}),
            &[],
        ),
        CollectionOp::Update => obj(
            json!({"id": {"type": "string"}, "data": {"type": "object", "description": "fields to change (JSON merge patch)"},
                   "version": {"type": "integer", "minimum": 1}}),
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
            &[
                "source_collection",
                "source_id",
                "target_collection",
                "target_id",
            ],
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
        ToolKind::Collection {
            collection,
            operations,
        } => {
            let mut schema = with_actions(
                operations
                    .iter()
                    .map(|o| (o.as_str(), op_schema(*o, schemas, collection)))
                    .collect(),
            );
            if operations.contains(&CollectionOp::Create)
                && let Some(defs) = hoisted_defs(schemas, collection)
            {
                schema["$defs"] = defs;
            }
            schema
        }
        ToolKind::Relationship { operations, .. } => with_actions(
            operations
                .iter()
                .map(|o| (o.as_str(), rel_schema(*o)))
                .collect(),
        ),
        ToolKind::Batch => obj(
            json!({"operations": {"type": "array", "maxItems": 1000, "items": {"type": "object"}}}),
            &["operations"],
        ),
        ToolKind::Sql => obj(
            json!({"query": {"type": "string"}, "params": {"type": "object"}}),
            &["query"],
        ),
    }
}

fn describe(plan: &ToolPlan, schemas: &Value) -> String {
    match &plan.kind {
        ToolKind::Collection { collection, .. } => format!(
            "{}\nRecords of '{collection}' follow this JSON Schema: {}",
            plan.description,
            collection_schema(schemas, collection)
        ),
        _ => plan.description.clone(),
    }
}

/// The tools `config` generates, with input schemas built from the
/// collections' JSON Schemas (`{"collection": schema}`).
pub fn tools(config: &EndpointConfig, schemas: &Value) -> Result<Vec<ToolSpec>, ConfigError> {
    Ok(config
        .tools()?
        .iter()
        .map(|p| ToolSpec {
            name: p.name.clone(),
            description: describe(p, schemas),
            input_schema: input_schema(p, schemas),
            annotations: p.annotations,
        })
        .collect())
}

fn text(args: &Value, key: &str) -> Result<String, Error> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::InvalidArguments(format!("'{key}' (a string) is required")))
}

fn pick<T: Copy>(ops: &[T], name: impl Fn(T) -> &'static str, args: &Value) -> Result<T, Error> {
    if let [only] = ops {
        return Ok(*only);
    }
    let action = text(args, "action")?;
    ops.iter()
        .copied()
        .find(|o| name(*o) == action)
        .ok_or_else(|| Error::InvalidArguments(format!("unknown action '{action}'")))
}

/// Copies the listed keys of `args` into `into`.
fn copy(args: &Value, keys: &[&str], mut into: Value) -> Value {
    for k in keys {
        if let Some(v) = args.get(*k) {
            into[*k] = v.clone();
        }
    }
    into
}

fn run_collection(collection: &str, op: CollectionOp, args: &Value) -> Result<String, Error> {
    let answer = match op {
        CollectionOp::Create => {
            let req = json!({"data": args.get("data").cloned().unwrap_or(json!({}))});
            let req = copy(args, &["external_id", "external_source"], req);
            store::upsert(collection, &req.to_string())
        }
        CollectionOp::Get => store::get(collection, &text(args, "id")?),
        CollectionOp::List => {
            let q = copy(args, &["filter", "sort", "limit", "offset"], json!({}));
            store::query(collection, &q.to_string())
        }
        CollectionOp::Update => {
            let patch = args.get("data").cloned().unwrap_or(json!({}));
            store::update(
                collection,
                &text(args, "id")?,
                &patch.to_string(),
                args.get("version").and_then(Value::as_u64),
            )
        }
        CollectionOp::Delete => store::delete(collection, &text(args, "id")?),
    };
    Ok(answer?)
}

fn run_relationship(rel_type: &str, op: RelationshipOp, args: &Value) -> Result<String, Error> {
    let answer = match op {
        RelationshipOp::Create => {
            let req = copy(
                args,
                &[
                    "source_collection",
                    "source_id",
                    "target_collection",
                    "target_id",
                    "metadata",
                ],
                json!({"rel_type": rel_type}),
            );
            store::link(&req.to_string())
        }
        RelationshipOp::List => {
            let direction = args
                .get("direction")
                .and_then(Value::as_str)
                .unwrap_or("both");
            store::links(
                &text(args, "collection")?,
                &text(args, "id")?,
                rel_type,
                direction,
            )
        }
        RelationshipOp::Delete => store::unlink(&text(args, "id")?),
    };
    Ok(answer?)
}

/// Runs generated tool `name` of `config`; the result is the store's JSON
/// answer as text. Store refusals are business errors ([`Error::Tool`]).
pub fn call_json(config: &EndpointConfig, name: &str, args: &Value) -> Result<String, Error> {
    let kind = config
        .tool_kind(name)
        .ok_or_else(|| Error::UnknownTool(format!("no tool '{name}' in this endpoint")))?;
    match &kind {
        ToolKind::Collection {
            collection,
            operations,
        } => run_collection(
            collection,
            pick(operations, CollectionOp::as_str, args)?,
            args,
        ),
        ToolKind::Relationship {
            rel_type,
            operations,
        } => run_relationship(
            rel_type,
            pick(operations, RelationshipOp::as_str, args)?,
            args,
        ),
        ToolKind::Batch => {
            let ops = args.get("operations").cloned().unwrap_or(json!([]));
            Ok(store::batch(&ops.to_string())?)
        }
        ToolKind::Sql => {
            let params = args.get("params").cloned().unwrap_or(json!({}));
            Ok(store::sql(&text(args, "query")?, &params.to_string())?)
        }
    }
}

/// [`call_json`], parsed.
pub fn call(config: &EndpointConfig, name: &str, args: &Value) -> Result<Value, Error> {
    Ok(serde_json::from_str(&call_json(config, name, args)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A collection schema with `$defs`/`$ref` keeps resolving inside a
    /// tool's input schema (defect: every tool of such an endpoint failed
    /// with "Pointer '/$defs/n' does not exist").
    #[test]
    fn self_referring_collection_schemas_are_hoisted_under_defs() {
        let config: EndpointConfig = serde_json::from_value(json!({
            "tools": [{"collection": "tree", "operations": ["create", "get"], "name_override": "tree"}]
        }))
        .expect("config");
        let schema = json!({
            "type": "object",
            "properties": {"root": {"$ref": "#/$defs/n"}, "kind": {"enum": ["#/not/a/ref"]}},
            "$defs": {"n": {"type": "object", "properties": {
                "v": {"type": "number"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/n"}}}}}
        });
        let tools = tools(&config, &json!({"tree": schema})).expect("tools");
        let s = &tools[0].input_schema;
        let create = &s["oneOf"][0];
        assert_eq!(
            create["properties"]["data"],
            json!({"$ref": "#/$defs/collection_tree"})
        );
        let hoisted = &s["$defs"]["collection_tree"];
        assert_eq!(
            hoisted["properties"]["root"]["$ref"],
            "#/$defs/collection_tree/$defs/n"
        );
        assert_eq!(
            hoisted["$defs"]["n"]["properties"]["kids"]["items"]["$ref"],
            "#/$defs/collection_tree/$defs/n"
        );
        // Data is not rewritten.
        assert_eq!(hoisted["properties"]["kind"]["enum"][0], "#/not/a/ref");
        // A schema without self-references is embedded as it is.
        let plain = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let tools = super::tools(&config, &json!({"tree": plain.clone()})).expect("tools");
        assert_eq!(
            tools[0].input_schema["oneOf"][0]["properties"]["data"],
            plain
        );
        assert!(tools[0].input_schema.get("$defs").is_none());
    }
}
