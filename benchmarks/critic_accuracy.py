"""How well does the purpose critic's Φ track true progress, and what do the safeguards buy?

On an environment that knows its true progress (TextWorldExpress `score`, ScienceWorld score), each
episode replays three paths from the same start: the gold path, the gold path with random valid
actions slipped in (perturbed), and random valid actions. Every transition is judged once by the
critic LM; that one judgment goes through two guards in the same process:

- guarded: the safeguards (all on, or minus `--ablate ...`), one Φ store for the whole run;
- raw:     no safeguards at all (the LM's own numbers, the baseline; it always asks the LM).

Printed for both: Spearman correlation of Φ_after with true progress, agreement of the sign of the
delta with the sign of the progress change, and the precision / recall of reward (reward given on a
step where progress really rose / progress steps that were rewarded); then flag rates, LM calls and
tokens, Φ-store hit rate and the steps that needed no LM call at all.

    python benchmarks/critic_accuracy.py --env twx:cookingworld --episodes 20 [--json]
    python benchmarks/critic_accuracy.py --env twx:cookingworld --episodes 20 --ablate evidence
    python benchmarks/critic_accuracy.py --env twx:coin --episodes 5 --lm openai/gpt-4o-mini
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
from tqdm import tqdm  # noqa: E402

from purpose_dspy import Task, make_env  # noqa: E402
from purpose_dspy.lm import build_role_lms, load_lm_config  # noqa: E402
from purpose_dspy.lm.compact_adapter import CompactJSONAdapter  # noqa: E402
from purpose_dspy.programs import PurposeCritic  # noqa: E402
from purpose_dspy.runtime.trace import traced_copy  # noqa: E402
from purpose_dspy.safeguards import SAFEGUARDS, CriticGuard, PhiStore, SafeguardConfig  # noqa: E402
from purpose_dspy.types import LMCall, PurposeScore, State  # noqa: E402


@dataclass
class Judged:
    """One transition: true progress before/after, and the guarded and raw scores."""

    path: str
    progress_before: float
    progress_after: float
    guarded: PurposeScore
    raw: PurposeScore


@dataclass
class Tally:
    judged: list[Judged] = field(default_factory=list)
    calls: list[LMCall] = field(default_factory=list)
    no_lm_steps: int = 0


def paths_for(env, task: Task, rng: random.Random, insertions: int, random_steps: int) -> dict[str, list[str]]:
    """Action lists of the gold, perturbed and random paths of one task."""
    env.reset(task)
    gold = [a for a in env.gold_actions() if a not in ("look around", "inventory")]
    state = env.reset(task)
    perturbed, slots = [], set(rng.sample(range(len(gold)), min(insertions, len(gold))))
    for i, action in enumerate(gold):
        if i in slots:
            detour = rng.choice([a for a in state.valid_actions if a not in gold] or list(state.valid_actions))
            perturbed.append(detour)
            state = env.step(detour)
            if state.done:
                break
        perturbed.append(action)
        state = env.step(action)
        if state.done:
            break
    state, wander = env.reset(task), []
    for _ in range(random_steps):
        action = rng.choice(list(state.valid_actions))
        wander.append(action)
        state = env.step(action)
        if state.done:
            break
    return {"gold": gold, "perturbed": perturbed, "random": wander}


def replay(env, task, name, actions, critic, lm, guards, tally, bar, adapter) -> None:
    state = env.reset(task)
    purpose = env.purpose
    context = {label: {"phi": None, "history": []} for label in guards}
    for action in actions:
        if state.done or action not in state.valid_actions and state.valid_actions:
            break
        progress_before = env.progress()
        after = env.step(action)
        answer: list[PurposeScore] = []

        def judge(before: State = state, after: State = after, action: str = action) -> PurposeScore:
            if not answer:  # one LM judgment per transition, shared by both guards
                with dspy.context(lm=lm, adapter=adapter):
                    answer.append(critic(purpose=purpose, before=before, action=action, after=after).score)
            return answer[0]

        scores = {}
        for label, guard in guards.items():  # "guarded" first: did it need the LM at all?
            if label == "raw":
                tally.no_lm_steps += not answer
            ctx = context[label]
            scores[label] = guard.score(judge, purpose=purpose, before=state, after=after,
                                        phi_prev=ctx["phi"], history=ctx["history"])
            ctx["phi"] = scores[label].phi_after
            ctx["history"].append(scores[label].delta)
        tally.judged.append(Judged(name, progress_before, env.progress(), scores["guarded"], scores["raw"]))
        state = after
        bar.update(1)


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Rank correlation with average ranks for ties (None when either side is constant)."""
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    return round(statistics.correlation(ranks(xs), ranks(ys)), 4)


def sign(x: float, eps: float = 1e-9) -> int:
    return 0 if abs(x) <= eps else (1 if x > 0 else -1)


