"""Demos that are true where they are shown (issue 18): each train task's path, cross-task demos that hold
across tasks, per-call selection (valid now, not already failed here, agreeing, best last), and a loaded
artifact replaying its own train task. Hand-built trajectories and the copying scripted LM of copy_lm.py.
"""

from __future__ import annotations

from copy_lm import copy_lms

from purpose_dspy import artifacts
from purpose_dspy.environments.treasure_maze import TreasureMaze
from purpose_dspy.programs import PurposeAgent
from purpose_dspy.programs.actor import Actor
from purpose_dspy.programs.task_paths import TaskPaths
from purpose_dspy.runtime.config import RunConfig
from purpose_dspy.runtime.orchestrator import Orchestrator
from purpose_dspy.tasksets import load_taskset
from purpose_dspy.teleprompt import CompileConfig, PurposeTeleprompter, task_examples
from purpose_dspy.teleprompt.actor_demos import best_paths, own_thought, pool_demos
from purpose_dspy.types import Action, PurposeScore, State, Task, Trajectory, Transition

KITCHEN = "You are in the kitchen. There is a door to the east and a door to the west."
HALL = "You are in the hallway. The coin is on the floor."


def state(text: str, *actions: str, done: bool = False) -> State:
    return State(observation=text, valid_actions=actions, done=done, success=done)


def trajectory(seed: int, steps: list[tuple[State, str, str]], success: bool = True) -> Trajectory:
    """`steps`: (state, action, thought); the next state is the next step's, the last one ends the episode."""
    task = Task(env_id="toy", seed=seed)
    states = [s for s, _, _ in steps] + [state("You have the coin.", done=success)]
    return Trajectory(purpose="Take the coin.", task=task, success=success, steps=[
        Transition(index=i, before=s, action=Action(text=a, thought=t), after=states[i + 1],
                   score=PurposeScore.unscored(0.0, "test"))
        for i, (s, a, t) in enumerate(steps)])


def coin_runs() -> list[Trajectory]:
    kitchen = state(KITCHEN, "move east", "move west")
    hall = state(HALL, "take coin", "move west")
    return [
        trajectory(0, [(kitchen, "move east", "east looks open"), (hall, "take coin", "the coin is here")]),
        trajectory(1, [(kitchen, "move west", "exploring: never tried here"), (hall, "take coin", "grab it")]),
        trajectory(2, [(kitchen, "move east", "try east"), (hall, "take coin", "take it")]),
    ]


def test_a_step_contradicted_by_another_task_is_never_a_cross_task_demo():
    demos, sources = pool_demos(coin_runs(), max_demos=10, min_support=2)
    # the kitchen went east in two tasks and west in one: not true everywhere, not kept; "take <goal>" where
    # the coin can be taken held in all three, and two of them (per_situation) are kept, each with its task
    assert [(d.observation, d.action) for d in demos] == [(HALL, "take coin")] * 2
    assert [s.task_id for s in sources] == ["toy/train/0", "toy/train/1"]
    assert pool_demos(coin_runs(), max_demos=10, min_support=4)[0] == []  # support 3 < 4


def test_a_lucky_partial_run_does_not_veto_a_rule_but_a_success_another_way_does():
    """Peckingorder's shape: two houses read the book first and reached the goal; a third took the right fruit
    before reading (its one rise, then the game failed). Reading stays a rule; had that third run reached the
    goal without ever reading there, it would contradict it."""
    purpose = "Read and follow the instructions book."

    def house(seed: int, fruit: str) -> State:
        return state(f"You are in room {seed}. A {fruit} lies on a table. There is an instructions book.",
                     "read instructions book", f"take {fruit}", "take peach")

    def run(seed: int, steps: list[tuple[State, str]], progress: list[float], success: bool) -> Trajectory:
        after = [s for s, _ in steps[1:]] + [state("The game is over.", done=True)]
        return Trajectory(purpose=purpose, task=Task(env_id="toy", seed=seed), success=success, stop_reason="done",
                          steps=[Transition(index=i, before=s, action=Action(text=a, thought="t"), after=after[i],
                                            score=PurposeScore.unscored(0.0, "test"), progress=progress[i])
                                 for i, (s, a) in enumerate(steps)])

    named = [state(f"The current task is to take the {f}.", "read instructions book", f"take {f}", "take peach")
             for f in ("papaya", "apple", "plum")]
    readers = [run(i, [(house(i, f), "read instructions book"), (named[i], f"take {f}")], [0.0, 1.0], True)
               for i, f in enumerate(("papaya", "apple"))]
    lucky = run(2, [(house(2, "plum"), "take plum"), (house(2, "plum"), "take peach")], [0.25, 0.0], False)
    demos, _ = pool_demos([*readers, lucky], max_demos=10, min_support=2)
    assert "read instructions book" in [d.action for d in demos]
    winner = run(2, [(house(2, "plum"), "take plum"), (named[2], "take plum")], [0.25, 1.0], True)
    demos, _ = pool_demos([*readers, winner], max_demos=10, min_support=2)
    assert "read instructions book" not in [d.action for d in demos]


