"""Validation of a tool's SQL template, once, before anything runs it.

A template is accepted only if it is a single statement of its declared
kind, uses only ``:named`` parameters that its JSON Schema declares, and,
compiled against the domain's schema under the kind's authorizer, performs
nothing beyond what the kind needs. The textual checks give clear messages;
the authorizer is what makes the guarantee hold.
"""

from __future__ import annotations

import sqlite3

from jsonschema import SchemaError
from jsonschema.validators import validator_for

from dialogforge.sqltools import sqltext
from dialogforge.sqltools.connect import apply_limits, policy_names
from dialogforge.sqltools.errors import SqlTemplateError, SqlTextError, one_line
from dialogforge.sqltools.policy import CLOCK_FUNCTIONS, StatementPolicy
from dialogforge.records import SqlBinding, SqlKind, ToolSpec

# Verbs that may start a statement of each kind (a WITH clause may precede).
KIND_VERBS = {
    SqlKind.SELECT: frozenset({"SELECT", "VALUES"}),
    SqlKind.INSERT: frozenset({"INSERT", "REPLACE"}),
    SqlKind.UPDATE: frozenset({"UPDATE"}),
    SqlKind.DELETE: frozenset({"DELETE"}),
}
# Keywords no tool statement needs; the authorizer denies them too, but a
# textual hit gives the clearer message.
FORBIDDEN_WORDS = frozenset(
    {"ATTACH", "DETACH", "PRAGMA", "VACUUM", "BEGIN", "COMMIT", "SAVEPOINT",
     "CREATE", "DROP", "ALTER", "REINDEX", "ANALYZE", "LOAD_EXTENSION"}
)


def scratch_schema(schema_sql: str) -> sqlite3.Connection:
    """An empty in-memory database with the domain's schema, to compile against."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.executescript(schema_sql)
    except sqlite3.Error as error:
        conn.close()
        raise SqlTemplateError(f"the domain schema does not load: {one_line(str(error))}") from error
    apply_limits(conn, 1_000_000)
    return conn


def validate_template(
    binding: SqlBinding,
    parameters_schema: dict,
    *,
    schema: sqlite3.Connection | str,
    tool: str = "<unnamed>",
) -> None:
    """Refuse (``SqlTemplateError``) a template that could do more than its kind.

    ``schema`` is a scratch connection from ``scratch_schema`` (reuse it
    across the tools of a domain) or the schema's SQL text.
    """
    try:
        tokens = sqltext.tokenize(binding.statement)
    except SqlTextError as error:
        raise _refused(tool, str(error)) from error
    problem = (
        _schema_problem(parameters_schema)
        or _shape_problem(binding, tokens)
        or _parameter_problem(tokens, parameters_schema)
        or _determinism_problem(binding.kind, tokens)
    )
    if problem:
        raise _refused(tool, problem)
    if isinstance(schema, str):
        conn = scratch_schema(schema)
        try:
            problem = _compile_problem(binding, tokens, conn)
        finally:
            conn.close()
    else:
        problem = _compile_problem(binding, tokens, schema)
    if problem:
        raise _refused(tool, problem)


def validate_tool(spec: ToolSpec, *, schema: sqlite3.Connection | str) -> None:
    """``validate_template`` for a whole spec; a spec without SQL is refused."""
    if spec.sql is None:
        raise _refused(spec.name, "has no SQL statement")
    validate_template(spec.sql, spec.function.parameters, schema=schema, tool=spec.name)


def _refused(tool: str, problem: str) -> SqlTemplateError:
    return SqlTemplateError(one_line(f"tool {tool!r}: {problem}"))


def _schema_problem(parameters_schema: dict) -> str | None:
    if not isinstance(parameters_schema, dict):
        return "parameters must be a JSON Schema object"
    if parameters_schema.get("type", "object") != "object":
        return "parameters schema must have type 'object'"
    if not isinstance(parameters_schema.get("properties", {}), dict):
        return "parameters schema 'properties' must be an object"
    try:
        validator_for(parameters_schema).check_schema(parameters_schema)
    except SchemaError as error:
        return f"parameters schema is invalid: {error.message}"
    return None


def _shape_problem(binding: SqlBinding, tokens: list[sqltext.Token]) -> str | None:
    count = sqltext.statement_count(binding.statement, tokens)
    if count == 0:
        return "the statement is empty"
    if count > 1:
        return f"must be exactly one statement, found {count}"
    forbidden = sorted(set(sqltext.words(tokens)) & FORBIDDEN_WORDS)
    if forbidden:
        return f"uses forbidden keyword {forbidden[0]}"
    verb = sqltext.main_verb(tokens)
    if verb not in KIND_VERBS[binding.kind]:
        return f"declared {binding.kind} but the statement is {verb or 'not recognised'}"
    return None


def _parameter_problem(tokens: list[sqltext.Token], parameters_schema: dict) -> str | None:
    others = sqltext.other_parameters(tokens)
    if others:
        return f"uses parameter {others[0]}; only :named parameters are allowed"
    names = sqltext.named_parameters(tokens)
    bad = sqltext.bad_parameter_names(names)
    if bad:
        return f"parameter :{bad[0]} is not a plain identifier"
    properties = parameters_schema.get("properties", {})
    undeclared = [name for name in names if name not in properties]
    if undeclared:
        return f"parameter :{undeclared[0]} is not in the tool's parameters schema"
    unused = [name for name in parameters_schema.get("required", []) if name not in names]
    if unused:
        return f"required parameter {unused[0]!r} is not used by the statement"
    return None


def _determinism_problem(kind: SqlKind, tokens: list[sqltext.Token]) -> str | None:
    """Writes are replayed to rebuild a trajectory, so they must not read the clock."""
    if kind is SqlKind.SELECT:
        return None
    if any(value.strip().lower() == "now" for value in sqltext.string_literals(tokens)):
        return "uses 'now' in a write; pass the time as a parameter so the write replays identically"
    calls = sqltext.zero_argument_calls(tokens, CLOCK_FUNCTIONS)
    if calls:
        return f"calls {calls[0]}() without arguments (the current time) in a write"
    return None


def _compile_problem(binding: SqlBinding, tokens: list[sqltext.Token], conn: sqlite3.Connection) -> str | None:
    """Compile (EXPLAIN, never run) the statement under the kind's authorizer."""
    tables, triggers = policy_names(conn)
    policy = StatementPolicy(binding.kind, tables, triggers)
    params = {name: None for name in sqltext.named_parameters(tokens)}
    conn.set_authorizer(policy)
    try:
        conn.execute("EXPLAIN " + binding.statement, params).fetchall()
    except (sqlite3.Error, ValueError) as error:
        # ValueError: sqlite3 refuses statement text holding a NUL character.
        return policy.denied[0] if policy.denied else f"does not compile: {error}"
    finally:
        conn.set_authorizer(None)
    return policy.kind_problem()
