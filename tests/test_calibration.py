"""Critic calibration (teleprompt/calibration.py): a meta-judge earns trust only by telling honest judgments from
planted wrong ones the Python checks miss; calibration demos agree with the environment's progress (DummyLM)."""

from __future__ import annotations

import dspy
import pytest
from dspy.utils.dummies import DummyLM

from purpose_dspy.programs import MetaJudge, SelfTaughtEvaluator
from purpose_dspy.runtime.budget import LMBudget
from purpose_dspy.teleprompt import CompileConfig
from purpose_dspy.teleprompt.calibration import Calibration, direction, judge_trust, progress_delta
from purpose_dspy.teleprompt.checkpoint import Checkpoint
from purpose_dspy.types import Action, PurposeScore, State, Task, Trajectory, Transition

NAMES = ("evidence_grounding", "reasoning_coherence", "calibration", "anti_sycophancy", "consistency")


def grade(verdict: str, n: int) -> dict:
    return {"grade": {**dict.fromkeys(NAMES, n), "verdict": verdict, "explanation": "checked"}}


KEEP, REJECT = grade("keep", 4), grade("reject", 2)


def judge_lm(honest: dict, planted: dict) -> DummyLM:
    """Answers the flaw writer (its reasoning marks the planted judgment), then the meta-judge by which judgment it sees."""
    return DummyLM({"honest_judgment": {"evidence": "", "reasoning": "PLANTED: the action meant well"},
                    "reasoning: PLANTED": planted, "reasoning: honest": honest}, adapter=dspy.JSONAdapter())


def state(row: int, note: str = "") -> State:
    return State(observation=f"You are at row {row}, column 1. The treasure is at row 30, column 1.{note}")


def trajectory(moves: list[tuple[int, float | None, float]], tid: str = "t", start: int = 1,
               note: str = "") -> Trajectory:
    """`moves`: (row after, progress after, Φ after) per step, from row `start` at Φ 1; the critic quotes the state after."""
    steps, row, phi = [], start, 1.0
    for i, (to, progress, phi_after) in enumerate(moves):
        after = state(to, note)
        score = PurposeScore(phi_before=phi, phi_after=phi_after, confidence=0.9, evidence=after.observation[:26],
                             reasoning="honest: what the state shows")
        steps.append(Transition(index=i, before=state(row, note), action=Action(text=f"go {to}"), after=after,
                                score=score, progress=progress))
        row, phi = to, phi_after
    return Trajectory(id=tid, purpose="reach the treasure", task=Task(env_id="treasure-maze"), steps=steps)


def rising(n: int, tid: str = "up") -> Trajectory:
    return trajectory([(k + 2, (k + 1) / 30, 1 + 0.5 * (k + 1)) for k in range(n)], tid)


def calibrate(trajectories, lm, **config):
    settings = CompileConfig(progress=False, **config)
    calibration = Calibration(MetaJudge(), SelfTaughtEvaluator(), settings)
    calls, budget, ckpt = [], LMBudget(None), Checkpoint(None, "test")
    verdicts, planted = calibration.grade(trajectories, lm, budget, ckpt, calls)
    return calibration.decide(verdicts, planted), calls


def test_a_judge_that_tells_honest_from_planted_ones_is_trusted():
    outcome, _ = calibrate([rising(12)], judge_lm(KEEP, REJECT), judge_sample=12, contrast_pairs=12)
    j = outcome.summary
    assert j["lm_grades_trusted"] is True and j["why"].startswith("trusted"), j["why"]
    assert j["honest_graded"] == j["honest_kept_by_lm"] == 12
    # Every third plant on a rising step is "ungrounded": the checks catch it, and it does not count for the LM.
    assert j["planted_wrong"] == 12 and j["planted_uncaught"] == j["planted_rejected_by_lm"] == 8
    assert j["flaws_missed"] == [] and j["discrimination"] == 1.0 and j["kept"] == 12


@pytest.mark.parametrize(("honest", "planted", "why"), [
    (REJECT, REJECT, "kept 0/12 honest"), (KEEP, KEEP, "rejected 0/8 planted"),
], ids=["reject-all", "keep-all"])
def test_a_judge_that_rejects_everything_or_keeps_everything_is_not_trusted(honest, planted, why):
    outcome, _ = calibrate([rising(12)], judge_lm(honest, planted), judge_sample=12, contrast_pairs=12)
    j = outcome.summary
    assert j["lm_grades_trusted"] is False and why in j["why"] and j["discrimination"] == 0.0
    assert j["kept"] == 12  # untrusted: the Python checks decide, and every honest judgment passes them
    assert j["flaws_missed"] == ["credits_intention", "inflated"]  # the checks let through what only an LM could see


