"""Every operation a store offers, on every kind of store: a SQLite file, SQLite shards, PostgreSQL.

The same run must give identical trajectories on each as on a plain SQLite
file; planned rows nobody started are finished by ``resume``; history and
forks read the same. (Store-specific cases live beside their store:
``test_postgres_store.py``, ``test_ray_workers.py``.)
"""

from __future__ import annotations

import json

from dialogforge.config import GenerationSettings
from dialogforge.dataset.export import export
from dialogforge.dataset.stats import collect_stats
from dialogforge.records import Limits
from dialogforge.runs.generate import generate
from dialogforge.runs.history import history
from dialogforge.runs.reading import load_state
from tests.support.checkpoints import SCRIPTED, counters_problem, dialogue_problem
from tests.support.postgres import dialogues, rows

SETTINGS = GenerationSettings(n=4, seed=7, concurrency=4, limits=Limits(max_user_turns=8, max_tasks=2))


def test_generate_matches_the_same_run_on_one_sqlite_file(store, tmp_path, run_cli):
    threads = store.generate(SETTINGS)
    assert {(r["status"]) for r in rows(store.db)} == {"done"} and len(rows(store.db)) == 4
    generate(tmp_path / "ref.db", SETTINGS, SCRIPTED)
    assert dialogues(store.db) == dialogues(tmp_path / "ref.db")
    for row in rows(store.db):
        state = load_state(store.db, row["thread_id"])
        assert row["messages"] == len(state.messages)
        assert dialogue_problem(state.messages) is None and counters_problem(state) is None
    listed = run_cli("list", "--db", store.db, "--json")
    assert listed.code == 0, listed.err
    assert sorted(r["thread_id"] for r in listed.json()) == sorted(threads)
    shown = run_cli("show", threads[0], "--db", store.db)
    assert shown.code == 0 and shown.out.strip(), shown.err
    out, ref_out = tmp_path / "out.jsonl", tmp_path / "ref.jsonl"
    done = run_cli("export", "--db", store.db, "--format", "openai", "--out", str(out))
    assert done.code == 0, done.err
    stats = run_cli("stats", "--db", store.db, "--json")
    assert stats.code == 0, stats.err
    export(tmp_path / "ref.db", ref_out, "openai")
    assert sorted(out.read_text().splitlines()) == sorted(ref_out.read_text().splitlines())
    assert out.read_text().count("\n") == 4
    assert stats.json() == json.loads(collect_stats(tmp_path / "ref.db").to_json())
    if store.kind == "postgres":
        refused = run_cli("validate", "--db", store.db)
        assert refused.code == 2 and "needs a SQLite --db" in refused.err


def test_resume_finishes_planned_rows(store, tmp_path, run_cli):
    planned = store.plan(SETTINGS)
    assert {r["status"] for r in rows(store.db)} == {"pending"}
    resumed = run_cli("resume", "--db", store.db, "--quiet")
    assert resumed.code == 0, resumed.err
    assert "4 done, 0 failed" in resumed.out, resumed.out
    generate(tmp_path / "ref.db", SETTINGS, SCRIPTED)
    assert dialogues(store.db) == dialogues(tmp_path / "ref.db")
    assert sorted(r["thread_id"] for r in rows(store.db)) == sorted(planned)
    again = run_cli("resume", "--db", store.db)
    assert again.code == 0 and "nothing to resume" in again.out


def test_history_and_fork_match_the_same_fork_on_one_sqlite_file(store, tmp_path, run_cli):
    one = SETTINGS.model_copy(update={"n": 1, "limits": Limits(max_user_turns=10, max_tasks=3)})
    forked = {}
    for db, make in ((store.db, store.generate), (str(tmp_path / "ref.db"), lambda s: generate(tmp_path / "ref.db", s, SCRIPTED).thread_ids)):
        thread = make(one)[0]
        entries = history(db, thread)
        points = [e for e in entries if e.node == "execute_tools" and e.next and e.step > 3]
        point = points[len(points) // 2]
        result = run_cli("fork", thread, "--db", db, "--checkpoint", point.checkpoint_id, "--n", "2", "--seed", "100", "--quiet")
        assert result.code == 0, result.err
        forks = [r for r in rows(db) if r["parent_thread_id"] == thread]
        assert [r["status"] for r in forks] == ["done", "done"] and [r["seed"] for r in forks] == [100, 101]
        for fork in forks:
            fork_entries = history(db, fork["thread_id"])
            shared = entries[: entries.index(point) + 1]
            assert [e.checkpoint_id for e in fork_entries[: len(shared)]] == [e.checkpoint_id for e in shared]
            assert all(e.inherited for e in fork_entries[: len(shared)]) and fork_entries[len(shared)].source == "fork"
        forked[db] = [load_state(db, f["thread_id"]).model_dump_json() for f in forks]
        assert forked[db][0] != forked[db][1]  # different seeds, different continuations
    assert forked[store.db] == forked[str(tmp_path / "ref.db")]
