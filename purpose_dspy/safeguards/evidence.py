"""Evidence check: the critic's evidence must quote words that are really in the states it judged.

A model that invents "the door is now open" when no state says so has not seen progress; its delta
is zeroed. Quotes are compared after lower-casing and collapsing whitespace; evidence in quotation
marks is checked quote by quote, otherwise as a whole (and, failing that, sentence by sentence).

A rise needs more (`evidence_of_change`): the quote must be text that changed, read where it sits in
the new state (the sentence or line of s' it lies in is not in s), and neither it nor that sentence
may address the judge. "The treasure is at row 3, column 1." said before and after is no progress,
and "You found the treasure!" appended to every state is text that never changes.
"""

from __future__ import annotations

import re

from purpose_dspy.safeguards.injection import find_injection

_QUOTED = re.compile(r"[\"“”'‘’`]([^\"“”'‘’`]{2,})[\"“”'‘’`]")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_TRIM = " \t\n.,;:!?-\"'“”‘’`()[]"


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).strip(_TRIM)


def quoted_spans(evidence: str) -> list[str]:
    """The candidate quotes in `evidence`: its quoted parts if any, else the whole and its sentences."""
    quoted = [m.group(1) for m in _QUOTED.finditer(evidence)]
    if quoted:
        return quoted
    return [evidence, *_SENTENCE.split(evidence)]


def evidence_in_states(evidence: str, states: list[str], min_chars: int = 12) -> bool:
    """True if at least one quote of `min_chars` or more appears verbatim in one of `states`."""
    haystacks = [_norm(s) for s in states]
    for span in quoted_spans(evidence):
        needle = _norm(span)
        if len(needle) >= min_chars and any(needle in h for h in haystacks):
            return True
    return False


def evidence_of_change(evidence: str, before: str, after: str, min_chars: int = 12) -> bool:
    """True if a quote of `min_chars` or more is in `after` inside a sentence (or line) that is not in
    `before`, and neither the quote nor that sentence is an instruction to the judge (`find_injection`)."""
    old = _norm(before)
    flat, spans = _sentences(after)
    for span in quoted_spans(evidence):
        needle = _norm(span)
        if len(needle) < min_chars or find_injection(span):
            continue
        at = flat.find(needle)
        while at >= 0:
            sentence = _around(flat, spans, at, at + len(needle))
            if sentence not in old and not find_injection(sentence):
                return True
            at = flat.find(needle, at + 1)
    return False


def _sentences(text: str) -> tuple[str, list[tuple[int, int]]]:
    """`text` lower-cased and whitespace-collapsed (as `_norm` compares it), and where each sentence or line lies in it."""
    pieces = [" ".join(p.lower().split()) for p in _SENTENCE.split(text)]
    spans, at = [], 0
    for piece in filter(None, pieces):
        spans.append((at, at + len(piece)))
        at += len(piece) + 1
    return " ".join(filter(None, pieces)), spans


def _around(flat: str, spans: list[tuple[int, int]], start: int, end: int) -> str:
    """The sentences of `flat` that the span [start, end) touches, joined, trimmed as `_norm` trims."""
    touched = [(a, b) for a, b in spans if b > start and a < end]
    return flat[touched[0][0]: touched[-1][1]].strip(_TRIM)
