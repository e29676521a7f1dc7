//! `mcp-factory-guest`: the SDK for mcp-factory endpoint components.
//!
//! An mcp-factory endpoint is an MCP server whose tools come from WebAssembly
//! components implementing `wit/plugin.wit` (`mcp-factory:plugin@0.1.0`).
//! Every endpoint gets the **generated** layer (tools from its config); a
//! **custom** component you upload adds tools, and its tools shadow
//! generated tools of the same name. Your code reaches the record store only
//! through the endpoint's grants.
//!
//! Writing one takes a type, a [`Plugin`] impl and [`export!`]:
//!
//! ```no_run
//! use mcp_factory_guest::{Args, Error, Plugin, ToolSpec, base, store};
//! use serde::Deserialize;
//! use serde_json::{Value, json};
//!
//! struct Invoicing;
//!
//! #[derive(Deserialize)]
//! struct Summary {
//!     id: String,
//! }
//!
//! impl Plugin for Invoicing {
//!     fn tools() -> Vec<ToolSpec> {
//!         vec![
//!             ToolSpec::new("invoice_summary", "One line about an invoice")
//!                 .input_schema(json!({
//!                     "type": "object",
//!                     "properties": {"id": {"type": "string"}},
//!                     "required": ["id"]
//!                 }))
//!                 .read_only(),
//!         ]
//!     }
//!
//!     fn call(name: &str, args: Args) -> Result<Value, Error> {
//!         match name {
//!             "invoice_summary" => {
//!                 let Summary { id } = args.parse()?;
//!                 let invoice = store::get("invoices", &id)?;
//!                 Ok(json!({"summary": format!("invoice {} v{}", invoice.id, invoice.version)}))
//!             }
//!             // Not ours: the generated behaviour.
//!             _ => base::call(name, args.value()),
//!         }
//!     }
//! }
//!
//! mcp_factory_guest::export!(Invoicing);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (crate type
//! `cdylib`) and upload `target/wasm32-wasip2/release/<name>.wasm` with
//! `mcp-factory plugins upload`. `plugins/invoicing` in this repository is a
//! complete example.
//!
//! Modules:
//! - [`config`]: the endpoint configuration and the tools it generates —
//!   plain Rust, shared by the host (to validate a configuration when it is
//!   stored) and the generated component (to serve it), so the two never
//!   disagree on a tool name.
//! - [`generated`]: the generated tools' definitions and behaviour.
//! - [`store`]: typed helpers over the capability-checked store imports.
//! - [`base`]: the generated behaviour of this endpoint, for overrides that
//!   check, then delegate.
//! - [`log`]: the endpoint's log (`mcp-factory endpoints logs`).
//! - [`bindings`]: the raw `wit-bindgen` bindings, if you need them.

extern crate self as mcp_factory_guest;

pub mod config;
pub mod generated;
pub mod store;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The raw bindings of the `custom` world of `wit/plugin.wit`.
#[allow(missing_docs, clippy::all, unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "custom",
        pub_export_macro: true,
        export_macro_name: "__export_tool_provider",
        default_bindings_module: "mcp_factory_guest::bindings",
        runtime_path: "mcp_factory_guest::__private::wit_bindgen::rt",
    });
}

use bindings::mcp_factory::plugin::types;

/// MCP tool annotations: hints for the agent.
pub use config::Annotations;

/// A tool as `tools/list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// `^[a-zA-Z0-9_-]{1,64}$`, unique in the component.
    pub name: String,
    pub description: String,
    /// The JSON Schema of the arguments (an object schema).
    pub input_schema: Value,
    pub annotations: Annotations,
}

impl ToolSpec {
    /// A tool taking any object, not read-only, not destructive.
    ///
    /// ```
    /// use mcp_factory_guest::ToolSpec;
    /// let t = ToolSpec::new("ping", "Answers pong").read_only();
    /// assert!(t.annotations.read_only && t.annotations.idempotent);
    /// assert_eq!(t.input_schema["type"], "object");
    /// ```
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: description.into(),
            input_schema: json!({"type": "object"}),
            annotations: Annotations {
                read_only: false,
                destructive: false,
                idempotent: false,
            },
        }
    }

    /// Sets the JSON Schema of the arguments (the host checks every call
    /// against it before your code runs).
    pub fn input_schema(mut self, schema: Value) -> ToolSpec {
        self.input_schema = schema;
        self
    }

    /// Replaces the description.
    pub fn describe(mut self, description: impl Into<String>) -> ToolSpec {
        self.description = description.into();
        self
    }

    /// The tool changes nothing (and so is idempotent).
    pub fn read_only(mut self) -> ToolSpec {
        self.annotations.read_only = true;
        self.annotations.destructive = false;
        self.annotations.idempotent = true;
        self
    }

    /// The tool may overwrite or delete data.
    pub fn destructive(mut self) -> ToolSpec {
        self.annotations.destructive = true;
        self.annotations.read_only = false;
        self
    }

    /// Calling it twice with the same arguments changes nothing more.
    pub fn idempotent(mut self) -> ToolSpec {
        self.annotations.idempotent = true;
        self
    }
}

