"""Rewards and Q-values of the replay store: what a step earned, and n-step Bellman backups.

After REMEMBERER (arXiv 2306.07929): a step's reward is the rise of Φ to a new high of its run
(`PurposeScore.reward`, the one rule every reader uses, so a loop between known states is not learned
as worth repeating) plus the environment's reward, the task's ending on its last step, minus a step
cost; Q(s, a) is the mean of the n-step returns seen from there. The backups read and write the store's `q_values` table inside
the caller's write transaction, so a trajectory's steps and their Q updates land together.
"""

from __future__ import annotations

import sqlite3

from purpose_dspy.experience.config import ReplayConfig
from purpose_dspy.types import Trajectory


def step_rewards(trajectory: Trajectory, config: ReplayConfig) -> list[float]:
    """The reward of each step: Φ rise above the run's peak (`PurposeScore.reward`) + the task's end - the step cost."""
    rewards = []
    last = len(trajectory.steps) - 1
    for i, t in enumerate(trajectory.steps):
        r = config.phi_weight * t.score.reward + t.env_reward - config.step_cost
        if i == last and t.after.done:
            r += config.success_reward if trajectory.success else config.failure_reward
        rewards.append(r)
    return rewards


def backup(
    db: sqlite3.Connection, family: str, trajectory: Trajectory, keys: list[str], final: str | None,
    rewards: list[float], config: ReplayConfig, now: float,
) -> None:
    """n-step Bellman backups, last step first so a success reaches the start in one pass.

    G_t = sum_{i<n} gamma^i r_{t+i} + gamma^n max_a Q(s_{t+n}, a)  (no bootstrap past the end);
    Q(s_t, a_t) moves to G_t by 1/visits: the mean of the returns seen, as REMEMBERER keeps it.
    `keys[t]` is the replay key of step t's state, `final` that of the state after the last step.
    """
    steps = trajectory.steps
    ended = bool(steps) and steps[-1].after.done
    for t in range(len(steps) - 1, -1, -1):
        if steps[t].action is None:
            continue
        horizon = min(config.n_steps, len(steps) - t)
        g = sum(config.gamma**i * rewards[t + i] for i in range(horizon))
        if t + horizon < len(steps):
            g += config.gamma**horizon * max_q(db, family, keys[t + horizon])
        elif not ended and final is not None:  # cut by the step limit: the last state still has a value
            g += config.gamma**horizon * max_q(db, family, final)
        action = steps[t].action.text
        row = db.execute(
            "SELECT q, visits FROM q_values WHERE family=? AND state_key=? AND action=?", (family, keys[t], action)
        ).fetchone()
        q, visits = row if row else (0.0, 0)
        visits += 1
        q += (g - q) / visits
        db.execute("INSERT OR REPLACE INTO q_values VALUES (?,?,?,?,?,?)", (family, keys[t], action, q, visits, now))


def max_q(db: sqlite3.Connection, family: str, key: str) -> float:
    """The best learned value of any action in the state `key` (0 for a state never acted in)."""
    row = db.execute("SELECT MAX(q) FROM q_values WHERE family=? AND state_key=?", (family, key)).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0
