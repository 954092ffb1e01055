"""Limits enforced in Python: `Limits` (from a run directory's limits.toml) and the per-run `LimitGuard`.

The step loop asks the guard `check()` between steps (the pause flag, the budgets, a flag streak),
`before_step(action)` before `env.step` (the same, then the action deny-list) and `after_step(...)` after
(it counts the step's LM calls and tokens and its alarm flags). Each refusal is a `LimitStop` with a
one-line reason; the first one sticks (every later check raises it again, so a job stops task after task
without starting any) and is recorded once in the ledger as a `limit_stop` event.

A "run" is one guard: everything one command or library call spends (a `run`, an `eval` of many tasks,
one `CompiledAgent.run`). A "day" is the last 24 hours: the ledger's finished tasks plus what this guard has
spent on tasks not yet recorded.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from purpose_dspy.errors import LimitStop
from purpose_dspy.monitor.records import ALARM_FLAGS, EventRecord, TaskRecord
from purpose_dspy.monitor.tomlfile import read_model

if TYPE_CHECKING:
    from purpose_dspy.monitor.ledger import Ledger
    from purpose_dspy.types import RunResult

logger = logging.getLogger(__name__)

FILENAME = "limits.toml"
DAY = 24 * 3600.0


class Limits(BaseModel):
    """What a run directory allows (every limit None: no limit). Read from `limits.toml`, top-level keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lm_calls_per_run: int | None = Field(None, gt=0, description="LM calls one run (one guard) may spend.")
    tokens_per_run: int | None = Field(None, gt=0, description="Tokens (prompt + completion) one run may spend.")
    lm_calls_per_day: int | None = Field(None, gt=0, description="LM calls of every run in the last 24 hours.")
    tokens_per_day: int | None = Field(None, gt=0, description="Tokens of every run in the last 24 hours.")
    deny_actions: tuple[str, ...] = Field((), description=(
        "Regular expressions (Python `re`, searched anywhere in the action text): a matching action never reaches "
        "the environment, the run stops instead."))
    flag_streak: int | None = Field(None, gt=0, description=(
        "Halt after this many consecutive steps of one episode carrying one of `streak_flags`."))
    streak_flags: tuple[str, ...] = Field(ALARM_FLAGS, description="The safeguard flags that count for the streak.")
    self_modifications: int | None = Field(None, ge=0, description=(
        "Self-modifications (ledger events of `self_modification_kinds`) a program may make per period."))
    self_modification_period_hours: float = Field(24.0, gt=0, description="The period of that cap, in hours.")
    self_modification_kinds: tuple[str, ...] = Field(("promotion", "pending"), description=(
        "Event kinds that count as a self-modification: a version served, or offered for approval."))

    @field_validator("deny_actions")
    @classmethod
    def _compiles(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"deny_actions pattern {pattern!r} is not a regular expression: {exc}") from exc
        return patterns


def load_limits(directory: str | Path) -> Limits:
    """`limits.toml` of a run directory (absent: no limit); errors name the file, the line and the field."""
    path = Path(directory) / FILENAME
    if not path.exists():
        return Limits()
    return read_model(path, Limits, hint=f"valid fields: {', '.join(Limits.model_fields)}")


