"""Branch a generated trajectory in place, as a LangGraph user does: replay from a past checkpoint.

Run as a process by the crash tests (``python -m tests.support.branching DB THREAD CHECKPOINT``)
so it can be killed mid-branch; ``branch_in_place`` is the same thing in-process.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from dialogforge.checkpoints.sqlite_savers import open_async_saver
from dialogforge.graphs.builder import compile_graph
from dialogforge.records import Mode
from tests.support.builders import scripted_context

RUN = {"recursion_limit": 100_000}


def config_at(thread_id: str, checkpoint_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}, **RUN}


async def _replay(db: Path, thread_id: str, checkpoint_id: str, update: dict | None) -> dict:
    async with open_async_saver(db) as saver:
        graph = compile_graph(Mode.USER, saver)
        config = config_at(thread_id, checkpoint_id)
        if update is not None:
            config = {**await graph.aupdate_state(config, update), **RUN}
        return await graph.ainvoke(None, config, context=scripted_context())


def branch_in_place(db: Path, thread_id: str, checkpoint_id: str, update: dict | None = None) -> dict:
    """Replay (or update, then run on) from ``checkpoint_id`` to the end; the final values."""
    return asyncio.run(_replay(db, thread_id, checkpoint_id, update))


if __name__ == "__main__":
    branch_in_place(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
