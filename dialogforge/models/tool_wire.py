"""A trajectory's tools as the agent's requests send and count them, made once per tool spec.

Every agent call sends the trajectory's tools and counts what they cost
against its context budget (``nodes/run_agent.py``). The tools are the same
``ToolSpec`` objects from call to call, so their wire dicts and JSON text are
derived once per spec (``dialogforge.identity``) instead of dumped and
tokenized again on every call: with a realistic library that was an eighth
of the orchestrator's CPU. The count is exactly ``estimate_json_tokens`` of
the list: ``json.dumps`` of a list is its items' texts joined by its separator.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

from dialogforge.identity import ByIdentity
from dialogforge.records import JsonObject, ToolSpec
from dialogforge.tokens import estimate_tokens

# Shared by every request that sends the spec: never mutate.
_wire: ByIdentity[ToolSpec, JsonObject] = ByIdentity(lambda spec: spec.openai_tool())
# Its text as ``estimate_json_tokens`` dumps it (compact separators, unicode kept).
_text: ByIdentity[ToolSpec, str] = ByIdentity(lambda spec: json.dumps(_wire(spec), ensure_ascii=False, separators=(", ", ": ")))


def openai_tools(tools: Sequence[ToolSpec]) -> list[JsonObject]:
    """``[t.openai_tool() for t in tools]``, each dict made once per spec."""
    return [_wire(t) for t in tools]


def tools_tokens(tools: Sequence[ToolSpec]) -> int:
    """``estimate_json_tokens(openai_tools(tools))``, counted once per distinct tool list."""
    return _counted("[" + ", ".join(_text(t) for t in tools) + "]")


@lru_cache(maxsize=256)  # trajectories of a run mostly share their domain's tool lists
def _counted(text: str) -> int:
    return estimate_tokens(text)
