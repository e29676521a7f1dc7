//! API tokens: `mcpf_<id>_<secret>`, 256 random bits of secret. Only the
//! SHA-256 of the whole token is stored, and compared in constant time; the
//! token itself is shown once, at creation. Tokens carry grants (see
//! [`super::auth`]), an optional expiry, `last_used_at`, and can be revoked
//! (effective on the next request: every check reads the in-memory table
//! that revocation updates before it returns).

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::auth::{Grant, Scope};
use super::error::{Entity, Result, ServiceError};
use super::{Caller, Service, decode, encode, now};
use crate::store::{self, Store, WriteMode};

pub const PREFIX: &str = "mcpf_";
/// How often `last_used_at` is written back at most, per token.
const LAST_USED_EVERY_SECS: i64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredToken {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the full token.
    pub hash: String,
    pub grants: Vec<Grant>,
    pub created_at: String,
    pub created_by: Option<String>,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// What listing shows: never the hash.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub grants: Vec<Grant>,
    pub created_at: String,
    pub created_by: Option<String>,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<&StoredToken> for TokenInfo {
    fn from(t: &StoredToken) -> TokenInfo {
        TokenInfo {
            id: t.id.clone(),
            name: t.name.clone(),
            grants: t.grants.clone(),
            created_at: t.created_at.clone(),
            created_by: t.created_by.clone(),
            expires_at: t.expires_at.clone(),
            last_used_at: t.last_used_at.clone(),
            revoked_at: t.revoked_at.clone(),
        }
    }
}

/// A new token: the only time the secret is seen.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// Every token, by id, in memory (a handful of rows; read on every request).
pub struct TokenCache {
    by_id: RwLock<HashMap<String, (StoredToken, i64)>>,
}

/// Why `t` itself no longer works (revoked or expired), if it doesn't.
fn own_death(t: &StoredToken) -> Option<String> {
    if let Some(at) = &t.revoked_at {
        return Some(format!("was revoked at {at}"));
    }
    let exp = t.expires_at.as_deref()?;
    parse_time(exp, "expires_at")
        .is_ok_and(|e| e <= jiff::Timestamp::now())
        .then(|| format!("expired at {exp}"))
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn parse_time(s: &str, field: &str) -> Result<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>().map_err(|e| {
        ServiceError::invalid(format!(
            "{field} '{s}' is not an RFC 3339 time (e.g. 2027-01-31T00:00:00Z): {e}"
        ))
    })
}

impl TokenCache {
    pub fn load(store: &Store) -> Result<TokenCache> {
        let mut by_id = HashMap::new();
        for bytes in store::tokens::all(&store.read()?)? {
            let t: StoredToken = decode(&bytes, "token")?;
            by_id.insert(t.id.clone(), (t, 0));
        }
        Ok(TokenCache {
            by_id: RwLock::new(by_id),
        })
    }

    fn put(&self, t: StoredToken) {
        if let Ok(mut m) = self.by_id.write() {
            m.insert(t.id.clone(), (t, jiff::Timestamp::now().as_second()));
        }
    }

    fn get(&self, id: &str) -> Option<StoredToken> {
        self.by_id.read().ok()?.get(id).map(|(t, _)| t.clone())
    }

    fn all(&self) -> Vec<StoredToken> {
        let mut v: Vec<StoredToken> = self
            .by_id
            .read()
            .map(|m| m.values().map(|(t, _)| t.clone()).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        v
    }

    fn is_empty(&self) -> bool {
        self.by_id.read().map(|m| m.is_empty()).unwrap_or(true)
    }

    /// Marks a use; returns the token to persist when the stored
    /// `last_used_at` is older than [`LAST_USED_EVERY_SECS`].
    fn touch(&self, id: &str) -> Option<StoredToken> {
        let now = jiff::Timestamp::now();
        let mut m = self.by_id.write().ok()?;
        let (t, persisted) = m.get_mut(id)?;
        t.last_used_at = Some(format!("{now:.3}"));
        if now.as_second() - *persisted >= LAST_USED_EVERY_SECS {
            *persisted = now.as_second();
            return Some(t.clone());
        }
        None
    }
}

/// Revokes, in `txn`, every live token whose grants name only workspace
/// `ws` (or previews of it): once `ws` is deleted, an id created again by
/// someone else must not be reachable with them. Returns them, revoked.
pub(crate) fn revoke_for_deleted_workspace(
    txn: &crate::store::Txn,
    ws: &str,
) -> Result<Vec<StoredToken>> {
    let mut out = Vec::new();
    for bytes in store::tokens::all(txn)? {
        let mut t: StoredToken = decode(&bytes, "token")?;
        let only_ws = !t.grants.is_empty()
            && t.grants.iter().all(|g| {
                g.scope
                    .workspaces
                    .iter()
                    .all(|w| w == ws || super::auth::is_preview_of(w, ws))
            });
        if only_ws && t.revoked_at.is_none() {
            t.revoked_at = Some(now());
            store::tokens::put(txn, &t.id, &encode(&t)?)?;
            out.push(t);
        }
    }
    Ok(out)
}

impl Service {
    /// Puts tokens changed in a transaction into the cache, once committed.
    pub(crate) fn cache_tokens(&self, tokens: Vec<StoredToken>) {
        for t in tokens {
            tracing::info!(token_id = %t.id, "token revoked with its workspace");
            self.tokens.put(t);
        }
    }

    /// Resolves `Authorization: Bearer …` to a caller.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Caller> {
        let token = bearer.ok_or_else(|| {
            ServiceError::Unauthorized("missing token: send 'Authorization: Bearer mcpf_…'".into())
        })?;
        let malformed =
            || ServiceError::Unauthorized("malformed token: expected 'mcpf_<id>_<secret>'".into());
        let rest = token.strip_prefix(PREFIX).ok_or_else(malformed)?;
        let (id, _) = rest.split_once('_').ok_or_else(malformed)?;
        let stored = self
            .tokens
            .get(id)
            .ok_or_else(|| ServiceError::Unauthorized("unknown token".into()))?;
        let given = hash(token);
        if !bool::from(given.as_bytes().ct_eq(stored.hash.as_bytes())) {
            return Err(ServiceError::Unauthorized("unknown token".into()));
        }
        if let Some(at) = &stored.revoked_at {
            return Err(ServiceError::Unauthorized(format!(
                "token '{}' was revoked at {at}",
                stored.name
            )));
        }
        if let Some(exp) = &stored.expires_at
            && parse_time(exp, "expires_at").is_ok_and(|t| t <= jiff::Timestamp::now())
        {
            return Err(ServiceError::Unauthorized(format!(
                "token '{}' expired at {exp}",
                stored.name
            )));
        }
        // A token lives only as long as the token that created it.
        if let Some(dead) = self.dead_ancestor(&stored) {
            return Err(ServiceError::Unauthorized(format!(
                "token '{}' no longer works: {dead}",
                stored.name
            )));
        }
        self.rate_check(&stored.id)?;
        if let Some(t) = self.tokens.touch(id) {
            // Best effort: a lost last_used_at update is not a lost write.
            let store = self.store.clone();
            tokio::spawn(async move {
                let _ = store
                    .write(WriteMode::Shared, move |txn| -> Result<()> {
                        // Read-modify-write of this one field, so a revocation
                        // committed meanwhile is never overwritten.
                        if let Some(bytes) = store::tokens::get(txn, &t.id)? {
                            let mut cur: StoredToken = decode(&bytes, "token")?;
                            cur.last_used_at = t.last_used_at.clone();
                            store::tokens::put(txn, &t.id, &encode(&cur)?)?;
                        }
                        Ok(())
                    })
                    .await;
            });
        }
        Ok(Caller::new(stored.id, stored.name, stored.grants))
    }

    /// Whether token `id` still authenticates: it exists, is not revoked
    /// and has not expired. The system caller is always live. Live MCP
    /// sessions and streams are ended once their token is not.
    pub fn token_is_live(&self, id: &str) -> bool {
        if id == "system" {
            return true;
        }
        self.tokens
            .get(id)
            .is_some_and(|t| own_death(&t).is_none() && self.dead_ancestor(&t).is_none())
    }

    /// Why an ancestor of `t` (the token that created it, and so on) no
    /// longer works, if one doesn't: revoking or expiring a token ends
    /// every token made from it.
    fn dead_ancestor(&self, t: &StoredToken) -> Option<String> {
        let mut next = t.created_by.clone();
        // Bounded: a chain cannot be longer than the number of tokens.
        for _ in 0..1000 {
            let parent = self.tokens.get(&next?)?;
            if let Some(why) = own_death(&parent) {
                return Some(format!(
                    "the token that created it, '{}', {why}",
                    parent.name
                ));
            }
            next = parent.created_by.clone();
        }
        None
    }

    /// Creates a token with grants no wider than the caller's; the result
    /// is the only time its secret is seen.
    pub async fn create_token(&self, caller: &Caller, req: CreateToken) -> Result<CreatedToken> {
        let name = req.name.trim().to_string();
        if name.is_empty() || name.len() > 100 {
            return Err(ServiceError::invalid("token name must be 1-100 characters"));
        }
        if req.grants.is_empty() {
            return Err(ServiceError::invalid("a token needs at least one grant"));
        }
        for (i, g) in req.grants.iter().enumerate() {
            g.validate(&format!("grants[{i}]"))?;
        }
        if !caller.covers_all(&req.grants) {
            return Err(ServiceError::Forbidden(format!(
                "token '{}' cannot create a token with wider grants than its own",
                caller.token_name
            )));
        }
        if let Some(exp) = &req.expires_at
            && parse_time(exp, "expires_at")? <= jiff::Timestamp::now()
        {
            return Err(ServiceError::invalid(format!(
                "expires_at '{exp}' is in the past"
            )));
        }
        // A child never outlives its parent: it expires when the parent does
        // at the latest (and with it when unset).
        let mut req = req;
        if let Some(parent_exp) = self.tokens.get(&caller.token_id).and_then(|p| p.expires_at) {
            let limit = parse_time(&parent_exp, "expires_at")?;
            match &req.expires_at {
                None => req.expires_at = Some(parent_exp),
                Some(exp) if parse_time(exp, "expires_at")? > limit => {
                    return Err(ServiceError::invalid(format!(
                        "expires_at '{exp}' is after the expiry of token '{}' ({parent_exp}); \
                         a token cannot outlive the token that creates it",
                        caller.token_name
                    )));
                }
                Some(_) => {}
            }
        }
        let mut id_bytes = [0u8; 8];
        let mut secret = [0u8; 32];
        {
            let mut rng = rand::rng();
            rng.fill_bytes(&mut id_bytes);
            rng.fill_bytes(&mut secret);
        }
        let id = hex::encode(id_bytes);
        let token = format!(
            "{PREFIX}{id}_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let stored = StoredToken {
            id: id.clone(),
            name,
            hash: hash(&token),
            grants: req.grants,
            created_at: now(),
            created_by: (caller.token_id != "system").then(|| caller.token_id.clone()),
            expires_at: req.expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        let to_store = stored.clone();
        self.store
            .write(WriteMode::Shared, move |txn| -> Result<()> {
                store::tokens::put(txn, &to_store.id, &encode(&to_store)?)?;
                Ok(())
            })
            .await?;
        let info = TokenInfo::from(&stored);
        self.tokens.put(stored);
        tracing::info!(token_id = %id, "token created");
        Ok(CreatedToken { token, info })
    }

    /// Creates the admin token on first start (no tokens yet). Returns it
    /// once; `None` when tokens already exist.
    pub async fn bootstrap_admin(&self) -> Result<Option<CreatedToken>> {
        if !self.tokens.is_empty() {
            return Ok(None);
        }
        let admin = CreateToken {
            name: "admin".into(),
            grants: vec![Grant {
                scope: Scope {
                    workspaces: vec!["*".into()],
                    collections: None,
                    environments: None,
                },
                permissions: vec!["*".into()],
            }],
            expires_at: None,
        };
        self.create_token(&Caller::system(), admin).await.map(Some)
    }

    /// Tokens the caller manages: all for an admin token, else those it created.
    pub fn list_tokens(&self, caller: &Caller) -> Vec<TokenInfo> {
        self.tokens
            .all()
            .iter()
            .filter(|t| {
                caller.is_admin()
                    || t.created_by.as_deref() == Some(caller.token_id.as_str())
                    || t.id == caller.token_id
            })
            .map(TokenInfo::from)
            .collect()
    }

    pub async fn revoke_token(&self, caller: &Caller, id: &str) -> Result<TokenInfo> {
        let mut t = self.tokens.get(id).ok_or_else(|| {
            ServiceError::not_found(
                Entity::Token,
                id,
                format!("token '{id}' not found; list them with `mcp-factory tokens list`"),
            )
        })?;
        let allowed = caller.is_admin()
            || t.created_by.as_deref() == Some(caller.token_id.as_str())
            || t.id == caller.token_id;
        if !allowed {
            return Err(ServiceError::Forbidden(format!(
                "token '{}' may only revoke tokens it created",
                caller.token_name
            )));
        }
        if t.revoked_at.is_none() {
            t.revoked_at = Some(now());
            let to_store = t.clone();
            self.store
                .write(WriteMode::Shared, move |txn| -> Result<()> {
                    store::tokens::put(txn, &to_store.id, &encode(&to_store)?)?;
                    Ok(())
                })
                .await?;
            self.tokens.put(t.clone());
            tracing::info!(token_id = %id, "token revoked");
        }
        Ok(TokenInfo::from(&t))
    }
}
