//! The MCP surfaces: the Admin MCP (`/mcp`, `/sse`) and endpoint MCP
//! (`/e/{slug}/mcp`, `/e/{slug}/sse`) as rmcp `ServerHandler`s, served over
//! rmcp's Streamable HTTP service and over the legacy SSE transport in
//! [`sse`].
//!
//! Every HTTP request is authenticated on its own: the `http` layer puts the
//! request's [`McpCaller`] into the request extensions, and the handlers
//! read it from there. A session id only routes messages; it never stands in
//! for a token. [`Sessions`] remembers which token opened which session, so
//! another token cannot use it, and a sweeper ends the sessions and streams
//! of a token once it is revoked or expires.

pub mod admin;
pub mod endpoint;
pub mod fast;
pub mod fixture;
pub mod listen;
pub mod sse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::{NotificationContext, RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{SessionId, SessionManager};
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use axum::http::StatusCode;

use crate::http::error::ApiError;
use crate::service::{Caller, Service, ServiceError};

/// Which MCP server a request is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Admin,
    Endpoint { workspace: String, slug: String },
}

/// The authenticated caller of one HTTP request, in its extensions.
#[derive(Clone)]
pub struct McpCaller {
    pub caller: Caller,
    pub target: Target,
    /// For an endpoint: the revision this request is served by, resolved
    /// once when the request was authenticated.
    pub serving: Option<Arc<crate::service::endpoints::Serving>>,
}

/// How the MCP routes check `Host` and `Origin`.
#[derive(Debug, Clone)]
pub struct Access {
    /// Accepted `Host` values (`name` or `name:port`); loopback names by default.
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` values (`scheme://host[:port|:*]`); loopback
    /// pages by default. Requests with an `Origin` header not listed here
    /// are refused; requests without one (non-browser clients) pass.
    pub allowed_origins: Vec<String>,
}

/// What the MCP routes serve and accept.
#[derive(Debug, Clone, Default)]
pub struct McpConfig {
    pub access: Access,
    /// Serve the conformance suite's fixture tools, without auth, at
    /// `/conformance/mcp` (see [`fixture`]). Loopback servers only.
    pub conformance_fixture: bool,
    /// The largest MCP message accepted (`serve --max-body`); 0 means
    /// [`crate::http::DEFAULT_MAX_BODY`].
    pub max_body: usize,
}

impl Default for Access {
    fn default() -> Access {
        Access {
            allowed_hosts: ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec(),
            allowed_origins: ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// The caller of a handler call, from the request's HTTP parts.
fn caller_of(ext: &rmcp::model::Extensions) -> Result<McpCaller, ErrorData> {
    ext.get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<McpCaller>())
        .cloned()
        .ok_or_else(|| {
            ErrorData::internal_error("the request carries no authenticated caller", None)
        })
}

pub(crate) fn request_caller(ctx: &RequestContext<RoleServer>) -> Result<McpCaller, ErrorData> {
    caller_of(&ctx.extensions)
}

pub(crate) fn notification_caller(ctx: &NotificationContext<RoleServer>) -> Option<McpCaller> {
    caller_of(&ctx.extensions).ok()
}

/// The server's `initialize` answer.
pub(crate) fn server_info(name: &str, instructions: &str) -> ServerConfig {
    ServerConfig::new(
        ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build(),
    )
    .with_server_info(Implementation::new(name, env!("CARGO_PKG_VERSION")))
    .with_instructions(instructions)
}

/// A tool result carrying `value` as `structuredContent` and as JSON text.
/// `structuredContent` must be an object: anything else is wrapped as
/// `{"result": value}`.
pub(crate) fn json_result(value: Value, is_error: bool) -> CallToolResult {
    let structured = if value.is_object() {
        value
    } else {
        json!({ "result": value })
    };
    let mut r = CallToolResult::structured(structured);
    r.is_error = Some(is_error);
    r
}

/// A client's JSON-RPC message; a body that is not JSON gets a parse error
/// (-32700), JSON that is not a JSON-RPC message an invalid request (-32600),
/// both as a 400 with a JSON-RPC error body.
pub fn parse_message(
    body: &[u8],
) -> Result<rmcp::model::ClientJsonRpcMessage, Box<axum::response::Response>> {
    use axum::response::IntoResponse;
    serde_json::from_slice(body).map_err(|e| {
        let (code, what) = if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
            (
                rmcp::model::ErrorCode::PARSE_ERROR,
                "Parse error: the body is not JSON",
            )
        } else {
            (
                rmcp::model::ErrorCode::INVALID_REQUEST,
                "Invalid Request: not a JSON-RPC 2.0 request, notification or response",
            )
        };
        let err = rmcp::model::JsonRpcError::new(
            None,
            ErrorData::new(code, format!("{what} ({e})"), None),
        );
        Box::new((StatusCode::BAD_REQUEST, axum::Json(err)).into_response())
    })
}

/// The answer of a product server to a list it does not serve (prompts,
/// resources): on 2026-07-28 "method not found", so the handlers match what
/// `server/discover` declares (tools only); on 2025-11-25 sessions an empty
/// list, as clients and the Inspector have always had.
pub(crate) fn unserved_list<T: Default>(
    ctx: &RequestContext<RoleServer>,
    method: &'static str,
) -> Result<T, ErrorData> {
    if ctx.meta.protocol_version().is_some() {
        Err(ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            method,
            None,
        ))
    } else {
        Ok(T::default())
    }
}

