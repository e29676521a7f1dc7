//! The service error: one enum for every rule the service enforces. Doors
//! (REST, MCP, guest imports) map it to their own wire format.

use serde_json::Value;

use crate::schema::Violation;
use crate::store::{JobError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad input: names the field at fault; `details` carries structure
    /// (schema violations, failing batch operations).
    #[error("{message}")]
    Validation { message: String, details: Value },
    /// No, malformed, unknown, revoked or expired token.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but the token's grants or the environment forbid it.
    #[error("{0}")]
    Forbidden(String),
    /// No such entity: names which one (`entity`, `id`); the message says
    /// how to find the existing ones.
    #[error("{message}")]
    NotFound {
        entity: Entity,
        id: String,
        message: String,
    },
    /// Version conflict or a uniqueness rule.
    #[error("{message}")]
    Conflict { message: String, details: Value },
    /// What a write was checked against (a collection's schema, the record)
    /// changed before it ran. The service checks such a write again; a
    /// client sees this only if that keeps happening.
    #[error("{0}")]
    Stale(String),
    /// Too many requests for this token; try again after `retry_after_secs`.
    #[error("rate limit reached for this token; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The kinds of things a service function looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Entity {
    Workspace,
    Collection,
    Record,
    Relationship,
    Endpoint,
    EndpointRevision,
    Component,
    Token,
    Promotion,
    Hook,
    Trigger,
}

impl ServiceError {
    pub fn not_found(entity: Entity, id: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::NotFound {
            entity,
            id: id.into(),
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Validation {
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ServiceError::Conflict {
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn schema(message: impl Into<String>, violations: &[Violation]) -> Self {
        ServiceError::Validation {
            message: message.into(),
            details: Violation::to_json(violations),
        }
    }

    /// The REKOR-SURFACE error code.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Validation { .. } => "VALIDATION_ERROR",
            ServiceError::Unauthorized(_) => "UNAUTHORIZED",
            ServiceError::Forbidden(_) => "FORBIDDEN",
            ServiceError::NotFound { .. } => "NOT_FOUND",
            ServiceError::Conflict { .. } | ServiceError::Stale(_) => "CONFLICT",
            ServiceError::RateLimited { .. } => "RATE_LIMITED",
            ServiceError::Internal(_) | ServiceError::Store(_) => "INTERNAL_ERROR",
        }
    }

    pub fn details(&self) -> Option<Value> {
        match self {
            ServiceError::Validation { details, .. } | ServiceError::Conflict { details, .. }
                if !details.is_null() =>
            {
                Some(details.clone())
            }
            ServiceError::NotFound { entity, id, .. } => {
                Some(serde_json::json!({"entity": entity, "id": id}))
            }
            _ => None,
        }
    }
}

impl JobError for ServiceError {
    fn is_storage(&self) -> bool {
        matches!(self, ServiceError::Store(_))
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
