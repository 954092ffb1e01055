"""How much of a step is the framework, and how much is the LM?

Runs treasure-maze episodes on the embedded model (cache off) and splits each step's wall time
into LM time (inside `dspy.LM` calls, as traced) and everything else (orchestrator, adapters'
formatting and parsing, environment, critic bookkeeping). Two baselines run in the same process:

- raw llama.cpp: the exact prompts of the run replayed in call order straight into
  `Llama.create_chat_completion`, with one context per role as purpose-dspy uses (so `dspy.LM` time /
  raw time is the cost of DSPy's LM layer) and with one context shared by both roles (what a
  per-role context saves through llama.cpp's prompt-prefix reuse);
- scripted LM: the same loop with DSPy's DummyLM, so its step time is the framework alone.

    python benchmarks/step_overhead.py [--episodes 2] [--max-steps 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
from dspy.utils.dummies import DummyLM  # noqa: E402

from purpose_dspy import Orchestrator, RunConfig, Task, make_env  # noqa: E402
from purpose_dspy.lm import build_role_lms, load_lm_config  # noqa: E402
from purpose_dspy.programs import PurposeAgent  # noqa: E402


def run_episodes(lms: dict, episodes: int, max_steps: int) -> tuple[list, list[dict]]:
    """The steps of `episodes` runs and the LM history entries (prompts) they produced."""
    steps, history = [], []
    orchestrator = Orchestrator(PurposeAgent(), lms, RunConfig(max_steps=max_steps))
    env = make_env("treasure-maze")
    for seed in range(episodes):
        run = orchestrator.start(env, Task(env_id="treasure-maze", seed=seed))
        steps += list(orchestrator.steps(run, env))
        history += [{**entry, "role": role} for role, lm in run.lms.items() for entry in lm.history]
    # Replay in call order: llama.cpp reuses the KV cache of a shared prompt prefix, so order matters.
    return steps, sorted(history, key=lambda entry: entry["timestamp"])


def replay_raw(lm: dspy.LM, history: list[dict], per_role: bool) -> float:
    """Seconds llama.cpp alone needs for the recorded prompts in call order, same decoding settings.

    per_role=True gives each role its own llama.cpp context, as purpose-dspy does; False shares one.
    """
    from llama_cpp import Llama

    from purpose_dspy.lm.llama_cpp_engine import _cap_strings

    contexts: dict[str, Llama] = {}
    total = 0.0
    for entry in history:
        key = entry["role"] if per_role else "shared"
        if key not in contexts:
            contexts[key] = Llama(model_path=str(lm.engine.model_path), n_ctx=lm.engine.n_ctx,
                                  n_threads=lm.engine.n_threads, verbose=False)
        fmt = entry["kwargs"].get("response_format")
        kwargs = {"temperature": 0.0, "max_tokens": lm.kwargs.get("max_tokens", 384)}
        if fmt is not None and hasattr(fmt, "model_json_schema"):
            kwargs["response_format"] = {"type": "json_object",
                                         "schema": _cap_strings(fmt.model_json_schema(), lm.engine.max_string_chars)}
        started = time.perf_counter()
        contexts[key].create_chat_completion(messages=entry["messages"], **kwargs)
        total += time.perf_counter() - started
    return total


def scripted_lms(n: int) -> dict:
    actor = [{"thought": "t", "action": a} for a in ["north", "south", "east", "west"] * n]
    critic = [{"evidence": "You are at row", "reasoning": "r", "phi_before": 1, "phi_after": 2, "confidence": 1}] * n
    return {"actor": DummyLM(actor, adapter=dspy.JSONAdapter()), "critic": DummyLM(critic, adapter=dspy.JSONAdapter())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--lm", default="local/smollm2-135m", help="embedded model to measure")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    lms = build_role_lms(load_lm_config(model=args.lm, cache=False))
    for lm in lms.values():
        lm.engine._model()  # load outside the timed region
    steps, history = run_episodes(lms, args.episodes, args.max_steps)
    step_s = [s.seconds for s in steps]
    lm_s = [sum(c.seconds for c in s.lm_calls) for s in steps]
    own_s = [a - b for a, b in zip(step_s, lm_s)]
    calls = [c for s in steps for c in s.lm_calls]

    lm_total = sum(c.seconds for c in calls)
    raw_total = replay_raw(lms["actor"], history, per_role=True)
    raw_shared = replay_raw(lms["actor"], history, per_role=False)

    scripted_steps, _ = run_episodes(scripted_lms(args.episodes * args.max_steps * 2), args.episodes, args.max_steps)
    scripted_step_s = statistics.mean(s.seconds for s in scripted_steps)

    report = {
        "model": lms["actor"].model,
        "steps": len(steps),
        "lm_calls": len(calls),
        "step_seconds_mean": round(statistics.mean(step_s), 4),
        "lm_seconds_per_step": round(statistics.mean(lm_s), 4),
        "framework_seconds_per_step": round(statistics.mean(own_s), 4),
        "framework_share": round(sum(own_s) / sum(step_s), 4),
        "raw_llama_seconds_per_step": round(raw_total / len(steps), 4),
        "dspy_lm_over_raw_llama": round(lm_total / raw_total, 3) if raw_total else None,
        "raw_llama_one_shared_context_seconds_per_step": round(raw_shared / len(steps), 4),
        "per_role_context_speedup": round(raw_shared / raw_total, 3) if raw_total else None,
        "scripted_lm_step_seconds": round(scripted_step_s, 5),
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"model {report['model']}: {report['steps']} steps, {report['lm_calls']} LM calls")
    print(f"  step wall time           {report['step_seconds_mean'] * 1000:9.1f} ms")
    print(f"  inside dspy.LM calls     {report['lm_seconds_per_step'] * 1000:9.1f} ms")
    print(f"  framework (the rest)     {report['framework_seconds_per_step'] * 1000:9.1f} ms "
          f"({report['framework_share']:.1%} of the step)")
    print(f"  raw llama.cpp, same prompts {report['raw_llama_seconds_per_step'] * 1000:6.1f} ms "
          f"(dspy.LM / raw = {report['dspy_lm_over_raw_llama']}x)")
    print(f"  raw llama.cpp, one context shared by both roles {report['raw_llama_one_shared_context_seconds_per_step'] * 1000:.1f} ms"
          f" (per-role contexts are {report['per_role_context_speedup']}x faster)")
    print(f"  whole step on a scripted LM {report['scripted_lm_step_seconds'] * 1000:6.2f} ms (framework alone)")


if __name__ == "__main__":
    main()
