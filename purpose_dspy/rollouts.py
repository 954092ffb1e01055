"""Rollouts: one program over many tasks, in waves of `num_threads`, within an LM-call budget.

Shared by the teleprompter (train and validation rollouts), `purpose-dspy eval` and the benchmarks.
Each worker slot keeps one environment for the whole job (a TextWorldExpress or ScienceWorld env is a
JVM). Waves make a budgeted job reproducible: before each wave the remaining budget is split evenly
among its rollouts, so which calls are allowed never depends on thread timing. Results come back in
task order; a finished rollout is handed to `on_result` (the checkpoint) before the next wave starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tqdm.auto import tqdm

from purpose_dspy.config import RunConfig
from purpose_dspy.environments import make_env
from purpose_dspy.environments.base import Environment
from purpose_dspy.metrics import SplitMetrics, TaskScore
from purpose_dspy.orchestrator import Orchestrator
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.safeguards import PhiStore
from purpose_dspy.types import Role, RunResult, Task

logger = logging.getLogger(__name__)


class LMBudget:
    """LM calls allowed for a whole job (None: unlimited). Thread-safe; `held` calls are set aside."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.spent = 0
        self.held = 0
        self.ran_out = False  # some work was skipped for lack of calls
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int | None:
        if self.limit is None:
            return None
        return max(0, self.limit - self.spent - self.held)

    def charge(self, calls: int) -> None:
        with self._lock:
            self.spent += calls

    def hold(self, calls: int) -> None:
        """Set calls aside for a later phase (e.g. the final evaluation)."""
        with self._lock:
            self.held = max(0, calls)

    def release(self) -> None:
        with self._lock:
            self.held = 0


def run_tasks(
    agent: PurposeAgent,
    tasks: Sequence[Task],
    *,
    lms: dict[Role, Any],
    max_steps: int,
    purpose: str = "{env_purpose}",
    explore: float = 0.0,
    seed: int = 0,
    num_threads: int = 1,
    budget: LMBudget | None = None,
    phi_store: PhiStore | None = None,
    finished: Callable[[Task], RunResult | None] = lambda task: None,
    on_result: Callable[[Task, RunResult], None] = lambda task, result: None,
    make_environment: Callable[[str], Environment] = make_env,
    desc: str = "rollouts",
    progress: bool = True,
) -> list[RunResult | None]:
    """Run `agent` on every task; None where the budget ran out first.

    `finished(task)` returns a result recorded earlier (a resumed job), which is reused as is.
    """
    budget = budget or LMBudget(None)
    results: list[RunResult | None] = [None] * len(tasks)
    todo = []
    for i, task in enumerate(tasks):
        done = finished(task)
        if done is not None:
            results[i] = done
            budget.charge(len(done.trajectory.lm_calls))  # a resumed job spends what the first one did
        else:
            todo.append(i)
    envs: dict[int, Environment] = {}
    store = phi_store if phi_store is not None else PhiStore()

    def one(slot: int, task: Task, cap: int | None) -> RunResult:
        if slot not in envs:
            envs[slot] = make_environment(task.env_id)
        config = RunConfig(max_steps=max_steps, max_lm_calls=cap, explore=explore, seed=seed)
        return Orchestrator(agent, lms, config, phi_store=store).run(envs[slot], task, purpose)

    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=desc, disable=not progress, leave=False)
    try:
        with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
            for start in range(0, len(todo), max(1, num_threads)):
                wave = todo[start : start + max(1, num_threads)]
                remaining = budget.remaining
                if remaining is not None and remaining < len(wave):
                    budget.ran_out = True
                    logger.warning("%s: LM-call budget spent; %d of %d tasks not run", desc, len(todo) - start, len(tasks))
                    break
                cap = None if remaining is None else remaining // len(wave)
                futures = [pool.submit(one, slot, tasks[i], cap) for slot, i in enumerate(wave)]
                for i, future in zip(wave, futures):
                    result = future.result()
                    budget.charge(len(result.trajectory.lm_calls))
                    results[i] = result
                    on_result(tasks[i], result)
                    bar.update(1)
    finally:
        bar.close()
        for env in envs.values():
            env.close()
    return results


def evaluate(agent: PurposeAgent, tasks: Sequence[Task], *, split: str, **kwargs: Any) -> SplitMetrics:
    """`run_tasks` without exploration, summarised: success with a 95% interval, Φ gain, cost."""
    results = run_tasks(agent, tasks, desc=kwargs.pop("desc", f"eval {split}"), **kwargs)
    return SplitMetrics.of(split, [TaskScore.of(r) for r in results if r is not None])
