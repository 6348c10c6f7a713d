"""The records every layer shares: messages, tool specs, tasks, usage counters, enums.

They are the pieces of a trajectory's state (``dialogforge.graphs.state``) and
what a checkpoint stores, so storage, the model layer, the tool executors and
the input readers use them without knowing the graph. A checkpoint may
revive exactly these types (``dialogforge.checkpoints.serde``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Sequence

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
    """Caps that bound a trajectory; kept in the state so forks inherit them.

    The defaults let a dialogue grow as long as the paper's longest (Table 1:
    up to 596-780 messages, 20 tasks, 121-322 tool rounds per request); the
    token budget is what guards the cost. A trajectory stopped by any cap is
    not lost: the dataset reads it up to its last completed task
    (``dialogforge.dataset.cut``).
    """

    max_user_turns: int = Field(default=250, ge=1)
    max_tool_steps: int = Field(default=128, ge=1)
    max_tasks: int = Field(default=20, ge=1)
    # All roles' prompt + completion tokens: about 200 calls with a full history window.
    token_budget: int | None = Field(default=4_000_000, ge=1)
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
    completion: int = 0  # includes reasoning, as the APIs count it
    reasoning: int = 0
    calls: int = 0
    cached: int = 0  # of ``prompt``: read from the server's prompt cache (priced apart when the config says so)

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    def plus(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt=self.prompt + other.prompt,
            completion=self.completion + other.completion,
            reasoning=self.reasoning + other.reasoning,
            calls=self.calls + other.calls,
            cached=self.cached + other.cached,
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
