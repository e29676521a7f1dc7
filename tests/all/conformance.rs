//! The official MCP conformance server suite (pinned in tests/node) against
//! the loopback test fixture (`serve --conformance-fixture`), with the
//! expected failures of tests/conformance/baseline.yml.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{BIN, Server, stderr, stdout};
use crate::mcp_clients::{node_bin, repo_file};

#[tokio::test]
async fn the_conformance_server_suite_passes_against_the_fixture() {
    let s = Server::start_with(&["--conformance-fixture"]);
    let mut cmd = Command::new(node_bin("conformance"));
    cmd.args(["server", "--suite", "all", "--url"])
        .arg(format!("{}/conformance/mcp", s.url))
        .arg("--expected-failures")
        .arg(repo_file("tests/conformance/baseline.yml"));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let text = stdout(&out);
    let summary = text
        .find("=== SUMMARY ===")
        .map_or(text.as_str(), |i| &text[i..]);
    println!("{summary}");
    assert!(
        out.status.success(),
        "the conformance suite found unexpected failures or stale baseline entries:\n{summary}\n{}",
        stderr(&out)
    );
    assert!(summary.contains("Baseline check passed"), "{summary}");
}

#[tokio::test]
async fn the_fixture_is_off_by_default_and_only_for_loopback() {
    let s = Server::start();
    let (st, _) = s
        .call(Method::POST, "/conformance/mcp", None, Some(json!({})))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--conformance-fixture",
            "--data",
        ])
        .arg(dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("loopback"), "{}", stderr(&out));
}
