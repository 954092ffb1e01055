"""The one text module: tokenising, word overlap, and making untrusted text safe to put on a prompt line.

Word measures are deliberately crude (word sets, Jaccard, a length-based token estimate): the
decisions they drive must be cheap, deterministic and explainable in one line of an event log —
memory admission, de-duplication and relevance, replay's lexical recall, the editor archive's
example choice and per-call demo choice. `shingles` adds adjacent word pairs to the words, so
"row 2, column 3" and "row 3, column 2" are not the same text.

One tokenizer, `words`: lower-cased runs of Unicode letters and digits (punctuation and underscores
split words). One stopword list, `STOPWORDS`: the union of the two lists there were — the English
function words memory, the archive and demo choice used, plus the game-text boilerplate replay used
("has have also see one part room another nothing carry"). Why the union: replay's lexical recall is
what tests/test_replay.py measures on game text, and with its words kept out the kitchen states there
score exactly as before (the one-word look-alike 0.849; "You carry a knife" does not split a room
from itself, 0.99), where the English list alone would move them (0.858, plus a second look-alike at
0.804). Memory's, the archive's and demo choice's tests pass with those words dropped too. The
English words replay did not drop before ("here", "into", "onto", "can", ...) move its Jaccard
similarity by at most 0.05 on benchmarks/replay_recall.py's game text. Replay also leaves out words
of one or two characters (`content_words(text, min_length=3)`), as it always did.

`one_line` is the only way untrusted text (environment observations and actions, card, replay and
archive text) becomes a prompt line: control characters become spaces, whitespace runs collapse,
and the length is capped, so such text can never start a line, a section or a role of its own.
"""

from __future__ import annotations

import math
import re

STOPWORDS = frozenset(
    "a an the and or but if then else of to in on at by for with from into onto as is are was were be been "
    "it its this that these those there here you your i me my we our they them their he she his her "
    "do does did done not no so than too very can will would should could may might must just only "
    "what which who whom when where why how all any each some such more most other same own up down out "
    "over under again once about after before "
    # environment boilerplate: in nearly every state of a text game, so it says nothing about which one
    "has have also see one part room another nothing carry".split()
)

LINE_CAP = 300
"""Longest rendered line by default: a line is data for the model, not a place to smuggle a page of text."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def words(text: str) -> list[str]:
    """Lower-cased words with punctuation stripped, in order (the one tokenizer)."""
    return re.findall(r"[^\W_]+", text.lower())


def content_words(text: str, min_length: int = 1) -> set[str]:
    """The distinct words of `text` that carry meaning: no stopwords, none shorter than `min_length`."""
    return {w for w in words(text) if len(w) >= min_length and w not in STOPWORDS}


def jaccard(a: str, b: str) -> float:
    """Word-set Jaccard similarity; 0 when either side has no words."""
    sa, sb = set(words(a)), set(words(b))
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def shingles(text: str) -> frozenset[str]:
    """Content words plus adjacent word pairs (pairs keep numbers tied to what they count)."""
    ws = words(text)
    return frozenset(content_words(text) | {f"{a} {b}" for a, b in zip(ws, ws[1:])})


def overlap(a: frozenset[str] | set[str], b: frozenset[str] | set[str]) -> float:
    """Jaccard similarity of two word (or shingle) sets; 0 when either is empty."""
    return len(a & b) / len(a | b) if a and b else 0.0


def shared_run(a: str, b: str, length: int) -> str | None:
    """A run of `length` consecutive words present in both texts (the first found), else None."""
    wa, wb = words(a), words(b)
    runs_b = {tuple(wb[i : i + length]) for i in range(len(wb) - length + 1)}
    for i in range(len(wa) - length + 1):
        run = tuple(wa[i : i + length])
        if run in runs_b:
            return " ".join(run)
    return None


def estimate_tokens(text: str) -> int:
    """Tokens estimated as ceil(len(text) / 4).

    Why not a tokenizer: the budget must be the same for every model and cost nothing to compute;
    four characters per token is the usual rule of thumb for English with BPE vocabularies.
    """
    return math.ceil(len(text) / 4)


def one_line(text: str, cap: int = LINE_CAP) -> str:
    """Untrusted `text` made inert for a prompt line: control characters (C0, DEL, C1, line and paragraph
    separators) become spaces, whitespace runs collapse to one space, and the result is cut to `cap`
    characters, the last of them "…" when anything was cut."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= cap else flat[: cap - 1].rstrip() + "…"
