"""Cut a capped trajectory after its last completed task, so what it achieved is kept.

A cap (user turns, tool steps per request, the token budget) stops a
trajectory in the middle of a task. Throwing the whole trajectory away
would bias a dataset toward short, easy dialogues, the paper's "efficiency
trap": the longest dialogues are the ones most likely to meet a cap. So a
capped user-mode trajectory that completed one or more tasks is read as the
dialogue up to the agent's last reply to its last completed task; the
unfinished task and everything after it are dropped, and a ``Cut`` says what
went. A trajectory whose first task never completed has nothing to keep and
is left as it is (the rules then reject it, as before).

This is a pure transformation of the stored state, applied where the
dataset layer reads trajectories (``corpus.load_view``): validation, export
and statistics all see the same trimmed dialogue, and the checkpoints are
never touched. Counters are recounted for what is kept (turns, calls, the
steps of each request) so Table-1 measures describe the kept dialogue; token
usage is left as spent, since the cut part was paid for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dialogforge.graphs.state import DialogueState
from dialogforge.records import CAP_STOP_REASONS, Counters, Message, Mode, TaskStatus


@dataclass(frozen=True)
class Cut:
    """What was dropped from a capped trajectory to end it at a completed task."""

    stop_reason: str  # the cap the trajectory hit
    kept_tasks: int
    dropped_tasks: int  # the unfinished task (and any proposed after it)
    kept_messages: int
    dropped_messages: int
    dropped_tool_calls: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (f"cut after task {self.kept_tasks} (stopped at {self.stop_reason}): dropped {self.dropped_messages} "
                f"messages and {self.dropped_tasks} unfinished task(s)")


def cut_capped(state: DialogueState) -> tuple[DialogueState, Cut | None]:
    """The state ending at the agent's reply to its last completed task, and what was cut;
    ``(state, None)`` when the trajectory did not stop at a cap or completed no task."""
    if state.mode is not Mode.USER or state.stop_reason not in CAP_STOP_REASONS:
        return state, None
    kept_tasks = _completed_prefix(state)
    if kept_tasks == 0:
        return state, None
    end = _end_of_task(state.messages, kept_tasks - 1)
    if end is None:
        return state, None
    kept, dropped = state.messages[:end], state.messages[end:]
    cut = Cut(
        stop_reason=state.stop_reason.value, kept_tasks=kept_tasks, dropped_tasks=len(state.tasks) - kept_tasks,
        kept_messages=len(kept), dropped_messages=len(dropped),
        dropped_tool_calls=sum(len(m.tool_calls) for m in dropped),
    )
    trimmed = state.model_copy(update={
        "messages": kept, "tasks": state.tasks[:kept_tasks], "counters": _recount(state.counters, dropped, kept_tasks),
        "carryover": None, "pending_user_message": None,
    })
    return trimmed, cut


def _completed_prefix(state: DialogueState) -> int:
    """How many tasks, from the first, were completed (tasks complete in order)."""
    count = 0
    for task in state.tasks:
        if task.status is not TaskStatus.COMPLETED:
            break
        count += 1
    return count


def _end_of_task(messages: list[Message], task_index: int) -> int | None:
    """Position just after the agent's last reply (no tool calls) before any later task's messages."""
    boundary = next((i for i, m in enumerate(messages) if m.task_index is not None and m.task_index > task_index), len(messages))
    replies = [i for i in range(boundary) if messages[i].role == "assistant" and not messages[i].tool_calls]
    return replies[-1] + 1 if replies else None


def _recount(counters: Counters, dropped: list[Message], kept_tasks: int) -> Counters:
    """Counters of the kept part: the dropped messages' counts taken off, usage left as spent.

    Each agent reply closed one request and appended its step count, so the
    dropped replies' step counts are the last ones.
    """
    users = sum(1 for m in dropped if m.role == "user")
    replies = sum(1 for m in dropped if m.role == "assistant" and not m.tool_calls)
    step_counts = counters.step_counts[: max(0, len(counters.step_counts) - replies)]
    return counters.model_copy(update={
        "user_turns": max(0, counters.user_turns - users),
        "requests": max(0, counters.requests - users),
        "assistant_turns": max(0, counters.assistant_turns - sum(1 for m in dropped if m.role == "assistant")),
        "tool_calls": max(0, counters.tool_calls - sum(len(m.tool_calls) for m in dropped)),
        "tool_errors": max(0, counters.tool_errors - sum(1 for m in dropped if m.role == "tool" and m.is_error)),
        "step_counts": step_counts,
        "steps_this_request": 0,
        "tasks_completed": kept_tasks,
    })
