//! `mcp-factory-guest`: the SDK for mcp-factory endpoint components.
//!
//! - [`config`]: the endpoint configuration and the tools it generates —
//!   plain Rust, shared by the host (to validate a configuration when it is
//!   stored) and the generated component `plugins/generated` (to serve it),
//!   so the two can never disagree on a tool name.
//!
//! The component contract is `wit/plugin.wit` (`mcp-factory:plugin@0.1.0`).
//! An ergonomic layer for custom components (a tool-provider trait, an
//! export macro, typed store helpers) is still to come; today a component
//! uses `wit-bindgen` on that file directly, as `plugins/generated` does.

pub mod config;
