//! Typed helpers over the `store` imports. Every call is checked by the host
//! against the endpoint's grants; a call outside them fails with
//! [`StoreError::Denied`], naming the missing grant.
//!
//! Records and relationships have the REST API's shapes. `data` is generic,
//! so a record can be read straight into your own type:
//!
//! ```no_run
//! use mcp_factory_guest::store::{self, Record};
//!
//! #[derive(serde::Deserialize)]
//! struct Invoice { number: String, total: f64 }
//!
//! let r: Record<Invoice> = store::get_as("invoices", "inv_1")?;
//! println!("{} {}", r.data.number, r.data.total);
//! # Ok::<(), store::StoreError>(())
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bindings::mcp_factory::plugin::store as raw;
use crate::bindings::mcp_factory::plugin::types::StoreError as RawError;

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No such record, relationship or collection.
    NotFound(String),
    /// The input breaks a rule (schema, format, limits).
    Invalid(String),
    /// A version conflict or a uniqueness rule.
    Conflict(String),
    /// The endpoint has no grant for this; the message names it.
    Denied(String),
    /// A server-side failure, or an answer this SDK could not read.
    Failed(String),
}

impl StoreError {
    /// The error code (as the REST API names it) and the message.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            StoreError::NotFound(m) => ("NOT_FOUND", m),
            StoreError::Invalid(m) => ("VALIDATION_ERROR", m),
            StoreError::Conflict(m) => ("CONFLICT", m),
            StoreError::Denied(m) => ("FORBIDDEN", m),
            StoreError::Failed(m) => ("INTERNAL_ERROR", m),
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (code, m) = self.parts();
        write!(f, "{code}: {m}")
    }
}

impl std::error::Error for StoreError {}

impl From<RawError> for StoreError {
    fn from(e: RawError) -> StoreError {
        match e {
            RawError::NotFound(m) => StoreError::NotFound(m),
            RawError::Invalid(m) => StoreError::Invalid(m),
            RawError::Conflict(m) => StoreError::Conflict(m),
            RawError::Denied(m) => StoreError::Denied(m),
            RawError::Failed(m) => StoreError::Failed(m),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record<T = Value> {
    pub id: String,
    pub collection: String,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub external_source: Option<String>,
    pub version: u64,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub cancelled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub data: T,
}

/// A page of records.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Page<T = Value> {
    pub data: Vec<Record<T>>,
    pub meta: Value,
}

/// A filter, sort and page for [`query`]: the REST query body.
///
/// ```
/// use mcp_factory_guest::store::Query;
/// let q = Query::new().filter(serde_json::json!({"field": "data.status", "op": "eq", "value": "open"})).limit(10);
/// assert_eq!(q.to_json()["limit"], 10);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Query {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

impl Query {
    pub fn new() -> Query {
        Query::default()
    }
    pub fn filter(mut self, filter: Value) -> Query {
        self.filter = Some(filter);
        self
    }
    pub fn sort(mut self, sort: Value) -> Query {
        self.sort = Some(sort);
        self
    }
    pub fn limit(mut self, n: u32) -> Query {
        self.limit = Some(n);
        self
    }
    pub fn offset(mut self, n: u32) -> Query {
        self.offset = Some(n);
        self
    }
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

fn read<T: DeserializeOwned>(answer: text::Answer) -> Result<T> {
    serde_json::from_str(&answer?)
        .map_err(|e| StoreError::Failed(format!("reading the store's answer: {e}")))
}

/// Creates a record with `data`.
pub fn create(collection: &str, data: &Value) -> Result<Record> {
    read(text::upsert(collection, &json!({"data": data}).to_string()))
}

/// Creates or replaces a record: `request` is the REST upsert body
/// (`data`, and `id`, `external_id`, `external_source`, `version` as needed).
pub fn upsert(collection: &str, request: &Value) -> Result<Record> {
    read(text::upsert(collection, &request.to_string()))
}

/// A live record by internal or external id.
pub fn get(collection: &str, id: &str) -> Result<Record> {
    read(text::get(collection, id))
}

/// [`get`], with `data` read as `T`.
pub fn get_as<T: DeserializeOwned>(collection: &str, id: &str) -> Result<Record<T>> {
    read(text::get(collection, id))
}

/// Records matching `query`.
pub fn query(collection: &str, query: &Query) -> Result<Page> {
    read(text::query(collection, &query.to_json().to_string()))
}

/// Merges `patch` (JSON merge patch) into a record's data; with `version`,
/// only if the record is still at that version.
pub fn update(collection: &str, id: &str, patch: &Value, version: Option<u64>) -> Result<Record> {
    read(text::update(collection, id, &patch.to_string(), version))
}

/// Soft-deletes a record.
pub fn delete(collection: &str, id: &str) -> Result<Record> {
    read(text::delete(collection, id))
}

/// Marks a record cancelled (its data stays); needs the `update` grant.
pub fn cancel(collection: &str, id: &str) -> Result<Record> {
    read(text::cancel(collection, id))
}

/// Links two records: `request` is the REST relationship body without
/// `rel_type`.
pub fn link(rel_type: &str, request: &Value) -> Result<Value> {
    let mut body = request.clone();
    body["rel_type"] = json!(rel_type);
    read(text::link(&body.to_string()))
}

/// Deletes a relationship by id.
pub fn unlink(id: &str) -> Result<Value> {
    read(text::unlink(id))
}

/// Relationships of a record; `direction` is `outgoing`, `incoming` or `both`.
pub fn links(collection: &str, id: &str, rel_type: &str, direction: &str) -> Result<Value> {
    read(text::links(collection, id, rel_type, direction))
}

/// Runs operations atomically (the REST batch list): all or nothing.
pub fn batch(operations: &Value) -> Result<Value> {
    read(text::batch(&operations.to_string()))
}

/// One read-only SQL query over the endpoint's collections.
pub fn sql(query: &str, params: &Value) -> Result<Value> {
    read(text::sql(query, &params.to_string()))
}

/// The store's JSON answers unparsed: what the typed helpers read, and
/// what the generated layer passes straight on as a tool result.
pub(crate) mod text {
    use super::{StoreError, raw};

    pub type Answer = std::result::Result<String, StoreError>;

    pub fn upsert(collection: &str, request: &str) -> Answer {
        raw::upsert_record(collection, request).map_err(Into::into)
    }
    pub fn get(collection: &str, id: &str) -> Answer {
        raw::get_record(collection, id).map_err(Into::into)
    }
    pub fn query(collection: &str, query: &str) -> Answer {
        raw::query_records(collection, query).map_err(Into::into)
    }
    pub fn update(collection: &str, id: &str, patch: &str, version: Option<u64>) -> Answer {
        raw::update_record(collection, id, patch, version).map_err(Into::into)
    }
    pub fn delete(collection: &str, id: &str) -> Answer {
        raw::delete_record(collection, id).map_err(Into::into)
    }
    pub fn cancel(collection: &str, id: &str) -> Answer {
        raw::cancel_record(collection, id).map_err(Into::into)
    }
    pub fn link(request: &str) -> Answer {
        raw::link(request).map_err(Into::into)
    }
    pub fn unlink(id: &str) -> Answer {
        raw::unlink(id).map_err(Into::into)
    }
    pub fn links(collection: &str, id: &str, rel_type: &str, direction: &str) -> Answer {
        raw::list_links(collection, id, Some(rel_type), direction).map_err(Into::into)
    }
    pub fn batch(operations: &str) -> Answer {
        raw::batch(operations).map_err(Into::into)
    }
    pub fn sql(query: &str, params: &str) -> Answer {
        raw::sql(query, params).map_err(Into::into)
    }
}
