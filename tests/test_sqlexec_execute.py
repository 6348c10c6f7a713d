"""Executing tool calls: verbatim results, caps, limits, and errors as outcomes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from dialogforge.sqltools import ExecLimits, SqlDomain, TrajectoryDatabase, execute_tool, load_sql_domain
from dialogforge.sqltools.build import build_example
from dialogforge.records import FunctionSpec, SqlBinding, SqlKind, ToolSpec
from dialogforge.tool_checks import first_violation


@pytest.fixture
def telecom(tmp_path: Path) -> SqlDomain:
    db = build_example("telecom", tmp_path / "src")
    return load_sql_domain(db, tmp_path / "src" / "telecom.tools.json")


def tool(name: str, kind: str, statement: str, properties: dict | None = None, required: list | None = None) -> ToolSpec:
    params = {"type": "object", "properties": properties or {}, "required": required or []}
    return ToolSpec(function=FunctionSpec(name=name, parameters=params), sql=SqlBinding(kind=SqlKind(kind), statement=statement))


def test_select_results_are_the_rows_verbatim(telecom: SqlDomain, tmp_path: Path) -> None:
    with telecom.open_trajectory(tmp_path / "w", "k", []) as db:
        outcome = execute_tool(db, telecom.tool("search_lines"), {"customer_id": 5})
    source = sqlite3.connect(telecom.db_path)
    source.row_factory = sqlite3.Row
    expected = [dict(r) for r in source.execute(
        "SELECT l.line_id, l.customer_id, l.phone_number, l.plan_id, p.name AS plan_name, p.data_gb, l.data_used_gb,"
        " l.status, l.activated_on, l.roaming_enabled FROM lines l JOIN plans p USING (plan_id)"
        " WHERE l.customer_id = 5 ORDER BY l.line_id")]
    assert not outcome.is_error and outcome.write is None
    assert outcome.result == expected
    assert [type(v) for v in outcome.result[0].values()] == [int, int, str, str, str, int, float, str, str, int]


def test_nulls_blobs_infinities_and_duplicate_columns(tmp_path: Path) -> None:
    src = tmp_path / "odd.sqlite"
    conn = sqlite3.connect(src)
    conn.executescript("CREATE TABLE a (id INTEGER PRIMARY KEY, v); CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INT);")
    conn.execute("INSERT INTO a VALUES (1, ?), (2, NULL), (3, 1e999), (4, 2.5)", (b"\x00\xff",))
    conn.execute("INSERT INTO b VALUES (10, 1)")
    conn.commit()
    conn.close()
    spec = tool("search_pairs", "SELECT", "SELECT a.id, a.v, b.id FROM a LEFT JOIN b ON b.a_id = a.id ORDER BY a.id")
    with TrajectoryDatabase.open(src, tmp_path / "w", "k", [], tools=[spec]) as db:
        rows = execute_tool(db, spec, {}).result
    assert rows == [
        {"id": 1, "v": "X'00FF'", "id_2": 10},
        {"id": 2, "v": None, "id_2": None},
        {"id": 3, "v": "Infinity", "id_2": None},
        {"id": 4, "v": 2.5, "id_2": None},
    ]


def test_rows_past_the_cap_are_cut_with_a_note(telecom: SqlDomain, tmp_path: Path) -> None:
    spec = telecom.tool("search_bills")
    limits = ExecLimits(max_rows=2)
    with telecom.open_trajectory(tmp_path / "w", "k", [], limits=limits) as db:
        capped = execute_tool(db, spec, {"customer_id": 3})
        exact = execute_tool(db, spec, {"customer_id": 1})
    # Still the list of rows the result schema promises, with the count of all rows beside it.
    assert first_violation(spec.result_schema, capped.result) is None and capped.total_rows == 3
    assert [bill["period"] for bill in capped.result] == ["2025-12", "2025-11"]
    assert capped.content().endswith("\n[result truncated: 2 of 3 rows shown; narrow the query to see the rest]")
    assert json.loads(capped.content().split("\n[")[0]) == capped.result
    assert isinstance(exact.result, list) and len(exact.result) == 2 and exact.total_rows is None  # at the cap: no note
    assert json.loads(exact.content()) == exact.result


def test_a_runaway_query_is_aborted_as_a_tool_error(tmp_path: Path) -> None:
    src = tmp_path / "s.sqlite"
    sqlite3.connect(src).execute("CREATE TABLE t (x)").connection.close()
    spec = tool("search_forever", "SELECT",
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c WHERE x > :n",
                {"n": {"type": "integer"}})
    with TrajectoryDatabase.open(src, tmp_path / "w", "k", [], tools=[spec], limits=ExecLimits(max_vm_steps=200_000)) as db:
        outcome = execute_tool(db, spec, {"n": 0})
        assert outcome.is_error and "exceeded the limit of 200000 execution steps" in outcome.error
        assert outcome.result is None and outcome.write is None
        ok = tool("get_one", "SELECT", "SELECT count(*) AS n FROM t")
        db.tools["get_one"] = ok
        assert execute_tool(db, ok, {}).result == [{"n": 0}]  # the connection still works


def test_sql_errors_and_bad_arguments_become_error_outcomes(telecom: SqlDomain, tmp_path: Path) -> None:
    with telecom.open_trajectory(tmp_path / "w", "k", []) as db:
        taken = execute_tool(db, telecom.tool("create_line"), {
            "customer_id": 1, "phone_number": "555-123-2002", "plan_id": "BASIC_5", "activated_on": "2026-01-15"})
        assert taken.is_error and taken.error == "SQL error: UNIQUE constraint failed: lines.phone_number"
        assert taken.write is None and db.applied == 0
        assert taken.content().startswith("Error: SQL error")
        missing = execute_tool(db, telecom.tool("get_customer"), {})
        assert missing.is_error and "'customer_id' is a required property" in missing.error
        extra = execute_tool(db, telecom.tool("get_customer"), {"customer_id": 1, "debug": True})
        assert extra.is_error and "Additional properties" in extra.error
        nested = execute_tool(db, telecom.tool("get_customer"), {"customer_id": {"$gt": 0}})
        assert nested.is_error


def test_optional_arguments_left_out_bind_as_null(telecom: SqlDomain, tmp_path: Path) -> None:
    with telecom.open_trajectory(tmp_path / "w", "k", []) as db:
        everything = execute_tool(db, telecom.tool("search_plans"), {}).result
        roaming = execute_tool(db, telecom.tool("search_plans"), {"needs_roaming": True}).result
    assert [p["plan_id"] for p in everything] == ["BASIC_5", "SMART_20", "TRAVEL_30", "UNLIMITED", "FAMILY_50"]
    assert [p["plan_id"] for p in roaming] == ["TRAVEL_30", "UNLIMITED"]


def test_writes_report_rows_and_ids_and_schema_triggers_run(telecom: SqlDomain, tmp_path: Path) -> None:
    with telecom.open_trajectory(tmp_path / "w", "k", []) as db:
        for bill_id in (5, 6):
            paid = execute_tool(db, telecom.tool("update_bill_paid"), {"bill_id": bill_id, "paid_on": "2026-01-15"})
            assert paid.result == {"rows_affected": 1, "last_row_id": None}
        customer = execute_tool(db, telecom.tool("get_customer"), {"customer_id": 3}).result[0]
        assert customer["account_status"] == "active"  # reinstated by the schema's trigger
        line = execute_tool(db, telecom.tool("update_line_status"), {"line_id": 4, "status": "active"})
        assert line.result["rows_affected"] == 1
        created = execute_tool(db, telecom.tool("create_line"), {
            "customer_id": 3, "phone_number": "555-123-2077", "plan_id": "SMART_20", "activated_on": "2026-01-15"})
        assert created.result == {"rows_affected": 1, "last_row_id": 13}
        assert db.applied == 4


def test_returning_rows_come_back_with_the_write(tmp_path: Path) -> None:
    src = tmp_path / "s.sqlite"
    sqlite3.connect(src).execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)").connection.close()
    spec = tool("create_t", "INSERT", "INSERT INTO t (name) VALUES (:name) RETURNING id, name",
                {"name": {"type": "string"}}, ["name"])
    with TrajectoryDatabase.open(src, tmp_path / "w", "k", [], tools=[spec]) as db:
        outcome = execute_tool(db, spec, {"name": "ada"})
    assert outcome.result == {"rows_affected": 1, "last_row_id": 1, "returning": [{"id": 1, "name": "ada"}]}


def test_only_the_databases_own_tools_run(telecom: SqlDomain, tmp_path: Path) -> None:
    forged = telecom.tool("get_customer").model_copy(
        update={"sql": SqlBinding(kind=SqlKind.SELECT, statement="SELECT * FROM bills WHERE customer_id = :customer_id")})
    with telecom.open_trajectory(tmp_path / "w", "k", []) as db:
        outcome = execute_tool(db, forged, {"customer_id": 1})
    assert outcome.is_error and "not one of this database's tools" in outcome.error


def test_unvalidated_templates_are_still_stopped_at_run_time(telecom: SqlDomain, tmp_path: Path) -> None:
    """Defence in depth: the kind's authorizer guards every execution, not only loading."""
    sneaky = tool("search_sneaky", "SELECT", "DELETE FROM bills WHERE bill_id = :bill_id", {"bill_id": {"type": "integer"}})
    pragma = tool("search_pragma", "SELECT", "PRAGMA writable_schema = ON")
    with TrajectoryDatabase.open(telecom.db_path, tmp_path / "w", "k", [], tools=[*telecom.tools, sneaky, pragma]) as db:
        for spec, args in ((sneaky, {"bill_id": 1}), (pragma, {})):
            outcome = execute_tool(db, spec, args)
            assert outcome.is_error and "not authorized" in outcome.error
        assert len(execute_tool(db, telecom.tool("search_bills"), {"customer_id": 1}).result) == 2


def test_pathological_like_patterns_are_refused(telecom: SqlDomain, tmp_path: Path) -> None:
    with telecom.open_trajectory(tmp_path / "w", "k", []) as db:
        spec = tool("search_customers", "SELECT", "SELECT customer_id FROM customers WHERE full_name LIKE '%' || :name || '%'",
                    {"name": {"type": "string"}})
        db.tools[spec.name] = spec
        outcome = execute_tool(db, spec, {"name": "%_" * 2000})
        assert outcome.is_error and "pattern too complex" in outcome.error
        assert execute_tool(db, spec, {"name": "Smith"}).result == [{"customer_id": 1}]
