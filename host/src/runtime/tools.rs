//! An endpoint's tool set (both layers merged, each tool with its compiled
//! input-schema validator), component world checks, and uploads.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use mcp_factory_guest::config::{EndpointConfig, valid_tool_name};
use serde_json::{Value, json};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::{CallCtx, CallErrorKind, Layer, Pre, RunError, Runtime, Tool, ToolResult, lock};
use crate::schema;
use crate::service::components;
use crate::service::endpoints::{ConfigCheck, Endpoint, Serving};
use crate::service::{Caller, Service, ServiceError};

/// The WIT package components are built against.
const PACKAGE: &str = "mcp-factory:plugin";
const VERSION: &str = "0.1.0";
/// Interfaces of our package a component may import.
const OURS: &[&str] = &["types", "store", "context", "log", "base"];
/// WASI interfaces a component may import (any 0.2.x version): stdio,
/// clocks, random and an empty environment. No files, no sockets, no HTTP.
const WASI: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];
/// Largest component accepted.
pub const MAX_COMPONENT_BYTES: usize = 32 << 20;

/// Checks that a component imports only what the `custom` world offers and
/// exports `tool-provider`, naming the first import outside it.
pub(super) fn check_world(engine: &Engine, component: &Component) -> Result<(), String> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        let allowed = match name.split_once('@') {
            Some((iface, version)) if iface.starts_with(&format!("{PACKAGE}/")) => {
                version == VERSION && OURS.contains(&&iface[PACKAGE.len() + 1..])
            }
            Some((iface, version)) => version.starts_with("0.2.") && WASI.contains(&iface),
            None => false,
        };
        if !allowed {
            return Err(format!(
                "the component imports '{name}', which is outside the {PACKAGE}@{VERSION} `custom` world \
                 (allowed: {PACKAGE}/{{{}}}@{VERSION}, and WASI stdio, clocks and random)",
                OURS.join(",")
            ));
        }
    }
    let export = format!("{PACKAGE}/tool-provider@{VERSION}");
    if !ty.exports(engine).any(|(name, _)| name == export) {
        return Err(format!(
            "the component does not export '{export}'; build it against wit/plugin.wit (world `custom`)"
        ));
    }
    Ok(())
}

/// One tool of an endpoint.
pub struct SetTool {
    pub tool: Tool,
    pub layer: Layer,
    validator: jsonschema::Validator,
}

impl SetTool {
    /// Checks `arguments` (JSON text) against the tool's input schema.
    /// Arguments that are not a JSON object are a protocol error; a schema
    /// violation is a tool error (`is_error`) the agent can correct, listing
    /// each violation with its JSON path and rule.
    pub fn check_arguments(&self, arguments: &str) -> Result<Option<ToolResult>, RunError> {
        let bad = |m: String| RunError::Call(m, CallErrorKind::InvalidArguments);
        let args: Value = serde_json::from_str(arguments)
            .map_err(|e| bad(format!("arguments are not JSON: {e}")))?;
        if !args.is_object() {
            return Err(bad("arguments must be a JSON object".into()));
        }
        let Err(list) = schema::check(&self.validator, &args) else {
            return Ok(None);
        };
        let text: Vec<String> = list
            .iter()
            .map(|v| {
                let at = if v.path.is_empty() { "/" } else { &v.path };
                format!("{at}: {} ({})", v.message, v.rule)
            })
            .collect();
        let content = json!({"error": {
            "code": "VALIDATION_ERROR",
            "message": format!("the arguments of '{}' do not match its input schema: {}", self.tool.name, text.join("; ")),
            "details": schema::Violation::to_json(&list),
        }});
        Ok(Some(ToolResult {
            content: content.to_string(),
            is_error: true,
        }))
    }
}

/// The tools an endpoint serves, for one revision and one set of schemas.
pub struct ToolSet {
    key: (u64, u64),
    pub tools: Vec<SetTool>,
}

