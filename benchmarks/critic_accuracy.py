"""How well does the purpose critic's Φ track true progress, and what do the safeguards buy?

On an environment that knows its true progress (TextWorldExpress `score`, ScienceWorld score, the
treasure-maze's share of the distance covered), each episode replays three paths from the same start:
the gold path (on an environment without gold actions, the greedy path on true progress), the gold
path with random valid actions slipped in (perturbed), and random valid actions. Every transition is
judged once by the critic LM; that one judgment goes through two guards in the same process:

- guarded: the safeguards (all on, or minus `--ablate ...`), one Φ store for the whole run;
- raw:     no safeguards at all (the LM's own numbers, the baseline; it always asks the LM).

Printed for both: Spearman correlation of Φ_after with true progress, agreement of the sign of the
delta with the sign of the progress change, and the precision / recall of reward (reward given on a
step where progress really rose / progress steps that were rewarded); then flag rates, LM calls and
tokens, Φ-store hit rate and the steps that needed no LM call at all.

    python benchmarks/critic_accuracy.py --env twx:cookingworld --episodes 20 [--json]
    python benchmarks/critic_accuracy.py --env twx:cookingworld --episodes 20 --ablate evidence
    python benchmarks/critic_accuracy.py --env twx:coin --episodes 5 --lm openai/gpt-4o-mini

With `--program REF` (an artifact: compiled/twx-cookingworld, compiled/x@v2) the same transitions, walked
once from the same seeds, are judged by two critics in one process: the zero-shot `PurposeCritic()` built
with the artifact critic's own settings (answer variant, demos per call, retries) and the artifact's
compiled critic (its calibration demos). Each has its own Φ store and LM-call tally. DSPy's response
cache is off (`--cache` is refused: at temperature 0 a rollout id does not bypass the cache, so a stored
answer could stand in for a critic's own). Per critic, guarded and raw: Spearman with a 95% CI, sign
agreement, reward precision / recall; then compiled - zero-shot of each, paired on the same transitions,
with its 95% CI. Tasks default to the artifact's own task set (the first `--episodes` seeds of `--split`,
default test: held out from the train transitions its critic demos came from); `--taskset FILE` or
`--env ID` (seeds 0..N-1) choose others. The LM defaults to the artifact's critic LM.

The CIs are percentile bootstrap intervals over episodes: `--resamples` (1000) draws with seed 0, each
taking the episodes with replacement and all transitions of a drawn episode together (the steps of an
episode are not independent); both critics get the same draws, so the difference is paired. A draw in
which a statistic is undefined (one side constant) is left out; with fewer than 2 episodes there is no CI.

Target (issue 18), to be measured, not a result: the compiled critic's guarded Spearman at least 0.5 on
twx-cookingworld with the embedded model.

    python benchmarks/critic_accuracy.py --program compiled/twx-cookingworld --episodes 20 --out benchmarks/results/critic_accuracy_twx-cookingworld.json
    python benchmarks/critic_accuracy.py --program compiled/treasure-maze@v1 --rule-lm   # a smoke, not a measurement
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
from tqdm import tqdm  # noqa: E402

from purpose_dspy import Task, artifacts, make_env  # noqa: E402
from purpose_dspy.errors import ArtifactError, UsageError  # noqa: E402
from purpose_dspy.jobs import taskset_of  # noqa: E402
from purpose_dspy.lm import DEFAULT_MODEL, build_role_lms, load_lm_config  # noqa: E402
from purpose_dspy.lm.compact_adapter import CompactJSONAdapter  # noqa: E402
from purpose_dspy.programs import PurposeCritic  # noqa: E402
from purpose_dspy.runtime.trace import traced_copy  # noqa: E402
from purpose_dspy.safeguards import SAFEGUARDS, CriticGuard, PhiStore, SafeguardConfig  # noqa: E402
from purpose_dspy.tasksets import load_taskset  # noqa: E402
from purpose_dspy.types import LMCall, PurposeScore, State  # noqa: E402

TARGET = "the compiled critic's guarded Spearman at least 0.5 on twx-cookingworld with the embedded model"
METRICS = ("spearman_phi_progress", "sign_agreement", "reward_precision", "reward_recall")
GUARDS = ("guarded", "raw")


@dataclass
class Judged:
    """One transition: true progress before/after, and the guarded and raw scores."""

    path: str
    progress_before: float
    progress_after: float
    guarded: PurposeScore
    raw: PurposeScore
    episode: int = 0  # the task's index: the bootstrap draws episodes, not single steps


@dataclass(frozen=True)
class Step:
    before: State
    action: str
    after: State
    progress_before: float
    progress_after: float


@dataclass
class Walk:
    """One path of one episode, walked once in the environment; every critic judges these same steps."""

    episode: int
    name: str
    purpose: str
    steps: list[Step]


@dataclass
class Tally:
    judged: list[Judged] = field(default_factory=list)
    calls: list[LMCall] = field(default_factory=list)
    no_lm_steps: int = 0


def paths_for(env, task: Task, rng: random.Random, insertions: int, random_steps: int) -> dict[str, list[str]]:
    """Action lists of the gold, perturbed and random paths of one task."""
    gold = [a for a in gold_actions(env, task) if a not in ("look around", "inventory")]
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


def gold_actions(env, task: Task, limit: int = 50) -> list[str]:
    """The environment's gold path; without one (treasure-maze), the greedy path on true progress: each step the
    valid action that raises progress most (a shortest path where progress is the share of the distance covered)."""
    env.reset(task)
    if hasattr(env, "gold_actions"):
        return list(env.gold_actions())
    path: list[str] = []
    while len(path) < limit and not (state := replayed(env, task, path)).done:
        best, best_progress = None, env.progress()
        for action in state.valid_actions:
            replayed(env, task, [*path, action])
            if env.progress() > best_progress:
                best, best_progress = action, env.progress()
        if best is None:
            break
        path.append(best)
    return path


def replayed(env, task: Task, actions: list[str]) -> State:
    """The state after `actions` from the start of `task`."""
    state = env.reset(task)
    for action in actions:
        state = env.step(action)
    return state


def walk(env, task: Task, episode: int, name: str, actions: list[str], purpose_of: Callable[[str], str]) -> Walk:
    """Take `actions` from the start of `task` (up to a done state or an action not valid there)."""
    state = env.reset(task)
    steps: list[Step] = []
    for action in actions:
        if state.done or action not in state.valid_actions and state.valid_actions:
            break
        progress_before = env.progress()
        after = env.step(action)
        steps.append(Step(state, action, after, progress_before, env.progress()))
        state = after
    return Walk(episode, name, purpose_of(env.purpose), steps)


def walk_all(env, tasks: list[Task], purpose_of: Callable[[str], str], args) -> list[Walk]:
    """Every task's gold, perturbed and random walks, once (rng seed 0): what every critic judges."""
    rng = random.Random(0)
    walks = []
    for episode, task in enumerate(tasks):
        paths = paths_for(env, task, rng, args.insertions, args.random_steps)
        walks += [walk(env, task, episode, name, actions, purpose_of) for name, actions in paths.items()]
    return walks


