"""Evidence check: the critic's evidence must quote words that are really in the states it judged.

A model that invents "the door is now open" when no state says so has not seen progress; its delta
is zeroed. Quotes are compared after lower-casing and collapsing whitespace; evidence in quotation
marks is checked quote by quote, otherwise as a whole (and, failing that, sentence by sentence).
"""

from __future__ import annotations

import re

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
