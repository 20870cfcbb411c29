"""An MCP server for Agentry's tests, written on the official Python SDK (`mcp`: MCPServer,
the SDK's high-level server, called FastMCP before mcp 2). Runs on mcp 2 (protocol 2026-07-28
and the handshake versions) and on mcp 1 (handshake versions only, sessions), so the suite
sees both kinds of server. Listens on 127.0.0.1 only.

Tools of several shapes: string, number, object and array inputs; text and structured
results; one that raises; one that sleeps (to pass a timeout); one that reports the request
headers it received; one whose name holds a dot; and `add_tool`, which registers a new tool
and tells clients that the list changed.

    python mcp_server.py --port 8123 [--transport streamable-http|sse] [--extra-tools 50]
"""

import argparse
import asyncio
from typing import Any

from pydantic import BaseModel

try:  # mcp 2
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    LEGACY_SDK = False
except ImportError:  # mcp 1
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as MCPServer
    from mcp.server.fastmcp.exceptions import ToolError

    LEGACY_SDK = True

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--transport", default="streamable-http", choices=["streamable-http", "sse"])
parser.add_argument("--name", default="agentry-test")
parser.add_argument("--extra-tools", type=int, default=0, help="add tool_000 ... tool_<n-1>")
args = parser.parse_args()

# mcp 1 takes the address when the server is made, mcp 2 when it runs.
server = MCPServer(args.name, host="127.0.0.1", port=args.port) if LEGACY_SDK else MCPServer(args.name)


@server.tool(description="Echoes the text back, prefixed with 'echo: '.")
def echo(text: str) -> str:
    return f"echo: {text}"


@server.tool(description="Adds two numbers.")
def add(a: float, b: float) -> float:
    return a + b


class Place(BaseModel):
    city: str
    country: str


@server.tool(description="Describes a place given as an object.")
def describe(place: Place, days: int = 1) -> dict[str, Any]:
    return {"summary": f"{place.city} ({place.country}) for {days} days", "days": days}


@server.tool(description="Sums a list of integers.")
def total(values: list[int]) -> str:
    return f"the total is {sum(values)}"


@server.tool(description="Always fails with the given reason.")
def fail(reason: str) -> str:
    # A ToolError's message reaches the client; other exceptions are reported without it.
    raise ToolError(f"failed on purpose: {reason}")


@server.tool(description="Sleeps for the given seconds, then answers.")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool(description="Reports the request headers the server received.")
def headers(ctx: Context) -> dict[str, str]:
    seen = getattr(ctx, "headers", None) or getattr(ctx.request_context.request, "headers", None) or {}
    return {k.lower(): v for k, v in seen.items() if k.lower().startswith(("x-", "authorization", "traceparent", "tracestate"))}


@server.tool(name="search.issues", description="A tool whose name holds a dot.")
def search_issues(query: str) -> str:
    return f"no issues match {query}"


@server.tool(description="Registers a new tool called `name` and announces the list change.")
async def add_tool(name: str, ctx: Context) -> str:
    def added() -> str:
        return f"I am {name}"

    server.add_tool(added, name=name, description=f"A tool added at run time: {name}.")
    # 2026-07-28 clients listen on subscriptions/listen; older sessions get a notification.
    if hasattr(ctx, "notify_tools_changed"):
        await ctx.notify_tools_changed()
    try:
        await ctx.request_context.session.send_tool_list_changed()
    except Exception:  # noqa: BLE001 - a stateless request has no session to notify
        pass
    return f"added {name}"


for i in range(args.extra_tools):

    def make(i: int):
        def tool(n: int = 0) -> str:
            return f"tool {i} got {n}"

        return tool

    server.add_tool(make(i), name=f"tool_{i:03}", description=f"Generated tool number {i}.")

if LEGACY_SDK:
    server.run(args.transport)
else:
    server.run(args.transport, host="127.0.0.1", port=args.port)
