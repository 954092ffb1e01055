"""The remote path: an OpenAI-compatible server on loopback, reached through `--lm` / `--api-base`.

The servers here are a few lines of http.server that answer chat completions from a script (conftest's
`server`, and the `fake` ones below for the faults: a server that refuses every response_format, one
that enforces json_schema, one that refuses unknown parameters, one that wants a key, one that fails),
so the tests exercise the real HTTP client, the structured-outputs probe, our endpoint check and the
CLI, with no network beyond 127.0.0.1 and no key. The same path against a real llama.cpp server is in
test_llama_server.py.
"""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from conftest import ScriptedChat

from purpose_dspy import Task, make_env
from purpose_dspy.cli import main
from purpose_dspy.errors import UsageError
from purpose_dspy.lm import flag_overrides, load_lm_config
from purpose_dspy.lm.schema import cap_strings, response_format

VALID = list(make_env("treasure-maze").reset(Task(env_id="treasure-maze", seed=3)).valid_actions)
PROBE = "Answer with a JSON object."


def run(base, *extra, steps=1):
    args = ["run", "--env", "treasure-maze", "--seed", "3", "--max-steps", str(steps), "--lm", "openai/scripted",
            "--api-base", base, "--no-cache", "--json", *extra]
    return CliRunner().invoke(main, args)


