//! Trigger cost on the write path, and delivery throughput.
//!
//! 32 reqwest clients make durable creates over HTTP (the real axum server
//! on loopback) for `BENCH_SECONDS` (default 5) per case:
//!
//! - `none`: no trigger on the collection;
//! - `3 triggers, no dispatch`: three triggers, so every create also writes
//!   three outbox rows in its transaction, with the dispatcher not running
//!   (the write path's own cost);
//! - `3 triggers, delivering`: the same with the dispatcher delivering to a
//!   loopback receiver (axum, answers 204) on the same two cores; the
//!   receiver, which stands for another machine, runs at the background
//!   priority, as the dispatcher does.
//!
//! The cases run twice, interleaved (a, c, b, a, c, b), because runs on
//! these machines drift; ratios are taken within a round. Then, with the
//! writers stopped, it measures delivered events/s while the backlog drains.
//!
//! Run: `cargo bench -p mcp-factory --bench triggers`.

#[path = "support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mcp_factory::http::{self, AppState};
use mcp_factory::service::Config;
use mcp_factory::service::triggers::{CreateTrigger, Event};
use serde_json::json;
use tokio::sync::Mutex;

struct Stats {
    ops: usize,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time of the store's writer thread per create, in µs: the write
    /// path's own cost, steadier than creates/s on a shared machine.
    writer_us: f64,
}

/// CPU time (user + system) the store's writer thread has used, in µs.
fn writer_cpu_us() -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let dir = task.expect("task").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "store-writer" {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).expect("stat");
        // Fields after the ")" that ends the command name: utime is the
        // 12th, stime the 13th.
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
        return ticks / tick * 1e6;
    }
    panic!("no store-writer thread")
}

