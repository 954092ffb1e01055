"""`parse_constraints`: the constraints a free-text request states, read by regular expression only.

It knows common phrasings ("exactly 12 words", "between 30 and 80 words", "avoid the word 'very'",
"a bulleted list of 4 items", "end with a question", ...). A phrasing it does not know yields no
constraint, never a guess; a vague count ("about 50 words") or a contradictory one yields none either.
"""

from __future__ import annotations

import re

from purpose_dspy.writing.constraint_kinds import (
    Constraint,
    ForbiddenWords,
    Format,
    RequiredWords,
    SentenceCount,
    WordCount,
    sort_key,
)
from purpose_dspy.writing.text_measures import WORDISH

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
    return [w for w in items if WORDISH.search(w)]


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
