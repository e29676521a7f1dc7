//! Endpoints as sandboxed WebAssembly components.
//!
//! One wasmtime [`Engine`] (Cranelift, pooling allocator, epoch interruption
//! driven by one engine-wide ticker) serves every endpoint. An endpoint has
//! two layers: the **generated** component (`plugins/generated`, embedded at
//! build time) and, optionally, a **custom** component the user uploaded
//! (named by digest in the config). The custom layer's tools shadow
//! generated tools of the same name; its code reaches the generated
//! behaviour through the `base` import.
//!
//! Each call gets a fresh [`Store`] from a cached `InstancePre`, with a
//! memory cap (denials recorded, so "out of memory" is reported as such),
//! an epoch deadline plus an async timeout, a stack cap, table and instance
//! caps, hostcall fuel, a resource-table cap, and WASI limited to clocks,
//! capped random and captured stdio (no files, network or environment).
//! Arguments are checked against the tool's input schema before the
//! component runs. Components reach the store only through the host imports
//! in [`host`], which check every call against the endpoint's grants and
//! workspace, then call the same `service` functions as the REST API.
//!
//! Compiled code is cached on disk, keyed by the component's digest and the
//! engine's compatibility hash, so a restart does not recompile.
//!
//! Hot swap: a call reads its endpoint from one store snapshot and holds it
//! (and its tool set) until it ends, so upserts, rollbacks and promotions
//! never disturb calls in flight; the next call sees the new revision.

mod host;
pub mod logs;
mod registry;
mod schedule;
mod tools;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::service::endpoints::{Endpoint, Serving};
use crate::service::{Caller, Service, ServiceError};
use registry::{Entry, Registry, Slot};
pub use schedule::Schedule;
pub use tools::{Checker, MAX_COMPONENT_BYTES, ToolSet, Upload};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "custom",
        imports: { default: async },
        exports: { default: async },
    });
}

pub use bindings::mcp_factory::plugin::types::{Annotations, CallError, Tool, ToolResult};

type Pre = bindings::CustomPre<HostState>;

/// What a call does with a fresh instance: owned (`'static`), because the
/// call may run on a pool thread while the caller waits.
type Job<T> = Box<
    dyn for<'a> FnOnce(
            &'a bindings::Custom,
            &'a mut Store<HostState>,
        ) -> Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send + 'a>>
        + Send,
>;

/// Makes a [`Job`] (a function, so the closure gets the higher-ranked
/// signature).
fn job<T, F>(f: F) -> Job<T>
where
    F: for<'a> FnOnce(
            &'a bindings::Custom,
            &'a mut Store<HostState>,
        ) -> Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send + 'a>>
        + Send
        + 'static,
{
    Box::new(f)
}

/// The generated component, built from `plugins/generated` by `build.rs`.
pub static GENERATED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/generated.wasm"));

/// Epoch ticker period: the granularity of guest deadlines.
const TICK: Duration = Duration::from_millis(5);
/// Most bytes a guest may pass to the host in one call.
const HOSTCALL_FUEL: usize = 16 << 20;
/// Most bytes of randomness a guest may ask for at once.
const MAX_RANDOM: u64 = 1 << 20;
/// Most host resources (streams, pollables…) a call may hold.
const MAX_RESOURCES: usize = 10_000;
/// Most bytes a call may print to stdout or stderr (each).
const MAX_OUTPUT: usize = 64 << 10;

/// Server-wide sandbox limits (per-endpoint `limits` may only lower them).
#[derive(Debug, Clone)]
pub struct Limits {
    pub memory_mb: u32,
    pub timeout: Duration,
    pub max_concurrency: u32,
    /// Largest tool result, in bytes.
    pub max_result_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_mb: 64,
            timeout: Duration::from_secs(10),
            max_concurrency: 64,
            max_result_bytes: 8 << 20,
        }
    }
}

/// The layer of an endpoint a tool comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Generated,
    Custom,
}

