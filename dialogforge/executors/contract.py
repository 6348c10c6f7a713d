"""The seam between the tool-execution node and what answers a tool call.

Two executors implement it: an LLM world model (``SimulatedToolExecutor``)
and real SQL over SQLite (``SqlToolExecutor``). The node does the shared
work (unknown tools, argument validation, messages, counters) so each
executor only answers valid calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from dialogforge.records import EntityOp, JsonObject, McpDivergence, Message, SqlWrite, TokenUsage, ToolCall, ToolErrorKind, ToolSimulation, ToolSpec


class Trajectory(Protocol):
    """What an executor may read of the trajectory it answers for.

    The graph's ``DialogueState`` has these fields; executors sit below the
    graph, so they name only what they read instead of importing it.
    """

    seed: int
    world: JsonObject  # the state the conversation started from (an imported one's), if any
    messages: list[Message]  # up to and including the answers given so far in this tool round
    reference_time: str
    sql_writes: list[SqlWrite]
    simulation: ToolSimulation


@dataclass
class ExecutionOutcome:
    content: str  # what the tool message says (JSON text for results)
    is_error: bool = False
    error_kind: ToolErrorKind | None = None
    # The simulated world: what the call created, updated, deleted or read (kept on the tool message).
    entity_ops: list[EntityOp] = field(default_factory=list)
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
