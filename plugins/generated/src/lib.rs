//! The generated endpoint component: serves the tools the endpoint config
//! describes ([`mcp_factory_guest::generated`], named by the same code the
//! host validates configs with), running each through the
//! capability-checked `store` imports.

use mcp_factory_guest::{Args, Error, Plugin, ToolSpec, context, generated};
use serde_json::Value;

struct Generated;

fn config() -> Result<mcp_factory_guest::config::EndpointConfig, Error> {
    context::config().map_err(|e| Error::Failed(format!("endpoint config: {e}")))
}

impl Plugin for Generated {
    fn tools() -> Vec<ToolSpec> {
        let Ok(config) = config() else {
            return Vec::new();
        };
        generated::tools(&config, &context::collection_schemas()).unwrap_or_default()
    }

    fn call(name: &str, args: Args) -> Result<Value, Error> {
        generated::call(&config()?, name, args.value())
    }

    fn call_json(name: &str, args: Args) -> Result<String, Error> {
        generated::call_json(&config()?, name, args.value())
    }
}

mcp_factory_guest::export!(Generated);
