"""EditorTeleprompter: compile an `Editor` from its own work on a writing task set's train split.

`compile(student, *, trainset, valset=None)` follows DSPy's contract and never mutates `student`:

1. **before**   the student on the valset, no archive (the paired baseline of the promotion gate);
2. **train**    the student on the trainset with an archive that grows as it goes, as in use: each
                task sees the accepted answers to the most similar earlier tasks;
3. **draft**    accepted answers (the gate passed: every constraint measured as met, composite at the
                target) become the draft's demo pool, best composite first; each call sees the nearest;
4. **critique** calibration demos labelled by the verifier: the counts and per-constraint verdicts are
                what a program measured (never the LM's claim), the critique lists the measured
                failures; passing and failing outputs alternate, most accurate critiques first;
5. **refine**   refinements that raised the composite, biggest gain first;
6. **after**    the compiled editor on the valset, no archive, through the promotion gate (`gate.py`): when
                it is not shown better than the student, `compile` returns a copy of the student.

The verifier plays the meta-judge's part here: whatever a program can check is checked, and the LM's
claims are only scored against it (`report.judge`: the critique's claim accuracy). One LM-call budget
covers everything, the final evaluation's share held back; with `run_dir`, each finished task is
checkpointed and a rerun of the same compile resumes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import dspy
from pydantic import Field
from tqdm.auto import tqdm

from purpose_dspy.metrics import SplitMetrics
from purpose_dspy.programs.editor import Editor
from purpose_dspy.runtime.budget import LMBudget
from purpose_dspy.runtime.editing import EditResult, edit
from purpose_dspy.teleprompt.base import (
    BudgetConfig,
    BudgetedTeleprompter,
    CompileReport,
    DemoSource,
    interleave,
    task_of,
)
from purpose_dspy.teleprompt.checkpoint import Checkpoint
from purpose_dspy.writing.archive import Archive
from purpose_dspy.writing.constraints import count_sentences, count_words
from purpose_dspy.writing.review import Review
from purpose_dspy.writing.tasks import WritingTask

logger = logging.getLogger(__name__)


def writing_examples(tasks: list[WritingTask]) -> list[dspy.Example]:
    """Writing tasks as `dspy.Example`s, the form `compile(trainset=..., valset=...)` takes."""
    return [dspy.Example(task=t).with_inputs("task") for t in tasks]


class EditorCompileConfig(BudgetConfig):
    """How the editor's compile spends its budget and how many demos each of its predictors keeps."""

    max_draft_demos: int = Field(48, ge=0, description="Size of the draft's demo pool (accepted answers).")
    max_critique_demos: int = Field(8, ge=0, description="Verifier-labelled critiques kept.")
    max_refine_demos: int = Field(8, ge=0, description="Score-raising refinements kept.")


