"""The monitor's records: a task run, an event, a trigger's firing, an audit check (frozen pydantic).

`TaskRecord.of` reads one finished episode (`RunResult`) into the figures the ledger keeps: success,
steps, Φ gain, cost, the rate of failed (invalid) actions and of revisited states, the steps the critic's
safeguards flagged as an injection or an anomaly, and how often the critic's Φ moved the way the
environment's own progress did.
"""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from purpose_dspy.types import RunResult, Trajectory, Transition

# The safeguard flags that mean "something is wrong with this step" (not "the store answered"): they count as
# critic flags in a task record and in the limits' flag streak.
ALARM_FLAGS: tuple[str, ...] = ("injection", "anomaly_abs", "anomaly_z")

SOURCES = ("run", "eval", "compile", "edit", "agent", "improve")
EVENT_KINDS = ("compile", "gate", "promotion", "rollback", "pending", "approval", "rejection", "memory_status",
               "trigger", "limit_stop", "pause", "resume")


class TaskRecord(BaseModel):
    """One task run, as the ledger keeps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    program: str = Field(description="The compiled directory's name (e.g. 'treasure-maze'), or 'zero-shot'.")
    version: str | None = Field(description="'v3', or None for the zero-shot program.")
    source: str = Field(description=f"What ran it: {', '.join(SOURCES)}.")
    task_id: str
    seed: int | None = None
    split: str | None = None
    success: bool
    steps: int = Field(ge=0)
    phi_gain: float | None = Field(description="Φ end minus Φ start; None when Φ was not scored (actor-only).")
    lm_calls: int = Field(ge=0)
    tokens: int = Field(ge=0, description="Prompt plus completion tokens of every LM call.")
    seconds: float = Field(ge=0)
    invalid_action_rate: float = Field(0.0, ge=0, le=1, description="Steps whose actor gave no valid action.")
    revisit_rate: float = Field(0.0, ge=0, le=1, description="Steps that led to a state the run had already seen.")
    critic_flags: int = Field(0, ge=0, description=f"Steps flagged {' / '.join(ALARM_FLAGS)} by the safeguards.")
    critic_env_agreement: float | None = Field(None, ge=0, le=1, description=(
        "Of the scored steps where Φ or the environment's progress moved, the share where both moved the same way "
        "(None: the environment reports no progress, or nothing moved)."))
    stop_reason: str | None = None
    at: float = Field(default_factory=time.time, description="Unix time the task finished.")

    @classmethod
    def of(cls, result: RunResult, *, program: str, version: str | None, source: str, **extra: Any) -> TaskRecord:
        """The record of one finished episode."""
        traj = result.trajectory
        steps = traj.steps
        calls = traj.lm_calls
        n = len(steps)
        return cls(
            program=program, version=version, source=source, task_id=traj.task.task_id, seed=traj.task.seed,
            split=traj.task.split, success=traj.success, steps=n,
            phi_gain=round(traj.phi_gain, 4) if result.phi_scored else None,
            lm_calls=len(calls), tokens=sum(c.tokens for c in calls), seconds=round(result.seconds, 3),
            invalid_action_rate=round(sum(1 for s in steps if s.action is None) / n, 4) if n else 0.0,
            revisit_rate=revisit_rate(traj), critic_flags=sum(1 for s in steps if flagged(s)),
            critic_env_agreement=agreement(steps) if result.phi_scored else None,
            stop_reason=traj.stop_reason or None, **extra,
        )


def flagged(step: Transition) -> bool:
    return any(f in ALARM_FLAGS for f in step.score.flags)


def _seen_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def revisit_rate(traj: Trajectory) -> float:
    """Share of steps whose resulting state the run had been in before (the start included)."""
    if not traj.steps:
        return 0.0
    seen = {_seen_key(traj.steps[0].before.observation)}
    back = 0
    for step in traj.steps:
        key = _seen_key(step.after.observation)
        back += key in seen
        seen.add(key)
    return round(back / len(traj.steps), 4)


def agreement(steps: list[Transition]) -> float | None:
    """Share of scored steps (with known progress before and after) where Φ's move has the progress's sign."""
    agree = total = 0
    for prev, step in pairwise(steps):
        if prev.progress is None or step.progress is None or "unscored" in step.score.flags:
            continue
        moved, delta = step.progress - prev.progress, step.score.delta
        if moved == 0 and delta == 0:
            continue
        total += 1
        agree += (moved > 0) == (delta > 0) and (moved < 0) == (delta < 0)
    return round(agree / total, 4) if total else None


class EventRecord(BaseModel):
    """A compile, gate decision, promotion, rollback, memory status change, trigger, limit stop, pause..."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(description=f"One of {', '.join(EVENT_KINDS)}.")
    program: str
    version: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict, description="JSON-able figures and reasons.")
    at: float = Field(default_factory=time.time)


class Firing(BaseModel):
    """A trigger rule that fired: its figure, the threshold it crossed, over how many tasks, in words."""

    model_config = ConfigDict(frozen=True)

    rule: str
    program: str
    value: float
    threshold: float
    window: int
    reason: str


class AuditCheck(BaseModel):
    """`AuditLog.verify`: ok, or the first line (1-based) that breaks the chain and why."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    first_bad_line: int | None = None
    reason: str = ""
    lines: int = Field(0, description="Lines in the log.")
