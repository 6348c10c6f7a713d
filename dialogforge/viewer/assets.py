"""The page's files (``static/`` in this package): the only files the server ever sends."""

from __future__ import annotations

from importlib import resources

# name -> content type; anything not named here does not exist for the server.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "list.js": "text/javascript; charset=utf-8",
    "trajectory.js": "text/javascript; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
}
# The renderer's parts, in load order (each adds to one namespace object).
SCRIPTS = ("dom.js", "list.js", "trajectory.js", "app.js")


def renderer_script() -> str:
    """All parts of the renderer as one script, for the single HTML file."""
    return "\n".join(read_asset(name) for name in SCRIPTS)


def read_asset(name: str) -> str:
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files("dialogforge.viewer").joinpath("static", name).read_text(encoding="utf-8")
