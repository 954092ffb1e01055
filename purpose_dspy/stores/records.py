"""Where memory records live: a diskcache directory shared by processes, or dicts in this process.

Both backends hold the same JSON-ready dicts and offer the same few operations, so `MemoryStore`
validates and reasons about records once, whatever the backend.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import diskcache
from pydantic import BaseModel, ValidationError

from purpose_dspy.errors import StoreBusyError, StoreCorruptError
from purpose_dspy.stores.json_disk import SafeJSONDisk

EVENT_PREFIX = "event"
QUEUE_START = 500_000_000_000_000
"""diskcache's first queue number; its keys are "<prefix>-<15 digits>"."""
_ABSENT = object()


class TextKeyDisk(SafeJSONDisk):
    """`SafeJSONDisk` (JSON values, pickles refused) with string keys stored as plain text.

    Why: `Cache.push(prefix=...)` writes its keys ("event-500000000000000") as plain text whatever the
    Disk, and `JSONDisk` cannot read such keys back when iterating. Plain keys also keep the store
    readable with `sqlite3 cache.db`. A key that would need unpickling is refused like a pickled value.
    """

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is str:
            return key, True
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if raw and isinstance(key, str):
            return key
        if not raw:
            raise StoreCorruptError(
                f"store {self._directory} holds a pickled key; this library never writes one, so the store was "
                "tampered with or written by other software. Point it at a fresh directory."
            )
        return super().get(key, raw)


class DiskRecords:
    """Records in a diskcache directory: atomic and ordered across processes (SQLite underneath)."""

    def __init__(self, directory: Path) -> None:
        # eviction_policy="none": memory is a store of record, never a cache that may forget.
        self._cache = diskcache.Cache(str(directory), disk=TextKeyDisk, timeout=30, eviction_policy="none")
        self._lock = threading.RLock()

    def get(self, key: str) -> Any:
        return self._cache.get(key)

    def set(self, key: str, value: Any) -> None:
        self._cache.set(key, value)

    def add(self, key: str, value: Any) -> bool:
        return self._cache.add(key, value)

    def keys(self, prefix: str) -> list[str]:
        """Keys starting with `prefix`, sorted (for events: push order, the numbers being fixed-width)."""
        return [k for k in self._cache.iterkeys() if isinstance(k, str) and k.startswith(prefix)]

    def delete(self, key: str) -> bool:
        """Remove `key`; False if it was not there."""
        return self._cache.delete(key)

    def push_event(self, value: dict[str, Any]) -> None:
        self._cache.push(value, prefix=EVENT_PREFIX)

    @contextmanager
    def transact(self) -> Iterator[None]:
        """Hold the store's write lock: no other thread or process writes until the block ends."""
        with self._lock:
            try:
                with self._cache.transact():
                    yield
            except diskcache.Timeout as exc:  # raised while waiting for the lock (30 s)
                raise StoreBusyError(
                    f"memory store {self._cache.directory} stayed locked by another process; stop it or try again"
                ) from exc

    def close(self) -> None:
        self._cache.close()


class MemoryRecords:
    """Records in this process only: the same operations on a dict and a list."""

    def __init__(self) -> None:
        self._records: dict[str, Any] = {}
        self._events_pushed = 0
        self._lock = threading.RLock()

    def get(self, key: str) -> Any:
        return self._records.get(key)

    def set(self, key: str, value: Any) -> None:
        self._records[key] = value

    def add(self, key: str, value: Any) -> bool:
        if key in self._records:
            return False
        self._records[key] = value
        return True

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._records.pop(key, _ABSENT) is not _ABSENT

    def keys(self, prefix: str) -> list[str]:
        with self._lock:  # another thread may be pushing an event
            return sorted(k for k in list(self._records) if k.startswith(prefix))

    def push_event(self, value: dict[str, Any]) -> None:
        """Append under a key like diskcache's queue keys, so both backends list events alike."""
        with self._lock:
            self._records[f"{EVENT_PREFIX}-{QUEUE_START + self._events_pushed:015d}"] = value
            self._events_pushed += 1

    @contextmanager
    def transact(self) -> Iterator[None]:
        with self._lock:
            yield

    def close(self) -> None:
        pass


# -- what every store built on these records does the same way ---------------------------------
Records = DiskRecords | MemoryRecords


def check_format(records: Records, store: str, version: int) -> None:
    """Stamp a new store with `version`; refuse one stamped with another (`store` names it in the error)."""
    records.add("format", version)
    found = read_record(records, "format")
    if found != version:
        raise StoreCorruptError(
            f"{store} has format {found!r}; this version reads format {version}. "
            "Open it with the version that wrote it, or point --dir at a fresh directory."
        )


def read_record(records: Records, key: str) -> Any:
    """The raw record under `key` (None if absent); a pickled or garbled row raises, naming the key."""
    try:
        return records.get(key)
    except StoreCorruptError as exc:
        raise StoreCorruptError(f"{exc} (record {key!r})") from exc


def validate_record(model: type[BaseModel], key: str, record: Any, store: str) -> Any:
    """`record` as a `model`; a record this version cannot read raises StoreCorruptError naming key and field."""
    try:
        return model.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise StoreCorruptError(
            f"{store} holds an unreadable record {key!r} ({where}: {first['msg']}). "
            "It was written by another version or edited by hand; point --dir at a fresh directory "
            "(nothing was changed)."
        ) from exc
