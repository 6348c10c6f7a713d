"""Template validation: what a tool's SQL may be, and what is refused at load."""

from __future__ import annotations

import pytest

from dialogforge.sqltools import SqlTemplateError, validate_template, validate_tool
from dialogforge.sqltools.sqltext import main_verb, named_parameters, statement_count, tokenize
from dialogforge.records import FunctionSpec, SqlBinding, SqlKind, ToolSpec

SCHEMA = """
CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, note TEXT);
CREATE TABLE audit (msg TEXT);
CREATE TRIGGER t_audit AFTER DELETE ON t BEGIN INSERT INTO audit VALUES (old.name); END;
CREATE VIEW names AS SELECT name FROM t;
CREATE TABLE counted (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
"""
PARAMS = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "note": {"type": "string"}},
}


def check(kind: str, statement: str, params: dict = PARAMS) -> None:
    validate_template(SqlBinding(kind=SqlKind(kind), statement=statement), params, schema=SCHEMA, tool="probe")


@pytest.mark.parametrize(
    ("kind", "statement"),
    [
        ("SELECT", "SELECT * FROM t WHERE id = :id"),
        ("SELECT", "SELECT * FROM t WHERE name = ';' OR name = :name;"),
        ("SELECT", "SELECT * FROM t WHERE note = ':id -- not a parameter' AND id = :id"),
        ("SELECT", "SELECT count(*) AS n, group_concat(name, '; ') FROM t -- trailing comment"),
        ("SELECT", "SELECT name FROM names WHERE name LIKE '%' || :name || '%'"),
        ("SELECT", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) SELECT x FROM c WHERE x > :id"),
        ("INSERT", "INSERT INTO t (name, note) VALUES (:name, :note)"),
        ("INSERT", "INSERT INTO t (name, note) VALUES (:name, :note) ON CONFLICT (name) DO UPDATE SET note = excluded.note"),
        ("INSERT", "INSERT INTO t (name) SELECT :name WHERE NOT EXISTS (SELECT 1 FROM t WHERE name = :name) RETURNING id"),
        ("UPDATE", "UPDATE t SET note = coalesce(:note, note) WHERE id = :id"),
        ("UPDATE", "WITH old AS (SELECT id FROM t WHERE note IS NULL) UPDATE t SET note = :note WHERE id IN (SELECT id FROM old)"),
        ("DELETE", "DELETE FROM t WHERE id = :id"),  # fires t_audit, the schema's own trigger
        ("INSERT", "INSERT INTO counted (name) VALUES (:name)"),  # AUTOINCREMENT keeps sqlite_sequence itself
    ],
)
def test_accepts_templates_of_their_declared_kind(kind: str, statement: str) -> None:
    check(kind, statement)