impl ToolSet {
    pub fn find(&self, name: &str) -> Result<&SetTool, RunError> {
        self.tools
            .iter()
            .find(|t| t.tool.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.tools.iter().map(|t| t.tool.name.as_str()).collect();
                RunError::Call(
                    format!(
                        "no tool '{name}' in this endpoint; its tools are: {}",
                        names.join(", ")
                    ),
                    CallErrorKind::UnknownTool,
                )
            })
    }
}

/// Checks one layer's tool list: valid names, no duplicates, valid input
/// schemas.
fn check_layer(tools: &[Tool], which: &str) -> Result<Vec<jsonschema::Validator>, String> {
    let mut seen = HashSet::new();
    tools
        .iter()
        .map(|t| {
            if !valid_tool_name(&t.name) {
                return Err(format!(
                    "the {which} component lists a tool named '{}', which does not match ^[a-zA-Z0-9_-]{{1,64}}$",
                    t.name
                ));
            }
            if !seen.insert(t.name.as_str()) {
                return Err(format!(
                    "the {which} component lists tool '{}' more than once",
                    t.name
                ));
            }
            let schema: Value = serde_json::from_str(&t.input_schema).map_err(|e| {
                format!("tool '{}': its input schema is not JSON: {e}", t.name)
            })?;
            if schema.get("type").and_then(Value::as_str) != Some("object") {
                return Err(format!(
                    "tool '{}': its input schema must have \"type\": \"object\"",
                    t.name
                ));
            }
            schema::compile(&schema).map_err(|v| {
                let first = v.first().map(|v| v.message.clone()).unwrap_or_default();
                format!("tool '{}': {first}", t.name)
            })
        })
        .collect()
}

