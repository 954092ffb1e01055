"""How often the promotion gate promotes a candidate that is worse on held-out test seeds than its parent.

SCRIPTED LM (tests/copy_lm.py): the actor copies its last demo's action when it fits here, else takes the
first valid action; every other role answers as tests/rule_lm.py. This is control-flow evidence about the
gate (teleprompt/gate.py), NOT a measurement of a real model: what it shows is how the gate's rule behaves
on candidates that differ from their parent only through the demos a compile kept.

For each arm (a `min_support` value of CompileConfig) and compile seed s = 0..N-1: `PurposeTeleprompter`
compiles the zero-shot `PurposeAgent` (the parent) with CompileConfig(seed=s) on `--train` train seeds (a
window starting at position s * `--shift` of the train split, wrapping; shift 0: the same first seeds for
every s, so candidates differ by the exploration seed alone), gated on the first `--dev` dev seeds. The
candidate (`teleprompter.candidate`, promoted or not) then runs on those dev seeds again, so the old rule
sees all of them even when the staged gate stopped early, and parent and candidate run on the first
`--test` test seeds, actor-only (jobs.evaluate_program), temperature 0.

Per seed: the gate's decision (dev seeds gained / lost, one-sided sign-test p), dev and test successes of
both, test seeds gained / lost, and "worse on test" (fewer test successes than the parent). Per arm: the
promotion rate, the rate at which a promoted candidate is worse on test (Wilson 95%), and the same under the
old rule "promote when not worse on dev" (candidate dev successes >= the parent's), with how many of its
promotions were dev ties; and, the gate's cost, how often a refused candidate was better on test.
`--rounds`, `--explore` and `--alpha` set CompileConfig.rounds / explore and GateConfig.alpha for every arm.
The JSON records a hash of the library's code and whether it changed during the run (others edit it).

    python benchmarks/gate_regressions.py --out benchmarks/results/gate_regressions.json
    python benchmarks/gate_regressions.py --min-support 1 --rounds 3 --alpha 0.2 --json
    python benchmarks/gate_regressions.py --seeds 3 --train 4 --dev 5 --test 4 --min-support 1 --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from purpose_dspy.jobs import evaluate_program, limit
from purpose_dspy.metrics import SplitMetrics, paired, wilson_interval
from purpose_dspy.programs import PurposeAgent
from purpose_dspy.tasksets import TaskSet, load_taskset
from purpose_dspy.teleprompt import CompileConfig, PurposeTeleprompter, task_examples
from purpose_dspy.teleprompt.gate import GateConfig
from purpose_dspy.types import Task

ROOT = Path(__file__).resolve().parent.parent
LABEL = ("SCRIPTED LM (tests/copy_lm.py): control-flow evidence about the promotion gate, "
         "NOT a measurement of a real model")


def copy_lms() -> dict[str, Any]:
    """tests/copy_lm.py's scripted LM for every role (it imports tests/rule_lm.py by name: tests/ goes on the path)."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from copy_lm import copy_lms as scripted

    return scripted()[0]


def code_hash() -> str:
    """sha256 of the library's source and the scripted LM's: which code made the figures (others edit it)."""
    scripted = [ROOT / "tests" / "copy_lm.py", ROOT / "tests" / "rule_lm.py"]
    files = sorted([*(ROOT / "purpose_dspy").rglob("*.py"), *scripted])
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def train_window(tasks: list[Task], n: int, start: int) -> list[Task]:
    """`n` consecutive train tasks from position `start`, wrapping around the split (at most all of it)."""
    n = min(n, len(tasks))
    return [tasks[(start + i) % len(tasks)] for i in range(n)]


def rate(k: int, n: int) -> dict[str, Any]:
    """k of n as a rate with its Wilson 95% interval (rate None when n = 0)."""
    return {"k": k, "n": n, "rate": round(k / n, 4) if n else None, "ci": list(wilson_interval(k, n))}


