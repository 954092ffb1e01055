"""Typed contracts only: DSPy signatures and the pydantic models of their outputs."""

from purpose_dspy.signatures.act import Act, constrain_action
from purpose_dspy.signatures.distill import DistillLessons, Procedure, ToolTip
from purpose_dspy.signatures.score_transition import ScoreTransition

__all__ = ["Act", "DistillLessons", "Procedure", "ScoreTransition", "ToolTip", "constrain_action"]
