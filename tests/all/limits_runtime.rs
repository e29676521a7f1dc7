//! The sandbox's limits bound the whole cost of a call ("[trust 2/2]",
//! defects 1 and 6).
//!
//! - A spinning guest ran on an async worker until its deadline trap: two
//!   calls with a 10 s limit held `/health` for 12.5 s on a 2-worker server.
//! - `max_concurrency` was enforced by a semaphore replaced whenever a
//!   revision changed the cap, so calls holding the old one ran beside a full
//!   new one: alternating revisions had no cap.
//! - The runtime kept per-endpoint state by name only: a call still running
//!   when its endpoint was deleted logged into the log of the endpoint made
//!   next under that name, and the upload probe logged into a real endpoint
//!   named `upload`.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, build_component};
use crate::custom_components::upload;

const WS: &str = "acme--dev";

/// A workspace with a `notes` collection and the hostile component
/// uploaded; returns its digest.
async fn setup(s: &Server) -> String {
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "acme"})))
        .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/acme/previews",
        Some(json!({"name": "dev"})),
    )
    .await;
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/collections/notes"),
        Some(json!({"schema": {"type": "object"}})),
    )
    .await;
    let wasm = build_component("tests/hostile", "hostile");
    let (st, up) = upload(s, WS, std::fs::read(&wasm).unwrap()).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    up["digest"].as_str().unwrap().to_string()
}

async fn hostile(s: &Server, slug: &str, digest: &str, limits: Value) {
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/endpoints/{slug}"),
        Some(json!({
            "tools": [{"collection": "notes", "operations": ["list"]}],
            "component": digest,
            "limits": limits,
        })),
    )
    .await;
}

/// Calls `tool` of endpoint `slug` in the background.
fn spawn_call(s: &Server, slug: &str, tool: &str) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let req = s
        .http
        .post(format!("{}/v1/{WS}/endpoints/{slug}/tools/{tool}", s.url))
        .bearer_auth(&s.admin)
        .json(&json!({}));
    tokio::spawn(async move {
        let r = req.send().await.unwrap();
        let st = r.status();
        (st, r.json().await.unwrap_or(Value::Null))
    })
}

async fn log_lines(s: &Server, slug: &str) -> Vec<(String, String)> {
    let logs = s
        .ok(
            Method::GET,
            &format!("/v1/{WS}/endpoints/{slug}/logs?limit=1000"),
            None,
        )
        .await;
    logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["source"].as_str().unwrap().to_string(),
                l["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Defect 1: guests no longer hold the async workers. Four spinning calls
/// (twice as many as the server has workers) run for 4 s; meanwhile
/// `/health` and a generated tool of another endpoint keep answering. The
/// margin (1 s, against the 4 s the spinners held the workers before) is
/// wide on purpose: a loaded 2-core machine must not make it fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_guests_do_not_stall_the_server() {
    let s = Server::start();
    let digest = setup(&s).await;
    hostile(&s, "spinner", &digest, json!({"timeout_ms": 4000})).await;
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/endpoints/good"),
        Some(json!({"tools": [{"collection": "notes", "operations": ["list"]}]})),
    )
    .await;
    // Warm: the good endpoint's tool set is built before the spinners start.
    let (st, v) = spawn_call(&s, "good", "list_notes").await.unwrap();
    assert_eq!(st, StatusCode::OK, "{v}");

    let started = Instant::now();
    let spinners: Vec<_> = (0..4).map(|_| spawn_call(&s, "spinner", "spin")).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut health, mut good) = (Duration::ZERO, Duration::ZERO);
    let mut probes = 0;
    while started.elapsed() < Duration::from_millis(3000) {
        let t = Instant::now();
        let (st, _) = s.call(Method::GET, "/health", None, None).await;
        assert_eq!(st, StatusCode::OK);
        health = health.max(t.elapsed());
        let t = Instant::now();
        let (st, v) = spawn_call(&s, "good", "list_notes").await.unwrap();
        assert_eq!(st, StatusCode::OK, "{v}");
        good = good.max(t.elapsed());
        probes += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{probes} probes while 4 guests spun: /health max {health:?}, neighbour max {good:?}"
    );
    assert!(health < Duration::from_secs(1), "/health took {health:?}");
    assert!(good < Duration::from_secs(1), "the neighbour took {good:?}");
    let rss = s.peak_rss_mib();
    assert!(rss < 1024, "the server peaked at {rss} MiB");
    // The spinners still end at their own limit, with the usual error.
    for h in spinners {
        let (st, v) = h.await.unwrap();
        assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("ran past its 4000 ms time limit"), "{msg}");
    }
}

