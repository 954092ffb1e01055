"""The remote path: an OpenAI-compatible server on loopback, reached through `--lm` / `--api-base`.

The server here is a few lines of http.server that answers chat completions from a script, so the
test exercises DSPy's real HTTP client, our endpoint check and the CLI, with no network beyond
127.0.0.1 and no key.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from purpose_dspy.cli import main


class ScriptedChat(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        prompt = json.dumps(body["messages"])
        if "state_before" in prompt:
            content = {"evidence": "The treasure is at row", "reasoning": "closer", "phi_before": 2, "phi_after": 3, "confidence": 0.8}
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
    from purpose_dspy import Task, make_env

    srv = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedChat)
    srv.action = make_env("treasure-maze").reset(Task(env_id="treasure-maze", seed=3)).valid_actions[0]
    ScriptedChat.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()


def test_run_against_an_openai_compatible_server(server):
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    result = CliRunner().invoke(main, ["run", "--env", "treasure-maze", "--seed", "3", "--max-steps", "1",
                                       "--lm", "openai/scripted", "--api-base", base, "--no-cache", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["steps"] == 1 and summary["lm_calls"] == 2 and summary["tokens"] == 36  # actor + critic
    assert summary["phi"] == {"start": 2.0, "end": 3.0, "total_reward": 1.0}
    assert summary["models"] == {"actor": "openai/scripted", "critic": "openai/scripted"}
    assert ScriptedChat.requests and all(r["model"] == "scripted" for r in ScriptedChat.requests)
