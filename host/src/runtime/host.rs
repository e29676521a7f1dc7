//! Host imports: what a component may ask of the host.
//!
//! Each `store` call is translated into the same typed request the REST API
//! builds (parse first) and handed to `service`, which decides: the call
//! runs as the client's token through the endpoint's scope
//! ([`crate::service::Caller::through`]), so an operation needs both the
//! token's grants and the endpoint's configuration. Nothing here decides
//! who may do what; a refusal comes back as `denied` with service's message.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::bindings::mcp_factory::plugin::{base, context, log, store, types};
use super::{HostState, Layer};
use crate::service::records::{Mark, PatchRecord, Query, UpsertRecord};
use crate::service::relationships::{Direction, UpsertRelationship};
use crate::service::sql::SqlRequest;
use crate::service::{Service, ServiceError};

use types::StoreError;

/// Links only the WASI interfaces a component may use: io, clocks, random,
/// stdio (never a terminal) and the (empty) environment. A component importing the file system
/// or sockets fails to link, naming the import.
pub(super) fn link_wasi(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(linker)?;
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::p2::bindings::cli;
    cli::environment::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    // Rust's std asks whether stdio is a terminal; the answer is always no.
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(linker, HostState::cli)?;
    Ok(())
}

/// No environment, no arguments, no files; stdout and stderr captured for
/// the endpoint's log; randomness capped at `max_random` bytes a call.
pub(super) fn wasi_ctx(
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    max_random: u64,
) -> WasiCtx {
    WasiCtx::builder()
        .stdout(stdout)
        .stderr(stderr)
        .max_random_size(max_random)
        .build()
}

fn to_store_error(e: ServiceError) -> StoreError {
    match e {
        ServiceError::NotFound { message, .. } => StoreError::NotFound(message),
        ServiceError::Validation { message, details } if details.is_null() => {
            StoreError::Invalid(message)
        }
        ServiceError::Validation { message, details } => {
            StoreError::Invalid(format!("{message} {details}"))
        }
        ServiceError::Conflict { message, .. } | ServiceError::Stale(message) => {
            StoreError::Conflict(message)
        }
        ServiceError::Forbidden(m) | ServiceError::Unauthorized(m) => StoreError::Denied(m),
        other => StoreError::Failed(other.to_string()),
    }
}

fn parse<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Invalid(format!("{what}: {e}")))
}

fn out<T: serde::Serialize>(r: Result<T, ServiceError>) -> Result<String, StoreError> {
    let v = r.map_err(to_store_error)?;
    serde_json::to_string(&v).map_err(|e| StoreError::Failed(e.to_string()))
}

impl HostState {
    /// The service, for a store import. Every store import goes through
    /// here before it waits, so here the guest gives back its turn.
    fn svc(&self) -> Service {
        self.turn.release();
        self.call.service.clone()
    }

    fn ws(&self) -> String {
        self.call.endpoint.workspace_id.clone()
    }

    /// A status change of a record.
    async fn mark(&mut self, collection: &str, id: &str, mark: Mark) -> Result<String, StoreError> {
        out(self
            .svc()
            .mark_record(&self.call.caller, &self.ws(), collection, id, mark)
            .await)
    }
}

impl types::Host for HostState {}

impl store::Host for HostState {
    async fn upsert_record(
        &mut self,
        collection: String,
        request: String,
    ) -> Result<String, StoreError> {
        let req: UpsertRecord = parse("request", &request)?;
        out(self
            .svc()
            .upsert_record(&self.call.caller, &self.ws(), &collection, req)
            .await)
    }

    async fn get_record(&mut self, collection: String, id: String) -> Result<String, StoreError> {
        out(self
            .svc()
            .get_record(&self.call.caller, &self.ws(), &collection, &id))
    }

    async fn query_records(
        &mut self,
        collection: String,
        query: String,
    ) -> Result<String, StoreError> {
        let q: Query = parse("query", &query)?;
        out(self
            .svc()
            .query_records(&self.call.caller, &self.ws(), &collection, &q)
            .await)
    }

