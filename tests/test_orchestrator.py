"""The step loop on the real treasure maze with scripted LMs: rewards, failed steps, limits, trace."""

import dspy
import pytest
from dspy import lm15

from conftest import judgment, scripted_lms
from purpose_dspy import Experience, Orchestrator, RunConfig, Task, make_env
from purpose_dspy.errors import LMUnavailableError, UsageError
from purpose_dspy.programs import PurposeAgent
from purpose_dspy.runtime.trace import LMCallRecorder
from purpose_dspy.safeguards import PhiStore

TASK = Task(env_id="treasure-maze", seed=3)


def first_valid(seed=3):
    return make_env("treasure-maze").reset(Task(env_id="treasure-maze", seed=seed)).valid_actions[0]


def test_reward_only_when_phi_rises_and_every_call_is_traced():
    move = first_valid()
    lms = scripted_lms(actor=[{"thought": "t", "action": move}] * 3,
                       critic=[judgment(1, 3), judgment(3, 3), judgment(3, 2)])
    result = Orchestrator(PurposeAgent(), lms, RunConfig(max_steps=3)).run(make_env("treasure-maze"), TASK)
    steps = result.trajectory.steps
    assert [s.reward for s in steps] == [2, 0, 0]
    assert result.trajectory.stop_reason in ("max_steps", "done")
    assert [c.role for c in steps[0].lm_calls] == ["actor", "critic"]
    assert result.summary()["lm_calls"] == 2 * len(steps)


def test_invalid_actions_become_a_recorded_failed_step_and_the_env_is_not_moved():
    lms = scripted_lms(actor=[{"thought": "t", "action": "fly"}, {"thought": "t", "action": "dig"}], critic=[])
    env = make_env("treasure-maze")
    result = Orchestrator(PurposeAgent(), lms, RunConfig(max_steps=1)).run(env, TASK)
    (step,) = result.trajectory.steps
    assert step.action is None and "dig" in step.error and "fly" in step.error
    assert step.before == step.after and "unscored" in step.score.flags
    assert [c.role for c in step.lm_calls] == ["actor", "actor"]  # one retry, no critic call


def test_lm_call_budget_stops_the_run():
    move = first_valid()
    lms = scripted_lms(actor=[{"thought": "t", "action": move}] * 5, critic=[judgment(1, 1)] * 5)
    result = Orchestrator(PurposeAgent(), lms, RunConfig(max_steps=10, max_lm_calls=4)).run(make_env("treasure-maze"), TASK)
    assert result.trajectory.stop_reason == "lm_budget" and len(result.trajectory.steps) == 2


class DeadEngine:
    """An engine whose server always answers 503."""

    def complete(self, request):
        raise lm15.ServerError("upstream 503")


def test_a_failing_lm_ends_the_run_with_a_clear_error():
    lms = scripted_lms(actor=[], critic=[])
    lms["actor"] = dspy.LM("dead/model", engine=DeadEngine(), num_retries=0, cache=False)
    with pytest.raises(LMUnavailableError, match="actor LM .dead/model. failed"):
        Orchestrator(PurposeAgent(), lms).run(make_env("treasure-maze"), TASK)


def test_orchestrator_requires_actor_and_critic_lms():
    with pytest.raises(ValueError, match="critic"):
        Orchestrator(PurposeAgent(), {"actor": object()})


def test_an_actor_only_run_never_calls_the_critic_and_says_phi_was_not_scored():
    move = first_valid()
    lms = scripted_lms(actor=[{"thought": "t", "action": move}] * 3, critic=[])
    store = PhiStore()
    result = Orchestrator(PurposeAgent(), lms, RunConfig(max_steps=3, score_phi=False), phi_store=store).run(
        make_env("treasure-maze"), TASK)
    roles = [c.role for c in result.trajectory.lm_calls]
    assert roles and set(roles) == {"actor"}  # counted by role in the trace: no critic call
    assert all("unscored" in s.score.flags and s.score.delta == 0 and s.reward == 0 for s in result.trajectory.steps)
    assert len(store) == 0  # nothing written to the Φ store
    summary = result.summary()
    assert summary["phi_scored"] is False and set(summary["by_role"]) == {"actor"}
    assert summary["phi"]["total_reward"] == 0


def test_an_actor_only_run_with_experience_is_refused_with_the_reason():
    experience = Experience(None)
    try:
        with pytest.raises(UsageError, match="online learning .* learns from Φ"):
            Orchestrator(PurposeAgent(), scripted_lms([], []), RunConfig(score_phi=False), experience=experience)
    finally:
        experience.close()


class _History:
    model = "m"

    def __init__(self, usage):
        self.history = [{"usage": usage}]


@pytest.mark.parametrize("usage,expected", [
    ({"prompt_tokens": 30, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 24}}, (30, 5, 24)),
    ({"prompt_tokens": 30, "completion_tokens": 5, "prompt_tokens_details": None}, (30, 5, 0)),
    ({"prompt_tokens": 30, "completion_tokens": 5}, (30, 5, 0)),  # what llama-cpp-python reports
])
def test_the_trace_records_prefix_cached_prompt_tokens_where_the_server_reports_them(usage, expected):
    calls = []
    recorder = LMCallRecorder("critic", calls)
    recorder.on_lm_start("c1", _History(usage), {})
    recorder.on_lm_end("c1", None)
    (call,) = calls
    assert (call.prompt_tokens, call.completion_tokens, call.cached_tokens) == expected and not call.cached


def test_a_namespace_gives_the_same_trajectory_id_on_every_run_and_none_a_random_one():
    """A compile sets `id_namespace` (job key and phase) so its ids, and the artifact, are the same on any backend."""
    move = first_valid()

    def run(namespace):
        lms = scripted_lms(actor=[{"thought": "t", "action": move}], critic=[])
        config = RunConfig(max_steps=1, score_phi=False, id_namespace=namespace)
        return Orchestrator(PurposeAgent(), lms, config).run(make_env("treasure-maze"), TASK).trajectory.id

    assert run("job/train") == run("job/train") != run("job/after")
    assert run(None) != run(None) and len(run(None)) == len(run("job/train")) == 12
