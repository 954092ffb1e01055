"""Real states of an environment, reached by seeded walks: the examples the critic properties are checked on.

A walk is a task (environment, split, seed) and a list of choices; choice `i` picks valid action
`i mod n` of the state it is made in, so any list of numbers is a walk that exists, and the
smallest one (seed 0, no choices) is the task's first state. The records print as one readable
line each, because hypothesis shows them as the counterexample when a property fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from purpose_dspy.environments import Environment, make_env
from purpose_dspy.errors import UsageError
from purpose_dspy.types import State, Task

SHOWN_CHARS = 200  # longer observations are cut in the printed counterexample (the records keep all of it)


def _shown(text: str) -> str:
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "...")


@dataclass(frozen=True, repr=False)
class Step:
    """One transition the critic judges: `before` -(action)-> `after` under `purpose`; `origin` names its walk."""

    purpose: str
    before: State
    action: str
    after: State
    origin: str = ""

    def replace(self, *, before: State | None = None, after: State | None = None, origin: str = "") -> Step:
        """This step with other states (a rewrite or an injection of them), its origin extended by `origin`."""
        return Step(self.purpose, before or self.before, self.action, after or self.after,
                    f"{self.origin}{origin}")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints this, not how it was drawn
        printer.text(repr(self))

    def __repr__(self) -> str:
        return (f"Step({self.origin or '?'}: {_shown(self.before.observation)} --{self.action}--> "
                f"{_shown(self.after.observation)})")


@dataclass(frozen=True, repr=False)
class Walk:
    """A seeded walk: the task, the actions taken and every state met (`len(actions) + 1` of them)."""

    task: Task
    purpose: str
    actions: tuple[str, ...]
    states: tuple[State, ...]

    @property
    def name(self) -> str:
        return f"{self.task.task_id} {list(self.actions)}"

    @property
    def last(self) -> State:
        return self.states[-1]

    @property
    def steps(self) -> tuple[Step, ...]:
        """The walk's transitions, each named by the walk that leads to it."""
        return tuple(
            Step(self.purpose, self.states[i], action, self.states[i + 1],
                 f"{self.task.task_id} {list(self.actions[: i + 1])}")
            for i, action in enumerate(self.actions)
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def __repr__(self) -> str:
        shown = " -> ".join(_shown(s.observation) for s in self.states)
        return f"Walk({self.name}: {shown})"


def resolve_env(env: str | Environment | type) -> Environment:
    """An environment from an id ('treasure-maze', 'twx:coin'), an instance, or a class to instantiate."""
    if isinstance(env, str):
        return make_env(env)
    if isinstance(env, type):
        env = env()
    if not isinstance(env, Environment):
        raise UsageError(f"expected an environment id, an Environment or its class, got {type(env).__name__}: "
                         "it needs env_id, volatile_patterns, reset, step, done, purpose, progress and close")
    return env


def walk(env: Environment, task: Task, choices: Sequence[int]) -> Walk:
    """Reset `env` to `task` and take `choices` (valid action `i mod n` each); stops early where the episode
    ends or the state lists no valid actions."""
    states = [env.reset(task)]
    purpose = env.purpose
    actions: list[str] = []
    for choice in choices:
        state = states[-1]
        if state.done or env.done or not state.valid_actions:
            break
        action = state.valid_actions[choice % len(state.valid_actions)]
        actions.append(action)
        states.append(env.step(action))
    return Walk(task, purpose, tuple(actions), tuple(states))


@dataclass
class WalkSource:
    """Walks of one environment for one split (and task params); the environment is made on first use."""

    env: Any
    split: str = "dev"
    params: dict[str, Any] | None = None
    _resolved: Environment | None = None

    @property
    def environment(self) -> Environment:
        if self._resolved is None:
            self._resolved = resolve_env(self.env)
        return self._resolved

    @property
    def volatile(self) -> tuple[str, ...]:
        return tuple(getattr(self.environment, "volatile_patterns", ()))

    def close(self) -> None:
        """Close the environment if this source made it (from an id or a class); yours stays open."""
        if self._resolved is not None and isinstance(self.env, (str, type)):
            self._resolved.close()
            self._resolved = None

    def walk(self, seed: int, choices: Sequence[int]) -> Walk:
        env = self.environment
        return walk(env, Task(env_id=env.env_id, seed=seed, split=self.split, params=dict(self.params or {})), choices)
