"""Structural patches: apply(old, diff(old, new)) is new, exactly (dict key order included)."""

from __future__ import annotations

import json
import random

from dialogforge.checkpoints.patches import apply, diff, same
from dialogforge.records import Counters, Message, RubricItem, Task, TaskStatus, TokenUsage, ToolCall


def _task(i: int) -> Task:
    return Task(goal=f"goal {i}", subtasks=[f"step {i}"], rubric=[RubricItem(criterion=f"did {i}")])


def _random_json(rng: random.Random, depth: int = 0):
    kind = rng.choice(["int", "str", "list", "dict", "none", "bool", "float"] if depth < 3
                      else ["int", "str", "none", "bool", "float"])
    if kind == "int":
        return rng.randint(-5, 5)
    if kind == "bool":  # True == 1 and 1.0 == 1: a patch must still tell them apart
        return rng.choice([True, False])
    if kind == "float":
        return rng.choice([1.0, 0.0, -2.5])
    if kind == "str":
        return rng.choice(["a", "b", "c", ""])
    if kind == "none":
        return None
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = rng.sample(["k1", "k2", "k3", "k4", "k5"], rng.randint(0, 5))
    return {k: _random_json(rng, depth + 1) for k in keys}


def _mutate(rng: random.Random, value, depth: int = 0):
    if isinstance(value, dict) and value and rng.random() < 0.8:
        out = dict(value)
        key = rng.choice(list(out))
        action = rng.random()
        if action < 0.3:
            del out[key]
        elif action < 0.6:
            out[key] = _mutate(rng, out[key], depth + 1)
        elif action < 0.8:
            out["new"] = _random_json(rng)
        else:
            items = list(out.items())
            rng.shuffle(items)
            out = dict(items)
        return out
    if isinstance(value, list) and rng.random() < 0.8:
        out = list(value)
        action = rng.random()
        if action < 0.4 or not out:
            out.append(_random_json(rng))
        elif action < 0.7:
            out[-1] = _mutate(rng, out[-1], depth + 1)
        else:
            out.pop(rng.randrange(len(out)))
        return out
    return _random_json(rng)


def test_random_json_round_trips_with_key_order():
    rng = random.Random(7)
    for _ in range(2000):
        old = _random_json(rng)
        new = _mutate(rng, old)
        patched = apply(old, diff(old, new))
        assert json.dumps(patched) == json.dumps(new), (old, new, diff(old, new))


def test_appending_a_task_stores_only_the_new_task():
    old = [_task(i) for i in range(50)]
    new = [*old, _task(50)]
    patch = diff(old, new)
    assert patch[0] == "l" and patch[1] == 50 and patch[3] == [new[-1]]
    assert apply(old, patch) == new


def test_completing_the_last_task_patches_one_field():
    old = [_task(i) for i in range(20)]
    new = [*old[:-1], old[-1].model_copy(update={"status": TaskStatus.COMPLETED})]
    patch = diff(old, new)
    assert patch[:2] == ["l", 19] and patch[2] == ["m", {"status": ["r", TaskStatus.COMPLETED]}] and patch[3] == []
    assert apply(old, patch) == new


def test_counters_patch_carries_the_changed_fields_only():
    old = Counters(step_counts=list(range(300)), usage={"agent": TokenUsage(prompt=10)})
    new = old.model_copy(update={
        "assistant_turns": 1, "step_counts": [*old.step_counts, 2],
        "usage": {"agent": TokenUsage(prompt=15, calls=1)},
    })
    patch = diff(old, new)
    assert set(patch[1]) == {"assistant_turns", "step_counts", "usage"}
    assert patch[1]["step_counts"] == ["l", 300, None, [2]]
    assert apply(old, patch) == new


def test_same_sees_dict_order_that_equality_ignores():
    a = Message(role="assistant", tool_calls=[ToolCall(id="1", name="f", arguments={"x": 1, "y": 2})])
    b = Message(role="assistant", tool_calls=[ToolCall(id="1", name="f", arguments={"y": 2, "x": 1})])
    assert a == b and not same(a, b)
    patched = apply(a, diff(a, b))
    assert list(patched.tool_calls[0].arguments) == ["y", "x"]


def test_apply_never_changes_the_old_value():
    old = {"a": [1, 2], "b": {"c": 1}}
    snapshot = json.dumps(old)
    apply(old, diff(old, {"a": [1, 2, 3], "b": {"c": 2, "d": 1}}))
    assert json.dumps(old) == snapshot


def test_random_model_changes_round_trip_and_compare_as_their_fields():
    """The model fast paths (field values from the instance dict, scalars compared in place) give
    what the generic walk gives: a patch that rebuilds the new model, and ``same`` as field equality."""
    rng = random.Random(11)
    roles = ["agent", "user_simulator", "tool_simulator"]
    counters = Counters()
    for _ in range(500):
        update: dict = {}
        for name in rng.sample(["user_turns", "tool_calls", "step_counts", "tool_error_kinds", "usage"], rng.randint(0, 3)):
            if name == "step_counts":
                update[name] = counters.step_counts + [rng.randint(0, 3)]
            elif name == "tool_error_kinds":
                update[name] = {**counters.tool_error_kinds, rng.choice(["not_found", "conflict"]): rng.randint(1, 2)}
            elif name == "usage":
                role = rng.choice(roles)
                update[name] = counters.with_usage(role, TokenUsage(prompt=rng.randint(0, 1), calls=1)).usage
            else:
                update[name] = rng.choice([getattr(counters, name), getattr(counters, name) + 1])
        new = counters.model_copy(update=update)
        patch = diff(counters, new)
        assert apply(counters, patch) == new and apply(counters, patch).model_dump_json() == new.model_dump_json()
        assert same(counters, new) == (counters.model_dump_json() == new.model_dump_json())
        counters = new
