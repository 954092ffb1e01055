"""CompactJSONAdapter: a fixed system message, each thing said once, the JSONAdapter's parsing (DummyLM)."""

import dspy
from dspy.utils.dummies import DummyLM

from purpose_dspy.lm.compact_adapter import CompactJSONAdapter
from purpose_dspy.programs import Actor, PurposeCritic
from purpose_dspy.signatures.act import Act, ActDirect, constrain_action
from purpose_dspy.types import State

PURPOSE = "reach the treasure"


def messages(signature, demos, **inputs):
    return CompactJSONAdapter().format(signature, demos, inputs)


def act_inputs(observation, actions):
    return dict(purpose=PURPOSE, observation=observation, history="(none yet)", valid_actions=list(actions),
                experience="(none)")


def test_the_system_message_is_the_same_whatever_the_valid_actions():
    """The per-call Literal must not reach the first message, or llama.cpp cannot reuse the cached prefix."""
    one = messages(constrain_action(ActDirect, ("north", "south")), [], **act_inputs("a", ["north", "south"]))
    two = messages(constrain_action(ActDirect, ("take coin",)), [], **act_inputs("b", ["take coin"]))
    assert one[0]["role"] == "system" and one[0] == two[0]
    assert "north" not in one[0]["content"] and "one of the listed options" in one[0]["content"]
    assert one[-1]["content"] != two[-1]["content"] and '["take coin"]' in two[-1]["content"]


def test_it_is_shorter_than_the_stock_adapter_and_keeps_the_instructions():
    signature, inputs = constrain_action(Act, ("north", "south")), act_inputs("You are at row 0.", ["north", "south"])
    compact = messages(signature, [], **inputs)
    stock = dspy.JSONAdapter().format(signature, [], inputs)
    assert len(compact[0]["content"]) < 0.75 * len(stock[0]["content"])
    assert "Do not repeat an action that just failed." in compact[0]["content"]
    assert "[[ ## observation ## ]]\nYou are at row 0." in compact[-1]["content"]
    assert compact[-1]["content"].endswith("JSON keys: thought, action.")


def test_demos_leave_out_what_the_call_already_shows_and_answer_in_one_line():
    demo = dspy.Example(**act_inputs("You are at row 2.", ["east", "west"]), thought="t", action="east")
    msgs = messages(ActDirect, [demo], **act_inputs("You are at row 0.", ["north"]))
    user, answer = msgs[1]["content"], msgs[2]["content"]
    assert "You are at row 2." in user and '["east", "west"]' in user
    assert "purpose" not in user and "(none yet)" not in user  # the same as the call's own, shown once below
    assert answer == '{"action": "east"}' and "thought" not in answer  # only the signature's outputs
    assert PURPOSE in msgs[-1]["content"]


def test_a_demo_leaves_out_its_empty_fields_even_where_the_call_has_them_filled():
    """A compiled call carries a rule line in `experience` and a history; a demo's "(none)" says nothing."""
    demo = dspy.Example(**act_inputs("You are at row 2.", ["east", "west"]), thought="t", action="east")
    call = {**act_inputs("You are at row 0.", ["north"]), "history": "north -> You are at row 1.",
            "experience": "here that step is 'north'"}
    user = messages(ActDirect, [demo], **call)[1]["content"]
    assert "experience" not in user and "history" not in user and "(none" not in user
    assert "You are at row 2." in user


def test_the_actor_and_critic_parse_through_it_in_both_variants():
    state = State(observation="You are at row 0.", valid_actions=("south", "east"))
    after = State(observation="You are at row 1.", valid_actions=("south", "east"))
    for reasoning in (False, True):
        answers = [{"thought": "go", "action": "east"},
                   {"evidence": "row 1", "reasoning": "closer", "phi_before": 1, "phi_after": 2, "confidence": 0.9}]
        lm = DummyLM(answers, adapter=CompactJSONAdapter())
        with dspy.context(lm=lm, adapter=CompactJSONAdapter()):
            pred = Actor(reasoning=reasoning)(purpose=PURPOSE, state=state)
            score = PurposeCritic(reasoning=reasoning)(purpose=PURPOSE, before=state, action="east", after=after).score
        assert pred.action == "east" and pred.thought == ("go" if reasoning else "")
        assert (score.phi_before, score.phi_after, score.evidence) == (1, 2, "row 1")
        assert score.reasoning == ("closer" if reasoning else "")
        system = lm.history[0]["messages"][0]["content"]
        assert ("- thought:" in system) is reasoning
