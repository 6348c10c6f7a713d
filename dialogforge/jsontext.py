"""Indented JSON for the context blocks every role is sent, at C speed.

Each request carries its context as JSON indented one space per level,
rebuilt at every call. Python's ``json`` indents only in its pure-Python
encoder: for a long dialogue's tool-simulator request that was the largest
CPU cost of a call (issue 23). orjson writes the same document, two spaces
per level, in a small fraction of the time; the indentation is then halved
with one C-speed ``replace`` per depth, deepest first. That is safe because
a JSON string holds no raw newline (a newline and spaces are always
indentation) and orjson escapes the control character that marks a line
already halved. The text is the one ``json.dumps(value, ensure_ascii=False,
indent=1)`` writes, byte for byte (what the scripted test model digests, and
what every prompt has always carried).

Where orjson cannot render a value as ``json`` would, ``json`` does: keys
that are not strings, a lone surrogate, integers past 64 bits, and a float
under 1e-4, which ``json`` writes ``1e-05`` and orjson ``0.00001`` or
``1e-5`` (found by a substring scan of orjson's text; a string holding
``0.0000`` or a digit before ``e-`` is a false alarm, written the same way). The one difference
left: a NaN or an infinity is written ``null`` (``json`` writes ``NaN``,
which is not JSON and which no model should be shown).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_DONE = "\x01"  # never raw in orjson's output: control characters inside strings are escaped


def indented(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, indent=1)``, byte for byte but for NaN and infinities
    (``null`` here), several times faster."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        return _slow(value)
    if _small_float(text):
        return _slow(value)
    depth = 1
    while "\n" + "  " * depth in text:
        depth += 1
    for level in range(depth - 1, 0, -1):
        text = text.replace("\n" + "  " * level, "\n" + _DONE * level)
    return text.replace(_DONE, " ") if depth > 1 else text


def nest(text: str, levels: int = 1) -> str:
    """A value's ``indented`` text as it reads ``levels`` deeper inside another (JSON strings hold no
    raw newline, so every newline starts a line of indentation)."""
    return text.replace("\n", "\n" + " " * levels)


def _slow(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)


def _small_float(text: str) -> bool:
    """Whether orjson may have written a float under 1e-4 (the only floats it writes unlike ``json``)."""
    if "0.0000" in text:
        return True
    at = text.find("e-")
    while at != -1:
        if at and text[at - 1].isdigit():
            return True
        at = text.find("e-", at + 2)
    return False
