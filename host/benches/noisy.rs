//! Noisy neighbour: does one workspace's hostile load slow down another's
//! well-behaved endpoint, or the server itself? (Issue "[trust 2/2]",
//! acceptance item 1.)
//!
//! Starts the real `mcp-factory` binary (release, own process, temp data
//! dir) and sets up two workspaces:
//!
//! - **B** (`b`, production): an endpoint with a generated `get_items`
//!   tool, called by `NOISY_B_CLIENTS` MCP sessions over Streamable HTTP
//!   (`/e/shop/mcp`), first alone for `NOISY_IDLE_SECS` (idle latency),
//!   then during the attack window.
//! - **A** (`a--dev`): the hostile test component (`tests/hostile`, built
//!   for wasm32-wasip2 here) behind an endpoint with `limits.timeout_ms`,
//!   and a collection of `NOISY_RECORDS` records. For `NOISY_WINDOW_SECS`
//!   A runs, all at once and each re-issued as soon as it finishes:
//!   `NOISY_SPINNERS` calls of the spinning custom tool, `NOISY_SQL`
//!   expensive SQL queries (a LIKE that is one SQLite instruction, a
//!   recursive CTE of `zeroblob`s, a cross join of the big collection,
//!   round-robin) and `NOISY_LISTS` lists of the big collection.
//!
//! Throughout, a thread polls `/health` every ~10 ms and another samples
//! the server's VmRSS/VmHWM every 50 ms, killing the server (and saying so)
//! if VmRSS passes `NOISY_RSS_KILL_MIB`, so that a broken build cannot take
//! the machine down. Every request has a client-side cap, so a frozen
//! server yields numbers, not a hang: B's calls `NOISY_CALL_TIMEOUT_SECS`,
//! A's calls the end of the window plus `NOISY_GRACE_SECS` (then they are
//! reported as unfinished).
//!
//! The bar (printed as PASS/FAIL): B's p99 under attack ≤ 2× its idle p99,
//! `/health` under 50 ms throughout the window, peak RSS under 1 GiB.
//! Other env vars: `NOISY_GRACE_SECS`, `NOISY_HEALTH_TIMEOUT_SECS`,
//! `NOISY_LIST_LIMIT`, `NOISY_SPIN_TIMEOUT_MS`, `NOISY_ZEROBLOB_ROWS`.
//!
//! Run: `cargo bench -p mcp-factory --bench noisy -j2`. Results:
//! docs/benchmarks.md ("[trust 2/2]").

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-factory");

/// The fairness bar of the issue.
const MAX_P99_RATIO: f64 = 2.0;
const MAX_HEALTH: Duration = Duration::from_millis(50);
const MAX_RSS_MIB: u64 = 1024;

// ---- configuration ----

