"""One live MCP session, owned by a task of its own.

The SDK is built on anyio: a session's task groups and cancel scopes must
be entered and left by the same task. LangGraph runs each node as a task of
its own, so a session opened in one ``execute_tools`` step could not be
closed in the next. A connection therefore starts an *owner* task that
opens the session, serves requests sent to it through a queue (each in a
task of the session's task group, so calls may overlap), and closes the
session itself when told to or when the server goes away. Callers in any
task just await the answer; nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dialogforge.mcp.servers import CallAnswer, McpServer, McpServerError, McpTransportError

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 30.0
_STDERR_TAIL = 300  # characters of a stdio server's stderr quoted in a failure


class McpConnection:
    """A session with one server: ``await start()``, then ``call`` / ``list_tools``, then ``aclose()``."""

    def __init__(self, server: McpServer, *, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.server = server
        self.timeout_s = timeout_s
        self._requests: asyncio.Queue[tuple[Callable[[Any], Awaitable[Any]], asyncio.Future[Any]] | None] = asyncio.Queue()
        self._owner: asyncio.Task[None] | None = None
        self._closed: BaseException | None = None  # why the session ended, once it has
        self._sdk: Any = None  # dialogforge.mcp.sdk, imported by the owner task
        # A stdio server's stderr: kept out of the terminal (and a progress panel), quoted when it fails.
        self._errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")

    async def start(self) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(self._own(ready), name=f"mcp:{self.server.describe()[:60]}")
        try:
            await ready
        except BaseException:
            await self.aclose()
            raise

    @property
    def alive(self) -> bool:
        return self._owner is not None and not self._owner.done() and self._closed is None

    async def call(self, name: str, arguments: dict[str, Any]) -> CallAnswer:
        return await self._request(lambda session: self._sdk.call_tool(session, name, arguments, self.timeout_s))

    async def list_tools(self) -> list[dict[str, Any]]:
        return await self._request(lambda session: self._sdk.list_all_tools(session, self.timeout_s))

    async def aclose(self) -> None:
        """Close the session (and stop a stdio server); safe to call twice, bounded in time."""
        owner, self._owner = self._owner, None
        if owner is not None and not owner.done():
            self._requests.put_nowait(None)
            try:
                await asyncio.wait_for(asyncio.shield(owner), timeout=10)
            except asyncio.TimeoutError:
                owner.cancel()  # the SDK's shutdown is bounded; this is the last resort
        self._fail_queued(McpTransportError("the connection is closed"))
        if not self._errlog.closed:
            self._errlog.close()

    async def _request(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        if not self.alive:
            raise McpTransportError(self._why_closed())
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._requests.put_nowait((work, answer))
        try:
            return await answer
        except McpTransportError as exc:
            tail = self._stderr_tail()
            if not tail or tail in str(exc):
                raise
            raise McpTransportError(f"{exc} (server stderr: {tail})") from exc

    async def _own(self, ready: asyncio.Future[None]) -> None:
        try:
            import anyio

            from dialogforge.mcp import sdk  # the SDK's imports: paid only by runs that contact a server

            self._sdk = sdk
            async with sdk.open_session(self.server, self._errlog, self.timeout_s) as session:
                ready.set_result(None)
                async with anyio.create_task_group() as group:
                    while (item := await self._requests.get()) is not None:
                        group.start_soon(_serve, session, *item)
                    group.cancel_scope.cancel()
            self._closed = McpTransportError("the connection is closed")
        except asyncio.CancelledError:
            self._closed = McpTransportError("the connection was cancelled")
            raise
        except Exception as exc:  # noqa: BLE001 -- any failure to talk becomes this connection's reason, never lost
            leaf = _leaf(exc)
            self._closed = leaf if isinstance(leaf, McpTransportError) else McpTransportError(_leaf_text(leaf))
        finally:
            if not ready.done():
                ready.set_exception(McpTransportError(self._why_closed()))
            self._fail_queued(McpTransportError(self._why_closed()))

    def _why_closed(self) -> str:
        reason = str(self._closed) if self._closed is not None else "the connection is not open"
        tail = self._stderr_tail()
        return reason + (f" (server stderr: {tail})" if tail else "")

    def _stderr_tail(self) -> str:
        if self._errlog.closed:
            return ""
        try:
            self._errlog.flush()
            self._errlog.seek(0)
            text = self._errlog.read()
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-3:])[-_STDERR_TAIL:]

    def _fail_queued(self, error: BaseException) -> None:
        while not self._requests.empty():
            item = self._requests.get_nowait()
            if item is not None and not item[1].done():
                item[1].set_exception(error)


async def _serve(session: Any, work: Callable[[Any], Awaitable[Any]], answer: asyncio.Future[Any]) -> None:
    """One request in the owner's task group; whatever happens lands on the caller's future."""
    try:
        result = await work(session)
    except McpTransportError as exc:
        outcome: tuple[Any, BaseException | None] = (None, exc)
    except Exception as exc:  # noqa: BLE001 -- the caller gets it as a transport failure with its text
        outcome = (None, McpTransportError(_leaf_text(exc)))
    else:
        outcome = (result, None)
    if not answer.done():
        if outcome[1] is not None:
            answer.set_exception(outcome[1])
        else:
            answer.set_result(outcome[0])


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _leaf_text(exc: BaseException) -> str:
    """An error as one line, its type named."""
    exc = _leaf(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def with_server_now(server: McpServer, work: Callable[[McpConnection], Awaitable[T]], *,
                    timeout_s: float = DEFAULT_TIMEOUT_S) -> T:
    """``work(connection)`` from synchronous code (planning, before a run's event loop):
    starts the server (stdio), runs it, stops it. A server that cannot be started, reached
    or listed is one ``McpServerError``."""

    async def run() -> T:
        connection = McpConnection(server, timeout_s=timeout_s)
        try:
            await connection.start()
            return await work(connection)
        finally:
            await connection.aclose()

    try:
        return asyncio.run(run())
    except McpTransportError as exc:
        raise McpServerError(f"MCP server {server.describe()}: {exc}") from exc


def list_tools_now(server: McpServer, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[dict[str, Any]]:
    """Every tool of ``server``, all pages, in MCP's wire shape."""
    return with_server_now(server, lambda connection: connection.list_tools(), timeout_s=timeout_s)
