//! `mcp-factory endpoints …`

use anyhow::bail;
use clap::Subcommand;
use mcp_factory_guest::config::EndpointConfig;
use reqwest::Method;
use serde_json::json;

use super::client::{Client, json_arg, seg};
use super::output::print;

const COLUMNS: &[&str] = &[
    "/slug",
    "/revision",
    "/config/name",
    "/tools",
    "/updated_at",
];

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create or change an endpoint (preview workspaces only): a full config
    /// with --config, or the shorthand flags.
    Upsert {
        slug: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        /// The endpoint config JSON, inline or @file.
        #[arg(long, conflicts_with_all = ["tool", "relationship", "batch", "sql_query"])]
        config: Option<String>,
        /// <collection>:<op>,<op>… (create, get, list, update, delete); repeatable.
        #[arg(long)]
        tool: Vec<String>,
        /// <rel_type>:<op>,<op>… (create, list, delete); repeatable.
        #[arg(long)]
        relationship: Vec<String>,
        /// <collection or rel_type>:<op>,<op>… allowed in the batch tool; repeatable.
        #[arg(long)]
        batch: Vec<String>,
        /// Add the read-only sql_query tool.
        #[arg(long)]
        sql_query: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// A custom component: a .wasm file (uploaded first) or the digest
        /// (`sha256:…`) of one already uploaded.
        #[arg(long)]
        component: Option<String>,
    },
    /// List the endpoints of a workspace.
    List {
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Show an endpoint; --resolved adds its tools and collection schemas.
    Get {
        slug: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        #[arg(long)]
        resolved: bool,
    },
    /// Delete an endpoint (preview workspaces only).
    Delete {
        slug: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// List an endpoint's revisions.
    Revisions {
        slug: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// What the endpoint's components logged or printed, and its failed calls.
    Logs {
        slug: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        /// How many of the newest lines (at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Serve an earlier revision again (as a new revision).
    Rollback {
        slug: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        #[arg(long)]
        revision: u64,
    },
}

pub async fn run(cmd: Cmd, c: &Client, json_out: bool) -> anyhow::Result<()> {
    let path = |ws: &str, slug: &str| format!("/v1/{}/endpoints/{}", seg(ws), seg(slug));
    let (out, columns) = match cmd {
        Cmd::Upsert {
            slug,
            workspace,
            config,
            tool,
            relationship,
            batch,
            sql_query,
            name,
            description,
            component,
        } => {
            let mut cfg = match config {
                Some(text) => {
                    serde_json::from_value::<EndpointConfig>(json_arg("--config", &text)?)
                        .map_err(|e| anyhow::anyhow!("--config is not an endpoint config: {e}"))?
                }
                None if tool.is_empty()
                    && relationship.is_empty()
                    && batch.is_empty()
                    && !sql_query =>
                {
                    bail!(
                        "say what the endpoint serves: --config, or --tool / --relationship / --batch / --sql-query"
                    )
                }
                None => EndpointConfig::from_shorthand(&tool, &relationship, &batch, sql_query)?,
            };
            cfg.name = name.or(cfg.name);
            cfg.description = description.or(cfg.description);
            if let Some(component) = component {
                cfg.component = Some(if component.starts_with("sha256:") {
                    component
                } else {
                    super::plugins::upload(c, &workspace, &component).await?
                });
            }
            (
                c.call(
                    Method::PUT,
                    &path(&workspace, &slug),
                    Some(serde_json::to_value(cfg)?),
                )
                .await?,
                COLUMNS,
            )
        }
        Cmd::List { workspace } => (
            c.get(&format!("/v1/{}/endpoints", seg(&workspace))).await?,
            COLUMNS,
        ),
        Cmd::Get {
            slug,
            workspace,
            resolved,
        } => (
            c.get(&format!("{}?resolved={resolved}", path(&workspace, &slug)))
                .await?,
            COLUMNS,
        ),
        Cmd::Delete { slug, workspace } => (
            c.call(Method::DELETE, &path(&workspace, &slug), None)
                .await?,
            COLUMNS,
        ),
        Cmd::Logs {
            slug,
            workspace,
            limit,
        } => (
            c.get(&format!("{}/logs?limit={limit}", path(&workspace, &slug)))
                .await?,
            &["/at", "/level", "/source", "/message"][..],
        ),
        Cmd::Revisions { slug, workspace } => (
            c.get(&format!("{}/revisions", path(&workspace, &slug)))
                .await?,
            &["/revision", "/config/name", "/token_id", "/created_at"][..],
        ),
        Cmd::Rollback {
            slug,
            workspace,
            revision,
        } => {
            let body = json!({"revision": revision});
            (
                c.call(
                    Method::POST,
                    &format!("{}/rollback", path(&workspace, &slug)),
                    Some(body),
                )
                .await?,
                COLUMNS,
            )
        }
    };
    print(&out, json_out, columns);
    Ok(())
}
