"""What the compile keeps for the actor: each train task's best path, and demos that are true where shown.

Two kinds, because a small model carries only one of them across tasks:

- **paths** (`TaskPaths`): per train task, its shortest successful path, loop-erased. A loaded program
  that meets that task again is shown the very step it took there (see `programs/task_paths.py`).
- **pool demos**: cross-task steps, kept only where they hold across tasks. A step's situation and its
  action's template are the abstract view of `programs/abstraction.py` (`take <goal>`, `<named>`). A step
  is good evidence when it lies on the loop-erased path of a successful run, or of any run up to the last
  step where the environment's progress rose (the compile sees the train tasks' progress; the agent never
  does); bad when progress fell or the environment ended the run there without success. A (situation,
  template) pair is kept when good steps of at least `min_support` different train tasks took it, no
  step that took it went bad, and no train task that reached the goal did only otherwise there (a
  success another way contradicts it; a partial run's one lucky rise does not: in peckingorder a run that
  took the right fruit before reading the book shows that taking it was not wrong, not that reading was).
  In coin houses whose kitchens read alike send the coin different ways, so "move east" of one seed is
  contradicted by another's successful "move west" and never shown;
  "take <goal>" where the coin can be taken holds in every task; in simonsays "do what the observation
  names" rises every time and anything else ends the game.

Every demo is a real step: its history is the real history of its run (not the loop-erased one). Its
thought states a fact of its own state where the observation names the action, else it is the one the
actor wrote; an exploration step had no thought of the actor's and gets a sentence that states only what
is visible in its own state.
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
RULE = "rule:"  # how the actor marks a step it took by a compiled rule, without the LM (programs/actor.py)


def loop_erased(trajectory: Trajectory, upto: int | None = None) -> list[Transition]:
    """The steps of a trajectory (the first `upto` of them) with every detour back to an earlier state cut out
    (and failed steps)."""
    path: list[Transition] = []
    for step in trajectory.steps[:upto]:
        if step.action is None:
            continue
        seen = [p.before.observation for p in path]
        if step.before.observation in seen:
            del path[seen.index(step.before.observation):]
        path.append(step)
    return path


def _progress_before(traj: Trajectory, step: Transition) -> float:
    return next((s.progress for s in reversed(traj.steps[:step.index]) if s.progress is not None), 0.0)


def good_path(traj: Trajectory) -> list[Transition]:
    """The loop-erased path of a successful run; of any other run, its loop-erased path up to the last step
    where the environment's progress rose (a partial success: the compile sees the train tasks' progress)."""
    if traj.success:
        return loop_erased(traj)
    rises = [s.index for s in traj.steps if s.progress is not None and s.progress > _progress_before(traj, s)]
    return loop_erased(traj, rises[-1] + 1) if rises else []


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
    """The thought a pool demo shows, only ever about its own state: for an action its observation names, that
    fact (the embedded model copies that pattern: see the README's simonsays figures); else the actor's own thought; for a random exploration step, a sentence saying only what is visible."""
    if abstraction.named(step.action.text, step.before.observation):
        return f"The observation names '{step.action.text}', and it is one of the valid actions."
    thought = step.action.thought if step.action else ""
    if thought and not thought.startswith((EXPLORING, RULE)):
        return thought
    return f"'{step.action.text}' is one of the actions available here."


def where(purpose: str, step: Transition) -> tuple[str, ...]:
    """A step's abstract situation (`abstraction.situation_of`: its slots, or the very state text)."""
    before = step.before
    return abstraction.situation_of(purpose, before.observation, before.valid_actions)


def _bad(traj: Trajectory, step: Transition) -> bool:
    """The environment's progress fell at this step, or it ended the run here without success."""
    if step.progress is not None and step.progress < _progress_before(traj, step):
        return True
    return step is traj.steps[-1] and not traj.success and traj.stop_reason == "done"


def rules(trajectories: list[Trajectory]) -> dict[tuple, list[tuple[Trajectory, Transition]]]:
    """(where, template) -> the good steps (on a `good_path`) that took it, kept where no train task that
    succeeded took another template in that abstract situation without ever taking this one, and no step that
    took it went bad (`_bad`). `where` is `abstraction.rule_key`: a literal action is a rule of its very state
    only. What held on the train tasks, with its evidence."""
    good: dict[tuple, list] = defaultdict(list)
    situations: dict[tuple, set[tuple]] = defaultdict(set)  # (where, template) -> the abstract situations seen
    used: dict[tuple, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # situation -> task -> templates
    bad: set[tuple] = set()
    for traj in trajectories:
        for step in good_path(traj):
            key = _key(traj.purpose, step)
            good[key].append((traj, step))
            situations[key].add(where(traj.purpose, step))
            if traj.success:  # what a run that reached the goal did there (see the module docstring)
                used[where(traj.purpose, step)][traj.task.task_id].add(key[1])
        bad |= {_key(traj.purpose, step) for step in traj.steps if step.action and _bad(traj, step)}
    return {key: steps for key, steps in good.items() if key not in bad
            and all(key[1] in took for situation in situations[key] for took in used[situation].values())}


def _key(purpose: str, step: Transition) -> tuple:
    rule = abstraction.template(step.action.text, purpose, step.before.observation)
    return abstraction.rule_key(purpose, step.before.observation, step.before.valid_actions, rule), rule


def pool_demos(trajectories: list[Trajectory], *, max_demos: int, min_support: int = 2, per_situation: int = 2,
               history_window: int = 6, observation_chars: int = 160) -> tuple[list[dspy.Example], list[DemoSource]]:
    """Cross-task step demos that held across train tasks (see `rules`): supported by good steps of at least
    `min_support` different tasks, most supported first; per rule, one demo from each of up to `per_situation`
    supporting tasks, each carrying its `support` (how many tasks)."""
    kept = []
    for steps in rules(trajectories).values():
        one_per_task = list({traj.task.task_id: (traj, step) for traj, step in reversed(steps)}.values())[::-1]
        if len(one_per_task) >= min_support:
            kept.append((len(one_per_task), one_per_task[:per_situation]))
    kept.sort(key=lambda k: -k[0])
    demos, sources = [], []
    for support, (traj, step) in [(n, pick) for n, picks in kept for pick in picks][:max_demos]:
        history = render_history(traj.steps[:step.index], history_window, observation_chars)
        demo = Actor.demo(traj.purpose, step.before, step.action.text, thought=own_thought(step), history=history)
        demos.append(demo.copy(support=support))
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