/// What a host import needs about the call in progress (shared by the
/// custom layer's store and a nested generated one for `base`).
pub(crate) struct CallCtx {
    pub runtime: Arc<Runtime>,
    pub service: Service,
    /// The client's token acting through the endpoint's scope: every store
    /// call needs both (service decides).
    pub caller: Caller,
    pub endpoint: Arc<Endpoint>,
    /// The endpoint config as JSON (what `context.endpoint-config` returns).
    pub config_json: Arc<str>,
    /// `{"collection": schema}` of the endpoint's collections (what its tool
    /// set is built from).
    pub schemas: Arc<str>,
    /// What `context.collection-schemas` answers during a tool call: the
    /// schemas of the collections the client's token reaches.
    pub visible_schemas: Arc<str>,
    pub request_id: String,
    pub deadline: Instant,
    /// What the runtime keeps for this endpoint (gate, tool set, log): the
    /// call holds it to the end, even if the endpoint is deleted meanwhile.
    entry: Arc<Entry>,
}

impl CallCtx {
    /// The same call, for listing tools: the component sees every schema
    /// of the endpoint, and acts for nobody (the tool set is shared by every
    /// client, so no client's grants may shape it; a store call while
    /// listing is refused). What a client may see is filtered afterwards.
    fn listing(&self) -> CallCtx {
        let nobody = Caller::new("listing", "tool listing (no token)", Vec::new());
        CallCtx {
            runtime: self.runtime.clone(),
            service: self.service.clone(),
            caller: match &self.caller.endpoint {
                Some(scope) => nobody.through(scope.clone()),
                None => nobody,
            },
            endpoint: self.endpoint.clone(),
            config_json: self.config_json.clone(),
            schemas: self.schemas.clone(),
            visible_schemas: self.schemas.clone(),
            request_id: self.request_id.clone(),
            deadline: self.deadline,
            entry: self.entry.clone(),
        }
    }

    fn log(&self, level: &'static str, source: &'static str, message: &str) {
        self.entry
            .log
            .push(level, source, &self.request_id, message);
    }
}

