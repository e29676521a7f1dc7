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
    /// The endpoint's MCP URL and ready-to-paste client configs (Claude
    /// Desktop, Cursor, Claude Code, curl).
    Url {
        slug: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        /// The server's address as clients reach it (behind a proxy or on
        /// another host); default: the address this CLI talks to.
        #[arg(long, env = "MCP_FACTORY_PUBLIC_URL")]
        public_url: Option<String>,
        /// Put this token in the configs instead of a placeholder. It must
        /// be scoped to the endpoint's workspace alone.
        #[arg(long = "with-token")]
        with_token: Option<String>,
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
        Cmd::Url {
            slug,
            workspace,
            public_url,
            with_token,
        } => {
            // The endpoint must exist (and be visible to this token).
            c.get(&path(&workspace, &slug)).await?;
            let base = public_url.unwrap_or_else(|| c.base().to_string());
            let conn = Connection::new(&base, &workspace, &slug, with_token.as_deref());
            if json_out {
                println!("{}", serde_json::to_string_pretty(&conn.json())?);
            } else {
                print!("{}", conn.text());
            }
            return Ok(());
        }
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

/// How an MCP client connects to one endpoint.
pub struct Connection {
    pub url: String,
    pub sse_url: String,
    slug: String,
    workspace: String,
    token: String,
    placeholder: bool,
}

impl Connection {
    pub fn new(base: &str, workspace: &str, slug: &str, token: Option<&str>) -> Connection {
        let base = base.trim_end_matches('/');
        Connection {
            url: format!("{base}/e/{slug}/mcp"),
            sse_url: format!("{base}/e/{slug}/sse"),
            slug: slug.to_string(),
            workspace: workspace.to_string(),
            placeholder: token.is_none(),
            token: token.unwrap_or("mcpf_your_token_here").to_string(),
        }
    }

    /// `mcpServers` JSON for Claude Desktop and Cursor.
    pub fn mcp_servers(&self) -> serde_json::Value {
        // `type` makes the same JSON work in Claude Code's .mcp.json and the
        // MCP Inspector too; Cursor and Claude Desktop accept it.
        json!({"mcpServers": {&self.slug: {
            "type": "http",
            "url": self.url,
            "headers": {"Authorization": format!("Bearer {}", self.token)}
        }}})
    }

    pub fn claude_code(&self, transport: &str) -> String {
        let url = if transport == "sse" {
            &self.sse_url
        } else {
            &self.url
        };
        format!(
            "claude mcp add --transport {transport} {} {url} --header \"Authorization: Bearer {}\"",
            self.slug, self.token
        )
    }

    pub fn curl(&self) -> String {
        format!(
            "curl -sS -X POST {} -H \"Authorization: Bearer {}\" -H \"Content-Type: application/json\" \
             -H \"Accept: application/json, text/event-stream\" -d \
             '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}'",
            self.url, self.token
        )
    }

    pub fn curl_sse(&self) -> String {
        format!(
            "curl -N -H \"Accept: text/event-stream\" -H \"Authorization: Bearer {}\" {}",
            self.token, self.sse_url
        )
    }

    fn token_hint(&self) -> String {
        format!(
            "mcp-factory tokens create --name {}-agent --grants \
             '[{{\"scope\":{{\"workspaces\":[\"{}\"]}},\"permissions\":[\"read:records\",\"write:records\"]}}]'",
            self.slug, self.workspace
        )
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "url": self.url,
            "sse_url": self.sse_url,
            "claude_desktop": self.mcp_servers(),
            "cursor": self.mcp_servers(),
            "claude_code": {"http": self.claude_code("http"), "sse": self.claude_code("sse")},
            "curl": self.curl(),
            "curl_sse": self.curl_sse(),
        })
    }

    pub fn text(&self) -> String {
        let servers = serde_json::to_string_pretty(&self.mcp_servers()).unwrap_or_default();
        let mut out = format!("{}\n\n", self.url);
        if self.placeholder {
            out += &format!(
                "Replace mcpf_your_token_here with a token scoped to workspace '{}' alone \
                 (multi-workspace and wildcard tokens are refused), e.g.:\n  {}\n\n",
                self.workspace,
                self.token_hint()
            );
        }
        out += &format!(
            "Claude Desktop (claude_desktop_config.json) / Cursor (.cursor/mcp.json):\n{servers}\n\n\
             Claude Code:\n  {}\n  {}   # legacy SSE transport\n\n\
             Check the connection (the answer is the server's initialize result):\n  {}\n\
             Legacy SSE (the first event names the messages URL):\n  {}\n",
            self.claude_code("http"),
            self.claude_code("sse"),
            self.curl(),
            self.curl_sse()
        );
        out
    }
}
