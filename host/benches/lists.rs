//! Lists and queries over one collection of 1,000,000 records, through
//! `Service::query_records` (the function REST, the Admin MCP and endpoint
//! `list_…` tools call) and once over HTTP: time per call and what each call
//! allocates (a counting global allocator), at `limit` 20 and 200.
//!
//! Run: `cargo bench -p mcp-factory --bench lists` (`LISTS_BENCH_RECORDS` to
//! change the count, default 1,000,000; `LISTS_BENCH_RUNS` the calls per
//! case, default 10).

#[path = "support.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use mcp_factory::http::{self, AppState};
use mcp_factory::service::records::Query;
use serde_json::{Value, json};

/// Counts every allocation of the process (all threads).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// A global allocator is an unsafe trait; this one only adds two counters
// around the system allocator (dhat would count too, but its backtraces
// would distort the timings measured alongside).
// SAFETY: forwards every call to the system allocator unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size() as u64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new as u64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const STAGES: [&str; 5] = ["lead", "qualified", "negotiation", "won", "lost"];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("LISTS_BENCH_RECORDS", 1_000_000);
    let runs = env("LISTS_BENCH_RUNS", 10);
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = json!({"type": "object", "properties": {"title": {"type": "string"}, "stage": {"type": "string"}, "value": {"type": "number"}}});
    let (service, sys) = support::service_with(dir.path(), "deals", schema).await;

    let t = Instant::now();
    let mut mid_id = String::new();
    for chunk in 0..n.div_ceil(1000) {
        let ops = (chunk * 1000..((chunk + 1) * 1000).min(n))
            .map(|i| {
                json!({"type": "upsert_record", "collection": "deals",
                       "data": {"title": format!("deal {i}"), "stage": STAGES[i % 5], "value": ((i * 7919) % 100_000) as f64 + 0.5}})
            })
            .collect();
        let out = service.batch(&sys, "bench", ops).await.expect("batch");
        if chunk == n.div_ceil(2000) {
            mid_id = out["results"][0]["result"]["id"]
                .as_str()
                .expect("id")
                .to_string();
        }
    }
    println!(
        "loaded {n} records in {:.1} s (1,000-op batches)\n",
        t.elapsed().as_secs_f64()
    );

    let cases: Vec<(&str, Query)> = vec![
        ("list (default order)", Query::default()),
        (
            "list, offset 10,000",
            Query {
                offset: Some(10_000),
                ..Query::default()
            },
        ),
        (
            "sort id desc",
            Query {
                sort: Some(json!({"field": "id", "order": "desc"})),
                ..Query::default()
            },
        ),
        (
            "filter id eq",
            Query {
                filter: Some(json!({"field": "id", "op": "eq", "value": mid_id})),
                ..Query::default()
            },
        ),
        (
            "sort data.value desc",
            Query {
                sort: Some(json!({"field": "data.value", "order": "desc"})),
                ..Query::default()
            },
        ),
        (
            "filter data.stage eq",
            Query {
                filter: Some(json!({"field": "data.stage", "op": "eq", "value": "won"})),
                ..Query::default()
            },
        ),
        (
            "filter + sort",
            Query {
                filter: Some(json!({"field": "data.stage", "op": "eq", "value": "won"})),
                sort: Some(json!({"field": "data.value", "order": "desc"})),
                ..Query::default()
            },
        ),
    ];
    println!(
        "{:<22} {:>6} {:>9} {:>9} {:>12} {:>12} {:>9}",
        "case", "limit", "min ms", "median", "allocs/call", "bytes/call", "total"
    );
    for (name, q) in &cases {
        for limit in [20, 200] {
            let q = Query {
                limit: Some(limit),
                ..q.clone()
            };
            let mut times = Vec::new();
            let (mut allocs, mut bytes) = (0, 0);
            let mut total = 0;
            for _ in 0..runs {
                let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
                let t = Instant::now();
                let page = service
                    .query_records(&sys, "bench", "deals", &q)
                    .await
                    .expect("query");
                times.push(t.elapsed());
                (allocs, bytes) = (ALLOCS.load(Relaxed) - a0, BYTES.load(Relaxed) - b0);
                total = page.meta.total;
                assert!(page.data.len() <= limit);
            }
            times.sort();
            println!(
                "{name:<22} {limit:>6} {:>9.2} {:>9.2} {allocs:>12} {bytes:>12} {total:>9}",
                ms(times[0]),
                ms(times[times.len() / 2]),
            );
        }
    }

    // The same list over HTTP: REST `GET /v1/{ws}/records/{coll}`.
    let token = service
        .bootstrap_admin()
        .await
        .expect("admin")
        .expect("first token")
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/v1/bench/records/deals?limit=20",
        listener.local_addr().expect("addr")
    );
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
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let mut times = Vec::new();
    for _ in 0..runs.max(20) {
        let t = Instant::now();
        let body: Value = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        times.push(t.elapsed());
        assert_eq!(body["data"].as_array().map(Vec::len), Some(20));
    }
    times.sort();
    println!(
        "\nHTTP GET list limit 20: min {:.2} ms, median {:.2} ms",
        ms(times[0]),
        ms(times[times.len() / 2])
    );
}
