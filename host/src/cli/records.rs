//! `mcp-factory records …` and `mcp-factory query …`

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Client, json_arg, seg};
use super::output::print;

const COLUMNS: &[&str] = &["/id", "/external_id", "/version", "/data", "/updated_at"];

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create or replace a record; idempotent with --external-id/--external-source.
    Upsert {
        collection: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        /// The record's data, inline JSON or @file.
        #[arg(long)]
        data: String,
        #[arg(long)]
        external_id: Option<String>,
        #[arg(long)]
        external_source: Option<String>,
        /// Update this record (internal id).
        #[arg(long)]
        id: Option<String>,
        /// Expected current version (optimistic concurrency).
        #[arg(long)]
        version: Option<u64>,
    },
    /// Show a record (internal or external id).
    Get {
        collection: String,
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Change some fields (JSON merge patch on data).
    Update {
        collection: String,
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
        #[arg(long)]
        data: String,
        #[arg(long)]
        version: Option<u64>,
    },
    /// Soft-delete a record.
    Delete {
        collection: String,
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Mark a record cancelled.
    Cancel {
        collection: String,
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
    /// Archive a record (read-only from then on; cancel and delete still work).
    Archive {
        collection: String,
        id: String,
        #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
        workspace: String,
    },
}

/// `mcp-factory query <collection> …`
#[derive(Debug, Args)]
pub struct QueryArgs {
    collection: String,
    #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
    workspace: String,
    /// e.g. '{"field":"data.status","op":"eq","value":"draft"}' (or @file).
    #[arg(long)]
    filter: Option<String>,
    /// e.g. '{"field":"data.amount","order":"desc"}'.
    #[arg(long)]
    sort: Option<String>,
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long)]
    offset: Option<usize>,
}

pub async fn run(cmd: Cmd, c: &Client, json_out: bool) -> anyhow::Result<()> {
    let rec = |ws: &str, coll: &str, id: &str| {
        format!("/v1/{}/records/{}/{}", seg(ws), seg(coll), seg(id))
    };
    let out = match cmd {
        Cmd::Upsert {
            collection,
            workspace,
            data,
            external_id,
            external_source,
            id,
            version,
        } => {
            let body = json!({
                "data": json_arg("--data", &data)?, "external_id": external_id,
                "external_source": external_source, "id": id, "version": version,
            });
            let path = format!("/v1/{}/records/{}", seg(&workspace), seg(&collection));
            c.call(Method::PUT, &path, Some(body)).await?
        }
        Cmd::Get {
            collection,
            id,
            workspace,
        } => c.get(&rec(&workspace, &collection, &id)).await?,
        Cmd::Update {
            collection,
            id,
            workspace,
            data,
            version,
        } => {
            let body = json!({"data": json_arg("--data", &data)?, "version": version});
            c.call(
                Method::PATCH,
                &rec(&workspace, &collection, &id),
                Some(body),
            )
            .await?
        }
        Cmd::Delete {
            collection,
            id,
            workspace,
        } => {
            c.call(Method::DELETE, &rec(&workspace, &collection, &id), None)
                .await?
        }
        Cmd::Cancel {
            collection,
            id,
            workspace,
        } => {
            let path = format!("{}/cancel", rec(&workspace, &collection, &id));
            c.call(Method::POST, &path, None).await?
        }
        Cmd::Archive {
            collection,
            id,
            workspace,
        } => {
            let path = format!("{}/archive", rec(&workspace, &collection, &id));
            c.call(Method::POST, &path, None).await?
        }
    };
    print(&out, json_out, COLUMNS);
    Ok(())
}

pub async fn query(a: QueryArgs, c: &Client, json_out: bool) -> anyhow::Result<()> {
    let opt = |what: &str, s: &Option<String>| s.as_deref().map(|s| json_arg(what, s)).transpose();
    let body = json!({
        "filter": opt("--filter", &a.filter)?.unwrap_or(Value::Null),
        "sort": opt("--sort", &a.sort)?,
        "limit": a.limit, "offset": a.offset,
    });
    let path = format!(
        "/v1/{}/records/{}/query",
        seg(&a.workspace),
        seg(&a.collection)
    );
    print(
        &c.call(Method::POST, &path, Some(body)).await?,
        json_out,
        COLUMNS,
    );
    Ok(())
}
