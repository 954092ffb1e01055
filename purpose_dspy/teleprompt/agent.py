"""PurposeTeleprompter: compile a `PurposeAgent` from its own rollouts on a task set's train split.

`compile(student, *, trainset, valset=None)` follows DSPy's contract and never mutates `student`:

1. **before**   the student on the valset, actor-only (the paired baseline the gate compares successes of);
2. **rollouts** the student on the trainset, with exploration, so it finds its own first successes;
3. **actor**    step demos from the best successful trajectories (success, then Φ gain, then fewer
                steps), loops erased, each with its provenance; the compiled actor keeps them as a
                pool and each call sees the few nearest to its state (`Actor.demos_for`);
4. **critic**   the meta-judge grades a sample of the critic's judgments; kept ones become the
                critic's calibration demos, rejected ones failure-pattern memory cards. The
                self-taught evaluator plants wrong judgments first: if the meta-judge cannot tell them
                from right ones, only its Python checks are trusted;
5. **memory**   the distiller turns winning trajectories into memory cards (through MemoryCI);
6. **after**    the compiled program on the valset, actor-only (the gate judges by success, not Φ).

Every phase logs one line and stays inside one LM-call budget (`max_lm_calls`, the final evaluation's
share set aside up front). With `run_dir`, each finished rollout and judgment is checkpointed, so an
interrupted compile run again with the same arguments (same `run_dir`) redoes only what had not
finished; each distinct job gets its own subdirectory, named by a hash of what determines it.
Temperature-0 LMs and the seed make a compile reproducible.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import dspy
from pydantic import Field

from purpose_dspy.errors import UsageError
from purpose_dspy.experience import Experience
from purpose_dspy.memory.cards import MemoryCard, Provenance
from purpose_dspy.metrics import SplitMetrics, TaskScore
from purpose_dspy.programs.actor import Actor
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.programs.critic import PurposeCritic
from purpose_dspy.programs.distiller import Distiller, rank_trajectories
from purpose_dspy.programs.meta_judge import MetaJudge, failure_pattern
from purpose_dspy.programs.self_taught_evaluator import (
    SelfTaughtEvaluator,
    applicable_flaws,
    discrimination,
)
from purpose_dspy.runtime.budget import LMBudget
from purpose_dspy.runtime.config import RunConfig
from purpose_dspy.runtime.orchestrator import render_history
from purpose_dspy.runtime.rollouts import run_tasks
from purpose_dspy.runtime.trace import traced_copy
from purpose_dspy.safeguards import PhiStore
from purpose_dspy.teleprompt.base import (
    BudgetConfig,
    BudgetedTeleprompter,
    CompileReport,
    DemoSource,
    interleave,
    task_of,
)
from purpose_dspy.teleprompt.checkpoint import Checkpoint
from purpose_dspy.types import (
    LMCall,
    PurposeScore,
    Role,
    RunResult,
    Task,
    Trajectory,
    Transition,
)

logger = logging.getLogger(__name__)


class CompileConfig(BudgetConfig):
    """How the agent's compile spends its budget and what it keeps."""

    explore: float = Field(0.3, ge=0, le=1, description="Exploration rate of the train rollouts (see RunConfig.explore).")
    max_actor_demos: int = Field(48, ge=0, description="Size of the actor's demo pool.")
    demos_per_call: int = Field(3, ge=0, description="Pool demos each actor call is shown (the nearest ones).")
    max_critic_demos: int = Field(8, ge=0, description="Calibration demos kept for the critic.")
    judge_sample: int = Field(8, ge=0, description="Critic judgments the meta-judge grades.")
    contrast_pairs: int = Field(4, ge=0, description="Planted wrong judgments used to test the meta-judge.")
    min_judge_discrimination: float = Field(
        0.75, ge=0, le=1, description="Share of planted wrong judgments the meta-judge must reject for its LM grades to count."
    )
    distill: bool = Field(True, description="Let the distiller propose memory cards from the winning trajectories.")
    distill_top_k: int = Field(3, gt=0, description="Trajectories the distiller reads.")
    run: RunConfig = Field(default_factory=RunConfig, description=(
        "How each rollout runs: safeguards, history window, observation cap. Its step limit comes from the "
        "examples' `max_steps`, its exploration from `explore` (train rollouts only), its seed from `seed`."))


