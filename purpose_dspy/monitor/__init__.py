"""Monitoring and control of self-improvement (issue 20): a run directory's ledger, audit log, limits and triggers.

    from purpose_dspy.monitor import Monitor
    m = Monitor.open("runs/maze")            # ledger.sqlite3, audit.jsonl, limits.toml, triggers.toml, PAUSED
    guard = m.guard("treasure-maze", version="v3", source="run")   # pass to Orchestrator(..., guard=guard)
    m.triggers("treasure-maze")              # the trigger rules that fire over the ledger

It imports nothing above the record layer (types, errors, metrics), so it lives outside everything that
self-improvement changes: programs, teleprompters and artifacts can append to it, never rewrite it.
"""

from purpose_dspy.errors import LimitStop
from purpose_dspy.monitor.audit import AuditLog
from purpose_dspy.monitor.facade import ENV_VAR, Monitor
from purpose_dspy.monitor.ledger import Ledger
from purpose_dspy.monitor.limits import LimitGuard, Limits, load_limits
from purpose_dspy.monitor.records import AuditCheck, EventRecord, Firing, TaskRecord
from purpose_dspy.monitor.triggers import DEFAULT_RULES, TriggerRule, load_rules

__all__ = [
    "DEFAULT_RULES", "ENV_VAR", "AuditCheck", "AuditLog", "EventRecord", "Firing", "Ledger", "LimitGuard",
    "LimitStop", "Limits", "Monitor", "TaskRecord", "TriggerRule", "load_limits", "load_rules",
]
