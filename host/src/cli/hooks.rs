//! `mcp-factory hooks …`

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::client::{Client, seg};
use super::output::print;

const COLUMNS: &[&str] = &[
    "/id",
    "/collection",
    "/ingest_path",
    "/description",
    "/updated_at",
];

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create an inbound webhook into a collection (preview workspaces
    /// only). Prints its secret once; senders use it as a bearer token or
    /// sign with it (Standard Webhooks) when they POST Record-format JSON
    /// to the ingest URL.
    Create {
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        /// The hook's name, also its id in the URL, e.g. stripe-payments.
        #[arg(long)]
        name: String,
        /// The collection it writes to.
        #[arg(long)]
        collection: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the hooks of a workspace (never their secrets).
    List {
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Show a hook and its ingest URL.
    Get {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Delete a hook (preview workspaces only).
    Delete {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Make a new secret; the old one keeps working for the grace period.
    RotateSecret {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        /// Seconds the old secret stays valid (default 86400, at most 604800; 0: none).
        #[arg(long)]
        grace_seconds: Option<u64>,
    },
}

pub async fn run(cmd: Cmd, c: &Client, json_out: bool) -> anyhow::Result<()> {
    let base = |ws: &str| format!("/v1/{}/hooks", seg(ws));
    let out = match cmd {
        Cmd::Create {
            workspace,
            name,
            collection,
            description,
        } => {
            let body = json!({"name": name, "collection": collection, "description": description});
            let out = c.call(Method::POST, &base(&workspace), Some(body)).await?;
            if !json_out {
                println!(
                    "Hook '{}' created. Its secret, shown only now:\n\n    {}\n\nSenders POST Record-format JSON to {}{} with `Authorization: Bearer <secret>` or a Standard Webhooks signature made with it.",
                    out["id"].as_str().unwrap_or(""),
                    out["secret"].as_str().unwrap_or(""),
                    c.base(),
                    out["ingest_path"].as_str().unwrap_or("")
                );
                return Ok(());
            }
            out
        }
        Cmd::List { workspace } => c.get(&base(&workspace)).await?,
        Cmd::Get { id, workspace } => c.get(&format!("{}/{}", base(&workspace), seg(&id))).await?,
        Cmd::Delete { id, workspace } => {
            c.call(
                Method::DELETE,
                &format!("{}/{}", base(&workspace), seg(&id)),
                None,
            )
            .await?
        }
        Cmd::RotateSecret {
            id,
            workspace,
            grace_seconds,
        } => {
            let path = format!("{}/{}/rotate-secret", base(&workspace), seg(&id));
            let out = c
                .call(
                    Method::POST,
                    &path,
                    Some(json!({"grace_seconds": grace_seconds})),
                )
                .await?;
            if !json_out {
                println!(
                    "New secret for hook '{id}', shown only now:\n\n    {}\n\nThe previous one stays valid for {} s.",
                    out["secret"].as_str().unwrap_or(""),
                    out["previous_secrets_valid_for_seconds"]
                );
                return Ok(());
            }
            out
        }
    };
    print(&out, json_out, COLUMNS);
    Ok(())
}
