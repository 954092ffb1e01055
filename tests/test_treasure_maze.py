from collections import deque

import pytest

from purpose_dspy.environments import make_env
from purpose_dspy.environments.treasure_maze import MOVES
from purpose_dspy.errors import UsageError
from purpose_dspy.types import Task


def shortest_moves(env) -> list[str]:
    """BFS over the env's own open cells: the optimal move list from the current position."""
    start, goal = env._pos, env._treasure
    prev = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for name, (dr, dc) in MOVES.items():
            nxt = (cell[0] + dr, cell[1] + dc)
            if nxt not in prev and env._open(nxt):
                prev[nxt] = (cell, name)
                queue.append(nxt)
    path, cell = [], goal
    while prev[cell] is not None:
        cell, name = prev[cell]
        path.append(name)
    return path[::-1]


@pytest.mark.parametrize("seed", range(20))
def test_every_layout_is_solvable_and_progress_reaches_one(seed):
    env = make_env("treasure-maze")
    state = env.reset(Task(env_id="treasure-maze", seed=seed))
    assert env.progress() == 0.0 and not state.done
    for move in shortest_moves(env):
        assert move in state.valid_actions
        state = env.step(move)
    assert state.done and state.success and env.progress() == 1.0


def test_layouts_are_seeded_and_splits_differ():
    env = make_env("treasure-maze")
    a = env.reset(Task(env_id="treasure-maze", seed=5)).observation
    b = env.reset(Task(env_id="treasure-maze", seed=5)).observation
    c = env.reset(Task(env_id="treasure-maze", seed=5, split="test")).observation
    assert a == b and a != c


def test_blocked_and_unknown_moves_do_not_move():
    env = make_env("treasure-maze")
    # Find a layout whose start has a blocked direction (edge or wall), so the check always runs.
    for seed in range(50):
        state = env.reset(Task(env_id="treasure-maze", seed=seed))
        blocked = [m for m in MOVES if m not in state.valid_actions]
        if blocked:
            break
    assert blocked, "no layout in 50 seeds starts next to a wall or edge"
    pos = env._pos
    assert "wall" in env.step(blocked[0]).observation and env._pos == pos
    assert "not a move" in env.step("dance").observation and env._pos == pos


def test_bad_ids_and_params_say_what_to_do():
    with pytest.raises(UsageError, match="known families"):
        make_env("chess")
    with pytest.raises(UsageError, match="needs a game"):
        make_env("twx")
    with pytest.raises(UsageError, match="size"):
        make_env("treasure-maze").reset(Task(env_id="treasure-maze", params={"size": 99}))
