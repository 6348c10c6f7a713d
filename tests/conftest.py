"""Shared fixtures: the scripted model config, a CLI runner, a generated database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig

REPO = Path(__file__).resolve().parent.parent
BFCL = REPO.parent / "shared" / "data" / "bfcl"


@pytest.fixture
def scripted_models() -> ModelsConfig:
    return ModelsConfig(default=ModelConfig(backend="scripted"))


@pytest.fixture
def settings() -> GenerationSettings:
    return GenerationSettings(n=4, seed=7)


class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def run_cli():
    """Run ``dialogforge`` as a user would: a subprocess of this checkout's code."""

    def run(*args: str, timeout: float = 300, env: dict | None = None) -> CliResult:
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "dialogforge.cli", *args],
            capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO,
        )
        return CliResult(proc)

    return run


@pytest.fixture
def bfcl_dir() -> Path:
    if not BFCL.is_dir():
        pytest.fail(f"BFCL data missing at {BFCL}: CI clones with ../shared beside the repo")
    return BFCL


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the whole session (dialogforge/testing/postgres_server.py), stopped after."""
    from dialogforge.testing.postgres_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres_server.new_database()


# Attack cases that live with their features, also run as one suite: python -m pytest -m security
SECURITY_CASES = (
    "test_sqlexec_injection.py::",
    "test_viewer_browser.py::test_payloads_render_as_text_and_never_run",
    "test_viewer_data.py::test_script_safe_json_cannot_close_the_block",
    "test_viewer_data.py::test_single_file_page_is_self_contained_and_locked_down",
    "test_viewer_server.py::test_page_and_assets_with_strict_headers",
    "test_viewer_server.py::test_nothing_outside_the_allowlist",
    "test_viewer_server.py::test_foreign_host_header_is_refused",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(case in item.nodeid for case in SECURITY_CASES):
            item.add_marker(pytest.mark.security)
