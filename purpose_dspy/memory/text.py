"""Small text measures shared by admission, de-duplication and the context renderer.

They are deliberately crude (word sets, a length-based token estimate): memory decisions must be
cheap, deterministic and explainable in one line of an event log, not clever.
"""

from __future__ import annotations

import math

from purpose_dspy.text_overlap import STOPWORDS, content_words, jaccard, words  # noqa: F401 (re-exported)

LINE_CAP = 300
"""Longest rendered line: a card is data for the model, not a place to smuggle a page of text."""


def shared_run(a: str, b: str, length: int) -> str | None:
    """A run of `length` consecutive words present in both texts (the first found), else None."""
    wa, wb = words(a), words(b)
    runs_b = {tuple(wb[i : i + length]) for i in range(len(wb) - length + 1)}
    for i in range(len(wa) - length + 1):
        run = tuple(wa[i : i + length])
        if run in runs_b:
            return " ".join(run)
    return None


def estimate_tokens(text: str) -> int:
    """Tokens estimated as ceil(len(text) / 4).

    Why not a tokenizer: the budget must be the same for every model and cost nothing to compute;
    four characters per token is the usual rule of thumb for English with BPE vocabularies.
    """
    return math.ceil(len(text) / 4)


def one_line(text: str, cap: int = LINE_CAP) -> str:
    """`text` on one line (inner newlines and runs of spaces collapsed), cut to `cap` characters."""
    line = " ".join(text.split())
    return line if len(line) <= cap else line[: cap - 1] + "…"