def compile_seed(taskset: TaskSet, seed: int, min_support: int, args: argparse.Namespace,
                 parent_test: SplitMetrics) -> dict[str, Any]:
    """One compile seed: the gate's decision, then parent and candidate on dev (the old rule) and test."""
    started = time.perf_counter()
    lms = copy_lms()
    train = train_window(taskset.tasks("train"), args.train, seed * args.shift)
    examples = {"purpose": taskset.purpose, "max_steps": taskset.max_steps}
    config = CompileConfig(seed=seed, min_support=min_support, rounds=args.rounds, explore=args.explore,
                           gate=GateConfig(alpha=args.alpha), progress=False)
    teleprompter = PurposeTeleprompter(lms, config)
    teleprompter.compile(PurposeAgent(), trainset=task_examples(train, **examples),
                         valset=task_examples(limit(taskset.tasks("dev"), args.dev), **examples))
    report, candidate = teleprompter.report, teleprompter.candidate
    gate, parent_dev = report.gate, report.before
    dev = evaluate_program(candidate, taskset, "dev", lms=lms, tasks=args.dev, progress=False)
    test = evaluate_program(candidate, taskset, "test", lms=lms, tasks=args.test, progress=False)
    on_dev, on_test = paired(dev, parent_dev), paired(test, parent_test)
    again = {t.task_id: t.success for t in dev.tasks}
    return {
        "seed": seed, "train_seeds": [t.seed for t in train],
        "gate": {"promoted": gate.promoted, "wins": gate.comparison.wins, "losses": gate.comparison.losses,
                 "n": gate.comparison.n, "p": round(gate.p_value, 4), "stopped_early": gate.stopped_early,
                 "reason": gate.reason},
        # the compile's own "after" run and the full-dev run of the same candidate agree seed by seed
        "dev_runs_agree": all(again.get(t.task_id) == t.success for t in report.after.tasks),
        "dev": {"n": on_dev.n, "parent": on_dev.parent_successes, "candidate": on_dev.candidate_successes,
                "wins": on_dev.wins, "losses": on_dev.losses},
        "old_rule": {"promoted": on_dev.not_worse,
                     "tie": on_dev.n > 0 and on_dev.candidate_successes == on_dev.parent_successes},
        "test": {"n": on_test.n, "parent": on_test.parent_successes, "candidate": on_test.candidate_successes,
                 "wins": on_test.wins, "losses": on_test.losses},
        "worse_on_test": on_test.candidate_successes < on_test.parent_successes,
        "better_on_test": on_test.candidate_successes > on_test.parent_successes,
        "pool_demos": len(candidate.actor.act.demos), "train_paths": len(candidate.actor.paths),
        "train_solved": report.train.successes if report.train else None,
        "compile_lm_calls": report.lm_calls, "seconds": round(time.perf_counter() - started, 1),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The arm's rates, counted from its rows."""
    promoted = [r for r in rows if r["gate"]["promoted"]]
    old = [r for r in rows if r["old_rule"]["promoted"]]
    old_ties = [r for r in old if r["old_rule"]["tie"]]
    refused = [r for r in rows if not r["gate"]["promoted"]]
    return {
        "compiles": len(rows),
        "promoted": rate(len(promoted), len(rows)),
        "promoted_worse_on_test": rate(sum(r["worse_on_test"] for r in promoted), len(promoted)),
        "promoted_better_on_test": rate(sum(r["better_on_test"] for r in promoted), len(promoted)),
        "refused_better_on_test": rate(sum(r["better_on_test"] for r in refused), len(refused)),
        "candidates_worse_on_test": rate(sum(r["worse_on_test"] for r in rows), len(rows)),
        "candidates_equal_on_test": rate(sum(r["test"]["candidate"] == r["test"]["parent"] for r in rows), len(rows)),
        "old_rule": {
            "promoted": rate(len(old), len(rows)),
            "promoted_worse_on_test": rate(sum(r["worse_on_test"] for r in old), len(old)),
            "promoted_better_on_test": rate(sum(r["better_on_test"] for r in old), len(old)),
            "ties_promoted": rate(len(old_ties), len(old)),
            "ties_promoted_worse_on_test": rate(sum(r["worse_on_test"] for r in old_ties), len(old_ties)),
        },
    }


def fraction(r: dict[str, Any]) -> str:
    if not r["n"]:
        return f"{r['k']}/0 (no case) [0%, 100%]"
    return f"{r['k']}/{r['n']} = {r['rate']:.0%} [{r['ci'][0]:.0%}, {r['ci'][1]:.0%}]"


def render(report: dict[str, Any]) -> str:
    """The printed table: a row per compile seed, then the arm's rates."""
    s = report["settings"]
    lines = [LABEL, (f"{report['taskset']}: train {s['train']} (window shift {s['shift']}), dev {s['dev']} (the gate's "
                     f"valset), test {s['test']} held out; parent = zero-shot PurposeAgent, test "
                     f"{report['parent_test']['successes']}/{report['parent_test']['n']}; compile rounds "
                     f"{s['rounds']}, explore {s['explore']}, gate alpha {s['alpha']}")]
    for arm in report["arms"]:
        lines += ["", f"min_support={arm['min_support']}",
                  "seed  gate      dev +/-  p       dev c/p  old rule  test c/p  test +/-  worse  pool"]
        for r in arm["rows"]:
            g, d, t = r["gate"], r["dev"], r["test"]
            verdict = "promote" if g["promoted"] else "stopped" if g["stopped_early"] else "refuse"
            old = ("tie" if r["old_rule"]["tie"] else "promote") if r["old_rule"]["promoted"] else "refuse"
            lines.append(f"{r['seed']:<5} {verdict:<9} {g['wins']:>2}-{g['losses']:<5} {g['p']:<7.3f} "
                         f"{d['candidate']:>2}/{d['parent']:<5} {old:<9} {t['candidate']:>2}/{t['parent']:<5} "
                         f"{t['wins']:>2}-{t['losses']:<6} {'YES' if r['worse_on_test'] else 'no':<6} "
                         f"{r['pool_demos']}")
        lines += rates(arm["summary"])
    if report.get("code_changed_during_run"):
        lines.append("WARNING: the library's code changed during this run: the rows may mix two versions")
    if len(report["arms"]) > 1:
        lines += ["", f"all {report['pooled']['compiles']} compiles pooled", *rates(report["pooled"])]
    return "\n".join(lines)


def rates(m: dict[str, Any]) -> list[str]:
    """A summary's rates as three lines: the gate, the old rule, every candidate."""
    o = m["old_rule"]
    return [(f"new gate: promoted {fraction(m['promoted'])}; a promoted candidate worse on test "
             f"{fraction(m['promoted_worse_on_test'])}; a refused one better on test "
             f"{fraction(m['refused_better_on_test'])}"),
            (f"old rule (promote when dev not worse): promoted {fraction(o['promoted'])}; worse on test "
             f"{fraction(o['promoted_worse_on_test'])}; of its promotions dev ties {fraction(o['ties_promoted'])}"),
            (f"all candidates: worse on test {fraction(m['candidates_worse_on_test'])}, equal "
             f"{fraction(m['candidates_equal_on_test'])}")]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taskset", default=str(ROOT / "tasksets" / "treasure-maze.toml"))
    parser.add_argument("--seeds", type=int, default=10, help="compile seeds 0..N-1 per arm (at least 5 to report)")
    parser.add_argument("--train", type=int, default=20, help="train seeds per compile (a window of the train split)")
    parser.add_argument("--shift", type=int, default=0, help="compile seed s starts its train window at s * shift")
    parser.add_argument("--dev", type=int, default=20, help="first N dev seeds: the gate's valset")
    parser.add_argument("--test", type=int, default=20, help="first N test seeds, held out")
    parser.add_argument("--min-support", default="2,1",
                        help="CompileConfig.min_support values, comma-separated: one arm each")
    parser.add_argument("--rounds", type=int, default=1, help="CompileConfig.rounds (on unsolved train tasks)")
    parser.add_argument("--explore", type=float, default=0.3, help="CompileConfig.explore of the train rollouts")
    parser.add_argument("--alpha", type=float, default=0.1, help="GateConfig.alpha (0.1, the gate's default)")
    parser.add_argument("--out", default=None, help="write the JSON report (with the command line) here")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    logging.getLogger("dspy.primitives.module").setLevel(logging.ERROR)  # Actor.forward's warning, per call
    logging.getLogger("purpose_dspy.teleprompt.base").setLevel(logging.ERROR)  # "refused": the rows say it
    taskset = load_taskset(args.taskset)
    parent_test = evaluate_program(PurposeAgent(), taskset, "test", lms=copy_lms(), tasks=args.test, progress=False)
    command = "python benchmarks/gate_regressions.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    report: dict[str, Any] = {
        "command": command.strip(), "measurement": False, "lm": "scripted copy LM (tests/copy_lm.py)", "label": LABEL,
        "taskset": taskset.name, "env": taskset.env, "max_steps": taskset.max_steps,
        "settings": {"seeds": args.seeds, "train": args.train, "shift": args.shift, "dev": args.dev, "test": args.test,
                     "rounds": args.rounds, "explore": args.explore, "alpha": args.alpha},
        "parent_test": {"n": parent_test.n, "successes": parent_test.successes}, "code_sha256": code_hash(),
        "arms": [],
    }
    for min_support in [int(v) for v in args.min_support.split(",") if v.strip()]:
        rows = [compile_seed(taskset, seed, min_support, args, parent_test) for seed in range(args.seeds)]
        report["arms"].append({"min_support": min_support, "rows": rows, "summary": summary(rows)})
        report["pooled"] = summary([r for arm in report["arms"] for r in arm["rows"]])  # every arm's compiles
        report["code_changed_during_run"] = code_hash() != report["code_sha256"]
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report) if args.json else render(report))
    return report


if __name__ == "__main__":
    main()
