"""Machine-checkable writing constraints: counting, checking, explaining, and reading them from a request.

The one import place for callers; the work is done in three modules:

- `text_measures`      — `count_words`, `count_sentences`, `word_used` (and the counting rules);
- `constraint_kinds`   — `WordCount`, `SentenceCount`, `RequiredWords`, `ForbiddenWords`, `Format`, each
                         with `describe` / `check` / `failure`; `constraint_from_dict`, `sort_key`;
- `constraint_parsing` — `parse_constraints`, which reads them from a request by regex and never guesses.
"""

from __future__ import annotations

from purpose_dspy.writing.constraint_kinds import (
    Constraint,
    ForbiddenWords,
    Format,
    FormatStyle,
    RequiredWords,
    SentenceCount,
    WordCount,
    constraint_from_dict,
    sort_key,
)
from purpose_dspy.writing.constraint_parsing import parse_constraints
from purpose_dspy.writing.text_measures import count_sentences, count_words, word_used

__all__ = [
    "Constraint",
    "ForbiddenWords",
    "Format",
    "FormatStyle",
    "RequiredWords",
    "SentenceCount",
    "WordCount",
    "constraint_from_dict",
    "count_sentences",
    "count_words",
    "parse_constraints",
    "sort_key",
    "word_used",
]
