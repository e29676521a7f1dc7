//! MCP load: `tools/call` of a generated `get_items` tool through the real
//! `mcp-factory` binary (a separate process, release build) over Streamable
//! HTTP, at 1 and 32 concurrent MCP sessions. Each session is initialized
//! once, then calls in a loop; every call goes through auth, endpoint
//! resolution, rmcp, host-side argument validation and the Wasm sandbox.
//!
//! Run: `cargo bench -p mcp-factory --bench mcp_load` (`BENCH_SECONDS`
//! per case, default 5). Results: docs/benchmarks.md.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-factory");

struct Server {
    url: String,
    admin: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0"])
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn mcp-factory");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut url, mut admin) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.expect("line");
        if line.trim().starts_with("mcpf_") {
            admin = line.trim().to_string();
        }
        if let Some(rest) = line.strip_prefix("mcp-factory listening on ") {
            url = rest.split_whitespace().next().expect("url").to_string();
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server {
        url,
        admin,
        child,
        _dir: dir,
    }
}

async fn rest(
    c: &reqwest::Client,
    s: &Server,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let r = c
        .request(method, format!("{}{path}", s.url))
        .bearer_auth(&s.admin)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = r.status();
    let v: Value = r.json().await.expect("json");
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// One initialized MCP session.
struct Session {
    client: reqwest::Client,
    url: String,
    token: String,
    id: String,
}

impl Session {
    async fn open(client: reqwest::Client, url: String, token: String) -> Session {
        let r = client
            .post(&url)
            .bearer_auth(&token)
            .header("Accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "mcp-load", "version": "1"}}}),
            )
            .send()
            .await
            .expect("initialize");
        assert!(r.status().is_success(), "initialize: {}", r.status());
        let id = r.headers()["mcp-session-id"]
            .to_str()
            .expect("id")
            .to_string();
        r.bytes().await.expect("body");
        let s = Session {
            client,
            url,
            token,
            id,
        };
        let r = s
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(r.status(), 202);
        s
    }

    async fn post(&self, body: Value) -> reqwest::Response {
        self.client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Accept", "application/json, text/event-stream")
            .header("Mcp-Session-Id", &self.id)
            .header("MCP-Protocol-Version", "2025-11-25")
            .json(&body)
            .send()
            .await
            .expect("send")
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dur = Duration::from_secs(secs);
    let s = start();
    let c = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("client");
    use reqwest::Method;
    rest(
        &c,
        &s,
        Method::POST,
        "/v1/workspaces",
        json!({"id": "bench"}),
    )
    .await;
    rest(
        &c,
        &s,
        Method::POST,
        "/v1/workspaces/bench/previews",
        json!({"name": "dev"}),
    )
    .await;
    rest(&c, &s, Method::PUT, "/v1/bench--dev/collections/items", json!({"schema": {
        "type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}, "required": ["name"]}})).await;
    rest(
        &c,
        &s,
        Method::PUT,
        "/v1/bench--dev/endpoints/load",
        json!({
        "tools": [{"collection": "items", "operations": ["get", "list"]}]}),
    )
    .await;
    rest(
        &c,
        &s,
        Method::POST,
        "/v1/workspaces/bench/promote",
        json!({"from": "bench--dev"}),
    )
    .await;
    let rec = rest(
        &c,
        &s,
        Method::PUT,
        "/v1/bench/records/items",
        json!({"data": {"name": "seed", "n": 1}}),
    )
    .await;
    let id = rec["id"].as_str().expect("id").to_string();
    let token = rest(
        &c,
        &s,
        Method::POST,
        "/v1/tokens",
        json!({"name": "agent", "grants": [
        {"scope": {"workspaces": ["bench"]}, "permissions": ["read:records"]}]}),
    )
    .await["token"]
        .as_str()
        .expect("token")
        .to_string();
    let url = format!("{}/e/load/mcp", s.url);
    println!(
        "MCP tools/call get_items over Streamable HTTP, {secs} s per case; server: release binary, own process; client: 2 tokio workers\n"
    );
    for sessions in [1usize, 32] {
        let mut open = Vec::new();
        for _ in 0..sessions {
            let client = reqwest::Client::builder()
                .tcp_nodelay(true)
                .build()
                .expect("client");
            open.push(Arc::new(
                Session::open(client, url.clone(), token.clone()).await,
            ));
        }
        // Warm up (compiles and caches the component on the first call).
        for sess in &open {
            sess.post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "get_items", "arguments": {"id": id}}}))
                .await
                .bytes()
                .await
                .expect("warm");
        }
        let start = Instant::now();
        let mut tasks = Vec::new();
        for sess in open {
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut n = 2u64;
                while start.elapsed() < dur {
                    let t = Instant::now();
                    let r = sess
                        .post(json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                            "params": {"name": "get_items", "arguments": {"id": id}}}))
                        .await;
                    assert!(r.status().is_success());
                    let body = r.bytes().await.expect("body");
                    assert!(
                        memchr(&body, b"\"isError\":false"),
                        "{}",
                        String::from_utf8_lossy(&body)
                    );
                    lat.push(t.elapsed());
                    n += 1;
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.expect("task"));
        }
        let elapsed = start.elapsed().as_secs_f64();
        lat.sort();
        let pct =
            |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
        println!(
            "sessions={sessions:<3} calls={:<7} {:>8.0} calls/s   p50={:>6.2} ms   p99={:>6.2} ms",
            lat.len(),
            lat.len() as f64 / elapsed,
            pct(0.50),
            pct(0.99)
        );
    }
}

fn memchr(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
