"""Domains from files, the task proposer's views, schema drafts and the example builder."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from dialogforge.sqltools import (
    SqlDomainError,
    SqlTemplateError,
    draft_tools_from_schema,
    execute_tool,
    load_sql_domain,
    sample_rows,
    schema_summary,
    validate_tool,
)
from dialogforge.sqltools.build import build_example, example_names
from dialogforge.records import SqlKind
from dialogforge.cli import build_example_dbs

EXAMPLES = ["bookstore", "clinic", "telecom"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("examples")
    build_example_dbs.main(out)
    return out


def test_the_project_ships_three_examples() -> None:
    assert example_names() == EXAMPLES


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_loads_with_mixed_valid_tools(built: Path, name: str) -> None:
    domain = load_sql_domain(built / f"{name}.sqlite", built / f"{name}.tools.json")
    assert 6 <= len(domain.tools) <= 10
    kinds = {tool.sql.kind for tool in domain.tools}
    assert SqlKind.SELECT in kinds and len(kinds) >= 2
    for tool in domain.tools:
        assert tool.name.split("_")[0] in {"get", "search", "create", "update", "delete"}
        assert tool.function.description and tool.result_schema.get("type") in {"array", "object"}
        validate_tool(tool, schema=domain.schema_sql)


def test_building_twice_is_idempotent(built: Path) -> None:
    before = {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in built.iterdir()}
    assert build_example_dbs.cli([str(built)]) == 0
    after = {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in built.iterdir()}
    assert after == before
    assert sorted(before) == sorted(f"{n}{ext}" for n in EXAMPLES for ext in (".sqlite", ".tools.json"))


def test_the_builder_cli_reports_errors_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert build_example_dbs.cli([str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write to") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        build_example_dbs.cli(["--help"])
    assert "example: python -m dialogforge.cli.build_example_dbs" in capsys.readouterr().out


def test_a_domain_with_one_bad_tool_is_refused(built: Path, tmp_path: Path) -> None:
    tools = json.loads((built / "bookstore.tools.json").read_text())
    tools[3]["sql"]["statement"] = "SELECT * FROM orders WHERE customer_id = :customer_id; DELETE FROM orders"
    bad = tmp_path / "tools.json"
    bad.write_text(json.dumps(tools))
    with pytest.raises(SqlTemplateError, match="tool 'search_orders': must be exactly one statement"):
        load_sql_domain(built / "bookstore.sqlite", bad)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not JSON"),
        ("[]", "non-empty JSON list"),
        ('[{"function": {"name": "get_x"}}]', "has no 'sql' binding"),
        ('[{"function": {"name": "bad name!"}, "sql": {"kind": "SELECT", "statement": "SELECT 1"}}]', "tool #0: function.name"),
        ('[{"function": {"name": "get_x"}, "sql": {"kind": "SELECT", "statement": "SELECT 1"}, "result_schema": {"type": 7}}]', "result_schema is invalid"),
        ('[{"function": {"name": "get_x"}, "sql": {"kind": "SELECT", "statement": "SELECT 1"}},'
         ' {"function": {"name": "get_x"}, "sql": {"kind": "SELECT", "statement": "SELECT 2"}}]', "more than once"),
    ],
)
def test_unusable_tools_files_are_refused(built: Path, tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "tools.json"
    path.write_text(content)
    with pytest.raises(SqlDomainError, match=problem):
        load_sql_domain(built / "bookstore.sqlite", path)


def test_unusable_databases_are_refused(built: Path, tmp_path: Path) -> None:
    tools = built / "bookstore.tools.json"
    with pytest.raises(SqlDomainError, match="database not found"):
        load_sql_domain(tmp_path / "missing.sqlite", tools)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"definitely not sqlite" * 64)
    with pytest.raises(SqlDomainError, match="not a usable SQLite database"):
        load_sql_domain(junk, tools)


def test_schema_summary_shows_the_domain_and_hides_internals(built: Path, tmp_path: Path) -> None:
    domain = load_sql_domain(built / "bookstore.sqlite", built / "bookstore.tools.json")
    summary = schema_summary(domain.db_path)
    assert "CREATE TABLE books" in summary and "CREATE TRIGGER order_items_reserve_stock" in summary
    with domain.open_trajectory(tmp_path / "w", "k", []) as db:
        copy_summary = schema_summary(db.path)
    assert copy_summary == summary  # the copy's bookkeeping table is not part of the domain


def test_sample_rows_give_a_limited_reproducible_view(built: Path) -> None:
    db = built / "clinic.sqlite"
    first = sample_rows(db)
    assert set(first) == {"doctors", "patients", "appointments"}
    assert all(len(rows) == 3 for rows in first.values())
    assert first["doctors"][0] == {"doctor_id": 1, "name": "Dr. Elena Novak", "specialty": "general practice", "room": "A1", "accepts_new_patients": 1}
    assert sample_rows(db, per_table=2, seed=5) == sample_rows(db, per_table=2, seed=5)
    seeds = {json.dumps(sample_rows(db, per_table=2, seed=s), sort_keys=True) for s in range(6)}
    assert len(seeds) > 1
    assert len(sample_rows(db, per_table=50)["doctors"]) == 6


@pytest.mark.parametrize("name", EXAMPLES)
def test_drafts_from_the_schema_validate_and_run(built: Path, tmp_path: Path, name: str) -> None:
    source = built / f"{name}.sqlite"
    drafts = draft_tools_from_schema(source)
    assert drafts == draft_tools_from_schema(source)  # deterministic
    names = [tool.name for tool in drafts]
    assert len(names) == len(set(names))
    summary = schema_summary(source)
    for tool in drafts:
        validate_tool(tool, schema=summary)
    tools_file = tmp_path / "drafts.json"
    tools_file.write_text(json.dumps([t.model_dump(mode="json") for t in drafts]))
    domain = load_sql_domain(source, tools_file)
    with domain.open_trajectory(tmp_path / "w", name, []) as db:
        for tool in drafts:
            if tool.name.startswith("search_"):
                outcome = execute_tool(db, tool, {})
                assert not outcome.is_error and outcome.result, tool.name


def test_drafts_cover_crud_with_typed_parameters(tmp_path: Path) -> None:
    src = tmp_path / "s.sqlite"
    conn = sqlite3.connect(src)
    conn.executescript(
        "CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, status TEXT DEFAULT 'new',"
        " created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, weight REAL, photo BLOB);"
        "CREATE TABLE log (line TEXT);"
    )
    conn.close()
    drafts = {tool.name: tool for tool in draft_tools_from_schema(src)}
    assert sorted(drafts) == ["create_category", "create_log", "delete_category", "get_category", "search_categories", "search_log_list", "update_category"]
    create = drafts["create_category"]
    assert create.function.parameters["required"] == ["name", "created"]  # CURRENT_TIMESTAMP would not replay
    assert create.function.parameters["properties"]["weight"]["type"] == "number"
    assert "coalesce(:status, 'new')" in create.sql.statement
    rows = drafts["get_category"].result_schema["items"]["properties"]
    assert rows["id"] == {"type": "integer"} and rows["weight"] == {"type": ["number", "null"]} and rows["photo"] == {}