def judge_walk(path: Walk, critic, lm, guards, tally, bar, adapter) -> None:
    """Each step of `path` judged once by `critic`; that one judgment goes through every guard."""
    context = {label: {"phi": None, "history": []} for label in guards}
    for step in path.steps:
        answer: list[PurposeScore] = []

        def judge(step: Step = step, answer: list[PurposeScore] = answer) -> PurposeScore:
            if not answer:  # one LM judgment per transition, shared by both guards
                with dspy.context(lm=lm, adapter=adapter):
                    answer.append(critic(purpose=path.purpose, before=step.before, action=step.action,
                                         after=step.after).score)
            return answer[0]

        scores = {}
        for label, guard in guards.items():  # "guarded" first: did it need the LM at all?
            if label == "raw":
                tally.no_lm_steps += not answer
            ctx = context[label]
            scores[label] = guard.score(judge, purpose=path.purpose, before=step.before, after=step.after,
                                        phi_prev=ctx["phi"], history=ctx["history"])
            ctx["phi"] = scores[label].phi_after
            ctx["history"].append(scores[label].delta)
        tally.judged.append(Judged(path.name, step.progress_before, step.progress_after, scores["guarded"],
                                   scores["raw"], path.episode))
        bar.update(1)


def judge_all(walks: list[Walk], critic: PurposeCritic, base_lm, args, adapter, label: str) -> tuple[Tally, PhiStore]:
    """Every walk judged by `critic`, with its own LM-call tally and its own Φ store (fresh, in memory)."""
    tally = Tally()
    lm = traced_copy(base_lm, "critic", tally.calls)
    store = PhiStore()
    guards = {
        "guarded": CriticGuard(SafeguardConfig().without(*args.ablate), store, namespace=critic.fingerprint(lm.model)),
        "raw": CriticGuard(SafeguardConfig(enabled=frozenset()), namespace="raw"),
    }
    total = sum(len(w.steps) for w in walks)
    with tqdm(total=total, desc=label, unit="step", file=sys.stderr, disable=None) as bar:
        for path in walks:
            judge_walk(path, critic, lm, guards, tally, bar, adapter)
    return tally, store


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


