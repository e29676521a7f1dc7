//! Grants and the permission check every service call makes.
//!
//! A grant is `{"scope": {"workspaces": [...], "collections"?: [...],
//! "environments"?: [...]}, "permissions": [...]}` as in REKOR-SURFACE. A
//! workspace entry matches that workspace and, for a production workspace,
//! its previews (`crm` covers `crm--dev`); `"*"` matches every workspace.

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
                    self.scope.workspaces.iter().any(|p| {
                        p == c || c.split_once("--").is_some_and(|(parent, _)| parent == p)
                    })
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

/// The authenticated caller of a service function.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub token_name: String,
    pub grants: Vec<Grant>,
}

impl Caller {
    /// The server itself (bootstrap, tests in-process): every permission.
    pub fn system() -> Caller {
        Caller {
            token_id: "system".into(),
            token_name: "system".into(),
            grants: vec![Grant {
                scope: Scope {
                    workspaces: vec!["*".into()],
                    collections: None,
                    environments: None,
                },
                permissions: vec!["*".into()],
            }],
        }
    }

    /// Whether any grant reaches this workspace at all.
    pub fn sees(&self, ws: &Workspace) -> bool {
        self.grants.iter().any(|g| g.matches_workspace(ws))
    }

    /// Whether the caller holds `perm` on `ws` (and `collection`, if given).
    pub fn can(&self, ws: &Workspace, collection: Option<&str>, perm: &str) -> bool {
        self.grants.iter().any(|g| {
            g.matches_workspace(ws) && g.matches_collection(collection) && g.has_permission(perm)
        })
    }

    /// [`Caller::can`] as a check with a message that says what is missing.
    pub fn require(&self, ws: &Workspace, collection: Option<&str>, perm: &str) -> Result<()> {
        if self.can(ws, collection, perm) {
            return Ok(());
        }
        let name = &self.token_name;
        Err(if !self.sees(ws) {
            ServiceError::Forbidden(format!(
                "token '{name}' has no grant for workspace '{}'",
                ws.id
            ))
        } else if let Some(c) = collection {
            ServiceError::Forbidden(format!(
                "token '{name}' lacks permission '{perm}' on collection '{c}' in workspace '{}'",
                ws.id
            ))
        } else {
            ServiceError::Forbidden(format!(
                "token '{name}' lacks permission '{perm}' on workspace '{}'",
                ws.id
            ))
        })
    }

    /// Whether the caller may create a token with `grants` (privilege ceiling:
    /// every child grant must be covered by one of the caller's grants).
    pub fn covers_all(&self, grants: &[Grant]) -> bool {
        grants
            .iter()
            .all(|c| self.grants.iter().any(|p| p.covers(c)))
    }

    /// A wildcard-everything token (the admin token).
    pub fn is_admin(&self) -> bool {
        self.grants.iter().any(|g| {
            g.scope.workspaces.iter().any(|w| w == "*")
                && g.scope.collections.is_none()
                && g.scope.environments.is_none()
                && g.permissions.iter().any(|p| p == "*")
        })
    }
}
