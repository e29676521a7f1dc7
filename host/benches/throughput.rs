//! Record create and get throughput, in-process (service calls) and over
//! HTTP (the real axum server on loopback, reqwest clients), at 1 and 32
//! concurrent clients. Creates are durable: each acknowledged create was
//! committed with fsync, and concurrent creates share commits (group commit).
//!
//! Run: `cargo bench -p mcp-factory --bench throughput` (set
//! `BENCH_SECONDS` to change the time per case, default 3).

use std::sync::Arc;
#[path = "support.rs"]
mod support;

use std::time::{Duration, Instant};

use mcp_factory::http::{self, AppState};
use mcp_factory::service::records::UpsertRecord;
use serde_json::json;
use tokio::sync::Mutex;

struct Stats {
    ops: usize,
    secs: f64,
    p50_us: f64,
    p99_us: f64,
}

fn summarize(mut lat: Vec<Duration>, elapsed: Duration) -> Stats {
    lat.sort();
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    Stats {
        ops: lat.len(),
        secs: elapsed.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    }
}

fn report(name: &str, clients: usize, s: &Stats) {
    println!(
        "{name:<22} clients={clients:<3} ops={:<7} {:>9.0} ops/s   p50={:>8.1} µs   p99={:>8.1} µs",
        s.ops,
        s.ops as f64 / s.secs,
        s.p50_us,
        s.p99_us
    );
}

/// Runs `op` from `clients` concurrent tasks for `dur`.
async fn run<F, Fut>(clients: usize, dur: Duration, op: F) -> Stats
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let all = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (op, all) = (op.clone(), all.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0;
            while start.elapsed() < dur {
                let t = Instant::now();
                op(c, i).await;
                lat.push(t.elapsed());
                i += 1;
            }
            all.lock().await.extend(lat);
        }));
    }
    for t in tasks {
        t.await.expect("bench task");
    }
    let elapsed = start.elapsed();
    let lat = std::mem::take(&mut *all.lock().await);
    summarize(lat, elapsed)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dur = Duration::from_secs(secs);
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}, "required": ["name"]});
    let (service, sys) = support::service_with(dir.path(), "items", schema).await;
    let seed = service
        .upsert_record(
            &sys,
            "bench",
            "items",
            UpsertRecord {
                data: json!({"name": "seed", "n": 0}),
                ..Default::default()
            },
        )
        .await
        .expect("seed");
    let seed_id = seed.id.clone();
    println!("record create/get throughput, {secs} s per case, 2 tokio workers, durable commits\n");

    for clients in [1, 32] {
        let (svc, caller) = (service.clone(), sys.clone());
        let s = run(clients, dur, move |c, i| {
            let (svc, sys) = (svc.clone(), caller.clone());
            async move {
                let data = json!({"name": format!("c{c}-{i}"), "n": i});
                svc.upsert_record(
                    &sys,
                    "bench",
                    "items",
                    UpsertRecord {
                        data,
                        ..Default::default()
                    },
                )
                .await
                .expect("create");
            }
        })
        .await;
        report("in-process create", clients, &s);
        let (svc, caller, id) = (service.clone(), sys.clone(), seed_id.clone());
        let s = run(clients, dur, move |_, _| {
            let (svc, sys, id) = (svc.clone(), caller.clone(), id.clone());
            async move {
                svc.get_record_json(&sys, "bench", "items", &id)
                    .expect("get");
            }
        })
        .await;
        report("in-process get", clients, &s);
    }

    let token = service
        .bootstrap_admin()
        .await
        .expect("admin")
        .expect("first token")
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let runtime = mcp_factory::runtime::Runtime::new(
        mcp_factory::runtime::Limits::default(),
        dir.path().join("cache"),
    )
    .expect("runtime");
    let state = AppState::new(
        service.clone(),
        runtime,
        http::DEFAULT_MAX_BODY,
        mcp_factory::mcp::McpConfig::default(),
    );
    tokio::spawn(http::serve(listener, state, std::future::pending()));
    println!();
    for clients in [1, 32] {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .expect("client");
        let (c2, u, t) = (client.clone(), url.clone(), token.clone());
        let s = run(clients, dur, move |c, i| {
            let (client, url, token) = (c2.clone(), u.clone(), t.clone());
            async move {
                let body = json!({"data": {"name": format!("h{c}-{i}"), "n": i}});
                let r = client
                    .put(format!("{url}/v1/bench/records/items"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .expect("send");
                assert!(r.status().is_success(), "{}", r.status());
                r.bytes().await.expect("body");
            }
        })
        .await;
        report("http create", clients, &s);
        let (c2, u, t, id) = (client.clone(), url.clone(), token.clone(), seed_id.clone());
        let s = run(clients, dur, move |_, _| {
            let (client, url, token, id) = (c2.clone(), u.clone(), t.clone(), id.clone());
            async move {
                let r = client
                    .get(format!("{url}/v1/bench/records/items/{id}"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("send");
                assert!(r.status().is_success());
                r.bytes().await.expect("body");
            }
        })
        .await;
        report("http get", clients, &s);
    }
}
