"""The Ray backend: rollouts on Ray actors, one environment and the role LMs each, with one writer.

`RayBackend(workers, lms)` starts `workers` actors (`RolloutWorker`s of `workers.py`: they build
their LMs from the spec `lms`, the embedded model loading once per actor, and keep one environment
per family, a JVM for TextWorldExpress or ScienceWorld, for the whole job) on the Ray cluster at
`address`, or on a local Ray started for the run with this machine's CPUs. `run_tasks` is
`rollouts.run_tasks` with the same waves, budget split and resume, the episodes run on the actors:

- **work per task**: a wave of `num_threads` tasks goes out one per actor; each answers a whole
  episode as JSON (the same `RunResult` the local path returns), taken in task order, never in the
  order they finish;
- **one writer**: the driver alone writes the Φ store (and, through `on_result`, the checkpoint;
  memory, replay and ledger are written by the jobs, here). A wave's tasks read a snapshot of Φ
  taken when the wave starts; what an episode settles comes back and is settled here in task
  order. An episode that looked up a state an earlier task of its wave settled first is run again
  on the updated snapshot, so every episode sees what it would have seen with the tasks run one
  after another: the results are those of the local path (temperature 0, same seed);
- **a worker that dies** (killed, out of memory, a crashed JVM) is replaced, and its task is run
  again once, on another worker; its partial episode was never written anywhere. A second death
  of the same task raises `WorkerLostError`.

Ray is optional (`pip install 'purpose-dspy[ray]'`) and imported only when a backend starts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tqdm.auto import tqdm

from purpose_dspy.environments import make_env
from purpose_dspy.errors import PurposeDspyError, UsageError
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.runtime.budget import LMBudget
from purpose_dspy.runtime.config import RunConfig
from purpose_dspy.runtime.rollouts import _resumed
from purpose_dspy.runtime.workers import RolloutWorker, WorkerLMs, WorkerReply, agent_json, lms_json
from purpose_dspy.safeguards import PhiStore
from purpose_dspy.types import Role, RunResult, Task

logger = logging.getLogger(__name__)


class WorkerLostError(PurposeDspyError):
    """A task's worker died twice (on two workers): the operator looks at the cluster (memory, the JVM, a node)."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise UsageError("--backend ray needs Ray: pip install 'purpose-dspy[ray]'") from exc
    return ray


class _RayWorker(RolloutWorker):
    """A `RolloutWorker` whose wave snapshot arrives as a Ray object reference, read once per wave."""

    def resolve(self, snapshot: Any) -> dict[str, float]:
        return _ray().get(snapshot[0])


