"""Scale out on Ray: episodes per second of an environment-bound workload, local against 1 and 2 Ray workers.

The workload is TextWorldExpress (`twx:coin` by default, a JVM per environment) driven by the scripted copy
LM of tests/copy_lm.py (the actor takes a valid action; no model runs), actor-only as `eval` runs, so an
episode's time is the environment and the framework around it, the part Ray spreads over processes. In one
process, after a warm-up of each arm (JVMs started, the agent sent), the same tasks run:

- `local`, 1 and 2 threads (threads share one interpreter: the second helps only while the first waits);
- `ray`, 1 and 2 workers (`purpose_dspy/runtime/ray_backend.py`, a local Ray with this machine's CPUs);

then Ray's own cost: the round trip of a no-op actor call (the floor under every task), the start-up of the
local Ray and of a worker. Every arm must give the same per-task outcomes (`same_outcomes`).

    python benchmarks/scale_out.py [--env twx:coin] [--episodes 24] [--max-steps 12] [--json] [--out FILE]

Run it with nothing else on the cores (`load_average` in the JSON says how busy the machine was).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parent.parent
TESTS = str(ROOT / "tests")
sys.path.insert(0, TESTS)

from purpose_dspy.programs.agent import PurposeAgent  # noqa: E402
from purpose_dspy.runtime.config import RunConfig  # noqa: E402
from purpose_dspy.runtime.rollouts import run_tasks  # noqa: E402
from purpose_dspy.runtime.workers import LMFactory  # noqa: E402
from purpose_dspy.types import Task  # noqa: E402

COPYING = LMFactory(function="ray_lms:copying")


def outcome(result) -> tuple:
    t = result.trajectory
    return (t.task.task_id, t.success, [s.action.text if s.action else None for s in t.steps])


def timed(tasks: list[Task], config: RunConfig, threads: int, backend=None) -> tuple[float, list]:
    """Seconds for the tasks after a warm-up of as many tasks as workers (environments started, agent sent)."""
    from copy_lm import copy_lms

    lms, _ = copy_lms()
    warm = [tasks[0].model_copy(update={"seed": 1000 + i}) for i in range(threads)]
    run_tasks(PurposeAgent(), warm, lms=lms, config=config, num_threads=threads, progress=False, backend=backend)
    started = time.perf_counter()
    results = run_tasks(PurposeAgent(), tasks, lms=lms, config=config, num_threads=threads, progress=False,
                        backend=backend)
    return time.perf_counter() - started, results


def arm(name: str, workers: int, seconds: float, results: list) -> dict:
    steps = sum(len(r.trajectory.steps) for r in results)
    return {"backend": name, "workers": workers, "episodes": len(results), "steps": steps,
            "seconds": round(seconds, 3), "episodes_per_s": round(len(results) / seconds, 3),
            "steps_per_s": round(steps / seconds, 2), "successes": sum(r.trajectory.success for r in results)}


def environment_only(tasks: list[Task], max_steps: int) -> dict:
    """The environment alone on the same tasks (reset, then its first valid action each step, no LM, no framework):
    how much of an episode is the environment's."""
    from purpose_dspy import make_env

    env = make_env(tasks[0].env_id)
    env.reset(tasks[0])  # the JVM starts outside the timing
    started, steps = time.perf_counter(), 0
    for task in tasks:
        state = env.reset(task)
        for _ in range(max_steps):
            if state.done or not state.valid_actions:
                break
            state, steps = env.step(state.valid_actions[0]), steps + 1
    seconds = time.perf_counter() - started
    env.close()
    return {"seconds_per_episode": round(seconds / len(tasks), 4), "ms_per_step": round(1000 * seconds / max(1, steps), 2)}


def noop_round_trip(ray, calls: int = 300) -> dict:
    """Milliseconds of `ray.get(actor.noop.remote())`: what Ray adds to every task, whatever the task."""
    @ray.remote(num_cpus=0)
    class Noop:
        def noop(self, payload=None):
            return payload

    actor = Noop.remote()
    ray.get(actor.noop.remote())
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        ray.get(actor.noop.remote("x" * 2000))  # about a task's JSON
        times.append((time.perf_counter() - started) * 1000)
    ray.kill(actor)
    times.sort()
    return {"calls": calls, "p50_ms": round(statistics.median(times), 3), "p90_ms": round(times[int(0.9 * calls)], 3),
            "mean_ms": round(statistics.fmean(times), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="twx:coin")
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument("--out", default=None, help="Also write the JSON (with the command) to this file.")
    args = parser.parse_args()

    import ray

    from purpose_dspy.runtime.ray_backend import RayBackend

    tasks = [Task(env_id=args.env, seed=i, split="train") for i in range(args.episodes)]
    config = RunConfig(max_steps=args.max_steps, score_phi=False)
    env_alone = environment_only(tasks, args.max_steps)
    arms, outcomes = [], []
    for threads in (1, 2):
        seconds, results = timed(tasks, config, threads)
        arms.append(arm("local", threads, seconds, results))
        outcomes.append([outcome(r) for r in results])
    started = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": TESTS}})
    init_seconds = time.perf_counter() - started
    startup = {}
    for workers in (1, 2):
        started = time.perf_counter()
        with RayBackend(workers, COPYING) as backend:
            seconds, results = timed(tasks, config, workers, backend)
            startup[workers] = time.perf_counter() - started - seconds
        arms.append(arm("ray", workers, seconds, results))
        outcomes.append([outcome(r) for r in results])
    by = {(a["backend"], a["workers"]): a["episodes_per_s"] for a in arms}
    report = {
        "command": " ".join(["python", "benchmarks/scale_out.py", *sys.argv[1:]]),
        "lm": "scripted copy LM (tests/copy_lm.py): no model runs; an episode is the environment and the framework",
        "workload": {"env": args.env, "episodes": args.episodes, "max_steps": args.max_steps, "actor_only": True},
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
        "environment_alone": env_alone,
        "arms": arms,
        "same_outcomes": all(o == outcomes[0] for o in outcomes),
        "speedup": {"ray_2_vs_ray_1": round(by["ray", 2] / by["ray", 1], 2),
                    "ray_2_vs_local_1": round(by["ray", 2] / by["local", 1], 2),
                    "ray_1_vs_local_1": round(by["ray", 1] / by["local", 1], 2),
                    "local_2_vs_local_1": round(by["local", 2] / by["local", 1], 2)},
        "ray_overhead": {"noop_round_trip": noop_round_trip(ray), "init_seconds": round(init_seconds, 2),
                         "backend_start_and_warm_up_seconds": {str(k): round(v, 2) for k, v in startup.items()}},
    }
    ray.shutdown()
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.json:
        print(text)
        return
    for a in arms:
        print(f"{a['backend']:<6} {a['workers']} worker(s): {a['episodes_per_s']:6.2f} episodes/s "
              f"({a['steps_per_s']:.1f} steps/s, {a['seconds']:.1f} s)")
    print(f"same outcomes on every arm: {report['same_outcomes']}; Ray no-op round trip "
          f"{report['ray_overhead']['noop_round_trip']['p50_ms']} ms (p50)")


if __name__ == "__main__":
    main()
