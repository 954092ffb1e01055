"""Per-call demos: from a compiled pool, the few most similar to the input at hand.

A compiled actor or critic keeps its whole pool of demos in its predictor's `demos` (so DSPy's JSON
save/load carries them); each call is shown only the `k` nearest ones, passed as `demos=` for that
call alone (DSPy's thread-safe per-call override). Similarity is word-and-word-pair overlap of the
fields that describe the situation: deterministic, cheap, and explainable, so a compiled program
gives the same prompt for the same input in every process. Ties keep pool order.

A chosen demo is then shown `focused`: of its observation, the first sentence (where the agent is) and
the sentences that name what its answer acted on, within a character cap; the rest of a long room
description says nothing about why that action was right, and costs most of a demo's tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import dspy

from purpose_dspy.text import content_words, overlap, shingles


def situation(example: dspy.Example | dict, fields: Sequence[str]) -> str:
    """The text a demo or an input is compared on: the named fields, joined."""
    get = example.get if isinstance(example, dict) else lambda f, d="": getattr(example, f, d)
    parts = []
    for name in fields:
        value = get(name, "")
        parts.append(" ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))
    return "\n".join(parts)


def scored_demos(pool: Sequence[dspy.Example], query: str, fields: Sequence[str]) -> list[tuple[float, dspy.Example]]:
    """Every demo of `pool` with its similarity to `query` (compared on `fields`), most similar first."""
    wanted = shingles(query)
    scored = [(overlap(wanted, shingles(situation(demo, fields))), -i, demo) for i, demo in enumerate(pool)]
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    return [(score, demo) for score, _, demo in scored]


def nearest_demos(pool: Sequence[dspy.Example], query: str, fields: Sequence[str], k: int) -> list[dspy.Example]:
    """The `k` demos of `pool` most similar to `query` (compared on `fields`), most similar first."""
    return [demo for _, demo in scored_demos(pool, query, fields)[:max(k, 0)]]


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def focused(text: str, answer: str, chars: int) -> str:
    """`text` cut to its first sentence plus the sentences sharing a content word with `answer`, in order,
    at most `chars` characters (whole sentences; the first one is always kept, cut if it alone is longer)."""
    if len(text) <= chars:
        return text
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    wanted = content_words(answer)
    kept, used = [], 0
    for i, sentence in enumerate(sentences):
        if i == 0 or wanted & content_words(sentence):
            if used + len(sentence) > chars and kept:
                break
            kept.append(sentence)
            used += len(sentence) + 1
    return " ".join(kept)[:chars]
