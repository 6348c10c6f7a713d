"""Turning ``GenerationSettings`` into concrete trajectories, reproducibly.

Trajectory i of a run gets its own seed derived from (run seed, i), and
with it its domain, persona, difficulty, task count, reference time and
language, so the same ``--seed`` always plans the same dialogues. Personas
sampled for the run (``--personas N``) are dealt evenly instead: trajectory
i gets the (i mod N)-th of a seeded shuffle, so no persona is used twice
before every other has been used once. Imported conversations
(``dialogforge.inputs.conversations``) become starting states here too, and a
tool library's trajectories get its tools here (``with_library``): all of
them, or a coherent subset drawn from a stream of the trajectory's own.
"""

from __future__ import annotations

import hashlib
import random
import uuid

from dialogforge.config import GenerationSettings
from dialogforge.graphs.state import DialogueState
from dialogforge.inputs.conversations import DOMAIN_CHARS, ImportedConversation
from dialogforge.inputs.tool_library import ToolLibrary, coherent_subset
from dialogforge.records import Counters, Difficulty, LibraryRef, Mode, Scenario, ToolSource, ToolSpec


def trajectory_seed(run_seed: int, index: int) -> int:
    digest = hashlib.sha256(f"{run_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def initial_state(settings: GenerationSettings, index: int, tools: list[ToolSpec]) -> DialogueState:
    seed = trajectory_seed(settings.seed, index)
    rng = random.Random(seed)
    if settings.sample_personas and settings.personas:
        persona = dealt_persona(settings.personas, settings.seed, index)
    else:
        persona = rng.choice(settings.personas) if settings.personas else None
    scenario = Scenario(
        domain=rng.choice(settings.domains),
        persona=persona,
        difficulty=rng.choice(list(Difficulty)),
        target_tasks=task_count(seed, settings.limits.max_tasks) if settings.mode is Mode.USER else 1,
    )
    reference = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(8, 19):02d}:{rng.choice(['00', '15', '30', '45'])}:00Z"
    source = settings.tool_source if tools else ToolSource.SYNTHESIZE
    return DialogueState(
        mode=settings.mode, seed=seed, scenario=scenario, limits=settings.limits, simulation=settings.simulation,
        tool_source=source, tools=tools, reference_time=reference, tool_exec=settings.tool_exec,
        language=language_of(settings, scenario),
    )


def language_of(settings: GenerationSettings, scenario: Scenario) -> str | None:
    """The most specific language given: the persona's, else the domain's, else the run's."""
    return (settings.persona_languages.get(scenario.persona or "")
            or settings.domain_languages.get(scenario.domain) or settings.language)


def dealt_persona(personas: list[str], run_seed: int, index: int) -> str:
    order = list(range(len(personas)))
    random.Random(f"{run_seed}:personas").shuffle(order)
    return personas[order[index % len(order)]]


TASKS_RATIO = 0.62  # P(k+1 tasks) / P(k tasks): a mean of about 2.6 tasks when up to 20 are allowed


def task_count(seed: int, max_tasks: int) -> int:
    """How many objectives a user brings: geometric, truncated at ``max_tasks``.

    Most sessions hold one to three tasks and a few run long, the shape of
    the paper's Table 1 (Task means 2.48-3.02, maxima 20); a uniform draw up
    to a cap of 20 would make the mean ten tasks and the cost five times the
    paper's. Its own random stream, so the other per-trajectory choices do
    not depend on it.
    """
    weights = [TASKS_RATIO ** k for k in range(max_tasks)]
    draw = random.Random(f"{seed}:tasks").random() * sum(weights)
    for count, weight in enumerate(weights, start=1):
        draw -= weight
        if draw < 0:
            return count
    return max_tasks


def tool_set_index(run_seed: int, index: int, sets: int) -> int:
    """Which of ``sets`` seed tool sets trajectory ``index`` uses; a stream of its
    own, so adding tool sets leaves every other per-trajectory choice unchanged."""
    digest = hashlib.sha256(f"{run_seed}:{index}:tool-set".encode()).digest()
    return int.from_bytes(digest[:8], "big") % sets


def library_index(run_seed: int, index: int, libraries: int) -> int:
    """Which of ``libraries`` given tool libraries trajectory ``index`` runs against (a stream of its own)."""
    digest = hashlib.sha256(f"{run_seed}:{index}:tool-library".encode()).digest()
    return int.from_bytes(digest[:8], "big") % libraries


def with_library(state: DialogueState, library: ToolLibrary, subset: int | None) -> DialogueState:
    """``state`` running against ``library``: its domain, and the library's own spec objects (all of
    them, or ``subset`` that share entities, drawn from the trajectory's seed), fixed from turn one."""
    names = library.tool_names()
    if subset is not None and subset < len(names):
        names = coherent_subset(library, subset, random.Random(f"{state.seed}:tool-subset"))
    seeds = any(t.source == "seed" for t in library.tools)
    synthesized = any(t.source == "synthesized" for t in library.tools)
    source = ToolSource.SEED_PLUS if seeds and synthesized else ToolSource.SEED if seeds else ToolSource.SYNTHESIZE
    return state.model_copy(update={
        "scenario": state.scenario.model_copy(update={"domain": library.domain}),
        "tools": library.tools_named(names), "tool_source": source,
        "tool_library": LibraryRef(id=library.id, name=library.name, tools=names),
    })


def graph_input(state: DialogueState) -> dict:
    """The state as a graph input: field values as they are, not dumped to JSON."""
    return {name: getattr(state, name) for name in DialogueState.model_fields}


def conversation_states(
    settings: GenerationSettings, conversations: list[ImportedConversation], seed_tools: list[ToolSpec] | None = None
) -> list[DialogueState]:
    """The starting state of each conversation's trajectory (index i gets the run's i-th seed)."""
    return [_state(settings, i, c, seed_tools or []) for i, c in enumerate(conversations)]


def _state(settings: GenerationSettings, index: int, conversation: ImportedConversation, seed_tools: list[ToolSpec]) -> DialogueState:
    tools = conversation.tools or seed_tools
    base = initial_state(settings, index, tools)
    scenario = base.scenario
    if conversation.domain:
        scenario = scenario.model_copy(update={"domain": conversation.domain[:DOMAIN_CHARS]})
    if conversation.task is not None:
        scenario = scenario.model_copy(update={"target_tasks": 1})
    if conversation.kind == "bfcl":
        source = ToolSource.SEED
    elif conversation.tools:
        source = ToolSource.SEED_PLUS
    else:
        source = base.tool_source
    messages = conversation.messages
    users = sum(1 for m in messages if m.role == "user")
    counters = Counters(
        user_turns=users, requests=users,
        assistant_turns=sum(1 for m in messages if m.role == "assistant"),
        tool_calls=sum(len(m.tool_calls) for m in messages),
        tool_errors=sum(1 for m in messages if m.role == "tool" and m.is_error),
    )
    return base.model_copy(update={
        "scenario": scenario, "tools": tools, "tool_source": source, "messages": messages,
        "world": conversation.world, "counters": counters, "tasks": [conversation.task] if conversation.task else [],
        "pending_user_message": conversation.pending_user_message,
    })
