"""Machine-checkable writing constraints: counting, checking, explaining, and reading them from a request.

A writer LM cannot count its own words reliably, and an LM judge cannot either; Python can. So every
constraint here is checked in code, and its `failure` sentence names what was measured and what was
asked ("It has 15 words; the task asks for exactly 12."), which is what an editor needs to fix a draft.

Counting rules (deliberately simple, so a writer can be told them in one line):
- a word is a whitespace-separated token with at least one letter or digit ("coffee-shop", "don't" and
  "3.5" are one word each; a lone "-" or "—" is none);
- sentences are counted per block, where a block is a paragraph (text between blank lines) or a single
  bullet line ("- " or "* "); inside a block a sentence ends at a run of . ! or ? (optionally followed
  by closing quotes or brackets) before whitespace or the end, and trailing words without end
  punctuation make one more sentence. So a bullet line or a title line counts as one sentence.

`parse_constraints` reads the constraints a free-text request states in common phrasings, by regular
expression only: a phrasing it does not know yields no constraint, never a guess.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from purpose_dspy.errors import UsageError

_WORDISH = re.compile(r"[^\W_]")
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
_BULLET = re.compile(r"^\s*[-*] ")


def count_words(text: str) -> int:
    """Whitespace-separated tokens that contain at least one letter or digit."""
    return sum(1 for token in text.split() if _WORDISH.search(token))


def count_sentences(text: str) -> int:
    """Sentences by the rules in the module docstring; empty text has 0."""
    return sum(_sentences_in_block(block) for block in _blocks(text))


def _blocks(text: str) -> list[str]:
    """Paragraphs (split at blank lines), with every bullet line a block of its own."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if not line.strip() or _BULLET.match(line):
            blocks.append("\n".join(current))
            current = []
            if line.strip():
                blocks.append(line)
        else:
            current.append(line)
    blocks.append("\n".join(current))
    return [block for block in blocks if block.strip()]


def _sentences_in_block(block: str) -> int:
    ends = list(_SENTENCE_END.finditer(block))
    starts = [0] + [end.end() for end in ends]
    segments = [block[a:b.start()] for a, b in zip(starts, ends)] + [block[starts[-1]:]]
    return sum(1 for segment in segments if count_words(segment))


def _phrase_pattern(phrase: str) -> str:
    """A case-insensitive pattern for `phrase` as whole words (any whitespace between its words)."""
    return r"(?<![^\W_])" + r"\s+".join(map(re.escape, phrase.split())) + r"(?![^\W_])"


def word_used(text: str, word: str) -> bool:
    """Whether `word` (or a multiword phrase) occurs as whole words, ignoring case: 'we' is in 'We,' not in 'west'."""
    if not word.strip():
        raise UsageError("word_used needs a non-empty word or phrase")
    return re.search(_phrase_pattern(word), text, re.IGNORECASE) is not None


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
            if not _WORDISH.search(norm):
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
        if self.word is not None and not _WORDISH.search(self.word):
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
        pattern = r"^[\W_]*" + _phrase_pattern(self.word or "")
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


# --- reading constraints from a request -------------------------------------------------------------

_SMALL = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORDS = {w: i for i, w in enumerate(_SMALL, 1)} | {w: 10 * i for i, w in enumerate(_TENS, 2)}
_NUM = (r"(?:\d{1,4}|(?:" + "|".join(_TENS) + r")(?:[-\s](?:" + "|".join(_SMALL[:9]) + r"))?|"
        + "|".join(sorted(_SMALL, key=len, reverse=True)) + r"|hundred|single(?=[\s-]+(?:word|sentence)\b))")
_UPPER = {"at most": 0, "no more than": 0, "not more than": 0, "up to": 0, "a maximum of": 0, "maximum of": 0,
          "max": 0, "under": -1, "fewer than": -1, "less than": -1}
_LOWER = {"at least": 0, "no fewer than": 0, "no less than": 0, "not less than": 0, "a minimum of": 0,
          "minimum of": 0, "min": 0, "more than": 1, "over": 1}
