"""The Ray backend (`runtime/ray_backend.py`): the same per-task results, demo pool and artifact hash as the local
path, one writer for the stores, a worker killed mid-episode retried with nothing lost or duplicated.

Workers build the scripted LMs of this folder (`ray_lms.py`) from an `LMFactory`; one local Ray with 2 CPUs serves
the whole module. Without Ray installed, the tests that need it are skipped; the JSON round trips run anyway.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import pytest
from rule_lm import rule_lms

from purpose_dspy import artifacts
from purpose_dspy.errors import UsageError
from purpose_dspy.jobs import compile_taskset, evaluate_program
from purpose_dspy.lm import load_lm_config
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.runtime.backends import backend_flags, chosen, open_backend
from purpose_dspy.runtime.config import RunConfig
from purpose_dspy.runtime.rollouts import run_tasks
from purpose_dspy.runtime.workers import LMFactory, SnapshotPhiStore, agent_from_json, agent_json
from purpose_dspy.safeguards import PhiStore
from purpose_dspy.tasksets import load_taskset
from purpose_dspy.teleprompt import CompileConfig
from purpose_dspy.teleprompt.checkpoint import FILENAME

ROOT = Path(__file__).resolve().parent.parent
MAZE = ROOT / "tasksets" / "treasure-maze.toml"
COIN = ROOT / "tasksets" / "twx-coin.toml"
RULE = LMFactory(function="ray_lms:rule")
COPYING = LMFactory(function="ray_lms:copying")
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed: pip install 'purpose-dspy[ray]' to run the Ray backend tests")


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray with 2 CPUs for the module; its workers find this folder's modules (ray_lms, rule_lm)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no test touches the network: Ray's usage report stays off
    import ray

    here = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": path, "DSPY_CACHEDIR": os.environ["DSPY_CACHEDIR"]}})
    yield ray
    ray.shutdown()


def outcomes(metrics) -> list[dict]:
    """Per task: everything but the wall time and the trajectory's random id."""
    return [t.model_dump(exclude={"seconds", "trajectory_id"}) for t in metrics.tasks]


def episode(result) -> tuple:
    t = result.trajectory
    return (t.task.task_id, t.success, t.stop_reason, [(s.action.text if s.action else None, s.score.phi_before,
                                                        s.score.phi_after, s.score.flags) for s in t.steps])


def compiled(tmp: Path, name: str, taskset: Path = MAZE, lms=None, worker_lms=RULE, n: int = 4, **config) -> tuple:
    """A compile on the first `n` train and dev seeds with the scripted LM; the outcome and its job directory."""
    lms = lms or rule_lms()[0]
    outcome = compile_taskset(taskset, tmp / name / "out", lm_config=load_lm_config(), lms=lms, worker_lms=worker_lms,
                              run_dir=tmp / name / "runs", train=n, dev=n, config=CompileConfig(progress=False, **config))
    [job] = [p for p in (tmp / name / "runs").iterdir() if p.is_dir()]
    return outcome, job


def checkpoint_keys(job: Path) -> list[str]:
    """The checkpoint's keys in order (trajectory ids are derived from the job key, phase and task: no random ids)."""
    return [json.loads(line)["key"] for line in (job / FILENAME).read_text().splitlines()[1:]]


_TIMES = {"created", "updated"}


