//! Endpoint tool-call overhead (criterion): a generated `get_…` tool called
//! through the Wasm component — fresh store, instantiate from the
//! pre-linked component, `call-tool`, the guest's `store.get-record` back
//! into the host, teardown — against the same store read called natively.
//!
//! - `native`: `Service::get_record_json`.
//! - `component`: `Runtime::call_serving` on an endpoint resolved once
//!   (store + instantiate + call + teardown, and the argument check).
//! - `component+resolve`: `Runtime::call_endpoint_tool`, which also reads
//!   the endpoint and its schemas from the store (what every request does).
//!
//! After criterion's estimates it prints p50/p99 over `RUNTIME_BENCH_CALLS`
//! (default 5,000) single calls of each, and the overhead and ratio.
//!
//! Run: `cargo bench -p mcp-factory --bench runtime`

#[path = "support.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use mcp_factory::runtime::{Limits, Runtime};
use mcp_factory::service::endpoints::Serving;
use mcp_factory::service::records::UpsertRecord;
use mcp_factory::service::{Caller, Service};
use mcp_factory_guest::config::EndpointConfig;
use serde_json::json;

struct Fixture {
    rt: tokio::runtime::Runtime,
    service: Service,
    sys: Caller,
    runtime: Arc<Runtime>,
    serving: Serving,
    id: String,
    args: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, sys, id) = rt.block_on(async {
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}});
        let (service, sys) = support::service_with(dir.path(), "items", schema).await;
        let config: EndpointConfig = serde_json::from_value(
            json!({"tools": [{"collection": "items", "operations": ["get"]}]}),
        )
        .expect("config");
        service
            .upsert_endpoint(&sys, "bench--dev", "ep", config)
            .await
            .expect("endpoint");
        service
            .promote(&sys, "bench", "bench--dev", false)
            .await
            .expect("promote");
        let rec = service
            .upsert_record(
                &sys,
                "bench",
                "items",
                UpsertRecord {
                    data: json!({"name": "x"}),
                    ..Default::default()
                },
            )
            .await
            .expect("record");
        (service, sys, rec.id)
    });
    let runtime = Runtime::new(Limits::default(), dir.path().join("cache")).expect("runtime");
    let serving = service.serving(&sys, "bench", "ep").expect("serving");
    let args = json!({"id": id}).to_string();
    let f = Fixture {
        rt,
        service,
        sys,
        runtime,
        serving,
        id,
        args,
        _dir: dir,
    };
    let t = Instant::now();
    let r = f.rt.block_on(f.call_resolved());
    println!(
        "first call (compiles the component): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert!(!r.is_error, "{}", r.content);
    f
}

impl Fixture {
    async fn call_resolved(&self) -> mcp_factory::runtime::ToolResult {
        self.runtime
            .call_serving(
                &self.service,
                &self.sys,
                self.serving.clone(),
                "get_items",
                &self.args,
            )
            .await
            .expect("call")
    }

    async fn call_full(&self) -> mcp_factory::runtime::ToolResult {
        self.runtime
            .call_endpoint_tool(
                &self.service,
                &self.sys,
                "bench",
                "ep",
                "get_items",
                &self.args,
            )
            .await
            .expect("call")
    }

    fn native(&self) -> usize {
        self.service
            .get_record_json(&self.sys, "bench", "items", &self.id)
            .expect("get")
            .len()
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e6
}

fn main() {
    let f = fixture();
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut g = c.benchmark_group("get_record");
    g.bench_function("native", |b| b.iter(|| black_box(f.native())));
    g.bench_function("component", |b| {
        b.iter_custom(|iters| {
            f.rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(f.call_resolved().await);
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("component+resolve", |b| {
        b.iter_custom(|iters| {
            f.rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(f.call_full().await);
                }
                t.elapsed()
            })
        })
    });
    g.finish();

    let n: usize = std::env::var("RUNTIME_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let (mut native, mut wasm, mut full) = (Vec::new(), Vec::new(), Vec::new());
    f.rt.block_on(async {
        for _ in 0..n {
            let t = Instant::now();
            black_box(f.native());
            native.push(t.elapsed());
        }
        for _ in 0..n {
            let t = Instant::now();
            black_box(f.call_resolved().await);
            wasm.push(t.elapsed());
        }
        for _ in 0..n {
            let t = Instant::now();
            black_box(f.call_full().await);
            full.push(t.elapsed());
        }
    });
    let (n50, n99) = (pct(&mut native, 0.5), pct(&mut native, 0.99));
    let (w50, w99) = (pct(&mut wasm, 0.5), pct(&mut wasm, 0.99));
    let (f50, f99) = (pct(&mut full, 0.5), pct(&mut full, 0.99));
    println!("\n{n} single calls each, current-thread tokio runtime");
    println!("native store read              p50 {n50:>7.1} µs   p99 {n99:>7.1} µs");
    println!("component (store+inst+call)    p50 {w50:>7.1} µs   p99 {w99:>7.1} µs");
    println!("component + resolve endpoint   p50 {f50:>7.1} µs   p99 {f99:>7.1} µs");
    println!(
        "instance + call overhead       p50 {:>7.1} µs   ratio {:.1}x",
        w50 - n50,
        w50 / n50
    );
}
