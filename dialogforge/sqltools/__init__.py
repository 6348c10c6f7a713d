"""Tool-Exec: tools that are parameterized SQL statements over a real SQLite database.

The paper's executable variant. A domain is a SQLite file plus tools whose
implementation is one ``:named``-parameter statement of a declared kind
(``domain``); each template is validated once, textually and by compiling it
under a SQLite authorizer (``templates``, ``policy``). Each trajectory runs
on its own copy of the database, rebuilt from the trajectory's write log
when needed (``world``, ``writes``), and a tool call returns rows verbatim
or an error outcome, never an exception (``execute``).
"""

from dialogforge.sqltools.domain import SqlDomain, load_sql_domain, sample_rows, schema_summary
from dialogforge.sqltools.drafts import draft_tools_from_schema
from dialogforge.sqltools.errors import (
    ExecutionLimitError,
    SqlDomainError,
    SqlExecError,
    SqlTemplateError,
    SqlTextError,
    ToolArgumentError,
    WriteReplayError,
)
from dialogforge.sqltools.execute import ExecOutcome, execute_tool
from dialogforge.sqltools.templates import scratch_schema, validate_template, validate_tool
from dialogforge.sqltools.copies import remove_copy
from dialogforge.sqltools.world import ExecLimits, TrajectoryDatabase
from dialogforge.sqltools.writes import SqlWrite

__all__ = [
    "ExecLimits",
    "ExecOutcome",
    "ExecutionLimitError",
    "SqlDomain",
    "SqlDomainError",
    "SqlExecError",
    "SqlTemplateError",
    "SqlTextError",
    "SqlWrite",
    "ToolArgumentError",
    "TrajectoryDatabase",
    "WriteReplayError",
    "draft_tools_from_schema",
    "execute_tool",
    "load_sql_domain",
    "remove_copy",
    "sample_rows",
    "schema_summary",
    "scratch_schema",
    "validate_template",
    "validate_tool",
]