fn fingerprint(text: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// What an upload returns.
pub type Upload = components::Upload;

impl Runtime {
    pub(super) async fn list(
        self: &Arc<Self>,
        call: &Arc<CallCtx>,
        layer: Layer,
        pre: Option<Pre>,
    ) -> Result<Vec<Tool>, RunError> {
        let run = super::job(|g, store| {
            Box::pin(async move {
                g.mcp_factory_plugin_tool_provider()
                    .call_list_tools(store)
                    .await
            })
        });
        self.run_on(call, layer, pre, run).await
    }

    /// Builds the merged tool set of the endpoint in `call`.
    async fn build(self: &Arc<Self>, call: &Arc<CallCtx>) -> Result<Vec<SetTool>, RunError> {
        let call = &Arc::new(call.listing());
        let invalid = |m: String| RunError::Call(m, CallErrorKind::Failed);
        let generated = self.list(call, Layer::Generated, None).await?;
        let checks = check_layer(&generated, "generated").map_err(invalid)?;
        let mut set: Vec<SetTool> = generated
            .into_iter()
            .zip(checks)
            .map(|(tool, validator)| SetTool {
                tool,
                layer: Layer::Generated,
                validator,
            })
            .collect();
        if call.endpoint.config.component.is_some() {
            let custom = self.list(call, Layer::Custom, None).await?;
            let checks = check_layer(&custom, "custom").map_err(invalid)?;
            for (tool, validator) in custom.into_iter().zip(checks) {
                let own = SetTool {
                    tool,
                    layer: Layer::Custom,
                    validator,
                };
                match set.iter_mut().find(|t| t.tool.name == own.tool.name) {
                    Some(shadowed) => *shadowed = own,
                    None => set.push(own),
                }
            }
        }
        Ok(set)
    }

    /// The endpoint's tool set, built once per revision and schemas.
    pub(super) async fn tool_set(
        self: &Arc<Self>,
        call: &Arc<CallCtx>,
    ) -> Result<Arc<ToolSet>, RunError> {
        // `created_at` tells an endpoint made anew (same name, revision
        // numbers starting over) from the one this set was built for.
        let key = (
            call.endpoint.revision,
            fingerprint(&call.schemas) ^ fingerprint(&call.endpoint.created_at).rotate_left(1),
        );
        if let Some(set) = lock(&call.entry.tool_set).as_ref().filter(|s| s.key == key) {
            return Ok(set.clone());
        }
        let set = Arc::new(ToolSet {
            key,
            tools: self.build(call).await?,
        });
        let mut cached = lock(&call.entry.tool_set);
        // Keep the newer revision if another call built one meanwhile.
        match &*cached {
            Some(other) if other.key.0 > key.0 => {}
            _ => *cached = Some(set.clone()),
        }
        Ok(set)
    }

    /// Checks a candidate endpoint revision before it is stored: its custom
    /// component loads, and both layers list valid, distinct tools with
    /// valid input schemas for this config.
    async fn check_candidate(
        self: &Arc<Self>,
        service: &Service,
        caller: &Caller,
        serving: Serving,
    ) -> Result<(), ServiceError> {
        let digest = serving
            .endpoint
            .config
            .component
            .clone()
            .unwrap_or_default();
        let call = self.call_ctx(service, caller, Arc::new(serving), false);
        self.call(&call, async || self.build(&call).await.map(drop))
            .await
            .map_err(|e| match e {
                RunError::Call(m, _) | RunError::Sandbox(m) | RunError::Load(m) => {
                    ServiceError::invalid(format!("'component' {digest}: {m}"))
                }
                RunError::Service(s) => s,
            })
    }

    /// Validates and stores a custom component for the family of `ws`:
    /// it must compile, import only the `custom` world and list valid,
    /// distinct tools. Compiled code is cached for the endpoints that use it.
    pub async fn upload(
        self: &Arc<Self>,
        service: &Service,
        caller: &Caller,
        ws: &str,
        wasm: Vec<u8>,
    ) -> Result<Upload, RunError> {
        let refuse = |m: String| RunError::Service(crate::service::ServiceError::invalid(m));
        let digest = components::digest(&wasm);
        service.require_upload(caller, ws, &digest, wasm.len() as u64)?;
        if wasm.len() > MAX_COMPONENT_BYTES {
            return Err(refuse(format!(
                "the component is {} bytes; the limit is {MAX_COMPONENT_BYTES}",
                wasm.len()
            )));
        }
        let wasm = Arc::new(wasm);
        let pre = match self.prepare(wasm.clone()).await {
            Ok(p) => p,
            Err(RunError::Call(m, _) | RunError::Sandbox(m) | RunError::Load(m)) => {
                return Err(refuse(m));
            }
            Err(e) => return Err(e),
        };
        // List its tools with an empty config and no grants.
        let probe = Arc::new(CallCtx {
            runtime: self.clone(),
            service: service.clone(),
            caller: Caller::new("upload", "component upload", Vec::new()),
            endpoint: Arc::new(Endpoint {
                slug: "upload".into(),
                workspace_id: ws.to_string(),
                revision: 0,
                config: EndpointConfig::default(),
                tools: Vec::new(),
                created_at: String::new(),
                updated_at: String::new(),
            }),
            config_json: Arc::from("{}"),
            schemas: Arc::from("{}"),
            visible_schemas: Arc::from("{}"),
            request_id: uuid::Uuid::now_v7().to_string(),
            deadline: Instant::now() + self.limits.timeout,
            // Its own gate and log: the probe is no endpoint.
            entry: super::Entry::detached(1),
        });
        let tools = self
            .list(&probe, Layer::Custom, Some(pre.clone()))
            .await
            .map_err(|e| refuse(format!("listing its tools failed: {e}")))?;
        check_layer(&tools, "uploaded").map_err(refuse)?;
        let names = tools.into_iter().map(|t| t.name).collect();
        let up = service
            .upload_component(caller, ws, Arc::unwrap_or_clone(wasm), names)
            .await?;
        let cell = lock(&self.custom).entry(digest).or_default().clone();
        let _ = cell.set(pre);
        Ok(up)
    }
}

/// The runtime's side of [`ConfigCheck`]: every endpoint upsert, from any
/// door, runs it through service before the revision is published.
pub struct Checker(pub Arc<Runtime>);

impl ConfigCheck for Checker {
    fn check<'a>(
        &'a self,
        service: &'a Service,
        caller: &'a Caller,
        serving: Serving,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ServiceError>> + Send + 'a>>
    {
        Box::pin(self.0.check_candidate(service, caller, serving))
    }
}
