//! Endpoint configuration and the tools it generates.
//!
//! This module is plain Rust with no Wasm bindings: the host uses it to
//! validate a configuration when it is stored, and the generated component
//! uses the very same code to serve the tools, so names can never disagree.
//!
//! The configuration is Rekor's MCP Factory config (JSON or the CLI
//! shorthand), plus `component`, `grants` and `limits`:
//!
//! ```
//! use mcp_factory_guest::config::EndpointConfig;
//!
//! let config: EndpointConfig = serde_json::from_str(r#"{
//!     "name": "Invoicing Agent",
//!     "tools": [{"collection": "invoices", "operations": ["get", "list"],
//!                "name_override": "search_invoices"}],
//!     "relationships": [{"rel_type": "invoice_payment", "operations": ["create"]}],
//!     "sql_query": true
//! }"#).unwrap();
//! let names: Vec<String> = config.tools().unwrap().into_iter().map(|t| t.name).collect();
//! assert_eq!(names, ["search_invoices", "link_invoice_payment", "sql_query"]);
//! ```
//!
//! Naming rules: without `name_override`, one tool per operation
//! (`create_/get_/list_/update_/delete_{collection}`,
//! `link_/list_/unlink_{rel_type}`). With `name_override`, one tool of that
//! name; if the entry has several operations it takes an `action` argument.
//! `description_override` replaces the description of every tool the entry
//! makes. `batch` (when present and enabled) and `sql_query` add one tool each.
//! Names match `^[a-zA-Z0-9_-]{1,64}$` and are unique in the endpoint.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Operations on a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectionOp {
    Create,
    Get,
    List,
    Update,
    Delete,
}

/// Operations on a relationship type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelationshipOp {
    Create,
    List,
    Delete,
}

impl CollectionOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionOp::Create => "create",
            CollectionOp::Get => "get",
            CollectionOp::List => "list",
            CollectionOp::Update => "update",
            CollectionOp::Delete => "delete",
        }
    }

    fn annotations(self) -> Annotations {
        match self {
            CollectionOp::Get | CollectionOp::List => Annotations::READ,
            CollectionOp::Create => Annotations::CREATE,
            CollectionOp::Update | CollectionOp::Delete => Annotations::DESTRUCTIVE,
        }
    }

    fn describe(self, collection: &str) -> String {
        match self {
            CollectionOp::Create => format!("Create a record in '{collection}'."),
            CollectionOp::Get => format!("Get a record of '{collection}' by id."),
            CollectionOp::List => {
                format!("List records of '{collection}', with optional filter, sort and paging.")
            }
            CollectionOp::Update => {
                format!("Update a record of '{collection}' (partial data, merged).")
            }
            CollectionOp::Delete => format!("Delete a record of '{collection}'."),
        }
    }
}

impl RelationshipOp {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationshipOp::Create => "create",
            RelationshipOp::List => "list",
            RelationshipOp::Delete => "delete",
        }
    }

    /// The default tool name prefix: `link_`, `list_`, `unlink_`.
    fn prefix(self) -> &'static str {
        match self {
            RelationshipOp::Create => "link",
            RelationshipOp::List => "list",
            RelationshipOp::Delete => "unlink",
        }
    }

    fn annotations(self) -> Annotations {
        match self {
            RelationshipOp::List => Annotations::READ,
            RelationshipOp::Create => Annotations::CREATE,
            RelationshipOp::Delete => Annotations::DESTRUCTIVE,
        }
    }

    fn describe(self, rel_type: &str) -> String {
        match self {
            RelationshipOp::Create => {
                format!("Create a '{rel_type}' relationship between two records.")
            }
            RelationshipOp::List => format!("List the '{rel_type}' relationships of a record."),
            RelationshipOp::Delete => format!("Delete a '{rel_type}' relationship."),
        }
    }
}

/// `tools[]`: operations exposed on one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolEntry {
    pub collection: String,
    pub operations: Vec<CollectionOp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_override: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_override: Option<String>,
}

