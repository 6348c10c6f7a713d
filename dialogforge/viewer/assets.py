"""The page's files, read from the package: the only files the server ever sends."""

from __future__ import annotations

from importlib import resources

# name -> content type; anything not named here does not exist for the server.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
}


def read_asset(name: str) -> str:
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files("dialogforge.viewer").joinpath("assets", name).read_text(encoding="utf-8")
