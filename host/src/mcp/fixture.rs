//! The conformance fixture: the tools the `@modelcontextprotocol/conformance`
//! server suite calls (`test_simple_text`, `test_error_handling`, …), served
//! over the same rmcp Streamable HTTP stack, Host/Origin checks included,
//! as the real MCP routes.
//!
//! It exists only for that suite, which cannot send a token: it is off
//! unless `serve --conformance-fixture` is given, it has no authentication,
//! it touches no data, and the server refuses the flag unless it listens
//! on a loopback address. It lives at `/conformance/mcp`.
//!
//! Not here, by design: resources, prompts, completions, sampling and
//! elicitation. mcp-factory endpoints serve tools only and never call back
//! into the client; `tests/conformance/baseline.yml` (2025-11-25) and
//! `tests/conformance/baseline-2026-07-28.yml` list those scenarios with
//! that reason. The fixture declares prompts and resources with empty lists
//! so that the 2026-07-28 suite's caching and discovery checks have lists
//! to read.
//!
//! For the 2026-07-28 suite it also serves the diagnostic tools
//! `test_missing_capability`, `test_streaming_elicitation`,
//! `test_logging_tool` and `test_trigger_tool_change`, and
//! `subscriptions/listen` (tools list changes, triggered by the last tool).

// The 2025-11-25 logging feature the suite checks is deprecated in newer
// revisions (SEP-2577); the fixture still serves it.
#![allow(deprecated)]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock,
    JsonObject, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam,
    PaginatedRequestParams, ProgressNotificationParam, ReadResourceRequestParams,
    ReadResourceResponse, ResourceContents, ServerCapabilities, ServerConfig,
    SetLevelRequestParams, SubscriptionFilter, Tool,
};
use rmcp::service::{RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// `test_trigger_tool_change` announces a (pretend) tool list change to
/// every open listen stream of the fixture.
static TOOL_CHANGES: LazyLock<broadcast::Sender<()>> = LazyLock::new(|| broadcast::channel(16).0);

/// A 1×1 red PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A WAV file of 8 silent samples.
const WAV: &str = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

fn object(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(o) => Arc::new(o),
        _ => Arc::new(JsonObject::new()),
    }
}

fn no_args() -> Arc<JsonObject> {
    object(json!({"type": "object", "properties": {}}))
}

fn tools() -> Vec<Tool> {
    let mut t: Vec<Tool> = [
        ("test_simple_text", "Returns a simple text block"),
        ("test_image_content", "Returns a 1x1 PNG image"),
        ("test_audio_content", "Returns a short WAV clip"),
        (
            "test_embedded_resource",
            "Returns an embedded text resource",
        ),
        (
            "test_multiple_content_types",
            "Returns text, an image and a resource",
        ),
        (
            "test_tool_with_logging",
            "Sends three log notifications while it runs",
        ),
        (
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100",
        ),
        ("test_error_handling", "Always fails with isError"),
        (
            "test_missing_capability",
            "Needs the client's sampling capability; fails with -32021 without it",
        ),
        (
            "test_streaming_elicitation",
            "Answers on a response stream without asking the client anything",
        ),
        (
            "test_logging_tool",
            "Logs one message, only when the request asks for a log level",
        ),
        (
            "test_trigger_tool_change",
            "Announces a tool list change to open listen streams",
        ),
    ]
    .into_iter()
    .map(|(name, description)| Tool::new(name, description, no_args()))
    .collect();
    t.push(Tool::new(
        "json_schema_2020_12_tool",
        "Tool with JSON Schema 2020-12 features",
        object(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {"address": {"$anchor": "address", "type": "object", "properties": {
                "street": {"type": "string"}, "city": {"type": "string"}}}},
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
            "allOf": [{"anyOf": [{"required": ["name"]}, {"required": ["address"]}]}],
            "if": {"properties": {"name": {"const": "home"}}, "required": ["name"]},
            "then": {"required": ["address"]},
            "else": {},
            "additionalProperties": false
        })),
    ));
    // SEP-2243: `region` is mirrored in the `Mcp-Param-Region` header, which
    // the transport checks against the argument (through `get_tool`).
    t.push(Tool::new(
        "test_custom_header",
        "Echoes its region argument, which clients also send as a header",
        object(json!({
            "type": "object",
            "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
            "required": ["region"]
        })),
    ));
    t
}

/// One handler per session or stateless request.
#[derive(Clone, Default)]
pub struct FixtureMcp {
    /// A listen request's subscription to [`TOOL_CHANGES`], taken before
    /// the acknowledgement goes out, so a change right after it is not
    /// missed.
    changes: super::listen::Pending<()>,
}

