"""`ReplayConfig`: how the replay buffer rewards steps, backs up Q-values and recalls similar states."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReplayConfig(BaseModel):
    """How steps are rewarded and how Q-values learn. Rewards are per step, on a small scale."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gamma: float = Field(0.9, gt=0, le=1, description="Discount of later rewards in the n-step return.")
    n_steps: int = Field(3, ge=1, description="Rewards summed before bootstrapping from max Q of the later state.")
    phi_weight: float = Field(0.1, ge=0, description="Reward per point Φ rises (0-10 scale; only rises pay).")
    success_reward: float = Field(1.0, description="Reward of the step that ends the task with success.")
    failure_reward: float = Field(-1.0, description="Reward of the step that ends the task with failure.")
    step_cost: float = Field(0.05, ge=0, description="Cost of every step: loops and detours end with negative Q.")
    per_task: bool = Field(
        False,
        description="A state is the same only within the same task; identical text in another task counts as "
        "similar (0.99). Needed where the text hides what differs (TWX coin: identical rooms, coin elsewhere).",
    )
    candidates: int = Field(24, gt=0, description="Phase 1: how many similar states are re-ranked by Q.")
    min_similarity: float = Field(0.3, ge=0, le=1, description="Phase 1: states sharing less than this share of distinctive words (Jaccard) are left out.")
    query_terms: int = Field(12, gt=0, description="Most distinctive words of a state used as the lexical query.")
    common_share: float = Field(0.2, gt=0, le=1, description="Words in more than this share of stored states are not queried.")
