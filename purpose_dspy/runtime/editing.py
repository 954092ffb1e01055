"""Editing one task end to end: similar archived examples in, the editor's loop, the archive gate out.

This is what `purpose-dspy edit`, the editor's compile and `benchmarks/editor.py` call. The archive is
read before the draft (the most similar accepted answers) and written after it, only when the best
round passed the rubric's gate; the archive checks the score against the target again itself.
"""

from __future__ import annotations

import time
from typing import Any

import dspy
from pydantic import BaseModel, Field

from purpose_dspy.metrics import TaskScore, cost_of
from purpose_dspy.programs.editor import Editor
from purpose_dspy.runtime.trace import traced_copy
from purpose_dspy.types import LMCall
from purpose_dspy.writing.archive import Archive
from purpose_dspy.writing.review import Review
from purpose_dspy.writing.rubric import Rubric
from purpose_dspy.writing.tasks import WritingTask, task_from_text


class EditResult(BaseModel):
    """One task through the editor: every round, the output kept, what was shown and archived, the cost."""

    task_id: str
    seed: int = Field(0, description="The task's seed (0 for a request in words).")
    task: str
    output: str
    rounds: list[Review]
    best: int = Field(description="Index of the round whose output was kept.")
    target: float
    shown: list[str] = Field(default_factory=list, description="Ids of the archived examples the draft saw.")
    archived: str | None = Field(None, description="Id of the archive entry written, if the gate passed.")
    lm_calls: list[LMCall] = Field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.rounds[self.best].passed

    @property
    def first_draft_passes(self) -> bool:
        """Every constraint met by the first draft, as measured (the loop's starting point)."""
        return self.rounds[0].constraints_pass and bool(self.rounds[0].output)

    @property
    def final_passes(self) -> bool:
        """Every constraint met by the output kept, as measured."""
        return self.rounds[self.best].constraints_pass and bool(self.output)

    def score(self) -> TaskScore:
        """As a task score: success = passed the gate; "Φ gain" = composite of the kept output minus the first draft's."""
        calls = self.lm_calls
        return TaskScore(
            task_id=self.task_id, seed=self.seed, success=self.passed,
            phi_gain=round(self.rounds[self.best].composite - self.rounds[0].composite, 4),
            progress=sum(self.rounds[self.best].constraints_met) / max(1, len(self.rounds[self.best].constraints_met)),
            steps=len(self.rounds), **cost_of(calls), seconds=round(self.seconds, 3),
        )

    def summary(self) -> dict[str, Any]:
        """The `--json` form: the output, the gate, each round in brief, the cost (in all and `by_role`)."""
        return {
            "task_id": self.task_id, "output": self.output, "passed": self.passed, "target": self.target,
            "composite": self.rounds[self.best].composite, "first_draft_passes": self.first_draft_passes,
            "final_passes": self.final_passes, "iterations": len(self.rounds), "shown": self.shown,
            "archived": self.archived,
            "rounds": [{
                "iteration": r.iteration, "output": r.output, "composite": r.composite, "passed": r.passed,
                "constraints_met": r.constraints_met, "measured_failures": r.measured_failures,
                "llm_overall": r.llm_overall, "claim_accuracy": r.claim_accuracy, "critique_error": r.critique_error,
                "write_error": r.write_error, "features": r.features,
            } for r in self.rounds],
            **cost_of(self.lm_calls), "seconds": round(self.seconds, 2),
        }


def edit(
    task: WritingTask | str,
    *,
    lm: Any,
    editor: Editor | None = None,
    archive: Archive | None = None,
    rubric: Rubric | None = None,
    learn: bool = True,
    exclude_own: bool = False,
) -> EditResult:
    """Run the editor on one task with `lm`; with an archive, read similar examples and (if `learn`) admit a pass.

    `exclude_own` hides archived answers to this very task (an evaluation must not see its own answer).
    """
    task = task if isinstance(task, WritingTask) else task_from_text(task)
    editor = editor or Editor()
    rubric = rubric or editor.rubric
    examples = archive.similar(task.text(), exclude_task_id=task.task_id if exclude_own else None) if archive else []
    calls: list[LMCall] = []
    started = time.perf_counter()
    # JSON answers: an embedded model decodes them under a grammar, so typed fields come back well-formed.
    with dspy.context(lm=traced_copy(lm, "editor", calls), adapter=dspy.JSONAdapter()):
        pred = editor(task=task, examples=examples, rubric=rubric)
    best = pred.rounds.index(pred.best)
    archived = None
    if archive is not None and learn and pred.best.passed:
        entry = archive.admit(task_id=task.task_id, form=task.form, task=task.text(), output=pred.output,
                              score=pred.best.composite, target=rubric.target, features=pred.best.features)
        archived = entry.id if entry else None
    return EditResult(
        task_id=task.task_id, seed=task.seed, task=task.text(), output=pred.output,
        rounds=pred.rounds, best=best, target=rubric.target, shown=[e.id for e in examples], archived=archived,
        lm_calls=calls, seconds=time.perf_counter() - started,
    )
