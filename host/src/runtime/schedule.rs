//! Where guest code runs, so that a guest never holds an async worker.
//!
//! The server has as many tokio workers as cores (two here). A guest that
//! ran on one until its deadline trap held it for its whole time limit: two
//! spinning calls with a 10 s limit kept `/health` waiting 12.5 s. Two ways
//! out were measured (docs/bench-runtime.md):
//!
//! - [`Schedule::Pool`]: each call (instantiation, guest code and the host
//!   imports it calls, store reads included) runs on a thread of a
//!   dedicated, bounded pool, driven by `Handle::block_on` of the server's
//!   runtime (its timers and channels work as usual). The kernel preempts a
//!   spinning guest like any thread; the async workers only hand calls over.
//! - [`Schedule::Yield`]: the guest starts on the worker, yields back to
//!   tokio on every epoch tick, and traps at its deadline. Once it has run
//!   longer than [`LONG`] it moves to the background runtime
//!   ([`crate::background`]: lower CPU priority) and runs in turns there.
//! - [`Schedule::Worker`]: the old way (trap at the deadline, no yield),
//!   kept only to measure against.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Store, UpdateDeadline};

use super::{HostState, TICK};

/// Most guest calls running at once in the whole server (beyond it calls
/// queue, within their deadlines). Each endpoint's `max_concurrency` bounds
/// its own share.
const POOL_THREADS: usize = 256;
/// How long an idle pool thread is kept for the next call.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    Pool,
    Yield,
    Worker,
}

impl Schedule {
    /// `MCP_FACTORY_GUEST_SCHEDULE` (`pool`, `yield`, `worker`), for the
    /// benchmarks; yielding (with turns) by default.
    pub fn from_env() -> Schedule {
        match std::env::var("MCP_FACTORY_GUEST_SCHEDULE").as_deref() {
            Ok("pool") => Schedule::Pool,
            Ok("worker") => Schedule::Worker,
            _ => Schedule::Yield,
        }
    }
}

thread_local! {
    /// Set on pool threads: a nested guest call (`base`) made from a host
    /// import runs right there, instead of waiting for a second pool thread
    /// (which, with the pool full, would never come).
    static ON_GUEST_THREAD: Cell<bool> = const { Cell::new(false) };
}

pub(super) struct Guests {
    pub(super) schedule: Schedule,
    /// Turns for long-running guests (see [`Turns`]).
    pub(super) turns: Turns,
    /// A runtime used only for its blocking-thread pool (bounded, threads
    /// kept warm); `None` unless scheduling on the pool.
    pool: Option<tokio::runtime::Runtime>,
}

impl Guests {
    pub(super) fn new(schedule: Schedule) -> Result<Guests, String> {
        let pool = match schedule {
            Schedule::Pool => Some(
                tokio::runtime::Builder::new_current_thread()
                    .thread_name("wasm-guest")
                    .max_blocking_threads(POOL_THREADS)
                    .thread_keep_alive(KEEP_ALIVE)
                    .build()
                    .map_err(|e| format!("the guest thread pool: {e}"))?,
            ),
            _ => None,
        };
        Ok(Guests {
            schedule,
            pool,
            turns: Turns::new(),
        })
    }

    /// Runs a call's future (instantiation and guest code) where guests
    /// run, and returns its output. `long`: the call's flag (see
    /// [`guest_call`]) if this is not a nested call; in [`Schedule::Yield`]
    /// the call moves to the background runtime once the flag is up.
    pub(super) async fn run<F>(
        &self,
        call: F,
        long: Option<Arc<CallFlags>>,
    ) -> Result<F::Output, String>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let pool = match (&self.pool, long) {
            (Some(pool), _) if !ON_GUEST_THREAD.get() => pool.handle(),
            (None, Some(long)) if self.schedule == Schedule::Yield => {
                return on_worker_then_background(call, long).await;
            }
            _ => return Ok(call.await),
        };
        let server = tokio::runtime::Handle::current();
        pool.spawn_blocking(move || {
            ON_GUEST_THREAD.set(true);
            let out = server.block_on(call);
            ON_GUEST_THREAD.set(false);
            out
        })
        .await
        .map_err(join_error)
    }
}