/// Whether a log message at `level` may be sent for this request: on
/// 2026-07-28 only when the request's `_meta` asks for a level at or below
/// it; on a 2025-11-25 session always (the session's `logging/setLevel`).
fn may_log(ctx: &RequestContext<RoleServer>, level: LoggingLevel) -> bool {
    if ctx.meta.protocol_version().is_none() {
        return true;
    }
    ctx.meta
        .log_level()
        .is_some_and(|min| level as u8 >= min as u8)
}

async fn log(ctx: &RequestContext<RoleServer>, message: &str) {
    if may_log(ctx, LoggingLevel::Info) {
        let _ = ctx
            .peer
            .notify_logging_message(LoggingMessageNotificationParam::new(
                LoggingLevel::Info,
                json!(message),
            ))
            .await;
    }
}

fn resource() -> ContentBlock {
    ContentBlock::resource(ResourceContents::text(
        "This is an embedded resource content.",
        "test://embedded-resource",
    ))
}

impl ServerHandler for FixtureMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_logging()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(rmcp::model::Implementation::new(
            "mcp-factory-conformance-fixture",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools().into_iter().find(|t| t.name == name)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Err(ErrorData::resource_not_found(
            format!("no resource '{}': the fixture serves none", request.uri),
            Some(json!({ "uri": request.uri })),
        ))
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.changes.put(TOOL_CHANGES.subscribe());
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, ctx: SubscriptionContext) -> Result<(), ErrorData> {
        let Some(mut changes) = self.changes.take() else {
            ctx.cancelled().await;
            return Ok(());
        };
        loop {
            tokio::select! {
                () = ctx.cancelled() => return Ok(()),
                change = changes.recv() => match change {
                    Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        if ctx.accepted().tools_list_changed == Some(true) {
                            let _ = ctx.sink().notify_tool_list_changed().await;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }

    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let text = |s: &str| ContentBlock::text(s.to_string());
        let result = match request.name.as_ref() {
            "test_simple_text" => {
                CallToolResult::success(vec![text("This is a simple text response for testing.")])
            }
            "test_image_content" => {
                CallToolResult::success(vec![ContentBlock::image(PNG, "image/png")])
            }
            "test_audio_content" => {
                CallToolResult::success(vec![ContentBlock::audio(WAV, "audio/wav")])
            }
            "test_embedded_resource" => CallToolResult::success(vec![resource()]),
            "test_multiple_content_types" => CallToolResult::success(vec![
                text("Multiple content types test:"),
                ContentBlock::image(PNG, "image/png"),
                resource(),
            ]),
            "test_error_handling" => CallToolResult::error(vec![text(
                "This tool intentionally returns an error for testing",
            )]),
            "json_schema_2020_12_tool" => CallToolResult::success(vec![text("ok")]),
            "test_tool_with_logging" => {
                for (i, m) in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ]
                .into_iter()
                .enumerate()
                {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    log(&ctx, m).await;
                }
                CallToolResult::success(vec![text("Tool with logging executed successfully")])
            }
            "test_logging_tool" => {
                log(&ctx, "test_logging_tool ran").await;
                CallToolResult::success(vec![text("logged only if a log level was asked for")])
            }
            "test_missing_capability" => {
                if ctx
                    .client_capabilities()
                    .is_none_or(|c| c.sampling.is_none())
                {
                    return Err(ErrorData::missing_required_client_capability(
                        ClientCapabilities::builder().enable_sampling().build(),
                    ));
                }
                CallToolResult::success(vec![text("the client declared sampling")])
            }
            // The product never sends requests to the client (no
            // elicitation, sampling or roots), so this answers plainly.
            "test_streaming_elicitation" => {
                CallToolResult::success(vec![text("answered without asking the client")])
            }
            "test_custom_header" => {
                let region = request
                    .arguments
                    .as_ref()
                    .and_then(|a| a.get("region"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                CallToolResult::success(vec![text(&format!("region: {region}"))])
            }
            "test_trigger_tool_change" => {
                let _ = TOOL_CHANGES.send(());
                CallToolResult::success(vec![text("tool list change announced")])
            }
            "test_tool_with_progress" => {
                let token = ctx.meta.get_progress_token();
                for (i, p) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if let Some(t) = &token {
                        let _ = ctx
                            .peer
                            .notify_progress(
                                ProgressNotificationParam::new(t.clone(), p).with_total(100.0),
                            )
                            .await;
                    }
                }
                CallToolResult::success(vec![text("Tool with progress executed successfully")])
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool '{other}'"),
                    None,
                ));
            }
        };
        Ok(CallToolResponse::Complete(result))
    }
}
