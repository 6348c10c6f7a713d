"""The records every layer shares: messages, tool specs, tasks, usage counters, enums.

They are the pieces of a trajectory's state (``dialogforge.graphs.state``) and
what a checkpoint stores, so storage, the model layer, the tool executors and
the input readers use them without knowing the graph. A checkpoint may
revive exactly these types (``dialogforge.checkpoints.serde``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, Self, Sequence

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

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


class _Numerous(Strict):
    """A record there are thousands of in memory: a dialogue's messages and their parts, and
    its counters (a new ``Counters`` and ``TokenUsage`` per step, a usage per role).

    Pydantic gives each instance its own set of the field names it was given
    (``model_fields_set``): 728 bytes for five names or more, half of what a
    message and its parts cost in memory (measured in the throughput
    benchmark, issue 23). Nothing of dialogforge tells a default from a value
    given on these records (no ``exclude_unset``; LangGraph reads the set only
    of a node's update, which is never one of them), so every instance holds
    its class's one set of all its fields. Setting a field adds a name that is
    there already, and so does ``model_copy``'s update of its copy's set: the
    shared set never changes. Copies share it too (the agent's every reply is
    a copy with its context).
    """

    def model_post_init(self, context: object, /) -> None:
        self._share_fields_set()

    def __copy__(self) -> Self:
        return super().__copy__()._share_fields_set()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        return super().__deepcopy__(memo)._share_fields_set()

    def _share_fields_set(self) -> Self:
        object.__setattr__(self, "__pydantic_fields_set__", _all_fields(type(self)))
        return self


_ALL_FIELDS: dict[type, set[str]] = {}


def _all_fields(cls: type[BaseModel]) -> set[str]:
    found = _ALL_FIELDS.get(cls)
    if found is None:
        found = _ALL_FIELDS[cls] = set(cls.model_fields)
    return found


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
    (``dialogforge.dataset.cut``). The context budgets bound one request, not
    the trajectory: past them the oldest exchanges leave the window.
    """

    max_user_turns: int = Field(default=250, ge=1)
    max_tool_steps: int = Field(default=128, ge=1)
    max_tasks: int = Field(default=20, ge=1)
    # All roles' prompt + completion tokens: about 200 calls with a full context.
    token_budget: int | None = Field(default=4_000_000, ge=1)
    # What one request of the agent and of the user simulator may hold, in estimated tokens of
    # the whole request (instructions, tools, conversation), like ``ToolSimulation.context_tokens``
    # for the tool simulator; sized for a 32k-context model (see ``dialogforge.context_windows``).
    agent_context_tokens: int = Field(default=24_000, ge=2_000)
    user_context_tokens: int = Field(default=16_000, ge=2_000)
    # Before context budgets the agent saw its last N messages. Kept so the windows of trajectories
    # generated then (no ``Message.context``) can be rebuilt; no new trajectory uses it.
    history_window: int = Field(default=80, ge=4)


class ToolSimulation(Strict):
    """How the simulated tool backend behaves; kept in the state so forks and resumes behave alike.

    ``context_tokens`` bounds the tool simulator's whole request (instructions
    and context, estimated by ``dialogforge.tokens``): the default leaves half
    of a 32k-context model for its reasoning and the result.
    ``tool_error_rate`` is the share of valid calls that meet a transient
    backend failure instead of an answer (0 disables). ``max_result_chars``
    bounds one result as the agent reads it; a longer one is cut, visibly.
    """

    context_tokens: int = Field(default=16_000, ge=2_000)
    tool_error_rate: float = Field(default=0.02, ge=0, le=0.5)
    max_result_chars: int = Field(default=8_000, ge=200)


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
    """What answers tool calls: an LLM world model, real SQL (the paper's Tool-Exec), or a real MCP server."""

    SIMULATED = "simulated"
    SQL = "sql"
    MCP = "mcp"


class SqlWrite(Strict):
    """One executed tool call that changed data: replaying it redoes the change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str = Field(min_length=1)
    arguments: JsonObject = Field(default_factory=dict)


class SqlBinding(Strict):
    """An executable tool: one parameterized statement of a declared kind."""

    kind: SqlKind
    statement: str = Field(min_length=1)


class McpBinding(Strict):
    """What an MCP tool list said about a tool beyond its OpenAI shape.

    ``name`` is the server's own name (``tools/call`` needs it; the spec's
    name may be a sanitized one). ``read_only`` is ``annotations.readOnlyHint``:
    only calls of tools that are not read-only are replayed to rebuild a
    server's state. The hints are the server's claims, kept as given (None:
    not said; MCP's defaults then are "not read-only" and "destructive").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    title: str | None = None
    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    open_world: bool | None = None

    @property
    def replayed(self) -> bool:
        """Whether a call may have changed the server's state (MCP: not read-only unless it says so)."""
        return self.read_only is not True


class McpDivergence(Strict):
    """A replayed call whose answer differs from the one the trajectory recorded.

    Rebuilding a per-trajectory MCP server replays the trajectory's recorded
    non-read-only calls in order; a different answer means the server's state
    may now differ from what the dialogue shows. It is kept, never hidden.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    position: int = Field(ge=0)  # which replayed call (0 = the first) of this rebuild
    tool: str
    arguments: JsonObject = Field(default_factory=dict)
    recorded: str
    replayed: str
    recorded_error: bool = False
    replayed_error: bool = False


class ToolSpec(Strict):
    """An OpenAI function tool plus the JSON Schema of what it returns."""

    type: Literal["function"] = "function"
    function: FunctionSpec
    result_schema: JsonObject = Field(default_factory=lambda: {"type": "object"})
    source: Literal["seed", "synthesized"] = "synthesized"
    sql: SqlBinding | None = None
    # A tool read from an MCP tool list or server. Left out of dumps when absent, so every other
    # tool serializes as it always did (validation fingerprints, config hashes stay put).
    mcp: McpBinding | None = Field(default=None, exclude_if=lambda value: value is None)

    @property
    def name(self) -> str:
        return self.function.name

    def openai_tool(self) -> JsonObject:
        """The spec as sent to a chat-completions endpoint."""
        return {"type": "function", "function": self.function.model_dump()}


# ---------------------------------------------------------------- the simulated world


class ToolErrorKind(StrEnum):
    """Why a tool call failed, as its error result names it (``code``) and the counters count it."""

    INVALID_CALL = "invalid_call"  # unknown tool, or arguments that break its schema: never executed
    NOT_FOUND = "not_found"  # an id the world does not hold and the dialogue does not imply
    CONFLICT = "conflict"  # clashes with the world's state: a double booking, a duplicate
    INVALID_TRANSITION = "invalid_transition"  # a state change the entity's status forbids
    UNAVAILABLE = "unavailable"  # a transient backend failure (``ToolSimulation.tool_error_rate``)
    FAILED = "failed"  # Tool-Exec: the statement failed (a constraint, a limit)


class EntityOp(_Numerous):
    """What one tool call did to, or showed of, one entity of the system."""

    # The simulated world is the fold of these over the trajectory's tool messages, in
    # order (dialogforge.executors.world), so any checkpoint implies it. (The docstring
    # above is what the tool simulator reads in its answer schema.)

    op: Literal["create", "update", "delete", "read"] = Field(
        description="create: a new entity; update: changed fields only; delete: removed; read: a record the result showed.")
    kind: str = Field(min_length=1, description="The entity's type, singular snake_case: order, ticket, customer.")
    id: str = Field(min_length=1, description="The entity's id, as the arguments or the result give it.")
    fields: JsonObject = Field(
        default_factory=dict,
        description="create and read: the record's fields; update: only the fields that changed; delete: empty.")

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class LibraryRef(Strict):
    """Which tool library a trajectory's tools come from (``dialogforge.inputs.tool_library``).

    The trajectory's ``tools`` are exactly these library tools, in library
    order, fixed from its first turn; the library itself is stored once in the
    run's database, so a planned row need not repeat the specs.
    """

    id: str = Field(min_length=1)  # the library's content digest
    name: str = ""
    tools: list[str] = Field(default_factory=list)  # the whole library, or a coherent subset of it


class GoalDigest(Strict):
    """What a task proposer is told of the goals already proposed for the same library in
    this run, kept small: how many, the latest few, and how often each tool was expected."""

    count: int = Field(default=0, ge=0)
    recent: list[str] = Field(default_factory=list)
    tools_used: dict[str, int] = Field(default_factory=dict)


# ---------------------------------------------------------------- messages


class ToolCall(_Numerous):
    id: str
    name: str
    arguments: JsonObject = Field(default_factory=dict)
    # Set when the model's argument string was not a JSON object.
    raw_arguments: str | None = None


class SeenContext(_Numerous):
    """What the model that wrote a message was sent of the conversation (``dialogforge.context_windows``).

    Kept on the agent's messages and on the user simulator's, so an export can
    rebuild exactly what each assistant turn was generated from, and the next
    request's window is computed from the last one instead of from the whole
    dialogue. Positions index the trajectory's messages.
    """

    start: int = Field(ge=0)  # the first message of the window
    # The agent only: when the window starts inside an exchange (its tool loop outgrew the budget), that
    # exchange's user message, sent first.
    request: int | None = Field(default=None, ge=0)
    tokens: int = Field(default=0, ge=0)  # the conversation as sent (window, and this loop's reasoning), estimated
    loop_reasoning: int = Field(default=0, ge=0)  # the part of ``tokens`` that is this tool loop's earlier reasoning
    estimated: int = Field(default=0, ge=0)  # the whole request (instructions, tools, conversation), estimated
    prompt_tokens: int | None = Field(default=None, ge=0)  # the endpoint's own count of the request, when it gave one
    # The agent only: the reply came on a second request that added a nudge (its first was empty) or a
    # correction (invalid JSON under the plain protocol), so no sample holds what it was generated
    # from and exports do not train it.
    nudged: bool = False
    # The share of the budget the window was held to: below 1 once the endpoint refused a request as
    # longer than its context (its context is smaller than the budget); later windows keep it.
    scale: float = Field(default=1.0, gt=0, le=1)


class Message(_Numerous):
    """One chat message in OpenAI roles, with what training data needs kept."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    reasoning: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    task_index: int | None = None
    # Tool messages of the simulated backend: what the call did to the world and what it read of it.
    entity_ops: list[EntityOp] = Field(default_factory=list)
    # Messages a model wrote (the agent's, the user simulator's): what it was sent. None on messages
    # from outside (an import, a fork's user message) and on those written before context budgets.
    context: SeenContext | None = None


def append_messages(current: list[Message], writes: Sequence[list[Message]]) -> list[Message]:
    """Append-only reducer: associative, so DeltaChannel may replay in batches."""
    merged = list(current)
    for batch in writes:
        merged.extend(batch)
    return merged


# ---------------------------------------------------------------- counters


class TokenUsage(_Numerous):
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


class Counters(_Numerous):
    user_turns: int = 0
    assistant_turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    tool_error_kinds: dict[str, int] = Field(default_factory=dict)  # tool_errors by ToolErrorKind value
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
