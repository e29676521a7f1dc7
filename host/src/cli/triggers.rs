//! `mcp-factory triggers …`

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::client::{Client, json_arg, seg};
use super::output::print;

const COLUMNS: &[&str] = &[
    "/id",
    "/collection",
    "/rel_type",
    "/url",
    "/events",
    "/status",
    "/pending",
    "/dead",
];
const DELIVERY_COLUMNS: &[&str] = &[
    "/sequence",
    "/type",
    "/status",
    "/webhook_id",
    "/next_at",
    "/reason",
];

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create an outbound webhook (preview workspaces only): every matching
    /// change is POSTed to the URL, signed (Standard Webhooks) with the
    /// trigger's secret, which is printed once.
    Create {
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        /// The trigger's name, also its id, e.g. erp-invoices.
        #[arg(long)]
        name: String,
        /// Fire on changes of this collection's records…
        #[arg(
            long,
            conflicts_with = "rel_type",
            required_unless_present = "rel_type"
        )]
        collection: Option<String>,
        /// …or of relationships of this type.
        #[arg(long)]
        rel_type: Option<String>,
        /// https URL (http only to a destination `serve --egress-allow` lists).
        #[arg(long)]
        url: String,
        /// e.g. '["create","update","delete"]' (or @file).
        #[arg(long)]
        events: String,
        /// Also fire on writes made by hooks (default: skipped, which stops loops).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        skip_hook_writes: bool,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the triggers of a workspace with their status and queue.
    List {
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Show a trigger, its status and its queue.
    Get {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Delete a trigger and its queue (preview workspaces only).
    Delete {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Make a new secret; during the grace period deliveries carry a
    /// signature by each, so receivers can switch without a gap.
    RotateSecret {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        /// Seconds the old secret keeps signing (default 86400, at most 604800; 0: none).
        #[arg(long)]
        grace_seconds: Option<u64>,
    },
    /// Deliver again after the trigger was disabled (a 410, or copied into a preview).
    Enable {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Events waiting to be delivered, or (--status dead) whose retries ran out.
    Deliveries {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        #[arg(long, default_value = "pending", value_parser = ["pending", "dead"])]
        status: String,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        offset: Option<usize>,
    },
    /// Send dead letters again (all, or one --seq), first and in order.
    Replay {
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        #[arg(long)]
        seq: Option<u64>,
    },
}

pub async fn run(cmd: Cmd, c: &Client, json_out: bool) -> anyhow::Result<()> {
    let base = |ws: &str| format!("/v1/{}/triggers", seg(ws));
    let one = |ws: &str, id: &str| format!("/v1/{}/triggers/{}", seg(ws), seg(id));
    let mut columns = COLUMNS;
    let out = match cmd {
        Cmd::Create {
            workspace,
            name,
            collection,
            rel_type,
            url,
            events,
            skip_hook_writes,
            description,
        } => {
            let body = json!({
                "name": name,
                "collection": collection,
                "rel_type": rel_type,
                "url": url,
                "events": json_arg("--events", &events)?,
                "skip_hook_writes": skip_hook_writes,
                "description": description,
            });
            let out = c.call(Method::POST, &base(&workspace), Some(body)).await?;
            if !json_out {
                println!(
                    "Trigger '{}' created. Its signing secret, shown only now:\n\n    {}\n\nReceivers verify each delivery's webhook-signature with it (Standard Webhooks).",
                    out["id"].as_str().unwrap_or(""),
                    out["secret"].as_str().unwrap_or("")
                );
                return Ok(());
            }
            out
        }
        Cmd::List { workspace } => c.get(&base(&workspace)).await?,
        Cmd::Get { id, workspace } => c.get(&one(&workspace, &id)).await?,
        Cmd::Delete { id, workspace } => {
            c.call(Method::DELETE, &one(&workspace, &id), None).await?
        }
        Cmd::RotateSecret {
            id,
            workspace,
            grace_seconds,
        } => {
            let path = format!("{}/rotate-secret", one(&workspace, &id));
            let out = c
                .call(
                    Method::POST,
                    &path,
                    Some(json!({"grace_seconds": grace_seconds})),
                )
                .await?;
            if !json_out {
                println!(
                    "New signing secret for trigger '{id}', shown only now:\n\n    {}\n\nThe previous one keeps signing for {} s.",
                    out["secret"].as_str().unwrap_or(""),
                    out["previous_secrets_valid_for_seconds"]
                );
                return Ok(());
            }
            out
        }
        Cmd::Enable { id, workspace } => {
            c.call(
                Method::POST,
                &format!("{}/enable", one(&workspace, &id)),
                None,
            )
            .await?
        }
        Cmd::Deliveries {
            id,
            workspace,
            status,
            limit,
            offset,
        } => {
            columns = DELIVERY_COLUMNS;
            let mut path = format!("{}/deliveries?status={status}", one(&workspace, &id));
            if let Some(l) = limit {
                path.push_str(&format!("&limit={l}"));
            }
            if let Some(o) = offset {
                path.push_str(&format!("&offset={o}"));
            }
            c.get(&path).await?
        }
        Cmd::Replay { id, workspace, seq } => {
            c.call(
                Method::POST,
                &format!("{}/replay", one(&workspace, &id)),
                Some(json!({"seq": seq})),
            )
            .await?
        }
    };
    print(&out, json_out, columns);
    Ok(())
}
