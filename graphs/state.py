"""The dialogue state and every schema an LLM must fill.

Everything a checkpoint holds is one of these pydantic models or plain JSON,
so a checkpoint can be deserialized with an allowlist of exactly these types
(see ``checkpoints.serde``). The message list is append-only and lives in a
``DeltaChannel``: each checkpoint stores only the messages written in that
step, which keeps storage linear in dialogue length.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Sequence

from langgraph.channels.delta import DeltaChannel
from pydantic import BaseModel, ConfigDict, Field, JsonValue

JsonObject = dict[str, JsonValue]


class Mode(StrEnum):
    """User-oriented (the paper's contribution) or task-oriented (baseline)."""

    USER = "user"
    TASK = "task"


class Difficulty(StrEnum):
    EASY = "easy"
    MEDIUM = "medium"
    HARD = "hard"


class StopReason(StrEnum):
    """Why a trajectory ended; caps are the reasons a validator rejects."""

    COMPLETED = "completed"  # the user signalled completion of the last task
    AGENT_FINISHED = "agent_finished"  # task mode: the agent gave its answer
    MAX_USER_TURNS = "max_user_turns"
    MAX_TOOL_STEPS = "max_tool_steps"
    BUDGET = "budget"
    ERROR = "error"


CAP_STOP_REASONS = frozenset(
    {StopReason.MAX_USER_TURNS, StopReason.MAX_TOOL_STEPS, StopReason.BUDGET}
)


class TaskStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    UNFINISHED = "unfinished"


class RubricCategory(StrEnum):
    CRITICAL = "critical"
    STRUCTURAL = "structural"
    NON_CRITICAL = "noncritical"
    INVALID = "invalid"


class ToolSource(StrEnum):
    """Where a trajectory's tools come from."""

    SYNTHESIZE = "synthesize"  # no seed tools: synthesize the whole set
    SEED = "seed"  # seed tools only
    SEED_PLUS = "seed_plus"  # seed tools, extended by synthesis


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- scenario


class Scenario(Strict):
    domain: str = Field(min_length=1)
    persona: str | None = None
    difficulty: Difficulty = Difficulty.MEDIUM
    target_tasks: int = Field(default=1, ge=1)  # objectives this user brings to the session


class Limits(Strict):
    """Caps that bound a trajectory; kept in the state so forks inherit them."""

    max_user_turns: int = Field(default=30, ge=1)
    max_tool_steps: int = Field(default=8, ge=1)
    max_tasks: int = Field(default=3, ge=1)
    token_budget: int | None = Field(default=None, ge=1)
    history_window: int = Field(default=80, ge=4)  # messages the agent sees


# ---------------------------------------------------------------- tasks


class RubricItem(Strict):
    criterion: str = Field(min_length=1)
    category: RubricCategory = RubricCategory.CRITICAL


class Task(Strict):
    """A latent user goal: declarative, never shown to the agent verbatim."""

    goal: str = Field(min_length=1)
    subtasks: list[str] = Field(min_length=1)
    rubric: list[RubricItem] = Field(min_length=1)
    difficulty: Difficulty = Difficulty.MEDIUM
    expected_tools: list[str] = Field(default_factory=list)
    status: TaskStatus = TaskStatus.ACTIVE


# ---------------------------------------------------------------- tools


class FunctionSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    parameters: JsonObject = Field(default_factory=lambda: {"type": "object", "properties": {}})


class SqlKind(StrEnum):
    SELECT = "SELECT"
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class ToolExec(StrEnum):
    """What answers tool calls: an LLM world model, or real SQL (the paper's Tool-Exec)."""

    SIMULATED = "simulated"
    SQL = "sql"


class SqlWrite(Strict):
    """One executed tool call that changed data: replaying it redoes the change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str = Field(min_length=1)
    arguments: JsonObject = Field(default_factory=dict)


class SqlBinding(Strict):
    """An executable tool: one parameterized statement of a declared kind."""

    kind: SqlKind
    statement: str = Field(min_length=1)


class ToolSpec(Strict):
    """An OpenAI function tool plus the JSON Schema of what it returns."""

    type: Literal["function"] = "function"
    function: FunctionSpec
    result_schema: JsonObject = Field(default_factory=lambda: {"type": "object"})
    source: Literal["seed", "synthesized"] = "synthesized"
    sql: SqlBinding | None = None

    @property
    def name(self) -> str:
        return self.function.name

    def openai_tool(self) -> JsonObject:
        """The spec as sent to a chat-completions endpoint."""
        return {"type": "function", "function": self.function.model_dump()}


# ---------------------------------------------------------------- messages


class ToolCall(Strict):
    id: str
    name: str
    arguments: JsonObject = Field(default_factory=dict)
    # Set when the model's argument string was not a JSON object.
    raw_arguments: str | None = None


class Message(Strict):
    """One chat message in OpenAI roles, with what training data needs kept."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    reasoning: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    task_index: int | None = None


def append_messages(current: list[Message], writes: Sequence[list[Message]]) -> list[Message]:
    """Append-only reducer: associative, so DeltaChannel may replay in batches."""
    merged = list(current)
    for batch in writes:
        merged.extend(batch)
    return merged


# ---------------------------------------------------------------- counters


class TokenUsage(Strict):
    prompt: int = 0
    completion: int = 0
    reasoning: int = 0
    calls: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    def plus(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt=self.prompt + other.prompt,
            completion=self.completion + other.completion,
            reasoning=self.reasoning + other.reasoning,
            calls=self.calls + other.calls,
        )


class Counters(Strict):
    user_turns: int = 0
    assistant_turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    requests: int = 0  # user messages that asked the agent for something
    steps_this_request: int = 0  # agent tool rounds since the last user message
    step_counts: list[int] = Field(default_factory=list)  # tool rounds per finished request
    tasks_completed: int = 0
    usage: dict[str, TokenUsage] = Field(default_factory=dict)  # per role

    @property
    def total_tokens(self) -> int:
        return sum(u.total for u in self.usage.values())

    def with_usage(self, role: str, usage: TokenUsage) -> Counters:
        merged = dict(self.usage)
        merged[role] = merged.get(role, TokenUsage()).plus(usage)
        return self.model_copy(update={"usage": merged})


# ---------------------------------------------------------------- the state


class DialogueState(BaseModel):
    """One trajectory; a LangGraph thread holds exactly one."""

    mode: Mode = Mode.USER
    seed: int = 0
    scenario: Scenario
    limits: Limits = Field(default_factory=Limits)
    tool_source: ToolSource = ToolSource.SYNTHESIZE
    tools: list[ToolSpec] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)
    messages: Annotated[list[Message], DeltaChannel(append_messages)] = Field(
        default_factory=list
    )
    world: JsonObject = Field(default_factory=dict)
    tool_exec: ToolExec = ToolExec.SIMULATED
    # Tool-Exec: the writes executed so far, in order. The trajectory's database
    # is the source database with these replayed, so a fork or a resume rebuilds it.
    sql_writes: list[SqlWrite] = Field(default_factory=list)
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


