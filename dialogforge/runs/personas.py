"""``--personas N``: N distinct user personas for a run's domains, sampled once, before any trajectory.

The persona sampler is an LLM role of its own (``Role.PERSONA_SAMPLER``,
prompt in ``prompts/sample_personas.md``). It is asked for a few personas
at a time, told the ones it already gave, until there are N distinct ones
(compared without case or spacing); answers that add nothing new still
count against a bounded number of calls, after which the run stops with
a one-line error before anything is written. The personas are stored in
the run's recorded settings (and the sampling's token usage beside them),
so ``resume`` reuses them and never samples again; planning deals them out
evenly (``planning.dealt_persona``).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

from dialogforge.config import GenerationSettings, ModelsConfig, Role
from dialogforge.errors import DialogforgeError, ModelCallError
from dialogforge.graphs.state import SampledPersonas
from dialogforge.models import ModelSet, generate_structured
from dialogforge.prompts import prompt_messages
from dialogforge.records import TokenUsage

PACKAGE = "dialogforge.runs.prompts"
BATCH = 8  # personas asked for per call
DOMAINS_SHOWN = 20  # a run may have thousands of domains; the sampler sees a sample of them
ALREADY_SHOWN = 40


class PersonaSamplingError(DialogforgeError):
    """The persona sampler could not produce the personas asked for."""


@dataclass
class PersonaSampling:
    personas: list[str] = field(default_factory=list)
    usage: TokenUsage = field(default_factory=TokenUsage)

    def record(self, model: str) -> dict[str, Any]:
        """What the run config keeps (``persona_sampling``)."""
        return {"count": len(self.personas), "model": model, "usage": self.usage.model_dump()}


def _key(persona: str) -> str:
    return " ".join(persona.lower().split())


def max_calls(count: int) -> int:
    return 2 * -(-count // 4) + 2  # a grammar-bounded model may give only four per answer


async def sample_personas(settings: GenerationSettings, models: ModelSet, count: int) -> PersonaSampling:
    model = models[Role.PERSONA_SAMPLER]
    sampling = PersonaSampling()
    seen: set[str] = set()
    for call in range(max_calls(count)):
        if len(sampling.personas) >= count:
            break
        context = {
            "domains": settings.domains[:DOMAINS_SHOWN],
            "count": min(BATCH, count - len(sampling.personas)),
            "language": settings.language,
            "already_have": sampling.personas[-ALREADY_SHOWN:],
        }
        seed = int.from_bytes(hashlib.sha256(f"{settings.seed}:personas:{call}".encode()).digest()[:4], "big") & 0x7FFFFFFF
        try:
            answer, usage = await generate_structured(model, SampledPersonas, prompt_messages(PACKAGE, "sample_personas", context),
                                                      seed=seed)
        except ModelCallError as exc:
            raise PersonaSamplingError(f"persona sampling failed: {exc}") from exc
        sampling.usage = sampling.usage.plus(usage)
        for persona in answer.personas:
            text = " ".join(persona.split())
            if text and _key(text) not in seen and len(sampling.personas) < count:
                seen.add(_key(text))
                sampling.personas.append(text)
    if len(sampling.personas) < count:
        raise PersonaSamplingError(f"persona sampling gave {len(sampling.personas)} distinct personas of the "
                                   f"{count} asked for in {max_calls(count)} calls; ask for fewer (--personas) "
                                   "or give them in a file (--personas-file)")
    return sampling


def sampled_settings(settings: GenerationSettings, models_config: ModelsConfig) -> tuple[GenerationSettings, PersonaSampling | None]:
    """``settings`` with its sampled personas, if it asks for some and has none yet."""
    if not settings.sample_personas or settings.personas:
        return settings, None

    async def run() -> PersonaSampling:
        models = ModelSet.from_config(models_config, connections=1)
        try:
            return await sample_personas(settings, models, settings.sample_personas)
        finally:
            await models.aclose()

    sampling = asyncio.run(run())
    return settings.model_copy(update={"personas": sampling.personas}), sampling
