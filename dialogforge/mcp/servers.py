"""Which MCP server a run talks to, and how talking to it fails.

A stdio server is a command (``--mcp-server "python server.py --flag"``)
that dialogforge starts itself, one process per trajectory; a streamable
HTTP server is a URL (``--mcp-url``) that someone else runs, shared by every
trajectory.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from urllib.parse import urlparse

from dialogforge.errors import DialogforgeError


class McpServerError(DialogforgeError):
    """An MCP server cannot be started, reached or listed (before a run writes anything)."""


class McpTransportError(Exception):
    """Talking to a running server failed: it died, timed out, or answered outside the protocol.

    Not a ``DialogforgeError``: the executor retries it within bounds and
    then fails the trajectory with its message as the reason.
    """


@dataclass(frozen=True)
class CallAnswer:
    """What the server answered to one ``tools/call``, as the tool message will say it."""

    content: str
    is_error: bool = False


@dataclass(frozen=True)
class McpServer:
    command: tuple[str, ...] = ()  # stdio: the executable and its arguments
    url: str | None = None  # streamable HTTP
    cwd: str | None = None  # stdio: where it runs (a resume from elsewhere still finds `python server.py`)

    @classmethod
    def from_settings(cls, command: str | None, url: str | None, cwd: str | None = None) -> McpServer:
        if command and url:
            raise McpServerError("give --mcp-server or --mcp-url, not both")
        if url:
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise McpServerError(f"--mcp-url {url}: not an http(s) URL")
            return cls(url=url)
        try:
            parts = tuple(shlex.split(command or ""))
        except ValueError as exc:
            raise McpServerError(f"--mcp-server {command!r}: cannot split into a command ({exc})") from exc
        if not parts:
            raise McpServerError("--mcp-server is empty; give the command that starts the server")
        return cls(command=parts, cwd=cwd)

    @property
    def per_trajectory(self) -> bool:
        """A stdio server is started for each trajectory; an HTTP server is shared."""
        return self.url is None

    def describe(self) -> str:
        return self.url if self.url else shlex.join(self.command)
