//! `mcp-factory-guest`: the SDK for writing mcp-factory endpoint components
//! in Rust (bindings to the `mcp-factory:plugin` WIT world, an ergonomic
//! tool-provider trait, and the generated-tools implementation).
//!
//! Not written yet: it arrives with the endpoint runtime (issue
//! "[spine 3/4]"). The crate exists so the workspace has its final shape.
