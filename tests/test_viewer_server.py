"""``dialogforge view``: the HTTP server, spoken to with raw HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dialogforge.viewer.assets import SCRIPTS
from dialogforge.viewer.server import CSP, BackgroundServer
from dialogforge.cli.main import main
from tests.support.viewer import build_viewer_db
from tests.support.paths import REPO



@pytest.fixture(scope="module")
def vdb(tmp_path_factory):
    return build_viewer_db(tmp_path_factory.mktemp("viewer") / "run.db")


@pytest.fixture(scope="module")
def server(vdb):
    with BackgroundServer(vdb.path) as running:
        yield running


def request(server, path: str, *, method: str = "GET", host: str | None = None):
    port = server.server.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host or f"127.0.0.1:{port}")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_binds_loopback_only(server):
    assert server.server.server_address[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")


@pytest.mark.security
def test_page_and_assets_with_strict_headers(server):
    status, headers, body = request(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "default-src 'none'" in CSP
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    html = body.decode()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts == [f' src="/assets/{name}"' for name in SCRIPTS]  # no inline script in the served page
    assert re.search(r"(src|href)=\"(https?:)?//", html) is None  # no CDN, nothing external
    for name, kind in [*((n, "text/javascript") for n in SCRIPTS), ("viewer.css", "text/css")]:
        status, headers, body = request(server, f"/assets/{name}")
        assert status == 200 and headers["Content-Type"].startswith(kind) and len(body) > 1000


def test_api_lists_and_shows_trajectories(server, vdb):
    status, headers, body = request(server, "/api/trajectories")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    listing = json.loads(body)
    assert len(listing["trajectories"]) == 7
    status, _, body = request(server, f"/api/trajectory/{vdb.fork}")
    view = json.loads(body)
    assert status == 200 and view["thread_id"] == vdb.fork and view["fork_point"]["parent_thread_id"] == vdb.threads[0]


@pytest.mark.parametrize("path", [
    "/assets/../data.py", "/assets/..%2fdata.py", "/assets/%2e%2e/server.py", "/../../etc/passwd",
    "/assets//etc/passwd", "/assets/", "/assets/index.html/../viewer.js/x", "/data.py", "/api/", "/api/trajectories/x",
])
@pytest.mark.security
def test_nothing_outside_the_allowlist(server, path):
    status, headers, body = request(server, path)
    assert status == 404
    assert json.loads(body) == {"error": "no such page"}
    assert headers["Content-Security-Policy"] == CSP


@pytest.mark.parametrize("thread, status", [
    ("..%2f..%2fetc%2fpasswd", 400), ("%3Cscript%3E", 400), ("a%00b", 400), ("nope-00000", 404),
])
def test_bad_or_unknown_thread_ids(server, thread, status):
    got, _, body = request(server, f"/api/trajectory/{thread}")
    assert got == status
    assert "error" in json.loads(body)


@pytest.mark.security
def test_foreign_host_header_is_refused(server):
    """A DNS-rebinding page (Host: evil.example) cannot read the API."""
    status, _, body = request(server, "/api/trajectories", host="evil.example:80")
    assert status == 403 and b"Host" in body
    assert request(server, "/api/trajectories", host=f"localhost:{server.server.port}")[0] == 200


def test_read_only(server):
    for method in ("POST", "PUT", "DELETE"):
        assert request(server, "/api/trajectories", method=method)[0] == 405


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_view_command_serves_until_interrupted(vdb):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "dialogforge.cli", "view", "--db", str(vdb.path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, proc.stderr.read() if proc.poll() is not None else line
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/trajectories")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.send_signal(2)  # Ctrl-C
        code = proc.wait(timeout=20)
    assert code == 0


def test_view_refuses_bad_input(vdb, tmp_path, capsys):
    assert main(["view", "--db", str(tmp_path / "none.db"), "--port", "0"]) == 2
    assert "no such database" in capsys.readouterr().err
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("hello")
    assert main(["view", "--db", str(foreign), "--port", "0"]) == 2
    assert "not a SQLite database" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["view", "--db", str(vdb.path), "--port", str(taken.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dialogforge: error: cannot listen on 127.0.0.1:") and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["view", "--db", str(vdb.path), "--port", "70000"])
    assert "expected a port from 0 to 65535" in capsys.readouterr().err


def test_concurrent_requests(server, vdb):
    """The threading server answers a burst of parallel requests (bounded: 16)."""
    from concurrent.futures import ThreadPoolExecutor

    paths = [f"/api/trajectory/{t}" for t in vdb.threads] * 4 + ["/api/trajectories"] * 4
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [r[0] for r in pool.map(lambda p: request(server, p), paths)]
    assert statuses == [200] * len(paths)
    assert time.monotonic() - started < 60
