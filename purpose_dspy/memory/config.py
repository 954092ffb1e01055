"""MemoryConfig: the thresholds of memory admission, promotion and the context budget (frozen)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MemoryConfig(BaseModel):
    """Frozen so the rules a store was judged by cannot change in the middle of a run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    budget_tokens: int = Field(
        300, ge=0,
        description="Largest memory context, in tokens estimated as ceil(len(text)/4); cards past it are dropped.",
    )
    min_uses: int = Field(
        3, ge=1,
        description="A candidate must be shown in at least this many distinct tasks before it is promoted or retired "
                    "(retirement for no lift waits for twice as many).",
    )
    min_unshown: int = Field(
        1, ge=1,
        description="Tasks in scope where the card was NOT shown needed before a decision: lift is measured against them.",
    )
    canary_share: float = Field(
        0.5, ge=0, le=1,
        description="Fraction of in-scope tasks in which a candidate is shown; chosen by sha256(card_id + task_id), "
                    "so a task always gets the same answer and the rest serve as the comparison.",
    )
    duplicate_jaccard: float = Field(
        0.8, gt=0, le=1,
        description="Token-set Jaccard at or above which a proposed card duplicates an existing card of the same kind.",
    )
    copied_words: int = Field(
        8, ge=2,
        description="A run of at least this many consecutive words shared with an observation counts as copied verbatim.",
    )
    trust_step: float = Field(
        0.1, ge=0, le=1,
        description="How much trust a promotion adds, and how much one outcome moves a promoted card's trust.",
    )
