"""The user turn: a simulated person who reveals a hidden goal a piece at a time.

In user mode an LLM follows the behavioural rules in
``prompts/simulate_user.md`` and decides when the goal is met. In task mode
(the paper's baseline) the whole task is handed over in the first message.
A message set from outside (a fork, an imported conversation) is sent as is.
The simulator reads the dialogue as a transcript of whole exchanges held to
its context budget (``Limits.user_context_tokens``, ``dialogforge.context_windows``);
each message it writes records the window it read.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from dialogforge.config import Role
from dialogforge.context_windows import OVERFLOW_RETRIES, transcript_window
from dialogforge.errors import ContextOverflowError, ModelCallError
from dialogforge.languages import user_instruction
from dialogforge.models import generate_structured
from dialogforge.models.convert import wire_text
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.state import DialogueState, UserTurn
from dialogforge.identity import ByIdentity
from dialogforge.records import Message, Mode, SeenContext, StopReason, TaskStatus
from dialogforge.nodes.outcome import charge, failed
from dialogforge.nodes.prompting import context_block, render
from dialogforge.tokens import MESSAGE_OVERHEAD, estimate_tokens

NOTE_CHARS = 500  # how much of a tool result the user sees: what a person glances at on screen


async def simulate_user(state: DialogueState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    if state.counters.user_turns >= state.limits.max_user_turns:
        return {"stop_reason": StopReason.MAX_USER_TURNS}
    update: dict[str, Any] = {}
    seen: SeenContext | None = None
    if state.pending_user_message is not None:
        turn = UserTurn(user_message=state.pending_user_message, is_task_complete=False)
        update["pending_user_message"] = None
    elif state.mode is Mode.TASK:
        turn = UserTurn(user_message=_whole_task(state), is_task_complete=False)
    else:
        model = runtime.context.models[Role.USER_SIMULATOR]
        try:
            turn, usage, seen = await _ask(model, state)
        except ModelCallError as exc:
            return failed(exc, state, model.role)
        update.update(charge(state, state.counters, model.role, usage))
    counters = update.get("counters", state.counters)
    if turn.is_task_complete:
        return {**update, **_complete_task(state, counters, turn.user_message, seen)}
    text = f"{state.carryover} {turn.user_message}" if state.carryover else turn.user_message
    message = Message(role="user", content=text, task_index=len(state.tasks) - 1, context=seen)
    counters = counters.model_copy(update={"user_turns": counters.user_turns + 1, "requests": counters.requests + 1})
    return {**update, "messages": [message], "counters": counters, "carryover": None}


async def _ask(model, state: DialogueState) -> tuple[UserTurn, Any, SeenContext]:
    """One simulator call on its window; an endpoint's refusal as too long shrinks the window (twice at most)."""
    instructions = _instructions(state)
    goal = _goal_message(state)
    fixed = estimate_tokens(instructions) + estimate_tokens(goal) + 2 * MESSAGE_OVERHEAD
    limit = None  # the model's context, once a refusal names it
    for refused in range(OVERFLOW_RETRIES + 1):
        window = transcript_window(state.messages, cost=transcript_tokens, fixed=fixed, refused=refused, role=model.role,
                                   model_context=limit, budget=state.limits.user_context_tokens, flag="--user-context-tokens")
        messages = [SystemMessage(instructions), *_transcript(state.messages[window.start:]), HumanMessage(goal)]
        try:
            turn, usage = await generate_structured(model, UserTurn, messages, seed=state.seed)
        except ContextOverflowError as exc:
            if refused == OVERFLOW_RETRIES:
                raise
            limit = exc.model_context or limit
            continue
        reported = usage.prompt if usage.calls == 1 and usage.prompt else None
        return turn, usage, window.model_copy(update={"prompt_tokens": reported})
    raise AssertionError("unreachable")  # the loop returns or raises


def _complete_task(state: DialogueState, counters, acknowledgement: str, seen: SeenContext | None) -> dict[str, Any]:
    tasks = [*state.tasks[:-1], state.tasks[-1].model_copy(update={"status": TaskStatus.COMPLETED})]
    counters = counters.model_copy(update={"tasks_completed": counters.tasks_completed + 1})
    last = counters.tasks_completed >= min(state.scenario.target_tasks, state.limits.max_tasks)
    if not last:
        # The thanks opens the next task's first message, so user turns never stack up.
        return {"tasks": tasks, "counters": counters, "carryover": acknowledgement}
    counters = counters.model_copy(update={"user_turns": counters.user_turns + 1})
    closing = Message(role="user", content=acknowledgement, task_index=len(state.tasks) - 1, context=seen)
    return {"tasks": tasks, "counters": counters, "messages": [closing], "stop_reason": StopReason.COMPLETED}


def _whole_task(state: DialogueState) -> str:
    task = state.tasks[-1]
    return render("task_request", goal=task.goal, subtasks="\n".join(f"- {s}" for s in task.subtasks)).strip()


def _instructions(state: DialogueState) -> str:
    persona = f"\nYou are: {state.scenario.persona}" if state.scenario.persona else ""
    return render("simulate_user", persona=persona, language=user_instruction(state.language))


def _goal_message(state: DialogueState) -> str:
    task = state.tasks[-1]
    own_turns = sum(1 for m in state.messages if m.role == "user" and m.task_index == len(state.tasks) - 1)
    context = {
        "current_time": state.reference_time,  # the same "now" the agent and the tool backend have
        "goal": task.goal,
        "subtasks": task.subtasks,
        "turns_on_this_goal": own_turns,
        "earlier_goals": [t.goal for t in state.tasks[:-1]],
    }
    return "Your hidden goal and progress:\n" + context_block(context) + "\nWrite your next message."


def _transcript(messages: list[Message]) -> list[dict[str, Any]]:
    """The conversation seen from the user's side: the assistant speaks to them, tools are glimpsed.
    Each line is made once per message (``_lines``), as the wire dict it is sent as: every later
    user turn sends it again."""
    out: list[dict[str, Any]] = []
    tool_notes: list[str] = []
    for m in messages:
        if m.role == "user":
            out.append(_user_line(m))
        elif m.role == "tool":
            tool_notes.append(_tool_note(m))
        elif m.role == "assistant" and m.content:
            made = _lines(m)
            key = tuple(tool_notes)  # by value: the notes that came before this reply
            line = made.get(key)
            if line is None:
                line = made[key] = wire_text("user", "\n".join([*tool_notes, m.content]))
            out.append(line)
            tool_notes = []
    return out


_user_line: ByIdentity[Message, dict[str, Any]] = ByIdentity(lambda m: wire_text("assistant", m.content))
_lines: ByIdentity[Message, dict[tuple[str, ...], dict[str, Any]]] = ByIdentity(lambda _m: {})


def _note(m: Message) -> str:
    return f"[{m.name} returned{' an error' if m.is_error else ''}: {m.content[:NOTE_CHARS]}]"


_tool_note: ByIdentity[Message, str] = ByIdentity(_note)


def transcript_tokens(m: Message) -> int:
    """What a message adds to the user simulator's transcript (``_transcript``)."""
    if m.role == "tool":
        return estimate_tokens(_tool_note(m)) + 1
    if m.role == "user" or (m.role == "assistant" and m.content):
        return estimate_tokens(m.content) + MESSAGE_OVERHEAD
    return 0
