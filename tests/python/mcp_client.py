"""An MCP client for Agentry's tests, written on the official `mcp` Python SDK (2.x).

Takes one JSON spec as its argument and prints one JSON line with what the SDK handed back:

    python mcp_client.py '{"url": "http://127.0.0.1:8080/mcp", "mode": "session",
                           "calls": [{"name": "radio", "arguments": {"input": "hi"}}]}'

`mode` is `session` (ClientSession: the initialize handshake, protocol <= 2025-11-25) or
`client` (the high-level Client, which tries server/discover of 2026-07-28 first). It lists
the tools and makes each call in turn. A failure is printed as {"exception": ..., "message"}.
Every request has a 30 s timeout, so a run ends on its own.
"""

import asyncio
import json
import sys

from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client


def tools_of(listed):
    return [{"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in listed.tools]


def result_of(r):
    return {"is_error": bool(r.is_error),
            "texts": [c.text for c in r.content if getattr(c, "type", None) == "text"]}


async def with_session(spec):
    async with streamable_http_client(spec["url"]) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=30) as s:
            init = await s.initialize()
            out = {"server_name": init.server_info.name,
                   "protocol_version": init.protocol_version,
                   "tools": tools_of(await s.list_tools()), "results": []}
            for c in spec.get("calls", []):
                out["results"].append(result_of(await s.call_tool(c["name"], c["arguments"])))
            return out


async def with_client(spec):
    async with Client(spec["url"], read_timeout_seconds=30) as c:
        info = c.server_info
        out = {"server_name": info.name if info else None,
               "protocol_version": c.protocol_version,
               "tools": tools_of(await c.list_tools()), "results": []}
        for call in spec.get("calls", []):
            out["results"].append(result_of(await c.call_tool(call["name"], call["arguments"])))
        return out


def main():
    spec = json.loads(sys.argv[1])
    run = with_session if spec.get("mode", "session") == "session" else with_client
    try:
        out = asyncio.run(asyncio.wait_for(run(spec), timeout=60))
    except BaseException as e:  # ExceptionGroup from anyio task groups included
        out = {"exception": type(e).__name__, "message": repr(e)}
    print(json.dumps(out), flush=True)


main()
