"""Never more in flight than asked, counted where it matters: at the HTTP server."""

from __future__ import annotations

import pytest

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from dialogforge.runs.generate import generate
from dialogforge.records import Limits


def _statuses(db) -> set[str]:
    manifest = Manifest(db)
    try:
        return {r["status"] for r in manifest.rows()}
    finally:
        manifest.close()


@pytest.mark.parametrize("concurrency", [1, 4, 9])
def test_trajectories_in_flight_never_exceed_concurrency(tmp_path, concurrency):
    # Slow enough that every worker is mid-call at once, so the cap is reached, not just respected.
    with StubServer(lambda r: ScriptedChatModel(), latency_s=0.05) as server:
        models = ModelsConfig(default=ModelConfig(backend="openai", base_url=server.base_url))
        settings = GenerationSettings(n=concurrency * 2 + 1, seed=2, concurrency=concurrency,
                                      limits=Limits(max_tasks=1, max_user_turns=4))
        result = generate(tmp_path / "run.db", settings, models)
        stats = server.stats()
    assert result.summary.done == settings.n
    assert stats["max_in_flight"] == concurrency, stats
    assert _statuses(tmp_path / "run.db") == {"done"}


def test_per_endpoint_max_in_flight_caps_each_server(tmp_path):
    with StubServer(lambda r: ScriptedChatModel(), latency_s=0.05) as a, \
         StubServer(lambda r: ScriptedChatModel(), latency_s=0.05) as b:
        models = ModelsConfig(default=ModelConfig(
            backend="openai", base_url=[a.base_url, {"url": b.base_url, "max_in_flight": 1}], max_in_flight=3))
        settings = GenerationSettings(n=10, seed=3, concurrency=8, limits=Limits(max_tasks=1, max_user_turns=4))
        result = generate(tmp_path / "run.db", settings, models)
        sa, sb = a.stats(), b.stats()
    assert result.summary.done == 10
    assert sa["max_in_flight"] == 3 and sb["max_in_flight"] == 1, (sa, sb)
    assert sa["calls"] > sb["calls"] > 0  # least busy: the wider server takes more


def test_concurrency_with_the_in_process_model_finishes_everything(tmp_path, scripted_models):
    result = generate(tmp_path / "run.db", GenerationSettings(n=25, seed=9, concurrency=25), scripted_models)
    assert (result.summary.done, result.summary.failed) == (25, 0)
    assert _statuses(tmp_path / "run.db") == {"done"}
