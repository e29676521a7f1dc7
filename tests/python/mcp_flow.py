"""Drives a running mcp-factory with the official MCP Python SDK (`mcp`).

Run by the Rust integration tests (tests/all/mcp_clients.rs), which start
the server and create the data; this script is the client an agent would
be. It exits non-zero on the first failed check and prints one JSON line of
what it saw on success.

    python3 tests/python/mcp_flow.py endpoint|admin --url URL --token T \
        --transport http|sse [--admin-token A]
"""

import argparse
import asyncio
import json
import sys
from contextlib import asynccontextmanager

import httpx2
import mcp_types as types
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError as McpError

SEED_TOOLS = [
    "search_invoices",
    "create_payments",
    "get_payments",
    "list_payments",
    "assign_payment",
    "batch",
    "sql_query",
]
ADMIN_TOOLS = [
    "manage_workspace",
    "manage_collection",
    "manage_record",
    "manage_relationship",
    "query_relationships",
    "manage_hook",
    "manage_trigger",
    "batch_operations",
    "sql_query",
]


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


@asynccontextmanager
async def connect(base, path, token, transport, on_message=None):
    """An initialized ClientSession on `base + path` (`.../mcp` or `.../sse`)."""
    headers = {"Authorization": f"Bearer {token}"}
    if transport == "http":
        client = httpx2.AsyncClient(headers=headers, timeout=30)
        cm = streamable_http_client(f"{base}{path}/mcp", http_client=client)
    else:
        cm = sse_client(f"{base}{path}/sse", headers=headers, timeout=30)
    async with cm as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write, message_handler=on_message) as session:
            init = await session.initialize()
            yield session, init


def structured(result, what):
    """The structuredContent of a successful call; the text block must be the same JSON."""
    check(not result.is_error, f"{what} failed: {result.content}")
    data = result.structured_content
    check(isinstance(data, dict), f"{what}: structuredContent is an object ({data!r})")
    text = result.content[0].text
    check(json.loads(text) == data, f"{what}: the text content is the structured JSON")
    return data


async def endpoint_flow(args):
    seen = {}
    notes = asyncio.Queue()

    async def on_message(message):
        if isinstance(message, types.ServerNotification) or hasattr(message, "method"):
            method = getattr(message, "method", None) or getattr(getattr(message, "root", None), "method", None)
            if method:
                await notes.put(method)

    async with connect(args.url, "/e/invoicing-agent", args.token, args.transport, on_message) as (s, init):
        check(init.capabilities.tools is not None, "the server offers tools")
        check(init.capabilities.tools.list_changed is True, "tools.listChanged is offered")
        seen["protocol_version"] = init.protocol_version
        await s.send_ping()

        tools = (await s.list_tools()).tools
        names = [t.name for t in tools]
        check(names == SEED_TOOLS, f"the seed endpoint's tools in order: {names}")
        again = [t.name for t in (await s.list_tools()).tools]
        check(again == names, "tools/list is stable")
        by_name = {t.name: t for t in tools}
        for t in tools:
            check(t.output_schema == {"type": "object"}, f"{t.name} has an object outputSchema")
        check(by_name["search_invoices"].annotations.read_only_hint is True, "search_invoices is read-only")
        check(
            by_name["create_payments"].input_schema["properties"]["data"]["required"] == ["amount"],
            "create_payments takes the collection's schema",
        )

        # The seed's invoicing flow. Invoices are batch-only in the seed config.
        b = structured(
            await s.call_tool(
                "batch",
                {
                    "operations": [
                        {"type": "upsert_record", "collection": "invoices", "external_id": "inv-1",
                         "data": {"customer": "globex", "total": 120.0, "status": "open"}},
                        {"type": "upsert_record", "collection": "invoices", "external_id": "inv-2",
                         "data": {"customer": "acme", "total": 80.0, "status": "open"}},
                    ]
                },
            ),
            "batch",
        )
        check(b["meta"]["operations"] == 2, f"batch ran 2 operations: {b}")
        pay = structured(
            await s.call_tool("create_payments", {"data": {"amount": 120.0}, "external_id": "pay-1"}),
            "create_payments",
        )
        check(pay["data"]["amount"] == 120.0, "payment created")
        link = structured(
            await s.call_tool(
                "assign_payment",
                {"action": "create", "source_collection": "invoices", "source_id": "inv-1",
                 "target_collection": "payments", "target_id": "pay-1"},
            ),
            "assign_payment create",
        )
        check(link["rel_type"] == "invoice_payment", "linked")
        payments = structured(
            await s.call_tool("list_payments", {"filter": {"field": "data.amount", "op": "gte", "value": 100}}),
            "list_payments",
        )
        check(payments["meta"]["total"] == 1, f"one payment listed: {payments}")
        links = structured(
            await s.call_tool(
                "assign_payment", {"action": "list", "collection": "invoices", "id": "inv-1", "direction": "outgoing"}
            ),
            "assign_payment list",
        )
        check(links["data"][0]["target_id"] == pay["id"], "the link points at the payment")
        q = structured(
            await s.call_tool(
                "sql_query",
                {"query": "SELECT customer, sum(total) FROM invoices WHERE status = 'open' GROUP BY 1 ORDER BY 1"},
            ),
            "sql_query",
        )
        check(q["rows"] == [["acme", 80.0], ["globex", 120.0]], f"sql rows: {q}")

        # A schema violation is a tool error the agent can act on; nothing is written.
        bad = await s.call_tool("create_payments", {"data": {"amount": "lots"}})
        check(bad.is_error is True, "a schema violation is isError")
        check("amount" in bad.content[0].text, f"the error names the field: {bad.content[0].text}")
        after = structured(await s.call_tool("list_payments", {}), "list_payments")
        check(after["meta"]["total"] == 1, "the bad call wrote nothing")
        # An unknown tool is a JSON-RPC error.
        try:
            await s.call_tool("drop_everything", {})
            check(False, "an unknown tool raises")
        except McpError as e:
            check(e.error.code == -32602, f"unknown tool error code: {e.error.code}")
            seen["unknown_tool"] = e.error.message

        if args.admin_token and args.transport == "http":
            # Hot swap: a new revision without sql_query, promoted; the session is told.
            h = {"Authorization": f"Bearer {args.admin_token}"}
            async with httpx2.AsyncClient(base_url=args.url, headers=h, timeout=30) as rest:
                r = await rest.get("/v1/acme/endpoints/invoicing-agent")
                check(r.status_code == 200, f"get endpoint: {r.text}")
                config = r.json()["config"]
                config["sql_query"] = False
                r = await rest.put("/v1/acme--dev/endpoints/invoicing-agent", json=config)
                check(r.status_code == 200, f"upsert: {r.text}")
                r = await rest.post("/v1/workspaces/acme/promote", json={"from": "acme--dev"})
                check(r.status_code == 200, f"promote: {r.text}")
            method = await asyncio.wait_for(notes.get(), timeout=5)
            check(method == "notifications/tools/list_changed", f"notified: {method}")
            names = [t.name for t in (await s.list_tools()).tools]
            check(names == SEED_TOOLS[:-1], f"the new revision's tools: {names}")
            seen["list_changed"] = True
    print(json.dumps(seen))