#[derive(Debug, Clone)]
struct Config {
    idle: Duration,
    window: Duration,
    grace: Duration,
    b_clients: usize,
    call_timeout: Duration,
    health_timeout: Duration,
    spinners: usize,
    spin_timeout_ms: u64,
    sql: usize,
    lists: usize,
    list_limit: usize,
    records: usize,
    zeroblob_rows: usize,
    rss_kill_mib: u64,
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .with_context(|| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

impl Config {
    fn from_env() -> Result<Config> {
        let secs = |n, d| env_num(n, d).map(Duration::from_secs);
        Ok(Config {
            idle: secs("NOISY_IDLE_SECS", 10)?,
            window: secs("NOISY_WINDOW_SECS", 30)?,
            grace: secs("NOISY_GRACE_SECS", 10)?,
            b_clients: env_num("NOISY_B_CLIENTS", 16)?,
            call_timeout: secs("NOISY_CALL_TIMEOUT_SECS", 15)?,
            health_timeout: secs("NOISY_HEALTH_TIMEOUT_SECS", 15)?,
            spinners: env_num("NOISY_SPINNERS", 8)?,
            spin_timeout_ms: env_num("NOISY_SPIN_TIMEOUT_MS", 2000)?,
            sql: env_num("NOISY_SQL", 4)?,
            lists: env_num("NOISY_LISTS", 1)?,
            list_limit: env_num("NOISY_LIST_LIMIT", 20)?,
            records: env_num("NOISY_RECORDS", 100_000)?,
            // 30 × 16 MB is the issue's figure (2 GB today); more would
            // risk the machine on today's code.
            zeroblob_rows: env_num("NOISY_ZEROBLOB_ROWS", 30)?,
            rss_kill_mib: env_num("NOISY_RSS_KILL_MIB", 4096)?,
        })
    }
}

// ---- the server process ----

struct Server {
    url: String,
    admin: String,
    pid: u32,
    /// Shared with the RSS sampler, which may kill it.
    child: Arc<Mutex<Child>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn mcp-factory")?;
        let pid = child.id();
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let (mut url, mut admin) = (String::new(), String::new());
        for line in lines.by_ref() {
            let line = line?;
            if line.trim().starts_with("mcpf_") {
                admin = line.trim().to_string();
            }
            if let Some(rest) = line.strip_prefix("mcp-factory listening on ") {
                url = rest.split_whitespace().next().unwrap_or_default().into();
                break;
            }
        }
        if url.is_empty() || admin.is_empty() {
            bail!("the server exited before printing its URL and admin token");
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Server {
            url,
            admin,
            pid,
            child: Arc::new(Mutex::new(child)),
            _dir: dir,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut c = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// `VmRSS` and `VmHWM` of `pid`, in MiB; `None` once it is gone.
fn rss_mib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib / 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[derive(Default, Debug, Clone)]
struct Memory {
    peak_rss_mib: u64,
    hwm_mib: u64,
    /// Seconds into the attack window when the sampler killed the server.
    killed_at: Option<f64>,
}

/// Samples the server's memory every 50 ms until `stop`; kills it if VmRSS
/// passes `kill_mib`.
fn sample_memory(
    s: &Server,
    kill_mib: u64,
    window_start: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Memory> {
    let (pid, child) = (s.pid, s.child.clone());
    std::thread::spawn(move || {
        let mut m = Memory::default();
        while !stop.load(Ordering::Relaxed) {
            let Some((rss, hwm)) = rss_mib(pid) else {
                break;
            };
            m.peak_rss_mib = m.peak_rss_mib.max(rss);
            m.hwm_mib = m.hwm_mib.max(hwm);
            if rss > kill_mib && m.killed_at.is_none() {
                let mut c = child.lock().unwrap_or_else(|e| e.into_inner());
                let _ = c.kill();
                let _ = c.wait();
                let since = window_start.lock().unwrap_or_else(|e| e.into_inner());
                m.killed_at = Some(since.map_or(0.0, |t| t.elapsed().as_secs_f64()));
                eprintln!("noisy: server VmRSS {rss} MiB passed {kill_mib} MiB; killed it");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    })
}

// ---- /health poller ----

/// Which phase a `/health` sample belongs to.
const PHASE_SETUP: u8 = 0;
const PHASE_IDLE: u8 = 1;
const PHASE_ATTACK: u8 = 2;

#[derive(Default)]
struct Health {
    idle: Vec<Duration>,
    attack: Vec<Duration>,
    /// Failed or capped polls (idle or attack).
    failures: usize,
    /// Polls that hit the client cap: `max` is then a lower bound.
    timeouts: usize,
    first_failure: Option<String>,
}

/// Polls `/health` every ~10 ms (sequentially, each capped at `cap`) on
/// its own thread and runtime, so the load generator's tasks cannot delay
/// it.
fn poll_health(
    url: String,
    cap: Duration,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Health> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        rt.block_on(async move {
            let client = reqwest::Client::builder()
                .tcp_nodelay(true)
                .timeout(cap)
                .build()
                .expect("an HTTP client");
            let mut h = Health::default();
            while !stop.load(Ordering::Relaxed) {
                let p = phase.load(Ordering::Relaxed);
                let t = Instant::now();
                let r = match client.get(format!("{url}/health")).send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.map(drop).map_err(describe),
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(describe(e)),
                };
                let took = t.elapsed();
                let samples = match p {
                    PHASE_IDLE => Some(&mut h.idle),
                    PHASE_ATTACK => Some(&mut h.attack),
                    _ => None,
                };
                if let Some(samples) = samples {
                    samples.push(took);
                    if let Err(e) = r {
                        h.failures += 1;
                        h.timeouts += usize::from(e == TIMEOUT);
                        h.first_failure.get_or_insert(e);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            h
        })
    })
}

// ---- REST set-up ----

async fn rest(
    c: &reqwest::Client,
    s: &Server,
    method: Method,
    path: &str,
    body: Value,
) -> Result<Value> {
    let r = c
        .request(method.clone(), format!("{}{path}", s.url))
        .bearer_auth(&s.admin)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("{method} {path}"))?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("{method} {path}: {status} {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// What the attack needs to know after set-up.
struct Setup {
    /// B's MCP URL and its token.
    b_url: String,
    b_token: String,
    b_record: String,
}

async fn setup(s: &Server, cfg: &Config, hostile: Vec<u8>) -> Result<Setup> {
    let c = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(120))
        .build()?;
    let items = json!({"type": "object",
        "properties": {"name": {"type": "string"}, "n": {"type": "integer"}, "note": {"type": "string"}},
        "required": ["name"]});
    for ws in ["a", "b"] {
        rest(&c, s, Method::POST, "/v1/workspaces", json!({"id": ws})).await?;
        rest(
            &c,
            s,
            Method::POST,
            &format!("/v1/workspaces/{ws}/previews"),
            json!({"name": "dev"}),
        )
        .await?;
    }

    // B: a generated endpoint in production, one record, a token for b.
    rest(
        &c,
        s,
        Method::PUT,
        "/v1/b--dev/collections/items",
        json!({"schema": items}),
    )
    .await?;
    rest(
        &c,
        s,
        Method::PUT,
        "/v1/b--dev/endpoints/shop",
        json!({"tools": [{"collection": "items", "operations": ["get", "list"]}]}),
    )
    .await?;
    rest(
        &c,
        s,
        Method::POST,
        "/v1/workspaces/b/promote",
        json!({"from": "b--dev"}),
    )
    .await?;
    let rec = rest(
        &c,
        s,
        Method::PUT,
        "/v1/b/records/items",
        json!({"data": {"name": "seed", "n": 1}}),
    )
    .await?;
    let b_record = rec["id"].as_str().context("record id")?.to_string();
    let b_token = rest(
        &c,
        s,
        Method::POST,
        "/v1/tokens",
        json!({"name": "agent-b", "grants": [
            {"scope": {"workspaces": ["b"]}, "permissions": ["read:records"]}]}),
    )
    .await?["token"]
        .as_str()
        .context("token")?
        .to_string();

    // A: the big collection, the hostile component behind an endpoint.
    rest(
        &c,
        s,
        Method::PUT,
        "/v1/a--dev/collections/big",
        json!({"schema": items}),
    )
    .await?;
    let load = Instant::now();
    let batches: Vec<Vec<Value>> = (0..cfg.records)
        .map(|i| {
            json!({"type": "upsert_record", "collection": "big", "external_id": format!("r{i}"),
                "data": {"name": format!("record {i}"), "n": i,
                         "note": "a note long enough to make decoding a record cost something"}})
        })
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(<[Value]>::to_vec)
        .collect();
    // Two loaders: group commit takes both batches in one fsync.
    let queue = Arc::new(Mutex::new(batches));
    let mut loaders = Vec::new();
    for _ in 0..2 {
        let (c, queue) = (c.clone(), queue.clone());
        let (url, admin) = (s.url.clone(), s.admin.clone());
        loaders.push(tokio::spawn(async move {
            loop {
                let Some(ops) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                    return Ok::<(), anyhow::Error>(());
                };
                let r = c
                    .post(format!("{url}/v1/a--dev/batch"))
                    .bearer_auth(&admin)
                    .json(&json!({"operations": ops}))
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("loading records: {} {}", r.status(), r.text().await?);
                }
            }
        }));
    }
    for l in loaders {
        l.await??;
    }
    println!(
        "loaded {} records into a--dev/big in {:.1} s",
        cfg.records,
        load.elapsed().as_secs_f64()
    );

    let (st, up) = {
        let r = c
            .post(format!("{}/v1/a--dev/plugins", s.url))
            .bearer_auth(&s.admin)
            .header("content-type", "application/wasm")
            .body(hostile)
            .send()
            .await?;
        (r.status(), r.text().await?)
    };
    if !st.is_success() {
        bail!("uploading tests/hostile: {st} {up}");
    }
    let up: Value = serde_json::from_str(&up)?;
    rest(
        &c,
        s,
        Method::PUT,
        "/v1/a--dev/endpoints/hostile",
        json!({
            "tools": [{"collection": "big", "operations": ["get"]}],
            "component": up["digest"],
            "limits": {"timeout_ms": cfg.spin_timeout_ms,
                       "max_concurrency": cfg.spinners.max(8)}
        }),
    )
    .await?;
    // Compile and cache the component before any measurement.
    rest(
        &c,
        s,
        Method::POST,
        "/v1/a--dev/endpoints/hostile/tools/ok",
        json!({}),
    )
    .await?;
    Ok(Setup {
        b_url: format!("{}/e/shop/mcp", s.url),
        b_token,
        b_record,
    })
}

// ---- B: MCP sessions ----

/// One initialized MCP session over Streamable HTTP.
struct Session {
    client: reqwest::Client,
    url: String,
    token: String,
    id: String,
}

impl Session {
    async fn open(url: &str, token: &str, timeout: Duration) -> Result<Session> {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(timeout)
            .build()?;
        let r = client
            .post(url)
            .bearer_auth(token)
            .header("Accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "noisy", "version": "1"}}}),
            )
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("initialize: {}", r.status());
        }
        let id = r
            .headers()
            .get("mcp-session-id")
            .context("no mcp-session-id")?
            .to_str()?
            .to_string();
        r.bytes().await?;
        let s = Session {
            client,
            url: url.into(),
            token: token.into(),
            id,
        };
        let r = s
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        if r.status() != 202 {
            bail!("notifications/initialized: {}", r.status());
        }
        Ok(s)
    }

    async fn post(&self, body: &Value) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Accept", "application/json, text/event-stream")
            .header("Mcp-Session-Id", &self.id)
            .header("MCP-Protocol-Version", "2025-11-25")
            .json(body)
            .send()
            .await
    }

    /// One `tools/call get_items`; `Err` says why it did not succeed.
    async fn get_item(&self, n: u64, id: &str) -> std::result::Result<(), String> {
        let body = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
            "params": {"name": "get_items", "arguments": {"id": id}}});
        let r = self.post(&body).await.map_err(describe)?;
        let status = r.status();
        let bytes = r.bytes().await.map_err(describe)?;
        if !status.is_success() || !contains(&bytes, b"\"isError\":false") {
            return Err(format!(
                "{status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ));
        }
        Ok(())
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// How [`describe`] names a request that hit its client-side cap.
const TIMEOUT: &str = "client timeout";

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        TIMEOUT.into()
    } else {
        format!("{e}")
    }
}

#[derive(Default)]
struct Calls {
    /// Latency of every call, failed ones included (a capped call counts
    /// with its cap, a lower bound).
    lat: Vec<Duration>,
    errors: usize,
    timeouts: usize,
    first_error: Option<String>,
}

impl Calls {
    fn merge(&mut self, o: Calls) {
        self.lat.extend(o.lat);
        self.errors += o.errors;
        self.timeouts += o.timeouts;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
}

/// Every session calls `get_items` in a loop for `dur`.
async fn drive_b(sessions: &[Arc<Session>], record: &str, dur: Duration) -> Calls {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for sess in sessions {
        let (sess, record) = (sess.clone(), record.to_string());
        tasks.push(tokio::spawn(async move {
            let mut c = Calls::default();
            let mut n = 1u64;
            while start.elapsed() < dur {
                let t = Instant::now();
                let r = sess.get_item(n, &record).await;
                c.lat.push(t.elapsed());
                if let Err(e) = r {
                    c.errors += 1;
                    if e == TIMEOUT {
                        c.timeouts += 1;
                    }
                    c.first_error.get_or_insert(e);
                }
                n += 1;
            }
            c
        }));
    }
    let mut all = Calls::default();
    for t in tasks {
        match t.await {
            Ok(c) => all.merge(c),
            Err(e) => {
                all.errors += 1;
                all.first_error.get_or_insert(format!("client task: {e}"));
            }
        }
    }
    all.lat.sort();
    all
}

// ---- A: the attack ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    Spin,
    Like,
    Zeroblob,
    CrossJoin,
    List,
}

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Attack::Spin => "spin (custom tool)",
            Attack::Like => "SQL LIKE",
            Attack::Zeroblob => "SQL zeroblob CTE",
            Attack::CrossJoin => "SQL cross join",
            Attack::List => "list big",
        }
    }
}

/// What one kind of attack request got back during the window.
#[derive(Default)]
struct Outcomes {
    ok: usize,
    /// Answered with an error status (for `spin` the expected answer).
    refused: usize,
    /// Still unanswered at the end of the window plus grace.
    unfinished: usize,
    /// Connection errors (a killed server, a reset).
    transport: usize,
    /// Time to the answer of answered requests.
    answered: Vec<Duration>,
    /// The first distinct error messages, at most three.
    messages: Vec<String>,
    max_body: usize,
}

impl Outcomes {
    fn note(&mut self, m: String) {
        if self.messages.len() < 3 && !self.messages.contains(&m) {
            self.messages.push(m);
        }
    }

