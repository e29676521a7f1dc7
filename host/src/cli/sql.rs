//! `mcp-factory sql --workspace <ws> "SELECT …"`

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Client, json_arg, seg};
use super::output::print;

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// One SELECT (or WITH … SELECT); @file reads it from a file.
    query: String,
    #[arg(long, env = "MCP_FACTORY_WORKSPACE")]
    workspace: String,
    /// Values for {name:Type} parameters, e.g. '{"min": 10}'.
    #[arg(long)]
    params: Option<String>,
}

pub async fn run(a: SqlArgs, c: &Client, json_out: bool) -> anyhow::Result<()> {
    let query = match a.query.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading the query from {path}: {e}"))?,
        None => a.query,
    };
    let params = a
        .params
        .map(|p| json_arg("--params", &p))
        .transpose()?
        .unwrap_or(json!({}));
    let path = format!("/v1/{}/sql", seg(&a.workspace));
    let out = c
        .call(
            Method::POST,
            &path,
            Some(json!({"query": query, "params": params})),
        )
        .await?;
    if json_out {
        print(&out, true, &[]);
        return Ok(());
    }
    // Rows are arrays: present them as objects keyed by column for the table.
    let cols: Vec<String> = out["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let rows: Vec<Value> = out["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            Value::Object(
                cols.iter()
                    .cloned()
                    .zip(r.as_array().cloned().unwrap_or_default())
                    .collect(),
            )
        })
        .collect();
    let pointers: Vec<String> = cols
        .iter()
        .map(|c| format!("/{}", c.replace('~', "~0").replace('/', "~1")))
        .collect();
    let pointers: Vec<&str> = pointers.iter().map(String::as_str).collect();
    print(&json!({"data": rows}), false, &pointers);
    let truncated = if out["truncated"] == Value::Bool(true) {
        " (truncated at 1000)"
    } else {
        ""
    };
    println!(
        "{} rows{truncated} in {:.1} ms",
        out["row_count"],
        out["elapsed_ms"].as_f64().unwrap_or(0.0)
    );
    Ok(())
}
