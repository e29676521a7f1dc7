//! `mcp-factory relationships …` and `mcp-factory query-relationships …`

use anyhow::bail;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::client::{Client, json_arg, seg};
use super::output::print;

const COLUMNS: &[&str] = &[
    "/id",
    "/rel_type",
    "/source_collection",
    "/source_id",
    "/target_collection",
    "/target_id",
];

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create or update the link (type, source, target).
    Upsert {
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        /// <collection>/<record id>
        #[arg(long)]
        source: String,
        /// <collection>/<record id>
        #[arg(long)]
        target: String,
        #[arg(long = "type")]
        rel_type: String,
        /// Optional metadata object, inline JSON or @file.
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Show a relationship.
    Get {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Delete a relationship.
    Delete {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
}

/// `mcp-factory query-relationships <collection> <id> …`
#[derive(Debug, Args)]
pub struct QueryArgs {
    collection: String,
    id: String,
    #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
    workspace: String,
    #[arg(long = "type")]
    rel_type: Option<String>,
    /// outgoing, incoming or both.
    #[arg(long, default_value = "both")]
    direction: String,
}

fn split_ref(flag: &str, s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('/') {
        Some((c, id)) if !c.is_empty() && !id.is_empty() => Ok((c.to_string(), id.to_string())),
        _ => bail!("{flag} must be <collection>/<record id>, got '{s}'"),
    }
}

pub async fn run(cmd: Cmd, c: &Client, json_out: bool) -> anyhow::Result<()> {
    let out = match cmd {
        Cmd::Upsert {
            workspace,
            source,
            target,
            rel_type,
            metadata,
        } => {
            let (sc, si) = split_ref("--source", &source)?;
            let (tc, ti) = split_ref("--target", &target)?;
            let metadata = metadata.map(|m| json_arg("--metadata", &m)).transpose()?;
            let body = json!({
                "rel_type": rel_type, "source_collection": sc, "source_id": si,
                "target_collection": tc, "target_id": ti, "metadata": metadata,
            });
            c.call(
                Method::PUT,
                &format!("/v1/{}/relationships", seg(&workspace)),
                Some(body),
            )
            .await?
        }
        Cmd::Get { id, workspace } => {
            c.get(&format!(
                "/v1/{}/relationships/{}",
                seg(&workspace),
                seg(&id)
            ))
            .await?
        }
        Cmd::Delete { id, workspace } => {
            c.call(
                Method::DELETE,
                &format!("/v1/{}/relationships/{}", seg(&workspace), seg(&id)),
                None,
            )
            .await?
        }
    };
    print(&out, json_out, COLUMNS);
    Ok(())
}

pub async fn query(a: QueryArgs, c: &Client, json_out: bool) -> anyhow::Result<()> {
    let mut path = format!(
        "/v1/{}/records/{}/{}/relationships?direction={}",
        seg(&a.workspace),
        seg(&a.collection),
        seg(&a.id),
        seg(&a.direction)
    );
    if let Some(t) = &a.rel_type {
        path.push_str(&format!("&type={}", seg(t)));
    }
    print(&c.get(&path).await?, json_out, COLUMNS);
    Ok(())
}
