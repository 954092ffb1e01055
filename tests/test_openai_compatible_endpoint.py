"""The remote path: an OpenAI-compatible server on loopback, reached through `--lm` / `--api-base`.

The server (conftest's `server` fixture) is a few lines of http.server that answers chat
completions from a script, so the test exercises DSPy's real HTTP client, our endpoint check and
the CLI, with no network beyond 127.0.0.1 and no key.
"""

import json

from click.testing import CliRunner

from conftest import ScriptedChat
from purpose_dspy.cli import main


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


def test_store_flag_shares_phi_between_runs(server, tmp_path):
    """With --store, a second run of the same step finds Φ of both states on disk: no critic call."""
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    args = ["run", "--env", "treasure-maze", "--seed", "3", "--max-steps", "1", "--lm", "openai/scripted",
            "--api-base", base, "--no-cache", "--json", "--store", str(tmp_path / "phi")]
    summaries = []
    for _ in range(2):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        summaries.append(json.loads(result.output.strip().splitlines()[-1]))
    assert [s["by_role"].get("critic", {}).get("calls", 0) for s in summaries] == [1, 0]
    assert summaries[0]["phi"] == summaries[1]["phi"]


def test_unknown_safeguard_is_a_usage_error():
    result = CliRunner().invoke(main, ["run", "--ablate", "evidense"])
    assert result.exit_code == 2 and "evidense" in result.output
