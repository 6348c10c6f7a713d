"""A small SQLite tokenizer for the textual checks on tool templates.

Naive string handling (splitting on ``;``, searching for ``:name``) is wrong
as soon as a string literal, a quoted identifier or a comment contains those
characters. This tokenizer knows SQLite's quoting rules well enough to find
statement boundaries, bound parameters, the statement's main verb and bare
keywords. It is a first line of defence only: the authorizer in ``policy``
decides what a statement may really do.
"""

from __future__ import annotations

import re
import sqlite3
from typing import NamedTuple

from dialogforge.sqltools.errors import SqlTextError

# SQLite treats every character at or above U+0080 as an identifier character.
_ID = r"A-Za-z0-9_$\u0080-\U0010FFFF"
_TOKEN = re.compile(
    rf"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>[xX]?'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
  | (?P<unterminated>['"`\[])
  | (?P<named>:[{_ID}]+)
  | (?P<other_param>\?[0-9]*|[@$][{_ID}]*)
  | (?P<number>0[xX][0-9A-Fa-f]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<word>[A-Za-z_\u0080-\U0010FFFF][{_ID}]*)
  | (?P<semicolon>;)
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Verbs that can start the statement proper (after an optional WITH clause).
VERBS = frozenset({"SELECT", "VALUES", "INSERT", "REPLACE", "UPDATE", "DELETE"})


class Token(NamedTuple):
    kind: str
    text: str
    pos: int


def tokenize(sql: str) -> list[Token]:
    """Every token of ``sql``, whitespace and comments included."""
    tokens: list[Token] = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "punct"
        if kind == "unterminated":
            raise SqlTextError(f"unterminated quote or identifier at offset {match.start()}")
        tokens.append(Token(kind, match.group(), match.start()))
    return tokens


def significant(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.kind not in ("space", "comment")]


def statement_count(sql: str, tokens: list[Token]) -> int:
    """How many statements ``sql`` holds, by our tokens and by SQLite's own.

    ``sqlite3.complete_statement`` is SQLite's tokenizer: it says whether a
    text ends with a complete statement, ignoring ``;`` inside literals and
    comments. A prefix ending at some ``;`` that it calls complete, with
    anything significant after it, means a second statement follows.
    """
    body = significant(tokens)
    by_tokens = sum(1 for t in body if t.kind == "semicolon")
    if body and body[-1].kind != "semicolon":
        by_tokens += 1
    by_sqlite = 0
    start = 0
    for index, char in enumerate(sql):
        if char == ";" and sqlite3.complete_statement(sql[start : index + 1]):
            by_sqlite += 1
            start = index + 1
    if sql[start:].strip() and significant(tokenize(sql[start:])):
        by_sqlite += 1
    return max(by_tokens, by_sqlite)


def named_parameters(tokens: list[Token]) -> list[str]:
    """The ``:name`` parameters in order of first use, without the colon."""
    seen: dict[str, None] = {}
    for token in tokens:
        if token.kind == "named":
            seen.setdefault(token.text[1:], None)
    return list(seen)


def bad_parameter_names(names: list[str]) -> list[str]:
    """Names that are not plain ASCII identifiers (JSON Schema keys must match)."""
    return [name for name in names if not _PARAM_NAME.match(name)]


def other_parameters(tokens: list[Token]) -> list[str]:
    """Positional (``?``, ``?1``) and ``@``/``$`` parameters, which we refuse."""
    return [t.text for t in tokens if t.kind == "other_param"]


def words(tokens: list[Token]) -> list[str]:
    """Bare words, upper-cased; quoted identifiers and literals are excluded."""
    return [t.text.upper() for t in tokens if t.kind == "word"]


def main_verb(tokens: list[Token]) -> str | None:
    """The verb of the statement proper: the first word, or after a WITH clause
    the first verb outside parentheses (the CTE bodies sit inside them)."""
    body = significant(tokens)
    if not body or body[0].kind != "word":
        return None
    first = body[0].text.upper()
    if first != "WITH":
        return first
    depth = 0
    for token in body[1:]:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        elif depth == 0 and token.kind == "word" and token.text.upper() in VERBS:
            return token.text.upper()
    return None


def zero_argument_calls(tokens: list[Token], names: frozenset[str]) -> list[str]:
    """Calls such as ``date()`` whose empty argument list means "now"."""
    body = significant(tokens)
    found = []
    for first, second, third in zip(body, body[1:], body[2:]):
        if first.kind == "word" and first.text.lower() in names and second.text == "(" and third.text == ")":
            found.append(first.text.lower())
    return found


def string_literals(tokens: list[Token]) -> list[str]:
    """The values of the plain string literals (blob literals excluded)."""
    return [t.text[1:-1].replace("''", "'") for t in tokens if t.kind == "string" and t.text[0] == "'"]
