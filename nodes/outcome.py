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


def failed(exc: ModelCallError | ToolBackendError, state: DialogueState, role: str,
           usage: TokenUsage | None = None) -> dict[str, Any]:
    """The trajectory stops with the error as its reason. What it paid for on the way is charged to
    ``role`` all the same: ``usage`` (the node's calls that succeeded) and the failed call's own
    (``ModelCallError.usage``, e.g. invalid answers), so cost and budgets count every token."""
    spent = (usage or TokenUsage()).plus(getattr(exc, "usage", None) or TokenUsage())
    charged = charge(state, state.counters, role, spent) if spent.calls else {}
    return {**charged, "stop_reason": StopReason.ERROR, "error": str(exc)}


def charge(state: DialogueState, counters: Counters, role: str, usage: TokenUsage) -> dict[str, Any]:
    """Add a call's usage; stop with ``budget`` once the trajectory's budget is spent."""
    counters = counters.with_usage(role, usage)
    update: dict[str, Any] = {"counters": counters}
    budget = state.limits.token_budget
    if budget is not None and counters.total_tokens >= budget:
        update["stop_reason"] = StopReason.BUDGET
    return update
