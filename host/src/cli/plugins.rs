//! `mcp-factory plugins …`: custom components.

use anyhow::Context;
use clap::Subcommand;

use super::client::{Client, seg};
use super::output::print;

const COLUMNS: &[&str] = &["/digest", "/size", "/tools", "/uploaded_at"];

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Upload a component (a .wasm file built for wasm32-wasip2 against
    /// wit/plugin.wit); prints its digest, which `endpoints upsert
    /// --component` takes.
    Upload {
        file: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// The components uploaded to a workspace (a new preview starts with
    /// its production workspace's; promotion brings a preview's).
    List {
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Delete an upload that no endpoint of the workspace uses (previews
    /// only, like every config change).
    Delete {
        digest: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
}

/// Uploads `file` to `ws`; returns the digest.
pub async fn upload(c: &Client, ws: &str, file: &str) -> anyhow::Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("reading the component {file}"))?;
    let out = c
        .upload(
            &format!("/v1/{}/plugins", seg(ws)),
            bytes,
            "application/wasm",
        )
        .await?;
    out["digest"]
        .as_str()
        .map(str::to_string)
        .context("the server's answer has no digest")
}

pub async fn run(cmd: Cmd, c: &Client, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        Cmd::Upload { file, workspace } => {
            let digest = upload(c, &workspace, &file).await?;
            if json_out {
                println!("{}", serde_json::json!({ "digest": digest }));
            } else {
                println!("{digest}");
            }
        }
        Cmd::Delete { digest, workspace } => {
            let out = c
                .call(
                    reqwest::Method::DELETE,
                    &format!("/v1/{}/plugins/{}", seg(&workspace), seg(&digest)),
                    None,
                )
                .await?;
            print(&out, json_out, COLUMNS);
        }
        Cmd::List { workspace } => {
            let out = c.get(&format!("/v1/{}/plugins", seg(&workspace))).await?;
            print(&out, json_out, COLUMNS);
        }
    }
    Ok(())
}
