"""Per-call demos: from a compiled pool, the few most similar to the input at hand.

A compiled actor or critic keeps its whole pool of demos in its predictor's `demos` (so DSPy's JSON
save/load carries them); each call is shown only the `k` nearest ones, passed as `demos=` for that
call alone (DSPy's thread-safe per-call override). Similarity is word-and-word-pair overlap of the
fields that describe the situation: deterministic, cheap, and explainable, so a compiled program
gives the same prompt for the same input in every process. Ties keep pool order.
"""

from __future__ import annotations

from collections.abc import Sequence

import dspy

from purpose_dspy.text import overlap, shingles


def situation(example: dspy.Example | dict, fields: Sequence[str]) -> str:
    """The text a demo or an input is compared on: the named fields, joined."""
    get = example.get if isinstance(example, dict) else lambda f, d="": getattr(example, f, d)
    parts = []
    for name in fields:
        value = get(name, "")
        parts.append(" ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))
    return "\n".join(parts)


def nearest_demos(pool: Sequence[dspy.Example], query: str, fields: Sequence[str], k: int) -> list[dspy.Example]:
    """The `k` demos of `pool` most similar to `query` (compared on `fields`), most similar first."""
    if k <= 0 or not pool:
        return []
    wanted = shingles(query)
    scored = [(overlap(wanted, shingles(situation(demo, fields))), -i, demo) for i, demo in enumerate(pool)]
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    return [demo for _, _, demo in scored[:k]]