class ToolDraft(Strict):
    name: str = Field(pattern=r"^(get|search|create|update|delete)_[a-z0-9_]{1,58}$")
    description: str = Field(min_length=1)
    parameters: JsonObject = Field(json_schema_extra={"x-json-schema": True})  # a JSON Schema, as data


class ToolDrafts(Strict):
    tools: list[ToolDraft] = Field(max_length=30)


class ResultSchema(Strict):
    tool_name: str
    result_schema: JsonObject = Field(json_schema_extra={"x-json-schema": True})


class ResultSchemas(Strict):
    schemas: list[ResultSchema]


class UserTurn(Strict):
    """The user simulator's output, exactly the paper's shape."""

    user_message: str = Field(min_length=1)
    is_task_complete: bool


class PlannedToolCall(Strict):
    name: str = Field(min_length=1)
    arguments: JsonObject = Field(default_factory=dict)


class AgentStep(Strict):
    """The agent's turn written as JSON, for servers without native tool calls (plain chat protocol)."""

    reasoning: str = ""
    reply: str = ""
    tool_calls: list[PlannedToolCall] = Field(default_factory=list)


class ToolResult(Strict):
    """The tool simulator's output: a result plus the world-state changes."""

    result: JsonValue
    world_updates: JsonObject = Field(default_factory=dict)


class Judgment(Strict):
    judgment: Literal["valid", "invalid"]
    reasoning: str


class RubricVerdict(Strict):
    """The judge's finding on one rubric item, by its position in the task's rubric."""

    index: int = Field(ge=0, description="Position of the rubric item in the list given.")
    met: bool = Field(description="Whether the conversation satisfies this item.")
    note: str = Field(default="", description="Evidence from the conversation, one sentence.")


class TaskJudgment(Judgment):
    """The judge's verdict on one task: the paper's shape plus a verdict per rubric item,
    so a failed critical item can invalidate the task whatever the overall judgment says."""

    items: list[RubricVerdict] = Field(default_factory=list)
