"""MetaJudge: decides whether one critic judgment is good enough to learn from.

After "Meta-Rewarding" (arXiv 2407.19594), a judge grades judgments. Here the LM's grades are one
half of the decision; the other half is what Python can verify without trusting any model: the
evidence is really in the states, a state that addresses the judge did not buy a rise, Φ moved the
way the environment's own progress did, and the critic did score the step. A judgment is kept
only when every check passes *and* the LM grades it well, so a flattering meta-judge cannot let an
ungrounded judgment through.
"""

from __future__ import annotations

import logging

import dspy

from purpose_dspy.programs.retry import predict_with_retries
from purpose_dspy.safeguards.evidence import evidence_in_states
from purpose_dspy.safeguards.injection import find_injection
from purpose_dspy.signatures.grade_judgment import (
    GRADE_NAMES,
    GradeJudgment,
    JudgmentGrade,
)
from purpose_dspy.types import PurposeScore, State

logger = logging.getLogger(__name__)

# Every reason starts with one of these keys; `failure_pattern` describes a judgment from the keys
# alone, so no free text (which may quote an injected observation) reaches a memory card.
PATTERNS: dict[str, str] = {
    "evidence_quoted": "evidence not found in either state",
    "no_injection": "a rise while a state addressed the judge",
    "direction_matches_progress": "a score change against the task's real progress",
    "not_unscored": "a step the critic never scored",
    "evidence_grounding": "weakly grounded evidence",
    "reasoning_coherence": "incoherent reasoning",
    "calibration": "a score change out of proportion to what changed",
    "anti_sycophancy": "credit for intentions or a useless step",
    "consistency": "inconsistent scoring",
    "verdict": "a reject verdict",
    "mean_grade": "low grades overall",
    "error": "an unreadable meta-judgment",
}
_CHECK_REASONS: dict[str, str] = {
    "evidence_quoted": "the evidence is not a quote of 12+ characters from either state",
    "no_injection": "a state addresses the judge and the judgment raised Φ",
    "direction_matches_progress": "Φ moved against the environment's progress",
    "not_unscored": "the critic could not score this step",
}


def render_judgment(score: PurposeScore) -> str:
    """The judgment as the meta-judge sees it (flags left out: they would give answers away)."""
    return (
        f"evidence: {score.evidence or '(none)'}\n"
        f"reasoning: {score.reasoning or '(none)'}\n"
        f"score before: {score.phi_before:g} / 10\n"
        f"score after: {score.phi_after:g} / 10 (change {score.delta:+g})\n"
        f"confidence: {score.confidence:g}"
    )


def judgment_checks(
    before: State, after: State, score: PurposeScore,
    progress_before: float | None = None, progress_after: float | None = None,
) -> dict[str, bool]:
    """The checks Python can verify on a judgment; direction only when both progress values are known."""
    states = [before.observation, after.observation]
    checks = {
        "evidence_quoted": evidence_in_states(score.evidence, states),
        "no_injection": score.delta <= 0 or not any(find_injection(s) for s in states),
        "not_unscored": "unscored" not in score.flags,
    }
    if progress_before is not None and progress_after is not None:
        moved = progress_after - progress_before
        if moved > 1e-9:
            checks["direction_matches_progress"] = score.delta > 0
        elif moved < -1e-9:
            checks["direction_matches_progress"] = score.delta < 0
        else:
            checks["direction_matches_progress"] = abs(score.delta) <= 1
    return checks


def failure_pattern(score: PurposeScore, reasons: list[str]) -> str:
    """One line on what was wrong with a judgment, built from fixed phrases and numbers only."""
    keys = list(dict.fromkeys(r.partition(":")[0].strip() for r in reasons))
    problems = [PATTERNS[k] for k in keys if k in PATTERNS]
    if unknown := sum(1 for k in keys if k not in PATTERNS):
        problems.append(f"{unknown} other problem{'s' if unknown > 1 else ''}")
    move = "raised" if score.delta > 0 else "lowered" if score.delta < 0 else "kept"
    head = f"critic {move} Φ {score.phi_before:g} -> {score.phi_after:g}"
    return f"{head}: {'; '.join(problems)}" if problems else f"{head}: no problem found"


class MetaJudge(dspy.Module):
    """Grades one critic judgment with `GradeJudgment` and the Python checks; see the module docstring.

    An unparsable or out-of-range answer is retried once (sampled, so not a cached repeat), then
    recorded as `error` with `keep=False`; it never raises. With `always_grade=False` the LM is not
    called when a Python check already failed (the judgment is rejected either way).
    """

    def __init__(
        self, min_grade: float = 3.0, max_attempts: int = 2, retry_temperature: float = 0.7,
        always_grade: bool = True,
    ) -> None:
        super().__init__()
        self.grade = dspy.Predict(GradeJudgment)
        self.min_grade = min_grade
        self.max_attempts = max_attempts
        self.retry_temperature = retry_temperature
        self.always_grade = always_grade

    def forward(
        self, purpose: str, before: State, action: str, after: State, score: PurposeScore, *,
        progress_before: float | None = None, progress_after: float | None = None,
    ) -> dspy.Prediction:
        checks = judgment_checks(before, after, score, progress_before, progress_after)
        reasons = [f"{name}: {_CHECK_REASONS[name]}" for name, ok in checks.items() if not ok]
        grade, error, attempts = None, None, 0
        if self.always_grade or not reasons:
            grade, error, attempts = self._ask(purpose, before, action, after, score)
        reasons += self._grade_reasons(grade, error)
        graded_keep = grade is not None and grade.verdict == "keep" and grade.mean >= self.min_grade
        keep = all(checks.values()) and graded_keep
        return dspy.Prediction(grade=grade, checks=checks, keep=keep, reasons=reasons, error=error, attempts=attempts)

    def _ask(
        self, purpose: str, before: State, action: str, after: State, score: PurposeScore
    ) -> tuple[JudgmentGrade | None, str | None, int]:
        # An out-of-range grade fails model_validate with pydantic's ValidationError, a ValueError: retried.
        grade, error, attempts = predict_with_retries(
            self.grade, attempts=self.max_attempts, retry_temperature=self.retry_temperature,
            validate=lambda pred: (
                pred.grade if isinstance(pred.grade, JudgmentGrade) else JudgmentGrade.model_validate(pred.grade)
            ),
            purpose=purpose, state_before=before.observation, action=action,
            state_after=after.observation, judgment=render_judgment(score),
        )
        if error is not None:
            logger.info("meta-judge gave no usable grade: %s", error)
        return grade, error, attempts

    def _grade_reasons(self, grade: JudgmentGrade | None, error: str | None) -> list[str]:
        if grade is None:
            return ["error: the meta-judge's answer could not be read"] if error else []
        reasons = [f"{name}: graded {getattr(grade, name)}/5" for name in GRADE_NAMES if getattr(grade, name) <= 2]
        if grade.verdict != "keep":
            reasons.append("verdict: the meta-judge said reject")
        if grade.mean < self.min_grade:
            reasons.append(f"mean_grade: {grade.mean:.1f} is below {self.min_grade:g}")
        return reasons