_BOUND_WORDS = "|".join(sorted(map(re.escape, _UPPER | _LOWER), key=len, reverse=True))
_NOT_TOTAL = r"(?!\s+(?:each|per|apiece)\b)"
_TRAILING_UPPER = r"or\s+(?:fewer|less|under|below)|max(?:imum)?|limit|cap"  # all include the number
_TRAILING_LOWER = r"or\s+(?:more|over|above)|min(?:imum)?"
_VAGUE = r"about|around|roughly|approximately|approx|nearly|almost|some|first|last|next"
_NEGATED = re.compile(r"(?:\bnot|n't|\bnever|\bno|\bavoid(?:ing)?|\bwithout|\bfrom)\s+$", re.IGNORECASE)

# A quoted word: '…' "…" ‘…’ “…”; an apostrophe followed by a letter (don't) does not close it.
_QUOTE_BODY = r"""['"‘“]((?:[^'"‘’“”\n]|['’](?=[^\W_])){1,40}?)['"’”](?![^\W_])"""
_QUOTE_ITEM = _QUOTE_BODY.replace("((?:", "(?:(?:", 1)
_QUOTE_LIST = rf"{_QUOTE_ITEM}(?:\s*(?:,\s*(?:and\s+|or\s+|nor\s+)?|and\s+|or\s+|nor\s+|&\s*){_QUOTE_ITEM})*"
_WORDS_NOUN = r"(?:(?:any\s+of\s+|both\s+|all\s+of\s+)?the\s+)?(?:(?:words?|terms?|phrases?)\s*:?\s*)?"
_FORBID = re.compile(r"\b(?:avoid(?:ing)?(?:\s+using)?|without(?:\s+using)?|refrain\s+from\s+using|(?:do|does|must|should|shall|can)\s*(?:not|n't)\s+"
                     r"(?:use|include|contain|mention|say)|never\s+(?:use|say|mention)|exclud(?:e|ing)|ban)\s+"
                     + _WORDS_NOUN + f"({_QUOTE_LIST})", re.IGNORECASE)
_REQUIRE = re.compile(r"\b(?:include|includes|including|use|uses|using|mention|mentions|mentioning|contain|"
                      r"contains|containing|feature|featuring)\s+" + _WORDS_NOUN + f"({_QUOTE_LIST})", re.IGNORECASE)
_STARTS = re.compile(r"\b(?:start|starts|starting|begin|begins|beginning|open|opens|opening)\s+with\s+"
                     r"(?:the\s+word\s+)?" + f"({_QUOTE_ITEM})", re.IGNORECASE)
_BULLETS = re.compile(
    rf"\bbullet(?:ed|ted)?[\s-]+(?:list|points?)\s+(?:of|with)\s+({_NUM})\s+(?:items|points|bullets|lines|entries)\b"
    rf"|\b({_NUM})[\s-]+(?:bullet(?:ed)?[\s-]*points?|bullets|bulleted\s+(?:items|lines))\b"
    rf"|\b({_NUM})[\s-]+item\s+bullet(?:ed|ted)?\s+list\b", re.IGNORECASE)
_QUESTION = re.compile(r"\b(?:end|ends|ending)\s+(?:with|in|on)\s+a\s+question\b|\b(?:as|in\s+the\s+form\s+of)\s+a\s+question\b",
                       re.IGNORECASE)
_LOWERCASE = re.compile(r"\b(?:all\s+(?:in\s+)?|entirely\s+(?:in\s+)?|only\s+|in\s+)lower[\s-]?case\b"
                        r"|\bno\s+(?:capital|capitalized|upper[\s-]?case)\s+letters\b", re.IGNORECASE)
_TITLE = re.compile(r"\b(?:with|include|add|give\s+it|start\s+with|begin\s+with)\s+a\s+(?:short\s+)?title\b", re.IGNORECASE)


def _number(token: str) -> int:
    token = token.lower()
    if token.isdigit():
        return int(token)
    if token == "single":
        return 1
    if token == "hundred":
        return 100
    parts = re.split(r"[-\s]", token)
    return sum(_NUMBER_WORDS[p] for p in parts)


