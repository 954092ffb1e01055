"""The constraint kinds: each says what it asks (`describe`), whether a text meets it (`check`), and why not (`failure`).

Every constraint is checked in code, and its `failure` sentence names what was measured and what was
asked ("It has 15 words; the task asks for exactly 12."), which is what an editor needs to fix a draft.
Counting follows the rules in `text_measures`.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from purpose_dspy.errors import UsageError
from purpose_dspy.writing.text_measures import (
    WORDISH,
    count_sentences,
    count_words,
    phrase_pattern,
    word_used,
)


def _quoted(words: tuple[str, ...], joiner: str = ", ") -> str:
    quoted = [f"'{w}'" for w in words]
    if joiner == " and " and len(quoted) > 2:
        return ", ".join(quoted[:-1]) + " and " + quoted[-1]
    return joiner.join(quoted)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class _Constraint(BaseModel):
    """Shared behaviour: a constraint passes exactly when it has no failure sentence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def check(self, text: str) -> bool:
        """True when `text` meets this constraint."""
        return self.failure(text) == ""

    def failure(self, text: str) -> str:  # pragma: no cover - every kind overrides it
        raise NotImplementedError


class _CountRange(_Constraint):
    """A count between `min` and `max` inclusive; `max=None` means no upper limit."""

    min: int = Field(1, ge=1, description="Fewest allowed (1 = no lower limit worth stating).")
    max: int | None = Field(None, ge=1, description="Most allowed; None = no upper limit; equal to min = exact.")

    _noun: ClassVar[str] = "word"

    @model_validator(mode="after")
    def _ordered(self) -> _CountRange:
        if self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max}); swap them")
        return self

    def bounds(self) -> str:
        """The asked range in words: 'exactly 12', 'between 30 and 80', 'at most 20', 'at least 10'."""
        if self.max == self.min:
            return f"exactly {self.min}"
        if self.max is None:
            return f"at least {self.min}"
        if self.min == 1:
            return f"at most {self.max}"
        return f"between {self.min} and {self.max}"

    def measured(self, text: str) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def failure(self, text: str) -> str:
        n = self.measured(text)
        if n >= self.min and (self.max is None or n <= self.max):
            return ""
        return f"It has {_plural(n, self._noun)}; the task asks for {self.bounds()}."


class WordCount(_CountRange):
    """How many words the text may have (see `count_words`)."""

    kind: Literal["word_count"] = "word_count"

    def describe(self) -> str:
        return f"Use {self.bounds()} words."

    def measured(self, text: str) -> int:
        return count_words(text)


class SentenceCount(_CountRange):
    """How many sentences the text may have (see `count_sentences`)."""

    kind: Literal["sentence_count"] = "sentence_count"
    _noun: ClassVar[str] = "sentence"

    def describe(self) -> str:
        if self.max == self.min:
            return f"Write exactly {_plural(self.min, 'sentence')}."
        return f"Write {self.bounds()} sentences."

    def measured(self, text: str) -> int:
        return count_sentences(text)


