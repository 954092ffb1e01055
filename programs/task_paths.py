"""TaskPaths: what worked on each task the program was compiled on, step by step.

A compiled agent that meets a task it was compiled on again (a fixed suite a user runs over and over)
should not have to find the way a second time. `TaskPaths` keeps, per train task, the states of its
best successful path (loop-erased: no detours) with the action taken there. At run time a state
that is one of them (same task, same canonical text) gets that step as its only demo: the one demo
that is true where it is shown. A state of any other task gets nothing from here.

It is plain JSON (the artifact stores it as `paths.json`, hashed like every other file), versioned
by `format`, and small: one line per step of one path per task.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from purpose_dspy.safeguards.canonical import canonical_text
from purpose_dspy.types import State

FORMAT = 1


class PathStep(BaseModel):
    """One step of a successful path: the state (its observation), the action, and what followed."""

    model_config = ConfigDict(frozen=True)

    observation: str
    action: str
    next_actions: tuple[str, ...] = Field((), description="The path's following actions (up to 3), for the demo's thought.")


class TaskPath(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_id: str
    trajectory_id: str
    steps: tuple[PathStep, ...]


class TaskPaths(BaseModel):
    """Per task id, its best successful path; see the module docstring."""

    model_config = ConfigDict(frozen=True)

    format: int = FORMAT
    paths: dict[str, TaskPath] = Field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    def step(self, task_id: str, state: State, volatile: Sequence[str] = ()) -> PathStep | None:
        """The remembered step from this very state of this very task whose action is valid now, else None."""
        path = self.paths.get(task_id)
        if path is None:
            return None
        here = canonical_text(state.observation, volatile)
        for step in path.steps:
            if canonical_text(step.observation, volatile) == here and (
                not state.valid_actions or step.action in state.valid_actions
            ):
                return step
        return None

    def merged(self, newer: TaskPaths) -> TaskPaths:
        """These paths with `newer`'s added; for a task both know, the shorter path stays (ties: the newer)."""
        paths = dict(self.paths)
        for task_id, path in newer.paths.items():
            if task_id not in paths or len(path.steps) <= len(paths[task_id].steps):
                paths[task_id] = path
        return TaskPaths(paths=paths)

    @staticmethod
    def thought(step: PathStep) -> str:
        """The demo's thought: a fact about this state of this task, nothing about any other."""
        then = f"then {', '.join(step.next_actions)}" if step.next_actions else "it finished the task"
        return f"On this task, from this very state, '{step.action}' was on a path that succeeded; {then}."
