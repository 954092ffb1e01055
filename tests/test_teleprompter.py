"""PurposeTeleprompter: DSPy's compile contract, demos with provenance, budget, determinism, resume.

The LM is the rule-following stand-in of rule_lm.py (control flow only; learning on the real model is
measured by `purpose-dspy demo` and benchmarks/optimizers.py).
"""

from __future__ import annotations

import json

import pytest

from purpose_dspy import make_env
from purpose_dspy.teleprompt.checkpoint import FILENAME
from purpose_dspy.programs import PurposeAgent
from purpose_dspy.tasksets import load_taskset
from purpose_dspy.teleprompt import CompileConfig, PurposeTeleprompter, loop_erased, task_examples
from purpose_dspy.types import Action, PurposeScore, State, Task, Trajectory, Transition
from rule_lm import RuleEngine, rule_lms

TS = load_taskset("tasksets/treasure-maze.toml")
TRAIN = task_examples(TS.tasks("train")[:4], max_steps=TS.max_steps)
VAL = task_examples(TS.tasks("dev")[:3], max_steps=TS.max_steps)


def compile_once(tmp_path=None, engine=None, make_environment=None, **config):
    lms, engine = rule_lms(engine)
    tp = PurposeTeleprompter(lms, CompileConfig(progress=False, **config), run_dir=tmp_path,
                             make_environment=make_environment)
    return tp, tp.compile(PurposeAgent(), trainset=TRAIN, valset=VAL), engine


def demo_pairs(program):
    return [(d["observation"], d["action"]) for d in program.actor.act.demos]


def test_compile_keeps_dspy_contract_and_never_mutates_the_student():
    student = PurposeAgent()
    state = json.dumps(student.dump_state(), sort_keys=True, default=str)
    lms, _ = rule_lms()
    tp = PurposeTeleprompter(lms, CompileConfig(progress=False))
    program = tp.compile(student, trainset=TRAIN, valset=VAL)
    assert json.dumps(student.dump_state(), sort_keys=True, default=str) == state
    assert program is not student and program._compiled
    assert len(tp.candidate.actor.paths) > 0 and not student.actor.paths.paths


def test_every_solved_train_task_gets_its_path_and_no_maze_step_holds_across_tasks():
    tp, _, _ = compile_once()
    program = tp.candidate  # what the compile built (the gate may have returned the parent)
    solved = {t.task_id for t in tp.report.train.tasks if t.success}
    assert solved and solved <= set(program.actor.paths.paths)  # later rounds may solve more
    for path in program.actor.paths.paths.values():
        assert len({s.observation for s in path.steps}) == len(path.steps)  # loop-erased
    # every maze differs, so no (state, action) is supported by two train tasks: no cross-task demo
    assert not program.actor.act.demos and not [d for d in tp.report.demos if d.component == "actor"]


def test_actor_demos_come_from_train_rollouts_with_provenance():
    tp, _, _ = compile_once(min_support=1)
    program, report = tp.candidate, tp.report
    actor_sources = [d for d in report.demos if d.component == "actor"]
    assert len(actor_sources) == len(program.actor.act.demos) > 0
    # from the train rollouts (the first one or a later round; a good step: on a successful path, or progress rose)
    assert {s.task_id for s in actor_sources} <= {t.task_id for t in report.train.tasks}
    # every demo's action was valid in its state, and the demo pool has no duplicates
    for demo in program.actor.act.demos:
        assert demo["action"] in demo["valid_actions"]
    assert len(set(demo_pairs(program))) == len(program.actor.act.demos)
    assert report.before is not None and report.after is not None and report.after.n == len(VAL)


def test_valset_evaluations_run_the_actor_only_and_train_rollouts_keep_the_critic():
    tp, _, _ = compile_once(rounds=0)
    report = tp.report
    for valset_run in (report.before, report.after):
        assert not valset_run.phi_scored and set(valset_run.by_role) == {"actor"}
    assert report.train.phi_scored and report.train.by_role["critic"]["calls"] > 0
    assert report.by_role["critic"]["calls"] == report.train.by_role["critic"]["calls"]
    assert sum(r["calls"] for r in report.by_role.values()) == sum(p["lm_calls"] for p in report.phases.values())


