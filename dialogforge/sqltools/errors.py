"""The failures of the SQL execution engine, one exception type per kind.

Each is raised with a one-line message so that a CLI edge can print it as is.
Failures of a single tool call are not here: those become error outcomes of
``execute_tool`` and go back to the agent as a tool message.
"""

from __future__ import annotations


class SqlExecError(Exception):
    """Base of every error this package raises."""


class SqlTextError(SqlExecError):
    """SQL text that cannot be tokenized (an unterminated quote, for example)."""


class SqlTemplateError(SqlExecError):
    """A tool's SQL template was refused; the message names the tool."""


class SqlDomainError(SqlExecError):
    """A domain's database or tools file is missing, unreadable or invalid."""


class ToolArgumentError(SqlExecError):
    """Arguments of a tool call that cannot be bound to its statement."""


class ExecutionLimitError(SqlExecError):
    """A statement was stopped because it exceeded an execution limit."""


class WriteReplayError(SqlExecError):
    """A logged write could not be replayed onto a rebuilt trajectory copy."""


def one_line(text: str, limit: int = 300) -> str:
    """Collapse a message to one bounded line; model input can be huge."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
