"""Text measures Python can do and LMs cannot: counting words and sentences, finding whole words.

A writer LM cannot count its own words reliably, and an LM judge cannot either; Python can.

Counting rules (deliberately simple, so a writer can be told them in one line):
- a word is a whitespace-separated token with at least one letter or digit ("coffee-shop", "don't" and
  "3.5" are one word each; a lone "-" or "—" is none);
- sentences are counted per block, where a block is a paragraph (text between blank lines) or a single
  bullet line ("- " or "* "); inside a block a sentence ends at a run of . ! or ? (optionally followed
  by closing quotes or brackets) before whitespace or the end, and trailing words without end
  punctuation make one more sentence. So a bullet line or a title line counts as one sentence.
"""

from __future__ import annotations

import re

from purpose_dspy.errors import UsageError

WORDISH = re.compile(r"[^\W_]")  # a letter or digit: what makes a token a word
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
_BULLET = re.compile(r"^\s*[-*] ")


def count_words(text: str) -> int:
    """Whitespace-separated tokens that contain at least one letter or digit."""
    return sum(1 for token in text.split() if WORDISH.search(token))


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


def phrase_pattern(phrase: str) -> str:
    """A case-insensitive pattern for `phrase` as whole words (any whitespace between its words)."""
    return r"(?<![^\W_])" + r"\s+".join(map(re.escape, phrase.split())) + r"(?![^\W_])"


def word_used(text: str, word: str) -> bool:
    """Whether `word` (or a multiword phrase) occurs as whole words, ignoring case: 'we' is in 'We,' not in 'west'."""
    if not word.strip():
        raise UsageError("word_used needs a non-empty word or phrase")
    return re.search(phrase_pattern(word), text, re.IGNORECASE) is not None
