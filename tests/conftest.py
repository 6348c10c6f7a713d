"""Shared fixtures: the scripted model config, a CLI runner, a generated database."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
from tests.support.cli import run_as_process, run_in_process
from tests.support.paths import BFCL
from tests.support.stores import KINDS, Store, make_store


@pytest.fixture
def scripted_models() -> ModelsConfig:
    return ModelsConfig(default=ModelConfig(backend="scripted"))


@pytest.fixture
def settings() -> GenerationSettings:
    return GenerationSettings(n=4, seed=7)


@pytest.fixture
def run_cli():
    """Run ``dialogforge`` in this process (see ``tests.support.cli``): fast, for everything but signals and kills."""
    return run_in_process


@pytest.fixture
def run_cli_process():
    """Run ``dialogforge`` as a real process: for signals, kills, start-up and import-time settings."""
    return run_as_process


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


@pytest.fixture(params=KINDS)
def store(request, tmp_path) -> Store:
    """Each kind of store a --db can name: a SQLite file, SQLite shards, a PostgreSQL database."""
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return make_store(request.param, tmp_path, pg_url)
