//! Black-box integration tests: each test starts the real `mcp-factory`
//! binary on an ephemeral port with a temporary data directory and talks to
//! it over HTTP (reqwest) or through the CLI. One test binary with a module
//! per area keeps link times down.

#![allow(clippy::unwrap_used)]

mod common;

mod auth;
mod batch;
mod cli;
mod collections;
mod conformance;
mod custom_components;
mod durability;
mod egress;
mod endpoint_calls;
mod endpoints;
mod hooks;
mod http_errors;
mod limits_lists;
mod limits_runtime;
mod limits_sql;
mod limits_writer;
mod mcp_2026;
mod mcp_auth;
mod mcp_clients;
mod records;
mod relationships;
mod sandbox;
mod sql;
mod triggers;
mod trust;
mod trust_model;
mod workspaces;