class _WordList(_Constraint):
    """A list of lowercase words or phrases (normalised: trimmed, lower-cased, inner spaces collapsed)."""

    words: tuple[str, ...] = Field(min_length=1)

    @field_validator("words", mode="before")
    @classmethod
    def _normalise(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError("words must be a list of words, not one string; write words=['harbor']")
        if not isinstance(value, (list, tuple)):
            return value
        out: list[str] = []
        for word in value:
            norm = " ".join(str(word).lower().split())
            if not WORDISH.search(norm):
                raise ValueError(f"each word needs a letter or digit, got {word!r}")
            if norm not in out:
                out.append(norm)
        return tuple(out)


class RequiredWords(_WordList):
    """Words or phrases that must each appear as whole words (case ignored)."""

    kind: Literal["required_words"] = "required_words"

    def describe(self) -> str:
        noun = "word" if len(self.words) == 1 else "words"
        return f"Include the {noun} {_quoted(self.words, ' and ')}."

    def measured(self, text: str) -> list[str]:
        """The required words that are missing."""
        return [w for w in self.words if not word_used(text, w)]

    def failure(self, text: str) -> str:
        missing = self.measured(text)
        return f"It is missing the required word(s) {_quoted(tuple(missing))}." if missing else ""


class ForbiddenWords(_WordList):
    """Words or phrases that must not appear as whole words (case ignored)."""

    kind: Literal["forbidden_words"] = "forbidden_words"

    def describe(self) -> str:
        noun = "word" if len(self.words) == 1 else "words"
        return f"Do not use the {noun} {_quoted(self.words)}."

    def measured(self, text: str) -> list[str]:
        """The forbidden words that are used."""
        return [w for w in self.words if word_used(text, w)]

    def failure(self, text: str) -> str:
        used = self.measured(text)
        return f"It uses the forbidden word(s) {_quoted(tuple(used))}." if used else ""


FormatStyle = Literal["bullets", "question", "lowercase", "title", "starts_with"]
_TITLE_MAX_WORDS = 8


class Format(_Constraint):
    """A layout rule; `items` is needed by 'bullets' only, `word` by 'starts_with' only."""

    kind: Literal["format"] = "format"
    style: FormatStyle
    items: int | None = Field(None, ge=1, description="Number of '- ' lines (style 'bullets').")
    word: str | None = Field(None, description="The required first word (style 'starts_with').")

    @model_validator(mode="after")
    def _fields_match_style(self) -> Format:
        if (self.style == "bullets") != (self.items is not None):
            raise ValueError("'items' is required for style 'bullets' and only for it")
        if (self.style == "starts_with") != (self.word is not None):
            raise ValueError("'word' is required for style 'starts_with' and only for it")
        if self.word is not None and not WORDISH.search(self.word):
            raise ValueError(f"'word' needs a letter or digit, got {self.word!r}")
        return self

    def describe(self) -> str:
        if self.style == "bullets":
            return f"Format: a bulleted list of {self.items} items, each line starting with '- '."
        if self.style == "question":
            return "Format: end with a question (the last character is '?')."
        if self.style == "lowercase":
            return "Format: all lowercase, no capital letters."
        if self.style == "title":
            return (f"Format: a title of at most {_TITLE_MAX_WORDS} words without end punctuation on the "
                    "first line, a blank line, then the body.")
        return f"Format: start with the word '{self.word}'."

    def measured(self, text: str) -> str:
        """What was found, in a few words (e.g. '4 bullet lines, 1 other line', 'ends with '.'')."""
        if self.style == "bullets":
            lines = [line for line in text.splitlines() if line.strip()]
            bullets = sum(1 for line in lines if line.lstrip().startswith("- "))
            return f"{_plural(bullets, 'bullet line')}, {_plural(len(lines) - bullets, 'other line')}"
        if self.style == "question":
            end = text.rstrip()[-1:]
            return f"ends with {end!r}" if end else "empty"
        if self.style == "lowercase":
            upper = sorted({c for c in text if c.isupper()})
            return "capitals: " + "".join(upper) if upper else "no capitals"
        if self.style == "title":
            return self._title_problem(text) or "title, blank line, body"
        first = re.search(r"[^\W_][\w'’-]*", text)
        return f"starts with {first[0]!r}" if first else "no words"

    def failure(self, text: str) -> str:
        if self.style == "bullets":
            lines = [line for line in text.splitlines() if line.strip()]
            others = [n for n, line in enumerate(lines, 1) if not line.lstrip().startswith("- ")]
            if others:
                return f"Line {others[0]} does not start with '- '; every line must be a bullet."
            if len(lines) != self.items:
                return f"It has {_plural(len(lines), 'bullet')}; the task asks for exactly {self.items}."
            return ""
        if self.style == "question":
            return "" if text.rstrip().endswith("?") else f"It {self.measured(text)}; it must end with '?'."
        if self.style == "lowercase":
            return "" if not any(c.isupper() for c in text) else f"It has {self.measured(text)}; use no capitals."
        if self.style == "title":
            problem = self._title_problem(text)
            return f"{problem}; the task asks for a title line, a blank line, then the body." if problem else ""
        pattern = r"^[\W_]*" + phrase_pattern(self.word or "")
        if re.search(pattern, text, re.IGNORECASE):
            return ""
        return f"It {self.measured(text)}; it must start with the word '{self.word}'."

    def _title_problem(self, text: str) -> str:
        lines = text.strip().splitlines()
        if not lines or not count_words(lines[0]):
            return "There is no title line"
        if count_words(lines[0]) > _TITLE_MAX_WORDS:
            return f"The title has {count_words(lines[0])} words (at most {_TITLE_MAX_WORDS})"
        if lines[0].rstrip()[-1] in ".!?":
            return "The title ends with punctuation"
        if not count_words("\n".join(lines[1:])):
            return "There is no body after the title"
        if lines[1].strip():
            return "The title is not followed by a blank line"
        return ""


Constraint = Annotated[Union[WordCount, SentenceCount, RequiredWords, ForbiddenWords, Format], Field(discriminator="kind")]
_ORDER = ("word_count", "sentence_count", "required_words", "forbidden_words", "format")
_STYLE_ORDER = ("bullets", "question", "lowercase", "title", "starts_with")


@cache
def _adapter() -> TypeAdapter:
    return TypeAdapter(Constraint)


def constraint_from_dict(data: dict) -> Constraint:
    """A constraint from its JSON form, e.g. {"kind": "word_count", "min": 12, "max": 12}."""
    try:
        return _adapter().validate_python(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "(constraint)"
        raise UsageError(f"bad constraint {data!r}: {where}: {error['msg'].removeprefix('Value error, ')}; "
                         f"kinds are {', '.join(_ORDER)}") from exc


def sort_key(constraint: Constraint) -> tuple[int, int]:
    """The stable order constraints are listed in: counts, required, forbidden, then formats by style."""
    style = _STYLE_ORDER.index(constraint.style) if isinstance(constraint, Format) else 0
    return _ORDER.index(constraint.kind), style
