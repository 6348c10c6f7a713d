"""MCP test equipment: the records server (tests/support/mcp_records_server.py) as a stdio
command or a running HTTP server, finding its processes, and an oracle that replays a
trajectory's calls on a fresh server."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from dialogforge.executors.mcp import recorded_calls
from dialogforge.graphs.state import DialogueState
from dialogforge.mcp import McpConnection, McpServer
from dialogforge.records import Message, ToolSpec
from dialogforge.tool_checks import first_violation
from tests.support.procs import live_pids

SERVER_SCRIPT = Path(__file__).resolve().parent / "mcp_records_server.py"
BROKEN_SCRIPT = Path(__file__).resolve().parent / "mcp_broken_server.py"


def server_command(*flags: str, tag: str | None = None) -> str:
    """The ``--mcp-server`` value that starts the records server over stdio."""
    parts = [sys.executable, str(SERVER_SCRIPT), *flags, "--tag", tag or new_tag()]
    return shlex.join(parts)


def broken_server_command(*flags: str) -> str:
    """A stdio server that breaks the protocol on every call (tests/support/mcp_broken_server.py)."""
    return shlex.join([sys.executable, str(BROKEN_SCRIPT), *flags])


def new_tag() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def server_pids(tag: str) -> list[int]:
    """Running records-server processes started with ``--tag tag``."""
    return live_pids(str(SERVER_SCRIPT).encode(), tag.encode())


def wait_no_servers(tag: str, timeout: float = 15.0) -> list[int]:
    """Give stopping servers a moment; what is still running then."""
    deadline = time.monotonic() + timeout
    while server_pids(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    return server_pids(tag)


@contextlib.contextmanager
def http_server(*flags: str) -> Iterator[str]:
    """The records server over streamable HTTP on a free port; yields its URL, always stopped after."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(SERVER_SCRIPT), "--http", str(port), *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP records server did not start (exit {proc.poll()})")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def every_call(messages: list[Message], tools: list[ToolSpec]) -> list[tuple[str, dict, str, bool]]:
    """Each call that reached the server (read-only ones too), with its recorded answer."""
    specs = {t.name: t for t in tools}
    calls = []
    for index, message in enumerate(messages):
        replies = {m.tool_call_id: m for m in messages[index + 1: index + 1 + len(message.tool_calls)] if m.role == "tool"}
        for call in message.tool_calls:
            spec, reply = specs.get(call.name), replies.get(call.id)
            if spec is None or reply is None or call.raw_arguments is not None:
                continue
            if first_violation(spec.function.parameters, call.arguments):
                continue
            calls.append((spec.mcp.name, dict(call.arguments), reply.content, reply.is_error))
    return calls


def oracle_mismatches(state: DialogueState, command: str) -> tuple[int, list[str]]:
    """Replay every call of ``state`` (reads too), in order, on a fresh stdio server:
    (calls replayed, the ones whose answer differs from the recorded one). With per-trajectory
    servers a trajectory's answers depend on its own calls only, so there must be none."""
    calls = every_call(state.messages, state.tools)

    async def replay() -> list[str]:
        connection = McpConnection(McpServer.from_settings(command, None), timeout_s=60)
        await connection.start()
        try:
            await connection.list_tools()
            wrong = []
            for tool, arguments, content, is_error in calls:
                answer = await connection.call(tool, arguments)
                if (answer.content, answer.is_error) != (content, is_error):
                    wrong.append(f"{tool}({arguments}): recorded {content!r}, now {answer.content!r}")
            return wrong
        finally:
            await connection.aclose()

    return len(calls), asyncio.run(replay())


def writes_of(state: DialogueState) -> int:
    """How many calls of tools that are not read-only the trajectory sent."""
    return len(recorded_calls(state.messages, {t.name: t for t in state.tools}))

