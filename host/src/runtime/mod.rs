//! Endpoints as sandboxed WebAssembly components.
//!
//! One wasmtime [`Engine`] (Cranelift, pooling allocator, epoch interruption
//! driven by one engine-wide ticker) serves every endpoint with the
//! generated component (`plugins/generated`, embedded at build time). Each
//! tool call gets a fresh [`Store`] from a pre-instantiated component, with a
//! memory cap, an epoch deadline plus an async timeout, a stack cap, and WASI
//! limited to clocks, random and stdio (no files, network or environment).
//!
//! Components reach the store only through the host imports in
//! [`host`], which check every call against the endpoint's grants (derived
//! from its config) and its workspace, then call the same `service`
//! functions as the REST API.
//!
//! Compiled code is cached on disk, keyed by the component's digest and the
//! engine's compatibility hash, so a restart does not recompile.

mod host;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::service::endpoints::{Endpoint, Serving};
use crate::service::{Caller, Service, ServiceError};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "generated",
        imports: { default: async },
        exports: { default: async },
    });
}

pub use bindings::mcp_factory::plugin::types::{Annotations, CallError, Tool, ToolResult};

/// The generated component, built from `plugins/generated` by `build.rs`.
pub static GENERATED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/generated.wasm"));

/// Epoch ticker period: the granularity of guest deadlines.
const TICK: Duration = Duration::from_millis(5);

/// Server-wide sandbox limits (per-endpoint `limits` may only lower them).
#[derive(Debug, Clone)]
pub struct Limits {
    pub memory_mb: u32,
    pub timeout: Duration,
    pub max_concurrency: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_mb: 64,
            timeout: Duration::from_secs(10),
            max_concurrency: 64,
        }
    }
}

/// What a host import needs about the call in progress.
pub(crate) struct CallCtx {
    pub service: Service,
    /// The endpoint's own identity and grants (never the client's token).
    pub caller: Caller,
    pub endpoint: Endpoint,
    /// `{"collection": schema}` of the endpoint's collections.
    pub schemas: String,
    pub request_id: String,
}

/// Per-call store data.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    call: CallCtx,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A failure to run a tool, as the doors report it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The component's own protocol error (unknown tool, bad arguments).
    #[error("{0}")]
    Call(String, CallErrorKind),
    /// The component trapped, ran out of memory or time.
    #[error("{0}")]
    Sandbox(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallErrorKind {
    UnknownTool,
    InvalidArguments,
    Failed,
}

/// The engine, the pre-linked generated component, and the limits.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache_dir: PathBuf,
    generated: OnceCell<bindings::GeneratedPre<HostState>>,
    /// Calls running per endpoint (`workspace/slug`), each bounded by its
    /// `max_concurrency`; further calls wait their turn within the deadline.
    running:
        std::sync::Mutex<std::collections::HashMap<String, (u32, Arc<tokio::sync::Semaphore>)>>,
}

