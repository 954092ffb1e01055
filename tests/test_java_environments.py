"""TextWorldExpress and ScienceWorld wrappers against the real Java engines (no LM)."""

import pytest

from purpose_dspy.environments import make_env
from purpose_dspy.errors import UsageError
from purpose_dspy.types import Task

pytestmark = pytest.mark.envs


@pytest.fixture(scope="module")
def coin():
    env = make_env("twx:coin")
    yield env
    env.close()


def test_twx_gold_path_succeeds_and_progress_reaches_one(coin):
    for split, seed in (("train", 1), ("dev", 0), ("test", 7)):
        state = coin.reset(Task(env_id="twx:coin", seed=seed, split=split))
        assert "coin" in coin.purpose and state.valid_actions and coin.progress() == 0.0
        for action in coin.gold_actions():
            state = coin.step(action)
        assert state.done and state.success and coin.progress() == 1.0


def test_twx_folds_differ_and_seeds_repeat(coin):
    a = coin.reset(Task(env_id="twx:coin", seed=3, split="train")).observation
    b = coin.reset(Task(env_id="twx:coin", seed=3, split="dev")).observation
    c = coin.reset(Task(env_id="twx:coin", seed=3, split="train")).observation
    assert a == c and a != b


def test_twx_idle_commands_are_not_offered(coin):
    state = coin.reset(Task(env_id="twx:coin", seed=2))
    assert "look around" not in state.valid_actions and "inventory" not in state.valid_actions


def test_unknown_twx_game():
    with pytest.raises(UsageError, match="coin"):
        make_env("twx:chess")


def test_scienceworld_gold_path_raises_progress():
    env = make_env("scienceworld:find-living-thing")
    try:
        state = env.reset(Task(env_id="scienceworld:find-living-thing", seed=0, split="dev"))
        assert state.valid_actions and "living thing" in env.purpose
        progress = [env.progress()]
        for action in env.gold_actions():
            state = env.step(action)
            progress.append(env.progress())
            if state.done:
                break
        assert progress[-1] > progress[0] and state.success
    finally:
        env.close()
