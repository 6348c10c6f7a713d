"""The dataset side's own failures; both are DialogforgeErrors, so the CLI prints one line."""

from dialogforge.errors import DialogforgeError


class ExportError(DialogforgeError):
    """An export or report target cannot be written (bad path, not ours, no permission)."""


class NotValidatedError(DialogforgeError):
    """A filter needs validation results that are missing or out of date."""


class JudgeContextError(DialogforgeError):
    """What the judge needs for a task does not fit its context budget; the trajectory stays unjudged."""