async def admin_flow(args):
    seen = {}
    async with connect(args.url, "", args.token, args.transport) as (s, init):
        check(init.capabilities.tools is not None, "the server offers tools")
        seen["protocol_version"] = init.protocol_version
        tools = (await s.list_tools()).tools
        names = [t.name for t in tools]
        check(names == ADMIN_TOOLS, f"the Admin MCP tools: {names}")
        check("manage_workspace" in tools[0].description and "list" in tools[0].description, "discovery hint")

        async def call(name, arguments):
            return structured(await s.call_tool(name, arguments), f"{name} {arguments.get('action', '')}")

        # The discovery pattern: workspaces, then collections, then SQL.
        wss = call_ids = await call("manage_workspace", {"action": "list"})
        call_ids = [w["id"] for w in wss["data"]]
        check("crm" in call_ids, f"crm is listed: {call_ids}")
        colls = await call("manage_collection", {"action": "list", "workspace_id": "crm"})
        check(sorted(c["id"] for c in colls["data"]) == ["contacts", "deals"], f"collections: {colls}")

        # The seed's calls, verbatim.
        up = await call("manage_record", {"action": "upsert", "workspace_id": "crm", "collection": "contacts",
                                          "external_id": "c_001", "external_source": "crm",
                                          "data": {"name": "Jane Doe", "email": "jane@acme.com"}})
        rid = up["id"]
        got = await call("manage_record", {"action": "get", "workspace_id": "crm", "collection": "contacts", "id": rid})
        check(got["data"]["email"] == "jane@acme.com", "get returns the record")
        rows = await call("sql_query", {"workspace_id": "crm", "query": "SELECT * FROM records FINAL WHERE workspace_id = {workspace_id:String} AND collection = 'contacts' AND deleted = false LIMIT 10"})
        check(len(rows["rows"]) == 1, f"one contact: {rows}")
        deals = await call("sql_query", {"workspace_id": "crm",
                                         "query": "SELECT data.title.:String as deal, CAST(data.value, 'Float64') as value FROM records FINAL WHERE workspace_id = {workspace_id:String} AND collection = 'deals' AND data.stage.:String = 'negotiation' AND deleted = false ORDER BY value DESC LIMIT 20"})
        check(deals["rows"] == [["Big", 5000.0], ["Small", 1000.0]], f"deals in negotiation: {deals}")
        pipeline = await call("sql_query", {"workspace_id": "crm",
                                            "query": "SELECT data.stage.:String as stage, sum(CAST(data.value, 'Float64')) as pipeline FROM records FINAL WHERE workspace_id = {workspace_id:String} AND collection = 'deals' AND deleted = false GROUP BY stage"})
        check(sorted(map(tuple, pipeline["rows"])) == [("negotiation", 6000.0), ("won", 700.0)], f"pipeline: {pipeline}")
        rel = await call("manage_relationship", {"action": "upsert", "workspace_id": "crm",
                                                 "rel_type": "owns", "source_collection": "contacts", "source_id": "c_001",
                                                 "target_collection": "deals", "target_id": "d_001"})
        check(rel["rel_type"] == "owns", "relationship created")
        trav = await call("query_relationships", {"workspace_id": "crm", "collection": "contacts",
                                                  "record_id": "c_001", "rel_type": "owns", "direction": "outgoing"})
        check(len(trav["data"]) == 1, f"one outgoing 'owns': {trav}")
        gone = await call("manage_record", {"action": "delete", "workspace_id": "crm", "collection": "contacts", "id": rid})
        check(gone["id"] == rid, "deleted")

        # Setting up a new workspace, as an agent builder would.
        ws = await call("manage_workspace", {"action": "create", "workspace_id": "scratch", "name": "Scratch"})
        check(ws["id"] == "scratch", f"created: {ws}")
        dev = await call("manage_workspace", {"action": "create_preview", "workspace_id": "scratch", "name": "dev"})
        check(dev["id"] == "scratch--dev", f"preview: {dev}")
        previews = await call("manage_workspace", {"action": "list_previews", "workspace_id": "scratch"})
        check([p["id"] for p in previews["data"]] == ["scratch--dev"], f"previews: {previews}")
        got = await call("manage_workspace", {"action": "get", "workspace_id": "scratch--dev"})
        check(got["parent"] == "scratch", f"get preview: {got}")
        r = await s.call_tool("manage_collection", {"action": "upsert", "workspace_id": "scratch", "collection": "notes",
                                                     "schema": {"type": "object"}})
        check(r.is_error and "preview" in r.content[0].text, f"schema changes only in previews: {r.content[0].text}")
        await call("manage_collection", {"action": "upsert", "workspace_id": "scratch--dev", "collection": "notes",
                                         "schema": {"type": "object", "properties": {"text": {"type": "string"}},
                                                    "required": ["text"]}})
        coll = await call("manage_collection", {"action": "get", "workspace_id": "scratch--dev", "collection": "notes"})
        check(coll["schema"]["required"] == ["text"], f"collection: {coll}")
        b = await call("batch_operations", {"workspace_id": "scratch--dev", "operations": [
            {"type": "upsert_record", "collection": "notes", "external_id": "n1", "data": {"text": "one"}},
            {"type": "upsert_record", "collection": "notes", "external_id": "n2", "data": {"text": "two"}}]})
        check(b["meta"]["operations"] == 2, f"batch: {b}")
        r = await s.call_tool("batch_operations", {"workspace_id": "scratch--dev", "operations": [
            {"type": "upsert_record", "collection": "notes", "external_id": "n3", "data": {"text": "three"}},
            {"type": "upsert_record", "collection": "notes", "external_id": "n4", "data": {"text": 4}}]})
        check(r.is_error, "a batch with one bad operation fails")
        q = await call("manage_record", {"action": "query", "workspace_id": "scratch--dev", "collection": "notes",
                                         "sort": [{"field": "data.text", "order": "asc"}]})
        check([x["data"]["text"] for x in q["data"]] == ["one", "two"], f"atomic: nothing of the failed batch: {q}")
        up = await call("manage_record", {"action": "update", "workspace_id": "scratch--dev", "collection": "notes",
                                          "id": "n1", "data": {"text": "uno"}})
        check(up["data"]["text"] == "uno", f"merge patch: {up}")
        c = await call("manage_record", {"action": "cancel", "workspace_id": "scratch--dev", "collection": "notes", "id": "n2"})
        check(c["cancelled"] is True, f"cancelled: {c}")

        # Mistakes are tool errors that say what to fix.
        r = await s.call_tool("manage_record", {"action": "get", "workspace_id": "crm", "collection": "contacts"})
        check(r.is_error and "'id'" in r.content[0].text, f"missing id: {r.content[0].text}")
        r = await s.call_tool("manage_workspace", {"action": "explode"})
        check(r.is_error and "action" in r.content[0].text, f"bad action: {r.content[0].text}")
        r = await s.call_tool("sql_query", {"workspace_id": "crm", "query": "DELETE FROM records"})
        check(r.is_error, "a write through sql_query is refused")
        try:
            await s.call_tool("manage_endpoint", {"action": "list"})
            check(False, "there is no endpoint tool")
        except McpError as e:
            check(e.error.code == -32602, f"unknown tool code {e.error.code}")
    print(json.dumps(seen))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("flow", choices=["endpoint", "admin"])
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--transport", choices=["http", "sse"], default="http")
    p.add_argument("--admin-token")
    args = p.parse_args()
    asyncio.run(endpoint_flow(args) if args.flow == "endpoint" else admin_flow(args))


if __name__ == "__main__":
    main()
