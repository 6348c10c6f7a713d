"""What a dataset is made of beyond Table 1: its languages, how evenly its personas are used, what it cost.

``stats`` and the dataset card report these. Languages and personas are
counted over the measured trajectories (the ones Table 1 measures). Cost is
what was spent, so it counts every finished trajectory, failed ones too,
plus each run's persona sampling; it is priced from each run's recorded
prices (``dialogforge.pricing``), from the same checkpointed token counts
the manifest's ``cost_usd`` was computed from.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dialogforge.graphs.state import DialogueState
from dialogforge.pricing import Pricing, dollars, recorded_pricing
from dialogforge.records import TokenUsage

UNSET = "unset"


def evenness(counts: list[int]) -> float | None:
    """Pielou's evenness: 1.0 when every persona is used equally often, towards 0 as a few dominate;
    over the personas available, so one never used lowers it. None with fewer than two."""
    total = sum(counts)
    if len(counts) < 2 or total == 0:
        return None
    entropy = -sum(c / total * math.log(c / total) for c in counts if c)
    return round(entropy / math.log(len(counts)), 4)


@dataclass
class Mix:
    languages: Counter = field(default_factory=Counter)
    personas: Counter = field(default_factory=Counter)
    available: set[str] = field(default_factory=set)  # the runs' personas, used or not
    sampled_runs: int = 0
    role_costs: Counter = field(default_factory=Counter)  # measured trajectories, per role
    costs: list[float] = field(default_factory=list)  # measured trajectories
    spent: float | None = None  # every finished trajectory plus persona sampling
    sampling: float = 0.0

    def add_runs(self, configs: dict[str, dict[str, Any]]) -> None:
        for config in configs.values():
            settings = config.get("settings") or {}
            self.available.update(settings.get("personas") or [])
            self.sampled_runs += bool(config.get("persona_sampling"))

    def add(self, state: DialogueState, pricing: Pricing | None) -> None:
        self.languages[state.language or UNSET] += 1
        if state.scenario.persona:
            self.personas[state.scenario.persona] += 1
        if pricing is not None:
            costs = pricing.costs(state.counters.usage)
            self.role_costs.update(costs)
            self.costs.append(sum(costs.values()))

    def add_spend(self, rows: list[dict[str, Any]], configs: dict[str, dict[str, Any]]) -> None:
        priced = [row["cost_usd"] for row in rows if row.get("cost_usd") is not None]
        for config in configs.values():
            usage = (config.get("persona_sampling") or {}).get("usage")
            pricing = recorded_pricing(config)
            if usage and pricing:
                self.sampling += pricing.cost("persona_sampler", TokenUsage.model_validate(usage))
        if priced or self.sampling:
            self.spent = round(sum(priced) + self.sampling, 6)

    def persona_usage(self) -> dict[str, Any] | None:
        if not self.personas and not self.available:
            return None
        counts = [self.personas.get(p, 0) for p in (self.available or set(self.personas))]
        counts += [c for p, c in self.personas.items() if self.available and p not in self.available]
        return {"personas": len(counts), "used": sum(1 for c in counts if c), "min": min(counts), "max": max(counts),
                "evenness": evenness(counts), "sampled_runs": self.sampled_runs}

    def cost(self) -> dict[str, Any] | None:
        if self.spent is None and not self.costs:
            return None
        n = len(self.costs)
        return {
            "spent_usd": self.spent, "persona_sampling_usd": round(self.sampling, 6),
            "per_trajectory_usd": {"mean": round(sum(self.costs) / n, 6) if n else None,
                                   "max": round(max(self.costs), 6) if n else None, "n": n},
            "by_role_mean_usd": {role: round(total / n, 6) for role, total in sorted(self.role_costs.items())} if n else {},
        }

    def as_dict(self) -> dict[str, Any]:
        return {"languages": dict(self.languages.most_common()), "persona_usage": self.persona_usage(), "cost": self.cost()}


def mix_lines(mix: Mix) -> list[str]:
    lines = ["languages: " + ", ".join(f"{tag} {n}" for tag, n in mix.languages.most_common()) if mix.languages else "languages: -"]
    personas = mix.persona_usage()
    if personas:
        lines.append(f"personas: {personas['used']} of {personas['personas']} used, {personas['min']}-{personas['max']} "
                     f"trajectories each, evenness {personas['evenness'] if personas['evenness'] is not None else '-'} "
                     "(1.0 = all used equally)")
    cost = mix.cost()
    if cost:
        per = cost["per_trajectory_usd"]
        lines.append(f"cost: {dollars(cost['spent_usd'])} spent (finished trajectories"
                     + (f" and persona sampling {dollars(cost['persona_sampling_usd'])}" if cost["persona_sampling_usd"] else "")
                     + f"); per trajectory {dollars(per['mean'])} mean, {dollars(per['max'])} max; by role (mean): "
                     + (", ".join(f"{role} {dollars(v)}" for role, v in cost["by_role_mean_usd"].items()) or "-"))
    else:
        lines.append("cost: - (no prices: add models.prices to the config)")
    return lines
