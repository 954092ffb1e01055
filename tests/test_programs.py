"""Actor and critic parsing, retries and failure records, on DummyLM (no real model needed here)."""

import dspy
from dspy.utils.dummies import DummyLM

from conftest import judgment
from purpose_dspy.programs import Actor, PurposeCritic, match_action
from purpose_dspy.types import State

STATE = State(observation="You are at row 0, column 0.", valid_actions=("south", "east"))


def run_actor(answers):
    lm = DummyLM(answers, adapter=dspy.JSONAdapter())
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        return Actor()(purpose="reach the treasure", state=STATE), lm


def test_match_action_is_exact_then_case_and_space_insensitive():
    assert match_action("east", STATE.valid_actions) == "east"
    assert match_action("  East ", STATE.valid_actions) == "east"
    assert match_action("north", STATE.valid_actions) is None
    assert match_action("anything", ()) == "anything"
    assert match_action("  ", ()) is None


def test_actor_returns_a_valid_action_first_try():
    pred, lm = run_actor([{"thought": "go", "action": "south"}])
    assert (pred.action, pred.error, pred.attempts) == ("south", None, 1)


def test_actor_retries_an_invalid_action_then_succeeds():
    pred, lm = run_actor([{"thought": "go", "action": "fly"}, {"thought": "go", "action": "east"}])
    assert (pred.action, pred.attempts) == ("east", 2)


def test_actor_records_failure_after_unparsable_and_invalid_answers():
    # First answer lacks the action field (a parse error), the second names an invalid action.
    pred, lm = run_actor([{"thought": "hmm"}, {"thought": "go", "action": "teleport"}])
    assert pred.action is None
    assert "unparsable" in pred.error and "teleport" in pred.error
    assert len(lm.history) == 2  # exactly one retry


def run_critic(answers, phi_prev=3.0):
    lm = DummyLM(answers, adapter=dspy.JSONAdapter())
    after = State(observation="You move south. You are at row 1, column 0.")
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        return PurposeCritic()(purpose="p", before=STATE, action="south", after=after, phi_prev=phi_prev).score


def test_critic_parses_a_typed_score():
    score = run_critic([judgment(2, 4)])
    assert (score.phi_before, score.phi_after, score.reward) == (2, 4, 2) and not score.flags


def test_critic_out_of_range_twice_is_unscored_not_clamped():
    score = run_critic([judgment(2, 15), judgment(-1, 4)], phi_prev=3.0)
    assert "unscored" in score.flags
    assert (score.phi_before, score.phi_after, score.reward) == (3.0, 3.0, 0.0)


def test_critic_recovers_on_retry():
    score = run_critic([{"evidence": "x"}, judgment(1, 2)])
    assert score.phi_after == 2 and not score.flags
