//! `mcp-factory batch …` and `mcp-factory operations …`

use anyhow::bail;
use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Client, json_arg, seg};
use super::output::print;

/// `mcp-factory batch --operations '[…]'`
#[derive(Debug, Args)]
pub struct BatchArgs {
    #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
    workspace: String,
    /// A JSON list of operations (or {"operations": [...]}), inline or @file.
    #[arg(long)]
    operations: String,
}

/// `mcp-factory operations --workspace …`: the operations log.
#[derive(Debug, Args)]
pub struct OpsArgs {
    #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
    workspace: String,
    /// Only entries after this sequence number.
    #[arg(long, default_value_t = 0)]
    after: u64,
    #[arg(long)]
    limit: Option<usize>,
}

pub async fn batch(a: BatchArgs, c: &Client, json_out: bool) -> anyhow::Result<()> {
    let ops = match json_arg("--operations", &a.operations)? {
        Value::Array(ops) => ops,
        Value::Object(mut o) => match o.remove("operations") {
            Some(Value::Array(ops)) => ops,
            _ => bail!("--operations must be a JSON list of operations"),
        },
        _ => bail!("--operations must be a JSON list of operations"),
    };
    let path = format!("/v1/{}/batch", seg(&a.workspace));
    let out = c
        .call(Method::POST, &path, Some(json!({"operations": ops})))
        .await?;
    if json_out {
        print(&out, true, &[]);
    } else {
        let rows = json!({"data": out["results"], "meta": {"total": out["meta"]["operations"]}});
        print(&rows, false, &["/index", "/type", "/result/id"]);
    }
    Ok(())
}

pub async fn operations(a: OpsArgs, c: &Client, json_out: bool) -> anyhow::Result<()> {
    let mut path = format!("/v1/{}/operations?after={}", seg(&a.workspace), a.after);
    if let Some(l) = a.limit {
        path.push_str(&format!("&limit={l}"));
    }
    print(
        &c.get(&path).await?,
        json_out,
        &["/seq", "/operation", "/target", "/token_id", "/at"],
    );
    Ok(())
}
