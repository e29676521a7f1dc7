//! `mcp-factory-guest`: the SDK for mcp-factory endpoint components.
//!
//! - [`config`]: the endpoint configuration and the tools it generates —
//!   plain Rust, shared by the host (to validate a configuration when it is
//!   stored) and the generated component (to serve it), so the two can never
//!   disagree on a tool name.
//!
//! The Wasm side (bindings to the `mcp-factory:plugin` WIT world, the
//! tool-provider trait and export macro, the generated behaviour) arrives
//! with the endpoint runtime (issue "[spine 3/4]").

pub mod config;
