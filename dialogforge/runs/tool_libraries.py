"""Tool libraries as operations: build one (``tools build``), and give a run's trajectories theirs.

A run without fixed tools prepares them once per domain, before any of its
trajectories starts: the driver looks the domain up among the libraries its
database already holds (``build_key``: the domain and the seed tools it was
built from) and builds the missing ones, at most ``concurrency`` at a time,
each stored as soon as it is built. So many trajectories of one domain never
each build a library, a rerun after a kill reuses what was built, and every
trajectory of a domain in the database shares one set of specs and result
schemas. A library given as a file (``generate --tool-library``) is stored
the same way. Planned rows then name their library (``LibraryRef``) instead of
repeating its specs, and ``resume`` takes the tools from the stored library,
never from the file again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dialogforge.checkpoints.store_kinds import open_manifest
from dialogforge.config import GenerationSettings, ModelsConfig, Role, ToolPrep
from dialogforge.errors import ModelCallError
from dialogforge.inputs.seed_tools import load_tools_file
from dialogforge.inputs.tool_library import (
    SeedSource, ToolLibrary, ToolLibraryError, check_out_path, library_json, parse_tool_library, write_tool_library,
)
from dialogforge.models import ModelSet, RoleModel
from dialogforge.records import ToolExec, ToolSource, ToolSpec
from dialogforge.toolprep.library import prepare_library

Db = str | Path
# A library serves every trajectory of its domain: a build that fails after its calls' own
# bounded retries is tried once more before those trajectories fail with its reason.
BUILD_ATTEMPTS = 2


def build_tool_library(
    domain: str,
    models: ModelsConfig,
    *,
    tools_file: str | Path | None = None,
    seed_tools: list[ToolSpec] | None = None,
    seed: int = 0,
    name: str | None = None,
    out: str | Path | None = None,
) -> ToolLibrary:
    """The paper's tool preparation for ``domain`` (from seed tools, ``tools_file`` or ``seed_tools``,
    if given), by the models' ``tool_synthesizer``; written to ``out`` (atomically) when given."""
    if not domain.strip():
        raise ToolLibraryError("--domain is empty; say what the assistant's domain is")
    if out is not None:
        check_out_path(out)
    source = None
    if tools_file is not None:
        seed_tools = load_tools_file(tools_file)
        path = Path(tools_file)
        source = SeedSource(file=path.name, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), tools=len(seed_tools))
    model_set = ModelSet.from_config(models, connections=4)

    async def build() -> ToolLibrary:
        try:
            return await prepare_library(model_set[Role.TOOL_SYNTHESIZER], domain.strip(), seed_tools=seed_tools,
                                         seed=seed, name=name, seed_source=source)
        finally:
            await model_set.aclose()

    library = asyncio.run(build())
    if out is not None:
        write_tool_library(library, out)
    return library


def build_key(domain: str, seed_tools: list[ToolSpec]) -> str:
    """What a run-built library is built from; a later run with the same inputs reuses it."""
    blob = json.dumps({"domain": domain, "seed_tools": [t.model_dump(mode="json") for t in seed_tools]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def builds_libraries(settings: GenerationSettings, seed_tools: list[ToolSpec] | None, fixed_sets: bool) -> bool:
    """Whether a run prepares its tools as libraries of its own: simulated tools, not fixed by
    seed tools alone, tool sets or imported conversations, and not asked for per trajectory."""
    if settings.tool_libraries or settings.tool_exec is not ToolExec.SIMULATED or fixed_sets:
        return False
    if settings.tool_prep is not ToolPrep.LIBRARY:
        return False
    return not seed_tools or settings.tool_source is ToolSource.SEED_PLUS


@dataclass
class RunLibraries:
    """The libraries a run's trajectories use, and the domains whose library could not be built."""

    by_domain: dict[str, ToolLibrary] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # domain -> why


async def libraries_for_domains(
    targets: list[Db], domains: list[str], seed_tools: list[ToolSpec], model: RoleModel, *, seed: int,
    concurrency: int, notify: Callable[[str], None] | None = None,
) -> RunLibraries:
    """Each domain's library: stored in the database already, or built now and stored at once."""
    result = RunLibraries()
    missing = []
    stored = _stored_by_key(targets[0])
    for domain in dict.fromkeys(domains):
        found = stored.get(build_key(domain, seed_tools))
        if found is not None:
            result.by_domain[domain] = found
        else:
            missing.append(domain)
    if missing and notify is not None:
        notify(f"tool libraries: building {len(missing)} (one per domain), reusing {len(result.by_domain)}")
    gate = asyncio.Semaphore(concurrency)
    storing = asyncio.Lock()  # one writer at a time: two SQLite connections upgrading at once would fail as "locked"

    async def build(domain: str) -> None:
        async with gate:
            for attempt in range(BUILD_ATTEMPTS):
                try:
                    library = await prepare_library(model, domain, seed_tools=seed_tools, seed=seed + attempt)
                    break
                except (ModelCallError, ToolLibraryError) as exc:
                    result.failed[domain] = f"{exc} (building the tool library for {domain!r})"
            else:
                return
            result.failed.pop(domain, None)
        async with storing:
            await asyncio.to_thread(store_libraries, targets, [library], build_key(domain, seed_tools))
        result.by_domain[domain] = library

    await asyncio.gather(*(build(domain) for domain in missing))
    return result


def store_libraries(targets: list[Db], libraries: list[ToolLibrary], key: str | None = None) -> None:
    """Every library into every target (each shard keeps the libraries its rows use)."""
    for target in targets:
        manifest = open_manifest(target, create=True)
        try:
            for library in libraries:
                manifest.record_library(library.id, library.name, library.domain, key, library_json(library))
        finally:
            manifest.close()


def _stored_by_key(db: Db) -> dict[str, ToolLibrary]:
    manifest = open_manifest(db, create=True)
    try:
        rows = [row for row in manifest.libraries() if row.get("build_key")]
    finally:
        manifest.close()
    found: dict[str, ToolLibrary] = {}
    for row in rows:
        found.setdefault(row["build_key"], stored_library(db, row))
    return found


def stored_library(db: Db, row: dict) -> ToolLibrary:
    """A library as the database holds it; a damaged one is a one-line error naming it."""
    return parse_tool_library(f"{db}: stored tool library {row['library_id']}", row["library"])


def load_stored_libraries(db: Db, ids: set[str]) -> dict[str, ToolLibrary]:
    """The stored libraries named ``ids``; one missing or damaged is a one-line error naming it."""
    if not ids:
        return {}
    manifest = open_manifest(db)
    try:
        rows = {library_id: manifest.library(library_id) for library_id in sorted(ids)}
    finally:
        manifest.close()
    missing = [library_id for library_id, row in rows.items() if row is None]
    if missing:
        raise ToolLibraryError(f"{db}: planned trajectories use tool library {missing[0]}, which the database does not hold")
    return {library_id: stored_library(db, row) for library_id, row in rows.items() if row is not None}
