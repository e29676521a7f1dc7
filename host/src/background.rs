//! Long-running work at a lower CPU priority, so that no tenant's heavy work
//! slows down another tenant's requests.
//!
//! Every limit elsewhere bounds one kind of work (a guest's turns, a
//! tenant's SQL slots), but on a shared host they add up: on two cores one
//! tenant's spinning guest and two CPU-bound SQL queries held three threads
//! against the two async workers serving everyone else, and a neighbour's
//! p99 grew 5×. The kernel's scheduler is the one place that sees all CPU
//! use at once, so the server tells it which work is which:
//!
//! - **interactive** (requests, short guest calls, point reads, lists): the
//!   server's runtime, at normal priority;
//! - **background** (a guest call past its first 10 ms, every SQL query):
//!   this runtime's threads, at nice [`NICE`]. They use all the CPU nobody
//!   else wants; when both kinds want the cores, a normal thread gets ≈ 9×
//!   the share of a background one (CFS weights 1024 and 110), so a
//!   neighbour's latency stays near its idle figure while the heavy work
//!   still finishes on an idle machine as fast as before.
//!
//! Within the background class, per-tenant limits (guest turns, SQL slots)
//! keep tenants fair with each other. An unprivileged process can lower a
//! thread's priority but never raise it again, so these threads run nothing
//! else. Like tokio's blocking pool, the runtime is process-wide.
//!
//! `MCP_FACTORY_BACKGROUND_NICE` (0-19, default 10) changes the nice value,
//! for the benchmarks; 0 keeps normal priority.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// The nice value of background threads (0 = normal, 19 = lowest).
pub const NICE: i32 = 10;

/// Most background threads blocked at once (SQL queries; each tenant's
/// share is bounded by its SQL slots).
const MAX_BLOCKING: usize = 64;

fn nice() -> i32 {
    std::env::var("MCP_FACTORY_BACKGROUND_NICE")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(NICE, |n: i32| n.clamp(0, 19))
}

/// Lowers the calling thread's priority to `nice` (Linux: the nice value is
/// per thread). Failing is harmless: the work still runs, at normal priority.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_priority(nice: i32) {
    // SAFETY: setpriority has no memory effects; `who` 0 is the calling
    // thread on Linux.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, nice);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

fn runtime() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let nice = nice();
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
            let built = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .max_blocking_threads(MAX_BLOCKING)
                .thread_name("mcpf-background")
                .on_thread_start(move || lower_priority(nice))
                .enable_all()
                .build();
            match built {
                Ok(rt) => Some(rt),
                Err(e) => {
                    tracing::warn!(
                        "no background threads ({e}); long-running work runs at normal priority"
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// The background runtime, or the current one if it could not be built.
fn handle() -> Handle {
    runtime().map_or_else(Handle::current, |rt| rt.handle().clone())
}

/// Whether the calling thread is a background thread.
pub fn on_background_thread() -> bool {
    std::thread::current().name() == Some("mcpf-background")
}

/// Runs blocking work on a background thread.
pub async fn blocking<T, F>(f: F) -> Result<T, tokio::task::JoinError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    Aborting(handle().spawn_blocking(f)).await
}

/// Runs `future` on the background runtime from now on; dropping the
/// returned future cancels it there (as dropping it here would have).
pub async fn spawn<F>(future: F) -> Result<F::Output, tokio::task::JoinError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Aborting(handle().spawn(future)).await
}

/// A task handle that aborts its task when dropped.
struct Aborting<T>(JoinHandle<T>);

impl<T> Future for Aborting<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn background_threads_run_at_a_lower_priority() {
        // SAFETY: getpriority only reads; `who` 0 is the calling thread.
        #[allow(unsafe_code)]
        fn niceness() -> i32 {
            unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
        }
        // A test run under `nice` may start higher (and stay there unless
        // it may raise priorities): at least NICE either way.
        let (there, named) = blocking(|| (niceness(), on_background_thread()))
            .await
            .expect("ran");
        assert!(named);
        assert!(there >= nice(), "blocking thread at {there}");
        let there = spawn(async { niceness() }).await.expect("ran");
        assert!(there >= nice(), "worker thread at {there}");
        assert!(!on_background_thread());
    }

    #[tokio::test]
    async fn dropping_a_spawned_future_cancels_it() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let call = spawn(async move {
            let _tx = tx; // dropped when the task is cancelled
            std::future::pending::<()>().await
        });
        let _ = tokio::time::timeout(std::time::Duration::from_millis(20), call).await;
        // The timeout dropped `call`: the task is aborted and `tx` goes.
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), rx).await;
        assert!(matches!(closed, Ok(Err(_))), "{closed:?}");
    }
}
