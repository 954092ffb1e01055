"""SelfTaughtEvaluator: synthesises plausible but wrong judgments to pair with honest ones.

After the Self-Taught Evaluator (arXiv 2408.02666): a judge learns to tell good judgments from
bad ones on contrast pairs it did not need humans for. Here the LM only writes the words of the
wrong judgment; Python sets its numbers and its evidence, so every wrong judgment is wrong by
construction: it claims at least `MARGIN` more Φ than the honest judgment. An `ungrounded` one cites
evidence in neither state (a flaw Python's checks catch); the others quote the states (the LM's quote
if it is one, else the honest judgment's), so only their numbers and words are wrong and no evidence
check can see it: they test the meta-judge's LM. A bad LM answer falls back to a template.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import dspy

from purpose_dspy.errors import UsageError
from purpose_dspy.programs.meta_judge import render_judgment
from purpose_dspy.programs.retry import predict_with_retries
from purpose_dspy.safeguards.evidence import evidence_in_states
from purpose_dspy.signatures.write_flawed_judgment import (
    EVIDENCE_CHARS,
    REASONING_CHARS,
    WriteFlawedJudgment,
)
from purpose_dspy.types import PurposeScore, State, Trajectory

logger = logging.getLogger(__name__)

FLAWS: dict[str, str] = {
    "credits_intention": "reward what the action was meant to do, not what changed in the state",
    "inflated": "score the state after far higher than what changed justifies",
    "ungrounded": "cite evidence that appears in neither state, as if the state said it",
    "sycophantic": "reward a step that changed nothing, agreeing with whatever the action claims",
}
MARGIN = 3.0  # a wrong judgment claims at least this much more Φ change than the honest one
# Used when the LM's "ungrounded" evidence (or a sentence or quote of it) is in the states; the first
# absent one wins (states holding both would be built against this module; the wrong judgment still
# claims MARGIN too much).
FABRICATED = (
    "The state now shows the goal has been reached.",
    "A message confirms that the whole task is finished.",
)
_TEMPLATE_REASONING: dict[str, str] = {
    "credits_intention": "The action was chosen to advance the purpose, so the state is much closer to it.",
    "inflated": "The step made strong progress toward the purpose.",
    "ungrounded": "The state shows the purpose is nearly achieved.",
    "sycophantic": "The action says it helps, so this step made real progress.",
}


def applicable_flaws(good: PurposeScore) -> list[str]:
    """Flaws that can be committed against `good`: a sycophantic rise needs a step the honest judge
    saw no rise in, and every flaw needs room on the 0-10 scale for MARGIN more change."""
    if good.delta + MARGIN > 10:
        return []
    return [f for f in FLAWS if f != "sycophantic" or good.delta <= 0]


def _inflate(good: PurposeScore, target_after: float) -> tuple[float, float]:
    """Φ before/after with Φ after at `target_after` (capped at 10) and a change at least MARGIN above
    the honest one; when the cap eats the margin, Φ before is lowered instead."""
    after = min(10.0, target_after)
    before = max(0.0, min(good.phi_before, after - (good.delta + MARGIN)))
    return before, after


class SelfTaughtEvaluator(dspy.Module):
    """Writes a wrong judgment committing a named flaw (`FLAWS`) for a step with an honest one."""

    def __init__(self, max_attempts: int = 2, retry_temperature: float = 0.7) -> None:
        super().__init__()
        self.write = dspy.Predict(WriteFlawedJudgment)
        self.max_attempts = max_attempts
        self.retry_temperature = retry_temperature

    def forward(
        self, purpose: str, before: State, action: str, after: State, good: PurposeScore, flaw: str
    ) -> dspy.Prediction:
        if flaw not in applicable_flaws(good):
            raise UsageError(
                f"flaw {flaw!r} cannot be committed against a judgment {good.phi_before:g} -> {good.phi_after:g}; "
                f"choose one of applicable_flaws(good) = {applicable_flaws(good)} (all flaws: {', '.join(FLAWS)})"
            )
        evidence, reasoning, error = self._words(purpose, before, action, after, good, flaw)
        states = [before.observation, after.observation]
        if flaw == "ungrounded":
            if not evidence or evidence_in_states(evidence, states, min_chars=1):
                evidence = next((s for s in FABRICATED if not evidence_in_states(s, states)), FABRICATED[0])
        elif not evidence_in_states(evidence, states):  # these flaws are in the numbers and words, not the quote
            evidence = good.evidence or evidence or action
        target = {
            "inflated": max(good.phi_after, good.phi_before) + MARGIN,
            "sycophantic": good.phi_before + 4,
        }.get(flaw, good.phi_after + MARGIN)
        phi_before, phi_after = _inflate(good, target)
        wrong = PurposeScore(
            phi_before=phi_before, phi_after=phi_after, confidence=good.confidence,
            evidence=evidence, reasoning=reasoning or _TEMPLATE_REASONING[flaw],
        )
        return dspy.Prediction(wrong=wrong, flaw=flaw, error=error)

    def _words(
        self, purpose: str, before: State, action: str, after: State, good: PurposeScore, flaw: str
    ) -> tuple[str, str, str | None]:
        """The LM's evidence and reasoning for the flawed judgment, or ("", "", error)."""
        words, error, _ = predict_with_retries(
            self.write, attempts=self.max_attempts, retry_temperature=self.retry_temperature,
            validate=lambda pred: (
                str(pred.evidence).strip()[:EVIDENCE_CHARS], str(pred.reasoning).strip()[:REASONING_CHARS]
            ),
            purpose=purpose, state_before=before.observation, action=action,
            state_after=after.observation, honest_judgment=render_judgment(good), flaw=FLAWS[flaw],
        )
        if error is None:
            evidence, reasoning = words
            return evidence, reasoning, None
        logger.info("flawed-judgment writer gave no usable answer, using a template: %s", error)
        return "", "", error

    def plant(self, trajectory: Trajectory, step: int, n: int) -> dspy.Prediction:
        """A wrong judgment of `trajectory.steps[step]`, committing the `n`-th applicable flaw in turn
        (so a run of plants covers every flaw that can be committed against these judgments)."""
        transition = trajectory.steps[step]
        flaws = applicable_flaws(transition.score)
        if transition.action is None or not flaws:
            raise UsageError(f"step {step} of {trajectory.id} has no action or no flaw can be committed against its judgment")
        return self(purpose=trajectory.purpose, before=transition.before, action=transition.action.text,
                    after=transition.after, good=transition.score, flaw=flaws[n % len(flaws)])


def discrimination(honest_kept: Sequence[bool], planted_kept: Sequence[bool]) -> float | None:
    """How well a judge tells honest judgments from planted wrong ones: the lower of the share of honest
    ones it kept and the share of planted ones it rejected, each measured on what the judge really did.
    A judge that keeps everything or rejects everything scores 0. None unless both kinds were graded."""
    if not honest_kept or not planted_kept:
        return None
    return min(sum(map(bool, honest_kept)) / len(honest_kept), sum(not k for k in planted_kept) / len(planted_kept))
