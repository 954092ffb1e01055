"""The ledger: every task run and every event of a run directory, in one SQLite file.

WAL journal (readers never wait for the writer), one transaction per record (`BEGIN IMMEDIATE`, so two
processes never interleave half a record), `synchronous=FULL` (a committed record survives a killed process
and a power cut) and a busy timeout, so several processes can write one ledger. The past cannot be changed
through SQL: triggers abort every UPDATE and DELETE on the record tables. The schema's version is in the
`meta` table; a file that is not SQLite, or SQLite that is not a ledger of this version, is left untouched
and refused (`StoreCorruptError`, saying what to do).

Rows keep the queried fields as columns and the whole record as canonical JSON (the record read back).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from purpose_dspy.errors import StoreBusyError, StoreCorruptError
from purpose_dspy.monitor.records import EventRecord, TaskRecord

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FILENAME = "ledger.sqlite3"
KIND = "purpose-dspy monitor ledger"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, program TEXT NOT NULL, version TEXT, source TEXT NOT NULL,
    task_id TEXT NOT NULL, success INTEGER NOT NULL, lm_calls INTEGER NOT NULL, tokens INTEGER NOT NULL,
    at REAL NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_by_program ON tasks (program, version, id);
CREATE INDEX IF NOT EXISTS tasks_by_time ON tasks (at);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, program TEXT NOT NULL, version TEXT,
    at REAL NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, program, at);
CREATE TABLE IF NOT EXISTS audit_anchors (n INTEGER PRIMARY KEY, hash TEXT NOT NULL, at REAL NOT NULL);
"""
_APPEND_ONLY = ("tasks", "events", "audit_anchors")


def _canonical(record: TaskRecord | EventRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), allow_nan=False)


