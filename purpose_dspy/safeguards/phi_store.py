"""PhiStore: Φ of canonical states, shared by every run and process that uses the same directory.

The first value written for a state wins (`diskcache.Cache.add` is atomic across processes), and
every reader then sees that value: identical states get identical Φ, whoever scored them first.
Values are stored as JSON, never pickled, and a pickled row is refused on read (`SafeJSONDisk`).
"""

from __future__ import annotations

import threading
from pathlib import Path

import diskcache

from purpose_dspy.errors import StoreCorruptError
from purpose_dspy.stores.json_disk import SafeJSONDisk

FORMAT = 1


class PhiStore:
    """Φ by state key. `directory=None` keeps it in memory (one process, one run of the program)."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._memory: dict[str, float] = {}
        self._lock = threading.Lock()
        self._disk = (
            diskcache.Cache(str(self.directory), disk=SafeJSONDisk, timeout=30)
            if self.directory is not None
            else None
        )
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> float | None:
        if self._disk is None:
            value = self._memory.get(key)
        else:
            record = self._disk.get(key)
            value = self._check(key, record)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def settle(self, key: str, phi: float) -> float:
        """Store `phi` unless a value is already there; return the value that is there now."""
        if self._disk is None:
            with self._lock:
                return self._memory.setdefault(key, phi)
        self._disk.add(key, {"format": FORMAT, "phi": phi})
        value = self._check(key, self._disk.get(key))
        return phi if value is None else value

    def __len__(self) -> int:
        return len(self._memory) if self._disk is None else len(self._disk)

    def items(self) -> dict[str, float]:
        """Every settled Φ by key (a snapshot: what a remote worker reads, `runtime/ray_backend.py`)."""
        if self._disk is None:
            with self._lock:
                return dict(self._memory)
        values = {key: self._check(key, self._disk.get(key)) for key in self._disk}
        return {key: phi for key, phi in values.items() if phi is not None}

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()

    def _check(self, key: str, record: object) -> float | None:
        if record is None:
            return None
        if not (isinstance(record, dict) and record.get("format") == FORMAT and isinstance(record.get("phi"), (int, float))):
            raise StoreCorruptError(
                f"Φ store {self.directory} holds an unreadable record for {key}: {record!r:.80}. "
                "It was written by another version or edited by hand; point --store at a fresh directory."
            )
        phi = float(record["phi"])
        if not 0 <= phi <= 10:
            raise StoreCorruptError(f"Φ store {self.directory} holds an out-of-range Φ {phi} for {key}; use a fresh directory.")
        return phi
