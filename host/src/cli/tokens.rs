//! `mcp-factory tokens …`

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::client::{Client, json_arg, seg};
use super::output::print;

const COLUMNS: &[&str] = &[
    "/id",
    "/name",
    "/grants",
    "/expires_at",
    "/last_used_at",
    "/revoked_at",
];

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a token (shown once). Its grants cannot exceed yours.
    Create {
        #[arg(long)]
        name: String,
        /// e.g. '[{"scope":{"workspaces":["crm"]},"permissions":["read:records"]}]' (or @file).
        #[arg(long)]
        grants: String,
        /// RFC 3339 time, e.g. 2027-01-31T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List the tokens you manage (never their secrets).
    List,
    /// Revoke a token; it stops working on its next request.
    Revoke { id: String },
}

pub async fn run(cmd: Cmd, c: &Client, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        Cmd::Create {
            name,
            grants,
            expires_at,
        } => {
            let body = json!({"name": name, "grants": json_arg("--grants", &grants)?, "expires_at": expires_at});
            let out = c.call(Method::POST, "/v1/tokens", Some(body)).await?;
            if json_out {
                print(&out, true, COLUMNS);
            } else {
                println!(
                    "Token '{}' (id {}) created. Copy it now, it is not shown again:\n\n    {}\n",
                    out["name"].as_str().unwrap_or(""),
                    out["id"].as_str().unwrap_or(""),
                    out["token"].as_str().unwrap_or("")
                );
            }
        }
        Cmd::List => print(&c.get("/v1/tokens").await?, json_out, COLUMNS),
        Cmd::Revoke { id } => print(
            &c.call(Method::DELETE, &format!("/v1/tokens/{}", seg(&id)), None)
                .await?,
            json_out,
            COLUMNS,
        ),
    }
    Ok(())
}
