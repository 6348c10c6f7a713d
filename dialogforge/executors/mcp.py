"""MCP as the tool backend: the agent's calls go to a real MCP server through ``tools/call``.

Isolation follows the transport. A stdio server is started for each
trajectory (at its first call; ``McpSlots`` bounds how many run at once),
so each trajectory has its own server state, the way Tool-Exec gives each
its own database copy. An HTTP server is someone else's process, shared by
every trajectory: what one trajectory writes, the others may see.

A per-trajectory server's state is a function of the calls it has been
sent, so it is rebuilt, not stored: a fresh server (a resume after a crash,
a fork, a server that died mid-run) first gets the trajectory's recorded
calls of tools that are not read-only, in order, read from its messages.
A replayed call that answers differently from the recorded answer is
returned as an ``McpDivergence`` and kept in the state.

Failures: the server's own answer (``isError``, or a JSON-RPC error for the
call) is a tool error message the agent reacts to. Talking to it failing
(the server died, timed out, replied outside the protocol) is retried a
bounded number of times on a fresh server, rebuilt by replay; then the
trajectory fails with the reason. On a shared HTTP server only read-only
calls are retried: repeating a write whose fate is unknown could apply it twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from dialogforge.errors import ToolBackendError
from dialogforge.mcp import CallAnswer, McpConnection, McpServer, McpTransportError
from dialogforge.records import JsonObject, McpBinding, McpDivergence, Message, ToolCall, ToolSpec
from dialogforge.executors.contract import ExecutionOutcome, Trajectory
from dialogforge.tool_checks import first_violation

DEFAULT_RETRIES = 2


class McpSlots:
    """How many per-trajectory servers may run at once (the pool size), shared by a run's executors."""

    def __init__(self, size: int):
        self.size = size
        self._semaphore: asyncio.Semaphore | None = None

    async def acquire(self) -> None:
        if self._semaphore is None:  # created on the loop that uses it
            self._semaphore = asyncio.Semaphore(self.size)
        await self._semaphore.acquire()

    def release(self) -> None:
        assert self._semaphore is not None
        self._semaphore.release()


@dataclass(frozen=True)
class RecordedCall:
    """A call the trajectory made of a tool that is not read-only, with the answer it got."""

    tool: str  # the server's name
    arguments: JsonObject
    answer: CallAnswer


