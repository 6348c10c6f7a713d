"""Each rule check catches a hand-made broken trajectory, and passes the good one."""

from __future__ import annotations

import pytest

from tests.support.dataset import ORDER_TOOL, calls, good_state, reply, result, task_mode_state, user
from dialogforge.dataset.rules import Rule, check_rules
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Message, StopReason, TaskStatus, ToolCall


def rules_of(state: DialogueState) -> set[Rule]:
    return {failure.rule for failure in check_rules(state)}


def with_messages(state: DialogueState, messages: list[Message]) -> DialogueState:
    return state.model_copy(update={"messages": messages})


def test_good_trajectories_pass():
    assert check_rules(good_state()) == []
    assert check_rules(task_mode_state()) == []


def test_an_invalid_call_answered_with_an_error_is_a_recovery_not_a_failure():
    state = good_state()
    assert any(m.is_error for m in state.messages)
    assert Rule.INVALID_ARGUMENTS not in rules_of(state)


def test_invalid_arguments_answered_as_success_fail():
    state = good_state()
    messages = list(state.messages)
    messages[6] = messages[6].model_copy(update={"is_error": False, "content": '{"status": "cancelled"}'})
    failures = check_rules(with_messages(state, messages))
    assert [f.rule for f in failures] == [Rule.INVALID_ARGUMENTS]
    assert failures[0].message_index == 5
    assert "order_id" in failures[0].detail


def test_arguments_that_are_not_json_answered_as_success_fail():
    state = good_state()
    broken = ToolCall(id="call_x", name="get_order", raw_arguments='{"order_id": "A1"')
    messages = [*state.messages[:4], user("And again?"), calls(broken), result(broken, {"status": "ok"}), reply("Still shipped."), state.messages[-1]]
    assert Rule.INVALID_ARGUMENTS in rules_of(with_messages(state, messages))


def test_unknown_tool_answered_as_success_fails():
    state = good_state()
    ghost = ToolCall(id="call_g", name="refund_order", arguments={"order_id": "A1"})
    messages = [*state.messages[:4], user("Refund it?"), calls(ghost), result(ghost, {"refunded": True}), reply("Refunded."), state.messages[-1]]
    failures = check_rules(with_messages(state, messages))
    assert [f.rule for f in failures] == [Rule.UNKNOWN_TOOL]
    # the same call answered with an error is a recovery
    messages[6] = result(ghost, {"error": "unknown tool"}, error=True)
    assert check_rules(with_messages(state, messages)) == []


@pytest.mark.parametrize("breakage", ["missing", "twice", "stray", "wrong_name", "reused_id"])
def test_every_call_has_exactly_one_result(breakage):
    state = good_state()
    messages = list(state.messages)
    lookup = messages[1].tool_calls[0]
    if breakage == "missing":
        del messages[2]
    elif breakage == "twice":
        messages.insert(3, result(lookup, {"status": "shipped"}))
    elif breakage == "stray":
        messages.insert(3, Message(role="tool", content="{}", tool_call_id="call_nobody", name="get_order"))
    elif breakage == "wrong_name":
        messages[2] = messages[2].model_copy(update={"name": "cancel_order"})
    else:
        messages[7] = calls(ToolCall(id="call_1", name="cancel_order", arguments={"order_id": "A1"}))
        messages[8] = messages[8].model_copy(update={"tool_call_id": "call_1"})
    assert Rule.TOOL_RESULT_PAIRING in rules_of(with_messages(state, messages))


@pytest.mark.parametrize("breakage", ["two_users", "two_replies", "starts_with_assistant", "user_after_tool", "late_system"])
def test_messages_alternate_legally(breakage):
    state = good_state()
    messages = list(state.messages)
    if breakage == "two_users":
        messages.insert(4, user("Hello?"))
    elif breakage == "two_replies":
        messages.insert(4, reply("Anything else?"))
    elif breakage == "starts_with_assistant":
        messages.insert(0, reply("Welcome!"))
    elif breakage == "user_after_tool":
        messages = [*messages[:3], *messages[4:]]
    else:
        messages.insert(4, Message(role="system", content="Be brief."))
    failures = [f for f in check_rules(with_messages(state, messages)) if f.rule is Rule.MESSAGE_ORDER]
    assert failures, breakage


