"""ExperienceReplay: every step the agent took, with Q-values, recalled by similarity then by Q.

After REMEMBERER (arXiv 2306.07929): the agent's own experience is stored as (state, action) with a
Q-value learned by n-step Bellman backups, and shown to the actor as encouraged and discouraged
actions. Recall has two phases: similar states first (SQLite FTS5 / BM25 over the state text, or
cosine over `dspy.Embedder` vectors when one is given), then the actions taken there, ranked by Q.

Storage is one SQLite file in WAL mode (diskcache has no full-text index, and SQLite ships with
Python). A trajectory is written in one transaction, so a process killed mid-batch leaves every
trajectory it committed and none half-written; `BEGIN IMMEDIATE` plus a busy timeout lets several
processes write one store. Nothing is pickled: rows are numbers and text, vectors raw float32.

This module is the store (schema, writes, phase 2 of recall); rewards and Q backups are in
`values.py`, the Recall models, phase-1 similarity and rendering in `recall.py` (re-exported here).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from purpose_dspy.errors import StoreBusyError, StoreCorruptError, UsageError
from purpose_dspy.experience.config import ReplayConfig
from purpose_dspy.experience.recall import (
    Recall,
    RecalledAction,
    dense_similar,
    lexical_similar,
    to_blob,
)
from purpose_dspy.experience.values import backup, step_rewards
from purpose_dspy.safeguards.canonical import canonical_text
from purpose_dspy.types import State, Trajectory

logger = logging.getLogger(__name__)

FORMAT = 1
FILENAME = "replay.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trajectories (
    id TEXT PRIMARY KEY, family TEXT NOT NULL, task_id TEXT NOT NULL, purpose TEXT NOT NULL,
    success INTEGER NOT NULL, steps INTEGER NOT NULL, phi_gain REAL NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS steps (
    trajectory_id TEXT NOT NULL, step INTEGER NOT NULL, family TEXT NOT NULL, state_key TEXT NOT NULL,
    action TEXT, phi_delta REAL NOT NULL, env_reward REAL NOT NULL, reward REAL NOT NULL,
    PRIMARY KEY (trajectory_id, step));
CREATE INDEX IF NOT EXISTS steps_by_state ON steps (family, state_key, action);
CREATE TABLE IF NOT EXISTS states (
    id INTEGER PRIMARY KEY, family TEXT NOT NULL, state_key TEXT NOT NULL, purpose TEXT NOT NULL,
    text TEXT NOT NULL, vector BLOB, UNIQUE (family, state_key));
CREATE VIRTUAL TABLE IF NOT EXISTS state_text USING fts5(text, content='', tokenize='unicode61');
CREATE VIRTUAL TABLE IF NOT EXISTS state_vocab USING fts5vocab(state_text, 'row');
CREATE TABLE IF NOT EXISTS q_values (
    family TEXT NOT NULL, state_key TEXT NOT NULL, action TEXT NOT NULL, q REAL NOT NULL,
    visits INTEGER NOT NULL, updated REAL NOT NULL, PRIMARY KEY (family, state_key, action));
"""