def columns(judged: list[Judged], which: str) -> list[tuple]:
    """Per transition what METRICS need, computed once (a bootstrap recomputes METRICS a thousand times):
    Φ_after, progress_after, signs agree, rewarded, progress rose."""
    return [(s.phi_after, j.progress_after, sign(s.delta) == sign(j.progress_after - j.progress_before),
             s.reward > 0, j.progress_after > j.progress_before + 1e-9) for j in judged for s in [getattr(j, which)]]


def metrics_of(rows: list[tuple]) -> dict:
    """`accuracy`'s METRICS, from `columns` rows."""
    rewarded, rose = sum(r[3] for r in rows), sum(r[4] for r in rows)
    hits = sum(r[3] and r[4] for r in rows)
    return {
        "spearman_phi_progress": spearman([r[0] for r in rows], [r[1] for r in rows]),
        "sign_agreement": round(statistics.fmean(r[2] for r in rows), 4),
        "reward_precision": round(hits / rewarded, 4) if rewarded else None,
        "reward_recall": round(hits / rose, 4) if rose else None,
    }


def bootstrap(judged: dict[str, list[Judged]], resamples: int, seed: int = 0) -> list[dict]:
    """Per draw, every critic's METRICS, guarded and raw, on the same episodes drawn with replacement (all the
    transitions of a drawn episode together); no draws with fewer than 2 episodes."""
    first = next(iter(judged.values()))
    episodes = sorted({j.episode for j in first})
    members = {e: [i for i, j in enumerate(first) if j.episode == e] for e in episodes}
    cols = {name: {which: columns(js, which) for which in GUARDS} for name, js in judged.items()}
    rng, draws = random.Random(seed), []
    for _ in range(resamples if len(episodes) >= 2 else 0):
        picked = [i for e in rng.choices(episodes, k=len(episodes)) for i in members[e]]
        draws.append({name: {which: metrics_of([rows[i] for i in picked]) for which, rows in by_guard.items()}
                      for name, by_guard in cols.items()})
    return draws


def interval(values: list[float | None]) -> dict:
    """The 2.5th and 97.5th percentiles (linear interpolation) of the defined values, and how many there were."""
    vals = sorted(v for v in values if v is not None)
    if len(vals) < 2:
        return {"ci": None, "resamples": len(vals)}

    def at(q: float) -> float:
        pos = q * (len(vals) - 1)
        lo = int(pos)
        return vals[lo] + (vals[min(lo + 1, len(vals) - 1)] - vals[lo]) * (pos - lo)

    return {"ci": [round(at(0.025), 4), round(at(0.975), 4)], "resamples": len(vals)}


def paired(points: dict[str, dict], draws: list[dict]) -> dict:
    """compiled - zero-shot of each metric, guarded and raw: the difference on all transitions and its 95% CI
    over the draws (each draw's two values come from the same transitions)."""
    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(a - b, 4)

    return {which: {m: {"diff": diff(points["compiled"][which][m], points["zero-shot"][which][m]),
                        **interval([diff(d["compiled"][which][m], d["zero-shot"][which][m]) for d in draws])}
                    for m in METRICS} for which in GUARDS}


