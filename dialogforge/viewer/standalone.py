"""``dialogforge viz trajectory``: one trajectory as a single self-contained HTML file.

The file carries the same renderer as the served page, inline, plus the
data as a JSON block: the trajectory and its fork family (ancestors and
descendants), so the fork tree's links work inside the file. The JSON is
escaped so that no string in it (``</script>``, ``<!--``) can end the block,
and a Content-Security-Policy allows exactly the one inline script and
style by their SHA-256 hashes: nothing else can run, load or connect.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from dialogforge.viewer.assets import read_asset, renderer_script
from dialogforge.viewer.data import family, filter_choices, list_trajectories, trajectory_view
from dialogforge.viewer.diagram import check_out_path, write_atomically
from dialogforge.viewer.errors import OutputError

MAX_FAMILY = 50  # trajectories one file carries; the rest are reachable with `dialogforge view`

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_safe_json(value: Any) -> str:
    """JSON that is inert inside a ``<script type="application/json">`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return "".join(_JSON_ESCAPES.get(ch, ch) for ch in text)


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def page(data: dict[str, Any], title: str) -> str:
    """The HTML document for ``data`` (the shape the renderer's embedded source reads)."""
    script, style = renderer_script(), read_asset("viewer.css")
    if "</script" in script.lower() or "</style" in style.lower():
        raise OutputError("viewer assets must not contain a closing script/style tag")
    csp = (f"default-src 'none'; script-src '{_sha256(script)}'; style-src '{_sha256(style)}'; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n<link rel=\"icon\" href=\"data:,\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{safe_title}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        "<header class=\"topbar\"><a class=\"brand\" href=\"#/\">dialogforge</a><span id=\"db-name\"></span></header>\n"
        "<main id=\"app\" aria-live=\"polite\"></main>\n"
        f"<script type=\"application/json\" id=\"dialogforge-data\">{script_safe_json(data)}</script>\n"
        f"<script>{script}</script>\n</body>\n</html>\n"
    )


def trajectory_page(db_path: str | Path, thread_id: str) -> str:
    members = family(db_path, thread_id)[:MAX_FAMILY]
    listing = list_trajectories(db_path)
    wanted = set(members)
    listing["trajectories"] = [row for row in listing["trajectories"] if row["thread_id"] in wanted]
    listing["choices"] = filter_choices(listing["trajectories"])
    listing["db"] = Path(db_path).name
    views = {tid: {**trajectory_view(db_path, tid), "db": Path(db_path).name} for tid in members}
    data = {"start": thread_id, "list": listing, "trajectories": views}
    return page(data, f"{thread_id} · dialogforge")


def write_trajectory_html(db_path: str | Path, thread_id: str, out: str | Path) -> Path:
    """Write the trajectory (and its fork family) to ``out`` as one offline HTML file."""
    path = check_out_path(out, (".html", ".htm"))
    write_atomically(path, trajectory_page(db_path, thread_id).encode("utf-8"))
    return path
