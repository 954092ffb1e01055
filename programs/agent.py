"""PurposeAgent: the actor and the purpose critic as one DSPy module (what gets compiled and saved)."""

from __future__ import annotations

import dspy

from purpose_dspy.programs.actor import Actor
from purpose_dspy.programs.critic import PurposeCritic


class PurposeAgent(dspy.Module):
    """Holds the role modules; the orchestrator drives them step by step (see orchestrator.py)."""

    def __init__(self, actor: Actor | None = None, critic: PurposeCritic | None = None) -> None:
        super().__init__()
        self.actor = actor or Actor()
        self.critic = critic or PurposeCritic()