/// `relationships[]`: operations exposed on one relationship type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationshipEntry {
    pub rel_type: String,
    pub operations: Vec<RelationshipOp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_override: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_override: Option<String>,
}

/// `batch`: which operations the atomic `batch` tool allows, by collection
/// or relationship type (`create`, `update`, `delete`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub operations: BTreeMap<String, Vec<String>>,
}

fn yes() -> bool {
    true
}

/// Per-endpoint sandbox limits (capped by the server's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

/// An endpoint's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relationships: Vec<RelationshipEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchConfig>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sql_query: bool,
    /// Digest (`sha256:…`) of an uploaded custom component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Extra store capabilities for custom code, not exposed as tools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<ToolEntry>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub limits: Limits,
}

fn is_default(l: &Limits) -> bool {
    *l == Limits::default()
}

/// MCP tool annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
}

impl Annotations {
    const READ: Annotations = Annotations {
        read_only: true,
        destructive: false,
        idempotent: true,
    };
    const CREATE: Annotations = Annotations {
        read_only: false,
        destructive: false,
        idempotent: false,
    };
    const DESTRUCTIVE: Annotations = Annotations {
        read_only: false,
        destructive: true,
        idempotent: false,
    };

    /// The annotations of a tool covering several operations: read-only only
    /// if all are, destructive if any is.
    fn merge(list: impl IntoIterator<Item = Annotations>) -> Annotations {
        list.into_iter()
            .fold(Annotations::READ, |a, b| Annotations {
                read_only: a.read_only && b.read_only,
                destructive: a.destructive || b.destructive,
                idempotent: a.idempotent && b.idempotent,
            })
    }
}

/// What a generated tool does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToolKind {
    /// Collection operations; more than one means an `action` argument.
    Collection {
        collection: String,
        operations: Vec<CollectionOp>,
    },
    /// Relationship operations; more than one means an `action` argument.
    Relationship {
        rel_type: String,
        operations: Vec<RelationshipOp>,
    },
    Batch,
    Sql,
}

/// One generated tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolPlan {
    pub name: String,
    pub description: String,
    #[serde(flatten)]
    pub kind: ToolKind,
    pub annotations: Annotations,
}

/// A configuration that cannot be served, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: `tools[1].name_override`, `batch.operations.invoices`, …
    pub at: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn fail(at: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        at: at.into(),
        message: message.into(),
    }
}

/// Whether `name` is a valid MCP tool name here: `^[a-zA-Z0-9_-]{1,64}$`.
pub fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_ops<T: PartialEq + Copy>(at: &str, ops: &[T]) -> Result<(), ConfigError> {
    if ops.is_empty() {
        return Err(fail(
            format!("{at}.operations"),
            "list at least one operation",
        ));
    }
    for (i, op) in ops.iter().enumerate() {
        if ops[..i].contains(op) {
            return Err(fail(
                format!("{at}.operations"),
                "an operation is listed twice",
            ));
        }
    }
    Ok(())
}

/// What the tool-naming rules need of an operation type.
trait Operation: Copy + Ord + PartialEq {
    /// What the default tool name starts with (`get`, `link`).
    fn name_prefix(self) -> &'static str;
    /// The default tool name on `target` (`get_invoices`, `link_invoice_payment`).
    fn default_name(self, target: &str) -> String {
        format!("{}_{target}", self.name_prefix())
    }
    fn describe(self, target: &str) -> String;
    fn annotations(self) -> Annotations;
}

impl Operation for CollectionOp {
    fn name_prefix(self) -> &'static str {
        self.as_str()
    }
    fn describe(self, collection: &str) -> String {
        CollectionOp::describe(self, collection)
    }
    fn annotations(self) -> Annotations {
        CollectionOp::annotations(self)
    }
}

