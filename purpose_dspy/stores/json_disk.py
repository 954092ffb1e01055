"""A diskcache `Disk` that stores JSON and refuses to read anything else.

diskcache's own `JSONDisk` writes JSON, but on read it still unpickles a row whose mode says
"pickle", so a tampered store file could run code when read. Every store of this library opens
diskcache with `SafeJSONDisk`: such a row raises `StoreCorruptError` instead.
"""

from __future__ import annotations

import zlib
from typing import Any

import diskcache
from diskcache.core import MODE_PICKLE

from purpose_dspy.errors import StoreCorruptError


class SafeJSONDisk(diskcache.JSONDisk):
    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE:
            raise StoreCorruptError(
                f"store {self._directory} holds a pickled record; this library never writes one, so the "
                "store was tampered with or written by other software. Point it at a fresh directory."
            )
        try:
            return super().fetch(mode, filename, value, read)
        except (ValueError, OSError, zlib.error) as exc:  # json errors are ValueErrors
            raise StoreCorruptError(f"store {self._directory} holds an unreadable record ({exc}); use a fresh directory") from exc