class LimitGuard:
    """One run's limits: counts what the run spends, refuses what the limits forbid. Thread-safe."""

    def __init__(self, limits: Limits, ledger: Ledger, *, program: str, version: str | None = None,
                 source: str = "run", paused: Callable[[], bool] = lambda: False) -> None:
        self.limits, self.ledger = limits, ledger
        self.program, self.version, self.source = program, version, source
        self.run_id = uuid.uuid4().hex[:12]
        self._paused = paused
        self._deny = [re.compile(p) for p in limits.deny_actions]
        self._lock = threading.Lock()
        self.lm_calls = self.tokens = 0  # spent by this run
        self._recorded = [0, 0]  # of which already in the ledger (its finished tasks)
        self._streaks: dict[str | None, int] = {}
        self.stopped: LimitStop | None = None

    # -- the step loop's three calls ---------------------------------------------------------
    def check(self) -> None:
        """Between steps: raise `LimitStop` when paused, over a budget, or halted earlier."""
        if self.stopped is not None:
            raise LimitStop(self.stopped.limit, str(self.stopped))  # a fresh one: threads raise it at once
        if self._paused():
            self._stop("paused", "the run directory is paused (its PAUSED flag is set): run `purpose-dspy resume "
                                 "DIR` to let runs continue")
        self._check_budgets()

    def before_step(self, action: str) -> None:
        """Before `env.step(action)`: `check()`, then the deny-list."""
        self.check()
        for pattern in self._deny:
            if pattern.search(action):
                self._stop("deny_actions", f"action {action[:80]!r} matches the deny-list pattern {pattern.pattern!r} "
                                           "of limits.toml: it was not executed and the run stopped")

    def after_step(self, lm_calls: int, tokens: int, flags: Sequence[str] = (), *, episode: str | None = None) -> None:
        """After a step: count its LM calls, tokens and alarm flags; raise when that crosses a limit."""
        with self._lock:
            self.lm_calls += lm_calls
            self.tokens += tokens
            hit = any(f in self.limits.streak_flags for f in flags)
            streak = self._streaks[episode] = self._streaks.get(episode, 0) + 1 if hit else 0
        if self.limits.flag_streak is not None and streak >= self.limits.flag_streak:
            self._stop("flag_streak", f"{streak} steps in a row flagged {'/'.join(self.limits.streak_flags)} "
                                      f"(limit {self.limits.flag_streak}): halted; inspect the run's trajectory")
        self._check_budgets()

    # -- recording ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def labelled(self, version: str | None) -> Iterator[None]:
        """Record the tasks finished inside as `version` (a compile runs its parent, then its candidate, under one
        guard: one budget). Not for threads running different versions at once."""
        before, self.version = self.version, version
        try:
            yield
        finally:
            self.version = before

    def record(self, result: RunResult, **extra: Any) -> TaskRecord:
        """Write the finished episode's `TaskRecord` (this guard's program, version and source) to the ledger."""
        rec = TaskRecord.of(result, program=self.program, version=self.version, source=self.source, **extra)
        self.record_task(rec)
        return rec

    def record_task(self, rec: TaskRecord) -> int:
        """Write a task record this run produced (its cost then counts for the day through the ledger)."""
        row = self.ledger.record_task(rec)
        with self._lock:
            self._recorded[0] += rec.lm_calls
            self._recorded[1] += rec.tokens
        return row

    # -- internals ----------------------------------------------------------------------------
    def _check_budgets(self) -> None:
        lim = self.limits
        for name, spent, cap, unit in (("lm_calls_per_run", self.lm_calls, lim.lm_calls_per_run, "LM calls"),
                                       ("tokens_per_run", self.tokens, lim.tokens_per_run, "tokens")):
            if cap is not None and spent >= cap:
                self._stop(name, f"{spent} {unit} spent of the {cap} this run may spend ({name} in limits.toml)")
        if lim.lm_calls_per_day is None and lim.tokens_per_day is None:
            return
        calls, tokens = self.ledger.spent_since(time.time() - DAY)
        with self._lock:  # what this run spent on tasks the ledger does not hold yet
            calls += max(0, self.lm_calls - self._recorded[0])
            tokens += max(0, self.tokens - self._recorded[1])
        for name, spent, cap, unit in (("lm_calls_per_day", calls, lim.lm_calls_per_day, "LM calls"),
                                       ("tokens_per_day", tokens, lim.tokens_per_day, "tokens")):
            if cap is not None and spent >= cap:
                self._stop(name, f"{spent} {unit} spent in the last 24 hours of the {cap} allowed ({name} in "
                                 "limits.toml); wait, or raise the limit")

    def _stop(self, limit: str, message: str) -> None:
        with self._lock:
            first = self.stopped is None
            if first:
                self.stopped = LimitStop(limit, f"{self.program}: {message}")
            stop = self.stopped
        if first:
            logger.warning("%s", stop)
            self.ledger.record_event(EventRecord(kind="limit_stop", program=self.program, version=self.version,
                                                 detail={"limit": stop.limit, "reason": str(stop),
                                                         "source": self.source, "run": self.run_id,
                                                         "lm_calls": self.lm_calls, "tokens": self.tokens}))
        raise LimitStop(stop.limit, str(stop))
