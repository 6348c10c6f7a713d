"""What a run cost: token counts times the configured prices, derived where nothing can count twice.

Token usage per role lives in the checkpointed state (``Counters.usage``),
written in the same checkpoint as the step whose calls it counts. A kill -9
loses at most the step in flight, whose usage was never written; resume
runs that step again from the previous checkpoint and its calls are counted
once, in the state that survives. So cost is never accumulated on its own:
it is always computed from those counts and the prices, whenever it is
recorded (the manifest row, when a trajectory finishes) or shown (``list``,
``show``, ``stats``, the budget). The one thing no figure can include is a
call whose answer was lost to a kill: paid to the API, never recorded.

Prices are per model, in US dollars per million tokens (``models.prices``
in the config, ``dialogforge.config.Price``); cached prompt tokens, where a
server reports them, cost ``cached_input`` when it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pydantic import ValidationError

from dialogforge.config import ModelsConfig, Price, Role
from dialogforge.records import TokenUsage

PER = 1_000_000


def usage_cost(usage: TokenUsage, price: Price) -> float:
    cached = min(usage.cached, usage.prompt)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    return ((usage.prompt - cached) * price.input + cached * cached_rate + usage.completion * price.output) / PER


@dataclass(frozen=True)
class Pricing:
    """Each role's price, resolved from a models config."""

    by_role: Mapping[str, Price]

    @classmethod
    def from_models(cls, models: ModelsConfig) -> Pricing | None:
        """None without prices; a role whose model has none is a ``ConfigError`` (``ModelsConfig.price_of``)."""
        if not models.prices:
            return None
        return cls({role.value: price for role in Role if (price := models.price_of(role)) is not None})

    def cost(self, role: str, usage: TokenUsage) -> float:
        price = self.by_role.get(role) or self.by_role[Role.AGENT.value]  # a role this version does not know
        return usage_cost(usage, price)

    def costs(self, usage: Mapping[str, TokenUsage]) -> dict[str, float]:
        return {role: self.cost(role, u) for role, u in sorted(usage.items())}

    def total(self, usage: Mapping[str, TokenUsage]) -> float:
        return sum(self.costs(usage).values())


def recorded_pricing(run_config: Mapping[str, Any]) -> Pricing | None:
    """The prices a recorded run was made with (``run_configs``); None if it had none, or the
    record was written by a version that cannot be read."""
    try:
        models = ModelsConfig.model_validate(run_config.get("models") or {})
        return Pricing.from_models(models)
    except (ValidationError, ValueError):
        return None


def usage_record(usage: Mapping[str, TokenUsage], pricing: Pricing | None) -> dict[str, dict[str, Any]]:
    """Per role: its token counts and, with prices, its cost (the manifest's ``usage`` column)."""
    return {role: {**u.model_dump(), **({"cost_usd": pricing.cost(role, u)} if pricing else {})}
            for role, u in sorted(usage.items())}


def dollars(value: float | None) -> str:
    """A cost for people: ``$0.0123``, ``$12.35``; ``-`` when unknown (no prices)."""
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 10 else f"${value:.4f}"
