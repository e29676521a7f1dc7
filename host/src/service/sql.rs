//! `sql_query`: read-only SQL over a workspace. The rules (who may query,
//! which collections a token's grants reach, how the SQL slots are shared
//! between workspaces) are here; the engine is [`crate::sql`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// The SQL slots: `total` queries at once for the whole server, and at
/// most half of them (at least one) for any one tenant (a production
/// workspace and its previews), so a tenant's slow queries always leave
/// slots to its neighbours. Both queues are
/// first come, first served.
pub struct Slots {
    total: Arc<Semaphore>,
    per_workspace: usize,
    workspaces: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Tenants remembered before idle ones are forgotten.
const REMEMBERED_WORKSPACES: usize = 1024;

/// A running query's hold on its tenant's share and on a server slot.
pub struct Slot {
    _workspace: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl Slots {
    pub fn new(total: usize) -> Slots {
        let total = total.max(1);
        Slots {
            total: Arc::new(Semaphore::new(total)),
            per_workspace: total.div_ceil(2),
            workspaces: Mutex::default(),
        }
    }

    /// The most queries one workspace may run at once.
    pub fn per_workspace(&self) -> usize {
        self.per_workspace
    }

    /// Waits for the tenant's share first, then for a server slot: a
    /// tenant over its share queues on its own semaphore and never in
    /// front of another tenant's queries.
    pub async fn acquire(&self, tenant: &str) -> Result<Slot> {
        let share = {
            let mut map = self
                .workspaces
                .lock()
                .map_err(|_| ServiceError::Internal("the SQL slots are poisoned".into()))?;
            if map.len() >= REMEMBERED_WORKSPACES && !map.contains_key(tenant) {
                // A share nobody holds or waits for is only its count.
                map.retain(|_, s| Arc::strong_count(s) > 1);
            }
            map.entry(tenant.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_workspace)))
                .clone()
        };
        let closed = |_| ServiceError::Internal("the SQL pool is closed".into());
        let workspace = share.acquire_owned().await.map_err(closed)?;
        let total = self.total.clone().acquire_owned().await.map_err(closed)?;
        Ok(Slot {
            _workspace: workspace,
            _total: total,
        })
    }
}

impl From<SqlError> for ServiceError {
    fn from(e: SqlError) -> ServiceError {
        match e {
            SqlError::Store(s) => ServiceError::Store(s),
            SqlError::Timeout(_) => ServiceError::Validation {
                message: e.to_string(),
                details: serde_json::json!({"reason": "timeout"}),
            },
            SqlError::TooBig(m) => ServiceError::Validation {
                message: m,
                details: serde_json::json!({"reason": "limit"}),
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
    /// Runs one read-only query in `ws` on a background thread. Needs
    /// `read:records`; a token limited to some collections sees only those.
    pub async fn sql_query(
        &self,
        caller: &Caller,
        ws: &str,
        req: SqlRequest,
    ) -> Result<sql::Output> {
        // Who may query, and whose share of the slots it takes: a tenant is
        // a production workspace with its previews.
        let tenant = {
            let snapshot = self.store.read()?;
            let w = super::workspaces::load(&snapshot, ws)?;
            caller.authorize(&w, Act::Sql)?;
            w.parent.unwrap_or(w.id)
        };
        // Wait for a slot before reading, so a queued query holds no
        // snapshot. The time limit starts once it has one and covers the
        // set-up.
        let slot = self.sql_slots.acquire(&tenant).await?;
        let deadline = Instant::now() + self.config.sql_timeout;
        let snapshot = self.store.read()?;
        let w = super::workspaces::load(&snapshot, ws)?;
        caller.authorize(&w, Act::Sql)?;
        let all = collections::list_in(&snapshot, ws)?;
        let total = all.len();
        let readable: Vec<sql::Collection> = all
            .into_iter()
            .filter(|c| caller.may(&w, Act::SqlCollection(&c.id)))
            .map(|c| sql::Collection {
                id: c.id,
                schema: c.schema,
            })
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
            restricted: readable.len() < total,
            collections: readable,
            snapshot,
            workspace: ws.to_string(),
            timeout: self.config.sql_timeout,
            deadline,
        };
        // On a background thread (lower CPU priority): a query can run
        // for its whole time limit, and a neighbour's requests come first.
        crate::background::blocking(move || {
            let _slot = slot;
            sql::query(scope, &req.query, &req.params)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("sql task failed: {e}")))?
        .map_err(ServiceError::from)
    }
}
