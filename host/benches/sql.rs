//! SQL over a workspace: an aggregate over 1,000,000 records of one
//! collection and a point lookup by id, through `Service::sql_query` (the
//! path REST and MCP use). Records are loaded with 1,000-operation batches.
//!
//! Then the fixed cost of a query in a workspace with 1,000 collections:
//! `SELECT 1` and a count over one collection's view, where each query used
//! to rebuild every collection's view.
//!
//! Run: `cargo bench -p mcp-factory --bench sql` (`SQL_BENCH_RECORDS` to
//! change the count, default 1,000,000; `SQL_BENCH_COLLECTIONS`, default
//! 1,000).

#[path = "support.rs"]
mod support;

use std::time::{Duration, Instant};

use mcp_factory::service::collections::UpsertCollection;
use mcp_factory::service::sql::SqlRequest;
use serde_json::{Map, json};

const STAGES: [&str; 5] = ["lead", "qualified", "negotiation", "won", "lost"];

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("SQL_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = json!({"type": "object", "properties": {"title": {"type": "string"}, "stage": {"type": "string"}, "value": {"type": "number"}}});
    let (service, sys) = support::service_with(dir.path(), "deals", schema.clone()).await;

    // Set-up cost: 1,000 collections in the preview `bench--dev`.
    let colls: usize = std::env::var("SQL_BENCH_COLLECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    for i in 0..colls {
        let c = UpsertCollection {
            name: None,
            description: None,
            schema: schema.clone(),
        };
        service
            .upsert_collection(&sys, "bench--dev", &format!("c{i:04}"), c)
            .await
            .expect("collection");
    }
    for (name, q) in [
        ("select 1", "SELECT 1".to_string()),
        (
            "count over one view",
            format!("SELECT count(*) FROM c{:04}", colls / 2),
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..20 {
            let req = SqlRequest {
                query: q.clone(),
                params: Map::new(),
            };
            let t = Instant::now();
            service
                .sql_query(&sys, "bench--dev", req)
                .await
                .expect("query");
            times.push(t.elapsed());
        }
        println!(
            "{colls} collections: {name:<20} p50 {:>8.2} ms   max {:>8.2} ms",
            pct(times.clone(), 0.5),
            pct(times, 1.0)
        );
    }
    println!();

    let t = Instant::now();
    let mut first_id = String::new();
    for chunk in 0..n.div_ceil(1000) {
        let ops = (chunk * 1000..((chunk + 1) * 1000).min(n))
            .map(|i| {
                json!({"type": "upsert_record", "collection": "deals",
                       "data": {"title": format!("deal {i}"), "stage": STAGES[i % 5], "value": (i % 1000) as f64 + 0.5}})
            })
            .collect();
        let out = service.batch(&sys, "bench", ops).await.expect("batch");
        if chunk == 0 {
            first_id = out["results"][0]["result"]["id"]
                .as_str()
                .expect("id")
                .to_string();
        }
    }
    let load = t.elapsed();
    println!(
        "loaded {n} records in {:.1} s ({:.0} records/s, 1,000-op batches)\n",
        load.as_secs_f64(),
        n as f64 / load.as_secs_f64()
    );

    let run = |query: String| {
        let (service, sys) = (service.clone(), sys.clone());
        async move {
            let req = SqlRequest {
                query,
                params: Map::new(),
            };
            let t = Instant::now();
            let out = service.sql_query(&sys, "bench", req).await.expect("query");
            (t.elapsed(), out)
        }
    };
    let queries = [
        (
            "aggregate (records)",
            "SELECT data->>'$.stage', count(*), sum(data->>'$.value') FROM records WHERE collection = 'deals' GROUP BY 1",
        ),
        (
            "aggregate (view)",
            "SELECT stage, count(*), sum(value) FROM deals GROUP BY 1",
        ),
        (
            "aggregate (view, ORDER BY)",
            "SELECT stage, count(*), sum(value) FROM deals GROUP BY 1 ORDER BY 1",
        ),
        // The same aggregate spelled so that SQLite evaluates the extracts
        // and sorts (`(data)` is not rewritten): the path before the table
        // read `data ->> …` itself.
        (
            "aggregate, SQLite sorts",
            "SELECT (data)->>'$.stage', count(*), sum((data)->>'$.value') FROM records WHERE collection = 'deals' GROUP BY 1",
        ),
        // Where the time goes, step by step:
        (
            "scan only",
            "SELECT count(*) FROM records WHERE collection = 'deals'",
        ),
        (
            "scan + data column",
            "SELECT sum(length(data)) FROM records WHERE collection = 'deals'",
        ),
        (
            "+ one JSON extract",
            "SELECT sum(data->>'$.value') FROM records WHERE collection = 'deals'",
        ),
        (
            "+ two extracts",
            "SELECT count(data->>'$.stage'), sum(data->>'$.value') FROM records WHERE collection = 'deals'",
        ),
    ];
    let extra = std::env::var("SQL_BENCH_QUERY").ok();
    let extra = extra.iter().map(|q| ("custom", q.as_str()));
    for (name, q) in queries.into_iter().chain(extra) {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..5 {
            let (d, out) = run(q.to_string()).await;
            times.push(d);
            last = Some(out);
        }
        let out = last.expect("ran");
        println!(
            "{name:<22} {} rows   min {:>7.1} ms   median {:>7.1} ms",
            out.row_count,
            pct(times.clone(), 0.0),
            pct(times, 0.5)
        );
        if name.starts_with("aggregate (records)") {
            for r in &out.rows {
                println!("    {r:?}");
            }
        }
    }
    let mut times = Vec::new();
    for _ in 0..1000 {
        let (d, out) = run(format!("SELECT data FROM records WHERE id = '{first_id}'")).await;
        assert_eq!(out.row_count, 1);
        times.push(d);
    }
    println!(
        "{:<22} 1 row     p50 {:>7.3} ms   p99 {:>7.3} ms",
        "point lookup by id",
        pct(times.clone(), 0.5),
        pct(times, 0.99)
    );
}