@pytest.mark.parametrize(
    ("kind", "statement", "problem"),
    [
        ("SELECT", "SELECT * FROM t WHERE id = :id; DROP TABLE t", "exactly one statement"),
        ("SELECT", "SELECT * FROM t WHERE name = ';'; SELECT 1", "exactly one statement"),
        ("SELECT", "SELECT 1;;", "exactly one statement"),
        ("SELECT", "   ", "empty"),
        ("SELECT", "ATTACH DATABASE '/tmp/elsewhere.db' AS other", "ATTACH"),
        ("SELECT", "DETACH DATABASE other", "DETACH"),
        ("SELECT", "PRAGMA writable_schema = ON", "PRAGMA"),
        ("SELECT", "CREATE TABLE x (a)", "CREATE"),
        ("DELETE", "DROP TABLE t", "DROP"),
        ("UPDATE", "ALTER TABLE t ADD COLUMN extra TEXT", "ALTER"),
        ("SELECT", "VACUUM", "VACUUM"),
        ("SELECT", "BEGIN IMMEDIATE", "BEGIN"),
        ("SELECT", "SELECT load_extension('/tmp/evil.so') FROM t WHERE id = :id", "LOAD_EXTENSION"),
        # Quoted, the name slips past any keyword check; the authorizer still sees the call.
        ("SELECT", "SELECT \"load_extension\"('/tmp/evil.so') WHERE :id IS NULL", "load_extension"),
        ("SELECT", "SELECT readfile('/etc/passwd') WHERE :id IS NULL", "readfile"),
        ("SELECT", "SELECT zeroblob(1000000000) WHERE :id IS NULL", "zeroblob"),
        ("SELECT", "WITH x AS (SELECT 1) DELETE FROM t WHERE id = :id", "declared SELECT but the statement is DELETE"),
        ("DELETE", "SELECT * FROM t WHERE id = :id", "declared DELETE"),
        ("UPDATE", "INSERT INTO t (name) VALUES (:name)", "declared UPDATE"),
        ("INSERT", "WITH x AS (SELECT 1) UPDATE t SET note = :note", "declared INSERT"),
        ("SELECT", "SELECT * FROM t WHERE id = :nope", "not in the tool's parameters schema"),
        ("SELECT", "SELECT * FROM t WHERE id = ?", "only :named parameters"),
        ("SELECT", "SELECT * FROM t WHERE id = ?1", "only :named parameters"),
        ("SELECT", "SELECT * FROM t WHERE id = @id", "only :named parameters"),
        ("SELECT", "SELECT * FROM t WHERE id = $id", "only :named parameters"),
        ("SELECT", "SELECT sql FROM sqlite_master WHERE name = :name", "sqlite_master"),
        ("SELECT", "SELECT name FROM pragma_table_info('t') WHERE :id IS NULL", "sqlite_master"),
        ("SELECT", "SELECT * FROM t WHERE name = 'unterminated AND id = :id", "unterminated"),
        ("SELECT", "SELECT * FROM missing WHERE id = :id", "no such table"),
        ("INSERT", "INSERT INTO t (name) VALUES (hex(random())) RETURNING :id", "random"),
        ("INSERT", "INSERT INTO t (name, note) VALUES (:name, datetime('now'))", "'now'"),
        ("UPDATE", "UPDATE t SET note = date() WHERE id = :id", "date()"),
        ("UPDATE", "UPDATE t SET note = CURRENT_TIMESTAMP WHERE id = :id", "current_timestamp"),
        ("UPDATE", "UPDATE sqlite_sequence SET seq = 0 WHERE name = :name", "sqlite_sequence"),
    ],
)
def test_refuses_malicious_or_wrong_templates(kind: str, statement: str, problem: str) -> None:
    with pytest.raises(SqlTemplateError) as refused:
        check(kind, statement)
    message = str(refused.value)
    assert "'probe'" in message and "\n" not in message
    assert problem.lower() in message.lower()


def test_required_parameters_must_be_used() -> None:
    params = {**PARAMS, "required": ["id", "name"]}
    with pytest.raises(SqlTemplateError, match="required parameter 'name' is not used"):
        check("SELECT", "SELECT * FROM t WHERE id = :id", params)


def test_parameters_must_be_an_object_schema() -> None:
    with pytest.raises(SqlTemplateError, match="type 'object'"):
        check("SELECT", "SELECT * FROM t", {"type": "array"})
    with pytest.raises(SqlTemplateError, match="invalid"):
        check("SELECT", "SELECT * FROM t WHERE id = :id", {"type": "object", "properties": {"id": {"type": 5}}})


def test_validate_tool_refuses_a_spec_without_sql() -> None:
    spec = ToolSpec(function=FunctionSpec(name="get_thing"))
    with pytest.raises(SqlTemplateError, match="'get_thing': has no SQL"):
        validate_tool(spec, schema=SCHEMA)


def test_tokenizer_ignores_quoted_text_and_comments() -> None:
    sql = "SELECT ':fake', \"a;b\", [c;d] /* ; :x */ FROM t -- ; :y\nWHERE id = :id AND name = :name"
    tokens = tokenize(sql)
    assert named_parameters(tokens) == ["id", "name"]
    assert statement_count(sql, tokens) == 1
    assert main_verb(tokenize("WITH a(x) AS (SELECT 1), b AS (SELECT 2) INSERT INTO t SELECT * FROM a")) == "INSERT"
