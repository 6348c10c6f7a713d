"""How long dialogues get under the old and the new default caps: the paper's Table 1 measures.

Generates ``--n`` scripted user-mode trajectories per profile, then prints
Step, Turn and Task (mean and max) three ways:

- ``stored``: every finished trajectory as generated (what ``stats`` printed before cuts);
- ``old gate``: only those passing the rules as stored, i.e. what ``export --valid-only``
  kept when every capped trajectory was thrown away;
- ``new gate``: only those passing the rules as the dataset now reads them, a capped
  trajectory cut after its last completed task (``dialogforge.dataset.cut``).

Profiles: ``old`` is the caps before issue 18 (30 user turns, 8 tool steps per request,
3 tasks drawn uniformly, no token budget); ``new`` is today's ``Limits()`` and task draw;
``tight`` is the old profile with 5 user turns (issue 18's example, where most trajectories
meet the turn cap).
No judge runs (the scripted judge's random misses would blur the comparison).

    python benchmarks/dialogue_lengths.py              # 200 trajectories per profile, seed 1
    python benchmarks/dialogue_lengths.py --n 50 --profiles new
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections import Counter
import time
from pathlib import Path

from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
from dialogforge.dataset.corpus import load_or_none, manifest_rows, view_of
from dialogforge.dataset.rules import check_rules
from dialogforge.dataset.stats import Group
from dialogforge.records import Limits
from dialogforge.runs import planning
from dialogforge.runs.generate import generate

OLD = Limits(max_user_turns=30, max_tool_steps=8, max_tasks=3, token_budget=None)
PROFILES = {"old": OLD, "new": Limits(), "tight": OLD.model_copy(update={"max_user_turns": 5})}


def uniform_task_count(seed: int, max_tasks: int) -> int:
    """The task draw before issue 18: uniform from 1 to the cap."""
    return random.Random(f"{seed}:tasks").randint(1, max_tasks)


def measure(db: Path) -> tuple[dict[str, Group], int]:
    """The three readings of every finished trajectory, and how many were cut."""
    groups = {name: Group("user", name) for name in ("stored", "old gate", "new gate")}
    cuts = 0
    for row in manifest_rows(db, statuses=["done"]):
        stored = load_or_none(db, row["thread_id"])
        if stored is None:
            continue
        view = view_of(stored)
        cuts += view.cut is not None
        groups["stored"].add(stored)
        if not check_rules(stored):
            groups["old gate"].add(stored)
        if not check_rules(view.state, view.cut):
            groups["new gate"].add(view.state)
    return groups, cuts


def run_profile(name: str, n: int, seed: int, root: Path) -> tuple[dict[str, Group], float, dict[str, int]]:
    limits = PROFILES[name]
    saved = planning.task_count
    if name != "new":
        planning.task_count = uniform_task_count
    try:
        db = root / f"{name}.db"
        started = time.perf_counter()
        generate(db, GenerationSettings(n=n, seed=seed, concurrency=16, limits=limits),
                 ModelsConfig(default=ModelConfig(backend="scripted")))
        seconds = time.perf_counter() - started
    finally:
        planning.task_count = saved
    stops = Counter(row.get("stop_reason") or row["status"] for row in manifest_rows(db))
    groups, cuts = measure(db)
    return groups, seconds, {**stops, "cut": cuts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profiles", nargs="+", default=["old", "new"], choices=sorted(PROFILES))
    args = parser.parse_args()
    print(f"{'profile':<8} {'read as':<9} {'Step':>12} {'Turn':>14} {'Task':>11} {'samples':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.profiles:
            groups, seconds, stops = run_profile(name, args.n, args.seed, Path(tmp))
            for label, g in groups.items():
                print(f"{name:<8} {label:<9} {g.step.cell():>12} {g.turn.cell():>14} {g.task.cell():>11} {g.samples:>8}")
            print(f"{name:<8} generated in {seconds:.0f}s; stop reasons: {dict(sorted(stops.items()))}")


if __name__ == "__main__":
    main()
