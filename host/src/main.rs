//! The `mcp-factory` binary: parses the command line and dispatches.

/// mimalloc instead of the system allocator: a tools/call allocates a few
/// hundred small objects across threads (HTTP, JSON, rmcp, the Wasm store),
/// which glibc's per-arena locking and trimming make costly on a busy
/// server (measured in docs/benchmarks.md, "MCP tools/call load").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mcp_factory::cli::main()
}
