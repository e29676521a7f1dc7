//! The legacy HTTP+SSE transport (MCP 2024-11-05), for clients configured
//! with `--transport sse`: `GET …/sse` opens an event stream whose first
//! event (`endpoint`) names the messages URL; the client POSTs its JSON-RPC
//! messages there and reads the answers from the stream.
//!
//! rmcp no longer ships this server side, so this module is only a
//! transport: [`SseTransport`] implements rmcp's `Transport` trait over two
//! channels, and the very same `ServerHandler`s serve it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{End, McpCaller, Sessions, Target};
use crate::http::error::ApiError;
use crate::runtime::Runtime;
use crate::service::Service;

/// Messages a stream may have queued each way before senders wait.
const QUEUE: usize = 64;

/// The stream ended; nothing more can be sent on it.
#[derive(Debug, thiserror::Error)]
#[error("the SSE stream is closed")]
pub struct Closed;

/// One SSE session as an rmcp transport: client messages arrive from the
/// POST handler, server messages go to the event stream.
pub struct SseTransport {
    from_client: mpsc::Receiver<ClientJsonRpcMessage>,
    to_client: mpsc::Sender<ServerJsonRpcMessage>,
}

impl Transport<RoleServer> for SseTransport {
    type Error = Closed;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Closed>> + Send + 'static {
        let tx = self.to_client.clone();
        async move { tx.send(item).await.map_err(|_| Closed) }
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleServer>>> + Send {
        self.from_client.recv()
    }

    async fn close(&mut self) -> Result<(), Closed> {
        self.from_client.close();
        Ok(())
    }
}

/// The open SSE sessions.
#[derive(Clone)]
pub struct Hub {
    service: Service,
    runtime: Arc<Runtime>,
    sessions: Sessions,
    inboxes: Arc<Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
    shutdown: CancellationToken,
}

/// Forgets a session when its event stream is dropped (the client went away,
/// the token was revoked or the server stops).
struct Forget {
    id: String,
    hub: Hub,
    ct: CancellationToken,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.ct.cancel();
        self.hub.inboxes_lock().remove(&self.id);
        self.hub.sessions.remove(&self.id);
        tracing::debug!(session = %self.id, "SSE stream closed");
    }
}

impl Hub {
    pub(super) fn new(
        service: Service,
        runtime: Arc<Runtime>,
        sessions: Sessions,
        shutdown: CancellationToken,
    ) -> Hub {
        Hub {
            service,
            runtime,
            sessions,
            inboxes: Arc::default(),
            shutdown,
        }
    }

    fn inboxes_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>> {
        self.inboxes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session for `caller`; `messages` is the path clients POST to.
    pub fn open(&self, caller: McpCaller, messages: &str) -> Response {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (to_server, from_client) = mpsc::channel(QUEUE);
        let (to_client, from_server) = mpsc::channel(QUEUE);
        let ct = self.shutdown.child_token();
        self.inboxes_lock().insert(id.clone(), to_server);
        self.sessions.insert(
            id.clone(),
            caller.caller.token_id.clone(),
            caller.target.clone(),
            End::Sse(ct.clone()),
        );
        let transport = SseTransport {
            from_client,
            to_client,
        };
        let (service, runtime, run_ct) = (self.service.clone(), self.runtime.clone(), ct.clone());
        tokio::spawn(async move {
            let served = match caller.target {
                Target::Admin => run(super::admin::AdminMcp::new(service), transport, run_ct).await,
                Target::Endpoint { .. } => {
                    run(
                        super::endpoint::EndpointMcp::new(service, runtime),
                        transport,
                        run_ct,
                    )
                    .await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "SSE session ended before it initialized");
            }
        });
        let forget = Forget {
            id: id.clone(),
            hub: self.clone(),
            ct: ct.clone(),
        };
        let first = Event::default()
            .event("endpoint")
            .data(format!("{messages}?sessionId={id}"));
        let events = futures::stream::once(async move { first })
            .chain(
                tokio_stream::wrappers::ReceiverStream::new(from_server).map(|m| {
                    Event::default()
                        .event("message")
                        .data(serde_json::to_string(&m).unwrap_or_default())
                }),
            )
            .take_until(ct.cancelled_owned())
            .map(move |e| {
                let _keep = &forget;
                Ok::<_, Infallible>(e)
            });
        Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response()
    }

    /// A client message for session `id`, sent by `caller`.
    pub async fn post(
        &self,
        id: &str,
        caller: McpCaller,
        mut parts: Parts,
        body: &[u8],
    ) -> Response {
        if let Err(refusal) = self.sessions.check(id, &caller, "SSE") {
            return refusal.into_response();
        }
        let Some(inbox) = self.inboxes_lock().get(id).cloned() else {
            return unknown_session(id);
        };
        let mut message = match super::parse_message(body) {
            Ok(m) => m,
            Err(refusal) => return *refusal,
        };
        parts.extensions.insert(caller);
        match &mut message {
            ClientJsonRpcMessage::Request(r) => {
                r.request.extensions_mut().insert(parts);
            }
            ClientJsonRpcMessage::Notification(n) => {
                n.notification.extensions_mut().insert(parts);
            }
            _ => {}
        }
        if inbox.send(message).await.is_err() {
            return unknown_session(id);
        }
        StatusCode::ACCEPTED.into_response()
    }
}

async fn run<H: rmcp::ServerHandler>(
    handler: H,
    transport: SseTransport,
    ct: CancellationToken,
) -> Result<(), String> {
    let running = rmcp::service::serve_server_with_ct(handler, transport, ct)
        .await
        .map_err(|e| e.to_string())?;
    let _ = running.waiting().await;
    Ok(())
}

fn unknown_session(id: &str) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("SSE session '{id}' not found or closed; open a new one with GET on the sse URL"),
    )
    .into_response()
}