def parse_args(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None, help="an environment with true progress (default twx:cookingworld; "
                        "with --program, the artifact's own task set)")
    parser.add_argument("--taskset", default=None, help="a task-set file: its environment, parameters, seeds and purpose")
    parser.add_argument("--program", default=None, metavar="REF",
                        help="an artifact (compiled/<name>[@v<N>]): its compiled critic against the zero-shot one")
    parser.add_argument("--episodes", type=int, default=5, help="tasks: the first N seeds of the split (0..N-1 with --env)")
    parser.add_argument("--split", default=None, choices=["train", "dev", "test"], help="default train; test with --program")
    parser.add_argument("--insertions", type=int, default=2, help="random actions slipped into the gold path")
    parser.add_argument("--random-steps", type=int, default=6, help="length of the random path")
    parser.add_argument("--lm", default=None, help="critic LM (default: the embedded local model; with --program, "
                        "the artifact's critic LM)")
    parser.add_argument("--api-base", default=None)
    parser.add_argument("--cache", action="store_true", help="use DSPy's LM response cache (off by default)")
    parser.add_argument("--ablate", action="append", default=[], choices=SAFEGUARDS, help="switch a safeguard off")
    parser.add_argument("--adapter", default="compact", choices=["compact", "dspy"],
                        help="prompt format: CompactJSONAdapter (the default) or DSPy's JSONAdapter")
    parser.add_argument("--reasoning", action="store_true", help="the critic writes a reasoning sentence before its scores")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap draws for the 95%% CIs (with --program)")
    parser.add_argument("--rule-lm", action="store_true", help="tests/rule_lm.py's engine: a smoke, not a measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", default=None, help="also write the JSON report, with the command line, to this file")
    args = parser.parse_args(argv)
    if args.env and args.taskset:
        parser.error("give --env or --taskset, not both")
    if args.program and args.cache:
        parser.error("--cache with --program: at temperature 0 DSPy's cache would answer a repeated prompt from the "
                     "store, not from the critic asking it; the comparison runs with the cache off")
    if args.program and args.reasoning:
        parser.error("--reasoning with --program: both critics answer in the artifact critic's own variant")
    args.split = args.split or ("test" if args.program else "train")
    return parser, args


def load_agent(parser: argparse.ArgumentParser, ref: str) -> artifacts.CompiledAgent:
    try:
        agent = artifacts.load(ref)
    except (UsageError, ArtifactError) as exc:
        parser.error(f"--program {ref}: {exc}")
    if agent.is_editor:
        parser.error(f"--program {ref} is a compiled editor: it has no purpose critic")
    return agent


def critics_of(agent: artifacts.CompiledAgent | None, args) -> dict[str, PurposeCritic]:
    """One critic; with --program the zero-shot critic with the artifact critic's settings, and the compiled one."""
    if agent is None:
        return {"critic": PurposeCritic(reasoning=args.reasoning)}
    compiled = agent.program.critic
    zero_shot = PurposeCritic(max_attempts=compiled.max_attempts, retry_temperature=compiled.retry_temperature,
                              demos_per_call=compiled.demos_per_call, reasoning=compiled.reasoning)
    return {"zero-shot": zero_shot, "compiled": compiled}


def plan_tasks(parser, args, agent) -> tuple[str, list[Task], Callable[[str], str], str | None]:
    """The environment, the tasks, each task's purpose and the task set's name: --taskset, else --env (seeds 0..N-1),
    else the artifact's own task set, else twx:cookingworld."""
    try:
        taskset = load_taskset(args.taskset) if args.taskset else taskset_of(agent) if agent and not args.env else None
        if taskset is not None:
            return taskset.env, taskset.tasks(args.split)[:args.episodes], taskset.purpose_for, taskset.name
    except UsageError as exc:
        parser.error(str(exc))
    env_id = args.env or "twx:cookingworld"
    return env_id, [Task(env_id=env_id, seed=s, split=args.split) for s in range(args.episodes)], lambda p: p, None


