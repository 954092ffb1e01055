"""`Monitor`: one run directory's ledger, audit log, limits, trigger rules and pause flag, behind one object.

A run directory holds `ledger.sqlite3` (WAL), `audit.jsonl` (hash-chained), the user's optional `limits.toml`
and `triggers.toml`, and `PAUSED` while the kill switch is on. Opening one makes the directory and the ledger;
the two TOML files are read on first use, once per `Monitor` (a run uses the limits it started with), so a broken
file stops only what needs it (a guard, the triggers: one line naming the file and line), never `pause`/`resume`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from purpose_dspy.errors import LimitStop, UsageError
from purpose_dspy.monitor.audit import AuditLog
from purpose_dspy.monitor.ledger import Ledger
from purpose_dspy.monitor.limits import LimitGuard, Limits, load_limits
from purpose_dspy.monitor.records import EventRecord, Firing
from purpose_dspy.monitor.triggers import TriggerRule, evaluate, load_rules

logger = logging.getLogger(__name__)

ENV_VAR = "PURPOSE_DSPY_MONITOR"
PAUSE_FILE = "PAUSED"


class Monitor:
    """The monitor of one run directory."""

    def __init__(self, run_dir: Path, ledger: Ledger, audit: AuditLog, limits: Limits | None = None,
                 rules: tuple[TriggerRule, ...] | None = None) -> None:
        self.run_dir, self.ledger, self.audit = run_dir, ledger, audit
        self._limits, self._rules = limits, rules  # None: read from the run directory on first use

    @property
    def limits(self) -> Limits:
        """limits.toml (read once, on first use; absent: no limit)."""
        if self._limits is None:
            self._limits = load_limits(self.run_dir)
        return self._limits

    @property
    def rules(self) -> tuple[TriggerRule, ...]:
        """triggers.toml's rules (read once, on first use; absent: `DEFAULT_RULES`)."""
        if self._rules is None:
            self._rules = load_rules(self.run_dir)
        return self._rules

    @classmethod
    def open(cls, run_dir: str | Path, busy_timeout: float = 60.0) -> Monitor:
        """Open (making it if needed) a run directory."""
        path = Path(run_dir)
        if path.exists() and not path.is_dir():
            raise UsageError(f"monitor directory {path} is a file; give --monitor-dir a directory")
        path.mkdir(parents=True, exist_ok=True)
        ledger = Ledger(path, busy_timeout=busy_timeout)
        return cls(path, ledger, AuditLog(path, anchor=ledger, busy_timeout=busy_timeout))

    @classmethod
    def from_env(cls) -> Monitor | None:
        """The monitor `PURPOSE_DSPY_MONITOR` names (None when it is unset or empty)."""
        where = os.environ.get(ENV_VAR, "").strip()
        return cls.open(where) if where else None

    # -- limits -------------------------------------------------------------------------------
    def guard(self, program: str, *, version: str | None = None, source: str = "run") -> LimitGuard:
        """A new run's guard: its limits, counters and the pause flag; it records the run's tasks."""
        return LimitGuard(self.limits, self.ledger, program=program, version=version, source=source,
                          paused=self.paused)

    def self_modifications_left(self, program: str) -> int | None:
        """Self-modifications `program` may still make in the current period (None: no cap)."""
        cap = self.limits.self_modifications
        if cap is None:
            return None
        since = time.time() - self.limits.self_modification_period_hours * 3600
        return max(0, cap - self.ledger.count_events(self.limits.self_modification_kinds, program, since))

    def check_self_modification(self, program: str) -> None:
        """Raise `LimitStop('self_modifications')` when `program` has no self-modification left (and record it)."""
        if self.self_modifications_left(program) != 0:
            return
        stop = LimitStop("self_modifications", (
            f"{program}: {self.limits.self_modifications} self-modifications in the last "
            f"{self.limits.self_modification_period_hours:g} hours, the cap of limits.toml; wait, or raise "
            "self_modifications"))
        logger.warning("%s", stop)
        self.ledger.record_event(EventRecord(kind="limit_stop", program=program,
                                             detail={"limit": stop.limit, "reason": str(stop)}))
        raise stop

    # -- triggers -----------------------------------------------------------------------------
    def triggers(self, program: str, *, record: bool = False) -> list[Firing]:
        """The trigger rules that fire over `program`'s task records; `record`: write a `trigger` event for each."""
        firings = evaluate(self.rules, self.ledger.tasks(program), program)
        if record:
            for f in firings:
                self.ledger.record_event(EventRecord(kind="trigger", program=program, detail=f.model_dump()))
        return firings

    # -- the kill switch ----------------------------------------------------------------------
    @property
    def pause_file(self) -> Path:
        return self.run_dir / PAUSE_FILE

    def paused(self) -> bool:
        return self.pause_file.exists()

    def pause(self, who: str, why: str) -> None:
        """Set the kill switch: every run and compile of this directory stops before its next step."""
        detail = {"who": who, "why": why, "at": time.time()}
        self.pause_file.write_text(json.dumps(detail) + "\n", encoding="utf-8")
        self.audit.append(who, "paused", {"reason": why})
        self.ledger.record_event(EventRecord(kind="pause", program="*", detail=detail))

    def resume(self, who: str) -> None:
        """Clear the kill switch."""
        self.pause_file.unlink(missing_ok=True)
        self.audit.append(who, "resumed", {})
        self.ledger.record_event(EventRecord(kind="resume", program="*", detail={"who": who}))

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