impl From<ToolSpec> for types::Tool {
    fn from(t: ToolSpec) -> types::Tool {
        types::Tool {
            name: t.name,
            description: t.description,
            input_schema: t.input_schema.to_string(),
            annotations: types::Annotations {
                read_only: t.annotations.read_only,
                destructive: t.annotations.destructive,
                idempotent: t.annotations.idempotent,
            },
        }
    }
}

impl From<types::Tool> for ToolSpec {
    fn from(t: types::Tool) -> ToolSpec {
        ToolSpec {
            name: t.name,
            description: t.description,
            input_schema: serde_json::from_str(&t.input_schema)
                .unwrap_or_else(|_| json!({"type": "object"})),
            annotations: Annotations {
                read_only: t.annotations.read_only,
                destructive: t.annotations.destructive,
                idempotent: t.annotations.idempotent,
            },
        }
    }
}

/// A tool's JSON arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Args(Value);

impl Args {
    pub fn new(value: Value) -> Args {
        Args(value)
    }

    /// The arguments as a typed value; a mismatch is
    /// [`Error::InvalidArguments`] with serde's message.
    ///
    /// ```
    /// use mcp_factory_guest::{Args, Error};
    /// #[derive(serde::Deserialize)]
    /// struct Get { id: String }
    ///
    /// let ok: Get = Args::new(serde_json::json!({"id": "inv_1"})).parse().unwrap();
    /// assert_eq!(ok.id, "inv_1");
    /// let bad = Args::new(serde_json::json!({"id": 7})).parse::<Get>();
    /// assert!(matches!(bad, Err(Error::InvalidArguments(m)) if m.contains("invalid type")));
    /// ```
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.0).map_err(|e| Error::InvalidArguments(e.to_string()))
    }

    /// One argument, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn value(&self) -> &Value {
        &self.0
    }

    pub fn into_value(self) -> Value {
        self.0
    }
}

/// Why a tool call did not succeed.
///
/// [`Error::Tool`] is a business error: the call ran, the answer is "no",
/// and the agent sees it as a tool result with `isError: true` it can act
/// on. The others are protocol errors. Store refusals convert to business
/// errors, so `?` on a store call does the right thing:
///
/// ```
/// use mcp_factory_guest::Error;
/// use mcp_factory_guest::store::StoreError;
///
/// let e: Error = StoreError::NotFound("record 'inv_9' not found".into()).into();
/// assert_eq!(e, Error::Tool(serde_json::json!(
///     {"error": {"code": "NOT_FOUND", "message": "record 'inv_9' not found"}}
/// )));
/// let e = Error::business("TOTAL_MISMATCH", "lines add up to 90, total says 100");
/// assert_eq!(e, Error::Tool(serde_json::json!(
///     {"error": {"code": "TOTAL_MISMATCH", "message": "lines add up to 90, total says 100"}}
/// )));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A business error; the JSON is the tool result's content.
    Tool(Value),
    /// No tool of that name.
    UnknownTool(String),
    /// The arguments do not fit the tool.
    InvalidArguments(String),
    /// Anything else.
    Failed(String),
}

impl Error {
    /// A business error `{"error": {"code", "message"}}`.
    pub fn business(code: &str, message: impl Into<String>) -> Error {
        Error::Tool(json!({"error": {"code": code, "message": message.into()}}))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Tool(v) => write!(f, "{v}"),
            Error::UnknownTool(m) => write!(f, "unknown tool: {m}"),
            Error::InvalidArguments(m) => write!(f, "invalid arguments: {m}"),
            Error::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::Failed(format!("JSON: {e}"))
    }
}

impl From<store::StoreError> for Error {
    fn from(e: store::StoreError) -> Error {
        let (code, message) = e.parts();
        Error::business(code, message)
    }
}

impl From<types::CallError> for Error {
    fn from(e: types::CallError) -> Error {
        match e {
            types::CallError::UnknownTool(m) => Error::UnknownTool(m),
            types::CallError::InvalidArguments(m) => Error::InvalidArguments(m),
            types::CallError::Failed(m) => Error::Failed(m),
        }
    }
}

/// What a component implements: its tools and how to run them.
pub trait Plugin {
    /// The tools this component serves. In a custom component, a tool named
    /// like a generated one replaces it; every other generated tool is still
    /// served by the generated layer.
    fn tools() -> Vec<ToolSpec>;

    /// Runs tool `name`. `Ok` is the result's JSON content.
    fn call(name: &str, args: Args) -> Result<Value, Error>;