/// Polls `call` right here (a short call never leaves the async worker it
/// came on: no hand-off) until it answers, or until it is found
/// long-running (`long` up, see [`arm`]); then hands it, between two polls,
/// to the background runtime, where it runs out its turns at a lower CPU
/// priority. Its wakers follow it: the background runtime polls it again
/// first thing.
async fn on_worker_then_background<F>(call: F, flags: Arc<CallFlags>) -> Result<F::Output, String>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut call = Box::pin(call);
    let here = std::future::poll_fn(|cx| match call.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending if flags.long.load(Ordering::Acquire) => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await;
    match here {
        Some(out) => Ok(out),
        None => {
            let _cancel = CancelOnDrop(flags);
            crate::background::spawn(call).await.map_err(join_error)
        }
    }
}

fn join_error(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(panic) => format!(
            "the host panicked running this call: {}",
            panic
                .downcast_ref::<&str>()
                .copied()
                .or(panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)")
        ),
        Err(_) => "the server is shutting down".to_string(),
    }
}

impl Drop for Guests {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which is not allowed
        // from async code; calls still running end at their deadlines.
        if let Some(pool) = self.pool.take() {
            pool.shutdown_background();
        }
    }
}

/// What a guest call's epoch callback and the code that runs the call tell
/// each other (shared with nested calls, see [`in_guest`]).
#[derive(Debug, Default)]
pub(super) struct CallFlags {
    /// Raised once the guest has run [`LONG`]: [`Guests::run`] hands the
    /// call to the background runtime at its next `Pending`.
    long: AtomicBool,
    /// Raised when whoever waited for a handed-off call went away (the
    /// request was dropped): the guest traps at its next tick instead of
    /// running on, unseen, to its deadline.
    cancelled: AtomicBool,
}

/// Raises [`CallFlags::cancelled`] when dropped (a finished call ignores it).
struct CancelOnDrop(Arc<CallFlags>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancelled.store(true, Ordering::Release);
    }
}

/// A guest that has run longer than this (its own running time, not the
/// time it waited to be polled) is a long-running one: from then on it runs
/// on the background runtime, in turns (one tick each).
const LONG: Duration = Duration::from_millis(10);

/// Tenants remembered before idle ones are forgotten.
const REMEMBERED_TENANTS: usize = 1024;

/// Turns for long-running guests, in [`Schedule::Yield`]. Yielding on every
/// tick keeps the async workers free between ticks, but eight spinning
/// guests would still take eight ticks of every nine. So a guest that has
/// run longer than [`LONG`] runs one tick at a time, and only while it holds
/// a turn: at most one per tenant (a workspace and its previews) and, of
/// those, at most half the workers' worth at once. A tenant's spinning calls
/// take turns with each other; short calls never wait for a turn.
pub(super) struct Turns {
    all: Arc<Semaphore>,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A long-running guest's turn: held for one tick.
struct Turn {
    _tenant: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
}

impl Turns {
    fn new() -> Turns {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        Turns {
            all: Arc::new(Semaphore::new((workers / 2).max(1))),
            tenants: Mutex::default(),
        }
    }