impl Operation for RelationshipOp {
    fn name_prefix(self) -> &'static str {
        self.prefix()
    }
    fn describe(self, rel_type: &str) -> String {
        RelationshipOp::describe(self, rel_type)
    }
    fn annotations(self) -> Annotations {
        RelationshipOp::annotations(self)
    }
}

/// One `tools[]` or `relationships[]` entry, for naming.
struct Entry<'a> {
    /// Where it is in the config, for errors.
    at: String,
    /// Its collection or relationship type.
    target: &'a str,
    name_override: Option<&'a str>,
    description_override: Option<&'a str>,
}

impl Entry<'_> {
    /// The entry's tools (with where each name came from): one per operation,
    /// or one named `name_override` covering all of them.
    fn plans<O: Operation>(
        &self,
        operations: &[O],
        kind: impl Fn(Vec<O>) -> ToolKind,
    ) -> Result<Vec<(String, ToolPlan)>, ConfigError> {
        check_ops(&self.at, operations)?;
        let describe = |ops: &[O]| {
            self.description_override.map_or_else(
                || {
                    ops.iter()
                        .map(|o| o.describe(self.target))
                        .collect::<Vec<_>>()
                        .join(" ")
                },
                str::to_string,
            )
        };
        if let Some(name) = self.name_override {
            let mut ops = operations.to_vec();
            ops.sort();
            return Ok(vec![(
                format!("{}.name_override", self.at),
                ToolPlan {
                    name: name.to_string(),
                    description: describe(&ops),
                    annotations: Annotations::merge(ops.iter().map(|o| o.annotations())),
                    kind: kind(ops),
                },
            )]);
        }
        Ok(operations
            .iter()
            .map(|op| {
                (
                    format!("{}.operations", self.at),
                    ToolPlan {
                        name: op.default_name(self.target),
                        description: describe(std::slice::from_ref(op)),
                        annotations: op.annotations(),
                        kind: kind(vec![*op]),
                    },
                )
            })
            .collect())
    }
}

/// The operations of the entry's tool named `name`, if it has one: the
/// override covers all of them (sorted, as [`Entry::plans`] does); without
/// one, each operation has its default name.
fn operations_named<O: Operation>(
    name: &str,
    target: &str,
    name_override: Option<&str>,
    operations: &[O],
) -> Option<Vec<O>> {
    match name_override {
        Some(n) if n == name => {
            let mut ops = operations.to_vec();
            ops.sort();
            Some(ops)
        }
        Some(_) => None,
        None => operations
            .iter()
            .find(|o| {
                name.strip_prefix(o.name_prefix())
                    .and_then(|r| r.strip_prefix('_'))
                    == Some(target)
            })
            .map(|o| vec![*o]),
    }
}

