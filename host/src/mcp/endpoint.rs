//! The endpoint MCP server (`/e/{slug}/mcp`): the tools of the endpoint's
//! live revision, run in its sandbox by the runtime.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, JsonObject, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ServerConfig, SubscriptionFilter, Tool, ToolAnnotations,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Value, json};

use super::listen::{self, Listens, Pending};
use super::{McpCaller, Target};
use crate::runtime::{self, CallErrorKind, RunError, Runtime};
use crate::service::Service;
use crate::service::endpoints::Serving;

/// One per session (or per stateless request); the caller comes with each
/// request.
#[derive(Clone)]
pub struct EndpointMcp {
    service: Service,
    runtime: Arc<Runtime>,
    /// Without it (legacy SSE) `subscriptions/listen` is not offered.
    listens: Option<Listens>,
    pending: Pending,
}

impl EndpointMcp {
    pub fn new(service: Service, runtime: Arc<Runtime>) -> EndpointMcp {
        EndpointMcp {
            service,
            runtime,
            listens: None,
            pending: Pending::default(),
        }
    }

    /// Serves `subscriptions/listen` (2026-07-28).
    pub fn with_listens(mut self, listens: Listens) -> EndpointMcp {
        self.listens = Some(listens);
        self
    }
}

/// The endpoint revision a request is served by.
fn serving_of(c: &McpCaller) -> Result<Arc<Serving>, ErrorData> {
    match (&c.target, &c.serving) {
        (Target::Endpoint { .. }, Some(s)) => Ok(s.clone()),
        _ => Err(ErrorData::internal_error(
            "an endpoint handler was reached without a resolved endpoint",
            None,
        )),
    }
}

/// A component's tool as MCP lists it.
pub(crate) fn mcp_tool(t: runtime::Tool) -> Tool {
    let schema = match serde_json::from_str::<Value>(&t.input_schema) {
        Ok(Value::Object(o)) => o,
        _ => JsonObject::from_iter([("type".to_string(), json!("object"))]),
    };
    let a = t.annotations;
    Tool::new(t.name, t.description, Arc::new(schema))
        .with_raw_output_schema(super::object_output_schema())
        .with_annotations(
            ToolAnnotations::new()
                .read_only(a.read_only)
                .destructive(a.destructive)
                .idempotent(a.idempotent)
                .open_world(false),
        )
}

/// A runtime failure as MCP sees it: unknown tools are protocol errors;
/// everything the agent can act on is an `isError` result.
fn run_error(e: RunError) -> Result<CallToolResult, ErrorData> {
    match e {
        RunError::Call(m, CallErrorKind::UnknownTool) => Err(ErrorData::invalid_params(m, None)),
        RunError::Call(m, CallErrorKind::InvalidArguments) => {
            Ok(super::error_content("INVALID_ARGUMENTS", &m, None))
        }
        RunError::Call(m, CallErrorKind::Failed) | RunError::Sandbox(m) | RunError::Load(m) => {
            Ok(super::error_content("ENDPOINT_ERROR", &m, None))
        }
        RunError::Service(s) => super::error_result(&s),
    }
}

/// Tool `name` of the endpoint `c` is served by, called with the JSON
/// object `args`: what both the rmcp handler and the fast path
/// ([`super::fast`]) answer to `tools/call`.
pub(crate) async fn call_result(
    service: &Service,
    runtime: &Arc<Runtime>,
    c: &McpCaller,
    name: &str,
    args: &str,
) -> Result<CallToolResult, ErrorData> {
    let serving = serving_of(c)?;
    match runtime
        .call_serving(service, &c.caller, serving, name, args)
        .await
    {
        Ok(r) => {
            let value =
                serde_json::from_str::<Value>(&r.content).unwrap_or(Value::String(r.content));
            Ok(super::json_result(value, r.is_error))
        }
        Err(e) => run_error(e),
    }
}

impl ServerHandler for EndpointMcp {
    fn get_info(&self) -> ServerConfig {
        super::server_info(
            "mcp-factory-endpoint",
            "Tools generated for this endpoint from its collections. Each result is JSON \
             (structuredContent); a result with isError explains what to change.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let c = super::request_caller(&ctx)?;
        let tools = self
            .runtime
            .serving_tools(&self.service, &c.caller, serving_of(&c)?)
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ListToolsResult::with_all_items(
            tools.into_iter().map(mcp_tool).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let c = super::request_caller(&ctx)?;
        let args = Value::Object(request.arguments.unwrap_or_default()).to_string();
        let result = call_result(&self.service, &self.runtime, &c, &request.name, &args).await?;
        Ok(CallToolResponse::Complete(result))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        super::unserved_list(&ctx, "prompts/list")
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        super::unserved_list(&ctx, "resources/list")
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        super::unserved_list(&ctx, "resources/templates/list")
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.listens.as_ref()?;
        self.pending.put(self.service.endpoint_changes());
        Some(listen::accepted(requested, &self.get_info().capabilities))
    }

    /// Tells a 2026-07-28 client on its listen stream when the endpoint's
    /// tools change: upsert, rollback, promotion, a schema change of one of
    /// its collections, deletion (after which the stream ends).
    async fn listen(&self, ctx: SubscriptionContext) -> Result<(), ErrorData> {
        let Some(listens) = &self.listens else {
            return Ok(());
        };
        let c = super::caller_of(&ctx.request_context().extensions)?;
        let Target::Endpoint { slug, .. } = &c.target else {
            return Err(ErrorData::internal_error(
                "an endpoint listen was reached without an endpoint",
                None,
            ));
        };
        let changes = self
            .pending
            .take()
            .unwrap_or_else(|| self.service.endpoint_changes());
        // A change committed between authentication and the subscription
        // above: compare what the request was resolved to with what is
        // served now.
        let before = serving_of(&c)?;
        let stale = match self.service.serving_for_route(&c.caller, slug) {
            Ok(now) => {
                now.endpoint.revision != before.endpoint.revision || now.schemas != before.schemas
            }
            Err(_) => true,
        };
        let gone = || self.service.serving_for_route(&c.caller, slug).is_err();
        listen::run(ctx, listens, &c, Some(changes), stale, gone).await
    }

    /// Watches the endpoint for the session's lifetime and tells the client
    /// when its tools change (`notifications/tools/list_changed`).
    async fn on_initialized(&self, ctx: NotificationContext<RoleServer>) {
        let Some(McpCaller {
            target: Target::Endpoint { workspace, slug },
            ..
        }) = super::notification_caller(&ctx)
        else {
            return;
        };
        let mut changes = self.service.endpoint_changes();
        let peer = ctx.peer;
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            let mut check = tokio::time::interval(Duration::from_secs(5));
            loop {
                let changed = tokio::select! {
                    r = changes.recv() => match r {
                        Ok(ch) => listen::touches(&ch, &workspace, &slug),
                        Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => break,
                    },
                    _ = check.tick() => false,
                };
                if peer.is_transport_closed() {
                    break;
                }
                if changed && peer.notify_tool_list_changed().await.is_err() {
                    break;
                }
            }
        });
    }
}
