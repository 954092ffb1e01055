"""DSPy modules, one role per file: the actor, the purpose critic, the distiller, the agent that holds them,
and the judges of judgments (meta-judge, self-taught evaluator)."""

from purpose_dspy.programs.actor import Actor, match_action
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.programs.critic import PurposeCritic
from purpose_dspy.programs.distiller import Distiller, rank_trajectories
from purpose_dspy.programs.meta_judge import (
    MetaJudge,
    failure_pattern,
    judgment_checks,
    render_judgment,
)
from purpose_dspy.programs.self_taught_evaluator import (
    FLAWS,
    SelfTaughtEvaluator,
    applicable_flaws,
    discrimination,
)

__all__ = [
    "FLAWS", "Actor", "Distiller", "MetaJudge", "PurposeAgent", "PurposeCritic", "SelfTaughtEvaluator",
    "applicable_flaws", "discrimination", "failure_pattern", "judgment_checks", "match_action", "rank_trajectories",
    "render_judgment",
]
