//! The test harness: a real server process and helpers to call it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-factory");

/// A running `mcp-factory serve` with its own data and config directories.
pub struct Server {
    pub url: String,
    /// The admin token printed on first start.
    pub admin: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub http: reqwest::Client,
    extra_args: Vec<String>,
    /// The server's `RUST_LOG`.
    log_filter: String,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> Server {
        Server::start_logging(extra_args, "warn,mcp_factory::runtime=info")
    }

    /// Starts with `RUST_LOG=<filter>` (the log is `serve.log` in `dir`).
    pub fn start_logging(extra_args: &[&str], filter: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server {
            url: String::new(),
            admin: String::new(),
            dir,
            child: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            log_filter: filter.to_string(),
        };
        let token = s.spawn();
        s.admin = token.expect("first start prints the admin token");
        s
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// Starts the process; returns the admin token if it printed one.
    fn spawn(&mut self) -> Option<String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .unwrap();
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--data")
            .arg(self.data_dir())
            .args(["--listen", "127.0.0.1:0"])
            .args(&self.extra_args)
            .env("XDG_CONFIG_HOME", self.config_dir())
            // The benchmarks' switches must not leak into the tests.
            .env_remove("MCP_FACTORY_GUEST_SCHEDULE")
            .env_remove("MCP_FACTORY_BACKGROUND_NICE")
            .env("RUST_LOG", &self.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut token = None;
        loop {
            let line = lines
                .next()
                .unwrap_or_else(|| {
                    panic!(
                        "server exited early; see {}",
                        self.dir.path().join("serve.log").display()
                    )
                })
                .unwrap();
            if let Some(t) = line.trim().strip_prefix("mcpf_") {
                token = Some(format!("mcpf_{t}"));
            }
            if let Some(rest) = line.strip_prefix("mcp-factory listening on ") {
                self.url = rest.split_whitespace().next().unwrap().to_string();
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
        token
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// The server's peak resident memory so far (`VmHWM`), in MiB.
    pub fn peak_rss_mib(&self) -> u64 {
        let pid = self.child.as_ref().expect("server running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status");
        kib / 1024
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data directory.
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn().is_none(),
            "a restart must not create a second admin token"
        );
    }

    /// One REST call; returns status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Admin call that must succeed; returns the body.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self
            .call(method.clone(), path, Some(&self.admin), body)
            .await;
        assert!(status.is_success(), "{method} {path} -> {status}: {v}");
        v
    }

    /// GETs `path` as the admin every 50 ms, at most `tries` times, until
    /// `done` holds for the answer; returns the last answer (the caller
    /// asserts on it).
    pub async fn poll(&self, path: &str, tries: usize, done: impl Fn(&Value) -> bool) -> Value {
        let mut v = Value::Null;
        for _ in 0..tries {
            v = self.ok(Method::GET, path, None).await;
            if done(&v) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        v
    }

    /// Runs the CLI against this server; it finds the admin token in the
    /// credentials file the server saved.
    pub fn cli_in(&self, args: &[&str], cwd: Option<&Path>) -> std::process::Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("XDG_CONFIG_HOME", self.config_dir())
            // The benchmarks' switches must not leak into the tests.
            .env_remove("MCP_FACTORY_GUEST_SCHEDULE")
            .env_remove("MCP_FACTORY_BACKGROUND_NICE")
            .env("MCP_FACTORY_URL", &self.url)
            .env_remove("MCP_FACTORY_TOKEN")
            .env_remove("MCP_FACTORY_WORKSPACE");
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        cmd.output().unwrap()
    }

    /// Creates production `ws` and preview `ws--dev` with `collection` in
    /// both (through a promotion), returns nothing.
    pub async fn setup(&self, ws: &str, collection: &str, schema: Value) {
        self.ok(
            Method::POST,
            "/v1/workspaces",
            Some(json!({"id": ws, "name": ws.to_uppercase()})),
        )
        .await;
        self.ok(
            Method::POST,
            &format!("/v1/workspaces/{ws}/previews"),
            Some(json!({"name": "dev"})),
        )
        .await;
        self.ok(
            Method::PUT,
            &format!("/v1/{ws}--dev/collections/{collection}"),
            Some(json!({"schema": schema})),
        )
        .await;
        self.ok(
            Method::POST,
            &format!("/v1/workspaces/{ws}/promote"),
            Some(json!({"from": format!("{ws}--dev")})),
        )
        .await;
    }

    /// Creates a token with `grants`; returns the secret.
    pub async fn token(&self, name: &str, grants: Value) -> String {
        let v = self
            .ok(
                Method::POST,
                "/v1/tokens",
                Some(json!({"name": name, "grants": grants})),
            )
            .await;
        v["token"].as_str().unwrap().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Grants to read and write the records of `ws` alone.
pub fn rw(ws: &str) -> Value {
    json!([{"scope": {"workspaces": [ws]}, "permissions": ["read:records", "write:records"]}])
}

pub fn contacts_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "email": {"type": "string"},
            "stage": {"type": "string"},
            "value": {"type": "number"}
        },
        "required": ["name"]
    })
}

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The endpoint config of the Rekor MCP Factory page, verbatim.
pub const SEED_CONFIG: &str = r#"{
    "name": "Invoicing Agent",
    "description": "Tools for managing invoices and payments",
    "tools": [
      {
        "collection": "invoices",
        "operations": ["get", "list"],
        "name_override": "search_invoices",
        "description_override": "Search invoices by customer, status, or date range"
      },
      {
        "collection": "payments",
        "operations": ["create", "get", "list"],
        "description_override": "Manage payment records"
      }
    ],
    "relationships": [
      {
        "rel_type": "invoice_payment",
        "operations": ["create", "list"],
        "name_override": "assign_payment",
        "description_override": "Link a payment to an invoice"
      }
    ],
    "batch": {
      "enabled": true,
      "operations": {
        "invoices": ["create", "update"],
        "payments": ["create"],
        "invoice_payment": ["create"]
      }
    },
    "sql_query": true
  }"#;

