//! Grants and the permission check every service call makes.
//!
//! A grant is `{"scope": {"workspaces": [...], "collections"?: [...],
//! "environments"?: [...]}, "permissions": [...]}` as in REKOR-SURFACE. A
//! workspace entry matches that workspace and, for a production workspace,
//! its previews (`crm` covers `crm--dev`); `"*"` matches every workspace.

use std::sync::Arc;

use mcp_factory_guest::config::{CollectionOp, EndpointConfig, RelationshipOp};
use serde::{Deserialize, Serialize};

use super::error::{Result, ServiceError};
use super::workspaces::Workspace;

pub const PERMISSIONS: &[&str] = &[
    "read:records",
    "write:records",
    "read:collections",
    "write:collections",
    "read:relationships",
    "write:relationships",
    "read:attachments",
    "write:attachments",
    "read:hooks",
    "write:hooks",
    "read:triggers",
    "write:triggers",
    "read:workspaces",
    "write:workspaces",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub workspaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub scope: Scope,
    pub permissions: Vec<String>,
}

impl Grant {
    /// Checks names and values; `what` names the grant in messages.
    pub fn validate(&self, what: &str) -> Result<()> {
        if self.scope.workspaces.is_empty() {
            return Err(ServiceError::invalid(format!(
                "{what}: scope.workspaces must list at least one workspace (or \"*\")"
            )));
        }
        if self.permissions.is_empty() {
            return Err(ServiceError::invalid(format!(
                "{what}: permissions must list at least one permission (or \"*\")"
            )));
        }
        for p in &self.permissions {
            if p != "*" && !PERMISSIONS.contains(&p.as_str()) {
                return Err(ServiceError::invalid(format!(
                    "{what}: unknown permission '{p}'; expected one of {} or \"*\"",
                    PERMISSIONS.join(", ")
                )));
            }
        }
        for e in self.scope.environments.iter().flatten() {
            if e != "production" && e != "preview" {
                return Err(ServiceError::invalid(format!(
                    "{what}: unknown environment '{e}'; expected \"production\" or \"preview\""
                )));
            }
        }
        Ok(())
    }

    fn matches_workspace(&self, ws: &Workspace) -> bool {
        let named = self
            .scope
            .workspaces
            .iter()
            .any(|w| w == "*" || *w == ws.id || ws.parent.as_deref().is_some_and(|p| p == w));
        let env_ok = self
            .scope
            .environments
            .as_ref()
            .is_none_or(|envs| envs.iter().any(|e| e == ws.kind.as_str()));
        named && env_ok
    }

    fn matches_collection(&self, collection: Option<&str>) -> bool {
        match (&self.scope.collections, collection) {
            (None, _) | (Some(_), None) => true,
            (Some(list), Some(c)) => list.iter().any(|x| x == "*" || x == c),
        }
    }

    fn has_permission(&self, perm: &str) -> bool {
        self.permissions.iter().any(|p| p == "*" || p == perm)
    }

    /// True when `self` allows everything `child` allows.
    fn covers(&self, child: &Grant) -> bool {
        let ws = self.scope.workspaces.iter().any(|w| w == "*")
            || (!child.scope.workspaces.iter().any(|w| w == "*")
                && child.scope.workspaces.iter().all(|c| {
                    self.scope
                        .workspaces
                        .iter()
                        .any(|p| p == c || is_preview_of(c, p))
                }));
        let colls = match (&self.scope.collections, &child.scope.collections) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(p), Some(c)) => {
                p.iter().any(|x| x == "*") || c.iter().all(|x| p.contains(x) && x != "*")
            }
        };
        let envs = match (&self.scope.environments, &child.scope.environments) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(p), Some(c)) => c.iter().all(|x| p.contains(x)),
        };
        let perms = self.permissions.iter().any(|p| p == "*")
            || (!child.permissions.iter().any(|p| p == "*")
                && child
                    .permissions
                    .iter()
                    .all(|c| self.permissions.contains(c)));
        ws && colls && envs && perms
    }
}

