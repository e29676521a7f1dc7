//! Signing secrets of hooks and triggers (`whsec_…`).
//!
//! A secret is shown once, when it is made (create, rotate, a promotion
//! that adds the hook or trigger to production). It lives in its own table,
//! outside the config: previews, promotion rows, the operations log, SQL,
//! listings and logs never see it. It is kept usable, not hashed, because
//! it is an HMAC key: triggers sign with it and hooks verify signatures with
//! it. Rotation keeps the old secret live for a grace period, during which
//! triggers sign with both and hooks accept either.

use serde::{Deserialize, Serialize};

use super::error::Result;
use super::{decode, encode, now};
use crate::store::{self, Txn, View};

/// Longest grace period a rotation may give the old secret.
pub const MAX_GRACE_SECS: u64 = 7 * 24 * 3600;
/// Most secrets live at once (the newest and those in their grace period):
/// each is one more HMAC per ingest and one more signature per delivery.
pub const MAX_LIVE: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Hook,
    Trigger,
}

impl Owner {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Owner::Hook => "hook",
            Owner::Trigger => "trigger",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Secret {
    secret: String,
    created_at: String,
    /// Unix seconds after which the secret no longer signs or verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    /// Newest first.
    secrets: Vec<Secret>,
}

/// What a listing shows of a secret: when, never what.
#[derive(Debug, Clone, Serialize)]
pub struct SecretInfo {
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A secret made by a promotion or rollback, shown in its answer only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewSecret {
    pub kind: String,
    pub id: String,
    pub secret: String,
}

/// The grace period a rotation asked for: a day by default, at most
/// [`MAX_GRACE_SECS`].
pub(crate) fn grace(asked: Option<u64>) -> Result<u64> {
    let grace = asked.unwrap_or(24 * 3600);
    if grace > MAX_GRACE_SECS {
        return Err(super::ServiceError::invalid(format!(
            "grace_seconds must be at most {MAX_GRACE_SECS} (7 days), got {grace}"
        )));
    }
    Ok(grace)
}

pub(crate) fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn read(v: &impl View, ws: &str, owner: Owner, id: &str) -> Result<Option<Stored>> {
    store::hooks::secrets(v, ws, owner.as_str(), id)?
        .map(|b| decode(&b, "secrets"))
        .transpose()
}

fn write(txn: &Txn, ws: &str, owner: Owner, id: &str, s: &Stored) -> Result<()> {
    store::hooks::put_secrets(txn, ws, owner.as_str(), id, &encode(s)?)?;
    Ok(())
}

/// Makes a fresh secret, replacing any the owner had; returns it.
pub(crate) fn mint(txn: &Txn, ws: &str, owner: Owner, id: &str) -> Result<String> {
    let secret = crate::webhooks::new_secret();
    let stored = Stored {
        secrets: vec![Secret {
            secret: secret.clone(),
            created_at: now(),
            expires_at: None,
        }],
    };
    write(txn, ws, owner, id, &stored)?;
    Ok(secret)
}

/// Makes a secret unless the owner already has one (kept from before a
/// promotion removed it, so a rollback brings the same secret back).
/// Returns the new secret, if one was made.
pub(crate) fn ensure(txn: &Txn, ws: &str, owner: Owner, id: &str) -> Result<Option<String>> {
    if read(txn, ws, owner, id)?.is_some_and(|s| !s.secrets.is_empty()) {
        return Ok(None);
    }
    mint(txn, ws, owner, id).map(Some)
}

/// The secrets that sign and verify at `at` (Unix seconds), newest first.
pub(crate) fn live(
    v: &impl View,
    ws: &str,
    owner: Owner,
    id: &str,
    at: i64,
) -> Result<Vec<String>> {
    Ok(read(v, ws, owner, id)?
        .unwrap_or_default()
        .secrets
        .into_iter()
        .filter(|s| s.expires_at.is_none_or(|e| e > at))
        .map(|s| s.secret)
        .collect())
}

/// When each live secret was made and until when it lives.
pub(crate) fn info(v: &impl View, ws: &str, owner: Owner, id: &str) -> Result<Vec<SecretInfo>> {
    let at = unix_now();
    Ok(read(v, ws, owner, id)?
        .unwrap_or_default()
        .secrets
        .into_iter()
        .filter(|s| s.expires_at.is_none_or(|e| e > at))
        .map(|s| SecretInfo {
            created_at: s.created_at,
            expires_at: s
                .expires_at
                .and_then(|e| jiff::Timestamp::from_second(e).ok().map(|t| t.to_string())),
        })
        .collect())
}

/// Adds a new secret; the ones before it stay live for `grace_secs` more
/// (0: they stop now). Expired ones are dropped. Returns the new secret.
pub(crate) fn rotate(
    txn: &Txn,
    ws: &str,
    owner: Owner,
    id: &str,
    grace_secs: u64,
) -> Result<String> {
    let at = unix_now();
    let mut stored = read(txn, ws, owner, id)?.unwrap_or_default();
    let until = at.saturating_add(i64::try_from(grace_secs).unwrap_or(i64::MAX));
    for s in &mut stored.secrets {
        s.expires_at = Some(s.expires_at.map_or(until, |e| e.min(until)));
    }
    stored
        .secrets
        .retain(|s| s.expires_at.is_none_or(|e| e > at));
    stored.secrets.truncate(MAX_LIVE - 1);
    let secret = crate::webhooks::new_secret();
    stored.secrets.insert(
        0,
        Secret {
            secret: secret.clone(),
            created_at: now(),
            expires_at: None,
        },
    );
    write(txn, ws, owner, id, &stored)?;
    Ok(secret)
}

pub(crate) fn remove(txn: &Txn, ws: &str, owner: Owner, id: &str) -> Result<()> {
    store::hooks::remove_secrets(txn, ws, owner.as_str(), id)?;
    Ok(())
}
