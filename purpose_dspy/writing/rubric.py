"""Rubric: how the editor's deciding score is composed in Python from features, and what passes.

The LM never gives the deciding number. It commits to separate features (see the `Critique`
signature); a program measures what can be measured; the rubric weighs the features into a 0-10
composite. One rubric per task family: a user who cares more about concrete detail than about
cliches says so in the weights, and the same critique scores differently, visibly and reproducibly.

Features (each in [0, 1]):
- `constraints`          share of the task's constraints met, measured by Python where it can be
                         (every constraint of the shipped task family can), else the LM's verdict;
- `is_on_brief`, `has_concrete_detail`, `avoids_cliches`
                         the LM's booleans; 0 when the critique was unusable or the output talks to
                         its judge (prompt injection);
- `original`             1 unless the output copies an archived example it was shown (mode collapse).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

FEATURES: tuple[str, ...] = ("constraints", "is_on_brief", "has_concrete_detail", "avoids_cliches", "original")


class Rubric(BaseModel):
    """Weights of the features, the target the gate compares with, and the gate's hard rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: dict[str, float] = Field(
        default_factory=lambda: {"constraints": 6.0, "is_on_brief": 2.0, "has_concrete_detail": 1.0, "avoids_cliches": 1.0},
        description="Weight per feature (names from FEATURES); the composite is 10 x the weighted mean.",
    )
    target: float = Field(8.0, ge=0, le=10, description="Composite at which the loop stops and the archive admits.")
    require_verified: bool = Field(
        True, description="Pass only if every constraint a program can check passes, whatever the weights: "
                          "an LM that claims 12 words for a 15-word text can never carry it through.",
    )
    max_copy_overlap: float = Field(
        0.6, gt=0, le=1, description="Word and word-pair overlap with a shown archived example above which an output "
                                     "counts as a copy (not `original`, and it does not pass).",
    )

    @field_validator("weights")
    @classmethod
    def _known_positive(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}; the rubric can weigh {list(FEATURES)}")
        if any(w < 0 for w in value.values()) or not any(w > 0 for w in value.values()):
            raise ValueError("weights must be non-negative with at least one above zero")
        return value

    def composite(self, features: dict[str, float]) -> float:
        """10 x the weighted mean of the features (a missing feature counts 0), rounded to 2 places."""
        total = sum(self.weights.values())
        return round(10 * sum(w * float(features.get(name, 0.0)) for name, w in self.weights.items()) / total, 2)
