"""The memory context: cards rendered as three short sections a model can use within a token budget.

Tier 1, "Strategy:", is always there (strategies and failures to avoid). Tier 2, "Procedures:", is an
index of SOP titles with only the one SOP most relevant to the current state expanded, so long
procedures cost tokens only when they apply. Tier 3, "Tips for actions available now:", holds tool
tips whose action can be taken in this state. Critics get their calibration notes instead of tips
they cannot use. Card text is untrusted data, quoted as such: invisible characters dropped, role and field
markers broken (`safeguards.screen.as_data`), one line each, capped, never formatting of our own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from purpose_dspy.memory.cards import MemoryCard, MemoryContext
from purpose_dspy.safeguards.screen import as_data
from purpose_dspy.text import LINE_CAP, content_words, estimate_tokens, one_line
from purpose_dspy.types import State

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Strategy:", ("strategic", "failure_pattern")),
    ("Procedures:", ("procedural",)),
    ("Tips for actions available now:", ("tool",)),
    ("Calibration:", ("critic_calibration",)),
)


def shows_candidate(card_id: str, task_id: str, share: float) -> bool:
    """The canary rule: is this candidate shown in this task?

    A hash, not a random draw, so a task gets the same answer in every process and on every retry,
    and the tasks where the card is not shown form the comparison its lift is measured against.
    """
    digest = hashlib.sha256((card_id + task_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def render_context(
    cards: Sequence[MemoryCard], *, purpose: str, state: State, role: str, budget_tokens: int
) -> MemoryContext:
    """Render `cards` (already in scope and ordered most trusted first) within `budget_tokens`.

    Cards are added in order until the next one would exceed the budget; it and every card after it
    are reported as dropped.
    """
    # The strategic tier is always shown: it gets the budget first; within a tier, most trusted first.
    applicable = sorted(
        (card for card in cards if applies(card, state, role)),
        key=lambda card: card.kind not in ("strategic", "failure_pattern"),
    )
    sop = most_relevant_procedure(applicable, purpose, state)
    kept: list[MemoryCard] = []
    dropped: list[str] = []
    for card in applicable:
        if dropped or estimate_tokens(render([*kept, card], sop)) > budget_tokens:
            dropped.append(card.id)
        else:
            kept.append(card)
    text = render(kept, sop)
    return MemoryContext(text=text, shown=tuple(c.id for c in kept), dropped=tuple(dropped), tokens=estimate_tokens(text))


def applies(card: MemoryCard, state: State, role: str) -> bool:
    """Whether the card is useful here: calibration only for critics, tool tips only for actions valid now."""
    if card.kind == "critic_calibration":
        return role == "critic"
    if card.kind == "tool" and state.valid_actions:
        prefix = _normal(card.action)
        return any(_normal(action).startswith(prefix) for action in state.valid_actions)
    return True


def most_relevant_procedure(cards: Sequence[MemoryCard], purpose: str, state: State) -> str | None:
    """Id of the procedural card sharing the most meaningful words with the state and purpose.

    At least one shared word is required: an SOP about nothing on screen is not worth its tokens.
    Ties go to the earlier (more trusted) card.
    """
    here = content_words(state.observation + "\n" + purpose)
    best, best_overlap = None, 0
    for card in cards:
        if card.kind == "procedural":
            overlap = len(content_words(card.title + "\n" + card.text) & here)
            if overlap > best_overlap:
                best, best_overlap = card.id, overlap
    return best


def render(cards: Sequence[MemoryCard], sop: str | None) -> str:
    """The sections holding `cards`, in their order; empty sections left out; no cards -> ""."""
    blocks = []
    for header, kinds in SECTIONS:
        lines = [line for card in cards if card.kind in kinds for line in card_lines(card, expand=card.id == sop)]
        if lines:
            blocks.append("\n".join([header, *lines]))
    return "\n".join(blocks)


def card_lines(card: MemoryCard, *, expand: bool = False) -> list[str]:
    """The lines one card takes in the context: its text as quoted data (`as_data`, then one capped line)."""
    text = as_data(card.text)
    if card.kind == "failure_pattern":
        return [one_line(f"- Avoid: {text}")]
    if card.kind == "procedural":
        index = one_line(f"- {as_data(card.title)}")
        return [index, "  " + one_line(text, LINE_CAP - 2)] if expand else [index]
    if card.kind == "tool":
        return [one_line(f"- {as_data(card.action).strip()}: {text}")]
    return [one_line(f"- {text}")]


def _normal(action: str) -> str:
    """Case and spacing do not make a different action ("Open  Door" is "open door")."""
    return " ".join(action.lower().split())
