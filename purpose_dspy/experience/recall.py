"""What replay recalls for a state, how similar stored states are found, and how recall is shown.

Phase 1 of recall lives here: the stored states most like the current one, by SQLite FTS5 / BM25
candidates re-scored by Jaccard over their distinctive words, or by cosine over embedder vectors
when the store has an embedder. Phase 2 (the actions taken there, by Q) is the store's. `Recall`
is what the actor is shown; every environment-written text in it goes through `one_line`.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from pydantic import BaseModel, Field

from purpose_dspy.errors import UsageError
from purpose_dspy.experience.config import ReplayConfig
from purpose_dspy.memory.screen import rule_changing
from purpose_dspy.text import content_words, one_line, overlap

ACTION_CHARS = 80
"""Longest action text shown in a recall line (actions are environment text: untrusted)."""
SAME_STATE_CAP = 0.99
"""Similarity of a look-alike state never reaches 1.0: 1.0 means this very state."""
MIN_WORD_LENGTH = 3
"""Words of one or two characters ("go", "a", "12") say nothing about which state this is."""


class RecalledAction(BaseModel):
    """One action remembered in a state like the current one."""

    action: str
    q: float = Field(description="Learned value of taking `action` there (discounted return).")
    visits: int
    similarity: float = Field(description="1.0 for the same state; less for a similar one.")
    state: str = Field(description="The remembered state's text (start of it).")
    trajectories: tuple[str, ...] = Field(description="Provenance: trajectory ids that took this action there.")
    on_success_path: bool = Field(False, description="A successful trajectory took this action in this very state.")
    continuation: tuple[str, ...] = Field((), description="What that successful trajectory did next.")


class Recall(BaseModel):
    """What replay offers the actor for one state: actions to prefer and actions to avoid."""

    encouraged: tuple[RecalledAction, ...] = ()
    discouraged: tuple[RecalledAction, ...] = ()
    untried: tuple[str, ...] = Field((), description="Valid actions never taken in this very state.")
    seconds: float = 0.0

    def render(self, limit: int = 3) -> str:
        """The lines the actor reads (empty when there is nothing to say).

        Action texts come from the environment, so they are shown as data: one line, capped, and an
        action that carries orders or judge-directed text is left out (it cannot become advice)."""
        lines = []
        for r in [r for r in self.encouraged if showable(r.action)][:limit]:
            where = "here" if r.similarity >= 1.0 else "in a similar state"
            nxt = [one_line(a, ACTION_CHARS) for a in r.continuation[:4] if showable(a)]
            then = f"; then {', '.join(nxt)}" if nxt else ("; it finished the task" if r.on_success_path else "")
            lines.append(f"worked {where}: {one_line(r.action, ACTION_CHARS)} (value {r.q:+.2f}, {r.visits}x){then}")
        for r in [r for r in self.discouraged if showable(r.action)][:limit]:
            where = "here" if r.similarity >= 1.0 else "in a similar state"
            lines.append(f"did not work {where}: {one_line(r.action, ACTION_CHARS)} (value {r.q:+.2f}, {r.visits}x)")
        return "\n".join(lines)


def showable(action: str) -> bool:
    """An action text that gives orders (to the model or the judge) is never shown as advice."""
    return not rule_changing(action)


def state_words(text: str) -> set[str]:
    """The distinct, non-trivial words of a state's text: what lexical similarity is measured on."""
    return content_words(text, min_length=MIN_WORD_LENGTH)


def lexical_similar(
    db: sqlite3.Connection, family: str, purpose: str, text: str, config: ReplayConfig
) -> dict[str, tuple[float, str]]:
    """state_key -> (similarity, text) of stored states sharing `text`'s distinctive words.

    BM25 finds the candidates; how similar they are is judged on its own scale (shared distinctive
    words / all of them, at most 0.99), so a state sharing only boilerplate scores low even when it
    is the best match there is. States below `config.min_similarity` are left out."""
    query = state_words(text)
    terms = distinctive_terms(db, query, config)
    if not terms:
        return {}
    hits = db.execute(
        "SELECT s.state_key, bm25(state_text) AS score, s.text FROM state_text "
        "JOIN states s ON s.id = state_text.rowid "
        "WHERE state_text MATCH ? AND s.family = ? AND s.purpose = ? ORDER BY score LIMIT ?",
        (" OR ".join(f'"{t}"' for t in terms), family, purpose, config.candidates),
    ).fetchall()
    found: dict[str, tuple[float, str]] = {}
    for skey, _score, stext in hits:
        similarity = SAME_STATE_CAP * overlap(query, state_words(stext))
        if similarity >= config.min_similarity:
            found[skey] = (similarity, stext)
    return found


def distinctive_terms(db: sqlite3.Connection, words: set[str], config: ReplayConfig) -> list[str]:
    """The query: the state's words that few stored states share (rarest first).

    Words most states contain ("exit", "here") make every state a match and cost most of the
    query's time while saying nothing about similarity, so they are left out."""
    if not words:
        return []
    marks = ",".join("?" * len(words))
    doc_count = dict(db.execute(f"SELECT term, doc FROM state_vocab WHERE term IN ({marks})", sorted(words)))
    total = db.execute("SELECT MAX(id) FROM states").fetchone()[0] or 0
    known = sorted((w for w in words if w in doc_count), key=lambda w: (doc_count[w], w))
    rare = [w for w in known if doc_count[w] <= config.common_share * total]
    return (rare or known[:4])[: config.query_terms]


def dense_similar(
    db: sqlite3.Connection, family: str, purpose: str, query_vector: Any, config: ReplayConfig
) -> dict[str, tuple[float, str]]:
    """state_key -> (cosine similarity, at most 0.99, text) of the stored states nearest `query_vector`."""
    import numpy as np

    rows = db.execute(
        "SELECT state_key, vector, text FROM states WHERE family=? AND purpose=? AND vector IS NOT NULL", (family, purpose)
    ).fetchall()
    if not rows:
        return {}
    matrix = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    query = np.asarray(query_vector, dtype=np.float32)
    sims = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query) + 1e-9)
    top = np.argsort(-sims)[: config.candidates]
    return {
        rows[i][0]: (float(min(sims[i], SAME_STATE_CAP)), rows[i][2]) for i in top if sims[i] >= config.min_similarity
    }


def to_blob(vector: Any) -> bytes:
    """An embedder's vector as raw float32 bytes (what the `states.vector` column holds)."""
    import numpy as np

    arr = np.asarray(vector, dtype=np.float32).ravel()
    if not arr.size or not math.isfinite(float(arr.sum())):
        raise UsageError("the replay embedder returned an empty or non-finite vector")
    return arr.tobytes()