def test_a_literal_action_is_a_rule_of_its_very_state_only_even_beside_a_slot():
    """Two houses whose books both say 'papaya' first: "take papaya" was right in both, but it names no slot, so
    it is not offered in a third house (whose situation, 'read <goal>', looks the same); reading is."""
    purpose = "Read and follow the instructions book."
    runs = []
    for seed in (0, 1):
        start = state(f"You are in room {seed}. A papaya lies here. There is an instructions book.",
                      "read instructions book", "take papaya", "take peach")
        took = state("You take the papaya.", "read instructions book", "take peach")
        runs.append(Trajectory(purpose=purpose, task=Task(env_id="toy", seed=seed), success=True, steps=[
            Transition(index=0, before=start, action=Action(text="take papaya", thought="t"), after=took,
                       score=PurposeScore.unscored(0.0, "test"), progress=0.5),
            Transition(index=1, before=took, action=Action(text="read instructions book", thought="t"),
                       after=state("Done.", done=True), score=PurposeScore.unscored(0.0, "test"), progress=1.0)]))
    demos, _ = pool_demos(runs, max_demos=10, min_support=2)
    assert [d.action for d in demos] == ["read instructions book"] * 2
    third = state("You are in room 2. A papaya lies here. There is an instructions book.",
                  "read instructions book", "take papaya", "take plum")
    actor = Actor()
    actor.act.demos = demos
    assert actor.rule_for(third, purpose=purpose)[0] == "read instructions book"  # not the other houses' papaya


def test_no_demo_thought_claims_an_action_worked_in_another_state():
    runs = coin_runs()
    demos, _ = pool_demos(runs, max_demos=10, min_support=1)
    for demo in demos:
        assert "worked" not in demo.thought and "successful" not in demo.thought and "before" not in demo.thought
    assert demos[0].thought == "the coin is here"  # the actor's own thought when it took the step
    explored = runs[1].steps[0]
    assert own_thought(explored) == "'move west' is one of the actions available here."


def test_a_demo_keeps_the_real_history_of_its_run():
    kitchen, hall = state(KITCHEN, "move east", "move west"), state(HALL, "take coin", "move west")
    detour = trajectory(5, [(kitchen, "move west", "w"), (kitchen, "move east", "e"), (hall, "take coin", "t")])
    demos, _ = pool_demos([detour, coin_runs()[0]], max_demos=10, min_support=2)
    coin = next(d for d in demos if d.observation == HALL)  # the detour's, the first supporting task
    assert coin.action == "take coin" and "move west" in coin.history  # the detour is in its history


def test_best_paths_keep_each_tasks_shortest_loop_erased_path():
    kitchen, hall = state(KITCHEN, "move east", "move west"), state(HALL, "take coin", "move west")
    long = trajectory(0, [(kitchen, "move west", ""), (kitchen, "move east", ""), (hall, "take coin", "")])
    paths = best_paths([long, trajectory(0, [(kitchen, "move east", ""), (hall, "take coin", "")], success=False)])
    (path,) = paths.paths.values()
    assert [s.action for s in path.steps] == ["move east", "take coin"]  # the detour erased; the failure ignored
    assert paths.step("toy/train/0", kitchen).action == "move east"
    assert paths.step("toy/train/1", kitchen) is None  # another task gets nothing from this path
    assert paths.step("toy/train/0", state(KITCHEN, "move west")) is None  # not valid now: not shown
    assert "from this very state" in TaskPaths.thought(path.steps[0])
    shorter = best_paths([trajectory(0, [(hall, "take coin", "")])])
    assert len(paths.merged(shorter).paths["toy/train/0"].steps) == 1
    assert len(shorter.merged(paths).paths["toy/train/0"].steps) == 1  # the shorter stays either way


