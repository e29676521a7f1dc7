//! The command line. `serve` runs the server; every other command is a
//! client of the REST API (redb allows one process per file), one file per
//! command group with the same shape: a clap `Cmd` and an async `run`.

pub mod batch;
pub mod client;
pub mod collections;
pub mod endpoints;
pub mod hooks;
pub mod output;
pub mod plugins;
pub mod records;
pub mod relationships;
pub mod serve;
pub mod sql;
pub mod tokens;
pub mod triggers;
pub mod workspaces;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mcp-factory: turn a record store into purpose-built MCP servers.
#[derive(Debug, Parser)]
#[command(name = "mcp-factory", version, about)]
pub struct Cli {
    /// Server URL (default: the saved credentials' URL, else http://127.0.0.1:8787).
    #[arg(long, global = true, env = "MCP_FACTORY_URL")]
    server: Option<String>,
    /// API token (default: the saved admin credentials).
    #[arg(long, global = true, env = "MCP_FACTORY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the REST response body as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server on the embedded store.
    Serve(serve::ServeArgs),
    /// Workspaces, previews and promotion.
    #[command(subcommand)]
    Workspaces(workspaces::Cmd),
    /// Collections (JSON Schema) of a workspace.
    #[command(subcommand)]
    Collections(collections::Cmd),
    /// Endpoints: purpose-built MCP servers configured from collections.
    #[command(subcommand)]
    Endpoints(endpoints::Cmd),
    /// Custom components (WebAssembly) that add or override endpoint tools.
    #[command(subcommand)]
    Plugins(plugins::Cmd),
    /// Records of a collection.
    #[command(subcommand)]
    Records(records::Cmd),
    /// Filter, sort and page a collection's records.
    Query(records::QueryArgs),
    /// Typed links between records.
    #[command(subcommand)]
    Relationships(relationships::Cmd),
    /// The relationships of one record.
    QueryRelationships(relationships::QueryArgs),
    /// Run up to 1,000 operations atomically.
    Batch(batch::BatchArgs),
    /// The operations log of a workspace.
    Operations(batch::OpsArgs),
    /// Read-only SQL over a workspace.
    Sql(sql::SqlArgs),
    /// API tokens.
    #[command(subcommand)]
    Tokens(tokens::Cmd),
    /// Inbound webhooks: other systems POST records into a collection.
    #[command(subcommand)]
    Hooks(hooks::Cmd),
    /// Outbound webhooks: changes are POSTed, signed, to a URL, durably.
    #[command(subcommand)]
    Triggers(triggers::Cmd),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Serve(args) = cli.command {
        init_logging();
        return serve::run(args).await;
    }
    let c = client::Client::new(cli.server, cli.token);
    let j = cli.json;
    match cli.command {
        Command::Serve(_) => unreachable!("handled above"),
        Command::Workspaces(cmd) => workspaces::run(cmd, &c, j).await,
        Command::Collections(cmd) => collections::run(cmd, &c, j).await,
        Command::Endpoints(cmd) => endpoints::run(cmd, &c, j).await,
        Command::Plugins(cmd) => plugins::run(cmd, &c, j).await,
        Command::Records(cmd) => records::run(cmd, &c, j).await,
        Command::Query(a) => records::query(a, &c, j).await,
        Command::Relationships(cmd) => relationships::run(cmd, &c, j).await,
        Command::QueryRelationships(a) => relationships::query(a, &c, j).await,
        Command::Batch(a) => batch::batch(a, &c, j).await,
        Command::Operations(a) => batch::operations(a, &c, j).await,
        Command::Sql(a) => sql::run(a, &c, j).await,
        Command::Tokens(cmd) => tokens::run(cmd, &c, j).await,
        Command::Hooks(cmd) => hooks::run(cmd, &c, j).await,
        Command::Triggers(cmd) => triggers::run(cmd, &c, j).await,
    }
}

fn init_logging() {
    // rmcp logs several lines at info for every stateless MCP request
    // (with Debug-formatted peer info): warnings only, unless RUST_LOG asks.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
