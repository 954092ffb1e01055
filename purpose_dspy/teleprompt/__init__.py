"""Compiling: the agent's and the editor's teleprompters (DSPy's `compile(student, *, trainset, valset)`),
their shared budget, report and bookkeeping, and the checkpoint that makes a compile resumable."""

from purpose_dspy.teleprompt.actor_demos import loop_erased
from purpose_dspy.teleprompt.agent import (
           CompileConfig,
           PurposeTeleprompter,
           task_examples,
)
from purpose_dspy.teleprompt.base import BudgetConfig, CompileReport, DemoSource
from purpose_dspy.teleprompt.editor import (
           EditorCompileConfig,
           EditorTeleprompter,
           writing_examples,
)
from purpose_dspy.teleprompt.gate import GateConfig, GateDecision

__all__ = ["BudgetConfig", "CompileConfig", "CompileReport", "DemoSource", "EditorCompileConfig", "EditorTeleprompter",
           "GateConfig", "GateDecision", "PurposeTeleprompter", "loop_erased", "task_examples", "writing_examples"]
