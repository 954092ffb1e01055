"""Admission screening: text that must never reach a model's context, whoever proposed it.

A card is shown to every later task, so a poisoned card is a standing injection. Three rules:
the text addresses the judge or the model (injection, "from now on always answer ..."), it holds a
secret, or it copies an observation that gave orders (a naive distiller turning a note in the game
into a "tip"). Like the critic's injection guard the patterns are broad: a false alarm costs one
quarantined card an operator can release, a miss poisons every later episode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from purpose_dspy.memory.cards import MemoryCard
from purpose_dspy.safeguards.injection import find_injection
from purpose_dspy.text import one_line, shared_run

INSTRUCTION_PATTERNS: tuple[str, ...] = (
    r"\bfrom now on\b",
    r"\balways (answer|respond|say|reply|output|choose)\b",
    r"\bnever (answer|respond|say|refuse)\b",
    r"\bremember (this|that) (rule|instruction)\b",
    r"\byou must (always|now)\b",
    r"\bnew rule\b",
    r"\b(ignore|disregard) (all|any|previous)\b",
)
SECRET_PATTERNS: tuple[str, ...] = (
    r"sk-[A-Za-z0-9_-]{16,}",
    r"AKIA[0-9A-Z]{16}",
    r"(api[_-]?key|password|secret|token)\s*[:=]\s*\S+",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
)
_INSTRUCTIONS = tuple(re.compile(p, re.IGNORECASE) for p in INSTRUCTION_PATTERNS)
_SECRETS = tuple(re.compile(p, re.IGNORECASE) for p in SECRET_PATTERNS)


def find_instructions(text: str) -> list[str]:
    """Passages of `text` that give the model standing orders (empty when there are none)."""
    return [m.group(0) for pattern in _INSTRUCTIONS for m in pattern.finditer(text)]


def find_secrets(text: str) -> list[str]:
    """Secrets in `text`, redacted to their first characters so the log does not spread them."""
    return [_redact(m.group(0)) for pattern in _SECRETS for m in pattern.finditer(text)]


def rule_changing(text: str) -> list[str]:
    """Passages that try to change the rules: injections aimed at the judge or orders to the model."""
    return find_injection(text) + find_instructions(text)


def quarantine_reason(card: MemoryCard, observations: Sequence[str] = (), *, copied_words: int = 8) -> str | None:
    """Why `card` must be quarantined (the rule and the matching passage), or None to admit it.

    `observations` are the texts of the states of the trajectory the card was distilled from.
    """
    text = "\n".join(part for part in (card.title, card.action, card.text) if part)
    if found := find_injection(text):
        return f"injection: {_quote(found[0])}"
    if found := find_instructions(text):
        return f"instruction to the model: {_quote(found[0])}"
    if found := find_secrets(text):
        return f"secret: {_quote(found[0])}"
    for observation in observations:
        run = shared_run(text, observation, copied_words)
        if run is not None and (orders := rule_changing(observation)):
            return f"copied from an observation that gives orders ({_quote(orders[0])}): {_quote(run)}"
    # A paraphrase shares no long run of words; what is known is that the source gave orders, and
    # a card distilled from it cannot be told apart from one that obeys them. An operator decides.
    for observation in observations:
        if orders := rule_changing(observation):
            return f"distilled from a trajectory whose observations give orders ({_quote(orders[0])})"
    return None


def _quote(passage: str, cap: int = 80) -> str:
    return repr(one_line(passage, cap))


def _redact(secret: str) -> str:
    """Keep what names the secret ("api_key =", "sk-a"), never its value."""
    separator = re.search(r"[:=]\s*", secret)
    return (secret[: separator.end()] if separator else secret[:4]) + "…"
