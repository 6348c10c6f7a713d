"""Building a tool library: the paper's tool preparation, run once for a domain.

From a domain (and optionally seed tools): 20-30 realistic user questions,
tool specs drafted to answer them beside the seed tools, a gap analysis that
adds up to 10 complementary tools with the reason for each, a predicted
result schema for every tool that lacks one, and one type per shared entity
across all tools. Seed tools are kept exactly as given (their own result
schemas too, arrays included); they vote first when entity types are
harmonized and are never rewritten. The result passes the library checks
(``dialogforge.inputs.library_checks``) or the build fails with the first
problem: a run never sees a library ``tools check`` would refuse.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from importlib import resources

from dialogforge import __version__
from dialogforge.errors import ModelCallError
from dialogforge.inputs.library_checks import library_problems
from dialogforge.inputs.tool_library import GapAddition, Provenance, Rejection, SeedSource, ToolLibrary, ToolLibraryError, slug
from dialogforge.models import RoleModel
from dialogforge.records import ToolSpec
from dialogforge.tool_checks import harmonize, needs_result_schema
from dialogforge.toolprep.stages import PACKAGE, PROMPTS, ToolStages, summaries



async def prepare_library(
    model: RoleModel,
    domain: str,
    *,
    seed_tools: list[ToolSpec] | None = None,
    seed: int = 0,
    name: str | None = None,
    seed_source: SeedSource | None = None,
) -> ToolLibrary:
    """One library for ``domain``; a model that keeps failing raises ``ModelCallError``."""
    seeds = list(seed_tools or [])
    stages = ToolStages(model, seed)
    context = {"domain": domain, "seed_tools": summaries(seeds)}
    questions, shortfall = await stages.library_questions(context)
    context = {**context, "questions": questions}
    drafted = await stages.drafts(context, seeds)
    gap = await stages.gap(context, seeds + drafted, missing=[])
    tools = seeds + drafted + [spec for spec, _ in gap]
    own = [t.name for t in seeds if not needs_result_schema(t)]
    known = harmonize([t for t in seeds if t.name in own], own)[1]
    tools, predicted, failures = await stages.result_schemas(tools, known)
    failed_seed = next((t.name for t in seeds if t.name in failures), None)
    if failed_seed is not None:  # a seed tool is never dropped: the library cannot be built
        raise ModelCallError(f"{model.role}: no valid result schema for seed tool {failed_seed!r} after two attempts: "
                             f"{failures[failed_seed]}")
    if failures:
        stages.rejected += [Rejection(tool=n, stage="result_schema", reason=f"no valid result schema: {why}")
                            for n, why in failures.items()]
        tools = [t for t in tools if t.name not in failures]
    tools, entity_types = harmonize(tools, own)
    kept = {t.name for t in tools}
    # What did not make it, once each (a name refused in one answer and accepted in another made it).
    rejected = list({(r.tool, r.reason): r for r in stages.rejected if r.tool not in kept}.values())
    library = ToolLibrary(
        name=name or slug(domain), domain=domain, questions=questions, tools=tools,
        gap_additions=[GapAddition(tool=spec.name, reason=reason) for spec, reason in gap if spec.name not in failures],
        predicted_results=[n for n in predicted if n not in failures],
        entity_types=entity_types, rejected=rejected,
        provenance=Provenance(
            dialogforge=__version__, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), seed=seed,
            models={model.role.value: {"backend": model.config.backend, "model": model.config.model}},
            prompts=prompt_versions(), seed_tools=seed_source, usage=stages.usage,
        ),
    )
    problems = library_problems(library)
    if problems:
        raise ToolLibraryError(f"the library built for {domain!r} fails its own checks: {problems[0]}")
    return library


def prompt_versions() -> dict[str, str]:
    """Each tool-preparation prompt by a digest of its text: which wording built a library."""
    folder = resources.files(PACKAGE)
    return {name: hashlib.sha256(folder.joinpath(f"{name}.md").read_bytes()).hexdigest()[:12] for name in PROMPTS}
