"""Injection payloads in every argument of every tool change nothing they should not.

Each clinic tool is called with valid arguments where one argument at a time
is replaced by a payload; twice: once under the tool's real JSON Schema, and
once under a permissive schema, so that the payload reaches SQLite binding
itself. After every call the schema is intact, a read changed nothing, a
write changed at most its one row of its own table, and at the end the
source database is byte-identical.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from dialogforge.sqltools import SqlDomain, TrajectoryDatabase, execute_tool, load_sql_domain
from dialogforge.sqltools.build import build_example
from dialogforge.records import SqlKind, ToolSpec

pytestmark = pytest.mark.security  # attack cases: also run as one suite, python -m pytest -m security

PAYLOADS = [
    "'; DROP TABLE patients; --",
    "1 OR 1=1",
    "1; DELETE FROM appointments",
    "') UNION SELECT sql, sql, sql, sql, sql, sql, sql FROM sqlite_master --",
    '" OR ""="',
    "%' OR '1'='1",
    ":patient_id",
    "x'; ATTACH DATABASE 'pwned.db' AS pwned; --",
    "load_extension('/tmp/evil.so')",
    "a\x00b'; DROP TABLE doctors; --",
    "x" * 2_000_000,
    "y" * 100_000,
    "\ud800",
    2**63,
    -(2**63) - 1,
    1e308,
    -1,
    True,
    None,
    [1, "; DROP TABLE doctors"],
    {"$ne": None},
]
BASE_ARGS = {
    "search_doctors": {},
    "search_patients": {"full_name": "Chen"},
    "get_patient": {"patient_id": 3},
    "search_appointments": {"patient_id": 3},
    "search_doctor_schedule": {"doctor_id": 3, "date": "2026-01-19"},
    "create_appointment": {"patient_id": 3, "doctor_id": 4, "starts_at": "2026-01-23 09:00", "duration_minutes": 20, "reason": "check-up"},
    "update_appointment_time": {"appointment_id": 14, "starts_at": "2026-01-22 14:30"},
    "update_appointment_status": {"appointment_id": 7, "status": "cancelled"},
    "update_patient_contact": {"patient_id": 2, "phone": "+1-555-0199"},
    "create_patient": {"full_name": "Zoe Park", "date_of_birth": "1990-01-01", "phone": "+1-555-0177"},
}
# Arguments a tool stores as given: a payload that was written must read back verbatim.
VERBATIM = {
    "create_patient": {"full_name", "date_of_birth", "phone", "email", "insurance_provider"},
    "update_patient_contact": {"phone", "email"},
    "create_appointment": {"reason"},
}
TARGET = {
    "create_appointment": "appointments",
    "update_appointment_time": "appointments",
    "update_appointment_status": "appointments",
    "update_patient_contact": "patients",
    "create_patient": "patients",
}


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> SqlDomain:
    out = tmp_path_factory.mktemp("clinic")
    return load_sql_domain(build_example("clinic", out), out / "clinic.tools.json")


@pytest.fixture(scope="module")
def source_hash(clinic: SqlDomain) -> str:
    return hashlib.sha256(clinic.db_path.read_bytes()).hexdigest()


def permissive(spec: ToolSpec) -> ToolSpec:
    """The same statement, but a schema that lets any value through to binding."""
    params = spec.function.parameters
    loose = {"type": "object", "properties": {name: {} for name in params["properties"]}, "required": params.get("required", [])}
    return spec.model_copy(update={"function": spec.function.model_copy(update={"parameters": loose})})


def snapshot(path: Path) -> tuple[list[str], dict[str, dict[int, dict]]]:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        schema = [row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE name NOT LIKE '_dialogforge%' ORDER BY name")]
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_dialogforge%'")]
        data = {t: {row[0]: dict(row) for row in conn.execute(f'SELECT rowid AS _rowid, * FROM "{t}"')} for t in tables}
    finally:
        conn.close()
    return schema, data


def changed_rows(before: dict[int, dict], after: dict[int, dict]) -> set[int]:
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


@pytest.mark.parametrize("mode", ["strict", "permissive"])
@pytest.mark.parametrize("tool_name", sorted(BASE_ARGS))
def test_payloads_in_every_argument(clinic: SqlDomain, source_hash: str, tmp_path: Path, tool_name: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a successful ATTACH 'pwned.db' would create it here
    tools = clinic.tools if mode == "strict" else [permissive(t) for t in clinic.tools]
    spec = next(t for t in tools if t.name == tool_name)
    with TrajectoryDatabase.open(clinic.db_path, tmp_path / "w", f"{tool_name}-{mode}", [], tools=tools) as db:
        for argument in spec.function.parameters["properties"]:
            for payload in PAYLOADS:
                _call_and_check(db, spec, argument, payload)
        assert sqlite3.connect(db.path).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not (tmp_path / "pwned.db").exists()
    assert hashlib.sha256(clinic.db_path.read_bytes()).hexdigest() == source_hash


def _call_and_check(db: TrajectoryDatabase, spec: ToolSpec, argument: str, payload: object) -> None:
    args = {**BASE_ARGS[spec.name], argument: payload}
    schema_before, before = snapshot(db.path)
    outcome = execute_tool(db, spec, args)
    schema_after, after = snapshot(db.path)
    where = f"{spec.name}({', '.join(f'{k}={str(v)[:40]!r}' for k, v in args.items())})"
    assert schema_after == schema_before, where
    assert outcome.is_error == (outcome.error is not None), where
    changes = {table: changed_rows(before[table], after[table]) for table in before}
    if outcome.is_error or spec.sql.kind is SqlKind.SELECT:
        assert not any(changes.values()), where
        return
    target = TARGET[spec.name]
    assert all(not rows for table, rows in changes.items() if table != target), where
    # An UPDATE that rewrites a value with itself matches a row without changing it.
    assert len(changes[target]) <= outcome.result["rows_affected"] <= 1, where
    assert (outcome.write is not None) == (outcome.result["rows_affected"] == 1), where
    if changes[target] and argument in VERBATIM.get(spec.name, ()) and isinstance(payload, str):
        (row_id,) = changes[target]
        assert after[target][row_id][argument] == payload, where