class Ledger:
    """The task and event records of one run directory. Thread-safe; several processes may write it."""

    def __init__(self, directory: str | Path, busy_timeout: float = 60.0) -> None:
        self.path = Path(directory) / FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._timeout = busy_timeout
        try:
            self._db = sqlite3.connect(str(self.path), timeout=busy_timeout, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreCorruptError(f"ledger {self.path} cannot be opened ({exc}); check the run directory") from exc
        try:
            self._check(self._db)  # before anything writes: a foreign file is left byte for byte as it was
            self._use_wal()
            self._db.execute("PRAGMA synchronous=FULL")
            with self._write() as db:
                self._check(db)
                self._create(db)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreCorruptError(
                f"ledger {self.path} is not a readable SQLite database ({exc}); move it aside (nothing was changed) "
                "or give --monitor-dir a fresh directory") from exc
        except BaseException:
            self._db.close()
            raise

    # -- opening ----------------------------------------------------------------------------
    def _check(self, db: sqlite3.Connection) -> None:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
        if meta.get("kind") != KIND:
            raise StoreCorruptError(
                f"{self.path} is an SQLite file but not a monitor ledger (tables: {', '.join(sorted(tables))}); "
                "it was left untouched: move it aside or give --monitor-dir another directory")
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise StoreCorruptError(
                f"ledger {self.path} has schema version {meta.get('schema_version')}; this version of purpose-dspy "
                f"reads {SCHEMA_VERSION}. Use the purpose-dspy that wrote it, or a fresh --monitor-dir")

    def _create(self, db: sqlite3.Connection) -> None:
        for statement in filter(str.strip, _SCHEMA.split(";")):  # not executescript: it would commit midway
            db.execute(statement)
        for table in _APPEND_ONLY:
            for op in ("UPDATE", "DELETE"):
                db.execute(f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, 'the monitor ledger is append-only'); END")
        db.execute("INSERT OR IGNORE INTO meta VALUES ('kind', ?)", (KIND,))
        db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _use_wal(self) -> None:
        """Switch to WAL once per file (it persists). The switch needs a moment when no other connection is inside
        a transaction, which the busy timeout does not wait for, so it is retried for up to the timeout."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                if str(self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower() == "wal":
                    return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            if time.monotonic() > deadline:
                raise StoreBusyError(f"ledger {self.path} stayed locked for {self._timeout:g} s: another program holds "
                                     "it in a transaction; stop that program or try again")
            time.sleep(0.05)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading (BEGIN IMMEDIATE)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreBusyError(f"ledger {self.path} is locked by another process ({exc}); stop it or try "
                                     "again") from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- writing ----------------------------------------------------------------------------
    def record_task(self, rec: TaskRecord) -> int:
        """Append one task record (one transaction); returns its row id."""
        with self._write() as db:
            return db.execute(
                "INSERT INTO tasks (program, version, source, task_id, success, lm_calls, tokens, at, record) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (rec.program, rec.version, rec.source, rec.task_id, int(rec.success), rec.lm_calls, rec.tokens,
                 rec.at, _canonical(rec))).lastrowid

    def record_event(self, ev: EventRecord) -> int:
        """Append one event (one transaction); returns its row id."""
        with self._write() as db:
            return db.execute("INSERT INTO events (kind, program, version, at, record) VALUES (?,?,?,?,?)",
                              (ev.kind, ev.program, ev.version, ev.at, _canonical(ev))).lastrowid

    def anchor(self, n: int, digest: str) -> None:
        """Record the hash of the audit log's line `n` (the witness that catches a truncated log)."""
        with self._write() as db:
            db.execute("INSERT INTO audit_anchors VALUES (?,?,?)", (n, digest, time.time()))

    # -- reading ----------------------------------------------------------------------------
    def tasks(self, program: str | None = None, version: str | None = None) -> list[TaskRecord]:
        """Task records, oldest first (of `program`, and of its `version`, when given)."""
        sql, args = _where("SELECT id, record FROM tasks", program=program, version=version)
        return [self._parse(TaskRecord, "tasks", row) for row in self._read(sql + " ORDER BY id", args)]

    def events(self, kind: str | None = None, program: str | None = None) -> list[EventRecord]:
        """Events, oldest first (of `kind` and `program`, when given)."""
        sql, args = _where("SELECT id, record FROM events", kind=kind, program=program)
        return [self._parse(EventRecord, "events", row) for row in self._read(sql + " ORDER BY id", args)]

    def spent_since(self, since: float) -> tuple[int, int]:
        """LM calls and tokens of every task record finished at or after `since` (unix time)."""
        (row,) = self._read("SELECT coalesce(sum(lm_calls), 0), coalesce(sum(tokens), 0) FROM tasks WHERE at >= ?",
                            (since,))
        return int(row[0]), int(row[1])

    def count_events(self, kinds: tuple[str, ...], program: str, since: float) -> int:
        marks = ",".join("?" * len(kinds))
        (row,) = self._read(f"SELECT count(*) FROM events WHERE kind IN ({marks}) AND program = ? AND at >= ?",
                            (*kinds, program, since))
        return int(row[0])

    def anchors(self) -> dict[int, str]:
        return dict(self._read("SELECT n, hash FROM audit_anchors ORDER BY n", ()))

    def _read(self, sql: str, args: tuple) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise StoreCorruptError(f"ledger {self.path} cannot be read ({exc}); move it aside and use a fresh "
                                        "--monitor-dir") from exc

    def _parse(self, model: type[TaskRecord | EventRecord], table: str, row: tuple) -> TaskRecord | EventRecord:
        try:
            return model.model_validate_json(row[1])
        except ValidationError as exc:
            raise StoreCorruptError(f"ledger {self.path}: row {row[0]} of {table} is not a {model.__name__} "
                                    f"({exc.errors()[0]['msg']}); the ledger was written by something else") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _where(sql: str, **filters: str | None) -> tuple[str, tuple]:
    given = {k: v for k, v in filters.items() if v is not None}
    if not given:
        return sql, ()
    return sql + " WHERE " + " AND ".join(f"{k} = ?" for k in given), tuple(given.values())