/// Whether workspace id `id` names a preview of production workspace
/// `parent`: `<parent>--<name>` with a valid preview name (which starts with
/// a letter or digit and holds no `--`). `wsa---dev` is not a preview of
/// `wsa` (it would be one of `wsa-`).
pub fn is_preview_of(id: &str, parent: &str) -> bool {
    id.strip_prefix(parent)
        .and_then(|rest| rest.strip_prefix("--"))
        .is_some_and(|name| {
            name.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && !name.contains("--")
        })
}

/// The authenticated caller of a service function: a token's grants and,
/// during an endpoint call, the endpoint whose code acts for it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub token_name: String,
    pub grants: Vec<Grant>,
    /// Set while an endpoint's component acts for this token: every store
    /// operation must then be allowed by the token *and* by the endpoint's
    /// configuration (the intersection rule).
    pub endpoint: Option<Arc<EndpointScope>>,
    /// Set while the operations of a batch run: an endpoint's `batch`
    /// grants, not its tools, decide them.
    pub in_batch: bool,
    /// Set when a hook's ingest writes (the hook's id): the operations log
    /// marks the writes, and `skip_hook_writes` triggers skip them.
    pub hook: Option<String>,
}

/// What an endpoint's configuration lets its code do in its workspace.
#[derive(Debug, Clone)]
pub struct EndpointScope {
    /// The endpoint's workspace as it was read with the endpoint.
    pub workspace: Workspace,
    pub slug: String,
    pub config: EndpointConfig,
    /// Every collection the endpoint names (tools, grants, batch keys that
    /// are collections): the only ones its SQL and relationships reach.
    pub collections: Vec<String>,
}

