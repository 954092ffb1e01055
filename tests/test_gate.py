"""The promotion gate: the one-sided sign test, the decision and its figures, the staged check, and compile
returning the parent (the student, untouched) when the gate refuses; the refused compile's artifact stays
unpromoted.

The compile tests use rule_lm.py's stand-in LM on treasure-maze, with a maze that a test can make unwinnable
for the parent's dev runs or for the candidate's ("before" or "after" the train rollouts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError
from rule_lm import rule_lms

from purpose_dspy import artifacts
from purpose_dspy.environments.treasure_maze import TreasureMaze
from purpose_dspy.metrics import SplitMetrics, TaskScore, sign_test, sign_test_greater
from purpose_dspy.programs import PurposeAgent
from purpose_dspy.tasksets import load_taskset
from purpose_dspy.teleprompt import CompileConfig, EditorTeleprompter, PurposeTeleprompter, task_examples
from purpose_dspy.teleprompt.gate import GateConfig, decide, min_clean_sweep, staged, stop_early

TASKSET = "tasksets/treasure-maze.toml"
TS = load_taskset(TASKSET)
TRAIN = task_examples(TS.tasks("train")[:4], max_steps=TS.max_steps)
DEV = task_examples(TS.tasks("dev")[:20], max_steps=TS.max_steps)


def runs(successes: list[bool], split: str = "dev") -> SplitMetrics:
    return SplitMetrics.of(split, [TaskScore(task_id=f"t{i}", seed=i, success=s, phi_gain=0, steps=1, lm_calls=1,
                                             tokens=1, seconds=0) for i, s in enumerate(successes)])


def pair(wins: int, losses: int, both: int = 0, n: int = 20) -> tuple[SplitMetrics, SplitMetrics]:
    """Candidate and parent runs on n seeds: `wins` only the candidate solved, `losses` only the parent, `both` both."""
    cand = [True] * wins + [False] * losses + [True] * both
    parent = [False] * wins + [True] * losses + [True] * both
    rest = n - len(cand)
    return runs(cand + [False] * rest), runs(parent + [False] * rest)


# -- the one-sided sign test -----------------------------------------------------------------------
@pytest.mark.parametrize("wins, losses, p", [
    (0, 0, 1.0), (5, 0, 1 / 32), (3, 0, 1 / 8), (4, 0, 1 / 16), (1, 1, 3 / 4),
    (6, 1, 8 / 128),            # (C(7,6) + C(7,7)) / 2**7
    (7, 2, 46 / 512),           # (36 + 9 + 1) / 2**9
    (2, 5, 120 / 128),          # 1 - (1 + 7) / 2**7
    (0, 3, 1.0),
])
def test_one_sided_sign_test_is_the_exact_binomial_tail(wins, losses, p):
    assert sign_test_greater(wins, losses) == pytest.approx(p, abs=1e-12)


def test_the_two_sided_sign_test_is_unchanged_and_counts_must_be_counts():
    assert sign_test(5, 0) == 0.0625 and sign_test(0, 0) == 1.0 and sign_test(3, 1) == 0.625
    with pytest.raises(ValueError, match="counts"):
        sign_test_greater(-1, 2)


# -- the decision -----------------------------------------------------------------------------------
def test_five_gained_none_lost_promotes_at_alpha_01():
    decision = decide(*pair(5, 0))
    assert decision.promoted and decision.p_value == 0.03125 and decision.alpha == 0.1
    assert decision.reason == ("5 gained, 0 lost on 20 paired dev seeds, one-sided sign test p = 0.03125 <= 0.1: "
                               "better than the parent; promoted")


def test_three_gained_none_lost_is_not_shown_better():
    decision = decide(*pair(3, 0))
    assert not decision.promoted and decision.p_value == 0.125
    assert decision.reason.startswith("3 gained, 0 lost on 20 paired dev seeds, one-sided sign test p = 0.125 > 0.1: "
                                      "not shown better")
    assert decision.reason.endswith("the parent stays") and "4 or more gained and none lost" in decision.reason
    assert decide(*pair(3, 0), GateConfig(alpha=0.2)).promoted  # a looser gate, the caller's choice


@pytest.mark.parametrize("wins, losses, both, verdict", [
    (0, 0, 12, "a tie"), (3, 3, 5, "a tie"), (1, 3, 4, "worse than the parent"), (6, 2, 0, "not shown better"),
])
def test_a_tie_a_worse_or_an_unclear_result_keeps_the_parent(wins, losses, both, verdict):
    decision = decide(*pair(wins, losses, both))
    assert not decision.promoted and f": {verdict}" in decision.reason
    assert (decision.comparison.wins, decision.comparison.losses) == (wins, losses)


def test_a_tie_never_promotes_whatever_alpha():
    assert not decide(*pair(2, 2), GateConfig(alpha=1.0)).promoted
    assert decide(*pair(1, 0), GateConfig(alpha=1.0)).promoted  # wins > losses and p = 0.5 <= 1


def test_runs_that_share_no_task_are_for_a_human():
    candidate = SplitMetrics.of("dev", [t.model_copy(update={"task_id": "other"}) for t in runs([True]).tasks])
    decision = decide(candidate, runs([False]))
    assert not decision.promoted and "share no task" in decision.reason and "promote by hand" in decision.reason


def test_gate_config_is_frozen_forbids_unknown_fields_and_reaches_both_teleprompters():
    with pytest.raises(ValidationError):
        GateConfig(alhpa=0.05)
    with pytest.raises(ValidationError):
        GateConfig(alpha=0)
    config = CompileConfig(gate=GateConfig(alpha=0.05), progress=False)
    with pytest.raises(ValidationError):
        config.gate.alpha = 0.5
    lms, _ = rule_lms()
    assert EditorTeleprompter(lms["editor"], config).config.gate.alpha == 0.05
    # The gate decides from the episodes only: another alpha is the same job (the checkpoint is reused).
    a, b = PurposeTeleprompter(lms, config), PurposeTeleprompter(lms, CompileConfig(progress=False))
    assert a._job_hash({"x": 1}) == b._job_hash({"x": 1})
    assert (min_clean_sweep(0.1), min_clean_sweep(0.05), min_clean_sweep(0.0625)) == (4, 5, 4)


# -- the staged check -------------------------------------------------------------------------------
def counting(successes: list[bool]):
    """An evaluate(examples) over examples 0..n-1 that records which examples ran."""
    ran: list[int] = []

    def evaluate(examples):
        ran.extend(examples)
        return SplitMetrics.of("dev", [runs(successes).tasks[i] for i in examples])
    return evaluate, ran


def test_the_staged_check_stops_a_clearly_worse_candidate_after_its_first_stage():
    parent = runs([True] * 20)
    evaluate, ran = counting([True, False, True, False] + [True] * 16)  # 0 gained, 2 lost in the first 5
    after, decision = staged(evaluate, list(range(20)), parent, GateConfig())
    assert ran == [0, 1, 2, 3, 4] and after.n == 5
    assert decision.stopped_early and not decision.promoted
    assert decision.reason.startswith("stopped after the first 5 dev seeds: 0 gained, 2 lost")


def test_a_candidate_one_down_after_the_stage_runs_on_and_can_still_be_promoted():
    parent = runs([True] + [False] * 19)
    evaluate, ran = counting([False] + [True] * 6 + [False] * 13)  # 4-1 after the stage, 6-1 in all
    assert stop_early(runs([False, True, True, True, True]), runs([True] + [False] * 4), GateConfig()) is None
    after, decision = staged(evaluate, list(range(20)), parent, GateConfig())
    assert ran == list(range(20)) and after.n == 20 and [t.task_id for t in after.tasks] == [f"t{i}" for i in range(20)]
    assert decision.promoted and decision.p_value == 0.0625 and not decision.stopped_early


@pytest.mark.parametrize("config, n", [(GateConfig(stage_seeds=0), 20), (GateConfig(), 5), (GateConfig(), 3)])
def test_one_stage_when_staging_is_off_or_the_valset_is_no_longer_than_a_stage(config, n):
    evaluate, ran = counting([False] * n)
    after, decision = staged(evaluate, list(range(n)), runs([True] * n), config)
    assert ran == list(range(n)) and after.n == n and not decision.stopped_early and not decision.promoted


# -- compile through the gate -----------------------------------------------------------------------
@dataclass
class Episodes:
    """What the mazes saw: each dev reset, tagged by whether the train rollouts had begun."""

    broken: str | None = None  # "before" or "after": dev episodes of that phase cannot be won
    trained: bool = False
    dev: list[tuple[str, str]] = field(default_factory=list)

    def make(self, env_id: str) -> TreasureMaze:
        return _Maze(self)


class _Maze(TreasureMaze):
    def __init__(self, log: Episodes) -> None:
        super().__init__()
        self.log, self.stuck = log, False

    def reset(self, task):
        self.log.trained |= task.split == "train"
        phase = "after" if self.log.trained else "before"
        if task.split == "dev":
            self.log.dev.append((phase, task.task_id))
        self.stuck = task.split == "dev" and phase == self.log.broken
        return super().reset(task)

    def step(self, action):
        if self.stuck:  # nothing moves: the episode runs out of steps
            self._steps += 1
            return self._state("The floor holds you in place.")
        return super().step(action)


def gated_compile(broken: str | None, valset=DEV):
    episodes = Episodes(broken=broken)
    lms, _ = rule_lms()
    student = PurposeAgent()
    state = json.dumps(student.dump_state(), sort_keys=True, default=str)
    tp = PurposeTeleprompter(lms, CompileConfig(progress=False), make_environment=episodes.make)
    returned = tp.compile(student, trainset=TRAIN, valset=valset)
    assert json.dumps(student.dump_state(), sort_keys=True, default=str) == state  # never mutated
    return tp, student, returned, episodes


def same_state(a, b) -> bool:
    return json.dumps(a.dump_state(), sort_keys=True, default=str) == json.dumps(b.dump_state(), sort_keys=True, default=str)


def test_a_worse_candidate_is_stopped_early_and_compile_returns_the_parent():
    tp, student, returned, episodes = gated_compile(broken="after")
    gate = tp.report.gate
    assert not gate.promoted and gate.stopped_early and "the parent stays" in gate.reason
    assert [phase for phase, _ in episodes.dev].count("before") == 20
    assert [phase for phase, _ in episodes.dev].count("after") == 5 == tp.report.after.n  # not 20
    assert returned is not student and returned is not tp.candidate and returned._compiled
    assert same_state(returned, student)  # the parent: the student's (empty) demos, nothing compiled in
    assert not same_state(tp.candidate, student)  # the refused program is kept for inspection


def test_a_tie_on_twenty_seeds_returns_the_parent():
    tp, student, returned, episodes = gated_compile(broken=None)
    gate = tp.report.gate
    assert not gate.promoted and not gate.stopped_early and gate.comparison.n == 20
    assert (gate.comparison.wins, gate.comparison.losses, gate.p_value) == (0, 0, 1.0) and ": a tie" in gate.reason
    assert same_state(returned, student) and not same_state(tp.candidate, student)
    assert len(episodes.dev) == 40


def test_a_clearly_better_candidate_is_promoted_and_returned():
    tp, student, returned, _ = gated_compile(broken="before")
    gate = tp.report.gate
    assert gate.promoted and gate.comparison.wins >= 5 and gate.comparison.losses == 0 and gate.p_value <= 0.1
    assert returned is tp.candidate and returned._compiled and not same_state(returned, student)


def test_without_a_valset_the_gate_does_not_run_and_compile_returns_the_candidate(tmp_path):
    lms, _ = rule_lms()
    tp = PurposeTeleprompter(lms, CompileConfig(progress=False))
    returned = tp.compile(PurposeAgent(), trainset=TRAIN)
    assert tp.report.gate is None and tp.report.after is None and returned is tp.candidate
    manifest = artifacts.save_artifact(tmp_path / "maze", artifacts.components_of(returned), tp.report, lms={})
    assert not manifest.gate.promoted and "did not run" in manifest.gate.reason and "promote by hand" in manifest.gate.reason


# -- the artifact of a refused compile --------------------------------------------------------------
def test_a_refused_compile_is_saved_unpromoted_and_the_promoted_version_stays_the_parent(tmp_path):
    from purpose_dspy.jobs import compile_taskset
    from purpose_dspy.lm import load_lm_config

    root, (lms, _) = tmp_path / "maze", rule_lms()

    def compile_once(seed: int):
        return compile_taskset(TASKSET, root, lm_config=load_lm_config(), lms=lms, train=2, dev=5,
                               config=CompileConfig(progress=False, seed=seed))

    first = compile_once(0).manifest  # from the zero-shot agent: a tie, refused
    assert not first.gate.promoted and first.gate.alpha == 0.1 and artifacts.promoted_stack(root) == []
    assert "the parent stays" in first.gate.reason and first.gate.comparison.n == 5
    saved = artifacts.load(f"{root}@v1")  # what the compile built, not the parent it returned
    assert not same_state(saved.program, PurposeAgent())
    artifacts.promote(f"{root}@v1", "by hand, after a look")
    second = compile_once(1).manifest  # continues from v1; a tie again
    assert (second.version, second.parent_version, second.gate.promoted) == (2, 1, False)
    assert artifacts.load(root).version == 1  # the parent stays the promoted version
    assert artifacts.load(f"{root}@v2").manifest.gate.reason == second.gate.reason
