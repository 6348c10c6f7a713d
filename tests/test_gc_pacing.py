"""The collector's pacing during a run: set for the run, the caller's own restored after it."""

from __future__ import annotations

import asyncio
import gc

import pytest

from dialogforge.runs.gc_pacing import RUN_THRESHOLDS, paced_gc


def test_a_run_paces_the_collector_and_gives_the_callers_thresholds_back():
    gc.set_threshold(1234, 5, 6)
    try:
        with paced_gc():
            assert gc.get_threshold() == RUN_THRESHOLDS
            assert gc.get_freeze_count() > 0  # what existed at the start is not walked again
            with paced_gc():  # a nested run keeps the outer one's
                assert gc.get_threshold() == RUN_THRESHOLDS
            assert gc.get_threshold() == RUN_THRESHOLDS
        assert gc.get_threshold() == (1234, 5, 6) and gc.get_freeze_count() == 0
        with pytest.raises(RuntimeError), paced_gc():
            raise RuntimeError("a failed run")
        assert gc.get_threshold() == (1234, 5, 6) and gc.get_freeze_count() == 0
    finally:
        gc.set_threshold(700, 10, 10)


def test_the_engine_runs_its_jobs_paced(tmp_path, monkeypatch):
    """``run_jobs`` holds the pacing for exactly its run."""
    from dialogforge.runs import engine

    seen: list[tuple[int, int, int]] = []

    async def fake_run_jobs(*args, **kwargs):
        seen.append(gc.get_threshold())
        return engine.RunSummary()

    monkeypatch.setattr(engine, "_run_jobs", fake_run_jobs)
    from dialogforge.checkpoints.manifest import Manifest

    Manifest(tmp_path / "run.db", create=True).close()
    before = gc.get_threshold()
    asyncio.run(engine.run_jobs(tmp_path / "run.db", [], None, None, concurrency=1))
    assert seen == [RUN_THRESHOLDS] and gc.get_threshold() == before
