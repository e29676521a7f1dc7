//! Crash safety: a server killed with SIGKILL while clients write loses no
//! acknowledged write and leaves no partial one. Each cycle runs concurrent
//! single-record writers and a batch writer, kills the server mid-stream,
//! restarts it on the same redb file and checks every acknowledged write
//! (and that every batch is all-or-nothing).
//!
//! `MCP_FACTORY_CRASH_CYCLES` raises the cycle count for longer runs
//! (scripts/crash-loop.sh).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Server;

const BATCH: usize = 5;

fn payload(key: &str) -> Value {
    // Big enough to span pages; the checksum field makes a torn write visible.
    let body = key.repeat(40);
    json!({"key": key, "body": body, "len": body.len()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write() {
    let cycles: usize = std::env::var("MCP_FACTORY_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut s = Server::start();
    s.setup(
        "crash",
        "items",
        json!({"type": "object", "required": ["key", "body", "len"]}),
    )
    .await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let batches_acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let batches_tried: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut total_acked = 0;
    for cycle in 0..cycles {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut writers = Vec::new();
        for w in 0..8 {
            let (http, url, token, acked) =
                (http.clone(), s.url.clone(), s.admin.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("k{cycle}-{w}-{i}");
                    let body =
                        json!({"external_id": key, "external_source": "t", "data": payload(&key)});
                    let r = http
                        .put(format!("{url}/v1/crash/records/items"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => acked.lock().unwrap().push(key),
                        _ => break,
                    }
                }
            }));
        }
        {
            let (http, url, token) = (http.clone(), s.url.clone(), s.admin.clone());
            let (done, tried) = (batches_acked.clone(), batches_tried.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let tag = format!("b{cycle}-{i}");
                    let ops: Vec<Value> = (0..BATCH)
                        .map(|j| {
                            let key = format!("{tag}-{j}");
                            json!({"type": "upsert_record", "collection": "items", "external_id": key, "external_source": "t", "data": payload(&key)})
                        })
                        .collect();
                    tried.lock().unwrap().push(tag.clone());
                    let r = http.post(format!("{url}/v1/crash/batch")).bearer_auth(&token).json(&json!({"operations": ops})).send().await;
                    match r {
                        Ok(r) if r.status().is_success() => done.lock().unwrap().push(tag),
                        _ => break,
                    }
                }
            }));
        }
        // Let writes flow, then kill mid-stream.
        tokio::time::sleep(Duration::from_millis(150 + (cycle as u64 * 37) % 200)).await;
        s.kill();
        for w in writers {
            w.await.unwrap();
        }
        s.restart();

        // Every acknowledged single write is there, whole.
        let keys = acked.lock().unwrap().clone();
        for key in keys.iter().skip(total_acked) {
            let (st, v) = s
                .call(
                    Method::GET,
                    &format!("/v1/crash/records/items/{key}"),
                    Some(&s.admin),
                    None,
                )
                .await;
            assert!(
                st.is_success(),
                "cycle {cycle}: acknowledged {key} lost: {st} {v}"
            );
            assert_eq!(
                v["data"],
                payload(key),
                "cycle {cycle}: {key} is not what was written"
            );
        }
        total_acked = keys.len();
        // Every batch is all or nothing; acknowledged ones are all.
        let done = batches_acked.lock().unwrap().clone();
        let prefix = format!("b{cycle}-");
        let tried: Vec<String> = batches_tried
            .lock()
            .unwrap()
            .iter()
            .filter(|t| t.starts_with(&prefix))
            .cloned()
            .collect();
        for tag in &tried {
            let mut present = 0;
            for j in 0..BATCH {
                let (st, v) = s
                    .call(
                        Method::GET,
                        &format!("/v1/crash/records/items/{tag}-{j}"),
                        Some(&s.admin),
                        None,
                    )
                    .await;
                if st.is_success() {
                    assert_eq!(v["data"], payload(&format!("{tag}-{j}")));
                    present += 1;
                }
            }
            assert!(
                present == 0 || present == BATCH,
                "cycle {cycle}: batch {tag} is partial ({present}/{BATCH})"
            );
            if done.contains(tag) {
                assert_eq!(
                    present, BATCH,
                    "cycle {cycle}: acknowledged batch {tag} lost"
                );
            }
        }
    }
    assert!(
        total_acked > cycles * 10,
        "the test wrote too little to mean anything: {total_acked}"
    );
    eprintln!(
        "{cycles} SIGKILL cycles, {total_acked} acknowledged writes, {} acknowledged batches, all present",
        batches_acked.lock().unwrap().len()
    );
}