def actor_with(pool: list) -> Actor:
    actor = Actor(demos_per_call=3)
    actor.act.demos = pool
    return actor


COIN = "Take the coin."


def demo(observation: str, action: str, *valid: str):
    return Actor.demo(COIN, state(observation, *valid), action, thought="t")


def test_per_call_selection_valid_not_failed_agreeing_best_last():
    near = demo(HALL, "take coin", "take coin", "move west")
    far = demo("You are in the hallway.", "take coin", "take coin", "move west")
    here = state(HALL, "take coin", "move west")
    shown = actor_with([near, far]).demos_for(here, purpose=COIN)
    assert [d.observation for d in shown] == [far.observation, HALL]  # best last
    assert actor_with([near]).demos_for(state(HALL, "move west"), purpose=COIN) == []  # its action is not valid now
    assert actor_with([near]).demos_for(here, avoid=("take coin",), purpose=COIN) == []  # taken here already
    other = demo(HALL, "move west", "take coin", "move west")
    assert actor_with([near, other]).demos_for(here, purpose=COIN) == []  # the candidates disagree: none
    elsewhere = demo(KITCHEN, "move east", "move east")  # a situation where only moving was possible
    assert actor_with([elsewhere]).demos_for(here, purpose=COIN) == []  # another situation: not shown
    same_kitchen = demo(KITCHEN, "move east", "move east", "move west")  # no slot: only the very same text
    assert actor_with([same_kitchen]).demos_for(state(KITCHEN, "move east", "move west"), purpose=COIN)
    assert actor_with([same_kitchen]).demos_for(state(KITCHEN + " ", "move east", "move west"), purpose=COIN)
    assert not actor_with([same_kitchen]).demos_for(state("You are in the cellar.", "move east", "move west"),
                                                    purpose=COIN)


def test_a_goal_template_travels_to_another_goal_word():
    coin = Actor.demo("Find the coin and take it.", state(HALL, "take coin", "move west"), "take coin", thought="t")
    actor = actor_with([coin])
    apple = state("You are in the orchard. An apple hangs low.", "take apple", "move north")
    (shown,) = actor.demos_for(apple, purpose="Find the apple and take it.")
    assert shown.action == "take coin"  # shown as it happened; its template "take <goal>" names "take apple" here
    assert actor.demos_for(apple, purpose="Find the pear and take it.") == []  # here "take apple" is no goal

def maze_compile():
    taskset = load_taskset("tasksets/treasure-maze.toml")
    lms, engine = copy_lms()
    tp = PurposeTeleprompter(lms, CompileConfig(progress=False, explore=1.0, rounds=5, distill=False))
    tp.compile(PurposeAgent(), trainset=task_examples(taskset.tasks("train")[:3], max_steps=taskset.max_steps),
               valset=task_examples(taskset.tasks("dev")[:2], max_steps=taskset.max_steps))
    return taskset, tp, lms, engine


def test_a_loaded_artifact_replays_its_train_task_and_shows_nothing_elsewhere(tmp_path):
    taskset, tp, lms, engine = maze_compile()
    program = tp.candidate
    solved = sorted(program.actor.paths.paths)
    assert solved, "the exploring rounds found a path for some train task"
    manifest = artifacts.save_artifact(tmp_path / "maze", artifacts.components_of(program), tp.report,
                                       lms={"actor": {"model": "local/copy-lm"}}, taskset=taskset)
    loaded = artifacts.load(tmp_path / f"maze@v{manifest.version}").program
    assert loaded.actor.paths == program.actor.paths
    run = Orchestrator(loaded, lms, RunConfig(max_steps=taskset.max_steps, score_phi=False))
    task = next(t for t in taskset.tasks("train") if t.task_id == solved[0])
    engine.demos_seen.clear()
    result = run.run(TreasureMaze(), task, taskset.purpose)
    path = [s.action for s in program.actor.paths.paths[task.task_id].steps]
    assert result.trajectory.success and [s.action.text for s in result.trajectory.steps] == path
    assert loaded.actor.follow_rules == 3 and engine.demos_seen == []  # compiled to follow it: no LM call
    assert not result.trajectory.lm_calls
    loaded.actor.follow_rules = 0  # asked instead: the remembered step is the LM's only demo
    result = run.run(TreasureMaze(), task, taskset.purpose)
    assert result.trajectory.success and [s.action.text for s in result.trajectory.steps] == path
    assert engine.demos_seen and all(len(seen) == 1 for seen in engine.demos_seen)  # shown alone
    engine.demos_seen.clear()
    run.run(TreasureMaze(), taskset.tasks("test")[0], taskset.purpose)
    assert all(seen == [] for seen in engine.demos_seen)  # a held-out maze: no remembered step, no pool demo