/// A typed request for permission: what a service function is about to do.
/// Every check goes through [`Caller::authorize`].
#[derive(Debug, Clone, Copy)]
pub enum Act<'a> {
    /// A record operation on one collection. An upsert is `Create` or
    /// `Update` by what the store holds, never by the request's shape.
    Record(&'a str, CollectionOp),
    /// A relationship operation on one relationship type.
    Relationship(&'a str, RelationshipOp),
    /// Reading (`false`) or writing (`true`) a relationship at one of its ends.
    RelationshipEnd(&'a str, bool),
    /// Running a read-only SQL query in the workspace.
    Sql,
    /// Reading one collection's records through SQL.
    SqlCollection(&'a str),
    /// Running a batch (each operation is then checked on its own).
    Batch,
    /// Anything else: one permission on the workspace, or on one collection.
    Perm(Option<&'a str>, &'a str),
}

impl Act<'_> {
    /// The token permission (and collection) this act needs.
    fn permission(&self) -> (Option<&str>, &str) {
        match *self {
            Act::Record(c, CollectionOp::Get | CollectionOp::List) => (Some(c), "read:records"),
            Act::Record(c, _) => (Some(c), "write:records"),
            Act::Relationship(_, RelationshipOp::List) => (None, "read:relationships"),
            Act::Relationship(_, _) => (None, "write:relationships"),
            Act::RelationshipEnd(c, false) => (Some(c), "read:relationships"),
            Act::RelationshipEnd(c, true) => (Some(c), "write:relationships"),
            Act::Sql => (None, "read:records"),
            Act::SqlCollection(c) => (Some(c), "read:records"),
            Act::Batch => (None, ""),
            Act::Perm(c, p) => (c, p),
        }
    }
}

impl EndpointScope {
    /// Whether the endpoint's configuration allows `act` (`None`), or what
    /// grant is missing (`Some(what)`).
    fn refusal(&self, act: &Act, in_batch: bool) -> Option<String> {
        let c = &self.config;
        let batch_allows = |key: &str, op: &str| {
            c.batch.as_ref().is_some_and(|b| {
                b.enabled
                    && b.operations
                        .get(key)
                        .is_some_and(|ops| ops.iter().any(|o| o == op))
            })
        };
        let ok = match *act {
            Act::Record(coll, op) if in_batch => batch_allows(coll, op.as_str()),
            Act::Record(coll, op) => {
                // Reading a record is part of updating or deleting it.
                let enough: &[CollectionOp] = match op {
                    CollectionOp::Get => &[
                        CollectionOp::Get,
                        CollectionOp::Update,
                        CollectionOp::Delete,
                    ],
                    _ => std::slice::from_ref(&op),
                };
                c.tools.iter().chain(&c.grants).any(|t| {
                    t.collection == coll && t.operations.iter().any(|o| enough.contains(o))
                })
            }
            // A batch key that names one of the endpoint's collections is
            // that collection, never a relationship type of the same name.
            Act::Relationship(t, op) if in_batch => {
                !self.collections.iter().any(|x| x == t) && batch_allows(t, op.as_str())
            }
            Act::Relationship(t, op) => c
                .relationships
                .iter()
                .any(|r| r.rel_type == t && r.operations.contains(&op)),
            Act::RelationshipEnd(coll, _) => self.collections.iter().any(|x| x == coll),
            // SQL reads records: only those of collections the endpoint may
            // list or get (a create-only grant reads nothing).
            Act::SqlCollection(coll) => c.tools.iter().chain(&c.grants).any(|t| {
                t.collection == coll
                    && t.operations
                        .iter()
                        .any(|o| matches!(o, CollectionOp::List | CollectionOp::Get))
            }),
            Act::Sql => c.sql_query,
            Act::Batch => c.batch.as_ref().is_some_and(|b| b.enabled),
            Act::Perm(..) => false,
        };
        if ok {
            return None;
        }
        Some(match *act {
            Act::Record(coll, op) if in_batch => {
                format!("'{}' on '{coll}' in a batch", op.as_str())
            }
            Act::Record(coll, op) => format!("'{}' on collection '{coll}'", op.as_str()),
            Act::Relationship(t, op) if in_batch => {
                format!("'{}' on '{t}' in a batch", op.as_str())
            }
            Act::Relationship(t, op) => {
                format!("'{}' on relationship type '{t}'", op.as_str())
            }
            Act::RelationshipEnd(coll, _) => {
                format!("relationships of collection '{coll}' (it names no such collection)")
            }
            Act::SqlCollection(coll) => {
                format!("reading collection '{coll}' in SQL ('list' or 'get' on it)")
            }
            Act::Sql => "sql_query".into(),
            Act::Batch => "the batch tool".into(),
            Act::Perm(_, p) => format!("'{p}' (endpoint code only reads and writes records)"),
        })
    }
}

impl Caller {
    /// A caller with `grants` and nothing else.
    pub fn new(
        token_id: impl Into<String>,
        token_name: impl Into<String>,
        grants: Vec<Grant>,
    ) -> Caller {
        Caller {
            token_id: token_id.into(),
            token_name: token_name.into(),
            grants,
            endpoint: None,
            in_batch: false,
            hook: None,
        }
    }

    /// The server itself (bootstrap, tests in-process): every permission.
    pub fn system() -> Caller {
        Caller::new(
            "system",
            "system",
            vec![Grant {
                scope: Scope {
                    workspaces: vec!["*".into()],
                    collections: None,
                    environments: None,
                },
                permissions: vec!["*".into()],
            }],
        )
    }

    /// This caller acting through an endpoint's code.
    pub fn through(&self, endpoint: Arc<EndpointScope>) -> Caller {
        Caller {
            endpoint: Some(endpoint),
            in_batch: false,
            ..self.clone()
        }
    }

    /// Whether any grant reaches this workspace at all.
    pub fn sees(&self, ws: &Workspace) -> bool {
        self.grants.iter().any(|g| g.matches_workspace(ws))
            && self
                .endpoint
                .as_ref()
                .is_none_or(|e| e.workspace.id == ws.id)
    }

    /// Whether any grant reaches `collection` of `ws`, whatever permission.
    pub fn reaches_collection(&self, ws: &Workspace, collection: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.matches_workspace(ws) && g.matches_collection(Some(collection)))
    }

    /// Whether one grant not limited to some collections holds `perm` on
    /// `ws` (what reaches every collection, e.g. every relationship of a
    /// type, whatever its ends). Never during an endpoint call.
    pub fn can_whole_workspace(&self, ws: &Workspace, perm: &str) -> bool {
        self.endpoint.is_none()
            && self.grants.iter().any(|g| {
                g.matches_workspace(ws) && g.scope.collections.is_none() && g.has_permission(perm)
            })
    }

    /// Whether the token's grants hold `perm` on `ws` (and `collection`).
    fn token_can(&self, ws: &Workspace, collection: Option<&str>, perm: &str) -> bool {
        // Workspace-wide powers (deleting, promoting, endpoints, uploads,
        // promotions and endpoint logs, which show every collection) need a
        // grant that is not limited to some collections.
        let whole_workspace = collection.is_none() && perm.ends_with(":workspaces");
        self.grants.iter().any(|g| {
            g.matches_workspace(ws)
                && g.matches_collection(collection)
                && g.has_permission(perm)
                && !(whole_workspace && g.scope.collections.is_some())
        })
    }

    /// Whether the caller may do `act` in `ws`.
    pub fn may(&self, ws: &Workspace, act: Act) -> bool {
        self.authorize(ws, act).is_ok()
    }

    /// The one permission check: the token's grants must allow `act` and,
    /// during an endpoint call, so must the endpoint's configuration.
    pub fn authorize(&self, ws: &Workspace, act: Act) -> Result<()> {
        self.authorize_token(ws, act)?;
        if let Some(e) = &self.endpoint {
            if e.workspace.id != ws.id {
                return Err(ServiceError::Forbidden(format!(
                    "endpoint '{}' serves workspace '{}', not '{}'",
                    e.slug, e.workspace.id, ws.id
                )));
            }
            if let Some(what) = e.refusal(&act, self.in_batch) {
                return Err(ServiceError::Forbidden(format!(
                    "this endpoint has no grant for {what}; add it to the endpoint config"
                )));
            }
        }
        Ok(())
    }

    /// The token's half of [`Caller::authorize`], for a check made before
    /// the exact act is known (an upsert before it knows whether it creates).
    pub(crate) fn authorize_token(&self, ws: &Workspace, act: Act) -> Result<()> {
        let name = &self.token_name;
        if !self.grants.iter().any(|g| g.matches_workspace(ws)) {
            return Err(ServiceError::Forbidden(format!(
                "token '{name}' has no grant for workspace '{}'",
                ws.id
            )));
        }
        let (collection, perm) = act.permission();
        if !perm.is_empty() && !self.token_can(ws, collection, perm) {
            return Err(ServiceError::Forbidden(match collection {
                Some(c) => format!(
                    "token '{name}' lacks permission '{perm}' on collection '{c}' in workspace '{}'",
                    ws.id
                ),
                None => format!(
                    "token '{name}' lacks permission '{perm}' on workspace '{}'",
                    ws.id
                ),
            }));
        }
        Ok(())
    }

    /// Whether the caller holds `perm` on `ws` (and `collection`, if given).
    pub fn can(&self, ws: &Workspace, collection: Option<&str>, perm: &str) -> bool {
        self.may(ws, Act::Perm(collection, perm))
    }

    /// [`Caller::authorize`] for a plain permission.
    pub fn require(&self, ws: &Workspace, collection: Option<&str>, perm: &str) -> Result<()> {
        self.authorize(ws, Act::Perm(collection, perm))
    }

    /// Whether the caller may create a token with `grants` (privilege ceiling:
    /// every child grant must be covered by one of the caller's grants).
    pub fn covers_all(&self, grants: &[Grant]) -> bool {
        self.endpoint.is_none()
            && grants
                .iter()
                .all(|c| self.grants.iter().any(|p| p.covers(c)))
    }

    /// A wildcard-everything token (the admin token).
    pub fn is_admin(&self) -> bool {
        self.endpoint.is_none()
            && self.grants.iter().any(|g| {
                g.scope.workspaces.iter().any(|w| w == "*")
                    && g.scope.collections.is_none()
                    && g.scope.environments.is_none()
                    && g.permissions.iter().any(|p| p == "*")
            })
    }
}
