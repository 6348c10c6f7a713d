"""First tasks of a library's trajectories, proposed while the run is planned, with the goals before them in view.

Task diversity across a run needs each proposer to know which goals were
already proposed for the same library. Asked inside the running graph, that
would depend on which trajectory happened to get there first: a resumed,
sharded or Ray run would then differ from an uninterrupted one. So the driver
proposes every library trajectory's first task before any starts, in at most
``ROUNDS`` rounds per library: the trajectories of round r (in plan order) are
proposed at once, each seeing a compact digest of the goals of rounds before
r. The task is recorded in the planned state (``planned_task``, adopted by the
task-proposal node without another call, its tokens already counted), and
every trajectory keeps the digest of all its library's first goals but its
own (``library_goals``) for the tasks it proposes later. All of it is fixed
at planning, so resume, fork and shards see exactly the same. A proposal that
fails here leaves ``planned_task`` unset (its answers' tokens still counted):
the node proposes it in the run, with its own bounded retries, and records a
failure there.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable

from dialogforge.config import Role
from dialogforge.errors import ModelCallError, ToolBackendError
from dialogforge.executors.contract import ToolExecutor
from dialogforge.graphs.state import DialogueState
from dialogforge.models import ModelSet
from dialogforge.nodes.propose_task import propose
from dialogforge.records import GoalDigest, Task

ROUNDS = 16  # rounds per library at most: the planning latency a library adds, whatever its size
MIN_ROUND = 4  # trajectories proposed together at least
RECENT = 10  # goals a digest quotes
GOAL_CHARS = 160


def round_size(trajectories: int) -> int:
    return max(MIN_ROUND, math.ceil(trajectories / ROUNDS))


def digest(tasks: list[Task | None]) -> GoalDigest:
    proposed = [t for t in tasks if t is not None]
    used = Counter(name for t in proposed for name in t.expected_tools)
    return GoalDigest(count=len(proposed), recent=[t.goal[:GOAL_CHARS] for t in proposed[-RECENT:]],
                      tools_used=dict(sorted(used.items())))


def _digest_without(tasks: list[Task | None], position: int, whole: GoalDigest) -> GoalDigest:
    """``digest`` of every task but the one at ``position`` (``whole`` is that of all): linear overall."""
    own = tasks[position]
    used = Counter(whole.tools_used)
    if own is not None:
        used.subtract(own.expected_tools)
    first_tail = max(0, len(tasks) - RECENT - 1)
    tail = [t for i, t in enumerate(tasks[first_tail:], start=first_tail) if t is not None and i != position]
    return GoalDigest(count=whole.count - (own is not None), recent=[t.goal[:GOAL_CHARS] for t in tail[-RECENT:]],
                      tools_used={name: n for name, n in sorted(used.items()) if n > 0})


async def plan_first_tasks(
    states: list[DialogueState], models: ModelSet, executor: ToolExecutor, *, concurrency: int,
    notify: Callable[[str], None] | None = None,
) -> list[DialogueState]:
    """``states`` with ``planned_task``, its usage and ``library_goals`` set for each library trajectory."""
    by_library: dict[str, list[int]] = {}
    for index, state in enumerate(states):
        if state.tool_library is not None and not state.tasks:
            by_library.setdefault(state.tool_library.id, []).append(index)
    if not by_library:
        return states
    if notify is not None:
        count = sum(map(len, by_library.values()))
        notify(f"planning: proposing the first task of {count} trajectories over {len(by_library)} tool libraries")
    gate = asyncio.Semaphore(concurrency)
    model = models[Role.TASK_PROPOSER]
    out = list(states)

    async def one(index: int, seen: GoalDigest) -> Task | None:
        async with gate:
            try:
                task, usage = await propose(states[index], model, executor, seen)
            except (ModelCallError, ToolBackendError) as exc:
                spent = getattr(exc, "usage", None)  # answers it got, invalid ones included: they were paid for
                if spent is not None and spent.calls:
                    out[index] = out[index].model_copy(update={"counters": out[index].counters.with_usage(model.role, spent)})
                return None  # proposed again in the run, where a failure is recorded with its reason
        state = out[index]
        out[index] = state.model_copy(update={"planned_task": task, "counters": state.counters.with_usage(model.role, usage)})
        return task

    async def library(indices: list[int]) -> None:
        size = round_size(len(indices))
        firsts: list[Task | None] = []
        for start in range(0, len(indices), size):
            seen = digest(firsts)
            firsts += await asyncio.gather(*(one(i, seen) for i in indices[start : start + size]))
        whole = digest(firsts)
        for position, index in enumerate(indices):
            out[index] = out[index].model_copy(update={"library_goals": _digest_without(firsts, position, whole)})

    await asyncio.gather(*(library(indices) for indices in by_library.values()))
    return out
