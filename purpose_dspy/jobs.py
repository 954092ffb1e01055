"""The jobs behind `purpose-dspy compile`, `eval` and `demo`, as library calls.

`compile_taskset` continues from the current promoted version of the artifact (its parent) when there
is one, compiles on the train split with the dev split as the valset, and writes what it built as the
next version, promoted only if the compile's gate promoted it (`teleprompt/gate.py`).
`evaluate_artifact` runs a loaded artifact on a split of the task set it carries, actor-only unless
asked for the critic (success is the environment's verdict, so Φ is not needed to evaluate). The CLI
only parses flags and prints what these return.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from purpose_dspy import artifacts
from purpose_dspy.errors import StaleArtifactError, UsageError
from purpose_dspy.lm import LMConfig, build_role_lms, load_lm_config
from purpose_dspy.metrics import SplitMetrics
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.programs.editor import Editor
from purpose_dspy.runtime.config import RunConfig
from purpose_dspy.runtime.editing import edit
from purpose_dspy.runtime.rollouts import evaluate
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
) -> CompileOutcome:
    """Compile on the train split (first `train` seeds), gate on dev (first `dev`), write the next version."""
    taskset_path = Path(taskset_path)
    taskset = load_taskset(taskset_path)
    if "dev" not in taskset.splits:
        raise UsageError(f"{taskset_path}: compiling needs a 'dev' split for the promotion gate")
    out = Path(out)
    if is_writing_env(taskset.env):
        return _compile_editor(taskset, taskset_path, out, lm_config=lm_config, config=config, run_dir=run_dir,
                               train=train, dev=dev, lm=(lms or {}).get("editor"))
    parent_version, student = None, PurposeAgent()
    if parent := _promoted_parent(out):
        parent_version, student = parent.version, parent.program
        if parent.manifest.taskset.get("content_hash") != taskset.content_hash:
            logger.warning("%s was compiled on another version of %s; continuing from it anyway", out, taskset.name)
        logger.info("continuing from the promoted %s/v%d", out, parent_version)
    lms = lms or build_role_lms(lm_config, roles=COMPILE_ROLES)
    teleprompter = PurposeTeleprompter(lms, config, run_dir=run_dir)
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
        parent_version=parent_version,
    )
    return CompileOutcome(manifest=manifest, report=teleprompter.report, path=out / f"v{manifest.version}")


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
    critic: bool = False,
) -> SplitMetrics:
    """`program` on `split` of the task set. Default RunConfig: the task set's step limit, no exploration, and
    actor-only (no critic call, `phi_scored` false) unless `critic`; a given `run_config` is used as it is."""
    config = run_config or RunConfig(max_steps=taskset.max_steps, score_phi=critic)
    return evaluate(
        program, limit(taskset.tasks(split), tasks), split=split, lms=lms, config=config,
        purpose=taskset.purpose, num_threads=num_threads, phi_store=phi_store, progress=progress,
    )


def evaluate_artifact(ref: str | Path, split: Split, *, lms: dict[Role, Any] | None = None,
                      lm_config: LMConfig | None = None, tasks: int | None = None, num_threads: int = 1,
                      progress: bool = True, critic: bool = False) -> tuple[artifacts.CompiledAgent, SplitMetrics]:
    """A loaded artifact on `split` of its own task set; LMs: `lms`, else built from `lm_config`, else its own.

    Actor-only unless `critic` (then the critic scores Φ at every step too); an editor has no critic to skip."""
    agent = artifacts.load(ref)
    roles: tuple[Role, ...] = ("editor",) if agent.is_editor else ("actor", "critic")
    if lms is None and lm_config is not None:
        lms = build_role_lms(lm_config, roles=roles)
    lms = lms or agent.build_lms(roles)
    if agent.is_editor:
        return agent, evaluate_editor(agent.program, taskset_of(agent), split, lm=lms["editor"], tasks=tasks,
                                      progress=progress)
    metrics = evaluate_program(agent.program, taskset_of(agent), split, lms=lms, tasks=tasks,
                               num_threads=num_threads, progress=progress, critic=critic)
    return agent, metrics


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
    path = taskset_path or Path(__file__).resolve().parent.parent / "tasksets" / "treasure-maze.toml"
    if not path.exists():
        raise UsageError(f"{path} not found; pass --taskset tasksets/treasure-maze.toml from a clone of the repository")
    started = time.perf_counter()
    taskset = load_taskset(path)
    config = load_lm_config()
    lms = build_role_lms(config, roles=COMPILE_ROLES)
    before = evaluate_program(PurposeAgent(), taskset, "test", lms=lms, tasks=test)
    train_before = evaluate_program(PurposeAgent(), taskset, "train", lms=lms, tasks=train)
    outcome = compile_taskset(path, out, lm_config=config, lms=lms, run_dir=run_dir, train=train, dev=dev,
                              config=CompileConfig(max_lm_calls=max_lm_calls, progress=True))
    compiled = artifacts.load(f"{outcome.path.parent}@v{outcome.manifest.version}")
    after = evaluate_program(compiled.program, taskset, "test", lms=lms, tasks=test)
    train_after = evaluate_program(compiled.program, taskset, "train", lms=lms, tasks=train)
    return DemoOutcome(before=before, after=after, compiled=outcome, seconds=time.perf_counter() - started,
                       train_before=train_before, train_after=train_after)