/// Every tool promises an object result (`structuredContent`).
pub(crate) fn object_output_schema() -> Arc<rmcp::model::JsonObject> {
    let mut o = rmcp::model::JsonObject::new();
    o.insert("type".into(), json!("object"));
    Arc::new(o)
}

/// A service error as a tool result the agent can act on.
pub(crate) fn error_result(e: &ServiceError) -> Result<CallToolResult, ErrorData> {
    if matches!(e, ServiceError::Internal(_) | ServiceError::Store(_)) {
        tracing::error!(error = %e, "internal error in an MCP tool call");
        return Err(ErrorData::internal_error(
            "internal error; the server log has the details",
            None,
        ));
    }
    Ok(error_content(
        e.code(),
        &e.to_string(),
        e.details().as_ref(),
    ))
}

/// An `isError` result: `CODE: message` as text, and
/// `{"error": {"code", "message", "details"?}}` as structured content (the
/// REST error body).
pub(crate) fn error_content(code: &str, message: &str, details: Option<&Value>) -> CallToolResult {
    let mut error = json!({"code": code, "message": message});
    if let Some(d) = details {
        error["details"] = d.clone();
    }
    let mut r = CallToolResult::error(vec![ContentBlock::text(format!("{code}: {message}"))]);
    r.structured_content = Some(json!({ "error": error }));
    r
}

/// Who opened a session or stream, and how to end it.
struct Owner {
    token_id: String,
    target: Target,
    end: End,
    /// The last request that named this session.
    last_seen: Instant,
}

/// How long sessions may sit unused. rmcp's own idle timer is off (fast-path
/// calls never reach a session worker, so it cannot tell an idle session
/// from a busy one); [`Sessions::sweep`] applies these instead.
#[derive(Debug, Clone, Copy)]
struct Idle {
    /// A session no request has named for this long is closed.
    session: Duration,
    /// A session rmcp holds that this server never recorded (its
    /// `initialize` answer never got back through [`Mcp::opened`], e.g. the
    /// client hung up first) is closed once it has been seen this long.
    stray: Duration,
}

const IDLE: Idle = Idle {
    session: Duration::from_secs(300),
    stray: Duration::from_secs(60),
};

#[derive(Clone)]
enum End {
    /// A Streamable HTTP session, closed through its session manager.
    Http(Arc<LocalSessionManager>),
    /// A legacy SSE stream.
    Sse(CancellationToken),
    /// A 2026-07-28 `subscriptions/listen` stream ([`listen`]).
    Listen(CancellationToken),
}

