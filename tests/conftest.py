"""Shared fixtures: the scripted model config, a CLI runner, a generated database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
from tests.support.paths import BFCL, REPO



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
