"""The audit log: an append-only, hash-chained JSON-lines file of every self-modification and operator act.

Each line is the canonical JSON (sorted keys, no spaces, UTF-8) of `{v, n, at, who, change, why, prev, hash}`:
`n` counts lines from 1, `prev` is the previous line's `hash` (64 zeros for the first) and `hash` the sha256
of the line's canonical JSON without `hash`. An append takes a file lock (two processes chain correctly),
reads only the last line, and writes the new one with a single `write` on an O_APPEND descriptor, then fsyncs.

With an anchor (the ledger), every line's hash is also recorded in SQLite, so a log cut short at its end or
extended by a well-formed forged line is caught too; without one, only the chain itself is checked.
`verify` names the first line that breaks: not JSON, not canonical, numbered out of place (a line deleted,
inserted or moved), not chained to the line before, hashed over other content (edited), or not the line the
anchor recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from purpose_dspy.errors import StoreBusyError, StoreCorruptError, UsageError
from purpose_dspy.monitor.records import AuditCheck

FORMAT = 1
FILENAME = "audit.jsonl"
GENESIS = "0" * 64
FIELDS = ("at", "change", "hash", "n", "prev", "v", "who", "why")


class Anchor(Protocol):
    def anchor(self, n: int, digest: str) -> None: ...

    def anchors(self) -> dict[int, str]: ...


def canonical(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def line_hash(line: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in line.items() if k != "hash"}).encode()).hexdigest()


class AuditLog:
    """The audit log of one run directory."""

    def __init__(self, directory: str | Path, anchor: Anchor | None = None, busy_timeout: float = 60.0) -> None:
        self.path = Path(directory) / FILENAME
        self.anchor = anchor
        self._file_lock = FileLock(str(self.path) + ".lock", timeout=busy_timeout)
        self._lock = threading.Lock()

    def append(self, who: str, change: str, why: dict[str, Any]) -> dict[str, Any]:
        """Append one line (who acted, what changed, why: trigger, gate figures...); returns the line written."""
        if not who or not change:
            raise UsageError(f"an audit line needs who and what changed; got who={who!r}, change={change!r}")
        with self._lock, self._locked():
            last = self._last_line()
            line = {"v": FORMAT, "n": last["n"] + 1 if last else 1, "at": round(time.time(), 6), "who": who,
                    "change": change, "why": why, "prev": last["hash"] if last else GENESIS}
            try:
                line["hash"] = line_hash(line)
            except (TypeError, ValueError) as exc:
                raise UsageError(f"audit `why` must be JSON-able (finite numbers, text, lists, dicts): {exc}") from exc
            data = (canonical(line) + "\n").encode()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            try:
                if os.write(fd, data) != len(data):  # one write: a killed writer leaves the line whole or absent
                    raise StoreCorruptError(f"audit log {self.path}: a short write (disk full?); free space and run "
                                            "`purpose-dspy audit verify`")
                os.fsync(fd)
            finally:
                os.close(fd)
            if self.anchor is not None:
                self.anchor.anchor(line["n"], line["hash"])
        return line

    def _locked(self) -> Any:
        try:
            return self._file_lock.acquire()
        except Timeout as exc:
            raise StoreBusyError(f"audit log {self.path} stayed locked by another process; stop it or retry") from exc

    def _last_line(self) -> dict[str, Any] | None:
        """The last line, read from the end (a log of any length costs the same)."""
        if not self.path.exists():
            return None
        with open(self.path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return None
            chunk, step = b"", 4096
            while chunk.count(b"\n") < 2 and len(chunk) < size:
                f.seek(max(0, size - len(chunk) - step))
                chunk = f.read(min(step, size - len(chunk))) + chunk
        if not chunk.endswith(b"\n"):
            raise StoreCorruptError(f"audit log {self.path} ends in a half-written line; run `purpose-dspy audit "
                                    "verify` and move the log aside to start a new one")
        text = chunk[:-1].rsplit(b"\n", 1)[-1]
        try:
            line = json.loads(text)
            if not isinstance(line.get("n"), int) or not isinstance(line.get("hash"), str):
                raise ValueError("no n or hash")
        except (ValueError, AttributeError) as exc:
            raise StoreCorruptError(f"audit log {self.path}: its last line is damaged ({exc}); run `purpose-dspy audit "
                                    "verify` and move the log aside to start a new one") from exc
        return line

    def lines(self) -> list[dict[str, Any]]:
        """Every line, parsed, oldest first (unverified: see `verify`)."""
        return [json.loads(t) for t in self._texts() if t.strip()]

    def _texts(self) -> list[str]:
        if not self.path.exists():
            return []
        return self.path.read_bytes().decode("utf-8", errors="replace").split("\n")

    def verify(self) -> AuditCheck:
        """The first broken line (1-based) and why, or ok."""
        texts = self._texts()
        torn = bool(texts) and texts[-1] != ""
        texts = texts if torn else texts[:-1]
        anchors = self.anchor.anchors() if self.anchor is not None else {}
        prev = GENESIS
        for k, text in enumerate(texts, start=1):
            problem = _problem(text, k, prev, anchors, self.anchor is not None)
            if problem is None and torn and k == len(texts):
                problem = "is half-written (no newline at its end)"
            if problem is not None:
                return AuditCheck(ok=False, first_bad_line=k, reason=f"line {k} {problem}", lines=len(texts))
            prev = json.loads(text)["hash"]
        if anchors and max(anchors) > len(texts):
            k = len(texts) + 1
            return AuditCheck(ok=False, first_bad_line=k, lines=len(texts), reason=(
                f"line {k} is missing: the ledger anchored {max(anchors)} lines, the log has {len(texts)}"))
        return AuditCheck(ok=True, reason=f"{len(texts)} lines, chain intact", lines=len(texts))


def _problem(text: str, k: int, prev: str, anchors: dict[int, str], anchored: bool) -> str | None:
    """What is wrong with line `k` (None: nothing)."""
    try:
        line = json.loads(text)
    except (ValueError, RecursionError):
        return "is not JSON"
    if not isinstance(line, dict) or tuple(sorted(line)) != FIELDS:
        return f"is not an audit line (fields: {', '.join(FIELDS)})"
    try:
        if canonical(line) != text:
            return "is not in canonical form (its bytes were edited)"
    except ValueError:
        return "holds a number JSON cannot carry"
    if line["v"] != FORMAT:
        return f"has format {line['v']!r}; this version reads {FORMAT}"
    if line["n"] != k:
        return f"says it is line {line['n']!r}: a line was deleted, inserted or moved"
    if line["prev"] != prev:
        return "does not chain to the line before it (prev is not that line's hash)"
    if line["hash"] != line_hash(line):
        return "was edited: its hash does not match its content"
    if anchored and anchors.get(k) != line["hash"]:
        return ("is not the line the ledger anchored" if k in anchors
                else "is not anchored in the ledger (appended outside the monitor, or its writer died)")
    return None
