"""The abstract view of a step that lets a demo travel from one task to another, from text alone.

Two tasks of one family rarely share a state, but they share situations: "the thing the purpose
names can be acted on here", "the text in front of me names one of the actions". The view is built from
the purpose, the observation and the valid actions only:

- an action of two words or more that the observation says word for word, or every content word of
  which it says (at least two of them), is **named**: its template is `<named>` (Simon says, 'smell pineapple' names `smell
  pineapple`, and 'jump up and down' names `jump up and down`; "the current task is to take the papaya"
  names `take papaya`);
- otherwise a word of an action that the purpose names (not the action's first word, its verb) is the
  goal: under "find the coin ... take it", `take coin` is `take <goal>`; `move east` stays `move east`;
- a state's **situation** is the set of its valid actions' shapes that hold a slot (`take <goal>`,
  `<named>`); a state with none has the empty situation, where only the very same text matches (the
  callers fall back to it), so a move that was right in one house is never offered in another house.
  (Falling back to the set of verbs instead was tried: in treasure-maze it let "south" from one maze's
  start travel to every maze on two tasks' say-so.)

`situation_of` is the one rule every caller applies: the slot shapes, else the very state text; and
`rule_key` matches a literal action (no slot in its template) only in the very same state.

A demo's action is kept as its **template** and shown only where the situation is the same and the
template names exactly one valid action now. A template with no slot in it is the action itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from purpose_dspy.safeguards.canonical import canonical_text
from purpose_dspy.text import content_words, words

GOAL = "<goal>"
NAMED = "<named>"


def goal_words(purpose: str) -> set[str]:
    """The words the purpose names (content words, at least 3 letters)."""
    return content_words(purpose, min_length=3)


def named(action: str, observation: str) -> bool:
    """The observation says `action` (two words or more) word for word, or says every content word of it (at
    least two). A one-word action is never named: a list of exits says every move."""
    said, seen, parts = content_words(action), words(observation), words(action)
    exact = len(parts) >= 2 and bool(said) and f" {' '.join(parts)} " in f" {' '.join(seen)} "
    return exact or (len(said) >= 2 and said <= set(seen))


def template(action: str, purpose: str, observation: str = "") -> str:
    """`<named>` for an action the observation names; else `action` with every word the purpose names,
    after its verb, replaced by `<goal>`."""
    if observation and named(action, observation):
        return NAMED
    goal = goal_words(purpose)
    parts = words(action)
    if not parts:
        return action.strip()
    return " ".join([parts[0], *(GOAL if w in goal else w for w in parts[1:])])


def shape(action: str, purpose: str, observation: str = "") -> str | None:
    """`<named>`, or the verb of `action` plus ` <goal>` when it names the goal; None when it has no slot."""
    t = template(action, purpose, observation)
    if t == NAMED:
        return NAMED
    return f"{t.split(' ', 1)[0]} {GOAL}" if GOAL in t.split()[1:] else None


def situation(purpose: str, valid_actions: Sequence[str], observation: str = "") -> tuple[str, ...]:
    """The sorted slot shapes among the valid actions (empty: no slot, or no action list)."""
    return tuple(sorted({s for a in valid_actions if (s := shape(a, purpose, observation))}))


def situation_of(purpose: str, observation: str, valid_actions: Sequence[str]) -> tuple[str, ...]:
    """The situation demos are matched on: the slot shapes; with none, the canonical state text itself (only
    the very same state matches)."""
    return situation(purpose, valid_actions, observation) or (canonical_text(observation),)


def rule_key(purpose: str, observation: str, valid_actions: Sequence[str], template_text: str) -> tuple[str, ...]:
    """Where a rule that takes `template_text` may be matched: a template with a slot (`take <goal>`,
    `<named>`) in the abstract situation; an action with none (`move east`, `take papaya`) only in the very same
    state, even where another action of that state has a slot (a literal action says nothing of other tasks)."""
    if template_text == NAMED or GOAL in template_text.split():
        return situation_of(purpose, observation, valid_actions)
    return (canonical_text(observation),)


def concrete(template_text: str, purpose: str, valid_actions: Sequence[str], observation: str = "") -> str | None:
    """The one valid action with this template, else None (none, or several: the template does not decide)."""
    matches = list(dict.fromkeys(a for a in valid_actions if template(a, purpose, observation) == template_text))
    return matches[0] if len(matches) == 1 else None