/// Builds a component crate of this repository (`plugins/invoicing`,
/// `tests/hostile`) for wasm32-wasip2 with one cargo command, once per test
/// run, in the target directory the host's build script uses for
/// `plugins/generated` (so their dependencies are compiled once). Returns
/// the `.wasm` file.
pub fn build_component(dir: &str, artifact: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(d, _)| d == dir) {
        return p.clone();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    // The test binary is <target>/<profile>/deps/all-<hash>.
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().join("plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--target",
        "wasm32-wasip2",
    ])
    .arg("--manifest-path")
    .arg(root.join(dir).join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "building {dir} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm = target.join(format!("wasm32-wasip2/release/{artifact}.wasm"));
    assert!(wasm.exists(), "{} was not built", wasm.display());
    built.push((dir.to_string(), wasm.clone()));
    wasm
}

/// The digest the server gives a component.
pub fn digest(path: &std::path::Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap();
    format!("sha256:{}", hex_lower(&sha2::Sha256::digest(&bytes)))
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `tests/python/webhook_receiver.py`: a loopback webhook receiver that
/// verifies every delivery with the PyPI `standardwebhooks` package and
/// logs it (see the script for its modes).
pub struct Receiver {
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Receiver {
    pub fn start() -> Receiver {
        standardwebhooks_installed();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("deliveries.jsonl");
        std::fs::write(&log, "").unwrap();
        let mut child = Command::new("python3")
            .arg(crate::mcp_clients::repo_file(
                "tests/python/webhook_receiver.py",
            ))
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().expect("the receiver prints its port").unwrap();
        let port = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected receiver output: {line}"));
        std::thread::spawn(move || for _ in lines {});
        Receiver {
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
            child,
        }
    }

    /// A well-formed secret nobody holds.
    pub fn fake_secret() -> String {
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()
    }

    /// Sets the secrets it verifies with and how it answers.
    pub async fn control(&self, secrets: &[&str], mode: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/_control", self.url))
            .json(&json!({"secrets": secrets, "mode": mode}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits (up to `secs`) until `done` holds for the requests received.
    pub async fn wait_for(&self, secs: u64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.requests();
            if done(&r) {
                return r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after {secs} s; received so far: {r:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pip install standardwebhooks==1.1.0` unless it is there (as .ci/run does).
pub fn standardwebhooks_installed() {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    READY.get_or_init(|| {
        const PINNED: &str = "1.1.0";
        let have = Command::new("python3")
            .args([
                "-c",
                "import importlib.metadata as m; print(m.version('standardwebhooks'))",
            ])
            .output()
            .expect("the tests need python3");
        if String::from_utf8_lossy(&have.stdout).trim() != PINNED {
            let out = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet"])
                .arg(format!("standardwebhooks=={PINNED}"))
                .output()
                .expect("pip");
            assert!(
                out.status.success(),
                "pip install standardwebhooks=={PINNED}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
}