/// Live sessions and streams by id, with the token that opened each.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Owner>>>,
    /// rmcp sessions not (yet) in `inner`, with when a sweep first saw them.
    strays: Arc<Mutex<HashMap<SessionId, Instant>>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Owner>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, id: String, token_id: String, target: Target, end: End) {
        self.lock().insert(
            id,
            Owner {
                token_id,
                target,
                end,
                last_seen: Instant::now(),
            },
        );
    }

    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Registers listen stream `id` unless `token_id` already holds `max`;
    /// whether it did.
    fn insert_listen(
        &self,
        id: String,
        token_id: String,
        target: Target,
        revoked: CancellationToken,
        max: usize,
    ) -> bool {
        let mut map = self.lock();
        let held = map
            .values()
            .filter(|o| o.token_id == token_id && matches!(o.end, End::Listen(_)))
            .count();
        if held >= max {
            return false;
        }
        map.insert(
            id,
            Owner {
                token_id,
                target,
                end: End::Listen(revoked),
                last_seen: Instant::now(),
            },
        );
        true
    }

    /// Whether `caller` may use session `id` on `target`: another token
    /// gets 403, another route 404. `kind` names the transport in the
    /// message ("MCP", "SSE"). Sessions this server does not know pass (the
    /// transport answers 404 for them).
    pub fn check(&self, id: &str, caller: &McpCaller, kind: &str) -> Result<(), ApiError> {
        match self.lock().get_mut(id) {
            Some(o) if o.token_id != caller.caller.token_id => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("this {kind} session was opened with another token; open a new session"),
            )),
            Some(o) if o.target != caller.target => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("{kind} session '{id}' not found on this route; open a new session"),
            )),
            Some(o) => {
                o.last_seen = Instant::now();
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// When `token_id` holds more than `max` sessions: the least recently
    /// used one, forgotten here, with its manager to close it.
    fn over_cap(&self, token_id: &str, max: usize) -> Option<(String, Arc<LocalSessionManager>)> {
        let mut map = self.lock();
        let mut held = map.iter().filter_map(|(id, o)| match &o.end {
            End::Http(m) if o.token_id == token_id => Some((o.last_seen, id, m)),
            _ => None,
        });
        let mut count = 0;
        let mut oldest: Option<(Instant, &String, &Arc<LocalSessionManager>)> = None;
        for h in held.by_ref() {
            count += 1;
            if oldest.is_none_or(|o| h.0 < o.0) {
                oldest = Some(h);
            }
        }
        if count <= max {
            return None;
        }
        let (_, id, m) = oldest?;
        let (id, m) = (id.clone(), m.clone());
        map.remove(&id);
        Some((id, m))
    }

    /// Whether `id` is a session this server opened for `caller`'s token on
    /// `caller`'s route.
    pub fn owns(&self, id: &str, caller: &McpCaller) -> bool {
        self.lock().get(id).is_some_and(|o| {
            o.token_id == caller.caller.token_id
                && o.target == caller.target
                && matches!(o.end, End::Http(_))
        })
    }

    /// Ends every session and stream whose token no longer authenticates
    /// (revoked or expired), closes sessions idle for longer than `idle`
    /// allows and the strays of `managers` (pass none to skip that pass),
    /// and forgets closed sessions.
    async fn sweep(&self, service: &Service, managers: &[&LocalSessionManager], idle: Idle) {
        // What to look at, copied out: the lock every request takes is not
        // held while tokens are checked or sessions closed.
        let seen: Vec<(String, String, End, bool)> = self
            .lock()
            .iter()
            .map(|(id, o)| {
                let stale = o.last_seen.elapsed() >= idle.session;
                (id.clone(), o.token_id.clone(), o.end.clone(), stale)
            })
            .collect();
        let mut live_tokens: HashMap<String, bool> = HashMap::new();
        let mut ended = Vec::new();
        let mut http = Vec::new();
        for (id, token_id, end, stale) in seen {
            let live = *live_tokens
                .entry(token_id)
                .or_insert_with_key(|t| service.token_is_live(t));
            match end {
                End::Http(m) => http.push((id, m, live, stale)),
                End::Sse(ct) | End::Listen(ct) if !live || ct.is_cancelled() => {
                    ct.cancel();
                    ended.push(id);
                }
                End::Sse(_) | End::Listen(_) => {}
            }
        }
        for (id, manager, live, stale) in http {
            let sid: SessionId = Arc::from(id.as_str());
            if !live || stale {
                let why = if live {
                    "no request named it for the idle limit"
                } else {
                    "its token was revoked or expired"
                };
                tracing::info!(session = %id, "closing a session: {why}");
                let _ = manager.close_session(&sid).await;
                ended.push(id);
            } else if !manager.has_session(&sid).await.unwrap_or(false) {
                ended.push(id);
            }
        }
        {
            let mut map = self.lock();
            for id in ended {
                map.remove(&id);
            }
        }
        if managers.is_empty() {
            return;
        }
        for manager in managers {
            let ids: Vec<SessionId> = manager.sessions.read().await.keys().cloned().collect();
            let mut close = Vec::new();
            {
                let known = self.lock();
                let mut strays = self.strays.lock().unwrap_or_else(|e| e.into_inner());
                for id in &ids {
                    if known.contains_key(id.as_ref()) {
                        strays.remove(id);
                    } else if strays
                        .entry(id.clone())
                        .or_insert_with(Instant::now)
                        .elapsed()
                        >= idle.stray
                    {
                        strays.remove(id);
                        close.push(id.clone());
                    }
                }
            }
            for id in close {
                tracing::info!(session = %id, "closing a session nobody was told about");
                let _ = manager.close_session(&id).await;
            }
        }
        // Forget strays that are gone.
        let mut all = std::collections::HashSet::new();
        for manager in managers {
            all.extend(manager.sessions.read().await.keys().cloned());
        }
        self.strays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| all.contains(id));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The MCP services the router mounts.
#[derive(Clone)]
pub struct Mcp {
    pub admin: StreamableHttpService<admin::AdminMcp, LocalSessionManager>,
    pub endpoint: StreamableHttpService<endpoint::EndpointMcp, LocalSessionManager>,
    /// Only with `--conformance-fixture`.
    pub fixture: Option<StreamableHttpService<fixture::FixtureMcp, LocalSessionManager>>,
    admin_sessions: Arc<LocalSessionManager>,
    endpoint_sessions: Arc<LocalSessionManager>,
    pub sessions: Sessions,
    /// What the endpoint `tools/call` fast path ([`fast`]) runs on.
    service: Service,
    runtime: Arc<crate::runtime::Runtime>,
    pub sse: sse::Hub,
    pub access: Access,
    /// Cancelled when the server shuts down: ends every session and stream.
    pub shutdown: CancellationToken,
}

/// How often sessions of revoked tokens are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

impl Mcp {
    pub fn new(service: Service, runtime: Arc<crate::runtime::Runtime>, config: McpConfig) -> Mcp {
        let McpConfig {
            access,
            conformance_fixture,
            max_body,
        } = config;
        let shutdown = CancellationToken::new();
        let max_body = if max_body == 0 {
            crate::http::DEFAULT_MAX_BODY
        } else {
            max_body
        };
        let config = http_config(&access, shutdown.clone(), max_body);
        let admin_sessions = Arc::new(session_manager());
        let endpoint_sessions = Arc::new(session_manager());
        let sessions = Sessions::default();
        let listens = listen::Listens {
            sessions: sessions.clone(),
            shutdown: shutdown.clone(),
        };
        let svc = service.clone();
        let ls = listens.clone();
        let admin = StreamableHttpService::new(
            move || Ok(admin::AdminMcp::new(svc.clone()).with_listens(ls.clone())),
            admin_sessions.clone(),
            config.clone(),
        );
        let svc = service.clone();
        let rt = runtime.clone();
        let endpoint = StreamableHttpService::new(
            move || {
                Ok(endpoint::EndpointMcp::new(svc.clone(), rt.clone())
                    .with_listens(listens.clone()))
            },
            endpoint_sessions.clone(),
            config.clone(),
        );
        let fixture = conformance_fixture.then(|| {
            StreamableHttpService::new(
                || Ok(fixture::FixtureMcp::default()),
                Arc::new(LocalSessionManager::default()),
                config,
            )
        });
        let mcp = Mcp {
            admin,
            endpoint,
            fixture,
            admin_sessions,
            endpoint_sessions,
            sse: sse::Hub::new(
                service.clone(),
                runtime.clone(),
                sessions.clone(),
                shutdown.clone(),
            ),
            sessions,
            service: service.clone(),
            runtime,
            access,
            shutdown: shutdown.clone(),
        };
        let sessions = mcp.sessions.clone();
        let (admin_sessions, endpoint_sessions) =
            (mcp.admin_sessions.clone(), mcp.endpoint_sessions.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u32 = 0;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        // Strays are looked for every 5 s, revocations every tick.
                        n = n.wrapping_add(1);
                        let managers = [admin_sessions.as_ref(), endpoint_sessions.as_ref()];
                        let managers: &[&LocalSessionManager] =
                            if n.is_multiple_of(20) { &managers } else { &[] };
                        sessions.sweep(&service, managers, IDLE).await;
                    }
                    _ = shutdown.cancelled() => break,
                }
            }
        });
        mcp
    }

    /// Remembers that `caller` opened Streamable HTTP session `id`.
    pub fn opened(&self, id: String, caller: &McpCaller) {
        let manager = match caller.target {
            Target::Admin => self.admin_sessions.clone(),
            Target::Endpoint { .. } => self.endpoint_sessions.clone(),
        };
        self.sessions.insert(
            id,
            caller.caller.token_id.clone(),
            caller.target.clone(),
            End::Http(manager),
        );
        // A token holds a bounded number of sessions: past the cap its least
        // recently used one is closed (that client gets 404 and opens a new
        // session, as the protocol says), so opening sessions in a loop
        // cannot pile up session workers.
        if let Some((old, manager)) = self
            .sessions
            .over_cap(&caller.caller.token_id, MAX_SESSIONS_PER_TOKEN)
        {
            tracing::info!(session = %old, "closing a session: its token opened too many");
            tokio::spawn(async move {
                let _ = manager.close_session(&SessionId::from(old.as_str())).await;
            });
        }
    }
}