impl EndpointConfig {
    /// The tools this configuration generates, in a stable order (entries
    /// in config order, then `batch`, then `sql_query`), or the first thing
    /// wrong with it.
    pub fn tools(&self) -> Result<Vec<ToolPlan>, ConfigError> {
        let mut out: Vec<(String, ToolPlan)> = Vec::new();
        for (i, e) in self.tools.iter().enumerate() {
            let entry = Entry {
                at: format!("tools[{i}]"),
                target: &e.collection,
                name_override: e.name_override.as_deref(),
                description_override: e.description_override.as_deref(),
            };
            out.extend(
                entry.plans(&e.operations, |operations| ToolKind::Collection {
                    collection: e.collection.clone(),
                    operations,
                })?,
            );
        }
        for (i, e) in self.relationships.iter().enumerate() {
            let entry = Entry {
                at: format!("relationships[{i}]"),
                target: &e.rel_type,
                name_override: e.name_override.as_deref(),
                description_override: e.description_override.as_deref(),
            };
            out.extend(
                entry.plans(&e.operations, |operations| ToolKind::Relationship {
                    rel_type: e.rel_type.clone(),
                    operations,
                })?,
            );
        }
        if let Some(b) = self.batch.as_ref().filter(|b| b.enabled) {
            for (key, ops) in &b.operations {
                for op in ops {
                    if !["create", "update", "delete"].contains(&op.as_str()) {
                        return Err(fail(
                            format!("batch.operations.{key}"),
                            format!(
                                "unknown operation '{op}'; batch allows create, update and delete"
                            ),
                        ));
                    }
                }
            }
            out.push((
                "batch".into(),
                ToolPlan {
                    name: "batch".into(),
                    description:
                        "Run several operations atomically: all succeed or none is applied.".into(),
                    annotations: Annotations::DESTRUCTIVE,
                    kind: ToolKind::Batch,
                },
            ));
        }
        if self.sql_query {
            out.push((
                "sql_query".into(),
                ToolPlan {
                    name: "sql_query".into(),
                    description: "Run one read-only SQL query over this endpoint's collections."
                        .into(),
                    annotations: Annotations::READ,
                    kind: ToolKind::Sql,
                },
            ));
        }
        for (i, (at, t)) in out.iter().enumerate() {
            if !valid_tool_name(&t.name) {
                return Err(fail(
                    at.clone(),
                    format!(
                        "tool name '{}' is invalid: use 1-64 letters, digits, '_' or '-'",
                        t.name
                    ),
                ));
            }
            if out[..i].iter().any(|(_, o)| o.name == t.name) {
                return Err(fail(
                    at.clone(),
                    format!("tool name '{}' is used twice in this endpoint", t.name),
                ));
            }
        }
        Ok(out.into_iter().map(|(_, t)| t).collect())
    }

    /// What the tool named `name` does, without planning the others (no
    /// descriptions, no validation): the serving path of a configuration
    /// that [`EndpointConfig::tools`] accepted when it was stored. Agrees
    /// with `tools()` on every name (tested).
    pub fn tool_kind(&self, name: &str) -> Option<ToolKind> {
        for e in &self.tools {
            if let Some(operations) = operations_named(
                name,
                &e.collection,
                e.name_override.as_deref(),
                &e.operations,
            ) {
                return Some(ToolKind::Collection {
                    collection: e.collection.clone(),
                    operations,
                });
            }
        }
        for e in &self.relationships {
            if let Some(operations) =
                operations_named(name, &e.rel_type, e.name_override.as_deref(), &e.operations)
            {
                return Some(ToolKind::Relationship {
                    rel_type: e.rel_type.clone(),
                    operations,
                });
            }
        }
        if name == "batch" && self.batch.as_ref().is_some_and(|b| b.enabled) {
            return Some(ToolKind::Batch);
        }
        if name == "sql_query" && self.sql_query {
            return Some(ToolKind::Sql);
        }
        None
    }

