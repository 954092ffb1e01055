"""How much of a step is the framework, and how much is the LM?

Runs treasure-maze episodes on the embedded model (cache off) and splits each step's wall time
into LM time (inside `dspy.LM` calls, as traced) and everything else (orchestrator, adapters'
formatting and parsing, environment, critic bookkeeping). Two baselines run in the same process:

- raw llama.cpp, paired: each request of the run (messages, grammar, max tokens, as it reaches
  `Llama.create_chat_completion`) is sent the moment it is made, to a second llama.cpp model of the same
  file with its own context per role, timed apart; raw goes first on every other call, so neither
  side gains from going second. Our step time (less the raw calls made inside it) over the raw time
  is everything we add, on the same requests, at the same moment, with the same prefix-cache state;
- raw llama.cpp replayed later: the recorded requests again in call order into one context shared by
  both roles, against a per-role replay (what a context per role saves through prefix reuse);
- llama.cpp inside our own run: each call's time in `create_chat_completion` as our steps make it;
- the model's own prompt and generation throughput on this machine (tokens/s);
- scripted LM: the same loop with DSPy's DummyLM, so its step time is the framework alone.

Steps are timed twice: with the critic (every step judged, as in training) and actor-only (how
`eval` and the demo's test phase run).

    python benchmarks/step_overhead.py [--episodes 2] [--max-steps 5] [--json]

Run it with nothing else on the cores: llama.cpp threads spin while they wait for each other.
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


def run_episodes(lms: dict, episodes: int, max_steps: int, *, critic: bool = True, paired: list | None = None) -> list:
    """The steps of `episodes` treasure-maze runs (seeds 0..N-1); `critic=False`: the actor alone.
    `paired` (the raw seconds of the paired calls, appended as they happen): returns (step, raw seconds
    spent inside that step) pairs instead."""
    steps = []
    orchestrator = Orchestrator(PurposeAgent(), lms, RunConfig(max_steps=max_steps, score_phi=critic))
    env = make_env("treasure-maze")
    for seed in range(episodes):
        run = orchestrator.start(env, Task(env_id="treasure-maze", seed=seed))
        mark = len(paired) if paired is not None else 0
        for step in orchestrator.steps(run, env):
            if paired is None:
                steps.append(step)
            else:
                steps.append((step, sum(paired[mark:])))
                mark = len(paired)
    return steps


def record_requests(lms: dict, inside: list[float], pair: dict | None = None) -> list[tuple[str, dict]]:
    """Wrap each role's loaded llama.cpp model so every request it gets is kept, exactly as sent
    (messages, grammar schema, max tokens, temperature), in call order; `inside` gets the seconds each
    call spent in llama.cpp itself, timed in the very run. `pair` ({"models": {role: Llama}, "raw": []}):
    each request also goes to that role's raw model, before ours on every other call, its seconds
    appended to `pair["raw"]`."""
    log: list[tuple[str, dict]] = []
    for role, lm in lms.items():
        llama = lm.engine._model()  # load outside the timed region
        original = llama.__dict__.setdefault("_unwrapped", llama.create_chat_completion)

        def recording(*args, _role=role, _call=original, **kwargs):
            log.append((_role, kwargs))
            raw_first = pair is not None and len(log) % 2 == 0
            if raw_first:
                pair["raw"].append(_timed(pair["models"][_role], kwargs))
            started = time.perf_counter()
            try:
                return _call(*args, **kwargs)
            finally:
                inside.append(time.perf_counter() - started)
                if pair is not None and not raw_first:
                    pair["raw"].append(_timed(pair["models"][_role], kwargs))

        llama.create_chat_completion = recording
    return log


def _timed(llama, kwargs: dict) -> float:
    started = time.perf_counter()
    llama.create_chat_completion(**kwargs)
    return time.perf_counter() - started


def raw_models(model_path: str, n_ctx: int, n_threads: int, roles) -> dict:
    """One llama.cpp model per role, loaded as the engine loads its own."""
    from llama_cpp import Llama

    return {role: Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
                        verbose=False) for role in roles}


def paired_ratio(lms: dict, where: tuple, episodes: int, max_steps: int, *, critic: bool) -> dict:
    """Our step time over raw llama.cpp's on the very same requests, made side by side (see the docstring).
    Our contexts are reset first, so both sides start with an empty prefix cache."""
    pair = {"models": raw_models(*where, lms), "raw": []}
    for lm in lms.values():
        lm.engine._model().reset()
    record_requests(lms, [], pair)
    steps = run_episodes(lms, episodes, max_steps, critic=critic, paired=pair["raw"])
    ours = sum(step.seconds - raw for step, raw in steps)
    raw = sum(raw for _, raw in steps)
    return {"ours_over_raw": round(ours / raw, 3) if raw else None, "steps": len(steps),
            "ours_ms_per_step": round(ours / max(1, len(steps)) * 1000, 1),
            "raw_ms_per_step": round(raw / max(1, len(steps)) * 1000, 1)}


def replay_raw(model_path: str, n_ctx: int, n_threads: int, requests: list[tuple[str, dict]], per_role: bool) -> float:
    """Seconds llama.cpp alone needs for the recorded requests in call order (it reuses the KV cache of a
    shared prompt prefix, so order matters). per_role=True: one context per role, as purpose-dspy keeps."""
    from llama_cpp import Llama

    contexts: dict[str, Llama] = {}
    total = 0.0
    for role, kwargs in requests:
        key = role if per_role else "shared"
        if key not in contexts:
            contexts[key] = Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
                                  verbose=False)  # as the engine loads it
        started = time.perf_counter()
        contexts[key].create_chat_completion(**kwargs)
        total += time.perf_counter() - started
    return total


def throughput(model_path: str, n_ctx: int, n_threads: int, prompt_tokens: int = 512, generated: int = 64) -> dict:
    """The model's own speed on this machine: prompt tokens/s (a fresh prompt, 1 token out) and generated tokens/s."""
    from llama_cpp import Llama

    llama = Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, verbose=False)
    tokens = llama.tokenize(b"The quick brown fox jumps over the lazy dog. " * 60)[:prompt_tokens]
    prompt = llama.detokenize(tokens).decode(errors="ignore")
    seconds, produced = {}, {}
    for n in (1, generated + 1):
        llama.reset()  # no prefix reuse: the whole prompt is evaluated each time
        started = time.perf_counter()
        out = llama.create_completion(prompt, max_tokens=n, temperature=0.0)
        seconds[n], produced[n] = time.perf_counter() - started, out["usage"]["completion_tokens"]
    extra = produced[generated + 1] - produced[1]
    return {"prompt_tokens_per_second": round(len(tokens) / seconds[1], 1),
            "generated_tokens_per_second": round(extra / (seconds[generated + 1] - seconds[1]), 1) if extra else None}


