"""The LLM world model that answers tool calls when no real backend exists.

It answers like an honest backend: consistent with the world's entities,
every earlier call and what the user said (``executors.memory`` builds that
context within the token budget), and failing where a real system would
(not found, conflict, invalid transition). Each answer reports what the call
created, updated, deleted or read (``EntityOp``), which the tool message
keeps, so the world is the fold of the trajectory's messages
(``executors.world``). A share of calls (``tool_error_rate``) meets a
transient backend failure instead, drawn from the trajectory's seed, so the
data holds recoveries and a resume draws the same. An answer that breaks the
result schema, or contradicts the world, is sent back with the problem, a
bounded number of times.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, JsonValue

from dialogforge.executors.bounded import bounded_result
from dialogforge.executors.contract import ExecutionOutcome, Trajectory
from dialogforge.executors.memory import simulator_block
from dialogforge.executors.world import World, world_of
from dialogforge.models import RoleModel, generate_structured
from dialogforge.prompts import block_messages, render
from dialogforge.records import EntityOp, Strict, ToolCall, ToolErrorKind, ToolSpec
from dialogforge.tool_checks import first_violation

PROMPTS = "dialogforge.executors.prompts"
TRANSIENT_MESSAGES = (
    "503 Service Unavailable: the backend is temporarily unavailable; retry the request.",
    "504 Gateway Timeout: the backend did not answer in time; retry the request.",
    "429 Too Many Requests: rate limit exceeded; retry in a few seconds.",
)


class ToolFailure(Strict):
    code: Literal["not_found", "conflict", "invalid_transition"]
    message: str = Field(min_length=1, description="What the system says, one sentence naming the id or state.")


class ToolResult(Strict):
    """The backend's answer: the result or an error, plus the entities the call touched or showed."""

    result: JsonValue = Field(description="The tool's return value, matching its result schema; null when error is set.")
    error: ToolFailure | None = None
    entities: list[EntityOp] = Field(default_factory=list)


class SimulatedToolExecutor:
    def __init__(self, model: RoleModel):
        self.model = model

    def task_context(self, state: Trajectory) -> dict[str, Any]:
        context: dict[str, Any] = {"world_state": state.world} if state.world else {}
        live = world_of(state.messages).live()[-20:]
        if live:
            context["known_entities"] = [{"kind": e.kind, "id": e.id, **e.fields} for e in live]
        return context

    async def execute(self, state: Trajectory, spec: ToolSpec, call: ToolCall) -> ExecutionOutcome:
        settings = state.simulation
        position = sum(1 for m in state.messages if m.role == "tool")  # this call's place in the trajectory
        transient = transient_failure(state.seed, position, call, settings.tool_error_rate)
        if transient is not None:
            return failure(ToolErrorKind.UNAVAILABLE, transient)
        world = world_of(state.messages)
        instructions = render(PROMPTS, "simulate_tool")
        block = simulator_block(state, spec, call, world, instructions=instructions, budget=settings.context_tokens)
        answer, usage = await generate_structured(
            self.model, ToolResult, block_messages(PROMPTS, "simulate_tool", block), seed=state.seed,
            check=lambda value: answer_problem(spec, world, value),  # type: ignore[arg-type]
        )
        if answer.error is not None:
            outcome = failure(ToolErrorKind(answer.error.code), answer.error.message)
            outcome.usage = usage
            return outcome
        return ExecutionOutcome(content=bounded_result(answer.result, settings.max_result_chars),
                                entity_ops=answer.entities, usage=usage)


def failure(kind: ToolErrorKind, message: str) -> ExecutionOutcome:
    """An error result as the agent reads it: the system's message and its kind."""
    return ExecutionOutcome(content=json.dumps({"error": message, "code": kind.value}, ensure_ascii=False),
                            is_error=True, error_kind=kind)


def transient_failure(seed: int, position: int, call: ToolCall, rate: float) -> str | None:
    """The transient failure this call meets, if its draw falls under ``rate``: a pure function of
    the trajectory's seed and the call, so a resume or a replay draws the same."""
    if rate <= 0:
        return None
    digest = hashlib.sha256(f"{seed}:{position}:{call.id}:{call.name}:transient".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return TRANSIENT_MESSAGES[digest[8] % len(TRANSIENT_MESSAGES)] if draw < rate else None


def answer_problem(spec: ToolSpec, world: World, answer: ToolResult) -> str | None:
    """Why an answer cannot stand: a result off its schema, or changes the world contradicts."""
    if answer.error is not None:
        return "a failed call changes nothing: leave `entities` empty when `error` is set" if answer.entities else None
    problem = first_violation(spec.result_schema, answer.result)
    if problem:
        return f"result breaks the tool's result schema at {problem}"
    for op in answer.entities:
        known = world.get(op.kind, op.id)
        if op.op == "create" and known is not None and not known.deleted:
            return f"{op.kind} {op.id!r} already exists: report a conflict error, or an update"
        if op.op != "create" and known is not None and known.deleted:
            return f"{op.kind} {op.id!r} was deleted: report a not_found error"
    return None
