"""The LLM world model that answers tool calls when no real backend exists.

It sees the call, the tool's result schema, the world state and recent
conversation, and returns a result plus the world changes, so later results
stay consistent with earlier ones. A result that breaks the result schema is
sent back with the violation, a bounded number of times.
"""

from __future__ import annotations

import json
from typing import Any

from dialogforge.models import RoleModel, generate_structured
from pydantic import Field, JsonValue

from dialogforge.records import JsonObject, Strict, ToolCall, ToolSpec
from dialogforge.prompts import prompt_messages
from dialogforge.executors.contract import ExecutionOutcome, Trajectory
from dialogforge.tool_checks import first_violation

_RECENT = 6


class ToolResult(Strict):
    """The tool simulator's output: a result plus the world-state changes."""

    result: JsonValue
    world_updates: JsonObject = Field(default_factory=dict)


class SimulatedToolExecutor:
    def __init__(self, model: RoleModel):
        self.model = model

    def task_context(self, state: Trajectory) -> dict[str, Any]:
        return {"world_state": state.world} if state.world else {}

    async def execute(self, state: Trajectory, spec: ToolSpec, call: ToolCall) -> ExecutionOutcome:
        context = {
            "tool": spec.name,
            "description": spec.function.description,
            "arguments": call.arguments,
            "result_schema": spec.result_schema,
            "world": state.world,
            "reference_time": state.reference_time,
            "recent_conversation": [
                {"role": m.role, "content": m.content[:400]} for m in state.messages[-_RECENT:] if m.content
            ],
        }

        def matches_schema(value: ToolResult) -> str | None:
            problem = first_violation(spec.result_schema, value.result)
            return f"result breaks the tool's result schema at {problem}" if problem else None

        result, usage = await generate_structured(
            self.model, ToolResult, prompt_messages("dialogforge.executors.prompts", "simulate_tool", context), seed=state.seed, check=matches_schema
        )
        return ExecutionOutcome(
            content=json.dumps(result.result, ensure_ascii=False),
            world_updates=result.world_updates,
            usage=usage,
        )
