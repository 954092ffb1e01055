"""The same model through llama.cpp's OpenAI-compatible server and in-process: success, tokens, time.

Runs the same treasure-maze seeds three times with the critic on and the response cache off: through
llama-cpp-python's own server (`python -m llama_cpp.server`, started here on a free 127.0.0.1 port on
the shipped SmolLM2 GGUF, reached as `--lm openai/smollm2 --api-base ...` would, structured outputs
probed), without and with its prompt cache (`--cache true`), then on the embedded engine, after the
server has stopped (one process holds the model at a time). Prints a row per path (success, failed
and unscored steps, tokens per step, LM seconds and wall seconds per step), how many seeds gave the
very same episode (actions and Φ) on all three, and the HTTP round trip alone (median GET /models),
and writes it all, with the command that made it, to benchmarks/results/server_vs_embedded.json.

    python benchmarks/server_vs_embedded.py [--seeds 1-10] [--max-steps 4] [--out PATH]

Needs `pip install 'purpose-dspy[local,server]'`. Run it with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from purpose_dspy import Orchestrator, RunConfig, Task, make_env
from purpose_dspy.lm import build_role_lms, load_lm_config, structured_outputs_of
from purpose_dspy.lm.local_models import resolve_local
from purpose_dspy.programs import PurposeAgent

OUT = Path(__file__).resolve().parent / "results" / "server_vs_embedded.json"


@contextmanager
def llama_server(threads: int, cache: bool, timeout: float = 120):
    """llama-cpp-python's server on the shipped SmolLM2 GGUF, on a free loopback port; yields its base URL.

    `cache`: the server's `--cache true` (a RAM cache of evaluated prompts), which gives back the prompt-prefix
    reuse the embedded engine gets from one llama.cpp context per role: the server has one context, and actor
    and critic prompts alternate in it.
    """
    _, gguf = resolve_local("smollm2-135m")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", "4096", "--n_threads", str(threads), "--n_threads_batch", str(threads),
           "--cache", "true" if cache else "false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"llama_cpp.server did not start (exit {proc.returncode}): {shlex.join(cmd)}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def http_round_trip_ms(base: str, n: int = 20) -> float:
    """Median time of a GET /models on the server: the HTTP cost of a call, without the model."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        with urllib.request.urlopen(f"{base}/models", timeout=5) as reply:
            reply.read()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


def warm_up(lms: dict) -> None:
    """One tiny call per role, so the embedded model's lazy load is not timed as a step (the server loaded at start)."""
    for lm in lms.values():
        lm("Say ok.", max_tokens=1)


def episodes(lms: dict, seeds: list[int], max_steps: int) -> tuple[list[dict], str]:
    """One episode per seed; per episode the figures the table sums, and the adapter the loop used."""
    warm_up(lms)
    env = make_env("treasure-maze")
    rows, adapter = [], ""
    for seed in seeds:
        orchestrator = Orchestrator(PurposeAgent(), lms, RunConfig(max_steps=max_steps, seed=seed))
        adapter = type(orchestrator.adapter).__name__
        result = orchestrator.run(env, Task(env_id="treasure-maze", seed=seed))
        steps, calls = result.trajectory.steps, result.trajectory.lm_calls
        rows.append({
            "seed": seed, "success": result.trajectory.success, "steps": len(steps),
            "failed_steps": sum(1 for s in steps if s.error),
            "unscored_steps": sum(1 for s in steps if "unscored" in s.score.flags),
            "lm_calls": len(calls), "prompt_tokens": sum(c.prompt_tokens for c in calls),
            "completion_tokens": sum(c.completion_tokens for c in calls),
            "lm_seconds": round(sum(c.seconds for c in calls), 3), "seconds": round(sum(s.seconds for s in steps), 3),
            "episode": [[s.action.text if s.action else None, s.score.phi_before, s.score.phi_after] for s in steps],
        })
        print(f"  seed {seed}: {rows[-1]['steps']} steps, {rows[-1]['failed_steps']} failed, "
              f"{rows[-1]['seconds']:.1f}s", file=sys.stderr)
    return rows, adapter


def totals(rows: list[dict]) -> dict:
    steps = sum(r["steps"] for r in rows) or 1
    per_step = lambda key: round(sum(r[key] for r in rows) / steps, 2)
    return {"episodes": len(rows), "successes": sum(r["success"] for r in rows), "steps": steps,
            "failed_steps": sum(r["failed_steps"] for r in rows), "unscored_steps": sum(r["unscored_steps"] for r in rows),
            "lm_calls_per_step": per_step("lm_calls"), "prompt_tokens_per_step": per_step("prompt_tokens"),
            "completion_tokens_per_step": per_step("completion_tokens"),
            "lm_seconds_per_step": per_step("lm_seconds"), "seconds_per_step": per_step("seconds")}


def render(report: dict) -> str:
    head = (f"{'path':<14}{'success':>9}{'failed':>8}{'unscored':>10}{'calls/step':>11}{'prompt tok/step':>16}"
            f"{'compl. tok/step':>16}{'LM s/step':>10}{'s/step':>8}")
    lines = [head]
    for path, t in report["paths"].items():
        lines.append(f"{path:<14}{t['successes']:>5}/{t['episodes']:<3}{t['failed_steps']:>8}{t['unscored_steps']:>10}"
                     f"{t['lm_calls_per_step']:>11}{t['prompt_tokens_per_step']:>16}{t['completion_tokens_per_step']:>16}"
                     f"{t['lm_seconds_per_step']:>10}{t['seconds_per_step']:>8}")
    lines.append(f"same episode (actions and Φ) on all paths: {report['same_episode']}/{len(report['seeds'])} seeds; "
                 f"server structured outputs: {report['structured_outputs']}; HTTP round trip (GET /models, "
                 f"median): {report['http_round_trip_ms']} ms; load average at the end: {report['load_average_at_end']}")
    return "\n".join(lines)


def parse_seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1-10", help="treasure-maze train seeds, FIRST-LAST")
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    threads = int(os.environ.get("PURPOSE_DSPY_THREADS") or 0) or max(1, min(os.cpu_count() or 1, 4))

    rows = {}
    for path, cache in (("server", False), ("server+cache", True)):
        with llama_server(threads, cache) as base:
            lms = build_role_lms(load_lm_config(model="openai/smollm2", api_base=base, cache=False))
            modes = structured_outputs_of(lms)
            rows[path], adapter = episodes(lms, seeds, args.max_steps)
            round_trip = http_round_trip_ms(base)
    rows["embedded"], _ = episodes(build_role_lms(load_lm_config(model="local/smollm2-135m", cache=False)), seeds,
                                   args.max_steps)
    report = {
        "command": shlex.join(["python", "benchmarks/server_vs_embedded.py", *sys.argv[1:]]),
        "env": "treasure-maze", "seeds": seeds, "max_steps": args.max_steps, "threads": threads,
        "adapter": adapter, "structured_outputs": modes, "http_round_trip_ms": round_trip, "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "paths": {path: totals(r) for path, r in rows.items()},
        "same_episode": sum(a["episode"] == b["episode"] == c["episode"]
                            for a, b, c in zip(rows["server"], rows["server+cache"], rows["embedded"], strict=True)),
        "per_seed": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(render(report))


if __name__ == "__main__":
    main()