def test_fewer_than_min_trust_pairs_graded_items_is_not_trusted():
    outcome, _ = calibrate([rising(4)], judge_lm(KEEP, REJECT), judge_sample=4, contrast_pairs=4)
    j = outcome.summary
    assert j["honest_graded"] + j["planted_uncaught"] < 8
    assert j["lm_grades_trusted"] is False and "fewer than 8" in j["why"]


def test_when_the_checks_catch_every_planted_flaw_nothing_earns_trust():
    flat = trajectory([(1 + k % 2, 0.0, 1.0) for k in range(10)], "flat")  # no progress, no Φ change: every plant caught
    outcome, _ = calibrate([flat], judge_lm(KEEP, REJECT), judge_sample=10, contrast_pairs=10)
    j = outcome.summary
    assert j["planted_wrong"] == 10 and j["planted_uncaught"] == 0 and j["planted_rejected"] == 10
    assert j["lm_grades_trusted"] is False and j["why"] == "untrusted: no planted flaw the Python checks miss"


def test_the_trust_rule_at_its_thresholds():
    settings = CompileConfig(progress=False)

    def uncaught(kept: bool) -> dict:
        return {"checks": {"evidence_quoted": True}, **(KEEP if kept else REJECT)}

    caught = {"checks": {"evidence_quoted": False}, **REJECT}
    at = judge_trust([True] * 3 + [False] * 2, [uncaught(k) for k in (True, True, False, False, False)] + [caught],
                     settings, 3.0)
    assert at.trusted and (at.honest_kept_by_lm, at.planted_uncaught, at.planted_rejected_by_lm) == (3, 5, 3)
    below = judge_trust([True] * 3 + [False] * 2, [uncaught(k) for k in (True, True, True, False, False)], settings, 3.0)
    assert not below.trusted and "rejected 2/5" in below.why
    assert not judge_trust([True] * 10, [caught] * 5, settings, 3.0).trusted  # caught ones never count for the LM


def test_a_resumed_calibration_spends_what_the_first_one_did_without_calling_the_lm():
    settings = CompileConfig(progress=False, judge_sample=6, contrast_pairs=6)
    ckpt = Checkpoint(None, "test")
    first, again = ([], LMBudget(None)), ([], LMBudget(None))
    for calls, budget in (first, again):
        calibration = Calibration(MetaJudge(), SelfTaughtEvaluator(), settings)
        verdicts, planted = calibration.grade([rising(6)], judge_lm(KEEP, REJECT), budget, ckpt, calls)
    assert len(first[0]) == 6 + 2 * 6 and again[0] == [] and again[1].spent == len(first[0])
    assert len(verdicts) == len(planted) == 6


def test_critic_demos_agree_with_progress_and_show_rises_falls_and_no_change():
    moves = [(2, 0.1, 2.0), (3, 0.2, 3.0), (2, 0.1, 2.0), (2, 0.1, 2.0), (1, 0.0, 1.0),  # rise, rise, fall, bump, fall
             (1, 0.0, 2.0), (2, 0.1, 3.0)]  # progress stays but Φ +1 (passes the checks, disagrees), rise
    main = trajectory(moves, "main")
    twin = trajectory(moves[:1], "twin")  # the same first step again: shown once
    unknown = trajectory([(5, None, 4.0)], "unknown", start=4)  # progress unknown while others are known
    outcome, _ = calibrate([main, twin, unknown], judge_lm(KEEP, REJECT), judge_sample=20, contrast_pairs=0)
    by_id = {t.id: t for t in (main, twin, unknown)}
    assert outcome.summary["kept"] == 9  # every sampled judgment passes the Python checks
    shown = [(s.trajectory_id, s.step) for s in outcome.sources]
    for (tid, i), demo in zip(shown, outcome.demos):
        assert direction(demo.phi_after - demo.phi_before) == direction(progress_delta(by_id[tid], i))
    assert ("main", 5) not in shown and ("unknown", 0) not in shown
    keys = [(d.state_before, d.action, d.state_after) for d in outcome.demos]
    assert len(keys) == len(set(keys)) == 5  # rises 0 and 1 (step 6 and the twin repeat 0), falls 2 and 4, no change 3
    assert outcome.summary["demo_directions"] == {"rise": 2, "fall": 2, "no_change": 1}
    assert {direction(d.phi_after - d.phi_before) for d in outcome.demos[:3]} == {1, -1, 0}  # interleaved


def test_without_any_known_progress_the_critics_own_directions_are_shown():
    no_progress = trajectory([(2, None, 2.0), (1, None, 1.0), (1, None, 1.0)], "np")
    outcome, _ = calibrate([no_progress], judge_lm(KEEP, REJECT), judge_sample=3, contrast_pairs=0)
    assert outcome.summary["demo_directions"] == {"rise": 1, "fall": 1, "no_change": 1}
