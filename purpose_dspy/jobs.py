"""The jobs behind `purpose-dspy compile`, `eval` and `demo`, as library calls.

`compile_taskset` continues from the current promoted version of the artifact (its parent) when there
is one, compiles on the train split with the dev split as the valset, and writes what it built as the
next version, promoted only if the compile's gate promoted it (`teleprompt/gate.py`), or left pending for an
operator (`pending`); given a `Monitor`, it records the compile, the gate and the promotion or pending state.
`improve` is the meta-loop once: the monitor's triggers, then (pause and cap allowing) such a compile.
`evaluate_artifact` runs a loaded artifact on a split of the task set it carries, actor-only unless
asked for the critic (success is the environment's verdict, so Φ is not needed to evaluate). The CLI
only parses flags and prints what these return.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from purpose_dspy import artifacts
from purpose_dspy.artifacts import approval, records
from purpose_dspy.artifacts.versions import _next_version
from purpose_dspy.errors import LimitStop, StaleArtifactError, UsageError
from purpose_dspy.lm import LMConfig, LMSpec, build_role_lms, load_lm_config
from purpose_dspy.metrics import SplitMetrics
from purpose_dspy.monitor import EventRecord, Firing, Monitor
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.programs.editor import Editor
from purpose_dspy.runtime.backends import open_backend
from purpose_dspy.runtime.config import RunConfig
from purpose_dspy.runtime.editing import edit
from purpose_dspy.runtime.rollouts import evaluate
from purpose_dspy.runtime.workers import WorkerLMs
from purpose_dspy.safeguards import PhiStore
from purpose_dspy.tasksets import Split, TaskSet, load_taskset, parse_taskset
from purpose_dspy.teleprompt import (
    CompileConfig,
    CompileReport,
    EditorTeleprompter,
    PurposeTeleprompter,
    task_examples,
    writing_examples,
)
from purpose_dspy.types import Role, Task
from purpose_dspy.writing.tasks import is_writing_env, tasks_of

logger = logging.getLogger(__name__)

COMPILE_ROLES: tuple[Role, ...] = ("actor", "critic", "judge", "optimizer")


@dataclass
class CompileOutcome:
    manifest: artifacts.Manifest
    report: CompileReport
    path: Path


def describe_lms(config: LMConfig, roles: tuple[Role, ...]) -> dict[str, dict[str, Any]]:
    """What the manifest records per role: model id and endpoint, never a key."""
    return {role: {"model": config.for_role(role).model, "api_base": config.for_role(role).api_base} for role in roles}


def limit(tasks: list[Task], n: int | None) -> list[Task]:
    return tasks if n is None else tasks[:n]


def _promoted_parent(out: Path) -> artifacts.CompiledAgent | None:
    """The promoted version under `out` to continue from; None when there is none, or when it was compiled
    against signatures the code no longer has (its demos would not fit: start from the zero-shot program)."""
    if not (out.is_dir() and artifacts.promoted_stack(out)):
        return None
    try:
        return artifacts.load(out)
    except StaleArtifactError as exc:
        logger.warning("not continuing from the promoted version: %s", str(exc).splitlines()[0])
        return None


def compile_taskset(
    taskset_path: str | Path,
    out: str | Path,
    *,
    lm_config: LMConfig,
    config: CompileConfig,
    run_dir: str | Path | None = None,
    train: int | None = None,
    dev: int | None = None,
    lms: dict[Role, Any] | None = None,
    worker_lms: WorkerLMs | None = None,
    monitor: Monitor | None = None,
    pending: bool = False,
    who: str = "operator",
    why: dict[str, Any] | None = None,
) -> CompileOutcome:
    """Compile on the train split (first `train` seeds), gate on dev (first `dev`), write the next version.

    `pending`: a version the gate passed is written pending (served only after `artifacts approve`). `monitor`:
    refuse while it is paused; hold the rollouts to its limits (a pause or a limit stops the compile between steps
    with its `LimitStop`, nothing written) and record each as a task record (source "compile"); then record the
    compile, the gate and the promotion or pending state in its ledger, and an audit line when what is served (or
    may be) changed, as done by `who` for `why`."""
    taskset_path = Path(taskset_path)
    taskset = load_taskset(taskset_path)
    if "dev" not in taskset.splits:
        raise UsageError(f"{taskset_path}: compiling needs a 'dev' split for the promotion gate")
    out = Path(out)
    if monitor is not None:
        _refuse_if_paused(monitor, out.name)
    if is_writing_env(taskset.env):
        if pending:
            raise UsageError(f"{taskset_path} is a writing task set: its editor versions cannot be held for approval "
                             "yet; compile without --require-approval and promote by hand")
        outcome = _compile_editor(taskset, taskset_path, out, lm_config=lm_config, config=config, run_dir=run_dir,
                                  train=train, dev=dev, lm=(lms or {}).get("editor"))
        return _recorded(outcome, monitor, budget=config.max_lm_calls, who=who, why=why)
    parent_version, student = _student(out, taskset)
    # `config.backend` ray: the workers build their LMs from `worker_lms`, else from `lm_config` unless `lms` were given
    worker_lms = worker_lms or (None if lms else lm_config)
    lms = lms or build_role_lms(lm_config, roles=COMPILE_ROLES)
    teleprompter = PurposeTeleprompter(lms, config, run_dir=run_dir, worker_lms=worker_lms,
                                       **_compile_guard(monitor, out, parent_version))
    examples = dict(purpose=taskset.purpose, max_steps=taskset.max_steps)
    teleprompter.compile(
        student,
        trainset=task_examples(limit(taskset.tasks("train"), train), **examples),
        valset=task_examples(limit(taskset.tasks("dev"), dev), **examples),
    )
    # The version written is what the compile built, also when its gate refused it (compile then returned the
    # parent): unpromoted, so the promoted version stays the parent and `artifacts show` can inspect this one.
    program = teleprompter.candidate
    manifest = artifacts.save_artifact(
        out, artifacts.components_of(program, judge=teleprompter.judge), teleprompter.report,
        lms=describe_lms(lm_config, COMPILE_ROLES), taskset=taskset, taskset_bytes=taskset_path.read_bytes(),
        parent_version=parent_version, pending=pending, log={"who": who, "why": why or {}},
    )
    outcome = CompileOutcome(manifest=manifest, report=teleprompter.report, path=out / f"v{manifest.version}")
    return _recorded(outcome, monitor, budget=config.max_lm_calls, who=who, why=why)


def _student(out: Path, taskset: TaskSet) -> tuple[int | None, PurposeAgent]:
    """The promoted version under `out` to continue from (its number and program), else the zero-shot agent."""
    if parent := _promoted_parent(out):
        if parent.manifest.taskset.get("content_hash") != taskset.content_hash:
            logger.warning("%s was compiled on another version of %s; continuing from it anyway", out, taskset.name)
        logger.info("continuing from the promoted %s/v%d", out, parent.version)
        return parent.version, parent.program
    return None, PurposeAgent()


def _compile_guard(monitor: Monitor | None, out: Path, parent_version: int | None) -> dict[str, Any]:
    """The teleprompter's monitor arguments: one guard for the whole compile (its rollouts recorded as source
    "compile", the parent's as the parent version, the compiled program's valset runs as the version to come)."""
    if monitor is None:
        return {}
    parent = None if parent_version is None else f"v{parent_version}"
    return {"limit_guard": monitor.guard(out.name, version=parent, source="compile"),
            "candidate_version": f"v{_next_version(out)}"}


def _refuse_if_paused(monitor: Monitor, program: str) -> None:
    """The kill switch: nothing compiles while the run directory is paused (recorded as a limit stop)."""
    if monitor.paused():
        message = (f"{program}: {monitor.run_dir} is paused (its PAUSED flag is set): nothing compiles until an "
                   f"operator runs: purpose-dspy resume {monitor.run_dir}")
        monitor.ledger.record_event(EventRecord(kind="limit_stop", program=program, version=None,
                                                detail={"limit": "paused", "reason": message, "source": "compile"}))
        raise LimitStop("paused", message)


def _recorded(outcome: CompileOutcome, monitor: Monitor | None, *, budget: int | None, who: str,
              why: dict[str, Any] | None) -> CompileOutcome:
    """`outcome`, its compile, gate and promotion (or pending) state recorded in `monitor` when there is one."""
    if monitor is not None:
        records.record_compile(monitor, outcome.manifest, outcome.report, root=outcome.path.parent, budget=budget,
                               who=who, why=why or {"trigger": None, "requested": "compile"})
    return outcome


@dataclass
class ImproveOutcome:
    """What one pass of the meta-loop did: the firings it found, and the compile it ran (None: nothing fired)."""

    program: str
    firings: list[Firing]
    forced: bool
    compiled: CompileOutcome | None = None
    decision: str | None = None  # "promoted", "pending" or "kept" (see artifacts.records.decision_of)
    reason: str = ""
    tasks: int = 0  # the program's task records in the ledger that the trigger rules count
    rules: list[dict[str, Any]] = field(default_factory=list)  # the trigger rules evaluated


def improve(taskset_path: str | Path, program: str | Path, *, monitor: Monitor, lm_config: LMConfig,
            config: CompileConfig, force: bool = False, require_approval: bool = False,
            run_dir: str | Path | None = None, train: int | None = None, dev: int | None = None,
            lms: dict[Role, Any] | None = None) -> ImproveOutcome:
    """The meta-loop, once: when a trigger of `monitor` fired for `program` (compiled/<name>) or `force`, compile
    from its promoted version within `config.max_lm_calls`, gate it, and record why (the firings); with
    `require_approval` a candidate the gate passed is left pending. Stops (`LimitStop`, recorded) when the run
    directory is paused or the cap on self-modifications is reached; nothing fired and no `force`: does nothing."""
    out = Path(program)
    name = out.name
    if not (out.is_dir() and artifacts.promoted_stack(out)):
        raise UsageError(f"{out} has no promoted version to improve; compile one first: "
                         f"purpose-dspy compile <taskset> --out {out}")
    if waiting := approval.pending_versions(out):
        ref = f"{out}@v{waiting[-1]}"
        raise UsageError(f"{ref} is still pending approval; approve or reject it first (purpose-dspy artifacts "
                         f"approve {ref}, or reject), then improve again")
    firings = monitor.triggers(name, record=True)
    counted = {source for rule in monitor.rules for source in rule.sources}  # not a compile's own rollouts
    tasks = sum(t.source in counted for t in monitor.ledger.tasks(name))
    rules = [r.model_dump(mode="json") for r in monitor.rules]
    if not firings and not force:
        return ImproveOutcome(name, [], False, tasks=tasks, rules=rules, reason=(
            f"no trigger fired for {name} over its {tasks} task records (rules: "
            f"{', '.join(r['name'] for r in rules) or 'none'}); nothing compiled (--force compiles anyway)"))
    _refuse_if_paused(monitor, name)
    monitor.check_self_modification(name)  # the cap of limits.toml: LimitStop, recorded
    why = {"trigger": [f.model_dump(mode="json") for f in firings], "forced": force and not firings}
    outcome = compile_taskset(taskset_path, out, lm_config=lm_config, config=config, run_dir=run_dir, train=train,
                              dev=dev, lms=lms, monitor=monitor, pending=require_approval, who="improve", why=why)
    decision = records.decision_of(outcome.manifest)
    cause = "; ".join(f.reason for f in firings) or "forced"
    return ImproveOutcome(name, firings, force, outcome, decision, tasks=tasks, rules=rules,
                          reason=f"{cause}: compiled v{outcome.manifest.version}, {decision} "
                                 f"({outcome.manifest.gate.reason})")


def _compile_editor(taskset: TaskSet, taskset_path: Path, out: Path, *, lm_config: LMConfig, config: CompileConfig,
                    run_dir: str | Path | None, train: int | None, dev: int | None, lm: Any) -> CompileOutcome:
    """The same job for a writing task set: compile an `Editor` (continuing from the promoted one)."""
    parent_version, student = None, Editor(max_iterations=taskset.max_steps)
    if parent := _promoted_parent(out):
        if not parent.is_editor:
            raise UsageError(f"{out} holds a compiled agent, not an editor; give --out another directory")
        parent_version, student = parent.version, parent.program
        logger.info("continuing from the promoted %s/v%d", out, parent_version)
    lm = lm or build_role_lms(lm_config, roles=("editor",))["editor"]
    teleprompter = EditorTeleprompter(lm, config, run_dir=run_dir)
    teleprompter.compile(
        student, trainset=writing_examples(limit(tasks_of(taskset, "train"), train)),
        valset=writing_examples(limit(tasks_of(taskset, "dev"), dev)),
    )
    manifest = artifacts.save_artifact(  # what the compile built, refused by its gate or not (see compile_taskset)
        out, {"editor": teleprompter.candidate}, teleprompter.report, lms=describe_lms(lm_config, ("editor",)),
        taskset=taskset, taskset_bytes=taskset_path.read_bytes(), parent_version=parent_version,
    )
    return CompileOutcome(manifest=manifest, report=teleprompter.report, path=out / f"v{manifest.version}")


def evaluate_editor(editor: Editor, taskset: TaskSet, split: Split, *, lm: Any, tasks: int | None = None,
                    progress: bool = True) -> SplitMetrics:
    """The editor on a split, no archive: success = the gate passed (every constraint met, composite at target)."""
    from tqdm.auto import tqdm

    scores = [edit(t, lm=lm, editor=editor).score()
              for t in tqdm(limit(tasks_of(taskset, split), tasks), desc=split, unit="task", disable=not progress)]
    return SplitMetrics.of(split, scores)


def taskset_of(agent: artifacts.CompiledAgent) -> TaskSet:
    if agent.taskset_toml is None:
        raise UsageError(f"{agent.path} carries no task set; evaluate it with the library on your own tasks")
    return parse_taskset(agent.taskset_toml, agent.path / "taskset.toml")


def evaluate_program(
    program: PurposeAgent, taskset: TaskSet, split: Split, *, lms: dict[Role, Any], tasks: int | None = None,
    num_threads: int = 1, phi_store: PhiStore | None = None, progress: bool = True, run_config: RunConfig | None = None,
    critic: bool = False, monitor: Monitor | None = None, name: str = "zero-shot", version: str | None = None,
    source: str = "eval", backend: str | None = None, ray_address: str | None = None,
    worker_lms: WorkerLMs | None = None,
) -> SplitMetrics:
    """`program` on `split` of the task set. Default RunConfig: the task set's step limit, no exploration, and
    actor-only (no critic call, `phi_scored` false) unless `critic`; a given `run_config` is used as it is.

    `monitor`: its limits hold for the whole evaluation and each task is recorded in its ledger as program `name`,
    `version`, `source`; a limit that stops it raises its `LimitStop` once the tasks under way are recorded.
    `backend` 'ray' (or the CLI's --backend): the tasks run on `num_threads` Ray workers building `worker_lms`."""
    config = run_config or RunConfig(max_steps=taskset.max_steps, score_phi=critic)
    guard = monitor.guard(name, version=version, source=source) if monitor is not None else None
    with open_backend(backend, ray_address, workers=num_threads, lms=worker_lms) as runner:
        metrics = evaluate(
            program, limit(taskset.tasks(split), tasks), split=split, lms=lms, config=config, purpose=taskset.purpose,
            num_threads=num_threads, phi_store=phi_store, progress=progress, limit_guard=guard, backend=runner,
        )
    if guard is not None and guard.stopped is not None:
        raise guard.stopped
    return metrics


def evaluate_artifact(ref: str | Path, split: Split, *, lms: dict[Role, Any] | None = None,
                      lm_config: LMConfig | None = None, tasks: int | None = None, num_threads: int = 1,
                      progress: bool = True, critic: bool = False, monitor: Monitor | None = None,
                      backend: str | None = None, ray_address: str | None = None,
                      worker_lms: WorkerLMs | None = None) -> tuple[artifacts.CompiledAgent, SplitMetrics]:
    """A loaded artifact on `split` of its own task set; LMs: `lms`, else built from `lm_config`, else its own.

    Actor-only unless `critic` (then the critic scores Φ at every step too); an editor has no critic to skip.
    `monitor`: limits the evaluation and records each task (an editor's: the pause flag and budgets checked first)."""
    agent = artifacts.load(ref)
    roles: tuple[Role, ...] = ("editor",) if agent.is_editor else ("actor", "critic")
    worker_lms = worker_lms or (None if lms else lm_config or _own_lm_config(agent, roles))
    if lms is None and lm_config is not None:
        lms = build_role_lms(lm_config, roles=roles)
    lms = lms or agent.build_lms(roles)
    version = f"v{agent.version}"
    if agent.is_editor:
        if monitor is not None:
            monitor.guard(agent.manifest.name, version=version, source="eval").check()
        return agent, evaluate_editor(agent.program, taskset_of(agent), split, lm=lms["editor"], tasks=tasks,
                                      progress=progress)
    metrics = evaluate_program(agent.program, taskset_of(agent), split, lms=lms, tasks=tasks,
                               num_threads=num_threads, progress=progress, critic=critic, monitor=monitor,
                               name=agent.manifest.name, version=version, backend=backend,
                               ray_address=ray_address, worker_lms=worker_lms)
    return agent, metrics


def _own_lm_config(agent: artifacts.CompiledAgent, roles: tuple[Role, ...]) -> LMConfig:
    """The LMs an artifact was compiled with as a spec (what `CompiledAgent.build_lms` builds), for Ray workers."""
    def spec(role: Role) -> LMSpec:
        fields = agent.manifest.lms.get(role) or agent.manifest.lms.get("actor") or {}
        return LMSpec(**{k: v for k, v in fields.items() if k in LMSpec.model_fields})

    return LMConfig(roles={role: spec(role) for role in roles})


@dataclass
class DemoOutcome:
    before: SplitMetrics
    after: SplitMetrics
    compiled: CompileOutcome
    seconds: float
    train_before: SplitMetrics | None = None  # the train tasks run again: zero-shot
    train_after: SplitMetrics | None = None  # the train tasks run again: the compiled version


def run_demo(taskset_path: Path | None, out: str | Path, *, train: int, dev: int, test: int, max_lm_calls: int,
             run_dir: str | Path) -> DemoOutcome:
    """`purpose-dspy demo`: the zero-shot agent on test and on the train tasks, a compile (gated on dev), the
    compiled version (promoted or not) on the same test seeds and the same train tasks run again.

    Every evaluation is actor-only (success is the environment's); the compile's train rollouts score Φ."""
    path = taskset_path or Path(__file__).resolve().parent.parent / "tasksets" / "twx-simonsays.toml"
    if not path.exists():
        raise UsageError(f"{path} not found; pass --taskset tasksets/twx-simonsays.toml from a clone of the repository")
    started = time.perf_counter()
    taskset = load_taskset(path)
    config = load_lm_config()
    lms = build_role_lms(config, roles=COMPILE_ROLES)
    before = evaluate_program(PurposeAgent(), taskset, "test", lms=lms, tasks=test, worker_lms=config)
    train_before = evaluate_program(PurposeAgent(), taskset, "train", lms=lms, tasks=train, worker_lms=config)
    outcome = compile_taskset(path, out, lm_config=config, lms=lms, run_dir=run_dir, train=train, dev=dev,
                              config=CompileConfig(max_lm_calls=max_lm_calls, progress=True), worker_lms=config)
    compiled = artifacts.load(f"{outcome.path.parent}@v{outcome.manifest.version}")
    after = evaluate_program(compiled.program, taskset, "test", lms=lms, tasks=test, worker_lms=config)
    train_after = evaluate_program(compiled.program, taskset, "train", lms=lms, tasks=train, worker_lms=config)
    return DemoOutcome(before=before, after=after, compiled=outcome, seconds=time.perf_counter() - started,
                       train_before=train_before, train_after=train_after)
