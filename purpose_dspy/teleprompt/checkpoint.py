"""Checkpoint: what a long job has finished, so an interrupted job resumes instead of starting over.

One JSON-lines file in the job's run directory. The first line names the job (a hash of everything
that determines its results); every later line is one finished unit of work (a rollout, a judgment)
under a key, written with flush + fsync before the job moves on. A half-written last line (the
process died mid-write) is ignored, so at most the unit in flight is redone. A file that belongs to a
different job (or format) is refused, never mixed in. A torn header (a first line that is not complete
JSON: the job was killed during its very first write, so nothing after it can be trusted to be its
units) is moved aside to `checkpoint.jsonl.torn-<UTC time>`, with a warning, and the job starts fresh.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from purpose_dspy.errors import StoreCorruptError, UsageError

logger = logging.getLogger(__name__)

FORMAT = 1
FILENAME = "checkpoint.jsonl"


class Checkpoint:
    """Finished work by key. `directory=None`: kept in memory only (nothing to resume from)."""

    def __init__(self, directory: str | Path | None, job: str) -> None:
        self.job = job
        self.path = Path(directory) / FILENAME if directory is not None else None
        self._done: dict[str, Any] = {}
        self._lock = threading.Lock()
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size and self._read():
            return
        self._append({"format": FORMAT, "job": job})

    def _read(self) -> bool:
        """Resume from the file; False when its header was torn (the file is moved aside: start fresh)."""
        assert self.path is not None
        lines = self.path.read_text(encoding="utf-8").split("\n")
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            self._move_aside_torn()
            return False
        got = header.get("format") if isinstance(header, dict) else f"none (a JSON {type(header).__name__})"
        if got != FORMAT:
            raise StoreCorruptError(f"{self.path}: checkpoint format {got!r}, this version reads {FORMAT}")
        if header.get("job") != self.job:
            raise UsageError(
                f"{self.path.parent} holds the checkpoint of a different job (other program, tasks, settings or LMs); "
                "use another run directory, or delete this one to start over"
            )
        for number, line in enumerate(lines[1:], start=2):
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):  # no newline after it: the write was cut off
                    logger.warning("%s: dropping a half-written last line (the job was interrupted mid-write)", self.path)
                    with open(self.path, "r+b") as f:
                        f.truncate(len("\n".join(lines[:-1]).encode("utf-8")) + 1)
                    continue
                raise StoreCorruptError(f"{self.path}:{number}: not JSON; delete the file to start over") from None
            self._done[record["key"]] = record["value"]
        logger.info("resuming from %s: %d finished units", self.path, len(self._done))
        return True

    def _move_aside_torn(self) -> None:
        assert self.path is not None
        aside = self.path.with_name(f"{self.path.name}.torn-{datetime.now(timezone.utc):%Y%m%dT%H%M%S.%fZ}")
        os.replace(self.path, aside)
        logger.warning("%s: the header line was torn (the job was killed during its first write); moved it aside to "
                       "%s and starting this job fresh", self.path, aside.name)

    def _append(self, record: dict[str, Any]) -> None:
        assert self.path is not None
        line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def get(self, key: str) -> Any:
        """The stored value of a finished unit, or None."""
        return self._done.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._done

    def put(self, key: str, value: Any) -> None:
        """Record a finished unit (durably, before returning)."""
        with self._lock:
            self._done[key] = value
            if self.path is not None:
                self._append({"key": key, "value": value})

    def __len__(self) -> int:
        return len(self._done)