def content(version: Path) -> str:
    """The sha256 of a version's files apart from timings: every timestamp 0, every id as written (trajectory ids
    come from the job key, phase and task id; a card's id from what it says and its trajectories)."""

    def same(value, key=None):
        if key in _TIMES:
            return 0
        if isinstance(value, dict):
            return {k: same(v, k) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [same(v, key) for v in value]
        return value

    files = sorted(p for p in version.iterdir() if p.name != "manifest.json")
    text = [(p.name, same(json.loads(p.read_text())) if p.suffix == ".json" else p.read_text()) for p in files]
    return hashlib.sha256(json.dumps(text, sort_keys=True).encode()).hexdigest()


def same_compile(a, b) -> None:
    """Same artifact content (demos, memory, task set), same per-task results in every phase, same demo pool."""
    assert content(a.path) == content(b.path)
    assert set(a.manifest.files) == set(b.manifest.files)
    assert a.manifest.files["taskset.toml"] == b.manifest.files["taskset.toml"]
    for phase in ("train", "before", "after"):
        assert outcomes(getattr(a.report, phase)) == outcomes(getattr(b.report, phase)), phase
        assert [t.trajectory_id for t in getattr(a.report, phase).tasks] == \
               [t.trajectory_id for t in getattr(b.report, phase).tasks], phase
    assert [d.model_dump() for d in a.report.demos] == [d.model_dump() for d in b.report.demos]


@pytest.fixture(scope="module")
def local_maze(tmp_path_factory):
    return compiled(tmp_path_factory.mktemp("local"), "local")


# -- without Ray: what crosses between driver and worker ------------------------------------------------
def test_an_agent_crosses_as_json_and_prompts_as_before():
    program = artifacts.load(ROOT / "compiled" / "treasure-maze").program
    rebuilt = agent_from_json(agent_json(program))
    assert rebuilt.dump_state() == program.dump_state()
    assert rebuilt.actor.dump_state() == program.actor.dump_state()  # the task paths too
    assert rebuilt.critic.fingerprint("m") == program.critic.fingerprint("m")  # the Φ store's namespace
    assert [type(p.signature) for _, p in rebuilt.named_predictors()] == \
           [type(p.signature) for _, p in program.named_predictors()]


def test_a_snapshot_is_read_only_and_says_what_the_episode_looked_up_and_settled(tmp_path):
    disk = PhiStore(tmp_path / "phi")
    disk.settle("a", 3.0)
    assert disk.items() == {"a": 3.0}
    phi = SnapshotPhiStore(disk.items())
    assert phi.get("a") == 3.0 and phi.settle("a", 9.0) == 3.0
    assert phi.get("b") is None and phi.settle("b", 5.0) == 5.0 and phi.settle("b", 7.0) == 5.0
    assert phi.settled == {"b": 5.0} and phi.missed == {"b"}
    assert disk.items() == {"a": 3.0}  # nothing written to the driver's store
    disk.close()


def test_the_cli_flags_choose_the_backend_and_a_missing_lm_spec_is_refused():
    assert chosen() == ("local", None)
    assert chosen(None, "auto") == ("ray", "auto")
    with backend_flags("ray", None):
        assert chosen("local", None) == ("ray", None)
    with pytest.raises(UsageError, match="--ray-address"):
        chosen("local", "auto")
    with pytest.raises(UsageError, match="worker_lms"), open_backend("ray", workers=2, lms=None):
        pass
    with open_backend("local") as backend:
        assert backend is None


# -- on Ray -------------------------------------------------------------------------------------------------
@needs_ray
def test_eval_gives_the_same_results_on_ray_as_locally(ray_cluster):
    taskset = load_taskset(MAZE)
    lms, _ = rule_lms()
    local = evaluate_program(PurposeAgent(), taskset, "dev", lms=lms, tasks=6, critic=True, progress=False)
    ray = evaluate_program(PurposeAgent(), taskset, "dev", lms=lms, tasks=6, critic=True, progress=False,
                           num_threads=2, backend="ray", worker_lms=RULE)
    assert outcomes(ray) == outcomes(local)
    assert local.successes > 0 and sum(t.steps for t in local.tasks) > 6  # real episodes ran


@needs_ray
def test_compile_gives_the_same_artifact_on_ray_as_locally(ray_cluster, tmp_path, local_maze):
    (local, local_job) = local_maze
    ray, ray_job = compiled(tmp_path, "ray", backend="ray", num_threads=2)
    same_compile(local, ray)
    program = artifacts.load(ray.path).program
    assert len(program.actor.paths) > 0 and program.critic.judge.demos  # paths and critic demos to compare
    # one writer: the driver's checkpoint and Φ store hold what the local compile's do
    assert checkpoint_keys(ray_job) == checkpoint_keys(local_job)
    assert PhiStore(ray_job / "phi").items() == PhiStore(local_job / "phi").items()
    assert len(PhiStore(local_job / "phi")) > 0


@needs_ray
def test_a_worker_killed_mid_episode_is_retried_and_nothing_is_lost_or_duplicated(ray_cluster, tmp_path, local_maze):
    (local, local_job) = local_maze
    flag = tmp_path / "die-once"
    flag.touch()
    dying = LMFactory(function="ray_lms:dying", kwargs={"flag": str(flag), "at_call": 5})
    lm_config = load_lm_config()
    outcome = compile_taskset(MAZE, tmp_path / "out", lm_config=lm_config, lms=rule_lms()[0], worker_lms=dying,
                              run_dir=tmp_path / "runs", train=4, dev=4,
                              config=CompileConfig(progress=False, backend="ray", num_threads=2))
    assert not flag.exists(), "a worker died at its 5th LM call"
    [job] = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    same_compile(local, outcome)
    keys = checkpoint_keys(job)
    assert keys == checkpoint_keys(local_job) and len(keys) == len(set(keys))
    assert PhiStore(job / "phi").items() == PhiStore(local_job / "phi").items()


@needs_ray
def test_a_killed_actor_is_replaced_and_an_episode_that_read_stale_phi_is_rerun(ray_cluster):
    taskset = load_taskset(MAZE)
    a, b = taskset.tasks("test")[:2]
    tasks = [a, a, b, b]  # each twice in one wave: run one after the other, the second finds the first's Φ settled
    config = RunConfig(max_steps=taskset.max_steps)  # with the critic: Φ is looked up and settled
    lms, _ = rule_lms()
    local = run_tasks(PurposeAgent(), tasks, lms=lms, config=config, progress=False)
    assert any("cached" in s.score.flags for s in local[1].trajectory.steps)
    with open_backend("ray", workers=2, lms=RULE) as backend:
        killed = []

        def kill_once(task, result):
            if not killed:
                killed.append(task)
                ray_cluster.kill(backend.slots[1])  # busy with task 2 of this wave, or idle till the next

        ray = run_tasks(PurposeAgent(), tasks, lms=lms, config=config, progress=False, backend=backend,
                        num_threads=2, on_result=kill_once)
        assert backend.retries == 1
        assert backend.reruns >= 2  # the second of each pair saw a snapshot without the first's Φ
    assert [episode(r) for r in ray] == [episode(r) for r in local]
    assert [len(r.trajectory.lm_calls) for r in ray] == [len(r.trajectory.lm_calls) for r in local]


@needs_ray
def test_the_cli_eval_on_ray_matches_local_through_a_served_endpoint(ray_cluster, server, tmp_path):
    from click.testing import CliRunner

    from purpose_dspy.cli import main

    config = tmp_path / "lm.toml"  # response cache off: a cached answer reports no tokens, and the second run would hit
    config.write_text(f'[lm]\nmodel = "openai/scripted"\napi_base = "http://127.0.0.1:{server.server_port}/v1"\n'
                      "cache = false\n")
    flags = ["eval", str(ROOT / "compiled" / "treasure-maze"), "--split", "test", "--tasks", "4", "--json",
             "--config", str(config)]
    local = CliRunner().invoke(main, flags)
    ray = CliRunner().invoke(main, [*flags, "--backend", "ray", "--num-threads", "2"])
    assert local.exit_code == 0 and ray.exit_code == 0, local.output + ray.output
    a, b = json.loads(local.stdout), json.loads(ray.stdout)
    assert [{k: v for k, v in t.items() if k not in ("seconds", "trajectory_id")} for t in a["tasks"]] == \
           [{k: v for k, v in t.items() if k not in ("seconds", "trajectory_id")} for t in b["tasks"]]


@needs_ray
@pytest.mark.envs
def test_twx_coin_eval_and_compile_on_ray_match_local(ray_cluster, tmp_path):
    from copy_lm import copy_lms

    taskset = load_taskset(COIN)
    lms, _ = copy_lms()
    local = evaluate_program(PurposeAgent(), taskset, "dev", lms=lms, tasks=4, critic=True, progress=False)
    ray = evaluate_program(PurposeAgent(), taskset, "dev", lms=lms, tasks=4, critic=True, progress=False,
                           num_threads=2, backend="ray", worker_lms=COPYING)
    assert outcomes(ray) == outcomes(local)
    a, _ = compiled(tmp_path, "local", COIN, lms=copy_lms()[0], n=3)
    b, _ = compiled(tmp_path, "ray", COIN, lms=copy_lms()[0], worker_lms=COPYING, n=3, backend="ray", num_threads=2)
    same_compile(a, b)
