"""Word-overlap measures: how alike two texts are, cheaply, deterministically and explainably.

Used where a decision must be reproducible and explainable in one line: memory admission and
relevance, and the choice of which compiled demos an actor or critic call is shown. `shingles` adds
adjacent word pairs to the words, so "row 2, column 3" and "row 3, column 2" are not the same text.
"""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    "a an the and or but if then else of to in on at by for with from into onto as is are was were be been "
    "it its this that these those there here you your i me my we our they them their he she his her "
    "do does did done not no so than too very can will would should could may might must just only "
    "what which who whom when where why how all any each some such more most other same own up down out "
    "over under again once about after before".split()
)


def words(text: str) -> list[str]:
    """Lower-cased words with punctuation stripped."""
    return re.findall(r"[^\W_]+", text.lower())


def content_words(text: str) -> set[str]:
    """The words of `text` that carry meaning (stopwords removed)."""
    return {w for w in words(text) if w not in STOPWORDS}


def jaccard(a: str, b: str) -> float:
    """Word-set Jaccard similarity; 0 when either side has no words."""
    sa, sb = set(words(a)), set(words(b))
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def shingles(text: str) -> frozenset[str]:
    """Content words plus adjacent word pairs (pairs keep numbers tied to what they count)."""
    ws = words(text)
    return frozenset(content_words(text) | {f"{a} {b}" for a, b in zip(ws, ws[1:])})


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two shingle sets; 0 when either is empty."""
    return len(a & b) / len(a | b) if a and b else 0.0
