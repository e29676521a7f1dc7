//! Shared set-up for the benches: a service on a fresh store with production
//! workspace `bench` holding one collection (made in a preview, promoted),
//! and the hostile test component built for wasm32-wasip2.

use anyhow::{Context, bail};
use mcp_factory::service::collections::UpsertCollection;
use mcp_factory::service::workspaces::{CreatePreview, CreateWorkspace};
use mcp_factory::service::{Caller, Config, Service};
use mcp_factory::store::Store;
use serde_json::Value;

#[allow(dead_code)] // not every bench uses an in-process service
pub async fn service_with(
    dir: &std::path::Path,
    collection: &str,
    schema: Value,
) -> (Service, Caller) {
    service_with_config(dir, collection, schema, Config::default()).await
}

/// [`service_with`] with server settings.
#[allow(dead_code)]
pub async fn service_with_config(
    dir: &std::path::Path,
    collection: &str,
    schema: Value,
    config: Config,
) -> (Service, Caller) {
    let service = Service::with_config(Store::open(dir).expect("store"), config).expect("service");
    let sys = Caller::system();
    let ws = CreateWorkspace {
        id: "bench".into(),
        name: None,
        description: None,
    };
    service.create_workspace(&sys, ws).await.expect("workspace");
    let preview = CreatePreview {
        name: "dev".into(),
        description: None,
    };
    service
        .create_preview(&sys, "bench", preview)
        .await
        .expect("preview");
    let coll = UpsertCollection {
        name: None,
        description: None,
        schema,
    };
    service
        .upsert_collection(&sys, "bench--dev", collection, coll)
        .await
        .expect("collection");
    service
        .promote(&sys, "bench", "bench--dev", false)
        .await
        .expect("promote");
    (service, sys)
}

/// Builds `tests/hostile` for wasm32-wasip2 in the target directory the
/// tests use for components (`<target>/plugins`), as
/// `tests/all/common.rs::build_component` does, and returns its bytes.
#[allow(dead_code)] // not every bench runs a component
pub fn hostile_wasm() -> anyhow::Result<Vec<u8>> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace root")?
        .to_path_buf();
    // A bench runs as <target>/release/deps/<name>-<hash>.
    let exe = std::env::current_exe()?;
    let target = exe
        .ancestors()
        .nth(3)
        .context("the target directory")?
        .join("plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--target",
        "wasm32-wasip2",
    ])
    .arg("--manifest-path")
    .arg(root.join("tests/hostile/Cargo.toml"))
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
    let out = cmd.output().context("run cargo build for tests/hostile")?;
    if !out.status.success() {
        bail!(
            "building tests/hostile failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let wasm = target.join("wasm32-wasip2/release/hostile.wasm");
    std::fs::read(&wasm).with_context(|| format!("read {}", wasm.display()))
}
