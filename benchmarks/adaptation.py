"""Does the agent get better at the same tasks from its own experience? (memory + replay vs none)

Two arms run the same tasks (same seeds, same LM, same exploration rate) for several trials:

- experience: one persistence directory for all trials; before each actor call the agent sees its
  memory cards and the replay's encouraged / discouraged actions (and, where a remembered successful
  path goes on from this very state, that step as a demo); exploration takes actions the replay says
  were never tried here; after each trial the distiller proposes cards and MemoryCI judges them.
- baseline: no memory, no replay; exploration takes any valid action at the same rate.

No gold paths anywhere: first successes come from exploring. Printed: success per trial for both
arms, steps, exploration and demo counts, LM calls, tokens, seconds.

    python benchmarks/adaptation.py --env twx:coin --tasks 20 --trials 4 [--json]
    python benchmarks/adaptation.py --env treasure-maze --tasks 5 --trials 3 --max-steps 15
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
from tqdm import tqdm  # noqa: E402

from purpose_dspy import Task, make_env  # noqa: E402
from purpose_dspy.runtime.config import RunConfig  # noqa: E402
from purpose_dspy.experience import Experience  # noqa: E402
from purpose_dspy.lm import build_role_lms, load_lm_config  # noqa: E402
from purpose_dspy.runtime.orchestrator import Orchestrator  # noqa: E402
from purpose_dspy.programs import Distiller, PurposeAgent  # noqa: E402
from purpose_dspy.safeguards import PhiStore  # noqa: E402


class Arm:
    """One arm's lasting state: its experience directory (or none) and its Φ store."""

    def __init__(self, name: str, directory: Path | None) -> None:
        self.name = name
        self.experience = Experience(directory) if directory is not None else None
        self.phi_store = PhiStore()  # per arm: both arms pay for the critic the same way
        self.agent, self.distiller = PurposeAgent(), Distiller()

    def trial(self, trial: int, args, lms, env, bar) -> dict:
        """Every task once; then (with experience) the distiller. Returns the trial's row."""
        config = RunConfig(max_steps=args.max_steps, explore=args.explore, seed=trial)
        orchestrator = Orchestrator(self.agent, lms, config, phi_store=self.phi_store, experience=self.experience)
        results, started = [], time.perf_counter()
        for seed in range(args.tasks):
            results.append(orchestrator.run(env, Task(env_id=args.env, seed=seed, split=args.split)))
            bar.update(1)
        events = []
        if self.experience is not None and args.distill:
            with dspy.context(lm=lms["actor"], adapter=dspy.JSONAdapter()):
                events = self.experience.distill([r.trajectory for r in results], self.distiller, family=args.env)
        calls = [c for r in results for c in r.trajectory.lm_calls]
        memory = [r.memory for r in results if r.memory is not None]
        row = {
            "arm": self.name, "trial": trial,
            "successes": sum(r.trajectory.success for r in results), "tasks": len(results),
            "success_rate": round(sum(r.trajectory.success for r in results) / len(results), 4),
            "mean_steps": round(sum(len(r.trajectory.steps) for r in results) / len(results), 2),
            "explored_steps": sum(m.explored for m in memory) if memory else None,
            "demo_steps": sum(m.demo_steps for m in memory) if memory else None,
            "followed_steps": sum(m.followed for m in memory) if memory else None,
            "cards_proposed": len(events),
            "cards": _card_counts(self.experience),
            "lm_calls": len(calls), "tokens": sum(c.tokens for c in calls),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if args.out:  # one line per finished trial: a long run that is stopped keeps what it measured
            with open(args.out, "a") as out:
                out.write(json.dumps(row) + "\n")
        return row

    def close(self) -> None:
        if self.experience is not None:
            self.experience.close()


def _card_counts(experience: Experience | None) -> dict[str, int] | None:
    if experience is None:
        return None
    counts: dict[str, int] = {}
    for card in experience.memory.cards():
        counts[card.status] = counts.get(card.status, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="twx:coin")
    parser.add_argument("--tasks", type=int, default=20, help="tasks per trial (split seeds 0..N-1)")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--split", default="dev", choices=["train", "dev", "test"])
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--explore", type=float, default=0.3, help="per-step exploration rate (both arms)")
    parser.add_argument("--arms", default="experience,baseline", help="comma-separated: experience, baseline")
    parser.add_argument("--dir", default=None, help="persistence directory (default: a fresh temporary one)")
    parser.add_argument("--out", default=None, help="append each finished trial as a JSON line to this file")
    parser.add_argument("--no-distill", dest="distill", action="store_false", help="skip the distiller")
    parser.add_argument("--lm", default=None, help="LM for every role (default: the embedded local model)")
    parser.add_argument("--api-base", default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    lms = build_role_lms(load_lm_config(model=args.lm, api_base=args.api_base))
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    env = make_env(args.env)
    started = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(args.dir) if args.dir else Path(scratch)
        total = len(arms) * args.trials * args.tasks
        with tqdm(total=total, desc="episodes", unit="task", file=sys.stderr, disable=None) as bar:
            runs = [Arm(arm, base / arm if arm == "experience" else None) for arm in arms]
            try:
                for trial in range(1, args.trials + 1):  # arms take turns, so a stopped run stays paired
                    rows += [arm.trial(trial, args, lms, env, bar) for arm in runs]
            finally:
                for arm in runs:
                    arm.close()
                env.close()
    report = {
        "env": args.env, "tasks": args.tasks, "trials": args.trials, "split": args.split,
        "max_steps": args.max_steps, "explore": args.explore, "lm": lms["actor"].model,
        "rows": rows, "seconds": round(time.perf_counter() - started, 1),
    }
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm]
        if mine:
            report[f"{arm}_gain_points"] = round(100 * (mine[-1]["success_rate"] - mine[0]["success_rate"]), 1)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"adaptation on {args.env} ({args.split} seeds 0..{args.tasks - 1}), {args.trials} trials, "
              f"max {args.max_steps} steps, explore {args.explore}, LM {report['lm']}")
        print(f"{'arm':12}{'trial':>6}{'success':>9}{'steps':>7}{'explored':>9}{'demo':>6}{'followed':>9}"
              f"{'cards':>24}{'LM calls':>9}{'tokens':>9}{'s':>7}")
        for r in rows:
            cards = ",".join(f"{k}:{v}" for k, v in sorted((r["cards"] or {}).items())) or "-"
            print(f"{r['arm']:12}{r['trial']:>6}{r['successes']:>5}/{r['tasks']:<3}{r['mean_steps']:>7}"
                  f"{_dash(r['explored_steps']):>9}{_dash(r['demo_steps']):>6}{_dash(r['followed_steps']):>9}"
                  f"{cards:>24}{r['lm_calls']:>9}{r['tokens']:>9}{r['seconds']:>7}")
        gains = ", ".join(f"{arm} {report[f'{arm}_gain_points']:+.1f}" for arm in arms if f"{arm}_gain_points" in report)
        print(f"success gain from trial 1 to trial {args.trials} (points): {gains}; {report['seconds']} s")
    return report


def _dash(value) -> str:
    return "-" if value is None else str(value)


if __name__ == "__main__":
    main()