def _count_bounds(text: str, unit: str) -> tuple[int, int | None] | None:
    """The (min, max) a request states for `unit` ('words?'), intersecting every statement; None if none or contradictory."""
    unit_core = rf"[\s-]+(?:{unit})\b"
    unit_re = unit_core + _NOT_TOTAL
    patterns = [
        ("range", re.compile(rf"\b(?:between\s+)?({_NUM})\s*(?:-|–|—|to|and)\s*({_NUM}){unit_re}", re.IGNORECASE)),
        ("bound", re.compile(rf"\b({_BOUND_WORDS})\s+({_NUM}){unit_re}", re.IGNORECASE)),
        ("trailing", re.compile(rf"\b({_NUM}){unit_core}[\s,-]*({_TRAILING_UPPER}|{_TRAILING_LOWER})\b", re.IGNORECASE)),
        ("vague", re.compile(rf"(?:\b(?:{_VAGUE})\.?\s*|~\s*)({_NUM}){unit_core}", re.IGNORECASE)),
        ("exact", re.compile(rf"\b({_NUM}){unit_re}", re.IGNORECASE)),
    ]
    taken: list[tuple[int, int]] = []
    lo, hi = 1, None
    found = False
    for name, pattern in patterns:
        for match in pattern.finditer(text):
            if any(a < match.end() and match.start() < b for a, b in taken):
                continue
            if name == "vague":  # "about 50 words", "the first 3 words": not a count to enforce
                taken.append(match.span())
                continue
            if name == "range":
                compound = f"{match[1]}-{match[2]}"
                if compound in match[0] and re.fullmatch(_NUM, compound, re.IGNORECASE):
                    continue  # "twenty-five words" is one number, read by "exact"
                a, b = _number(match[1]), _number(match[2])
            elif name == "bound":
                phrase, n = " ".join(match[1].lower().split()), _number(match[2])
                a, b = (1, n + _UPPER[phrase]) if phrase in _UPPER else (n + _LOWER[phrase], None)
            elif name == "trailing":
                n = _number(match[1])  # "12 words or fewer", "50-word limit", "10 words minimum"
                a, b = (1, n) if re.fullmatch(_TRAILING_UPPER, match[2], re.IGNORECASE) else (n, None)
            else:
                a = b = _number(match[1])
            taken.append(match.span())
            if a < 1 or (b is not None and b < a):  # stated but impossible ("under 1 word"): no constraint
                continue
            found = True
            lo, hi = max(lo, a), b if hi is None else (hi if b is None else min(hi, b))
    if not found or (hi is not None and lo > hi):
        return None
    return lo, hi


def _quoted_words(fragment: str) -> list[str]:
    items = [w.strip() for w in re.findall(_QUOTE_BODY, fragment)]
    return [w for w in items if _WORDISH.search(w)]


def parse_constraints(text: str) -> list[Constraint]:
    """The constraints `text` states in phrasings this module knows, in the stable `sort_key` order."""
    found: list[Constraint] = []
    for unit, model in (("words?", WordCount), ("sentences?", SentenceCount)):
        bounds = _count_bounds(text, unit)
        if bounds:
            found.append(model(min=bounds[0], max=bounds[1]))
    forbidden_spans = [m.span() for m in _FORBID.finditer(text)]
    forbidden = [w for m in _FORBID.finditer(text) for w in _quoted_words(m[1])]
    required = [w for m in _REQUIRE.finditer(text)
                if not any(a <= m.start() < b for a, b in forbidden_spans) and not _NEGATED.search(text[:m.start()])
                for w in _quoted_words(m[1])]
    if required:
        found.append(RequiredWords(words=required))
    if forbidden:
        found.append(ForbiddenWords(words=forbidden))
    bullets = _BULLETS.search(text)
    items = _number(next(g for g in bullets.groups() if g)) if bullets else 0
    if items >= 1:
        found.append(Format(style="bullets", items=items))
    if _QUESTION.search(text):
        found.append(Format(style="question"))
    if _LOWERCASE.search(text):
        found.append(Format(style="lowercase"))
    if _TITLE.search(text):
        found.append(Format(style="title"))
    start = _STARTS.search(text)
    if start and _quoted_words(start[1]):
        found.append(Format(style="starts_with", word=_quoted_words(start[1])[0]))
    return sorted(found, key=sort_key)
