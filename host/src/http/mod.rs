//! The HTTP server: the axum router (REST `/v1` and the MCP routes),
//! request limits, and the listener. Knows `service`, never `store`.

pub mod error;
pub mod extract;
pub mod mcp;
pub mod rest;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;

use crate::service::Service;

/// Default request body limit.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// What every handler gets; one `Arc`, so extracting it per request is
/// one reference count.
#[derive(Clone)]
pub struct AppState(std::sync::Arc<App>);

pub struct App {
    pub service: Service,
    pub runtime: std::sync::Arc<crate::runtime::Runtime>,
    pub max_body: usize,
    pub mcp: crate::mcp::Mcp,
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl AppState {
    /// The state of a server; call inside a tokio runtime (the MCP session
    /// sweeper starts here).
    pub fn new(
        service: Service,
        runtime: std::sync::Arc<crate::runtime::Runtime>,
        max_body: usize,
        mcp: crate::mcp::McpConfig,
    ) -> AppState {
        let mcp = crate::mcp::Mcp::new(
            service.clone(),
            runtime.clone(),
            crate::mcp::McpConfig { max_body, ..mcp },
        );
        AppState(std::sync::Arc::new(App {
            service,
            runtime,
            max_body,
            mcp,
        }))
    }
}

/// The whole application router.
pub fn app(state: AppState) -> Router {
    let max_body = state.max_body;
    Router::new()
        .route("/health", get(rest::health))
        .merge(rest::routes())
        .merge(mcp::routes())
        .fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such route; the REST API lives under /v1, MCP at /mcp, /sse and /e/{slug}/mcp",
            )
            .into_response()
        })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "this route does not accept that HTTP method",
            )
            .into_response()
        })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // Open MCP streams would hold a graceful shutdown forever: end them first.
    let streams = state.mcp.shutdown.clone();
    let shutdown = async move {
        shutdown.await;
        streams.cancel();
    };
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
