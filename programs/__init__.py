"""DSPy modules, one role per file: the actor, the purpose critic, and the agent that holds them."""

from purpose_dspy.programs.actor import Actor, match_action
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.programs.critic import PurposeCritic

__all__ = ["Actor", "PurposeAgent", "PurposeCritic", "match_action"]