/// One thread of a process, from `/proc/<pid>/task/<tid>/stat`.
#[derive(Debug)]
struct Thread {
    name: String,
    state: char,
    nice: i64,
    /// User + system CPU time, in clock ticks (100 per second on Linux).
    ticks: u64,
}

fn threads(pid: u32) -> Vec<Thread> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            // "tid (name) state ppid …": the name may hold spaces and ')'.
            let (head, rest) = stat.rsplit_once(") ")?;
            let name = head.split_once(" (")?.1.to_string();
            // `rest` starts at field 3 (state); utime, stime and nice are
            // fields 14, 15 and 19.
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(Thread {
                name,
                state: f.first()?.chars().next()?,
                ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
                nice: f.get(16)?.parse().ok()?,
            })
        })
        .collect()
}

/// CPU time used so far by the server's threads other than its background
/// ones (request workers, blocking threads, writer, ticker), in
/// milliseconds.
fn request_threads_ms(s: &Server) -> u64 {
    threads(s.pid())
        .iter()
        .filter(|t| t.name != "mcpf-background")
        .map(|t| t.ticks * 10)
        .sum()
}

/// Samples the server's threads for up to 5 s until a background thread is
/// running (state R: running or runnable) at the background priority.
async fn background_thread_runs(s: &Server) -> Result<(), Vec<Thread>> {
    let started = Instant::now();
    loop {
        let now = threads(s.pid());
        let seen = now.iter().any(|t| {
            t.name == "mcpf-background"
                && t.state == 'R'
                && t.nice >= i64::from(mcp_factory::background::NICE)
        });
        if seen {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(5) {
            return Err(now);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Long-running work leaves the server's request threads for its
/// background threads, at a lower CPU priority (`host/src/background.rs`): a
/// spinning guest once past its first 10 ms, and every SQL query. Seen from
/// outside, in `/proc`: while it runs, a thread named `mcpf-background` at
/// nice ≥ 10 is running, and the request threads use almost no CPU (CPU
/// time, not wall time, so a loaded machine does not move it). Before, a
/// lone spinning guest kept its worker for ≈ 320 ms before it moved (a turn
/// taken at once resumed it within the same poll), and queries ran on the
/// request runtime's blocking threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_running_work_runs_at_a_lower_priority() {
    let s = Server::start_with(&["--sql-timeout-ms", "2000"]);
    let digest = setup(&s).await;
    hostile(&s, "spinner", &digest, json!({"timeout_ms": 2000})).await;
    let (st, v) = spawn_call(&s, "spinner", "list_notes").await.unwrap();
    assert_eq!(st, StatusCode::OK, "warm: {v}");

    let before = request_threads_ms(&s);
    let spinner = spawn_call(&s, "spinner", "spin");
    let seen = background_thread_runs(&s).await;
    assert!(
        seen.is_ok(),
        "no background thread ran the spinner: {seen:?}"
    );
    let (st, v) = spinner.await.unwrap();
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    let spent = request_threads_ms(&s) - before;
    eprintln!("spin: request threads {spent} ms");
    assert!(
        spent < 150,
        "request threads spent {spent} ms on a 2 s spin"
    );

    let before = request_threads_ms(&s);
    let query = s
        .http
        .post(format!("{}/v1/{WS}/sql", s.url))
        .bearer_auth(&s.admin)
        .json(&json!({"query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"}))
        .send();
    let query = tokio::spawn(query);
    let seen = background_thread_runs(&s).await;
    assert!(seen.is_ok(), "no background thread ran the query: {seen:?}");
    let r = query.await.unwrap().unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("time limit"), "{v}");
    let spent = request_threads_ms(&s) - before;
    assert!(
        spent < 150,
        "request threads spent {spent} ms on a 2 s query"
    );
}

/// Defect 6: a hot swap that changes `max_concurrency` resizes the
/// endpoint's one gate instead of replacing it. Revisions alternate between
/// a cap of 1 and 2 while five calls arrive (four of them spin for 8 s);
/// whatever their order, at most two hold a slot at once, so at least three
/// had to wait — the host says so in the endpoint's log. Before, each
/// revision brought a fresh semaphore and no call ever waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_cap_survives_hot_swaps() {
    let s = Server::start();
    let digest = setup(&s).await;
    let mut calls = Vec::new();
    for cap in [1, 2, 1, 2] {
        hostile(
            &s,
            "capped",
            &digest,
            json!({"timeout_ms": 8000, "max_concurrency": cap}),
        )
        .await;
        calls.push(spawn_call(&s, "capped", "spin"));
        // Let the call reach the gate before the next revision (ordering is
        // not needed for the assertion, only for "before" to show it).
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    calls.push(spawn_call(&s, "capped", "ok"));
    let waited = |lines: &[(String, String)]| {
        lines
            .iter()
            .filter(|(src, m)| src == "host" && m.contains("slots of this endpoint are busy"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut lines = log_lines(&s, "capped").await;
    while waited(&lines) < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        lines = log_lines(&s, "capped").await;
    }
    assert!(
        waited(&lines) >= 3,
        "calls beyond the cap must wait: {lines:?}"
    );
    let ok = calls.pop().unwrap();
    for c in calls {
        let (st, v) = c.await.unwrap();
        // Each spinner ends: at its time limit, or refused for want of a slot.
        assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    }
    // `ok` ends too: answered once a slot freed, or refused for want of one.
    let (st, v) = ok.await.unwrap();
    assert!(
        st == StatusCode::OK || v["error"]["message"].as_str().is_some(),
        "{st}: {v}"
    );
    // Once they are done, the cap (2, the last revision's) is whole again.
    hostile(
        &s,
        "capped",
        &digest,
        json!({"timeout_ms": 8000, "max_concurrency": 2}),
    )
    .await;
    let (st, v) = spawn_call(&s, "capped", "ok").await.unwrap();
    assert_eq!((st, &v["content"]), (StatusCode::OK, &json!({"ok": true})));
}

/// Defect 6: a call still running when its endpoint is deleted logs into
/// its own (dropped) log, not into the one of an endpoint made later under
/// the same name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_endpoint_leaves_nothing_to_its_successor() {
    let s = Server::start();
    let digest = setup(&s).await;
    hostile(&s, "again", &digest, json!({"timeout_ms": 1500})).await;
    let spinning = spawn_call(&s, "again", "spin");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.ok(Method::DELETE, &format!("/v1/{WS}/endpoints/again"), None)
        .await;
    let (st, v) = spinning.await.unwrap();
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    // Made anew: same name, nothing of the old one.
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/endpoints/again"),
        Some(json!({"tools": [{"collection": "notes", "operations": ["list"]}]})),
    )
    .await;
    assert_eq!(log_lines(&s, "again").await, Vec::new());
}

/// Defect 6: uploading a component lists its tools in a probe; what the
/// component prints then belongs to no endpoint, least of all one a user
/// named `upload`.
#[tokio::test]
async fn the_upload_probe_logs_into_no_endpoint() {
    let s = Server::start();
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "acme"})))
        .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/acme/previews",
        Some(json!({"name": "dev"})),
    )
    .await;
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/collections/notes"),
        Some(json!({"schema": {"type": "object"}})),
    )
    .await;
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/endpoints/upload"),
        Some(json!({"tools": [{"collection": "notes", "operations": ["list"]}]})),
    )
    .await;
    let (st, v) = spawn_call(&s, "upload", "list_notes").await.unwrap();
    assert_eq!(st, StatusCode::OK, "{v}");
    let wasm = build_component("tests/hostile", "hostile");
    let (st, up) = upload(&s, WS, std::fs::read(&wasm).unwrap()).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    assert_eq!(log_lines(&s, "upload").await, Vec::new());
    // The component's own endpoint does log its listing.
    hostile(&s, "uses", up["digest"].as_str().unwrap(), json!({})).await;
    let (st, v) = spawn_call(&s, "uses", "ok").await.unwrap();
    assert_eq!(st, StatusCode::OK, "{v}");
    let lines = log_lines(&s, "uses").await;
    assert!(
        lines
            .iter()
            .any(|(src, m)| src == "stdout" && m == "hostile lists its tools"),
        "{lines:?}"
    );
}
