"""dialogforge: multi-turn, tool-using dialogue training data from a simulated user.

This module is the library face: every operation a script needs, by one
name each, the command line being a thin layer over the same functions.

    import dialogforge as df

    models = df.ModelsConfig(default=df.ModelConfig(backend="openai", base_url="http://127.0.0.1:8000/v1", model="m"))
    result = df.generate("run.db", df.GenerationSettings(n=100, seed=1, domains=["airline bookings"]), models)
    state = df.load_state("run.db", result.thread_ids[0])   # a DialogueState
    df.validate("run.db")
    df.export("run.db", "train.jsonl", "openai", valid_only=True)
    library = df.build_tool_library("airline bookings", models, out="airline.json")  # tools prepared once
    df.generate("lib.db", df.GenerationSettings(n=50), models, tool_libraries=[library])

Names resolve on first use (PEP 562), so ``import dialogforge`` stays cheap
and the command line's ``--help`` never loads LangGraph or the OpenAI SDK.
The packages behind them, top layer first: ``dialogforge.cli`` (``scripts/``),
``dialogforge.dataset`` and ``dialogforge.viewer``, ``dialogforge.runs``
(generate, resume, fork, history), ``dialogforge.graphs`` (``graphs/``) over
``dialogforge.nodes`` (``nodes/``), then storage (``dialogforge.checkpoints``,
``checkpoints/``), the tool executors, the input readers, the model layer,
and at the bottom configuration, records and errors.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> "module:attribute"
_FACE = {
    # run trajectories
    "generate": "dialogforge.runs.generate:generate",
    "resume": "dialogforge.runs.resume:resume_run",
    "fork": "dialogforge.runs.fork:fork_trajectory",
    "history": "dialogforge.runs.history:history",
    "load_state": "dialogforge.runs.reading:load_state",
    # tool preparation, once per domain
    "build_tool_library": "dialogforge.runs.tool_libraries:build_tool_library",
    "load_tool_library": "dialogforge.inputs.tool_library:load_tool_library",
    "write_tool_library": "dialogforge.inputs.tool_library:write_tool_library",
    "ToolLibrary": "dialogforge.inputs.tool_library:ToolLibrary",
    # from trajectories to a dataset
    "validate": "dialogforge.dataset.validate:validate",
    "export": "dialogforge.dataset.export:export",
    "stats": "dialogforge.dataset.stats:collect_stats",
    # the graph, for users compiling it themselves
    "build_graph": "dialogforge.graphs.builder:build_graph",
    "compile_graph": "dialogforge.graphs.builder:compile_graph",
    "GraphContext": "dialogforge.graphs.context:GraphContext",
    "DialogueState": "dialogforge.graphs.state:DialogueState",
    "sqlite_checkpointer": "dialogforge.checkpoints.sqlite_savers:sqlite_checkpointer",
    "ModelSet": "dialogforge.models:ModelSet",
    # configuration and records
    "GenerationSettings": "dialogforge.config:GenerationSettings",
    "ModelsConfig": "dialogforge.config:ModelsConfig",
    "ModelConfig": "dialogforge.config:ModelConfig",
    "Role": "dialogforge.config:Role",
    "Limits": "dialogforge.records:Limits",
    "ToolSimulation": "dialogforge.records:ToolSimulation",
    "Mode": "dialogforge.records:Mode",
    "ToolExec": "dialogforge.records:ToolExec",
    "ToolSource": "dialogforge.records:ToolSource",
    "ToolSpec": "dialogforge.records:ToolSpec",
    "Message": "dialogforge.records:Message",
    "load_tools_file": "dialogforge.inputs.seed_tools:load_tools_file",
    "world_of": "dialogforge.executors.world:world_of",
    "estimate_tokens": "dialogforge.tokens:estimate_tokens",
    "DialogforgeError": "dialogforge.errors:DialogforgeError",
}

__all__ = sorted(_FACE)


def __getattr__(name: str) -> Any:
    target = _FACE.get(name)
    if target is None:
        raise AttributeError(f"module 'dialogforge' has no attribute {name!r}")
    module, attribute = target.split(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_FACE])
