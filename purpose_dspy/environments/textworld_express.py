"""TextWorldExpress games (coin, cookingworld, twc, mapreader, ...), official train/dev/test folds.

One JVM per instance: reuse an instance across tasks and `close()` it when done. The engine's
`score` (0..1) is the ground-truth progress; it is never shown to the agent or the critic.
"""

from __future__ import annotations

from typing import Any

from purpose_dspy.errors import EnvironmentUnavailableError, UsageError
from purpose_dspy.types import State, Task

GAMES = ("coin", "twc", "cookingworld", "mapreader", "arithmetic", "sorting", "simonsays", "peckingorder")
# Small worlds by default so episodes fit a tiny model's context; override with task params.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "coin": {"numLocations": 3, "includeDoors": 0},
    "cookingworld": {"numLocations": 1, "numIngredients": 2, "numDistractorItems": 0, "includeDoors": 0},
    "twc": {"numLocations": 1, "numItemsToPutAway": 1, "includeDoors": 0},
    "mapreader": {"numLocations": 3, "maxDistanceApart": 2, "includeDoors": 0},
}
# Commands that are always valid but never change the world: kept out of the actor's choices so a
# small model is not drawn into loops of looking around.
_IDLE_ACTIONS = {"look around", "inventory"}


class TextWorldExpress:
    """A TextWorldExpress game as an Environment. Task params become the engine's gameParams."""

    volatile_patterns: tuple[str, ...] = ()  # nothing in its text changes without the world changing

    def __init__(self, game: str, step_limit: int = 200) -> None:
        if game not in GAMES:
            raise UsageError(f"unknown TextWorldExpress game '{game}': choose one of {', '.join(GAMES)}")
        try:
            from textworld_express import TextWorldExpressEnv
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EnvironmentUnavailableError(
                "TextWorldExpress is not installed: pip install 'purpose-dspy[envs]' (needs Java 8+)"
            ) from exc
        self.env_id = f"twx:{game}"
        self.game = game
        self._engine = TextWorldExpressEnv(envStepLimit=step_limit)
        self._infos: dict[str, Any] = {}
        self._done = False

    def reset(self, task: Task) -> State:
        params = {**DEFAULT_PARAMS.get(self.game, {}), **task.params}
        game_params = ",".join(f"{k}={v}" for k, v in params.items())
        self._engine.load(self.game, game_params)
        fold_seeds = {
            "train": self._engine.getValidSeedsTrain,
            "dev": self._engine.getValidSeedsDev,
            "test": self._engine.getValidSeedsTest,
        }[task.split]()
        # Task seed k is the k-th seed of the official fold, so seeds 0, 1, 2... work for every split.
        obs, infos = self._engine.reset(
            seed=fold_seeds[task.seed % len(fold_seeds)], gameFold=task.split, gameName=self.game, gameParams=game_params,
            generateGoldPath=True,
        )
        self._infos = infos
        self._done = False
        return self._state(obs)

    def step(self, action: str) -> State:
        if self._done:
            raise UsageError(f"{self.env_id}: step() after the episode ended; call reset() first")
        obs, _reward, done, infos = self._engine.step(action)
        self._infos = infos
        self._done = bool(done or infos.get("tasksuccess") or infos.get("taskfailure"))
        return self._state(obs)

    @property
    def done(self) -> bool:
        return self._done

    @property
    def purpose(self) -> str:
        return str(self._infos.get("taskDescription", "")).strip()

    def progress(self) -> float:
        return float(self._infos.get("score", 0.0))

    def gold_actions(self) -> list[str]:
        """The engine's gold path for the current task (for baselines and measuring, never the agent)."""
        return list(self._engine.getGoldActionSequence())

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None and hasattr(engine, "close"):
            engine.close()

    def _state(self, obs: str) -> State:
        success = bool(self._infos.get("tasksuccess"))
        valid = tuple(sorted(a for a in self._infos.get("validActions", []) if a not in _IDLE_ACTIONS))
        # The engine's reply to an action is one sentence ("You take the knife."); the inventory
        # line makes the text a description of the state, so the actor and the critic can see it.
        lines = str(self._infos.get("inventory", "")).splitlines()[1:]  # first line: "Inventory (max...):"
        carried = ", ".join(line.strip() for line in lines if line.strip() and "empty" not in line)
        return State(
            observation=f"{obs.strip()}\nYou carry: {carried or 'nothing'}.",
            data={"moves": self._infos.get("numMoves", 0)},
            valid_actions=() if self._done else valid,
            done=self._done,
            success=success,
        )