def summary_of(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def asked(body):
    return json.dumps(body["messages"])


def role_answer(body):
    """What a cooperative model says: a judgment for critic prompts, a valid move for actor prompts."""
    if "state_before" in asked(body):
        return {"evidence": "You are at row", "reasoning": "closer", "phi_before": 2, "phi_after": 3,
                "confidence": 0.8}
    return {"thought": "try it", "action": VALID[0]}


class Fake(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        status, content = self.server.answer(body)
        reply = ({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                  "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                  "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}
                 if status == 200 else {"error": {"message": content}})
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake():
    """`fake(answer)` starts a server where `answer(body) -> (status, content)` and returns (base URL, requests)."""
    servers = []

    def start(answer):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Fake)
        srv.answer, srv.requests = answer, []
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/v1", srv.requests

    yield start
    for srv in servers:
        srv.shutdown()


def test_run_against_an_openai_compatible_server(server):
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    summary = summary_of(run(base))
    assert summary["steps"] == 1 and summary["lm_calls"] == 2 and summary["tokens"] == 36  # actor + critic
    assert summary["phi"] == {"start": 2.0, "end": 3.0, "max": 3.0, "total_reward": 1.0}
    assert summary["models"] == {"actor": "openai/scripted", "critic": "openai/scripted"}
    assert ScriptedChat.requests and all(r["model"] == "scripted" for r in ScriptedChat.requests)
    # It answers JSON whatever it is asked: the probe settles on json_object, which carries the schema.
    assert summary["structured_outputs"] == {"actor": "json_object", "critic": "json_object"}
    actor = next(r for r in ScriptedChat.requests if PROBE not in asked(r) and "state_before" not in asked(r))
    schema = actor["response_format"]["schema"]
    assert actor["response_format"]["type"] == "json_object" and actor["max_tokens"] == 384
    assert schema["properties"]["action"]["enum"] == VALID  # the per-call Literal of valid actions
    assert actor["temperature"] == 0 and actor["repeat_penalty"] == 1.0
    critic = next(r for r in ScriptedChat.requests if "state_before" in asked(r))
    assert critic["response_format"]["schema"]["properties"]["evidence"]["maxLength"] == 240  # every role's cap
    assert schema["properties"]["thought"]["maxLength"] == 120  # the actor's own (lm/schema.py ROLE_STRING_CHARS)


def test_store_flag_shares_phi_between_runs(server, tmp_path):
    """With --store, a second run of the same step finds Φ of both states on disk: no critic call."""
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    summaries = [summary_of(run(base, "--store", str(tmp_path / "phi"))) for _ in range(2)]
    assert [s["by_role"].get("critic", {}).get("calls", 0) for s in summaries] == [1, 0]
    assert summaries[0]["phi"] == summaries[1]["phi"]


def enforcing(body):
    """A server that constrains decoding by json_schema (vLLM, Ollama): the probe gets its one allowed value."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema" and "probe" in fmt["json_schema"]["schema"]["properties"]:
        return 200, json.dumps({"probe": fmt["json_schema"]["schema"]["properties"]["probe"]["enum"][0]})
    return 200, json.dumps(role_answer(body))


def test_a_server_that_enforces_json_schema_gets_the_schema_that_way(fake):
    base, requests = fake(enforcing)
    summary = summary_of(run(base))
    assert summary["structured_outputs"] == {"actor": "json_schema", "critic": "json_schema"}
    assert sum(PROBE in asked(r) for r in requests) == 1  # one probe for both roles on one endpoint
    fmt = next(r for r in requests if "state_before" in asked(r))["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert set(fmt["json_schema"]["schema"]["required"]) >= {"evidence", "phi_before", "phi_after"}


def test_an_explicit_mode_skips_the_probe(fake):
    base, requests = fake(lambda body: (200, json.dumps(role_answer(body))))
    summary = summary_of(run(base, "--structured-outputs", "json_schema"))
    assert summary["structured_outputs"] == {"actor": "json_schema", "critic": "json_schema"}
    assert not any(PROBE in asked(r) for r in requests) and summary["failed_steps"] == 0


def free_text_only(body):
    """A server with no structured outputs at all, in front of a model that answers in prose."""
    if "response_format" in body:
        return 400, "response_format is not supported"
    return 200, "I think going north is a good idea."


def test_no_structured_outputs_ends_cleanly_with_failed_steps_and_one_line_of_advice(fake, caplog):
    base, requests = fake(free_text_only)
    with caplog.at_level(logging.WARNING):
        summary = summary_of(run(base, steps=2))
    assert summary["structured_outputs"] == {"actor": "none", "critic": "none"}
    assert summary["steps"] == 2 and summary["failed_steps"] == 2
    advice = [r for r in caplog.records if "structured outputs are off" in r.getMessage()]
    assert len(advice) == 1 and "\n" not in advice[0].getMessage() and "README" in advice[0].getMessage()
    assert not any("response_format" in r for r in requests if PROBE not in asked(r))


def test_the_none_setting_is_taken_as_given(fake):
    base, requests = fake(lambda body: (200, json.dumps(role_answer(body))))
    summary = summary_of(run(base, "--structured-outputs", "none"))
    assert summary["structured_outputs"] == {"actor": "none", "critic": "none"} and summary["failed_steps"] == 0
    assert requests and not any("response_format" in r for r in requests)


def strict_parameters(body):
    """A strict API: unknown parameters are a 400 (the neutral repeat_penalty must then be dropped)."""
    if "repeat_penalty" in body:
        return 400, "Unrecognized request argument supplied: repeat_penalty"
    return enforcing(body)


def test_a_refused_sampling_extra_is_dropped_not_mistaken_for_a_refused_format(fake):
    base, requests = fake(strict_parameters)
    summary = summary_of(run(base))
    assert summary["structured_outputs"] == {"actor": "json_schema", "critic": "json_schema"}
    assert "repeat_penalty" in requests[0] and not any("repeat_penalty" in r for r in requests[1:])


def test_an_endpoint_that_wants_a_key_fails_in_one_line(fake):
    base, _ = fake(lambda body: (401, "invalid api key"))
    result = run(base)
    assert result.exit_code == 3 and "401" in result.output and "Traceback" not in result.output


def test_a_server_failing_mid_run_ends_it_with_a_clear_error(fake):
    base, _ = fake(lambda body: enforcing(body) if PROBE in asked(body) else (503, "overloaded"))
    result = run(base)
    assert result.exit_code == 3 and "actor LM (openai/scripted) failed" in result.output


def test_structured_outputs_resolves_like_the_other_lm_settings(tmp_path):
    toml = tmp_path / "lm.toml"
    toml.write_text('[lm]\nstructured_outputs = "json_object"\n[lm.critic]\nstructured_outputs = "none"\n')
    config = load_lm_config(config_file=toml, environ={})
    assert config.for_role("actor").structured_outputs == "json_object"
    assert config.for_role("critic").structured_outputs == "none"
    assert load_lm_config(environ={}).for_role("actor").structured_outputs == "auto"
    env = {"PURPOSE_DSPY_STRUCTURED_OUTPUTS": "none"}
    assert load_lm_config(environ=env).for_role("actor").structured_outputs == "none"
    with flag_overrides(structured_outputs="json_schema"):
        assert load_lm_config(environ=env).for_role("actor").structured_outputs == "json_schema"
    assert load_lm_config(environ=env).for_role("actor").structured_outputs == "none"  # the flag's scope ended
    with pytest.raises(UsageError, match="structured_outputs"):
        load_lm_config(environ={"PURPOSE_DSPY_STRUCTURED_OUTPUTS": "grammar"})


def test_the_wire_formats_of_the_three_modes():
    fmt = {"name": "Out", "schema": {"type": "object", "properties": {
        "why": {"type": "string"}, "move": {"type": "string", "enum": ["north"]}, "short": {"type": "string", "maxLength": 9}}}}
    capped = cap_strings(fmt["schema"], 240)
    assert capped["properties"]["why"]["maxLength"] == 240 and "maxLength" not in capped["properties"]["move"]
    assert capped["properties"]["short"]["maxLength"] == 9
    assert response_format(fmt, "json_schema") == {"type": "json_schema", "json_schema": {
        "name": "Out", "schema": capped, "strict": True}}
    assert response_format(fmt, "json_object") == {"type": "json_object", "schema": capped}
    assert response_format(fmt, "none") is None and response_format(None, "json_schema") is None
    assert response_format({"type": "json_object"}, "json_schema") == {"type": "json_object"}


def test_unknown_safeguard_is_a_usage_error():
    result = CliRunner().invoke(main, ["run", "--ablate", "evidense"])
    assert result.exit_code == 2 and "evidense" in result.output
