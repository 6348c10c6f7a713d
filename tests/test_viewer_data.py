"""The viewer's data API and the single-file HTML, on a real database with real forks."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from dialogforge.checkpoints.manifest import Manifest, PlannedTrajectory
from dialogforge.runs.reading import load_state
from dialogforge.checkpoints.sqlite_savers import open_saver
from dialogforge.dataset.validate import validate
from dialogforge.errors import NotFoundError
from dialogforge.viewer.data import family, list_trajectories, trajectory_view
from dialogforge.viewer.history import fast_history, history_from_graph
from dialogforge.viewer.standalone import script_safe_json, trajectory_page
from dialogforge.graphs.builder import compile_graph
from dialogforge.records import Mode
from dialogforge.cli.main import main
from tests.support.viewer import IMG_PAYLOAD, SCRIPT_PAYLOAD, build_viewer_db


@pytest.fixture(scope="module")
def vdb(tmp_path_factory):
    return build_viewer_db(tmp_path_factory.mktemp("viewer") / "run.db")


def test_list_has_every_trajectory_with_counters_and_choices(vdb):
    listing = list_trajectories(vdb.path)
    rows = {r["thread_id"]: r for r in listing["trajectories"]}
    assert set(rows) == {*vdb.threads, vdb.fork, vdb.fork_of_fork, vdb.poisoned, vdb.failed}
    assert "initial_state" not in rows[vdb.threads[0]]  # the bulky column stays out of the list
    assert listing["choices"]["mode"] == ["task", "user"]
    assert listing["choices"]["status"] == ["done", "failed"]
    assert rows[vdb.failed]["status"] == "failed" and rows[vdb.failed]["error"].startswith("agent: ")
    state = load_state(vdb.path, vdb.threads[0])
    assert rows[vdb.threads[0]]["messages"] == len(state.messages)
    assert rows[vdb.threads[0]]["tool_calls"] == state.counters.tool_calls
    assert listing["validity_available"] is False and rows[vdb.threads[0]]["valid"] is None


def test_trajectory_view_is_the_checkpointed_state(vdb):
    thread = vdb.threads[0]
    view = trajectory_view(vdb.path, thread)
    state = load_state(vdb.path, thread)
    assert view["state"] == state.model_dump(mode="json")
    assert [t["function"]["name"] for t in view["state"]["tools"]] == [t.name for t in state.tools]
    assert {m["task_index"] for m in view["state"]["messages"]} == set(range(len(state.tasks)))
    json.dumps(view)  # everything the page gets is plain JSON


def test_fork_lineage_and_fork_points(vdb):
    root, child, grandchild = vdb.threads[0], vdb.fork, vdb.fork_of_fork
    view = trajectory_view(vdb.path, child)
    assert [a["thread_id"] for a in view["lineage"]["ancestors"]] == [root]
    assert view["lineage"]["descendants"] == [grandchild]
    tree = view["lineage"]["tree"]
    assert tree["thread_id"] == root
    assert [c["thread_id"] for c in tree["children"]] == [child]
    assert [g["thread_id"] for g in tree["children"][0]["children"]] == [grandchild]

    point = view["fork_point"]
    assert point["parent_thread_id"] == root and point["checkpoint_id"] == vdb.fork_checkpoint
    n = point["message_index"]
    parent_messages = load_state(vdb.path, root).messages
    child_messages = load_state(vdb.path, child).messages
    assert 0 < n < len(child_messages)
    assert child_messages[:n] == parent_messages[:n]  # inherited up to the fork point ...
    assert child_messages[n:] != parent_messages[n:]  # ... then its own way

    parent_view = trajectory_view(vdb.path, root)
    assert parent_view["fork_point"] is None
    assert [(f["thread_id"], f["message_index"]) for f in parent_view["forks_here"]] == [(child, n)]
    assert vdb.fork_checkpoint in [c["checkpoint_id"] for c in parent_view["checkpoints"]]
    grand_view = trajectory_view(vdb.path, grandchild)
    assert [a["thread_id"] for a in grand_view["lineage"]["ancestors"]] == [root, child]
    assert family(vdb.path, child) == [root, child, grandchild]


def test_checkpoint_list_oldest_first(vdb):
    """What the page needs from any history source: ids, steps oldest first, writer, turn, preview."""
    checkpoints = trajectory_view(vdb.path, vdb.threads[2])["checkpoints"]  # the task-mode trajectory
    steps = [c["step"] for c in checkpoints]
    assert steps == sorted(steps) and len(steps) > 5
    assert len({c["checkpoint_id"] for c in checkpoints}) == len(checkpoints)
    assert {"checkpoint_id", "step", "node", "next", "user_turn", "preview"} <= set(checkpoints[0])
    assert any(c["preview"].startswith("user: ") for c in checkpoints)


def test_fast_history_names_writers_and_counts_messages(vdb):
    with open_saver(vdb.path) as saver:
        checkpoints = fast_history(compile_graph(Mode.TASK, saver), vdb.threads[2])
    assert checkpoints[0]["step"] == -1
    assert [c["node"] for c in checkpoints[:3]] == ["input", "__start__", "propose_task"]
    assert [c["next"] for c in checkpoints[:3]] == [["__start__"], ["propose_task"], ["synthesize_tools"]]
    final = load_state(vdb.path, vdb.threads[2])
    assert checkpoints[-1]["next"] == [] and checkpoints[-1]["messages"] == len(final.messages)
    counts = [c["messages"] for c in checkpoints]
    assert counts == sorted(counts) and counts[0] == 0


def test_fast_checkpoint_list_equals_the_exact_walk(vdb):
    """The fast list (raw checkpoints + writes) must agree with LangGraph's full state history."""
    for thread in [*vdb.threads, vdb.fork, vdb.fork_of_fork, vdb.poisoned, vdb.failed]:
        mode = Mode.TASK if thread == vdb.threads[2] else Mode.USER
        with open_saver(vdb.path) as saver:
            graph = compile_graph(mode, saver)
            fast, exact = fast_history(graph, thread), history_from_graph(graph, thread)
        assert fast is not None, thread  # None would mean the slow O(n^2) fallback
        assert fast == exact, thread


