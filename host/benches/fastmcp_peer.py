#!/usr/bin/env python3
"""Hand-written Python MCP peer for `mcp_compare.py`: the same invoice read as
mcp-factory's generated `get_invoices` tool, written directly against the
official Python SDK (`mcp==2.3.0`, `mcp.server.mcpserver.MCPServer`, the
FastMCP successor) and served by uvicorn.

One tool, `get_invoices(id: str) -> dict`: a `SELECT` by primary key from a
stdlib `sqlite3` table, the stored record JSON decoded and returned as a dict,
which the SDK sends as `structuredContent` plus the same JSON as a text block
(the shape mcp-factory answers with). An unknown id is a tool error.

The table is filled at start-up from `--records`, a JSON file the driver
writes: a list of the records exactly as mcp-factory's REST API returned them
(each has an `"id"`). The database is a file (`--db`, WAL mode), like the
store it is compared against; after the first reads it is in the page cache.

Configuration (the fastest fair one this SDK offers):
- Streamable HTTP at `/mcp`, `json_response=True` (one `application/json`
  body per POST, no SSE framing) and `stateless_http=True` (no session
  manager state: a 2025-era POST needs no `initialize`, and nothing is shared
  between requests, which is what makes several worker processes valid).
- The driver sends MCP 2026-07-28 single-exchange requests (no session, the
  `_meta` envelope, `MCP-Protocol-Version: 2026-07-28`, `Mcp-Method`,
  `Mcp-Name`), the same request as its `stateless` case; the SDK serves those
  through its modern entry, which in JSON mode answers in the ASGI task itself.
- The tool is `async def` (the SDK runs a plain `def` tool in a worker thread
  per call, which costs a thread hand-off; a primary-key read from SQLite
  takes microseconds, so blocking the loop for it is cheaper).
- uvicorn with `access_log=False` and log level `warning`; its default
  `loop="auto"` / `http="auto"` pick uvloop and httptools when installed
  (`uvicorn[standard]`), asyncio and h11 otherwise; the line printed at
  start-up says which.
- `--workers N` (default 1 here; the driver passes one per CPU, its
  `--peer-workers`): N uvicorn processes accepting on one socket that
  the parent bound (fork; each child opens its own SQLite connection). The
  parent prints `PEER_URL http://127.0.0.1:<port>/mcp` once the socket is
  listening, and ends its children when it gets SIGTERM/SIGINT.
- DNS-rebinding protection stays on, as the SDK enables it by default for
  127.0.0.1. No authentication (mcp-factory checks a bearer token on every
  call; the peer does not).

Run by hand:
  python3 host/benches/fastmcp_peer.py --records recs.json --db /tmp/peer.sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def fill_db(db_path: str, records_path: str) -> int:
    """(Re)create the `invoices` table from the driver's JSON file; returns the row count."""
    with open(records_path, encoding="utf-8") as f:
        records = json.load(f)
    for ext in ("", "-wal", "-shm"):
        try:
            os.remove(db_path + ext)
        except FileNotFoundError:
            pass
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE invoices (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID")
    conn.executemany(
        "INSERT INTO invoices (id, body) VALUES (?, ?)",
        ((r["id"], json.dumps(r, separators=(",", ":"))) for r in records),
    )
    conn.commit()
    conn.close()
    return len(records)


def build_app(db_path: str):
    """The Starlette app: one MCPServer with the one tool, on its own SQLite connection."""
    conn = sqlite3.connect(db_path, check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    select = "SELECT body FROM invoices WHERE id = ?"

    server = MCPServer("fastmcp-peer", version="1", log_level="WARNING")

    @server.tool()
    async def get_invoices(id: str) -> dict[str, Any]:
        """Get one invoice by its id."""
        row = conn.execute(select, (id,)).fetchone()
        if row is None:
            raise ToolError(f"no invoice with id '{id}'")
        return json.loads(row[0])

    return server.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=True,
        stateless_http=True,
        host="127.0.0.1",
    )


def serve(sock: socket.socket, db_path: str) -> None:
    config = uvicorn.Config(
        build_app(db_path),
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run(sockets=[sock])


def impls() -> str:
    def have(mod: str) -> bool:
        try:
            __import__(mod)
            return True
        except ImportError:
            return False

    loop = "uvloop" if have("uvloop") else "asyncio"
    http = "httptools" if have("httptools") else "h11"
    return f"loop={loop} http={http}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", required=True, help="JSON file: list of records (each with 'id')")
    ap.add_argument("--db", required=True, help="SQLite file to (re)create")
    ap.add_argument("--port", type=int, default=0, help="0 = a free port")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    n = fill_db(args.db, args.records)

    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets
    # only when their proto says TCP (accept() copies the listener's), and
    # without it every answer waits ~40 ms for the client's delayed ACK
    # (uvicorn writes headers and body separately).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]

    if args.workers <= 1:
        print(f"fastmcp-peer: {n} invoices, 1 process, {impls()}", flush=True)
        print(f"PEER_URL http://127.0.0.1:{port}/mcp", flush=True)
        serve(sock, args.db)
        return

    children: list[int] = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            try:
                serve(sock, args.db)
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum, _frame):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"fastmcp-peer: {n} invoices, {args.workers} processes, {impls()}", flush=True)
    print(f"PEER_URL http://127.0.0.1:{port}/mcp", flush=True)
    for pid in children:
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue
    sys.exit(0)


if __name__ == "__main__":
    main()