SIMON = "Do exactly what Simon says."


def simon_step(seed: int, said: str, taken: str, progress: float, others: tuple[str, ...]) -> Trajectory:
    """One step of a simonsays-like game: the observation names the action; progress rises or the game ends."""
    before = state(f"Simon says, '{said}'.", said, *others)
    task = Task(env_id="toy", seed=seed)
    return Trajectory(purpose=SIMON, task=task, success=False, stop_reason="done" if progress < 0 else "step_limit",
                      steps=[Transition(index=0, before=before, action=Action(text=taken, thought="t"),
                                        after=state("Next.", done=progress < 0), progress=progress,
                                        score=PurposeScore.unscored(0.0, "test"))])


def test_a_named_action_rule_is_learned_from_progress_and_travels_to_other_objects():
    runs = [simon_step(0, "smell pineapple", "smell pineapple", 0.2, ("eat apple", "touch pear")),
            simon_step(1, "eat banana", "eat banana", 0.2, ("smell grape", "slice lime")),
            simon_step(2, "touch plum", "slice lime", -1.0, ("touch plum", "slice lime"))]  # wrong: the game ends
    demos, _ = pool_demos(runs, max_demos=4)
    assert {d.action for d in demos} == {"smell pineapple", "eat banana"} and demos[0].support == 2
    assert demos[0].thought == f"The observation names '{demos[0].action}', and it is one of the valid actions."
    actor = actor_with(demos)
    here = state("Simon says, 'examine kiwi'.", "take kiwi", "examine kiwi", "eat banana")
    action, shown = actor.rule_for(here, purpose=SIMON)
    assert action == "examine kiwi"  # the template <named> names this task's action
    assert all(d.action != "eat banana" for d in shown)  # a demo whose own action is valid-but-wrong here: a trap
    assert "here that step is 'examine kiwi'" in Actor.rule_line(action, shown) and "2 train tasks" in \
        Actor.rule_line(action, shown)
    assert actor.rule_for(state("Simon says, 'examine kiwi'.", "take kiwi"), purpose=SIMON) == (None, [])


def test_a_template_that_went_wrong_once_is_not_a_rule():
    runs = [simon_step(0, "smell pineapple", "smell pineapple", 0.2, ("eat apple",)),
            simon_step(1, "eat banana", "eat banana", 0.2, ("smell grape",)),
            simon_step(2, "touch plum", "touch plum", -1.0, ("slice lime",))]  # named, and it ended the game
    assert pool_demos(runs, max_demos=4)[0] == []


def test_named_actions_word_for_word_or_by_their_content_words():
    from purpose_dspy.programs.abstraction import named

    assert named("jump up and down", "Simon says, 'jump up and down'.")  # one content word, said word for word
    assert named("take papaya", "The current task is to take the papaya.")
    assert not named("take banana", "The current task is to take the papaya.")
    assert not named("inventory", "You are in the kitchen.") and not named("look", "")
    assert not named("eat", "You see wheat.")  # word for word means whole words
    assert not named("north", "Exits: north, south.")  # one word: a list of exits says every move


def test_a_rule_with_enough_support_is_followed_without_an_lm_call():
    import dspy
    from dspy.utils import DummyLM

    runs = [simon_step(seed, said, said, 0.2, ("eat apple",)) for seed, said in
            enumerate(["smell pineapple", "eat banana", "touch plum"])]
    demos, _ = pool_demos(runs, max_demos=4)
    here = state("Simon says, 'examine kiwi'.", "take kiwi", "examine kiwi")
    lm = DummyLM([{"thought": "t", "action": "take kiwi"}] * 3)
    for follow, expected, calls in ((3, "examine kiwi", 0), (4, "take kiwi", 1), (0, "take kiwi", 1)):
        actor = actor_with(demos)
        actor.follow_rules = follow
        before = len(lm.history)
        with dspy.context(lm=lm):
            pred = actor(purpose=SIMON, state=here)
        assert (pred.action, len(lm.history) - before) == (expected, calls)
    assert own_thought(Transition(index=0, before=here, action=Action(text="examine kiwi", thought="rule: x"),
                                  after=here, score=PurposeScore.unscored(0.0, "t"))).startswith("The observation names")
