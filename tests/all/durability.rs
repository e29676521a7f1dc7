//! Crash safety: a server killed with SIGKILL while clients write loses no
//! acknowledged write and leaves no partial one, and every write's trigger
//! event is delivered at least once (and no event exists without its
//! write). Each cycle runs concurrent single-record writers and a batch
//! writer while a trigger delivers to a receiver that is fine, slow or
//! failing by turns, kills the server mid-stream, restarts it on the same
//! redb file and checks every acknowledged write (and that every batch is
//! all-or-nothing); at the end the receiver recovers and the test checks
//! what it received against what the store holds.
//!
//! `MCP_FACTORY_CRASH_CYCLES` raises the cycle count for longer runs
//! (scripts/crash-loop.sh).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Receiver, Server};

const BATCH: usize = 5;

fn payload(key: &str) -> Value {
    // Big enough to span pages; the checksum field makes a torn write visible.
    let body = key.repeat(40);
    json!({"key": key, "body": body, "len": body.len()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write_nor_its_trigger_event() {
    let cycles: usize = std::env::var("MCP_FACTORY_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    // Many quick retries: a receiver that fails for a few cycles must not
    // exhaust them.
    let schedule = format!("0s{}", ",300ms".repeat(60));
    let mut s = Server::start_with(&[
        "--egress-allow",
        "127.0.0.1",
        "--delivery-schedule",
        &schedule,
        "--delivery-timeout-ms",
        "2000",
    ]);
    s.setup(
        "crash",
        "items",
        json!({"type": "object", "required": ["key", "body", "len"]}),
    )
    .await;
    let rx = Receiver::start();
    s.ok(
        Method::POST,
        "/v1/crash--dev/triggers",
        Some(json!({"name": "out", "collection": "items", "url": rx.url, "events": ["create"]})),
    )
    .await;
    let p = s
        .ok(
            Method::POST,
            "/v1/workspaces/crash/promote",
            Some(json!({"from": "crash--dev"})),
        )
        .await;
    let secret = p["secrets"][0]["secret"].as_str().unwrap().to_string();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let batches_acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let batches_tried: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut total_acked = 0;
    for cycle in 0..cycles {
        // The receiver is fine, slow, or failing, by turns.
        let mode = match cycle % 3 {
            0 => json!({"ok": true}),
            1 => json!({"slow_ms": 150}),
            _ => json!({"status": 503}),
        };
        rx.control(&[&secret], mode).await;
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
    // The receiver recovers; the queue drains.
    rx.control(&[&secret], json!({"ok": true})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let t = s.ok(Method::GET, "/v1/crash/triggers/out", None).await;
        assert_eq!(t["dead"], 0, "no event ran out of retries: {t}");
        if t["pending"] == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the queue did not drain: {t}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // What the store holds (acknowledged or not: a write whose answer was
    // lost to the kill may have committed).
    let mut committed = std::collections::BTreeSet::new();
    for offset in (0..).step_by(1000) {
        let page = s
            .ok(
                Method::GET,
                &format!("/v1/crash/records/items?limit=1000&offset={offset}"),
                None,
            )
            .await;
        let rows = page["data"].as_array().unwrap();
        committed.extend(
            rows.iter()
                .map(|r| r["external_id"].as_str().unwrap().to_string()),
        );
        if rows.len() < 1000 {
            break;
        }
    }
    let received = rx.requests();
    assert!(
        received.iter().all(|r| r["verified"] == true),
        "every delivery verifies"
    );
    let delivered: std::collections::BTreeSet<String> = received
        .iter()
        .filter(|r| r["status"] == 204)
        .map(|r| {
            r["body"]["data"]["external_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let missing: Vec<&String> = committed.difference(&delivered).take(5).collect();
    assert!(
        missing.is_empty(),
        "committed writes whose event never arrived: {missing:?}"
    );
    let ghosts: Vec<&String> = delivered.difference(&committed).take(5).collect();
    assert!(
        ghosts.is_empty(),
        "events for writes that never committed: {ghosts:?}"
    );
    // In order: each event is first seen after every event before it.
    let mut seen = std::collections::HashSet::new();
    let mut last = 0;
    for r in &received {
        if seen.insert(r["webhook_id"].as_str().unwrap().to_string()) {
            let seq = r["body"]["sequence"].as_u64().unwrap();
            assert!(seq > last, "event {seq} first arrived after {last}");
            last = seq;
        }
    }
    let resent = received.len() - seen.len();
    eprintln!(
        "{cycles} SIGKILL cycles, {total_acked} acknowledged writes, {} acknowledged batches, all present; \
         {} committed writes, each delivered ({} requests, {resent} of them repeats)",
        batches_acked.lock().unwrap().len(),
        committed.len(),
        received.len()
    );
}
