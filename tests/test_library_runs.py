"""Runs against tool libraries: tools prepared once, shared byte for byte, fixed from the first turn.

With ``--tool-library`` and without (a library built per domain on first use
and stored in the run's database): every trajectory of a library has its
specs exactly, every task expects only tools it has, resume and fork take the
tools from the database, many trajectories starting at once build a domain's
library once, and the proposer sees the tool set and the goals before it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dialogforge.checkpoints.sqlite_savers import open_saver
from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig, ToolPrep
from dialogforge.dataset.export import export
from dialogforge.dataset.stats import collect_stats
from dialogforge.graphs.builder import compile_graph
from dialogforge.inputs.tool_library import ToolLibrary, load_tool_library
from dialogforge.records import Limits, Mode, ToolSource
from dialogforge.runs.fork import fork_trajectory
from dialogforge.runs.generate import generate, plan_generation
from dialogforge.runs.history import history
from dialogforge.runs.reading import load_state
from dialogforge.runs.resume import ModelOverrides, resume_run
from dialogforge.runs.tool_libraries import build_tool_library
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from tests.support.checkpoints import manifest_rows

SCRIPTED = ModelsConfig(default=ModelConfig(backend="scripted"))
LIMITS = Limits(max_user_turns=6, max_tasks=2)
CONTEXT = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)


@pytest.fixture(scope="module")
def library_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lib") / "airline.json"
    build_tool_library("airline bookings", SCRIPTED, seed=1, out=out)
    return out


def specs(tools) -> str:
    return json.dumps([t.model_dump(mode="json") for t in tools], sort_keys=True)


def states_of(db: Path) -> list:
    return [load_state(db, row["thread_id"]) for row in manifest_rows(db)]


def test_fifty_trajectories_over_one_library_share_byte_identical_specs(tmp_path, library_file):
    library = load_tool_library(library_file)
    db = tmp_path / "run.db"
    result = generate(db, GenerationSettings(n=50, seed=5, concurrency=8, limits=LIMITS), SCRIPTED, tool_libraries=[library])
    assert result.summary.done == 50, result.summary
    names = library.tool_names()
    called = set()
    for state in states_of(db):
        assert specs(state.tools) == specs(library.tools)  # byte-identical, in library order
        assert state.tool_library.id == library.id and state.tool_library.tools == names
        assert state.scenario.domain == library.domain and state.tool_source is ToolSource.SYNTHESIZE
        assert state.tasks and all(task.expected_tools and set(task.expected_tools) <= set(names) for task in state.tasks)
        called |= {c.name for m in state.messages for c in m.tool_calls}
        assert "tool_synthesizer" not in state.counters.usage  # nothing was synthesized in the trajectory
    assert called and called <= set(names)
    with open_saver(db) as saver:  # the tools are the same at every step: what the agent had from turn one
        graph = compile_graph(Mode.USER, saver)
        thread = result.thread_ids[0]
        steps = list(graph.get_state_history({"configurable": {"thread_id": thread}}))
    assert len(steps) > 5 and {specs(s.values["tools"]) for s in steps if s.values.get("tools") is not None} == {specs(library.tools)}
    out = tmp_path / "train.jsonl"
    export(db, out, "openai")
    exported = [json.loads(line)["tools"] for line in out.read_text().splitlines()]
    assert len(exported) == 50 and all(tools == exported[0] for tools in exported)
    assert [t["function"]["name"] for t in exported[0]] == names


def test_a_run_builds_one_library_per_domain_and_a_later_run_reuses_it(tmp_path):
    db = tmp_path / "run.db"
    settings = GenerationSettings(n=8, seed=2, domains=["airline bookings", "hotel reservations"], limits=LIMITS)
    generate(db, settings, SCRIPTED)
    first = {s.scenario.domain: s for s in states_of(db)}
    assert set(first) == {"airline bookings", "hotel reservations"}
    by_domain: dict[str, set[str]] = {}
    for state in states_of(db):
        by_domain.setdefault(state.scenario.domain, set()).add(specs(state.tools))
        assert state.tool_library is not None and all(set(t.expected_tools) <= {x.name for x in state.tools} for t in state.tasks)
    assert all(len(v) == 1 for v in by_domain.values())  # one set of specs and result schemas per domain
    stored = _stored(db)
    assert sorted(row["domain"] for row in stored) == ["airline bookings", "hotel reservations"]
    generate(db, settings.model_copy(update={"seed": 3}), SCRIPTED)
    assert _stored(db) == stored  # nothing rebuilt: the database's libraries serve the new run
    for state in states_of(db):
        assert {specs(state.tools)} == by_domain[state.scenario.domain]


def _stored(db: Path) -> list[dict]:
    from dialogforge.checkpoints.manifest import Manifest

    manifest = Manifest(db)
    try:
        return [{k: row[k] for k in ("library_id", "domain", "build_key", "library")} for row in manifest.libraries()]
    finally:
        manifest.close()


class Recorder:
    """A stub server's model factory that keeps every request body."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def __call__(self, body: dict) -> ScriptedChatModel:
        self.bodies.append(body)
        return ScriptedChatModel()

    def by_schema(self, name: str) -> list[dict]:
        return [b for b in self.bodies if ((b.get("response_format") or {}).get("json_schema") or {}).get("name") == name]


