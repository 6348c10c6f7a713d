"""Every use of the ``mcp`` SDK: open a session, list tools (all pages), call one.

Only ``dialogforge.mcp.connection`` imports this module, and only once a
server is actually contacted. Everything the SDK can raise is sorted here
into the two outcomes dialogforge knows: the server *answered* (a tool
result, or a JSON-RPC error for the call: a tool error the agent sees), or
talking to it *failed* (``McpTransportError``: closed, timed out, or a reply
outside the protocol), which the executor retries or records.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TextIO

import anyio
import mcp_types
import pydantic
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from dialogforge.mcp.servers import CallAnswer, McpServer, McpTransportError

# A server's start-up (an interpreter, an npx download) may take far longer than one request.
STARTUP_TIMEOUT_S = 60.0
MAX_PAGES = 1000  # a server whose cursors never end is refused, not followed forever
# Error codes that mean the conversation with the server broke, not that it answered.
_TRANSPORT_CODES = frozenset({mcp_types.CONNECTION_CLOSED, mcp_types.REQUEST_TIMEOUT})


def _quiet_sdk_logs() -> None:
    """The SDK logs what it tolerates (a line that is not JSON-RPC, a failed read) to stderr,
    where it would tear a progress panel; what matters reaches the trajectory's reason instead."""
    logger = logging.getLogger("mcp")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


@asynccontextmanager
async def open_session(server: McpServer, errlog: TextIO, timeout_s: float) -> AsyncIterator[ClientSession]:
    """An initialized session; a stdio server's stderr goes to ``errlog``. Start-up may take
    ``STARTUP_TIMEOUT_S`` (or ``timeout_s`` if longer); each request after it ``timeout_s``."""
    if server.url:
        transport = streamable_http_client(server.url)
    else:
        transport = stdio_client(StdioServerParameters(command=server.command[0], args=list(server.command[1:]), cwd=server.cwd), errlog=errlog)
    async with transport as (read, write):
        async with ClientSession(read, write) as session:
            startup = max(timeout_s, STARTUP_TIMEOUT_S)
            try:
                with anyio.fail_after(startup):
                    await session.initialize()
            except TimeoutError as exc:
                raise McpTransportError(f"no answer to initialize within {startup:g} s") from exc
            except (MCPError, pydantic.ValidationError) as exc:
                raise McpTransportError(f"initialize failed: {_error_text(exc)}") from exc
            yield session


async def list_all_tools(session: ClientSession, timeout_s: float) -> list[dict[str, Any]]:
    """Every tool, following ``nextCursor`` to the last page, in MCP's wire shape (camelCase)."""
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
        try:
            with anyio.fail_after(timeout_s):
                page = await session.list_tools(params=params)
        except TimeoutError as exc:
            raise McpTransportError(f"tools/list timed out after {timeout_s:g} s") from exc
        except (MCPError, pydantic.ValidationError) as exc:
            raise McpTransportError(f"tools/list failed: {_error_text(exc)}") from exc
        tools.extend(tool.model_dump(by_alias=True, exclude_none=True, mode="json") for tool in page.tools)
        cursor = page.next_cursor
        if cursor is None:
            return tools
        if cursor in seen:
            raise McpTransportError(f"tools/list repeats the cursor {cursor!r}; its pages never end")
        seen.add(cursor)
    raise McpTransportError(f"tools/list has more than {MAX_PAGES} pages")


async def call_tool(session: ClientSession, name: str, arguments: dict[str, Any], timeout_s: float) -> CallAnswer:
    try:
        result = await session.call_tool(name, arguments, read_timeout_seconds=timeout_s)
    except MCPError as exc:
        if exc.error.code in _TRANSPORT_CODES:
            raise McpTransportError(f"tools/call {name}: {exc.error.message}") from exc
        # The server refused the call itself (unknown tool, arguments it rejects): its answer.
        return CallAnswer(json.dumps({"error": exc.error.message, "code": exc.error.code}, ensure_ascii=False), is_error=True)
    except (pydantic.ValidationError, RuntimeError) as exc:  # a reply outside the protocol, or a demand for user input
        raise McpTransportError(f"tools/call {name}: {_error_text(exc)}") from exc
    return answer_of(result)


def answer_of(result: mcp_types.CallToolResult) -> CallAnswer:
    """``structuredContent`` when the server gave it (verbatim JSON), else the content blocks:
    text as it is, every other block as a JSON descriptor, so nothing is dropped unseen."""
    if result.structured_content is not None:
        content = json.dumps(result.structured_content, ensure_ascii=False)
    else:
        content = "\n".join(_block_text(block) for block in result.content)
    return CallAnswer(content=content, is_error=bool(result.is_error))


def _block_text(block: Any) -> str:
    if getattr(block, "type", None) == "text":
        return block.text
    data = block.model_dump(by_alias=True, exclude_none=True, mode="json")
    for key in ("data", "blob"):  # base64 payloads: their size, not the bytes
        if isinstance(data.get(key), str):
            data[key] = f"<{len(data[key])} base64 characters>"
    resource = data.get("resource")
    if isinstance(resource, dict) and isinstance(resource.get("blob"), str):
        resource["blob"] = f"<{len(resource['blob'])} base64 characters>"
    return json.dumps(data, ensure_ascii=False)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, MCPError):
        return exc.error.message
    if isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        return f"malformed reply at {'.'.join(map(str, first['loc']))}: {first['msg']}"
    return f"{type(exc).__name__}: {exc}"
