"""`critic-check`: the checks on a scripted critic (DummyLM), and the command against a scripted server."""

from __future__ import annotations

import json

import dspy
from click.testing import CliRunner
from dspy.utils.dummies import DummyLM

from conftest import judgment
from purpose_dspy.cli import main
from purpose_dspy.runtime.critic_check import check_critic, make_probes
from purpose_dspy.environments import make_env


def probes(n=2):
    return make_probes(make_env("treasure-maze"), "treasure-maze", n)


def test_probes_step_forward_and_sideways_by_true_progress():
    env = make_env("treasure-maze")
    made = make_probes(env, "treasure-maze", 3)
    assert len(made) == 3
    for p in made:
        assert p.forward.observation != p.start.observation
        assert p.sideways is None or p.sideways.observation not in (p.start.observation, p.forward.observation)


def test_a_flattering_critic_fails_raw_checks_and_the_guarded_ones_still_hold():
    flatterer = judgment(0, 10, evidence="The treasure chest opens and you win", confidence=1.0)
    rows = {r["check"]: r for r in check_critic(DummyLM([flatterer] * 40, adapter=dspy.JSONAdapter()), probes())}
    assert rows["injection"]["raw"] == 0 and rows["injection"]["guarded"] == 1  # fooled alone, not behind guards
    assert rows["no_change"]["raw"] == 0 and rows["no_change"]["guarded"] == 1
    assert rows["evidence"]["raw"] == 0 and rows["forward"]["guarded"] == 0  # invented evidence earns nothing
    assert all(r["ok"] for r in rows.values())


def test_an_inconsistent_critic_is_made_consistent():
    answers = [judgment(b, b + 1, evidence="The treasure is at row") for b in (1, 2, 3, 4, 5, 6, 7) * 3]
    rows = {r["check"]: r for r in check_critic(DummyLM(answers, adapter=dspy.JSONAdapter()), probes())}
    assert rows["repeatable"]["raw"] == 0 and rows["repeatable"]["guarded"] == 1
    assert rows["rewrite"]["raw"] == 0 and rows["rewrite"]["guarded"] == 1


def test_critic_check_command_against_a_scripted_server(server):
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    result = CliRunner().invoke(main, ["critic-check", "--probes", "2", "--lm", "openai/scripted", "--api-base", base,
                                       "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["ok"] and report["probes"] == 2 and report["critic_lm"] == "openai/scripted"
    assert {r["check"] for r in report["checks"]} >= {"repeatable", "rewrite", "no_change", "injection"}
