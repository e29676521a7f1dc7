//! The MCP routes: authentication, Host/Origin checks and endpoint
//! resolution in front of the rmcp Streamable HTTP services and the legacy
//! SSE transport of [`crate::mcp`].
//!
//! | route | server |
//! |---|---|
//! | `POST/GET/DELETE /mcp` | Admin MCP, Streamable HTTP |
//! | `GET /sse`, `POST /messages?sessionId=` | Admin MCP, legacy SSE |
//! | `POST/GET/DELETE /e/{slug}/mcp` | endpoint MCP, Streamable HTTP |
//! | `GET /e/{slug}/sse`, `POST /e/{slug}/messages?sessionId=` | endpoint MCP, legacy SSE |

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{Params, bearer};
use crate::mcp::{Access, McpCaller, Target};
use crate::service::Caller;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mcp", any(admin_mcp))
        .route("/sse", get(admin_sse))
        .route("/messages", post(admin_messages))
        .route("/e/{slug}/mcp", any(endpoint_mcp))
        .route("/e/{slug}/sse", get(endpoint_sse))
        .route("/e/{slug}/messages", post(endpoint_messages))
        .route("/conformance/mcp", any(fixture_mcp))
}

/// The conformance fixture (only with `serve --conformance-fixture`).
async fn fixture_mcp(State(s): State<AppState>, req: Request) -> Response {
    let Some(fixture) = &s.mcp.fixture else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such route (the conformance fixture is off; it is a test mode of `serve`)",
        )
        .into_response();
    };
    if let Err(e) = s.mcp.access.check(req.headers()) {
        return e.into_response();
    }
    match tower_service::Service::call(&mut fixture.clone(), req).await {
        Ok(r) => r.map(Body::new),
        Err(never) => match never {},
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

impl Access {
    /// Refuses a request whose `Host` is not allowed, or that carries an
    /// `Origin` that is not (DNS rebinding, cross-site browser requests).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let forbidden = |m: String| ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", m);
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !self.allowed_hosts.is_empty() && !self.host_allowed(host) {
            return Err(forbidden(format!(
                "Host '{host}' is not allowed; start the server with --allowed-host {} to serve it",
                host_name(host)
            )));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origin_allowed(origin) {
                return Err(forbidden(format!(
                    "Origin '{origin}' is not allowed; start the server with --allowed-origin {origin} to accept it"
                )));
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        self.allowed_hosts.iter().any(|a| {
            a.eq_ignore_ascii_case(host) || a.trim_matches(['[', ']']).eq_ignore_ascii_case(name)
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else {
            return self.allowed_origins.iter().any(|a| a == origin);
        };
        // An origin is scheme://host[:port]: no user info, path or query
        // (`http://localhost:1@evil.example` is evil.example's).
        if authority.contains(['@', '/', '?', '#', '\\']) {
            return false;
        }
        let (name, port) = split_port(authority);
        if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
            return false;
        }
        self.allowed_origins.iter().any(|a| {
            let Some((s, auth)) = a.split_once("://") else {
                return false;
            };
            let (n, p) = split_port(auth);
            s.eq_ignore_ascii_case(scheme)
                && n.eq_ignore_ascii_case(name)
                && match p {
                    None | Some("*") => true,
                    Some(p) => Some(p) == port.or(default_port(scheme)),
                }
        })
    }
}

fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme {
        "http" => Some("80"),
        "https" => Some("443"),
        _ => None,
    }
}

/// `name` and port of an authority; IPv6 brackets removed.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (name, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (name, after.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((n, p)) if !n.contains(':') => (n, Some(p)),
        _ => (authority, None),
    }
}

fn host_name(host: &str) -> &str {
    split_port(host).0
}

/// Checks Host/Origin and the token.
fn authenticate(s: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    s.mcp.access.check(headers)?;
    Ok(s.service.authenticate(bearer(headers)?)?)
}

/// The caller of an endpoint route: a token scoped to exactly one workspace
/// (service's rule), and an endpoint `slug` there it may read.
fn endpoint_caller(s: &AppState, headers: &HeaderMap, slug: &str) -> Result<McpCaller, ApiError> {
    let caller = authenticate(s, headers)?;
    let serving = s.service.serving_for_route(&caller, slug)?;
    Ok(McpCaller {
        caller,
        target: Target::Endpoint {
            workspace: serving.endpoint.workspace_id.clone(),
            slug: slug.to_string(),
        },
        serving: Some(serving),
    })
}

fn admin_caller(s: &AppState, headers: &HeaderMap) -> Result<McpCaller, ApiError> {
    Ok(McpCaller {
        caller: authenticate(s, headers)?,
        target: Target::Admin,
        serving: None,
    })
}

async fn admin_mcp(State(s): State<AppState>, req: Request) -> Response {
    match admin_caller(&s, req.headers()) {
        Ok(c) => streamable(&s, c, req).await,
        Err(e) => e.into_response(),
    }
}

async fn endpoint_mcp(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    req: Request,
) -> Response {
    match endpoint_caller(&s, req.headers(), &slug) {
        Ok(c) => streamable(&s, c, req).await,
        Err(e) => e.into_response(),
    }
}