/// Most Streamable HTTP sessions one token holds at once (per server).
pub const MAX_SESSIONS_PER_TOKEN: usize = 64;

/// Sessions without rmcp's idle timer ([`IDLE`] is ours).
fn session_manager() -> LocalSessionManager {
    let mut m = LocalSessionManager::default();
    m.session_config.keep_alive = None;
    m
}

impl Mcp {
    /// Answers an endpoint route's POST itself if it is a plain
    /// `tools/call` ([`fast`]); `None` leaves it to rmcp. `session`: the
    /// request's `Mcp-Session-Id`, already checked against the caller.
    pub async fn fast_call(
        &self,
        caller: &McpCaller,
        headers: &axum::http::HeaderMap,
        body: &[u8],
        session: Option<&str>,
    ) -> Option<axum::response::Response> {
        if !matches!(caller.target, Target::Endpoint { .. }) {
            return None;
        }
        let live = match session {
            Some(id) => {
                self.sessions.owns(id, caller)
                    && self
                        .endpoint_sessions
                        .has_session(&SessionId::from(id))
                        .await
                        .unwrap_or(false)
            }
            None => false,
        };
        if session.is_some() && !live {
            return None;
        }
        let call = fast::parse(headers, body, live)?;
        Some(fast::serve(&self.service, &self.runtime, caller, call).await)
    }
}

