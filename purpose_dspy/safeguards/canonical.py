"""Canonical form of a state's text, so that states that differ only in form share one Φ.

What counts as "only form": runs of whitespace, the key order of a JSON observation, and volatile
fields the environment declares (clocks, move counters) as regular expressions. Everything else,
including case and punctuation, is content.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

_SPACE = re.compile(r"\s+")


def canonical_text(text: str, volatile: Sequence[str] = ()) -> str:
    """`text` with volatile fields removed, JSON keys sorted and whitespace collapsed."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            data = json.loads(stripped)
        except ValueError:
            pass
        else:
            return json.dumps(_drop_keys(data, volatile), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for pattern in volatile:
        text = re.sub(pattern, " ", text)
    return _SPACE.sub(" ", text).strip()


def state_key(namespace: str, purpose: str, text: str, volatile: Sequence[str] = ()) -> str:
    """Store key of Φ(state | purpose) for one critic (`namespace` names the critic's LM and prompt).

    The replay store keys its states with `experience.replay.replay_key`, on this same canonical text."""
    material = "\x1f".join((namespace, canonical_text(purpose), canonical_text(text, volatile)))
    return "phi/v1/" + hashlib.sha256(material.encode("utf-8")).hexdigest()


def _drop_keys(data: Any, volatile: Sequence[str]) -> Any:
    if isinstance(data, dict):
        return {
            k: _drop_keys(v, volatile) for k, v in data.items() if not any(re.fullmatch(p, str(k)) for p in volatile)
        }
    if isinstance(data, list):
        return [_drop_keys(v, volatile) for v in data]
    if isinstance(data, str):
        return _SPACE.sub(" ", data).strip()
    return data
