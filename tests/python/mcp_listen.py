"""A stateless (MCP 2026-07-28) client hears endpoint changes on its listen
stream: the official MCP Python SDK (`mcp`) in its default mode against a
running mcp-factory.

Run by tests/all/mcp_clients.rs (`python_sdk_stateless_listen`), which starts
the server and sets up the seed's invoicing endpoint in `acme` (promoted from
`acme--dev`). This script makes the changes itself over REST with the admin
token, as another client would, and checks after each one that the
notification arrives within a second and that `list_tools` then shows the
change. It exits non-zero on the first failed check and prints one JSON line
of what it saw (the notification delays in ms).

    python3 tests/python/mcp_listen.py --url URL --admin-token A
"""

import argparse
import asyncio
import json
import sys
import time

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import SubscriptionLost, ToolsListChanged
from mcp.shared.exceptions import MCPError

ENDPOINT = "invoicing-agent"
# Well inside the acceptance's "within a second" (the change is committed
# and announced before its REST call returns), with room for a loaded CI.
WITHIN = 1.0


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


class Admin:
    """The other client: REST with the admin token."""

    def __init__(self, base, token):
        self.http = httpx2.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    async def call(self, method, path, body=None):
        r = await self.http.request(method, path, json=body)
        check(r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}")
        return r.json() if r.content else None


def client(base, token):
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(f"{base}/e/{ENDPOINT}/mcp", http_client=http))


async def tool_names(c):
    return sorted(t.name for t in (await c.list_tools()).tools)


async def heard(sub, what, seen):
    """Waits for the next event on `sub`; records its delay in ms."""
    t0 = time.monotonic()
    try:
        event = await asyncio.wait_for(sub.__anext__(), WITHIN)
    except asyncio.TimeoutError:
        check(False, f"{what}: no notifications/tools/list_changed within {WITHIN} s")
    check(isinstance(event, ToolsListChanged), f"{what}: a tools list change ({event!r})")
    seen[what] = round((time.monotonic() - t0) * 1000, 1)


async def quiet(sub, what, wait=0.5):
    """No event arrives on `sub` within `wait` seconds."""
    try:
        event = await asyncio.wait_for(sub.__anext__(), wait)
        check(False, f"{what}: unexpected event {event!r}")
    except asyncio.TimeoutError:
        pass


async def main(args):
    admin = Admin(args.url, args.admin_token)
    seen = {}
    perms = ["read:records", "write:records", "read:relationships", "write:relationships"]

    async def token(name, ws):
        t = await admin.call(
            "POST", "/v1/tokens", {"name": name, "grants": [{"scope": {"workspaces": [ws]}, "permissions": perms}]}
        )
        return t["token"], t["id"]

    prod_token, prod_id = await token("listen-prod", "acme")
    dev_token, _ = await token("listen-dev", "acme--dev")
    config = (await admin.call("GET", f"/v1/acme--dev/endpoints/{ENDPOINT}"))["config"]
    renamed = json.loads(json.dumps(config))
    renamed["tools"][0]["name_override"] = "find_invoices"

    # Production: promotion and its rollback.
    async with client(args.url, prod_token) as prod:
        check(prod.protocol_version == "2026-07-28", f"the default mode speaks 2026-07-28 ({prod.protocol_version})")
        seen["protocol_version"] = prod.protocol_version
        check(prod.server_capabilities.tools.list_changed is True, "discover declares tools.listChanged")
        before = await tool_names(prod)
        check("search_invoices" in before, f"the seed's tools are served ({before})")
        async with prod.listen(tools_list_changed=True) as sub:
            check(sub.honored.tools_list_changed is True, f"the filter is acknowledged ({sub.honored})")
            # A change in the preview does not reach production's stream.
            await admin.call("PUT", f"/v1/acme--dev/endpoints/{ENDPOINT}", renamed)
            await quiet(sub, "a preview upsert on the production stream")
            promotion = await admin.call("POST", "/v1/workspaces/acme/promote", {"from": "acme--dev"})
            await heard(sub, "promotion", seen)
            now = await tool_names(prod)
            check("find_invoices" in now and "search_invoices" not in now, f"promotion: new tools listed ({now})")
            await admin.call("POST", f"/v1/workspaces/acme/promotions/{promotion['id']}/rollback")
            await heard(sub, "promotion rollback", seen)
            now = await tool_names(prod)
            check(now == before, f"promotion rollback: the old tools are back ({now})")

        # Revoking the token ends its open listen stream within a second.
        async with prod.listen(tools_list_changed=True) as sub:
            await admin.call("DELETE", f"/v1/tokens/{prod_id}")
            t0 = time.monotonic()
            try:
                event = await asyncio.wait_for(sub.__anext__(), WITHIN)
                check(False, f"revocation: the stream went on ({event!r})")
            except (MCPError, SubscriptionLost, StopAsyncIteration) as e:
                seen["revocation"] = round((time.monotonic() - t0) * 1000, 1)
                seen["revocation_end"] = type(e).__name__
            except asyncio.TimeoutError:
                check(False, f"revocation: the listen stream was still open after {WITHIN} s")
        try:
            await prod.list_tools()
            check(False, "a revoked token still lists tools")
        except MCPError:
            pass

    # The preview: upsert, endpoint rollback, schema change, deletion.
    async with client(args.url, dev_token) as dev:
        async with dev.listen(tools_list_changed=True) as sub:
            revisions = await admin.call("GET", f"/v1/acme--dev/endpoints/{ENDPOINT}/revisions")
            first = min(r["revision"] for r in revisions["data"])
            await admin.call("PUT", f"/v1/acme--dev/endpoints/{ENDPOINT}", config)
            await heard(sub, "upsert", seen)
            now = await tool_names(dev)
            check("search_invoices" in now and "find_invoices" not in now, f"upsert: new tools listed ({now})")
            await admin.call("POST", f"/v1/acme--dev/endpoints/{ENDPOINT}/rollback", {"revision": first + 1})
            await heard(sub, "endpoint rollback", seen)
            now = await tool_names(dev)
            check("find_invoices" in now, f"endpoint rollback: that revision's tools listed ({now})")
            payment = {
                "type": "object",
                "properties": {"amount": {"type": "number"}, "currency": {"type": "string"}},
                "required": ["amount"],
            }
            await admin.call("PUT", "/v1/acme--dev/collections/payments", {"schema": payment})
            await heard(sub, "schema change", seen)
            tools = {t.name: t for t in (await dev.list_tools()).tools}
            create = tools.get("create_payments")
            check(create is not None, f"create_payments is listed ({sorted(tools)})")
            check(
                "currency" in json.dumps(create.input_schema),
                f"schema change: the new property is in the tool's input schema ({create.input_schema})",
            )
            await admin.call("DELETE", f"/v1/acme--dev/endpoints/{ENDPOINT}")
            await heard(sub, "deletion", seen)
            # Nothing is served any more: the server ends the stream gracefully.
            try:
                event = await asyncio.wait_for(sub.__anext__(), WITHIN)
                check(False, f"deletion: the stream went on ({event!r})")
            except StopAsyncIteration:
                seen["deletion_end"] = "graceful"
        try:
            await dev.list_tools()
            check(False, "a deleted endpoint still lists tools")
        except MCPError as e:
            seen["after_deletion"] = str(e)

    print(json.dumps(seen))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--admin-token", required=True)
    asyncio.run(main(p.parse_args()))
