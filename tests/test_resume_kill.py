"""Kill -9 a real ``generate`` / ``resume`` process at random moments, many times, then resume.

Every kill lands at a random point: most after a random number of further
checkpoints (so mid-step, mid-write, between trajectories), some at a
random time from process start (imports, planning, the first writes).
After the last resume, every requested trajectory must be done or failed
with a reason, none lost or added, every dialogue well-formed, the database
intact, and, since the scripted model is deterministic, every trajectory
identical to the same run made without interruption: a step lost or run
twice would show as a difference.
"""

from __future__ import annotations

import pytest

from tests.support.kills import kill_and_resume

def test_kill_nine_at_random_moments_then_resume(tmp_path):
    landed = kill_and_resume(tmp_path, kills=12, n=20, seed=11, rng_seed=4)
    assert landed["mid-run"] + landed["by time"] >= 8, landed  # most kills hit a live process


@pytest.mark.slow
def test_kill_nine_soak(tmp_path):
    landed = kill_and_resume(tmp_path, kills=40, n=48, seed=12, rng_seed=5)
    assert landed["mid-run"] >= 20, landed