def scripted_lms(n: int) -> dict:
    actor = [{"action": a} for a in ["north", "south", "east", "west"] * n]
    critic = [{"evidence": "You are at row", "phi_before": 1, "phi_after": 2, "confidence": 1}] * n
    return {"actor": DummyLM(actor, adapter=dspy.JSONAdapter()), "critic": DummyLM(critic, adapter=dspy.JSONAdapter())}


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--lm", default="local/smollm2-135m", help="embedded model to measure")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    lms = build_role_lms(load_lm_config(model=args.lm, cache=False))
    inside: list[float] = []
    requests = record_requests(lms, inside)
    steps = run_episodes(lms, args.episodes, args.max_steps)
    full_requests = len(requests)
    in_llama = sum(inside[:full_requests])
    actor_steps = run_episodes(lms, args.episodes, args.max_steps, critic=False)
    engine = lms["actor"].engine
    where = (str(engine.model_path), engine.n_ctx, engine.n_threads)
    raw = replay_raw(*where, requests[:full_requests], per_role=True)
    raw_actor = replay_raw(*where, requests[full_requests:], per_role=True)
    raw_shared = replay_raw(*where, requests[:full_requests], per_role=False)
    paired = paired_ratio(lms, where, args.episodes, args.max_steps, critic=True)
    paired_actor = paired_ratio(lms, where, args.episodes, args.max_steps, critic=False)
    speed = throughput(*where)
    scripted = run_episodes(scripted_lms(args.episodes * args.max_steps * 2), args.episodes, args.max_steps)
    report = build_report(lms["actor"].model, steps, actor_steps, raw, raw_actor, raw_shared, speed, scripted)
    report["ours_over_llama_in_the_same_run"] = round(sum(s.seconds for s in steps) / in_llama, 3) if in_llama else None
    report["paired_with_raw_llama"] = {"actor_and_critic": paired, "actor_only": paired_actor}
    print(json.dumps(report) if args.json else render(report))