def replay_key(
    family: str, purpose: str, state: State | str, task_id: str = "", volatile: Sequence[str] = ()
) -> str:
    """Row key of a state in the replay store: same family, purpose and canonical text (and task, if given).

    The text is `safeguards.canonical.canonical_text` with the family's volatile patterns removed, so
    a move counter or clock does not split one state into many. Not `state_key`: that one keys the
    critic's Φ cache per critic (its namespace is the critic's LM and prompt); this one keys stored
    experience per task family, with no critic in it. With no volatile patterns the key is the one
    earlier stores were written with.
    """
    text = state.observation if isinstance(state, State) else state
    raw = f"{family}\x00{canonical_text(purpose)}\x00{canonical_text(text, volatile)}" + (f"\x00{task_id}" if task_id else "")
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class ExperienceReplay:
    """Steps, trajectories and Q-values of one persistence directory (None: a private in-memory store)."""

    def __init__(
        self, directory: str | Path | None = None, config: ReplayConfig | None = None, embedder: Any = None,
        busy_timeout: float = 60.0, volatile: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """`busy_timeout`: seconds a write waits for another process's transaction before `StoreBusyError`.
        `volatile`: per family, the environment's `volatile_patterns` (see `declare_volatile`)."""
        self.config = config or ReplayConfig()
        self.directory = Path(directory) if directory is not None else None
        self.embedder = embedder  # a dspy.Embedder (or any callable: list[str] -> vectors) for dense phase 1
        self.volatile: dict[str, tuple[str, ...]] = {f: tuple(p) for f, p in (volatile or {}).items()}
        self._lock = threading.Lock()
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = str(self.directory / FILENAME)
        else:
            target = ":memory:"
        try:
            self._db = sqlite3.connect(target, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
            self._check_format()  # before anything writes: a foreign store is left byte for byte as it was
            if self.directory is not None:  # an in-memory database has no journal file to switch
                self._use_wal()
            self._db.execute("PRAGMA synchronous=NORMAL")  # a killed process loses nothing it committed
            with self._write() as db:
                # statement by statement: executescript() would commit in the middle of this transaction
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(FORMAT),))
        except sqlite3.DatabaseError as exc:
            getattr(self, "_db", None) and self._db.close()
            if "locked" in str(exc):
                raise StoreBusyError(f"replay store {target} is locked by another process ({exc}); stop it or try again") from exc
            raise StoreCorruptError(
                f"replay store {target} is not a readable SQLite database ({exc}); move it aside or use a fresh directory"
            ) from exc

    def _use_wal(self) -> None:
        """WAL lets readers and one writer work at once. The switch is made once per file (it persists);
        it needs a moment with no other connection inside a transaction, which SQLite's busy timeout
        does not wait for, so it is retried here."""
        for _ in range(300):
            try:
                if str(self._db.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                    return
                self._db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            time.sleep(0.05)
        raise StoreBusyError(
            f"replay store in {self.directory} stayed locked for 15 s: another program holds it in a transaction; "
            "stop that program or try again"
        )

    def _check_format(self) -> None:
        has_meta = self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        row = self._db.execute("SELECT value FROM meta WHERE key='format'").fetchone() if has_meta else None
        if row is not None and row[0] != str(FORMAT):
            self._db.close()
            raise StoreCorruptError(
                f"replay store {self.directory} has format {row[0]}; this version reads format {FORMAT}. "
                "Use a fresh directory (the old one is left untouched)."
            )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading (BEGIN IMMEDIATE): no lost updates across processes."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreBusyError(
                    f"replay store in {self.directory} is locked by another process ({exc}); stop it or try again"
                ) from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def declare_volatile(self, family: str, patterns: Sequence[str]) -> None:
        """Use an environment's `volatile_patterns` in the keys of `family`'s states from now on.

        Declare them before the family's first trajectory: a state stored under other patterns keeps
        its old key (it is still found as a similar state, not as this very state)."""
        self.volatile[family] = tuple(patterns)

    def key(self, family: str, purpose: str, state: State | str, task_id: str = "") -> str:
        """The replay key of `state` in this store (its family's volatile patterns; the task only if `per_task`)."""
        return replay_key(
            family, purpose, state, task_id if self.config.per_task else "", self.volatile.get(family, ())
        )

    # -- writing ----------------------------------------------------------------------------
    def add(self, trajectory: Trajectory, family: str | None = None) -> int:
        """Store every step of `trajectory` and back its rewards up into Q-values. Returns steps stored.

        Adding the same trajectory id twice is a no-op (a retried batch does not double-count).
        """
        family = family or trajectory.task.env_id
        purpose = trajectory.purpose
        task = trajectory.task.task_id
        keys = [self.key(family, purpose, t.before, task) for t in trajectory.steps]
        final = self.key(family, purpose, trajectory.steps[-1].after, task) if trajectory.steps else None
        rewards = step_rewards(trajectory, self.config)
        vectors = None
        if self.embedder is not None and not self._known(trajectory.id):  # a retried batch is not embedded again
            vectors = self._embed([t.before.observation for t in trajectory.steps])
        now = time.time()
        phi_gain = (trajectory.phi_end or 0.0) - (trajectory.phi_start or 0.0)
        with self._write() as db:
            inserted = db.execute(
                "INSERT OR IGNORE INTO trajectories VALUES (?,?,?,?,?,?,?,?)",
                (trajectory.id, family, trajectory.task.task_id, purpose, int(trajectory.success),
                 len(trajectory.steps), phi_gain, now),
            ).rowcount
            if not inserted:
                return 0
            for i, (t, key) in enumerate(zip(trajectory.steps, keys)):
                db.execute(
                    "INSERT INTO steps VALUES (?,?,?,?,?,?,?,?)",
                    (trajectory.id, i, family, key, t.action.text if t.action else None, t.score.delta,
                     t.env_reward, rewards[i]),
                )
                self._index_state(db, family, key, purpose, t.before.observation, vectors[i] if vectors else None)
            backup(db, family, trajectory, keys, final, rewards, self.config, now)
        return len(trajectory.steps)

    def _known(self, trajectory_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM trajectories WHERE id=?", (trajectory_id,)).fetchone() is not None

    def _index_state(self, db: sqlite3.Connection, family: str, key: str, purpose: str, text: str, vector: Any) -> None:
        blob = None if vector is None else to_blob(vector)
        cur = db.execute(
            "INSERT OR IGNORE INTO states (family, state_key, purpose, text, vector) VALUES (?,?,?,?,?)",
            (family, key, purpose, text, blob),
        )
        if cur.rowcount:
            db.execute("INSERT INTO state_text (rowid, text) VALUES (?, ?)", (cur.lastrowid, text))

    # -- reading ----------------------------------------------------------------------------
    def recall(self, purpose: str, state: State, k: int = 3, *, family: str, task_id: str = "") -> Recall:
        """Phase 1: states like `state` (the same one first); phase 2: their actions ranked by Q.

        Only actions valid now are returned when the state lists them. For each action the entry
        from the most similar state wins (the same state beats a look-alike).
        """
        started = time.perf_counter()
        key = self.key(family, purpose, state, task_id)
        query_vector = self._embed([state.observation])[0] if self.embedder is not None else None  # outside the lock
        with self._lock:
            similar = self._similar(family, key, purpose, state.observation, query_vector)
            rows = self._actions_at(family, [s[0] for s in similar])
            by_action: dict[str, RecalledAction] = {}
            sim_of = {s[0]: (s[1], s[2]) for s in similar}
            for skey, action, q, visits in rows:
                if state.valid_actions and action not in state.valid_actions:
                    continue
                similarity, text = sim_of[skey]
                best = by_action.get(action)
                if best is None or (similarity, visits) > (best.similarity, best.visits):
                    by_action[action] = RecalledAction(
                        action=action, q=round(q, 4), visits=visits, similarity=round(similarity, 4),
                        state=text[:200], trajectories=self._provenance(family, skey, action),
                    )
            tried_here = {r[1] for r in rows if r[0] == key}
            # Phase 2: what was learned in this very state first, then the look-alikes; each by Q.
            ranked = list(by_action.values())
            encouraged = sorted((r for r in ranked if r.q > 0), key=lambda r: (r.similarity < 1.0, -r.q))[:k]
            encouraged = [self._with_continuation(family, key, r) for r in encouraged]
            discouraged = sorted((r for r in ranked if r.q <= 0), key=lambda r: (r.similarity < 1.0, r.q))[:k]
        return Recall(
            encouraged=tuple(encouraged),
            discouraged=tuple(discouraged),
            untried=tuple(a for a in state.valid_actions if a not in tried_here),
            seconds=round(time.perf_counter() - started, 6),
        )

    def _similar(
        self, family: str, key: str, purpose: str, text: str, query_vector: Any = None
    ) -> list[tuple[str, float, str]]:
        """(state_key, similarity in (0, 1], text) of the most similar stored states, the same state first."""
        found: dict[str, tuple[float, str]] = {}
        row = self._db.execute("SELECT text FROM states WHERE family=? AND state_key=?", (family, key)).fetchone()
        if row:
            found[key] = (1.0, row[0])
        if self.embedder is not None:
            alike = dense_similar(self._db, family, purpose, query_vector, self.config)
        else:
            alike = lexical_similar(self._db, family, purpose, text, self.config)
        found.update({k: v for k, v in alike.items() if k not in found})
        ranked = sorted(found.items(), key=lambda kv: -kv[1][0])[: self.config.candidates]
        return [(k, sim, text) for k, (sim, text) in ranked]

    def _actions_at(self, family: str, keys: Sequence[str]) -> list[tuple[str, str, float, int]]:
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        return self._db.execute(
            f"SELECT state_key, action, q, visits FROM q_values WHERE family=? AND state_key IN ({marks})",
            (family, *keys),
        ).fetchall()

    def _provenance(self, family: str, key: str, action: str, limit: int = 3) -> tuple[str, ...]:
        rows = self._db.execute(
            "SELECT DISTINCT s.trajectory_id, t.success, t.created FROM steps s JOIN trajectories t ON t.id = s.trajectory_id "
            "WHERE s.family=? AND s.state_key=? AND s.action=? ORDER BY t.success DESC, t.created DESC LIMIT ?",
            (family, key, action, limit),
        ).fetchall()
        return tuple(r[0] for r in rows)

    def _with_continuation(self, family: str, key: str, recalled: RecalledAction, limit: int = 6) -> RecalledAction:
        """Marks an action a successful trajectory took here, with what it did next (the shortest such one)."""
        if recalled.similarity < 1.0:
            return recalled
        row = self._db.execute(
            "SELECT s.trajectory_id, s.step FROM steps s JOIN trajectories t ON t.id = s.trajectory_id "
            "WHERE s.family=? AND s.state_key=? AND s.action=? AND t.success=1 ORDER BY t.steps - s.step LIMIT 1",
            (family, key, recalled.action),
        ).fetchone()
        if not row:
            return recalled
        later = self._db.execute(
            "SELECT action FROM steps WHERE trajectory_id=? AND step>? ORDER BY step LIMIT ?", (row[0], row[1], limit)
        ).fetchall()
        return recalled.model_copy(update={"on_success_path": True, "continuation": tuple(r[0] for r in later if r[0])})

    def q_value(
        self, purpose: str, state: State | str, action: str, *, family: str, task_id: str = ""
    ) -> tuple[float, int] | None:
        """(Q, visits) of `action` in `state`, or None if never taken there."""
        with self._lock:
            row = self._db.execute(
                "SELECT q, visits FROM q_values WHERE family=? AND state_key=? AND action=?",
                (family, self.key(family, purpose, state, task_id), action),
            ).fetchone()
        return (float(row[0]), int(row[1])) if row else None

    def stats(self) -> dict[str, int]:
        with self._lock:
            count = lambda table: self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: E731
            return {
                "trajectories": count("trajectories"), "steps": count("steps"),
                "states": count("states"), "q_values": count("q_values"),
                "successes": self._db.execute("SELECT COUNT(*) FROM trajectories WHERE success=1").fetchone()[0],
            }

    def trajectory_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM trajectories ORDER BY created, id")]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _embed(self, texts: list[str]) -> list[Any]:
        try:
            return list(self.embedder(texts))
        except Exception as exc:  # the embedder is the caller's: say which part failed
            raise UsageError(f"the replay embedder failed on {len(texts)} texts: {exc}") from exc


__all__ = [
    "FILENAME", "FORMAT", "ExperienceReplay", "Recall", "RecalledAction", "ReplayConfig", "replay_key", "step_rewards",
]
