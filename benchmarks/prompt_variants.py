"""Shorter prompts and answers, same decisions? Paired arms on the same seeds, the embedded model.

Arms (each runs every seed; the actor alone, success judged by the environment):
- dspy:          DSPy's JSONAdapter, the actor writes a `thought` before its action (the old default);
- compact:       CompactJSONAdapter (purpose_dspy/lm/compact_adapter.py), still with the thought;
- compact-direct: CompactJSONAdapter, the action alone (`Actor(reasoning=False)`);
- compact-cap240: CompactJSONAdapter with the thought capped at 240 characters in the grammar, as every
  free string was before the actor's cap of 120 (`lm/schema.py` ROLE_STRING_CHARS);
- compact-window4: CompactJSONAdapter with the thought, a history of the last 4 steps instead of 6
  (`--arms` picks arms; the first one is the baseline of the sign tests).

Then the critic's agreement with true progress (benchmarks/critic_accuracy.py, same transitions for
each arm): stock adapter with the reasoning sentence, compact adapter with it, and without it.

Printed: success per arm with an exact sign test against `dspy` on the same seeds, prompt and
completion tokens and seconds per actor call, and the critic table. `--out` writes the JSON.

    python benchmarks/prompt_variants.py --seeds 20 --critic-episodes 5 --out benchmarks/results/prompt_variants.json
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

import dspy  # noqa: E402
from tqdm import tqdm  # noqa: E402

from purpose_dspy import Orchestrator, RunConfig, Task, make_env  # noqa: E402
from purpose_dspy.lm import build_role_lms, load_lm_config  # noqa: E402
from purpose_dspy.lm.compact_adapter import CompactJSONAdapter  # noqa: E402
from purpose_dspy.metrics import sign_test  # noqa: E402
from purpose_dspy.programs import Actor, PurposeAgent  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import critic_accuracy  # noqa: E402

ARMS = {  # name: (adapter, reasoning, the grammar's cap on free strings (None: the engine's own), RunConfig fields)
    "dspy": (dspy.JSONAdapter, True, None, {}),
    "compact": (CompactJSONAdapter, True, None, {}),
    "compact-direct": (CompactJSONAdapter, False, None, {}),
    "compact-cap240": (CompactJSONAdapter, True, 240, {}),
    "compact-window4": (CompactJSONAdapter, True, None, {"history_window": 4}),
}


def run_arm(name: str, lms: dict, env_id: str, split: str, seeds: list[int], max_steps: int) -> dict:
    adapter, reasoning, cap, run_fields = ARMS[name]
    agent = PurposeAgent(actor=Actor(reasoning=reasoning))
    config = RunConfig(max_steps=max_steps, score_phi=False, **run_fields)
    orchestrator = Orchestrator(agent, lms, config, adapter=adapter())
    env = make_env(env_id)
    solved, calls, steps = {}, [], 0
    engine = getattr(lms["actor"], "engine", None)
    engine_cap = getattr(engine, "max_string_chars", None)
    if cap and engine_cap:
        engine.max_string_chars = cap
    started = time.perf_counter()
    try:
        for seed in tqdm(seeds, desc=name, unit="task", file=sys.stderr, disable=None):
            result = orchestrator.run(env, Task(env_id=env_id, seed=seed, split=split))
            solved[seed] = result.trajectory.success
            steps += len(result.trajectory.steps)
            calls += [c for s in result.trajectory.steps for c in s.lm_calls]
    finally:
        env.close()
        if engine_cap:
            engine.max_string_chars = engine_cap
    return {
        "successes": sum(solved.values()), "n": len(seeds), "solved": solved, "steps": steps,
        "actor_calls": len(calls),
        "prompt_tokens_per_call": round(statistics.fmean(c.prompt_tokens for c in calls), 1),
        "completion_tokens_per_call": round(statistics.fmean(c.completion_tokens for c in calls), 1),
        "seconds_per_call": round(statistics.median(c.seconds for c in calls), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }


def demo_prompt_tokens(lms: dict, env_id: str, demos: int = 3) -> dict:
    """Prompt tokens of one actor call with no demos and with `demos` demos (steps of gold paths of train
    seeds), per arm, as llama.cpp counts them: what a compiled actor costs against the zero-shot one."""
    env = make_env(env_id)
    try:
        pool = []
        for seed in range(demos):
            state = env.reset(Task(env_id=env_id, seed=seed, split="train"))
            action = next(a for a in env.gold_actions() if a in state.valid_actions)  # true where it is shown
            pool.append(Actor.demo(env.purpose, state, action, thought=f"'{action}' leads toward the goal"))
        state = env.reset(Task(env_id=env_id, seed=0, split="dev"))
        purpose = env.purpose
    finally:
        env.close()
    out = {}
    for name, (adapter, reasoning, _, _) in list(ARMS.items())[:3]:
        actor, counts = Actor(reasoning=reasoning, demos_per_call=demos), {}
        actor.act.demos = pool
        for label, pool_size in (("zero_shot", 0), (f"{demos}_demos", demos)):
            actor.demos_per_call = pool_size
            with dspy.context(lm=lms["actor"], adapter=adapter()):
                actor(purpose=purpose, state=state)
            counts[label] = lms["actor"].history[-1]["usage"]["prompt_tokens"]
        counts["ratio"] = round(counts[f"{demos}_demos"] / counts["zero_shot"], 3)
        out[name] = counts
    return out


def against(arm: dict, base: dict) -> dict:
    wins = sum(arm["solved"][s] and not base["solved"][s] for s in base["solved"])
    losses = sum(base["solved"][s] and not arm["solved"][s] for s in base["solved"])
    return {"wins": wins, "losses": losses, "sign_test_p": sign_test(wins, losses)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="twx:coin")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 of the split, the same for every arm")
    parser.add_argument("--max-steps", type=int, default=12, help="the twx-coin task set's step limit")
    parser.add_argument("--critic-episodes", type=int, default=5, help="critic_accuracy.py episodes (0: skip)")
    parser.add_argument("--arms", default="dspy,compact,compact-direct",
                        help=f"comma-separated, of {', '.join(ARMS)}; the first is the baseline of the sign tests")
    parser.add_argument("--out", default=None, help="write the report as JSON here")
    parser.add_argument("--only-demo-tokens", action="store_true", help="just the compiled-vs-zero-shot prompt tokens")
    args = parser.parse_args()

    lms = build_role_lms(load_lm_config(cache=False))
    demo_tokens = demo_prompt_tokens(lms, args.env)
    print(f"actor prompt tokens, zero-shot vs 3 demos: {demo_tokens}")
    if args.only_demo_tokens:
        if args.out:
            Path(args.out).write_text(json.dumps({"command": "python " + " ".join(sys.argv), "env": args.env,
                                                  "actor_prompt_tokens_with_demos": demo_tokens}, indent=1) + "\n")
        return
    seeds = list(range(args.seeds))
    names = args.arms.split(",")
    arms = {name: run_arm(name, lms, args.env, args.split, seeds, args.max_steps) for name in names}
    for name, arm in arms.items():
        arm["vs_dspy"] = against(arm, arms[names[0]])
    critic = {}
    if args.critic_episodes:
        common = ["--env", args.env, "--episodes", str(args.critic_episodes), "--json"]
        critic = {"dspy+reasoning": critic_accuracy.main([*common, "--adapter", "dspy", "--reasoning"]),
                  "compact+reasoning": critic_accuracy.main([*common, "--adapter", "compact", "--reasoning"]),
                  "compact-direct": critic_accuracy.main([*common, "--adapter", "compact"])}
    report = {"command": "python " + " ".join(sys.argv), "env": args.env, "split": args.split, "seeds": seeds,
              "max_steps": args.max_steps, "arms": arms, "critic": critic,
              "actor_prompt_tokens_with_demos": demo_tokens}
    print(f"{args.env} {args.split} seeds 0..{args.seeds - 1}, actor only, max {args.max_steps} steps")
    print(f"{'arm':16}{'solved':>8}{'vs ' + names[0] + ' (W/L, p)':>20}{'prompt tok':>12}{'compl tok':>11}{'s/call':>8}")
    for name, arm in arms.items():
        vs = arm["vs_dspy"]
        paired = f"{vs['wins']}/{vs['losses']}, p={vs['sign_test_p']}"
        print(f"{name:16}{arm['successes']:>5}/{arm['n']:<2}{paired:>20}"
              f"{arm['prompt_tokens_per_call']:>12}{arm['completion_tokens_per_call']:>11}{arm['seconds_per_call']:>8}")
    for name, rep in critic.items():
        g = rep["guarded"]
        print(f"critic {name:16} sign agreement {g['sign_agreement']}  spearman {g['spearman_phi_progress']}  "
              f"reward precision {g['reward_precision']} recall {g['reward_recall']}  tokens/call "
              f"{rep['tokens'] / max(1, rep['lm_calls']):.0f}  median call {rep['median_call_seconds']} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