def test_unknown_and_unstarted_trajectories(vdb, tmp_path):
    with pytest.raises(NotFoundError, match="no trajectory 'nope'"):
        trajectory_view(vdb.path, "nope")
    db = tmp_path / "planned.db"
    manifest = Manifest(db, create=True)
    manifest.record_planned([PlannedTrajectory(thread_id="p-0", run_id="p", seed=1, mode="user", domain="d",
                                               config_hash="h", initial_state="{}")])
    manifest.close()
    view = trajectory_view(db, "p-0")
    assert view["state"] is None and view["checkpoints"] == [] and view["row"]["status"] == "pending"


def test_validity_shows_once_validated(tmp_path, vdb):
    db = tmp_path / "validated.db"
    db.write_bytes(vdb.path.read_bytes())
    for suffix in ("-wal", "-shm"):
        side = vdb.path.with_name(vdb.path.name + suffix)
        if side.exists():
            db.with_name(db.name + suffix).write_bytes(side.read_bytes())
    validate(db)
    listing = list_trajectories(db)
    rows = {r["thread_id"]: r for r in listing["trajectories"]}
    assert listing["validity_available"] is True
    assert rows[vdb.threads[0]]["valid"] is True
    assert rows[vdb.failed]["valid"] is False and "rule: stopped_by_error" in rows[vdb.failed]["validity_reasons"]
    detail = trajectory_view(db, vdb.failed)["row"]["validation"]
    assert "stopped_by_error" in detail["failure_rules"]


@pytest.mark.security
def test_script_safe_json_cannot_close_the_block():
    text = script_safe_json({"a": SCRIPT_PAYLOAD, "b": "<!-- x -->", "c": "\u2028&"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": SCRIPT_PAYLOAD, "b": "<!-- x -->", "c": "\u2028&"}


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@pytest.mark.security
def test_single_file_page_is_self_contained_and_locked_down(vdb):
    html = trajectory_page(vdb.path, vdb.poisoned)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(scripts) == 1 and len(styles) == 1
    assert f"script-src '{_csp_hash(scripts[0])}'" in csp and f"style-src '{_csp_hash(styles[0])}'" in csp
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert re.search(r"(src|href)=\"https?:", html) is None  # nothing loaded from anywhere
    data = re.search(r'<script type="application/json" id="dialogforge-data">(.*?)</script>', html, re.S).group(1)
    assert IMG_PAYLOAD not in html and SCRIPT_PAYLOAD not in html  # payloads only as escaped JSON
    embedded = json.loads(data)
    assert embedded["start"] == vdb.poisoned
    assert SCRIPT_PAYLOAD in embedded["trajectories"][vdb.poisoned]["state"]["messages"][0]["content"]


def test_viz_trajectory_cli(run_cli, vdb, tmp_path, capsys):
    out = tmp_path / "fork.html"
    result = run_cli("viz", "trajectory", vdb.fork, "--db", str(vdb.path), "--out", str(out))
    assert result.code == 0, result.err
    html = out.read_text()
    embedded = json.loads(re.search(r'id="dialogforge-data">(.*?)</script>', html, re.S).group(1))
    assert set(embedded["trajectories"]) == {vdb.threads[0], vdb.fork, vdb.fork_of_fork}  # the family travels along

    assert main(["viz", "trajectory", "nope", "--db", str(vdb.path), "--out", str(tmp_path / "x.html")]) == 2
    assert "no trajectory 'nope'" in capsys.readouterr().err
    assert main(["viz", "trajectory", vdb.fork, "--db", str(vdb.path), "--out", str(tmp_path / "x.txt")]) == 2
    assert "unknown output format" in capsys.readouterr().err
    assert main(["viz", "trajectory", vdb.fork, "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "y.html")]) == 2
    assert "no such database" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fork.html"]


@pytest.mark.slow
def test_long_trajectory_view_stays_fast(tmp_path):
    """A 400-turn cap and 30 tasks: hundreds of messages and checkpoints, shown in seconds."""
    import time

    from dialogforge.config import GenerationSettings
    from dialogforge.runs.generate import generate
    from dialogforge.records import Limits
    from tests.support.viewer import SCRIPTED

    settings = GenerationSettings(n=1, seed=9, limits=Limits(max_user_turns=400, max_tasks=30))
    thread = generate(tmp_path / "long.db", settings, SCRIPTED).thread_ids[0]
    started = time.monotonic()
    view = trajectory_view(tmp_path / "long.db", thread)
    elapsed = time.monotonic() - started
    assert len(view["state"]["messages"]) > 200 and len(view["checkpoints"]) > 200
    assert elapsed < 15, elapsed
