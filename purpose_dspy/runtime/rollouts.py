"""Rollouts: one program over many tasks, in waves of `num_threads`, within an LM-call budget.

Shared by the teleprompter (train and validation rollouts), `purpose-dspy eval` and the benchmarks.
Each worker slot keeps one environment for the whole job (a TextWorldExpress or ScienceWorld env is a
JVM). Waves make a budgeted job reproducible: before each wave the remaining budget is split evenly
among its rollouts, so which calls are allowed never depends on thread timing. Results come back in
task order; a finished rollout is handed to `on_result` (the checkpoint) before the next wave starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from purpose_dspy.environments import make_env
from purpose_dspy.environments.base import Environment
from purpose_dspy.metrics import SplitMetrics, TaskScore
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.runtime.budget import LMBudget
from purpose_dspy.runtime.config import RunConfig
from purpose_dspy.runtime.orchestrator import Orchestrator
from purpose_dspy.safeguards import PhiStore
from purpose_dspy.types import Role, RunResult, Task

if TYPE_CHECKING:
    from purpose_dspy.monitor import LimitGuard

logger = logging.getLogger(__name__)
# Arguments of `run_tasks` a backend does not take: its workers hold their own LMs.
_NOT_SENT = ("agent", "tasks", "lms", "backend")


def run_tasks(
    agent: PurposeAgent,
    tasks: Sequence[Task],
    *,
    lms: dict[Role, Any],
    config: RunConfig,
    purpose: str = "{env_purpose}",
    num_threads: int = 1,
    budget: LMBudget | None = None,
    phi_store: PhiStore | None = None,
    finished: Callable[[Task], RunResult | None] = lambda task: None,
    on_result: Callable[[Task, RunResult], None] = lambda task, result: None,
    make_environment: Callable[[str], Environment] = make_env,
    desc: str = "rollouts",
    progress: bool = True,
    limit_guard: LimitGuard | None = None, backend: Any = None,
) -> list[RunResult | None]:
    """Run `agent` on every task under `config` (step limit, safeguards, history, exploration); None where the
    budget ran out first. Each task's LM calls are capped by its share of what the budget has left.

    `finished(task)` returns a result recorded earlier (a resumed job), which is reused as is. `limit_guard` (a
    monitor's, `Monitor.guard`) limits every task and records each in the ledger; once it stops one, no further
    wave starts.
    """
    if backend is not None:  # `backends.open_backend`'s (e.g. Ray): the same waves, budget and results, elsewhere
        return backend.run_tasks(agent, tasks, **{k: v for k, v in locals().items() if k not in _NOT_SENT})
    budget = budget or LMBudget(None)
    results, todo = _resumed(tasks, finished, budget)
    envs: dict[int, Environment] = {}
    store = phi_store if phi_store is not None else PhiStore()

    def one(slot: int, task: Task, cap: int | None) -> RunResult:
        if slot not in envs:
            envs[slot] = make_environment(task.env_id)
        caps = [c for c in (cap, config.max_lm_calls) if c is not None]
        run_config = config.model_copy(update={"max_lm_calls": min(caps) if caps else None})
        return Orchestrator(agent, lms, run_config, phi_store=store, limit_guard=limit_guard).run(
            envs[slot], task, purpose)

    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=desc, disable=not progress, leave=False)
    try:
        with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
            for start in range(0, len(todo), max(1, num_threads)):
                wave = todo[start : start + max(1, num_threads)]
                remaining = budget.remaining
                if _stopped(budget, limit_guard, len(wave), desc, f"{len(todo) - start} of {len(tasks)}"):
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


def _stopped(budget: LMBudget, limit_guard: LimitGuard | None, calls: int, desc: str, left: str) -> bool:
    """No further wave: a monitor's limit stopped a task, or the budget cannot give each rollout one call."""
    why = limit_guard.stopped if limit_guard is not None else None
    if why is None and not budget.allows(calls):
        why = "LM-call budget spent"
    if why is not None:
        logger.warning("%s: %s; %s tasks not run", desc, why, left)
    return why is not None


def _resumed(tasks: Sequence[Task], finished: Callable[[Task], RunResult | None],
             budget: LMBudget) -> tuple[list[RunResult | None], list[int]]:
    """Results recorded by an earlier run (charged to the budget: a resumed job spends what the first one
    did), and the indices of the tasks still to run."""
    results: list[RunResult | None] = [None] * len(tasks)
    todo = []
    for i, task in enumerate(tasks):
        done = finished(task)
        if done is not None:
            results[i] = done
            budget.charge(len(done.trajectory.lm_calls))
        else:
            todo.append(i)
    return results, todo


def evaluate(agent: PurposeAgent, tasks: Sequence[Task], *, split: str, **kwargs: Any) -> SplitMetrics:
    """`run_tasks` without exploration, summarised: success with a 95% interval, Φ gain, cost."""
    results = run_tasks(agent, tasks, desc=kwargs.pop("desc", f"eval {split}"), **kwargs)
    return SplitMetrics.of(split, [TaskScore.of(r) for r in results if r is not None])