def test_each_call_sees_the_nearest_demos_not_a_fixed_list():
    tp, _, _ = compile_once(min_support=1)
    program = tp.candidate
    program.actor.demos_per_call = 1  # several would disagree: none shown
    env = make_env("treasure-maze")
    seen = []
    for task in TS.tasks("train")[:4]:
        state = env.reset(task)
        chosen = program.actor.demos_for(state)
        assert len(chosen) <= program.actor.demos_per_call
        seen.append(tuple(d["observation"] for d in chosen))
    assert len(set(seen)) > 1  # different states, different demos
    # a state that is in the pool gets its own demo, last (nearest the question)
    first = program.actor.act.demos[0]
    state = State(observation=first["observation"], valid_actions=tuple(first["valid_actions"]))
    assert program.actor.demos_for(state)[-1]["observation"] == first["observation"]
    # the caller's own demos (a remembered step of this task) are shown alone
    mine = program.actor.act.demos[-1]
    assert program.actor.demos_for(state, [mine]) == [mine]


def test_budget_is_never_exceeded():
    tp, _, engine = compile_once(max_lm_calls=60)
    assert tp.report.lm_calls <= 60
    assert sum(engine.calls.values()) <= 60
    assert tp.report.budget_exhausted


def test_same_seed_same_compile():
    _, a, _ = compile_once(seed=3)
    _, b, _ = compile_once(seed=3)
    assert demo_pairs(a) == demo_pairs(b)
    assert [d["evidence"] for d in a.critic.judge.demos] == [d["evidence"] for d in b.critic.judge.demos]


def test_an_interrupted_compile_resumes_without_redoing_finished_rollouts(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        compile_once(tmp_path, engine=RuleEngine(interrupt_after=70))
    [checkpoint] = list(tmp_path.glob(f"*/{FILENAME}"))
    finished = [json.loads(line)["key"] for line in checkpoint.read_text().splitlines()[1:]]
    rollouts_done = [k for k in finished if k.split("/")[0] in ("before", "train", "after")]
    assert rollouts_done, "the interruption came after some rollouts had finished"

    resets: list[str] = []

    def counting_env(env_id):
        env = make_env(env_id)
        reset = env.reset

        def tracked(task):
            resets.append(task.task_id)
            return reset(task)

        env.reset = tracked
        return env

    tp, resumed, _ = compile_once(tmp_path, make_environment=counting_env)
    total = 2 * len(VAL) + len(TRAIN)
    assert len(resets) == total - len(rollouts_done)
    assert tp.report.resumed_units == len(finished)
    _, fresh, _ = compile_once()
    assert demo_pairs(resumed) == demo_pairs(fresh)


def test_a_different_compile_in_the_same_run_dir_starts_fresh(tmp_path):
    first, _, _ = compile_once(tmp_path, seed=1)
    other, _, _ = compile_once(tmp_path, seed=2)
    assert other.report.resumed_units == 0 and other.report.run_dir != first.report.run_dir
    again, _, _ = compile_once(tmp_path, seed=1)  # the first job run again: everything reused
    assert again.report.run_dir == first.report.run_dir and again.report.resumed_units > 0


def test_a_judge_lm_that_keeps_everything_is_not_trusted_and_the_checks_still_reject():
    tp, _, _ = compile_once()
    judge = tp.report.judge
    assert judge["planted_wrong"] > 0
    # The rule judge LM says "keep" to everything; the Python checks still reject every planted one
    # whose flaw they can see (ungrounded evidence), and the ones they miss show the LM cannot tell.
    assert judge["planted_rejected"] >= 1
    assert judge["planted_uncaught"] > 0 and judge["planted_rejected_by_lm"] == 0
    assert judge["honest_kept_by_lm"] == judge["honest_graded"] > 0
    assert judge["lm_grades_trusted"] is False and judge["discrimination"] == 0.0
    assert judge["why"].startswith("untrusted: rejected 0/")


def test_loop_erasure_cuts_detours():
    def step(i, before, action, after):
        return Transition(index=i, before=State(observation=before), action=Action(text=action),
                          after=State(observation=after), score=PurposeScore(phi_before=0, phi_after=0))

    traj = Trajectory(purpose="p", task=Task(env_id="treasure-maze"), steps=[
        step(0, "A", "east", "B"), step(1, "B", "west", "A"), step(2, "A", "south", "C"), step(3, "C", "east", "D"),
    ])
    assert [s.action.text for s in loop_erased(traj)] == ["south", "east"]


def test_compile_refuses_examples_without_a_task():
    import dspy

    lms, _ = rule_lms()
    with pytest.raises(ValueError, match="task"):
        PurposeTeleprompter(lms, CompileConfig(progress=False)).compile(
            PurposeAgent(), trainset=[dspy.Example(question="x").with_inputs("question")])
