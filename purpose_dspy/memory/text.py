"""Small text measures shared by admission, de-duplication and the context renderer.

They are deliberately crude (word sets, a length-based token estimate): memory decisions must be
cheap, deterministic and explainable in one line of an event log, not clever.
"""

from __future__ import annotations

import math
import re

LINE_CAP = 300
"""Longest rendered line: a card is data for the model, not a place to smuggle a page of text."""

STOPWORDS = frozenset(
    "a an the and or but if then else of to in on at by for with from into onto as is are was were be been "
    "it its this that these those there here you your i me my we our they them their he she his her "
    "do does did done not no so than too very can will would should could may might must just only "
    "what which who whom when where why how all any each some such more most other same own up down out "
    "over under again once about after before".split()
)


def words(text: str) -> list[str]:
    """Lower-cased words with punctuation stripped: the unit of every comparison in memory."""
    return re.findall(r"[^\W_]+", text.lower())


def content_words(text: str) -> set[str]:
    """The words of `text` that carry meaning (stopwords removed), for relevance."""
    return {w for w in words(text) if w not in STOPWORDS}


def jaccard(a: str, b: str) -> float:
    """Token-set Jaccard similarity; 0 when either side has no words."""
    sa, sb = set(words(a)), set(words(b))
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


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
