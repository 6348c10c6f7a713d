"""The user turn: a simulated person who reveals a hidden goal a piece at a time.

In user mode an LLM follows the behavioural rules in
``prompts/simulate_user.md`` and decides when the goal is met. In task mode
(the paper's baseline) the whole task is handed over in the first message.
A message set from outside (a fork, an imported conversation) is sent as is.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from dialogforge.config import Role
from dialogforge.errors import ModelCallError
from dialogforge.languages import user_instruction
from dialogforge.models import generate_structured
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.state import DialogueState, UserTurn
from dialogforge.records import Message, Mode, StopReason, TaskStatus
from dialogforge.nodes.outcome import charge, failed
from dialogforge.nodes.prompting import context_block, render

TRANSCRIPT_WINDOW = 60


async def simulate_user(state: DialogueState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    if state.counters.user_turns >= state.limits.max_user_turns:
        return {"stop_reason": StopReason.MAX_USER_TURNS}
    update: dict[str, Any] = {}
    if state.pending_user_message is not None:
        turn = UserTurn(user_message=state.pending_user_message, is_task_complete=False)
        update["pending_user_message"] = None
    elif state.mode is Mode.TASK:
        turn = UserTurn(user_message=_whole_task(state), is_task_complete=False)
    else:
        model = runtime.context.models[Role.USER_SIMULATOR]
        try:
            turn, usage = await generate_structured(model, UserTurn, _prompt(state), seed=state.seed)
        except ModelCallError as exc:
            return failed(exc)
        update.update(charge(state, state.counters, model.role, usage))
    counters = update.get("counters", state.counters)
    if turn.is_task_complete:
        return {**update, **_complete_task(state, counters, turn.user_message)}
    text = f"{state.carryover} {turn.user_message}" if state.carryover else turn.user_message
    message = Message(role="user", content=text, task_index=len(state.tasks) - 1)
    counters = counters.model_copy(update={"user_turns": counters.user_turns + 1, "requests": counters.requests + 1})
    return {**update, "messages": [message], "counters": counters, "carryover": None}


def _complete_task(state: DialogueState, counters, acknowledgement: str) -> dict[str, Any]:
    tasks = [*state.tasks[:-1], state.tasks[-1].model_copy(update={"status": TaskStatus.COMPLETED})]
    counters = counters.model_copy(update={"tasks_completed": counters.tasks_completed + 1})
    last = counters.tasks_completed >= min(state.scenario.target_tasks, state.limits.max_tasks)
    if not last:
        # The thanks opens the next task's first message, so user turns never stack up.
        return {"tasks": tasks, "counters": counters, "carryover": acknowledgement}
    counters = counters.model_copy(update={"user_turns": counters.user_turns + 1})
    closing = Message(role="user", content=acknowledgement, task_index=len(state.tasks) - 1)
    return {"tasks": tasks, "counters": counters, "messages": [closing], "stop_reason": StopReason.COMPLETED}


def _whole_task(state: DialogueState) -> str:
    task = state.tasks[-1]
    return render("task_request", goal=task.goal, subtasks="\n".join(f"- {s}" for s in task.subtasks)).strip()


def _prompt(state: DialogueState) -> list[BaseMessage]:
    """The conversation seen from the user's side: the assistant speaks to them."""
    task = state.tasks[-1]
    persona = f"\nYou are: {state.scenario.persona}" if state.scenario.persona else ""
    messages: list[BaseMessage] = [SystemMessage(render("simulate_user", persona=persona, language=user_instruction(state.language)))]
    tool_notes: list[str] = []
    for m in state.messages[-TRANSCRIPT_WINDOW:]:
        if m.role == "user":
            messages.append(AIMessage(m.content))
        elif m.role == "tool":
            tool_notes.append(f"[{m.name} returned{' an error' if m.is_error else ''}: {m.content[:500]}]")
        elif m.role == "assistant" and m.content:
            messages.append(HumanMessage("\n".join([*tool_notes, m.content])))
            tool_notes = []
    own_turns = sum(1 for m in state.messages if m.role == "user" and m.task_index == len(state.tasks) - 1)
    context = {
        "current_time": state.reference_time,  # the same "now" the agent and the tool backend have
        "goal": task.goal,
        "subtasks": task.subtasks,
        "turns_on_this_goal": own_turns,
        "earlier_goals": [t.goal for t in state.tasks[:-1]],
    }
    messages.append(HumanMessage("Your hidden goal and progress:\n" + context_block(context) + "\nWrite your next message."))
    return messages
