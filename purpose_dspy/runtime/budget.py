"""`LMBudget`: the one owner of a job's LM-call allowance; every phase asks it before it spends."""

from __future__ import annotations

import threading


class LMBudget:
    """LM calls allowed for a whole job (None: unlimited). Thread-safe; `held` calls are set aside."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.spent = 0
        self.held = 0
        self.ran_out = False  # some work was skipped for lack of calls
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int | None:
        if self.limit is None:
            return None
        return max(0, self.limit - self.spent - self.held)

    def allows(self, calls: int = 1) -> bool:
        """Ask before spending: True when `calls` more fit; otherwise the budget is marked as run out."""
        remaining = self.remaining
        if remaining is None or remaining >= calls:
            return True
        self.ran_out = True
        return False

    def charge(self, calls: int) -> None:
        with self._lock:
            self.spent += calls

    def hold(self, calls: int) -> None:
        """Set calls aside for a later phase (e.g. the final evaluation)."""
        with self._lock:
            self.held = max(0, calls)

    def release(self) -> None:
        with self._lock:
            self.held = 0
