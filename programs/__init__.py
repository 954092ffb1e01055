"""DSPy modules, one role per file: the actor, the purpose critic, the distiller, and the agent that holds them."""

from purpose_dspy.programs.actor import Actor, match_action
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.programs.critic import PurposeCritic
from purpose_dspy.programs.distiller import Distiller, rank_trajectories

__all__ = ["Actor", "Distiller", "PurposeAgent", "PurposeCritic", "match_action", "rank_trajectories"]