class McpToolExecutor:
    """Answers one trajectory's tool calls on an MCP server; ``aclose()`` when it ends."""

    def __init__(
        self,
        server: McpServer,
        tools: list[ToolSpec],
        *,
        slots: McpSlots | None = None,
        timeout_s: float = 30.0,
        retries: int = DEFAULT_RETRIES,
        context: dict[str, Any] | None = None,
    ):
        self.server = server
        self.tools = {t.name: t for t in tools if t.mcp is not None}
        self.slots = slots
        self.timeout_s = timeout_s
        self.retries = retries
        self.context = context or {}
        self._connection: McpConnection | None = None
        self._holds_slot = False
        self._applied: list[RecordedCall] | None = None  # what this trajectory's server has been sent
        self._divergences: list[McpDivergence] = []  # found by a rebuild, not yet handed to the state

    def task_context(self, state: Trajectory) -> dict[str, Any]:
        """What the server really offers, so the task is one it can carry out: its tools,
        read or write, and what its read-only tools answered when the run began."""
        tools = [
            {"name": name, "title": spec.mcp.title, "reads_only": spec.mcp.read_only is True}
            for name, spec in self.tools.items() if spec.mcp is not None
        ]
        return {"mcp_server": {"tools": tools, **self.context}}

    async def execute(self, state: Trajectory, spec: ToolSpec, call: ToolCall) -> ExecutionOutcome:
        binding = self._binding(spec)
        arguments = dict(call.arguments)
        # A shared server: a write whose fate is unknown is never sent twice.
        attempts = self.retries + 1 if self.server.per_trajectory or not binding.replayed else 1
        for _ in range(attempts):
            try:
                connection = await self._ready(state)
                answer = await connection.call(binding.name, arguments)
                break
            except McpTransportError as error:
                failure = error
                await self._drop()
        else:
            diverged = f"; {len(self._divergences)} replayed call(s) had answered differently" if self._divergences else ""
            raise ToolBackendError(f"MCP server: {self.server.describe()}: {failure} "
                                   f"({attempts} attempt{'s' if attempts > 1 else ''}{diverged})")
        if binding.replayed and self._applied is not None:
            self._applied.append(RecordedCall(binding.name, arguments, answer))
        divergences, self._divergences = self._divergences, []
        return ExecutionOutcome(content=answer.content, is_error=answer.is_error, mcp_divergences=divergences)

    async def aclose(self) -> None:
        await self._drop()
        if self._holds_slot and self.slots is not None:
            self.slots.release()
            self._holds_slot = False

    def _binding(self, spec: ToolSpec) -> McpBinding:
        known = self.tools.get(spec.name)
        if known is None or known.mcp is None:
            raise ToolBackendError(f"MCP server: tool {spec.name!r} is not one of the server's tools")
        return known.mcp

    async def _ready(self, state: Trajectory) -> McpConnection:
        """The live connection; a new one (a fresh stdio server) is first brought to the
        trajectory's state by replaying its recorded calls."""
        if self._connection is not None and self._connection.alive:
            return self._connection
        if self.slots is not None and self.server.per_trajectory and not self._holds_slot:
            await self.slots.acquire()
            self._holds_slot = True
        connection = McpConnection(self.server, timeout_s=self.timeout_s)
        await connection.start()
        self._connection = connection
        await connection.list_tools()  # the SDK checks structured results against the listed output schemas
        if self.server.per_trajectory:
            if self._applied is None:
                self._applied = recorded_calls(state.messages, self.tools)
            await self._replay(connection, self._applied)
        return connection

    async def _replay(self, connection: McpConnection, calls: list[RecordedCall]) -> None:
        """Send ``calls`` again in order; differences are kept once the whole replay got through
        (a replay cut short by a failure is redone from the start on the next server)."""
        found = []
        for position, recorded in enumerate(calls):
            replayed = await connection.call(recorded.tool, dict(recorded.arguments))
            if replayed != recorded.answer:
                found.append(McpDivergence(
                    position=position, tool=recorded.tool, arguments=recorded.arguments,
                    recorded=recorded.answer.content, replayed=replayed.content,
                    recorded_error=recorded.answer.is_error, replayed_error=replayed.is_error,
                ))
        self._divergences.extend(found)

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.aclose()


def recorded_calls(messages: list[Message], tools: dict[str, ToolSpec]) -> list[RecordedCall]:
    """The calls a trajectory sent to its server, of tools that are not read-only, in order,
    each with its recorded answer. Calls the node refused (unknown tool, arguments not JSON
    or breaking the schema) never reached the server and are left out; the check is the
    node's own, on the same specs."""
    calls: list[RecordedCall] = []
    for index, message in enumerate(messages):
        if message.role != "assistant" or not message.tool_calls:
            continue
        replies = _replies(messages, index, len(message.tool_calls))
        for call in message.tool_calls:
            spec = tools.get(call.name)
            reply = replies.get(call.id)
            if spec is None or spec.mcp is None or not spec.mcp.replayed or reply is None:
                continue
            if call.raw_arguments is not None or first_violation(spec.function.parameters, call.arguments):
                continue
            calls.append(RecordedCall(spec.mcp.name, dict(call.arguments), CallAnswer(reply.content, reply.is_error)))
    return calls


def _replies(messages: list[Message], index: int, count: int) -> dict[str, Message]:
    """The tool messages answering the assistant message at ``index``: the ones right after it
    (ids repeat across a dialogue with some models, never within one round)."""
    window = messages[index + 1: index + 1 + count]
    return {m.tool_call_id: m for m in window if m.role == "tool" and m.tool_call_id is not None}
