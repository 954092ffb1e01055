"""What the compile keeps for the actor: each train task's best path, and demos that are true where shown.

Two kinds, because a small model carries only one of them across tasks:

- **paths** (`TaskPaths`): per train task, its shortest successful path, loop-erased. A loaded program
  that meets that task again is shown the very step it took there (see `programs/task_paths.py`).
- **pool demos**: cross-task steps, kept only where they hold across tasks. A step's situation and its
  action's template are the abstract view of `programs/abstraction.py` (the purpose's goal words become
  `<goal>`); a (situation, template) pair is kept when successful paths of at least `min_support`
  different train tasks took it and no successful path of any train task took another template in
  that situation. In coin every house starts in a kitchen whose coin lies another way, so "move east"
  of one seed is contradicted by another's "move west" and never shown; "take <goal>" where the coin
  can be taken holds in every task.

Every demo is a real step: its history is the real history of its run (not the loop-erased one), and
its thought is the one the actor wrote when it took the step. An exploration step had no thought of
the actor's; it gets a sentence that states only what is visible in its own state.
"""

from __future__ import annotations

from collections import defaultdict

import dspy

from purpose_dspy.programs import abstraction
from purpose_dspy.programs.actor import Actor
from purpose_dspy.programs.task_paths import PathStep, TaskPath, TaskPaths
from purpose_dspy.runtime.orchestrator import render_history
from purpose_dspy.safeguards.canonical import canonical_text
from purpose_dspy.teleprompt.base import DemoSource
from purpose_dspy.types import Trajectory, Transition

EXPLORING = "exploring:"  # how the orchestrator marks a step it took at random (runtime/orchestrator.py)


def loop_erased(trajectory: Trajectory) -> list[Transition]:
    """The steps of a trajectory with every detour back to an earlier state cut out (and failed steps)."""
    path: list[Transition] = []
    for step in trajectory.steps:
        if step.action is None:
            continue
        seen = [p.before.observation for p in path]
        if step.before.observation in seen:
            del path[seen.index(step.before.observation):]
        path.append(step)
    return path


def best_paths(trajectories: list[Trajectory]) -> TaskPaths:
    """Per task, the shortest loop-erased path among its successful trajectories (ties: the earlier one)."""
    best: dict[str, tuple[Trajectory, list[Transition]]] = {}
    for traj in trajectories:
        if not traj.success:
            continue
        path = loop_erased(traj)
        task = traj.task.task_id
        if path and (task not in best or len(path) < len(best[task][1])):
            best[task] = (traj, path)
    return TaskPaths(paths={
        task: TaskPath(task_id=task, trajectory_id=traj.id, steps=tuple(
            PathStep(observation=s.before.observation, action=s.action.text,
                     next_actions=tuple(n.action.text for n in path[i + 1:i + 4]))
            for i, s in enumerate(path)))
        for task, (traj, path) in best.items()
    })


def own_thought(step: Transition) -> str:
    """The actor's thought for this step, or for a random exploration step one that says only what is visible."""
    thought = step.action.thought if step.action else ""
    if thought and not thought.startswith(EXPLORING):
        return thought
    return f"'{step.action.text}' is one of the actions available here."


def pool_demos(trajectories: list[Trajectory], *, max_demos: int, min_support: int = 2, per_situation: int = 2,
               history_window: int = 6, observation_chars: int = 160) -> tuple[list[dspy.Example], list[DemoSource]]:
    """Cross-task step demos that hold across train tasks (see the module docstring), most supported first;
    per kept (situation, template), one demo from each of up to `per_situation` supporting tasks."""
    found: dict[tuple, dict[str, list[tuple[Trajectory, Transition]]]] = defaultdict(lambda: defaultdict(list))
    for traj in trajectories:
        if traj.success:
            for step in loop_erased(traj):
                where = abstraction.situation(traj.purpose, step.before.valid_actions) or (
                    canonical_text(step.before.observation),)  # no action list: only the very same text
                found[where][abstraction.template(step.action.text, traj.purpose)].append((traj, step))
    kept = []
    for by_template in found.values():
        if len(by_template) != 1:  # train tasks did different things here: none of them is true everywhere
            continue
        (steps,) = by_template.values()
        one_per_task = list({traj.task.task_id: (traj, step) for traj, step in reversed(steps)}.values())[::-1]
        if len(one_per_task) >= min_support:
            kept.append((len(one_per_task), one_per_task[:per_situation]))
    kept.sort(key=lambda k: -k[0])
    demos, sources = [], []
    for traj, step in [pick for _, picks in kept for pick in picks][:max_demos]:
        history = render_history(traj.steps[:step.index], history_window, observation_chars)
        demos.append(Actor.demo(traj.purpose, step.before, step.action.text, thought=own_thought(step), history=history))
        sources.append(DemoSource(component="actor", index=len(demos) - 1, trajectory_id=traj.id, step=step.index,
                                  task_id=traj.task.task_id))
    return demos, sources


def merged_pool(parent: list[dspy.Example], new: list[dspy.Example], limit: int) -> list[dspy.Example]:
    """A continuing compile keeps its parent's demos and adds the new ones (same state and action once)."""
    seen, out = set(), []
    for demo in [*parent, *new]:
        key = (canonical_text(str(demo.observation)), str(demo.action))
        if key not in seen:
            seen.add(key)
            out.append(demo)
    return out[:limit]