impl Stats {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

async fn creates(url: &str, token: &str, dur: Duration, tag: &str) -> Stats {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let all = Arc::new(Mutex::new(Vec::new()));
    let cpu0 = writer_cpu_us();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..32 {
        let (client, url, token, all, tag) = (
            client.clone(),
            url.to_string(),
            token.to_string(),
            all.clone(),
            tag.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0;
            while start.elapsed() < dur {
                let t = Instant::now();
                let body = json!({"data": {"name": format!("{tag}-{c}-{i}"), "n": i}});
                let r = client
                    .put(format!("{url}/v1/bench/records/items"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("send");
                assert!(r.status().is_success(), "{}", r.status());
                r.bytes().await.expect("body");
                lat.push(t.elapsed());
                i += 1;
            }
            all.lock().await.extend(lat);
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = writer_cpu_us() - cpu0;
    let mut lat = std::mem::take(&mut *all.lock().await);
    lat.sort();
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    Stats {
        ops: lat.len(),
        secs,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        writer_us: cpu / lat.len() as f64,
    }
}

fn report(name: &str, s: &Stats, base: Option<&Stats>) {
    let ratio = base.map_or(String::new(), |b| {
        format!(
            "   ×{:.2} of none (writer CPU ×{:.2})",
            s.rate() / b.rate(),
            s.writer_us / b.writer_us
        )
    });
    println!(
        "{name:<26} {:>8.0} creates/s   p50={:>6.2} ms   p99={:>6.2} ms   writer {:>5.1} µs/create{ratio}",
        s.rate(),
        s.p50_ms,
        s.p99_ms,
        s.writer_us
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dur = Duration::from_secs(secs);
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}, "required": ["name"]});
    let config = Config {
        egress: mcp_factory::egress::Egress::new(vec!["127.0.0.1".parse().expect("allow")]),
        ..Config::default()
    };
    let (service, sys) = support::service_with_config(dir.path(), "items", schema, config).await;
    // A collection with no triggers, so the "none" case stays possible
    // after the triggers exist.
    let token = service
        .bootstrap_admin()
        .await
        .expect("admin")
        .expect("first token")
        .token;

    // The receiver: counts and answers 204.
    let received = Arc::new(AtomicU64::new(0));
    let rx = {
        let received = received.clone();
        axum::Router::new().fallback(move || {
            let received = received.clone();
            async move {
                received.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        })
    };
    let rx_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let rx_url = format!("http://{}", rx_listener.local_addr().expect("addr"));
    // The receiver stands for another machine: it runs on the background
    // runtime (lower CPU priority), so that its own work is not counted
    // against the writes on these two shared cores.
    tokio::spawn(mcp_factory::background::spawn(async move {
        axum::serve(rx_listener, rx).await
    }));

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
    println!(
        "durable HTTP creates at 32 clients, {secs} s per case, 2 cores shared with the clients and the receiver\n"
    );

    let set_triggers = |on: bool| {
        let (service, sys, rx_url) = (service.clone(), sys.clone(), rx_url.clone());
        async move {
            for i in 0..3 {
                let name = format!("t{i}");
                if on {
                    service
                        .create_trigger(
                            &sys,
                            "bench--dev",
                            CreateTrigger {
                                name,
                                collection: Some("items".into()),
                                rel_type: None,
                                url: format!("{rx_url}/t{i}"),
                                events: vec![Event::Create, Event::Update],
                                skip_hook_writes: None,
                                description: None,
                            },
                        )
                        .await
                        .expect("trigger");
                } else {
                    service
                        .delete_trigger(&sys, "bench--dev", &name)
                        .await
                        .expect("delete trigger");
                }
            }
            service
                .promote(&sys, "bench", "bench--dev", false)
                .await
                .expect("promote");
        }
    };

    let mut dispatcher_started = false;
    let mut rows = Vec::new();
    for round in 0..2 {
        let none = creates(&url, &token, dur, &format!("a{round}")).await;
        report("none", &none, None);
        set_triggers(true).await;
        // Not delivering: the dispatcher is not running yet in round 0; in
        // round 1 the triggers are new, but the dispatcher is (so this
        // case is measured in round 0 only).
        if !dispatcher_started {
            let c = creates(&url, &token, dur, &format!("c{round}")).await;
            report("3 triggers, no dispatch", &c, Some(&none));
            rows.push(("c", c.rate() / none.rate()));
            mcp_factory::dispatch::Dispatcher::new(service.clone(), None, None).start();
            dispatcher_started = true;
            // Let it catch up with what case c queued before measuring b.
            drain(&service, &received, Duration::from_secs(120)).await;
        }
        let before = received.load(Ordering::Relaxed);
        let b = creates(&url, &token, dur, &format!("b{round}")).await;
        let during = received.load(Ordering::Relaxed) - before;
        report("3 triggers, delivering", &b, Some(&none));
        println!(
            "{:<26} {:>8.0} deliveries/s during the writes ({} events queued per second)",
            "",
            during as f64 / b.secs,
            (b.rate() * 3.0) as u64
        );
        rows.push(("b", b.rate() / none.rate()));
        // The drain: delivered events/s with the writers stopped.
        let (n, took) = drain(&service, &received, Duration::from_secs(600)).await;
        if took > Duration::ZERO {
            println!(
                "{:<26} {:>8.0} deliveries/s draining the backlog ({n} in {:.1} s, 3 triggers, one in flight each)",
                "drain",
                n as f64 / took.as_secs_f64(),
                took.as_secs_f64()
            );
        }
        set_triggers(false).await;
        println!();
    }
    for (case, r) in rows {
        println!("ratio {case}/none: {r:.3}");
    }
}

/// Waits until the three triggers have nothing pending; returns how many
/// deliveries arrived meanwhile and how long it took.
async fn drain(
    service: &mcp_factory::service::Service,
    received: &AtomicU64,
    limit: Duration,
) -> (u64, Duration) {
    let sys = mcp_factory::service::Caller::system();
    let start = Instant::now();
    let before = received.load(Ordering::Relaxed);
    loop {
        let list = service.list_triggers(&sys, "bench").await.expect("list");
        if list.iter().all(|t| t.pending == 0) {
            return (received.load(Ordering::Relaxed) - before, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "the backlog did not drain within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
