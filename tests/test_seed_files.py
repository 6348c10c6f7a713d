"""Domains, personas and tool sets from files, sampled reproducibly from --seed."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.runs.reading import load_state
from dialogforge.inputs.seed_files import SeedFileError, load_seed_lines, load_tool_sets
from dialogforge.runs.planning import tool_set_index


def _tool(name: str) -> dict:
    return {"type": "function", "function": {"name": name, "description": f"{name} things",
                                             "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}


@pytest.fixture
def tools_dir(tmp_path):
    directory = tmp_path / "tools"
    directory.mkdir()
    (directory / "bank.json").write_text(json.dumps([_tool("get_balance"), _tool("create_transfer")]))
    (directory / "hotel.json").write_text(json.dumps([_tool("search_rooms"), _tool("create_booking")]))
    (directory / "zoo.jsonl").write_text(json.dumps(_tool("get_animal")) + "\n")
    (directory / "README.md").write_text("not a tool file")
    return directory


def test_seed_lines_plain_and_jsonl(tmp_path):
    path = tmp_path / "domains.txt"
    path.write_text("# domains\nonline bookstore\n\n  airline support  \n\"a quoted one\"\n"
                    '{"domain": "veterinary clinic"}\n{"text": "telecom billing"}\nonline bookstore\n')
    assert load_seed_lines(path, "domain") == [
        "online bookstore", "airline support", "a quoted one", "veterinary clinic", "telecom billing", "online bookstore"]
    personas = tmp_path / "personas.jsonl"
    personas.write_text('{"persona": "a terse engineer"}\n{"persona": "a retiree new to apps"}\n')
    assert load_seed_lines(personas, "persona") == ["a terse engineer", "a retiree new to apps"]


@pytest.mark.parametrize("content, problem", [
    ("", "no domains in file"),
    ("# only a comment\n", "no domains in file"),
    ('{"persona": "x"}\n', "line 1: a JSON object needs a 'domain' or 'text' field"),
    ('{"domain": 3}\n', "line 1: the domain must be a non-empty string"),
    ('ok\n{"domain": \n', "line 2 is not valid JSON"),
])
def test_bad_seed_files_name_the_line(tmp_path, content, problem):
    path = tmp_path / "d.txt"
    path.write_text(content)
    with pytest.raises(SeedFileError, match=problem):
        load_seed_lines(path, "domain")
    with pytest.raises(SeedFileError, match="cannot read"):
        load_seed_lines(tmp_path / "missing.txt", "domain")


def test_tool_sets_one_per_file_sorted(tools_dir, tmp_path):
    sets = load_tool_sets(tools_dir)
    assert [s.name for s in sets] == ["bank.json", "hotel.json", "zoo.jsonl"]
    assert [t.name for t in sets[1].tools] == ["search_rooms", "create_booking"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SeedFileError, match="no tool files"):
        load_tool_sets(empty)
    with pytest.raises(SeedFileError, match="not a directory"):
        load_tool_sets(tmp_path / "nope")


def test_tool_set_choice_is_spread_and_reproducible():
    picks = [tool_set_index(7, i, 3) for i in range(300)]
    assert picks == [tool_set_index(7, i, 3) for i in range(300)]
    assert picks != [tool_set_index(8, i, 3) for i in range(300)]
    assert min(Counter(picks).values()) > 70


def _generate(run_cli, db, *extra):
    result = run_cli("generate", "--backend", "scripted", "--n", "9", "--seed", "5", "--db", str(db), "--quiet", *extra)
    assert result.code == 0, result.err
    manifest = Manifest(db)
    try:
        return manifest.rows()
    finally:
        manifest.close()


def test_cli_samples_domains_personas_and_tool_sets_from_files(tmp_path, run_cli, tools_dir):
    domains = tmp_path / "domains.txt"
    domains.write_text("\n".join(f"domain number {i}" for i in range(40)) + "\n")
    personas = tmp_path / "personas.jsonl"
    personas.write_text("".join(json.dumps({"persona": f"persona {i}"}) + "\n" for i in range(5)))
    args = ("--domains-file", str(domains), "--personas-file", str(personas), "--tools-dir", str(tools_dir))
    first = _generate(run_cli, tmp_path / "a.db", *args)
    second = _generate(run_cli, tmp_path / "b.db", *args)
    assert [r["domain"] for r in first] == [r["domain"] for r in second]  # same --seed, same plan
    assert len({r["domain"] for r in first}) >= 5
    assert all(r["domain"].startswith("domain number ") for r in first)
    sets = {frozenset(t.name for t in s.tools) for s in load_tool_sets(tools_dir)}
    seen = set()
    for row in first:
        state = load_state(tmp_path / "a.db", row["thread_id"])
        assert state.scenario.persona.startswith("persona ")
        seeded = frozenset(t.name for t in state.tools if t.source == "seed")
        assert seeded in sets
        seen.add(seeded)
        assert "tools" in json.loads(row["initial_state"])  # each row keeps its own set, for resume
    assert len(seen) >= 2


def test_cli_refuses_bad_seed_inputs_with_one_line(tmp_path, run_cli, tools_dir):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    for args, needle in [
        (("--domains-file", str(empty)), "no domains in file"),
        (("--tools-dir", str(tmp_path / "missing")), "not a directory"),
        (("--tools-dir", str(tools_dir), "--tools", str(tools_dir / "bank.json")), "--tools or --tools-dir"),
    ]:
        db = tmp_path / "never.db"
        result = run_cli("generate", "--backend", "scripted", "--n", "2", "--db", str(db), *args)
        assert result.code == 2, (args, result.err)
        assert result.err.startswith("dialogforge: error:") and needle in result.err and result.err.count("\n") == 1
        assert not db.exists()
