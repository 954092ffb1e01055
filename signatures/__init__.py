"""Typed contracts only: DSPy signatures and the pydantic models of their outputs."""

from purpose_dspy.signatures.act import Act, constrain_action
from purpose_dspy.signatures.score_transition import ScoreTransition

__all__ = ["Act", "ScoreTransition", "constrain_action"]
