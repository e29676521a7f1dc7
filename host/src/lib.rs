//! mcp-factory: one binary that turns a record store into purpose-built MCP
//! servers.
//!
//! Layers, each knowing only those below it: [`http`] → [`service`] →
//! [`store`]; [`schema`] is shared by the service. [`cli`] is a client of
//! the REST API and never opens the store itself (redb allows one process
//! per file).

pub mod background;
pub mod cli;
pub mod dispatch;
pub mod egress;
pub mod http;
pub mod mcp;
pub mod runtime;
pub mod schema;
pub mod service;
pub mod sql;
pub mod store;
pub mod webhooks;
