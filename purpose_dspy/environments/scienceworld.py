"""ScienceWorld tasks (boil, melt, find-living-thing, ...) with official train/dev/test variations.

The task seed picks a variation *within* the split: seed k is the k-th variation of that fold
(modulo its size). Score 0..100 rises with subgoals and is -100 on failure; progress() maps it to
[0, 1] (failure counts as 0). The engine's valid-action list (about a hundred commands in a
room) is passed through whole.
"""

from __future__ import annotations

from typing import Any

from purpose_dspy.errors import EnvironmentUnavailableError, UsageError
from purpose_dspy.types import State, Task


class ScienceWorld:
    """A ScienceWorld task as an Environment. Params: `simplification` (default 'easy')."""

    volatile_patterns: tuple[str, ...] = ()  # nothing in its text changes without the world changing

    def __init__(self, task_name: str, step_limit: int = 100) -> None:
        try:
            from scienceworld import ScienceWorldEnv
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EnvironmentUnavailableError(
                "ScienceWorld is not installed: pip install 'purpose-dspy[envs]' (needs Java 8+)"
            ) from exc
        self._engine = ScienceWorldEnv("", envStepLimit=step_limit)
        names = list(self._engine.get_task_names())
        if task_name not in names:
            self._engine.close()
            raise UsageError(f"unknown ScienceWorld task '{task_name}': choose one of {', '.join(names)}")
        self.env_id = f"scienceworld:{task_name}"
        self.task_name = task_name
        self._info: dict[str, Any] = {}
        self._done = False

    def reset(self, task: Task) -> State:
        simplification = str(task.params.get("simplification", "easy"))
        self._engine.load(self.task_name, 0, simplification)
        variations = {
            "train": self._engine.get_variations_train,
            "dev": self._engine.get_variations_dev,
            "test": self._engine.get_variations_test,
        }[task.split]()
        variation = variations[task.seed % len(variations)]
        self._engine.load(self.task_name, variation, simplification, generateGoldPath=True)
        obs, info = self._engine.reset()
        self._info = info
        self._done = False
        return self._state(obs)

    def step(self, action: str) -> State:
        if self._done:
            raise UsageError(f"{self.env_id}: step() after the episode ended; call reset() first")
        obs, _reward, completed, info = self._engine.step(action)
        self._info = info
        self._done = bool(completed)
        return self._state(obs)

    @property
    def done(self) -> bool:
        return self._done

    @property
    def purpose(self) -> str:
        return str(self._engine.get_task_description()).strip()

    def progress(self) -> float:
        score = float(self._info.get("score", 0))
        return max(0.0, score) / 100.0

    def gold_actions(self) -> list[str]:
        """The engine's gold path for the current variation (for baselines and measuring only)."""
        return list(self._engine.get_gold_action_sequence())

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def _state(self, obs: str) -> State:
        valid = tuple(self._info.get("valid", []))
        success = self._done and float(self._info.get("score", 0)) >= 100
        return State(
            observation=obs.strip(),
            data={"moves": self._info.get("moves", 0)},
            valid_actions=() if self._done else valid,
            done=self._done,
            success=success,
        )