def accuracy(judged: list[Judged], which: str) -> dict:
    scores = [getattr(j, which) for j in judged]
    rose = [j.progress_after > j.progress_before + 1e-9 for j in judged]
    rewarded = [s.reward > 0 for s in scores]
    hits = sum(r and p for r, p in zip(rewarded, rose))
    return {
        "spearman_phi_progress": spearman([s.phi_after for s in scores], [j.progress_after for j in judged]),
        "sign_agreement": round(statistics.fmean(
            sign(s.delta) == sign(j.progress_after - j.progress_before) for s, j in zip(scores, judged)), 4),
        "reward_precision": round(hits / sum(rewarded), 4) if any(rewarded) else None,
        "reward_recall": round(hits / sum(rose), 4) if any(rose) else None,
        "rewarded_steps": sum(rewarded),
        "total_reward": round(sum(s.reward for s in scores), 3),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="twx:cookingworld", help="an environment with true progress")
    parser.add_argument("--episodes", type=int, default=5, help="tasks (train-split seeds 0..N-1)")
    parser.add_argument("--split", default="train", choices=["train", "dev", "test"])
    parser.add_argument("--insertions", type=int, default=2, help="random actions slipped into the gold path")
    parser.add_argument("--random-steps", type=int, default=6, help="length of the random path")
    parser.add_argument("--lm", default=None, help="critic LM (default: the embedded local model)")
    parser.add_argument("--api-base", default=None)
    parser.add_argument("--cache", action="store_true", help="use DSPy's LM response cache (off by default)")
    parser.add_argument("--ablate", action="append", default=[], choices=SAFEGUARDS, help="switch a safeguard off")
    parser.add_argument("--adapter", default="compact", choices=["compact", "dspy"],
                        help="prompt format: CompactJSONAdapter (the default) or DSPy's JSONAdapter")
    parser.add_argument("--reasoning", action="store_true", help="the critic writes a reasoning sentence before its scores")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    adapter = CompactJSONAdapter() if args.adapter == "compact" else dspy.JSONAdapter()

    config = load_lm_config(model=args.lm, api_base=args.api_base, cache=args.cache)
    base_lm = build_role_lms(config, roles=("critic",))["critic"]
    tally = Tally()
    lm = traced_copy(base_lm, "critic", tally.calls)
    critic = PurposeCritic(reasoning=args.reasoning)
    store = PhiStore()  # in memory: one store for the whole benchmark run, fresh each time
    guards = {
        "guarded": CriticGuard(SafeguardConfig().without(*args.ablate), store, namespace=critic.fingerprint(lm.model)),
        "raw": CriticGuard(SafeguardConfig(enabled=frozenset()), namespace="raw"),
    }
    env = make_env(args.env)
    rng = random.Random(0)
    started = time.perf_counter()
    try:
        tasks = [Task(env_id=args.env, seed=s, split=args.split) for s in range(args.episodes)]
        plans = [(task, paths_for(env, task, rng, args.insertions, args.random_steps)) for task in tasks]
        total = sum(len(actions) for _, paths in plans for actions in paths.values())
        with tqdm(total=total, desc="transitions", unit="step", file=sys.stderr, disable=None) as bar:
            for task, paths in plans:
                for name, actions in paths.items():
                    replay(env, task, name, actions, critic, lm, guards, tally, bar, adapter)
    finally:
        env.close()

    judged = tally.judged
    flags = Counter(f for j in judged for f in j.guarded.flags)
    lookups = store.hits + store.misses
    report = {
        "env": args.env, "episodes": args.episodes, "split": args.split, "critic_lm": lm.model,
        "adapter": args.adapter, "reasoning": args.reasoning, "ablated": sorted(args.ablate), "transitions": len(judged),
        "paths": dict(Counter(j.path for j in judged)),
        "progress_steps": sum(j.progress_after > j.progress_before for j in judged),
        "guarded": accuracy(judged, "guarded"),
        "raw": accuracy(judged, "raw"),
        "flag_rates": {f: round(n / len(judged), 4) for f, n in sorted(flags.items())},
        "lm_calls": len(tally.calls),
        "lm_cache_hits": sum(c.cached for c in tally.calls),
        "tokens": sum(c.tokens for c in tally.calls),
        "median_call_seconds": round(statistics.median(c.seconds for c in tally.calls), 3) if tally.calls else None,
        "phi_store_hit_rate": round(store.hits / lookups, 4) if lookups else None,
        "guarded_steps_without_lm": tally.no_lm_steps,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"critic accuracy on {args.env}: {args.episodes} episodes, {len(judged)} transitions "
              f"({report['progress_steps']} raise true progress), critic {lm.model}"
              + (f", without {', '.join(args.ablate)}" if args.ablate else ""))
        print(f"{'':24}{'guarded':>10}{'raw':>10}")
        for key in ("spearman_phi_progress", "sign_agreement", "reward_precision", "reward_recall",
                    "rewarded_steps", "total_reward"):
            g, r = report["guarded"][key], report["raw"][key]
            print(f"{key:24}{'-' if g is None else g:>10}{'-' if r is None else r:>10}")
        print("flags: " + (", ".join(f"{k} {v:.0%}" for k, v in report["flag_rates"].items()) or "none"))
        print(f"LM calls {report['lm_calls']} ({report['lm_cache_hits']} cached), tokens {report['tokens']}, "
              f"median call {report['median_call_seconds']} s, Φ-store hit rate {report['phi_store_hit_rate']}, "
              f"guarded steps needing no LM call {report['guarded_steps_without_lm']}, {report['seconds']} s")
    return report


if __name__ == "__main__":
    main()
