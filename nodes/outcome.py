"""How a node ends a trajectory: failure reasons, caps and token accounting.

Nodes never raise an LLM failure into the graph; they return a state update
with ``stop_reason=error`` and the reason, which routing sends to END and the
runner records in the manifest.
"""

from __future__ import annotations

from typing import Any

from dialogforge.errors import ModelCallError, ToolBackendError
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Counters, StopReason, TokenUsage


def failed(exc: ModelCallError | ToolBackendError) -> dict[str, Any]:
    return {"stop_reason": StopReason.ERROR, "error": str(exc)}


def charge(state: DialogueState, counters: Counters, role: str, usage: TokenUsage) -> dict[str, Any]:
    """Add a call's usage; stop with ``budget`` once the trajectory's budget is spent."""
    counters = counters.with_usage(role, usage)
    update: dict[str, Any] = {"counters": counters}
    budget = state.limits.token_budget
    if budget is not None and counters.total_tokens >= budget:
        update["stop_reason"] = StopReason.BUDGET
    return update