    /// [`Plugin::call`] with the result as JSON text. Override it instead
    /// when you already hold the text, to skip a parse and a print.
    fn call_json(name: &str, args: Args) -> Result<String, Error> {
        Self::call(name, args).map(|v| v.to_string())
    }
}

/// Exports a [`Plugin`] as the component's `tool-provider`.
///
/// ```no_run
/// struct Hello;
/// impl mcp_factory_guest::Plugin for Hello {
///     fn tools() -> Vec<mcp_factory_guest::ToolSpec> {
///         vec![mcp_factory_guest::ToolSpec::new("hello", "Says hello").read_only()]
///     }
///     fn call(_: &str, _: mcp_factory_guest::Args) -> Result<serde_json::Value, mcp_factory_guest::Error> {
///         Ok(serde_json::json!({"hello": "world"}))
///     }
/// }
/// mcp_factory_guest::export!(Hello);
/// ```
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        const _: () = {
            struct __McpFactoryExport;
            impl $crate::bindings::exports::mcp_factory::plugin::tool_provider::Guest
                for __McpFactoryExport
            {
                fn list_tools() -> ::std::vec::Vec<$crate::__private::Tool> {
                    $crate::__private::list_tools::<$plugin>()
                }
                fn call_tool(
                    name: ::std::string::String,
                    arguments: ::std::string::String,
                ) -> ::std::result::Result<$crate::__private::ToolResult, $crate::__private::CallError>
                {
                    $crate::__private::call_tool::<$plugin>(&name, &arguments)
                }
            }
            $crate::bindings::__export_tool_provider!(__McpFactoryExport with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::mcp_factory::plugin::types::{CallError, Tool, ToolResult};
    pub use wit_bindgen;

    use super::{Args, Plugin};

    pub fn list_tools<P: Plugin>() -> Vec<Tool> {
        P::tools().into_iter().map(Tool::from).collect()
    }

    pub fn call_tool<P: Plugin>(name: &str, arguments: &str) -> Result<ToolResult, CallError> {
        let args = serde_json::from_str(arguments)
            .map_err(|e| CallError::InvalidArguments(format!("arguments are not JSON: {e}")))?;
        super::into_result(P::call_json(name, Args(args)))
    }
}

fn into_result(r: Result<String, Error>) -> Result<types::ToolResult, types::CallError> {
    match r {
        Ok(content) => Ok(types::ToolResult {
            content,
            is_error: false,
        }),
        Err(Error::Tool(v)) => Ok(types::ToolResult {
            content: v.to_string(),
            is_error: true,
        }),
        Err(Error::UnknownTool(m)) => Err(types::CallError::UnknownTool(m)),
        Err(Error::InvalidArguments(m)) => Err(types::CallError::InvalidArguments(m)),
        Err(Error::Failed(m)) => Err(types::CallError::Failed(m)),
    }
}

/// The generated behaviour of this endpoint (custom components only).
pub mod base {
    use serde_json::Value;

    use super::{Error, ToolSpec};
    use crate::bindings::mcp_factory::plugin::base as raw;

    /// The generated tools of this endpoint.
    pub fn tools() -> Vec<ToolSpec> {
        raw::list_tools().into_iter().map(ToolSpec::from).collect()
    }

    /// The generated tool `name`, to reuse its schema in an override.
    pub fn tool(name: &str) -> Option<ToolSpec> {
        tools().into_iter().find(|t| t.name == name)
    }

    /// Runs the generated tool `name`; a business error comes back as
    /// [`Error::Tool`], so an override can pass it on with `?`.
    pub fn call(name: &str, args: &Value) -> Result<Value, Error> {
        let r = raw::call_tool(name, &args.to_string())?;
        let content: Value = serde_json::from_str(&r.content)?;
        if r.is_error {
            Err(Error::Tool(content))
        } else {
            Ok(content)
        }
    }
}

/// The endpoint's log, read with `mcp-factory endpoints logs`. Text a
/// component prints to stdout or stderr lands there too.
pub mod log {
    use crate::bindings::mcp_factory::plugin::log::{Level, log};

    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Facts about the endpoint and the request.
pub mod context {
    use serde_json::Value;

    use crate::bindings::mcp_factory::plugin::context as raw;
    use crate::config::EndpointConfig;

    /// The endpoint's config.
    pub fn config() -> Result<EndpointConfig, serde_json::Error> {
        serde_json::from_str(&raw::endpoint_config())
    }

    /// `{"collection": JSON Schema}` for the endpoint's collections.
    pub fn collection_schemas() -> Value {
        serde_json::from_str(&raw::collection_schemas()).unwrap_or(Value::Null)
    }

    /// This request's id, for logs.
    pub fn request_id() -> String {
        raw::request_id()
    }
}