    fn tenant(&self, workspace: &str) -> Arc<Semaphore> {
        let tenant = workspace.split("--").next().unwrap_or(workspace);
        let mut map = self
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= REMEMBERED_TENANTS && !map.contains_key(tenant) {
            // Nobody holds or waits for these: they are only their count.
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        map.entry(tenant.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone()
    }
}

tokio::task_local! {
    /// Set while a guest call runs, to the call's "long-running" flag
    /// (raised by [`arm`]'s callback, read by [`Guests::run`]). A call made
    /// from inside one (a custom component's `base` call) runs on its
    /// caller's turn, since waiting for a turn of its own while the caller
    /// holds the tenant's would wait for itself, and raises its caller's
    /// flag.
    static IN_GUEST: Arc<CallFlags>;
}

/// The flags of the guest call this is made from, if it is a nested call.
pub(super) fn in_guest() -> Option<Arc<CallFlags>> {
    IN_GUEST.try_with(Arc::clone).ok()
}

/// Runs `call` as a guest call with `flags` (see [`in_guest`]).
pub(super) async fn guest_call<F: Future>(flags: Arc<CallFlags>, call: F) -> F::Output {
    IN_GUEST.scope(flags, call).await
}

/// The turn a long-running guest holds, shared by its store's epoch callback
/// (which takes and gives back turns) and its host imports.
#[derive(Clone, Default)]
pub(super) struct TurnSlot(Arc<Mutex<Option<Turn>>>);

impl TurnSlot {
    /// Gives the turn back. A host import calls this before it waits (on the
    /// store, SQL, a nested call): no tick comes while the guest is in the
    /// host, so a turn kept there would hold up every other long guest.
    /// The next tick in wasm takes a turn again.
    pub(super) fn release(&self) {
        drop(self.slot().take());
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Turn>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Waits for a turn: the tenant's first, so that a tenant over its share
/// queues on its own semaphore, never in front of other tenants.
async fn take_turn(tenant: Arc<Semaphore>, all: Arc<Semaphore>) -> Option<Turn> {
    let tenant = tenant.acquire_owned().await.ok()?;
    let all = all.acquire_owned().await.ok()?;
    Some(Turn {
        _tenant: tenant,
        _all: all,
    })
}

/// Arms the store's deadline (`deadline`, `left` from now) for `schedule`.
/// Either way the guest traps with `Trap::Interrupt` within a tick of its
/// deadline. `turns`: whose turn a long-running guest takes (`None`: it runs
/// on its caller's). `flags.long` is raised once the guest has run [`LONG`].
pub(super) fn arm(
    schedule: Schedule,
    turns: Option<(&Turns, &str)>,
    flags: Arc<CallFlags>,
    store: &mut Store<HostState>,
    deadline: Instant,
    left: Duration,
) {
    match schedule {
        Schedule::Pool | Schedule::Worker => {
            store.set_epoch_deadline((left.as_millis() / TICK.as_millis()) as u64 + 1);
            store.epoch_deadline_trap();
        }
        Schedule::Yield => {
            let began = Instant::now();
            let turns = turns.map(|(t, ws)| (t.tenant(ws), t.all.clone()));
            // The turn this guest holds, given back at its next tick or
            // when it calls into the host.
            let held = store.data().turn.clone();
            // How long the guest has run: the time between being resumed
            // and its next tick, summed. Not wall time: on a busy server a
            // short call waits in tokio's queue after each yield, and that
            // wait must not make it "long-running".
            let resumed = Arc::new(AtomicU64::new(0)); // ns since `began`
            let mut ran = Duration::ZERO;
            let resume = move |wait: Pin<Box<dyn Future<Output = ()> + Send>>,
                               at: Arc<AtomicU64>| {
                Box::pin(async move {
                    wait.await;
                    at.store(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
                }) as Pin<Box<dyn Future<Output = ()> + Send>>
            };
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(move |_| {
                let now = Instant::now();
                if now >= deadline || flags.cancelled.load(Ordering::Acquire) {
                    return Ok(UpdateDeadline::Interrupt);
                }
                let since_resume = (now - began)
                    .saturating_sub(Duration::from_nanos(resumed.load(Ordering::Relaxed)));
                ran += since_resume;
                let yielding = |wait| {
                    Ok(UpdateDeadline::YieldCustom(
                        1,
                        resume(wait, resumed.clone()),
                    ))
                };
                if ran >= LONG
                    && !flags.long.swap(true, Ordering::AcqRel)
                    && !crate::background::on_background_thread()
                {
                    // Hand the call over now. A turn taken at once would
                    // resume the guest within this same poll, and the call
                    // would stay on the async worker until tokio's budget
                    // ran out (≈ 64 ticks): a yield is sure to be `Pending`.
                    return yielding(Box::pin(tokio::task::yield_now()));
                }
                let Some((tenant, all)) = turns.as_ref().filter(|_| ran >= LONG) else {
                    return yielding(Box::pin(tokio::task::yield_now()));
                };
                held.release();
                let slot = held.clone();
                let (tenant, all) = (tenant.clone(), all.clone());
                yielding(Box::pin(async move {
                    // Never past the deadline: a guest still waiting then
                    // runs on to its next tick and traps there.
                    let deadline = tokio::time::Instant::from_std(deadline);
                    let turn = tokio::time::timeout_at(deadline, take_turn(tenant, all)).await;
                    *slot.slot() = turn.ok().flatten();
                }))
            });
        }
    }
}
