#!/usr/bin/env python3
"""MCP load comparison: mcp-factory's generated `get_invoices` tool against
`/health` on the same server and against a hand-written Python MCP server
(`fastmcp_peer.py`, official SDK) doing the same read, all driven by `wrk`.

What it measures, per case, with `wrk -t<threads> -c<connections>
-d<duration>s --latency` (closed loop: each connection sends its next request
when the previous answer is in): calls/s, p50 and p99 latency.

- `health`: `GET /health` on mcp-factory: the HTTP stack alone, the ceiling.
- `session`: MCP 2025-11-25 `tools/call get_invoices` on `/e/billing/mcp`,
  all connections sharing one initialized session (`Mcp-Session-Id`).
- `stateless`: MCP 2026-07-28 single-exchange `tools/call` (no session; the
  `_meta` envelope; `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`).
- `peer`: the same 2026-07-28 request as `stateless` against
  `fastmcp_peer.py` (MCPServer, json_response, stateless, uvicorn; see its
  docstring), which reads the same records from SQLite. It runs as
  `--peer-workers` uvicorn processes (default: one per CPU, since
  mcp-factory's runtime uses every core; on 2 cores 2 processes gave ~1.3x
  the calls/s of 1), started for this case only; mcp-factory stays up, idle.

For mcp-factory's cases the table also shows its own CPU (user + system,
from /proc) per call over the run: steadier than calls/s when the machine is
noisy.

Each MCP case cycles through 64 different record ids (of `--records`, all in
production); every call authenticates with a bearer token (the peer ignores
it), resolves the endpoint and runs the generated tool. Before each run one
request is checked by hand (the answer must contain that record's customer);
during the run a Lua `response()` hook counts answers that are not 200 or do
not contain `"customer-`. A case fails on any such answer or socket error,
and the script then exits non-zero.

Run (release binary, built separately with
`cargo build --release -p mcp-factory -j2`):

    python3 host/benches/mcp_compare.py [--bin target/release/mcp-factory]
        [--duration 10] [--connections 32] [--threads 2] [--records 1000]
        [--cases health,session,stateless,peer] [--peer-workers N] [--keep]

Needs `wrk` on PATH (tries `apt-get install -y wrk` otherwise) and, for
`peer`, the Python `mcp` SDK and uvicorn.

Caveats. wrk runs on the same cores as the server (and so does the peer's
Python), so every number is capped by that sharing and by whatever else runs
on the machine; absolute calls/s move between runs and machines. The numbers
to quote are the ratios within one run (× peer, % of health), printed at the
end together with the exact commands and the machine.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PEER_SCRIPT = HERE / "fastmcp_peer.py"
ALL_CASES = ["health", "session", "stateless", "peer"]
N_BODIES = 64
ACCEPT = "application/json, text/event-stream"
V2025 = "2025-11-25"
V2026 = "2026-07-28"


def die(msg: str) -> None:
    print(f"mcp_compare: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(2)


# ---------------------------------------------------------------- processes

_children: list[subprocess.Popen] = []


def _stop(p: subprocess.Popen, group: bool = False) -> None:
    if p.poll() is not None:
        return
    try:
        if group:
            os.killpg(p.pid, signal.SIGTERM)
        else:
            p.terminate()
        p.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    if p.poll() is None:
        try:
            if group:
                os.killpg(p.pid, signal.SIGKILL)
            else:
                p.kill()
            p.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def stop_all() -> None:
    while _children:
        p = _children.pop()
        # Every child is started in its own session: its id is its group's id.
        _stop(p, group=True)


atexit.register(stop_all)


def _on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


class Proc:
    """A child process whose stdout lines are drained by a thread (kept, and
    handed to `wait_for`)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, name: str = ""):
        self.name = name or Path(argv[0]).name
        self.argv = argv
        self.p = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        _children.append(self.p)
        self.lines: list[str] = []
        self.cv = threading.Condition()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def wait_for(self, pred, timeout: float) -> Any:
        """First non-None `pred(line)` over all lines so far and to come."""
        deadline = time.monotonic() + timeout
        i = 0
        with self.cv:
            while True:
                while i < len(self.lines):
                    v = pred(self.lines[i])
                    i += 1
                    if v is not None:
                        return v
                if self.p.poll() is not None and i >= len(self.lines):
                    tail = "\n".join(self.lines[-30:])
                    die(f"{self.name} exited with {self.p.returncode} before it was ready:\n{tail}")
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "\n".join(self.lines[-30:])
                    die(f"{self.name} not ready after {timeout:.0f} s:\n{tail}")
                self.cv.wait(min(left, 0.5))

    def stop(self) -> None:
        _stop(self.p, group=True)
        if self.p in _children:
            _children.remove(self.p)