def task_examples(tasks: list[Task], *, purpose: str = "{env_purpose}", max_steps: int = 20) -> list[dspy.Example]:
    """Tasks as `dspy.Example`s, the form `compile(trainset=..., valset=...)` takes."""
    return [dspy.Example(task=t, purpose=purpose, max_steps=max_steps).with_inputs("task", "purpose") for t in tasks]


def loop_erased(trajectory: Trajectory) -> list[Transition]:
    """The steps of a trajectory with every detour back to an earlier state cut out (and failed steps)."""
    path: list[Transition] = []
    for step in trajectory.steps:
        if step.action is None:
            continue
        seen = [p.before.observation for p in path]
        if step.before.observation in seen:
            del path[seen.index(step.before.observation):]
        path.append(step)
    return path


class PurposeTeleprompter(BudgetedTeleprompter):
    """Compiles a `PurposeAgent` (actor demos, critic calibration demos, a memory snapshot)."""

    def __init__(
        self,
        lms: dict[Role, Any],
        config: CompileConfig | None = None,
        *,
        run_dir: str | Path | None = None,
        judge: MetaJudge | None = None,
        evaluator: SelfTaughtEvaluator | None = None,
        distiller: Distiller | None = None,
        make_environment: Any = None,
    ) -> None:
        super().__init__()
        if missing := {"actor", "critic"} - set(lms):
            raise UsageError(f"PurposeTeleprompter needs LMs for roles {sorted(missing)}")
        self.lms = lms
        self.config = config or CompileConfig()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.judge = judge or MetaJudge()
        self.evaluator = evaluator or SelfTaughtEvaluator()
        self.distiller = distiller or Distiller(top_k=self.config.distill_top_k)
        self.make_environment = make_environment
        self.report = CompileReport()

    # -- the contract -------------------------------------------------------------------------
    def compile(self, student: PurposeAgent, *, trainset: list[dspy.Example], teacher: Any = None,
                valset: list[dspy.Example] | None = None, **kwargs: Any) -> PurposeAgent:
        started = time.perf_counter()
        cfg = self.config
        ckpt, budget, report = self._start(self._job_key(student, trainset, valset), trainset, "task_examples")
        phi_store = PhiStore(Path(report.run_dir) / "phi" if report.run_dir else None)

        # 1. the student on the valset: the paired baseline
        self._baseline(lambda: self._evaluate("before", student, valset, budget, ckpt, phi_store), valset, budget)

        # 2. rollouts of the student on the trainset (exploring)
        train = self._rollouts("train", student, trainset, budget, ckpt, phi_store, explore=cfg.explore)
        trajectories = [r.trajectory for r in train]
        report.train = SplitMetrics.of("train", [TaskScore.of(r) for r in train])
        logger.info("rollouts: %s", report.train.row())

        program = student.deepcopy()
        # 3. actor demos from the best successful trajectories
        actor_demos, sources = self._actor_demos(trajectories)
        program.actor.act.demos = actor_demos
        program.actor.demos_per_call = cfg.demos_per_call
        report.demos = sources
        logger.info("actor: %d step demos from %d successful trajectories", len(actor_demos),
                    len({s.trajectory_id for s in sources}))

        # 4. critic calibration through the meta-judge (tested on planted wrong judgments first)
        critic_demos, critic_sources, failures = self._calibrate(trajectories, budget, ckpt, report)
        program.critic.judge.demos = critic_demos
        report.demos += critic_sources

        # 5. memory: distilled cards plus the meta-judge's failure patterns
        report.memory_cards = self._memory(trajectories, failures, budget, ckpt)

        # 6. the compiled program on the valset
        self._final(lambda: self._evaluate("after", program, valset, budget, ckpt, phi_store), valset, budget, started)
        phi_store.close()
        program._compiled = True
        return program

    # -- phases --------------------------------------------------------------------------------
    def _rollouts(self, phase: str, agent: PurposeAgent, examples: list[dspy.Example], budget: LMBudget,
                  ckpt: Checkpoint, phi_store: PhiStore, *, explore: float = 0.0, score_phi: bool = True) -> list[RunResult]:
        tasks = [self._task(e) for e in examples]
        max_steps = int(examples[0].get("max_steps", 20))
        purpose = str(examples[0].get("purpose", "{env_purpose}"))
        config = self.config.run.model_copy(update={"max_steps": max_steps, "explore": explore, "seed": self.config.seed,
                                                    "score_phi": score_phi and self.config.run.score_phi})
        results = run_tasks(
            agent, tasks, lms=self.lms, config=config, purpose=purpose,
            num_threads=self.config.num_threads, budget=budget, phi_store=phi_store,
            finished=lambda t: self._restore(ckpt, f"{phase}/{t.task_id}"),
            on_result=lambda t, r: ckpt.put(f"{phase}/{t.task_id}", r.model_dump(mode="json")),
            desc=phase, progress=self.config.progress,
            **({"make_environment": self.make_environment} if self.make_environment else {}),
        )
        done = [r for r in results if r is not None]
        self._account(phase, [c for r in done for c in r.trajectory.lm_calls], budget)
        return done

    def _evaluate(self, phase: str, agent: PurposeAgent, valset: list[dspy.Example], budget: LMBudget,
                  ckpt: Checkpoint, phi_store: PhiStore) -> SplitMetrics:
        """Success on the valset, actor-only: the critic's Φ is not needed to judge by the environment."""
        results = self._rollouts(phase, agent, valset, budget, ckpt, phi_store, score_phi=False)
        return SplitMetrics.of(str(self._task(valset[0]).split), [TaskScore.of(r) for r in results])

    def _actor_demos(self, trajectories: list[Trajectory]) -> tuple[list[dspy.Example], list[DemoSource]]:
        demos: list[dspy.Example] = []
        sources: list[DemoSource] = []
        seen: set[tuple[str, str]] = set()
        for traj in rank_trajectories([t for t in trajectories if t.success]):
            path = loop_erased(traj)
            for i, step in enumerate(path):
                if len(demos) >= self.config.max_actor_demos:
                    return demos, sources
                assert step.action is not None
                if (step.before.observation, step.action.text) in seen:
                    continue
                seen.add((step.before.observation, step.action.text))
                demos.append(Actor.demo(
                    traj.purpose, step.before, step.action.text,
                    thought=f"'{step.action.text}' was on a successful path from this state before.",
                    history=render_history(path[:i], 6, 160),
                ))
                sources.append(DemoSource(component="actor", index=len(demos) - 1, trajectory_id=traj.id,
                                          step=step.index, task_id=traj.task.task_id))
        return demos, sources

    def _calibrate(self, trajectories: list[Trajectory], budget: LMBudget, ckpt: Checkpoint,
                   report: CompileReport) -> tuple[list[dspy.Example], list[DemoSource], list[MemoryCard]]:
        """The meta-judge grades a sample; planted wrong judgments decide whether its LM grades count."""
        calls: list[LMCall] = []
        judge_lm = self.lms.get("judge", self.lms["critic"])
        with dspy.context(lm=traced_copy(judge_lm, "judge", calls), adapter=dspy.JSONAdapter()):
            verdicts = self._grade_sample(self._judge_sample(trajectories), budget, ckpt, calls)
            planted = self._plant(verdicts, budget, ckpt, calls)
        self._account("judge", calls, budget)
        rate = discrimination([(True, p["keep"]) for p in planted])
        trusted = rate is not None and rate >= self.config.min_judge_discrimination
        kept, failures = [], []
        for traj, i, v in verdicts:
            step = traj.steps[i]
            if v["keep"] if trusted else all(v["checks"].values()):
                kept.append((traj, i, step))
            else:
                failures.append(MemoryCard(
                    kind="failure_pattern", roles=("critic",), families=(traj.task.env_id,),
                    text=failure_pattern(step.score, v["reasons"]),
                    provenance=Provenance(trajectory_ids=(traj.id,), created_by="meta-judge"),
                ))
        report.judge = {
            "graded": len(verdicts), "kept": len(kept), "rejected": len(verdicts) - len(kept),
            "planted_wrong": len(planted), "planted_rejected": sum(not p["keep"] for p in planted),
            "discrimination": rate, "lm_grades_trusted": trusted,
            "flaws_missed": sorted({p["flaw"] for p in planted if p["keep"]}),
        }
        logger.info("critic: meta-judge graded %d judgments, kept %d; planted wrong rejected %s (LM grades %s)",
                    len(verdicts), len(kept), f"{rate:.0%}" if rate is not None else "n/a",
                    "trusted" if trusted else "not trusted: Python checks decide")
        return *self._calibration_demos(kept), failures

    def _judge_sample(self, trajectories: list[Trajectory]) -> list[tuple[Trajectory, int]]:
        """Scored steps, seeded shuffle, alternating ones where the environment's progress rose and ones where it did not."""
        rng = random.Random(f"{self.config.seed}/judge")
        candidates = [(t, i) for t in trajectories for i, s in enumerate(t.steps)
                      if s.action is not None and "unscored" not in s.score.flags]
        rng.shuffle(candidates)
        rising = [c for c in candidates if _progress_delta(*c) > 0]
        flat = [c for c in candidates if _progress_delta(*c) <= 0]
        return interleave(rising, flat)[: self.config.judge_sample]

    def _grade_sample(self, sample: list[tuple[Trajectory, int]], budget: LMBudget, ckpt: Checkpoint,
                      calls: list[LMCall]) -> list[tuple[Trajectory, int, dict[str, Any]]]:
        verdicts = []
        for traj, i in sample:
            key = f"judge/{traj.id}/{i}"
            if key not in ckpt:
                if not budget.allows(len(calls) + 1):  # calls so far are charged after the phase
                    break
                ckpt.put(key, self._grade(traj, i, traj.steps[i].score, calls))
            else:
                budget.charge(ckpt.get(key)["lm_calls"])  # a resumed compile spends what the first one did
            verdicts.append((traj, i, ckpt.get(key)))
        return verdicts

    def _plant(self, verdicts: list[tuple[Trajectory, int, dict[str, Any]]], budget: LMBudget, ckpt: Checkpoint,
               calls: list[LMCall]) -> list[dict[str, Any]]:
        """The self-taught evaluator writes a wrong judgment next to steps Python's checks pass (the LM's own
        keep may be rare on a small model), and the meta-judge grades it: can it tell?"""
        planted = []
        kept_steps = [(t, i) for t, i, v in verdicts if all(v["checks"].values()) and applicable_flaws(t.steps[i].score)]
        for n, (traj, i) in enumerate(kept_steps[: self.config.contrast_pairs]):
            key = f"contrast/{traj.id}/{i}"
            if key not in ckpt:
                if not budget.allows(len(calls) + 1):
                    break
                first = len(calls)
                pred = self.evaluator.plant(traj, i, n)
                graded = self._grade(traj, i, pred.wrong, calls)
                ckpt.put(key, {"flaw": pred.flaw, **graded, "lm_calls": len(calls) - first})
            else:
                budget.charge(ckpt.get(key)["lm_calls"])
            planted.append(ckpt.get(key))
        return planted

    def _calibration_demos(self, kept: list[tuple[Trajectory, int, Transition]]) -> tuple[list[dspy.Example], list[DemoSource]]:
        """Alternate rising and non-rising judgments so both ends of the scale show."""
        ordered = interleave([k for k in kept if k[2].score.delta > 0], [k for k in kept if k[2].score.delta <= 0])
        demos, sources = [], []
        for traj, i, step in ordered[: self.config.max_critic_demos]:
            demos.append(PurposeCritic.demo(traj.purpose, step.before, step.action.text, step.after, step.score))
            sources.append(DemoSource(component="critic", index=len(demos) - 1, trajectory_id=traj.id, step=i,
                                      task_id=traj.task.task_id))
        return demos, sources

    def _grade(self, traj: Trajectory, i: int, score: PurposeScore, calls: list[LMCall]) -> dict[str, Any]:
        first = len(calls)
        step = traj.steps[i]
        before_progress = traj.steps[i - 1].progress if i else (0.0 if step.progress is not None else None)
        pred = self.judge(purpose=traj.purpose, before=step.before, action=step.action.text if step.action else "",
                          after=step.after, score=score, progress_before=before_progress, progress_after=step.progress)
        return {"keep": bool(pred.keep), "checks": dict(pred.checks), "reasons": list(pred.reasons),
                "grade": pred.grade.model_dump() if pred.grade is not None else None, "error": pred.error,
                "lm_calls": len(calls) - first}

    def _memory(self, trajectories: list[Trajectory], failures: list[MemoryCard], budget: LMBudget,
                ckpt: Checkpoint) -> list[dict[str, Any]]:
        if "memory" in ckpt:
            budget.charge(ckpt.get("memory")["lm_calls"])
            return ckpt.get("memory")["cards"]
        winners = [t for t in trajectories if t.success]
        experience = Experience(None)
        calls: list[LMCall] = []
        try:
            for card in failures:
                experience.ci.propose(card)
            if self.config.distill and winners and budget.allows(1):
                family = winners[0].task.env_id
                lm = self.lms.get("optimizer", self.lms["actor"])
                with dspy.context(lm=traced_copy(lm, "optimizer", calls), adapter=dspy.JSONAdapter()):
                    experience.distill(winners, self.distiller, family=family)
            cards = [c.model_dump(mode="json") for c in experience.memory.cards() if c.status not in ("quarantined", "retired")]
        finally:
            experience.close()
        self._account("memory", calls, budget)
        logger.info("memory: %d cards in the snapshot (%d failure patterns)", len(cards), len(failures))
        ckpt.put("memory", {"cards": cards, "lm_calls": len(calls)})
        return cards

    # -- bookkeeping ---------------------------------------------------------------------------
    def _account(self, phase: str, calls: list[LMCall], budget: LMBudget) -> None:
        if phase in ("judge", "memory"):  # rollouts charge the budget as they go (run_tasks)
            budget.charge(len(calls))
        self._record_phase(phase, calls)
        logger.info("%s: %d LM calls (%d spent of %s)", phase, len(calls), budget.spent, budget.limit or "unlimited")

    @staticmethod
    def _task(example: dspy.Example) -> Task:
        return task_of(example, Task, "task_examples")

    @staticmethod
    def _restore(ckpt: Checkpoint, key: str) -> RunResult | None:
        value = ckpt.get(key)
        return RunResult.model_validate(value) if value is not None else None

    def _job_key(self, student: PurposeAgent, trainset: list[dspy.Example], valset: list[dspy.Example] | None) -> str:
        """Everything that determines the compile's results: a different value means a different job."""
        return self._job_hash({
            "student": student.dump_state(),
            "train": [self._task(e).task_id for e in trainset],
            "val": [self._task(e).task_id for e in valset or []],
            "purpose": [str(e.get("purpose", "")) for e in trainset[:1]],
            "max_steps": [int(e.get("max_steps", 20)) for e in trainset[:1] + (valset or [])[:1]],
            "lms": {role: str(getattr(lm, "model", lm)) for role, lm in sorted(self.lms.items())},
        })


def _progress_delta(traj: Trajectory, i: int) -> float:
    now = traj.steps[i].progress
    before = traj.steps[i - 1].progress if i else 0.0
    return (now or 0.0) - (before or 0.0) if now is not None else 0.0
