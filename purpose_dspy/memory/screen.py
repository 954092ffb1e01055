"""Admission screening: text that must never reach a model's context, whoever proposed it.

A card is shown to every later task, so a poisoned card is a standing injection. The shared screen
(`purpose_dspy/safeguards/screen.py`) decides, by three rules:
- the card's own text (title, action, text) holds what the screen flags: orders to the judge, the model
  or memory, claims about scoring or completion, role or field markers, a secret; and, for a card shown to
  any role but the critic's, the names of the system's own components (critic, memory, detector, rules,
  judge, reward: a tip for the actor has no business with them; the critic's notes are about judging);
- it copies an observation the screen flags (a naive distiller turning a note in the game into a "tip");
- it was distilled from a trajectory any of whose observations the screen flags: a paraphrase shares no
  words with its source, so the source decides. An operator can still release it (`promote --force`).
Like the critic's guard the patterns are broad: a false alarm costs one quarantined card an operator can
release, a miss poisons every later episode.
"""

from __future__ import annotations

from collections.abc import Sequence

from purpose_dspy.memory.cards import MemoryCard
from purpose_dspy.safeguards.screen import ADDRESSED, CARD, UNTRUSTED, Kind, screen
from purpose_dspy.text import one_line, shared_run

JUDGING_ROLES: tuple[str, ...] = ("critic", "judge")
"""Roles whose cards are about judging, and so may name the critic, Φ or the judge."""


def find_instructions(text: str) -> list[str]:
    """Passages of `text` that give the model or memory standing orders (empty when there are none)."""
    return screen(text, ("orders", "memory")).passages()


def find_secrets(text: str) -> list[str]:
    """Secrets in `text`, redacted to what names them so the log does not spread them."""
    return screen(text, ("secret",)).passages()


def rule_changing(text: str) -> list[str]:
    """Passages that try to change the rules: text aimed at the judge, the model or memory, claims, markers."""
    return screen(text, ADDRESSED).passages()


def card_kinds(card: MemoryCard) -> tuple[Kind, ...]:
    """What the screen looks for in `card`: every kind, but naming the critic is allowed in the critic's own notes."""
    return UNTRUSTED if set(card.roles) <= set(JUDGING_ROLES) else CARD


def card_text(card: MemoryCard) -> str:
    return "\n".join(part for part in (card.title, card.action, card.text) if part)


def quarantine_reason(card: MemoryCard, observations: Sequence[str] = (), *, copied_words: int = 8) -> str | None:
    """Why `card` must be quarantined (the rule and the matching passages), or None to admit it.

    `observations` are the texts of the states of the trajectories the card was distilled from.
    """
    text = card_text(card)
    if (own := screen(text, card_kinds(card))).flagged:
        return own.reason()
    flagged = [(observation, found) for observation in observations if (found := screen(observation)).flagged]
    for observation, found in flagged:
        if (run := shared_run(text, observation, copied_words)) is not None:
            return f"copied from an observation the screen flags ({found.reason()}): {_quote(run)}"
    # A card distilled from such a trajectory cannot be told apart from one that obeys it. An operator decides.
    if flagged:
        return f"distilled from a trajectory whose observations the screen flags ({flagged[0][1].reason()})"
    return None


def _quote(passage: str, cap: int = 80) -> str:
    return repr(one_line(passage, cap))
