"""The viewer's own failure: an output it was asked to write cannot be made."""

from dialogforge.errors import DialogforgeError


class OutputError(DialogforgeError):
    """An output path is unusable, its format unknown, or its renderer missing."""


class ServeError(DialogforgeError):
    """The viewer cannot listen where it was asked to (port taken, not allowed)."""
