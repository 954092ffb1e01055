"""PurposeTeleprompter: compile a `PurposeAgent` from its own rollouts on a task set's train split.

`compile(student, *, trainset, valset=None)` follows DSPy's contract and never mutates `student`:

1. **before**   the student on the valset, actor-only (the paired baseline the gate compares successes of);
2. **rollouts** the student on the trainset, with exploration, so it finds its own first successes;
                then up to `rounds` more rollouts (another exploration seed) of the tasks still unsolved,
                each round guided by the paths and rules learned so far;
3. **actor**    each solved train task's shortest path (`TaskPaths`: the same task met again is shown its
                own step, alone), and cross-task demos only where their abstract situation and action
                template held in `min_support` train tasks (on a successful path, or where the train
                task's progress rose) and no train task did otherwise or went wrong there
                (`actor_demos.py`); a continuing compile adds to its parent's. Ranked by support: Φ
                gain is not used, the critic has not earned it on the embedded model;
4. **critic**   the meta-judge grades a sample of the critic's judgments; kept ones become the
                critic's calibration demos (where Φ moved as the env's progress did), rejected ones
                failure-pattern memory cards. Its LM grades count only if the LM keeps most verified
                honest judgments and rejects most planted wrong ones the Python checks miss
                (`calibration.py`); otherwise only the Python checks decide;
5. **memory**   the distiller turns winning trajectories into memory cards (through MemoryCI);
6. **after**    the compiled program on the valset, actor-only, in stages, through the gate (a paired
                one-sided sign test on the valset seeds); refused, `compile` returns the parent and
                keeps the refused program on `self.candidate`.

Every phase logs one line and stays inside one LM-call budget (`max_lm_calls`, the final evaluation's
share set aside up front). With `run_dir`, each finished rollout and judgment is checkpointed, so an
interrupted compile run again with the same arguments (same `run_dir`) redoes only what had not
finished; each distinct job gets its own subdirectory, named by a hash of what determines it.
Temperature-0 LMs and the seed make a compile reproducible.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dspy
from pydantic import Field

from purpose_dspy.errors import UsageError
from purpose_dspy.experience import Experience
from purpose_dspy.memory.cards import MemoryCard
from purpose_dspy.metrics import SplitMetrics, TaskScore
from purpose_dspy.programs.actor import Actor
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.programs.distiller import Distiller
from purpose_dspy.programs.meta_judge import MetaJudge
from purpose_dspy.programs.self_taught_evaluator import SelfTaughtEvaluator
from purpose_dspy.runtime.budget import LMBudget
from purpose_dspy.runtime.backends import Backend, open_backend
from purpose_dspy.runtime.config import RunConfig
from purpose_dspy.runtime.rollouts import run_tasks
from purpose_dspy.runtime.workers import WorkerLMs
from purpose_dspy.runtime.trace import traced_copy
from purpose_dspy.safeguards import PhiStore
from purpose_dspy.teleprompt.actor_demos import best_paths, merged_pool, pool_demos
from purpose_dspy.teleprompt.base import (
    BudgetConfig,
    BudgetedTeleprompter,
    CompileReport,
    DemoSource,
    task_of,
)
from purpose_dspy.teleprompt.calibration import Calibration
from purpose_dspy.teleprompt.checkpoint import Checkpoint
from purpose_dspy.types import (
    LMCall,
    Role,
    RunResult,
    Task,
    Trajectory,
)

if TYPE_CHECKING:
    from purpose_dspy.monitor import LimitGuard

logger = logging.getLogger(__name__)


class CompileConfig(BudgetConfig):
    """How the agent's compile spends its budget and what it keeps."""

    explore: float = Field(0.3, ge=0, le=1, description="Exploration rate of the train rollouts (see RunConfig.explore).")
    rounds: int = Field(2, ge=0, description=(
        "Extra rounds of train rollouts on the tasks not solved yet (exploring, another seed each round), "
        "inside the budget: the compile finds more first successes of its own."))
    max_actor_demos: int = Field(48, ge=0, description="Size of the actor's cross-task demo pool.")
    min_support: int = Field(2, ge=1, description=(
        "A cross-task demo is kept when good steps of at least this many train tasks took its action "
        "template in its situation and none contradicted it (teleprompt/actor_demos.py)."))
    demos_per_call: int = Field(3, ge=0, description="Pool demos each actor call is shown (the nearest ones).")
    follow_rules: int = Field(3, ge=0, description=(
        "Where a rule of the pool held on at least this many train tasks and never went wrong, the compiled "
        "actor takes its action without an LM call (0: always ask the LM, showing the rule). The gate judges "
        "the compiled program with it on."))
    max_critic_demos: int = Field(8, ge=0, description="Calibration demos kept for the critic.")
    judge_sample: int = Field(8, ge=0, description="Critic judgments the meta-judge grades.")
    contrast_pairs: int = Field(8, ge=0, description=(
        "Planted wrong judgments used to test the meta-judge (one per Python-verified sampled step)."))
    min_honest_kept: float = Field(0.6, ge=0, le=1, description=(
        "For the meta-judge's LM grades to count: the share of Python-verified honest judgments its LM alone keeps."))
    min_planted_rejected: float = Field(0.6, ge=0, le=1, description=(
        "For the meta-judge's LM grades to count: the share of planted wrong judgments the Python checks miss "
        "that its LM rejects."))
    min_trust_pairs: int = Field(8, ge=1, description=(
        "For the meta-judge's LM grades to count: the fewest graded items (verified honest judgments plus planted "
        "ones the checks miss) the two shares rest on."))
    distill: bool = Field(True, description="Let the distiller propose memory cards from the winning trajectories.")
    distill_top_k: int = Field(3, gt=0, description="Trajectories the distiller reads.")
    run: RunConfig = Field(default_factory=RunConfig, description=(
        "How each rollout runs: safeguards, history window, observation cap. Its step limit comes from the "
        "examples' `max_steps`, its exploration from `explore` (train rollouts only), its seed from `seed`."))
    backend: Backend = Field("local", description=(
        "Where the rollouts run: 'local' (threads here) or 'ray' (`num_threads` Ray actors, one environment and the "
        "LMs each; the teleprompter's `worker_lms` says how they build the LMs). Same results either way."))
    ray_address: str | None = Field(None, description=(
        "The Ray cluster to run on ('auto', '<head>:6379', 'ray://<head>:10001'); None: a local Ray started for "
        "the run with this machine's CPUs."))


