"""The dialogue state and every schema a node's LLM must fill.

A trajectory is one ``DialogueState`` on one LangGraph thread. Its pieces
(messages, tools, tasks, counters, enums) are ``dialogforge.records``, shared
with the layers below the graph; everything a checkpoint holds is one of
those or plain JSON, so a checkpoint can be deserialized with an allowlist
of exactly those types. The message list is append-only and lives in a
``DeltaChannel``: each checkpoint stores only the messages written in that
step, which keeps storage linear in dialogue length.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from dialogforge.records import (
    Counters, Difficulty, GoalDigest, JsonObject, LibraryRef, Limits, McpDivergence, Message, Mode, RubricItem, Scenario,
    SqlWrite, StopReason, Strict, Task, TaskStatus, ToolExec, ToolSimulation, ToolSource, ToolSpec,
)
from dialogforge.channels import DELTA_CHANNELS


# ---------------------------------------------------------------- the state


class DialogueState(BaseModel):
    """One trajectory; a LangGraph thread holds exactly one."""

    mode: Mode = Mode.USER
    seed: int = 0
    scenario: Scenario
    limits: Limits = Field(default_factory=Limits)
    tool_source: ToolSource = ToolSource.SYNTHESIZE
    tools: list[ToolSpec] = Field(default_factory=list)
    # Set when the tools come from a tool library: they are fixed from the first turn
    # (tool synthesis adds nothing) and shared, byte for byte, with the library's other trajectories.
    tool_library: LibraryRef | None = None
    # The first task, proposed while the run was planned (so it could see the goals proposed
    # before it for the same library); task proposal adopts it instead of asking again.
    planned_task: Task | None = None
    # The goals proposed for the same library in this run, for later task proposals.
    library_goals: GoalDigest | None = None
    tasks: list[Task] = Field(default_factory=list)
    messages: Annotated[list[Message], DELTA_CHANNELS["messages"]] = Field(
        default_factory=list
    )
    # The state the conversation started from (an imported BFCL entry's initial_config), as given.
    # The simulated world's entities are not a field: they are the fold of the tool messages'
    # ``entity_ops`` (dialogforge.executors.world), so every checkpoint implies its world.
    world: JsonObject = Field(default_factory=dict)
    simulation: ToolSimulation = Field(default_factory=ToolSimulation)
    tool_exec: ToolExec = ToolExec.SIMULATED
    # Tool-Exec: the writes executed so far, in order. The trajectory's database
    # is the source database with these replayed, so a fork or a resume rebuilds it.
    sql_writes: list[SqlWrite] = Field(default_factory=list)
    # MCP: replayed calls whose answers differed from the recorded ones when a per-trajectory
    # server's state was rebuilt (resume, fork, a restarted server). Its calls are the messages.
    mcp_divergences: list[McpDivergence] = Field(default_factory=list)
    # The trajectory's "now": the agent, the user simulator and the tool simulator all get it.
    reference_time: str = "2026-01-15T09:00:00Z"
    counters: Counters = Field(default_factory=Counters)
    # A user message set from outside (a fork or an imported conversation)
    # that the user turn sends instead of asking the simulator.
    pending_user_message: str | None = None
    # The user's thanks for a finished task, said at the start of the next one.
    carryover: str | None = None
    stop_reason: StopReason | None = None
    error: str | None = None

    @property
    def active_task(self) -> Task | None:
        if self.tasks and self.tasks[-1].status is TaskStatus.ACTIVE:
            return self.tasks[-1]
        return None


# ------------------------------------------------- structured LLM outputs


class ProposedTask(Strict):
    """What the task proposer returns."""

    goal: str = Field(min_length=1, description="Declarative statement of the user's ultimate goal.")
    subtasks: list[str] = Field(min_length=1, max_length=8)
    rubric: list[RubricItem] = Field(min_length=1, max_length=10)
    difficulty: Difficulty = Difficulty.MEDIUM
    expected_tools: list[str] = Field(default_factory=list)


class UserQuestions(Strict):
    questions: list[str] = Field(min_length=1, max_length=30)


class LibraryQuestions(Strict):
    """A tool library's user questions: the paper's 20-30 (in the schema, so a grammar-constrained
    server knows), each one sentence."""

    questions: list[Annotated[str, Field(min_length=3, max_length=160)]] = Field(min_length=20, max_length=30)


class ToolDraft(Strict):
    name: str = Field(pattern=r"^(get|search|create|update|delete)_[a-z0-9_]{1,58}$")
    description: str = Field(min_length=1)
    parameters: JsonObject = Field(json_schema_extra={"x-json-schema": True})  # a JSON Schema, as data


class ToolDrafts(Strict):
    tools: list[ToolDraft] = Field(max_length=30)


class GapTool(ToolDraft):
    reason: str = Field(min_length=1, description="Which requests the existing tools cannot serve without it.")


class GapAnalysis(Strict):
    """The gap analysis: complementary tools the set is missing, each with its reason (up to 10, or none)."""

    tools: list[GapTool] = Field(max_length=10)


class ResultSchema(Strict):
    tool_name: str
    result_schema: JsonObject = Field(json_schema_extra={"x-json-schema": True})


class ResultSchemas(Strict):
    schemas: list[ResultSchema]


class UserTurn(Strict):
    """The user simulator's output, exactly the paper's shape."""

    user_message: str = Field(min_length=1)
    is_task_complete: bool


class Judgment(Strict):
    judgment: Literal["valid", "invalid"]
    reasoning: str


class RubricVerdict(Strict):
    """The judge's finding on one rubric item, by its position in the task's rubric."""

    index: int = Field(ge=0, description="Position of the rubric item in the list given.")
    met: bool = Field(description="Whether the conversation satisfies this item.")
    note: str = Field(default="", description="Evidence from the conversation, one sentence.")
    ill_posed: bool = Field(default=False, description="The item itself cannot be checked from a conversation "
                                                       "(the paper's Invalid category); it then decides nothing.")


class TaskJudgment(Judgment):
    """The judge's verdict on one task: the paper's shape plus a verdict per rubric item,
    so a failed critical item can invalidate the task whatever the overall judgment says."""

    items: list[RubricVerdict] = Field(default_factory=list)
