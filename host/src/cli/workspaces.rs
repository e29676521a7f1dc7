//! `mcp-factory workspaces …`

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::client::{Client, seg};
use super::output::print;

const COLUMNS: &[&str] = &["/id", "/name", "/kind", "/parent", "/created_at"];

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List the workspaces your token can see.
    List,
    /// Show one workspace.
    Get { id: String },
    /// Create a production workspace.
    Create {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a workspace and all its data (previews first).
    Delete { id: String },
    /// Create a preview `<ws>--<name>` with a copy of the workspace's config.
    CreatePreview {
        ws: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the previews of a production workspace.
    Previews { ws: String },
    /// Copy a preview's config (never its data) onto its production workspace.
    Promote {
        ws: String,
        /// The preview to promote, e.g. crm--dev.
        #[arg(long)]
        from: String,
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the promotions (and rollbacks) of a production workspace.
    Promotions { ws: String },
    /// Restore the config from before a promotion.
    Rollback {
        ws: String,
        #[arg(long)]
        promotion: String,
    },
}

pub async fn run(cmd: Cmd, c: &Client, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        Cmd::List => print(&c.get("/v1/workspaces").await?, json_out, COLUMNS),
        Cmd::Get { id } => print(
            &c.get(&format!("/v1/workspaces/{}", seg(&id))).await?,
            json_out,
            COLUMNS,
        ),
        Cmd::Create {
            id,
            name,
            description,
        } => {
            let body = json!({"id": id, "name": name, "description": description});
            print(
                &c.call(Method::POST, "/v1/workspaces", Some(body)).await?,
                json_out,
                COLUMNS,
            )
        }
        Cmd::Delete { id } => print(
            &c.call(
                Method::DELETE,
                &format!("/v1/workspaces/{}", seg(&id)),
                None,
            )
            .await?,
            json_out,
            COLUMNS,
        ),
        Cmd::CreatePreview {
            ws,
            name,
            description,
        } => {
            let body = json!({"name": name, "description": description});
            let path = format!("/v1/workspaces/{}/previews", seg(&ws));
            print(
                &c.call(Method::POST, &path, Some(body)).await?,
                json_out,
                COLUMNS,
            )
        }
        Cmd::Previews { ws } => print(
            &c.get(&format!("/v1/workspaces/{}/previews", seg(&ws)))
                .await?,
            json_out,
            COLUMNS,
        ),
        Cmd::Promote { ws, from, dry_run } => {
            let path = format!("/v1/workspaces/{}/promote", seg(&ws));
            let out = c
                .call(
                    Method::POST,
                    &path,
                    Some(json!({"from": from, "dry_run": dry_run})),
                )
                .await?;
            let out = print_secrets(out, json_out);
            print(&out, json_out, COLUMNS)
        }
        Cmd::Promotions { ws } => print(
            &c.get(&format!("/v1/workspaces/{}/promotions", seg(&ws)))
                .await?,
            json_out,
            &["/id", "/kind", "/from", "/created_at", "/diff/collections"],
        ),
        Cmd::Rollback { ws, promotion } => {
            let path = format!(
                "/v1/workspaces/{}/promotions/{}/rollback",
                seg(&ws),
                seg(&promotion)
            );
            let out = c.call(Method::POST, &path, None).await?;
            let out = print_secrets(out, json_out);
            print(&out, json_out, COLUMNS)
        }
    }
    Ok(())
}

/// Prints the secrets a promotion or rollback made for hooks and triggers
/// new to production (in the answer only, once), and returns the answer
/// without them for the table.
fn print_secrets(mut out: serde_json::Value, json_out: bool) -> serde_json::Value {
    if json_out {
        return out;
    }
    let Some(list) = out
        .as_object_mut()
        .and_then(|o| o.remove("secrets"))
        .and_then(|v| v.as_array().cloned())
        .filter(|l| !l.is_empty())
    else {
        return out;
    };
    println!("New secrets (shown only now; senders and receivers need them):");
    for s in list {
        println!(
            "    {} {}: {}",
            s["kind"].as_str().unwrap_or(""),
            s["id"].as_str().unwrap_or(""),
            s["secret"].as_str().unwrap_or("")
        );
    }
    println!();
    out
}
