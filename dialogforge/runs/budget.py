"""``--budget-usd``: a run stops starting trajectories once it has cost that much; those in flight finish.

What a run has spent is derived, never accumulated (``dialogforge.pricing``):
its finished trajectories' costs (their manifest rows, computed from their
final checkpoints), the persona sampling recorded with the run, and what
each trajectory in flight has cost so far (its latest checkpointed counters,
as the engine sees each step's update). A resumed trajectory's counters
already hold what it spent before a kill, and the engine replaces, never
adds, a trajectory's live figure, so nothing is counted twice.

Trajectories not started because the budget was reached stay ``pending``:
``resume --budget-usd`` with a larger figure runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dialogforge.checkpoints.manifest import Status
from dialogforge.config import GenerationSettings, ModelsConfig
from dialogforge.errors import ConfigError
from dialogforge.pricing import Pricing
from dialogforge.records import Counters, TokenUsage

FINISHED = (Status.DONE.value, Status.FAILED.value)


@dataclass
class RunBudget:
    limit_usd: float
    pricing: Pricing
    settled: float = 0.0  # finished trajectories and persona sampling
    live: dict[str, float] = field(default_factory=dict)  # thread id -> its cost so far

    def spent(self) -> float:
        return self.settled + sum(self.live.values())

    def reached(self) -> bool:
        return self.spent() >= self.limit_usd

    def observe(self, thread_id: str, counters: Counters) -> None:
        self.live[thread_id] = self.pricing.total(counters.usage)

    def settle(self, thread_id: str, cost: float | None) -> None:
        live = self.live.pop(thread_id, 0.0)
        self.settled += live if cost is None else cost


def run_budget(settings: GenerationSettings, models: ModelsConfig, rows: Iterable[dict[str, Any]] = (),
               run_config: dict[str, Any] | None = None) -> RunBudget | None:
    """The run's budget with what it had already spent (``rows``: its manifest rows), or None
    without ``budget_usd``. A budget needs prices: without them it could never be reached."""
    if settings.budget_usd is None:
        return None
    pricing = Pricing.from_models(models)
    if pricing is None:
        raise ConfigError("--budget-usd needs the price of every model: add models.prices to the config "
                          "(USD per million input, cached input and output tokens)")
    settled = sum(row.get("cost_usd") or 0.0 for row in rows if row.get("status") in FINISHED)
    settled += sampling_cost(run_config or {}, pricing)
    return RunBudget(settings.budget_usd, pricing, settled)


def sampling_cost(run_config: dict[str, Any], pricing: Pricing | None) -> float:
    """What sampling the run's personas cost (``run_configs``' ``persona_sampling``)."""
    usage = (run_config.get("persona_sampling") or {}).get("usage")
    if not usage or pricing is None:
        return 0.0
    return pricing.cost("persona_sampler", TokenUsage.model_validate(usage))


def db_rows(db_path: str | Path, run_id: str) -> list[dict[str, Any]]:
    from dialogforge.checkpoints.store_kinds import open_manifest

    manifest = open_manifest(db_path)
    try:
        return [row for row in manifest.rows() if row["run_id"] == run_id]
    finally:
        manifest.close()
