//! `sql_query`: read-only SQL over a workspace. The rules (who may query,
//! which collections a token's grants reach) are here; the engine is
//! [`crate::sql`].

use serde::Deserialize;
use serde_json::{Map, Value};

use mcp_factory_guest::config::RelationshipOp;

use super::auth::Act;
use super::error::{Result, ServiceError};
use super::{Caller, Service, collections};
use crate::sql::{self, SqlError};

/// Body of `POST /v1/{ws}/sql`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    pub query: String,
    #[serde(default)]
    pub params: Map<String, Value>,
}

impl From<SqlError> for ServiceError {
    fn from(e: SqlError) -> ServiceError {
        match e {
            SqlError::Store(s) => ServiceError::Store(s),
            SqlError::Timeout(_) => ServiceError::Validation {
                message: e.to_string(),
                details: serde_json::json!({"reason": "timeout"}),
            },
            SqlError::Refused(m) => ServiceError::Validation {
                message: m,
                details: serde_json::json!({"reason": "refused"}),
            },
            SqlError::Invalid(m) => ServiceError::invalid(m),
        }
    }
}

impl Service {
    /// Runs one read-only query in `ws` on a blocking thread. Needs
    /// `read:records`; a token limited to some collections sees only those.
    pub async fn sql_query(
        &self,
        caller: &Caller,
        ws: &str,
        req: SqlRequest,
    ) -> Result<sql::Output> {
        // Wait for a slot first, so a queued query holds no snapshot.
        let slot = self
            .sql_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Internal("the SQL pool is closed".into()))?;
        let snapshot = self.store.read()?;
        let w = super::workspaces::load(&snapshot, ws)?;
        caller.authorize(&w, Act::Sql)?;
        let all = collections::list_in(&snapshot, ws)?;
        let readable: Vec<String> = all
            .iter()
            .filter(|c| caller.may(&w, Act::SqlCollection(&c.id)))
            .map(|c| c.id.clone())
            .collect();
        // Relationships: the token needs `read:relationships`; during an
        // endpoint call, only the types the endpoint may list.
        let rel_types = if !caller.may(&w, Act::Perm(None, "read:relationships"))
            && caller.endpoint.is_none()
        {
            Some(Vec::new())
        } else {
            caller.endpoint.as_ref().map(|e| {
                e.config
                    .relationships
                    .iter()
                    .filter(|r| {
                        caller.may(&w, Act::Relationship(&r.rel_type, RelationshipOp::List))
                    })
                    .map(|r| r.rel_type.clone())
                    .collect()
            })
        };
        let scope = sql::Scope {
            rel_types,
            oplog_collections_only: caller.endpoint.is_some(),
            collections: (readable.len() < all.len()).then_some(readable),
            snapshot,
            workspace: ws.to_string(),
            timeout: self.config.sql_timeout,
        };
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            sql::query(scope, &req.query, &req.params)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("sql task failed: {e}")))?
        .map_err(ServiceError::from)
    }
}