fn engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.max_wasm_stack(512 * 1024);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(1000);
    pool.total_memories(1000);
    pool.total_tables(1000);
    pool.max_memory_size(256 << 20);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker; the
    /// generated component is compiled (or loaded from `cache_dir`) on first
    /// use, off the async threads.
    pub fn new(limits: Limits, cache_dir: PathBuf) -> Result<Arc<Runtime>, String> {
        let engine = engine().map_err(|e| format!("wasm engine: {e:#}"))?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        host::link_wasi(&mut linker).map_err(|e| format!("linking WASI: {e:#}"))?;
        bindings::Generated::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| format!("linking host imports: {e:#}"))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| format!("epoch ticker: {e}"))?;
        Ok(Arc::new(Runtime {
            engine,
            linker,
            limits,
            cache_dir,
            generated: OnceCell::new(),
            running: Default::default(),
        }))
    }

    /// Loads the compiled component from the cache or compiles and caches it.
    fn load(
        engine: &Engine,
        cache_dir: &std::path::Path,
        wasm: &[u8],
    ) -> Result<Component, String> {
        let digest = hex::encode(Sha256::digest(wasm));
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        let key = format!("{digest}-{:016x}.cwasm", std::hash::Hasher::finish(&h));
        let path = cache_dir.join(key);
        if path.exists() {
            // SAFETY: files in the cache directory are written only by this
            // function, from `Engine::precompile_component` of the same
            // engine configuration (the key includes its compatibility hash).
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "ignoring a bad compiled-component cache entry")
                }
            }
        }
        let bytes = engine
            .precompile_component(wasm)
            .map_err(|e| format!("compiling the component: {e:#}"))?;
        if std::fs::create_dir_all(cache_dir).is_ok() {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, &bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
        // SAFETY: `bytes` was produced just now by this engine.
        #[allow(unsafe_code)]
        unsafe { Component::deserialize(engine, &bytes) }
            .map_err(|e| format!("loading the component: {e:#}"))
    }

    async fn generated(&self) -> Result<&bindings::GeneratedPre<HostState>, RunError> {
        self.generated
            .get_or_try_init(|| async {
                let (engine, dir) = (self.engine.clone(), self.cache_dir.clone());
                let component =
                    tokio::task::spawn_blocking(move || Runtime::load(&engine, &dir, GENERATED))
                        .await
                        .map_err(|e| RunError::Sandbox(format!("compile task: {e}")))?
                        .map_err(RunError::Sandbox)?;
                let pre = self.linker.instantiate_pre(&component).map_err(|e| {
                    RunError::Sandbox(format!("the component does not fit the host: {e:#}"))
                })?;
                bindings::GeneratedPre::new(pre).map_err(|e| RunError::Sandbox(format!("{e:#}")))
            })
            .await
    }

    fn store(&self, call: CallCtx) -> Store<HostState> {
        let limits = &call.endpoint.config.limits;
        let memory_mb = limits
            .memory_mb
            .map_or(self.limits.memory_mb, |m| m.min(self.limits.memory_mb));
        let state = HostState {
            wasi: host::wasi_ctx(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size((memory_mb as usize) << 20)
                .instances(4)
                .tables(8)
                .memories(2)
                .table_elements(100_000)
                .build(),
            call,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store
    }

    fn timeout(&self, endpoint: &Endpoint) -> Duration {
        let own = endpoint
            .config
            .limits
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.into()));
        own.map_or(self.limits.timeout, |t| t.min(self.limits.timeout))
    }

    /// The endpoint's concurrency gate (re-made when its limit changes).
    fn gate(&self, endpoint: &Endpoint) -> Arc<tokio::sync::Semaphore> {
        let max = endpoint
            .config
            .limits
            .max_concurrency
            .map_or(self.limits.max_concurrency, |m| {
                m.min(self.limits.max_concurrency)
            })
            .max(1);
        let key = format!("{}/{}", endpoint.workspace_id, endpoint.slug);
        let mut map = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map
            .entry(key)
            .or_insert_with(|| (max, Arc::new(tokio::sync::Semaphore::new(max as usize))));
        if entry.0 != max {
            *entry = (max, Arc::new(tokio::sync::Semaphore::new(max as usize)));
        }
        entry.1.clone()
    }

    /// Runs `f` on a fresh instance with the call's deadline.
    async fn with_instance<T>(
        &self,
        call: CallCtx,
        f: impl AsyncFnOnce(&bindings::Generated, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, RunError> {
        let timeout = self.timeout(&call.endpoint);
        let gate = self.gate(&call.endpoint);
        let _slot = tokio::time::timeout(timeout, gate.acquire_owned())
            .await
            .map_err(|_| {
                RunError::Sandbox(format!(
                    "the endpoint is busy: no free slot within {} ms",
                    timeout.as_millis()
                ))
            })?
            .map_err(|_| RunError::Sandbox("the endpoint is shutting down".into()))?;
        let pre = self.generated().await?;
        let mut store = self.store(call);
        store.set_epoch_deadline((timeout.as_millis() / TICK.as_millis()).max(1) as u64 + 1);
        store.epoch_deadline_trap();
        let run = async {
            let instance = pre.instantiate_async(&mut store).await?;
            f(&instance, &mut store).await
        };
        match tokio::time::timeout(timeout + TICK * 4, run).await {
            Err(_) => Err(RunError::Sandbox(format!(
                "the endpoint did not answer within {} ms",
                timeout.as_millis()
            ))),
            Ok(Err(e)) => Err(RunError::Sandbox(describe_trap(&e, timeout))),
            Ok(Ok(v)) => Ok(v),
        }
    }

    pub(crate) async fn list_tools(&self, call: CallCtx) -> Result<Vec<Tool>, RunError> {
        self.with_instance(call, async |g, store| {
            g.mcp_factory_plugin_tool_provider()
                .call_list_tools(store)
                .await
        })
        .await
    }

    pub(crate) async fn call_tool(
        &self,
        call: CallCtx,
        name: &str,
        arguments: &str,
    ) -> Result<ToolResult, RunError> {
        let arguments = arguments.to_string();
        let arguments = &arguments;
        let out = self
            .with_instance(call, async |g, store| {
                g.mcp_factory_plugin_tool_provider()
                    .call_call_tool(store, name, arguments)
                    .await
            })
            .await?;
        out.map_err(|e| match e {
            CallError::UnknownTool(m) => RunError::Call(m, CallErrorKind::UnknownTool),
            CallError::InvalidArguments(m) => RunError::Call(m, CallErrorKind::InvalidArguments),
            CallError::Failed(m) => RunError::Call(m, CallErrorKind::Failed),
        })
    }
}

fn describe_trap(e: &wasmtime::Error, timeout: Duration) -> String {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => format!(
            "the endpoint ran past its {} ms time limit",
            timeout.as_millis()
        ),
        Some(wasmtime::Trap::StackOverflow) => "the endpoint overflowed its stack".into(),
        Some(t) => format!("the endpoint failed: {t}"),
        None => format!("the endpoint failed: {e:#}"),
    }
}

impl Runtime {
    fn call_ctx(service: &Service, serving: Serving) -> CallCtx {
        CallCtx {
            service: service.clone(),
            caller: serving.identity,
            endpoint: serving.endpoint,
            schemas: serving.schemas.to_string(),
            request_id: uuid::Uuid::now_v7().to_string(),
        }
    }

    /// The tools of endpoint `slug` in `ws`, as its component lists them.
    pub async fn endpoint_tools(
        &self,
        service: &Service,
        client: &Caller,
        ws: &str,
        slug: &str,
    ) -> Result<Vec<Tool>, RunError> {
        let serving = service.serving(client, ws, slug)?;
        self.list_tools(Runtime::call_ctx(service, serving)).await
    }

    /// Calls tool `name` of endpoint `slug` with JSON `arguments`.
    pub async fn call_endpoint_tool(
        &self,
        service: &Service,
        client: &Caller,
        ws: &str,
        slug: &str,
        name: &str,
        arguments: &str,
    ) -> Result<ToolResult, RunError> {
        let serving = service.serving(client, ws, slug)?;
        serving.require_call(service, client, name)?;
        self.call_tool(Runtime::call_ctx(service, serving), name, arguments)
            .await
    }
}
