//! Real MCP clients against the real server: the official Python SDK over
//! Streamable HTTP and legacy SSE (tests/python/mcp_flow.py), and the MCP
//! Inspector CLI.

use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Server, contacts_schema, rw, stderr, stdout};
use crate::endpoint_calls;

/// The seed's invoicing endpoint in `acme`, and a `crm` workspace with
/// contacts and deals for the Admin MCP's example queries.
async fn setup(s: &Server) {
    endpoint_calls::setup(s).await;
    s.setup("crm", "contacts", contacts_schema()).await;
    s.ok(
        Method::PUT,
        "/v1/crm--dev/collections/deals",
        Some(json!({"schema": {"type": "object", "properties": {
            "title": {"type": "string"}, "value": {"type": "number"}, "stage": {"type": "string"}}}})),
    )
    .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/crm/promote",
        Some(json!({"from": "crm--dev"})),
    )
    .await;
    for (id, title, value, stage) in [
        ("d_001", "Big", 5000.0, "negotiation"),
        ("d_002", "Small", 1000.0, "negotiation"),
        ("d_003", "Done", 700.0, "won"),
    ] {
        s.ok(
            Method::PUT,
            "/v1/crm/records/deals",
            Some(json!({"external_id": id, "data": {"title": title, "value": value, "stage": stage}})),
        )
        .await;
    }
}

/// A token for the agent: records and relationships in `acme` only (an
/// endpoint call runs as this token through the endpoint's grants, so its
/// relationship tools need the relationship permissions too).
pub(crate) async fn agent_token(s: &Server) -> String {
    let mut grants = rw("acme");
    grants[0]["permissions"] = serde_json::json!([
        "read:records",
        "write:records",
        "read:relationships",
        "write:relationships"
    ]);
    s.token("agent", grants).await
}

