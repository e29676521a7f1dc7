//! Domain operations: workspaces and previews, promotion, collections,
//! records, relationships, batch, the operations log and tokens. Every rule
//! (validation, permission, environment, limit) lives here, once; REST, the
//! Admin MCP, the CLI (through REST) and guest host imports all call these
//! functions. Knows the store, never HTTP.
//!
//! Each write is a function over a store write transaction (`*_in`) that checks
//! everything before its first write, so the same function serves a single
//! request (group-committed with others) and one operation of a batch.

pub mod auth;
pub mod batch;
pub mod collections;
pub mod components;
pub mod endpoints;
pub mod error;
pub mod hooks;
pub mod oplog;
pub mod query;
pub mod records;
pub mod relationships;
pub mod secrets;
pub mod sql;
pub mod tokens;
pub mod triggers;
pub mod workspaces;

use std::sync::Arc;

use serde::de::DeserializeOwned;

pub use auth::{Caller, Grant, Scope};
pub use error::{Entity, Result, ServiceError};

use crate::schema;
use crate::store::{Store, Txn, WriteMode};

/// Largest page a list or query returns.
pub const MAX_LIMIT: usize = 1000;
/// Default quota of uploaded component bytes per workspace.
pub const DEFAULT_MAX_PLUGIN_BYTES: u64 = 256 << 20;
/// Default page size.
pub const DEFAULT_LIMIT: usize = 50;

/// The service: the store plus the caches that sit in front of it.
/// Cheap to clone.
#[derive(Clone)]
pub struct Service {
    store: Store,
    config: Config,
    /// Bounds SQL queries running at once (each holds a blocking thread),
    /// fairly between workspaces.
    sql_slots: Arc<sql::Slots>,
    /// Endpoint changes, for sessions to refresh their tool lists.
    changes: tokio::sync::broadcast::Sender<endpoints::Change>,
    /// Per-token request rate limit, when configured.
    limiter: Option<Arc<governor::DefaultKeyedRateLimiter<String>>>,
    schemas: Arc<schema::Cache>,
    tokens: Arc<tokens::TokenCache>,
    /// The runtime's check of a candidate endpoint revision.
    config_check: Arc<std::sync::OnceLock<Arc<dyn endpoints::ConfigCheck>>>,
    /// Endpoints resolved at the store's current generation.
    servings: Arc<endpoints::ServingCache>,
}

/// What a write function needs besides the transaction.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub caller: Caller,
    pub schemas: Arc<schema::Cache>,
    /// Checking on an async worker (a light write, see
    /// [`records::light`]): schemas are never compiled here; one not yet
    /// compiled answers [`ServiceError::Stale`] and the check moves to the
    /// blocking pool.
    pub inline: bool,
}

/// Server-wide settings the service enforces.
#[derive(Debug, Clone)]
pub struct Config {
    /// Wall-time limit of one SQL query.
    pub sql_timeout: std::time::Duration,
    /// SQL queries that may run at once; more wait their turn. One
    /// workspace may hold at most half of them (see `sql::Slots`).
    pub sql_concurrency: usize,
    /// Requests per second per token (bursts of the same size); `None`: no limit.
    pub rate_limit: Option<std::num::NonZeroU32>,
    /// Most bytes of uploaded components one workspace may hold.
    pub max_plugin_bytes: u64,
    /// Where triggers may deliver (`serve --egress-allow`).
    pub egress: crate::egress::Egress,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sql_timeout: crate::sql::DEFAULT_TIMEOUT,
            sql_concurrency: 4,
            rate_limit: None,
            max_plugin_bytes: DEFAULT_MAX_PLUGIN_BYTES,
            egress: crate::egress::Egress::default(),
        }
    }
}

impl Service {
    pub fn new(store: Store) -> Result<Service> {
        Service::with_config(store, Config::default())
    }

