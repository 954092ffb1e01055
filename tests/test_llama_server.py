"""Whole runs through a real OpenAI-compatible server: llama-cpp-python's own, on the shipped GGUF.

The fixture starts `python -m llama_cpp.server` on 127.0.0.1 (a free port, the SmolLM2 file the
embedded engine runs, stopped at teardown) and every test drives the CLI in a subprocess with
`--lm openai/smollm2 --api-base ...`, each bounded by a timeout. This is the path a user takes
with vLLM, Ollama or llama.cpp: no test here loads a model in the pytest process. The server's
faults (refusals, free text, 401) are tested against scripted servers in
test_openai_compatible_endpoint.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.local_lm

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120
RUN_TIMEOUT_S = 420


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(proc: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/models", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer within {START_TIMEOUT_S}s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """Base URL of llama-cpp-python's OpenAI-compatible server on the shipped SmolLM2 GGUF."""
    pytest.importorskip("llama_cpp.server.app", reason="needs the server extra: pip install 'purpose-dspy[server]'")
    from purpose_dspy.lm.local_models import resolve_local

    _, gguf = resolve_local("smollm2-135m")
    port, log = _free_port(), tmp_path_factory.mktemp("llama-server") / "server.log"
    threads = os.environ.get("PURPOSE_DSPY_THREADS") or str(max(1, min(os.cpu_count() or 1, 4)))
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", "4096", "--n_threads", threads, "--n_threads_batch", threads, "--cache", "true"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_serving(proc, base, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cli(*args: str) -> dict:
    """`purpose-dspy ARGS --json` in a subprocess (bounded), its last stdout line as JSON."""
    # a 135M model on 2 busy cores can take longer than the 10 s request timeout meant for silent endpoints
    env = {**os.environ, "PURPOSE_DSPY_LM_TIMEOUT": "120"}
    out = subprocess.run([sys.executable, "-m", "purpose_dspy.cli", *args, "--json"], cwd=ROOT, capture_output=True, check=False,
                         text=True, timeout=RUN_TIMEOUT_S, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_run(summary: dict, steps: int) -> None:
    """Every step a valid action, Φ scored on every step, real token counts per role, json_object mode."""
    assert summary["steps"] == steps and summary["failed_steps"] == 0, summary
    assert "unscored" not in summary["critic_flags"], summary["critic_flags"]
    assert summary["structured_outputs"] == {"actor": "json_object", "critic": "json_object"}
    assert summary["models"] == {"actor": "openai/smollm2", "critic": "openai/smollm2"}
    for role in ("actor", "critic"):
        usage = summary["by_role"][role]
        assert usage["calls"] >= 1 and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


def test_treasure_maze_run_through_the_server(llama_server):
    """The issue's acceptance run: 0 failed steps, the critic scores every step."""
    summary = cli("run", "--env", "treasure-maze", "--seed", "3", "--max-steps", "4", "--lm", "openai/smollm2",
                  "--api-base", llama_server, "--no-cache")
    check_run(summary, 4)


@pytest.mark.envs
def test_textworld_express_run_through_the_server(llama_server):
    pytest.importorskip("textworld_express")
    summary = cli("run", "--env", "twx:coin", "--seed", "1", "--max-steps", "3", "--lm", "openai/smollm2",
                  "--api-base", llama_server, "--no-cache")
    check_run(summary, 3)


def test_eval_of_the_committed_artifact_through_the_server(llama_server):
    report = cli("eval", "compiled/treasure-maze", "--split", "test", "--tasks", "1", "--lm", "openai/smollm2",
                 "--api-base", llama_server)
    assert report["n"] == 1 and report["lm_calls"] > 0 and report["prompt_tokens"] > 0, report
    assert set(report["by_role"]) == {"actor"}  # eval is actor-only unless --critic


def test_critic_check_through_the_server(llama_server):
    report = cli("critic-check", "--probes", "1", "--lm", "openai/smollm2", "--api-base", llama_server)
    assert report["critic_lm"] == "openai/smollm2" and report["probes"] == 1
    assert all(r["ok"] for r in report["checks"] if r["must_hold"]), report["checks"]