def task_examples(tasks: list[Task], *, purpose: str = "{env_purpose}", max_steps: int = 20) -> list[dspy.Example]:
    """Tasks as `dspy.Example`s, the form `compile(trainset=..., valset=...)` takes."""
    return [dspy.Example(task=t, purpose=purpose, max_steps=max_steps).with_inputs("task", "purpose") for t in tasks]


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
        worker_lms: WorkerLMs | None = None,
        limit_guard: LimitGuard | None = None,
        candidate_version: str | None = None,
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
        self.worker_lms = worker_lms  # how a Ray worker builds `lms` (an LMConfig or an LMFactory)
        # A monitor's limits (`Monitor.guard(..., source="compile")`): checked before and after every rollout phase
        # and, on the local backend, at every step; each rollout recorded in its ledger, as the guard's version
        # (the parent's) or, for the compiled program's valset runs, as `candidate_version`.
        self.limit_guard, self.candidate_version = limit_guard, candidate_version
        self._backend: Any = None  # the rollouts' backend while a compile runs (None: threads here)
        self.report = CompileReport()

    # -- the contract -------------------------------------------------------------------------
    def compile(self, student: PurposeAgent, *, trainset: list[dspy.Example], teacher: Any = None,
                valset: list[dspy.Example] | None = None, **kwargs: Any) -> PurposeAgent:
        cfg = self.config
        with open_backend(cfg.backend, cfg.ray_address, workers=cfg.num_threads, lms=self.worker_lms) as backend:
            self._backend = backend  # the workers (their environments, their LMs) serve every phase of this compile
            try:
                return self._compile(student, trainset=trainset, valset=valset)
            finally:
                self._backend = None

    def _compile(self, student: PurposeAgent, *, trainset: list[dspy.Example],
                 valset: list[dspy.Example] | None) -> PurposeAgent:
        started = time.perf_counter()
        cfg = self.config
        ckpt, budget, report = self._start(self._job_key(student, trainset, valset), trainset, "task_examples")
        phi_store = PhiStore(Path(report.run_dir) / "phi" if report.run_dir else None)

        # 1. the student on the valset: the paired baseline
        self._baseline(lambda: self._evaluate("before", student, valset, budget, ckpt, phi_store), valset, budget)

        # 2. rollouts of the student on the trainset (exploring), then more rounds on the unsolved tasks
        train = self._rollouts("train", student, trainset, budget, ckpt, phi_store, explore=cfg.explore)
        report.train = SplitMetrics.of("train", [TaskScore.of(r) for r in train])
        logger.info("rollouts: %s", report.train.row())
        trajectories = [r.trajectory for r in train]
        trajectories += self._more_rounds(student, trainset, trajectories, budget, ckpt, phi_store)

        program = student.deepcopy()
        # 3. actor: each train task's best path, and the cross-task demos that hold across train tasks
        report.demos = self._actor_demos(program.actor, trajectories)

        # 4. critic calibration through the meta-judge (tested on planted wrong judgments first)
        critic_demos, critic_sources, failures = self._calibrate(trajectories, budget, ckpt, report)
        program.critic.judge.demos = critic_demos
        report.demos += critic_sources

        # 5. memory: distilled cards plus the meta-judge's failure patterns
        report.memory_cards = self._memory(trajectories, failures, budget, ckpt)

        # 6. the compiled program on the valset, in stages, through the gate (refused: the parent is returned)
        self._final(lambda part: self._evaluate("after", program, part, budget, ckpt, phi_store), valset, budget, started)
        phi_store.close()
        return self._gated(program, student)

    # -- phases --------------------------------------------------------------------------------
    def _rollouts(self, phase: str, agent: PurposeAgent, examples: list[dspy.Example], budget: LMBudget,
                  ckpt: Checkpoint, phi_store: PhiStore, *, explore: float = 0.0, score_phi: bool = True,
                  seed: int | None = None) -> list[RunResult]:
        tasks = [self._task(e) for e in examples]
        max_steps = int(examples[0].get("max_steps", 20))
        purpose = str(examples[0].get("purpose", "{env_purpose}"))
        config = self.config.run.model_copy(update={"max_steps": max_steps, "explore": explore,
                                                    "seed": self.config.seed if seed is None else seed,
                                                    "id_namespace": f"{ckpt.job}/{phase}",
                                                    "score_phi": score_phi and self.config.run.score_phi})
        guard, here = self.limit_guard, self._backend is None
        if guard is not None:
            guard.check()  # between phases: the pause flag, the monitor's budgets
        with guard.labelled(self.candidate_version) if guard and phase == "after" else contextlib.nullcontext():
            results = run_tasks(
                agent, tasks, lms=self.lms, config=config, purpose=purpose,
                num_threads=self.config.num_threads, budget=budget, phi_store=phi_store,
                finished=lambda t: self._restore(ckpt, f"{phase}/{t.task_id}"),
                on_result=lambda t, r: self._finished(ckpt, f"{phase}/{t.task_id}", r, record=not here),
                desc=phase, progress=self.config.progress, backend=self._backend,
                limit_guard=guard if here else None,  # the Ray backend sees no step: checked per phase only
                **({"make_environment": self.make_environment} if self.make_environment else {}),
            )
        if guard is not None:
            guard.check()  # a limit that stopped a rollout stops the compile here (LimitStop), between phases
        done = [r for r in results if r is not None]
        self._account(phase, [c for r in done for c in r.trajectory.lm_calls], budget)
        return done

    def _evaluate(self, phase: str, agent: PurposeAgent, valset: list[dspy.Example], budget: LMBudget,
                  ckpt: Checkpoint, phi_store: PhiStore) -> SplitMetrics:
        """Success on the valset, actor-only: the critic's Φ is not needed to judge by the environment."""
        results = self._rollouts(phase, agent, valset, budget, ckpt, phi_store, score_phi=False)
        return SplitMetrics.of(str(self._task(valset[0]).split), [TaskScore.of(r) for r in results])

    def _more_rounds(self, student: PurposeAgent, trainset: list[dspy.Example], seen: list[Trajectory],
                     budget: LMBudget, ckpt: Checkpoint, phi_store: PhiStore) -> list[Trajectory]:
        """Up to `rounds` more rollouts of each train task not solved yet, another exploration seed each round,
        exploring at least half the time, actor-only (they look for first successes; the critic is not needed).
        Each round's actor already has the paths and rules learned from every rollout before it (replay-guided:
        where a rule applies it is followed, not explored)."""
        solved = {t.task.task_id for t in seen if t.success}
        found: list[Trajectory] = []
        for n in range(1, self.config.rounds + 1):
            todo = [e for e in trainset if self._task(e).task_id not in solved]
            if not todo or not budget.allows(1):
                break
            guided = student.deepcopy()
            self._actor_demos(guided.actor, [*seen, *found])
            results = self._rollouts(f"train-round-{n}", guided, todo, budget, ckpt, phi_store, score_phi=False,
                                     explore=max(self.config.explore, 0.5), seed=self.config.seed + n)
            found += [r.trajectory for r in results]
            solved |= {r.trajectory.task.task_id for r in results if r.trajectory.success}
            logger.info("round %d: %d of %d unsolved train tasks solved", n,
                        sum(r.trajectory.success for r in results), len(todo))
        return found

    def _actor_demos(self, actor: Actor, trajectories: list[Trajectory]) -> list[DemoSource]:
        """Set the compiled actor's paths and pool (added to its parent's) and say where each pool demo came from."""
        cfg = self.config
        actor.paths = actor.paths.merged(best_paths(trajectories))
        new, sources = pool_demos(trajectories, max_demos=cfg.max_actor_demos, min_support=cfg.min_support,
                                  history_window=cfg.run.history_window, observation_chars=cfg.run.observation_chars)
        actor.act.demos = merged_pool(actor.act.demos, new, cfg.max_actor_demos)
        actor.demos_per_call = cfg.demos_per_call
        actor.follow_rules = cfg.follow_rules
        position = {id(d): i for i, d in enumerate(actor.act.demos)}
        kept = [s.model_copy(update={"index": position[id(d)]}) for d, s in zip(new, sources) if id(d) in position]
        logger.info("actor: paths of %d train tasks; %d cross-task demos held across >= %d tasks (pool %d)",
                    len(actor.paths), len(kept), cfg.min_support, len(actor.act.demos))
        return kept

    def _calibrate(self, trajectories: list[Trajectory], budget: LMBudget, ckpt: Checkpoint,
                   report: CompileReport) -> tuple[list[dspy.Example], list[DemoSource], list[MemoryCard]]:
        """The meta-judge grades a sample and earns trust on planted wrong judgments (see calibration.py)."""
        calls: list[LMCall] = []
        calibration = Calibration(self.judge, self.evaluator, self.config)
        judge_lm = self.lms.get("judge", self.lms["critic"])
        verdicts, planted = calibration.grade(trajectories, judge_lm, budget, ckpt, calls)
        self._account("judge", calls, budget)
        outcome = calibration.decide(verdicts, planted)
        report.judge = outcome.summary
        return outcome.demos, outcome.sources, outcome.failures

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

    def _finished(self, ckpt: Checkpoint, key: str, result: RunResult, *, record: bool) -> None:
        """Checkpoint a finished rollout, unless a monitor's limit cut it short (a resumed compile runs it again);
        `record`: write its task record here (a Ray worker's; the local step loop records its own)."""
        if not (result.trajectory.stop_reason or "").startswith("limit:"):
            ckpt.put(key, result.model_dump(mode="json"))
        if record and self.limit_guard is not None:
            self.limit_guard.record(result)

    @staticmethod
    def _restore(ckpt: Checkpoint, key: str) -> RunResult | None:
        value = ckpt.get(key)
        return RunResult.model_validate(value) if value is not None else None

    def _job_key(self, student: PurposeAgent, trainset: list[dspy.Example], valset: list[dspy.Example] | None) -> str:
        """Everything that determines the compile's results: a different value means a different job."""
        return self._job_hash({
            "student": student.dump_state(),
            "paths": student.actor.paths.model_dump(mode="json") if hasattr(student.actor, "paths") else None,
            "train": [self._task(e).task_id for e in trainset],
            "val": [self._task(e).task_id for e in valset or []],
            "purpose": [str(e.get("purpose", "")) for e in trainset[:1]],
            "max_steps": [int(e.get("max_steps", 20)) for e in trainset[:1] + (valset or [])[:1]],
            "lms": {role: str(getattr(lm, "model", lm)) for role, lm in sorted(self.lms.items())},
        })

