"""The editor on a writing task set: first draft vs final output, the LM's feature accuracy, the score spread.

Two arms on the same tasks, same LM, in one process:

- cold   the editor with no archive: draft -> critique -> refine until the rubric's gate passes or
         `--max-iterations` drafts are spent;
- warm   the same, after the archive was warmed by running the editor over the first `--warm` train
         tasks (accepted outputs admitted by the gate); each test task is shown the archived answers
         most similar to it, and test outputs are not admitted (every test task sees the same archive).

Per arm: constraint pass rate (every constraint measured as met) of the first draft and of the output
kept, with 95% Wilson intervals; the gate's pass rate; mean drafts; LM calls, tokens and seconds per
task; the critique's claim accuracy against the verifier (word count, sentence count, per-constraint
verdicts); the spread (standard deviation, range, distinct values) of the Python composite and of
the LM's own overall_score over the same rounds; how similar outputs were to the examples shown
(mode collapse). Warm-up cost is reported apart. DSPy's response cache is off unless `--cache`.

    python benchmarks/editor.py --taskset tasksets/constrained-writing.toml --split test --json
    python benchmarks/editor.py --split test --tasks 10 --warm 20 --out editor.json
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from purpose_dspy.runtime.editing import EditResult, edit
from purpose_dspy.lm import build_role_lms, load_lm_config
from purpose_dspy.metrics import wilson_interval
from purpose_dspy.programs.editor import Editor
from purpose_dspy.tasksets import load_taskset
from purpose_dspy.writing.archive import Archive
from purpose_dspy.writing.tasks import tasks_of


def rate(hits: int, n: int) -> dict[str, Any]:
    lo, hi = wilson_interval(hits, n)
    return {"k": hits, "n": n, "rate": round(hits / n, 4) if n else None, "ci95": [lo, hi]}


def spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "mean": round(statistics.fmean(values), 3),
            "stdev": round(statistics.pstdev(values), 3), "range": round(max(values) - min(values), 3),
            "distinct": len(set(values))}


def summarize(results: list[EditResult], tasks: list) -> dict[str, Any]:
    n = len(results)
    rounds = [r for res in results for r in res.rounds]
    checks = [c for r in rounds for c in r.checks]
    by_feature: dict[str, list[bool]] = defaultdict(list)
    word_errors = []
    for c in checks:
        kind = c.feature.split(":")[0] if c.feature.startswith("constraint") else c.feature
        by_feature["constraint verdicts" if kind.startswith("constraint") else kind].append(c.correct)
        if c.feature == "word_count" and isinstance(c.claimed, int):
            word_errors.append(abs(c.claimed - c.measured))
    kinds: dict[str, list[bool]] = defaultdict(list)  # kept output, per constraint kind, as measured
    for res, task in zip(results, tasks):
        for constraint, met in zip(task.constraints, res.rounds[res.best].constraints_met):
            kinds[constraint.kind].append(met)
    scored = [r for r in rounds if r.llm_overall is not None]
    return {
        "tasks": n,
        "first_draft_constraints_pass": rate(sum(r.first_draft_passes for r in results), n),
        "final_constraints_pass": rate(sum(r.final_passes for r in results), n),
        "gate_pass": rate(sum(r.passed for r in results), n),
        "kept_output_by_constraint_kind": {kind: rate(sum(v), len(v)) for kind, v in sorted(kinds.items())},
        "mean_iterations": round(statistics.fmean(len(r.rounds) for r in results), 2) if n else None,
        "lm_calls_per_task": round(sum(len(r.lm_calls) for r in results) / n, 2) if n else None,
        "tokens_per_task": round(sum(c.tokens for r in results for c in r.lm_calls) / n, 1) if n else None,
        "seconds_per_task": round(sum(r.seconds for r in results) / n, 2) if n else None,
        "llm_feature_accuracy": {
            "all_claims": rate(sum(c.correct for c in checks), len(checks)),
            **{name: rate(sum(v), len(v)) for name, v in sorted(by_feature.items())},
            "word_count_mean_abs_error": round(statistics.fmean(word_errors), 2) if word_errors else None,
            "critiques_unusable": sum(r.critique_error is not None for r in rounds),
        },
        "spread_same_rounds": {
            "composite_python": spread([r.composite for r in scored]),
            "overall_score_llm": spread([float(r.llm_overall) for r in scored]),
        },
        "composite_gain_first_to_kept": round(statistics.fmean(
            r.rounds[r.best].composite - r.rounds[0].composite for r in results), 3) if n else None,
        "examples_shown_per_task": round(statistics.fmean(len(r.shown) for r in results), 2) if n else None,
        "max_overlap_with_shown": spread([r.rounds[0].copied_overlap for r in results if r.shown]),
    }


def run_arm(name: str, tasks: list, *, lm: Any, editor: Editor, archive: Archive | None, progress: bool) -> list[EditResult]:
    out = []
    for task in tqdm(tasks, desc=name, unit="task", file=sys.stderr, disable=not progress):
        out.append(edit(task, lm=lm, editor=editor, archive=archive, learn=False, exclude_own=True))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taskset", default="tasksets/constrained-writing.toml")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"])
    parser.add_argument("--tasks", type=int, default=None, help="first N tasks of the split (default: all)")
    parser.add_argument("--warm", type=int, default=None, help="first N train tasks warm the archive (default: all)")
    parser.add_argument("--max-iterations", type=int, default=3, help="drafts per task at most")
    parser.add_argument("--lm", default=None, help="LM of the editor (default: the embedded local model)")
    parser.add_argument("--api-base", default=None)
    parser.add_argument("--cache", action="store_true", help="use DSPy's response cache (off: seconds stay honest)")
    parser.add_argument("--out", default=None, help="also write the JSON report here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    taskset = load_taskset(args.taskset)
    tests = tasks_of(taskset, args.split)[: args.tasks]
    warmers = tasks_of(taskset, "train")[: args.warm]
    config = load_lm_config(model=args.lm, api_base=args.api_base, cache=args.cache)
    lm = build_role_lms(config, roles=("editor",))["editor"]
    editor = Editor(max_iterations=args.max_iterations)
    progress = not args.quiet

    report: dict[str, Any] = {
        "taskset": taskset.name, "split": args.split, "lm": config.for_role("editor").model, "cache": args.cache,
        "max_iterations": args.max_iterations, "rubric": editor.rubric.model_dump(),
    }
    cold = run_arm("cold", tests, lm=lm, editor=editor, archive=None, progress=progress)
    report["cold"] = summarize(cold, tests)

    archive = Archive(None)
    started = time.perf_counter()
    warm_runs = [edit(t, lm=lm, editor=editor, archive=archive, learn=True)
                 for t in tqdm(warmers, desc="warm-up (train)", unit="task", file=sys.stderr, disable=not progress)]
    report["warm_up"] = {"train_tasks": len(warmers), "admitted": len(archive),
                         "lm_calls": sum(len(r.lm_calls) for r in warm_runs),
                         "seconds": round(time.perf_counter() - started, 1),
                         "train_gate_pass": rate(sum(r.passed for r in warm_runs), len(warm_runs))}
    warm = run_arm("warm", tests, lm=lm, editor=editor, archive=archive, progress=progress)
    report["warm"] = summarize(warm, tests)
    c, w = report["cold"], report["warm"]
    report["warm_vs_cold"] = {
        "final_pass_rate_difference": round((w["final_constraints_pass"]["rate"] or 0) - (c["final_constraints_pass"]["rate"] or 0), 4),
        "lm_calls_per_task_ratio": round(w["lm_calls_per_task"] / c["lm_calls_per_task"], 3) if c["lm_calls_per_task"] else None,
        "paired": {"warm_only": sum(b.final_passes and not a.final_passes for a, b in zip(cold, warm)),
                   "cold_only": sum(a.final_passes and not b.final_passes for a, b in zip(cold, warm))},
    }
    archive.close()
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


def print_table(report: dict[str, Any]) -> None:
    def pct(r: dict[str, Any]) -> str:
        return f"{r['k']}/{r['n']} = {r['rate']:.0%} [{r['ci95'][0]:.0%}, {r['ci95'][1]:.0%}]" if r["n"] else "-"

    print(f"editor on {report['taskset']} ({report['split']}), LM {report['lm']}, up to {report['max_iterations']} drafts")
    print(f"{'':34} {'cold (no archive)':>30} {'warm (train archive)':>30}")
    rows = [
        ("first draft meets all constraints", lambda s: pct(s["first_draft_constraints_pass"])),
        ("kept output meets all constraints", lambda s: pct(s["final_constraints_pass"])),
        ("passes the gate", lambda s: pct(s["gate_pass"])),
        ("mean drafts", lambda s: f"{s['mean_iterations']}"),
        ("LM calls / task", lambda s: f"{s['lm_calls_per_task']}"),
        ("seconds / task", lambda s: f"{s['seconds_per_task']}"),
        ("critique claims right", lambda s: pct(s["llm_feature_accuracy"]["all_claims"])),
        ("composite spread (sd / range)", lambda s: _sd(s["spread_same_rounds"]["composite_python"])),
        ("LM overall_score spread", lambda s: _sd(s["spread_same_rounds"]["overall_score_llm"])),
    ]
    for label, get in rows:
        print(f"{label:34} {get(report['cold']):>30} {get(report['warm']):>30}")
    wu = report["warm_up"]
    print(f"warm-up: {wu['train_tasks']} train tasks, {wu['admitted']} admitted, {wu['lm_calls']} LM calls, {wu['seconds']}s")


def _sd(s: dict[str, Any]) -> str:
    return f"{s['stdev']} / {s['range']}" if s.get("n") else "-"


if __name__ == "__main__":
    raise SystemExit(main())
