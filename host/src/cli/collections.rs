//! `mcp-factory collections …`

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::client::{Client, json_arg, seg};
use super::output::print;

const COLUMNS: &[&str] = &["/id", "/name", "/version", "/description", "/updated_at"];

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create or replace a collection (preview workspaces only).
    Upsert {
        /// The collection's id, e.g. invoices.
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        /// Display name, e.g. "Invoices".
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// The JSON Schema, inline or @file.
        #[arg(long)]
        schema: String,
    },
    /// List the collections of a workspace.
    List {
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Show a collection with its schema.
    Get {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Delete a collection (refused while it holds records, unless --force).
    Delete {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        /// Delete its records and their relationships too.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(cmd: Cmd, c: &Client, json_out: bool) -> anyhow::Result<()> {
    let out = match cmd {
        Cmd::Upsert {
            id,
            workspace,
            name,
            description,
            schema,
        } => {
            let body = json!({"name": name, "description": description, "schema": json_arg("--schema", &schema)?});
            let path = format!("/v1/{}/collections/{}", seg(&workspace), seg(&id));
            c.call(Method::PUT, &path, Some(body)).await?
        }
        Cmd::List { workspace } => {
            c.get(&format!("/v1/{}/collections", seg(&workspace)))
                .await?
        }
        Cmd::Get { id, workspace } => {
            c.get(&format!("/v1/{}/collections/{}", seg(&workspace), seg(&id)))
                .await?
        }
        Cmd::Delete {
            id,
            workspace,
            force,
        } => {
            let path = format!(
                "/v1/{}/collections/{}?force={force}",
                seg(&workspace),
                seg(&id)
            );
            c.call(Method::DELETE, &path, None).await?
        }
    };
    print(&out, json_out, COLUMNS);
    Ok(())
}
