"""What an evaluation reports: per-task scores, split summaries with 95% intervals, paired comparisons.

Success rates get a Wilson score interval (sound at small n and at 0 % or 100 %); mean Φ gain gets a
normal interval from the standard error. Comparisons between two programs are paired: the same
seeds, task by task, so the difference is not noise from different layouts. Cost is LM calls and
tokens, in all and per role (prompt, of it prefix-cached, completion). An actor-only evaluation
(`phi_scored` false) has no Φ: its mean Φ gain is 0 and tables print "-" for it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from purpose_dspy.types import ROLES, LMCall, RunResult, usage_by_role

Z95 = 1.959964


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (0, 1 for n = 0)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float]:
    """Normal 95% interval of a mean (the mean itself twice when there are fewer than 2 values)."""
    if not values:
        return (0.0, 0.0)
    mean = statistics.fmean(values)
    if len(values) < 2:
        return (round(mean, 4), round(mean, 4))
    half = z * statistics.stdev(values) / math.sqrt(len(values))
    return (round(mean - half, 4), round(mean + half, 4))


class TaskScore(BaseModel):
    """One episode's outcome and cost."""

    task_id: str
    seed: int
    success: bool
    phi_gain: float = Field(description="Φ at the end minus Φ at the start (0 for an episode with no steps).")
    progress: float | None = Field(None, description="The environment's own progress at the end, if it reports one.")
    steps: int
    lm_calls: int
    tokens: int = Field(description="Prompt plus completion tokens of every LM call.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = Field(0, description="Of the prompt tokens, those served from the server's prefix cache.")
    by_role: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Per role: calls, prompt_tokens, completion_tokens, cached_tokens.")
    phi_scored: bool = Field(True, description="The critic scored Φ (False: actor-only, phi_gain is 0).")
    seconds: float
    trajectory_id: str = ""

    @classmethod
    def of(cls, result: RunResult) -> TaskScore:
        traj = result.trajectory
        return cls(
            task_id=traj.task.task_id, seed=traj.task.seed, success=traj.success,
            phi_gain=round(traj.phi_gain, 4), phi_scored=result.phi_scored,
            progress=traj.steps[-1].progress if traj.steps else None, steps=len(traj.steps),
            **cost_of(traj.lm_calls), seconds=round(result.seconds, 3), trajectory_id=traj.id,
        )


def cost_of(calls: Sequence[LMCall]) -> dict[str, Any]:
    """The cost fields of a `TaskScore`: lm_calls, tokens (in all, prompt, cached, completion) and by_role."""
    return {"lm_calls": len(calls), "tokens": sum(c.tokens for c in calls),
            "prompt_tokens": sum(c.prompt_tokens for c in calls),
            "completion_tokens": sum(c.completion_tokens for c in calls),
            "cached_tokens": sum(c.cached_tokens for c in calls), "by_role": usage_by_role(calls)}


def summed_by_role(parts: Sequence[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """`by_role` dicts added up, role by role (in `ROLES` order)."""
    out: dict[str, dict[str, int]] = {}
    for part in parts:
        for role, usage in part.items():
            into = out.setdefault(role, {})
            for key, value in usage.items():
                into[key] = into.get(key, 0) + value
    return {role: out[role] for role in (*ROLES, *sorted(set(out) - set(ROLES))) if role in out}


class SplitMetrics(BaseModel):
    """A program's results on one split: rates with 95% intervals, costs, and every task's score."""

    split: str
    n: int
    successes: int
    success_rate: float
    success_ci: tuple[float, float]
    mean_phi_gain: float
    phi_gain_ci: tuple[float, float]
    mean_steps: float
    lm_calls: int
    tokens: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    by_role: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Per role: calls, prompt_tokens, completion_tokens, cached_tokens.")
    phi_scored: bool = Field(True, description="Every task's Φ was scored by the critic; False: the Φ gain means nothing.")
    seconds: float
    tasks: list[TaskScore]

    @classmethod
    def of(cls, split: str, scores: Sequence[TaskScore]) -> SplitMetrics:
        n = len(scores)
        wins = sum(s.success for s in scores)
        gains = [s.phi_gain for s in scores]
        return cls(
            split=split, n=n, successes=wins, success_rate=round(wins / n, 4) if n else 0.0,
            success_ci=wilson_interval(wins, n),
            mean_phi_gain=round(statistics.fmean(gains), 4) if gains else 0.0, phi_gain_ci=mean_interval(gains),
            mean_steps=round(statistics.fmean(s.steps for s in scores), 2) if n else 0.0,
            lm_calls=sum(s.lm_calls for s in scores), tokens=sum(s.tokens for s in scores),
            prompt_tokens=sum(s.prompt_tokens for s in scores), completion_tokens=sum(s.completion_tokens for s in scores),
            cached_tokens=sum(s.cached_tokens for s in scores), by_role=summed_by_role([s.by_role for s in scores]),
            phi_scored=all(s.phi_scored for s in scores), seconds=round(sum(s.seconds for s in scores), 2),
            tasks=list(scores),
        )

    @property
    def phi_gain_text(self) -> str:
        """The mean Φ gain as a table shows it: "-" when Φ was not scored."""
        return f"{self.mean_phi_gain:+.2f}" if self.phi_scored else "-"

    def row(self) -> str:
        lo, hi = self.success_ci
        return (f"{self.successes}/{self.n} = {self.success_rate:.0%} [{lo:.0%}, {hi:.0%}]  "
                f"Φ gain {self.phi_gain_text}  steps {self.mean_steps:.1f}  calls {self.lm_calls}  "
                f"tokens {self.tokens}  {self.seconds:.0f}s")


class PairedComparison(BaseModel):
    """Candidate against parent on the tasks both ran (same seeds)."""

    n: int
    candidate_successes: int
    parent_successes: int
    wins: int = Field(description="Tasks the candidate solved and the parent did not.")
    losses: int = Field(description="Tasks the parent solved and the candidate did not.")
    mean_phi_gain_difference: float
    phi_scored: bool = Field(True, description="Both sides scored Φ; False: the Φ difference means nothing (not used by the gate).")

    @property
    def not_worse(self) -> bool:
        return self.n > 0 and self.candidate_successes >= self.parent_successes

    def describe(self) -> str:
        return (f"{self.candidate_successes}/{self.n} solved vs the parent's {self.parent_successes}/{self.n} "
                f"on the same seeds ({self.wins} gained, {self.losses} lost)")


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test on the discordant pairs of a paired comparison (ties carry no information).

    The chance, if neither side were better, of a split at least this lopsided: 1.0 when there is no
    discordant pair, below 0.05 only when one side wins clearly more often on the same seeds.
    """
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return round(min(1.0, 2 * tail), 4)


def sign_test_greater(wins: int, losses: int) -> float:
    """Exact one-sided sign test: P(X >= wins) for X ~ Binomial(wins + losses, 1/2), unrounded.

    The chance, if the candidate were no better than the parent, that it would gain at least `wins` of
    the discordant pairs: 1.0 with none, 0.5**k for k wins and no loss (5-0: 0.03125, 3-0: 0.125).
    Swap the arguments to test "worse".
    """
    if wins < 0 or losses < 0:
        raise ValueError(f"wins and losses are counts (>= 0), got {wins}, {losses}")
    n = wins + losses
    return sum(math.comb(n, i) for i in range(wins, n + 1)) / 2**n


def paired(candidate: SplitMetrics, parent: SplitMetrics) -> PairedComparison:
    """Compare on the tasks present in both (matched by task id)."""
    theirs = {t.task_id: t for t in parent.tasks}
    pairs = [(t, theirs[t.task_id]) for t in candidate.tasks if t.task_id in theirs]
    return PairedComparison(
        n=len(pairs),
        candidate_successes=sum(c.success for c, _ in pairs),
        parent_successes=sum(p.success for _, p in pairs),
        wins=sum(c.success and not p.success for c, p in pairs),
        losses=sum(p.success and not c.success for c, p in pairs),
        mean_phi_gain_difference=round(statistics.fmean(c.phi_gain - p.phi_gain for c, p in pairs), 4) if pairs else 0.0,
        phi_scored=candidate.phi_scored and parent.phi_scored,
    )
