"""A silent or broken endpoint fails fast and in one line; an answer nested too deeply is a bad answer.

The endpoints are on 127.0.0.1 only: a bare socket that accepts connections and never answers, and
http.server handlers in the pattern of conftest's `ScriptedChat` that answer `GET /models` and the
structured-outputs probe, then hang, reply 200 without `choices`, or answer JSON nested 10,000 deep.
Runs go through the CLI (click's runner, and one subprocess: the real `purpose-dspy` a user starts).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from purpose_dspy import Task, make_env
from purpose_dspy.cli import main
from purpose_dspy.errors import LMUnavailableError
from purpose_dspy.lm import (
    REQUEST_RETRIES,
    REQUEST_TIMEOUT_S,
    STARTUP_TIMEOUT_S,
    LMSpec,
    check_endpoint,
    load_lm_config,
    worst_case_seconds,
)
from purpose_dspy.programs.retry import predict_with_retries

ROOT = Path(__file__).resolve().parent.parent
VALID = list(make_env("treasure-maze").reset(Task(env_id="treasure-maze", seed=3)).valid_actions)
PROBE = "Answer with a JSON object."
DEEP = 10_000
BUDGET_S = 30  # issue 19: a silent endpoint fails within 30 s in all
LOG_RECORD = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING) ")


def completion(content: str, model: str = "x") -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": model,
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}],
                       "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}).encode()


def probe_answer(body: dict) -> bytes | None:
    """The structured-outputs probe answered as a json_schema-enforcing server would; None for other requests."""
    if PROBE in json.dumps(body["messages"]):
        return completion(json.dumps({"probe": "probe-7f3a"}), body["model"])
    return None


class Scripted(BaseHTTPRequestHandler):
    """GET /models answers at once; a POST gets `server.reply(body)`'s bytes, or nothing at all for None."""

    def do_GET(self):
        self._send(b'{"object": "list", "data": []}')

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        data = self.server.reply(body)
        if data is None:  # silent: hold the connection open, never answer
            self.server.stop.wait(120)
            return
        self._send(data)

    def _send(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """`serve(reply)` starts a `Scripted` server on 127.0.0.1 and returns (base URL, the POST bodies it got)."""
    servers = []

    def start(reply):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
        srv.reply, srv.requests, srv.stop = reply, [], threading.Event()
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/v1", srv.requests

    yield start
    for srv in servers:
        srv.stop.set()
        srv.shutdown()


@pytest.fixture
def silent_socket():
    """Base URL of a port that accepts connections (the kernel's backlog) and never reads or answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def run(base: str, *extra: str, steps: int = 1):
    """`purpose-dspy run --lm openai/x --api-base BASE --json ...` through click's runner; (result, seconds)."""
    args = ["run", "--env", "treasure-maze", "--seed", "3", "--max-steps", str(steps), "--lm", "openai/x",
            "--api-base", base, "--no-cache", "--json", *extra]
    started = time.monotonic()
    result = CliRunner().invoke(main, args)
    return result, time.monotonic() - started


def one_line(result) -> str:
    """The run failed as an expected failure: exit 3 (LM unreachable), one error line, no traceback.

    Log records (DSPy's own handler writes its warnings to stderr) are not the error and not counted."""
    assert result.exit_code == 3, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if not LOG_RECORD.match(line)]
    assert len(lines) == 1 and lines[0].startswith("purpose-dspy: error: "), result.output
    return lines[0]


def test_the_defaults_bound_a_silent_endpoint_within_30_s():
    spec = LMSpec()
    assert (spec.timeout, spec.retries) == (REQUEST_TIMEOUT_S, REQUEST_RETRIES)
    assert worst_case_seconds() == REQUEST_TIMEOUT_S * (REQUEST_RETRIES + 1) + 1  # DSPy waits 1 s before a retry
    assert worst_case_seconds() <= BUDGET_S - STARTUP_TIMEOUT_S  # even after a slow start-up check
    assert worst_case_seconds(10, 2) == 10 * 3 + 1 + 2


def test_a_silent_endpoint_fails_the_start_up_request_in_one_line(silent_socket):
    """The attacker's endpoint: connections are accepted, nothing ever answers. A real `purpose-dspy run`."""
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "purpose_dspy.cli", "run", "--lm", "openai/x", "--api-base",
                          silent_socket, "--max-steps", "1"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    elapsed = time.monotonic() - started
    assert out.returncode == 3 and elapsed < BUDGET_S, (out.returncode, elapsed, out.stderr[-2000:])
    lines = [line for line in out.stderr.strip().splitlines() if not LOG_RECORD.match(line)]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert silent_socket in lines[0] and "'x'" in lines[0] and "did not answer" in lines[0]
    assert "--api-base" in lines[0]  # what to do


