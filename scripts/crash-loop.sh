#!/usr/bin/env bash
# Longer crash-safety run: the SIGKILL durability test (writes and their
# trigger events) with more cycles.
#   scripts/crash-loop.sh [CYCLES]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
MCP_FACTORY_CRASH_CYCLES="${1:-200}" cargo test -j2 -p mcp-factory --test all durability -- --nocapture
