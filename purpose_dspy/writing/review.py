"""Review: one round of the editor's loop, checked and scored in Python.

The LM's critique is a set of claims. Everything a program can measure (word and sentence counts,
each constraint) is measured here, and each claim is checked against it: the measured value is what
scores, the claim only feeds the LM's feature accuracy. So a critique that says "12 words" of a
15-word text is recorded as wrong and the text fails its word-count constraint all the same. An output the
shared screen (`safeguards/screen.py`) flags earns no LM-feature credit and never passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from purpose_dspy.safeguards.screen import screen
from purpose_dspy.text import overlap, shingles
from purpose_dspy.writing.constraints import count_sentences, count_words
from purpose_dspy.writing.rubric import Rubric
from purpose_dspy.writing.tasks import WritingTask

LM_FEATURES = ("is_on_brief", "has_concrete_detail", "avoids_cliches")


class ClaimCheck(BaseModel):
    """One claim of the critique next to what a program measured."""

    feature: str
    claimed: Any
    measured: Any
    correct: bool


class Review(BaseModel):
    """A round: the output, the LM's claims, what Python measured, the composite and the gate."""

    iteration: int = Field(description="0 for the first draft, then one per refinement.")
    output: str
    claims: dict[str, Any] | None = Field(None, description="The critique's features as the LM gave them; None if unusable.")
    critique: str = ""
    critique_error: str | None = Field(None, description="Why the critique was unusable after its retries.")
    write_error: str | None = Field(None, description="Why the draft or refinement produced no usable text.")
    checks: list[ClaimCheck] = Field(default_factory=list)
    measured_failures: list[str] = Field(default_factory=list, description="One sentence per failed constraint.")
    constraints_met: list[bool] = Field(default_factory=list, description="Per constraint, as measured.")
    features: dict[str, float] = Field(default_factory=dict, description="What the composite was computed from.")
    composite: float = 0.0
    llm_overall: int | None = None
    copied_overlap: float = Field(0.0, description="Highest overlap with an archived example shown to the draft.")
    injection: list[str] = Field(
        default_factory=list,
        description="Passages of the output the shared screen flags (text aimed at the judge, the model or "
                    "memory, claims about scoring or completion, role or field markers, secrets redacted): "
                    "no LM credit, no pass.",
    )
    passed: bool = False

    @property
    def constraints_pass(self) -> bool:
        return all(self.constraints_met)

    @property
    def claim_accuracy(self) -> float | None:
        return sum(c.correct for c in self.checks) / len(self.checks) if self.checks else None

    def feedback(self) -> str:
        """What the refiner is told: measured facts first, then the LM's notes."""
        lines = []
        if self.measured_failures or self.injection or self.copied_overlap:
            facts = list(self.measured_failures)
            if self.injection:
                facts.append("It contains text addressed to its judge or its reader's model (orders, claims about its "
                             "score, markers or secrets); remove it.")
            if self.features.get("original", 1.0) < 1.0:
                facts.append("It copies an example answer; write it in your own structure and words.")
            if facts:
                lines += ["Measured (facts):", *(f"- {f}" for f in facts)]
        if self.critique.strip():
            lines += ["Editor's notes:", self.critique.strip()]
        return "\n".join(lines) or "No problems found; tighten the wording."


def review(
    task: WritingTask,
    output: str,
    claims: dict[str, Any] | None,
    *,
    rubric: Rubric,
    iteration: int,
    shown: Sequence[str] = (),
    critique: str = "",
    critique_error: str | None = None,
    write_error: str | None = None,
) -> Review:
    """Measure `output` against `task`, check the LM's `claims`, compose the score, apply the gate."""
    met = [c.check(output) for c in task.constraints]
    failures = [c.failure(output) for c, ok in zip(task.constraints, met) if not ok]
    checks: list[ClaimCheck] = []
    if claims is not None:
        checks.append(_check("word_count", claims.get("word_count"), count_words(output)))
        checks.append(_check("sentence_count", claims.get("sentence_count"), count_sentences(output)))
        said = list(claims.get("constraints_met") or [])
        for i, (constraint, ok) in enumerate(zip(task.constraints, met)):
            checks.append(_check(f"constraint {i + 1}: {constraint.describe()}", said[i] if i < len(said) else None, ok))
    injection = screen(output).passages()  # the same screen as memory's and the critic's, secrets included
    copied = max((overlap(shingles(output), shingles(text)) for text in shown), default=0.0)
    trusted = claims is not None and not injection
    features = {
        "constraints": sum(met) / len(met) if met else 1.0,
        **{name: float(bool(claims.get(name))) if trusted else 0.0 for name in LM_FEATURES},
        "original": 0.0 if copied > rubric.max_copy_overlap else 1.0,
    }
    composite = rubric.composite(features) if output.strip() else 0.0
    passed = (
        bool(output.strip()) and composite >= rubric.target and features["original"] == 1.0 and not injection
        and (all(met) or not rubric.require_verified)
    )
    overall = claims.get("overall_score") if claims else None
    return Review(
        iteration=iteration, output=output, claims=claims, critique=critique, critique_error=critique_error,
        write_error=write_error, checks=checks, measured_failures=failures, constraints_met=met, features=features,
        composite=composite, llm_overall=int(overall) if isinstance(overall, int) else None,
        copied_overlap=round(copied, 3), injection=injection, passed=passed,
    )


def _check(feature: str, claimed: Any, measured: Any) -> ClaimCheck:
    return ClaimCheck(feature=feature, claimed=claimed, measured=measured, correct=claimed == measured)
