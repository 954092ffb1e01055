"""Typed contracts only: DSPy signatures and the pydantic models of their outputs."""

from purpose_dspy.signatures.act import Act, constrain_action
from purpose_dspy.signatures.distill import DistillLessons, Procedure, ToolTip
from purpose_dspy.signatures.grade_judgment import GradeJudgment, JudgmentGrade
from purpose_dspy.signatures.score_transition import ScoreTransition
from purpose_dspy.signatures.write_flawed_judgment import WriteFlawedJudgment

__all__ = [
    "Act", "DistillLessons", "GradeJudgment", "JudgmentGrade", "Procedure", "ScoreTransition", "ToolTip",
    "WriteFlawedJudgment", "constrain_action",
]
