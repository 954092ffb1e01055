"""The abstract view of a step that lets a demo travel from one task to another, from text alone.

Two tasks of one family rarely share a state, but they share situations: "the thing the purpose
names can be acted on here". The view is built from the purpose and the valid actions only:

- a word of an action that the purpose names (not the action's first word, its verb) is the goal:
  under "find the coin ... take it", `take coin` is `take <goal>`; `move east` stays `move east`;
- a state's **situation** is the set of its valid actions' shapes: the verb, plus ` <goal>` where
  the action names the goal (`{move, take <goal>}`: the goal is at hand and one can walk away).

A demo's action is kept as its **template** (`take <goal>`) and shown only where the situation is the
same and the template names exactly one valid action now. A template with no goal in it is the
action itself, so a move that was right in one house is never offered in another house as a rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from purpose_dspy.text import content_words, words

GOAL = "<goal>"


def goal_words(purpose: str) -> set[str]:
    """The words the purpose names (content words, at least 3 letters)."""
    return content_words(purpose, min_length=3)


def template(action: str, purpose: str) -> str:
    """`action` with every word the purpose names, after its verb, replaced by `<goal>`."""
    goal = goal_words(purpose)
    parts = words(action)
    if not parts:
        return action.strip()
    return " ".join([parts[0], *(GOAL if w in goal else w for w in parts[1:])])


def shape(action: str, purpose: str) -> str:
    """The verb of `action`, plus ` <goal>` when it names the goal."""
    t = template(action, purpose)
    verb = t.split(" ", 1)[0]
    return f"{verb} {GOAL}" if GOAL in t.split()[1:] else verb


def situation(purpose: str, valid_actions: Sequence[str]) -> tuple[str, ...]:
    """The sorted shapes of the valid actions (empty when the environment lists none)."""
    return tuple(sorted({shape(a, purpose) for a in valid_actions}))


def concrete(template_text: str, purpose: str, valid_actions: Sequence[str]) -> str | None:
    """The one valid action with this template, else None (none, or several: the template does not decide)."""
    matches = [a for a in valid_actions if template(a, purpose) == template_text]
    return matches[0] if len(matches) == 1 else None
