"""One exception type per domain failure.

Each carries a one-line message meant for a user; the CLI catches
``DialogforgeError`` once and turns it into that line and exit code 2.
"""


class DialogforgeError(Exception):
    """Base of every failure a user can act on."""


class ConfigError(DialogforgeError):
    """A configuration file, flag or environment variable is wrong."""


class ToolFileError(DialogforgeError):
    """A seed-tools file cannot be read or holds an invalid spec."""


class StoreError(DialogforgeError):
    """The database path is unusable, or the file is not ours."""


class NotFoundError(DialogforgeError):
    """An unknown thread or checkpoint was named."""


class ModelCallError(DialogforgeError):
    """An LLM call failed for good (after bounded retries).

    Inside the graph this never crashes a run: the node records it as the
    trajectory's failure reason.
    """


class ContextOverflowError(ModelCallError):
    """The endpoint refused a request as longer than its context (an HTTP 400 saying so).

    Not retried as it is: the node sending it shrinks its window and asks again.
    ``model_context`` is the model's context length when the refusal names it.
    """

    def __init__(self, message: str, model_context: int | None = None) -> None:
        super().__init__(message)
        self.model_context = model_context


class ContextBudgetError(ModelCallError):
    """A request cannot fit its role's context budget even with the least it must hold
    (the instructions, the tools and the newest message or tool round)."""


class DomainError(DialogforgeError):
    """A Tool-Exec domain (its SQLite database or SQL tools) is missing, unreadable or refused."""


class ToolBackendError(DialogforgeError):
    """What answers tool calls failed itself, not the call (e.g. a trajectory's
    database cannot be rebuilt from its write log).

    Inside the graph this never crashes a run: the node records it as the
    trajectory's failure reason.
    """