pub(crate) fn repo_file(rel: &str) -> String {
    format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the Python client; returns the JSON line it prints.
async fn python_flow(s: &Server, flow: &str, token: &str, transport: &str) -> Value {
    let mut cmd = python();
    cmd.arg(repo_file("tests/python/mcp_flow.py"))
        .args([
            flow,
            "--url",
            &s.url,
            "--token",
            token,
            "--transport",
            transport,
        ])
        .args(["--admin-token", &s.admin]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{flow} over {transport} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_str(stdout(&out).lines().last().unwrap_or("")).unwrap()
}

#[tokio::test]
async fn python_sdk_over_streamable_http() {
    let s = Server::start();
    setup(&s).await;
    let agent = agent_token(&s).await;
    let seen = python_flow(&s, "endpoint", &agent, "http").await;
    assert_eq!(seen["protocol_version"], "2025-11-25");
    assert_eq!(seen["list_changed"], true);
    let seen = python_flow(&s, "admin", &s.admin, "http").await;
    assert_eq!(seen["protocol_version"], "2025-11-25");
}

#[tokio::test]
async fn python_sdk_over_legacy_sse() {
    let s = Server::start();
    setup(&s).await;
    let agent = agent_token(&s).await;
    python_flow(&s, "endpoint", &agent, "sse").await;
    python_flow(&s, "admin", &s.admin, "sse").await;
}

/// MCP 2026-07-28 in the SDK's default mode (discover, then stateless
/// requests): the listen stream hears every endpoint change that reaches
/// the caller's workspace within a second — promotion and its rollback in
/// production (and not a preview's upsert), upsert, endpoint rollback,
/// schema change and deletion in the preview — and ends when the token is
/// revoked (tests/python/mcp_listen.py).
#[tokio::test]
async fn python_sdk_stateless_listen() {
    let s = Server::start();
    setup(&s).await;
    let mut cmd = python();
    cmd.arg(repo_file("tests/python/mcp_listen.py")).args([
        "--url",
        &s.url,
        "--admin-token",
        &s.admin,
    ]);
    let out = run(cmd).await;
    assert!(
        out.status.success(),
        "mcp_listen.py failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let seen: Value = serde_json::from_str(stdout(&out).lines().last().unwrap_or("")).unwrap();
    println!("{seen}");
    assert_eq!(seen["protocol_version"], "2026-07-28");
    for what in [
        "promotion",
        "promotion rollback",
        "upsert",
        "endpoint rollback",
        "schema change",
        "deletion",
        "revocation",
    ] {
        assert!(seen[what].as_f64().is_some(), "{what}: {seen}");
    }
    assert_eq!(seen["deletion_end"], "graceful");
}

/// The pinned Python SDK, installed on first use (`pip install mcp==2.3.0`)
/// so that the README's test command works on a fresh machine.
pub(crate) fn python() -> Command {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    READY.get_or_init(|| {
        let version = Command::new("python3")
            .args([
                "-c",
                "import importlib.metadata as m; print(m.version('mcp'))",
            ])
            .output()
            .expect("the tests need python3");
        if stdout(&version).trim() != PYTHON_SDK {
            let out = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    &format!("mcp=={PYTHON_SDK}"),
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "pip install mcp=={PYTHON_SDK}: {}",
                stderr(&out)
            );
        }
    });
    Command::new("python3")
}

const PYTHON_SDK: &str = "2.3.0";

/// A pinned Node tool from tests/node, installed there on first use with
/// `npm ci` (versions in tests/node/package-lock.json).
/// `tests/node/node_modules/<path>`, after `npm ci` in tests/node if it is
/// not there yet.
pub(crate) fn node_pkg(path: &str) -> String {
    static READY: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    let p = repo_file(&format!("tests/node/node_modules/{path}"));
    if !*ready && !std::path::Path::new(&p).exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(repo_file("tests/node"))
            .output()
            .expect("the tests need Node.js and npm");
        assert!(
            out.status.success(),
            "npm ci in tests/node: {}",
            stderr(&out)
        );
    }
    *ready = true;
    assert!(
        std::path::Path::new(&p).exists(),
        "{p} is missing after npm ci"
    );
    p
}

/// An executable of tests/node's packages (`node_modules/.bin/<name>`).
pub(crate) fn node_bin(name: &str) -> String {
    node_pkg(&format!(".bin/{name}"))
}

async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn endpoints_url_prints_configs_that_real_clients_accept() {
    let s = Server::start();
    setup(&s).await;
    let agent = agent_token(&s).await;

    // Text output: the URL first, then the configs with a placeholder and
    // how to get a token of the right kind.
    let out = s.cli_in(
        &["endpoints", "url", "invoicing-agent", "--workspace", "acme"],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let url = format!("{}/e/invoicing-agent/mcp", s.url);
    assert_eq!(text.lines().next().unwrap(), url);
    for needle in [
        "\"mcpServers\"",
        "\"Authorization\": \"Bearer mcpf_your_token_here\"",
        "claude mcp add --transport http invoicing-agent",
        "claude mcp add --transport sse invoicing-agent",
        "tokens create",
        "curl -N -H \"Accept: text/event-stream\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let out = s.cli_in(&["endpoints", "url", "nope", "--workspace", "acme"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));

    // JSON output with a real token.
    let out = s.cli_in(
        &[
            "endpoints",
            "url",
            "invoicing-agent",
            "--workspace",
            "acme",
            "--with-token",
            &agent,
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let conn: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(conn["url"], url.as_str());

    // The printed curl line reaches the server.
    let mut sh = Command::new("sh");
    sh.args(["-c", conn["curl"].as_str().unwrap()]);
    let out = run(sh).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"serverInfo\""), "{}", stdout(&out));

    // The Claude Desktop / Cursor config works as-is in the MCP Inspector.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcp.json");
    std::fs::write(&config, conn["claude_desktop"].to_string()).unwrap();
    let mut inspector = Command::new(node_bin("mcp-inspector"));
    inspector
        .arg("--cli")
        .arg("--config")
        .arg(&config)
        .args(["--server", "invoicing-agent", "--method", "tools/list"])
        .env("HOME", dir.path())
        .env("MCP_INSPECTOR_SECRET_STORE", "memory");
    let out = run(inspector).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], "search_invoices");
    assert_eq!(names.len(), 7);

    // And the Inspector CLI with --header calls a tool.
    let mut inspector = Command::new(node_bin("mcp-inspector"));
    inspector
        .args(["--cli", &url, "--transport", "http", "--header"])
        .arg(format!("Authorization: Bearer {agent}"))
        .args(["--method", "tools/call", "--tool-name", "create_payments"])
        .args([
            "--tool-arg",
            r#"data={"amount": 42}"#,
            "external_id=pay-inspector",
        ])
        .env("HOME", dir.path())
        .env("MCP_INSPECTOR_SECRET_STORE", "memory");
    let out = run(inspector).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let called: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(called["isError"], false, "{called}");
    assert_eq!(called["structuredContent"]["data"]["amount"], 42);
    let stored = s
        .ok(Method::GET, "/v1/acme/records/payments/pay-inspector", None)
        .await;
    assert_eq!(stored["data"]["amount"], 42);
}
