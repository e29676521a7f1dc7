//! Endpoint configurations, both ways a user writes one.
//!
//! The input is tried as a JSON `EndpointConfig` (what `--config` and
//! `PUT /endpoints/{slug}` take) and, line by line, as CLI shorthand flags
//! (`--tool invoices:get,list`, `--relationship …`, `--batch …`,
//! `--sql-query`). Whatever parses is planned with `tools()`.
//!
//! Invariants: nothing panics; a configuration survives a JSON round trip
//! (the CLI sends the shorthand as JSON, the store keeps JSON); a plan has
//! unique names that pass `valid_tool_name`, and `tool_kind` (the serving
//! path) agrees with it on every name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_factory_guest::config::{EndpointConfig, valid_tool_name};

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = serde_json::from_slice::<EndpointConfig>(data) {
        check(&config);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (mut tools, mut relationships, mut batch, mut sql_query) =
        (Vec::new(), Vec::new(), Vec::new(), false);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("--tool ") {
            tools.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("--relationship ") {
            relationships.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("--batch ") {
            batch.push(v.to_string());
        } else if line == "--sql-query" {
            sql_query = true;
        }
    }
    if let Ok(config) = EndpointConfig::from_shorthand(&tools, &relationships, &batch, sql_query) {
        assert_eq!(config.tools.len(), tools.len());
        assert_eq!(config.relationships.len(), relationships.len());
        assert_eq!(config.batch.is_some(), !batch.is_empty());
        check(&config);
    }
});

fn check(config: &EndpointConfig) {
    let json = serde_json::to_string(config).expect("a config serializes");
    let back: EndpointConfig = serde_json::from_str(&json).expect("a serialized config parses");
    assert_eq!(&back, config, "JSON round trip changed the config: {json}");

    let Ok(plan) = config.tools() else {
        return;
    };
    for (i, tool) in plan.iter().enumerate() {
        assert!(valid_tool_name(&tool.name), "invalid name {:?}", tool.name);
        assert!(
            plan[..i].iter().all(|t| t.name != tool.name),
            "name {:?} planned twice",
            tool.name
        );
        assert_eq!(
            config.tool_kind(&tool.name).as_ref(),
            Some(&tool.kind),
            "tool_kind disagrees with tools() on {:?}",
            tool.name
        );
    }
}
