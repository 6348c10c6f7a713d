"""Exact and near duplicates are found, point at the earliest original, and are marked, not deleted."""

from __future__ import annotations

import json
import sqlite3

from tests.support.dataset import good_state, stopped_mid_task, store_states
from dialogforge.dataset.dedup import features, find_duplicates, similarity
from dialogforge.dataset.validate import validate

LONG_ASK = ("Hi, I ordered a standing desk and a chair last week for my new home office, the order number "
            "is A1 and I paid with my credit card, could you tell me where the package is right now?")


def test_the_same_conversation_is_an_exact_duplicate_of_the_first():
    found = find_duplicates([("a", features(good_state())), ("b", features(good_state())), ("c", features(good_state()))])
    assert {tid: (d.of, d.kind, d.similarity) for tid, d in found.items()} == {"b": ("a", "exact", 1.0), "c": ("a", "exact", 1.0)}


def test_argument_values_do_not_matter_but_tool_names_and_keys_do():
    base = good_state()
    other_values = base.model_copy(deep=True)
    other_values.messages[1].tool_calls[0].arguments["order_id"] = "Z9"
    assert features(base).exact_key == features(other_values).exact_key
    other_keys = base.model_copy(deep=True)
    other_keys.messages[1].tool_calls[0].arguments = {"id": "A1"}
    assert features(base).exact_key != features(other_keys).exact_key


def test_one_changed_word_in_a_long_conversation_is_a_near_duplicate():
    original = good_state(user_words=LONG_ASK)
    edited = good_state(user_words=LONG_ASK.replace("standing desk", "standing lamp"))
    sim = similarity(features(original).signature, features(edited).signature)
    assert 0.8 <= sim < 1.0
    found = find_duplicates([("a", features(original)), ("b", features(edited))])
    assert found["b"].of == "a" and found["b"].kind == "near"


def test_different_conversations_are_not_duplicates():
    first = good_state(user_words=LONG_ASK)
    second = good_state(user_words="Good morning! My parcel with the garden hose never arrived, what happened to it?")
    assert find_duplicates([("a", features(first)), ("b", features(second))]) == {}
    assert similarity(features(first).signature, features(second).signature) < 0.8


def test_validate_marks_duplicates_among_valid_trajectories_only(tmp_path):
    db = tmp_path / "d.db"
    capped = stopped_mid_task(good_state())
    states = {"t0-invalid": capped, "t1": good_state(), "t2": good_state(), "t3": good_state(user_words=LONG_ASK)}
    store_states(db, states)
    summary = validate(db)
    assert (summary.checked, summary.duplicates, summary.valid) == (4, 1, 2)
    rows = {r[0]: r[1:] for r in sqlite3.connect(db).execute(
        "SELECT thread_id, valid, duplicate_of, duplicate_kind, failure_rules FROM validations")}
    # the invalid copy came first but does not claim to be the original
    assert rows["t0-invalid"][:3] == (0, None, None)
    assert rows["t1"][:3] == (1, None, None)
    assert rows["t2"][:3] == (1, "t1", "exact")
    assert rows["t3"][:3] == (1, None, None)
    assert json.loads(rows["t2"][3]) == []  # a duplicate is valid; it is marked, not failed
    # marked, not deleted: every trajectory is still in the manifest
    assert sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone()[0] == 4
