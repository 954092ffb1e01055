"""Whole episodes on the real embedded model (SmolLM2 via llama-cpp-python) and real environments.

These prove the plumbing works with a real LM: every step is parsed into a valid action or a
recorded failure, the critic's Φ is in range, and every LM call is traced with real token counts.
They do not claim the 135M model is good at the tasks.
"""

import json
import subprocess
import sys

import pytest

from purpose_dspy import Orchestrator, RunConfig, Task, make_env
from purpose_dspy.programs import PurposeAgent

pytestmark = pytest.mark.local_lm


def check_episode(result, max_steps):
    traj = result.trajectory
    assert 1 <= len(traj.steps) <= max_steps
    for step in traj.steps:
        assert step.action is None or step.action.text in step.before.valid_actions
        assert 0 <= step.score.phi_before <= 10 and 0 <= step.score.phi_after <= 10
        assert step.reward == max(0.0, step.score.delta)
        assert step.lm_calls and step.lm_calls[0].role == "actor"
    calls = traj.lm_calls
    assert {c.role for c in calls} <= {"actor", "critic"} and "actor" in {c.role for c in calls}
    assert all(c.prompt_tokens > 0 and c.seconds > 0 for c in calls)  # real, uncached calls
    assert all(c.model.startswith("local/SmolLM2") for c in calls)


def test_treasure_maze_episode(local_lms):
    result = Orchestrator(PurposeAgent(), local_lms, RunConfig(max_steps=3)).run(
        make_env("treasure-maze"), Task(env_id="treasure-maze", seed=3))
    check_episode(result, 3)


def test_the_trace_counts_the_tokens_the_engine_reports(local_lms, monkeypatch):
    """Each traced call carries llama.cpp's own usage for that call, in order, per role."""
    reported = []
    for role, lm in local_lms.items():
        llama = lm.engine._model()
        original = llama.create_chat_completion

        def recording(*args, _role=role, _call=original, **kwargs):
            body = _call(*args, **kwargs)
            reported.append((_role, body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]))
            return body

        monkeypatch.setattr(llama, "create_chat_completion", recording)
    result = Orchestrator(PurposeAgent(), local_lms, RunConfig(max_steps=2)).run(
        make_env("treasure-maze"), Task(env_id="treasure-maze", seed=5))
    traced = [(c.role, c.prompt_tokens, c.completion_tokens) for c in result.trajectory.lm_calls]
    assert traced == reported and len(traced) >= 2


def test_textworld_express_episode(local_lms):
    env = make_env("twx:coin")
    try:
        result = Orchestrator(PurposeAgent(), local_lms, RunConfig(max_steps=3)).run(
            env, Task(env_id="twx:coin", seed=2))
    finally:
        env.close()
    check_episode(result, 3)


def test_cli_json_on_the_embedded_model(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "purpose_dspy.cli", "run", "--env", "twx:coin", "--seed", "1",
         "--max-steps", "2", "--no-cache", "--json"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    summary = json.loads(out.stdout)
    assert {"success", "steps", "phi", "lm_calls", "tokens", "seconds"} <= summary.keys()
    assert summary["lm_calls"] > 0 and summary["tokens"] > 0


def test_critic_check_on_the_embedded_model():
    """`critic-check` against the real model: the guarded properties hold whatever the model says."""
    from click.testing import CliRunner

    from purpose_dspy.cli import main

    result = CliRunner().invoke(main, ["critic-check", "--probes", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    rows = {r["check"]: r for r in report["checks"]}
    assert report["ok"] and report["probes"] == 1
    assert all(rows[name]["guarded"] == 1 for name in ("repeatable", "rewrite", "no_change", "injection"))
    assert rows["parses"]["raw"] is not None


@pytest.mark.envs
def test_the_real_model_follows_a_remembered_successful_path(local_lms, tmp_path):
    """Replay on the real model: after one successful episode of a TWX coin task is remembered,
    the embedded actor is shown its steps as step-aligned demos and walks the same path.

    The first episode is played by a scripted actor (the engine's gold path) so the test does not
    depend on exploration luck; the second is the real model's own choice at every step.
    """
    import dspy

    from purpose_dspy.experience import Experience
    from purpose_dspy.programs import Actor

    class Scripted(Actor):
        def __init__(self, actions):
            super().__init__()
            self.actions = list(actions)

        def forward(self, purpose, state, history="", experience="", demos=None):
            return dspy.Prediction(action=self.actions.pop(0), thought="", error=None, attempts=1)

    env = make_env("twx:coin")
    task = Task(env_id="twx:coin", seed=1, split="dev")  # its gold path walks back and forth
    try:
        env.reset(task)
        gold = [a for a in env.gold_actions() if a != "look around"]
        assert len(gold) >= 2, "a task that needs moves before 'take coin'"
        experience = Experience(tmp_path)
        first = Orchestrator(PurposeAgent(actor=Scripted(gold)), local_lms, RunConfig(max_steps=len(gold)),
                             experience=experience).run(env, task)
        assert first.trajectory.success
        second = Orchestrator(PurposeAgent(), local_lms, RunConfig(max_steps=len(gold) + 4),
                              experience=experience).run(env, task)
    finally:
        env.close()
    check_episode(second, len(gold) + 4)
    # The engine's gold path may loop (it can return to the start room); replay ranks the actions
    # seen in a state by Q, so the model is shown the shortest remembered way and should take it.
    steps = second.trajectory.steps
    assert second.trajectory.success and len(steps) <= len(first.trajectory.steps)
    assert second.memory.demo_steps == len(steps) and second.memory.followed == len(steps)
