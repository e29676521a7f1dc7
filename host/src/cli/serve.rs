//! `mcp-factory serve`: opens the store, creates the admin token on first
//! start (printed once, saved to the credentials file), and serves HTTP.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::client::{Credentials, write_credentials};
use crate::http::{self, AppState};
use crate::service::{Config, Service};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory of the embedded redb store.
    #[arg(long, env = "MCP_FACTORY_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "MCP_FACTORY_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MCP_FACTORY_MAX_BODY", default_value_t = http::DEFAULT_MAX_BODY)]
    pub max_body: usize,
    /// Requests per second allowed per token (bursts of the same size); 0: no limit.
    #[arg(long, env = "MCP_FACTORY_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,
    /// Most bytes of uploaded components (plugins) one workspace may hold.
    #[arg(long, env = "MCP_FACTORY_MAX_PLUGIN_BYTES",
          default_value_t = crate::service::DEFAULT_MAX_PLUGIN_BYTES)]
    pub max_plugin_bytes: u64,
    /// Wall-time limit of one SQL query, in milliseconds.
    #[arg(long, env = "MCP_FACTORY_SQL_TIMEOUT_MS", default_value_t = 10_000)]
    pub sql_timeout_ms: u64,
    /// Memory cap of one endpoint call, in MiB (at most 256); an endpoint's
    /// `limits.memory_mb` may only lower it.
    #[arg(long, env = "MCP_FACTORY_ENDPOINT_MEMORY_MB", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub endpoint_memory_mb: u32,
    /// Time limit of one endpoint call, in milliseconds; `limits.timeout_ms`
    /// may only lower it.
    #[arg(
        long,
        env = "MCP_FACTORY_ENDPOINT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub endpoint_timeout_ms: u64,
    /// Calls running at once per endpoint; `limits.max_concurrency` may only
    /// lower it.
    #[arg(long, env = "MCP_FACTORY_ENDPOINT_MAX_CONCURRENCY", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub endpoint_max_concurrency: u32,
    /// A `Host` the MCP routes accept (`name` or `name:port`); repeat for
    /// more. Default: localhost, 127.0.0.1 and ::1 only (DNS-rebinding
    /// protection). A public server lists its own host names here.
    #[arg(
        long = "allowed-host",
        env = "MCP_FACTORY_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_host: Vec<String>,
    /// A browser `Origin` the MCP routes accept (`https://app.example.com`,
    /// `http://localhost:*`); repeat for more; replaces the default, which
    /// is pages served from localhost, 127.0.0.1 and [::1]. A request with
    /// any other `Origin` is refused. Clients that are not browsers send no
    /// `Origin` and are not affected.
    #[arg(
        long = "allowed-origin",
        env = "MCP_FACTORY_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origin: Vec<String>,
    /// Where triggers may deliver besides public https URLs: an address
    /// range (`127.0.0.1`, `10.0.0.0/8`) or a host name; repeat or separate
    /// with commas. Listed destinations may also use plain http. Off by
    /// default: how tests and private deployments reach a receiver on
    /// loopback or a private network.
    #[arg(
        long = "egress-allow",
        env = "MCP_FACTORY_EGRESS_ALLOW",
        value_delimiter = ',',
        value_parser = clap::value_parser!(crate::egress::Allow)
    )]
    pub egress_allow: Vec<crate::egress::Allow>,
    /// Trigger retry schedule (`0s,5s,5m,30m,2h,5h,10h,10h` by default:
    /// Svix's). For tests.
    #[arg(long, env = "MCP_FACTORY_DELIVERY_SCHEDULE", hide = true,
          value_parser = crate::dispatch::parse_schedule)]
    pub delivery_schedule: Option<DeliverySchedule>,
    /// Time limit of one trigger delivery, in milliseconds (15 s by default). For tests.
    #[arg(long, env = "MCP_FACTORY_DELIVERY_TIMEOUT_MS", hide = true)]
    pub delivery_timeout_ms: Option<u64>,
    /// TEST MODE, off by default: also serve the MCP conformance suite's
    /// fixture tools at /conformance/mcp WITHOUT authentication. Refused
    /// unless --listen is a loopback address. The fixture touches no data.
    #[arg(long)]
    pub conformance_fixture: bool,
}

