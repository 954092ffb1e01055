"""What a monitor records of a compiled version: the compile, its gate's figures, its promotion or pending
state, and an audit line for every self-modification (what changed, why, who).

A self-modification is any change to what `load()` serves or may serve: a version promoted by its gate,
one left pending, an approval, a rejection, a promotion by hand, a rollback. The ledger gets one event
each (`compile`, `gate`, `promotion`, `pending`, `approval`, `rejection`, `rollback`); the audit log a
line saying what changed (version, parent, demos per component, memory cards), why (the trigger that
fired, the gate's figures, the operator's reason) and who ("improve" for the loop, "operator" otherwise).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from purpose_dspy.artifacts.manifest import Manifest, read_manifest
from purpose_dspy.errors import ArtifactError, UsageError
from purpose_dspy.teleprompt.base import CompileReport
from purpose_dspy.teleprompt.gate import GateDecision

if TYPE_CHECKING:
    from purpose_dspy.monitor import Monitor

DECISIONS = ("approval", "rejection", "promotion", "rollback")


def gate_figures(gate: GateDecision | None) -> dict[str, Any]:
    """The gate's decision as numbers (`ran` false: no dev evaluation, nothing decided)."""
    if gate is None:
        return {"ran": False}
    c = gate.comparison
    return {"ran": True, "promoted": gate.promoted, "paired": c.n if c else 0, "wins": c.wins if c else 0,
            "losses": c.losses if c else 0, "p_value": gate.p_value, "alpha": gate.alpha,
            "stopped_early": gate.stopped_early}


def decision_of(manifest: Manifest) -> str:
    """What the compile did with the version it wrote: "promoted", "pending" (the gate passed it, an operator
    decides) or "kept" (the gate kept the parent)."""
    if manifest.approval == "required":
        return "pending"
    return "promoted" if manifest.gate.promoted else "kept"


def change_of(manifest: Manifest, root: Path) -> dict[str, Any]:
    """Version, parent, demos per component (its pool, or its predictors' demos) and memory cards, with the
    parent's where its manifest reads."""
    def counts(m: Manifest) -> dict[str, Any]:  # demos: the component's pool (a compiled actor picks per call)
        pool = Counter(d.component for d in m.demos)
        return {"demos": {name: max(sum(c.demos.values()), pool[name]) for name, c in m.components.items()},
                "memory_cards": int(m.memory.get("cards", 0))}

    parent = None
    if manifest.parent_version is not None:
        try:
            parent = counts(read_manifest(root / f"v{manifest.parent_version}"))
        except ArtifactError:
            parent = None  # unreadable now; the change still says what this version holds
    return {"program": manifest.name, "version": f"v{manifest.version}",
            "parent": None if manifest.parent_version is None else f"v{manifest.parent_version}",
            **counts(manifest), "parent_counts": parent}


def describe(change: dict[str, Any], what: str) -> str:
    """One line: e.g. 'treasure-maze v3 pending (parent v2): demos actor 4 (was 2), critic 1; memory cards 3'."""
    before = change.get("parent_counts") or {}
    demos = ", ".join(f"{name} {n}" + (f" (was {before['demos'][name]})" if name in before.get("demos", {}) else "")
                      for name, n in change["demos"].items())
    cards = f"memory cards {change['memory_cards']}" + (
        f" (was {before['memory_cards']})" if "memory_cards" in before else "")
    return f"{change['program']} {change['version']} {what} (parent {change['parent'] or 'zero-shot'}): demos {demos}; {cards}"


def record_compile(monitor: Monitor, manifest: Manifest, report: CompileReport, *, root: Path,
                   budget: int | None, who: str, why: dict[str, Any]) -> str:
    """The compile's events (compile, gate, then promotion or pending) and, when it changed what is or may be
    served, its audit line. Returns the decision (see `decision_of`)."""
    decision, figures = decision_of(manifest), gate_figures(report.gate)
    parent = None if manifest.parent_version is None else f"v{manifest.parent_version}"
    _event(monitor, "compile", manifest, budget=budget, lm_calls=report.lm_calls, tokens=report.tokens,
           seconds=report.seconds, budget_exhausted=report.budget_exhausted, parent=parent, who=who)
    _event(monitor, "gate", manifest, **figures, decision=decision, reason=manifest.gate.reason)
    if decision == "kept":
        return decision
    change = change_of(manifest, root)
    _event(monitor, "promotion" if decision == "promoted" else "pending", manifest, parent=parent, who=who, why=why,
           change=change)
    monitor.audit.append(who, describe(change, "promoted by its gate" if decision == "promoted" else
                                       "pending approval"), {**why, "gate": figures})
    return decision


def record_decision(monitor: Monitor, manifest: Manifest, kind: str, *, root: Path, who: str, why: str,
                    served: int | None = None, replaced: int | None = None) -> None:
    """An operator's (or the loop's) decision on version `manifest` under `root`: "approval", "rejection",
    "promotion" (by hand) or "rollback"; `served`: the version `load()` gives now, `replaced`: the one before."""
    if kind not in DECISIONS:
        raise UsageError(f"not a decision: {kind!r} (known: {', '.join(DECISIONS)})")
    change = change_of(manifest, root)
    served_text = "nothing" if served is None else f"v{served}"
    what = {"approval": f"approved and promoted (replaces {'v' + str(replaced) if replaced else 'nothing'})",
            "rejection": "rejected: never served",
            "promotion": f"promoted by hand (replaces {'v' + str(replaced) if replaced else 'nothing'})",
            "rollback": f"demoted by a rollback; {served_text} is served"}[kind]
    _event(monitor, kind, manifest, who=who, why=why, served=served_text, replaced=replaced, change=change)
    monitor.audit.append(who, describe(change, what), {"reason": why, "gate": gate_figures(manifest.gate)})


def _event(monitor: Monitor, kind: str, manifest: Manifest, **detail: Any) -> int:
    from purpose_dspy.monitor import EventRecord

    return monitor.ledger.record_event(EventRecord(kind=kind, program=manifest.name, version=f"v{manifest.version}",
                                                   detail=detail, at=time.time()))