    pub fn with_config(store: Store, config: Config) -> Result<Service> {
        let tokens = Arc::new(tokens::TokenCache::load(&store)?);
        Ok(Service {
            store,
            sql_slots: Arc::new(sql::Slots::new(config.sql_concurrency)),
            changes: tokio::sync::broadcast::channel(1024).0,
            limiter: config
                .rate_limit
                .map(|n| Arc::new(governor::RateLimiter::keyed(governor::Quota::per_second(n)))),
            config,
            schemas: Arc::new(schema::Cache::default()),
            tokens,
            config_check: Default::default(),
            servings: Default::default(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counts one request of `key` (a token's id, or a hook) against
    /// `--rate-limit`; over it, [`ServiceError::RateLimited`].
    pub(crate) fn rate_check(&self, key: &str) -> Result<()> {
        if let Some(limiter) = &self.limiter
            && let Err(not_until) = limiter.check_key(&key.to_string())
        {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(limiter.clock().now());
            return Err(ServiceError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        Ok(())
    }

    fn ctx(&self, caller: &Caller) -> Ctx {
        Ctx {
            caller: caller.clone(),
            schemas: self.schemas.clone(),
            inline: false,
        }
    }

    /// Runs a write function in a shared (group-committed) transaction.
    async fn write_shared<T, F>(&self, caller: &Caller, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Txn, &Ctx) -> Result<T> + Send + 'static,
    {
        let ctx = self.ctx(caller);
        let mut f = f;
        self.store
            .write(WriteMode::Shared, move |txn| f(txn, &ctx))
            .await
    }

    /// Checks a write against a fresh snapshot (`check`: the costly part,
    /// schema validation, must never run on the writer thread), then runs
    /// `write` as a shared job with what the check found. If the job answers
    /// [`ServiceError::Stale`] (what was checked changed meanwhile), checks
    /// again, up to [`records::CHECK_ATTEMPTS`] times.
    ///
    /// A `light` write (small data, see [`records::light`]) is checked right
    /// here on the async worker, against an already compiled schema: a few
    /// microseconds, where a hop to the blocking pool cost a third of the
    /// in-process create rate at 32 clients. Anything else, and a light
    /// write whose schema is not compiled yet, is checked on the blocking
    /// pool.
    ///
    /// `first`: what an optimistic check without the store already found
    /// (see [`Service::upsert_record`]); used for the first attempt.
    async fn checked_write<C, T>(
        &self,
        caller: &Caller,
        light: bool,
        first: Option<C>,
        check: impl Fn(&crate::store::Snapshot, &Ctx) -> Result<C> + Send + Sync + 'static,
        write: impl Fn(&Txn, &Ctx, &C) -> Result<T> + Send + Sync + 'static,
    ) -> Result<T>
    where
        C: Send + Sync + 'static,
        T: Send + 'static,
    {
        let (check, write) = (Arc::new(check), Arc::new(write));
        let (mut attempt, mut inline, mut first) = (1, light, first);
        loop {
            let checked = if let Some(c) = first.take() {
                c
            } else if inline {
                let ctx = Ctx {
                    inline: true,
                    ..self.ctx(caller)
                };
                match self
                    .store
                    .read()
                    .map_err(ServiceError::from)
                    .and_then(|s| check(&s, &ctx))
                {
                    Err(ServiceError::Stale(_)) => {
                        inline = false;
                        continue;
                    }
                    other => other?,
                }
            } else {
                self.check(caller, check.clone()).await?
            };
            let w = write.clone();
            match self
                .write_shared(caller, move |txn, ctx| w(txn, ctx, &checked))
                .await
            {
                Err(ServiceError::Stale(_)) if attempt < records::CHECK_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    /// Runs `check` on the blocking pool against a fresh snapshot.
    async fn check<C: Send + 'static>(
        &self,
        caller: &Caller,
        check: Arc<impl Fn(&crate::store::Snapshot, &Ctx) -> Result<C> + Send + Sync + 'static>,
    ) -> Result<C> {
        let ctx = self.ctx(caller);
        let store = self.store.clone();
        self.blocking(move || check(&store.read()?, &ctx)).await
    }

    /// Runs blocking work (a scan, a sort) on tokio's blocking pool, so that
    /// it never holds one of the async worker threads.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ServiceError::Internal(format!("a blocking task failed: {e}")))?
    }

    /// Runs a write function in a transaction of its own, aborted on error.
    async fn write_exclusive<T, F>(&self, caller: &Caller, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Txn, &Ctx) -> Result<T> + Send + 'static,
    {
        let ctx = self.ctx(caller);
        // The writer runs an exclusive job exactly once.
        let mut f = Some(f);
        self.store
            .write(WriteMode::Exclusive, move |txn| match f.take() {
                Some(f) => f(txn, &ctx),
                None => Err(ServiceError::Internal(
                    "an exclusive write job was run twice".into(),
                )),
            })
            .await
    }
}

/// Now, as RFC 3339 with milliseconds (UTC).
pub(crate) fn now() -> String {
    let ts = jiff::Timestamp::now();
    format!("{ts:.3}")
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ServiceError::Internal(format!("corrupt {what} in store: {e}")))
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| ServiceError::Internal(format!("encoding: {e}")))
}

/// Checks an identifier (workspace, collection, relationship type):
/// lowercase letters, digits, `_` and `-`, starting with a letter or digit.
pub(crate) fn check_ident(kind: &str, id: &str, max: usize) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(format!(
            "invalid {kind} '{id}': use 1-{max} lowercase letters, digits, '_' or '-', starting with a letter or digit"
        )))
    }
}

/// Clamps a requested page size.
pub(crate) fn page(limit: Option<usize>, offset: Option<usize>) -> Result<(usize, usize)> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ServiceError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        )));
    }
    Ok((limit, offset.unwrap_or(0)))
}

/// A list page: `{"data": [...], "meta": {"total", "limit", "offset"}}`.
#[derive(Debug, serde::Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

#[derive(Debug, serde::Serialize)]
pub struct PageMeta {
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
}

impl<T> Page<T> {
    /// Pages an already complete list.
    pub fn of(all: Vec<T>, limit: usize, offset: usize) -> Page<T> {
        let total = all.len();
        let data = all.into_iter().skip(offset).take(limit).collect();
        Page {
            data,
            meta: PageMeta {
                total,
                limit,
                offset,
            },
        }
    }
}