# ---------------------------------------------------------------- HTTP


class Http:
    """One keep-alive http.client connection to one origin."""

    def __init__(self, base_url: str):
        u = urllib.parse.urlsplit(base_url)
        self.host, self.port = u.hostname, u.port or 80
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body, separators=(",", ":"))
            if isinstance(data, str):
                data = data.encode()
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, raw
            except (http.client.HTTPException, ConnectionError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def rest(h: Http, token: str, method: str, path: str, body: Any = None) -> Any:
    status, _, raw = h.request(method, path, body, {"Authorization": f"Bearer {token}"})
    if not 200 <= status < 300:
        die(f"{method} {path}: HTTP {status}: {raw[:2000].decode(errors='replace')}")
    return json.loads(raw) if raw.strip() else None


def jsonrpc_messages(headers: dict[str, str], raw: bytes) -> list[dict]:
    """The JSON-RPC messages of an answer: an `application/json` body or an
    SSE stream of `data:` events (both are accepted)."""
    ctype = headers.get("content-type", "")
    text = raw.decode(errors="replace")
    if "text/event-stream" in ctype:
        out, data = [], []
        for line in text.splitlines() + [""]:
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                chunk = "\n".join(data)
                data = []
                try:
                    out.append(json.loads(chunk))
                except json.JSONDecodeError:
                    pass
        return out
    try:
        v = json.loads(text)
    except json.JSONDecodeError:
        return []
    return v if isinstance(v, list) else [v]


def reply(headers: dict[str, str], raw: bytes) -> dict:
    """The one JSON-RPC response (result or error) in an answer."""
    for m in jsonrpc_messages(headers, raw):
        if isinstance(m, dict) and ("result" in m or "error" in m):
            return m
    die(f"no JSON-RPC response in the answer ({headers.get('content-type')}): {raw[:2000]!r}")
    return {}


# ---------------------------------------------------------------- mcp-factory


@dataclass
class Factory:
    url: str
    admin: str
    proc: Proc
    argv: list[str]
    env_note: str


def start_factory(bin_path: str, tmp: Path) -> Factory:
    argv = [bin_path, "serve", "--data", str(tmp / "data"), "--listen", "127.0.0.1:0"]
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"), RUST_LOG="warn")
    proc = Proc(argv, env=env, name="mcp-factory")
    prefix = "mcp-factory listening on "

    def listening(line: str) -> str | None:
        if not line.startswith(prefix):
            return None
        words = line[len(prefix) :].split()
        return words[0] if words else None

    url = proc.wait_for(listening, 120)
    admin = proc.wait_for(lambda l: l.strip() if l.strip().startswith("mcpf_") else None, 10)
    return Factory(url.rstrip("/"), admin, proc, argv, f"XDG_CONFIG_HOME={tmp / 'config'} RUST_LOG=warn")


def mcp_headers_2025(token: str, session: str | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {token}", "Accept": ACCEPT, "Content-Type": "application/json"}
    if session is not None:
        h["Mcp-Session-Id"] = session
        h["MCP-Protocol-Version"] = V2025
    return h


def mcp_headers_2026(token: str | None, method: str, name: str | None) -> dict[str, str]:
    h = {"Accept": ACCEPT, "Content-Type": "application/json", "MCP-Protocol-Version": V2026, "Mcp-Method": method}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if name is not None:
        h["Mcp-Name"] = name
    return h


META_2026 = {
    "io.modelcontextprotocol/protocolVersion": V2026,
    "io.modelcontextprotocol/clientInfo": {"name": "wrk", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def open_session(h: Http, path: str, token: str) -> str:
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": V2025, "capabilities": {}, "clientInfo": {"name": "wrk", "version": "1"}},
    }
    status, hdrs, raw = h.request("POST", path, init, mcp_headers_2025(token))
    if status != 200 or "mcp-session-id" not in hdrs:
        die(f"initialize: HTTP {status}, headers {hdrs}: {raw[:2000]!r}")
    sid = hdrs["mcp-session-id"]
    r = reply(hdrs, raw)
    if "error" in r:
        die(f"initialize: {r}")
    status, _, raw = h.request(
        "POST", path, {"jsonrpc": "2.0", "method": "notifications/initialized"}, mcp_headers_2025(token, sid)
    )
    if status != 202:
        die(f"notifications/initialized: expected 202, got {status}: {raw[:2000]!r}")
    return sid


def tools_call(name: str, args: dict, rpc_id: int, v2026: bool) -> dict:
    params: dict[str, Any] = {"name": name, "arguments": args}
    if v2026:
        params["_meta"] = META_2026
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call", "params": params}


# ---------------------------------------------------------------- wrk


def ensure_wrk() -> str:
    w = shutil.which("wrk")
    if w:
        return w
    print("wrk not on PATH; trying `apt-get install -y wrk` ...", flush=True)
    try:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"apt-get failed: {e}", flush=True)
    w = shutil.which("wrk")
    if not w:
        die("wrk is not installed and `apt-get install -y wrk` did not install it; install wrk and rerun")
    return w


def lua_str(s: str) -> str:
    """`s` as a Lua long-bracket literal (no escaping needed)."""
    level = 0
    while f"]{'=' * level}]" in s:
        level += 1
    eq = "=" * level
    return f"[{eq}[{s}]{eq}]"


LUA_COMMON = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("bad") or 0)
  end
  io.write(string.format("BAD_RESPONSES %d\n", bad))
end
"""

LUA_POST = r"""
wrk.method = "POST"
local reqs = {}
function init(args)
  bad = 0
  n = 0
  for i, b in ipairs(bodies) do
    reqs[i] = wrk.format(nil, nil, nil, b)
  end
end
function request()
  n = n + 1
  return reqs[(n % #reqs) + 1]
end
function response(status, headers, body)
  if status ~= 200 or body == nil or not string.find(body, '"customer-', 1, true) then
    bad = bad + 1
  end
end
"""

LUA_GET = r"""
function init(args)
  bad = 0
end
function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  end
end
"""


def write_lua(path: Path, case: str, headers: dict[str, str] | None, bodies: list[str] | None) -> None:
    out = [f"-- generated by mcp_compare.py for case '{case}'"]
    if bodies is None:
        out.append(LUA_GET)
    else:
        for k, v in (headers or {}).items():
            out.append(f"wrk.headers[ {lua_str(k)} ] = {lua_str(v)}")
        out.append("bodies = {")
        out.extend(f"  {lua_str(b)}," for b in bodies)
        out.append("}")
        out.append(LUA_POST)
    out.append(LUA_COMMON)
    path.write_text("\n".join(out) + "\n")


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(v: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", v.strip())
    if not m:
        raise ValueError(f"latency {v!r}")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


@dataclass
class Result:
    case: str
    cmd: list[str]
    rps: float = 0.0
    p50: float = float("nan")
    p99: float = float("nan")
    requests: int = 0
    bad: int | None = None
    socket_errors: str = ""
    non2xx: int = 0
    failures: list[str] = field(default_factory=list)
    note: str = ""
    # mcp-factory's own CPU (user + system) per call during the run, µs.
    cpu_us: float = float("nan")


def parse_wrk(case: str, cmd: list[str], out: str, rc: int) -> Result:
    r = Result(case, cmd)
    if rc != 0:
        r.failures.append(f"wrk exited with {rc}")
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", out, re.M)
    if m:
        r.rps = float(m.group(1))
    else:
        r.failures.append("no Requests/sec line")
    for pct, attr in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+(\S+)", out, re.M)
        if m:
            setattr(r, attr, to_ms(m.group(1)))
        else:
            r.failures.append(f"no {pct}% latency line")
    m = re.search(r"^\s*(\d+) requests in", out, re.M)
    if m:
        r.requests = int(m.group(1))
    m = re.search(r"Socket errors:\s*(.*)$", out, re.M)
    if m:
        r.socket_errors = m.group(1).strip()
        r.failures.append(f"socket errors: {r.socket_errors}")
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if m:
        r.non2xx = int(m.group(1))
        r.failures.append(f"{r.non2xx} non-2xx/3xx responses")
    m = re.search(r"^BAD_RESPONSES (\d+)", out, re.M)
    if m:
        r.bad = int(m.group(1))
        if r.bad:
            r.failures.append(f"{r.bad} bad responses (status not 200 or no \"customer-)")
    else:
        r.failures.append("no BAD_RESPONSES line (Lua done() did not run?)")
    if r.requests == 0 and not r.failures:
        r.failures.append("no requests completed")
    return r


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` so far, in seconds (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(wrk: str, case: str, url: str, lua: Path, a, cpu_pid: int | None = None) -> Result:
    cmd = [wrk, f"-t{a.threads}", f"-c{a.connections}", f"-d{a.duration}s", "--latency", "-s", str(lua), url]
    print(f"\n=== {case}: {' '.join(cmd)}", flush=True)
    cpu0 = cpu_seconds(cpu_pid) if cpu_pid else None
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.duration + 120)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc = -1
    print("\n".join("  | " + l for l in out.rstrip().splitlines()), flush=True)
    res = parse_wrk(case, cmd, out, rc)
    if cpu0 is not None and res.requests > 0:
        res.cpu_us = (cpu_seconds(cpu_pid) - cpu0) / res.requests * 1e6
    return res


# ---------------------------------------------------------------- checks


def check_call(h: Http, path: str, headers: dict[str, str], body: str, customer: str, label: str) -> str:
    """One call by hand: must be 200 and contain `customer`; returns a note."""
    status, hdrs, raw = h.request("POST", path, body, headers)
    if status != 200:
        die(f"{label}: check call: HTTP {status}: {raw[:2000]!r}")
    r = reply(hdrs, raw)
    text = raw.decode(errors="replace")
    if "error" in r or (r.get("result") or {}).get("isError") or customer not in text:
        die(f"{label}: check call did not return the invoice of {customer}:\n{text[:3000]}")
    ctype = hdrs.get("content-type", "?").split(";")[0]
    note = f"{ctype}, {len(raw)} B"
    print(f"check {label}: OK ({note}) {text[:300]}{'...' if len(text) > 300 else ''}", flush=True)
    return note


# ---------------------------------------------------------------- machine


def machine() -> str:
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ""
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        pass
    return f"nproc {nproc}; CPU {model}; load average at start {load}"


# ---------------------------------------------------------------- main


def default_bin() -> str:
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO / "target"
    return str(base / "release" / "mcp-factory")


def main() -> int:
    ap = argparse.ArgumentParser(
        description="MCP load comparison (wrk): mcp-factory health / session / stateless vs a Python SDK peer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--bin", default=default_bin(), help="mcp-factory release binary")
    ap.add_argument("--duration", type=int, default=10, help="seconds per case")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--records", type=int, default=1000, help="invoices in production")
    ap.add_argument("--cases", default=",".join(ALL_CASES), help="comma list of " + ",".join(ALL_CASES))
    ap.add_argument(
        "--peer-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="uvicorn processes for the peer (default: the CPU count, as mcp-factory uses every core)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data, Lua scripts)")
    a = ap.parse_args()

    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown or not cases:
        die(f"unknown case(s) {unknown}; choose from {','.join(ALL_CASES)}")
    if a.records < 1:
        die("--records must be at least 1")
    if a.connections < a.threads:
        die("--connections must be at least --threads (wrk needs one connection per thread)")
    bin_path = os.path.abspath(a.bin)
    if not (os.path.isfile(bin_path) and os.access(bin_path, os.X_OK)):
        die(f"no mcp-factory binary at {bin_path}: build it with `cargo build --release -p mcp-factory -j2` (or pass --bin)")
    if "peer" in cases and not PEER_SCRIPT.is_file():
        die(f"peer script missing: {PEER_SCRIPT}")
    wrk = ensure_wrk()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="mcp-compare-"))
    mach = machine()
    try:
        return run(a, cases, bin_path, wrk, tmp, mach)
    finally:
        stop_all()
        if a.keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(a, cases: list[str], bin_path: str, wrk: str, tmp: Path, mach: str) -> int:
    print(f"machine: {mach}")
    print(f"binary: {bin_path}")
    t0 = time.monotonic()
    f = start_factory(bin_path, tmp)
    print(f"server: {f.env_note} {' '.join(f.argv)}\n  -> {f.url} (ready in {time.monotonic() - t0:.1f} s)", flush=True)
    h = Http(f.url)

    # -- setup over REST
    rest(h, f.admin, "POST", "/v1/workspaces", {"id": "bench"})
    rest(h, f.admin, "POST", "/v1/workspaces/bench/previews", {"name": "dev"})
    schema = {
        "type": "object",
        "properties": {"customer": {"type": "string"}, "total": {"type": "number"}, "status": {"type": "string"}},
        "required": ["customer", "total"],
    }
    rest(h, f.admin, "PUT", "/v1/bench--dev/collections/invoices", {"schema": schema})
    rest(
        h,
        f.admin,
        "PUT",
        "/v1/bench--dev/endpoints/billing",
        {"tools": [{"collection": "invoices", "operations": ["get", "list"]}]},
    )
    rest(h, f.admin, "POST", "/v1/workspaces/bench/promote", {"from": "bench--dev"})
    t1 = time.monotonic()
    records: list[dict] = []
    for i in range(a.records):
        rec = rest(
            h,
            f.admin,
            "PUT",
            "/v1/bench/records/invoices",
            {
                "external_id": f"inv-{i:05d}",
                "data": {"customer": f"customer-{i}", "total": i + 0.5, "status": "open"},
            },
        )
        if not isinstance(rec, dict) or "id" not in rec:
            die(f"record upsert answered without an id: {rec}")
        records.append(rec)
    print(f"setup: {a.records} invoices in production in {time.monotonic() - t1:.1f} s", flush=True)
    token = rest(
        h,
        f.admin,
        "POST",
        "/v1/tokens",
        {
            "name": "load",
            "grants": [{"scope": {"workspaces": ["bench"]}, "permissions": ["read:records", "write:records"]}],
        },
    )["token"]
    mcp_path = "/e/billing/mcp"

    # -- tools/list once (2025 session; answered by every build) for the argument name
    sid = open_session(h, mcp_path, token)
    status, hdrs, raw = h.request(
        "POST", mcp_path, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, mcp_headers_2025(token, sid)
    )
    if status != 200:
        die(f"tools/list: HTTP {status}: {raw[:2000]!r}")
    tools = {t["name"]: t for t in (reply(hdrs, raw).get("result") or {}).get("tools", [])}
    if "get_invoices" not in tools:
        die(f"tools/list has no get_invoices: {sorted(tools)}")
    in_schema = tools["get_invoices"].get("inputSchema", {})
    print(f"tools: {sorted(tools)}; get_invoices inputSchema: {json.dumps(in_schema)}")
    props = list((in_schema.get("properties") or {}).keys())
    required = in_schema.get("required") or []
    arg = "id" if "id" in props else (required[0] if required else (props[0] if props else "id"))
    print(f"get_invoices argument: {arg!r}", flush=True)

    # 64 records spread over the set, and the calls for them
    step = max(1, len(records) // N_BODIES)
    picked = [records[(k * step) % len(records)] for k in range(N_BODIES)]

    def bodies(v2026: bool) -> list[str]:
        return [
            json.dumps(tools_call("get_invoices", {arg: r["id"]}, k + 1, v2026), separators=(",", ":"))
            for k, r in enumerate(picked)
        ]

    def customer(r: dict) -> str:
        return (r.get("data") or {}).get("customer") or "customer-"

    results: list[Result] = []
    for case in cases:
        lua = tmp / f"{case}.lua"
        if case == "health":
            write_lua(lua, case, None, None)
            status, _, raw = h.request("GET", "/health")
            if status != 200:
                die(f"health: check: HTTP {status}: {raw[:500]!r}")
            print(f"check health: OK {raw[:200]!r}", flush=True)
            res = run_wrk(wrk, case, f.url + "/health", lua, a, f.proc.p.pid)
            res.note = f"GET /health, {len(raw)} B"
        elif case == "session":
            sid = open_session(h, mcp_path, token)
            hd = mcp_headers_2025(token, sid)
            bs = bodies(False)
            note = check_call(h, mcp_path, hd, bs[0], customer(picked[0]), case)
            write_lua(lua, case, hd, bs)
            res = run_wrk(wrk, case, f.url + mcp_path, lua, a, f.proc.p.pid)
            res.note = f"{V2025}, 1 session, {note}"
        elif case == "stateless":
            hd = mcp_headers_2026(token, "tools/call", "get_invoices")
            bs = bodies(True)
            note = check_call(h, mcp_path, hd, bs[0], customer(picked[0]), case)
            write_lua(lua, case, hd, bs)
            res = run_wrk(wrk, case, f.url + mcp_path, lua, a, f.proc.p.pid)
            res.note = f"{V2026}, {note}"
        else:  # peer
            res = run_peer(a, wrk, tmp, lua, records, picked, token, arg, bodies(True), customer)
        results.append(res)

    report(a, results, f, mach)
    return 1 if any(r.failures for r in results) else 0


def run_peer(a, wrk, tmp: Path, lua: Path, records, picked, token, arg, bs, customer) -> Result:
    rec_file = tmp / "peer-records.json"
    rec_file.write_text(json.dumps(records))
    argv = [
        sys.executable,
        str(PEER_SCRIPT),
        "--records",
        str(rec_file),
        "--db",
        str(tmp / "peer.sqlite"),
        "--workers",
        str(a.peer_workers),
    ]
    t0 = time.monotonic()
    peer = Proc(argv, name="fastmcp_peer")
    try:
        url = peer.wait_for(lambda l: l.split()[1] if l.startswith("PEER_URL ") else None, 120)
        info = next((l for l in peer.lines if l.startswith("fastmcp-peer:")), "")
        print(f"peer: {' '.join(argv)}\n  -> {url} (ready in {time.monotonic() - t0:.1f} s) {info}", flush=True)
        u = urllib.parse.urlsplit(url)
        ph = Http(f"{u.scheme}://{u.netloc}")
        # Same request as `stateless` (the token header is sent too; the peer ignores it).
        hd = mcp_headers_2026(token, "tools/call", "get_invoices")
        # The workers may still be starting: retry the first connection briefly.
        for attempt in range(50):
            try:
                note = check_call(ph, u.path, hd, bs[0], customer(picked[0]), "peer")
                break
            except (ConnectionError, OSError):
                if attempt == 49:
                    raise
                time.sleep(0.2)
        write_lua(lua, "peer", hd, bs)
        res = run_wrk(wrk, "peer", url, lua, a)
        res.note = f"{V2026}, Python SDK, {a.peer_workers} proc, {note}"
        if peer.p.poll() is not None:
            res.failures.append(f"peer exited with {peer.p.returncode} during the run")
        return res
    finally:
        peer.stop()


def fmt(v: float, nd: int = 2) -> str:
    return "-" if v != v else f"{v:,.{nd}f}"


def report(a, results: list[Result], f: Factory, mach: str) -> None:
    by = {r.case: r for r in results}
    peer = by.get("peer")
    health = by.get("health")
    print("\n" + "=" * 78)
    print(
        f"wrk -t{a.threads} -c{a.connections} -d{a.duration}s, {a.records} invoices, "
        f"{N_BODIES} record ids cycled per MCP case"
    )
    print(f"machine: {mach}")
    head = (
        f"{'case':<10} {'calls/s':>11} {'p50 ms':>9} {'p99 ms':>9} {'x peer':>8} {'% health':>9}"
        f" {'CPU µs/call':>12}  status"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        xp = "-"
        ph = "-"
        if r.case != "health":
            if peer and peer.rps > 0:
                xp = f"{r.rps / peer.rps:.2f}x"
            if health and health.rps > 0:
                ph = f"{100 * r.rps / health.rps:.1f}%"
        status = "ok" if not r.failures else "FAILED"
        cpu = "-" if r.cpu_us != r.cpu_us else f"{r.cpu_us:.0f}"
        print(
            f"{r.case:<10} {fmt(r.rps, 0):>11} {fmt(r.p50):>9} {fmt(r.p99):>9} {xp:>8} {ph:>9}"
            f" {cpu:>12}  {status}"
        )
    print()
    for r in results:
        print(f"{r.case:<10} {r.note}")
        for fl in r.failures:
            print(f"{'':<10} FAILED: {fl}")
    print("\ncommands:")
    print(f"  server: {f.env_note} {' '.join(f.argv)}")
    for r in results:
        print(f"  {r.case}: {' '.join(r.cmd)}")
    print(
        "\nwrk shares the cores with the server, so absolute numbers are capped by that;"
        " quote the ratios within one run. CPU µs/call: mcp-factory's own user+system CPU"
        " over the whole wrk run divided by its requests (steadier than calls/s)."
    )


if __name__ == "__main__":
    sys.exit(main())