def test_the_start_up_check_is_a_real_request_with_a_short_timeout(silent_socket):
    started = time.monotonic()
    with pytest.raises(LMUnavailableError, match="did not answer GET /models within 0.5 s"):
        check_endpoint(silent_socket, 0.5, model="x")
    assert time.monotonic() - started < 3


def test_an_endpoint_silent_after_start_up_fails_within_30_s_at_the_defaults(serve):
    """GET /models and the probe are answered, then every completion hangs: the defaults end the run."""
    base, requests = serve(probe_answer)
    result, elapsed = run(base)
    line = one_line(result)
    assert elapsed < BUDGET_S, elapsed
    assert elapsed >= REQUEST_TIMEOUT_S * (REQUEST_RETRIES + 1)  # every attempt had its full time
    assert base in line and "openai/x" in line and "'x'" in line and "--lm-timeout" in line, line
    assert f"within {REQUEST_TIMEOUT_S:g} s" in line
    assert sum(PROBE not in json.dumps(r["messages"]) for r in requests) == REQUEST_RETRIES + 1


def test_lm_timeout_and_lm_retries_are_flags(serve):
    base, requests = serve(probe_answer)
    result, elapsed = run(base, "--lm-timeout", "1", "--lm-retries", "2")
    assert "within 1 s" in one_line(result)
    assert sum(PROBE not in json.dumps(r["messages"]) for r in requests) == 3  # 1 + 2 retries, then give up
    assert elapsed < worst_case_seconds(1, 2) + 5


def test_timeout_and_retries_resolve_like_the_other_lm_settings(tmp_path):
    assert load_lm_config(environ={"PURPOSE_DSPY_LM_TIMEOUT": "60", "PURPOSE_DSPY_LM_RETRIES": "0"}).for_role(
        "critic").model_dump(include={"timeout", "retries"}) == {"timeout": 60.0, "retries": 0}
    toml = tmp_path / "lm.toml"
    toml.write_text("[lm]\ntimeout = 120\n[lm.critic]\nretries = 3\n")
    config = load_lm_config(config_file=toml, environ={})
    assert (config.for_role("actor").timeout, config.for_role("actor").retries) == (120, REQUEST_RETRIES)
    assert (config.for_role("critic").timeout, config.for_role("critic").retries) == (120, 3)


@pytest.mark.parametrize("reply", [
    {"id": "x", "object": "chat.completion", "model": "x"},
    {"id": "x", "object": "chat.completion", "model": "x", "choices": []},
    {"error": {"message": "model is still loading"}},
])
def test_a_reply_without_choices_is_an_lm_failure_at_start_up(serve, reply):
    base, _ = serve(lambda body: json.dumps(reply).encode())
    line = one_line(run(base)[0])
    assert "start-up probe" in line and "no choices" in line and base in line and "--api-base" in line, line


def test_a_reply_without_choices_mid_run_is_an_lm_failure_not_a_failed_step(serve):
    base, requests = serve(lambda body: probe_answer(body) or json.dumps({"choices": []}).encode())
    line = one_line(run(base)[0])
    assert "actor LM (openai/x) failed" in line and "no choices" in line and base in line, line
    assert sum(PROBE not in json.dumps(r["messages"]) for r in requests) == REQUEST_RETRIES + 1  # retried, bounded


def test_a_reply_body_nested_too_deeply_is_an_lm_failure(serve):
    base, _ = serve(lambda body: probe_answer(body) or ("[" * DEEP + "]" * DEEP).encode())
    assert "nested too deeply" in one_line(run(base)[0])


@pytest.mark.parametrize("answer", ["[" * DEEP + "]" * DEEP, '{"thought": ' + "[" * DEEP + "]" * DEEP + "}",
                                    '{"a": ' * DEEP + "1" + "}" * DEEP])
def test_an_answer_nested_10000_deep_is_a_failed_step_not_a_traceback(serve, answer):
    base, requests = serve(lambda body: probe_answer(body) or completion(answer, body["model"]))
    result, _ = run(base, steps=2)
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output[-2000:]
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["failed_steps"] == 2 and not summary["success"]
    asked = [r for r in requests if PROBE not in json.dumps(r["messages"])]
    assert len(asked) >= 4  # each step's actor was asked again (sampling a new answer) before giving up


def test_the_retry_loop_treats_a_recursion_error_as_a_bad_answer():
    calls = []

    def predict(**inputs):
        calls.append(inputs["config"])
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array from a unicode string")

    # Whatever `catch` a program passes (here not even AdapterParseError), the decoder's failure is retried.
    value, error, attempts = predict_with_retries(predict, attempts=2, retry_temperature=0.7, catch=(KeyError,))
    assert value is None and attempts == 2 and len(calls) == 2 and calls[1]["rollout_id"] == 1
    assert error == "; ".join(["answer nested too deeply to decode (RecursionError)"] * 2)