def context_of(body: dict) -> dict:
    return json.loads(CONTEXT.findall(body["messages"][-1]["content"])[-1])


def test_many_trajectories_starting_at_once_build_the_library_once_and_the_proposer_sees_it(tmp_path):
    recorder = Recorder()
    db = tmp_path / "run.db"
    with StubServer(recorder) as server:
        models = ModelsConfig(default=ModelConfig(backend="openai", base_url=server.base_url))
        generate(db, GenerationSettings(n=16, seed=4, concurrency=16, limits=LIMITS), models)
    assert len(recorder.by_schema("LibraryQuestions")) == 1  # one library for the domain, not one per trajectory
    assert not recorder.by_schema("UserQuestions")  # and no trajectory synthesized tools of its own
    (row,) = _stored(db)
    library = ToolLibrary.model_validate_json(row["library"])
    names = library.tool_names()
    proposals = recorder.by_schema("ProposedTask")
    assert len(proposals) >= 16
    with_goals = []
    for body in proposals:
        context = context_of(body)
        assert [t["name"] for t in context["tools"]] == names and context["fixed_tools"] is True
        schema = body["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["expected_tools"]["items"]["enum"] == names  # no tool outside the set can be asked for
        if "goals_already_proposed" in context:
            with_goals.append(context["goals_already_proposed"])
    firsts = {s.tasks[0].goal[:160] for s in states_of(db)}  # a digest quotes goals cut at 160 characters
    assert with_goals and max(g["count"] for g in with_goals) >= 12
    assert all(goal in firsts for g in with_goals for goal in g["recent"])  # they are the run's own first goals
    assert all(set(g["tools_used"]) <= set(names) for g in with_goals)


def test_first_tasks_are_planned_in_rounds_that_see_the_goals_before_them(tmp_path, library_file):
    library = load_tool_library(library_file)
    db = tmp_path / "run.db"
    recorder = Recorder()
    with StubServer(recorder) as server:
        models = ModelsConfig(default=ModelConfig(backend="openai", base_url=server.base_url))
        plan = plan_generation(db, GenerationSettings(n=12, seed=6, limits=LIMITS), models, tool_libraries=[library])
    shown = sorted((context_of(b).get("goals_already_proposed") or {"count": 0})["count"] for b in recorder.by_schema("ProposedTask"))
    assert shown == [0] * 4 + [4] * 4 + [8] * 4  # rounds of 4, each seeing the rounds before it
    starts = [job.start for job in plan.jobs]
    assert all(s["planned_task"] is not None and s["counters"].usage["task_proposer"].calls >= 1 for s in starts)
    assert all(s["library_goals"].count == 11 for s in starts)  # every other trajectory's first goal
    # rounds of 4: a trajectory's own goal is never among what it was shown, and every trajectory knows the others
    for i, start in enumerate(starts):
        assert start["planned_task"].goal not in start["library_goals"].recent or any(
            other["planned_task"].goal == start["planned_task"].goal for j, other in enumerate(starts) if j != i)
    again = plan_generation(tmp_path / "again.db", GenerationSettings(n=12, seed=6, limits=LIMITS), SCRIPTED,
                            tool_libraries=[library])
    assert [j.start["planned_task"] for j in again.jobs] == [s["planned_task"] for s in starts]  # fixed by the seed
    resume_run(db, overrides=ModelOverrides(backend="scripted"))
    for state, start in zip(states_of(db), starts):
        first, planned = state.tasks[0], start["planned_task"]
        assert (first.goal, first.subtasks, first.expected_tools) == (planned.goal, planned.subtasks, planned.expected_tools)
        assert state.planned_task is None


def test_resume_takes_the_tools_from_the_database_not_the_file(tmp_path, library_file):
    copy = tmp_path / "lib.json"
    copy.write_text(library_file.read_text())
    library = load_tool_library(copy)
    db = tmp_path / "run.db"
    plan_generation(db, GenerationSettings(n=3, seed=8, limits=LIMITS), SCRIPTED, tool_libraries=[library])
    rows = manifest_rows(db)
    assert all('"tools"' not in r["initial_state"].split('"tool_library"')[0] for r in rows)  # rows name the library
    copy.unlink()
    result = resume_run(db)
    assert result.summary.done == 3
    assert all(specs(s.tools) == specs(library.tools) for s in states_of(db))


def test_a_fork_keeps_its_library_and_its_tools(tmp_path, library_file):
    library = load_tool_library(library_file)
    db = tmp_path / "run.db"
    result = generate(db, GenerationSettings(n=1, seed=9, limits=LIMITS), SCRIPTED, tool_libraries=[library])
    thread = result.thread_ids[0]
    point = next(e for e in history(db, thread) if e.next == ["simulate_user"] and e.step > 3)
    forked = fork_trajectory(db, thread, point.checkpoint_id, 2)
    assert forked.summary.done == 2
    for fork_id in forked.thread_ids:
        state = load_state(db, fork_id)
        assert specs(state.tools) == specs(library.tools) and state.tool_library.id == library.id
        assert all(set(t.expected_tools) <= set(library.tool_names()) for t in state.tasks)


def test_a_tool_subset_is_coherent_and_every_task_stays_inside_it(tmp_path, library_file):
    library = load_tool_library(library_file)
    db = tmp_path / "run.db"
    generate(db, GenerationSettings(n=10, seed=10, tool_subset=4, limits=LIMITS), SCRIPTED, tool_libraries=[library])
    subsets = set()
    for state in states_of(db):
        names = [t.name for t in state.tools]
        assert len(names) == 4 and names == state.tool_library.tools
        assert specs(state.tools) == specs(library.tools_named(names))
        assert all(set(task.expected_tools) <= set(names) for task in state.tasks)
        assert {c.name for m in state.messages for c in m.tool_calls} <= set(names)
        subsets.add(tuple(names))
    assert len(subsets) > 1


def test_per_trajectory_synthesis_stays_an_explicit_option(tmp_path):
    db = tmp_path / "run.db"
    generate(db, GenerationSettings(n=4, seed=11, tool_prep=ToolPrep.PER_TRAJECTORY, limits=LIMITS), SCRIPTED)
    assert _stored(db) == []
    for state in states_of(db):
        assert state.tool_library is None and state.library_goals is None
        assert state.counters.usage["tool_synthesizer"].calls >= 3


def test_stats_report_how_much_of_each_library_the_dataset_exercises(tmp_path, library_file, run_cli):
    library = load_tool_library(library_file)
    db = tmp_path / "run.db"
    generate(db, GenerationSettings(n=6, seed=12, limits=LIMITS), SCRIPTED, tool_libraries=[library])
    (use,) = collect_stats(db).as_dict()["tool_libraries"]
    calls = sum(1 for s in states_of(db) for m in s.messages for c in m.tool_calls if c.name in library.tool_names())
    assert use["id"] == library.id and use["tools"] == len(library.tools) and use["trajectories"] == 6
    assert list(use["calls"]) == library.tool_names() and sum(use["calls"].values()) == calls
    assert use["exercised"] == sum(1 for n in use["calls"].values() if n) >= 1
    text = run_cli("stats", "--db", str(db))
    assert text.code == 0, text.err
    assert f"  {library.name} (airline bookings): {use['exercised']}/{len(library.tools)} tools exercised over 6 trajectories" in text.out
    table = run_cli("stats", "--db", str(db), "--json").json()["table1"]
    assert [g["source"] for g in table] == [f"library {library.name}"]


def test_generate_takes_libraries_as_files_or_a_directory_from_the_cli(tmp_path, library_file, run_cli, bfcl_dir):
    folder = tmp_path / "libs"
    folder.mkdir()
    (folder / "airline.json").write_text(library_file.read_text())
    hotel = build_tool_library("hotel reservations", SCRIPTED)
    (folder / "hotel.json").write_text(json.dumps(hotel.model_dump(mode="json")))
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--tool-library", str(folder), "--n", "8", "--seed", "1",
                     "--max-turns", "4", "--max-tasks", "1", "--db", str(db), "--quiet")
    assert result.code == 0, result.err
    assert {s.scenario.domain for s in states_of(db)} == {"airline bookings", "hotel reservations"}
    for args, needle in [
        (("--tool-library", str(library_file), "--domain", "x"), "--tool-library brings its own domain and tools; drop --domain"),
        (("--tool-library", str(library_file), "--tools", str(bfcl_dir / "func_doc" / "ticket_api.jsonl")),
         "cannot be combined with --tools"),
        (("--tools-per-trajectory", "--tool-subset", "3"), "--tool-subset draws tools from a tool library"),
    ]:
        refused = run_cli("generate", "--backend", "scripted", *args, "--db", str(tmp_path / "no.db"))
        assert refused.code == 2 and needle in refused.err and len(refused.err.strip().splitlines()) == 1, refused.err
        assert not (tmp_path / "no.db").exists()


def test_libraries_named_in_the_settings_alone_are_read_and_used(tmp_path, library_file):
    db = tmp_path / "run.db"
    settings = GenerationSettings(n=2, seed=13, tool_libraries=[str(library_file)], limits=LIMITS)  # as a config file says
    generate(db, settings, SCRIPTED)
    library = load_tool_library(library_file)
    assert all(specs(s.tools) == specs(library.tools) for s in states_of(db))
