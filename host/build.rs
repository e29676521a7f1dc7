//! Builds `plugins/generated` for `wasm32-wasip2` (release, in its own
//! target directory beside this build's) and embeds the component in the
//! host: every endpoint is served by it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host/ is inside the workspace")
        .to_path_buf();
    let plugin = root.join("plugins/generated");
    for dir in [
        "plugins/generated/src",
        "plugins/generated/Cargo.toml",
        "plugins/generated/build.rs",
        "guest-sdk/src",
        "guest-sdk/Cargo.toml",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: share one plugin
    // build between profiles and check/test builds.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.clone());
    let plugin_target = target_dir.join("plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(plugin.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&plugin_target);
    // The outer build's settings are not the plugin's.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo for plugins/generated");
    if !status.success() {
        panic!(
            "building plugins/generated for wasm32-wasip2 failed (see above). If the target is missing, run \
             `rustup target add wasm32-wasip2` (rust-toolchain.toml lists it; `rustup toolchain install` adds it)."
        );
    }
    let wasm = plugin_target.join("wasm32-wasip2/release/mcp_factory_generated.wasm");
    let dest = out_dir.join("generated.wasm");
    std::fs::copy(&wasm, &dest).unwrap_or_else(|e| panic!("copying {}: {e}", wasm.display()));
}
