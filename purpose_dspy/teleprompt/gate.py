"""The promotion gate: a compiled program replaces its parent only when the paired valset seeds show it better.

Candidate and parent run on the same valset seeds (the parent's run is the compile's "before"). Only the
discordant seeds (one solved it, the other did not) carry information. The gate promotes when the
candidate gained more of them than it lost AND the exact one-sided sign test says a split this lopsided
would be rare if it were no better (p <= `alpha`, default 0.1). A tie, too few discordant seeds or a worse
result keeps the parent. At alpha 0.1 that takes at least 4 seeds gained and none lost (p = 0.0625), or 6
gained and 1 lost (0.0625), or 7 and 2 (0.0898). So 2-4 dev seeds can never promote anything, on purpose.

Staged: the candidate first runs on the first `stage_seeds` (5) valset tasks. If it has already lost
`stop_margin` (2) more of them than it gained, the rest are not run and the parent stays. This is a futility
rule, not a test. It saves the remaining episodes of a candidate that would need a long winning streak
to recover (from 0-2, on 20 seeds, at least 7-2 over all of them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from purpose_dspy.metrics import PairedComparison, SplitMetrics, paired, sign_test_greater


class GateConfig(BaseModel):
    """When a compiled program may replace its parent, and when its valset run stops early."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(0.1, gt=0, le=1, description=(
        "Promote only if the one-sided exact sign test p (candidate better, on the discordant paired seeds) is "
        "at most this, and it gained more seeds than it lost. At 0.1 it takes 4 or more seeds gained and none lost."))
    stage_seeds: int = Field(5, ge=0, description=(
        "The candidate runs on the first N valset tasks first, then on the rest unless `stop_margin` stops it; "
        "0 = one stage."))
    stop_margin: int = Field(2, ge=1, description=(
        "After the first stage: stop (the parent stays) when the candidate lost at least this many more seeds than "
        "it gained."))


class GateDecision(BaseModel):
    """What the gate decided and the figures behind it (the artifact's manifest keeps it as `gate`)."""

    promoted: bool
    reason: str
    comparison: PairedComparison | None = None
    p_value: float | None = Field(None, description="One-sided exact sign test p of 'the candidate is better'.")
    alpha: float | None = Field(None, description="The level p had to reach (None: written before the gate tested).")
    stopped_early: bool = Field(False, description="The staged check stopped the candidate after its first stage.")


def decide(candidate: SplitMetrics, parent: SplitMetrics, config: GateConfig | None = None) -> GateDecision:
    """Promote `candidate` over `parent` (the same valset seeds) only if it gained more seeds than it lost and
    the one-sided sign test gives p <= alpha."""
    config = config or GateConfig()
    c = paired(candidate, parent)
    if c.n == 0:
        return GateDecision(promoted=False, comparison=c, alpha=config.alpha, reason=(
            f"the {candidate.split} runs share no task (budget?); the parent stays: promote by hand"))
    p = sign_test_greater(c.wins, c.losses)
    promoted = c.wins > c.losses and p <= config.alpha
    return GateDecision(promoted=promoted, comparison=c, p_value=p, alpha=config.alpha,
                        reason=_reason(c, p, config.alpha, candidate.split, promoted))


def stop_early(stage: SplitMetrics, parent: SplitMetrics, config: GateConfig) -> GateDecision | None:
    """After the first stage: the refusal when the candidate already lost `stop_margin` more seeds than it
    gained; None to go on."""
    c = paired(stage, parent)
    if c.losses - c.wins < config.stop_margin:
        return None
    return GateDecision(
        promoted=False, comparison=c, p_value=sign_test_greater(c.wins, c.losses), alpha=config.alpha,
        stopped_early=True,
        reason=(f"stopped after the first {c.n} {stage.split} seeds: {c.wins} gained, {c.losses} lost (at least "
                f"{config.stop_margin} more lost than gained); the other seeds were not run; the parent stays"))


def staged(evaluate: Callable[[list[Any]], SplitMetrics], valset: Sequence[Any], parent: SplitMetrics,
           config: GateConfig) -> tuple[SplitMetrics, GateDecision]:
    """The candidate on the valset in two stages, and the gate's decision.

    `evaluate(examples)` runs the candidate on some of the valset. It runs on the first `stage_seeds`, then on
    the rest unless `stop_early` refuses it first. When stopped, the metrics cover the first stage only."""
    k = config.stage_seeds
    if not 0 < k < len(valset):
        after = evaluate(list(valset))
        return after, decide(after, parent, config)
    first = evaluate(list(valset[:k]))
    if (stopped := stop_early(first, parent, config)) is not None:
        return first, stopped
    rest = evaluate(list(valset[k:]))
    after = SplitMetrics.of(first.split, [*first.tasks, *rest.tasks])
    return after, decide(after, parent, config)


def min_clean_sweep(alpha: float) -> int:
    """The fewest seeds gained, with none lost, that reach p <= alpha (0.5**k <= alpha)."""
    k = 1
    while 0.5**k > alpha:
        k += 1
    return k


def _reason(c: PairedComparison, p: float, alpha: float, split: str, promoted: bool) -> str:
    figures = (f"{c.wins} gained, {c.losses} lost on {c.n} paired {split} seeds, one-sided sign test "
               f"p = {p:.4g} {'<=' if p <= alpha else '>'} {alpha:g}")
    if promoted:
        return f"{figures}: better than the parent; promoted"
    verdict = "worse than the parent" if c.wins < c.losses else "a tie" if c.wins == c.losses else "not shown better"
    sweep = min_clean_sweep(alpha)
    few = (f" (too few discordant seeds: at alpha {alpha:g} it takes {sweep} or more gained and none lost)"
           if c.losses <= c.wins and c.wins + c.losses < sweep else "")
    return f"{figures}: {verdict}{few}; the parent stays"
