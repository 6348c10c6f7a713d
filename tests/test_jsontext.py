"""``dialogforge.jsontext.indented``: the context blocks' JSON, byte for byte what ``json`` writes.

Every prompt's context block goes through it, and the scripted model digests
those texts: a single differing byte would change what every role is shown.
So it is checked against ``json.dumps(indent=1, ensure_ascii=False)`` on
thousands of random documents full of what breaks encoders.
"""

from __future__ import annotations

import json
import random
import struct

from dialogforge.jsontext import indented, nest

_TEXT = ["a", "é", "Ж", "中", "😀", "\n", "\t", "\x01", "\x7f", "\\", '"', "\u2028", " ", "  ", "e-mail", "1e-5",
         "0.00001", ": 3", "\ud800"]


def _scalar(rng: random.Random):
    pick = rng.random()
    if pick < 0.2:
        return rng.choice([None, True, False, 0, -1, 2**63 - 1, -2**63, 2**64, 10**30])
    if pick < 0.35:  # any double at all (tiny, huge, subnormal)
        return struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
    if pick < 0.5:
        return rng.uniform(-1, 1) * 10 ** rng.randint(-9, 20)
    return "".join(rng.choice(_TEXT) for _ in range(rng.randint(0, 8)))


def _document(rng: random.Random, depth: int):
    if depth == 0 or rng.random() < 0.3:
        return _scalar(rng)
    if rng.random() < 0.5:
        keys = [rng.choice(["k", "é", "a b", "", "\n", "0.0000"]) + str(i) for i in range(rng.randint(0, 4))]
        return {key: _document(rng, depth - 1) for key in keys}
    return [_document(rng, depth - 1) for _ in range(rng.randint(0, 4))]


def test_random_documents_render_exactly_as_json_does() -> None:
    rng = random.Random(23)
    checked = 0
    for _ in range(5000):
        value = _document(rng, rng.randint(0, 7))
        try:
            expected = json.dumps(value, ensure_ascii=False, indent=1, allow_nan=False)
        except ValueError:  # NaN and infinities: see the next test
            continue
        assert indented(value) == expected, value
        checked += 1
    assert checked > 4500


def test_what_orjson_writes_differently_goes_through_json() -> None:
    for value in ({1: "int key"}, {None: 1, True: 2}, "\ud800 lone surrogate", 2**64, {"small": 1e-05},
                  [1.5e-7, 0.0001], {"deep": [{"x": [2.2e-308]}]}, {"text": "digit before e-: 3e-2"}):
        assert indented(value) == json.dumps(value, ensure_ascii=False, indent=1), value


def test_nan_and_infinity_are_written_as_null_not_as_invalid_json() -> None:
    assert indented({"x": float("nan"), "y": [float("inf")]}) == '{\n "x": null,\n "y": [\n  null\n ]\n}'
    json.loads(indented([float("-inf")]))  # json.dumps would have written -Infinity


def test_nest_indents_a_value_as_it_reads_inside_another() -> None:
    inner = {"a": [1, {"b": "c\\nd"}]}
    outer = {"k": inner}
    text = indented(outer)
    assert text == "{\n \"k\": " + nest(indented(inner)) + "\n}"
    assert text == json.dumps(outer, ensure_ascii=False, indent=1)
