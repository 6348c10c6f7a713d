"""Is each user and assistant turn in the trajectory's language? (the ``wrong_language`` rule)

A language-identification model reads every turn: py3langid (a modernized
langid.py), whose naive-Bayes model ships inside its 4.6 MB wheel, so the
check never downloads anything and runs offline; it knows 97 languages,
identifies a sentence in well under a millisecond, and is deterministic.
It is loaded once per process, on the first trajectory that has a language.

A turn fails when the model is confident it is another language and gives
the expected one almost no chance. Short turns ("OK", "Danke!") say too
little to tell languages apart and are not judged; neither is what a turn
quotes from tools (JSON, identifiers, numbers, URLs), which is in the
tools' language whatever the conversation's. A trajectory without a
language, or in one the model does not know, is not checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from dialogforge.languages import detectable, detector_code
from dialogforge.records import Message

MIN_LETTERS = 20  # below this a turn is too short to identify reliably
CONFIDENT = 0.90  # the other language's probability that makes a turn wrong ...
EXPECTED_FLOOR = 0.02  # ... while the expected language's stays below this

_QUOTED = re.compile(
    r"```.*?```|\{[^{}]*\}|\[[^\[\]]*\]|https?://\S+|\S+@\S+|`[^`]*`|(?<![A-Za-z0-9_])[A-Za-z0-9_-]*[\d_][A-Za-z0-9_-]*",
    re.DOTALL,
)


@dataclass(frozen=True)
class LanguageMismatch:
    message_index: int
    role: str
    detected: str
    probability: float
    expected: str

    def detail(self) -> str:
        return (f"{self.role} message reads as {self.detected} (p={self.probability:.2f}), "
                f"not {self.expected}")


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def prose(text: str) -> str:
    """The words a turn says in its own voice: quoted tool output and identifiers removed."""
    previous = None
    while previous != text:  # nested JSON: strip from the inside out
        previous, text = text, _QUOTED.sub(" ", text)
    return " ".join(text.split())


def identify(text: str) -> tuple[str, float, dict[str, float]] | None:
    """(best language, its probability, every language's) for a long enough text, else None."""
    words = prose(text)
    if sum(ch.isalpha() for ch in words) < MIN_LETTERS:
        return None
    ranked = _identifier().rank(words)
    scores = dict(ranked)
    best, probability = ranked[0]
    return best, probability, scores


def mismatches(messages: list[Message], language: str | None) -> list[LanguageMismatch]:
    """Every user or assistant turn confidently identified as another language than ``language``."""
    if not language or not detectable(language):
        return []
    expected = detector_code(language)
    found = []
    for i, m in enumerate(messages):
        if m.role not in ("user", "assistant") or not m.content.strip():
            continue
        result = identify(m.content)
        if result is None:
            continue
        best, probability, scores = result
        if best != expected and probability >= CONFIDENT and scores.get(expected, 0.0) < EXPECTED_FLOOR:
            found.append(LanguageMismatch(i, m.role, best, probability, language))
    return found
