"""Run configuration: frozen, validated, one docstring per field. Run *state* lives elsewhere."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from purpose_dspy.safeguards.config import SafeguardConfig


class RunConfig(BaseModel):
    """How one episode is run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_steps: int = Field(20, gt=0, description="Steps before the run stops with reason 'max_steps'.")
    max_lm_calls: int | None = Field(None, gt=0, description="LM-call budget for the run; None = unlimited.")
    history_window: int = Field(6, ge=0, description="How many recent steps the actor sees as history.")
    observation_chars: int = Field(160, gt=0, description="Characters of each past observation kept in the history.")
    explore: float = Field(
        0.0, ge=0, le=1,
        description="Probability per step of taking a valid action never tried in this state (per the replay "
        "buffer; any valid action without one) instead of asking the actor. Not used where a remembered "
        "successful path goes on from the state.",
    )
    seed: int = Field(0, description="Seeds exploration, together with the task id: same seed, same choices.")
    id_namespace: str | None = Field(
        None,
        description="When set, a trajectory's id is derived from it and the task id (sha256), so the same run gives "
        "the same ids on every backend (a compile sets its job key and phase); None: a random id. Each task may "
        "run once per namespace.",
    )
    score_phi: bool = Field(
        True,
        description="Ask the critic for Φ at every step. False (evaluations, which judge by the environment's "
        "success): the critic is not called and the Φ store not written; every step gets an unscored, zero-delta "
        "score (`PurposeScore.unscored`, flag 'unscored'), so reward stays 0 and the run reports phi_scored false. "
        "Online learning (an Orchestrator with experience) needs Φ and refuses False.",
    )
    safeguards: SafeguardConfig = Field(default_factory=SafeguardConfig, description="The critic's Python safeguards.")
