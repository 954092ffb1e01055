"""What both teleprompters share: the budget settings, the report, and the compile's prologue and bookkeeping.

A subclass writes its phases; `BudgetedTeleprompter` gives it the job's checkpoint, LM budget and
report (`_start`), records each phase's LM calls (`_record_phase`), runs the last phase through the
promotion gate (`_final`; the parent is returned when the gate refuses: `_gated`), names the job by a
hash of what determines it (`_job_hash`) and reads the task out of an example (`_task_of`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import dspy
from dspy.teleprompt import Teleprompter
from pydantic import BaseModel, ConfigDict, Field

from purpose_dspy.errors import UsageError
from purpose_dspy.metrics import SplitMetrics, summed_by_role
from purpose_dspy.runtime.budget import LMBudget
from purpose_dspy.teleprompt.checkpoint import Checkpoint
from purpose_dspy.teleprompt.gate import GateConfig, GateDecision, staged
from purpose_dspy.types import LMCall, usage_by_role

T = TypeVar("T", bound=BaseModel)
logger = logging.getLogger(__name__)


class BudgetConfig(BaseModel):
    """How a compile spends its LM calls; every teleprompter's config starts from these."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_lm_calls: int | None = Field(None, gt=0, description="LM calls for the whole compile; None = unlimited.")
    num_threads: int = Field(1, gt=0, description="Rollouts run at once (one environment per thread).")
    seed: int = Field(0, description="Seeds exploration and every sample the compile draws.")
    progress: bool = Field(True, description="Show progress bars (stderr).")
    gate: GateConfig = Field(default_factory=GateConfig, description=(
        "When the compiled program may replace its parent (the student) and when its valset run stops early; "
        "`compile` returns a copy of the student when the gate refuses (the refused program: `candidate`)."))


class DemoSource(BaseModel):
    """Where one demo came from."""

    component: str
    index: int = Field(description="Position in the component's demo pool.")
    trajectory_id: str
    step: int
    task_id: str


class CompileReport(BaseModel):
    """What a compile did and what it cost; the artifact's manifest is built from it."""

    before: SplitMetrics | None = None
    after: SplitMetrics | None = None
    train: SplitMetrics | None = None
    gate: GateDecision | None = Field(
        None, description="The promotion gate's decision; None: there was no valset, the gate did not run.")
    demos: list[DemoSource] = Field(default_factory=list)
    judge: dict[str, Any] = Field(default_factory=dict)
    memory_cards: list[dict[str, Any]] = Field(default_factory=list)
    lm_calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    phases: dict[str, dict[str, float]] = Field(default_factory=dict)
    by_role: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Over all phases, per role: calls, prompt_tokens, completion_tokens, cached_tokens.")
    budget_exhausted: bool = Field(False, description="Some rollout, judgment or distillation was skipped for lack of LM calls.")
    resumed_units: int = Field(0, description="Units of work (rollouts, judgments) reused from an interrupted run.")
    run_dir: str | None = Field(None, description="Where this compile's checkpoint lives (None: nowhere).")

    def finish(self, budget: LMBudget, started: float) -> None:
        """The closing figures: what the budget spent, tokens over all phases, wall time since `started`."""
        self.budget_exhausted = budget.ran_out
        self.lm_calls = budget.spent
        self.tokens = int(sum(p["tokens"] for p in self.phases.values()))
        self.seconds = round(time.perf_counter() - started, 2)