@pytest.mark.parametrize("index", [0, 3, 2])
def test_no_empty_turns(index):
    state = good_state()
    messages = list(state.messages)
    messages[index] = messages[index].model_copy(update={"content": "   "})
    failures = [f for f in check_rules(with_messages(state, messages)) if f.rule is Rule.EMPTY_TURN]
    assert [f.message_index for f in failures] == [index]


def test_a_pure_tool_call_turn_is_not_empty():
    state = good_state()
    assert state.messages[1].content == "" and state.messages[1].tool_calls
    assert Rule.EMPTY_TURN not in rules_of(state)


def test_user_mode_needs_every_task_completed_and_the_closing_message():
    state = good_state()
    open_task = state.model_copy(update={"tasks": [state.tasks[0].model_copy(update={"status": TaskStatus.ACTIVE})]})
    assert Rule.TASK_NOT_COMPLETED in rules_of(open_task)
    no_closing = with_messages(state, state.messages[:-1])
    assert Rule.TASK_NOT_COMPLETED in rules_of(no_closing)
    no_task = state.model_copy(update={"tasks": []})
    assert Rule.TASK_NOT_COMPLETED in rules_of(no_task)


def test_task_mode_needs_the_agents_final_answer():
    state = task_mode_state()
    unanswered = with_messages(state, state.messages[:-1])
    assert Rule.TASK_NOT_COMPLETED in rules_of(unanswered)
    not_finished = state.model_copy(update={"stop_reason": StopReason.MAX_TOOL_STEPS})
    assert {Rule.TASK_NOT_COMPLETED, Rule.STOPPED_AT_CAP} <= rules_of(not_finished)


@pytest.mark.parametrize("text", [
    "<think>The user wants A1.</think>Order A1 has shipped.",
    "Order A1 has shipped.</think>",
    "<|channel|>analysis<|message|>look up A1<|end|>Order A1 has shipped.",
    "<reasoning>hmm</reasoning> Order A1 has shipped.",
])
def test_reasoning_markup_in_a_reply_is_a_leak(text):
    state = good_state()
    messages = list(state.messages)
    messages[3] = reply(text)
    assert Rule.REASONING_LEAKED in rules_of(with_messages(state, messages))


def test_reasoning_pasted_into_the_reply_is_a_leak():
    state = good_state()
    thought = "The user is asking about order A1, so I must check the order status tool first."
    messages = list(state.messages)
    messages[3] = reply(f"{thought} Order A1 has shipped.", reasoning=thought)
    assert Rule.REASONING_LEAKED in rules_of(with_messages(state, messages))
    messages[3] = reply("Order A1 has shipped.", reasoning=thought)
    assert Rule.REASONING_LEAKED not in rules_of(with_messages(state, messages))


def test_thinking_markup_in_a_user_message_is_a_leak_too():
    state = good_state()
    messages = list(state.messages)
    messages[4] = user("<think>I should ask to cancel</think>Please cancel it.")
    assert Rule.REASONING_LEAKED in rules_of(with_messages(state, messages))


@pytest.mark.parametrize("reason", [StopReason.MAX_USER_TURNS, StopReason.MAX_TOOL_STEPS, StopReason.BUDGET])
def test_a_cap_stop_fails(reason):
    failures = check_rules(good_state().model_copy(update={"stop_reason": reason}))
    assert [(f.rule, reason.value in f.detail) for f in failures] == [(Rule.STOPPED_AT_CAP, True)]


@pytest.mark.parametrize("reason", [StopReason.ERROR, None])
def test_an_error_or_no_stop_fails(reason):
    state = good_state().model_copy(update={"stop_reason": reason, "error": "agent: HTTP 500"})
    failures = [f for f in check_rules(state) if f.rule is Rule.STOPPED_BY_ERROR]
    assert len(failures) == 1


def test_tools_used_are_checked_against_this_trajectorys_own_list():
    state = good_state().model_copy(update={"tools": [ORDER_TOOL]})  # cancel_order no longer offered
    failures = check_rules(state)
    assert {f.rule for f in failures} == {Rule.UNKNOWN_TOOL}
    assert all("cancel_order" in f.detail for f in failures)
