"""Typed contracts only: DSPy signatures and the pydantic models of their outputs."""

from purpose_dspy.signatures.act import Act, ActDirect, constrain_action
from purpose_dspy.signatures.critique import Critique
from purpose_dspy.signatures.distill import DistillLessons, Procedure, ToolTip
from purpose_dspy.signatures.draft import Draft
from purpose_dspy.signatures.grade_judgment import GradeJudgment, JudgmentGrade
from purpose_dspy.signatures.refine import Refine
from purpose_dspy.signatures.score_transition import ScoreTransition, ScoreTransitionDirect
from purpose_dspy.signatures.write_flawed_judgment import WriteFlawedJudgment

__all__ = [
    "Act", "ActDirect", "Critique", "DistillLessons", "Draft", "GradeJudgment", "JudgmentGrade", "Procedure", "Refine", "ScoreTransition",
    "ScoreTransitionDirect", "ToolTip",
    "WriteFlawedJudgment", "constrain_action",
]