    /// Builds a configuration from the CLI shorthand flags:
    /// `--tool "invoices:get,list"`, `--relationship "invoice_payment:create,list"`,
    /// `--batch "invoices:create,update"` (each repeatable), `--sql-query`.
    pub fn from_shorthand(
        tools: &[String],
        relationships: &[String],
        batch: &[String],
        sql_query: bool,
    ) -> Result<EndpointConfig, ConfigError> {
        fn split<'a>(flag: &str, s: &'a str) -> Result<(&'a str, Vec<&'a str>), ConfigError> {
            let (name, ops) = s
                .split_once(':')
                .ok_or_else(|| fail(flag, format!("'{s}' must look like <name>:<op>,<op>")))?;
            let ops: Vec<&str> = ops
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .collect();
            if name.trim().is_empty() || ops.is_empty() {
                return Err(fail(flag, format!("'{s}' must look like <name>:<op>,<op>")));
            }
            Ok((name.trim(), ops))
        }
        fn parse<T: for<'de> Deserialize<'de>>(
            flag: &str,
            op: &str,
            allowed: &str,
        ) -> Result<T, ConfigError> {
            serde_json::from_value(serde_json::Value::String(op.to_string())).map_err(|_| {
                fail(
                    flag,
                    format!("unknown operation '{op}'; expected {allowed}"),
                )
            })
        }
        let mut config = EndpointConfig {
            sql_query,
            ..EndpointConfig::default()
        };
        for t in tools {
            let (collection, ops) = split("--tool", t)?;
            let operations = ops
                .iter()
                .map(|o| parse("--tool", o, "create, get, list, update or delete"))
                .collect::<Result<_, _>>()?;
            config.tools.push(ToolEntry {
                collection: collection.into(),
                operations,
                name_override: None,
                description_override: None,
            });
        }
        for r in relationships {
            let (rel_type, ops) = split("--relationship", r)?;
            let operations = ops
                .iter()
                .map(|o| parse("--relationship", o, "create, list or delete"))
                .collect::<Result<_, _>>()?;
            config.relationships.push(RelationshipEntry {
                rel_type: rel_type.into(),
                operations,
                name_override: None,
                description_override: None,
            });
        }
        if !batch.is_empty() {
            let mut operations = BTreeMap::new();
            for b in batch {
                let (key, ops) = split("--batch", b)?;
                let list: &mut Vec<String> = operations.entry(key.to_string()).or_default();
                list.extend(ops.iter().map(|o| o.to_string()));
            }
            config.batch = Some(BatchConfig {
                enabled: true,
                operations,
            });
        }
        Ok(config)
    }

    /// The collections the configuration certainly names: those of `tools`
    /// and `grants`. (A `batch` key is a collection or a relationship type;
    /// only the workspace can tell which.)
    pub fn collections(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .tools
            .iter()
            .chain(&self.grants)
            .map(|t| t.collection.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_JSON: &str = r#"{
        "name": "Invoicing Agent",
        "description": "Tools for managing invoices and payments",
        "tools": [
          {"collection": "invoices", "operations": ["get", "list"], "name_override": "search_invoices",
           "description_override": "Search invoices by customer, status, or date range"},
          {"collection": "payments", "operations": ["create", "get", "list"], "description_override": "Manage payment records"}
        ],
        "relationships": [
          {"rel_type": "invoice_payment", "operations": ["create", "list"], "name_override": "assign_payment",
           "description_override": "Link a payment to an invoice"}
        ],
        "batch": {"enabled": true, "operations": {"invoices": ["create", "update"], "payments": ["create"], "invoice_payment": ["create"]}},
        "sql_query": true
    }"#;

    fn names(c: &EndpointConfig) -> Vec<String> {
        c.tools()
            .expect("valid config")
            .into_iter()
            .map(|t| t.name)
            .collect()
    }

    #[test]
    fn the_seed_json_config_yields_exactly_its_tools() {
        let c: EndpointConfig = serde_json::from_str(SEED_JSON).expect("parses");
        assert_eq!(
            names(&c),
            [
                "search_invoices",
                "create_payments",
                "get_payments",
                "list_payments",
                "assign_payment",
                "batch",
                "sql_query"
            ]
        );
        let tools = c.tools().expect("valid");
        assert_eq!(
            tools[0].description,
            "Search invoices by customer, status, or date range"
        );
        assert_eq!(
            tools[0].kind,
            ToolKind::Collection {
                collection: "invoices".into(),
                operations: vec![CollectionOp::Get, CollectionOp::List]
            }
        );
        assert!(tools[0].annotations.read_only);
        assert!(
            tools[1..4]
                .iter()
                .all(|t| t.description == "Manage payment records")
        );
        assert_eq!(tools[1].annotations, Annotations::CREATE);
        assert!(
            !tools[4].annotations.read_only && !tools[4].annotations.destructive,
            "link is a create"
        );
        assert!(tools[5].annotations.destructive);
        assert!(tools[6].annotations.read_only && tools[6].annotations.idempotent);
        assert_eq!(c.collections(), ["invoices", "payments"]);
    }

    #[test]
    fn tool_kind_agrees_with_tools_on_every_name() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let shorthand = EndpointConfig::from_shorthand(
            &s(&[
                "invoices:get,list",
                "payments:create,get,list,update,delete",
            ]),
            &s(&["invoice_payment:create,list,delete"]),
            &s(&["invoices:create,update"]),
            true,
        )
        .expect("shorthand");
        let json: EndpointConfig = serde_json::from_str(SEED_JSON).expect("parses");
        for c in [shorthand, json] {
            for t in c.tools().expect("valid") {
                assert_eq!(c.tool_kind(&t.name).as_ref(), Some(&t.kind), "{}", t.name);
            }
            for unknown in ["get_nothing", "get_", "search_invoicesx", "invoices", ""] {
                assert_eq!(c.tool_kind(unknown), None, "{unknown}");
            }
        }
        // An entry with an override has no default names.
        let json: EndpointConfig = serde_json::from_str(SEED_JSON).expect("parses");
        assert_eq!(json.tool_kind("get_invoices"), None);
    }

    #[test]
    fn the_seed_shorthand_yields_exactly_its_tools() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let c = EndpointConfig::from_shorthand(
            &s(&["invoices:get,list", "payments:create,get,list"]),
            &s(&["invoice_payment:create,list"]),
            &s(&["invoices:create,update", "payments:create"]),
            true,
        )
        .expect("parses");
        assert_eq!(
            names(&c),
            [
                "get_invoices",
                "list_invoices",
                "create_payments",
                "get_payments",
                "list_payments",
                "link_invoice_payment",
                "list_invoice_payment",
                "batch",
                "sql_query"
            ]
        );
    }

    #[test]
    fn batch_only_pattern_has_no_standalone_create() {
        let c: EndpointConfig = serde_json::from_str(
            r#"{"tools": [{"collection": "invoices", "operations": ["get", "list"]}, {"collection": "line_items", "operations": ["get", "list"]}],
                "batch": {"enabled": true, "operations": {"invoices": ["create", "update"], "line_items": ["create"], "invoice_line_item": ["create"]}}}"#,
        )
        .expect("parses");
        assert_eq!(
            names(&c),
            [
                "get_invoices",
                "list_invoices",
                "get_line_items",
                "list_line_items",
                "batch"
            ]
        );
    }

    #[test]
    fn bad_configs_name_the_field_at_fault() {
        let err = |json: &str| {
            serde_json::from_str::<EndpointConfig>(json)
                .expect("parses")
                .tools()
                .expect_err("invalid")
        };
        let e = err(
            r#"{"tools": [{"collection": "a", "operations": ["get"], "name_override": "bad name!"}]}"#,
        );
        assert_eq!(e.at, "tools[0].name_override");
        assert!(e.message.contains("'bad name!'"));
        let e = err(
            r#"{"tools": [{"collection": "a", "operations": ["get"]}, {"collection": "b", "operations": ["list"], "name_override": "get_a"}]}"#,
        );
        assert!(e.message.contains("'get_a' is used twice"), "{e}");
        let e = err(r#"{"tools": [{"collection": "a", "operations": []}]}"#);
        assert_eq!(e.at, "tools[0].operations");
        let e = err(r#"{"batch": {"operations": {"a": ["explode"]}}}"#);
        assert_eq!(e.at, "batch.operations.a");
        let long = "x".repeat(60);
        let e = err(&format!(
            r#"{{"tools": [{{"collection": "{long}", "operations": ["delete"]}}]}}"#
        ));
        assert!(e.message.contains("invalid"), "{e}");
        assert!(
            serde_json::from_str::<EndpointConfig>(
                r#"{"tools": [{"collection": "a", "operations": ["fly"]}]}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<EndpointConfig>(r#"{"surprise": 1}"#).is_err());
        let bad = EndpointConfig::from_shorthand(&["invoices".into()], &[], &[], false)
            .expect_err("no ops");
        assert_eq!(bad.at, "--tool");
        let bad = EndpointConfig::from_shorthand(&["invoices:get,fly".into()], &[], &[], false)
            .expect_err("bad op");
        assert!(bad.message.contains("'fly'"), "{bad}");
    }
}
