import pytest
from pydantic import ValidationError

from purpose_dspy.types import LMCall, PurposeScore, RunResult, State, Task, Trajectory, Transition, Action


def test_reward_only_when_phi_rises():
    assert PurposeScore(phi_before=2, phi_after=5).reward == 3
    assert PurposeScore(phi_before=5, phi_after=5).reward == 0
    assert PurposeScore(phi_before=5, phi_after=3).reward == 0
    assert PurposeScore(phi_before=5, phi_after=3).delta == -2


@pytest.mark.parametrize("field,value", [("phi_before", -0.1), ("phi_after", 10.5), ("confidence", 1.2)])
def test_out_of_range_scores_are_rejected_not_clamped(field, value):
    kwargs = {"phi_before": 1.0, "phi_after": 2.0, field: value}
    with pytest.raises(ValidationError):
        PurposeScore(**kwargs)


def test_unscored_carries_phi_and_flags():
    s = PurposeScore.unscored(4.0, "could not parse")
    assert (s.phi_before, s.phi_after, s.delta, s.reward) == (4.0, 4.0, 0.0, 0.0)
    assert "unscored" in s.flags


def test_summary_has_the_cli_json_keys():
    state = State(observation="x", valid_actions=("a",))
    step = Transition(index=0, before=state, action=Action(text="a"), after=state,
                      score=PurposeScore(phi_before=1, phi_after=3),
                      lm_calls=[LMCall(role="actor", model="m", prompt_tokens=10, completion_tokens=2, cached_tokens=4,
                                       seconds=0.1)])
    traj = Trajectory(purpose="p", task=Task(env_id="treasure-maze"), steps=[step], success=True)
    summary = RunResult(trajectory=traj, seconds=1.5).summary()
    assert {"success", "steps", "phi", "lm_calls", "tokens", "seconds", "phi_scored"} <= summary.keys()
    assert summary["lm_calls"] == 1 and summary["tokens"] == 12 and summary["phi"]["total_reward"] == 2
    assert (summary["prompt_tokens"], summary["completion_tokens"], summary["cached_tokens"]) == (10, 2, 4)
    assert summary["phi_scored"] is True
    assert summary["by_role"] == {"actor": {"calls": 1, "tokens": 12, "prompt_tokens": 10, "completion_tokens": 2,
                                            "cached_tokens": 4, "median_seconds": 0.1}}
