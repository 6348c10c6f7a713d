"""The seam between the tool-execution node and what answers a tool call.

Two executors implement it: an LLM world model (``SimulatedToolExecutor``)
and real SQL over SQLite (``SqlToolExecutor``). The node does the shared
work (unknown tools, argument validation, messages, counters) so each
executor only answers valid calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from graphs.state import DialogueState, JsonObject, SqlWrite, TokenUsage, ToolCall, ToolSpec


@dataclass
class ExecutionOutcome:
    content: str  # what the tool message says (JSON text for results)
    is_error: bool = False
    world_updates: JsonObject = field(default_factory=dict)
    usage: TokenUsage = field(default_factory=TokenUsage)
    # Tool-Exec: a call that changed data, for the trajectory's write log.
    sql_write: SqlWrite | None = None


class ToolExecutor(Protocol):
    def task_context(self, state: DialogueState) -> dict[str, Any]:
        """What the task proposer should see of the world (state, schema, sample rows)."""
        ...

    async def execute(self, state: DialogueState, spec: ToolSpec, call: ToolCall) -> ExecutionOutcome:
        """Answer one valid call; failures of the tool itself come back as ``is_error``.

        A failure of the backend (not of the call) raises ``ToolBackendError``,
        which fails the trajectory with that reason.
        """
        ...
