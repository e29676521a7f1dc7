//! `subscriptions/listen` (MCP 2026-07-28): the stream on which a stateless
//! client hears `notifications/tools/list_changed`.
//!
//! A listen stream is one long POST. rmcp acknowledges it (with the
//! subscription id) and then runs the handler's `listen`, which
//! [`run`]s here until the client goes away, the server shuts down, or the
//! token that opened it stops authenticating: every stream is registered in
//! [`Sessions`] like a session, and the sweeper cancels the streams of
//! revoked or expired tokens (within `SWEEP_EVERY`). That ends the stream
//! with a JSON-RPC error saying why.
//!
//! The same events reach 2025-11-25 sessions (`EndpointMcp::on_initialized`)
//! through [`touches`], so both eras hear the same changes.

use std::sync::{Arc, Mutex};

use rmcp::ErrorData;
use rmcp::model::SubscriptionFilter;
use rmcp::service::SubscriptionContext;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::{McpCaller, Sessions, Target};
use crate::service::endpoints::Change;

/// What a handler needs to serve listen streams.
#[derive(Clone)]
pub struct Listens {
    pub(crate) sessions: Sessions,
    /// The server's shutdown: ends every stream.
    pub(crate) shutdown: CancellationToken,
}

/// Whether `change` concerns endpoint `slug` of workspace `workspace_id`.
pub(crate) fn touches(change: &Change, workspace_id: &str, slug: &str) -> bool {
    change.workspace_id == workspace_id && change.slug == slug
}

/// A listen request's subscription to endpoint changes, taken in
/// `accepted_subscription_filter` (which runs before the acknowledgement is
/// sent), so a change right after the acknowledgement is not missed.
pub(crate) struct Pending<T = Change>(Arc<Mutex<Option<broadcast::Receiver<T>>>>);

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending(Arc::default())
    }
}

impl<T> Clone for Pending<T> {
    fn clone(&self) -> Self {
        Pending(self.0.clone())
    }
}

impl<T> Pending<T> {
    pub(crate) fn put(&self, rx: broadcast::Receiver<T>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(rx);
    }

    pub(crate) fn take(&self) -> Option<broadcast::Receiver<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Most listen streams one token may hold open at once (per server).
pub(crate) const MAX_PER_TOKEN: usize = 32;

/// The stream's entry in [`Sessions`], removed when the stream ends.
struct Registered {
    sessions: Sessions,
    id: String,
    revoked: CancellationToken,
}

impl Registered {
    /// `None` when the caller's token already holds [`MAX_PER_TOKEN`].
    fn new(sessions: &Sessions, caller: &McpCaller) -> Option<Registered> {
        let id = format!("listen:{}", uuid::Uuid::new_v4());
        let revoked = CancellationToken::new();
        sessions
            .insert_listen(
                id.clone(),
                caller.caller.token_id.clone(),
                caller.target.clone(),
                revoked.clone(),
                MAX_PER_TOKEN,
            )
            .then(|| Registered {
                sessions: sessions.clone(),
                id,
                revoked,
            })
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.sessions.remove(&self.id);
    }
}

/// The filter a product server accepts: what it advertises (tools list
/// changes) of what was asked.
pub(crate) fn accepted(
    requested: &SubscriptionFilter,
    capabilities: &rmcp::model::ServerCapabilities,
) -> SubscriptionFilter {
    requested.supported_by(capabilities)
}

/// Serves one listen stream of `caller`. For an endpoint, `changes` carries
/// the endpoint changes, `stale` says whether the endpoint already changed
/// since the request was authenticated (then the client is told at once),
/// and `gone` whether it no longer exists (asked when a change may have been
/// missed: then, or after its deletion, the stream ends). The Admin MCP's
/// tools never change: its streams only wait.
pub(crate) async fn run(
    ctx: SubscriptionContext,
    listens: &Listens,
    caller: &McpCaller,
    mut changes: Option<broadcast::Receiver<Change>>,
    stale: bool,
    gone: impl Fn() -> bool,
) -> Result<(), ErrorData> {
    let Some(registered) = Registered::new(&listens.sessions, caller) else {
        return Err(ErrorData::invalid_request(
            format!(
                "this token already has {MAX_PER_TOKEN} open listen streams on this server; \
                 close one first"
            ),
            None,
        ));
    };
    let (ws, slug) = match &caller.target {
        Target::Endpoint { workspace, slug } => (workspace.as_str(), slug.as_str()),
        Target::Admin => ("", ""),
    };
    let wants_tools = ctx.accepted().tools_list_changed == Some(true);
    let mut changed = stale;
    let mut deleted = stale && gone();
    let revoked = || {
        ErrorData::invalid_request(
            "the token of this listen stream was revoked or has expired; \
             listen again with a valid token",
            None,
        )
    };
    loop {
        if changed {
            changed = false;
            if wants_tools {
                // A client that stops reading must not keep the stream past
                // its revocation: the send waits with the same exits.
                tokio::select! {
                    r = ctx.sink().notify_tool_list_changed() => if r.is_err() {
                        return Ok(());
                    },
                    () = ctx.cancelled() => return Ok(()),
                    () = listens.shutdown.cancelled() => return Ok(()),
                    () = registered.revoked.cancelled() => return Err(revoked()),
                }
            }
            if deleted {
                // Nothing is served here any more: end the stream gracefully.
                return Ok(());
            }
        }
        let next = async {
            match changes.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = ctx.cancelled() => return Ok(()),
            () = listens.shutdown.cancelled() => return Ok(()),
            () = registered.revoked.cancelled() => return Err(revoked()),
            r = next => match r {
                Ok(ch) if touches(&ch, ws, slug) => {
                    changed = true;
                    deleted = ch.revision.is_none();
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    changed = true;
                    deleted = gone();
                }
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}
