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
//! Then the noisy-neighbour part ("[trust 2/2]"): the same service served
//! over HTTP (`http::serve`, on this 2-worker tokio runtime, like the
//! binary), while a client runtime calls a well-behaved endpoint in
//! workspace `bench` from 16 concurrent clients and probes `/health` every
//! 10 ms; first idle, then while workspace `bench--dev` keeps 8 calls of the
//! hostile component's `spin` tool (2 s limit) running. It prints each
//! phase's p50/p99/max and the noisy/idle p99 ratio.
//!
//! Run: `cargo bench -p mcp-factory --bench runtime`
//! (`MCP_FACTORY_GUEST_SCHEDULE=pool|yield|worker` picks where guests run;
//! `RUNTIME_BENCH_PHASE_SECONDS`, default 6, is each phase's length;
//! `RUNTIME_BENCH_FAIRNESS_ONLY=1` skips the call-overhead part).

#[path = "support.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use mcp_factory::runtime::{Checker, Limits, Runtime};
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
    serving: std::sync::Arc<Serving>,
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
    {
        let _in = rt.enter();
        runtime.watch(&service);
        service.set_config_check(Arc::new(Checker(runtime.clone())));
    }
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

#[derive(Default)]
struct Phase {
    neighbour: Vec<Duration>,
    health: Vec<Duration>,
    failed: usize,
    spins: usize,
}

fn ms(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    pct(v, p) / 1e3
}

fn max_ms(v: &[Duration]) -> f64 {
    v.iter().max().copied().unwrap_or_default().as_secs_f64() * 1e3
}

/// The noisy-neighbour part (see the top of the file).
fn fairness(f: &Fixture) {
    let secs: u64 = std::env::var("RUNTIME_BENCH_PHASE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let wasm = support::hostile_wasm().expect("tests/hostile builds");
    let (url, admin) = f.rt.block_on(async {
        let admin = f
            .service
            .bootstrap_admin()
            .await
            .expect("admin")
            .expect("a fresh store has no token")
            .token;
        let up = f
            .runtime
            .upload(&f.service, &f.sys, "bench--dev", wasm)
            .await
            .expect("upload");
        let config: EndpointConfig = serde_json::from_value(json!({
            "tools": [{"collection": "items", "operations": ["get"]}],
            "component": up.digest,
            "limits": {"timeout_ms": 2000},
        }))
        .expect("config");
        f.service
            .upsert_endpoint(&f.sys, "bench--dev", "spinner", config)
            .await
            .expect("spinner endpoint");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = mcp_factory::http::AppState::new(
            f.service.clone(),
            f.runtime.clone(),
            mcp_factory::http::DEFAULT_MAX_BODY,
            Default::default(),
        );
        tokio::spawn(mcp_factory::http::serve(
            listener,
            state,
            std::future::pending(),
        ));
        (url, admin)
    });
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let http = reqwest::Client::new();
    let get = format!("{url}/v1/bench/endpoints/ep/tools/get_items");
    let spin = format!("{url}/v1/bench--dev/endpoints/spinner/tools/spin");
    let body = json!({"id": f.id});
    let phase = |spinners: usize| -> Phase {
        client_rt.block_on(async {
            use std::sync::atomic::{AtomicBool, Ordering};
            let stop = Arc::new(AtomicBool::new(false));
            let mut noisy = Vec::new();
            for _ in 0..spinners {
                let (http, spin, admin, stop) =
                    (http.clone(), spin.clone(), admin.clone(), stop.clone());
                noisy.push(tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let r = http.post(&spin).bearer_auth(&admin).json(&json!({}));
                        let _ = r.send().await.and_then(|r| r.error_for_status());
                        n += 1;
                    }
                    n
                }));
            }
            if spinners > 0 {
                // Let the spinners start before measuring.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let mut clients = Vec::new();
            for _ in 0..16 {
                let (http, get, admin, stop, body) = (
                    http.clone(),
                    get.clone(),
                    admin.clone(),
                    stop.clone(),
                    body.clone(),
                );
                clients.push(tokio::spawn(async move {
                    let (mut times, mut failed) = (Vec::new(), 0);
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let r = http.post(&get).bearer_auth(&admin).json(&body).send().await;
                        match r {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                times.push(t.elapsed());
                            }
                            _ => failed += 1,
                        }
                    }
                    (times, failed)
                }));
            }
            let health = {
                let (http, url, stop) = (http.clone(), url.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut times = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let r = http.get(format!("{url}/health")).send().await;
                        assert!(r.is_ok_and(|r| r.status().is_success()), "/health");
                        times.push(t.elapsed());
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    times
                })
            };
            tokio::time::sleep(Duration::from_secs(secs)).await;
            stop.store(true, Ordering::Relaxed);
            let mut out = Phase::default();
            for c in clients {
                let (times, failed) = c.await.expect("client");
                out.neighbour.extend(times);
                out.failed += failed;
            }
            out.health = health.await.expect("health");
            for n in noisy {
                out.spins += n.await.expect("spinner");
            }
            out
        })
    };
    let mut idle = phase(0);
    let mut noisy = phase(8);
    let schedule = std::env::var("MCP_FACTORY_GUEST_SCHEDULE").unwrap_or("yield".into());
    println!("\nnoisy neighbour, guests scheduled: {schedule}, {secs} s per phase");
    for (name, p) in [("idle", &mut idle), ("8 spinners", &mut noisy)] {
        println!(
            "{name:<11} neighbour {:>6} calls p50 {:>7.2} ms p99 {:>7.2} ms max {:>8.2} ms failed {} | \
             /health p50 {:>6.2} ms p99 {:>7.2} ms max {:>8.2} ms | spin calls {}",
            p.neighbour.len(),
            ms(&mut p.neighbour, 0.5),
            ms(&mut p.neighbour, 0.99),
            max_ms(&p.neighbour),
            p.failed,
            ms(&mut p.health, 0.5),
            ms(&mut p.health, 0.99),
            max_ms(&p.health),
            p.spins,
        );
    }
    println!(
        "neighbour p99 noisy/idle: {:.2}x",
        ms(&mut noisy.neighbour, 0.99) / ms(&mut idle.neighbour, 0.99)
    );
}

fn main() {
    let f = fixture();
    if std::env::var_os("RUNTIME_BENCH_FAIRNESS_ONLY").is_some() {
        fairness(&f);
        return;
    }
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
    fairness(&f);
}
