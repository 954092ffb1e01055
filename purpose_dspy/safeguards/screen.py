"""The one screen for untrusted text: what in an observation, a memory card or an editor output is not data.

Shared by the critic's guard (`injection.find_injection`, the addressed kinds), MemoryCI (`memory/screen.py`),
the editor's review and the archive (`writing/`). `screen(text, kinds)` returns a `Screening`: each passage
found and its kind. The kinds aimed at a model, a judge or memory (`judge`, `orders`, `claim`, `memory`,
`marker`) and `component` are the tripwire patterns of `injection.py`, run on normalised text; `secret` is
here: credential shapes (API keys, tokens, private keys, credentials in URLs), "the password is ...", and
high-entropy tokens. Secrets are redacted in every passage, so a log or a reason never spreads them.

Which kinds a caller asks for is its decision: the guard asks for `ADDRESSED` (a secret does not inflate Φ),
an observation a card was distilled from, an editor output and an archived answer for `UNTRUSTED`, a memory
card for the actor `CARD` (also: no naming of the system's own parts).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from purpose_dspy.safeguards.injection import ADDRESSED, Kind, decoded, matches

__all__ = ["ADDRESSED", "CARD", "LABELS", "UNTRUSTED", "Finding", "Kind", "Screening", "as_data", "redact", "screen"]

UNTRUSTED: tuple[Kind, ...] = (*ADDRESSED, "secret")
"""Everything but `component`: observations a card was distilled from, editor outputs, archived answers."""
CARD: tuple[Kind, ...] = (*UNTRUSTED, "component")
"""What a memory card shown to the actor must be free of."""
LABELS: dict[Kind, str] = {
    "judge": "addressed to the judge", "orders": "instruction to the model", "memory": "order aimed at memory",
    "claim": "claim about scoring or completion", "marker": "role or field marker", "secret": "secret",
    "component": "names the system's own components",
}
SECRET_PATTERNS: tuple[str, ...] = (
    r"\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{20,}", r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
    r"\bAIza[0-9A-Za-z_-]{30,}", r"\b(?:glpat|hf|pk_live|sk_live|rk_live|pk_test|sk_test|npm"
    r"|pypi)[-_][A-Za-z0-9_-]{16,}",
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"\b[a-z][a-z0-9+.-]*://[^\s:/@]+:[^\s/@]+@", r"(?i)\bbearer [A-Za-z0-9._~+/-]{16,}=*",
    r"(?i)\b(?:api[ _-]?key|apikey|access[ _-]?key(?:[ _-]?id)?|secret[ _-]?(?:access[ _-]?)?key|client[ _-]?secret"
    r"|(?:auth|access|refresh|session|bearer|api|github|slack|oauth)[ _-]?token|session[ _-]?(?:id|cookie)"
    r"|private[ _-]?key|password|passwd|pwd|passphrase|passcode|pin (?:code|number)|one[ -]time (?:code|password)"
    r"|otp|2fa code|mfa code"
    r"|security code|credentials?|ssh[ _-]?key)(?: (?:for|to|of|on) [\w .-]{1,30}?)? ?(?:is|was|=|:|:=|->|=>|reads"
    r"|equals) ?[\"'`]?[^\s\"'`]{3,}",
    r"(?i)\b(?:secret|token|login)\s?[:=]\s?[^\s\"'`]{4,}",
    r"(?i)\b(?:use|enter|type|with|using|and) (?:the )?(?:password|passphrase|passcode|pwd) [\"'`]?[^\s\"'`]{3,}",
)
_SECRETS = tuple(re.compile(p) for p in SECRET_PATTERNS)
_TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{20,}")
_INVISIBLE = re.compile("[\u034f\u115f\u1160\u3164\uffa0\u180e]")


@dataclass(frozen=True)
class Finding:
    """One passage of a text and the kind of thing it is (a secret redacted to what names it)."""

    kind: Kind
    passage: str


@dataclass(frozen=True)
class Screening:
    """What `screen` found in a text, kind by kind in the order asked for."""

    findings: tuple[Finding, ...] = ()

    @property
    def flagged(self) -> bool:
        return bool(self.findings)

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(dict.fromkeys(f.kind for f in self.findings))

    def passages(self, *kinds: Kind) -> list[str]:
        """The passages found, of `kinds` (of every kind when none is named)."""
        return [f.passage for f in self.findings if not kinds or f.kind in kinds]

    def reason(self, cap: int = 80) -> str:
        """Each kind found with its first passage quoted ("secret: 'api_key =…'; ..."); "" when nothing was."""
        first = {f.kind: f.passage for f in reversed(self.findings)}
        return "; ".join(f"{LABELS[kind]}: {_quote(first[kind], cap)}" for kind in self.kinds)


def screen(text: str, kinds: tuple[Kind, ...] = UNTRUSTED) -> Screening:
    """Screen untrusted `text` for `kinds` (default `UNTRUSTED`: every kind but `component`)."""
    if not text:
        return Screening()
    found = [Finding(kind, passage) for kind, passage in matches(text, tuple(k for k in kinds if k != "secret"))]
    if "secret" in kinds:
        found += [Finding("secret", redact(passage)) for passage in find_secrets(text)]
    return Screening(tuple(dict.fromkeys(found)))


def find_secrets(text: str) -> list[str]:
    """Credential shapes, named secrets and high-entropy tokens in `text`, unredacted (redact before logging)."""
    plain = decoded(text)
    found = [m.group(0) for pattern in _SECRETS for m in pattern.finditer(plain)]
    return found + [token for token in _TOKEN.findall(plain) if high_entropy(token)]


def high_entropy(token: str, min_bits: float = 3.5) -> bool:
    """A random-looking token: letters and 2+ digits, mixed case or 15%+ digits, and `min_bits` or more a character."""
    letters, digits = sum(c.isalpha() for c in token), sum(c.isdigit() for c in token)
    mixed = any(c.isupper() for c in token) and any(c.islower() for c in token)
    if letters < 2 or digits < 2 or not (mixed or digits >= 0.15 * len(token)):
        return False
    counts = Counter(token)
    return -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values()) >= min_bits


def as_data(text: str) -> str:
    """`text` made inert to quote in a prompt: invisible characters dropped, role and field markers broken
    (`[[ ## x ## ]]` -> `[ x ]`, `<|x|>` -> `(x)`, `<system>` -> `(system)`), code fences and heading marks removed."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", "".join(ch for ch in text if unicodedata.category(ch) != "Cf"))
    text = re.sub(r"\[\[\s*#+\s*(.*?)\s*#+\s*\]\]", r"[ \1 ]", text)
    text = re.sub(r"<\|\s*(.*?)\s*\|>", r"(\1)", text)
    text = re.sub(r"<<\s*/?\s*(\w+)\s*>>|</?\s*(\w+)\s*>", lambda m: f"({m.group(1) or m.group(2)})", text)
    return re.sub(r"`{3,}|#{2,}|(?:^|\n)[ \t]*#", " ", text)


def redact(secret: str) -> str:
    """Keep what names a secret ("api_key =", "password is", "sk-a"), never its value."""
    separator = re.search(r"(?:[:=]|\bis\b|\bwas\b)\s*", secret)
    return (secret[: separator.end()] if separator else secret[:4]) + "…"


def _quote(passage: str, cap: int) -> str:
    flat = " ".join(passage.split())
    return repr(flat if len(flat) <= cap else flat[: cap - 1] + "…")