/// Hands the request to rmcp's Streamable HTTP service, with the caller in
/// its extensions; remembers which token opened a new session.
async fn streamable(s: &AppState, caller: McpCaller, req: Request) -> Response {
    let session = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if let Some(id) = &session
        && let Err(refusal) = s.mcp.sessions.check(id, &caller, "MCP")
    {
        return refusal.into_response();
    }
    // Keep a POST body: if rmcp cannot read it as a message, it answers a
    // plain-text 415, which becomes a JSON-RPC error below.
    let (mut req, body) = match buffered(req, s.max_body).await {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    if let Some(bytes) = &body
        && let Some(answer) = s
            .mcp
            .fast_call(&caller, req.headers(), bytes, session.as_deref())
            .await
    {
        return answer;
    }
    req.extensions_mut().insert(caller.clone());
    let response = match caller.target {
        Target::Admin => tower_service::Service::call(&mut s.mcp.admin.clone(), req).await,
        Target::Endpoint { .. } => {
            tower_service::Service::call(&mut s.mcp.endpoint.clone(), req).await
        }
    };
    let response = match response {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE
        && let Some(bytes) = &body
        && let Err(refusal) = crate::mcp::parse_message(bytes)
    {
        return *refusal;
    }
    if session.is_none()
        && let Some(id) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
    {
        s.mcp.opened(id.to_string(), &caller);
    }
    response.map(Body::new)
}

/// An MCP message body, at most `max` bytes.
async fn read_body(body: Body, max: usize) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the message is larger than the {max} byte limit"),
        )
        .into_response()
    })
}

/// A POST request with its body read (a copy of it is kept to explain a
/// refusal); other requests as they are.
async fn buffered(
    req: Request,
    max_body: usize,
) -> Result<(Request, Option<axum::body::Bytes>), Response> {
    if req.method() != axum::http::Method::POST {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = read_body(body, max_body).await?;
    Ok((
        Request::from_parts(parts, Body::from(bytes.clone())),
        Some(bytes),
    ))
}

async fn admin_sse(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match admin_caller(&s, &headers) {
        Ok(c) => s.mcp.sse.open(c, "/messages"),
        Err(e) => e.into_response(),
    }
}

async fn endpoint_sse(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    match endpoint_caller(&s, &headers, &slug) {
        Ok(c) => s.mcp.sse.open(c, &format!("/e/{slug}/messages")),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct SessionParam {
    #[serde(rename = "sessionId")]
    session_id: String,
}

async fn admin_messages(
    State(s): State<AppState>,
    Params(p): Params<SessionParam>,
    req: Request,
) -> Response {
    match admin_caller(&s, req.headers()) {
        Ok(c) => messages(&s, c, &p.session_id, req).await,
        Err(e) => e.into_response(),
    }
}

async fn endpoint_messages(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    Params(p): Params<SessionParam>,
    req: Request,
) -> Response {
    match endpoint_caller(&s, req.headers(), &slug) {
        Ok(c) => messages(&s, c, &p.session_id, req).await,
        Err(e) => e.into_response(),
    }
}

async fn messages(s: &AppState, caller: McpCaller, id: &str, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    match read_body(body, s.max_body).await {
        Ok(bytes) => s.mcp.sse.post(id, caller, parts, &bytes).await,
        Err(refusal) => refusal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(hosts: &[&str], origins: &[&str]) -> Access {
        Access {
            allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().expect("header"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().expect("header"));
        }
        h
    }

    #[test]
    fn hosts_and_origins_are_checked() {
        let a = Access::default();
        assert!(a.check(&headers("127.0.0.1:8787", None)).is_ok());
        assert!(a.check(&headers("localhost", None)).is_ok());
        assert!(a.check(&headers("[::1]:8787", None)).is_ok());
        assert!(a.check(&headers("evil.example:8787", None)).is_err());
        // Loopback pages are trusted by default, nothing else.
        assert!(
            a.check(&headers("localhost:8787", Some("http://localhost:6274")))
                .is_ok()
        );
        assert!(
            a.check(&headers("localhost:8787", Some("http://[::1]:6274")))
                .is_ok()
        );
        assert!(
            a.check(&headers("localhost:8787", Some("https://evil.example")))
                .is_err()
        );
        assert!(a.check(&headers("localhost:8787", Some("null"))).is_err());
        for sly in [
            "http://localhost:1@evil.example",
            "http://localhost@evil.example",
            "http://localhost:80/evil",
            "http://localhost:x",
        ] {
            assert!(
                a.check(&headers("localhost:8787", Some(sly))).is_err(),
                "{sly}"
            );
        }

        let a = access(
            &["mcp.example.com", "other.example:8080"],
            &["https://app.example.com", "http://localhost:*"],
        );
        assert!(a.check(&headers("mcp.example.com:443", None)).is_ok());
        assert!(a.check(&headers("other.example:8080", None)).is_ok());
        assert!(a.check(&headers("other.example:9090", None)).is_err());
        assert!(
            a.check(&headers("mcp.example.com", Some("https://app.example.com")))
                .is_ok()
        );
        assert!(
            a.check(&headers("mcp.example.com", Some("http://app.example.com")))
                .is_err()
        );
        assert!(
            a.check(&headers("mcp.example.com", Some("http://localhost:6274")))
                .is_ok()
        );
        assert!(
            a.check(&headers("mcp.example.com", Some("https://evil.example")))
                .is_err()
        );
    }
}