/// A parsed `--delivery-schedule`.
pub type DeliverySchedule = Vec<std::time::Duration>;

pub async fn run(a: ServeArgs) -> anyhow::Result<()> {
    let store = Store::open(&a.data)
        .with_context(|| format!("opening the store in {}", a.data.display()))?;
    let config = Config {
        sql_timeout: std::time::Duration::from_millis(a.sql_timeout_ms),
        rate_limit: std::num::NonZeroU32::new(a.rate_limit),
        max_plugin_bytes: a.max_plugin_bytes,
        egress: crate::egress::Egress::new(a.egress_allow.clone()),
        ..Config::default()
    };
    let service = Service::with_config(store, config)?;
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("cannot listen on {}", a.listen))?;
    let addr = listener.local_addr()?;
    if a.conformance_fixture && !addr.ip().is_loopback() {
        anyhow::bail!(
            "--conformance-fixture serves tools without authentication: it is only allowed on a \
             loopback address (e.g. --listen 127.0.0.1:8787), not {addr}"
        );
    }
    if a.conformance_fixture {
        println!(
            "TEST MODE: the conformance fixture is served without auth at http://{addr}/conformance/mcp"
        );
    }
    let url = format!("http://{addr}");
    if let Some(admin) = service.bootstrap_admin().await? {
        // Shown once, on purpose on stdout and never through the logger.
        let saved = write_credentials(&Credentials {
            url: url.clone(),
            token: admin.token.clone(),
        });
        println!(
            "Created the admin token (shown only now):\n\n    {}\n",
            admin.token
        );
        match saved {
            Ok(path) => println!(
                "Saved it to {} (mode 0600); the CLI uses it by default.",
                path.display()
            ),
            Err(e) => {
                println!("Could not save it ({e:#}); pass it with --token or MCP_FACTORY_TOKEN.")
            }
        }
    }
    println!(
        "mcp-factory listening on {url} (data in {})",
        a.data.display()
    );
    tracing::info!(%addr, "listening");
    let runtime = crate::runtime::Runtime::new(
        crate::runtime::Limits {
            memory_mb: a.endpoint_memory_mb,
            timeout: std::time::Duration::from_millis(a.endpoint_timeout_ms),
            max_concurrency: a.endpoint_max_concurrency,
            ..crate::runtime::Limits::default()
        },
        a.data.join("cache"),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    runtime.watch(&service);
    // Every endpoint upsert, from any door, checks its component first.
    service.set_config_check(std::sync::Arc::new(crate::runtime::Checker(
        runtime.clone(),
    )));
    // Compile (or load from the cache) every component in the background;
    // a call arriving first waits for its component only.
    let warm = (runtime.clone(), service.clone());
    tokio::spawn(async move { warm.0.warm_up(&warm.1).await });
    // Trigger deliveries, from what the outbox holds (also after a crash).
    crate::dispatch::Dispatcher::new(
        service.clone(),
        a.delivery_schedule.clone(),
        a.delivery_timeout_ms.map(std::time::Duration::from_millis),
    )
    .start();
    let access = crate::mcp::Access {
        allowed_hosts: if a.allowed_host.is_empty() {
            crate::mcp::Access::default().allowed_hosts
        } else {
            a.allowed_host.clone()
        },
        allowed_origins: if a.allowed_origin.is_empty() {
            crate::mcp::Access::default().allowed_origins
        } else {
            a.allowed_origin.clone()
        },
    };
    let mcp = crate::mcp::McpConfig {
        access,
        conformance_fixture: a.conformance_fixture,
        max_body: a.max_body,
    };
    let state = AppState::new(service, runtime, a.max_body, mcp);
    http::serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
