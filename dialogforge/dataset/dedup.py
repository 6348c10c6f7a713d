"""Exact and near-duplicate trajectories, marked (which earlier one they repeat), never deleted.

A trajectory is described by what a trainer would see twice: the text of
its user turns and the sequence of tool names with their argument keys
(argument *values* are left out, since a simulator varies them freely).
Exact duplicates share a digest of both after normalization. Near duplicates
are found with MinHash over word shingles of the user text plus tool-call
bigrams, bucketed by locality-sensitive hashing so the pass stays linear in
the number of trajectories; only small signatures are kept in memory.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from dialogforge.dataset.options import DEFAULT_THRESHOLD
from dialogforge.graphs.state import DialogueState

NUM_PERM = 128
BANDS, ROWS = 32, 4  # BANDS * ROWS == NUM_PERM; candidates from about 0.4 similarity up
SHINGLE_WORDS = 4
_PRIME = (1 << 61) - 1
_MAX_HASH = (1 << 32) - 1
_rng = np.random.RandomState(1)  # fixed: signatures must be comparable across runs
_A = _rng.randint(1, 1 << 31, size=NUM_PERM, dtype=np.uint64)
_B = _rng.randint(0, 1 << 31, size=NUM_PERM, dtype=np.uint64)
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Features:
    exact_key: str
    signature: np.ndarray  # NUM_PERM uint64 minima


@dataclass(frozen=True)
class Duplicate:
    of: str  # thread_id of the earlier trajectory it repeats
    kind: str  # "exact" or "near"
    similarity: float


def user_words(state: DialogueState) -> list[str]:
    text = " ".join(m.content for m in state.messages if m.role == "user")
    return _WORD.findall(text.lower())


def tool_tokens(state: DialogueState) -> list[str]:
    return [f"{c.name}({','.join(sorted(c.arguments))})" for m in state.messages for c in m.tool_calls]


def shingles(words: list[str], tools: list[str]) -> set[str]:
    grams = {"u:" + " ".join(words[i : i + SHINGLE_WORDS]) for i in range(max(1, len(words) - SHINGLE_WORDS + 1))}
    if len(tools) == 1:
        grams.add("t:" + tools[0])
    grams.update(f"t:{a}>{b}" for a, b in zip(tools, tools[1:]))
    return grams


def features(state: DialogueState) -> Features:
    words, tools = user_words(state), tool_tokens(state)
    exact = hashlib.sha256((" ".join(words) + "\x1f" + "|".join(tools)).encode()).hexdigest()
    return Features(exact, minhash(shingles(words, tools)))


def minhash(items: set[str]) -> np.ndarray:
    """One minimum per permutation of the 32-bit shingle hashes (universal hashing mod 2^61-1)."""
    hashes = np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "big") for s in items),
        dtype=np.uint64, count=len(items),
    )
    # a < 2^31 and h < 2^32, so a*h + b stays below 2^64: no overflow before the modulus.
    permuted = ((hashes[:, None] * _A[None, :] + _B[None, :]) % _PRIME) & _MAX_HASH
    return permuted.min(axis=0)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the two shingle sets."""
    return float(np.count_nonzero(a == b)) / NUM_PERM


def find_duplicates(
    items: Iterable[tuple[str, Features]], threshold: float = DEFAULT_THRESHOLD
) -> dict[str, Duplicate]:
    """For each trajectory that repeats an earlier one (in the given order), which one it repeats.

    The earliest trajectory of a group is the original; later ones point to
    an original, never to another duplicate, so removing every marked row
    keeps exactly one of each group.
    """
    originals_by_key: dict[str, str] = {}
    buckets: dict[tuple[int, bytes], list[str]] = {}
    signatures: dict[str, np.ndarray] = {}
    found: dict[str, Duplicate] = {}
    for thread_id, feats in items:
        original = originals_by_key.get(feats.exact_key)
        if original is not None:
            found[thread_id] = Duplicate(original, "exact", 1.0)
            continue
        bands = [(band, feats.signature[band * ROWS : (band + 1) * ROWS].tobytes()) for band in range(BANDS)]
        near = _best_candidate(feats.signature, bands, buckets, signatures, threshold)
        if near is not None:
            found[thread_id] = Duplicate(near[0], "near", round(near[1], 4))
            continue
        originals_by_key[feats.exact_key] = thread_id
        signatures[thread_id] = feats.signature
        for key in bands:
            buckets.setdefault(key, []).append(thread_id)
    return found


def _best_candidate(
    signature: np.ndarray,
    bands: list[tuple[int, bytes]],
    buckets: dict[tuple[int, bytes], list[str]],
    signatures: dict[str, np.ndarray],
    threshold: float,
) -> tuple[str, float] | None:
    candidates = {other for key in bands for other in buckets.get(key, ())}
    scored = [(other, similarity(signature, signatures[other])) for other in candidates]
    scored = [pair for pair in scored if pair[1] >= threshold]
    if not scored:
        return None
    order = {thread_id: i for i, thread_id in enumerate(signatures)} if len(scored) > 1 else {}
    return max(scored, key=lambda pair: (pair[1], -order.get(pair[0], 0)))