/// [`StoreLimits`] that remembers a refused memory growth, so the trap that
/// follows (Rust aborts on allocation failure) is reported as what it is.
struct Limiter {
    inner: StoreLimits,
    memory_denied: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        self.memory_denied |= !ok;
        Ok(ok)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_denied = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// Per-call store data.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    call: Arc<CallCtx>,
    layer: Layer,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// The turn the guest holds while it runs long (see `schedule::Turns`).
    turn: schedule::TurnSlot,
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
    /// A protocol error: unknown tool, bad arguments, or the component's own.
    #[error("{0}")]
    Call(String, CallErrorKind),
    /// The component trapped, ran out of memory or time, or broke a limit.
    #[error("{0}")]
    Sandbox(String),
    /// The component does not compile, or does not fit the `custom` world.
    #[error("{0}")]
    Load(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallErrorKind {
    UnknownTool,
    InvalidArguments,
    Failed,
}

/// Components compiled and loaded since start.
#[derive(Debug, Default)]
pub struct Stats {
    /// Compiled from wasm (a cache miss).
    pub compiled: AtomicU64,
    /// Loaded from the on-disk cache.
    pub cache_hits: AtomicU64,
}

/// The engine, the linker, the compiled components and the limits.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache_dir: PathBuf,
    generated: OnceCell<Pre>,
    /// Custom components by digest, compiled once each; dropped when no
    /// endpoint uses them any more (reloaded from the disk cache if one
    /// does again).
    custom: Mutex<HashMap<String, Arc<OnceCell<Pre>>>>,
    /// Per endpoint: its concurrency gate (calls beyond `max_concurrency`
    /// wait their turn within the deadline), tool set, config JSON and log.
    endpoints: Registry,
    /// Where guest code runs.
    guests: schedule::Guests,
    pub stats: Stats,
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
    // Reset the first 512 KiB of a finished call's memory with memset and
    // keep it mapped, instead of returning it to the kernel: the next call's
    // instance then takes no page faults there (on this VM that halved the
    // cost of a call; see docs/benchmarks.md).
    pool.linear_memory_keep_resident(512 << 10);
    pool.table_keep_resident(64 << 10);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker; components
    /// are compiled (or loaded from `cache_dir`) on first use, off the async
    /// threads — see [`Runtime::warm_up`].
    pub fn new(limits: Limits, cache_dir: PathBuf) -> Result<Arc<Runtime>, String> {
        Runtime::with_schedule(limits, cache_dir, Schedule::from_env())
    }

    /// [`Runtime::new`], with guests run as `schedule` says.
    pub fn with_schedule(
        limits: Limits,
        cache_dir: PathBuf,
        schedule: Schedule,
    ) -> Result<Arc<Runtime>, String> {
        let guests = schedule::Guests::new(schedule)?;
        let engine = engine().map_err(|e| format!("wasm engine: {e:#}"))?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        host::link_wasi(&mut linker).map_err(|e| format!("linking WASI: {e:#}"))?;
        bindings::Custom::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
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
            custom: Default::default(),
            endpoints: Default::default(),
            guests,
            stats: Default::default(),
        }))
    }

    /// Loads the compiled component from the cache or compiles and caches it.
    fn load(&self, wasm: &[u8]) -> Result<Component, String> {
        let digest = crate::service::components::digest(wasm);
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&self.engine.precompile_compatibility_hash(), &mut h);
        let hex = digest.trim_start_matches("sha256:");
        let key = format!("{hex}-{:016x}.cwasm", std::hash::Hasher::finish(&h));
        let path = self.cache_dir.join(key);
        let started = Instant::now();
        if path.exists() {
            // SAFETY: files in the cache directory are written only by this
            // function, from `Engine::precompile_component` of the same
            // engine configuration (the key includes its compatibility hash).
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(c) => {
                    self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%digest, ms = started.elapsed().as_secs_f64() * 1e3, "loaded a compiled component from the cache");
                    return Ok(c);
                }
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "ignoring a bad compiled-component cache entry")
                }
            }
        }
        let bytes = self
            .engine
            .precompile_component(wasm)
            .map_err(|e| format!("not a valid component: {e:#}"))?;
        self.stats.compiled.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%digest, ms = started.elapsed().as_secs_f64() * 1e3, "compiled a component");
        if std::fs::create_dir_all(&self.cache_dir).is_ok() {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, &bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
        // SAFETY: `bytes` was produced just now by this engine.
        #[allow(unsafe_code)]
        unsafe { Component::deserialize(&self.engine, &bytes) }
            .map_err(|e| format!("loading the component: {e:#}"))
    }

    /// Compiles (or loads) `wasm` off the async threads, checks it targets
    /// the `custom` world and pre-instantiates it.
    async fn prepare(self: &Arc<Self>, wasm: Arc<Vec<u8>>) -> Result<Pre, RunError> {
        let rt = self.clone();
        let component = tokio::task::spawn_blocking(move || rt.load(&wasm))
            .await
            .map_err(|e| RunError::Sandbox(format!("compile task: {e}")))?
            .map_err(RunError::Load)?;
        tools::check_world(&self.engine, &component).map_err(RunError::Load)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| RunError::Load(format!("the component does not fit the host: {e:#}")))?;
        bindings::CustomPre::new(pre).map_err(|e| {
            RunError::Load(format!(
                "the component does not export tool-provider: {e:#}"
            ))
        })
    }

    async fn generated(self: &Arc<Self>) -> Result<&Pre, RunError> {
        self.generated
            .get_or_try_init(|| async {
                self.prepare(Arc::new(GENERATED.to_vec()))
                    .await
                    .map_err(|e| RunError::Sandbox(format!("the generated component: {e}")))
            })
            .await
    }

    async fn custom(self: &Arc<Self>, service: &Service, digest: &str) -> Result<Pre, RunError> {
        let cell = lock(&self.custom)
            .entry(digest.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            let wasm = service.component_bytes(digest)?;
            self.prepare(Arc::new(wasm)).await
        })
        .await
        .cloned()
    }

    async fn pre(self: &Arc<Self>, call: &CallCtx, layer: Layer) -> Result<Pre, RunError> {
        match (layer, &call.endpoint.config.component) {
            (Layer::Custom, Some(d)) => self.custom(&call.service, d).await,
            _ => self.generated().await.cloned(),
        }
    }

    /// Compiles (or loads from the cache) the generated component and the
    /// custom components of every endpoint, so first calls are not slow.
    pub async fn warm_up(self: &Arc<Self>, service: &Service) {
        if let Err(e) = self.generated().await {
            tracing::error!(error = %e, "the generated component does not load");
        }
        for digest in service.endpoint_components() {
            if let Err(e) = self.custom(service, &digest).await {
                tracing::warn!(%digest, error = %e, "a custom component does not load");
            }
        }
    }

    fn memory_mb(&self, endpoint: &Endpoint) -> u32 {
        let own = endpoint.config.limits.memory_mb;
        own.map_or(self.limits.memory_mb, |m| m.min(self.limits.memory_mb))
    }

    fn store(&self, call: Arc<CallCtx>, layer: Layer) -> Store<HostState> {
        let memory_mb = self.memory_mb(&call.endpoint);
        let (stdout, stderr) = (
            MemoryOutputPipe::new(MAX_OUTPUT),
            MemoryOutputPipe::new(MAX_OUTPUT),
        );
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let state = HostState {
            turn: schedule::TurnSlot::default(),
            wasi: host::wasi_ctx(stdout.clone(), stderr.clone(), MAX_RANDOM),
            table,
            limiter: Limiter {
                inner: StoreLimitsBuilder::new()
                    .memory_size((memory_mb as usize) << 20)
                    .instances(16)
                    .tables(16)
                    .memories(4)
                    .table_elements(100_000)
                    .build(),
                memory_denied: false,
            },
            call,
            layer,
            stdout,
            stderr,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(HOSTCALL_FUEL);
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

    /// The endpoint's `max_concurrency`, within the server's.
    fn max_concurrency(&self, endpoint: &Endpoint) -> u32 {
        endpoint
            .config
            .limits
            .max_concurrency
            .map_or(self.limits.max_concurrency, |m| {
                m.min(self.limits.max_concurrency)
            })
            .max(1)
    }

    /// Runs `f` on a fresh instance of `layer`, within the call's deadline,
    /// where guests run (never on an async worker: see [`schedule`]).
    /// What the guest printed goes to the endpoint's log.
    /// `pre` overrides the endpoint's component for `layer`.
    async fn run_on<T: Send + 'static>(
        self: &Arc<Self>,
        call: &Arc<CallCtx>,
        layer: Layer,
        pre: Option<Pre>,
        f: Job<T>,
    ) -> Result<T, RunError> {
        let pre = match pre {
            Some(p) => p,
            None => self.pre(call, layer).await?,
        };
        let mut store = self.store(call.clone(), layer);
        let (schedule, deadline) = (self.guests.schedule, call.deadline);
        let rt = self.clone();
        let workspace = call.endpoint.workspace_id.clone();
        // A nested call shares its caller's flag and turn.
        let caller = schedule::in_guest();
        let nested = caller.is_some();
        let flags = caller.unwrap_or_default();
        let flag = flags.clone();
        let run = schedule::guest_call(flags.clone(), async move {
            // Measured from when the call gets its thread: the deadline is
            // the call's, whatever it waited for.
            let left = deadline.saturating_duration_since(Instant::now());
            let turns = (!nested).then_some((&rt.guests.turns, workspace.as_str()));
            schedule::arm(schedule, turns, flag, &mut store, deadline, left);
            let out = tokio::time::timeout(left + TICK * 4, async {
                let instance = pre.instantiate_async(&mut store).await?;
                f(&instance, &mut store).await
            })
            .await;
            (out, store)
        });
        let (out, store) = self
            .guests
            .run(run, (!nested).then_some(flags))
            .await
            .map_err(RunError::Sandbox)?;
        for (pipe, source, level) in [
            (&store.data().stdout, "stdout", "info"),
            (&store.data().stderr, "stderr", "warn"),
        ] {
            let text = pipe.contents();
            for line in String::from_utf8_lossy(&text).lines() {
                call.log(level, source, line);
            }
        }
        let timeout = self.timeout(&call.endpoint);
        match out {
            // The safety net (the guest waited in the host, or a loaded
            // machine gave its background thread no CPU to reach its next
            // tick): the same limit, so the same words as the trap's.
            Err(_) => Err(RunError::Sandbox(format!(
                "the endpoint ran past its {} ms time limit",
                timeout.as_millis()
            ))),
            Ok(Err(e)) => {
                let memory = store
                    .data()
                    .limiter
                    .memory_denied
                    .then(|| self.memory_mb(&call.endpoint));
                Err(RunError::Sandbox(describe_trap(&e, timeout, memory)))
            }
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Runs a whole call (gate, deadline, logging of failures).
    async fn call<T>(
        self: &Arc<Self>,
        call: &Arc<CallCtx>,
        work: impl AsyncFnOnce() -> Result<T, RunError>,
    ) -> Result<T, RunError> {
        let timeout = self.timeout(&call.endpoint);
        let gate = &call.entry.gate;
        // A free slot is taken without a timer; otherwise wait, bounded.
        let permit = match gate.try_acquire() {
            Some(p) => p,
            None => {
                // Said in the log: it explains a slow call, and shows the cap
                // holding (tests/all/limits_runtime.rs).
                call.log(
                    "info",
                    "host",
                    &format!(
                        "all {} slots of this endpoint are busy; the call waits up to {} ms for one",
                        gate.max(),
                        timeout.as_millis()
                    ),
                );
                tokio::time::timeout(timeout, gate.acquire())
                    .await
                    .map_err(|_| {
                        RunError::Sandbox(format!(
                            "the endpoint is busy: no free slot within {} ms",
                            timeout.as_millis()
                        ))
                    })?
                    .ok_or_else(|| RunError::Sandbox("the endpoint is shutting down".into()))?
            }
        };
        let _slot = Slot::new(call.entry.clone(), permit);
        let out = work().await;
        if let Err(RunError::Sandbox(m)) = &out {
            call.log("error", "host", m);
        }
        out
    }

    /// The endpoint config as JSON, serialized once per stored revision (in
    /// the endpoint's entry, which is for one incarnation of its name).
    fn config_json(&self, entry: &Entry, e: &Endpoint, stored: bool) -> Arc<str> {
        let fresh = || Arc::<str>::from(serde_json::to_string(&e.config).unwrap_or_default());
        if !stored {
            return fresh();
        }
        let mut cached = lock(&entry.config);
        match &*cached {
            Some((rev, json)) if *rev == e.revision => json.clone(),
            _ => {
                let json = fresh();
                *cached = Some((e.revision, json.clone()));
                json
            }
        }
    }

    /// The newest `limit` lines of an endpoint's log.
    pub fn log_tail(&self, ws: &str, slug: &str, limit: usize) -> Vec<logs::Line> {
        self.endpoints
            .get(ws, slug)
            .map(|e| e.log.tail(limit))
            .unwrap_or_default()
    }

    /// How many endpoints the runtime keeps state for.
    pub fn endpoints_kept(&self) -> usize {
        self.endpoints.len()
    }

    /// How many compiled custom components the runtime keeps.
    pub fn components_kept(&self) -> usize {
        lock(&self.custom).len()
    }

    /// Drops what the runtime keeps for an endpoint that is gone (its tool
    /// set, config, concurrency gate and log), so an endpoint of the same
    /// name made later starts clean, and the compiled components no
    /// endpoint uses any more.
    pub fn forget_endpoint(&self, service: &Service, ws: &str, slug: &str) {
        self.endpoints.forget(ws, slug);
        self.forget_unused_components(service);
    }

    fn forget_unused_components(&self, service: &Service) {
        let used: std::collections::HashSet<String> =
            service.endpoint_components().into_iter().collect();
        // A call holding a component keeps its own handle to it.
        lock(&self.custom).retain(|digest, _| used.contains(digest));
    }

    /// After missed changes: keeps only the entries of endpoints that still
    /// exist as the same incarnation (the rest is rebuilt on demand).
    fn reconcile(&self, service: &Service) {
        let sys = Caller::system();
        self.endpoints.retain(|ws, slug, created| {
            service
                .serving(&sys, ws, slug)
                .is_ok_and(|s| s.endpoint.created_at == created)
        });
        self.forget_unused_components(service);
    }

    /// Follows the service's endpoint changes and forgets deleted
    /// endpoints (caches are invalidated by change events, not by living in
    /// the writer's process).
    pub fn watch(self: &Arc<Self>, service: &Service) {
        let mut changes = service.endpoint_changes();
        let rt = Arc::downgrade(self);
        let service = service.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match changes.recv().await {
                    Ok(c) if c.revision.is_none() => match rt.upgrade() {
                        Some(rt) => rt.forget_endpoint(&service, &c.workspace_id, &c.slug),
                        None => break,
                    },
                    Err(RecvError::Lagged(_)) => match rt.upgrade() {
                        Some(rt) => rt.reconcile(&service),
                        None => break,
                    },
                    Ok(_) => {}
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }

    /// `stored`: the endpoint was read from the store (not a candidate).
    fn call_ctx(
        self: &Arc<Self>,
        service: &Service,
        client: &Caller,
        serving: Arc<Serving>,
        stored: bool,
    ) -> Arc<CallCtx> {
        let timeout = self.timeout(&serving.endpoint);
        let max = self.max_concurrency(&serving.endpoint);
        // A candidate revision is checked on its own entry: it is not
        // published yet, so it must not resize the live gate or log there.
        let entry = match stored {
            true => self.endpoints.entry(&serving.endpoint, max),
            false => Entry::detached(max),
        };
        let schemas = serving.schemas_json.clone();
        let ws = &serving.scope.workspace;
        let visible_schemas = match serving.schemas.as_object() {
            Some(all) if !all.keys().all(|c| client.reaches_collection(ws, c)) => {
                let seen: serde_json::Map<String, serde_json::Value> = all
                    .iter()
                    .filter(|(c, _)| client.reaches_collection(ws, c))
                    .map(|(c, s)| (c.clone(), s.clone()))
                    .collect();
                Arc::from(serde_json::Value::Object(seen).to_string())
            }
            _ => schemas.clone(),
        };
        Arc::new(CallCtx {
            runtime: self.clone(),
            service: service.clone(),
            caller: client.through(serving.scope.clone()),
            config_json: self.config_json(&entry, &serving.endpoint, stored),
            endpoint: serving.endpoint.clone(),
            schemas,
            visible_schemas,
            request_id: uuid::Uuid::now_v7().to_string(),
            deadline: Instant::now() + timeout,
            entry,
        })
    }

    /// The tools of endpoint `slug` in `ws` that `client` can reach.
    pub async fn endpoint_tools(
        self: &Arc<Self>,
        service: &Service,
        client: &Caller,
        ws: &str,
        slug: &str,
    ) -> Result<Vec<Tool>, RunError> {
        let serving = service.serving(client, ws, slug)?;
        self.serving_tools(service, client, serving).await
    }

    /// [`Runtime::endpoint_tools`] for an endpoint already resolved with
    /// [`Service::serving`]. A tool over a collection outside the client's
    /// grants is not listed (its description holds the collection's schema).
    pub async fn serving_tools(
        self: &Arc<Self>,
        service: &Service,
        client: &Caller,
        serving: Arc<Serving>,
    ) -> Result<Vec<Tool>, RunError> {
        let call = self.call_ctx(service, client, serving, true);
        let set = self
            .call(&call, async || self.tool_set(&call).await)
            .await?;
        Ok(set
            .tools
            .iter()
            .filter(|t| reaches(&call, &t.tool.name))
            .map(|t| t.tool.clone())
            .collect())
    }

    /// Calls tool `name` of endpoint `slug` with JSON `arguments`: checks
    /// the arguments against the tool's input schema, then runs it on the
    /// layer that serves it, as the client through the endpoint's scope.
    /// What the tool may do is decided per store operation by service (a
    /// read-only annotation is a hint for clients, never a permission).
    pub async fn call_endpoint_tool(
        self: &Arc<Self>,
        service: &Service,
        client: &Caller,
        ws: &str,
        slug: &str,
        name: &str,
        arguments: &str,
    ) -> Result<ToolResult, RunError> {
        let serving = service.serving(client, ws, slug)?;
        self.call_serving(service, client, serving, name, arguments)
            .await
    }

    /// [`Runtime::call_endpoint_tool`] for an endpoint already resolved
    /// with [`Service::serving`].
    pub async fn call_serving(
        self: &Arc<Self>,
        service: &Service,
        client: &Caller,
        serving: Arc<Serving>,
        name: &str,
        arguments: &str,
    ) -> Result<ToolResult, RunError> {
        let call = self.call_ctx(service, client, serving, true);
        self.call(&call, async || {
            let set = self.tool_set(&call).await?;
            let tool = set.find(name).ok().filter(|_| reaches(&call, name));
            let Some(tool) = tool else {
                let names: Vec<&str> = set
                    .tools
                    .iter()
                    .map(|t| t.tool.name.as_str())
                    .filter(|n| reaches(&call, n))
                    .collect();
                return Err(RunError::Call(
                    format!(
                        "no tool '{name}' in this endpoint; its tools are: {}",
                        names.join(", ")
                    ),
                    CallErrorKind::UnknownTool,
                ));
            };
            if let Some(rejected) = tool.check_arguments(arguments)? {
                return Ok(rejected);
            }
            let (name, arguments) = (name.to_string(), arguments.to_string());
            let max = self.limits.max_result_bytes;
            let run = job(move |g, store| {
                Box::pin(async move {
                    g.mcp_factory_plugin_tool_provider()
                        .call_call_tool(store, &name, &arguments)
                        .await
                })
            });
            let out = self.run_on(&call, tool.layer, None, run).await?;
            let result = out.map_err(call_error)?;
            if result.content.len() > max {
                return Err(RunError::Sandbox(format!(
                    "the tool's result is {} bytes; the limit is {max}",
                    result.content.len()
                )));
            }
            Ok(result)
        })
        .await
    }
}

/// Whether the call's client can reach what tool `name` works on: a
/// generated tool over a collection (or a custom tool in its place) needs a
/// grant that reaches that collection.
fn reaches(call: &CallCtx, name: &str) -> bool {
    let Some(mcp_factory_guest::config::ToolKind::Collection { collection, .. }) =
        call.endpoint.config.tool_kind(name)
    else {
        return true;
    };
    call.caller
        .endpoint
        .as_ref()
        .is_some_and(|e| call.caller.reaches_collection(&e.workspace, &collection))
}

fn call_error(e: CallError) -> RunError {
    match e {
        CallError::UnknownTool(m) => RunError::Call(m, CallErrorKind::UnknownTool),
        CallError::InvalidArguments(m) => RunError::Call(m, CallErrorKind::InvalidArguments),
        CallError::Failed(m) => RunError::Call(m, CallErrorKind::Failed),
    }
}

fn describe_trap(e: &wasmtime::Error, timeout: Duration, memory_denied: Option<u32>) -> String {
    if let Some(mb) = memory_denied {
        return format!("the endpoint ran out of memory: its limit is {mb} MB");
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => format!(
            "the endpoint ran past its {} ms time limit",
            timeout.as_millis()
        ),
        Some(wasmtime::Trap::StackOverflow) => "the endpoint overflowed its stack".into(),
        Some(wasmtime::Trap::UnreachableCodeReached) => "the endpoint failed: it panicked or aborted \
             (wasm `unreachable`); its message, if it printed one, is in `mcp-factory endpoints logs`"
            .into(),
        Some(t) => format!("the endpoint failed: {t}"),
        // A host-side refusal (a limit on randomness or resources…): its
        // own message, without the wasm backtrace.
        None => format!("the endpoint failed: {}", e.root_cause()),
    }
}