class BudgetedTeleprompter(Teleprompter):
    """DSPy's `Teleprompter` with one LM budget, a resumable checkpoint and a report per compile."""

    config: BudgetConfig
    run_dir: Path | None
    report: CompileReport
    candidate: dspy.Module | None = None  # the program the last compile built, promoted or not

    def _start(self, job: str, trainset: list[dspy.Example], helper: str) -> tuple[Checkpoint, LMBudget, CompileReport]:
        """The prologue of every compile: check the trainset, open the job's checkpoint, a fresh budget and report.

        One directory per job under `run_dir`: the same compile run again resumes, a different one starts fresh.
        """
        if not trainset:
            raise UsageError(f"compile needs a non-empty trainset (dspy.Examples with a `task`; see {helper})")
        job_dir = self.run_dir / job if self.run_dir is not None else None
        ckpt = Checkpoint(job_dir, job)
        self.report = CompileReport(resumed_units=len(ckpt), run_dir=str(job_dir) if job_dir else None)
        return ckpt, LMBudget(self.config.max_lm_calls), self.report

    def _baseline(self, evaluate: Callable[[], SplitMetrics], valset: list[dspy.Example] | None,
                  budget: LMBudget) -> None:
        """Phase 1: the student on the valset (the gate's paired baseline); its cost is held back for the last phase."""
        if valset:
            self.report.before = evaluate()
            budget.hold(self.report.before.lm_calls)  # the final evaluation will cost about as much

    def _final(self, evaluate: Callable[[list[dspy.Example]], SplitMetrics], valset: list[dspy.Example] | None,
               budget: LMBudget, started: float) -> None:
        """The last phase: the compiled program on (part of) the valset, with what was held back, and the gate's
        decision against the baseline (`gate.staged`: the first stage, then the rest unless clearly worse);
        then the closing figures. `evaluate(examples)` runs the compiled program on those valset examples."""
        budget.release()
        if valset and self.report.before is not None:
            self.report.after, self.report.gate = staged(evaluate, valset, self.report.before, self.config.gate)
            logger.info("valset before: %s", self.report.before.row())
            logger.info("valset after:  %s", self.report.after.row())
            logger.info("gate: %s", self.report.gate.reason)
        self.report.finish(budget, started)

    def _gated(self, program: dspy.Module, student: dspy.Module) -> dspy.Module:
        """What `compile` returns: `program`, unless the gate refused it; then a copy of the student (the parent),
        with `program` kept on `self.candidate` for a caller to inspect or save unpromoted."""
        program._compiled = True
        self.candidate = program
        gate = self.report.gate
        if gate is None or gate.promoted:
            return program
        logger.warning("the compiled program was refused, compile returns the parent: %s", gate.reason)
        parent = student.deepcopy()
        parent._compiled = True
        return parent

    def _record_phase(self, phase: str, calls: list[LMCall], seconds: float | None = None) -> None:
        """Add a phase's LM calls, tokens and seconds (default: the calls' own latency) to the report, and its
        calls' tokens per role to `by_role`."""
        self.report.by_role = summed_by_role([self.report.by_role, usage_by_role(calls)])
        entry = self.report.phases.setdefault(phase, {"lm_calls": 0, "tokens": 0, "seconds": 0.0})
        entry["lm_calls"] += len(calls)
        entry["tokens"] += sum(c.tokens for c in calls)
        entry["seconds"] = round(entry["seconds"] + (sum(c.seconds for c in calls) if seconds is None else seconds), 2)

    def _job_hash(self, job: dict[str, Any]) -> str:
        """A name for everything that determines the compile's results (with the config, minus how it shows)."""
        # The gate decides from the episodes only: another alpha reuses the checkpoint (and old job names stay).
        # Where the rollouts run does not change them either (`backend`: the same results on local and ray).
        job = {**job, "config": self.config.model_dump(exclude={"progress", "num_threads", "gate", "backend",
                                                                "ray_address"})}
        return hashlib.sha256(json.dumps(job, sort_keys=True, default=str).encode()).hexdigest()[:24]


def task_of(example: dspy.Example, kind: type[T], helper: str) -> T:
    """The example's `task` as a `kind` (a dict from a checkpoint is validated back into one)."""
    task = example.get("task") if hasattr(example, "get") else None
    if isinstance(task, dict):
        task = kind.model_validate(task)
    if not isinstance(task, kind):
        raise UsageError(f"every trainset/valset example needs a `task` ({kind.__name__}); build them with {helper}()")
    return task


def interleave(a: list, b: list) -> list:
    """a0, b0, a1, b1, ... then the rest of the longer list."""
    out = [x for pair in zip(a, b) for x in pair]
    return out + a[len(b):] + b[len(a):]