class EditorTeleprompter(BudgetedTeleprompter):
    """Compiles an `Editor` (draft, critique and refine demo pools) within one LM-call budget."""

    def __init__(self, lm: Any, config: BudgetConfig | None = None, *, run_dir: Any = None) -> None:
        super().__init__()
        self.lm = lm
        # A shared BudgetConfig (e.g. the CLI's compile flags) keeps its budget fields; the demo sizes default.
        shared = (config or BudgetConfig()).model_dump(include=set(BudgetConfig.model_fields))
        self.config = config if isinstance(config, EditorCompileConfig) else EditorCompileConfig(**shared)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.report = CompileReport()

    def compile(self, student: Editor, *, trainset: list[dspy.Example], teacher: Any = None,
                valset: list[dspy.Example] | None = None, **kwargs: Any) -> Editor:
        started = time.perf_counter()
        ckpt, budget, report = self._start(self._job_key(student, trainset, valset), trainset, "writing_examples")
        per_task = 2 * student.max_iterations  # calls of one task without retries: the unit the budget is checked in

        # 1. the student on the valset: the paired baseline
        self._baseline(lambda: self._evaluate("before", student, valset, budget, ckpt, per_task), valset, budget)

        # 2. the student on the trainset, with a growing archive
        train = self._run("train", student, trainset, budget, ckpt, per_task, archive=Archive(None))
        report.train = SplitMetrics.of("train", [r.score() for r in train])
        logger.info("train: %s", report.train.row())

        program = student.deepcopy()
        # 3-5. demo pools from the train work, labelled by the verifier
        program.draft.demos, sources = self._draft_demos(train)
        critique_demos, critique_sources = self._critique_demos(train)
        program.critique.demos = critique_demos
        program.refine.demos, refine_sources = self._refine_demos(train)
        report.demos = sources + critique_sources + refine_sources
        report.judge = _claim_accuracy(train)
        logger.info("editor: %d draft, %d critique, %d refine demos; the critique's claims were %s right",
                    len(program.draft.demos), len(program.critique.demos), len(program.refine.demos),
                    f"{report.judge['accuracy']:.0%}" if report.judge["accuracy"] is not None else "never")

        # 6. the compiled editor on the valset, in stages, through the gate (refused: the parent is returned)
        self._final(lambda part: self._evaluate("after", program, part, budget, ckpt, per_task), valset, budget, started)
        return self._gated(program, student)

    # -- phases --------------------------------------------------------------------------------
    def _run(self, phase: str, editor: Editor, examples: list[dspy.Example], budget: LMBudget, ckpt: Checkpoint,
             per_task: int, archive: Archive | None = None) -> list[EditResult]:
        results = []
        for example in tqdm(examples, desc=phase, unit="task", disable=not self.config.progress, leave=False):
            task = _task(example)
            key = f"{phase}/{task.task_id}"
            if key in ckpt:
                result = EditResult.model_validate(ckpt.get(key))
                if archive is not None and result.passed:  # rebuild the archive as the first run grew it
                    best = result.rounds[result.best]
                    archive.admit(task_id=task.task_id, form=task.form, task=task.text(), output=result.output,
                                  score=best.composite, target=result.target, features=best.features)
            else:
                if not budget.allows(per_task):
                    logger.info("%s: LM-call budget spent; %s and later tasks skipped", phase, task.task_id)
                    break
                result = edit(task, lm=self.lm, editor=editor, archive=archive, exclude_own=True)
                ckpt.put(key, result.model_dump(mode="json"))
            budget.charge(len(result.lm_calls))
            self._account(phase, result)
            results.append(result)
        return results

    def _evaluate(self, phase: str, editor: Editor, valset: list[dspy.Example], budget: LMBudget, ckpt: Checkpoint,
                  per_task: int) -> SplitMetrics:
        results = self._run(phase, editor, valset, budget, ckpt, per_task)
        return SplitMetrics.of(_task(valset[0]).split, [r.score() for r in results])

    def _draft_demos(self, results: list[EditResult]) -> tuple[list[dspy.Example], list[DemoSource]]:
        accepted = sorted((r for r in results if r.passed), key=lambda r: -r.rounds[r.best].composite)
        demos, sources = [], []
        for r in accepted[: self.config.max_draft_demos]:
            demos.append(dspy.Example(task=r.task, archive_examples="", output=r.output).with_inputs("task", "archive_examples"))
            sources.append(_source("editor.draft", len(demos) - 1, r, r.best))
        return demos, sources

    def _critique_demos(self, results: list[EditResult]) -> tuple[list[dspy.Example], list[DemoSource]]:
        usable = [(r, rv) for r in results for rv in r.rounds if rv.claims is not None and rv.output]
        usable.sort(key=lambda pair: -(pair[1].claim_accuracy or 0.0))  # stable: task order among equals
        ordered = interleave([p for p in usable if p[1].constraints_pass], [p for p in usable if not p[1].constraints_pass])
        demos, sources = [], []
        for r, rv in ordered[: self.config.max_critique_demos]:
            demos.append(_verified_critique(r.task, rv))
            sources.append(_source("editor.critique", len(demos) - 1, r, rv.iteration))
        return demos, sources

    def _refine_demos(self, results: list[EditResult]) -> tuple[list[dspy.Example], list[DemoSource]]:
        gains = [(b.composite - a.composite, r, a, b) for r in results for a, b in zip(r.rounds, r.rounds[1:])
                 if b.composite > a.composite and b.output]
        gains.sort(key=lambda g: -g[0])
        demos, sources = [], []
        for _, r, a, b in gains[: self.config.max_refine_demos]:
            demos.append(dspy.Example(task=r.task, previous_output=a.output, critique=a.feedback(), output=b.output)
                         .with_inputs("task", "previous_output", "critique"))
            sources.append(_source("editor.refine", len(demos) - 1, r, b.iteration))
        return demos, sources

    # -- bookkeeping ---------------------------------------------------------------------------
    def _account(self, phase: str, result: EditResult) -> None:
        self._record_phase(phase, result.lm_calls, seconds=result.seconds)

    def _job_key(self, student: Editor, trainset: list[dspy.Example], valset: list[dspy.Example] | None) -> str:
        """Everything that determines the compile's results: a different value means a different job."""
        return "editor-" + self._job_hash({
            "student": student.dump_state(), "rubric": student.rubric.model_dump(), "iterations": student.max_iterations,
            "train": [_task(e).task_id for e in trainset], "val": [_task(e).task_id for e in valset or []],
            "tasks": hashlib.sha256("".join(_task(e).text() for e in trainset + (valset or [])).encode()).hexdigest(),
            "lm": str(getattr(self.lm, "model", self.lm)),
        })


def _task(example: dspy.Example) -> WritingTask:
    return task_of(example, WritingTask, "writing_examples")


def _verified_critique(task: str, rv: Review) -> dspy.Example:
    """A critique demo whose checkable fields are what a program measured, not what the LM claimed."""
    claims = rv.claims or {}
    notes = [f"{f}" for f in rv.measured_failures] or ["It meets every constraint as written."]
    return dspy.Example(
        task=task, output=rv.output, word_count=count_words(rv.output), sentence_count=count_sentences(rv.output),
        constraints_met=list(rv.constraints_met), is_on_brief=bool(claims.get("is_on_brief")),
        has_concrete_detail=bool(claims.get("has_concrete_detail")), avoids_cliches=bool(claims.get("avoids_cliches")),
        overall_score=min(10, max(1, round(rv.composite))), critique=" ".join(notes),
    ).with_inputs("task", "output")


def _claim_accuracy(results: list[EditResult]) -> dict[str, Any]:
    checks = [c for r in results for rv in r.rounds for c in rv.checks]
    right = sum(c.correct for c in checks)
    return {"verifier": "python", "claims_checked": len(checks), "claims_right": right,
            "accuracy": round(right / len(checks), 4) if checks else None,
            "critiques_unusable": sum(rv.critique_error is not None for r in results for rv in r.rounds)}


def _source(component: str, index: int, result: EditResult, step: int) -> DemoSource:
    return DemoSource(component=component, index=index, trajectory_id=f"edit:{result.task_id}", step=step,
                      task_id=result.task_id)

