"""Trigger rules over the ledger: when does a program need improving? Declared in a run directory's triggers.toml.

Each rule compares the last `window` task records of a program (those its `sources` ran; a task a limit cut
short does not count) with the records before them, and fires only when the window is full and the earlier
part holds at least `min_sample` records, so a handful of tasks cannot fire it:

- `success_drop`: success over the window below `ratio` x the earlier rate, and at least `z` standard errors below
  it (a one-sided two-proportion z-test, pooled): a dip that chance explains does not fire, even when the
  rules are checked after every task;
- `tokens_per_success_rise`: tokens per success over the window above `ratio` x the earlier figure;
- `agreement_drop`: mean critic-environment agreement over the window below `ratio` x the earlier mean;
- `flag_streak`: each of the last `window` tasks had a step flagged as an injection or an anomaly.

```toml
[[rule]]
name = "success-drop"
kind = "success_drop"
window = 20
min_sample = 20
ratio = 0.95
```

Without a triggers.toml, `DEFAULT_RULES` apply (the four above with the windows shown in them).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from purpose_dspy.monitor.records import Firing, TaskRecord
from purpose_dspy.monitor.tomlfile import read_model

FILENAME = "triggers.toml"
Kind = Literal["success_drop", "tokens_per_success_rise", "agreement_drop", "flag_streak"]


class TriggerRule(BaseModel):
    """One trigger rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="How firings name it.")
    kind: Kind = Field(description="What it measures (see the module's docstring).")
    window: int = Field(20, gt=0, description="The recent tasks it looks at (a streak's length for flag_streak).")
    min_sample: int = Field(20, ge=1, description="Earlier tasks needed before it may fire (not for flag_streak).")
    ratio: float = Field(0.95, gt=0, description="Fires below ratio x the earlier figure (above it for a rise).")
    z: float = Field(3.0, ge=0, description=(
        "success_drop only: standard errors the window's rate must also sit below the earlier one (3: about one "
        "chance firing in 700 looks at a steady program)."))
    sources: tuple[str, ...] = Field(("run", "eval", "agent", "improve"), description=(
        "Which task records count (a compile's exploring train rollouts do not, by default)."))


DEFAULT_RULES: tuple[TriggerRule, ...] = (
    TriggerRule(name="success-drop", kind="success_drop", window=20, min_sample=20, ratio=0.95),
    TriggerRule(name="tokens-per-success", kind="tokens_per_success_rise", window=20, min_sample=20, ratio=1.2),
    TriggerRule(name="critic-agreement", kind="agreement_drop", window=20, min_sample=20, ratio=0.9),
    TriggerRule(name="flag-streak", kind="flag_streak", window=5, min_sample=1, ratio=1.0),
)


class TriggerFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: tuple[TriggerRule, ...] = ()


def load_rules(directory: str | Path) -> tuple[TriggerRule, ...]:
    """The rules of `triggers.toml` in a run directory (absent: `DEFAULT_RULES`); errors name the file, the line,
    the rule and the field."""
    path = Path(directory) / FILENAME
    if not path.exists():
        return DEFAULT_RULES
    return read_model(path, TriggerFile, hint=(f"a rule has {', '.join(TriggerRule.model_fields)}, kind one of "
                                               f"{', '.join(_RULES)}")).rule


def evaluate(rules: Sequence[TriggerRule], records: Sequence[TaskRecord], program: str) -> list[Firing]:
    """The rules that fire over `program`'s records (oldest first)."""
    firings = []
    for rule in rules:
        counted = [r for r in records if r.program == program and r.source in rule.sources
                   and not (r.stop_reason or "").startswith("limit")]
        firing = _RULES[rule.kind](rule, counted, program)
        if firing is not None:
            firings.append(firing)
    return firings


def _split(rule: TriggerRule, values: list) -> tuple[list, list] | None:
    if len(values) < rule.window + rule.min_sample:
        return None
    return values[:-rule.window], values[-rule.window:]


def _success_drop(rule: TriggerRule, records: list[TaskRecord], program: str) -> Firing | None:
    parts = _split(rule, [r.success for r in records])
    if parts is None:
        return None
    earlier, recent = parts
    base, now = sum(earlier) / len(earlier), sum(recent) / len(recent)
    pooled = (sum(earlier) + sum(recent)) / (len(earlier) + len(recent))
    se = math.sqrt(pooled * (1 - pooled) * (1 / len(earlier) + 1 / len(recent)))
    z = (base - now) / se if se else 0.0
    if now < rule.ratio * base and z >= rule.z:
        return Firing(rule=rule.name, program=program, value=round(now, 4), threshold=round(rule.ratio * base, 4),
                      window=rule.window, reason=(
                          f"success {sum(recent)}/{len(recent)} over the last {len(recent)} tasks ({now:.0%}) is below "
                          f"{rule.ratio:g} x the earlier {base:.0%} ({sum(earlier)}/{len(earlier)}), {z:.1f} standard "
                          "errors down"))
    return None


def _tokens_per_success(rule: TriggerRule, records: list[TaskRecord], program: str) -> Firing | None:
    parts = _split(rule, records)
    if parts is None:
        return None
    earlier, recent = parts
    wins_before, wins_now = sum(r.success for r in earlier), sum(r.success for r in recent)
    if not wins_before or not wins_now:  # no success to divide by (the success rule speaks for that)
        return None
    base = sum(r.tokens for r in earlier) / wins_before
    now = sum(r.tokens for r in recent) / wins_now
    if now > rule.ratio * base:
        return Firing(rule=rule.name, program=program, value=round(now, 1), threshold=round(rule.ratio * base, 1),
                      window=rule.window, reason=(
                          f"{now:.0f} tokens per success over the last {len(recent)} tasks, above {rule.ratio:g} x the "
                          f"earlier {base:.0f}"))
    return None


def _agreement_drop(rule: TriggerRule, records: list[TaskRecord], program: str) -> Firing | None:
    parts = _split(rule, [r.critic_env_agreement for r in records if r.critic_env_agreement is not None])
    if parts is None:
        return None
    earlier, recent = parts
    base, now = statistics.fmean(earlier), statistics.fmean(recent)
    if now < rule.ratio * base:
        return Firing(rule=rule.name, program=program, value=round(now, 4), threshold=round(rule.ratio * base, 4),
                      window=rule.window, reason=(
                          f"critic-environment agreement {now:.2f} over the last {len(recent)} scored tasks, below "
                          f"{rule.ratio:g} x the earlier {base:.2f}"))
    return None


def _flag_streak(rule: TriggerRule, records: list[TaskRecord], program: str) -> Firing | None:
    recent = records[-rule.window:]
    if len(recent) == rule.window and all(r.critic_flags > 0 for r in recent):
        return Firing(rule=rule.name, program=program, value=float(len(recent)), threshold=float(rule.window),
                      window=rule.window, reason=(
                          f"each of the last {rule.window} tasks had a step flagged as an injection or an anomaly "
                          f"({sum(r.critic_flags for r in recent)} flagged steps)"))
    return None


_RULES: dict[str, Callable[[TriggerRule, list[TaskRecord], str], Firing | None]] = {
    "success_drop": _success_drop,
    "tokens_per_success_rise": _tokens_per_success,
    "agreement_drop": _agreement_drop,
    "flag_streak": _flag_streak,
}
