//! The `mcp-factory` binary: parses the command line and dispatches.

fn main() -> std::process::ExitCode {
    mcp_factory::cli::main()
}