def critic_lm(args, agent: artifacts.CompiledAgent | None) -> tuple[object, str]:
    """The critic's LM and the model it names: the rule LM, else --lm, else with --program the artifact's critic LM,
    else the embedded model (DSPy's response cache only with --cache, never with --program)."""
    if args.rule_lm:
        path = Path(__file__).resolve().parent.parent / "tests" / "rule_lm.py"
        spec = importlib.util.spec_from_file_location("rule_lm", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.rule_lms(cache=False)[0]["critic"], "local/rule-lm"
    model, api_base = args.lm, args.api_base
    if agent is not None and model is None:
        spec = agent.manifest.lms.get("critic") or agent.manifest.lms.get("actor") or {}
        model, api_base = spec.get("model"), api_base or spec.get("api_base")
    config = load_lm_config(model=model, api_base=api_base, cache=args.cache)
    return build_role_lms(config, roles=("critic",))["critic"], config.for_role("critic").model


def critic_report(tally: Tally, store: PhiStore) -> dict:
    judged = tally.judged
    flags = Counter(f for j in judged for f in j.guarded.flags)
    lookups = store.hits + store.misses
    return {
        "guarded": accuracy(judged, "guarded"),
        "raw": accuracy(judged, "raw"),
        "flag_rates": {f: round(n / len(judged), 4) for f, n in sorted(flags.items())},
        "lm_calls": len(tally.calls),
        "lm_cache_hits": sum(c.cached for c in tally.calls),
        "tokens": sum(c.tokens for c in tally.calls),
        "median_call_seconds": round(statistics.median(c.seconds for c in tally.calls), 3) if tally.calls else None,
        "phi_store_hit_rate": round(store.hits / lookups, 4) if lookups else None,
        "guarded_steps_without_lm": tally.no_lm_steps,
    }


def heading(args, env_id: str, taskset: str | None, episodes: int, lm, reasoning: bool, judged: list[Judged]) -> dict:
    """What was measured on what (the first keys of the report)."""
    head = {
        "env": env_id, "episodes": episodes, "split": args.split, "critic_lm": lm.model,
        "adapter": args.adapter, "reasoning": reasoning, "ablated": sorted(args.ablate), "transitions": len(judged),
        "paths": dict(Counter(j.path for j in judged)),
        "progress_steps": sum(j.progress_after > j.progress_before for j in judged),
    }
    return head if taskset is None else {"taskset": taskset, **head}


def program_report(args, head: dict, agent, critics: dict[str, PurposeCritic], results: dict, lm, model: str) -> dict:
    """Both critics on the same transitions: each one's figures with a CI per Spearman, and compiled - zero-shot."""
    judged = {name: tally.judged for name, (tally, _) in results.items()}
    assert len({len(js) for js in judged.values()}) == 1, "the critics must judge the same transitions"
    draws = bootstrap(judged, args.resamples)
    per_critic = {}
    for name, (tally, store) in results.items():
        figures = critic_report(tally, store)
        for which in GUARDS:
            figures[which]["spearman_ci"] = interval([d[name][which]["spearman_phi_progress"] for d in draws])["ci"]
        per_critic[name] = {"demos": len(critics[name].judge.demos), "transitions": len(tally.judged),
                            "fingerprint": critics[name].fingerprint(lm.model), **figures}
    compiled = per_critic["compiled"]["guarded"]["spearman_phi_progress"]
    applies = not args.rule_lm and head["env"] == "twx:cookingworld" and model == DEFAULT_MODEL
    return {
        "measurement": not args.rule_lm, "program": str(agent.path), "program_version": agent.version, **head,
        "lm_response_cache": bool(getattr(lm, "cache", False)),
        "ci_method": f"95% percentile bootstrap over episodes: {args.resamples} draws with seed 0, all transitions "
                     "of a drawn episode together, the same draws for both critics",
        "critics": per_critic,
        "compiled_minus_zero_shot": paired({n: {w: per_critic[n][w] for w in GUARDS} for n in per_critic}, draws),
        "target": {"statement": TARGET, "applies": applies, "compiled_guarded_spearman": compiled,
                   "met": (compiled is not None and compiled >= 0.5) if applies else None},
    }


def main(argv: list[str] | None = None) -> dict:
    parser, args = parse_args(argv)
    agent = load_agent(parser, args.program) if args.program else None
    env_id, tasks, purpose_of, taskset = plan_tasks(parser, args, agent)
    adapter = CompactJSONAdapter() if args.adapter == "compact" else dspy.JSONAdapter()
    base_lm, model = critic_lm(args, agent)
    critics = critics_of(agent, args)
    env = make_env(env_id)
    started = time.perf_counter()
    try:
        walks = walk_all(env, tasks, purpose_of, args)  # once: every critic judges the same transitions
    finally:
        env.close()
    results = {name: judge_all(walks, critic, base_lm, args, adapter, name) for name, critic in critics.items()}
    first = next(iter(critics.values()))
    head = heading(args, env_id, taskset, len(tasks), base_lm, first.reasoning, next(iter(results.values()))[0].judged)
    if agent is None:
        report = {**head, **critic_report(*results["critic"])}
    else:
        report = program_report(args, head, agent, critics, results, base_lm, model)
    report["seconds"] = round(time.perf_counter() - started, 1)
    command = shlex.join(["python", "benchmarks/critic_accuracy.py", *(sys.argv[1:] if argv is None else argv)])
    if agent is not None:
        report = {"command": command, **report}
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_name(out.name + ".tmp").write_text(json.dumps({"command": command, **report}, indent=1) + "\n")
        os.replace(out.with_name(out.name + ".tmp"), out)
    if args.json:
        print(json.dumps(report))
    elif agent is None:
        print_single(report, args)
    else:
        print_program(report)
    return report


def print_single(report: dict, args) -> None:
    if args.rule_lm:
        print("SMOKE RUN with the rule LM (tests/rule_lm.py): checks the plumbing, NOT a measurement")
    print(f"critic accuracy on {report['env']}: {report['episodes']} episodes, {report['transitions']} transitions "
          f"({report['progress_steps']} raise true progress), critic {report['critic_lm']}"
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


def cell(value: float | None, ci: list[float] | None = None, signed: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return text + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci and signed else f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def print_program(report: dict) -> None:
    if not report["measurement"]:
        print("SMOKE RUN with the rule LM (tests/rule_lm.py): checks the plumbing, NOT a measurement")
    crit, diff = report["critics"], report["compiled_minus_zero_shot"]
    print(f"critic accuracy of {report['program']}: zero-shot vs compiled ({crit['compiled']['demos']} demos) on "
          f"{report.get('taskset', report['env'])} {report['split']}, {report['episodes']} episodes, "
          f"{report['transitions']} transitions each ({report['progress_steps']} raise true progress), "
          f"critic LM {report['critic_lm']}")
    print(f"  {report['command']}")
    print(f"{'':30}{'zero-shot':>24}{'compiled':>24}{'compiled - zero-shot':>26}")
    for which in GUARDS:
        for m in METRICS:
            z, c = (crit[n][which] for n in ("zero-shot", "compiled"))
            ci = "spearman_ci" if m == "spearman_phi_progress" else "-"
            print(f"{which + ' ' + m:30}{cell(z[m], z.get(ci)):>24}{cell(c[m], c.get(ci)):>24}"
                  f"{cell(diff[which][m]['diff'], diff[which][m]['ci'], signed=True):>26}")
    for name, rep in crit.items():
        print(f"{name}: LM calls {rep['lm_calls']} ({rep['lm_cache_hits']} cached), tokens {rep['tokens']}, "
              f"Φ-store hit rate {rep['phi_store_hit_rate']}, flags: "
              + (", ".join(f"{k} {v:.0%}" for k, v in rep["flag_rates"].items()) or "none"))
    print(f"CIs: {report['ci_method']}; {report['seconds']} s")
    target = report["target"]
    print(f"target (issue 18): {target['statement']}"
          + (f": {'met' if target['met'] else 'not met'} here" if target["applies"] else " (not this run's setting)"))


if __name__ == "__main__":
    main()