fn http_config(
    access: &Access,
    shutdown: CancellationToken,
    max_body: usize,
) -> StreamableHttpServerConfig {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(access.allowed_hosts.clone())
        .with_cancellation_token(shutdown)
        // The same limit as the fast path and REST (`--max-body`).
        .with_max_request_body_bytes(max_body)
        // 2026-07-28 requests answered by one message get it as one
        // `application/json` body instead of an SSE stream.
        .with_json_response(true);
    // An empty list trusts no browser origin: any request carrying `Origin`
    // is refused.
    config
        .with_allowed_origins(access.allowed_origins.clone())
        .enforce_origin_validation()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sessions idle past the limit are closed, and so are rmcp sessions
    /// this server never recorded; a recorded, recently used one stays.
    #[tokio::test]
    async fn idle_and_stray_sessions_are_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let service =
            Service::new(crate::store::Store::open(dir.path()).expect("store")).expect("service");
        let manager = Arc::new(session_manager());
        let (kept, _) = manager.create_session().await.expect("session");
        let (idle, _) = manager.create_session().await.expect("session");
        let (stray, _) = manager.create_session().await.expect("session");
        let s = Sessions::default();
        for id in [&kept, &idle] {
            s.insert(
                id.to_string(),
                "system".into(),
                Target::Admin,
                End::Http(manager.clone()),
            );
        }
        s.lock().get_mut(idle.as_ref()).expect("idle").last_seen =
            Instant::now() - Duration::from_millis(10);
        let limits = Idle {
            session: Duration::from_millis(5),
            stray: Duration::ZERO,
        };
        // `kept` was seen just now; refresh it so only `idle` is past 5 ms.
        s.lock().get_mut(kept.as_ref()).expect("kept").last_seen = Instant::now();
        s.sweep(&service, &[manager.as_ref()], limits).await;
        let has = async |id: &SessionId| manager.has_session(id).await.expect("has");
        assert!(has(&kept).await, "a recently used session stays");
        assert!(!has(&idle).await, "an idle session is closed");
        assert!(!has(&stray).await, "an unrecorded session is closed");
        assert_eq!(s.len(), 1);
    }

    #[tokio::test]
    async fn sessions_refuse_other_tokens_and_other_servers() {
        let s = Sessions::default();
        let me = McpCaller {
            caller: Caller::system(),
            target: Target::Admin,
            serving: None,
        };
        s.insert(
            "s1".into(),
            "system".into(),
            Target::Admin,
            End::Sse(CancellationToken::new()),
        );
        assert!(s.check("s1", &me, "MCP").is_ok());
        assert!(s.check("unknown", &me, "MCP").is_ok());
        let mut other = me.clone();
        other.caller.token_id = "tok_other".into();
        assert_eq!(
            s.check("s1", &other, "MCP").map_err(|e| e.status),
            Err(StatusCode::FORBIDDEN)
        );
        let mut elsewhere = me.clone();
        elsewhere.target = Target::Endpoint {
            workspace: "w".into(),
            slug: "e".into(),
        };
        assert_eq!(
            s.check("s1", &elsewhere, "MCP").map_err(|e| e.status),
            Err(StatusCode::NOT_FOUND)
        );
        assert_eq!(s.len(), 1);
    }
}