def build_report(model, steps, actor_steps, raw, raw_actor, raw_shared, speed, scripted) -> dict:
    calls = [c for s in steps for c in s.lm_calls]
    step_total = sum(s.seconds for s in steps)
    lm_total = sum(c.seconds for c in calls)
    return {
        "model": model, "steps": len(steps), "lm_calls": len(calls), "actor_only_steps": len(actor_steps),
        "median_step_ms": median_ms([s.seconds for s in steps]),
        "median_actor_only_step_ms": median_ms([s.seconds for s in actor_steps]),
        "tokens_per_step": round(sum(c.tokens for c in calls) / max(1, len(steps)), 1),
        "prompt_tokens_per_call": {role: round(statistics.fmean(c.prompt_tokens for c in calls if c.role == role), 1)
                                   for role in sorted({c.role for c in calls})},
        "framework_share": round((step_total - lm_total) / step_total, 4) if step_total else None,
        "ours_over_raw_llama": round(step_total / raw, 3) if raw else None,
        "dspy_lm_over_raw_llama": round(lm_total / raw, 3) if raw else None,
        "actor_only_ours_over_raw_llama": round(sum(s.seconds for s in actor_steps) / raw_actor, 3) if raw_actor else None,
        "raw_llama_ms_per_step": round(raw / max(1, len(steps)) * 1000, 1),
        "per_role_context_speedup": round(raw_shared / raw, 3) if raw else None,
        **speed,
        "scripted_lm_step_ms": round(statistics.fmean(s.seconds for s in scripted) * 1000, 2),
    }


def render(r: dict) -> str:
    return "\n".join([
        f"model {r['model']}: {r['steps']} steps with the critic ({r['lm_calls']} LM calls), {r['actor_only_steps']} actor-only",
        f"  median step, actor + critic   {r['median_step_ms']:8.1f} ms   ({r['tokens_per_step']} tokens per step)",
        f"  median step, actor only       {r['median_actor_only_step_ms']:8.1f} ms",
        f"  prompt tokens per call        {r['prompt_tokens_per_call']}",
        f"  ours / raw llama.cpp replaying the requests later: {r['ours_over_raw_llama']}x (the LM calls alone: "
        f"{r['dspy_lm_over_raw_llama']}x; actor only: {r['actor_only_ours_over_raw_llama']}x)",
        f"  ours / the same calls' time inside llama.cpp, timed in our run: {r['ours_over_llama_in_the_same_run']}x",
        f"  ours / raw llama.cpp on each request side by side: {r['paired_with_raw_llama']['actor_and_critic']['ours_over_raw']}x"
        f" (actor only: {r['paired_with_raw_llama']['actor_only']['ours_over_raw']}x)",
        f"  framework share of a step     {r['framework_share']:.1%}",
        f"  one llama.cpp context per role is {r['per_role_context_speedup']}x faster than one shared",
        f"  the model on this machine: {r['prompt_tokens_per_second']} prompt tokens/s, "
        f"{r['generated_tokens_per_second']} generated tokens/s",
        f"  whole step on a scripted LM   {r['scripted_lm_step_ms']:8.2f} ms (the framework alone)",
    ])


if __name__ == "__main__":
    main()