class RayBackend:
    """`workers` Ray actors running whole episodes; `run_tasks` as in `rollouts.py`. Close it (or use `with`)."""

    def __init__(self, workers: int, lms: WorkerLMs, *, roles: tuple[Role, ...] = ("actor", "critic"),
                 address: str | None = None) -> None:
        self.ray = _ray()
        self._connect(address)
        cpus = int(self.ray.cluster_resources().get("CPU", 0))
        if workers > cpus:
            raise UsageError(f"{workers} Ray workers were asked for (--num-threads) but the cluster has {cpus} CPUs "
                             "(one per worker): ask for fewer, or add nodes (ray start --address <head>:6379)")
        self._lms = lms_json(lms, roles)
        self._actor = self.ray.remote(num_cpus=1, max_restarts=0)(_RayWorker)
        self.slots = [self._start() for _ in range(max(1, workers))]
        self.retries = 0  # tasks run again after their worker died
        self.reruns = 0  # episodes run again because an earlier task of their wave settled a Φ they had looked up
        self._wave = 0

    # -- lifecycle ----------------------------------------------------------------------------------
    def _connect(self, address: str | None) -> None:
        if self.ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"address": address} if address else {"address": "local", "num_cpus": os.cpu_count()}
        self.ray.init(include_dashboard=False, logging_level=logging.WARNING, **kwargs)
        logger.info("ray: %s", address or f"a local Ray with {os.cpu_count()} CPUs")

    def _start(self) -> Any:
        return self._actor.remote(self._lms)

    def close(self) -> None:
        """Close every worker's environments, then stop the actors (a local Ray ends with the process)."""
        done = [slot.close.remote() for slot in self.slots]
        try:
            self.ray.wait(done, num_returns=len(done), timeout=30)
        finally:
            for slot in self.slots:
                self.ray.kill(slot)
        if self.retries or self.reruns:
            logger.info("ray: %d tasks retried after a worker died, %d episodes rerun on a newer Φ snapshot",
                        self.retries, self.reruns)

    def __enter__(self) -> RayBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the job --------------------------------------------------------------------------------------
    def run_tasks(
        self, agent: PurposeAgent, tasks: Sequence[Task], *, config: RunConfig, purpose: str = "{env_purpose}",
        num_threads: int = 1, budget: LMBudget | None = None, phi_store: PhiStore | None = None,
        finished: Callable[[Task], RunResult | None] = lambda task: None,
        on_result: Callable[[Task, RunResult], None] = lambda task, result: None,
        make_environment: Callable[[str], Any] = make_env, desc: str = "rollouts", progress: bool = True,
        limit_guard: Any = None, **ignored: Any,
    ) -> list[RunResult | None]:
        """`rollouts.run_tasks` on the actors: waves of `num_threads` tasks, results in task order."""
        if make_environment is not make_env:
            raise UsageError("the ray backend builds each worker's environments from the registry (make_env); a "
                             "make_environment of your own runs only with backend 'local'")
        if limit_guard is not None:
            raise UsageError("a monitor's limits (--monitor-dir) are checked at every step in this process; run a "
                             "monitored job with --backend local")
        budget = budget or LMBudget(None)
        store = phi_store if phi_store is not None else PhiStore()
        results, todo = _resumed(tasks, finished, budget)
        job = _Job(self, self.ray.put(agent_json(agent)), config, purpose, store)
        size = max(1, num_threads)
        bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=desc, disable=not progress, leave=False)
        try:
            for start in range(0, len(todo), size):
                wave = todo[start: start + size]
                remaining = budget.remaining
                if not budget.allows(len(wave)):
                    logger.warning("%s: LM-call budget spent; %d of %d tasks not run", desc, len(todo) - start, len(tasks))
                    break
                cap = None if remaining is None else remaining // len(wave)
                for i, result in zip(wave, job.wave([tasks[i] for i in wave], cap)):
                    budget.charge(len(result.trajectory.lm_calls))
                    results[i] = result
                    on_result(tasks[i], result)
                    bar.update(1)
        finally:
            bar.close()
        return results

    # -- episodes on the actors -----------------------------------------------------------------------
    def submit(self, slot: int, payload: tuple[Any, ...]) -> tuple[Any, Any]:
        """The episode's future and the actor it went to."""
        actor = self.slots[slot]
        return actor.run.remote(*payload), actor

    def reply(self, sent: tuple[Any, Any], slot: int, payload: tuple[Any, ...], task: Task) -> WorkerReply:
        """The episode's reply; a worker that died is replaced and the task run once more on another one."""
        errors = self.ray.exceptions
        for attempt in (1, 2):
            ref, actor = sent
            try:
                return WorkerReply.model_validate_json(self.ray.get(ref))
            except errors.RayTaskError as exc:  # the episode raised: the same error as on the local path
                raise (exc.cause if isinstance(exc.cause, BaseException) else exc) from None
            except (errors.RayActorError, errors.WorkerCrashedError) as exc:
                if attempt == 2:
                    raise WorkerLostError(f"{task.task_id}: its worker died twice ({type(exc).__name__}); nothing of "
                                          "the episode was kept. Look at the Ray logs of the node (memory, the JVM)") from exc
                logger.warning("%s: worker %d died (%s); running the task again on another worker", task.task_id,
                               slot, type(exc).__name__)
                if self.slots[slot] is actor:  # not replaced yet (another task it held may have found it dead)
                    self.slots[slot] = self._start()
                slot = (slot + 1) % len(self.slots)
                self.retries += 1
                sent = self.submit(slot, payload)
        raise AssertionError("unreachable")


class _Job:
    """One `run_tasks` call on the actors: the agent, the config, and the driver's Φ store with its mirror."""

    def __init__(self, backend: RayBackend, agent: Any, config: RunConfig, purpose: str, store: PhiStore) -> None:
        self.backend, self.agent, self.config, self.purpose, self.store = backend, agent, config, purpose, store
        self.phi: dict[str, float] = store.items()  # what the store holds, kept current as this job settles more

    def wave(self, tasks: list[Task], cap: int | None) -> Iterator[RunResult]:
        """The wave's episodes, one per actor, yielded in task order, Φ settled by the driver before each."""
        caps = [c for c in (cap, self.config.max_lm_calls) if c is not None]
        config = self.config.model_copy(update={"max_lm_calls": min(caps) if caps else None}).model_dump_json()
        snapshot = self._snapshot()
        payloads = [(self.agent, t.model_dump_json(), config, self.purpose, *snapshot) for t in tasks]
        sent = [self.backend.submit(j % len(self.backend.slots), p) for j, p in enumerate(payloads)]
        written: set[str] = set()
        for j, (task, payload, future) in enumerate(zip(tasks, payloads, sent)):
            slot = j % len(self.backend.slots)
            reply = self.backend.reply(future, slot, payload, task)
            if written.intersection(reply.missed):  # an earlier task of this wave settled what it looked up
                self.backend.reruns += 1
                payload = (*payload[:4], *self._snapshot())
                reply = self.backend.reply(self.backend.submit(slot, payload), slot, payload, task)
            for key, phi in reply.settled.items():
                self.phi[key] = self.store.settle(key, phi)
                written.add(key)
            yield reply.result

    def _snapshot(self) -> tuple[int, list[Any]]:
        """A wave number and the Φ snapshot, put once into Ray's object store (the list keeps Ray from
        resolving the reference before the worker asks: a worker reads a wave's snapshot once)."""
        self.backend._wave += 1
        return self.backend._wave, [self.backend.ray.put(dict(self.phi))]
