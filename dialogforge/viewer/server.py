"""``dialogforge view``: the viewer served on 127.0.0.1 from the standard library.

A small JSON API over ``data`` plus three static files from the package.
Nothing else is reachable: asset names are an allowlist (no path from the
request ever touches the file system), the Host header must name this
loopback server (a DNS-rebinding page cannot read the API), and every
response carries a strict Content-Security-Policy with no inline script.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.errors import DialogforgeError, NotFoundError
from dialogforge.viewer.assets import ASSETS, read_asset
from dialogforge.viewer.data import list_trajectories, trajectory_view
from dialogforge.viewer.errors import ServeError

HOST = "127.0.0.1"
THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class ViewerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, db_path: Path, port: int, *, log: bool = False):
        self.db_path = db_path
        self.log = log
        super().__init__((HOST, port), ViewerHandler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"


class ViewerHandler(BaseHTTPRequestHandler):
    server: ViewerServer
    server_version = "dialogforge-viewer"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- the stdlib's name
        if self.server.log:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": message})

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").lower()
        return host in {f"{HOST}:{self.server.port}", f"localhost:{self.server.port}"}

    def do_GET(self) -> None:  # noqa: N802 -- the stdlib's name
        if not self._host_ok():
            self._error(HTTPStatus.FORBIDDEN, "unexpected Host header")
            return
        path = urlsplit(self.path).path
        try:
            self._route(path)
        except NotFoundError as exc:
            self._error(HTTPStatus.NOT_FOUND, str(exc))
        except DialogforgeError as exc:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))

    do_HEAD = do_GET

    def _route(self, path: str) -> None:
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, read_asset("index.html").encode(), ASSETS["index.html"])
        elif path.startswith("/assets/") and path[len("/assets/"):] in ASSETS:
            name = path[len("/assets/"):]
            self._send(HTTPStatus.OK, read_asset(name).encode(), ASSETS[name])
        elif path == "/api/trajectories":
            self._json(HTTPStatus.OK, list_trajectories(self.server.db_path))
        elif path.startswith("/api/trajectory/"):
            thread_id = unquote(path[len("/api/trajectory/"):])
            if not THREAD_ID.match(thread_id):
                self._error(HTTPStatus.BAD_REQUEST, "not a thread id")
                return
            self._json(HTTPStatus.OK, trajectory_view(self.server.db_path, thread_id))
        else:
            self._error(HTTPStatus.NOT_FOUND, "no such page")

    def _not_allowed(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "read-only viewer")

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed


def make_server(db_path: str | Path, port: int = 0, *, log: bool = False) -> ViewerServer:
    """A server bound to 127.0.0.1 (port 0 picks a free one); call ``serve_forever`` on it."""
    Manifest(db_path).close()  # a bad or foreign database fails here, before listening
    try:
        return ViewerServer(Path(db_path), port, log=log)
    except OSError as exc:
        raise ServeError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from exc


class BackgroundServer:
    """The viewer in a thread of this process, for scripts and tests: ``with BackgroundServer(db) as s: s.url``."""

    def __init__(self, db_path: str | Path, port: int = 0):
        self.server = make_server(db_path, port)
        self.thread = threading.Thread(target=self.server.serve_forever, name="dialogforge-viewer", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
