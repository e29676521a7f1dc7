//! Real MCP clients against the real server: the official Python SDK over
//! Streamable HTTP and legacy SSE (tests/python/mcp_flow.py), and the MCP
//! Inspector CLI.

use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Server, contacts_schema, stderr, stdout};
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

/// A token for the agent: records in `acme` only.
pub(crate) async fn agent_token(s: &Server) -> String {
    s.token(
        "agent",
        json!([{"scope": {"workspaces": ["acme"]}, "permissions": ["read:records", "write:records"]}]),
    )
    .await
}

pub(crate) fn repo_file(rel: &str) -> String {
    format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the Python client; returns the JSON line it prints.
async fn python_flow(s: &Server, flow: &str, token: &str, transport: &str) -> Value {
    let mut cmd = Command::new("python3");
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
        .expect("python3 runs (the test suite needs Python 3 with `pip install mcp==2.3.0`)");
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
