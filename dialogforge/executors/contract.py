"""The seam between the tool-execution node and what answers a tool call.

Two executors implement it: an LLM world model (``SimulatedToolExecutor``)
and real SQL over SQLite (``SqlToolExecutor``). The node does the shared
work (unknown tools, argument validation, messages, counters) so each
executor only answers valid calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from dialogforge.records import JsonObject, McpDivergence, Message, SqlWrite, TokenUsage, ToolCall, ToolSpec


class Trajectory(Protocol):
    """What an executor may read of the trajectory it answers for.

    The graph's ``DialogueState`` has these fields; executors sit below the
    graph, so they name only what they read instead of importing it.
    """

    seed: int
    world: JsonObject
    messages: list[Message]
    reference_time: str
    sql_writes: list[SqlWrite]


@dataclass
class ExecutionOutcome:
    content: str  # what the tool message says (JSON text for results)
    is_error: bool = False
    world_updates: JsonObject = field(default_factory=dict)
    usage: TokenUsage = field(default_factory=TokenUsage)
    # Tool-Exec: a call that changed data, for the trajectory's write log.
    sql_write: SqlWrite | None = None
    # MCP: replayed calls that answered differently while the server's state was rebuilt.
    mcp_divergences: list[McpDivergence] = field(default_factory=list)


class ToolExecutor(Protocol):
    def task_context(self, state: Trajectory) -> dict[str, Any]:
        """What the task proposer should see of the world (state, schema, sample rows)."""
        ...

    async def execute(self, state: Trajectory, spec: ToolSpec, call: ToolCall) -> ExecutionOutcome:
        """Answer one valid call; failures of the tool itself come back as ``is_error``.

        A failure of the backend (not of the call) raises ``ToolBackendError``,
        which fails the trajectory with that reason.
        """
        ...
