"""A small stateful MCP server for the tests: read and write tools over in-memory records.

Written with the official SDK (``MCPServer``, the SDK 2.x name of FastMCP)
and run as its own process: over stdio (the default) or streamable HTTP
(``--http PORT``). Its answers are a pure function of the calls it has seen,
so a replay of a trajectory's writes rebuilds exactly the state it had;
flags turn on the failures the tests need:

- ``--page-size N``: ``tools/list`` is paged, N tools a page (pagination);
- ``--die-at N``: the process exits at its N-th counted call (a server dying mid-run);
  with ``--die-once FILE`` only the first process to get there dies (it leaves FILE);
- ``--slow S``: every counted call sleeps S seconds first (timeouts).
  Counted: every tool but ``list_records``, which planning samples from a server of its own;
- ``--nonce``: ``create_record`` answers with a random token (a server whose replay diverges);
- ``--bad-listing``: ``tools/list`` gives its second tool a schema requiring a parameter it never defines;
- ``--tag TAG``: ignored, so a test can find the server processes it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

# Ids the scripted agent can guess: it fills arguments from the schema, so a small range makes
# most reads and updates hit a record a trajectory created.
RecordId = Annotated[int, Field(ge=1, le=3)]

READ = ToolAnnotations(read_only_hint=True)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True)


def build_server(options: argparse.Namespace) -> MCPServer:
    records: dict[int, dict[str, Any]] = {}
    calls = {"n": 0, "next_id": 1}
    middleware = [_Pager(options.page_size)] if options.page_size else []
    if options.bad_listing:
        middleware.append(_spoil_listing)
    server = MCPServer("records", middleware=middleware, log_level="WARNING")

    async def counted() -> None:
        calls["n"] += 1
        if options.slow:
            await asyncio.sleep(options.slow)
        if options.die_at and calls["n"] >= options.die_at:
            marker = Path(options.die_once) if options.die_once else None
            if marker is None or not marker.exists():
                if marker is not None:
                    marker.write_text(str(os.getpid()))
                os._exit(3)  # no goodbye: the client sees its server vanish

    @server.tool(title="List records", annotations=READ)
    def list_records(status: Literal["open", "closed", "any"] = "any") -> dict[str, Any]:
        """Every record, optionally only those of one status."""
        chosen = [dict(r) for r in records.values() if status == "any" or r["status"] == status]
        return {"records": chosen, "total": len(chosen)}

    @server.tool(title="Get a record", annotations=READ)
    async def get_record(record_id: RecordId) -> dict[str, Any]:
        """One record by its id."""
        await counted()
        if record_id not in records:
            raise ToolError(f"no record {record_id}")
        return dict(records[record_id])

    @server.tool(title="Create a record", annotations=WRITE)
    async def create_record(title: str, body: str = "") -> dict[str, Any]:
        """Create a record; it starts open."""
        await counted()
        record_id = calls["next_id"]
        calls["next_id"] += 1
        records[record_id] = {"id": record_id, "title": title, "body": body, "status": "open"}
        answer = dict(records[record_id])
        if options.nonce:
            answer["token"] = uuid.uuid4().hex
        return answer

    @server.tool(title="Close a record", annotations=WRITE)
    async def close_record(record_id: RecordId) -> dict[str, Any]:
        """Mark a record closed."""
        await counted()
        if record_id not in records:
            raise ToolError(f"no record {record_id}")
        records[record_id]["status"] = "closed"
        return dict(records[record_id])

    @server.tool(title="Delete a record", annotations=DESTRUCTIVE)
    async def delete_record(record_id: RecordId) -> dict[str, Any]:
        """Delete a record for good."""
        await counted()
        if records.pop(record_id, None) is None:
            raise ToolError(f"no record {record_id}")
        return {"deleted": record_id, "remaining": len(records)}

    return server


class _Pager:
    """Middleware that pages ``tools/list`` (the SDK's server answers it in one page);
    it sees results in their wire form (a dict)."""

    def __init__(self, size: int):
        self.size = size

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        result = await call_next(ctx)
        if ctx.method != "tools/list" or not isinstance(result, dict):
            return result
        tools = result["tools"]
        start = int((ctx.params or {}).get("cursor") or "0")
        after = start + self.size
        paged = {**result, "tools": tools[start:after]}
        if after < len(tools):
            paged["nextCursor"] = str(after)
        return paged


async def _spoil_listing(ctx: Any, call_next: Any) -> Any:
    result = await call_next(ctx)
    if ctx.method == "tools/list" and isinstance(result, dict) and len(result["tools"]) > 1:
        result["tools"][1] = {**result["tools"][1], "inputSchema": {"type": "object", "required": ["record_id"]}}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on 127.0.0.1:PORT/mcp")
    parser.add_argument("--page-size", type=int, default=0)
    parser.add_argument("--die-at", type=int, default=0)
    parser.add_argument("--die-once", metavar="FILE")
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--nonce", action="store_true")
    parser.add_argument("--bad-listing", action="store_true")
    parser.add_argument("--tag", help="ignored: lets a test find its own server processes")
    options = parser.parse_args(argv)
    server = build_server(options)
    if options.http:
        server.run("streamable-http", host="127.0.0.1", port=options.http)
    else:
        server.run("stdio")


if __name__ == "__main__":
    sys.exit(main())
