"""Shared fixtures. Every on-disk store points into a temp dir; no test touches the network."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Before DSPy is imported anywhere: no model-metadata fetch, and DSPy's disk cache in a temp dir.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("DSPY_CACHEDIR", tempfile.mkdtemp(prefix="purpose-dspy-test-cache-"))

import dspy  # noqa: E402
import pytest  # noqa: E402
from dspy.utils.dummies import DummyLM  # noqa: E402


def scripted_lms(actor: list[dict], critic: list[dict]) -> dict[str, DummyLM]:
    """DummyLMs that answer the actor and the critic from scripts, in JSON like the real adapter."""
    return {
        "actor": DummyLM(actor, adapter=dspy.JSONAdapter()),
        "critic": DummyLM(critic, adapter=dspy.JSONAdapter()),
    }


def judgment(before: float, after: float, evidence: str = "You are at row", confidence: float = 0.9) -> dict:
    return {"evidence": evidence, "reasoning": "test", "phi_before": before, "phi_after": after,
            "confidence": confidence}


# --- an OpenAI-compatible server on loopback that answers from a script (remote-LM tests) ---
class ScriptedChat(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        prompt = json.dumps(body["messages"])
        if "state_before" in prompt:
            content = {"evidence": "You are at row", "reasoning": "closer", "phi_before": 2, "phi_after": 3, "confidence": 0.8}
        else:
            content = {"thought": "try it", "action": self.server.action}
        reply = {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(content)}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A scripted chat-completions server on 127.0.0.1: critic prompts get 2 -> 3, actor prompts a move."""
    from purpose_dspy import Task, make_env

    srv = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedChat)
    srv.action = make_env("treasure-maze").reset(Task(env_id="treasure-maze", seed=3)).valid_actions[0]
    ScriptedChat.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()


@pytest.fixture(scope="session")
def local_lms():
    """The real embedded model for actor and critic, cache off (a consistency test must not test the cache)."""
    from purpose_dspy.lm import build_role_lms, load_lm_config

    return build_role_lms(load_lm_config(model="local/smollm2-135m", cache=False))


# --- hypothesis: deterministic in CI; `HYPOTHESIS_PROFILE=explore` searches wider and at random ---
from hypothesis import HealthCheck, Phase, settings  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, deadline=None, database=None, max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# For the ablation runs: find a counterexample, do not spend minutes shrinking it.
settings.register_profile(
    "ablation", parent=settings.get_profile("ci"), phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.register_profile("explore", deadline=None, max_examples=600, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption(
        "--ablate", action="append", default=[], metavar="SAFEGUARD",
        help="switch a critic safeguard off in the property tests, to see which test catches its removal",
    )


@pytest.fixture(scope="session")
def ablated(request) -> tuple[str, ...]:
    """Safeguards removed for this test session (`pytest --ablate evidence`); empty normally."""
    return tuple(request.config.getoption("--ablate"))