    fn merge(&mut self, o: Outcomes) {
        self.ok += o.ok;
        self.refused += o.refused;
        self.unfinished += o.unfinished;
        self.transport += o.transport;
        self.answered.extend(o.answered);
        self.max_body = self.max_body.max(o.max_body);
        for m in o.messages {
            self.note(m);
        }
    }
}

fn request(c: &reqwest::Client, s: &Server, cfg: &Config, kind: Attack) -> reqwest::RequestBuilder {
    let sql = |q: String| {
        c.post(format!("{}/v1/a--dev/sql", s.url))
            .json(&json!({"query": q}))
    };
    let b = match kind {
        Attack::Spin => c
            .post(format!("{}/v1/a--dev/endpoints/hostile/tools/spin", s.url))
            .json(&json!({})),
        // One LIKE over a 10 MB string is one SQLite instruction.
        Attack::Like => sql(
            "select printf('%.*c',10000000,'a') LIKE '%' || printf('%.*c',1500,'a') || 'b' as hit"
                .into(),
        ),
        // Rows of 16 MB blobs, hex-doubled in the answer.
        Attack::Zeroblob => sql(format!(
            "with recursive r(i) as (select 1 union all select i + 1 from r where i < {}) \
             select i, zeroblob(16000000) as z from r",
            cfg.zeroblob_rows
        )),
        Attack::CrossJoin => {
            sql("select count(*), sum(x.n * y.n) from big x cross join big y".into())
        }
        Attack::List => c.get(format!(
            "{}/v1/a--dev/records/big?limit={}",
            s.url, cfg.list_limit
        )),
    };
    b.bearer_auth(&s.admin)
}

/// One attacker: issues `kind` again as soon as the last one finished,
/// until `end`; no request outlives `hard_stop`.
async fn attacker(
    s: Arc<Server>,
    cfg: Arc<Config>,
    kind: Attack,
    end: Instant,
    hard_stop: Instant,
) -> Outcomes {
    let mut o = Outcomes::default();
    let Ok(c) = reqwest::Client::builder().tcp_nodelay(true).build() else {
        o.note("could not build an HTTP client".into());
        return o;
    };
    while Instant::now() < end {
        let t = Instant::now();
        let cap = hard_stop.saturating_duration_since(t);
        let r = request(&c, &s, &cfg, kind).timeout(cap).send().await;
        let r = match r {
            Ok(r) => {
                let status = r.status();
                read_body(r).await.map(|(n, head)| (status, n, head))
            }
            Err(e) => Err(e),
        };
        match r {
            Ok((status, n, head)) => {
                o.answered.push(t.elapsed());
                o.max_body = o.max_body.max(n);
                if status.is_success() {
                    o.ok += 1;
                } else {
                    o.refused += 1;
                    let v: Value = serde_json::from_slice(&head).unwrap_or(Value::Null);
                    let msg = v["error"]["message"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| String::from_utf8_lossy(&head).into_owned());
                    o.note(format!("{status}: {msg}"));
                }
            }
            Err(e) if e.is_timeout() => {
                o.unfinished += 1;
                o.note(format!(
                    "no answer within {:.0} s (client cap)",
                    cap.as_secs_f64()
                ));
            }
            Err(e) => {
                o.transport += 1;
                o.note(format!("transport: {e}"));
                // A dead server answers at once; don't spin on it.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    o
}

/// Reads a body without keeping it (a zeroblob answer is ~1 GB): its
/// length and its first 4 KiB.
async fn read_body(mut r: reqwest::Response) -> reqwest::Result<(usize, Vec<u8>)> {
    let (mut n, mut head) = (0usize, Vec::new());
    while let Some(chunk) = r.chunk().await? {
        n += chunk.len();
        if head.len() < 4096 {
            head.extend_from_slice(&chunk[..chunk.len().min(4096 - head.len())]);
        }
    }
    Ok((n, head))
}

// ---- report ----

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The 1-minute load average: other work on the machine skews latencies.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn main() -> Result<()> {
    let cfg = Arc::new(Config::from_env()?);
    println!("noisy neighbour: {cfg:?}");
    let hostile = support::hostile_wasm()?;
    let server = Arc::new(Server::start()?);

    let phase = Arc::new(AtomicU8::new(PHASE_SETUP));
    let stop = Arc::new(AtomicBool::new(false));
    let window_start = Arc::new(Mutex::new(None));
    let memory = sample_memory(
        &server,
        cfg.rss_kill_mib,
        window_start.clone(),
        stop.clone(),
    );
    let health = poll_health(
        server.url.clone(),
        cfg.health_timeout,
        phase.clone(),
        stop.clone(),
    );

    // B's clients and A's attackers on separate runtimes, so that reading a
    // ~1 GB zeroblob answer does not delay B's measurements in this process.
    let b_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let a_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;

    let set = a_rt.block_on(setup(&server, &cfg, hostile))?;
    let sessions = b_rt.block_on(async {
        let mut open = Vec::new();
        for _ in 0..cfg.b_clients {
            let sess = Session::open(&set.b_url, &set.b_token, cfg.call_timeout).await?;
            // Warm up (the first call compiles and caches the component).
            sess.get_item(0, &set.b_record)
                .await
                .map_err(|e| anyhow::anyhow!("warm-up get_items: {e}"))?;
            open.push(Arc::new(sess));
        }
        anyhow::Ok(open)
    })?;
    let idle_rss = rss_mib(server.pid).map_or(0, |(rss, _)| rss);

    phase.store(PHASE_IDLE, Ordering::Relaxed);
    let idle = b_rt.block_on(drive_b(&sessions, &set.b_record, cfg.idle));

    // The attack: everything of A at once, B measured over the same window.
    phase.store(PHASE_ATTACK, Ordering::Relaxed);
    let load_before = loadavg();
    let start = Instant::now();
    *window_start.lock().unwrap_or_else(|e| e.into_inner()) = Some(start);
    let (end, hard_stop) = (start + cfg.window, start + cfg.window + cfg.grace);
    let sql_kinds = [Attack::Like, Attack::Zeroblob, Attack::CrossJoin];
    let kinds: Vec<Attack> = std::iter::repeat_n(Attack::Spin, cfg.spinners)
        .chain((0..cfg.sql).map(|i| sql_kinds[i % sql_kinds.len()]))
        .chain(std::iter::repeat_n(Attack::List, cfg.lists))
        .collect();
    let attackers: Vec<_> = kinds
        .iter()
        .map(|&k| {
            (
                k,
                a_rt.spawn(attacker(server.clone(), cfg.clone(), k, end, hard_stop)),
            )
        })
        .collect();
    let attacked = b_rt.block_on(drive_b(&sessions, &set.b_record, cfg.window));
    phase.store(PHASE_SETUP, Ordering::Relaxed);
    let b_done = start.elapsed();
    let load_after = loadavg();
    let mut outcomes: Vec<(Attack, Outcomes)> = Vec::new();
    for (k, t) in attackers {
        let o = a_rt.block_on(t).unwrap_or_else(|e| {
            let mut o = Outcomes::default();
            o.note(format!("attacker task: {e}"));
            o
        });
        match outcomes.iter_mut().find(|(kk, _)| *kk == k) {
            Some((_, all)) => all.merge(o),
            None => outcomes.push((k, o)),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let health = health.join().unwrap_or_default();
    let memory = memory.join().unwrap_or_default();
    a_rt.shutdown_timeout(Duration::from_secs(1));
    b_rt.shutdown_timeout(Duration::from_secs(1));

    // ---- print ----
    let mut out = String::new();
    let w = &mut out;
    writeln!(
        w,
        "\nB: {} MCP sessions calling get_items; A: {} spinners ({} ms limit), {} SQL, {} list(s) of {} records; window {} s (B's last call ended at {:.1} s)",
        cfg.b_clients,
        cfg.spinners,
        cfg.spin_timeout_ms,
        cfg.sql,
        cfg.lists,
        cfg.records,
        cfg.window.as_secs(),
        b_done.as_secs_f64()
    )?;
    writeln!(
        w,
        "machine load average (1 min) before / after the window: {load_before} / {load_after}\n"
    )?;
    for (label, c) in [("B idle        ", &idle), ("B under attack", &attacked)] {
        writeln!(
            w,
            "{label}  calls={:<7} p50={:>9.2} ms  p99={:>9.2} ms  max={:>9.2} ms  errors={} (client timeouts {}{})",
            c.lat.len(),
            ms(pct(&c.lat, 0.50)),
            ms(pct(&c.lat, 0.99)),
            ms(c.lat.last().copied().unwrap_or_default()),
            c.errors,
            c.timeouts,
            if c.timeouts > 0 {
                ": latencies are lower bounds"
            } else {
                ""
            }
        )?;
        if let Some(e) = &c.first_error {
            writeln!(w, "    first error: {e}")?;
        }
    }
    let ratio = ms(pct(&attacked.lat, 0.99)) / ms(pct(&idle.lat, 0.99)).max(1e-9);
    let mut h_idle = health.idle.clone();
    h_idle.sort();
    let mut h_attack = health.attack.clone();
    h_attack.sort();
    for (label, h) in [("idle  ", &h_idle), ("attack", &h_attack)] {
        writeln!(
            w,
            "/health {label}  polls={:<6} p50={:>9.2} ms  p99={:>9.2} ms  max={:>9.2} ms",
            h.len(),
            ms(pct(h, 0.50)),
            ms(pct(h, 0.99)),
            ms(h.last().copied().unwrap_or_default()),
        )?;
    }
    if health.failures > 0 {
        writeln!(
            w,
            "    /health failures: {}, of which {} hit the {} s cap (max is then a lower bound); first: {}",
            health.failures,
            health.timeouts,
            cfg.health_timeout.as_secs(),
            health.first_failure.as_deref().unwrap_or("?")
        )?;
    }
    writeln!(w, "\nA (each re-issued as it finished):")?;
    for (k, o) in &mut outcomes {
        o.answered.sort();
        writeln!(
            w,
            "  {:<20} ok={:<5} refused={:<5} unfinished={:<3} transport={:<4} answered p50={:>8.0} ms max={:>8.0} ms  largest answer {} B",
            k.name(),
            o.ok,
            o.refused,
            o.unfinished,
            o.transport,
            ms(pct(&o.answered, 0.5)),
            ms(o.answered.last().copied().unwrap_or_default()),
            o.max_body
        )?;
        for m in &o.messages {
            let m: String = m.chars().take(200).collect();
            writeln!(w, "      {m}")?;
        }
    }
    writeln!(
        w,
        "\nserver memory: idle VmRSS {idle_rss} MiB, peak VmRSS {} MiB, VmHWM {} MiB{}",
        memory.peak_rss_mib,
        memory.hwm_mib,
        memory.killed_at.map_or(String::new(), |t| format!(
            " — KILLED {t:.1} s into the window, VmRSS over {} MiB",
            cfg.rss_kill_mib
        ))
    )?;
    let h_max = h_attack.last().copied().unwrap_or_default();
    writeln!(w, "\nbar:")?;
    writeln!(
        w,
        "  B p99 under attack / idle p99 = {ratio:.2} (≤ {MAX_P99_RATIO})  {}",
        verdict(ratio <= MAX_P99_RATIO && attacked.errors == 0)
    )?;
    writeln!(
        w,
        "  /health max during the window = {:.2} ms (< {} ms)  {}",
        ms(h_max),
        MAX_HEALTH.as_millis(),
        verdict(h_max < MAX_HEALTH && health.failures == 0)
    )?;
    writeln!(
        w,
        "  peak RSS = {} MiB (< {MAX_RSS_MIB} MiB)  {}",
        memory.hwm_mib.max(memory.peak_rss_mib),
        verdict(
            memory.hwm_mib.max(memory.peak_rss_mib) < MAX_RSS_MIB && memory.killed_at.is_none()
        )
    )?;
    print!("{out}");
    Ok(())
}