    async fn update_record(
        &mut self,
        collection: String,
        id: String,
        patch: String,
        version: Option<u64>,
    ) -> Result<String, StoreError> {
        let req = PatchRecord {
            data: parse("patch", &patch)?,
            version,
        };
        out(self
            .svc()
            .patch_record(&self.call.caller, &self.ws(), &collection, &id, req)
            .await)
    }

    async fn delete_record(
        &mut self,
        collection: String,
        id: String,
    ) -> Result<String, StoreError> {
        self.mark(&collection, &id, Mark::Delete).await
    }

    async fn cancel_record(
        &mut self,
        collection: String,
        id: String,
    ) -> Result<String, StoreError> {
        self.mark(&collection, &id, Mark::Cancel).await
    }

    async fn link(&mut self, request: String) -> Result<String, StoreError> {
        let req: UpsertRelationship = parse("request", &request)?;
        out(self
            .svc()
            .upsert_relationship(&self.call.caller, &self.ws(), req)
            .await)
    }

    async fn unlink(&mut self, id: String) -> Result<String, StoreError> {
        out(self
            .svc()
            .delete_relationship(&self.call.caller, &self.ws(), &id)
            .await)
    }

    async fn list_links(
        &mut self,
        collection: String,
        id: String,
        rel_type: Option<String>,
        direction: String,
    ) -> Result<String, StoreError> {
        let direction: Direction = direction.parse().map_err(to_store_error)?;
        let rels = self
            .svc()
            .query_relationships(
                &self.call.caller,
                &self.ws(),
                &collection,
                &id,
                rel_type.as_deref(),
                direction,
            )
            .map_err(to_store_error)?;
        out::<Value>(Ok(json!({"data": rels})))
    }

    async fn batch(&mut self, operations: String) -> Result<String, StoreError> {
        let ops: Vec<Value> = parse("operations", &operations)?;
        out(self.svc().batch(&self.call.caller, &self.ws(), ops).await)
    }

    async fn sql(&mut self, query: String, params: String) -> Result<String, StoreError> {
        let req = SqlRequest {
            query,
            params: parse("params", &params)?,
        };
        out(self
            .svc()
            .sql_query(&self.call.caller, &self.ws(), req)
            .await)
    }
}

impl context::Host for HostState {
    async fn endpoint_config(&mut self) -> String {
        self.call.config_json.to_string()
    }

    async fn collection_schemas(&mut self) -> String {
        self.call.visible_schemas.to_string()
    }

    async fn request_id(&mut self) -> String {
        self.call.request_id.clone()
    }
}

impl log::Host for HostState {
    async fn log(&mut self, level: log::Level, message: String) {
        let endpoint = &self.call.endpoint.slug;
        let level = match level {
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        tracing::debug!(
            endpoint,
            level,
            "component log: {}",
            message.chars().take(256).collect::<String>()
        );
        self.call.log(level, "log", &message);
    }
}

impl base::Host for HostState {
    async fn list_tools(&mut self) -> Vec<types::Tool> {
        if self.layer != Layer::Custom {
            return Vec::new();
        }
        self.turn.release();
        let call = self.call.clone();
        call.runtime
            .list(&call, Layer::Generated, None)
            .await
            .unwrap_or_default()
    }

    async fn call_tool(
        &mut self,
        name: String,
        arguments: String,
    ) -> Result<types::ToolResult, types::CallError> {
        if self.layer != Layer::Custom {
            return Err(types::CallError::Failed(
                "`base` is the generated layer beneath a custom component; the generated component has none".into(),
            ));
        }
        self.turn.release();
        let call = self.call.clone();
        let run = super::job(move |g, store| {
            Box::pin(async move {
                g.mcp_factory_plugin_tool_provider()
                    .call_call_tool(store, &name, &arguments)
                    .await
            })
        });
        let out = call
            .runtime
            .run_on(&call, Layer::Generated, None, run)
            .await;
        match out {
            Ok(r) => r,
            Err(e) => Err(types::CallError::Failed(format!(
                "the generated layer failed: {e}"
            ))),
        }
    }
}
