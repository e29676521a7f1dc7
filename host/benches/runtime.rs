//! Endpoint tool-call overhead: a generated `get_…` tool called through the
//! Wasm component (resolve the endpoint, fresh store, instantiate from the
//! pre-linked component, `call-tool`, the guest's `store.get-record` back
//! into the host) against the same store read called natively.
//!
//! Run: `cargo bench -p mcp-factory --bench runtime` (`RUNTIME_BENCH_CALLS`,
//! default 5,000).

#[path = "support.rs"]
mod support;

use std::time::{Duration, Instant};

use mcp_factory::runtime::{Limits, Runtime};
use mcp_factory::service::records::UpsertRecord;
use mcp_factory_guest::config::EndpointConfig;
use serde_json::json;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("RUNTIME_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}});
    let (service, sys) = support::service_with(dir.path(), "items", schema).await;
    let config: EndpointConfig =
        serde_json::from_value(json!({"tools": [{"collection": "items", "operations": ["get"]}]}))
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
    let runtime = Runtime::new(Limits::default(), dir.path().join("cache")).expect("runtime");
    let args = json!({"id": rec.id}).to_string();

    let t = Instant::now();
    runtime
        .call_endpoint_tool(&service, &sys, "bench", "ep", "get_items", &args)
        .await
        .expect("first call");
    println!(
        "first call (compiles the component): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    let mut wasm = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = runtime
            .call_endpoint_tool(&service, &sys, "bench", "ep", "get_items", &args)
            .await
            .expect("call");
        wasm.push(t.elapsed());
        assert!(!r.is_error);
    }
    let mut resolve = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        service.serving(&sys, "bench", "ep").expect("serving");
        resolve.push(t.elapsed());
    }
    let mut native = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        service
            .get_record_json(&sys, "bench", "items", &rec.id)
            .expect("get");
        native.push(t.elapsed());
    }
    let (w50, w99) = (pct(&mut wasm, 0.5), pct(&mut wasm, 0.99));
    let (r50, r99) = (pct(&mut resolve, 0.5), pct(&mut resolve, 0.99));
    let (n50, n99) = (pct(&mut native, 0.5), pct(&mut native, 0.99));
    println!("{n} calls each, 2 tokio workers\n");
    println!("tool call through the component   p50 {w50:>8.1} µs   p99 {w99:>8.1} µs");
    println!("  of which: resolve the endpoint  p50 {r50:>8.1} µs   p99 {r99:>8.1} µs");
    println!("native store read                 p50 {n50:>8.1} µs   p99 {n99:>8.1} µs");
    println!(
        "overhead (call - native)          p50 {:>8.1} µs   ratio {:.1}x",
        w50 - n50,
        w50 / n50
    );
}
